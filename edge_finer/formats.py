"""Serialising annotated lines in the formats linguists' tools read.

The unit is a *record*: one line of one input, its text, and its entities (offsets relative to
the line).  Formats that address the whole document (``brat``, ``tsv``) add the line's offset,
so their offsets index the input file's decoded text directly.

- ``jsonl``: one JSON object per line: ``source``, ``line``, ``offset``, ``text``, ``entities``.
- ``conll``: one word per row, ``word<TAB>IOB2-tag``, a blank row between lines (the word grid
  is the runtime's own word splitting, so it round-trips through the build pipeline).
- ``tsv``: one entity per row: ``source line start end label score text`` (document offsets).
- ``brat``: standoff ``.ann`` lines ``T1<TAB>LABEL START END<TAB>TEXT`` (document offsets).

Pre-tokenised input (``edge_finer/readers.py``) gives :class:`TokenRecord` s: one per sentence,
its ``text`` the tokens joined by spaces; ``conll`` then writes the input's own rows with the
tag as a new last column, and ``jsonl`` adds ``tokens`` and ``tags``.  The formats for
annotation tools (``xmi``, ``webanno``, ``spacy``, ``spacy-jsonl``, ``hf``) are in
``edge_finer/exports.py``.
"""
from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from .entity import Entity
from .pretokenize import split_words

FORMATS = ("table", "jsonl", "conll", "brat", "tsv", "xmi", "webanno", "spacy", "spacy-jsonl", "hf")
EXTENSIONS = {"table": ".txt", "jsonl": ".jsonl", "conll": ".conll", "brat": ".ann", "tsv": ".tsv",
              "xmi": ".xmi", "webanno": ".tsv", "spacy": ".spacy", "spacy-jsonl": ".jsonl", "hf": ".jsonl"}
#: Formats written per document from all its records at once (``edge_finer/exports.py``).
DOCUMENT_FORMATS = ("xmi", "webanno", "spacy")
TSV_HEADER = "source\tline\tstart\tend\tlabel\tscore\ttext\n"


@dataclass(frozen=True)
class Record:
    source: str
    line: int
    offset: int
    text: str
    entities: Sequence[Entity]
    routing: dict | None = None


@dataclass(frozen=True)
class TokenRecord(Record):
    """One sentence of given tokens: ``text`` is the tokens joined by single spaces, ``spans``
    each token's place in it; ``offset`` places ``text`` in the document text of
    ``exports.document_text`` (one sentence per line).  ``rows`` are the input's CoNLL/TSV rows
    (empty for JSONL input) and ``comments`` the lines kept before them."""

    spans: tuple[tuple[int, int], ...] = ()
    rows: tuple[str, ...] = ()
    comments: tuple[str, ...] = ()


def label_of(e: Entity, granularity: str) -> str:
    return e.coarse_label if granularity == "coarse" else e.label


def _clean(s: str) -> str:
    """Keep one-row formats one row per item: tabs and line breaks become spaces."""
    return s.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def jsonl_chunks(rec: Record, granularity: str) -> Iterator[str]:
    """One record's JSON line in pieces, one per entity: byte for byte what ``json.dumps`` of
    the whole record gives, without building the record's dicts and string at once (a single
    line can hold hundreds of thousands of entities)."""
    def dump(value: object) -> str:
        return json.dumps(value, ensure_ascii=False)

    yield (f'{{"source": {dump(rec.source)}, "line": {rec.line}, "offset": {rec.offset}, '
           f'"text": {dump(rec.text)}, "entities": [')
    for k, e in enumerate(rec.entities):
        item = {"start": e.start, "end": e.end, "text": e.text, "label": label_of(e, granularity),
                "score": e.score}
        if granularity == "fine":
            item["coarse_label"] = e.coarse_label
        yield (", " if k else "") + dump(item)
    yield "]" + (f', "routing": {dump(rec.routing)}' if rec.routing is not None else "") + "}\n"


def token_jsonl_chunks(rec: TokenRecord, granularity: str) -> Iterator[str]:
    """A pre-tokenised sentence: its tokens, their IOB2 tags, and entities with character
    offsets into ``text`` and token indices (``token_end`` exclusive)."""
    from .tokens import token_tags

    starts = {a: k for k, (a, _) in enumerate(rec.spans)}
    ends = {b: k for k, (_, b) in enumerate(rec.spans)}
    ents = []
    for e in rec.entities:
        item = {"start": e.start, "end": e.end, "token_start": starts[e.start], "token_end": ends[e.end] + 1,
                "text": e.text, "label": label_of(e, granularity), "score": e.score}
        if granularity == "fine":
            item["coarse_label"] = e.coarse_label
        ents.append(item)
    obj = {"source": rec.source, "line": rec.line, "text": rec.text, "tokens": [rec.text[a:b] for a, b in rec.spans],
           "tags": token_tags(rec.spans, rec.entities, granularity), "entities": ents}
    if rec.routing is not None:
        obj["routing"] = rec.routing
    yield json.dumps(obj, ensure_ascii=False) + "\n"


def jsonl(rec: Record, granularity: str) -> str:
    return "".join(jsonl_chunks(rec, granularity))


def token_conll(rec: TokenRecord, granularity: str) -> Iterator[str]:
    """The input's rows, each with its IOB2 tag as a new last column (the row's own separator:
    a tab, or a space in a space-separated CoNLL file); JSONL input: ``token<TAB>tag``."""
    from .tokens import token_tags

    for line in rec.comments:
        yield line + "\n"
    tags = token_tags(rec.spans, rec.entities, granularity)
    if rec.rows:
        for k in range(0, len(tags), 4096):
            yield "".join(row + ("\t" if "\t" in row or not row.strip() else " ") + tag + "\n"
                          for row, tag in zip(rec.rows[k:k + 4096], tags[k:k + 4096]))
    else:
        yield "".join(f"{_clean(rec.text[a:b])}\t{tag}\n" for (a, b), tag in zip(rec.spans, tags))
    if tags or rec.comments:
        yield "\n"


def _grid(text: str, entities: Sequence[Entity]) -> list[tuple[int, int]]:
    """The default word grid of ``text``, with a word cut wherever an entity starts or ends
    inside it.  A bundle whose scheme cuts finer (``han-chars``: each Han character a word)
    finds entities inside a default word; cutting there keeps every entity whole in the rows
    without the writer having to know which scheme the annotator used."""
    words = split_words(text)
    cuts = sorted({p for e in entities for p in (e.start, e.end)})
    if not cuts:
        return words
    out: list[tuple[int, int]] = []
    for s, e in words:
        inner = cuts[bisect.bisect_right(cuts, s):bisect.bisect_left(cuts, e)]
        for a, b in zip([s] + inner, inner + [e]):
            out.append((a, b))
    return out


def conll(rec: Record, granularity: str) -> Iterator[str]:
    if isinstance(rec, TokenRecord):
        yield from token_conll(rec, granularity)
        return
    words = _grid(rec.text, rec.entities)
    if not words:
        return
    tags = ["O"] * len(words)
    starts = {s: k for k, (s, _) in enumerate(words)}
    for e in rec.entities:
        k = starts.get(e.start)
        if k is None:
            continue
        lab = label_of(e, granularity)
        tags[k] = "B-" + lab
        k += 1
        while k < len(words) and words[k][1] <= e.end:
            tags[k] = "I-" + lab
            k += 1
    for k in range(0, len(words), 4096):  # in slices: a huge line must not become one string
        yield "".join(f"{_clean(rec.text[s:e])}\t{t}\n" for (s, e), t in zip(words[k:k + 4096], tags[k:k + 4096]))
    yield "\n"


def tsv(rec: Record, granularity: str) -> Iterator[str]:
    for e in rec.entities:
        yield (f"{_clean(rec.source)}\t{rec.line}\t{rec.offset + e.start}\t{rec.offset + e.end}\t"
               f"{label_of(e, granularity)}\t{e.score:.4f}\t{_clean(e.text)}\n")


class BratWriter:
    """brat numbers its text-bound annotations per document; one writer per output document."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, rec: Record, granularity: str) -> Iterator[str]:
        for e in rec.entities:
            self.count += 1
            yield (f"T{self.count}\t{label_of(e, granularity)} {rec.offset + e.start} "
                   f"{rec.offset + e.end}\t{_clean(e.text)}\n")


def _jsonl_any(rec: Record, granularity: str) -> Iterator[str]:
    return token_jsonl_chunks(rec, granularity) if isinstance(rec, TokenRecord) else jsonl_chunks(rec, granularity)


def boundary(fmt: str, source: str) -> str:
    """What starts each input when several go to one stream in ``fmt``: CoNLL-2003's
    ``-DOCSTART-`` row (skipped by CoNLL readers) and, for brat, a ``# source = NAME`` line."""
    if fmt == "conll":
        return "-DOCSTART-\tO\n\n"
    if fmt == "brat":
        return f"# source = {_clean(source)}\n"
    return ""


def render(records: Iterable[Record], fmt: str, granularity: str, header: bool = True) -> Iterable[str]:
    """Chunks of output text for the non-table formats.

    ``header=False`` leaves out the tsv header: when several inputs go to one stream the header
    must come once, not again before each input's rows.
    """
    if fmt == "tsv":
        if header:
            yield TSV_HEADER
        writer = tsv
    elif fmt == "jsonl":
        writer = _jsonl_any
    elif fmt in ("hf", "spacy-jsonl"):
        from . import exports

        writer = exports.hf_chunks if fmt == "hf" else exports.spacy_jsonl_chunks
    elif fmt == "conll":
        writer = conll
    elif fmt == "brat":
        writer = BratWriter()
    else:
        raise ValueError(f"not a streaming format: {fmt}")
    for rec in records:
        yield from writer(rec, granularity)
