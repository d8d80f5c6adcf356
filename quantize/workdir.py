"""The work folder: one sub-folder per stage, a done-marker holding the stage's fingerprint.

Why fingerprints and not just markers: resuming must never reuse a stage whose inputs changed.
A stage's fingerprint hashes its recipe sections and its upstream stages' fingerprints, so
editing (say) the student size reruns the student and everything after it, while the teacher
— the expensive part — is reused.  A stage is written into its folder and marked done only at
the end, so an interrupted stage is simply redone.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from .errors import BuildError

MARKER = ".done"
SECONDS = ".seconds"
#: Marks a folder as a build work folder: the only kind this module ever deletes.
OWNER = ".edge-finer-build"


class WorkDir:
    def __init__(self, root: Path, resume: bool) -> None:
        self.root = root
        if root.exists() and any(root.iterdir()) and not (root / OWNER).is_file():
            raise BuildError(f"{root}: exists and is not an edge-finer build work folder; "
                             "choose an empty or new folder for --work")
        if not resume and root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True, exist_ok=True)
        (root / OWNER).write_text("build work folder; safe to delete\n", encoding="utf-8")

    def path(self, stage: str) -> Path:
        return self.root / stage

    def is_done(self, stage: str, fingerprint: str) -> bool:
        marker = self.path(stage) / MARKER
        return marker.is_file() and marker.read_text(encoding="utf-8").strip() == fingerprint

    def begin(self, stage: str) -> Path:
        """A fresh, empty folder for ``stage`` (any half-written earlier attempt is removed)."""
        p = self.path(stage)
        if p.exists():
            shutil.rmtree(p)
        p.mkdir(parents=True)
        return p

    def finish(self, stage: str, fingerprint: str, seconds: float) -> None:
        (self.path(stage) / SECONDS).write_text(f"{seconds:.1f}\n", encoding="utf-8")
        (self.path(stage) / MARKER).write_text(fingerprint + "\n", encoding="utf-8")

    def seconds(self, stage: str) -> float | None:
        """How long the stage took when it actually ran (reused stages keep their first time)."""
        try:
            return float((self.path(stage) / SECONDS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def file_stamp(path: Path) -> list[Any]:
    """Identity of an input file by its size and content, not its path or modification time.

    A dataset copied anew (rsync without ``-t``, a fresh clone, a re-mounted share) or a checkout
    moved elsewhere is the same input: only changed bytes should throw away a half-hour teacher.
    Hashing a few megabytes of text costs milliseconds; a 1 GB teacher folder about a second.
    """
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return [path.stat().st_size, digest.hexdigest()]


def folder_stamp(path: Path) -> list[Any]:
    """Each file's place in the folder and its :func:`file_stamp`."""
    return [[p.relative_to(path).as_posix(), *file_stamp(p)]
            for p in sorted(path.rglob("*")) if p.is_file()]


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_jsonl(path: Path, rows: list[Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[Any]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
