"""The performance suite: speed, latency, cold start, scaling, roofline, constrained device.

Everything in ONE run on the same machine and the same input (real sentences of a dev split):
- throughput (words/s, tokens/s) at batch 1 and 32, on 1 and 2 threads, for the int8 bundle
  through edge_finer, the same student in fp32 ONNX, the fp32 PyTorch teacher through the
  transformers token-classification pipeline, a random-init XLM-R-base-sized token classifier
  (12 x 768, the size of AWED-FiNER's experts; speed does not depend on trained weights) through
  the same pipeline, and spaCy's NER trained on the same data (``benchmarks/shipped.py``);
- latency per sentence (p50, p95) at batch 1;
- cold start, process start to first entity, against the bare-import floor, for one bundle and
  with routing over all shipped bundles (``benchmarks/cold_start.py``);
- scaling: time and peak RSS against input size (1 KB to 10 MB), streaming through the API;
- the roofline: FLOPs per token of the student from its config against this machine's int8
  GEMM throughput (an onnxruntime MatMulInteger micro-benchmark);
- the constrained-device profile: one core (taskset), one thread, arena off, its peak RSS.
Medians over ``--repeats`` passes, systems interleaved.  Needs the ``build`` and ``bench``
extras and the bundle's build folder (``.build/NAME``, for the fp32 student and the teacher).

    python -m benchmarks.run [--bundle multiconer2-en] [--repeats 3] [--quick]

Writes ``benchmarks/results/perf.json``, ``perf.md`` and ``perf.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import save_results

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from edge_finer.annotator import LOW_MEMORY_BATCH_TOKENS, MAX_BATCH_TOKENS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


# -- inputs ---------------------------------------------------------------------------------


def dev_text(name: str) -> list[str]:
    from benchmarks.peer_spacy import read_conll
    from benchmarks.shipped import dataset_dir

    return [" ".join(toks) for toks, _ in read_conll(dataset_dir(name) / "dev.conll")]


def count_words(sents: list[str]) -> int:
    from edge_finer.pretokenize import split_words

    return sum(len(split_words(s)) for s in sents)


# -- systems --------------------------------------------------------------------------------


class System:
    """A thing that annotates a list of sentences at a batch size."""

    name = ""
    threads_supported = (1, 2)

    def run(self, sents: list[str], batch: int) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget what an earlier pass left behind (untimed, before each pass)."""


class RuntimeSystem(System):
    def __init__(self, name: str, bundle_dir: Path, threads: int) -> None:
        from edge_finer.annotator import Annotator
        from edge_finer.bundle import open_bundle

        self.name = name
        self.anns = {b: Annotator(open_bundle(bundle_dir), threads=threads, batch_size=b).warm_up() for b in (1, 32)}
        self.tokenizer = self.anns[1]._tokenizer

    def reset(self) -> None:
        # The word cache would otherwise hold every word of the input from the previous pass:
        # each pass starts cold, as annotating a new file would.
        for ann in self.anns.values():
            ann._words.clear()

    def run(self, sents: list[str], batch: int) -> None:
        ann = self.anns[batch]
        if batch == 1:
            for s in sents:
                ann.annotate(s)
        else:
            ann.annotate_batch(sents)


class PipelineSystem(System):
    """A transformers token-classification pipeline (PyTorch, fp32)."""

    def __init__(self, name: str, model, tokenizer, threads: int) -> None:
        import torch
        from transformers import pipeline

        torch.set_num_threads(threads)
        self.name = name
        self.pipe = pipeline("token-classification", model=model, tokenizer=tokenizer, device=-1,
                             aggregation_strategy="first")

    def run(self, sents: list[str], batch: int) -> None:
        import torch

        with torch.inference_mode():
            list(self.pipe(sents, batch_size=batch))


class SpacySystem(System):
    threads_supported = (1,)

    def __init__(self, model_dir: Path) -> None:
        import spacy

        self.name = "spaCy NER (same data)"
        self.nlp = spacy.load(model_dir)

    def run(self, sents: list[str], batch: int) -> None:
        list(self.nlp.pipe(sents, batch_size=batch))


def teacher(name: str):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    folder = ROOT / ".build" / name / "teacher" / "model"
    return AutoModelForTokenClassification.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def xlmr_base_sized(tokenizer, labels: int):
    """Random-init 12-layer, 768-wide XLM-R token classifier (the real experts' size), with our
    tokenizer: the vocabulary only changes the embedding lookup, not the speed per token."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    torch.manual_seed(0)
    cfg = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=514, num_labels=labels,
                           pad_token_id=tokenizer.pad_token_id or 0)
    return XLMRobertaForTokenClassification(cfg).eval()


def fp32_student_bundle(name: str, tmp: Path) -> Path:
    """The bundle with its int8 model swapped for the fp32 export of the same student."""
    src = ROOT / "bundles" / name
    dst = tmp / f"{name}-fp32"
    shutil.copytree(src, dst)
    shutil.copyfile(ROOT / ".build" / name / "export" / "model.onnx", dst / "model.onnx")
    manifest = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
    from edge_finer.bundle import sha256_file

    manifest["files"]["model.onnx"] = {"sha256": sha256_file(dst / "model.onnx"),
                                       "size": (dst / "model.onnx").stat().st_size}
    (dst / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return dst


def throughput(systems: dict[tuple[str, int], System], sents: list[str], slow: set[str], repeats: int,
               words: dict[str, int], tokens: dict[str, int]) -> list[dict]:
    """Median seconds per pass, systems interleaved pass by pass, after one untimed pass each
    (first passes pay one-off costs: arena growth, lazy initialisation, page faults)."""
    times: dict[tuple[str, int, int], list[float]] = {}
    for rep in range(repeats + 1):
        for (name, threads), system in systems.items():
            data = sents[:len(sents) // 8] if name in slow else sents
            for batch in (1, 32):
                system.reset()
                if rep == 0:
                    system.run(data, batch)
                    continue
                t0 = time.perf_counter()
                system.run(data, batch)
                times.setdefault((name, threads, batch), []).append(time.perf_counter() - t0)
    rows = []
    for (name, threads, batch), ts in times.items():
        key = "slow" if name in slow else "all"
        sec = statistics.median(ts)
        rows.append({"system": name, "threads": threads, "batch": batch, "sentences": len(sents) // (8 if key == "slow" else 1),
                     "seconds": round(sec, 3), "words_per_second": round(words[key] / sec, 1),
                     "tokens_per_second": round(tokens[key] / sec, 1)})
    return rows


def latency(system: RuntimeSystem, sents: list[str]) -> dict:
    ann = system.anns[1]
    ts = []
    for s in sents:
        t0 = time.perf_counter()
        ann.annotate(s)
        ts.append(1000 * (time.perf_counter() - t0))
    ts.sort()
    return {"sentences": len(ts), "p50_ms": round(ts[len(ts) // 2], 3), "p95_ms": round(ts[int(len(ts) * 0.95)], 3),
            "max_ms": round(ts[-1], 3)}


# -- scaling, constrained device --------------------------------------------------------------

STREAM = """
import sys, time
from edge_finer.annotator import Annotator
ann = Annotator.load(sys.argv[1], threads=int(sys.argv[3]), arena=sys.argv[4] == "1",
                     max_batch_tokens=int(sys.argv[5])).warm_up()
t0 = time.perf_counter(); n = 0
with open(sys.argv[2], encoding="utf-8") as fh:
    for ents in ann.stream(line.rstrip("\\n") for line in fh):
        n += len(ents)
print(time.perf_counter() - t0, n)
"""


def peak_run(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of a child process (GNU time)."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd], capture_output=True, text=True, check=True)
    wall, kb = proc.stderr.strip().splitlines()[-1].split()
    return float(wall), int(kb) / 1024, proc.stdout


def scaling(name: str, sents: list[str], tmp: Path, sizes_kb: list[int]) -> list[dict]:
    rows = []
    for kb in sizes_kb:
        path = tmp / f"in-{kb}.txt"
        with open(path, "w", encoding="utf-8") as fh:
            size, i = 0, 0
            while size < kb * 1024:
                line = sents[i % len(sents)] + "\n"
                fh.write(line)
                size += len(line.encode("utf-8"))
                i += 1
        wall, rss, out = peak_run([sys.executable, "-c", STREAM, name, str(path), "1", "1", str(MAX_BATCH_TOKENS)])
        annotate_s, entities = out.split()
        rows.append({"kb": kb, "lines": i, "annotate_seconds": round(float(annotate_s), 3), "process_seconds": wall,
                     "peak_rss_mb": round(rss, 1), "entities": int(entities),
                     "seconds_per_mb": round(float(annotate_s) / (kb / 1024), 3)})
    return rows


def constrained(name: str, path: Path) -> dict:
    """One core, one thread: what a Pi-class device would need (stand-in).  Streamed twice: with
    the arena off (the profile the issue asked for) and with ``--low-memory``'s settings."""
    core = sorted(os.sched_getaffinity(0))[0]
    words = count_words(path.read_text(encoding="utf-8").splitlines())
    out_row: dict = {"core": core, "threads": 1, "input_kb": path.stat().st_size // 1024}
    for key, arena, budget in (("arena_off", "0", MAX_BATCH_TOKENS), ("low_memory", "1", LOW_MEMORY_BATCH_TOKENS)):
        _, rss, out = peak_run(["taskset", "-c", str(core), sys.executable, "-c", STREAM, name, str(path), "1", arena,
                                str(budget)])
        annotate_s, _ = out.split()
        out_row[key] = {"arena": arena == "1", "max_batch_tokens": budget,
                        "words_per_second": round(words / float(annotate_s), 1), "peak_rss_mb_stream": round(rss, 1)}
    cli_wall, cli_rss, _ = peak_run(["taskset", "-c", str(core), sys.executable, str(ROOT / "cli.py"), "annotate",
                                     "--bundle", name, "--threads", "1", "--low-memory", "-f", "jsonl", "--text",
                                     "Barack Obama visited the Louvre in Paris."])
    out_row.update(cli_one_sentence_seconds=cli_wall, cli_one_sentence_peak_rss_mb=round(cli_rss, 1))
    return out_row


# -- roofline ---------------------------------------------------------------------------------


def int8_gemm_gops(m: int = 1024, k: int = 256, n: int = 1024, repeats: int = 30) -> float:
    """This machine's int8 GEMM throughput on one thread: onnxruntime MatMulInteger (u8 x s8)."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    a = helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])
    y = helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])
    # B constant, as the weights of a quantized model are (onnxruntime prepacks them)
    b = numpy_helper.from_array(rng.integers(-127, 127, (k, n), dtype=np.int8), "B")
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "mmi", [a], [y], [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {"A": rng.integers(0, 255, (m, k), dtype=np.uint8)}
    sess.run(None, feed)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feed)
        ts.append(time.perf_counter() - t0)
    return 2 * m * k * n / statistics.median(ts) / 1e9


GEMM_OPS = {"MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMul", "Gemm", "QGemm",
            "FusedMatMul", "QAttention", "Attention"}


def _session(model: Path, disabled: tuple[str, ...], profile_prefix: str | None = None):
    """A raw session with the runtime's settings, one thread, and the given fusions turned off."""
    import onnxruntime as ort

    from edge_finer.backend import session_options

    opts = session_options(threads=1)
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled))


def session_feeds(sess, batches: list[tuple]) -> list[dict]:
    """Input dicts for a raw onnxruntime session, fed as ``OnnxBackend.run`` feeds the model."""
    import numpy as np

    names = {i.name for i in sess.get_inputs()}
    return [{k: v for k, v in {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids),
                               "word_features": feats}.items()
             if k in names} for ids, mask, feats in batches]


def runtime_batches(name: str, sents: list[str]) -> list[tuple]:
    """The (input_ids, attention_mask, word_features or None) batches edge_finer hands its model."""
    from edge_finer.annotator import Annotator
    from edge_finer.bundle import open_bundle

    ann = Annotator(open_bundle(ROOT / "bundles" / name), threads=1, batch_size=32).warm_up()
    batches: list[tuple] = []
    real_run = ann.backend.run

    def record(ids, mask, word_features=None):
        batches.append((ids, mask, word_features))
        return real_run(ids, mask) if word_features is None else real_run(ids, mask, word_features)

    ann.backend.run = record  # type: ignore[method-assign]
    ann.annotate_batch(sents)
    return batches


def kernel_profile(name: str, sents: list[str], repeats: int = 5) -> dict:
    """Where onnxruntime's time goes, by operator type, on the batches edge_finer builds for the
    input (onnxruntime's own profiler, one thread), with the runtime's session settings and
    with all of onnxruntime's fusions (the runtime turns some off: ``backend.DISABLED_FUSIONS``);
    plus the wall time of both on the same batches, interleaved, without the profiler."""
    import collections

    from edge_finer import backend as backend_mod

    batches = runtime_batches(name, sents)
    model = ROOT / "bundles" / name / "model.onnx"
    settings = {"runtime": tuple(backend_mod.DISABLED_FUSIONS), "all_fusions": ()}

    out: dict = {"padded_tokens": int(sum(b[1].size for b in batches)),
                 "real_tokens": int(sum(b[1].sum() for b in batches))}
    for label, disabled in settings.items():
        with tempfile.TemporaryDirectory() as tmp:
            sess = _session(model, disabled, str(Path(tmp) / "ort"))
            for feed in session_feeds(sess, batches):
                sess.run(None, feed)
            events = json.loads(Path(sess.end_profiling()).read_text())
        by_op: collections.Counter = collections.Counter()
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                by_op[e["args"]["op_name"]] += e["dur"]
        out[label] = {"disabled_fusions": list(disabled), "kernel_seconds": sum(by_op.values()) / 1e6,
                      "gemm_seconds": sum(v for k, v in by_op.items() if k in GEMM_OPS) / 1e6,
                      "by_op_seconds": {k: v / 1e6 for k, v in by_op.most_common()}}
    plain = {label: _session(model, disabled) for label, disabled in settings.items()}
    fed = {label: session_feeds(sess, batches) for label, sess in plain.items()}
    walls: dict[str, list[float]] = {label: [] for label in settings}
    for _ in range(repeats + 1):  # the first round warms up
        for label, sess in plain.items():
            t0 = time.perf_counter()
            for feed in fed[label]:
                sess.run(None, feed)
            walls[label].append(time.perf_counter() - t0)
    for label in settings:
        out[label]["wall_seconds_median"] = statistics.median(walls[label][1:])
    # the pre-fusion keys, kept flat for readers of older perf.json
    out.update({k: out["runtime"][k] for k in ("kernel_seconds", "gemm_seconds", "by_op_seconds")})
    return out


def flops_per_token(manifest: dict, seq_len: float) -> float:
    """Multiply-adds x 2 of one token through the student: Q/K/V/O and the FFN per layer, the
    attention scores and mixing over ``seq_len`` tokens, and the classifier (a convolutional
    student: one (kernel·h × 2h) product per block); word features add their projection."""
    m = manifest["model"]
    h, i, layers, labels = m["hidden_size"], m["intermediate_size"], m["layers"], len(manifest["labels"])
    if m["architecture"] == "edge-finer-cnn":
        kernel = m.get("kernel", 3)
        per_layer = 2 * kernel * h * 2 * h
    else:
        per_layer = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * seq_len * h
    feats = manifest.get("features")
    extra = 2 * len(feats["kinds"]) * 64 * h if feats else 0  # the pipeline's default width per kind
    return layers * per_layer + 2 * h * labels + extra


# -- report -----------------------------------------------------------------------------------


def chart(res: dict, path: Path) -> bool:
    """The size / speed / F1 chart as PNG; False when matplotlib (the bench extra) is absent."""
    try:
        import matplotlib
    except ImportError:
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in res["chart_points"] if p["words_per_second"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in pts:
        ax.scatter(p["size_mb"], p["words_per_second"], s=60 + 600 * (p["f1"] or 0), alpha=0.6)
        ax.annotate(f"{p['system']}\nF1 {100 * p['f1']:.1f}" if p["f1"] is not None else p["system"],
                    (p["size_mb"], p["words_per_second"]), fontsize=8, xytext=(6, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("size on disk (MB, log)")
    ax.set_ylabel("words/s, 1 thread, batch 32 (log)")
    ax.set_title(f"{res['bundle']}: size vs speed (marker area ~ dev F1)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def markdown(res: dict) -> str:
    m = res["machine"]
    out = [f"# Performance suite ({res['bundle']}, one run)", "",
           f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime {m['onnxruntime']}. "
           f"Input: {res['input']['sentences']} dev sentences ({res['input']['words']:,} words). Medians of "
           f"{res['repeats']} interleaved passes after one untimed pass per system; edge-finer's word cache is "
           "emptied before every pass. Command: `python -m benchmarks.run`.", "",
           "![size vs speed vs F1](perf.png)", "",
           "## Throughput", "", "| system | threads | batch | words/s | tokens/s | × XLM-R-base-sized |",
           "|---|---|---|---|---|---|"]
    ref = {(r["threads"], r["batch"]): r["words_per_second"] for r in res["throughput"] if r["system"].startswith("XLM-R")}
    for r in sorted(res["throughput"], key=lambda r: (r["batch"], r["threads"], -r["words_per_second"])):
        x = ref.get((r["threads"], r["batch"]))
        out.append(f"| {r['system']} | {r['threads']} | {r['batch']} | {r['words_per_second']:,.0f} | "
                   f"{r['tokens_per_second']:,.0f} | {r['words_per_second'] / x:.1f} |" if x else
                   f"| {r['system']} | {r['threads']} | {r['batch']} | {r['words_per_second']:,.0f} | "
                   f"{r['tokens_per_second']:,.0f} | – |")
    lat = res["latency"]
    out += ["", f"Latency at batch 1, one thread (int8 bundle): p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, "
            f"max {lat['max_ms']} ms over {lat['sentences']} sentences.", ""]
    if res.get("cold_start"):
        again = " (re-measured after the run: `--only cold-start`, 15 runs)" if res.get("cold_start_remeasured") else ""
        out += [f"## Cold start (process start to first entity, median; `/usr/bin/time -v`){again}", "",
                "Over floor: median of per-round differences to the floor's run (cancels the machine's drift).", "",
                "| command | wall s | over floor ms | peak RSS MiB |", "|---|---|---|---|"]
        for k, label in (("floor", "import onnxruntime, tokenizers, numpy"),
                         ("cli_imports", "the same + import typer, cli (the CLI's imports, no work)"),
                         ("api", "Python API, one bundle"),
                         ("cli", "edge-finer annotate --bundle B --text"),
                         ("cli_routed", "edge-finer annotate --text (routed over all shipped bundles)"),
                         ("cli_routed_one", "edge-finer annotate --text (routed, only this bundle installed)")):
            s = res["cold_start"].get(k)
            if s:
                over = f"{s['over_floor_ms']:.0f}" if "over_floor_ms" in s else "–"
                out.append(f"| {label} | {s['wall_s_median']:.3f} | {over} | {s['peak_rss_mib_median']:.1f} |")
        out.append("")
    out += ["## Scaling (streaming through the API, one thread)", "",
            "| input | lines | annotate s | s per MB | peak RSS MB | entities |", "|---|---|---|---|---|---|"]
    for r in res["scaling"]:
        out.append(f"| {r['kb']} KB | {r['lines']} | {r['annotate_seconds']} | {r['seconds_per_mb']} | {r['peak_rss_mb']} | "
                   f"{r['entities']} |")
    rf = res["roofline"]
    out += ["", "## Roofline", "",
            f"Student: {rf['flops_per_token'] / 1e6:.2f} MFLOP per token (config, mean window {rf['seq_len']:.0f} tokens). "
            f"int8 GEMM on one thread (MatMulInteger {rf['gemm_shape']}): {rf['int8_gops']:.0f} GOP/s. "
            f"Attainable: {rf['attainable_tokens_per_second']:,.0f} tokens/s; achieved at batch 32: "
            f"{rf['achieved_tokens_per_second']:,.0f} tokens/s = **{100 * rf['achieved_over_attainable']:.1f} %** of the "
            "roofline (model only, end to end).", ""]
    k = rf.get("kernels")
    if k:
        gemm_gops = k["padded_tokens"] * rf["flops_per_token"] / k["gemm_seconds"] / 1e9
        out += [f"Where onnxruntime's time goes (its profiler, one pass, {k['padded_tokens']:,} tokens incl. padding and "
                f"bos/eos, of which {k['real_tokens']:,} real): kernels {k['kernel_seconds']:.3f} s, of which matrix "
                f"products {k['gemm_seconds']:.3f} s ({100 * k['gemm_seconds'] / k['kernel_seconds']:.0f} %, running at "
                f"{gemm_gops:.0f} GOP/s = {100 * gemm_gops / rf['int8_gops']:.0f} % of the micro-benchmark). "
                "The rest is element-wise work the GEMM roofline does not count:", "",
                "| operator | seconds | share |", "|---|---|---|"]
        for op, sec in list(k["by_op_seconds"].items())[:10]:
            out.append(f"| {op} | {sec:.3f} | {100 * sec / k['kernel_seconds']:.1f} % |")
        out.append("")
        if "all_fusions" in k:
            rt, full = k["runtime"], k["all_fusions"]
            skip = full["by_op_seconds"].get("SkipLayerNormalization", 0.0)
            plain_ln = rt["by_op_seconds"].get("LayerNormalization", 0.0) + rt["by_op_seconds"].get("Add", 0.0)
            out += [f"Session settings, same batches, one thread: with all of onnxruntime's fusions the model takes "
                    f"{full['wall_seconds_median']:.3f} s per pass, with the runtime's settings (no "
                    f"{', '.join(rt['disabled_fusions'])}) {rt['wall_seconds_median']:.3f} s (medians of 5, interleaved). "
                    f"In the profiler the fused SkipLayerNormalization kernels took {skip:.3f} s; unfused, LayerNormalization "
                    f"and Add together take {plain_ln:.3f} s.", ""]
    out += ["## Constrained device (stand-in for a Pi: one core via taskset, one thread)", ""]
    c = res["constrained"]
    for key, label in (("arena_off", "arena off"), ("low_memory", "`--low-memory` (arena on, batches of at most "
                                                                    f"{c['low_memory']['max_batch_tokens']} tokens)")):
        r = c[key]
        out.append(f"- {c['input_kb']} KB streamed, {label}: {r['words_per_second']:,.0f} words/s, "
                   f"peak RSS {r['peak_rss_mb_stream']} MB.")
    out += [f"- `edge-finer annotate --low-memory --threads 1 --text ...`: {c['cli_one_sentence_seconds']} s, "
            f"peak RSS {c['cli_one_sentence_peak_rss_mb']} MB.", ""]
    return "\n".join(out) + "\n"


COLD_START_TEXT = "Barack Obama visited the Louvre in Paris with Angela Merkel."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default="multiconer2-en")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small input, no XLM-R/teacher/cold start (smoke test)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--only", choices=("cold-start", "kernels"), default=None,
                    help="re-measure only this part into the existing perf.json (and perf.md)")
    args = ap.parse_args()
    from benchmarks.shipped import machine

    if args.only:
        res = json.loads((args.out / "perf.json").read_text(encoding="utf-8"))
        if args.only == "cold-start":
            from benchmarks.cold_start import measure

            res["cold_start"] = measure(res["bundle"], COLD_START_TEXT, 15)
            res["cold_start_remeasured"] = True
        else:
            res["roofline"]["kernels"] = kernel_profile(res["bundle"], dev_text(res["bundle"]))
        save_results(args.out, "perf", res, markdown(res))
        return

    name = args.bundle
    sents = dev_text(name)
    if args.quick:
        sents = sents[:64]
    manifest = json.loads((ROOT / "bundles" / name / "manifest.json").read_text(encoding="utf-8"))
    res: dict = {"bundle": name, "machine": machine(), "repeats": args.repeats}
    with tempfile.TemporaryDirectory(prefix="edge-finer-perf.") as tmpdir:
        tmp = Path(tmpdir)
        systems: dict[tuple[str, int], System] = {}
        slow: set[str] = set()
        fp32 = fp32_student_bundle(name, tmp) if (ROOT / ".build" / name / "export" / "model.onnx").is_file() else None
        for threads in (1, 2):
            systems[("edge-finer int8", threads)] = RuntimeSystem("edge-finer int8", ROOT / "bundles" / name, threads)
            if fp32 is not None:
                systems[("student fp32 ONNX", threads)] = RuntimeSystem("student fp32 ONNX", fp32, threads)
        if not args.quick and (ROOT / ".build" / name / "teacher" / "model").is_dir():
            model, tok = teacher(name)
            for threads in (1, 2):
                systems[("teacher fp32 PyTorch", threads)] = PipelineSystem("teacher fp32 PyTorch", model, tok, threads)
                systems[("XLM-R-base-sized fp32 PyTorch", threads)] = PipelineSystem(
                    "XLM-R-base-sized fp32 PyTorch", xlmr_base_sized(tok, len(manifest["labels"])), tok, threads)
            slow.add("XLM-R-base-sized fp32 PyTorch")
        spacy_dir = ROOT / ".bench" / f"spacy-{name}" / "model" / "model-best"
        if spacy_dir.is_dir():
            systems[("spaCy NER (same data)", 1)] = SpacySystem(spacy_dir)
        tok = systems[("edge-finer int8", 1)].tokenizer  # type: ignore[attr-defined]
        from edge_finer.pretokenize import words as split

        def n_tokens(data: list[str]) -> int:
            return sum(len(e.ids) for e in tok.encode_batch([split(s) for s in data], is_pretokenized=True,
                                                            add_special_tokens=False))
        subsets = {"all": sents, "slow": sents[:len(sents) // 8]}
        words = {k: count_words(v) for k, v in subsets.items()}
        tokens = {k: n_tokens(v) for k, v in subsets.items()}
        res["input"] = {"sentences": len(sents), "words": words["all"], "tokens": tokens["all"]}
        print(f"throughput: {len(systems)} systems", flush=True)
        res["throughput"] = throughput(systems, sents, slow, args.repeats, words, tokens)
        res["latency"] = latency(systems[("edge-finer int8", 1)], sents)  # type: ignore[arg-type]
        del systems
        print("roofline", flush=True)
        best = max(r["tokens_per_second"] for r in res["throughput"]
                   if r["system"] == "edge-finer int8" and r["threads"] == 1 and r["batch"] == 32)
        gops = int8_gemm_gops()
        seq = tokens["all"] / len(sents) + 2
        fpt = flops_per_token(manifest, seq)
        res["roofline"] = {"flops_per_token": fpt, "seq_len": seq, "int8_gops": gops, "gemm_shape": "1024x256x1024",
                           "attainable_tokens_per_second": gops * 1e9 / fpt, "achieved_tokens_per_second": best,
                           "achieved_over_attainable": best / (gops * 1e9 / fpt),
                           "kernels": kernel_profile(name, sents)}
        print("scaling", flush=True)
        sizes = [1, 10, 100] if args.quick else [1, 10, 100, 1024, 10240]
        res["scaling"] = scaling(name, sents, tmp, sizes)
        res["constrained"] = constrained(name, tmp / f"in-{min(1024, sizes[-1])}.txt")
    if not args.quick:
        print("cold start", flush=True)
        from benchmarks.cold_start import measure

        res["cold_start"] = measure(name, COLD_START_TEXT, 15)
    res["chart_points"] = chart_points(name, manifest, res)
    save_results(args.out, "perf", res, markdown(res))
    if not chart(res, args.out / "perf.png"):
        print("matplotlib not installed: no perf.png (pip install '.[bench]')", file=sys.stderr)


def chart_points(name: str, manifest: dict, res: dict) -> list[dict]:
    """Size, words/s (1 thread, batch 32) and dev F1 per system, for the chart."""
    ev = manifest.get("evaluation", {})
    shipped = json.loads((RESULTS / "shipped.json").read_text(encoding="utf-8")) if (RESULTS / "shipped.json").is_file() else {}
    peer = next((b.get("spacy", {}) for b in shipped.get("results", []) if b.get("bundle") == name), {})
    wps = {r["system"]: r["words_per_second"] for r in res["throughput"] if r["threads"] == 1 and r["batch"] == 32}
    sizes = {"edge-finer int8": (ROOT / "bundles" / name / "model.onnx").stat().st_size / 1e6,
             "student fp32 ONNX": (ROOT / ".build" / name / "export" / "model.onnx").stat().st_size / 1e6
             if (ROOT / ".build" / name / "export" / "model.onnx").is_file() else None,
             "teacher fp32 PyTorch": ev.get("teacher_size_bytes", 0) / 1e6 or None,
             "XLM-R-base-sized fp32 PyTorch": 1112.0,  # xlm-roberta-base checkpoint size (278 M parameters x 4 B)
             "spaCy NER (same data)": peer.get("size_bytes", 0) / 1e6 or None}
    f1 = {"edge-finer int8": (ev.get("student_int8") or {}).get("f1"), "student fp32 ONNX": (ev.get("student_fp32") or {}).get("f1"),
          "teacher fp32 PyTorch": (ev.get("teacher_fp32") or {}).get("f1"), "XLM-R-base-sized fp32 PyTorch": None,
          "spaCy NER (same data)": peer.get("f1")}
    return [{"system": s, "size_mb": sizes[s], "words_per_second": wps.get(s), "f1": f1[s]}
            for s in sizes if sizes[s] and wps.get(s)]


if __name__ == "__main__":
    main()
