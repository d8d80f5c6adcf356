"""Cutting a long sentence's subword sequence into overlapping model windows.

One implementation for both halves: the build pipeline trains on the windows the runtime will
cut (parity again), and the runtime merges predictions using the same cut points.  Windows end
on word starts where they can and overlap by about ``stride`` tokens; each word is *owned* by
the window in which it sits farther from an edge, so it is predicted exactly once, with context
on both sides.
"""
from __future__ import annotations

import numpy as np


def word_starts(wids: np.ndarray) -> np.ndarray:
    """Token positions where a new word begins (``wids``: word index per token)."""
    return np.flatnonzero(np.diff(wids, prepend=-1) != 0)


def word_windows(wids: np.ndarray, cap: int, stride: int) -> list[tuple[int, int]]:
    """``(start, end)`` token ranges of at most ``cap`` tokens, ending on word starts when they can."""
    n = int(wids.size)
    if n <= cap:
        return [(0, n)]
    starts = word_starts(wids)
    out: list[tuple[int, int]] = []
    s = 0
    while True:
        e = min(s + cap, n)
        if e < n:
            k = int(np.searchsorted(starts, e, side="right")) - 1
            if starts[k] > s:
                e = int(starts[k])
        out.append((s, e))
        if e >= n:
            return out
        j = int(np.searchsorted(starts, e - stride, side="left"))
        nxt = int(starts[j]) if j < starts.size else e
        s = nxt if s < nxt < e else e


def owned_windows(wids: np.ndarray, cap: int, stride: int) -> list[tuple[int, int, int, int]]:
    """``(start, end, own_from, own_to)``: the windows and the token range each one answers for."""
    spans = word_windows(wids, cap, stride)
    if len(spans) == 1:
        return [(spans[0][0], spans[0][1], spans[0][0], spans[0][1])]
    starts = word_starts(wids)
    out = []
    for i, (s, e) in enumerate(spans):
        lo = 0 if i == 0 else _mid_boundary(starts, s, spans[i - 1][1])
        hi = int(wids.size) if i == len(spans) - 1 else _mid_boundary(starts, spans[i + 1][0], e)
        out.append((s, e, lo, hi))
    return out


def _mid_boundary(starts: np.ndarray, overlap_from: int, overlap_to: int) -> int:
    """A word start near the middle of an overlap ``[overlap_from, overlap_to)``."""
    mid = (overlap_from + overlap_to) // 2
    j = int(np.searchsorted(starts, mid, side="left"))
    if j >= starts.size or starts[j] >= overlap_to:
        return overlap_from if overlap_from < overlap_to else overlap_to
    return int(starts[j])
