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
