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
``annotate`` for plain-text files larger than :data:`STREAM_FILE_BYTES` written as jsonl or
tsv, in any encoding :func:`line_safe` accepts (UTF-8, Latin-1, cp1252, Shift-JIS, ...; not
UTF-16/32, UTF-7 or the stateful ISO-2022 ones), with

- one bundle (``--lang``/``--bundle``), or
- routing per document (the default without them): the router's sample, ten slices spread
  over the text by character position, is cut from the file in two passes
  (:func:`document_sample`), so the decision, and the ``routing`` field of every jsonl record,
  is the whole-text path's.  ``--route sentence`` routes the whole text at once and keeps the
  whole-text path, as do blank (whitespace-only) files under routing.

With ``--workers N`` such a file is streamed by the parent process while the workers take
the other inputs (edge_finer/corpus.py).  The table sizes its columns over all rows, conll
re-splits each whole line, brat writes the whole text beside its annotations, the document
formats (xmi, webanno, spacy) build a whole document: those keep the whole-text path, as do
stdin and ``--text``.
"""
from __future__ import annotations

import codecs
import functools
import json
from collections import deque
from dataclasses import dataclass, replace
from itertools import chain
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


@functools.lru_cache(maxsize=None)
def line_safe(encoding: str) -> bool:
    """Whether a file in ``encoding`` may be cut into lines at its ``\n`` bytes and each line
    decoded on its own, giving exactly the text decoding it whole gives (with any --errors).

    Checked on the codec itself rather than listed: the 128 ASCII bytes must decode to
    themselves (which UTF-16/32, UTF-7 and EBCDIC fail), and every two bytes followed by
    ``\nA\n`` must decode as the two bytes alone followed by ``"\nA\n"``, even where they are an
    escape, a bad or an unfinished sequence (ISO-2022's escapes, and GB18030, whose
    ``errors="replace"`` swallows more of a cut sequence at the end of a line than inside a
    text, fail this).  ~0.4 s once per encoding, for files that take minutes to annotate."""
    try:
        name = codecs.lookup(encoding).name
        if name == "utf-8":
            return True
        if bytes(range(128)).decode(name) != "".join(map(chr, range(128))):
            return False
        for lead in range(256):
            pairs = [bytes((lead, b)) for b in range(256)]
            whole = b"".join(p + b"\nA\n" for p in pairs).decode(name, "replace")
            if whole != "".join(p.decode(name, "replace") + "\nA\n" for p in pairs):
                return False
        return True
    except (LookupError, UnicodeError, TypeError, ValueError):
        return False  # not a codec of bytes to text, or one that refuses error handlers


def streamable(path: Path | None, fmt: str, encoding: str, threshold: int | None = None) -> bool:
    """Whether ``path`` goes through this module: a regular file larger than ``threshold``
    (default :data:`STREAM_FILE_BYTES`) in a :func:`line_safe` encoding, written in a
    streaming format."""
    threshold = STREAM_FILE_BYTES if threshold is None else threshold
    if path is None or fmt not in STREAM_FORMATS:
        return False
    try:
        return path.is_file() and path.stat().st_size > threshold and line_safe(encoding)
    except OSError:
        return False


def _decoder(encoding: str, errors: str, after_newline: bool = False) -> Any:
    """An incremental decoder; ``after_newline``: for reading from the start of a line inside
    the file, fed the ``\n`` before it first (a UTF-8-SIG decoder then keeps a BOM there as
    decoding the whole file keeps it)."""
    dec = codecs.getincrementaldecoder(encoding)(errors)
    if after_newline:
        dec.decode(b"\n")
    return dec


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


def check_decodes(path: Path, errors: str, encoding: str = "utf-8") -> None:
    """Refuse what ``read_text`` refuses, with its message, before anything is written: a
    binary file (by its first bytes) and, with ``errors="strict"``, an undecodable one (at the
    byte reading the file whole names)."""
    from .inputs import SNIFF_BYTES, binary_kind

    try:
        with open(path, "rb") as fh:
            kind = binary_kind(fh.read(SNIFF_BYTES), encoding.lower())
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if kind is not None:
        raise InputError(f"{path}: not text: {kind}" + ("" if "--encoding" in kind else "; skipped"))
    if errors != "strict":
        return
    start = 0
    if codecs.lookup(encoding).name == "utf-8-sig":  # decoding whole drops a BOM and counts from after it
        with open(path, "rb") as fh:
            start = 3 if fh.read(3) == codecs.BOM_UTF8 else 0
        encoding = "utf-8"
    dec = _decoder(encoding, "strict")
    fed = 0
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
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


def head(path: Path, errors: str, chars: int = 20_000, encoding: str = "utf-8") -> str:
    """The first ``chars`` characters of the file (what the script check looks at)."""
    with open(path, "rb") as fh:
        data = fh.read(chars * 4 + 4)
    return _decoder(encoding, errors).decode(data)[:chars]


def scan(path: Path, encoding: str, errors: str) -> tuple[int, bool]:
    """``(characters, blank)``: the length of the decoded file and whether it is all
    whitespace (what ``text.strip()`` would leave empty), in one pass of blocks."""
    dec = _decoder(encoding, errors)
    count, blank = 0, True
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            text = dec.decode(block)
            count += len(text)
            blank = blank and (not text or text.isspace())
    text = dec.decode(b"", final=True)
    return count + len(text), blank and (not text or text.isspace())


def document_sample(path: Path, encoding: str, errors: str, chars: int | None = None) -> str:
    """What ``Router.route`` samples of the decoded file (``router.sample_spans``: ten slices
    spread over it by character position), cut from the file in blocks: the same string, so
    the same decision, without the text.  ``chars``: the decoded length, if known."""
    from .router import DOCUMENT_SAMPLE_CHARS, sample_spans

    if chars is None:
        chars = scan(path, encoding, errors)[0]
    spans = sample_spans(chars, DOCUMENT_SAMPLE_CHARS)
    if spans is None:
        spans = [(0, chars)]
    pieces: list[list[str]] = [[] for _ in spans]
    dec = _decoder(encoding, errors)
    at = 0  # characters decoded before ``text``
    with open(path, "rb") as fh:
        for block in chain(iter(lambda: fh.read(BLOCK), b""), [None]):
            text = dec.decode(b"", final=True) if block is None else dec.decode(block)
            end = at + len(text)
            for k, (a, b) in enumerate(spans):
                if a < end and b > at:
                    pieces[k].append(text[max(a - at, 0):b - at])
            at = end
            if at >= spans[-1][1]:
                break
    return "\n".join("".join(p) for p in pieces)


def iter_line_pieces(fh: Any, errors: str, start: int = 0, one_line: bool = False,
                     encoding: str = "utf-8") -> Iterator[tuple]:
    """Events of the lines of a binary file from byte ``start``: ``("text", str)`` pieces of the
    current line (never its terminator: ``\\n``, and ``\\r`` before it, as ``iter_lines``),
    ``("end", raw_chars, byte_start, next_byte_start)`` when it ends (``raw_chars``: its
    decoded length with the ``\\r``).  ``one_line``: stop after the first line.  Lines split as ``iter_lines``
    splits them: no line after a final newline, none in an empty file."""
    fh.seek(start)
    dec = _decoder(encoding, errors, after_newline=start > 0)
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


def annotate_stream(annotator: Any, fh: Any, errors: str, hold_chars: int = HOLD_CHARS,
                    encoding: str = "utf-8") -> Iterator[tuple]:
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
    for event in iter_line_pieces(fh, errors, encoding=encoding):
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


def _line_text_json(path: Path, errors: str, line: Line, encoding: str = "utf-8") -> Iterator[str]:
    """The line's ``text`` field, JSON-escaped piece by piece from a second reader of the file
    (escaping is per character, so the pieces join to ``json.dumps`` of the whole line)."""
    if line.text is not None:
        yield _dump(line.text)
        return
    yield '"'
    with open(path, "rb") as fh:
        for kind, *rest in iter_line_pieces(fh, errors, line.byte_start, one_line=True, encoding=encoding):
            if kind == "text":
                yield _dump(rest[0])[1:-1]
    yield '"'


def render_stream(events: Iterator[tuple], fmt: str, granularity: str, source: str, path: Path, errors: str,
                  header: bool = True, encoding: str = "utf-8", routing: dict | None = None) -> Iterator[str]:
    """Output text for :func:`annotate_stream`'s events, equal to ``formats.render`` of the
    records the whole-text path makes (``routing``: the decision every jsonl record carries)."""
    fine = granularity == "fine"
    if fmt == "tsv" and header:
        yield TSV_HEADER
    clean = str.maketrans({"\t": " ", "\r": " ", "\n": " "})
    count = 0  # brat numbering
    first = True
    line: Line | None = None
    src = source.translate(clean)
    close = "]" + (f', "routing": {_dump(routing)}' if routing is not None else "") + "}\n"  # formats.jsonl_chunks
    for kind, value in events:
        if kind == "start":
            line, first = value, True
            if fmt == "jsonl":
                yield f'{{"source": {_dump(source)}, "line": {line.number}, "offset": {line.offset}, "text": '
                yield from _line_text_json(path, errors, line, encoding)
                yield ', "entities": ['
        elif kind == "end":
            if fmt == "jsonl":
                yield close
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
                hold_chars: int = HOLD_CHARS, encoding: str = "utf-8", routing: dict | None = None,
                checked: bool = False) -> Iterator[str]:
    """The whole output for one file, produced as it is annotated.  Decoding problems and the
    script check (``check_head`` on the first 20,000 characters) are raised before the first
    piece of output, as the whole-text path raises them (``checked``: decoding was already
    checked, see :func:`route_file`).  ``routing``: the decision written into jsonl records."""
    if not checked:
        check_decodes(path, errors, encoding)
    if check_head is not None:
        check_head(head(path, errors, encoding=encoding))

    def pieces() -> Iterator[str]:
        try:
            with open(path, "rb") as fh:
                yield from render_stream(annotate_stream(annotator, fh, errors, hold_chars, encoding), fmt,
                                         granularity, source, path, errors, header, encoding, routing)
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None

    return pieces()


def route_file(router: Any, path: Path, encoding: str, errors: str) -> Any:
    """The router's decision for the whole file, from :func:`document_sample`; None for a
    blank file (the caller keeps the whole-text path for it, as routing has nothing to go on).
    Decoding is checked first, as reading the file whole checks it before routing."""
    check_decodes(path, errors, encoding)
    chars, blank = scan(path, encoding, errors)
    if blank:
        return None
    return router.route_sample(document_sample(path, encoding, errors, chars))


__all__ = ["streamable", "line_safe", "stream_file", "route_file", "document_sample", "annotate_stream",
           "SentenceStream", "Entity"]
