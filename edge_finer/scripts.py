"""Which writing system a text is in: the router's first and cheapest piece of evidence.

A script often settles the language outright (Ol Chiki → Santali, Odia script → Odia, Meetei
Mayek → Manipuri) and always narrows the candidates, so the n-gram profiles only have to tell
apart languages that share a script (Assamese and Bengali, Hindi and Marathi, English and
Swahili).  Codes are ISO 15924, as in a bundle manifest's ``language.scripts``.  Only letters
and marks vote: digits, punctuation, emoji and spaces are shared by every script.
"""
from __future__ import annotations

import bisect
import functools
import unicodedata
from collections import Counter
from typing import Sequence

import numpy as np

from .codepoints import CodePointTable

# (first, last, ISO 15924) Unicode blocks of the scripts of the languages we serve and their
# neighbours.  Combining marks that belong to no script (U+0300 ...) are "inherited": skipped.
_RANGES: list[tuple[int, int, str]] = sorted([
    (0x0041, 0x024F, "Latn"), (0x0250, 0x02AF, "Latn"), (0x1D00, 0x1DBF, "Latn"), (0x1E00, 0x1EFF, "Latn"),
    (0x2C60, 0x2C7F, "Latn"), (0xA720, 0xA7FF, "Latn"), (0xAB30, 0xAB6F, "Latn"), (0xFF21, 0xFF5A, "Latn"),
    (0x0370, 0x03FF, "Grek"), (0x1F00, 0x1FFF, "Grek"),
    (0x0400, 0x052F, "Cyrl"), (0x1C80, 0x1C8F, "Cyrl"), (0x2DE0, 0x2DFF, "Cyrl"), (0xA640, 0xA69F, "Cyrl"),
    (0x0530, 0x058F, "Armn"), (0x0590, 0x05FF, "Hebr"), (0xFB1D, 0xFB4F, "Hebr"),
    (0x0600, 0x06FF, "Arab"), (0x0750, 0x077F, "Arab"), (0x0870, 0x08FF, "Arab"), (0xFB50, 0xFDFF, "Arab"),
    (0xFE70, 0xFEFF, "Arab"),
    (0x0700, 0x074F, "Syrc"), (0x0780, 0x07BF, "Thaa"), (0x07C0, 0x07FF, "Nkoo"),
    (0x0900, 0x097F, "Deva"), (0xA8E0, 0xA8FF, "Deva"), (0x0980, 0x09FF, "Beng"), (0x0A00, 0x0A7F, "Guru"),
    (0x0A80, 0x0AFF, "Gujr"), (0x0B00, 0x0B7F, "Orya"), (0x0B80, 0x0BFF, "Taml"), (0x0C00, 0x0C7F, "Telu"),
    (0x0C80, 0x0CFF, "Knda"), (0x0D00, 0x0D7F, "Mlym"), (0x0D80, 0x0DFF, "Sinh"), (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Laoo"), (0x0F00, 0x0FFF, "Tibt"), (0x1000, 0x109F, "Mymr"), (0x10A0, 0x10FF, "Geor"),
    (0x1100, 0x11FF, "Hang"), (0x3130, 0x318F, "Hang"), (0xAC00, 0xD7AF, "Hang"),
    (0x1200, 0x139F, "Ethi"), (0x2D80, 0x2DDF, "Ethi"), (0x13A0, 0x13FF, "Cher"), (0x1400, 0x167F, "Cans"),
    (0x1780, 0x17FF, "Khmr"), (0x1800, 0x18AF, "Mong"), (0x1900, 0x194F, "Limb"), (0x1C00, 0x1C4F, "Lepc"),
    (0x1C50, 0x1C7F, "Olck"), (0x2D30, 0x2D7F, "Tfng"), (0x3040, 0x309F, "Hira"), (0x30A0, 0x30FF, "Kana"),
    (0x31F0, 0x31FF, "Kana"), (0xFF66, 0xFF9F, "Kana"),
    (0x3400, 0x4DBF, "Hani"), (0x4E00, 0x9FFF, "Hani"), (0xF900, 0xFAFF, "Hani"), (0x20000, 0x3134F, "Hani"),
    (0xA500, 0xA63F, "Vaii"), (0xA6A0, 0xA6FF, "Bamu"), (0xA800, 0xA82F, "Sylo"), (0xA880, 0xA8DF, "Saur"),
    (0xAAE0, 0xAAFF, "Mtei"), (0xABC0, 0xABFF, "Mtei"),
    (0x11080, 0x110CF, "Kthi"), (0x110D0, 0x110FF, "Sora"), (0x11100, 0x1114F, "Cakm"), (0x11180, 0x111DF, "Shrd"),
    (0x11300, 0x1137F, "Gran"), (0x11400, 0x1147F, "Newa"), (0x11480, 0x114DF, "Tirh"), (0x11680, 0x116CF, "Takr"),
    (0x11800, 0x1184F, "Dogr"), (0x118A0, 0x118FF, "Wara"), (0x1E900, 0x1E95F, "Adlm"),
])
_STARTS = [r[0] for r in _RANGES]
#: Codes a manifest may use for a script family, mapped onto what :func:`script_of` reports.
_ALIASES: dict[str, tuple[str, ...]] = {
    "Hans": ("Hani",), "Hant": ("Hani",), "Jpan": ("Hira", "Kana", "Hani"), "Kore": ("Hang", "Hani"),
    "Hanb": ("Hani", "Bopo"), "Zyyy": (), "Zinh": (),
}
UNKNOWN_SCRIPT = "Zzzz"


def script_of(ch: str) -> str | None:
    """The ISO 15924 code of a letter or mark; None for anything that does not vote."""
    cat = unicodedata.category(ch)
    if cat[0] not in "LM":
        return None
    cp = ord(ch)
    i = bisect.bisect_right(_STARTS, cp) - 1
    if i >= 0 and _RANGES[i][0] <= cp <= _RANGES[i][1]:
        return _RANGES[i][2]
    return None if cat[0] == "M" else UNKNOWN_SCRIPT  # inherited marks do not vote


# Per character, once: a text repeats the same few dozen letters (bounded for hostile input).
_script_cached = functools.lru_cache(maxsize=65536)(script_of)


def script_counts(text: str, limit: int = 20_000) -> Counter[str]:
    """Letters per script in (at most the first ``limit`` characters of) ``text``."""
    counts: Counter[str] = Counter()
    # per distinct character, not per character: a sentence has ~40 distinct ones
    for ch, n in Counter(text[:limit]).items():
        code = _script_cached(ch)
        if code is not None:
            counts[code] += n
    return counts


def expand(codes: list[str] | tuple[str, ...]) -> set[str]:
    """The script codes :func:`script_of` reports for a manifest's list (``Jpan`` → kana + Han)."""
    out: set[str] = set()
    for code in codes:
        out.update(_ALIASES.get(code, (code,)))
    return out


#: Scripts in the order :data:`_SCRIPT_IDS` first met them (index 0: no script).
_SCRIPT_NAMES: list[str | None] = [None]


def _script_index(cp: int) -> int:
    """The index of a code point's script in :data:`_SCRIPT_NAMES`, added on first sight (called
    under the table's lock, so no script is listed twice)."""
    code = _script_cached(chr(cp))
    if code not in _SCRIPT_NAMES:
        _SCRIPT_NAMES.append(code)
    return _SCRIPT_NAMES.index(code)


#: Code point -> index into :data:`_SCRIPT_NAMES`, for the Basic Multilingual Plane.
_SCRIPT_IDS = CodePointTable(_script_index, dtype=np.uint16)


def span_tallies(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, str | None, int]]:
    """``(letters, dominant script, its letters)`` of each ``(start, end)`` span of ``text``:
    :func:`script_counts` for many sentences in one numpy pass (a Counter per sentence was a
    tenth of the cost of routing a document sentence by sentence).  Ties go to the script code
    first in alphabetical order."""
    if not spans:
        return []
    lo, hi = spans[0][0], max(b for _, b in spans)
    cps = np.frombuffer(text[lo:hi].encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    ids = _SCRIPT_IDS.lookup(cps)
    if ids is not None:  # a table lookup per character: no sort of the text's code points
        present = np.flatnonzero(np.bincount(ids, minlength=1))
        names = sorted(_SCRIPT_NAMES[k] for k in present.tolist() if _SCRIPT_NAMES[k] is not None)
        column = np.full(len(_SCRIPT_NAMES), -1, dtype=np.int64)
        for k, name in enumerate(names):
            column[_SCRIPT_NAMES.index(name)] = k
        sid = column[ids]
    else:
        distinct, inverse = np.unique(cps, return_inverse=True)
        codes = [_script_cached(chr(c)) for c in distinct.tolist()]
        names = sorted({c for c in codes if c is not None})
        where = {name: k for k, name in enumerate(names)}
        sid = np.array([where[c] if c is not None else -1 for c in codes], dtype=np.int64)[inverse.reshape(-1)]
    if not names:
        return [(0, None, 0)] * len(spans)
    starts = np.array([a - lo for a, _ in spans], dtype=np.int64)
    ends = np.array([b - lo for _, b in spans], dtype=np.int64)
    counts = np.empty((len(spans), len(names)), dtype=np.int64)
    for k in range(len(names)):
        running = np.concatenate(([0], np.cumsum(sid == k)))
        counts[:, k] = running[ends] - running[starts]
    letters = counts.sum(axis=1)
    best = counts.argmax(axis=1)
    top = counts[np.arange(len(spans)), best]
    return [(n, names[b] if n else None, t) for n, b, t in zip(letters.tolist(), best.tolist(), top.tolist())]
