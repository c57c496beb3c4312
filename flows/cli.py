"""The ``driftloop`` command line."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from driftloop.errors import ConfigError, DeviceUnavailableError, NoChampionError, RegistryError
from driftloop.runtime import apply_defaults

apply_defaults()

app = typer.Typer(
    name="driftloop",
    help="Raw, mostly unlabelled text in; a validated, weakly supervised, fine-tuned classifier out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_CONFIG = Path("configs/sms_spam.yaml")
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML config file.")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config field: --set clean.min_chars=5 (repeatable).")
]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _load(config: Path, overrides: list[str] | None):
    from driftloop.config import load_config

    try:
        return load_config(config, overrides or [])
    except ConfigError as err:
        _fail(str(err))


@app.command()
def run(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None) -> None:
    """Run the pipeline on everything in data/incoming/ and print the run folder.

    Uses Prefect's ephemeral mode, or the server at PREFECT_API_URL when it is set.
    """
    _load(config, set_)  # fail fast on a bad config, before Prefect starts
    from driftloop.flows.pipeline import pipeline

    try:
        summary = pipeline(config_path=str(config), overrides=list(set_ or []))
    except Exception as err:
        _fail(f"{type(err).__name__}: {err}", code=1)
    typer.echo(summary["run_dir"])


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders; default: data/incoming/.")] = None,
    role: Annotated[
        str | None, typer.Option(help="gold_dev, gold_test or unlabelled; default: from the file name.")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
) -> None:
    """Snapshot CSV/TSV/JSONL/Parquet files into data/raw/; quarantine the ones that can't be used."""
    from driftloop.catalog import Catalog
    from driftloop.flows.ingestion import ingest_paths

    if role not in (None, "gold_dev", "gold_test", "unlabelled"):
        _fail(f"--role must be gold_dev, gold_test or unlabelled, not {role!r}")
    cfg = _load(config, set_)
    try:
        outcomes = ingest_paths(Catalog.from_config(cfg), cfg, paths, role)  # type: ignore[arg-type]
    except FileNotFoundError as err:
        _fail(str(err))
    for o in outcomes:
        detail = o.reason if o.reason else f"snapshot {o.snapshot_id}, {o.rows} rows, {o.role}"
        typer.echo(f"{o.status:17s} {o.source}: {detail}")
    if any(o.status in ("quarantined", "failed") for o in outcomes):
        raise typer.Exit(1)


@app.command("demo-data")
def demo_data(
    release: Annotated[
        int | None, typer.Option(help="Copy later batch N into data/incoming/ (simulates new data landing).")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
) -> None:
    """Split the bundled SMS Spam Collection into gold dev/test, an unlabelled pool and later batches."""
    from driftloop.atomic import atomic_path
    from driftloop.catalog import Catalog
    from driftloop.tasks.demo_data import read_sms_corpus, split_demo

    cfg = _load(config, set_)
    catalog = Catalog.from_config(cfg)
    batches_dir = catalog.root / "data" / "demo_batches"
    if release is not None:
        source = batches_dir / f"sms_batch_{release:02d}.csv"
        if not source.exists():
            _fail(
                f"{source} does not exist; run `driftloop demo-data` first (it has {cfg.demo.n_later_batches} batches)"
            )
        target = catalog.incoming_dir / source.name
        catalog.incoming_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        typer.echo(f"released {source.name} into {catalog.incoming_dir}")
        return
    parts = split_demo(read_sms_corpus(), cfg.demo, seed=cfg.project.seed)
    for name, frame in parts.items():
        folder = batches_dir if name.startswith("batch_") else catalog.incoming_dir
        target = folder / f"sms_{name}.csv"
        with atomic_path(target) as tmp:
            frame.to_csv(tmp, index=False)
        typer.echo(f"{len(frame):5d} rows -> {target}")


@app.command("drift-check")
def drift_check_cmd(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None) -> None:
    """Compare data landed since the last successful run with that run's data; retrain on drift."""
    _load(config, set_)
    from driftloop.flows.retrain import drift_check

    try:
        result = drift_check(config_path=str(config), overrides=list(set_ or []))
    except Exception as err:
        _fail(f"{type(err).__name__}: {err}", code=1)
    typer.echo(json.dumps({k: v for k, v in result.items()}, indent=2, default=str))


@app.command()
def serve(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None) -> None:
    """Serve the watch, retrain-on-new-data and scheduled drift-check deployments (needs PREFECT_API_URL)."""
    _load(config, set_)
    from driftloop.deployments.serve import serve_all

    try:
        serve_all(str(config), list(set_ or []))
    except RuntimeError as err:
        _fail(str(err))


@app.command()
def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify; none: read --file or stdin.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Classify each line of this file ('-': stdin).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per forward pass.")] = 64,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per text: label, confidence, probs.")
    ] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
) -> None:
    """Classify texts with the champion model: arguments, a file (one text per line) or stdin.

    Prints one line per text: label, confidence, text (or JSON with --json).
    """
    from transformers.utils import logging as hf_logging

    from driftloop.catalog import Catalog
    from driftloop.tasks.predict import predict_with_champion

    hf_logging.disable_progress_bar()
    cfg = _load(config, set_)
    if texts and file is not None:
        _fail("give texts as arguments or --file, not both")
    if not texts:
        if file is None and sys.stdin.isatty():
            _fail(
                'nothing to classify: pass texts (driftloop predict "some text"), --file PATH, or pipe lines to stdin'
            )
        try:
            stream = sys.stdin if file is None or str(file) == "-" else file.open(encoding="utf-8")
            with stream:
                texts = [line.rstrip("\r\n") for line in stream if line.strip()]
        except (OSError, UnicodeDecodeError) as err:
            _fail(f"cannot read {file or 'stdin'}: {err}")
        if not texts:
            _fail(f"{file or 'stdin'} holds no non-empty lines to classify")
    try:
        result = predict_with_champion(
            texts, Catalog.from_config(cfg).models_dir, batch_size=batch_size, device=cfg.train.device
        )
    except (NoChampionError, RegistryError, DeviceUnavailableError) as err:
        _fail(str(err), code=1)
    except FileNotFoundError as err:  # the registry names a champion whose folder is gone
        _fail(
            f"the champion's model files are missing ({err}); restore models/ from a backup or rerun the pipeline",
            code=1,
        )
    for record in result.records(texts):
        if as_json:
            typer.echo(json.dumps({**record, "model_version": result.model_version}, ensure_ascii=False))
        else:
            typer.echo(f"{record['label']}\t{record['confidence']:.4f}\t{record['text']}")


@app.command("show-config")
def show_config(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None) -> None:
    """Print the resolved config (every default filled in) and its hash."""
    import yaml

    cfg = _load(config, set_)
    typer.echo(yaml.safe_dump(cfg.resolved(), sort_keys=False).rstrip())
    typer.echo(f"# config_hash: {cfg.config_hash}")


@app.command()
def summary(
    run_dir: Annotated[Path | None, typer.Argument(help="A runs/<run_id> folder; default: the latest.")] = None,
) -> None:
    """Print a run's summary.json."""
    if run_dir is None:
        runs = sorted(p for p in Path("runs").glob("*") if (p / "summary.json").exists())
        if not runs:
            _fail("no runs/ with a summary.json here; run `driftloop run` first")
        run_dir = runs[-1]
    path = run_dir / "summary.json"
    if not path.exists():
        _fail(f"{path} does not exist")
    json.dump(json.loads(path.read_text()), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    app()
