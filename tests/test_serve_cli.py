"""``edge-finer serve`` as a user runs it: it says what to open, answers on loopback, stops on
Ctrl-C, and every mistake a user can make (port in use, unknown bundle, missing extra, an
address not on this machine) is one error line and a non-zero exit code, never a traceback.
Every server here listens on 127.0.0.1 and is stopped by the test itself."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="the 'serve' extra (starlette, uvicorn) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (the 'test' extra) is not installed")

from serve_process import ROOT, running_server, serve_command  # noqa: E402

from edge_finer.service import Service  # noqa: E402
from edge_finer.web.server import is_loopback  # noqa: E402

pytestmark = pytest.mark.allow_network  # loopback only: the servers below listen on 127.0.0.1
TEXT = "Ravi Shankar Kumar works at Infosys Limited in Guwahati."


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(serve_command(*args), cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess, fragment: str) -> str:
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    return lines[0]


def test_serve_says_what_to_open_answers_and_stops_on_ctrl_c(bundles_env: Path):
    with running_server("--bundles", "tiny-en") as server:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.get("/v1/health").json()["status"] == "ok"
            page = c.get("/")
            assert page.status_code == 200 and "<textarea" in page.text
            got = c.post("/v1/annotate", json={"text": TEXT}).json()
            assert got == Service().annotate(TEXT)
            assert c.get("/v1/bundles").json()["bundles"][0]["name"] == "tiny-en"
            assert "access-control-allow-origin" not in c.get("/v1/health", headers={"Origin": "http://x.test"}).headers
    assert server.proc.returncode == 0, server.stderr
    assert "Traceback" not in server.stderr and "stopped" in server.stderr


def test_cors_only_for_the_origin_given(bundles_env: Path):
    with running_server("--cors", "http://localhost:3000") as server:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            res = c.get("/v1/health", headers={"Origin": "http://localhost:3000"})
            assert res.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_port_in_use_is_one_line(bundles_env: Path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = one_error_line(run_cli("--port", str(port)), f"cannot listen on 127.0.0.1:{port}")
        assert "in use" in line and "--port" in line


def test_unknown_bundle_is_one_line(bundles_env: Path):
    one_error_line(run_cli("--port", "0", "--bundles", "tiny-en,nope"), "unknown bundle(s) 'nope'")


def test_an_address_not_on_this_machine_warns_then_fails_cleanly(bundles_env: Path):
    proc = run_cli("--host", "192.0.2.1", "--port", "0")  # TEST-NET-1: never this machine's, nothing is sent
    one_error_line(proc, "that address is not one of this machine's")
    assert "warning: serving on 192.0.2.1, not loopback" in proc.stderr


@pytest.mark.parametrize("package", ["uvicorn", "starlette"])
def test_missing_extra_is_one_line(bundles_env: Path, package: str):
    code = (f"import sys; sys.modules[{package!r}] = None; sys.argv = ['edge-finer', 'serve', '--port', '0']; "
            "import cli; cli.main()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = one_error_line(proc, f"needs the '{package}' package")
    assert "pip install 'edge-finer[serve]'" in line


def test_is_loopback():
    for host in ("127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.4", "example.org", ""):
        assert not is_loopback(host), host


def test_help_names_the_extra_and_the_defaults():
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "serve", "--help"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0
    for fragment in ("--host", "127.0.0.1", "--port", "8765", "--bundles", "--cors", "serve"):
        assert fragment in proc.stdout, fragment


def test_load_benchmark_runs_quick(tmp_path: Path):
    """benchmarks/serve_load.py end to end on a few requests (figures come from the full run,
    committed in benchmarks/results/serve_load.md)."""
    import json

    proc = subprocess.run([sys.executable, "-m", "benchmarks.serve_load", "--quick", "--out", str(tmp_path)],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "EDGE_FINER_SHIPPED": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    data = json.loads((tmp_path / "serve_load.json").read_text(encoding="utf-8"))
    assert [r["clients"] for r in data["rows"]] == [1, 8, 1, 8, 16]
    assert all(r["problem_count"] == 0 and r["peak_rss_mb"] for r in data["rows"])
    assert data["overload_every_request_answered_once_200_or_503"]
    assert "avx512_vnni" in (tmp_path / "serve_load.md").read_text(encoding="utf-8")
