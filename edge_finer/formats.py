"""Serialising annotated lines in the formats linguists' tools read.

The unit is a *record*: one line of one input, its text, and its entities (offsets relative to
the line).  Formats that address the whole document (``brat``, ``tsv``) add the line's offset,
so their offsets index the input file's decoded text directly.

- ``jsonl``: one JSON object per line: ``source``, ``line``, ``offset``, ``text``, ``entities``.
- ``conll``: one word per row, ``word<TAB>IOB2-tag``, a blank row between lines (the word grid
  is the runtime's own word splitting, so it round-trips through the build pipeline).
- ``tsv``: one entity per row: ``source line start end label score text`` (document offsets).
- ``brat``: standoff ``.ann`` lines ``T1<TAB>LABEL START END<TAB>TEXT`` (document offsets).
"""
from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from .entity import Entity
from .pretokenize import split_words

FORMATS = ("table", "jsonl", "conll", "brat", "tsv")
EXTENSIONS = {"table": ".txt", "jsonl": ".jsonl", "conll": ".conll", "brat": ".ann", "tsv": ".tsv"}
TSV_HEADER = "source\tline\tstart\tend\tlabel\tscore\ttext\n"


@dataclass(frozen=True)
class Record:
    source: str
    line: int
    offset: int
    text: str
    entities: Sequence[Entity]
    routing: dict | None = None


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


def jsonl(rec: Record, granularity: str) -> str:
    return "".join(jsonl_chunks(rec, granularity))


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
        writer = jsonl_chunks
    elif fmt == "conll":
        writer = conll
    elif fmt == "brat":
        writer = BratWriter()
    else:
        raise ValueError(f"not a streaming format: {fmt}")
    for rec in records:
        yield from writer(rec, granularity)
