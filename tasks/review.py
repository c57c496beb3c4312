"""The review queue: which pool rows a human should label first, and reading their labels back.

A row is worth a reviewer's minute when its label is in doubt or scarce:

- the weak labeler and the end model disagree (the end model generalised, or learned an LF's mistake);
- its LFs conflict (votes for two or more classes);
- its label is uncertain (low calibrated confidence of the weak label, or of the end model where no LF voted);
- its label is a rare class (below ``review.rare_class_share`` of the weak labels): the class the gate, the
  balancer and macro-F1 depend on most, and the one with the fewest gold rows to estimate LF accuracies.

Each reason adds to a row's score; the queue is the top ``review.queue_size`` rows. Reviewed rows come back as a
snapshot with role ``reviewed``: they train as clean labels and join gold dev for LF accuracy estimates.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import ReviewConfig
from driftloop.errors import InputError
from driftloop.spreadsheet import from_safe_csv
from driftloop.tasks.lf import ABSTAIN

# Score of each reason; uncertainty adds up to its weight times (1 - confidence).
REASON_WEIGHTS = {"disagreement": 3.0, "lf_conflict": 2.0, "low_confidence": 2.0, "rare_class": 1.5}


def build_queue(
    pool: pd.DataFrame,
    votes: np.ndarray,
    weak_probs: np.ndarray,
    labels: Sequence[str],
    cfg: ReviewConfig,
    *,
    end_probs: np.ndarray | None = None,
) -> pd.DataFrame:
    """Score every pool row and return the top ``cfg.queue_size`` as the review queue.

    Args:
        pool: the cleaned pool (``text``, optional ``row_id``), in the order of ``votes`` and the probabilities.
        votes: the LF label matrix of the pool (-1 = abstain).
        weak_probs: calibrated weak-label probabilities, NaN rows where every LF abstained.
        end_probs: the end model's probabilities on the pool, when a model exists.

    Returns:
        text, row_id, weak_label/weak_confidence, end_label/end_confidence, reasons, score and an empty
        ``label`` column for the reviewer, best first.
    """
    n, k = len(pool), len(labels)
    if votes.shape[0] != n or weak_probs.shape != (n, k) or (end_probs is not None and end_probs.shape != (n, k)):
        raise ValueError(
            f"pool ({n} rows), LF votes {votes.shape}, weak probabilities {weak_probs.shape} and end-model "
            f"probabilities {None if end_probs is None else end_probs.shape} must describe the same rows"
        )
    names = np.asarray(labels, dtype=object)
    signals = _signals(votes, weak_probs, end_probs, k, cfg.rare_class_share)
    score = signals.score()
    queue = pd.DataFrame(
        {
            "row_id": pool["row_id"].to_numpy() if "row_id" in pool.columns else np.arange(n).astype(str),
            "text": pool["text"].to_numpy(),
            "weak_label": np.where(signals.weak_pred >= 0, names[np.clip(signals.weak_pred, 0, k - 1)], None),
            "weak_confidence": signals.weak_conf,
            "end_label": np.where(signals.end_pred >= 0, names[np.clip(signals.end_pred, 0, k - 1)], None),
            "end_confidence": signals.end_conf,
            "reasons": signals.reasons(),
            "score": score,
        }
    )
    # Stable sort by score: equal scores keep pool order, so the same inputs give the same queue.
    order = np.argsort(-score, kind="stable")[: cfg.queue_size]
    return queue.iloc[order].assign(label="").reset_index(drop=True)


@dataclass(frozen=True)
class _Signals:
    """Per pool row: the weak and end-model predictions (-1 = none) and confidences, and the review reasons."""

    weak_pred: np.ndarray
    weak_conf: np.ndarray
    end_pred: np.ndarray
    end_conf: np.ndarray
    disagreement: np.ndarray
    conflict: np.ndarray
    confidence: np.ndarray
    is_rare: np.ndarray

    def score(self) -> np.ndarray:
        """Each reason's weight where it holds; uncertainty adds its weight times (1 - confidence)."""
        return (
            REASON_WEIGHTS["disagreement"] * self.disagreement
            + REASON_WEIGHTS["lf_conflict"] * self.conflict
            + REASON_WEIGHTS["low_confidence"] * (1.0 - self.confidence)
            + REASON_WEIGHTS["rare_class"] * self.is_rare
        )

    def reasons(self) -> list[str]:
        """The reasons that hold for each row, ";"-joined (low confidence: below 0.5)."""
        return [
            ";".join(
                r
                for r, on in (
                    ("disagreement", self.disagreement[i]),
                    ("lf_conflict", self.conflict[i]),
                    ("low_confidence", self.confidence[i] < 0.5),
                    ("rare_class", self.is_rare[i]),
                )
                if on
            )
            for i in range(len(self.confidence))
        ]


def _signals(
    votes: np.ndarray, weak_probs: np.ndarray, end_probs: np.ndarray | None, k: int, rare_class_share: float
) -> _Signals:
    """The per-row review signals from the LF votes and the weak and end-model probabilities."""
    n = votes.shape[0]
    covered = np.isfinite(weak_probs).all(axis=1)
    weak_pred = np.where(covered, np.nan_to_num(weak_probs).argmax(axis=1), -1)
    weak_conf = np.where(covered, np.nan_to_num(weak_probs).max(axis=1), np.nan)
    end_pred = end_probs.argmax(axis=1) if end_probs is not None else np.full(n, -1)
    end_conf = end_probs.max(axis=1) if end_probs is not None else np.full(n, np.nan)

    voted = votes != ABSTAIN
    distinct = np.array([len(set(row[mask].tolist())) for row, mask in zip(votes, voted, strict=True)])
    conflict = distinct > 1
    disagreement = covered & (end_pred >= 0) & (end_pred != weak_pred)
    # Where no LF voted, the end model's confidence is the only one there is.
    confidence = np.where(covered, weak_conf, np.where(end_pred >= 0, end_conf, 0.0))
    shares = np.bincount(weak_pred[covered], minlength=k) / max(int(covered.sum()), 1)
    rare = shares < rare_class_share
    best_guess = np.where(covered, weak_pred, end_pred)
    is_rare = (best_guess >= 0) & rare[np.clip(best_guess, 0, k - 1)] | (
        (end_pred >= 0) & rare[np.clip(end_pred, 0, k - 1)]
    )
    return _Signals(weak_pred, weak_conf, end_pred, end_conf, disagreement, conflict, confidence, is_rare)


def label_studio_tasks(queue: pd.DataFrame) -> list[dict[str, Any]]:
    """Label Studio import JSON: one task per queued row, the weak label as a pre-annotation to confirm or fix."""
    tasks = []
    for row in queue.itertuples(index=False):
        task: dict[str, Any] = {"data": {"text": row.text, "row_id": str(row.row_id), "reasons": row.reasons}}
        guess = row.weak_label if isinstance(row.weak_label, str) else row.end_label
        if isinstance(guess, str):
            task["predictions"] = [
                {
                    "model_version": "driftloop-weak-label",
                    "result": [
                        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [guess]}}
                    ],
                }
            ]
        tasks.append(task)
    return tasks


def label_studio_config(labels: Sequence[str]) -> str:
    """The labeling interface XML for a Label Studio project that takes :func:`label_studio_tasks`."""
    choices = "".join(f'<Choice value="{name}"/>' for name in labels)
    return f'<View><Text name="text" value="$text"/><Choices name="label" toName="text">{choices}</Choices></View>'


def read_reviewed(path: str | Path, labels: Sequence[str]) -> pd.DataFrame:
    """Reviewed rows (text, label, row_id) from the exported CSV with its ``label`` column filled in, or from a
    Label Studio JSON export. Rows left blank are skipped and exact repeats kept once; an unknown label, a text
    labelled two ways, a malformed file or a non-text ``text`` is an :class:`InputError` naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"review file {path} does not exist; pass the CSV or Label Studio JSON you exported")
    try:
        body = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path}: bytes at offset {err.start} are not UTF-8; save the file as UTF-8 (CSV UTF-8 in a spreadsheet)"
        ) from None
    frame = _label_studio_rows(body, path) if path.suffix.lower() == ".json" else _csv_rows(body, path)
    frame = frame.assign(label=frame["label"].str.strip(), row_id=frame["row_id"].fillna("").astype(str))
    unknown = sorted(set(frame["label"]) - set(labels))
    if unknown:
        raise InputError(f"{path}: labels {unknown[:5]} are not in data.labels {list(labels)}; fix them and re-import")
    if frame.empty:
        raise InputError(f"{path} has no reviewed row (every label is blank); label some rows first")
    frame = frame.drop_duplicates(["text", "label"])
    contradicted = frame.loc[frame["text"].duplicated(keep=False), "text"].drop_duplicates()
    if len(contradicted):
        shown = "; ".join(repr(t[:60]) for t in contradicted[:3])
        raise InputError(
            f"{path}: {len(contradicted)} text(s) carry two different labels ({shown}); keep one label per text"
        )
    return frame.reset_index(drop=True)


def _label_studio_rows(body: str, path: Path) -> pd.DataFrame:
    try:
        tasks = json.loads(body)
    except json.JSONDecodeError as err:
        raise InputError(f"{path} is not valid JSON ({err}); export the project from Label Studio as JSON") from None
    if not isinstance(tasks, list):
        raise InputError(f"{path}: a Label Studio JSON export is a list of tasks, this holds a {type(tasks).__name__}")
    rows = []
    for n, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise InputError(f"{path}: task {n} is not a Label Studio task (an object with 'data'); export it again")
        choice = _last_choice(task)
        if choice is None:
            continue
        text = task["data"].get("text")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}: task {n} has no text (data.text is {text!r}); it cannot be a training row")
        rows.append({"text": text, "label": choice, "row_id": task["data"].get("row_id")})
    return pd.DataFrame(rows, columns=["text", "label", "row_id"]).astype({"label": str})


def _csv_rows(body: str, path: Path) -> pd.DataFrame:
    try:
        frame = from_safe_csv(pd.read_csv(io.StringIO(body), dtype=str, keep_default_na=False))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as err:
        raise InputError(
            f"{path} is not a well-formed CSV ({err}); check the quoting, or export the queue again"
        ) from None
    missing = [c for c in ("text", "label") if c not in frame.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {missing}; fill in the 'label' column of the exported queue")
    frame = frame.assign(row_id=frame["row_id"] if "row_id" in frame.columns else "")
    labelled = frame[frame["label"].str.strip() != ""][["text", "label", "row_id"]]
    blank = labelled.index[labelled["text"].str.strip() == ""]
    if len(blank):
        raise InputError(f"{path}: data row(s) {[int(i) + 1 for i in blank[:5]]} have a label but no text")
    return labelled


def _last_choice(task: dict[str, Any]) -> str | None:
    for annotation in reversed(task.get("annotations") or []):
        if annotation.get("was_cancelled"):
            continue
        for result in annotation.get("result") or []:
            choices = (result.get("value") or {}).get("choices") or []
            if choices:
                return str(choices[0])
    return None
