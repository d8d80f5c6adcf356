"""Reading annotated data: CoNLL variants and JSONL spans, all normalised to IOB2.

Why so lenient on input and so strict on output: corpora arrive in many dialects (IOB1,
BILOU, IOBES, extra columns, ``#`` comments, ``-DOCSTART-``), but the model must be trained on
one well-formed scheme.  Every tag is checked, and a bad line is reported as ``file:line:`` so
the author can fix the file, never as a traceback from deep inside training.

The second job of this module is *re-splitting* (:func:`to_model_words`): gold tokens are cut
with the runtime's own word splitter so that training sees the exact word grid the runtime
will produce from raw text.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence, TextIO

from edge_finer.pretokenize import DEFAULT as DEFAULT_PRETOKENIZER, HAN, words as split_to_words, split_words

from .errors import DataError

_HAN_CHAR = re.compile("[" + HAN + "]")


def gold_text(tokens: Sequence[str], pretokenizer: str = DEFAULT_PRETOKENIZER) -> tuple[str, list[tuple[int, int]]]:
    """The tokens joined as text, and each token's character span in that text.

    Joined by single spaces; under ``han-chars`` no space is put next to a Han character, so
    Chinese is scored as it is written (``北京大学`` rather than ``北 京 大 学``).  Either way the
    runtime's words of the text are the re-split gold tokens (the pipeline's training grid).
    """
    han = pretokenizer == "han-chars"
    parts: list[str] = []
    spans, pos = [], 0
    for k, tok in enumerate(tokens):
        if k:
            glue = "" if han and (_HAN_CHAR.match(tokens[k - 1][-1:]) or _HAN_CHAR.match(tok[:1])) else " "
            parts.append(glue)
            pos += len(glue)
        spans.append((pos, pos + len(tok)))
        parts.append(tok)
        pos += len(tok)
    return "".join(parts), spans


_PREFIXES = ("B", "I", "E", "S", "L", "U")
_TAG = re.compile(r"^(?:O|([BIESLU])-(.+))$")


@dataclass
class Sentence:
    """Gold tokens and their IOB2 tags, with where they came from (for error messages)."""

    tokens: list[str]
    tags: list[str]
    source: str = ""
    line: int = 0  # line of the first token (1-based)
    lines: list[int] = field(default_factory=list)  # line per token (CoNLL), for messages

    def where(self, i: int | None = None) -> str:
        line = self.lines[i] if i is not None and self.lines else self.line
        return f"{self.source}:{line}"


# -- scheme conversion --------------------------------------------------------------------


def _split_tag(tag: str) -> tuple[str, str]:
    """``("B", "PER")`` for ``B-PER``; ``("O", "")`` for ``O``."""
    if tag == "O":
        return "O", ""
    return tag[0], tag[2:]


def to_iob2(tags: Sequence[str], scheme: str, where: Sequence[str]) -> list[str]:
    """Convert one sentence's tags from ``scheme`` to IOB2.

    ``iob2`` is strict (an ``I-`` that starts an entity is an error); ``iob1`` and ``auto``
    repair it into ``B-`` as IOB1 defines; ``bilou``/``iobes`` map ``L/E`` to ``I`` and
    ``U/S`` to ``B``; ``io`` reads bare types (``PER``) as entity tokens.
    """
    out: list[str] = []
    prev_type = ""
    prev_open = False  # the previous token is inside an entity that may continue
    for k, tag in enumerate(tags):
        if scheme == "io":
            etype = "" if tag == "O" else (tag[2:] if _TAG.match(tag) and tag[1] == "-" else tag)
            if not etype:
                out.append("O")
                prev_open = False
            else:
                out.append(("I-" if prev_open and prev_type == etype else "B-") + etype)
                prev_type, prev_open = etype, True
            continue
        if not _TAG.match(tag):
            raise DataError(f"{where[k]}: tag {tag!r} is not O or PREFIX-TYPE "
                            f"(PREFIX one of {', '.join(_PREFIXES)}); for bare types set data.scheme = \"io\"")
        prefix, etype = _split_tag(tag)
        if prefix in "ESLU" and scheme in ("iob2", "iob1"):
            raise DataError(f"{where[k]}: tag {tag!r} is BILOU/IOBES but data.scheme is {scheme!r}")
        if prefix == "O":
            out.append("O")
            prev_open = False
            continue
        continues = prev_open and prev_type == etype
        if prefix == "I":
            if not continues and scheme == "iob2":
                raise DataError(f"{where[k]}: {tag!r} starts an entity without B-{etype} "
                                "(invalid IOB2; set data.scheme = \"iob1\" or \"auto\" to repair)")
            out.append(("I-" if continues else "B-") + etype)
            prev_open = True
        elif prefix == "E" or prefix == "L":
            out.append(("I-" if continues else "B-") + etype)
            prev_open = False
        elif prefix in ("S", "U"):
            out.append("B-" + etype)
            prev_open = False
        else:  # B
            out.append("B-" + etype)
            prev_open = True
        prev_type = etype
    return out


def detect_scheme(tags: Iterable[str]) -> str:
    """``bilou`` when any E/S/L/U prefix occurs, else ``iob1`` (which is a no-op on valid IOB2)."""
    for tag in tags:
        if len(tag) > 2 and tag[1] == "-" and tag[0] in "ESLU":
            return "bilou"
    return "iob1"


# -- CoNLL ----------------------------------------------------------------------------------


def _columns(line: str) -> list[str]:
    return line.split("\t") if "\t" in line else line.split()


def _is_comment(line: str) -> bool:
    """``#`` lines are comments unless they read as a token (``#``, ``#tag``) with a valid tag.

    Tab-separated: a token line iff its last column is a valid tag.  Space-separated: also not
    when it starts ``"# "`` (the CoNLL-U comment form, ``# text = ...``).
    """
    if not line.startswith("#"):
        return False
    cols = _columns(line)
    token_like = len(cols) >= 2 and bool(_TAG.match(cols[-1].strip()))
    if "\t" not in line and line.startswith("# "):
        token_like = False
    return not token_like


def read_conll(path: Path, scheme: str = "auto") -> list[Sentence]:
    """Sentences of a CoNLL-like file: token first, tag last, any middle columns.

    Blank lines end sentences; ``-DOCSTART-`` lines and ``#`` comments are skipped; CRLF and a
    UTF-8 BOM are tolerated.  Tags are converted to IOB2 (see :func:`to_iob2`).
    """
    raw: list[tuple[list[str], list[str], list[int]]] = []
    toks: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    with _open_text(path) as fh:
        try:
            for n, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    if toks:
                        raw.append((toks, tags, lines))
                        toks, tags, lines = [], [], []
                    continue
                if _is_comment(line):
                    continue
                cols = _columns(line)
                if cols[0].strip() == "-DOCSTART-":
                    if toks:
                        raw.append((toks, tags, lines))
                        toks, tags, lines = [], [], []
                    continue
                if len(cols) < 2:
                    raise DataError(f"{path}:{n}: expected 'token<TAB>tag' (token first, tag last), "
                                    f"found one column: {line[:60]!r}")
                token, tag = cols[0], cols[-1].strip()
                if not token.strip():
                    raise DataError(f"{path}:{n}: empty token")
                toks.append(token)
                tags.append(tag)
                lines.append(n)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if toks:
        raw.append((toks, tags, lines))
    used = scheme if scheme != "auto" else detect_scheme(t for _, ts, _ in raw for t in ts)
    out = []
    for toks, tags, lines in raw:
        where = [f"{path}:{n}" for n in lines]
        out.append(Sentence(toks, to_iob2(tags, used, where), str(path), lines[0], lines))
    return out


# -- JSONL ----------------------------------------------------------------------------------


def read_jsonl(path: Path, scheme: str = "auto", pretokenizer: str = DEFAULT_PRETOKENIZER) -> list[Sentence]:
    """Sentences of a JSON-lines file, one object per line, in one of three shapes.

    ``{"tokens": [...], "tags": [...]}``; ``{"tokens": [...], "spans"|"entities":
    [{"start", "end", "label"}]}`` with token indices (end exclusive); or ``{"text": "...",
    "spans"|"entities": [...]}`` with character offsets (end exclusive), in which case the text
    is cut into words by the runtime's splitter (``pretokenizer``: the recipe's scheme) and a
    word belongs to every span it overlaps.
    """
    out: list[Sentence] = []
    with _open_text(path) as fh:
        try:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{path}:{n}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(obj, dict):
                    raise DataError(f"{where}: expected a JSON object")
                sent = _json_sentence(obj, where, scheme, pretokenizer)
                if sent.tokens:
                    sent.source, sent.line = str(path), n
                    out.append(sent)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return out


def _json_sentence(obj: dict, where: str, scheme: str, pretokenizer: str = DEFAULT_PRETOKENIZER) -> Sentence:
    spans = obj.get("spans", obj.get("entities"))
    if "tokens" in obj:
        tokens = obj["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t.strip() for t in tokens):
            raise DataError(f"{where}: 'tokens' must be a list of non-empty strings")
        if "tags" in obj:
            tags = obj["tags"]
            if not isinstance(tags, list) or len(tags) != len(tokens) or not all(isinstance(t, str) for t in tags):
                raise DataError(f"{where}: 'tags' must be a list of strings as long as 'tokens'")
            used = scheme if scheme != "auto" else detect_scheme(tags)
            return Sentence(list(tokens), to_iob2(tags, used, [where] * len(tags)))
        tags = ["O"] * len(tokens)
        _apply_spans(tags, [(k, k + 1) for k in range(len(tokens))], spans, where, "token")
        return Sentence(list(tokens), tags)
    if "text" in obj:
        text = obj["text"]
        if not isinstance(text, str):
            raise DataError(f"{where}: 'text' must be a string")
        offsets = split_words(text, pretokenizer)
        tags = ["O"] * len(offsets)
        _apply_spans(tags, offsets, spans, where, "character", limit=len(text))
        return Sentence([text[a:b] for a, b in offsets], tags)
    raise DataError(f"{where}: expected 'tokens' (with 'tags' or 'spans') or 'text' (with 'spans')")


def _apply_spans(tags: list[str], units: list[tuple[int, int]], spans: object, where: str,
                 kind: str, limit: int | None = None) -> None:
    if spans is None:
        spans = []
    if not isinstance(spans, list):
        raise DataError(f"{where}: 'spans' must be a list of {{start, end, label}} objects")
    limit = len(units) if limit is None else limit
    for sp in spans:
        if not isinstance(sp, dict):
            raise DataError(f"{where}: each span must be an object with start, end, label")
        start, end = sp.get("start"), sp.get("end")
        label = sp.get("label", sp.get("type"))
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= limit):
            raise DataError(f"{where}: span {sp!r} needs integer {kind} offsets 0 ≤ start < end ≤ {limit}")
        if not isinstance(label, str) or not label or label == "O" or label[:2] in ("B-", "I-"):
            raise DataError(f"{where}: span {sp!r} needs a plain entity type as 'label'")
        hit = [k for k, (a, b) in enumerate(units) if a < end and b > start]
        if not hit:
            continue
        if any(tags[k] != "O" for k in hit):
            raise DataError(f"{where}: span {sp!r} overlaps another span")
        tags[hit[0]] = "B-" + label
        for k in hit[1:]:
            tags[k] = "I-" + label


# -- dispatch, plain text, checks -----------------------------------------------------------


def read_annotated(path: Path, fmt: str = "auto", scheme: str = "auto",
                   pretokenizer: str = DEFAULT_PRETOKENIZER) -> list[Sentence]:
    """Read one annotated file; ``fmt`` ``auto`` goes by the extension (.jsonl/.json → JSONL)."""
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    if fmt == "jsonl" or (fmt == "auto" and path.suffix.lower() in (".jsonl", ".json", ".ndjson")):
        return read_jsonl(path, scheme, pretokenizer)
    return read_conll(path, scheme)


#: File endings read as annotated data (their tokens are the words); anything else is plain text.
ANNOTATED_SUFFIXES = (".conll", ".jsonl", ".json", ".ndjson", ".tsv", ".iob", ".bio")


def read_unlabelled(path: Path, fmt: str = "auto", pretokenizer: str = DEFAULT_PRETOKENIZER) -> list[list[str]]:
    """Word lists of extra text for distillation: ``.txt`` a sentence per line, or the tokens
    of an annotated file (its tags ignored)."""
    if not path.is_file():
        raise DataError(f"{path}: unlabelled text file not found")
    if path.suffix.lower() in ANNOTATED_SUFFIXES:
        return [to_model_words(s, pretokenizer).tokens for s in read_annotated(path, fmt, "auto", pretokenizer)]
    out = []
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for line in fh:
                ws = split_to_words(line, pretokenizer)
                if ws:
                    out.append(ws)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return out


def read_unlabelled_tagged(path: Path, mapping: Mapping[str, str], fmt: str = "auto",
                           pretokenizer: str = DEFAULT_PRETOKENIZER) -> list[tuple[list[str], list[str] | None]]:
    """:func:`read_unlabelled`'s word lists, each with the tags teacher self-training trusts
    (:func:`quantize.pseudo.trusted_tags`: the source's types in ``mapping`` turned into ours);
    None for plain text, which carries no annotation, and for every file when ``mapping`` is empty."""
    from .pseudo import trusted_tags

    if not mapping or not path.is_file() or path.suffix.lower() not in ANNOTATED_SUFFIXES:
        return [(ws, None) for ws in read_unlabelled(path, fmt, pretokenizer)]
    return [(m.tokens, trusted_tags(m.tags, mapping))
            for m in (to_model_words(s, pretokenizer) for s in read_annotated(path, fmt, "auto", pretokenizer))]


def _open_text(path: Path) -> TextIO:
    """A data file opened as UTF-8 (a BOM tolerated), or one clear error naming it."""
    try:
        return open(path, encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def check_types(sentences: Iterable[Sentence], allowed: set[str] | None, what: str) -> None:
    """Refuse a tag whose type is outside ``allowed`` (the taxonomy's or the teacher's types)."""
    if allowed is None:
        return
    for s in sentences:
        for k, tag in enumerate(s.tags):
            if tag != "O" and tag[2:] not in allowed:
                known = ", ".join(sorted(allowed)[:12]) + (", …" if len(allowed) > 12 else "")
                raise DataError(f"{s.where(k)}: tag {tag!r} has type {tag[2:]!r}, which is not among "
                                f"{what} ({known})")


def drop_types(sentences: list[Sentence], types: Iterable[str]) -> int:
    """Turn tags of ``types`` into ``O`` in place; returns how many tags changed.

    Why: real corpora carry stray annotation errors (IL-NER Odia dev has a tag ``B-'``); a recipe
    names such types explicitly rather than the reader guessing, and the build reports the count.
    """
    gone = set(types)
    changed = 0
    for s in sentences:
        for k, tag in enumerate(s.tags):
            if tag != "O" and tag[2:] in gone:
                s.tags[k] = "O"
                changed += 1
    return changed


def to_model_words(s: Sentence, pretokenizer: str = DEFAULT_PRETOKENIZER) -> Sentence:
    """Re-split gold tokens into the runtime's words, carrying tags over (parity rule).

    ``pretokenizer`` is the recipe's scheme, the one its bundle's manifest names for the runtime.

    The first piece of a token keeps its tag; further pieces of an entity token become
    ``I-TYPE``; a token with no pieces (only spaces or format characters) is dropped and a
    following ``I-`` that lost its head becomes ``B-`` so the sequence stays valid IOB2.
    """
    words: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    for k, (tok, tag) in enumerate(zip(s.tokens, s.tags)):
        pieces = split_to_words(tok, pretokenizer)
        for j, piece in enumerate(pieces):
            words.append(piece)
            tags.append(tag if j == 0 or tag == "O" else "I-" + tag[2:])
            if s.lines:
                lines.append(s.lines[k])
    for k, tag in enumerate(tags):  # repair I- whose B- was dropped
        if tag.startswith("I-") and (k == 0 or tags[k - 1] == "O" or tags[k - 1][2:] != tag[2:]):
            tags[k] = "B-" + tag[2:]
    return Sentence(words, tags, s.source, s.line, lines)


def types_in(sentences: Iterable[Sentence]) -> set[str]:
    return {t[2:] for s in sentences for t in s.tags if t != "O"}
