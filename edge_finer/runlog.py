"""The record an ``--output`` run leaves in its folder, so that ``--resume`` is safe.

Why: after a crash or a kill, the outputs already in the folder are complete (each is written
to a temporary file and renamed), so a rerun may skip them; but only if they were made with the
same options, or a resumed run would silently mix, say, fine and coarse labels in one corpus.
The record holds those options; ``--resume`` refuses a folder whose record differs, or that
holds files but no record, and clears the temporary files a killed run left behind.  On a new or
empty folder it simply starts the run (a batch script cannot always know whether it is the
first run).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import OutputError
from .version import __version__

RUN_FILE = ".edge-finer-run.json"


def start_run(folder: Path, options: dict[str, Any], resume: bool) -> None:
    """Check (``resume``) or write the folder's run record before any output is written."""
    from .textio import atomic_write

    record = {"edge_finer": __version__, "options": options}
    path = folder / RUN_FILE
    if resume:
        from .safejson import read_json

        if not path.is_file():
            if not _holds_files(folder):  # a new (or empty) folder: nothing to resume, so start
                atomic_write(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
                return
            raise OutputError(f"{folder}: holds files but no record of an earlier run ({RUN_FILE}); "
                              "run without --resume, or use another --output folder")
        previous = read_json(path, 1 << 20, "a run record", error=OutputError)
        if not isinstance(previous, dict):
            raise OutputError(f"{path}: unreadable run record (not a JSON object); run without --resume")
        if previous != record:
            changed = sorted(k for k in set(options) | set(previous.get("options", {}))
                             if options.get(k) != previous.get("options", {}).get(k))
            what = ", ".join(changed) or "edge-finer version"
            raise OutputError(f"{folder}: was written with different options ({what}); resume with the same "
                              "options, or use another --output folder")
        for stale in folder.rglob(".*.part"):  # temporary files of the killed run
            try:
                stale.unlink()
            except OSError:
                pass
        return
    atomic_write(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def _holds_files(folder: Path) -> bool:
    """True when ``folder`` has anything in it but hidden entries (temporary files, records)."""
    try:
        return any(not p.name.startswith(".") for p in folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise OutputError(f"{folder}: cannot read ({exc.strerror or exc})") from None
