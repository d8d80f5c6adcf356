"""Text from bundles and inputs made safe to show on a terminal.

Why: a file name, an entity, a label or a bundle's licence may hold escape sequences
(``\\x1b[2J`` clears the screen, ``\\x1b]0;...`` retitles the window, OSC 8 makes links) or
bidirectional overrides that make a line read differently from what it holds.  ``rich``
passes such characters through untouched.  Everything the table format, the bundle listings
and the error lines print from outside goes through :func:`safe` first: control characters
become visible ``\\xNN`` / ``\\uNNNN`` escapes, tabs and line breaks become spaces (one item,
one row), and letters of every script, joiners included, are left alone.
"""
from __future__ import annotations

import re

# C0 and C1 controls (less tab/CR/LF, handled first), DEL, line/paragraph separators, the
# bidirectional embeddings, overrides and isolates, and lone surrogates (undecodable bytes).
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SPACES = str.maketrans({"\t": " ", "\r": " ", "\n": " "})


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """``text`` with nothing a terminal would act on: see the module docstring."""
    return _UNSAFE.sub(_escape, text.translate(_SPACES))
