"""The ``driftloop`` command line."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated, Literal

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
    typer.echo(summary.run_dir)


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
    from driftloop.tasks.landing import ingest_paths

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
        if o.warning:
            typer.echo(f"{'':17s} warning: {o.warning}")
    if any(o.status in ("quarantined", "failed") for o in outcomes):
        raise typer.Exit(1)


review_app = typer.Typer(help="The human review loop: export a queue of rows to label, import the labels back.")
app.add_typer(review_app, name="review")


@review_app.command("export")
def review_export(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Run to export from; default: the latest successful run.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder; default: runs/<run_id>/review/.")] = None,
    no_model: Annotated[
        bool, typer.Option("--no-model", help="Skip the champion's predictions (no disagreement reasons).")
    ] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
) -> None:
    """Write the rows whose labels would help most (model/LF disagreements, LF conflicts, low confidence, rare
    classes) as a CSV to fill in and a Label Studio import; print their paths."""
    from driftloop.cli.review import export_review
    from driftloop.errors import InputError

    cfg = _load(config, set_)
    try:
        export = export_review(cfg, run_id, out, use_model=not no_model)
    except InputError as err:
        _fail(str(err))
    for warning in export.warnings:
        typer.echo(f"warning: {warning}", err=True)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(export.reasons.items())) or "none"
    model = f"champion {export.end_model}" if export.end_model else "no end model"
    typer.echo(f"{export.rows} rows from run {export.run_id} ({model}; reasons: {reasons})")
    typer.echo(f"csv (fill in 'label', then `driftloop review import` it): {export.csv}")
    typer.echo(f"label studio tasks: {export.label_studio_tasks}")
    typer.echo(f"label studio labeling config: {export.label_studio_config}")


@review_app.command("import")
def review_import(
    file: Annotated[
        Path, typer.Argument(help="The exported queue CSV with its label column filled, or a Label Studio JSON export.")
    ],
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
) -> None:
    """Take reviewed labels back as a new snapshot with role 'reviewed' (clean training labels, LF estimates).

    The file is checked first (labels, texts labelled two ways, row ids, the reviewed-file contract); a refused file
    leaves nothing behind.
    """
    from driftloop.cli.review import import_reviewed
    from driftloop.errors import InputError

    cfg = _load(config, set_)
    try:
        snap, new = import_reviewed(cfg, file)
    except InputError as err:
        _fail(str(err))
    status = "ingested" if new else "already_ingested"
    typer.echo(f"{status:17s} {file}: snapshot {snap.snapshot_id}, {snap.rows} rows, {snap.role}")


@app.command("demo-data")
def demo_data(
    release: Annotated[
        int | None, typer.Option(help="Copy later batch N into data/incoming/ (simulates new data landing).")
    ] = None,
    dataset: Annotated[
        Literal["sms_spam", "bbc_news"],
        typer.Option(help="sms_spam: the demo; bbc_news: the second dataset (use it with -c configs/bbc_news.yaml)."),
    ] = "sms_spam",
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
) -> None:
    """Split a bundled corpus into gold dev/test and an unlabelled pool (SMS spam: plus later batches)."""
    from driftloop.atomic import atomic_path
    from driftloop.catalog import Catalog
    from driftloop.tasks.demo_data import read_sms_corpus, split_demo

    cfg = _load(config, set_)
    catalog = Catalog.from_config(cfg)
    if dataset == "bbc_news" and release is not None:
        _fail("--release applies to the SMS demo's later batches; bbc_news has none")
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
    if dataset == "bbc_news":
        from driftloop.tasks.news_data import read_bbc_corpus, split_news

        prefix, parts = "bbc", split_news(read_bbc_corpus(), seed=cfg.project.seed)
        del parts["pool_labels"]  # the pool's gold labels: the pipeline never sees them
    else:
        prefix, parts = "sms", split_demo(read_sms_corpus(), cfg.demo, seed=cfg.project.seed)
    for name, frame in parts.items():
        folder = batches_dir if name.startswith("batch_") else catalog.incoming_dir
        target = folder / f"{prefix}_{name}.csv"
        with atomic_path(target) as tmp:
            frame.to_csv(tmp, index=False)
        typer.echo(f"{len(frame):5d} rows -> {target}")


@app.command("drift-check")
def drift_check_cmd(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None) -> None:
    """Compare new data with the champion's training data; on drift emit the retrain event (or open a review).

    Writes runs/drift/<stamp>.json with the verdict, every signal's test and the explanations.
    """
    _load(config, set_)
    from driftloop.flows.drift import drift_check

    try:
        result = drift_check(config_path=str(config), overrides=list(set_ or []))
    except Exception as err:
        _fail(f"{type(err).__name__}: {err}", code=1)
    typer.echo(json.dumps({k: v for k, v in result.items()}, indent=2, default=str))


@app.command()
def rollback(
    version: Annotated[
        str | None, typer.Argument(help="Version to restore; default: the champion before the current one.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, for the promotion log.")] = "manual rollback",
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
) -> None:
    """Restore an earlier champion atomically; the change goes to models/promotions.jsonl (append-only)."""
    import getpass
    import socket

    from driftloop.catalog import Catalog
    from driftloop.tasks.registry import Registry

    cfg = _load(config, set_)
    registry = Registry(Catalog.from_config(cfg).models_dir)
    actor = f"{getpass.getuser()}@{socket.gethostname()} (driftloop rollback)"
    try:
        decision = registry.rollback(version, reason=reason, actor=actor)
    except RegistryError as err:
        _fail(str(err), code=1)
    typer.echo(f"champion: {decision.champion_before} -> {decision.champion_after} ({decision.reason})")


@app.command()
def serve(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None) -> None:
    """Serve the watcher, the one retrain gate and the scheduled drift check (needs PREFECT_API_URL)."""
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


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Project folder to write into; default: here.")] = Path("."),
) -> None:
    """Copy the demo and second-dataset configs and their LF modules (packaged with driftloop) into FOLDER/configs/."""
    from driftloop.errors import InputError
    from driftloop.packaged import init_project

    try:
        written = init_project(folder)
    except InputError as err:
        _fail(str(err), code=1)
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"next: cd {folder} && driftloop demo-data && driftloop run")
    typer.echo(
        "  or, the second dataset: driftloop demo-data --dataset bbc_news && driftloop run -c configs/bbc_news.yaml"
    )


@app.command("show-config")
def show_config(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None) -> None:
    """Print the resolved config (every default filled in) and its hash."""
    import yaml

    cfg = _load(config, set_)
    typer.echo(yaml.safe_dump(cfg.resolved(), sort_keys=False).rstrip())
    typer.echo(f"# config_hash: {cfg.config_hash}")


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to create (must not exist).")],
    run_id: Annotated[str | None, typer.Argument(help="Run id; default: the latest run that reached training.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
) -> None:
    """Export a run's training set and gold dev/test sets as a Hugging Face dataset (datasets.load_from_disk)."""
    from driftloop.cli.export import export_dataset
    from driftloop.errors import InputError

    cfg = _load(config, set_)
    try:
        typer.echo(export_dataset(cfg, out, run_id))
    except (InputError, FileExistsError) as err:
        _fail(str(err))


@app.command()
def summary(
    run_dir: Annotated[
        Path | None, typer.Argument(help="A runs/<run_id> folder; default: the latest under project.root.")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
) -> None:
    """Print a run's summary.json (checked against the run-summary schema)."""
    from driftloop.summary import RunSummary, SummaryError

    if run_dir is None:
        from driftloop.catalog import Catalog

        runs_dir = Catalog.from_config(_load(config, set_)).runs_dir
        runs = sorted(p for p in runs_dir.glob("*") if (p / "summary.json").exists())
        if not runs:
            _fail(f"no run with a summary.json under {runs_dir}; run `driftloop run` first")
        run_dir = runs[-1]
    try:
        summary = RunSummary.read(run_dir / "summary.json")
    except SummaryError as err:
        _fail(f"{err}; `driftloop report` skips it")
    sys.stdout.write(summary.model_dump_json(indent=2, exclude_none=True) + "\n")


@app.command()
def report(
    run_id: Annotated[
        str | None, typer.Argument(help="A run id (or runs/<run_id> folder); default: the latest.")
    ] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the report in the default browser.")] = False,
    serve_: Annotated[bool, typer.Option("--serve", help="Serve runs/ on 127.0.0.1 until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for --serve.")] = 8765,
    config: ConfigOpt = DEFAULT_CONFIG,
    set_: SetOpt = None,
) -> None:
    """Render a run's HTML report and the runs index again, and print the report's path.

    Reports are self-contained files: open them straight from disk, or --serve runs/ on localhost.
    """
    import webbrowser

    from driftloop.catalog import Catalog
    from driftloop.errors import InputError
    from driftloop.flows.report import make_server, write_index, write_run_report

    cfg = _load(config, set_)
    catalog = Catalog.from_config(cfg)
    if run_id is None:
        runs = sorted(p.parent.name for p in catalog.runs_dir.glob("*/summary.json"))
        if not runs:
            _fail(f"no run with a summary.json under {catalog.runs_dir}; run `driftloop run` first")
        run_id = runs[-1]
    run_id = Path(run_id).name  # accept runs/<run_id> as well as the bare id
    try:
        path = write_run_report(catalog, run_id, cfg)
        index = write_index(catalog)
    except InputError as err:
        _fail(str(err))
    typer.echo(str(path))
    if serve_:
        server = make_server(catalog.runs_dir, port)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        url = f"{base}/{run_id}/report.html"
        typer.echo(f"serving {catalog.runs_dir} at {url} (index: {base}/index.html); Ctrl-C stops")
        if open_:
            webbrowser.open(url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    elif open_:
        webbrowser.open(path.resolve().as_uri())
        typer.echo(f"index: {index}")


if __name__ == "__main__":
    app()
