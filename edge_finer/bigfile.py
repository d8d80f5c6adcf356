"""Annotate a large file as a stream: memory flat in the size of the file and of its lines.

Why: the whole-text path reads a file into one string, splits it into lines, lists every
sentence of a line before annotating any, and keeps every entity of a line until the line is
written.  A 50 MB single line peaked at 1.4 GB (benchmarks/results/soak.md).  Here the file
is read in blocks, each line is cut into sentences as it arrives (``SentenceStream``), the
sentences go to the model in exactly the chunks ``Annotator.stream`` would form (so every
score is the same to the last digit: int8 activation scales are computed per batch), and the
entities of a chunk go straight to the writer.  A line longer than :data:`HOLD_CHARS` is never
held whole: the jsonl writer copies its ``text`` field from the file in blocks (a second
reader), then writes the entities as they come.

The output is byte for byte what the whole-text path writes (tests/test_giant.py).  Used by
``annotate`` with one bundle and one process for files larger than :data:`STREAM_FILE_BYTES`
in UTF-8, written as jsonl or tsv (the table sizes its columns over all rows, conll re-splits
each whole line, brat writes the whole text beside its annotations: those keep the whole-text
path).
"""
from __future__ import annotations

import codecs
import json
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from .entity import Entity
from .errors import InputError
from .formats import TSV_HEADER, label_of
from .segment import SentenceStream, iter_sentences

#: Files larger than this (bytes) are streamed.
STREAM_FILE_BYTES = 8 * 2**20
#: Formats whose records can be written as their entities arrive (brat to a folder writes the
#: document's text beside its annotations, so it keeps the whole-text path).
STREAM_FORMATS = ("jsonl", "tsv")
#: A line longer than this (characters) is never held whole in memory.
HOLD_CHARS = 1 << 20
#: Bytes read at a time.
BLOCK = 1 << 20


def streamable(path: Path | None, fmt: str, encoding: str, threshold: int | None = None) -> bool:
    """Whether ``path`` goes through this module: a regular UTF-8 file larger than ``threshold``
    (default :data:`STREAM_FILE_BYTES`) written in a streaming format."""
    threshold = STREAM_FILE_BYTES if threshold is None else threshold
    if path is None or fmt not in STREAM_FORMATS:
        return False
    try:
        if codecs.lookup(encoding).name != "utf-8":
            return False
        return path.is_file() and path.stat().st_size > threshold
    except (LookupError, OSError):
        return False


# -- reading ------------------------------------------------------------------------------


#: Bytes of a large file the encoding guess of a decoding error looks at (the whole-text path
#: guesses from the whole file).
GUESS_BYTES = 4 * 2**20


def _decode_error(path: Path, encoding: str, position: int) -> InputError:
    """The message ``read_text`` gives for an undecodable file (its encoding guess made from
    the first :data:`GUESS_BYTES` here)."""
    from .inputs import suggest_encoding

    with open(path, "rb") as fh:
        guess = suggest_encoding(fh.read(GUESS_BYTES))
    hint = (f"it looks like {guess} (charset-normalizer's guess): pass --encoding {guess}"
            if guess and guess.replace("_", "-").lower() != encoding.replace("_", "-").lower()
            else "pass --encoding for another encoding")
    return InputError(f"{path}: not valid {encoding} (byte {position}); {hint}, or --errors replace "
                      "to substitute bad bytes")


def check_decodes(path: Path, errors: str) -> None:
    """Refuse what ``read_text`` refuses, with its message, before anything is written: a
    binary file (by its first bytes) and, with ``errors="strict"``, an undecodable one (at the
    byte reading the file whole names)."""
    from .inputs import SNIFF_BYTES, binary_kind

    try:
        with open(path, "rb") as fh:
            kind = binary_kind(fh.read(SNIFF_BYTES), "utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if kind is not None:
        raise InputError(f"{path}: not text: {kind}" + ("" if "--encoding" in kind else "; skipped"))
    if errors != "strict":
        return
    dec = codecs.getincrementaldecoder("utf-8")("strict")
    fed = 0
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(BLOCK), b""):
                pending = len(dec.getstate()[0])
                try:
                    dec.decode(block)
                except UnicodeDecodeError as exc:
                    raise _decode_error(path, exc.encoding, fed - pending + exc.start) from None
                fed += len(block)
            pending = len(dec.getstate()[0])
            try:
                dec.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                raise _decode_error(path, exc.encoding, fed - pending + exc.start) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def head(path: Path, errors: str, chars: int = 20_000) -> str:
    """The first ``chars`` characters of the file (what the script check looks at)."""
    with open(path, "rb") as fh:
        data = fh.read(chars * 4 + 4)
    return codecs.getincrementaldecoder("utf-8")(errors).decode(data)[:chars]


def iter_line_pieces(fh: Any, errors: str, start: int = 0, one_line: bool = False) -> Iterator[tuple]:
    """Events of the lines of a binary file from byte ``start``: ``("text", str)`` pieces of the
    current line (never its terminator: ``\\n``, and ``\\r`` before it, as ``iter_lines``),
    ``("end", raw_chars, byte_start, next_byte_start)`` when it ends (``raw_chars``: its
    decoded length with the ``\\r``).  ``one_line``: stop after the first line.  Lines split as ``iter_lines``
    splits them: no line after a final newline, none in an empty file."""
    fh.seek(start)
    dec = codecs.getincrementaldecoder("utf-8")(errors)
    line_start, pos, raw_chars, held_cr = start, start, 0, False
    for block in iter(lambda: fh.read(BLOCK), b""):
        at = 0
        while at < len(block):
            nl = block.find(b"\n", at)
            part = block[at:] if nl < 0 else block[at:nl]
            text = dec.decode(part, final=nl >= 0)
            if text:
                if held_cr:
                    text, held_cr = "\r" + text, False
                if text.endswith("\r"):
                    text, held_cr = text[:-1], True
                raw_chars += len(text)
                if text:
                    yield "text", text
            if nl < 0:
                pos += len(block) - at
                break
            pos += nl - at + 1
            yield "end", raw_chars + held_cr, line_start, pos
            if one_line:
                return
            line_start, raw_chars, held_cr = pos, 0, False
            at = nl + 1
    text = ("\r" if held_cr else "") + dec.decode(b"", final=True)
    raw_chars += len(text)
    text = text[:-1] if text.endswith("\r") else text  # iter_lines strips a last line's \r too
    if text:
        yield "text", text
    if raw_chars:  # the text after the last newline, if any, is a line
        yield "end", raw_chars, line_start, pos


# -- annotating -----------------------------------------------------------------------------


@dataclass
class Line:
    number: int
    offset: int  # of its first character in the decoded file
    byte_start: int
    text: str | None  # None: too long to hold (the writer reads it again from the file)
    started: bool = False


def annotate_stream(annotator: Any, fh: Any, errors: str, hold_chars: int = HOLD_CHARS) -> Iterator[tuple]:
    """``("start", Line)``, ``("entities", [Entity])`` (offsets into the line) and
    ``("end", Line)`` events, in file order, for every line of ``fh``.

    Chunks of sentences are those of :meth:`Annotator.stream`: a group of lines closes at the
    line that brings it to ``SENTENCES_PER_CHUNK`` sentences, and a group is annotated in
    chunks of that many sentences from its start.  A full chunk is annotated as soon as it is
    full (the same chunk, so the same scores), which is what keeps a giant line's memory flat.
    """
    from .annotator import SENTENCES_PER_CHUNK

    annotator.warm_up()
    open_lines: deque[Line] = deque()
    pending: list[tuple[Line, str, int, int, int]] = []
    group = 0

    def run_chunk() -> Iterator[tuple]:
        found = annotator._annotate_sentences([(buf, a, b) for _, buf, a, b, _ in pending])
        for (line, _, _, _, base), ents in zip(pending, found):
            while open_lines[0] is not line:
                yield from close(open_lines.popleft())
            if not line.started:
                line.started = True
                yield "start", line
            if ents:
                yield "entities", ([replace(e, start=e.start + base, end=e.end + base) for e in ents] if base
                                   else ents)
        pending.clear()

    def close(line: Line) -> Iterator[tuple]:
        if not line.started:
            line.started = True
            yield "start", line
        yield "end", line

    def add(line: Line, sentences: list[tuple[str, int, int, int]]) -> Iterator[tuple]:
        nonlocal group
        for buf, a, b, base in sentences:
            pending.append((line, buf, a, b, base))
            group += 1
            if len(pending) == SENTENCES_PER_CHUNK:
                yield from run_chunk()

    number, offset, byte_start = 0, 0, 0
    pieces: list[str] = []
    held = 0
    stream: SentenceStream | None = None
    line: Line | None = None
    for event in iter_line_pieces(fh, errors):
        if line is None:
            number += 1
            line = Line(number, offset, byte_start, None)
            open_lines.append(line)
        if event[0] == "text":
            if stream is None:
                pieces.append(event[1])
                held += len(event[1])
                if held > hold_chars:  # too long to hold: sentences from here on as they come
                    stream = SentenceStream()
                    yield from add(line, stream.feed("".join(pieces)))
                    pieces, held = [], 0
            else:
                yield from add(line, stream.feed(event[1]))
            continue
        _, raw_chars, _, byte_start = event
        if stream is None:
            text = "".join(pieces)
            line.text = text
            yield from add(line, [(text, a, b, 0) for a, b in iter_sentences(text)])
        else:
            yield from add(line, stream.finish())
        pieces, held, stream = [], 0, None
        offset += raw_chars + 1
        if group >= SENTENCES_PER_CHUNK:
            if pending:
                yield from run_chunk()
            group = 0
        if not pending:  # every line read so far is complete
            while open_lines:
                yield from close(open_lines.popleft())
        line = None
    if pending:
        yield from run_chunk()
    while open_lines:
        yield from close(open_lines.popleft())


# -- writing ----------------------------------------------------------------------------------


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _line_text_json(path: Path, errors: str, line: Line) -> Iterator[str]:
    """The line's ``text`` field, JSON-escaped piece by piece from a second reader of the file
    (escaping is per character, so the pieces join to ``json.dumps`` of the whole line)."""
    if line.text is not None:
        yield _dump(line.text)
        return
    yield '"'
    with open(path, "rb") as fh:
        for kind, *rest in iter_line_pieces(fh, errors, line.byte_start, one_line=True):
            if kind == "text":
                yield _dump(rest[0])[1:-1]
    yield '"'


def render_stream(events: Iterator[tuple], fmt: str, granularity: str, source: str, path: Path, errors: str,
                  header: bool = True) -> Iterator[str]:
    """Output text for :func:`annotate_stream`'s events, equal to ``formats.render`` of the
    records the whole-text path makes."""
    fine = granularity == "fine"
    if fmt == "tsv" and header:
        yield TSV_HEADER
    clean = str.maketrans({"\t": " ", "\r": " ", "\n": " "})
    count = 0  # brat numbering
    first = True
    line: Line | None = None
    src = source.translate(clean)
    for kind, value in events:
        if kind == "start":
            line, first = value, True
            if fmt == "jsonl":
                yield f'{{"source": {_dump(source)}, "line": {line.number}, "offset": {line.offset}, "text": '
                yield from _line_text_json(path, errors, line)
                yield ', "entities": ['
        elif kind == "end":
            if fmt == "jsonl":
                yield "]}\n"
        else:
            assert line is not None
            parts = []
            for e in value:
                if fmt == "jsonl":
                    item = {"start": e.start, "end": e.end, "text": e.text, "label": label_of(e, granularity),
                            "score": e.score}
                    if fine:
                        item["coarse_label"] = e.coarse_label
                    parts.append(("" if first else ", ") + _dump(item))
                    first = False
                elif fmt == "tsv":
                    parts.append(f"{src}\t{line.number}\t{line.offset + e.start}\t{line.offset + e.end}\t"
                                 f"{label_of(e, granularity)}\t{e.score:.4f}\t{e.text.translate(clean)}\n")
                else:
                    count += 1
                    parts.append(f"T{count}\t{label_of(e, granularity)} {line.offset + e.start} "
                                 f"{line.offset + e.end}\t{e.text.translate(clean)}\n")
            yield "".join(parts)


def stream_file(annotator: Any, path: Path, source: str, fmt: str, granularity: str, errors: str,
                header: bool = True, check_head: Callable[[str], Any] | None = None,
                hold_chars: int = HOLD_CHARS) -> Iterator[str]:
    """The whole output for one file, produced as it is annotated.  Decoding problems and the
    script check (``check_head`` on the first 20,000 characters) are raised before the first
    piece of output, as the whole-text path raises them."""
    check_decodes(path, errors)
    if check_head is not None:
        check_head(head(path, errors))

    def pieces() -> Iterator[str]:
        try:
            with open(path, "rb") as fh:
                yield from render_stream(annotate_stream(annotator, fh, errors, hold_chars), fmt, granularity,
                                         source, path, errors, header)
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None

    return pieces()


__all__ = ["streamable", "stream_file", "annotate_stream", "SentenceStream", "Entity"]
