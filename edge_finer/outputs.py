"""Inputs and the output folder of one ``annotate -o`` run, checked against each other.

Why: an output folder inside an input folder turned the second run (``--resume``, ``--force``)
into annotating its own outputs, and the same file named twice (``a.txt a.txt``, or a folder
and a file in it) failed as "already holds the results" although there was one input.  Both
are settled here before anything is read or written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def plan_sources(sources: list[Any], output: Path | None, named: list[str] | None = None
                 ) -> tuple[list[Any], list[str]]:
    """The sources to annotate, and warnings to print: with ``output``, files found inside the
    output folder by walking an input folder are not inputs (a file ``named`` on the command
    line stays one, and is protected from being overwritten as before), and a file named more
    than once is annotated once."""
    if output is None:
        return sources, []
    out = output.resolve()
    explicit = set()
    for arg in named or []:
        try:
            explicit.add(Path(arg).resolve())
        except (OSError, RuntimeError):
            pass
    kept, seen, warnings, skipped_outputs = [], {}, [], 0
    for src in sources:
        if src.path is None:
            kept.append(src)
            continue
        try:
            resolved = src.path.resolve()
        except (OSError, RuntimeError):  # a symlink loop: read_text reports it
            kept.append(src)
            continue
        if src.path.is_file() and _inside(resolved, out) and resolved not in explicit:
            skipped_outputs += 1
            continue
        if resolved in seen and src.path.is_file():
            warnings.append(f"{src.name}: given more than once (as {seen[resolved]}); annotated once")
            continue
        seen[resolved] = src.name
        kept.append(src)
    if skipped_outputs:
        warnings.append(f"{output}: is inside an input folder; its {skipped_outputs} file(s) are outputs, "
                        "not inputs, and were left out")
    return kept, warnings
