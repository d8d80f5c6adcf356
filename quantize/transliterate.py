"""Training sentences of a related language, rewritten in the bundle's Brahmic script.

Why: Odia has 12k annotated sentences and no other text in ``../shared/data``; Hindi, with the
same IL-NER tag set, has 11k more.  The two scripts are different alphabets for nearly the same
sounds, and Unicode laid out the Brahmic blocks alike (ISCII's order: every letter sits at the
same offset in Devanagari, Bengali, Gurmukhi, Gujarati, Oriya, Tamil, Telugu, Kannada and
Malayalam), so moving a letter from one block to another is an offset.  Indian names, places,
organisations and many Sanskrit-derived words are shared by these languages, and after the move
they are spelled (nearly) as the bundle's own training data spells them: a labelled neighbour
becomes extra training text for a model that only ever reads the bundle's script.

This is a letter-by-letter mapping, not a transliteration standard: a letter the target block
lacks keeps a close letter (Hindi's candra O becomes O) or stays as it is; the digits take the
style the bundle's own training sentences use (Odia writes its own digits, IL-NER Hindi ASCII).
Only the build uses it; the runtime reads users' text as written.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Iterable, Sequence

from edge_finer.scripts import script_counts

# ISO 15924 code -> first code point of its Unicode block (128 code points each, ISCII order)
BLOCKS = {"Deva": 0x0900, "Beng": 0x0980, "Guru": 0x0A00, "Gujr": 0x0A80, "Orya": 0x0B00,
          "Taml": 0x0B80, "Telu": 0x0C00, "Knda": 0x0C80, "Mlym": 0x0D00}
_DIGIT_ZERO = 0x66  # offset of the digit zero in every block
_DANDAS = {"\u0964", "\u0965"}  # shared by the Brahmic scripts (Unicode keeps them in Devanagari)
# Devanagari letters without a slot elsewhere, as the nearest letter that has one
_NEAREST = {"\u0949": "\u094b", "\u0911": "\u0913", "\u0945": "\u0947", "\u090d": "\u090f",
            "\u0972": "\u0905", "\u0904": "\u090f"}
# Where the target spells a sound with another letter than the offset gives (Odia writes the
# Hindi "va" as BA, and "ya" after the start of a word as YYA)
_TARGET_SPELLING = {"Orya": {"\u0b35": "\u0b2c"}}
_ODIA_YA, _ODIA_YYA = "\u0b2f", "\u0b5f"


def brahmic_block(ch: str) -> str | None:
    """The Brahmic script whose Unicode block holds ``ch`` (the ones :data:`BLOCKS` lists)."""
    cp = ord(ch)
    for code, start in BLOCKS.items():
        if start <= cp < start + 128:
            return code
    return None


def digit_style(sentences: Iterable[Sequence[str]], script: str) -> str:
    """``"native"`` when the sentences' digits are mostly ``script``'s own, else ``"ascii"``."""
    zero = BLOCKS[script] + _DIGIT_ZERO
    native = ascii_ = 0
    for words in sentences:
        for w in words:
            for ch in w:
                if "0" <= ch <= "9":
                    ascii_ += 1
                elif zero <= ord(ch) < zero + 10:
                    native += 1
    return "native" if native > ascii_ else "ascii"


def _digit_value(ch: str, block: str | None) -> int | None:
    """The digit ``ch`` writes (ASCII, or of ``block``, the Brahmic block holding it), else None."""
    if "0" <= ch <= "9":
        return int(ch)
    offset = ord(ch) - BLOCKS[block] - _DIGIT_ZERO if block else -1
    return offset if 0 <= offset < 10 else None


def transliterate_word(word: str, target: str, digits: str = "ascii") -> str:
    """``word`` with the letters of every other Brahmic block moved to ``target``'s block."""
    base = BLOCKS[target]
    out = []
    for i, ch in enumerate(word):
        source = brahmic_block(ch)
        value = _digit_value(ch, source)
        if value is not None:
            out.append(chr(base + _DIGIT_ZERO + value) if digits == "native" else str(value))
            continue
        if source is None or source == target or ch in _DANDAS:
            out.append(ch)
            continue
        parts = unicodedata.normalize("NFD", ch) if source == "Deva" else ch  # ज़ -> ज + nukta
        for part in parts:
            part = _NEAREST.get(part, part) if source == "Deva" else part
            moved = chr(base + (ord(part) - BLOCKS[source]))
            if not unicodedata.name(moved, ""):  # no such letter in the target block
                out.append(part)
                continue
            moved = _TARGET_SPELLING.get(target, {}).get(moved, moved)
            if target == "Orya" and moved == _ODIA_YA and i > 0:
                moved = _ODIA_YYA
            out.append(moved)
    return "".join(out)


def foreign_script(words: Sequence[str], target: str) -> str | None:
    """The Brahmic script other than ``target`` that most of the sentence's letters are in."""
    counts = script_counts(" ".join(words))
    if not counts:
        return None
    top, _ = counts.most_common(1)[0]
    return top if top in BLOCKS and top != target else None


def transliterate_sentences(sentences: Sequence[Sequence[str]], target: str, digits: str,
                            ) -> tuple[list[list[str]], Counter[str]]:
    """Each sentence's words, moved to ``target`` where another Brahmic script dominates it; and
    how many sentences came from each script."""
    moved: Counter[str] = Counter()
    out = []
    for words in sentences:
        source = foreign_script(words, target)
        if source is None:
            out.append(list(words))
            continue
        moved[source] += 1
        out.append([transliterate_word(w, target, digits) for w in words])
    return out, moved
