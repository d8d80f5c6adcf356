"""``annotate --workers N``: N processes give byte for byte what one process gives, on many files
and on one large file cut into chunks; killed workers or parents leave whole outputs only (and
no process behind), and ``--resume`` then finishes to the identical result.

Outputs are always compared with ``--workers 1`` in the same test, never with stored results:
the bundles are rebuilt often."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

import cli
from test_resume import LINES, digest, make_corpus

ROOT = Path(__file__).resolve().parent.parent


def run(*args: object):
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def big_file(folder: Path, lines: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "big.txt"
    path.write_text("\n".join(rng.choice(LINES) + (" Ravi went home. Then Delhi." if rng.random() < 0.3 else "")
                              for _ in range(lines)) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "brat", "table"])
def test_many_files_byte_identical(bundles_env, tmp_path: Path, fmt: str):
    src = make_corpus(tmp_path / "src", files=24, lines=6)
    one, two = tmp_path / "one", tmp_path / "two"
    assert run("annotate", src, "-b", "tiny-en", "-f", fmt, "-o", one).exit_code == 0
    res = run("annotate", src, "-b", "tiny-en", "-f", fmt, "-o", two, "--workers", "2")
    assert res.exit_code == 0, res.output
    # 24 outputs and the run record; a brat collection also has each .txt and annotation.conf
    assert digest(one) == digest(two) and len(digest(two)) == (50 if fmt == "brat" else 25)
    assert "2 worker processes, peak memory per worker" in res.stderr


def test_one_large_file_in_chunks_byte_identical(bundles_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from edge_finer import corpus

    path = big_file(tmp_path / "src", 1500)
    text = path.read_text(encoding="utf-8")
    assert len(list(corpus.line_chunks(text))) >= 3  # really cut: the model sees several groups
    monkeypatch.setattr(corpus, "CHUNK_FILE_BYTES", 1024)  # the parent plans: chunk this file
    for fmt in ("jsonl", "tsv", "brat", "conll"):
        one = run("annotate", path, "-b", "tiny-en", "-f", fmt)
        two = run("annotate", path, "-b", "tiny-en", "-f", fmt, "--workers", "2")
        assert one.exit_code == two.exit_code == 0, two.output
        assert one.stdout_bytes == two.stdout_bytes and one.stdout_bytes
    res = run("annotate", path, "-b", "tiny-en", "-f", "jsonl", "-o", tmp_path / "o2", "--workers", "2")
    assert res.exit_code == 0
    assert run("annotate", path, "-b", "tiny-en", "-f", "jsonl", "-o", tmp_path / "o1").exit_code == 0
    assert digest(tmp_path / "o1") == digest(tmp_path / "o2")


def test_stdin_and_routing_and_errors_match_one_process(bundles_env, tmp_path: Path):
    src = make_corpus(tmp_path / "src", files=5, lines=4)
    (src / "part0" / "bad.txt").write_bytes(b"caf\xe9\n")
    for args in (["-b", "tiny-en", "-f", "tsv"], ["-f", "jsonl"]):  # explicit bundle; routed
        one = run("annotate", src, *args)
        two = run("annotate", src, *args, "--workers", "2")
        assert one.exit_code == two.exit_code == 1
        assert one.stdout_bytes == two.stdout_bytes and one.stdout_bytes.count(b"source\tline") <= 1
        assert [ln for ln in one.stderr.splitlines() if ln.startswith("error:")] == \
               [ln for ln in two.stderr.splitlines() if ln.startswith("error:")]
    text = "\n".join(LINES * 40)
    one = CliRunner().invoke(cli.app, ["annotate", "-b", "tiny-en", "-f", "jsonl"], input=text)
    two = CliRunner().invoke(cli.app, ["annotate", "-b", "tiny-en", "-f", "jsonl", "--workers", "2"], input=text)
    assert one.exit_code == two.exit_code == 0 and one.stdout_bytes == two.stdout_bytes


@pytest.mark.parametrize("value", ["0", "-3", "two", "1.5"])
def test_bad_workers_value_is_one_line(bundles_env, tmp_path: Path, value: str):
    res = run("annotate", "--text", "Ravi", "-b", "tiny-en", "--workers", value)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("error: --workers")


def test_auto_is_the_usable_cores():
    from edge_finer.parallel import parse_workers, usable_cores

    assert parse_workers("auto") == usable_cores() >= 1 and parse_workers("3") == 3


# -- killed runs ------------------------------------------------------------------------------


def _env(bundles_env: Path) -> dict:
    return {**os.environ, "EDGE_FINER_BUNDLES": str(bundles_env.parent)}


def _base(src: Path) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), "annotate", str(src), "-b", "tiny-en", "-f", "conll",
            "--workers", "2"]


def _wait_for_outputs(proc: subprocess.Popen, out: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(list(out.rglob("*.conll"))) < n:
        assert proc.poll() is None, "the run finished before the kill"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _gone(pids: list[int], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_interrupt_latch_keeps_a_ctrl_c_that_a_finalizer_swallowed():
    """Python drops a KeyboardInterrupt raised inside ``__del__``; the latch raises it again, and
    ``interruptible`` (the input loop of annotate, one process or many) before the next input."""
    from edge_finer.parallel import InterruptLatch, interruptible

    class Finalizer:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the handler runs here, and its KeyboardInterrupt is printed and lost

    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever ran pytest
    try:
        with InterruptLatch() as latch:
            Finalizer()
            assert latch.hit
            with pytest.raises(KeyboardInterrupt):
                latch.check()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with InterruptLatch() as quiet:
            quiet.check()  # no Ctrl-C: nothing raised
        seen = []
        with pytest.raises(KeyboardInterrupt):
            for item in interruptible(["a.txt", "b.txt", "c.txt"]):
                seen.append(item)
                Finalizer()
        assert seen == ["a.txt"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert list(interruptible(["a.txt", "b.txt"])) == ["a.txt", "b.txt"]
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's SIGINT stays ignored
        with InterruptLatch():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_stopped_pool_leaves_no_manager_thread_for_the_exit_hook():
    """Regression (CI): after Ctrl-C the pool's manager thread was still closing its wake-up pipe
    when the interpreter's exit hook wrote to it, and the run ended with "Exception ignored in:
    <module 'threading'> ... OSError: [Errno 9] Bad file descriptor".  Stopped, the pool has no
    thread left running, so the hook finds the pipe closed and writes nothing."""
    from concurrent.futures import ProcessPoolExecutor

    from edge_finer.parallel import _stop

    for _ in range(3):
        pool = ProcessPoolExecutor(2)
        futures = [pool.submit(time.sleep, 30) for _ in range(4)]
        deadline = time.monotonic() + 30
        while not any(f.running() for f in futures) and time.monotonic() < deadline:
            time.sleep(0.01)
        manager = pool._executor_manager_thread
        assert manager is not None and manager.is_alive()
        started = time.monotonic()
        _stop(pool)
        assert not manager.is_alive() and time.monotonic() - started < 10


@pytest.mark.parametrize("victim", ["worker", "parent", "interrupt"])
def test_killed_run_then_resume_is_byte_identical(bundles_env, tmp_path: Path, victim: str):
    """SIGKILL of a worker (the run stops with one error line), SIGKILL of the parent (the
    workers notice and exit), or Ctrl-C (SIGINT to the whole process group, as a terminal sends
    it): no process is left, no partial output, and --resume finishes to the identical result."""
    src = make_corpus(tmp_path / "src", files=150, lines=30)
    assert big_file(src, 9000).stat().st_size > 256 * 1024  # first in order, cut into chunks
    env = _env(bundles_env)
    clean = tmp_path / "clean"
    subprocess.run(_base(src)[:-2] + ["-o", str(clean)], env=env, check=True, capture_output=True, timeout=300)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_base(src) + ["-o", str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_outputs(proc, out, 5)
        workers = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert workers
        if victim == "worker":
            os.kill(max(workers), signal.SIGKILL)
        elif victim == "parent":
            proc.send_signal(signal.SIGKILL)
        else:
            at_signal = len(list(out.rglob("*.conll")))
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)  # returns only once no process holds its stderr
    finally:
        if proc.poll() is None:
            proc.kill()
    if victim == "interrupt" and proc.returncode == 0:
        # a test process starved of CPU may signal a run that was already writing its last
        # outputs: then it must have finished whole; a Ctrl-C ignored mid-run still fails here
        assert at_signal >= 140 and digest(out) == digest(clean), (at_signal, err)
        return
    assert proc.returncode != 0, err
    assert _gone(workers), "a worker outlived the run"
    if victim == "worker":
        assert b"worker process died" in err and b"Traceback" not in err, err
    if victim == "interrupt":
        assert b"Traceback" not in err, err
    assert not list(out.rglob("*.part")) or victim == "parent"  # a SIGKILLed parent cannot clean up
    done = len(list(out.rglob("*.conll")))
    assert 5 <= done < 151
    res = subprocess.run(_base(src) + ["-o", str(out), "--resume"], env=env, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert digest(out) == digest(clean)
    assert not list(out.rglob("*.part"))


def test_scaling_benchmark_runs_quick(tmp_path: Path):
    """benchmarks/scaling.py end to end on a tiny corpus (no timing asserted; the figures come
    from the full run committed in benchmarks/results/scaling.md)."""
    import json

    env = {**os.environ, "EDGE_FINER_SHIPPED": "1"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--files", "2", "--lines", "4",
                           "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "scaling.json").read_text(encoding="utf-8"))
    assert {(r["path"], r["workers"]) for r in res["rows"]} == \
        {(p, n) for p in ("cli files", "cli one file", "dask") for n in (1, 2)}
    assert all(r["identical_to_1"] for r in res["rows"])
    assert "## Extrapolation (not measured)" in (tmp_path / "scaling.md").read_text(encoding="utf-8")
