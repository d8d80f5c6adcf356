"""ONNX export (optimum, torch.onnx fallback) and int8 quantisation presets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import quantize.export as export_mod
from quantize.encode import collate, encode
from quantize.export import check_against_torch, export_onnx, input_names
from quantize.quantization import PRESETS, quantize, settings
from quantize.teacher import load_model
from quantize.tokenizer_train import load_backend_tokenizer, special_ids, special_roles
from quantize_helpers import make_teacher, one_torch_thread, synthetic_sentences

_torch_threads = pytest.fixture(autouse=True)(one_torch_thread)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_teacher(tmp_path_factory.mktemp("t") / "bert", "bert", synthetic_sentences(100, 1))


def _windows(folder: Path):
    tok = load_backend_tokenizer(folder)
    ids = special_ids(tok, "bert", special_roles(folder))
    sents = [t for t, _ in synthetic_sentences(20, 2)]
    return encode(tok, sents, None, None, 32, 8, ids["bos_id"], ids["eos_id"]), ids


def test_optimum_export_matches_torch(teacher: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    facts = export_onnx(teacher, out, 18)
    assert facts["tool"].startswith("optimum") and "fallback_reason" not in facts
    assert input_names(out) == ["input_ids", "attention_mask", "token_type_ids"]
    windows, ids = _windows(teacher)
    assert check_against_torch(load_model(teacher), out, windows, ids["pad_id"]) < 1e-3


def test_torch_fallback_is_used_and_explained(teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("simulated optimum failure")

    monkeypatch.setattr(export_mod, "_optimum", broken)
    out = tmp_path / "model.onnx"
    facts = export_onnx(teacher, out, 18)
    assert facts["tool"].startswith("torch.onnx")
    assert facts["fallback_reason"] == "optimum failed: RuntimeError: simulated optimum failure"
    assert input_names(out) == ["input_ids", "attention_mask"]
    windows, ids = _windows(teacher)
    assert check_against_torch(load_model(teacher), out, windows, ids["pad_id"]) < 1e-3


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_quantize_presets_shrink_and_agree(teacher: Path, tmp_path: Path, preset: str) -> None:
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(teacher, fp32, 18)
    int8 = tmp_path / "int8.onnx"
    facts = quantize(fp32, int8, preset)
    assert facts["weight_type"] == "int8" and facts["reduce_range"] == (preset == "avx2")
    assert int8.stat().st_size < 0.6 * fp32.stat().st_size  # hidden 32: scales weigh a little
    windows, ids = _windows(teacher)
    batch = collate(windows, ids["pad_id"])
    feed = {"input_ids": batch["input_ids"].numpy(), "attention_mask": batch["attention_mask"].numpy()}
    feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
    a = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    b = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    mask = feed["attention_mask"].astype(bool)
    assert np.abs(a - b)[mask].max() < 0.5  # a random tiny model: logits stay close


def test_settings_overrides() -> None:
    assert settings("arm64", "uint8", False) == {"weight_type": "uint8", "per_channel": False, "reduce_range": False}
    assert settings("avx2")["per_channel"] is True


def test_fused_graph_option_quantises(teacher: Path, tmp_path: Path) -> None:
    """The opt-in ORT transformer optimiser path (slower here, but it must work when asked)."""
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(teacher, fp32, 18)
    facts = quantize(fp32, tmp_path / "fused.onnx", "avx512_vnni", optimize="transformer", heads=2, hidden=32)
    assert facts["optimized_graph"] is True
    ort.InferenceSession(str(tmp_path / "fused.onnx"), providers=["CPUExecutionProvider"])
