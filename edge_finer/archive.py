"""Packing a bundle into one archive file, and unpacking archives that strangers send.

Unpacking is the dangerous half: a hostile archive may hold ``../`` or absolute paths, links
or device files, or decompress to far more than it claims.  Every member is checked before a
byte is written, only regular files and folders are created, sizes are capped while reading,
and everything lands in a fresh folder the caller chose.
"""
from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path, PurePosixPath

from .bundle import MANIFEST, open_bundle
from .errors import ArchiveError

#: Limits generous for any real bundle (the largest shipped is a few MB).
MAX_MEMBERS = 64
MAX_MEMBER_BYTES = 1 << 30
MAX_TOTAL_BYTES = 2 << 30
MAX_RATIO = 200  # uncompressed / compressed, beyond which it is a decompression bomb


def pack(bundle_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Verify a bundle folder and pack it as ``NAME-VERSION.tar.gz`` (members under ``NAME/``)."""
    bundle = open_bundle(bundle_dir)
    target = Path(out) if out else Path.cwd() / f"{bundle.name}-{bundle.version}.tar.gz"
    if target.is_dir():
        target = target / f"{bundle.name}-{bundle.version}.tar.gz"
    tmp = target.with_name(f".{target.name}.part")
    files = [MANIFEST] + sorted(bundle.manifest["files"])
    # byte-for-byte reproducible (no time or file name in the gzip header, fixed member metadata):
    # packing the same bundle twice gives the same sha256, so a catalogue index does not churn
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for fname in files:
                info = tar.gettarinfo(str(bundle.path / fname), arcname=f"{bundle.name}/{fname}")
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                info.mode = 0o644
                with open(bundle.path / fname, "rb") as fh:
                    tar.addfile(info, fh)
        os.replace(tmp, target)
    except BaseException:  # a failed or interrupted pack leaves no .part beside the archives
        tmp.unlink(missing_ok=True)
        raise
    return target


def extract_bundle(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Safely unpack a bundle archive into the existing empty folder ``dest``.

    Returns the bundle folder inside ``dest``.  Raises :class:`ArchiveError`, having written
    nothing outside ``dest``, if any member is unsafe.
    """
    src = Path(archive)
    root = Path(dest)
    try:
        compressed = max(src.stat().st_size, 1)
        with tarfile.open(src, "r:*") as tar:
            members = _checked_members(src, tar, compressed)
            top = {PurePosixPath(m.name).parts[0] for m in members}
            if len(top) != 1:
                raise ArchiveError(f"{src}: a bundle archive must hold exactly one top folder, found {sorted(top)}")
            written = 0
            for m in members:
                rel = PurePosixPath(m.name)
                target = root.joinpath(*rel.parts)
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                fin = tar.extractfile(m)
                if fin is None:
                    raise ArchiveError(f"{src}: member {m.name!r} cannot be read")
                with fin, open(target, "xb") as fout:
                    copied = 0
                    for block in iter(lambda: fin.read(1 << 20), b""):
                        copied += len(block)
                        written += len(block)
                        if copied > m.size or written > MAX_TOTAL_BYTES:
                            raise ArchiveError(f"{src}: member {m.name!r} is larger than declared")
                        fout.write(block)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(f"{src}: not a readable bundle archive ({_one_line(exc)})") from None
    folder = root / top.pop()
    if not (folder / MANIFEST).is_file():
        raise ArchiveError(f"{src}: the archive holds no {MANIFEST}")
    return folder


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line: tarfile's "r:*" lists each method it tried on its own
    line, and a refusal must stay one ``error:`` line."""
    return " ".join(str(exc).split())


def _checked_members(src: Path, tar: tarfile.TarFile, compressed: int) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    total = 0
    for m in tar:
        if len(members) >= MAX_MEMBERS:
            raise ArchiveError(f"{src}: more than {MAX_MEMBERS} members; not a bundle")
        name = m.name
        path = PurePosixPath(name)
        if name and not path.parts:
            # "." or "./" (what `tar -C folder .` writes first) names no file under a top folder;
            # without this check the member crashed the path checks below with an IndexError.
            raise ArchiveError(f"{src}: member {name!r} is the archive root, not a path under one "
                               "top folder; refused")
        if not name or name.startswith(("/", "\\")) or path.is_absolute() or ":" in path.parts[0] \
                or any(part in ("..", "") for part in path.parts) or "\\" in name or "\x00" in name:
            raise ArchiveError(f"{src}: unsafe member path {name!r} (absolute or '..'); refused")
        if m.issym() or m.islnk():
            raise ArchiveError(f"{src}: member {name!r} is a link; refused")
        if not (m.isfile() or m.isdir()):
            raise ArchiveError(f"{src}: member {name!r} is not a regular file or folder; refused")
        if m.size > MAX_MEMBER_BYTES:
            raise ArchiveError(f"{src}: member {name!r} is {m.size} bytes, over the limit; refused")
        total += m.size
        if total > MAX_TOTAL_BYTES or total > MAX_RATIO * compressed + (1 << 20):
            raise ArchiveError(f"{src}: unpacks to far more than its size (decompression bomb?); refused")
        members.append(m)
    if not members:
        raise ArchiveError(f"{src}: empty archive")
    return members
