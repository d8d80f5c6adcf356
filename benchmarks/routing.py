"""Routing accuracy and cost on held-out sentences of every language in ``../shared/data``.

Two scenarios, each with and without CLD3 (when a binding is installed):
- ``installed``: the router over the bundles actually installed (the shipped ones, plus any
  folders given with ``--extra``, e.g. ``.build/unshipped`` for the Assamese bundle that may
  not be shipped).  Sentences of languages with no bundle must come out "unknown".
- ``all``: a profile for every language with a train split, computed by the same pipeline
  function the build uses (``quantize.profile.build_profile``), as if each had a bundle: how the
  n-gram profiles cope with 30+ languages, many sharing the Latin script.
Every dev split is read (including the dev-only languages es, fr, it, pt, uk, fa), up to
``--per-language`` sentences each, split into long (>= 20 characters) and short sentences.
Routing time per sentence is set against annotation time of the same sentences by the routed
bundle (one thread), both medians of repeated passes.

    python -m benchmarks.routing [--extra DIR] [--per-language 300] [--repeats 3]

Writes ``benchmarks/results/routing.json`` and ``benchmarks/results/routing.md``.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from benchmarks.report import save_results

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
LONG = 20
#: The shared data name languages by ISO 639-3 (MasakhaNER) or 639-1; bundles use BCP-47.
TO_BCP47 = {"swa": "sw", "hau": "ha", "yor": "yo", "ibo": "ig", "zul": "zu", "xho": "xh", "sna": "sn",
            "nya": "ny", "kin": "rw", "lug": "lg", "tsn": "tn", "ewe": "ee", "twi": "tw", "wol": "wo",
            "bam": "bm"}


def read_sentences(path: Path) -> list[str]:
    from benchmarks.peer_spacy import read_conll

    return [" ".join(tokens) for tokens, _ in read_conll(path)]


def dev_sets(per_language: int) -> dict[str, list[str]]:
    """Language (BCP-47-ish) → sampled dev sentences, pooled over datasets (hi has two)."""
    out: dict[str, list[str]] = defaultdict(list)
    for path in sorted(DATA.glob("*/*/dev.conll")):
        code = TO_BCP47.get(path.parent.name, path.parent.name)
        sents = read_sentences(path)
        random.Random(0).shuffle(sents)
        out[code] += sents[:per_language]
    return dict(out)


def all_language_router(use_cld3: bool):
    """Profiles for every language with a train split, built by the pipeline's function."""
    from edge_finer.cld3 import load_detector
    from edge_finer.langprofile import parse_profile
    from edge_finer.router import Candidate, Router
    from edge_finer.scripts import expand, script_counts
    from quantize.profile import build_profile

    cands = []
    for path in sorted(DATA.glob("*/*/train.conll")):
        code = TO_BCP47.get(path.parent.name, path.parent.name)
        sents = read_sentences(path)
        counts = script_counts(" ".join(sents[:500]))
        scripts = [s for s, n in counts.items() if n >= 0.05 * sum(counts.values())]
        doc = build_profile(sents, {"bcp47": code})
        cands.append(Candidate(f"{path.parent.parent.name}-{path.parent.name}", path.parent, code,
                               frozenset(expand(scripts)), "-", parse_profile(doc, str(path)), 0))
    return Router(cands, load_detector() if use_cld3 else None)


def score(router, sets: dict[str, list[str]]) -> dict:
    installed = set(router.languages)
    confusion: dict[str, Counter] = {}
    summary = {}
    times = []
    for kind in ("long", "short"):
        tally = Counter()
        for lang, sents in sets.items():
            row = confusion.setdefault(f"{lang}/{kind}", Counter())
            for s in sents:
                if (len(s) >= LONG) != (kind == "long"):
                    continue
                t0 = time.perf_counter()
                d = router.route(s)
                times.append(time.perf_counter() - t0)
                got = d.language or "unknown"
                row[got] += 1
                if lang in installed:
                    tally["in_total"] += 1
                    tally["in_correct"] += got == lang
                    tally["in_unknown"] += got == "unknown"
                else:
                    tally["out_total"] += 1
                    tally["out_unknown"] += got == "unknown"
        summary[kind] = {
            "installed_sentences": tally["in_total"],
            "installed_accuracy": round(tally["in_correct"] / max(1, tally["in_total"]), 4),
            "installed_false_unknown": round(tally["in_unknown"] / max(1, tally["in_total"]), 4),
            "other_sentences": tally["out_total"],
            "other_unknown_rate": round(tally["out_unknown"] / max(1, tally["out_total"]), 4),
        }
    summary["route_ms_median"] = round(1000 * statistics.median(times), 3)
    return {"languages": sorted(installed), "summary": summary,
            "confusion": {k: dict(v) for k, v in confusion.items() if v}}


def annotation_share(router, sets: dict[str, list[str]], repeats: int) -> dict:
    """Routing time as a share of routing + annotation, per installed language, long sentences."""
    from edge_finer.annotator import Annotator

    out = {}
    for lang in router.languages:
        sents = [s for s in sets.get(lang, []) if len(s) >= LONG][:200]
        if not sents:
            continue
        decision = router.route(" ".join(sents[:5]))
        if decision.unknown:
            continue
        ann = Annotator.load(str(decision.path), threads=1)
        ann.warm_up()
        document = "\n".join(sents)
        route_t, ann_t, doc_t = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for s in sents:
                router.route(s)
            t1 = time.perf_counter()
            for s in sents:
                ann.annotate(s)
            t2 = time.perf_counter()
            router.route(document)  # --route document (the default): once per document
            t3 = time.perf_counter()
            route_t.append(t1 - t0)
            ann_t.append(t2 - t1)
            doc_t.append(t3 - t2)
        r, a, d = statistics.median(route_t), statistics.median(ann_t), statistics.median(doc_t)
        out[lang] = {"bundle": decision.bundle, "sentences": len(sents), "route_ms": round(1000 * r / len(sents), 3),
                     "annotate_ms": round(1000 * a / len(sents), 3), "share": round(r / (r + a), 4),
                     "document_route_ms": round(1000 * d, 3), "document_share": round(d / (d + a), 4)}
    return out


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# Routing accuracy (dev splits of ../shared/data)", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; one thread. "
             f"Command: `{res['command']}`. Up to {res['per_language']} sentences per language; long = "
             f">= {LONG} characters. 'installed accuracy' = routed to the right language among languages with "
             "a bundle; 'other unknown' = sentences of languages without a bundle answered unknown (anything "
             "else is a wrong routing).", ""]
    for name, runs in res["scenarios"].items():
        lines += [f"## Scenario `{name}`", ""]
        for variant, r in runs.items():
            lines += [f"### {variant}: {len(r['languages'])} languages ({', '.join(r['languages'])})", "",
                      "| sentences | installed n | installed accuracy | false unknown | other n | other unknown |",
                      "|---|---|---|---|---|---|"]
            for kind in ("long", "short"):
                s = r["summary"][kind]
                lines.append(f"| {kind} | {s['installed_sentences']} | {100 * s['installed_accuracy']:.2f} % | "
                             f"{100 * s['installed_false_unknown']:.2f} % | {s['other_sentences']} | "
                             f"{100 * s['other_unknown_rate']:.2f} % |")
            lines += ["", f"Median routing time per sentence: {r['summary']['route_ms_median']} ms.", ""]
            errors = []
            for key, row in sorted(r["confusion"].items()):
                lang, kind = key.split("/")
                total = sum(row.values())
                right = row.get(lang if lang in r["languages"] else "unknown", 0)
                wrong = {k: v for k, v in row.items() if k != (lang if lang in r["languages"] else "unknown")}
                if wrong:
                    errors.append(f"| {lang} | {kind} | {total} | {right} | "
                                  + ", ".join(f"{k} {v}" for k, v in sorted(wrong.items(), key=lambda kv: -kv[1]))
                                  + " |")
            if errors:
                lines += ["Confusions (rows with any error; full matrix in routing.json):", "",
                          "| true | kind | n | right | routed instead |", "|---|---|---|---|---|", *errors, ""]
    if res.get("share"):
        lines += ["## Routing cost against annotation (installed scenario, long sentences, one thread)", "",
                  "Per sentence (`--route sentence`: every sentence routed, then annotated alone) and per document "
                  "(the default: the same sentences as one document, routed once).", "",
                  "| language | bundle | sentences | route ms/sentence | annotate ms/sentence | share, sentence mode | "
                  "route ms/document | share, document mode |", "|---|---|---|---|---|---|---|---|"]
        for lang, s in res["share"].items():
            lines.append(f"| {lang} | {s['bundle']} | {s['sentences']} | {s['route_ms']} | {s['annotate_ms']} | "
                         f"{100 * s['share']:.2f} % | {s['document_route_ms']} | {100 * s['document_share']:.2f} % |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extra", action="append", default=[], help="another folder of bundles to install")
    ap.add_argument("--per-language", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from benchmarks.shipped import machine
    from edge_finer.cld3 import load_detector
    from edge_finer.router import Router

    # the user's own bundles must not leak into the figures: an empty user folder
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="edge-finer-bench.")
    os.environ["EDGE_FINER_BUNDLES"] = os.pathsep.join(str(Path(p).resolve()) for p in args.extra)
    sets = dev_sets(args.per_language)
    variants = [("n-gram + script", False)] + ([("n-gram + script + CLD3", True)] if load_detector() else [])
    res: dict = {"machine": machine(), "per_language": args.per_language, "scenarios": {},
                 "command": "python -m benchmarks.routing " + " ".join(f"--extra {e}" for e in args.extra)}
    res["scenarios"]["installed"] = {v: score(Router.installed(use_cld3=c), sets) for v, c in variants}
    res["scenarios"]["all"] = {v: score(all_language_router(c), sets) for v, c in variants}
    res["share"] = annotation_share(Router.installed(use_cld3=False), sets, args.repeats)
    save_results(args.out, "routing", res, markdown(res))


if __name__ == "__main__":
    main()
