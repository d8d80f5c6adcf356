"""Outputs in odd places: a full disk, a file size limit, the output folder inside the input
folder, one file named twice, a FIFO as input, symlink loops in a folder.  Each ends with one
clear line (or a warning and a normal run), no partial file, inputs untouched."""
from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT = "Ravi Shankar visited Delhi and Shillong. Infosys Limited opened in Guwahati.\n"


def cli(*args: str, limit_bytes: int | None = None, timeout: int = 120, **env_extra: str) -> subprocess.CompletedProcess:
    def fsize() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, preexec_fn=fsize if limit_bytes else None)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    src = tmp_path / "corpus"
    src.mkdir()
    for i in range(12):
        (src / f"doc{i:02d}.txt").write_text(TEXT * 150, encoding="utf-8")  # ~60 KB of jsonl each
    return src


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def test_full_disk_stops_with_one_line_and_resume_finishes(tiny_bundle: Path, corpus: Path, tmp_path: Path):
    """A 256 KB tmpfs fills after a few outputs: one ``error:`` line saying so, exit 1, no
    ``.part`` file, inputs untouched; with the space freed, ``--resume`` writes the rest and
    the folder equals an uninterrupted run's."""
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "256k"):
        pytest.skip("mounting a tmpfs needs root (the RLIMIT_FSIZE test below covers the write path)")
    try:
        before = digest(corpus)
        out = small / "out"
        proc = cli("annotate", corpus, "-b", tiny_bundle, "-f", "jsonl", "-o", out)
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr, proc.stderr
        assert "--resume" in proc.stderr and "Traceback" not in proc.stderr
        written = [p.name for p in out.iterdir()]
        assert not [n for n in written if n.endswith(".part")], written
        assert 0 < len([n for n in written if n.endswith(".jsonl")]) < 12
        assert digest(corpus) == before
        subprocess.run(["mount", "-o", "remount,size=16m", str(small)], check=True)
        assert cli("annotate", corpus, "-b", tiny_bundle, "-f", "jsonl", "-o", out, "--resume").returncode == 0
        assert cli("annotate", corpus, "-b", tiny_bundle, "-f", "jsonl", "-o", tmp_path / "clean").returncode == 0
        assert digest(out) == digest(tmp_path / "clean") and len(digest(out)) == 13  # 12 outputs + run record
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def test_file_size_limit_is_the_same_clean_stop(tiny_bundle: Path, corpus: Path, tmp_path: Path):
    """The write path under RLIMIT_FSIZE (EFBIG; no root needed): the first output over 40 KB
    fails, the run stops with one line, the partial file is removed."""
    out = tmp_path / "out"
    proc = cli("annotate", corpus, "-b", tiny_bundle, "-f", "jsonl", "-o", out, limit_bytes=40_000)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "file size limit" in proc.stderr and "doc00.jsonl" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [".edge-finer-run.json"]
    assert cli("annotate", corpus, "-b", tiny_bundle, "-f", "jsonl", "-o", out, "--resume").returncode == 0
    assert len(list(out.glob("*.jsonl"))) == 12


def test_output_folder_inside_the_input_folder(tiny_bundle: Path, corpus: Path):
    out = corpus / "annotated"
    assert cli("annotate", corpus, "-b", tiny_bundle, "-f", "jsonl", "-o", out).returncode == 0
    first = digest(out)
    proc = cli("annotate", corpus, "-b", tiny_bundle, "-f", "jsonl", "-o", out, "--resume")
    assert proc.returncode == 0
    assert digest(out) == first  # its own outputs were not annotated into annotated/annotated/
    proc = cli("annotate", corpus, "-b", tiny_bundle, "-f", "jsonl", "-o", out, "--force")
    assert proc.returncode == 0 and not (out / "annotated").exists()


def test_the_same_input_twice_is_annotated_once(tiny_bundle: Path, corpus: Path, tmp_path: Path):
    one = corpus / "doc00.txt"
    proc = cli("annotate", one, one, corpus, "-b", tiny_bundle, "-f", "jsonl", "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("given more than once") == 2
    assert len(list((tmp_path / "out").glob("*.jsonl"))) == 12


def test_fifo_input_is_refused_without_waiting_for_a_writer(tiny_bundle: Path, tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = cli("annotate", fifo, "-b", tiny_bundle, "-f", "jsonl", timeout=60)
    assert proc.returncode == 1 and "not a regular file" in proc.stderr and "Traceback" not in proc.stderr
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text(TEXT, encoding="utf-8")
    os.mkfifo(folder / "pipe")
    proc = cli("annotate", folder, "-b", tiny_bundle, "-f", "jsonl", timeout=60)  # skipped in a folder
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1


def test_symlink_loops_in_a_folder_end(tiny_bundle: Path, tmp_path: Path):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text(TEXT, encoding="utf-8")
    (folder / "sub" / "up").symlink_to("..")
    (folder / "loop").symlink_to(".")
    (folder / "self").symlink_to("self")
    proc = cli("annotate", folder, "-b", tiny_bundle, "-f", "jsonl", "-o", tmp_path / "out", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [p.relative_to(tmp_path / "out").as_posix() for p in sorted((tmp_path / "out").rglob("*.jsonl"))] \
        == ["sub/a.jsonl"]


def test_escape_sequences_in_file_names_and_text_never_reach_the_table(tiny_bundle: Path, tmp_path: Path):
    path = tmp_path / "evil\x1b[2J\x1b]0;owned\x07.txt"
    path.write_text("Delhi \x1b[31m and \u202eShillong\x1b]8;;http://x/\x07\n", encoding="utf-8")
    proc = cli("annotate", path, "-b", tiny_bundle, "-f", "table", COLUMNS="400")  # no wrapping
    assert proc.returncode == 0 and "Delhi" in proc.stdout and "\\x1b" in proc.stdout  # shown, not obeyed
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout and "\u202e" not in proc.stdout
    proc = cli("annotate", tmp_path / "missing\x1b[2J.txt", "-b", tiny_bundle)
    assert proc.returncode == 1 and "\x1b" not in proc.stderr and "\\x1b[2J" in proc.stderr
