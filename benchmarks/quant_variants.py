"""Which int8 graph runs fastest here: the shipped one against the variants we rejected.

Built from the bundle's fp32 export (``.build/NAME/export/model.onnx``, so the build folder is
needed) with onnxruntime's own tools:
- ``shipped``: the bundle's model.onnx (dynamic quantisation, signed per-channel weights, the
  plain exported graph);
- ``dynamic_fused``: onnxruntime's transformer optimiser (fused attention, GELU, LayerNorm,
  embeddings) and then the same dynamic quantisation;
- ``static_qdq`` / ``static_qoperator``: calibrated activation scales (first 256 sentences of the
  *train* split), QDQ and QOperator formats.
Each runs with the runtime's session settings on the batches edge_finer builds for the dev split,
one thread, medians of 5 interleaved passes after a warm-up; "agreement" is the share of
non-padding tokens whose argmax label equals the shipped model's.

    python -m benchmarks.quant_variants [--bundle multiconer2-en]

Writes ``benchmarks/results/quant_variants.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import save_results
from benchmarks.run import (
    RESULTS,
    ROOT,
    _session,
    dev_text,
    runtime_batches,
    session_feeds,
)


def build_variants(name: str, calibration: list[tuple], tmp: Path) -> dict[str, Path]:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.optimizer import optimize_model

    manifest = json.loads((ROOT / "bundles" / name / "manifest.json").read_text(encoding="utf-8"))
    fp32 = ROOT / ".build" / name / "export" / "model.onnx"
    pre = tmp / "pre.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    out = {"shipped": ROOT / "bundles" / name / "model.onnx"}

    fused = tmp / "fused.onnx"
    optimize_model(str(fp32), model_type="bert", num_heads=manifest["model"]["heads"],
                   hidden_size=manifest["model"]["hidden_size"], opt_level=1).save_model_to_file(str(fused))
    out["dynamic_fused"] = tmp / "dynamic_fused.onnx"
    quantize_dynamic(str(fused), str(out["dynamic_fused"]), per_channel=True, reduce_range=True,
                     weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self):
            item = next(self.items, None)
            if item is None:
                return None
            ids, mask = item[0], item[1]
            return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    for label, fmt in (("static_qdq", QuantFormat.QDQ), ("static_qoperator", QuantFormat.QOperator)):
        out[label] = tmp / f"{label}.onnx"
        quantize_static(str(pre), str(out[label]), Reader(), quant_format=fmt, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["MatMul", "Gather"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default="multiconer2-en")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from benchmarks.peer_spacy import read_conll
    from benchmarks.shipped import dataset_dir, machine
    from edge_finer.backend import DISABLED_FUSIONS

    name = args.bundle
    batches = runtime_batches(name, dev_text(name))
    train = [" ".join(toks) for toks, _ in read_conll(dataset_dir(name) / "train.conll")][:256]
    with tempfile.TemporaryDirectory() as tmpdir:
        models = build_variants(name, runtime_batches(name, train), Path(tmpdir))
        sessions = {k: _session(p, tuple(DISABLED_FUSIONS)) for k, p in models.items()}
        feeds = {k: session_feeds(s, batches) for k, s in sessions.items()}
        masks = [b[1].astype(bool) for b in batches]
        labels = {k: np.concatenate([s.run(None, f)[0][m].argmax(-1) for f, m in zip(feeds[k], masks)])
                  for k, s in sessions.items()}
        times: dict[str, list[float]] = {k: [] for k in sessions}
        for rep in range(args.repeats + 1):
            for k, s in sessions.items():
                t0 = time.perf_counter()
                for f in feeds[k]:
                    s.run(None, f)
                if rep:
                    times[k].append(time.perf_counter() - t0)
        sizes = {k: p.stat().st_size for k, p in models.items()}
    real = int(sum(m.sum() for m in masks))
    rows = [{"variant": k, "seconds": statistics.median(v), "tokens_per_second": real / statistics.median(v),
             "agreement_with_shipped": float((labels[k] == labels["shipped"]).mean()), "bytes": sizes[k]}
            for k, v in times.items()]
    res = {"bundle": name, "machine": machine(), "repeats": args.repeats, "real_tokens": real, "rows": rows}
    base = next(r["seconds"] for r in rows if r["variant"] == "shipped")
    md = [f"# int8 graph variants ({name})", "",
          f"Machine: {res['machine']['cpu']}, onnxruntime {res['machine']['onnxruntime']}; one thread; dev batches as "
          f"edge_finer builds them ({real:,} tokens without padding); medians of {args.repeats} interleaved passes. "
          "Command: `python -m benchmarks.quant_variants`.", "",
          "| variant | s per pass | tokens/s | vs shipped | argmax agreement with shipped | MB |", "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['variant']} | {r['seconds']:.3f} | {r['tokens_per_second']:,.0f} | {base / r['seconds']:.2f}x | "
                  f"{100 * r['agreement_with_shipped']:.2f} % | {r['bytes'] / 1e6:.2f} |")
    save_results(RESULTS, "quant_variants", res, "\n".join(md))


if __name__ == "__main__":
    main()
