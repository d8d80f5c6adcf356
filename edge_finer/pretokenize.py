"""Word pre-tokenisation shared by the runtime and the build pipeline.

The runtime sees raw text while training data arrives as gold tokens, so both sides must cut
text into words the same way, or the model is trained on a token grid it never sees at run
time.  This module is that one place: the pipeline re-splits every gold token with
:func:`split_words` and the runtime splits raw text with it.  A bundle names the scheme it was
trained with (``PRETOKENIZER``) and the runtime refuses schemes it does not know.

A word is a maximal run of letters, digits, underscore and combining marks (so Indic
aksharas with their vowel signs and viramas, and ZWJ/ZWNJ inside them, stay whole); every
other visible character (punctuation, symbols, emoji) is a word of its own.  Whitespace,
control and format characters separate words and never belong to one, so no entity can start
or end on them.
"""
from __future__ import annotations

import re

from ._charclasses import MARKS, SKIP

#: The scheme name and version written into every bundle manifest.
PRETOKENIZER = {"name": "edge-finer-words", "version": 1}

# A word starts with a letter/digit/mark: a ZW(N)J is kept only *inside* a word (between two
# such characters), never at its start, so no word or entity begins on an invisible character.
_WORD = re.compile(
    "[\\w" + MARKS + "](?:[\\w" + MARKS + "]|[\u200c\u200d](?=[\\w" + MARKS + "]))*"
    "|[^\\s\\w" + MARKS + SKIP + "]"  # any other visible character on its own
)


def split_words(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the words in ``text``, in order."""
    return [m.span() for m in _WORD.finditer(text)]


def words(text: str) -> list[str]:
    """The words of ``text`` as strings (the pipeline's view of a gold token)."""
    return _WORD.findall(text)
