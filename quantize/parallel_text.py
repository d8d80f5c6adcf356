"""Sentences that translate one another across the reference sources, found so that a held-out
sentence and its translations are held out together.

Several sources in ``../shared/data`` are parallel: the UDHR is the same text in every language
of ``text/``, and LoResMT-2020's Hindi, Bhojpuri and Magahi lines are one set of Hindi sentences
and its two translations, in the same order (``text/hin`` line 228 "रास्ते से ठेला हटाओ!" is
``text/mag`` line 133 "रसता पर से ठेला हटाओ!").  Where a source has no dev split, the routing
benchmark keeps every third sentence (:func:`quantize.langrefs.held_out`); chosen by each
file's own line number, a Hindi sentence the benchmark routes could have its Magahi translation
counted into the Magahi profile it competes with, and the other way round: which side each
line fell on depended on where its source began in its file (95 of 154 Hindi-Magahi pairs
were split).  That is test text leaking into a competitor's table, which no user's text
enjoys or suffers.

Translations are found by content, not position (the files lost different lines to
de-duplication): character-trigram tf-idf vectors, cosine; a pair is a *link* where each
sentence is the other's best match, above :data:`MIN_LINK`, and its line offset agrees with its
neighbours' (translations keep their order, chance matches scatter); lines between two links of
the same offset are linked by that offset too.  Only languages written in one script compete in
the router, so only sources of one script are compared.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
from scipy import sparse

from edge_finer.langprofile import letter_runs
from edge_finer.scripts import script_counts

#: Cosine (character-trigram tf-idf) at and above which mutual best matches may be translations.
MIN_LINK = 0.2
#: A link's line offset must lie within this many lines of the median offset of its neighbours
#: (up to :data:`NEIGHBOURS` links on each side); chance matches between unrelated files fail it.
OFFSET_SLACK = 3
NEIGHBOURS = 6


def _trigrams(sentence: str) -> Counter[str]:
    grams: Counter[str] = Counter()
    for word in letter_runs(sentence):
        padded = f" {word} "
        grams.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return grams


def _script(sentences: Sequence[str]) -> str | None:
    counts: Counter[str] = Counter()
    for s in sentences[:200]:
        counts.update(script_counts(s))
    return counts.most_common(1)[0][0] if counts else None


def _vectors(groups: list[list[Counter[str]]]) -> list[sparse.csr_matrix]:
    """Row-normalised tf-idf matrices of each source's sentences, over one vocabulary."""
    df: Counter[str] = Counter()
    for grams in groups:
        for g in grams:
            df.update(g.keys())
    vocab = {g: k for k, g in enumerate(df)}
    n = sum(len(grams) for grams in groups)
    idf = np.log(n / np.array(list(df.values()), dtype=np.float64))
    out = []
    for grams in groups:
        rows, cols, vals = [], [], []
        for i, g in enumerate(grams):
            for gram, count in g.items():
                rows.append(i)
                cols.append(vocab[gram])
                vals.append(count * idf[vocab[gram]])
        m = sparse.csr_matrix((vals, (rows, cols)), shape=(len(grams), len(vocab)), dtype=np.float64)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        out.append(sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ m)
    return out


def links(a: sparse.csr_matrix, b: sparse.csr_matrix) -> list[tuple[int, int]]:
    """(line of ``a``, line of ``b``) pairs that translate one another, in line order."""
    if not a.shape[0] or not b.shape[0]:
        return []
    sim = (a @ b.T).toarray()
    best_b, best_a = sim.argmax(axis=1), sim.argmax(axis=0)
    mutual = [(i, int(j)) for i, j in enumerate(best_b) if best_a[j] == i and sim[i, j] >= MIN_LINK]
    kept = []
    for k, (i, j) in enumerate(mutual):
        near = [jj - ii for ii, jj in mutual[max(0, k - NEIGHBOURS):k] + mutual[k + 1:k + 1 + NEIGHBOURS]]
        if len(near) >= 2 and abs((j - i) - float(np.median(near))) <= OFFSET_SLACK:
            kept.append((i, j))
    filled = []
    for (i1, j1), (i2, j2) in zip(kept, kept[1:]):
        filled.append((i1, j1))
        if j1 - i1 == j2 - i2:  # no line lost between them on either side: the lines pair up
            filled.extend((i, i + j1 - i1) for i in range(i1 + 1, i2))
    return filled + kept[-1:]


def group_keys(sources: Sequence[tuple[str, Sequence[str]]]) -> list[list[int]]:
    """Each sentence's key: its own line, or for a sentence with translations in other languages'
    sources of its script, the line of the first of them (in the order of ``sources``, then by
    line).  A rule over keys (``key % 3 == 2``) keeps translations on one side."""
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def root(x: tuple[int, int]) -> tuple[int, int]:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    def union(x: tuple[int, int], y: tuple[int, int]) -> None:
        rx, ry = root(x), root(y)
        if rx != ry:
            lo, hi = min(rx, ry), max(rx, ry)
            parent[hi] = lo  # the first member roots its group

    by_script: dict[str, list[int]] = {}
    for k, (_, sents) in enumerate(sources):
        script = _script(sents)
        if script is not None:
            by_script.setdefault(script, []).append(k)
    for members in by_script.values():
        if len({sources[k][0] for k in members}) < 2:
            continue
        vectors = dict(zip(members, _vectors([[_trigrams(s) for s in sources[k][1]] for k in members])))
        for x, ka in enumerate(members):
            for kb in members[x + 1:]:
                if sources[ka][0] != sources[kb][0]:
                    for i, j in links(vectors[ka], vectors[kb]):
                        union((ka, i), (kb, j))
    return [[root((k, i))[1] for i in range(len(sents))] for k, (_, sents) in enumerate(sources)]
