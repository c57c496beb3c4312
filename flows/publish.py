"""Logging and Prefect artifacts for the stages: a convenience for people, never a reason for a stage to fail."""

from __future__ import annotations

import logging
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import FlowRunContext, TaskRunContext


def logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run, else the plain ``driftloop`` logger (``task.fn`` in tests)."""
    try:
        return get_run_logger()
    except Exception:
        return logging.getLogger("driftloop")


def artifact_key(run_id: str, stage: str) -> str:
    return f"{stage}-{run_id}".lower().replace("_", "-").replace(":", "-")


def _in_a_run() -> bool:
    """Artifacts belong to a flow or task run; a stage called through ``task.fn`` has none to attach them to."""
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def publish_table(run_id: str, stage: str, rows: list[dict[str, Any]], description: str) -> None:
    if not _in_a_run():
        return
    try:
        create_table_artifact(key=artifact_key(run_id, stage), table=rows, description=description)
    except Exception as err:
        logger().warning("could not publish %s artifact: %s", stage, err)


def publish_markdown(run_id: str, stage: str, markdown: str, description: str) -> None:
    if not _in_a_run():
        return
    try:
        create_markdown_artifact(key=artifact_key(run_id, stage), markdown=markdown, description=description)
    except Exception as err:
        logger().warning("could not publish %s artifact: %s", stage, err)
