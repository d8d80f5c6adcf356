"""Cold start and peak memory of one-shot annotation, against the import floor, in one run.

What a field linguist feels is "type the command, see the entities": process start to first
entity.  This measures, interleaved and repeated (median reported):
- floor: ``python -c "import onnxruntime, tokenizers, numpy"`` (nothing of ours);
- cli:   ``edge-finer annotate --text ... --bundle B -f jsonl`` (checked to print an entity line);
- api:   ``python -c "from edge_finer import Annotator; Annotator.load(B).annotate(...)"``;
each under ``/usr/bin/time -v`` for wall time and peak RSS.

    python -m benchmarks.cold_start [--bundle NAME] [--text T] [--repeats 7]

Writes ``benchmarks/results/cold_start.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import save_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TIME = "/usr/bin/time"


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in KiB, and stdout of one run of ``cmd``.

    Wall time from a monotonic clock around the run (``time -v`` prints only centiseconds);
    the ``time`` wrapper's own start costs every command the same.
    """
    t0 = time.perf_counter()
    proc = subprocess.run([TIME, "-v", *cmd], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    assert rss, proc.stderr
    return wall, int(rss.group(1)), proc.stdout


def console_script() -> list[str]:
    """The ``edge-finer`` that pip installed next to this interpreter.

    Not the first one on PATH: version managers put shell-script shims there (pyenv's costs
    ~90 ms per start here), which the floor, run with ``sys.executable``, would not pay.
    """
    beside = Path(sys.executable).parent / "edge-finer"
    if beside.is_file():
        return [str(beside)]
    exe = shutil.which("edge-finer")
    return [exe] if exe else [sys.executable, str(ROOT / "cli.py")]


def compile_bytecode() -> None:
    """Compile our modules as ``pip install`` does, so a source checkout (or an editable
    install under PYTHONDONTWRITEBYTECODE) is not measured recompiling itself each start."""
    import compileall

    compileall.compile_dir(str(ROOT / "edge_finer"), quiet=1)
    compileall.compile_file(str(ROOT / "cli.py"), quiet=1)


def measure(name: str, text: str, repeats: int) -> dict:
    """Median wall time and peak RSS of each command, interleaved; floor first."""
    if not Path(TIME).exists():
        sys.exit("needs GNU time at /usr/bin/time (apt-get install time)")
    compile_bytecode()
    cli = console_script()
    only = Path(tempfile.mkdtemp(prefix="edge-finer-one-bundle."))
    (only / name).symlink_to(ROOT / "bundles" / name, target_is_directory=True)
    alone = ["env", "EDGE_FINER_SHIPPED=0", f"EDGE_FINER_BUNDLES={only}"]
    systems = {
        "floor": [sys.executable, "-c", "import onnxruntime, tokenizers, numpy"],
        # where the CLI's excess goes: the floor plus typer and our command module, no work
        "cli_imports": [sys.executable, "-c", "import onnxruntime, tokenizers, numpy, typer, cli"],
        "cli": [*cli, "annotate", "--text", text, "--bundle", name, "-f", "jsonl", "--threads", "1"],
        # no --bundle: the router reads every installed bundle's profile first
        "cli_routed": [*cli, "annotate", "--text", text, "-f", "jsonl", "--threads", "1"],
        # the same with this one bundle installed and nothing shipped
        "cli_routed_one": [*alone, *cli, "annotate", "--text", text, "-f", "jsonl", "--threads", "1"],
        "api": [sys.executable, "-c", "import sys; from edge_finer import Annotator; "
                f"e = Annotator.load({name!r}, threads=1).annotate(sys.argv[1]); print(len(e))", text],
    }
    runs: dict[str, list[tuple[float, int]]] = {k: [] for k in systems}
    try:
        for k, cmd in systems.items():  # warm the page cache once
            timed(cmd)
        for _ in range(repeats):
            for k, cmd in systems.items():
                wall, rss, out = timed(cmd)
                if k.startswith("cli_routed") or k == "cli":
                    assert json.loads(out.splitlines()[0])["text"] == text
                runs[k].append((wall, rss))
    finally:
        shutil.rmtree(only, ignore_errors=True)
    # This shared machine's speed drifts by up to 1.5x within minutes, so "over floor" is the
    # median of per-round differences (each command against the floor run of the same round),
    # which cancels the drift; the difference of the two medians is kept for comparison.
    summary = {k: {"wall_s_median": statistics.median(w for w, _ in v),
                   "peak_rss_mib_median": statistics.median(r for _, r in v) / 1024,
                   "runs": v} for k, v in runs.items()}
    floor_runs = [w for w, _ in runs["floor"]]
    for k in systems:
        if k != "floor":
            summary[k]["over_floor_ms"] = 1000 * statistics.median(
                w - f for (w, _), f in zip(runs[k], floor_runs))
            summary[k]["over_floor_ms_unpaired"] = 1000 * (summary[k]["wall_s_median"] - summary["floor"]["wall_s_median"])
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=None, help="bundle name [default: the first in bundles/index.json]")
    ap.add_argument("--text", default=None)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    index = json.loads((ROOT / "bundles" / "index.json").read_text())
    name = args.bundle or index["bundles"][0]["name"]
    text = args.text or "Barack Obama visited the Louvre in Paris with Angela Merkel."
    summary = measure(name, text, args.repeats)
    from benchmarks.shipped import machine

    result = {"bundle": name, "text": text, "repeats": args.repeats, "threads": 1, "machine": machine(),
              "results": summary}
    md = [f"# Cold start: process start to first entity ({name})", "",
          f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores. "
          f"{args.repeats} interleaved rounds under `/usr/bin/time -v`; one onnxruntime thread. Over floor: median "
          "of the per-round differences to the floor's run (cancels this machine's speed drift).", "",
          "| command | wall median (s) | over floor (ms) | peak RSS (MiB) |", "|---|---|---|---|"]
    for k, label in (("floor", "python -c 'import onnxruntime, tokenizers, numpy'"),
                     ("cli_imports", "python -c 'import onnxruntime, tokenizers, numpy, typer, cli' (no work)"),
                     ("cli", "edge-finer annotate --bundle B --text ..."),
                     ("cli_routed", "edge-finer annotate --text ... (routed over all installed bundles)"),
                     ("cli_routed_one", "edge-finer annotate --text ... (routed, only this bundle installed)"),
                     ("api", "Annotator.load(...).annotate(...)")):
        s = summary[k]
        over = f"{s['over_floor_ms']:.0f}" if "over_floor_ms" in s else "–"
        md.append(f"| `{label}` | {s['wall_s_median']:.3f} | {over} | {s['peak_rss_mib_median']:.1f} |")
    save_results(RESULTS, "cold_start", result, "\n".join(md))


if __name__ == "__main__":
    main()
