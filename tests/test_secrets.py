"""Secrets in the config are never written (issue 33): config.yaml, show-config, MLflow params and the model folder
see credentials masked, while the running config keeps them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from driftloop.catalog import Catalog
from driftloop.cli.main import app
from driftloop.config import load_config
from driftloop.redact import redact_text
from driftloop.tasks.tracking import run_params

PASSWORD = "s3cr3t-Pa55"
SECRET_SETTINGS = [
    f"tracking.mlflow.tracking_uri=postgresql://mlflow:{PASSWORD}@db.internal:5432/mlflow",
    f"runtime.dask.address=tls://{PASSWORD}@scheduler.internal:8786",
]


@pytest.mark.parametrize(
    "text, shown",
    [
        ("postgresql+asyncpg://user:pw@127.0.0.1:5432/db", "postgresql+asyncpg://user:***@127.0.0.1:5432/db"),
        ("https://TOKEN123@host/x", "https://***@host/x"),
        (
            "s3://bucket/key?X-Amz-Signature=abc&token=xyz&region=eu",
            "s3://bucket/key?X-Amz-Signature=***&token=***&region=eu",
        ),
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        ("configs/lfs/sms_spam.py", "configs/lfs/sms_spam.py"),
        ("user@example.com wrote", "user@example.com wrote"),
    ],
)
def test_credentials_in_urls_are_masked_and_nothing_else_changes(text, shown):
    assert redact_text(text) == shown


def test_no_file_or_output_holds_the_password(project: Path):
    config = project / "configs" / "sms_spam.yaml"
    cfg = load_config(config, SECRET_SETTINGS)
    assert PASSWORD in cfg.tracking.mlflow.tracking_uri  # the running config keeps the real value
    run_dir = Catalog.from_config(cfg).start_run(cfg, "20260101T000000Z-secrets")
    written = (run_dir / "config.yaml").read_text()
    assert PASSWORD not in written and "mlflow:***@db.internal" in written
    assert yaml.safe_load(written)["runtime"]["dask"]["address"] == "tls://***@scheduler.internal:8786"
    shown = CliRunner().invoke(
        app, ["show-config", "--config", str(config), *[a for s in SECRET_SETTINGS for a in ("--set", s)]]
    )
    assert shown.exit_code == 0 and PASSWORD not in shown.output and "***" in shown.output
    assert not [v for v in run_params(cfg.resolved()).values() if PASSWORD in v]
    # The config hash still follows the real values, so caches do not collide across two credentials.
    assert load_config(config, [SECRET_SETTINGS[0].replace(PASSWORD, "other")]).config_hash != cfg.config_hash
