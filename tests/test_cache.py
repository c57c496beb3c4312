"""The one cache: keys follow inputs and code, entries are all-or-nothing, artifacts round-trip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.cache import code_fingerprint
from driftloop.catalog import ARTIFACTS, Catalog
from driftloop.errors import DriftloopError

REPO = Path(__file__).resolve().parents[1]


def _frame(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"row_id": [f"s:{i}" for i in range(n)], "text": [f"text {i}" for i in range(n)]})


def test_cached_computes_once_then_hits(tmp_path):
    catalog = Catalog(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"clean.frame": _frame(), "clean.report": {"rows_in": 3, "rows_out": 3, "dropped": {}}}

    first = catalog.cached("clean", ["pool", "k1"], compute, code="driftloop.tasks.clean")
    second = catalog.cached("clean", ["pool", "k1"], compute, code="driftloop.tasks.clean")
    assert (first.hit, second.hit, len(calls)) == (False, True, 1)
    assert first.key == second.key
    assert catalog.read_artifact("clean.report", first.key)["rows_out"] == 3
    assert catalog.artifact_rows("clean.frame", first.key) == 3
    other = catalog.cached("clean", ["pool", "k2"], compute, code="driftloop.tasks.clean")
    assert not other.hit and other.key != first.key and len(calls) == 2


def test_an_entry_without_its_done_marker_is_a_miss(tmp_path):
    """A crash between writing the outputs and the marker must not leave a corrupt hit behind."""
    catalog = Catalog(tmp_path)
    entry = catalog.cached("balance", ["x"], lambda: {"balance.frame": _frame()}, code="driftloop.tasks.balance")
    (catalog.derived_dir / "balance" / f"{entry.key}.done").unlink()
    again = catalog.cached("balance", ["x"], lambda: {"balance.frame": _frame(5)}, code="driftloop.tasks.balance")
    assert not again.hit and catalog.artifact_rows("balance.frame", again.key) == 5


def test_a_step_may_only_write_its_own_declared_artifacts(tmp_path):
    catalog = Catalog(tmp_path)
    with pytest.raises(ValueError, match="belongs to another step"):
        catalog.cached("clean", ["x"], lambda: {"balance.frame": _frame()}, code="driftloop.tasks.clean")
    with pytest.raises(ValueError, match="declare it in driftloop.catalog.ARTIFACTS"):
        catalog.artifact_path("clean.nonsense", "k")


def test_a_missing_artifact_says_how_to_recover(tmp_path):
    with pytest.raises(DriftloopError, match="rebuilt on the next run"):
        Catalog(tmp_path).read_artifact("clean.frame", "0123456789abcdef")


def test_every_format_round_trips(tmp_path):
    catalog = Catalog(tmp_path)
    arrays = {"mu": np.arange(6.0).reshape(3, 2), "p": np.array([0.25, 0.75])}
    catalog.write_artifact("weak_label.labeler", "k", arrays)
    back = catalog.read_artifact("weak_label.labeler", "k")
    assert np.array_equal(back["mu"], arrays["mu"]) and np.array_equal(back["p"], arrays["p"])
    samples = pd.DataFrame({"verdict": ["accepted"], "candidate": [""]})
    catalog.write_artifact("augment.samples", "k", samples)
    assert catalog.read_artifact("augment.samples", "k").equals(samples)  # empty strings stay strings
    assert {a.format for a in ARTIFACTS.values()} == {"parquet", "json", "csv", "npz"}


def test_fingerprint_follows_the_import_closure_and_extra_files(tmp_path):
    lf_file = tmp_path / "lfs.py"
    lf_file.write_text("LFS = []\n")
    before = code_fingerprint("driftloop.tasks.weak_label", files=[lf_file])
    assert before == code_fingerprint("driftloop.tasks.weak_label", files=[lf_file])
    lf_file.write_text("LFS = []  # edited\n")
    assert code_fingerprint("driftloop.tasks.weak_label", files=[lf_file]) != before
    assert code_fingerprint("driftloop.tasks.clean") != code_fingerprint("driftloop.tasks.balance")


def test_label_model_round_trips_through_arrays_without_pickle():
    from snorkel.labeling.model import LabelModel

    from driftloop.tasks.aggregate import label_model_arrays, label_model_from_arrays

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 300)
    L = np.stack([np.where(rng.random(300) < 0.8, truth, 1 - truth) for _ in range(4)], axis=1)
    L[rng.random(L.shape) < 0.3] = -1
    model = LabelModel(cardinality=2, verbose=False)
    model.fit(L, n_epochs=50, seed=0, progress_bar=False)
    restored = label_model_from_arrays(label_model_arrays(model))
    assert np.allclose(restored.predict_proba(L), model.predict_proba(L))
    assert np.allclose(restored.get_weights(), model.get_weights())


_CACHE_PROBE = textwrap.dedent(
    """
    import json, sys
    import pandas as pd
    from driftloop.catalog import Catalog
    entry = Catalog(sys.argv[1]).cached(
        "clean", ["pool"], lambda: {"clean.frame": pd.DataFrame({"text": ["a"]})}, code="driftloop.tasks.clean"
    )
    print(json.dumps({"key": entry.key, "hit": entry.hit, "module": __import__("driftloop.tasks.clean").__file__}))
    """
)


def test_editing_a_step_module_invalidates_its_cache(tmp_path):
    """A copy of the package laid out as installed; editing its tasks/clean.py makes the next run miss."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "driftloop", site / "driftloop", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("tasks", "flows"):
        shutil.copytree(REPO / folder, site / "driftloop" / folder, ignore=shutil.ignore_patterns("__pycache__"))
    probe = tmp_path / "probe.py"
    probe.write_text(_CACHE_PROBE)
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run() -> dict:
        out = subprocess.run(
            [sys.executable, str(probe), str(tmp_path / "project")], env=env, capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["module"].startswith(str(site))  # the copy, not the repository, was imported
    assert (first["hit"], second["hit"], first["key"]) == (False, True, second["key"])
    clean_py = site / "driftloop" / "tasks" / "clean.py"
    clean_py.write_text(clean_py.read_text() + "\n# an edit that could change the output\n")
    third = run()
    assert not third["hit"] and third["key"] != first["key"]
