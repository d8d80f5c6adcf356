"""Reliability soak: what the pytest suite checks quickly, at scale, with the shipped bundles.

1. any text: >= 100,000 Hypothesis-generated strings (arbitrary Unicode plus the known hazards:
   lone surrogates, NUL, CRLF, ZWJ/ZWNJ, combining marks, RTL, emoji, very long words, empty and
   whitespace-only) through every shipped bundle in turn and through the router; every result
   must satisfy the span invariants, and nothing may raise;
2. memory: RSS over 10,000 documents in streaming mode (drift from document 1,000 to 10,000);
3. a 50 MB single-line file through ``edge-finer annotate`` (peak RSS, time, exit code);
4. kill/resume: a batch run killed with SIGKILL at random points, resumed until it finishes,
   compared byte for byte with an uninterrupted run;
5. hostile bundles: every attack of benchmarks/hostile.py (ONNX graphs, tokenizers and
   manifests that ask for too much), each loaded and run on a sentence: refused or not, with
   one line or not, and the time it took to refuse.

The single-line file (3.) is larger than 8 MB, so ``annotate`` streams it (edge_finer/bigfile.py);
benchmarks/giant_record.py compares the streamed and the whole-text paths size by size.

    python -m benchmarks.soak [--examples 100000] [--docs 10000] [--big-mb 50] [--kills 40]

Writes ``benchmarks/results/soak.json`` and ``benchmarks/results/soak.md``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import save_results

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
HAZARDS = ["\ud800", "\udfff", "\r\n", "\r", "\n", "\x00", "\u200b", "\u200c", "\u200d", "\ufeff", "\u0301",
           "\u202e", "\u200f", "🙂", "👨\u200d👩\u200d👧", "。", "।", "॥", " ", "\t", ".", ". ", "Dr. ", "U.S. ",
           "שלום ", "مرحبا ", "x" * 300, "क्\u200dष", "ᱥᱟᱱᱛᱟᱲ", "ꯃꯤꯇꯩ"]
WORDS = ["Barack", "Obama", "Paris", "Louvre", "Delhi", "दिल्ली", "नरेंद्र", "মোদী", "কলকাতা", "ଭୁବନେଶ୍ୱର",
         "Nairobi", "Tanzania", "Kano", "Lagos", "Microsoft", "Google"]


def check_spans(text: str, ents: list, labels: set[str]) -> None:
    """The invariants of every result (as in tests/test_annotate.py, for real label sets)."""
    prev = -1
    for e in ents:
        assert 0 <= e.start < e.end <= len(text), e
        assert text[e.start:e.end] == e.text, e
        assert e.start >= prev, "overlapping or unsorted"
        prev = e.end
        assert not e.text[0].isspace() and not e.text[-1].isspace(), e
        assert not 0xD800 <= ord(e.text[0]) <= 0xDFFF and not 0xD800 <= ord(e.text[-1]) <= 0xDFFF, e
        assert "B-" + e.label in labels and 0.0 <= e.score <= 1.0, e


def any_text(examples: int) -> dict:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from edge_finer.annotator import Annotator
    from edge_finer.registry import installed
    from edge_finer.router import Router

    annotators = [Annotator.load(str(b.path), threads=1) for b in installed()]
    router = Router.installed(use_cld3=False)
    stats = {"examples": 0, "entities": 0, "chars": 0, "routed": 0, "unknown": 0}
    strategy = st.lists(st.one_of(st.sampled_from(HAZARDS), st.sampled_from(WORDS),
                                  st.text(st.characters(codec=None), max_size=8)), max_size=40)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(parts: list[str]) -> None:
        text = "".join(parts)
        ann = annotators[stats["examples"] % len(annotators)]
        ents = ann.annotate(text)
        check_spans(text, ents, set(ann.bundle.labels))
        d = router.route(text)
        assert d.bundle is None or d.language is not None  # a bundle always comes with its language
        for seg in router.route_sentences(text):
            assert 0 <= seg.start < seg.end <= len(text)
        stats["examples"] += 1
        stats["entities"] += len(ents)
        stats["chars"] += len(text)
        stats["routed" if d.bundle else "unknown"] += 1

    t0 = time.perf_counter()
    run()
    stats["seconds"] = round(time.perf_counter() - t0, 1)
    stats["bundles"] = [a.bundle.name for a in annotators]
    return stats


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def dev_sentences(limit: int = 2000) -> list[str]:
    path = ROOT.parent / "shared" / "data" / "multiconer2" / "en" / "dev.conll"
    from benchmarks.peer_spacy import read_conll

    return [" ".join(toks) for toks, _ in read_conll(path)][:limit]


def streaming_rss(docs: int) -> dict:
    from edge_finer.annotator import Annotator

    sents = dev_sentences()
    ann = Annotator.load(lang="en", threads=1)
    rng = random.Random(1)
    gen = (" ".join(rng.choice(sents) for _ in range(rng.randint(1, 8))) for _ in range(docs))
    samples = []
    t0 = time.perf_counter()
    for i, _ in enumerate(ann.stream(gen), 1):
        if i % 500 == 0:
            samples.append((i, round(_rss_mb(), 1)))
    at = dict(samples)
    base = at.get(1000, samples[0][1])
    return {"documents": docs, "bundle": ann.bundle.name, "rss_mb": samples,
            "drift_pct_from_doc_1000": round(100 * (samples[-1][1] - base) / base, 2),
            "max_drift_pct": round(100 * (max(v for _, v in samples) - base) / base, 2),
            "seconds": round(time.perf_counter() - t0, 1)}


def big_line(megabytes: int, work: Path) -> dict:
    sents = dev_sentences()
    rng = random.Random(2)
    path = work / "big.txt"
    with open(path, "w", encoding="utf-8") as fh:
        size = 0
        while size < megabytes * 2**20:
            s = rng.choice(sents) + " "
            fh.write(s)
            size += len(s.encode("utf-8"))
    out = work / "big-out"
    cmd = ["/usr/bin/time", "-v", sys.executable, str(ROOT / "cli.py"), "annotate", str(path), "--lang", "en",
           "-f", "jsonl", "-o", str(out), "--threads", "1"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak = next((int(line.split(":")[1]) / 1024 for line in proc.stderr.splitlines()
                 if "Maximum resident set size" in line), None)
    result = out / "big.jsonl"
    rec = json.loads(result.read_text(encoding="utf-8")) if result.is_file() else {}
    return {"megabytes": megabytes, "exit_code": proc.returncode, "seconds": round(seconds, 1),
            "peak_rss_mb": round(peak, 1) if peak else None, "entities": len(rec.get("entities", [])),
            "output_mb": round(result.stat().st_size / 2**20, 1) if result.is_file() else 0,
            "stderr_tail": proc.stderr.splitlines()[:2] if proc.returncode else []}


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _outputs(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else 0


def _kill_point(proc: subprocess.Popen, out: Path, rng: random.Random) -> bool:
    """Wait for a random point of the run (during start-up, or after 1-3 more outputs and a few
    milliseconds, so some kills land mid-write), then SIGKILL it; False if it finished first."""
    if rng.random() < 0.2:
        deadline = time.monotonic() + rng.uniform(0.05, 0.3)
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
    else:
        target = _outputs(out) + rng.randint(1, 3)
        while proc.poll() is None and _outputs(out) < target:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.03))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    return True


def kill_and_resume(base_cmd: list[str], out: Path, kills: int, env: dict, rng: random.Random) -> tuple[int, int]:
    """Run ``base_cmd -o out``, SIGKILL it at random points ``kills`` times, resuming each time,
    then let it finish.  Returns (kills landed, runs started).  Shared with tests/test_resume.py."""
    landed = runs = 0
    resume = False
    while True:
        cmd = base_cmd + ["-o", str(out)] + (["--resume"] if resume else [])
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        runs += 1
        if landed < kills and _kill_point(proc, out, rng):
            landed += 1
        _, err = proc.communicate()
        if proc.returncode == 0:
            return landed, runs
        if proc.returncode == -signal.SIGKILL:
            resume = True
        elif b"nothing to resume" in err:
            resume = False  # killed before it recorded the run: start it afresh
        else:
            raise RuntimeError(f"run failed ({proc.returncode}): {err.decode(errors='replace')}")
        if runs > 2 * kills + 10:
            raise RuntimeError("the batch never finished")


def kill_resume_soak(kills: int, work: Path) -> dict:
    sents = dev_sentences()
    rng = random.Random(3)
    src = work / "corpus"
    for i in range(300):
        sub = src / f"part{i % 5}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"doc{i:03d}.txt").write_text("\n".join(rng.choice(sents) for _ in range(30)) + "\n", encoding="utf-8")
    before = digest(src)
    base = [sys.executable, str(ROOT / "cli.py"), "annotate", str(src), "--lang", "en", "-f", "jsonl", "--threads", "1"]
    t0 = time.perf_counter()
    subprocess.run(base + ["-o", str(work / "clean")], check=True, capture_output=True)
    full = time.perf_counter() - t0
    landed, runs = kill_and_resume(base, work / "killed", kills, dict(os.environ), rng)
    same = digest(work / "killed") == digest(work / "clean")
    return {"files": 300, "kills": landed, "runs": runs, "uninterrupted_seconds": round(full, 1),
            "byte_identical": same, "inputs_unchanged": digest(src) == before}


def hostile(work: Path) -> dict:
    """Build every attack from the tests' tiny bundle and time how long each takes to refuse."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_bundle import make_tiny_bundle

    from benchmarks.hostile import ATTACKS, PROBE_TEXT
    from edge_finer.annotator import Annotator
    from edge_finer.bundle import open_bundle
    from edge_finer.errors import EdgeFinerError

    base = make_tiny_bundle(work / "hostile" / "base")
    rows = []
    for attack in ATTACKS:
        folder = work / "hostile" / attack.name
        attack.build(base, folder)
        t0 = time.perf_counter()
        try:
            Annotator(open_bundle(folder), threads=1).warm_up().annotate(PROBE_TEXT)
            refused, message = False, ""
        except EdgeFinerError as exc:
            refused, message = True, str(exc)
        rows.append({"attack": attack.name, "target": attack.target, "what": attack.what, "refused": refused,
                     "one_line": refused and "\n" not in message and "\x1b" not in message,
                     "expected_reason": attack.expect in message, "ms": round(1000 * (time.perf_counter() - t0), 1),
                     "message": message.replace(str(folder), "BUNDLE")[:200]})
    return {"tried": len(rows), "refused": sum(r["refused"] for r in rows),
            "one_line": sum(r["one_line"] for r in rows), "attacks": rows}


def markdown(res: dict) -> str:
    m, a, r, b, k = res["machine"], res["any_text"], res["streaming"], res["big_line"], res["kill_resume"]
    h = res.get("hostile")
    hostile_rows = [] if h is None else [
        f"| hostile bundles | {h['tried']} attacks tried ({sum(x['target'] == 'model' for x in h['attacks'])} ONNX "
        f"graphs, {sum(x['target'] == 'tokenizer' for x in h['attacks'])} tokenizers, "
        f"{sum(x['target'] == 'manifest' for x in h['attacks'])} manifests), {h['refused']} refused, {h['one_line']} "
        f"with one clean line; slowest refusal {max(x['ms'] for x in h['attacks'])} ms |"]
    hostile_table = [] if h is None else [
        "", "Hostile bundles (benchmarks/hostile.py), each loaded and run on one sentence:", "",
        "| attack | target | what | refused | ms | refusal |", "|---|---|---|---|---:|---|"] + [
        f"| {x['attack']} | {x['target']} | {x['what']} | {'yes' if x['refused'] else 'NO'} | {x['ms']} | "
        f"{x['message'].replace('|', '/')} |" for x in h["attacks"]]
    return "\n".join([
        "# Reliability soak", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime {m['onnxruntime']}; "
        f"one thread. Command: `python -m benchmarks.soak`.", "",
        "| check | result |", "|---|---|",
        f"| any text (Hypothesis) | {a['examples']:,} examples, {a['chars']:,} characters, {a['entities']:,} entities, "
        f"0 failures, through {len(a['bundles'])} bundles and the router ({a['seconds']} s) |",
        f"| streaming RSS | {r['documents']:,} documents ({r['bundle']}): drift {r['drift_pct_from_doc_1000']} % "
        f"from document 1,000 to the last, largest excursion {r['max_drift_pct']} % |",
        f"| {b['megabytes']} MB single line | exit {b['exit_code']}, {b['seconds']} s, peak RSS {b['peak_rss_mb']} MB, "
        f"{b['entities']:,} entities, {b['output_mb']} MB of jsonl |",
        f"| SIGKILL + --resume | {k['kills']} kills over {k['runs']} runs of a {k['files']}-file batch: outputs "
        f"byte-identical {k['byte_identical']}, inputs unchanged {k['inputs_unchanged']} |",
        *hostile_rows,
        "", "RSS samples (document, MB): " + ", ".join(f"{i}: {v}" for i, v in r["rss_mb"]), *hostile_table, ""])


PARTS = ("streaming", "any_text", "kill_resume", "big_line", "hostile")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=100_000)
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--big-mb", type=int, default=50)
    ap.add_argument("--kills", type=int, default=40)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--only", action="append", choices=PARTS, help="rerun only these parts, keeping the others' "
                    "results from the existing soak.json")
    args = ap.parse_args()
    from benchmarks.shipped import machine

    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="edge-finer-soak.")  # shipped bundles only
    res = {"machine": machine()}
    if args.only and (args.out / "soak.json").is_file():
        res = {**json.loads((args.out / "soak.json").read_text(encoding="utf-8")), **res}
    with tempfile.TemporaryDirectory(prefix="edge-finer-soak.") as tmp:
        work = Path(tmp)
        for name, fn in (("streaming", lambda: streaming_rss(args.docs)), ("any_text", lambda: any_text(args.examples)),
                         ("kill_resume", lambda: kill_resume_soak(args.kills, work)),
                         ("big_line", lambda: big_line(args.big_mb, work)), ("hostile", lambda: hostile(work))):
            if args.only and name not in args.only:
                continue
            print(f"{name} ...", flush=True)
            res[name] = fn()
            print(json.dumps(res[name])[:300], flush=True)
    save_results(args.out, "soak", res, markdown(res))


if __name__ == "__main__":
    main()
