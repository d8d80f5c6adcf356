"""Sentence-aware chunking of raw text.

Why: the model was trained on sentences, and long documents must be cut somewhere.  Cutting at
sentence ends keeps entities whole far more often than cutting at a fixed length; sentences
still too long for the model are then windowed with overlap by the annotator.  Boundaries are
found by one regex over the whole text, so a document never has to be split into words at once
(memory stays proportional to one sentence).
"""
from __future__ import annotations

import re
import unicodedata
from typing import Iterator

# Sentence terminators of the scripts we serve: Latin/Cyrillic/Greek (. ! ? …), Devanagari and
# Bengali-Assamese danda (। ॥), Arabic/Urdu (؟ ۔), Ethiopic (።), Ol Chiki (᱾ ᱿), Meetei Mayek
# (꯫), Myanmar (။), CJK full-width (。！？ need no following space).
# The look-ahead repeats the characters a boundary can start with: it gives the regex engine a
# first-character set to skip ahead by, where the bare alternation was tried at every position
# (twice as fast; sentence splitting was a tenth of routing a text sentence by sentence).
_BOUNDARY = re.compile(
    r"(?=[.!?…।॥؟۔።᱾᱿꯫။。！？\n])(?:"
    r"[.!?…।॥؟۔።᱾᱿꯫။]+[\"'”’»)\]]*\s+"
    r"|[。！？]+[\"'”’»)\]」』]*\s*"
    r"|\n\s*"
    r")"
)
# A sentence this long without a boundary is cut at whitespace; keeps memory bounded on
# pathological input (a 50 MB line with no punctuation).
MAX_SENTENCE_CHARS = 20_000


# Titles and abbreviations of four letters or more that precede a name or a number far more
# often than they end a sentence ("Prof. Achebe" was cut in two).  Shorter capitalised ones
# (Dr, Mr, Mrs, St, Gen, Col, No) are caught by the length rule below.  Measured against pysbd
# and sentencex on the dev sets: benchmarks/results/segmentation.md.
_TITLES = frozenset({
    "prof", "capt", "sgt", "supt", "insp", "pres", "gov", "sen", "rep", "rev", "hon", "dept", "univ",
    "approx", "fig", "figs", "vol", "vols", "nos", "gen", "col", "maj", "cmdr", "adm", "brig", "lieut",
    "messrs", "mme", "mlle", "sr", "sra", "srta", "dra", "ing", "hr", "fr", "bzw", "ca", "vgl", "cf", "vs",
})


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"


def _is_abbreviation(text: str, dot: int, after: int) -> bool:
    """True when the '.' at ``dot`` most likely ends an abbreviation or initial (Dr. J. U.S.
    Prof. डॉ.): a single letter, a short capitalised word, a known title, or a word of at most
    three letters in a script whose sentences end with a danda (there '.' marks abbreviations)
    when the text goes on in that script at ``after``."""
    i = dot
    while i > 0 and (text[i - 1].isalpha() or _is_mark(text[i - 1])):
        i -= 1
    word = text[i:dot]
    if not word or not word[0].isalpha():
        return False
    letters = sum(1 for ch in word if not _is_mark(ch))
    if letters == 1:
        return True
    if word.isascii() or not any(_is_mark(ch) for ch in word) and word[0].upper() != word[0].lower():
        return (len(word) <= 3 and word[0].isupper() and word[1:].islower()) or word.lower() in _TITLES
    return letters <= 3 and _danda_script(word[0]) and after < len(text) and _danda_script(text[after])


def _danda_script(ch: str) -> bool:
    """Brahmic scripts of South Asia (Devanagari to Malayalam, U+0900-U+0DFF), which end
    sentences with ।/॥ rather than '.'."""
    return "\u0900" <= ch <= "\u0dff"


def iter_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` spans that cover every non-space character of ``text`` once."""
    start = 0
    for m in _BOUNDARY.finditer(text):
        if text[m.start()] == "." and m.end() - m.start() and _is_abbreviation(text, m.start(), m.end()) \
                and text[m.start():m.end()].strip() == ".":
            continue
        end = m.end()
        if end - start <= max_chars:  # nearly always: no generator to set up
            yield start, end
        else:
            yield from _cap(text, start, end, max_chars)
        start = end
    if start < len(text):
        yield from _cap(text, start, len(text), max_chars)


def _cap(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    while end - start > max_chars:
        cut = text.rfind(" ", start + max_chars // 2, start + max_chars)
        if cut <= start:
            cut = start + max_chars
        yield start, cut
        start = cut
    if end > start:
        yield start, end


# -- the same sentences from text that arrives in pieces -----------------------------------------

#: Characters a boundary match can hold (terminators, closing quotes, CJK marks, whitespace).
#: A position holding any OTHER character is inside no match, so the text may be cut there and
#: scanned in two parts with the same result as in one.
_BOUNDARY_CHARS = ".!?…।॥؟۔።᱾᱿꯫။\"'”’»)]」』。！？"
_WHITESPACE = "".join(chr(c) for c in range(0x3100) if re.match(r"\s", chr(c)))
_MATCHABLE = _BOUNDARY_CHARS + _WHITESPACE
#: Characters kept before the current sentence for the abbreviation look-back, which decides
#: on words of a few letters (titles of up to six): a longer word cut to this many letters is
#: decided the same way.
_LOOKBACK = 32


class SentenceStream:
    """:func:`iter_sentences` over a text given piece by piece, holding only the current sentence.

    ``feed(piece)`` returns the sentences completed so far as ``(buffer, start, end, base)``:
    the sentence is ``buffer[start:end]`` and starts at ``base + start`` in the whole text.
    ``finish()`` returns the rest.  The spans equal those of ``iter_sentences`` over the joined
    text exactly (tests/test_giant.py checks it on random texts cut at random places): the
    boundary regex only runs up to the last character no match can hold, a sentence is capped
    only once its end is known to lie beyond ``max_chars``, and ``_LOOKBACK`` characters are
    kept before the current sentence for the abbreviation look-back.  (The abbreviation rule
    also reads the character after a boundary: that lies before the scan limit, which is an
    ordinary character no boundary can hold.)
    """

    def __init__(self, max_chars: int = MAX_SENTENCE_CHARS) -> None:
        self.max_chars = max_chars
        self.buf = ""
        self.base = 0  # offset of buf[0] in the whole text
        self.start = 0  # current sentence start (in buf)
        self.scan = 0  # where the boundary scan resumes (in buf)

    def feed(self, piece: str, final: bool = False) -> list[tuple[str, int, int, int]]:
        keep = max(0, self.start - _LOOKBACK)
        if keep:
            self.buf, self.base = self.buf[keep:], self.base + keep
            self.start, self.scan = self.start - keep, self.scan - keep
        buf = self.buf = self.buf + piece
        limit = len(buf) if final else len(buf.rstrip(_MATCHABLE))
        if not final and limit <= self.scan:
            return []
        out: list[tuple[str, int, int, int]] = []
        base, start = self.base, self.start
        for m in _BOUNDARY.finditer(buf, self.scan, limit):
            self.scan = m.end()
            if buf[m.start()] == "." and m.end() - m.start() and _is_abbreviation(buf, m.start(), m.end()) \
                    and buf[m.start():m.end()].strip() == ".":
                continue
            out.extend((buf, a, b, base) for a, b in _cap(buf, start, m.end(), self.max_chars))
            start = m.end()
        if final:
            if start < len(buf):
                out.extend((buf, a, b, base) for a, b in _cap(buf, start, len(buf), self.max_chars))
            start = len(buf)
        else:
            # the sentence runs on past `limit`: cap it while a whole piece lies before limit
            while limit - start > self.max_chars:
                cut = buf.rfind(" ", start + self.max_chars // 2, start + self.max_chars)
                if cut <= start:
                    cut = start + self.max_chars
                out.append((buf, start, cut, base))
                start = cut
            self.scan = max(self.scan, start)
        self.start = start
        return out

    def finish(self) -> list[tuple[str, int, int, int]]:
        return self.feed("", final=True)
