"""Load a bundle's ``tokenizer.json`` only if it asks for no more work than ours do.

Why: ``tokenizers`` runs whatever the file describes.  A hostile file can hold a regular
expression that backtracks for hours on one word (``(a+)+$``), a normaliser that turns each
character into thousands (a ``Replace`` whose replacement is long), a vocabulary of millions
of entries, or a WordPiece word limit that makes every long word quadratic.  The pipeline
writes WordPiece or Unigram tokenizers built from a few known parts (listed in
docs/bundle-format.md); anything else is refused with one line before ``tokenizers`` sees it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import BundleError
from .safejson import read_json_text

#: A tokenizer file larger than this is refused unread (shipped ones: ~0.2 MB; a full
#: XLM-R tokenizer, 250k pieces, is 17 MB).
MAX_TOKENIZER_BYTES = 32 * 2**20
#: Most vocabulary entries (and BPE merges) accepted.
MAX_VOCAB = 500_000
#: Most added (special) tokens accepted.
MAX_ADDED_TOKENS = 10_000
#: WordPiece's longest word before it gives up ([UNK]); its work grows with the square of it.
MAX_WORD_CHARS = 1_000
#: The only regular expressions the pipeline's tokenizers hold (XLM-R: runs of spaces).
SAFE_REGEXES = frozenset({" {2,}"})
MODELS = frozenset({"WordPiece", "Unigram", "BPE"})
NORMALIZERS = frozenset({"BertNormalizer", "NFC", "NFD", "NFKC", "NFKD", "Nmt", "Lowercase", "Strip",
                         "StripAccents", "Precompiled", "Sequence", "Replace", "Prepend"})
PRE_TOKENIZERS = frozenset({"BertPreTokenizer", "Whitespace", "WhitespaceSplit", "Metaspace", "Punctuation",
                            "Digits", "UnicodeScripts", "ByteLevel", "Sequence", "Split", "CharDelimiterSplit"})
#: Longest output a normaliser may make of one character (NFKC's longest is 18: U+FDFA).
MAX_EXPANSION = 18


def _refuse(path: Path, why: str) -> BundleError:
    return BundleError(f"{path}: refused: {why}")


def _regexes(node: Any, found: list[str]) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "Regex":
                    found.append(value if isinstance(value, str) else repr(value))
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _components(node: Any, key: str) -> list[dict]:
    """A normaliser or pre-tokeniser and, for a ``Sequence``, its members (flattened)."""
    out, stack = [], [node]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        if not isinstance(item, dict):
            out.append({"type": repr(item)[:40]})
            continue
        out.append(item)
        if item.get("type") == "Sequence":
            members = item.get(key)
            stack.extend(members if isinstance(members, list) else [members])
    return out


def check_tokenizer(doc: Any, path: Path) -> None:
    """Refuse a parsed ``tokenizer.json`` outside what the pipeline writes (one line)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        raise _refuse(path, "not a tokenizers file (no 'model' object)")
    model = doc["model"]
    kind = model.get("type") or ("WordPiece" if "continuing_subword_prefix" in model else None)
    if kind not in MODELS:
        raise _refuse(path, f"tokenizer model {str(kind)[:40]!r} is not one the pipeline writes "
                            f"({', '.join(sorted(MODELS))})")
    for field in ("vocab", "merges"):
        if isinstance(model.get(field), (list, dict)) and len(model[field]) > MAX_VOCAB:
            raise _refuse(path, f"{len(model[field]):,} {field} entries; a bundle tokenizer has at most "
                                f"{MAX_VOCAB:,}")
    if kind == "WordPiece":
        limit = model.get("max_input_chars_per_word", 100)
        if not isinstance(limit, int) or limit > MAX_WORD_CHARS:
            raise _refuse(path, f"WordPiece max_input_chars_per_word {limit!r} is above {MAX_WORD_CHARS}")
    added = doc.get("added_tokens") or []
    if not isinstance(added, list) or len(added) > MAX_ADDED_TOKENS:
        raise _refuse(path, f"more than {MAX_ADDED_TOKENS:,} added tokens")
    found: list[str] = []
    _regexes(doc, found)
    for pattern in found:
        if pattern not in SAFE_REGEXES:
            raise _refuse(path, f"regular expression {pattern[:60]!r} is not one the pipeline writes "
                                "(a regex can backtrack for hours on one word)")
    for part in _components(doc.get("normalizer"), "normalizers"):
        if part.get("type") not in NORMALIZERS:
            raise _refuse(path, f"normaliser {str(part.get('type'))[:40]!r} is not one the pipeline writes")
        if part.get("type") in ("Replace", "Prepend"):
            content = part.get("content", part.get("prepend", ""))
            pattern = part.get("pattern", {})
            literal = pattern.get("String") if isinstance(pattern, dict) else None
            longest = len(literal) if isinstance(literal, str) else 1
            if not isinstance(content, str) or len(content) > max(1, longest):
                raise _refuse(path, f"{part['type']} normaliser writes {len(str(content)):,} characters in place "
                                    f"of {longest}; a normaliser must not grow the text")
    for part in _components(doc.get("pre_tokenizer"), "pretokenizers"):
        if part.get("type") not in PRE_TOKENIZERS:
            raise _refuse(path, f"pre-tokenizer {str(part.get('type'))[:40]!r} is not one the pipeline writes")


def probe_normalizer(tok: Any, path: Path) -> None:
    """Normalise every character of the Basic Multilingual Plane once and refuse a normaliser
    that makes more than :data:`MAX_EXPANSION` characters of any of them (a ``Precompiled``
    character map is a binary table the structural check cannot read).  ~20 ms, once per load."""
    normalizer = getattr(tok, "normalizer", None)
    if normalizer is None:
        return
    chars = [chr(c) for c in range(0x21, 0x10000) if not 0xD800 <= c <= 0xDFFF]
    out = normalizer.normalize_str("\x00".join(chars))
    pieces = out.split("\x00")
    if len(pieces) == len(chars):
        longest = max(len(p) for p in pieces)
    else:  # the normaliser removed or made separators: judge the whole
        longest = len(out) // max(1, len(chars))
    if longest > MAX_EXPANSION or len(out) > 2 * len(chars) * 2:
        raise _refuse(path, f"its normaliser turns one character into {longest:,}; a bundle normaliser "
                            f"makes at most {MAX_EXPANSION}")


def load_tokenizer(path: Path) -> Any:
    """A ``tokenizers.Tokenizer`` from ``path``, after the checks above (one line on refusal)."""
    from tokenizers import Tokenizer

    doc, text = read_json_text(path, MAX_TOKENIZER_BYTES, "a tokenizer")
    check_tokenizer(doc, path)
    precompiled = any(p.get("type") == "Precompiled" for p in _components(doc.get("normalizer"), "normalizers"))
    try:
        tok = Tokenizer.from_str(text)
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        raise BundleError(f"{path}: not a valid tokenizer ({str(exc).splitlines()[0][:200] if str(exc) else exc})") from None
    if precompiled:  # the other normalisers' expansion is known; this one's is data
        probe_normalizer(tok, path)
    return tok
