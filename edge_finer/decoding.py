"""From per-word label probabilities to well-formed IOB2 spans.

Why constrained decoding: a token classifier scores every word independently, so its argmax
can say ``O I-PER`` or ``B-LOC I-ORG``; repairing such output ad hoc loses or invents entities.
Viterbi over the IOB2 transition constraints returns the most probable *valid* tag sequence.
When the plain argmax is already valid it is that optimum, so Viterbi runs only on the
sentences that need it (decoding stays cheap on the hot path).  The annotator keeps all words
of a chunk in one array, so argmax, validity and span finding are a few numpy calls per chunk.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

AGGREGATIONS = ("first", "average", "max")


@dataclass(frozen=True)
class LabelScheme:
    """Index arrays describing an IOB2 label list, precomputed once per bundle."""

    labels: tuple[str, ...]
    types: tuple[str, ...]  # entity type per label index ("" for O)
    is_b: np.ndarray  # bool[L]
    is_i: np.ndarray  # bool[L]
    type_id: np.ndarray  # int[L], -1 for O
    i_pos: np.ndarray  # indices of I- labels
    i_from_b: np.ndarray  # for each I- label, the index of its B- label (or itself if absent)

    @classmethod
    def from_labels(cls, labels: Sequence[str]) -> "LabelScheme":
        types = tuple(lab[2:] if lab != "O" else "" for lab in labels)
        uniq = sorted({t for t in types if t})
        type_index = {t: k for k, t in enumerate(uniq)}
        is_b = np.array([lab.startswith("B-") for lab in labels])
        is_i = np.array([lab.startswith("I-") for lab in labels])
        type_id = np.array([type_index[t] if t else -1 for t in types])
        index = {lab: k for k, lab in enumerate(labels)}
        i_pos = np.flatnonzero(is_i)
        i_from_b = np.array([index.get("B-" + labels[k][2:], k) for k in i_pos], dtype=np.int64)
        return cls(tuple(labels), types, is_b, is_i, type_id, i_pos, i_from_b)

    def valid(self, tags: np.ndarray) -> bool:
        """Whether ``tags`` (label indices) form a well-formed IOB2 sequence."""
        if tags.size == 0:
            return True
        cur_i = self.is_i[tags]
        prev_type = np.concatenate(([-1], self.type_id[tags[:-1]]))
        return not bool(np.any(cur_i & (prev_type != self.type_id[tags])))


def viterbi(logp: np.ndarray, scheme: LabelScheme) -> np.ndarray:
    """Most probable IOB2-valid tag sequence for ``logp`` (words × labels, log-probabilities).

    I-X may only follow B-X or I-X, and may not start a sentence; everything else may follow
    anything.  That structure makes each step O(labels) instead of O(labels²).  One sentence
    is a batch of one (:func:`viterbi_batch` is the implementation).
    """
    return viterbi_batch([logp], scheme)[0]


def viterbi_batch(logps: list[np.ndarray], scheme: LabelScheme) -> list[np.ndarray]:
    """:func:`viterbi` for many sentences at once: one loop over positions, the sentences
    side by side (padded), so the Python cost is per position, not per sentence and position.
    Measured: a third of the English dev sentences need Viterbi, and one at a time it took
    10 % of annotation time."""
    if not logps:
        return []
    num = len(scheme.labels)
    lengths = np.array([lp.shape[0] for lp in logps])
    width = int(lengths.max())
    if width == 0:
        return [np.zeros(0, dtype=np.int64) for _ in logps]
    batch = np.zeros((len(logps), width, num), dtype=np.float64)
    for k, lp in enumerate(logps):
        batch[k, :lp.shape[0]] = lp
    i_pos, i_from_b = scheme.i_pos, scheme.i_from_b
    rows = np.arange(len(logps))
    delta = batch[:, 0].copy()
    delta[:, i_pos] = -np.inf
    back = np.zeros((len(logps), width, num), dtype=np.int32)
    for t in range(1, width):
        best = delta.argmax(axis=1)
        new = np.repeat(delta[rows, best][:, None], num, axis=1)
        ptr = np.repeat(best[:, None], num, axis=1)
        via_b, via_i = delta[:, i_from_b], delta[:, i_pos]
        take_b = via_b >= via_i
        new[:, i_pos] = np.where(take_b, via_b, via_i)
        ptr[:, i_pos] = np.where(take_b, i_from_b, i_pos)
        live = t < lengths  # finished sentences keep their last delta
        delta = np.where(live[:, None], new + batch[:, t], delta)
        back[:, t] = ptr
    out = []
    for k, n in enumerate(lengths):
        tags = np.empty(n, dtype=np.int64)
        if n:
            tags[-1] = int(np.argmax(delta[k]))
            for t in range(n - 1, 0, -1):
                tags[t - 1] = back[k, t, tags[t]]
        out.append(tags)
    return out


def decode_flat(probs: np.ndarray, offsets: np.ndarray, scheme: LabelScheme, group: int = 64) -> np.ndarray:
    """Valid IOB2 tags for many sentences stored end to end.

    ``probs`` is (words of all sentences, labels); sentence ``k`` is rows
    ``offsets[k]:offsets[k + 1]``.  One argmax and one validity check over all words, then
    batched Viterbi (``group`` sentences of similar length at a time, so padding and the
    back-pointer table stay small) for the sentences whose argmax is not valid IOB2.  Why flat:
    per-sentence numpy calls cost more than the arithmetic for sentences this short.
    """
    tags = probs.argmax(axis=1) if probs.size else np.zeros(probs.shape[0], dtype=np.int64)
    bad = _invalid_sentences(tags, offsets, scheme)
    bad = sorted(bad.tolist(), key=lambda k: offsets[k + 1] - offsets[k])
    for i in range(0, len(bad), group):
        part = bad[i:i + group]
        logps = [np.log(np.maximum(probs[offsets[k]:offsets[k + 1]], 1e-12)) for k in part]
        for k, fixed in zip(part, viterbi_batch(logps, scheme)):
            tags[offsets[k]:offsets[k + 1]] = fixed
    return tags


def _invalid_sentences(tags: np.ndarray, offsets: np.ndarray, scheme: LabelScheme) -> np.ndarray:
    """Indices of the sentences whose tags contain an I- that does not continue its type."""
    if tags.size == 0:
        return np.zeros(0, dtype=np.int64)
    types = scheme.type_id[tags]
    prev = np.empty_like(types)
    prev[0] = -1
    prev[1:] = types[:-1]
    firsts = offsets[:-1][offsets[:-1] < tags.size]
    prev[firsts] = -1
    wrong = np.flatnonzero(scheme.is_i[tags] & (prev != types))
    owners = np.searchsorted(offsets, wrong, side="right") - 1  # sorted, as ``wrong`` is
    # (not np.unique: it imports numpy.ma, 12 ms of every cold start)
    return owners[np.concatenate(([True], owners[1:] != owners[:-1]))] if owners.size else owners


def decode_batch(probs: list[np.ndarray], scheme: LabelScheme, group: int = 64) -> list[np.ndarray]:
    """:func:`decode_flat` for a list of per-sentence ``(words, labels)`` arrays."""
    if not probs:
        return []
    offsets = np.cumsum([0] + [p.shape[0] for p in probs])
    tags = decode_flat(np.concatenate(probs), offsets, scheme, group)
    return np.split(tags, offsets[1:-1])


def decode(probs: np.ndarray, scheme: LabelScheme) -> np.ndarray:
    """Valid IOB2 tags for one sentence: argmax when valid, else constrained Viterbi."""
    return decode_batch([probs], scheme)[0]


def spans_flat(tags: np.ndarray, probs: np.ndarray, offsets: np.ndarray,
               scheme: LabelScheme) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entities of many sentences stored end to end (as in :func:`decode_flat`).

    Returns arrays ``(first_word, end_word, label_index_of_B, mean_probability)`` with word
    indices into the flat rows; an entity never crosses a sentence boundary.  ``tags`` must be
    valid IOB2; the score of an entity is the mean probability of its chosen tags, the
    confidence a user thresholds on.
    """
    n = tags.size
    starts = np.flatnonzero(scheme.is_b[tags]) if n else np.zeros(0, dtype=np.int64)
    if starts.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.float64)
    stops = ~scheme.is_i[tags]  # every word that is not a continuation ends what came before
    stops[offsets[:-1][offsets[:-1] < n]] = True
    breaks = np.flatnonzero(stops)
    ends_at = np.searchsorted(breaks, starts, side="right")
    ends = np.where(ends_at < breaks.size, breaks[np.minimum(ends_at, breaks.size - 1)], n)
    chosen = probs[np.arange(n), tags]
    csum = np.concatenate(([0.0], np.cumsum(chosen, dtype=np.float64)))
    scores = (csum[ends] - csum[starts]) / (ends - starts)
    return starts, ends, tags[starts], scores


def spans(tags: np.ndarray, probs: np.ndarray, scheme: LabelScheme) -> list[tuple[int, int, int, float]]:
    """``(first_word, end_word, label_index_of_B, mean_probability)`` for each entity of one
    sentence (:func:`spans_flat` with a single sentence)."""
    found = spans_flat(tags, probs, np.array([0, tags.size]), scheme)
    return [(int(s), int(e), int(lab), float(sc)) for s, e, lab, sc in zip(*found)]


def aggregate(token_probs: np.ndarray, word_index: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Word-level probabilities from subword probabilities.

    ``word_index[k]`` is the word of token ``k``; the tokens of one word are contiguous.
    Returns ``(first_token_position, probabilities)`` per word present.  ``first`` uses a
    word's first subword (how students are trained); ``average`` averages its subwords;
    ``max`` takes its most confident subword.
    """
    first = np.flatnonzero(np.diff(word_index, prepend=-1) != 0)
    if how == "first":
        return first, token_probs[first]
    if how == "average":
        sums = np.add.reduceat(token_probs, first, axis=0)
        counts = np.diff(np.append(first, word_index.size))[:, None]
        return first, (sums / counts).astype(token_probs.dtype, copy=False)
    if how == "max":
        # Sorting by (word, -confidence) puts each word's most confident token at the word's
        # own first position, because words are contiguous and keep their sizes.
        order = np.lexsort((-token_probs.max(axis=1), word_index))
        return first, token_probs[order[first]]
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, not {how!r}")
