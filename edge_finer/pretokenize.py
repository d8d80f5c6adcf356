"""Word pre-tokenisation shared by the runtime and the build pipeline.

The runtime sees raw text while training data arrives as gold tokens, so both sides must cut
text into words the same way, or the model is trained on a token grid it never sees at run
time.  This module is that one place: the pipeline re-splits every gold token with
:func:`split_words` and the runtime splits raw text with it.  A bundle names the scheme it was
trained with (its manifest's ``pretokenizer``) and the runtime refuses schemes it does not know.

Schemes (the recipe's top-level ``pretokenizer`` key names one; ``words`` is the default):

``words`` (manifest ``{"name": "edge-finer-words", "version": 1}``)
    A word is a maximal run of letters, digits, underscore and combining marks (so Indic
    aksharas with their vowel signs and viramas, and ZWJ/ZWNJ inside them, stay whole); every
    other visible character (punctuation, symbols, emoji) is a word of its own.  Whitespace,
    control and format characters separate words and never belong to one, so no entity can
    start or end on them.

``han-chars`` (manifest ``{"name": "edge-finer-han-chars", "version": 1}``)
    As ``words``, except that every Han character (with any combining marks, e.g. a variation
    selector, that follow it) is a word of its own.  Chinese is written without spaces, so
    under ``words`` a whole clause would be one "word"; Chinese NER corpora (MultiCoNER v2 zh)
    are annotated one character per token, and this scheme reproduces that grid from raw text.
    Runs of other scripts (Latin names, digits) stay whole words: ``1949年`` → ``1949`` ``年``.

Offsets are always spans of the caller's string (right-to-left text such as Urdu included:
spans are logical, in storage order), never of a normalised copy.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ._charclasses import MARKS, SKIP

#: Han characters: CJK radicals (supplement, Kangxi), iteration mark 々, ideographic zero 〇,
#: Hangzhou numerals, unified ideographs with extensions A-H, compatibility ideographs.
HAN = ("\u2e80-\u2eff\u2f00-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff"
       "\uf900-\ufaff\U00020000-\U0002fa1f\U00030000-\U000323af")

_W = "[\\w" + MARKS + "]"
_ZWJ = "[\u200c\u200d]"
_OTHER = "[^\\s\\w" + MARKS + SKIP + "]"  # any other visible character on its own

# A word starts with a letter/digit/mark: a ZW(N)J is kept only *inside* a word (between two
# such characters), never at its start, so no word or entity begins on an invisible character.
_WORD = re.compile(_W + "(?:" + _W + "|" + _ZWJ + "(?=" + _W + "))*" + "|" + _OTHER)

# The same with Han characters taken out of runs: each is a word, with its trailing marks.
# (Han radicals are symbols, not \w: they are listed first so they too come out alone.)
_NOT_HAN = "(?![" + HAN + "])"
_WORD_HAN = re.compile(
    "[" + HAN + "][" + MARKS + "]*"
    "|" + _NOT_HAN + _W + "(?:" + _NOT_HAN + _W + "|" + _ZWJ + "(?=" + _NOT_HAN + _W + "))*"
    "|" + _OTHER
)


@dataclass(frozen=True)
class Scheme:
    """One word pre-tokenisation: ``key`` is what a recipe writes, ``name``/``version`` what a
    manifest records, ``pattern`` the one regex both sides split with."""

    key: str
    name: str
    version: int
    pattern: re.Pattern[str]

    def manifest(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}

    def split(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self.pattern.finditer(text)]

    def words(self, text: str) -> list[str]:
        return self.pattern.findall(text)


SCHEMES: dict[str, Scheme] = {
    "words": Scheme("words", "edge-finer-words", 1, _WORD),
    "han-chars": Scheme("han-chars", "edge-finer-han-chars", 1, _WORD_HAN),
}
DEFAULT = "words"

#: The default scheme's manifest entry (what bundles built before schemes existed carry).
PRETOKENIZER = SCHEMES[DEFAULT].manifest()


def scheme(key: str = DEFAULT) -> Scheme:
    """The scheme a recipe names; ValueError naming the known ones otherwise."""
    try:
        return SCHEMES[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown word pre-tokenisation {key!r}; known: {', '.join(SCHEMES)}") from None


def from_manifest(entry: Mapping[str, Any] | Any) -> Scheme:
    """The scheme a bundle manifest's ``pretokenizer`` names; ValueError for one this edge-finer
    does not know (a newer bundle, or a damaged manifest)."""
    if isinstance(entry, Mapping):
        for s in SCHEMES.values():
            if entry.get("name") == s.name and entry.get("version") == s.version and not isinstance(
                    entry.get("version"), bool):
                return s
    known = ", ".join(f"{s.name} v{s.version}" for s in SCHEMES.values())
    raise ValueError(f"word pre-tokenisation {entry!r} is not one this edge-finer knows ({known})")


def split_words(text: str, key: str = DEFAULT) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the words in ``text``, in order."""
    return [m.span() for m in scheme(key).pattern.finditer(text)]


def words(text: str, key: str = DEFAULT) -> list[str]:
    """The words of ``text`` as strings (the pipeline's view of a gold token)."""
    return scheme(key).pattern.findall(text)
