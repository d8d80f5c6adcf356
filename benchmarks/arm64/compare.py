"""Compare the x86 run of check.py with the emulated arm64 runs, and write the results.

Same spans and labels everywhere, scores within 1e-3, for every shipped bundle, by the API and
by the CLI (each compared with the same path on x86).  Writes ``benchmarks/results/arm64.json`` and ``arm64.md``; exits 1 on a mismatch.

    python -m benchmarks.arm64.compare SENTENCES.json X86.json ARM.json [ARM.json ...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "results"
TOLERANCE = 1e-3


def differences(ref: list[list[dict]], got: list[list[dict]]) -> tuple[int, float]:
    """(sentences whose spans/labels differ, largest score difference among matching ones)."""
    bad, worst = 0, 0.0
    for a, b in zip(ref, got):
        if [(e["start"], e["end"], e["label"]) for e in a] != [(e["start"], e["end"], e["label"]) for e in b]:
            bad += 1
            continue
        for x, y in zip(a, b):
            worst = max(worst, abs(x["score"] - y["score"]))
    return bad + abs(len(ref) - len(got)), worst


def headline(rows: list[dict]) -> str:
    present = [r for r in rows if not r.get("missing")]
    labels_same = len(present) == len(rows) and all(r["api_mismatches"] == 0 and r["cli_mismatches"] == 0
                                                    for r in present)
    worst = max((r["max_score_diff"] for r in present), default=0.0)
    spans = "identical spans and labels everywhere" if labels_same else "DIFFERENT spans or labels"
    scores = (f"scores within {TOLERANCE:g} (largest difference {worst:.1e})" if worst <= TOLERANCE else
              f"scores differ by up to {worst:.1e}, above the {TOLERANCE:g} tolerance")
    return f"{spans}; {scores}"


def main() -> int:
    sentences = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    x86 = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
    arms = [json.loads(Path(p).read_text(encoding="utf-8")) for p in sys.argv[3:]]
    rows, ok = [], True
    for arm in arms:
        cpu = arm["machine"]["qemu_cpu"]
        for name, ref in x86["bundles"].items():
            got = arm["bundles"].get(name)
            if got is None:
                ok = False
                rows.append({"cpu": cpu, "bundle": name, "missing": True})
                continue
            api_bad, api_worst = differences(ref["api"], got["api"])
            # like with like: the CLI batches lines together and int8 dynamic quantization
            # scales activations per batch, so API (one sentence per run) and CLI may differ
            # on a borderline entity even on one machine
            cli_bad, cli_worst = differences(ref["cli"], got["cli"])
            same = api_bad == 0 and cli_bad == 0 and max(api_worst, cli_worst) <= TOLERANCE
            ok &= same
            rows.append({"cpu": cpu, "bundle": name, "sentences": len(sentences[name]),
                         "entities": sum(map(len, got["api"])), "api_mismatches": api_bad, "cli_mismatches": cli_bad,
                         "max_score_diff": max(api_worst, cli_worst), "same": same,
                         "api_seconds": got["api_seconds"], "cli_seconds": got["cli_seconds"],
                         "cli_peak_rss_mb": got["cli_peak_rss_mb"]})
    res = {"x86": x86["machine"], "x86_cold_start": x86["cold_start"],
           "arm64": [{"machine": a["machine"], "cold_start": a["cold_start"]} for a in arms], "rows": rows, "ok": ok}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "arm64.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = ["# Runtime on arm64 (Raspberry Pi 4 / 5 CPUs) under qemu user-mode emulation", "",
             "Command: `sudo benchmarks/arm64/run.sh` (Debian bookworm arm64 root made with debootstrap; "
             "runtime installed from manylinux aarch64 wheels into a venv; QEMU_CPU pinned). "
             f"Reference: the same script on the x86 host ({x86['machine']['machine']}, Python "
             f"{x86['machine']['python']}, onnxruntime {x86['machine']['onnxruntime']}).", "",
             f"**Result: {headline(rows)}.**",
             "", "| CPU | bundle | sentences | entities | API mismatches | CLI mismatches | max score diff |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("missing"):
            lines.append(f"| {r['cpu']} | {r['bundle']} | missing | | | | |")
        else:
            lines.append(f"| {r['cpu']} | {r['bundle']} | {r['sentences']} | {r['entities']} | {r['api_mismatches']} | "
                         f"{r['cli_mismatches']} | {r['max_score_diff']:.2e} |")
    lines += ["", "## Start-up and memory, EMULATED (they say the runtime fits, not how fast a real Pi is)", "",
              "| machine | bare import floor s | API import s | CLI to first entity s | CLI peak RSS MB |",
              "|---|---|---|---|---|"]
    for label, cs in [("x86 host", x86["cold_start"])] + [(f"arm64 {a['machine']['qemu_cpu']} (emulated)",
                                                           a["cold_start"]) for a in arms]:
        lines.append(f"| {label} | {cs['floor_import']['seconds']} | {cs['api_import']['seconds']} | "
                     f"{cs['cli_first_entity']['seconds']} | {cs['cli_first_entity']['peak_rss_mb_so_far']} |")
    (RESULTS / "arm64.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
