"""The base of every config section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["gold_dev", "gold_test", "unlabelled", "reviewed"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
