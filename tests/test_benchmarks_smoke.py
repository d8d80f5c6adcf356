"""The benchmark commands run end to end on a tiny input (no timing is asserted: figures come
from the full runs, committed in benchmarks/results/)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_perf_suite_runs_quick(tmp_path: Path):
    env = {**os.environ, "EDGE_FINER_SHIPPED": "1"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--repeats", "1", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "perf.json").read_text(encoding="utf-8"))
    systems = {r["system"] for r in res["throughput"]}
    assert "edge-finer int8" in systems
    assert {(r["threads"], r["batch"]) for r in res["throughput"] if r["system"] == "edge-finer int8"} == \
        {(1, 1), (1, 32), (2, 1), (2, 32)}
    assert all(r["words_per_second"] > 0 for r in res["throughput"])
    assert [r["kb"] for r in res["scaling"]] == [1, 10, 100]
    assert 0 < res["roofline"]["achieved_over_attainable"] < 1
    assert "## Roofline" in (tmp_path / "perf.md").read_text(encoding="utf-8")


def test_capacity_report_groups_seeds_and_compares_with_v3(tmp_path: Path):
    """The capacity table is written from cached probes (as fetched from a GPU machine)."""
    from benchmarks.capacity import main, probe_path

    work = tmp_path / "work"
    work.mkdir()
    for variant, seed, f1 in (("v3", 13, 0.70), ("v3", 14, 0.72), ("v3+h384", 13, 0.74), ("v3+h384", 14, 0.74)):
        probe = {"dataset": "il-ner/or", "variant": variant, "seed": seed, "step_budget": 100, "dev_f1": f1,
                 "minutes": 1.0, "parameters": 4_800_000, "device_name": "test GPU",
                 "selected_step": 60, "dev_f1_history": [[20, 0.5], [40, 0.6], [60, f1]]}
        probe_path(work, "il-ner/or", variant, 100, seed).write_text(json.dumps(probe), encoding="utf-8")
    main(["--report-only", "--datasets", "il-ner/or", "--variants", "v3,v3+h384", "--steps", "100",
          "--work", str(work), "--results", str(tmp_path)])
    md = (tmp_path / "capacity.md").read_text(encoding="utf-8")
    assert "| il-ner/or | 100 | v3 | 4.8 M | 70.0 / 72.0 | 71.0 | 3 / 3 | 1.0 |" in md
    assert "| il-ner/or | 100 | v3+h384 | 4.8 M | 74.0 / 74.0 | 74.0 (+3.0) |" in md
    assert "Trained on: test GPU" in md
