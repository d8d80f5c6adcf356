"""JSON from a bundle or a folder, read with a size cap and a nesting cap.

Why: every JSON file the runtime reads (manifests, tokenizers, language profiles, the shipped
index, run records) may come from a stranger.  A gigabyte manifest would be read into memory
whole and a deeply nested one used to end in a ``RecursionError`` traceback; both are refused
here with one line naming the file, before the rest of the runtime looks at the content.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import BundleError

#: Deepest nesting of arrays and objects accepted.  Our files nest at most 7 levels (a
#: tokenizer's normaliser sequence); 64 leaves room for any honest writer.
MAX_DEPTH = 64


def depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises ``ValueError`` (never ``RecursionError``) on deep nesting."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested more than {max_depth} levels deep") from None
    if depth(value) > max_depth:
        raise ValueError(f"nested more than {max_depth} levels deep")
    return value


def read_json(path: Path, max_bytes: int, what: str, max_depth: int = MAX_DEPTH,
              error: type[Exception] = BundleError) -> Any:
    """The parsed content of ``path``, or one ``error`` line: missing, too large, not UTF-8
    JSON, or nested too deeply.  The size is checked before anything is read."""
    return read_json_text(path, max_bytes, what, max_depth, error)[0]


def read_json_text(path: Path, max_bytes: int, what: str, max_depth: int = MAX_DEPTH,
                   error: type[Exception] = BundleError) -> tuple[Any, str]:
    """:func:`read_json`, and the text it parsed (to hand on without reading the file again)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            if size > max_bytes:
                raise error(f"{path}: {size / 2**20:.1f} MB is too large for {what} "
                            f"(at most {max_bytes / 2**20:g} MB)")
            fh.seek(0)
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if len(data) > max_bytes:  # it grew while we read
        raise error(f"{path}: too large for {what} (at most {max_bytes / 2**20:g} MB)")
    try:
        text = data.decode("utf-8")
        return loads(text, max_depth), text
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        raise error(f"{path}: {what} is not valid JSON ({exc})") from None
