"""Reading user files and writing results without ever losing data.

Inputs are decoded exactly as asked (``encoding`` / ``errors``) with newlines kept as they are,
so character offsets point into the text as the user's file holds it.  Outputs are written to a
temporary file in the destination folder and renamed into place: a crash or a full disk leaves
either the old file or the new one, never half of one, and an input is never a target.
"""
from __future__ import annotations

import errno
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .errors import DiskFullError, InputError, OutputError

ERROR_POLICIES = ("strict", "replace", "ignore", "surrogateescape")


@dataclass(frozen=True)
class Source:
    """One input document: where it came from and how to name its output."""

    name: str  # shown to the user and written into records
    path: Path | None  # None for stdin and --text
    output_stem: str  # relative output name without extension
    text: str | None = None  # given directly (--text or stdin)


def expand_inputs(args: list[str], input_format: str = "text", include: Sequence[str] = (),
                  exclude: Sequence[str] = (), output: Path | None = None) -> Iterator[Source]:
    """Files as given; folders walked for the files of ``input_format`` (see
    :func:`edge_finer.inputs.walk`, which also says what it passed over), sorted."""
    from .inputs import walk

    for path, stem in walk(args, input_format, include, exclude, output).files:
        yield Source(str(path), path, stem)


def read_text(source: Source, encoding: str = "utf-8", errors: str = "strict") -> str:
    """The decoded text of a source, or one clear :class:`InputError`."""
    if source.text is not None:
        return source.text
    path = source.path
    assert path is not None
    if path.is_dir():
        raise InputError(f"{path}: folder holds no readable files")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    from .inputs import SNIFF_BYTES, binary_kind, suggest_encoding

    kind = binary_kind(data[:SNIFF_BYTES], encoding.lower())
    if kind is not None:
        raise InputError(f"{path}: not text: {kind}" + ("" if "--encoding" in kind else "; skipped"))
    try:
        return data.decode(encoding, errors)
    except UnicodeDecodeError as exc:
        guess = suggest_encoding(data)
        hint = (f"it looks like {guess} (charset-normalizer's guess): pass --encoding {guess}"
                if guess and guess.replace("_", "-").lower() != exc.encoding.replace("_", "-").lower()
                else "pass --encoding for another encoding")
        raise InputError(f"{path}: not valid {exc.encoding} (byte {exc.start}); {hint}, or --errors replace "
                         "to substitute bad bytes") from None
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}") from None


def iter_lines(text: str) -> Iterator[tuple[int, int, str]]:
    """``(line_number, offset, line_without_terminator)``; offsets are into ``text``.

    Splits on ``\\n`` only (``\\r`` stays with its line and is whitespace to the annotator), so
    CRLF files keep exact offsets.  The empty remainder after a final newline is not a line, and
    an empty text has none.
    """
    if not text:
        return  # an empty file has no lines (its output is empty too)
    offset = 0
    parts = text.split("\n")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    for number, raw in enumerate(parts, start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        yield number, offset, line
        offset += len(raw) + 1


def check_output_target(target: Path, inputs: set[Path], force: bool) -> None:
    """Refuse to write where it would destroy data: an input, or an existing file without force."""
    resolved = target.resolve()
    if resolved in inputs:
        raise OutputError(f"{target}: is an input file; refusing to overwrite it (choose another --output)")
    if target.exists() and not force:
        raise OutputError(f"{target}: exists; pass --force to replace it")


def _new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0o666 less the umask.  The temporary file is
    made 0o600 (as ``mkstemp`` makes them), which left every output (and every --force
    replacement) private to its writer.
    Reading the umask means setting it; the CLI does this from its one thread."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(target: Path, data: bytes | str | Iterable[str]) -> None:
    """Write ``data`` (a string, or chunks of one) to ``target`` via a temporary file and a rename.

    Chunks are written as they come, so an output never has to fit in memory whole; if making
    them fails (a bad input, an interrupt), the temporary file is removed and ``target`` is
    left as it was.

    Encoded as UTF-8 with ``surrogateescape``: text read with ``--errors surrogateescape``
    holds lone surrogates standing for the input's undecodable bytes, and they are written back
    as those bytes (as on stdout) instead of crashing the write and leaving a ``.part`` behind.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _raise_if_full(target, exc)
        raise OutputError(f"{target.parent}: cannot write here ({exc.strerror or exc})") from None
    tmp: Path | None = None
    opened = False
    try:
        # the name is chosen before the file exists, inside the handler that removes it: a Ctrl-C
        # that Python raises just after the open returns (mkstemp's window) cannot leak a .part
        while not opened:
            tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
            try:
                fd = os.open(tmp, _PART_FLAGS, 0o600)
                opened = True
            except FileExistsError:
                tmp = None  # another writer's file: never ours to remove
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
            os.fchmod(fh.fileno(), _new_file_mode())
            if isinstance(data, bytes):  # a binary format (spaCy's DocBin)
                fh.flush()
                fh.buffer.write(data)
            elif isinstance(data, str):
                fh.write(data)
            else:
                for chunk in data:
                    fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except (OSError, UnicodeEncodeError) as exc:
        _discard(tmp)
        if isinstance(exc, OSError):
            _raise_if_full(target, exc)
        if not opened:
            raise OutputError(f"{target.parent}: cannot write here ({exc.strerror or exc})") from None
        raise OutputError(f"{target}: cannot write ({getattr(exc, 'strerror', None) or exc})") from None
    except BaseException:
        _discard(tmp)
        raise


_PART_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _discard(tmp: Path | None) -> None:
    """Remove a temporary output, if it was made (after the rename it is gone already)."""
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass


_FULL = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
         errno.EFBIG: "the file size limit is reached"}


def _raise_if_full(target: Path, exc: OSError) -> None:
    """A full device fails every later output too: one error that stops the run and says how
    to finish it (the partial file is already removed; inputs are never written)."""
    if exc.errno in _FULL:
        raise DiskFullError(f"{target}: cannot write ({exc.strerror or exc}): {_FULL[exc.errno]}. Nothing partial was left and the "
                            "inputs are untouched; free some space, then rerun the same command with --resume "
                            "to finish") from None
