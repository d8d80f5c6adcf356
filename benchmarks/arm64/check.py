"""Run fixed sentences through every shipped bundle, by the Python API and by the CLI.

Runs unchanged on the x86 host and inside the emulated arm64 root; ``compare.py`` then checks
that both gave the same entities.  Standard library plus the installed edge-finer only (it
runs in the arm64 venv, which has nothing else).

    python check.py SENTENCES.json OUT.json
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time


def cli_run(bundle: str, lines: list[str]) -> tuple[list[dict], float, float]:
    """Entities per line from ``edge-finer annotate``, wall seconds, and the child's peak RSS."""
    cmd = [sys.executable, "-m", "cli", "annotate", "--bundle", bundle, "--threads", "1", "-f", "jsonl"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return [json.loads(line) for line in proc.stdout.splitlines()], seconds, rss_mb


def cold_start() -> dict:
    """Process start to first entity for the CLI with one sentence, and the bare import floor."""
    out = {}
    for name, cmd in (("floor_import", [sys.executable, "-c", "import onnxruntime, tokenizers, numpy"]),
                      ("api_import", [sys.executable, "-c", "import edge_finer.annotator"]),
                      ("cli_first_entity", [sys.executable, "-m", "cli", "annotate", "--lang", "en", "--threads", "1",
                                            "-f", "jsonl", "-t", "Barack Obama visited the Louvre in Paris."])):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        out[name] = {"seconds": round(time.perf_counter() - t0, 3),
                     "peak_rss_mb_so_far": round(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
                                                 / 1024, 1)}
    return out


def main() -> None:
    sentences_path, out_path = sys.argv[1], sys.argv[2]
    sentences = json.load(open(sentences_path, encoding="utf-8"))
    from edge_finer.annotator import Annotator

    result = {"machine": {"machine": platform.machine(), "python": platform.python_version(),
                          "qemu_cpu": os.environ.get("QEMU_CPU", "")},
              "bundles": {}, "cold_start": cold_start()}
    import onnxruntime

    result["machine"]["onnxruntime"] = onnxruntime.__version__
    for name, lines in sentences.items():
        t0 = time.perf_counter()
        ann = Annotator.load(name, threads=1)
        api = [[{"start": e.start, "end": e.end, "label": e.label, "score": e.score} for e in ann.annotate(s)]
               for s in lines]
        api_seconds = time.perf_counter() - t0
        recs, cli_seconds, cli_rss = cli_run(name, lines)
        cli = [[{k: e[k] for k in ("start", "end", "label", "score")} for e in r["entities"]] for r in recs]
        result["bundles"][name] = {"api": api, "cli": cli, "api_seconds": round(api_seconds, 2),
                                   "cli_seconds": round(cli_seconds, 2), "cli_peak_rss_mb": round(cli_rss, 1)}
        print(f"{name}: {sum(map(len, api))} entities, api {api_seconds:.1f} s, cli {cli_seconds:.1f} s", flush=True)
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
