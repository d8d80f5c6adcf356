"""Peak memory of ``edge-finer annotate`` on one giant single-line file, by size.

Each run is a fresh process under ``/usr/bin/time -v`` (its "Maximum resident set size"):
``annotate FILE -b BUNDLE -f jsonl -o OUT --threads 1``.  The files are generated in a
temporary folder (dev sentences joined by spaces, as benchmarks/soak.py does) and deleted
afterwards; nothing large is committed.

- ``baseline``: the same command on a one-line, one-sentence file (process, model, tokenizer);
- ``streamed``: the path ``annotate`` takes for a file above 8 MB, annotated as a stream
  (edge_finer/bigfile.py; the threshold is set to 0 here so that small sizes stream too);
- ``whole``: the whole-text path forced (``bigfile.STREAM_FILE_BYTES`` raised), as before.

``--extra-sizes`` adds two series on the tiny bundle that streamed only since issue 15's
second part: a routed run (no ``-b``: a tiny bundle with an English profile is the one
installed bundle, picked by the router from the sample cut from the file) and a Latin-1 file
(``--encoding latin-1``, the dev sentences with accented names mixed in).  ``--keep`` keeps
the rows already in the results file (marked as from their earlier run) and adds the new ones.

A shipped bundle annotates ~80 KB/s on one core, so 200 MB would take ~45 minutes: the shipped
English bundle is measured at a few sizes, and the tests' tiny gazetteer bundle (same runtime,
a model that costs almost nothing, built with the shipped bundles' 128-token windows) carries
the sizes up to 200 MB to show the peak is flat in the size.  The outputs of both paths are
compared byte for byte where both ran.

    python -m benchmarks.giant_record [--sizes 5,20] [--tiny-sizes 20,50,200] [--whole-sizes 5]
    python -m benchmarks.giant_record --sizes '' --tiny-sizes '' --extra-sizes 4 --whole-sizes 4 --keep
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import save_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
WHOLE = "import sys, edge_finer.bigfile as b; b.STREAM_FILE_BYTES = 1 << 62; sys.argv[0] = 'cli.py'; import cli; cli.main()"
STREAM = "import sys, edge_finer.bigfile as b; b.STREAM_FILE_BYTES = 0; sys.argv[0] = 'cli.py'; import cli; cli.main()"


#: Mixed into the Latin-1 file: characters outside ASCII that Latin-1 writes in one byte.
ACCENTED = ["Zoë Müller flew from São Paulo to Zürich.", "Señor Núñez met Françoise Côté in Besançon.",
            "Søren Åberg visited Þingvellir and Reykjavík."]


def make_line(path: Path, megabytes: float, sentences: list[str], encoding: str = "utf-8") -> None:
    rng = random.Random(2)
    with open(path, "w", encoding=encoding, errors="replace") as fh:
        size = 0
        while size < megabytes * 2**20:
            s = (rng.choice(ACCENTED) if encoding != "utf-8" and rng.random() < 0.2 else rng.choice(sentences)) + " "
            fh.write(s)
            size += len(s.encode(encoding, "replace"))


def run(path: Path, bundle: str | None, out: Path, mode: str, args: tuple = (), env: dict | None = None) -> dict:
    """``bundle`` None: routed (the bundles installed in ``env``)."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", WHOLE if mode == "whole" else STREAM, "annotate", str(path),
           *(["-b", bundle] if bundle else []), "-f", "jsonl", "-o", str(out), "--threads", "1", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t0
    peak = next((int(line.split(":")[1]) / 1024 for line in proc.stderr.splitlines()
                 if "Maximum resident set size" in line), None)
    result = out / (path.stem + ".jsonl")
    digest = hashlib.sha256()
    entities = 0
    if result.is_file():
        with open(result, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
                entities += block.count(b'"coarse_label"')
    row = {"mode": mode, "input_mb": round(path.stat().st_size / 2**20, 1), "exit_code": proc.returncode,
           "seconds": round(seconds, 1), "peak_rss_mb": round(peak, 1) if peak else None, "entities": entities,
           "output_mb": round(result.stat().st_size / 2**20, 1) if result.is_file() else 0,
           "sha256": digest.hexdigest()[:16] if result.is_file() else None}
    if proc.returncode:
        row["stderr"] = [line for line in proc.stderr.splitlines() if line.startswith("error")][:2]
    if result.is_file():
        result.unlink()
    return row


def series(bundle: str | None, label: str, sizes: list[float], whole_sizes: list[float], sentences: list[str],
           work: Path, encoding: str = "utf-8", env: dict | None = None) -> list[dict]:
    rows = []
    one = work / "one.txt"
    one.write_text(sentences[0] + "\n", encoding="utf-8")
    args = ("--encoding", encoding) if encoding != "utf-8" else ()
    base = run(one, bundle, work / "out", "streamed", args, env)
    rows.append({**base, "mode": "baseline", "bundle": label, "input_mb": 0.0})
    print(json.dumps(rows[-1]), flush=True)
    for mb in sizes:
        path = work / f"line{mb:g}.txt"
        make_line(path, mb, sentences, encoding)
        for mode in (["whole"] if mb in whole_sizes else []) + ["streamed"]:
            rows.append({**run(path, bundle, work / "out", mode, args, env), "bundle": label})
            print(json.dumps(rows[-1]), flush=True)
        path.unlink()
    return rows


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# Giant single-line records: peak memory", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime {m['onnxruntime']}; one "
             "thread (`--threads 1`). Command: `python -m benchmarks.giant_record`. Peak RSS from "
             "`/usr/bin/time -v` of `edge-finer annotate FILE -b BUNDLE -f jsonl -o OUT --threads 1` on one line of "
             "English dev sentences; the file is generated in /tmp and deleted. Routed rows: no `-b`, the "
             "router picks the one installed bundle from the sample it takes of the file; Latin-1 rows: "
             "`--encoding latin-1`, accented names mixed in. Run: `earlier` rows are kept from the run before "
             "(same machine, same code path for them), `this` rows are from the run that wrote this file.", "",
             "| bundle | path | input MB | peak RSS MB | over baseline MB | seconds | entities | output MB | same bytes "
             "| run |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for label in dict.fromkeys(r["bundle"] for r in res["rows"]):
        rows = [r for r in res["rows"] if r["bundle"] == label]
        base = next(r["peak_rss_mb"] for r in rows if r["mode"] == "baseline")
        for r in rows:
            twin = next((o for o in rows if o is not r and o["input_mb"] == r["input_mb"]
                         and o["mode"] in ("whole", "streamed") and r["mode"] in ("whole", "streamed")), None)
            same = "" if twin is None else ("yes" if twin["sha256"] == r["sha256"] else "NO")
            lines.append(f"| {label} | {r['mode']} | {r['input_mb']} | {r['peak_rss_mb']} | "
                         f"{'' if r['mode'] == 'baseline' else round(r['peak_rss_mb'] - base, 1)} | {r['seconds']} | "
                         f"{r['entities']:,} | {r['output_mb']} | {same} | {r.get('run', 'this')} |")
    lines += ["", res.get("note", ""), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="5,20", help="MB, shipped English bundle")
    ap.add_argument("--whole-sizes", default="5", help="MB also run on the whole-text path (both bundles)")
    ap.add_argument("--tiny-sizes", default="20,50,200", help="MB, the tests' tiny gazetteer bundle")
    ap.add_argument("--extra-sizes", default="", help="MB, tiny bundle routed and in Latin-1 (e.g. 4)")
    ap.add_argument("--keep", action="store_true", help="keep the rows already in the results, as earlier ones")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from benchmarks.shipped import machine
    from benchmarks.soak import dev_sentences

    sizes = [float(x) for x in args.sizes.split(",") if x]
    tiny_sizes = [float(x) for x in args.tiny_sizes.split(",") if x]
    whole = [float(x) for x in args.whole_sizes.split(",") if x]
    extra_sizes = [float(x) for x in args.extra_sizes.split(",") if x]
    sentences = dev_sentences()
    res: dict = {"machine": machine(), "rows": []}
    earlier = json.loads((args.out / "giant_record.json").read_text(encoding="utf-8")) if args.keep else None
    if earlier:
        res["rows"] = [{**r, "run": r.get("run", "earlier")} for r in earlier["rows"]]
    with tempfile.TemporaryDirectory(prefix="edge-finer-giant.") as tmp:
        work = Path(tmp)
        if sizes:
            res["rows"] += series(str(ROOT / "bundles" / "multiconer2-en"), "multiconer2-en", sizes, whole,
                                  sentences, work)
        if tiny_sizes:
            sys.path.insert(0, str(ROOT / "tests"))
            from tiny_bundle import make_tiny_bundle

            # the shipped bundles' window (128 tokens, stride 32), not the tests' 16: the pipeline's
            # cost per megabyte is then the shipped one's, less the model
            tiny = make_tiny_bundle(work / "bundles" / "tiny-en", max_length=128, stride=32)
            res["rows"] += series(str(tiny), "tiny, 128-token windows", tiny_sizes, whole, sentences, work)
        if extra_sizes:
            sys.path.insert(0, str(ROOT / "tests"))
            from tiny_bundle import make_tiny_bundle

            tiny = make_tiny_bundle(work / "bundles" / "tiny-en")
            res["rows"] += series(str(tiny), "tiny, Latin-1", extra_sizes, whole, sentences, work, "latin-1")
            make_tiny_bundle(work / "routed" / "tiny-en-profiled", name="tiny-en-profiled", profile_text=sentences)
            env = {"EDGE_FINER_BUNDLES": str(work / "routed"), "EDGE_FINER_SHIPPED": "0"}
            res["rows"] += series(None, "tiny, routed", extra_sizes, whole, sentences, work, env=env)
    res["note"] = (earlier or {}).get("note") or ("Before this change (benchmarks/results/soak.md) the whole-text path peaked at 1,400.9 MB on a "
                   "50 MB line with the English bundle.")
    save_results(args.out, "giant_record", res, markdown(res))


if __name__ == "__main__":
    main()
