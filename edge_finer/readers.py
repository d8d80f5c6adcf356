"""Reading pre-tokenised inputs: CoNLL, TSV and JSONL with the user's own tokens.

``--input-format``:

- ``text`` (default): raw text, each line annotated (not this module).
- ``conll``: one token per line, the token in the first column, any columns after it, separated
  by tabs when the line has one, else by spaces (CoNLL-2003); a blank line between sentences.
- ``tsv``: the same with tab-separated columns only, so a token may hold spaces.
- ``jsonl``: one JSON object per line with ``tokens``, a list of strings (other keys ignored).

Lines that are not tokens are kept as they are and written back before their sentence in the
CoNLL output: ``-DOCSTART-`` lines, and ``#`` lines before a sentence's first token (CoNLL-U
comments) unless they read as a tab-separated row whose token is ``#`` (``#<TAB>O``).  A bad JSONL line is one
:class:`InputError` naming ``file:line``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

from .errors import InputError
from .textio import iter_lines

INPUT_FORMATS = ("text", "conll", "tsv", "jsonl")


@dataclass(frozen=True)
class TokenBlock:
    """One sentence of given tokens, with the lines it came from."""

    line: int  # 1-based line of its first token row (JSONL: its line)
    tokens: tuple[str, ...]
    rows: tuple[str, ...] = ()  # CoNLL/TSV: the token rows as in the file, without line ends
    comments: tuple[str, ...] = ()  # lines kept as they are before the rows


def _is_comment(line: str) -> bool:
    if line.split("\t", 1)[0].split(" ", 1)[0].strip() == "-DOCSTART-":
        return True
    return line.startswith("#") and ("\t" not in line or line.startswith("# "))


def _token(line: str, tsv: bool) -> str:
    if tsv or "\t" in line:
        return line.split("\t", 1)[0]
    return line.split()[0]


def read_columns(text: str, tsv: bool = False) -> Iterator[TokenBlock]:
    """The sentences of a CoNLL (``tsv=False``) or TSV text."""
    rows: list[str] = []
    tokens: list[str] = []
    comments: list[str] = []
    first = 0
    for number, _, line in iter_lines(text):
        if not line.strip():
            if rows or comments:
                yield TokenBlock(first, tuple(tokens), tuple(rows), tuple(comments))
            rows, tokens, comments = [], [], []
            continue
        if not rows and _is_comment(line):
            comments.append(line)
            continue
        if not rows:
            first = number
        rows.append(line)
        tokens.append(_token(line, tsv))
    if rows or comments:
        yield TokenBlock(first, tuple(tokens), tuple(rows), tuple(comments))


def read_jsonl(text: str, source: str) -> Iterator[TokenBlock]:
    """One sentence per non-blank line: ``{"tokens": [...], ...}``."""
    for number, _, line in iter_lines(text):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        tokens = obj.get("tokens") if isinstance(obj, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise InputError(f"{source}:{number}: expected an object with \"tokens\", a list of strings "
                             "(--input-format jsonl)")
        yield TokenBlock(number, tuple(tokens))


def read_blocks(text: str, input_format: str, source: str) -> Iterator[TokenBlock]:
    """The sentences of a decoded input in a pre-tokenised ``input_format``."""
    if input_format == "conll":
        return read_columns(text, tsv=False)
    if input_format == "tsv":
        return read_columns(text, tsv=True)
    if input_format == "jsonl":
        return read_jsonl(text, source)
    raise ValueError(f"not a pre-tokenised input format: {input_format}")
