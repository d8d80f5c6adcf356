"""Teacher capacity at convergence: does a wider or deeper teacher learn more from the same data?

The accuracy ablation (``accuracy.md``) compares levers at a CPU budget of about four epochs,
where a wider model is simply slower; this asks what capacity is worth once every variant has
trained to its best dev epoch. Each probe is ``benchmarks.accuracy``'s (same tokenizer, features,
dev scorer and best-epoch selection) run for ``--steps`` optimiser steps with several seeds, on
``--device`` (a lent GPU makes 16 such probes a few minutes' work; on the CPU they run as well,
slowly). Nothing in a build depends on it: it decides whether a recipe should spend its CPU
minutes on a wider teacher.

    python -m benchmarks.capacity --datasets il-ner/or il-ner/hi --variants v3,v3+h384,v3+h512,v3+l6 \\
        --seeds 13 14 --steps 3500 --device cuda --jobs 16

Writes ``benchmarks/results/capacity.{json,md}``: per dataset and variant, each seed's dev F1,
their mean, the kept epoch, parameters and the machine the probes trained on; probes are cached
in ``--work`` (one JSON each) so an interrupted run resumes, and ``--report-only`` rebuilds the
table from them (e.g. after fetching them from the GPU machine).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.accuracy import RESULTS, ROOT, VARIANTS, probe_processes


def probe_path(work: Path, dataset: str, variant: str, steps: int, seed: int) -> Path:
    """Where one probe's figures are cached: its name says everything that selects it."""
    return work / f"{dataset.replace('/', '_')}__{variant}__s{steps}__seed{seed}.json"


def run_probes(jobs_todo: list[tuple[str, str, int, int]], device: str, jobs: int, work: Path) -> None:
    """Each (dataset, variant, steps, seed) probe not yet in ``work``, ``jobs`` subprocesses at a time."""
    work.mkdir(parents=True, exist_ok=True)
    commands = [([sys.executable, "-m", "benchmarks.accuracy", "--probe", d, v, "--steps", str(steps),
                  "--seed", str(s), "--device", device, "--out", str(out)], out)
                for d, v, steps, s in jobs_todo for out in [probe_path(work, d, v, steps, s)] if not out.is_file()]
    failed = [out.name for out, code in probe_processes(commands, jobs) if code != 0]
    if failed:  # the others are kept: a rerun only trains what is missing
        raise SystemExit(f"{len(failed)} probe(s) failed: {', '.join(failed)}")


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (dataset, variant, steps): the seeds' dev F1 and kept epochs, in seed order."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["variant"], r["step_budget"]), []).append(r)
    out = []
    for (d, v, steps), rs in groups.items():
        rs.sort(key=lambda r: r["seed"])
        f1 = [r["dev_f1"] for r in rs]
        per_epoch = [r["dev_f1_history"][0][0] if r.get("dev_f1_history") else 1 for r in rs]
        out.append({"dataset": d, "variant": v, "steps": steps, "seeds": [r["seed"] for r in rs], "dev_f1": f1,
                    "mean": statistics.fmean(f1), "kept_epoch": [r.get("selected_step", 0) // p for r, p in zip(rs, per_epoch)],
                    "parameters": rs[0]["parameters"], "minutes": statistics.median(r["minutes"] for r in rs),
                    "device_name": rs[0].get("device_name", "?")})
    return out


def report(lines_: list[dict[str, Any]]) -> str:
    devices = sorted({x["device_name"] for x in lines_})
    lines = ["# Teacher capacity at convergence (dev F1)", "",
             f"Trained on: {', '.join(devices)}; a fixed number of optimiser steps per probe (batch 32), the best dev "
             "epoch kept (scored every epoch), otherwise the v3 teacher recipe of `accuracy.md` "
             "(convolutions, hashed word features, 10 % word dropout). Regenerate with "
             "`python -m benchmarks.capacity` (see its docstring).", "",
             "Mean: in brackets, against v3 at the same steps.", "",
             "| dataset | steps | variant | parameters | dev F1 per seed | mean | kept epoch per seed | minutes (median) |",
             "|---|---|---|---|---|---|---|---|"]
    base = {(x["dataset"], x["steps"]): x["mean"] for x in lines_ if x["variant"] == "v3"}
    for x in sorted(lines_, key=lambda x: (x["dataset"], x["steps"])):
        b = base.get((x["dataset"], x["steps"]))
        delta = f" ({100 * (x['mean'] - b):+.1f})" if b is not None and x["variant"] != "v3" else ""
        lines.append(f"| {x['dataset']} | {x['steps']} | {x['variant']} | {x['parameters'] / 1e6:.1f} M | "
                     + " / ".join(f"{100 * f:.1f}" for f in x["dev_f1"]) + f" | {100 * x['mean']:.1f}{delta} | "
                     + " / ".join(map(str, x["kept_epoch"])) + f" | {x['minutes']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["il-ner/or", "il-ner/hi"])
    ap.add_argument("--variants", default="v3,v3+h384,v3+h512,v3+l6")
    ap.add_argument("--seeds", nargs="+", type=int, default=[13, 14])
    ap.add_argument("--steps", nargs="+", type=int, default=[3500])
    ap.add_argument("--device", default="cpu", help="where probes train: cpu, cuda, cuda:1, ...")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--work", type=Path, default=ROOT / ".bench" / "capacity")
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder for capacity.{json,md}")
    ap.add_argument("--remark", default="", help="a paragraph about the run's conditions, after the table")
    ap.add_argument("--report-only", action="store_true", help="write the table from the probes in --work")
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    todo = [(d, v, n, s) for d in args.datasets for n in args.steps for v in variants for s in args.seeds]
    if not args.report_only:
        run_probes(todo, args.device, args.jobs, args.work)
    rows = [json.loads(p.read_text(encoding="utf-8")) for job in todo
            for p in [probe_path(args.work, *job)] if p.is_file()]
    if not rows:
        raise SystemExit(f"no probes in {args.work}")
    from benchmarks.report import save_results

    summary = summarise(rows)
    md = report(summary) + (f"\n{args.remark}\n" if args.remark else "")
    save_results(args.results, "capacity", {"steps": args.steps, "summary": summary, "probes": rows,
                                            "remark": args.remark}, md)


if __name__ == "__main__":
    main()
