"""Which files are inputs, and why a file is not text.

Why: a field linguist's folder holds more than text: ELAN ``.eaf`` XML, recordings, PDFs, and
files in old encodings.  Annotating the XML of an ``.eaf`` or the bytes of a ``.wav`` gives
noise, and "not valid utf-8" does not say what to do.  So a folder is walked for the extensions
of the chosen input format only (``--include``/``--exclude`` globs change that), the output
folder of a run is never taken as input, every file's first bytes are sniffed for binary data
before it is decoded, and an undecodable file gets a suggested encoding (charset-normalizer,
the 'encoding' extra, when installed).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .runlog import RUN_FILE

#: Extensions walked in folders by default, per ``--input-format`` (case-insensitive).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "text": (".txt", ".text", ".md", ".markdown", ".rst", ".org"),
    "conll": (".conll", ".conllu", ".conllx", ".iob", ".iob2", ".bio", ".tsv", ".txt"),
    "tsv": (".tsv", ".tab", ".conll", ".txt"),
    "jsonl": (".jsonl", ".ndjson", ".json"),
}

SNIFF_BYTES = 8192

# Leading bytes of common non-text files, and what to call them.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (docx, odt, xlsx, ...)"),
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"ID3", "MP3 audio"), (b"OggS", "Ogg audio"), (b"fLaC", "FLAC audio"), (b"\x7fELF", "a program"),
    (b"\x1f\x8b", "a gzip archive"), (b"\xd0\xcf\x11\xe0", "an old Office document (doc, xls)"),
)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"),
)


def binary_kind(head: bytes, encoding: str = "utf-8") -> str | None:
    """What ``head`` (a file's first bytes) is if it is not text in ``encoding``, else None:
    a known file signature, or NUL bytes (which no 8-bit or UTF-8 text holds)."""
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return "WAV audio" if head[8:12] == b"WAVE" else "AVI video"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if "16" in encoding or "32" in encoding:
        return None  # UTF-16/32 text holds NUL bytes
    if b"\x00" in head:
        for bom, enc in _BOMS:
            if head.startswith(bom):
                return f"{enc.upper()} text (byte order mark): pass --encoding {enc}"
        return f"binary data (NUL byte at {head.index(0)})"
    return None


#: How much more "chaos" (charset-normalizer's mess measure) than its best candidate Windows-1252
#: may show and still be suggested.  On a few lines of French or German in Latin-1 its best
#: pick was cp1257 (Baltic: "à" read as "ą"), with cp1252 close behind; a legacy file of
#: Western European text is far more often Windows-1252/Latin-1.
CP1252_MARGIN = 0.1


def suggest_encoding(data: bytes) -> str | None:
    """A guess at ``data``'s encoding from charset-normalizer (None: not installed, no guess):
    its best candidate, or Windows-1252 when that is nearly as good (:data:`CP1252_MARGIN`)."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    matches = list(from_bytes(data[:1 << 20]))
    if not matches:
        return None
    best = matches[0]
    for m in matches:
        if "cp1252" in m.could_be_from_charset and m.chaos <= best.chaos + CP1252_MARGIN:
            return "cp1252"
    return best.encoding


@dataclass
class Walk:
    """The inputs named on the command line, and the folder entries passed over."""

    files: list[tuple[Path, str]] = field(default_factory=list)  # (path, output stem)
    skipped: dict[Path, list[Path]] = field(default_factory=dict)  # folder -> files not taken

    def skipped_line(self, folder: Path, include_hint: bool = True) -> str:
        names = [p.relative_to(folder).as_posix() for p in self.skipped[folder]]
        shown = ", ".join(names[:5]) + (f", +{len(names) - 5} more" if len(names) > 5 else "")
        return (f"{folder}: skipped {len(names)} file{'s' if len(names) != 1 else ''} not of the input format's "
                f"extensions ({shown})" + ("; --include GLOB takes them" if include_hint else ""))


def _matches(rel: Path, patterns: Sequence[str]) -> bool:
    posix = rel.as_posix()
    return any(fnmatch.fnmatch(rel.name, p) or fnmatch.fnmatch(posix, p) for p in patterns)


def walk(args: Sequence[str], input_format: str = "text", include: Sequence[str] = (),
         exclude: Sequence[str] = (), output: Path | None = None) -> Walk:
    """Files as given; folders walked recursively (hidden entries, the ``output`` folder and
    any folder holding an edge-finer run record skipped), sorted, taking the files whose name
    matches an ``include`` glob (default: the extensions of ``input_format``) and no ``exclude``
    glob.  Inputs whose output names would collide (``notes.txt``, ``notes.md``) keep their
    extension in the output name (``notes.txt.jsonl``, ``notes.md.jsonl``)."""
    out_dir = output.resolve() if output is not None else None
    exts = EXTENSIONS.get(input_format, EXTENSIONS["text"])
    result = Walk()
    for arg in args:
        path = Path(arg)
        if not path.is_dir():
            result.files.append((path, path.stem or path.name))
            continue
        found = False
        skipped: list[Path] = []
        pruned: list[Path] = []  # output folders found on the way
        for sub in sorted(path.rglob("*")):
            rel = sub.relative_to(path)
            if any(part.startswith(".") for part in rel.parts) or any(sub.is_relative_to(p) for p in pruned):
                continue
            if sub.is_dir():
                if (out_dir is not None and sub.resolve() == out_dir) or (sub / RUN_FILE).is_file():
                    pruned.append(sub)
                continue
            if not sub.is_file():
                continue
            taken = _matches(rel, include) if include else sub.suffix.lower() in exts
            if not taken or (exclude and _matches(rel, exclude)):
                if not (exclude and _matches(rel, exclude)):
                    skipped.append(sub)
                continue
            found = True
            result.files.append((sub, str(rel.with_suffix(""))))
        if skipped:
            result.skipped[path] = skipped
        if not found:
            result.files.append((path, path.name))  # reported as "no files" later
    groups: dict[str, list[Path]] = {}
    for p, stem in result.files:
        groups.setdefault(stem.casefold(), []).append(p)
    # keep the extension where it tells the inputs apart (x/a.txt and y/a.txt stay a clash,
    # reported when the second output would be written)
    apart = {key for key, paths in groups.items()
             if len(paths) > 1 and len({p.suffix.casefold() for p in paths}) == len(paths)}
    result.files = [(p, stem + p.suffix if stem.casefold() in apart else stem) for p, stem in result.files]
    return result
