"""The model registry: versions, their metrics and lineage, and champion/challenger promotion.

Why a JSON file and not MLflow: driftloop's registry is one file, ``models/registry.json``, next
to the model folders it describes. It needs no tracking server or database to install, start,
secure or back up, so a laptop, a CI job and a cron-driven Prefect worker all see the same
registry by reading a file. Every change is made under an exclusive ``flock`` and written to a
temp file that is renamed over the old one, so concurrent trainings cannot interleave writes or
lose a version, and a reader or a crash never sees half a file. The file is small, sorted,
indented JSON: a promotion shows up as a readable diff, the history can be committed to git
next to the code and config that produced it, and rolling back is editing one field or
reverting a commit. MLflow's registry adds a UI and multi-user access control that a
single-team pipeline does not need, at the cost of a service to run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from driftloop.atomic import file_lock, write_json
from driftloop.config import PromotionConfig
from driftloop.errors import RegistryError
from driftloop.tasks.champion_check import forgetting

log = logging.getLogger("driftloop.registry")

Status = Literal["champion", "challenger", "archived"]
REGISTRY_FILE = "registry.json"
LOCK_FILE = ".registry.lock"
# Append-only: one JSON line per champion change (who or what, why), never rewritten.
PROMOTION_LOG = "promotions.jsonl"
AUTO_ACTOR = "pipeline (promotion rules)"
SCHEMA_VERSION = 1
_EPS = 1e-12  # float slack so that "equal to the margin" counts as meeting it


@dataclass
class ModelVersion:
    """One registered model."""

    version: str
    path: str
    created_at: str
    status: Status
    metrics: dict[str, Any]
    data_snapshots: dict[str, list[str]]
    config_hash: str
    method: str | None = None
    base_model: str | None = None
    promoted_at: str | None = None
    archived_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def macro_f1(self) -> float:
        return float(self.metrics["macro_f1"])


@dataclass
class PromotionDecision:
    """Whether a challenger became champion, and why."""

    promoted: bool
    challenger: str
    champion_before: str | None
    champion_after: str | None
    reason: str
    decided_at: str

    def summary(self) -> dict[str, Any]:
        """The ``promotion.*`` keys of the run summary."""
        return {
            "promoted": self.promoted,
            "challenger": self.challenger,
            "champion_before": self.champion_before,
            "champion_after": self.champion_after,
            "reason": self.reason,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def promotion_metrics(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """What the registry keeps of an evaluation: macro-F1, accuracy, per-class F1 (+ ECE when there)."""
    out = {
        "macro_f1": float(evaluation["macro_f1"]),
        "accuracy": float(evaluation["accuracy"]),
        "per_class_f1": {c: float(m["f1"]) for c, m in evaluation["per_class"].items()},
    }
    if evaluation.get("ece") is not None:
        out["ece"] = float(evaluation["ece"])
    if evaluation.get("label_model_accuracy") is not None:
        out["label_model_accuracy"] = float(evaluation["label_model_accuracy"])
    return out


def stale_comparison(metrics: Mapping[str, Any], champion: str | None) -> str:
    """Why a challenger's comparison no longer holds (empty when it does): compare-and-swap for promotion.

    The pipeline scores the challenger against the champion of the moment and records its version in
    ``compared_with`` (None when there was none). If another run or a rollback changed the champion since, that
    comparison is about a model that no longer serves, and promoting on it could replace a better one.
    """
    if "compared_with" not in metrics:  # registered without the pipeline's comparison: the stored metrics decide
        return ""
    compared = metrics["compared_with"]
    if compared == champion:
        return ""
    return (
        f"not promoted: it was compared with {compared or 'no champion'}, but the champion is now {champion}; "
        "rerun the pipeline (or `driftloop rollback`) to compare it with the current champion"
    )


def gold_only_note(metrics: Mapping[str, Any]) -> str:
    """A note for the decision when the challenger does not beat the gold-only baseline (it may still be promoted
    over a worse champion); empty when it does or no baseline was scored."""
    baseline = metrics.get("gold_only_macro_f1")
    if baseline is None or float(metrics["macro_f1"]) > float(baseline):
        return ""
    return (
        f" (note: it does not beat the gold-only baseline, a model fine-tuned on the gold dev rows alone: "
        f"macro-F1 {float(metrics['macro_f1']):.4f} <= {float(baseline):.4f})"
    )


def decide(
    challenger: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    cfg: PromotionConfig,
    champion_version: str | None = None,
) -> tuple[bool, str]:
    """Apply the promotion rules to two metric dicts (``macro_f1``, ``per_class_f1``); return (promote, reason)."""
    macro = float(challenger["macro_f1"])
    if cfg.min_macro_f1 is not None and macro + _EPS < cfg.min_macro_f1:
        return False, f"macro-F1 {macro:.4f} is below the floor promotion.min_macro_f1={cfg.min_macro_f1:.4f}"
    if champion is None:
        floor = "" if cfg.min_macro_f1 is None else f" and clears the floor {cfg.min_macro_f1:.4f}"
        return True, f"first model: no champion yet; macro-F1 {macro:.4f}{floor}"
    name = champion_version or "champion"
    # The pipeline re-scores the champion on today's gold test sets (driftloop.tasks.champion_check): compare
    # on the same rows rather than with what the champion scored on the sets of its own day.
    measured = challenger.get("champion_now")
    if measured is not None:
        champion = {**champion, **measured}
    needed = float(champion["macro_f1"]) + cfg.margin
    if macro + _EPS < needed:
        return False, (f"macro-F1 {macro:.4f} < {name} {float(champion['macro_f1']):.4f} + margin {cfg.margin:.4f}")
    # Promotion by evidence (driftloop.tasks.significance): the pipeline records a paired test against the
    # champion in the challenger's metrics; without one, a tie (an identical retrain) is never enough.
    significance = challenger.get("significance") if cfg.test != "none" else None
    if significance is not None and not significance.get("significant", False):
        return False, f"not better than {name} beyond noise: p = {float(significance['p_value']):.4f} >= " + (
            f"promotion.significance_level={cfg.significance_level} ({significance.get('test')} test)"
        )
    if significance is None and macro <= float(champion["macro_f1"]) + _EPS:
        return False, f"macro-F1 {macro:.4f} only ties {name}: an identical retrain is never promoted"
    ours = challenger.get("per_class_f1", {})
    drops = []
    for label, theirs in sorted(champion.get("per_class_f1", {}).items()):
        drop = float(theirs) - float(ours.get(label, 0.0))
        if drop > cfg.per_class_tolerance + _EPS:
            drops.append(f"{label!r} {float(theirs):.4f} -> {float(ours.get(label, 0.0)):.4f}")
    if drops:
        return False, (
            f"class F1 regresses by more than promotion.per_class_tolerance={cfg.per_class_tolerance:.4f} "
            f"versus {name}: {', '.join(drops)}"
        )
    forgotten = forgetting(challenger.get("test_sets", {}), champion.get("test_sets", {}), cfg.per_class_tolerance)
    if forgotten:
        return False, (
            f"forgets what {name} handled: on a gold test set a class F1 drops by more than "
            f"promotion.per_class_tolerance={cfg.per_class_tolerance:.4f}: {', '.join(forgotten)}"
        )
    return True, (
        f"macro-F1 {macro:.4f} >= {name} {float(champion['macro_f1']):.4f} + margin {cfg.margin:.4f}, "
        f"no class F1 drops by more than {cfg.per_class_tolerance:.4f}"
    )


class Registry:
    """The file registry under ``models_dir``; every change happens under one lock and one atomic write."""

    def __init__(self, models_dir: str | Path):
        self.models_dir = Path(models_dir)
        self.path = self.models_dir / REGISTRY_FILE
        self.lock_path = self.models_dir / LOCK_FILE
        self.log_path = self.models_dir / PROMOTION_LOG
        self._pending_log: list[dict[str, Any]] = []

    # ---- reading (lock-free: writes are atomic renames, so a read sees one whole version) -------
    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"schema": SCHEMA_VERSION, "champion": None, "versions": [], "decisions": []}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise RegistryError(f"{self.path} is not valid JSON ({err}); restore it from git or a backup") from None
        if data.get("schema") != SCHEMA_VERSION:
            raise RegistryError(f"{self.path} has schema {data.get('schema')!r}; this code reads {SCHEMA_VERSION}")
        return data

    def versions(self) -> list[ModelVersion]:
        return [ModelVersion(**v) for v in self._read()["versions"]]

    def get(self, version: str) -> ModelVersion:
        for v in self.versions():
            if v.version == version:
                return v
        raise RegistryError(f"model version {version!r} is not registered in {self.path}")

    def champion(self) -> ModelVersion | None:
        data = self._read()
        name = data["champion"]
        return None if name is None else next(ModelVersion(**v) for v in data["versions"] if v["version"] == name)

    def decisions(self) -> list[dict[str, Any]]:
        return list(self._read()["decisions"])

    def resolve_path(self, version: ModelVersion) -> Path:
        """The model folder of ``version`` (stored relative to the models folder when inside it)."""
        path = Path(version.path)
        return path if path.is_absolute() else self.models_dir / path

    # ---- writing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write under the lock; the file is replaced only if the block succeeds."""
        with file_lock(self.lock_path):
            data = self._read()
            self._pending_log = []
            yield data
            data["versions"].sort(key=lambda v: (v["created_at"], v["version"]))
            # Write-ahead, under the lock: the log entries first, tagged with this transaction, then the registry,
            # which names the transactions it applied. A failure between the two leaves an entry no reader counts
            # (the registry never took it); a failed append leaves the registry unchanged and raises.
            if self._pending_log:
                txn = uuid.uuid4().hex
                self._append_log([{**entry, "txn": txn} for entry in self._pending_log])
                data["log_txns"] = [*data.get("log_txns", []), txn]
            write_json(self.path, data)
            self._pending_log = []

    def _relative(self, path: str | Path) -> str:
        path = Path(path)
        try:
            return str(path.resolve().relative_to(self.models_dir.resolve()))
        except ValueError:
            return str(path)

    def _add(
        self,
        data: dict[str, Any],
        version: str,
        path: str | Path,
        metrics: Mapping[str, Any],
        data_snapshots: Mapping[str, Sequence[str]] | None,
        config_hash: str,
        method: str | None,
        base_model: str | None,
        extra: Mapping[str, Any] | None,
    ) -> ModelVersion:
        if any(v["version"] == version for v in data["versions"]):
            raise RegistryError(f"model version {version!r} is already registered; versions are immutable")
        if "macro_f1" not in metrics or "per_class_f1" not in metrics:
            raise RegistryError("metrics need macro_f1 and per_class_f1; build them with promotion_metrics(evaluation)")
        entry = ModelVersion(
            version=version,
            path=self._relative(path),
            created_at=_now(),
            status="challenger",
            metrics=dict(metrics),
            data_snapshots={k: list(v) for k, v in (data_snapshots or {}).items()},
            config_hash=config_hash,
            method=method,
            base_model=base_model,
            extra=dict(extra or {}),
        )
        data["versions"].append(asdict(entry))
        return entry

    def register(
        self,
        version: str,
        path: str | Path,
        metrics: Mapping[str, Any],
        *,
        data_snapshots: Mapping[str, Sequence[str]] | None = None,
        config_hash: str = "",
        method: str | None = None,
        base_model: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Add a version as a challenger (metrics: see :func:`promotion_metrics`)."""
        with self._transaction() as data:
            return self._add(data, version, path, metrics, data_snapshots, config_hash, method, base_model, extra)

    def _append_log(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        self.models_dir.mkdir(parents=True, exist_ok=True)
        blob = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries).encode("utf-8")
        fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A torn last line (a crash mid-append): end it, so this entry is never glued onto it.
                log.warning("%s ends in a torn line (a crash mid-append); it is kept apart and skipped", self.log_path)
                blob = b"\n" + blob
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _log_change(self, kind: str, version: str, before: str | None, actor: str, reason: str, at: str) -> None:
        self._pending_log.append(
            {"at": at, "kind": kind, "champion": version, "previous": before, "actor": actor, "reason": reason}
        )

    def promotion_log(self) -> list[dict[str, Any]]:
        """Every champion change, oldest first (a torn last line from a crash is skipped)."""
        if not self.log_path.exists():
            return []
        applied = set(self._read().get("log_txns", []))
        out = []
        for number, line in enumerate(self.log_path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s line %d is torn (a crash mid-append) and is skipped", self.log_path, number)
                continue
            if "txn" in entry and entry["txn"] not in applied:
                log.warning("%s line %d was never applied to the registry (a failed write) and is skipped",
                            self.log_path, number)  # fmt: skip
                continue
            out.append(entry)
        return out

    def _promote(
        self, data: dict[str, Any], version: str, cfg: PromotionConfig, actor: str = AUTO_ACTOR
    ) -> PromotionDecision:
        by_name = {v["version"]: v for v in data["versions"]}
        if version not in by_name:
            raise RegistryError(f"model version {version!r} is not registered in {self.path}")
        before = data["champion"]
        now = _now()
        if before == version:
            promoted, reason = False, f"{version} is already the champion"
        else:
            champion_metrics = by_name[before]["metrics"] if before else None
            stale = stale_comparison(by_name[version]["metrics"], before)
            if stale:
                promoted, reason = False, stale
            else:
                promoted, reason = decide(by_name[version]["metrics"], champion_metrics, cfg, before)
            reason += gold_only_note(by_name[version]["metrics"])
            ours, theirs = (by_name[v]["data_snapshots"].get("test") if v else None for v in (version, before))
            if ours and theirs and sorted(ours) != sorted(theirs):
                # Scores on different test sets are not strictly comparable: say so in the audit trail.
                reason += f" (note: {before} was scored on test snapshots {theirs}, {version} on {ours})"
        if promoted:
            if before:
                by_name[before].update(status="archived", archived_at=now)
            by_name[version].update(status="champion", promoted_at=now)
            data["champion"] = version
            self._log_change("promote", version, before, actor, reason, now)
        decision = PromotionDecision(
            promoted=promoted,
            challenger=version,
            champion_before=before,
            champion_after=data["champion"],
            reason=reason,
            decided_at=now,
        )
        data["decisions"].append(asdict(decision))
        return decision

    def promote(
        self, version: str, cfg: PromotionConfig | None = None, *, actor: str = AUTO_ACTOR
    ) -> PromotionDecision:
        """Make ``version`` champion if it beats the current one under ``cfg``; record the decision either way."""
        with self._transaction() as data:
            return self._promote(data, version, cfg or PromotionConfig(), actor)

    def register_and_promote(
        self,
        version: str,
        path: str | Path,
        metrics: Mapping[str, Any],
        cfg: PromotionConfig | None = None,
        *,
        data_snapshots: Mapping[str, Sequence[str]] | None = None,
        config_hash: str = "",
        method: str | None = None,
        base_model: str | None = None,
        extra: Mapping[str, Any] | None = None,
        actor: str = AUTO_ACTOR,
    ) -> PromotionDecision:
        """Register and decide in one locked transaction, so no other promotion can slip in between."""
        with self._transaction() as data:
            self._add(data, version, path, metrics, data_snapshots, config_hash, method, base_model, extra)
            return self._promote(data, version, cfg or PromotionConfig(), actor)

    def set_champion(self, version: str, reason: str, *, actor: str = "manual") -> PromotionDecision:
        """Force ``version`` to champion, bypassing the rules; who and why go to the promotion log."""
        with self._transaction() as data:
            return self._force(data, version, f"manual: {reason}", actor, "manual")

    def rollback(
        self, version: str | None = None, *, reason: str = "rollback", actor: str = "manual"
    ) -> PromotionDecision:
        """Make an earlier version champion again, atomically; default: the champion before the current one.

        The target's model folder must still exist; the change is logged like any promotion.
        """
        with self._transaction() as data:
            current = data["champion"]
            target = version or self._previous_champion(data, current)
            if target == current:
                raise RegistryError(f"{target} is already the champion; name another version to roll back to")
            by_name = {v["version"]: v for v in data["versions"]}
            if target not in by_name:
                raise RegistryError(
                    f"model version {target!r} is not registered in {self.path}; "
                    f"registered: {sorted(by_name)[-5:]} (latest five)"
                )
            folder = self.resolve_path(ModelVersion(**by_name[target]))
            if not folder.is_dir():
                raise RegistryError(
                    f"cannot roll back to {target}: its model folder {folder} is gone; "
                    "restore it or pick another version"
                )
            return self._force(data, target, f"rollback from {current}: {reason}", actor, "rollback")

    def _previous_champion(self, data: dict[str, Any], current: str | None) -> str:
        if current is None:
            raise RegistryError("no champion yet, so nothing to roll back; run the pipeline until a model is promoted")
        for entry in reversed(self.promotion_log()):
            if entry.get("champion") == current and entry.get("previous") not in (None, current):
                return entry["previous"]
        for decision in reversed(data["decisions"]):  # registries older than the promotion log
            if decision["champion_after"] == current and decision["champion_before"] not in (None, current):
                return decision["champion_before"]
        raise RegistryError(
            f"{current} has no earlier champion to roll back to; name a version: driftloop rollback VERSION"
        )

    def _force(self, data: dict[str, Any], version: str, reason: str, actor: str, kind: str) -> PromotionDecision:
        by_name = {v["version"]: v for v in data["versions"]}
        if version not in by_name:
            raise RegistryError(f"model version {version!r} is not registered in {self.path}")
        before, now = data["champion"], _now()
        if before and before != version:
            by_name[before].update(status="archived", archived_at=now)
        by_name[version].update(status="champion", promoted_at=now, archived_at=None)
        data["champion"] = version
        decision = PromotionDecision(
            promoted=before != version,
            challenger=version,
            champion_before=before,
            champion_after=version,
            reason=reason,
            decided_at=now,
        )
        data["decisions"].append(asdict(decision))
        if before != version:
            self._log_change(kind, version, before, actor, reason, now)
        return decision
