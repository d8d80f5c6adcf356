"""Pre-tokenised input on real dev sets: do the tokens line up, and what does seqeval say?

For each shipped bundle named below, its dev split (``../shared/data/<dataset>/<lang>/dev.conll``)
goes through the command a linguist would run::

    edge-finer annotate dev.conll --input-format conll -b BUNDLE -f conll

and the output is checked row by row against the input: a sentence *lines up* when its output
rows are the input rows with one tag column added (must be 100 %).  seqeval (strict IOB2) then
scores the new column against the gold column, at the bundle's default threshold.  For contrast,
the same sentences as raw text (tokens joined by spaces, ``--input-format text``): the share
whose runtime words equal the gold tokens, i.e. the sentences a user could score at all before.

    python -m benchmarks.pretokenised [--bundles masakhaner2-hau il-ner-hi]

Writes ``benchmarks/results/pretokenised.json`` and ``benchmarks/results/pretokenised.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import save_results

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"

#: bundle -> dev split it was evaluated on
DEV = {"masakhaner2-hau": "masakhaner2/hau", "il-ner-hi": "il-ner/hi", "masakhaner2-swa": "masakhaner2/swa",
       "masakhaner2-yor": "masakhaner2/yor", "il-ner-or": "il-ner/or", "multiconer2-en": "multiconer2/en"}


def sentences(text: str) -> list[list[str]]:
    out, cur = [], []
    for line in text.split("\n"):
        if not line.strip():
            if cur:
                out.append(cur)
                cur = []
        else:
            cur.append(line)
    if cur:
        out.append(cur)
    return out


def cli(*args: str) -> tuple[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, str(ROOT / "cli.py"), "annotate", *args], capture_output=True, text=True,
                         env=env, check=True)
    return res.stdout, time.perf_counter() - t0


def measure(bundle: str, dataset: str) -> dict:
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    from edge_finer.pretokenize import words

    path = DATA / dataset / "dev.conll"
    gold_rows = sentences(path.read_text(encoding="utf-8"))
    out, seconds = cli(str(path), "--input-format", "conll", "-b", bundle, "-f", "conll")
    got_rows = sentences(out)
    lined_up = 0
    gold, pred = [], []
    for g, o in zip(gold_rows, got_rows):
        if len(g) == len(o) and all(ro.rsplit("\t", 1)[0] == rg for rg, ro in zip(g, o)):
            lined_up += 1
        gold.append([r.split("\t")[-1] for r in g])
        pred.append([r.rsplit("\t", 1)[1] for r in o])
    # before: the same sentences as raw text lines, split by the runtime
    tokens = [[r.split("\t")[0] for r in g] for g in gold_rows]
    same_grid = sum(1 for toks in tokens if words(" ".join(toks)) == toks)
    manifest = json.loads((ROOT / "bundles" / bundle / "manifest.json").read_text(encoding="utf-8"))
    ev = manifest.get("evaluation", {})
    cal = ev.get("threshold_calibration", {})
    return {"bundle": bundle, "dataset": dataset, "sentences": len(gold_rows), "output_sentences": len(got_rows),
            "lined_up": lined_up / max(1, len(gold_rows)),
            "raw_text_same_tokens": same_grid / max(1, len(gold_rows)),
            "f1": round(f1_score(gold, pred, mode="strict", scheme=IOB2), 4),
            "precision": round(precision_score(gold, pred, mode="strict", scheme=IOB2), 4),
            "recall": round(recall_score(gold, pred, mode="strict", scheme=IOB2), 4),
            "manifest_f1_calibrated": cal.get("f1"), "threshold": manifest.get("decoding", {}).get("threshold"),
            "seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundles", nargs="+", default=["masakhaner2-hau", "il-ner-hi"])
    args = ap.parse_args()
    rows = []
    for b in args.bundles:
        rows.append(measure(b, DEV[b]))
        print(rows[-1], flush=True)
    from benchmarks.routing import cpu

    m = cpu()
    lines = ["# Pre-tokenised input: dev splits through `annotate --input-format conll -f conll`", "",
             f"Machine: {m['cpu']}, lscpu flags: avx2 {'yes' if m['lscpu_flags'].get('avx2') else 'no'}, "
             f"avx512_vnni {'yes' if m['lscpu_flags'].get('avx512_vnni') else 'no'}; one thread. "
             "`python -m benchmarks.pretokenised`.", "",
             "| bundle | dev split | sentences | tokens line up | raw text: same tokens | seqeval F1 (P / R) | "
             "build's calibrated F1 | time |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        man = f"{100 * r['manifest_f1_calibrated']:.1f}" if r["manifest_f1_calibrated"] else "-"
        lines.append(f"| {r['bundle']} | {r['dataset']} | {r['sentences']} | {100 * r['lined_up']:.1f} % | "
                     f"{100 * r['raw_text_same_tokens']:.1f} % | {100 * r['f1']:.1f} ({100 * r['precision']:.1f} / "
                     f"{100 * r['recall']:.1f}) | {man} (threshold {r['threshold']}) | {r['seconds']} s |")
    lines += ["", "\"tokens line up\": output rows equal to the input rows plus one tag column (sentence by sentence). "
              "\"raw text: same tokens\": sentences whose runtime words, from the tokens joined by spaces, equal the "
              "gold tokens: the only ones a user could score before `--input-format` (the rest came out on "
              "another token grid). \"build's calibrated F1\": the bundle manifest's own dev figure at its default "
              "threshold, computed by the build on the same tokens; the F1 here should match it up to int8 batch "
              "effects."]
    save_results(RESULTS, "pretokenised", {"machine": m, "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
