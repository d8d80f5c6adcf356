"""The catalogue: bundles beyond the default install, as packed archives listed in one index.

Why: the wheel must stay small (a few bundles, see the README), yet every language with data
should have a bundle one command away, offline.  A catalogue is a plain folder, so it travels
as the repository's ``catalogue/`` folder, a USB stick or a LAN share::

    catalogue/
        index.json                      # {"format_version": 1, "bundles": [ENTRY, ...]}
        NAME-VERSION.tar.gz             # one archive per entry (edge_finer.archive.pack)

An entry names the bundle (``name``, ``version``, ``language``, ``taxonomy``), its terms
(``licence``, ``non_commercial``), its archive (``archive``, ``size``, ``sha256``) and its
figures (``figures``: dev F1, spaCy's dev F1 and words/s when measured).  The pipeline writes
it (``python -m quantize.catalogue pack``); this module only reads it.

Installing checks the archive against the index *before* anything is unpacked: the archive is
copied to a private file while it is hashed, the copy's size and sha256 must equal the index's,
and only that copy is then unpacked by :func:`edge_finer.archive.extract_bundle` (which refuses
unsafe members) and verified file by file by :func:`edge_finer.bundle.open_bundle`.  A changed
archive, a wrong checksum in the index, an archive path leaving the folder, or a bundle whose
name is not the entry's: one error line, nothing installed.

Where the catalogue is: ``--from DIR``, else ``EDGE_FINER_CATALOGUE``, else the ``catalogue/``
folder of a source checkout (beside ``edge_finer/``).  An installed wheel has no catalogue
folder of its own (the archives would defeat its small size): give one of the first two.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import CatalogueError

INDEX = "index.json"
ENV_VAR = "EDGE_FINER_CATALOGUE"
#: Bumped when the index changes in a way an older reader would misread.
FORMAT_VERSION = 1
MAX_INDEX_BYTES = 4 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def is_non_commercial(licence: str) -> bool:
    """True for licences that forbid commercial use (``CC BY-NC 4.0``, ``CC BY-NC-SA 4.0``,
    "non-commercial use only")."""
    words = re.split(r"[\s\-_/(),;:]+", licence.upper())
    return "NC" in words or bool(re.search(r"NON[\s\-_]?COMMERCIAL", licence.upper()))


@dataclass(frozen=True)
class Entry:
    """One bundle of a catalogue, as its index lists it."""

    name: str
    version: str
    language: Mapping[str, Any]
    taxonomy: str
    licence: str
    archive: str
    size: int
    sha256: str
    non_commercial: bool = False
    description: str = ""
    figures: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def bcp47(self) -> str:
        return str(self.language.get("bcp47", "?"))

    @property
    def language_name(self) -> str:
        return str(self.language.get("name", "") or self.bcp47)


@dataclass(frozen=True)
class Catalogue:
    folder: Path
    entries: list[Entry]

    def find(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        names = ", ".join(e.name for e in self.entries) or "none"
        raise CatalogueError(f"no bundle named {name!r} in the catalogue {self.folder} (it lists: {names}); "
                             "see `edge-finer bundles available`")

    def for_language(self, code: str) -> list[Entry]:
        """Entries whose language is ``code`` (BCP-47 or ISO 639-3, region ignored)."""
        from .languages import canonical

        want = canonical(code)
        return [e for e in self.entries
                if want in (canonical(e.bcp47), canonical(str(e.language.get("iso639_3", "")) or e.bcp47))]


def default_dir() -> Path | None:
    """``EDGE_FINER_CATALOGUE`` if set, else the source checkout's ``catalogue/`` (None if neither)."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve().parent.parent / "catalogue"
    return here if (here / INDEX).is_file() else None


def resolve_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """The catalogue folder meant by ``--from`` (or the default), or one clear error."""
    path = Path(folder).expanduser() if folder is not None and str(folder).strip() else default_dir()
    if path is None:
        raise CatalogueError("no catalogue folder: pass --from DIR (the repository's catalogue/ folder or a "
                             f"copy of it) or set {ENV_VAR}")
    if not (path / INDEX).is_file():
        raise CatalogueError(f"{path}: not a catalogue folder (no {INDEX})")
    return path


def load(folder: str | os.PathLike[str] | None = None) -> Catalogue:
    """Read and check a catalogue index; every problem is one :class:`CatalogueError` line."""
    root = resolve_dir(folder)
    ipath = root / INDEX
    try:
        if ipath.stat().st_size > MAX_INDEX_BYTES:
            raise CatalogueError(f"{ipath}: too large to be a catalogue index")
        doc = json.loads(ipath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{ipath}: unreadable ({' '.join(str(exc).split())})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("bundles"), list):
        raise CatalogueError(f"{ipath}: expected an object with a 'bundles' list")
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise CatalogueError(f"{ipath}: catalogue format {version!r} is not one this edge-finer reads "
                             f"(up to {FORMAT_VERSION}); upgrade edge-finer")
    entries, seen = [], set()
    for k, raw in enumerate(doc["bundles"]):
        entry = _entry(ipath, k, raw)
        if entry.name in seen:
            raise CatalogueError(f"{ipath}: bundle {entry.name!r} is listed twice")
        seen.add(entry.name)
        entries.append(entry)
    return Catalogue(root, entries)


def _entry(ipath: Path, k: int, raw: Any) -> Entry:
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise CatalogueError(f"{ipath}: entry {k + 1}: {what}")

    need(isinstance(raw, dict), "not an object")
    name, archive = raw.get("name"), raw.get("archive")
    need(isinstance(name, str) and bool(_PLAIN.match(name)), f"name {name!r} is not a plain bundle name")
    # the archive is a file *in* the catalogue folder: no separators, no '..', nothing hidden
    need(isinstance(archive, str) and bool(_PLAIN.match(archive)) and ".." not in archive
         and archive.endswith((".tar.gz", ".tgz", ".tar.xz", ".tar")),
         f"archive {archive!r} is not a plain archive file name in the catalogue folder; refused")
    need(isinstance(raw.get("sha256"), str) and bool(_SHA256.match(raw["sha256"])), "sha256 is not 64 hex digits")
    size = raw.get("size")
    need(isinstance(size, int) and not isinstance(size, bool) and size > 0, "size is not a positive integer")
    lang = raw.get("language")
    need(isinstance(lang, dict) and isinstance(lang.get("bcp47"), str), "language needs 'bcp47'")
    licence = str(raw.get("licence", "") or "")
    need(bool(licence.strip()), "no licence")
    figures = raw.get("figures", {})
    return Entry(name=name, version=str(raw.get("version", "?")), language=lang,
                 taxonomy=str(raw.get("taxonomy", "?")), licence=licence, archive=archive, size=size,
                 sha256=raw["sha256"],
                 non_commercial=bool(raw.get("non_commercial")) or is_non_commercial(licence),
                 description=str(raw.get("description", "")),
                 figures=figures if isinstance(figures, dict) else {}, raw=raw)


def sha256_copy(src: Path, dst: Path, limit: int) -> tuple[str, int]:
    """Copy ``src`` to the new file ``dst`` while hashing it; stop reading past ``limit`` bytes
    (a file larger than its index says is refused without being read to its end)."""
    digest = hashlib.sha256()
    n = 0
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        for block in iter(lambda: fin.read(1 << 20), b""):
            n += len(block)
            if n > limit:
                break
            digest.update(block)
            fout.write(block)
    return digest.hexdigest(), n


def install(name: str, folder: str | os.PathLike[str] | None = None, force: bool = False) -> Any:
    """Install the catalogue's bundle ``name`` into the user data folder; returns the Bundle.

    The archive's size and sha256 are checked against the index before anything is unpacked
    (on a private copy, so the bytes checked are the bytes unpacked); then the registry's
    install unpacks it safely, verifies every file and moves it into place atomically.
    """
    from . import registry

    cat = load(folder)
    entry = cat.find(name)
    src = cat.folder / entry.archive
    if not src.is_file() or src.is_symlink():
        raise CatalogueError(f"{src}: missing from the catalogue folder (its index lists {entry.name})")
    staging = registry.user_cache_dir() / "catalogue"
    staging.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch.", dir=staging))
    try:
        copy = tmp / entry.archive
        try:
            digest, size = sha256_copy(src, copy, entry.size)
        except OSError as exc:
            raise CatalogueError(f"{src}: cannot read ({exc.strerror or exc})") from None
        if size != entry.size or digest != entry.sha256:
            if size > entry.size:
                what = f"is larger than the {entry.size} bytes its index entry says"
            elif size != entry.size:
                what = f"is {size} bytes, its index entry says {entry.size}"
            else:
                what = f"has sha256 {digest[:16]}…, its index entry says {entry.sha256[:16]}…"
            raise CatalogueError(f"{src}: {what}; the archive or the index was changed or damaged. "
                                 "Refused: nothing was unpacked or installed")
        return registry.install(copy, force=force, expect_name=entry.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@functools.lru_cache(maxsize=8)
def _cached(folder: str, mtime_ns: int) -> Catalogue | None:
    try:
        return load(folder)
    except CatalogueError:
        return None


def for_language(code: str) -> list[Entry]:
    """Entries of the default catalogue for a language; [] when there is no (readable) catalogue.
    Cheap and quiet: the router asks this for every text of a language with no bundle."""
    root = default_dir()
    if root is None:
        return []
    try:
        mtime = (root / INDEX).stat().st_mtime_ns
    except OSError:
        return []
    cat = _cached(str(root), mtime)
    return cat.for_language(code) if cat is not None else []
