"""PyTorch student → fp32 ONNX.

Why optimum first: its token-classification export knows each architecture's inputs and
dynamic axes and is what users of transformers expect.  ``torch.onnx.export`` (TorchScript
path) is the fallback, used only when optimum is missing or fails, and the reason is kept for
the manifest.  Either way the result is checked against PyTorch on a few real windows, so a
silently wrong graph never reaches quantisation.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from .encode import Window, collate
from .errors import BuildError


def export_onnx(model_dir: Path, output: Path, opset: int, exporter: str = "optimum") -> dict[str, Any]:
    """Write ``output`` (model.onnx) from an HF folder; returns facts for the manifest."""
    from .featured import feature_spec_of

    output.parent.mkdir(parents=True, exist_ok=True)
    reason = "recipe asks for torch.onnx" if exporter == "torch" else ""
    from .convnet import is_conv_folder

    if is_conv_folder(model_dir):
        exporter, reason = "torch", "optimum exports transformers architectures only, not edge-finer-cnn"
    elif feature_spec_of(model_dir) is not None:
        # optimum's exporter knows each architecture's standard inputs only
        exporter, reason = "torch", "optimum has no export config for the word_features input"
    if exporter == "optimum":
        try:
            return _optimum(model_dir, output, opset)
        except Exception as exc:  # optimum/transformers raise many kinds; the fallback handles all
            reason = f"optimum failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    facts = _torch(model_dir, output, opset)
    facts["fallback_reason"] = reason
    return facts


def _optimum(model_dir: Path, output: Path, opset: int) -> dict[str, Any]:
    import optimum
    from optimum.exporters.onnx import main_export

    tmp = Path(tempfile.mkdtemp(prefix="onnx-", dir=output.parent))
    try:
        with warnings.catch_warnings(), _quiet_loggers("transformers", "optimum"):
            warnings.simplefilter("ignore")
            main_export(str(model_dir), output=str(tmp), task="token-classification", opset=opset,
                        device="cpu", local_files_only=True, do_validation=False)
        shutil.move(str(tmp / "model.onnx"), output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"tool": f"optimum {getattr(optimum, '__version__', _version('optimum'))}", "opset": opset}


def _torch(model_dir: Path, output: Path, opset: int) -> dict[str, Any]:
    from edge_finer.features import INPUT_NAME as FEATURES_INPUT

    from .featured import FeaturedTokenClassifier
    from .teacher import load_model

    model = load_model(model_dir)

    class Logits(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    word_features: torch.Tensor | None = None) -> torch.Tensor:
            kwargs = {} if word_features is None else {"word_features": word_features}
            return self.m(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits

    dummy = torch.ones((1, 8), dtype=torch.long)
    axes = {0: "batch_size", 1: "sequence_length"}
    names = ["input_ids", "attention_mask"]
    args: tuple[torch.Tensor, ...] = (dummy, dummy)
    dynamic = {"input_ids": axes, "attention_mask": axes, "logits": axes}
    if isinstance(model, FeaturedTokenClassifier):
        names.append(FEATURES_INPUT)
        args += (torch.ones((1, 8, len(model.spec.kinds)), dtype=torch.long),)
        dynamic[FEATURES_INPUT] = axes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(Logits(model), args, str(output), input_names=names,
                              output_names=["logits"], opset_version=opset, dynamo=False,
                              dynamic_axes=dynamic)
        except Exception as exc:  # torch.onnx raises many kinds
            raise BuildError(f"ONNX export failed with both optimum and torch.onnx ({exc})") from None
    return {"tool": f"torch.onnx {torch.__version__} (TorchScript exporter)", "opset": opset}


@contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Silence the exporters' chatter (deprecation notes, optional-package hints) for one call."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def input_names(onnx_path: Path) -> list[str]:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def check_against_torch(model: torch.nn.Module, onnx_path: Path, windows: Sequence[Window], pad_id: int,
                        n: int = 16) -> float:
    """Largest |logit difference| between PyTorch and the exported graph on ``n`` windows."""
    import onnxruntime as ort

    if not windows:
        return 0.0
    batch = collate(list(windows[:n]), pad_id)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    feed = {"input_ids": batch["input_ids"].numpy(), "attention_mask": batch["attention_mask"].numpy()}
    if "token_type_ids" in names:
        feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
    if "word_features" in batch:
        feed["word_features"] = batch["word_features"].numpy()
    got = sess.run(None, {k: v for k, v in feed.items() if k in names})[0]
    from .featured import forward_kwargs

    with torch.no_grad():
        want = model.eval()(**forward_kwargs(model, batch)).logits.numpy()
    mask = feed["attention_mask"].astype(bool)
    diff = float(np.abs(got - want)[mask].max())
    if not np.isfinite(diff) or diff > 1e-2:
        raise BuildError(f"{onnx_path}: the exported graph disagrees with PyTorch (max |Δlogit| {diff:.3g})")
    return diff
