"""How sure is a dev-F1 gap between a shipped bundle and its spaCy peer?  A paired bootstrap.

Why: accuracy rounds compare figures 0.1-0.5 apart on dev splits with a few hundred entities
(Odia: 565), where one system's F1 alone moves by about two points from one sample of
sentences to another.  Resampling the dev sentences (with replacement) and scoring *both*
systems on each resample gives the spread of their difference on text like this split: the
share of resamples in which the bundle is at least as good, and a 95 % interval.

Both systems are scored exactly as everywhere else: seqeval strict IOB2 on the gold token grid;
the bundle through the runtime at its default (calibrated) threshold, as ``benchmarks.shipped``
(or at ``--threshold``, e.g. 0, one not fitted on the split compared on);
spaCy from a model that ``benchmarks/peer_spacy.py`` trained (its ``model/model-best``).

    python -m benchmarks.paired_bootstrap il-ner-or --spacy-model .build/spacy-or/model/model-best

Writes ``benchmarks/results/paired_bootstrap.json`` and ``.md`` (one row per bundle, merged).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def bundle_tags(bundle: Path, sentences: Sequence[list[str]], threshold: float | None = None) -> list[list[str]]:
    """The bundle's IOB2 tags on the gold tokens, at its default threshold (the runtime's path) or
    at ``threshold`` (which replaces the per-type ones too, as ``--threshold`` does)."""
    from edge_finer.annotator import Annotator
    from edge_finer.bundle import open_bundle
    from quantize.evaluate import gold_text, spans_to_tags

    b = open_bundle(bundle)
    annotator = Annotator(b, threads=1, threshold=threshold)
    texts, grids = zip(*(gold_text(tokens, b.pretokenizer.key) for tokens in sentences))
    found = annotator.annotate_batch(list(texts))
    return [spans_to_tags(ents, grid) for ents, grid in zip(found, grids)]


def counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> np.ndarray:
    """Per sentence: (entities right, entities predicted, gold entities), strict IOB2 as seqeval
    counts them, so that summing the rows gives seqeval's micro F1 exactly."""
    from seqeval.scheme import IOB2, Entities

    g = Entities([list(x) for x in gold], IOB2).entities
    p = Entities([list(x) for x in pred], IOB2).entities
    rows = []
    for gs, ps in zip(g, p):
        gs_, ps_ = {e.to_tuple() for e in gs}, {e.to_tuple() for e in ps}
        rows.append((len(gs_ & ps_), len(ps_), len(gs_)))
    return np.array(rows, dtype=np.int64)


def f1_of(c: np.ndarray) -> np.ndarray:
    """Micro F1 from summed counts; ``c`` is (..., 3)."""
    tp, npred, ngold = c[..., 0], c[..., 1], c[..., 2]
    denom = npred + ngold
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def paired_bootstrap(ours: np.ndarray, theirs: np.ndarray, resamples: int, seed: int) -> dict:
    """The difference of micro F1 (ours - theirs) over ``resamples`` resamples of the sentences."""
    rng = np.random.default_rng(seed)
    n = len(ours)
    diffs = np.empty(resamples)
    for k in range(resamples):
        idx = rng.integers(0, n, n)
        diffs[k] = f1_of(ours[idx].sum(0)) - f1_of(theirs[idx].sum(0))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"f1_ours": float(f1_of(ours.sum(0))), "f1_theirs": float(f1_of(theirs.sum(0))),
            "difference": float(f1_of(ours.sum(0)) - f1_of(theirs.sum(0))),
            "ci95": [float(lo), float(hi)], "share_ours_at_least_as_good": float(np.mean(diffs >= 0)),
            "resamples": resamples, "seed": seed, "sentences": n, "gold_entities": int(ours[:, 2].sum())}


def machine() -> dict:
    from benchmarks.shipped import cpu_flags, machine as shipped_machine

    return {"cpu": shipped_machine()["cpu"], "flags": cpu_flags(), "python": platform.python_version()}


def markdown(rows: dict[str, dict], mach: dict) -> str:
    lines = ["# Paired bootstrap: shipped bundle against its spaCy peer (dev splits)", "",
             f"Machine: {mach['cpu']} (CPU flags: {mach['flags']}); speed plays no part here. Command: "
             "`python -m benchmarks.paired_bootstrap BUNDLE --spacy-model DIR` (see its docstring).", "",
             "Both systems score the same dev sentences (seqeval strict IOB2, gold token grid; the bundle at "
             "its default threshold through the runtime, spaCy from the peer trained by "
             "`benchmarks/peer_spacy.py`); the sentences are resampled with replacement and both are scored "
             "on each resample. 'at least as good' is the share of resamples in which the bundle's F1 is "
             ">= spaCy's.", "",
             "| bundle | dev sentences | gold entities | bundle F1 | spaCy F1 | difference | 95 % interval | "
             "at least as good | resamples |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in sorted(rows.items()):
        lines.append(f"| {name} | {r['sentences']} | {r['gold_entities']} | {100 * r['f1_ours']:.2f} | "
                     f"{100 * r['f1_theirs']:.2f} | {100 * r['difference']:+.2f} | "
                     f"[{100 * r['ci95'][0]:+.2f}, {100 * r['ci95'][1]:+.2f}] | "
                     f"{100 * r['share_ours_at_least_as_good']:.1f} % | {r['resamples']} |")
    notes = [f"- {name}: {r['remark']}" for name, r in sorted(rows.items()) if r.get("remark")]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.paired_bootstrap", description=__doc__.split("\n")[0])
    ap.add_argument("bundle", help="a shipped bundle's name (bundles/NAME, scored on its recipe's dev split)")
    ap.add_argument("--spacy-model", type=Path, required=True, help="spaCy model folder (peer_spacy.py's model-best)")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--remark", default="", help="a line on how the peer was trained (kept with the row)")
    ap.add_argument("--row", default="", help="the row's name in the report (default: the bundle's; another name "
                    "keeps a row per peer, e.g. one per spaCy seed)")
    ap.add_argument("--threshold", type=float, default=None,
                    help="score the bundle at this entity-score threshold instead of its default (e.g. 0: one not "
                         "fitted on the dev split the comparison is made on)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import spacy

    from benchmarks.peer_spacy import predict_tags, read_conll
    from benchmarks.shipped import dataset_dir

    if not args.spacy_model.is_dir():
        print(f"error: {args.spacy_model}: no such spaCy model folder (train one with benchmarks/peer_spacy.py)",
              file=sys.stderr)
        return 2
    dev = read_conll(dataset_dir(args.bundle) / "dev.conll")  # as benchmarks.shipped and the peer read it
    words, gold = [w for w, _ in dev], [t for _, t in dev]
    ours = counts(gold, bundle_tags(ROOT / "bundles" / args.bundle, words, args.threshold))
    theirs = counts(gold, predict_tags(spacy.load(args.spacy_model), words))
    row = paired_bootstrap(ours, theirs, args.resamples, args.seed)
    row.update({"spacy_version": spacy.__version__, "remark": args.remark, "threshold": args.threshold})
    path = args.out / "paired_bootstrap.json"
    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    rows = {**old.get("bundles", {}), (args.row or args.bundle): row}
    from benchmarks.report import save_results

    mach = machine()
    save_results(args.out, "paired_bootstrap", {"machine": mach, "bundles": rows}, markdown(rows, mach))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
