"""A per-code-point lookup table for whole arrays of text at once.

Why: ``str.translate`` and per-character Python calls look each non-ASCII character up one by one
(~80 ns each); the router reads every sentence's characters twice (letter runs, script tally),
and a numpy gather over the Basic Multilingual Plane does that for a whole batch in one pass.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

BMP = 0x10000


class CodePointTable:
    """``value_of(cp)`` for every BMP code point, filled on first sight (a text repeats the
    same few dozen characters); texts with a character beyond the BMP take the caller's
    general path."""

    def __init__(self, value_of: Callable[[int], int], dtype: type = np.uint32,
                 fixed: dict[int, int] | None = None) -> None:
        self._unseen = np.iinfo(dtype).max  # never a value: values are code points or small indices
        self._table = np.full(BMP, self._unseen, dtype=dtype)
        for cp, value in (fixed or {}).items():
            self._table[cp] = value
        self._value_of = value_of
        # filling is idempotent for a pure value_of, but one that interns (a script's index)
        # must not run for the same character in two threads at once
        self._lock = threading.Lock()

    def lookup(self, cps: np.ndarray) -> np.ndarray | None:
        """The value of each code point, or None when one lies beyond the BMP."""
        if len(cps) and int(cps.max()) >= BMP:
            return None
        got = self._table[cps]
        unseen = got == self._unseen
        if unseen.any():
            with self._lock:
                for cp in np.unique(cps[unseen]).tolist():
                    self._table[cp] = self._value_of(cp)
            got = self._table[cps]
        return got
