"""Words → subword ids, through a bounded cache of whole words.

Why a cache: the annotator hands the tokenizer pre-split words, and with pre-split input a
tokenizer encodes each word on its own, so a word's ids never depend on its neighbours.  Words
repeat (Zipf): the 25,943 words of the English dev set are 7,466 distinct ones.  Encoding each
distinct word once and reusing the ids cut tokenisation to about half in a profile of that set
(cProfile, one core; the end-to-end effect is in ``benchmarks/results/perf.md``).  Whether a
tokenizer really is context-free on
pre-split input is checked once per tokenizer on a probe sentence; one that is not (a
pre-tokenizer that treats the first word specially, say) is used the plain way, uncached.
"""
from __future__ import annotations

from itertools import chain
from typing import Any, Sequence

import numpy as np

#: Distinct words remembered; ~200 bytes each, so the cache stays within a few MB.
CAPACITY = 16_384

_PROBE = ["Kofi", "Annan", "visited", "São", "Paulo", "in", "2003", "—", "naïvely", "ÉCOLE", "x",
          "नई", "दिल्ली", "ঢাকা", "ଓଡ଼ିଆ", "日本", "co-op", "U.S.", "'s", "Kofi"]


class WordEncoder:
    """Subword ids and word index per token for sentences given as word lists.  Thread-safe."""

    def __init__(self, tokenizer: Any, capacity: int = CAPACITY) -> None:
        self.tokenizer = tokenizer
        self.capacity = capacity
        self._cache: dict[str, list[int]] = {}
        self._fast = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        self.cached = self._context_free()

    def encode(self, sentences: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, words, starts)`` for all sentences end to end: ``ids[t]`` is token ``t``,
        ``words[t]`` its word's index among all words of all sentences, and sentence ``k`` owns
        tokens ``starts[k]:starts[k + 1]``.  Words the tokenizer drops get no tokens."""
        pieces = self._pieces(sentences) if self.cached else self._plain(sentences)
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        ids = np.fromiter(chain.from_iterable(pieces), dtype=np.int64, count=int(lengths.sum()))
        words = np.repeat(np.arange(len(pieces), dtype=np.int64), lengths)
        word_starts = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in sentences], out=word_starts[1:])
        token_ends = np.concatenate(([0], np.cumsum(lengths)))
        return ids, words, token_ends[word_starts]

    def clear(self) -> None:
        """Forget the cached words (a benchmark's fresh start; memory back after a huge run)."""
        self._cache.clear()

    def _pieces(self, sentences: Sequence[Sequence[str]]) -> list[list[int]]:
        cache = self._cache
        known: dict[str, list[int]] = {}
        todo = []
        for word in dict.fromkeys(chain.from_iterable(sentences)):
            ids = cache.get(word)
            if ids is None:
                todo.append(word)
            else:
                known[word] = ids
        if todo:
            encodings = self._fast([[w] for w in todo], is_pretokenized=True, add_special_tokens=False)
            if len(cache) + len(todo) > self.capacity:
                cache.clear()  # crude but bounded; a new text's vocabulary refills it at once
            room = self.capacity - len(cache)
            for i, (word, enc) in enumerate(zip(todo, encodings)):
                known[word] = enc.ids
                if i < room:
                    cache[word] = enc.ids
        return [known[w] for w in chain.from_iterable(sentences)]

    def _plain(self, sentences: Sequence[Sequence[str]]) -> list[list[int]]:
        """One id list per word from whole-sentence encodings (word_ids map tokens to words)."""
        out: list[list[int]] = []
        encodings = self.tokenizer.encode_batch([list(s) for s in sentences], is_pretokenized=True,
                                                add_special_tokens=False)
        for words, enc in zip(sentences, encodings):
            per_word: list[list[int]] = [[] for _ in words]
            for tok, w in zip(enc.ids, enc.word_ids):
                if w is not None:
                    per_word[w].append(tok)
            out.extend(per_word)
        return out

    def _context_free(self) -> bool:
        """Whether word-by-word encoding gives exactly the ids of whole-sentence encoding."""
        try:
            whole = self.tokenizer.encode_batch([_PROBE], is_pretokenized=True, add_special_tokens=False)[0]
            alone = self._fast([[w] for w in _PROBE], is_pretokenized=True, add_special_tokens=False)
        except Exception:  # a tokenizer that cannot do this is used the plain way
            return False
        joined = [t for enc in alone for t in enc.ids]
        return joined == list(whole.ids) and None not in whole.word_ids
