"""Figures for every shipped bundle, side by side with the spaCy peer, in one run.

For each non-demo bundle in ``bundles/index.json`` (or those named on the command line):
- int8 student F1 on the dev split, recomputed through the runtime (seqeval strict IOB2 on the
  gold token grid), per type and overall; the build's teacher fp32 / student fp32 / int8 figures
  are taken from the manifest, which the recipe build computed the same way;
- words/s on one thread on the same dev sentences (median of repeated passes), interleaved with
  the spaCy peer's, so both see the same machine state;
- bundle size and the peer's size on disk.
The spaCy peer is trained once per dataset with ``benchmarks/peer_spacy.py`` (its default CPU
config) and cached in the work folder.

    python -m benchmarks.shipped [NAMES...] [--work .bench] [--repeats 5] [--merge]

(Assamese, built but not shipped: ``EDGE_FINER_BUNDLES=.build/unshipped python -m benchmarks.shipped
guit-astourne-as --merge``; catalogue bundles, built into .build/bundles:
``EDGE_FINER_BUNDLES=.build/bundles python -m benchmarks.shipped NAMES... --merge``.)

Writes ``benchmarks/results/shipped.json`` and ``benchmarks/results/shipped.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from benchmarks.report import save_results

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    import onnxruntime

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "platform": platform.platform()}


def dataset_dir(name: str) -> Path:
    """The shared-data folder holding the dev split a bundle was scored on: its recipe says."""
    from quantize.recipe import load_recipe

    r = load_recipe(ROOT / "recipes" / f"{name}.toml")
    return Path(r.resolve(r.data.eval)).parent


def bench_bundle(name: str, work: Path, repeats: int, spacy_steps: int, committed_peer: dict | None = None) -> dict:
    """One bundle's row.  With ``committed_peer`` (the spaCy figures of an earlier full-budget
    run) the peer trained here only supplies words/s and size: spaCy's speed does not depend on
    how long it trained (same config, one greedy transition per token), its F1 does."""
    from benchmarks.peer_spacy import evaluate as spacy_evaluate, read_conll, train as spacy_train
    from edge_finer.annotator import Annotator, type_thresholds
    from quantize.evaluate import gold_text, score, spans_to_tags

    ann = Annotator.load(name, threads=1, threshold=0.0)  # every decoded entity, as the build scores
    manifest = dict(ann.bundle.manifest)
    data = dataset_dir(name)
    dev = read_conll(data / "dev.conll")
    key = ann.bundle.pretokenizer.key  # han-chars: Chinese scored unspaced, as it is written
    texts, grids = zip(*(gold_text(toks, key) for toks, _ in dev))
    found = ann.annotate_batch(list(texts))
    ours = score([tags for _, tags in dev], [spans_to_tags(e, g) for e, g in zip(found, grids)])
    default_t = float(manifest.get("decoding", {}).get("threshold", 0.0))
    typed = type_thresholds(ann.bundle, ann.scheme)  # per-type thresholds, as the runtime reads them
    if default_t > 0 or typed:
        kept = [[e for e in ents if e.score >= typed.get(e.label, default_t)] for ents in found]
        ours["calibrated"] = {"threshold": default_t, **({"type_thresholds": typed} if typed else {}),
                              "f1": score([tags for _, tags in dev], [spans_to_tags(e, g) for e, g in zip(kept, grids)])["f1"]}

    peer_dir = work / f"spacy-{name}"
    best = peer_dir / "model" / "model-best"
    if not best.is_dir():
        spacy_train(data, manifest["language"]["bcp47"], peer_dir, max_steps=spacy_steps)
    import spacy

    nlp = spacy.load(best)
    peer = spacy_evaluate(best, data, repeats=1)
    if committed_peer is not None:
        peer = {**peer, **{k: committed_peer[k] for k in ("f1", "precision", "recall", "per_type")
                           if k in committed_peer},
                "f1_from": "committed full-budget run (peer_spacy.py default, 6000 steps)",
                "speed_peer_steps": spacy_steps}

    n_words = sum(len(ann.bundle.pretokenizer.split(t)) for t in texts)
    n_gold = sum(len(toks) for toks, _ in dev)
    ours_t, peer_t = [], []
    ann.annotate_batch(list(texts[:64]))
    for _ in range(repeats):  # interleaved: both systems see the same machine state
        t0 = time.perf_counter()
        ann.annotate_batch(list(texts))
        ours_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _doc in nlp.pipe(texts, batch_size=32):
            pass
        peer_t.append(time.perf_counter() - t0)
    ev = manifest.get("evaluation", {})
    return {
        "bundle": name,
        "language": manifest["language"]["bcp47"],
        "taxonomy": manifest["taxonomy"]["name"],
        "licence": manifest.get("licence"),
        "dev_sentences": len(dev),
        "build": {k: {"f1": ev[k]["f1"]} for k in ("teacher_fp32", "student_fp32", "student_int8")
                  if isinstance(ev.get(k), dict)},
        "int8": {**ours, "words_per_second": n_gold / statistics.median(ours_t),
                 "runtime_words_per_second": n_words / statistics.median(ours_t),
                 "size_bytes": ann.bundle.size_bytes()},
        "spacy": {**{k: v for k, v in peer.items() if k != "words_per_second"},
                  "words_per_second": n_gold / statistics.median(peer_t)},
        "threads": 1,
        "repeats": repeats,
    }


def cpu_flags() -> str:
    """The SIMD flags that decide int8 speed (AVX2 only vs AVX-512 / VNNI), from /proc/cpuinfo."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    have = set(flags.split(":", 1)[1].split())
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in have) or "no AVX2"


def previous_f1() -> dict[str, float]:
    """int8 dev F1 of each bundle's previous (format-1, transformer) build, from shipped_v1.json."""
    path = RESULTS / "shipped_v1.json"
    return ({r["bundle"]: r["int8"]["f1"] for r in json.loads(path.read_text())["results"]}
            if path.is_file() else {})


def cal(r: dict) -> str:
    c = r["int8"].get("calibrated")
    return (f"{100 * c['f1']:.1f} (t={c['threshold']:.2f}{', per type' if c.get('type_thresholds') else ''})"
            if c else "–")


def markdown(results: list[dict], mach: dict, remarks: list[str] | None = None) -> str:
    lines = [
        "# Shipped bundles vs spaCy (dev splits)",
        "",
        f"Machine: {mach['cpu']}, {mach['cores']} cores (CPU flags: {cpu_flags()}); Python {mach['python']}, onnxruntime "
        f"{mach['onnxruntime']}. One thread for both systems; words/s = gold tokens of the dev split "
        "per second, median of interleaved passes over the same raw sentences.",
        "",
        "`before`: the format-1 transformer bundle (`shipped_v1.md`). int8 F1 is at threshold 0 (every decoded entity); `int8 F1 (cal.)` at the bundle's default threshold, "
        "calibrated on this dev split by the build (`per type`: with the per-type thresholds the calibration kept, "
        "see the model card for their cross-validated worth). spaCy F1 marked * comes from the committed full-budget "
        "peer (`peer_spacy.py`, 6000 steps) while its words/s come from a peer of the same config trained "
        "briefly in this run (speed does not depend on training).",
        "",
        *[line for r in (remarks or []) for line in (r, "")],
        "| bundle | before: int8 F1 | teacher F1 | student fp32 F1 | int8 F1 | int8 F1 (cal.) | spaCy F1 | int8 words/s | spaCy words/s | speed ratio | bundle MB | spaCy MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    shipped = {b["name"] for b in json.loads((ROOT / "bundles" / "index.json").read_text())["bundles"]}
    cat_index = ROOT / "catalogue" / "index.json"
    catalogue = {b["name"] for b in json.loads(cat_index.read_text())["bundles"]} if cat_index.is_file() else set()
    before = previous_f1()
    for r in results:
        b = r["build"]
        f = lambda d, k: f"{100 * d[k]['f1']:.1f}" if k in d else "–"  # noqa: E731
        name = (r["bundle"] if r["bundle"] in shipped else f"{r['bundle']} (catalogue)" if r["bundle"] in catalogue
                else f"{r['bundle']} (built, not shipped)")
        prev = f"{100 * before[r['bundle']]:.1f}" if r["bundle"] in before else "–"
        lines.append(
            f"| {name} | {prev} | {f(b, 'teacher_fp32')} | {f(b, 'student_fp32')} | {100 * r['int8']['f1']:.1f} | "
            f"{cal(r)} | {100 * r['spacy']['f1']:.1f}{'*' if 'f1_from' in r['spacy'] else ''} | "
            f"{r['int8']['words_per_second']:,.0f} | "
            f"{r['spacy']['words_per_second']:,.0f} | "
            f"{r['int8']['words_per_second'] / r['spacy']['words_per_second']:.1f}× | "
            f"{r['int8']['size_bytes'] / 1e6:.2f} | "
            f"{r['spacy']['size_bytes'] / 1e6:.2f} |")
    lines.append("")
    for r in results:
        lines += [f"## {r['bundle']}: int8 F1 per type (dev)", "", "| type | F1 | P | R | support |", "|---|---|---|---|---|"]
        for t, v in sorted(r["int8"]["per_type"].items()):
            lines.append(f"| {t} | {100 * v['f1']:.1f} | {100 * v['precision']:.1f} | {100 * v['recall']:.1f} | {v['support']} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="bundle names [default: all in bundles/index.json]")
    ap.add_argument("--work", type=Path, default=ROOT / ".bench")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--spacy-steps", type=int, default=6000)
    ap.add_argument("--remark", default="", help="a sentence about this run's conditions, kept in the report "
                    "across later --merge runs")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite shipped.md from shipped.json (e.g. after packing the catalogue); measure nothing")
    ap.add_argument("--spacy-f1-from-committed", action="store_true",
                    help="take spaCy's F1 from the committed shipped.json (a full-budget peer) and train the "
                         "peer here with --spacy-steps only for its words/s and size")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other bundles' rows of the existing shipped.json (rerun only NAMES)")
    args = ap.parse_args()
    index = json.loads((ROOT / "bundles" / "index.json").read_text())["bundles"]
    previous = json.loads((RESULTS / "shipped.json").read_text()) if (RESULTS / "shipped.json").is_file() else {}
    remarks = previous.get("remarks", []) + ([args.remark] if args.remark else [])
    if args.render_only:  # e.g. after packing the catalogue: rows are relabelled, nothing re-measured
        save_results(RESULTS, "shipped", {**previous, "remarks": remarks},
                     markdown(previous["results"], previous["machine"], remarks))
        return
    names = args.names or [b["name"] for b in index if not b.get("demo")]
    mach = machine()
    committed = {}
    if args.spacy_f1_from_committed and (RESULTS / "shipped.json").is_file():
        committed = {r["bundle"]: r["spacy"] for r in json.loads((RESULTS / "shipped.json").read_text())["results"]}
    results = [bench_bundle(n, args.work, args.repeats, args.spacy_steps, committed.get(n)) for n in names]
    if args.merge and (RESULTS / "shipped.json").is_file():
        kept = [r for r in json.loads((RESULTS / "shipped.json").read_text())["results"] if r["bundle"] not in names]
        order = {b["name"]: i for i, b in enumerate(index)}
        results = sorted(kept + results, key=lambda r: order.get(r["bundle"], len(order)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    save_results(RESULTS, "shipped", {"machine": mach, "results": results, "remarks": remarks},
                 markdown(results, mach, remarks))


if __name__ == "__main__":
    main()
