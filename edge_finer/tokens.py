"""Annotating tokens the caller already has (pre-tokenised corpora).

Why: linguists keep corpora as CoNLL/TSV with their own tokens, and scoring against them needs
predictions on exactly those tokens.  Re-splitting raw lines gave another grid (``'s`` → ``'``
``s``, ``COVID-19``, ``डॉ.``) on 11–18 % of dev sentences.  Here the tokens are joined by single
spaces (the text the model reads, as the build pipeline's evaluation does) and each token is cut
into the runtime's words *inside the token* (the grid the model was trained on), so no word
crosses a token boundary; the word-level entities are then widened to whole tokens: an entity
starting inside a token takes the token (as seqeval scoring of the pipeline does), and where two
entities would share a token the first keeps it.
"""
from __future__ import annotations

from bisect import bisect_right
from itertools import repeat, tee
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from .entity import Entity
from .errors import EdgeFinerError

if TYPE_CHECKING:  # pragma: no cover
    from .annotator import Annotator
    from .formats import TokenRecord
    from .readers import TokenBlock


def joined(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The tokens joined by single spaces, and each token's ``(start, end)`` in that text."""
    spans, pos = [], 0
    for tok in tokens:
        spans.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    return " ".join(tokens), spans


def token_tags(spans: Sequence[tuple[int, int]], entities: Iterable[Entity], granularity: str = "fine") -> list[str]:
    """IOB2 tags of the tokens at ``spans`` (as :func:`joined` gives them) for entities that
    cover whole tokens (what :meth:`Annotator.annotate_tokens` returns)."""
    tags = ["O"] * len(spans)
    starts = [a for a, _ in spans]
    for e in entities:
        label = e.coarse_label if granularity == "coarse" else e.label
        k = bisect_right(starts, e.start) - 1
        first = True
        while 0 <= k < len(spans) and spans[k][0] < e.end:
            if spans[k][1] > e.start:
                tags[k] = ("B-" if first else "I-") + label
                first = False
            k += 1
    return tags


def _check(tokens: object) -> Sequence[str]:
    if isinstance(tokens, str) or not isinstance(tokens, Sequence) or \
            not all(isinstance(t, str) for t in tokens):
        raise EdgeFinerError(f"expected a list of str tokens, got {type(tokens).__name__}")
    return tokens


def _widen(text: str, spans: list[tuple[int, int]], entities: list[Entity]) -> list[Entity]:
    """Word-level entities widened to whole tokens; a token goes to the first entity on it."""
    starts = [a for a, _ in spans]
    out: list[Entity] = []
    taken = -1  # last token index already in an entity
    for e in entities:
        first = max(bisect_right(starts, e.start) - 1, taken + 1)
        last = bisect_right(starts, e.end - 1) - 1
        if first > last:
            continue
        start, end = spans[first][0], spans[last][1]
        out.append(Entity(start, end, text[start:end], e.label, e.coarse_label, e.score))
        taken = last
    return out


def stream_tokens(annotator: "Annotator", sentences: Iterable[Sequence[str]]) -> Iterator[list[Entity]]:
    """Entities of each token list, in order; lists share model batches as texts do in
    :meth:`Annotator.stream` (up to ``SENTENCES_PER_CHUNK`` at a time)."""
    from .annotator import SENTENCES_PER_CHUNK

    annotator._ensure_ready()
    split = annotator._split  # the bundle's own word scheme, inside each token
    chunk: list[tuple[str, list[tuple[int, int]], list[tuple[int, int]]]] = []

    def run() -> Iterator[list[Entity]]:
        found = annotator._annotate_sentences([(text, 0, len(text)) for text, _, _ in chunk],
                                              [words for _, _, words in chunk])
        for (text, spans, _), ents in zip(chunk, found):
            yield _widen(text, spans, ents)

    for tokens in sentences:
        text, spans = joined(_check(tokens))
        words = [m.span() for a, b in spans for m in split.finditer(text, a, b)]
        chunk.append((text, spans, words))
        if len(chunk) >= SENTENCES_PER_CHUNK:
            yield from run()
            chunk = []
    if chunk:
        yield from run()


def token_records(annotator: "Annotator | None", source: str, blocks: Iterable["TokenBlock"],
                  offset: int = 0) -> Iterator["TokenRecord"]:
    """The records of pre-tokenised sentences (``edge_finer/readers.py``) for the output
    formats; ``annotator`` None gives records without entities (routed to no bundle).
    Each record's ``offset`` places it in the document text, one sentence per line."""
    from .formats import TokenRecord

    mine, theirs = tee(blocks)
    found: Iterable[list[Entity]] = (annotator.stream_tokens(b.tokens for b in theirs) if annotator is not None
                                     else repeat([]))
    for block, ents in zip(mine, found):
        text, spans = joined(block.tokens)
        yield TokenRecord(source, block.line, offset, text, ents, spans=tuple(spans), rows=block.rows,
                          comments=block.comments)
        offset += len(text) + 1
