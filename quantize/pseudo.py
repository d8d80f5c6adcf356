"""Self-training: unlabelled text tagged by a first teacher, for the teachers after it.

Why: a teacher trained from scratch on 5-15k sentences has seen few names; the student already
gains from learning the teachers' answers on other in-language text (recipe key
``data.unlabelled``).  Teachers can learn from that text too, tagged by the first member of the
ensemble ("self-training").  Some of that text is itself annotated, with another taxonomy
(MultiCoNER's Hindi sentences beside IL-NER Hindi): ``data.unlabelled_types`` maps the source
types that mean the same as ours (Politician → person) and the source's annotation is then
trusted for them, exhaustively, while the first teacher answers for everything else (IL-NER's
numbers and times, which MultiCoNER does not annotate).

Trusted tags per word: ``B-``/``I-`` of a mapped type, ``O`` where the source annotates nothing,
:data:`UNKNOWN` inside a source entity of an unmapped type (the source says "an entity", not
which of ours).  :func:`merge` combines them with the teacher's tags, span by span, so that the
result is valid IOB2.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from .augment import mentions_of

UNKNOWN = "?"


def trusted_tags(tags: Sequence[str], mapping: Mapping[str, str]) -> list[str]:
    """A source's IOB2 tags in our taxonomy: mapped types kept, other entities :data:`UNKNOWN`."""
    out = ["O" if tag == "O" else UNKNOWN for tag in tags]
    for start, end, kind in mentions_of(tags):
        target = mapping.get(kind)
        if target:
            out[start:end] = ["B-" + target] + ["I-" + target] * (end - start - 1)
    return out


def merge(predicted: Sequence[str], trusted: Sequence[str] | None, trusted_types: set[str]) -> list[str]:
    """The teacher's tags where the source is silent, the source's where it is trusted.

    A predicted entity is dropped when it overlaps a trusted entity (the source's span wins), or
    when it is of a trusted type and every word of it is ``O`` in the source (the source annotates
    that type exhaustively and says "not an entity" there).  A predicted entity over an unmapped
    source entity (:data:`UNKNOWN`) stays: the source does not say which of our types it is."""
    if trusted is None:
        return list(predicted)
    if len(trusted) != len(predicted):
        raise ValueError(f"{len(predicted)} predicted tags for {len(trusted)} trusted ones")
    gold = mentions_of(trusted)
    covered = [False] * len(trusted)
    for start, end, _ in gold:
        covered[start:end] = [True] * (end - start)
    out = ["O"] * len(predicted)
    for start, end, kind in mentions_of(predicted):
        if any(covered[start:end]):
            continue
        if kind in trusted_types and all(t == "O" for t in trusted[start:end]):
            continue
        out[start:end] = predicted[start:end]
    for start, end, kind in gold:
        out[start:end] = ["B-" + kind] + ["I-" + kind] * (end - start - 1)
    return out
