"""Interrupted batch runs: killed with SIGKILL at random points and resumed, a run over many
files ends with outputs byte-identical to an uninterrupted run, and inputs are never touched."""
from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from edge_finer.runlog import RUN_FILE

ROOT = Path(__file__).resolve().parent.parent
LINES = ["Ravi Shankar Kumar works at Infosys Limited.", "अमित शाह दिल्ली गए।", "nothing here",
         "Zoë met Ravi in Guwahati and Shillong.", "Infosys\tLimited, Delhi 🙂"]


def make_corpus(folder: Path, files: int, lines: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    for i in range(files):
        sub = folder / f"part{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"doc{i:03d}.txt").write_text("\n".join(rng.choice(LINES) for _ in range(lines)) + "\n",
                                             encoding="utf-8")
    return folder


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run(*args: object):
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def test_resume_skips_finished_outputs_and_clears_temporaries(bundles_env, tmp_path: Path):
    src = make_corpus(tmp_path / "src", files=6, lines=3)
    out = tmp_path / "out"
    assert run("annotate", src, "-b", "tiny-en", "-f", "jsonl", "-o", out).exit_code == 0
    full = digest(out)
    assert RUN_FILE in full
    # simulate a killed run: two outputs missing, a temporary file left behind
    (out / "part0" / "doc000.jsonl").unlink()
    (out / "part1" / "doc004.jsonl").unlink()
    stale = out / "part1" / ".doc004.jsonl.abc123.part"
    stale.write_text('{"half": ', encoding="utf-8")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.jsonl")}
    res = run("annotate", src, "-b", "tiny-en", "-f", "jsonl", "-o", out, "--resume")
    assert res.exit_code == 0, res.output
    assert digest(out) == full and not stale.exists()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # finished outputs not rewritten


def test_resume_refuses_other_options_or_no_record(bundles_env, tmp_path: Path):
    src = make_corpus(tmp_path / "src", files=2, lines=2)
    out = tmp_path / "out"
    assert run("annotate", src, "-b", "tiny-en", "-f", "jsonl", "-o", out).exit_code == 0
    res = run("annotate", src, "-b", "tiny-en", "-f", "jsonl", "-g", "coarse", "-o", out, "--resume")
    assert res.exit_code == 1 and "different options (granularity)" in res.stderr
    stranger = tmp_path / "stranger"  # files, but no run record: whose, made how?
    stranger.mkdir()
    (stranger / "doc000.jsonl").write_text("precious\n", encoding="utf-8")
    res = run("annotate", src, "-b", "tiny-en", "-o", stranger, "--resume")
    assert res.exit_code == 1 and "no record of an earlier run" in res.stderr and "Traceback" not in res.output
    assert (stranger / "doc000.jsonl").read_text(encoding="utf-8") == "precious\n"
    assert run("annotate", src, "-b", "tiny-en", "--resume").exit_code == 2  # needs --output
    assert run("annotate", src, "-b", "tiny-en", "-o", out, "--resume", "--force").exit_code == 2


def test_resume_on_a_new_or_empty_folder_starts_the_run(bundles_env, tmp_path: Path):
    """A batch script passes --resume every time, the first run included."""
    src = make_corpus(tmp_path / "src", files=2, lines=2)
    full = tmp_path / "full"
    assert run("annotate", src, "-b", "tiny-en", "-f", "jsonl", "-o", full).exit_code == 0
    for out in (tmp_path / "new", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        res = run("annotate", src, "-b", "tiny-en", "-f", "jsonl", "-o", out, "--resume")
        assert res.exit_code == 0, res.output
        assert digest(out) == digest(full)
        res = run("annotate", src, "-b", "tiny-en", "-f", "jsonl", "-o", out, "--resume")  # and again: all done
        assert res.exit_code == 0 and digest(out) == digest(full)


def test_sigkill_at_random_points_then_resume_is_byte_identical(bundles_env, tmp_path: Path):
    """The real thing: a separate process killed with SIGKILL mid-run, again and again.

    The corpus must outlast 12 kills (each lets 1-3 outputs and up to 30 ms of work through):
    with 80 files the faster runtime sometimes finished first and fewer kills landed."""
    from benchmarks.soak import kill_and_resume

    src = make_corpus(tmp_path / "src", files=200, lines=40)
    inputs_before = digest(src)
    env = {**os.environ, "EDGE_FINER_BUNDLES": str(bundles_env.parent)}
    base = [sys.executable, str(ROOT / "cli.py"), "annotate", str(src), "-b", "tiny-en", "-f", "conll",
            "--threads", "1"]
    subprocess.run(base + ["-o", str(tmp_path / "clean")], env=env, check=True, capture_output=True)
    out = tmp_path / "killed"
    kills, runs = kill_and_resume(base, out, 12, env, random.Random(7))
    assert kills == 12 and runs >= 13, (kills, runs)
    assert digest(out) == digest(tmp_path / "clean")
    assert digest(src) == inputs_before  # inputs never modified
    assert json.loads((out / RUN_FILE).read_text(encoding="utf-8"))["options"]["format"] == "conll"


@pytest.mark.parametrize("bad", ["binary", "latin1"])
def test_bad_files_are_reported_and_the_rest_processed(bundles_env, tmp_path: Path, bad: str):
    src = make_corpus(tmp_path / "src", files=3, lines=2)
    weird = src / "part0" / "weird.txt"
    weird.write_bytes(b"\x00\xff\xfe\x89PNG\r\n\x1a\n" if bad == "binary" else "Zoë in Köln".encode("latin-1"))
    (src / "part1" / "empty.txt").write_bytes(b"")
    out = tmp_path / "out"
    res = run("annotate", src, "-b", "tiny-en", "-f", "jsonl", "-o", out)
    assert res.exit_code == 1 and "Traceback" not in res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    reason = "weird.txt: not text: binary data (NUL byte at 0)" if bad == "binary" else "weird.txt: not valid utf-8"
    assert len(errors) == 2 and reason in errors[0] and "1 of 5 inputs failed" in errors[1]
    made = {p.name for p in out.rglob("*.jsonl")}
    assert made == {"doc000.jsonl", "doc001.jsonl", "doc002.jsonl", "empty.jsonl"}
    assert (out / "part1" / "empty.jsonl").read_bytes() == b""
    assert not list(out.rglob("*.part"))


def test_output_folder_that_cannot_be_created(bundles_env, tmp_path: Path):
    src = make_corpus(tmp_path / "src", files=2, lines=1)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    res = run("annotate", src, "-b", "tiny-en", "-o", blocker / "out")
    assert res.exit_code == 1 and "Traceback" not in res.output and "cannot write" in res.stderr
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_streamed_jsonl_is_byte_identical_to_json_dumps():
    from edge_finer.entity import Entity
    from edge_finer.formats import Record, jsonl

    ents = [Entity(0, 4, "Ravi", "PER", "Person", 0.5), Entity(8, 14, 'Dé"lhi', "LOC", "Location", 0.25)]
    for routing in (None, {"language": "en", "bundle": "x", "confidence": 1.0}):
        for granularity in ("fine", "coarse"):
            for found in ([], ents):
                rec = Record('s"x', 3, 7, 'Ravi in Dé"lhi \ud800', found, routing)
                items = [{"start": e.start, "end": e.end, "text": e.text,
                          "label": e.coarse_label if granularity == "coarse" else e.label, "score": e.score,
                          **({"coarse_label": e.coarse_label} if granularity == "fine" else {})} for e in found]
                obj = {"source": rec.source, "line": 3, "offset": 7, "text": rec.text, "entities": items,
                       **({"routing": routing} if routing else {})}
                assert jsonl(rec, granularity) == json.dumps(obj, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("when", ["after the open", "after the rename"])
def test_ctrl_c_at_either_end_of_atomic_write_leaves_no_part(tmp_path: Path, monkeypatch, when: str):
    """Regression (CI, an interrupted run kept a .part): Python raises a Ctrl-C at its next check
    after a call returns, so one that lands just after the temporary file is opened (inside
    mkstemp, before its caller could know the name) or just after the rename must leave the
    folder with the old or the new output and nothing else."""
    import os

    from edge_finer import textio

    target = tmp_path / "out.conll"
    target.write_text("previous results\n", encoding="utf-8")
    name = "open" if when == "after the open" else "replace"
    real = getattr(os, name)

    def then_interrupt(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, name, then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        textio.atomic_write(target, "new results\n")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["out.conll"]
    expected = "previous results\n" if when == "after the open" else "new results\n"
    assert target.read_text(encoding="utf-8") == expected


def test_atomic_write_of_chunks_that_fail_leaves_nothing(tmp_path: Path):
    from edge_finer.textio import atomic_write

    target = tmp_path / "out.jsonl"
    target.write_text("previous results\n", encoding="utf-8")

    def chunks():
        yield "half of a new "
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, chunks())
    assert target.read_text(encoding="utf-8") == "previous results\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    atomic_write(target, iter(["a", "b\n"]))
    assert target.read_text(encoding="utf-8") == "ab\n"
