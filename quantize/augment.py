"""Mention replacement: more training sentences from the same annotations.

Why: on 5-15k sentences a model learns the training NAMES rather than the contexts that mark
an entity (dev F1 peaks after a few epochs, then falls as names are memorised).  Copies of
sentences whose mentions are swapped for other mentions of the same type from the training
split put every name in new contexts, so that context and word shape carry the decision
(Dai & Adel 2020, "An Analysis of Simple Data Augmentation for Named Entity Recognition").
Only training data is touched; the dev split that selects checkpoints never is.
"""
from __future__ import annotations

import random
from typing import Sequence


def mentions_of(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(start, end, type)`` of each IOB2 mention (end exclusive)."""
    out: list[tuple[int, int, str]] = []
    k = 0
    while k < len(tags):
        if tags[k].startswith("B-"):
            etype, end = tags[k][2:], k + 1
            while end < len(tags) and tags[end] == "I-" + etype:
                end += 1
            out.append((k, end, etype))
            k = end
        else:
            k += 1
    return out


def replace_mentions(sentences: Sequence[tuple[Sequence[str], Sequence[str]]], share: float,
                     seed: int) -> list[tuple[list[str], list[str]]]:
    """New ``(words, tags)`` sentences: about ``share`` × (sentences with a mention) copies, each
    with every mention replaced by a random mention of the same type seen in ``sentences``.

    ``share`` may exceed 1 (two copies per sentence at 2.0).  Deterministic for a seed."""
    pool: dict[str, list[tuple[str, ...]]] = {}
    for words, tags in sentences:
        for a, b, etype in mentions_of(tags):
            pool.setdefault(etype, []).append(tuple(words[a:b]))
    rng = random.Random(seed)
    bearing = [(list(w), list(t)) for w, t in sentences if any(tag != "O" for tag in t)]
    copies = [bearing[k % len(bearing)] for k in range(int(round(share * len(bearing))))] if bearing else []
    out: list[tuple[list[str], list[str]]] = []
    for words, tags in copies:
        new_words: list[str] = []
        new_tags: list[str] = []
        k = 0
        spans = {a: (b, etype) for a, b, etype in mentions_of(tags)}
        while k < len(words):
            if k in spans:
                b, etype = spans[k]
                name = rng.choice(pool[etype])
                new_words += name
                new_tags += ["B-" + etype] + ["I-" + etype] * (len(name) - 1)
                k = b
            else:
                new_words.append(words[k])
                new_tags.append(tags[k])
                k += 1
        out.append((new_words, new_tags))
    rng.shuffle(out)
    return out
