"""Character n-gram language profiles: what a bundle's language looks like, in ~80 KB of JSON.

Why our own and not only CLD3: CLD3 knows none of Assamese, Odia, Bodo, Manipuri, Santali and
many more of the languages this project serves (and calls Assamese Bengali).  Every bundle
instead carries ``profile.json``, computed by the build pipeline from the bundle's own training
text, so any language that has a bundle can be recognised.  The model is a naive-Bayes
character n-gram model (orders 1-4 over the case-folded letter runs): the most frequent n-grams
with their log relative frequencies, plus a calibration of how well held-out sentences of the
language itself score, which is what lets the router answer "none of the installed languages".

This module is shared by both halves: the pipeline counts n-grams with :func:`ngrams` and the
router scores text with the same function, so the two cannot drift apart.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ._charclasses import MARKS
from .codepoints import CodePointTable
from . import safejson
from .errors import BundleError

PROFILE_FILE = "profile.json"
PROFILE_FORMAT = "edge-finer-ngram-profile"
PROFILE_VERSION = 1
ORDERS = (1, 2, 3, 4)
#: How many n-grams a profile keeps: enough to tell close languages apart (measured on the
#: shared dev splits by benchmarks/routing.py), small enough to keep bundles under 5 MB.
TOP_NGRAMS = 4000
#: Log-probability of an n-gram a profile does not hold.  One constant for every profile (not
#: one derived from each profile's own counts), so a profile built from little text does not
#: win merely because its unseen n-grams cost less.
UNSEEN_LOGP = -13.0
MAX_PROFILE_BYTES = 2 * 1024 * 1024
#: See :meth:`Profile.threshold`.
THRESHOLD_SLACK = 0.25

# A run of letters and marks: digits, punctuation and symbols say nothing about the language.
_LETTERS = re.compile("(?:[^\\W\\d_]|[" + MARKS + "])+")


#: Invisible format characters that sit *inside* words and are deleted, not read as a word break:
#: the zero-width non-joiner and joiner (Devanagari, Bengali and Odia text writes "सम्‍मान" with a
#: joiner to choose a half-form), the soft hyphen and the word joiner.  Read as breaks, they cut
#: one word into two that the language never writes (Hindi news sentences scored as Magahi:
#: benchmarks/results/routing.md).  The zero-width space stays a break: it separates words.
JOINERS = "\u00ad\u200c\u200d\u2060"


class _Blanks(dict):  # type: ignore[type-arg]
    """``str.translate`` table: a letter or mark maps to itself, a joiner (:data:`JOINERS`) to
    nothing, anything else to a space.

    Filled per character on first sight: the regex above is slow per character (its marks
    class is a long list of ranges, ~20 µs a sentence), the table lookup runs in C.
    """

    LIMIT = 1 << 16  # distinct characters remembered (hostile input cannot grow it further)

    def __missing__(self, cp: int) -> int | None:
        value = None if chr(cp) in JOINERS else cp if _LETTERS.fullmatch(chr(cp)) else 32
        if len(self) < self.LIMIT:
            self[cp] = value
        return value


_BLANKS = _Blanks()


def letter_runs(text: str) -> list[str]:
    """The case-folded runs of letters and marks of ``text`` (what ``_LETTERS.findall`` finds
    once the joiners are taken out)."""
    return text.casefold().translate(_BLANKS).split()


#: Code point -> itself (a letter or mark) or 32, as :data:`_BLANKS` says; NUL (the separator
#: :func:`letter_runs_many` joins texts with) maps to itself.  Joiners never reach it (deleted first).
_BMP_BLANKS = CodePointTable(lambda cp: 32 if _BLANKS[cp] is None else _BLANKS[cp], fixed={0: 0})


def letter_runs_many(texts: list[str]) -> list[list[str]]:
    """:func:`letter_runs` of each text.  ``str.translate`` looks every character of a non-ASCII
    text up in a dict (~80 ns each: 12 µs a Devanagari sentence, a tenth of routing it); a table
    lookup over all the texts' code points at once costs a quarter of that."""
    joined = "\0".join(texts)
    if joined.isascii() or joined.count("\0") != len(texts) - 1:  # ASCII: translate's own fast path
        return [letter_runs(t) for t in texts]
    for joiner in JOINERS:
        if joiner in joined:
            joined = joined.replace(joiner, "")
    cps = np.frombuffer(joined.casefold().encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    mapped = _BMP_BLANKS.lookup(cps)
    if mapped is None:  # a letter beyond the BMP (rare): the dict handles every plane
        return [letter_runs(t) for t in texts]
    return [part.split() for part in mapped.tobytes().decode("utf-32-le", "surrogatepass").split("\0")]


def spaced(runs: list[str]) -> str:
    """Letter runs as their n-grams are read: joined by single spaces, with a space at each end
    (so word starts and ends are n-grams of their own); "" for no runs.  The profiles and every
    scorer of them (edge_finer.langrefs) read the same string."""
    return " " + " ".join(runs) + " " if runs else ""


def ngrams(text: str, orders: Iterable[int] = ORDERS) -> list[str]:
    """The character n-grams of ``text``'s letter runs, case-folded, as :func:`spaced` joins them."""
    joined = spaced(letter_runs(text))
    if len(joined) <= 2:
        return []
    out: list[str] = []
    for n in orders:
        if n == 1:
            out += joined.replace(" ", "")
        else:
            out += [joined[i:i + n] for i in range(len(joined) - n + 1)]
    return out


@dataclass(frozen=True)
class Profile:
    """A parsed ``profile.json``: n-gram log-probabilities and the language's calibration."""

    logp: dict[str, float]
    orders: tuple[int, ...]
    #: avg log-probability per n-gram of held-out sentences of the language: percentiles
    #: ("p1", "p5", ...) for sentences of >= 20 characters ("long") and shorter ones ("short").
    calibration: dict[str, dict[str, float]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def percentile(self, short: bool, name: str) -> float | None:
        """A calibration percentile (``"p10"`` ...) for short or long text, if recorded."""
        table = self.calibration.get("short" if short else "long") or self.calibration.get("long") or {}
        value = table.get(name)
        return float(value) if isinstance(value, (int, float)) else None

    def threshold(self, short: bool) -> float | None:
        """The average log-probability below which a text is "not this language".

        The 1st percentile of the language's own held-out sentences, lowered by a quarter of
        the gap to their median: the bare percentile turned away ~1 % of real sentences of the
        language (measured by benchmarks/routing.py), the slack keeps that rare while text of
        other languages still falls far below it.
        """
        low, mid = self.percentile(short, "p1"), self.percentile(short, "p50")
        if low is None or mid is None:
            return None
        return low - THRESHOLD_SLACK * max(0.0, mid - low)


def profile_to_json(counts: dict[str, int], total: int, calibration: dict[str, dict[str, float]],
                    meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of a profile (what the pipeline writes as ``profile.json``)."""
    return {"format": PROFILE_FORMAT, "version": PROFILE_VERSION, "orders": list(ORDERS),
            "total": int(total), "ngrams": counts, "calibration": calibration, **meta}


def parse_profile(doc: Any, where: str) -> Profile:
    """Validate a profile document; a bad one is refused with a message naming ``where``."""
    def bad(why: str) -> BundleError:
        return BundleError(f"{where}: not a valid language profile ({why})")

    if not isinstance(doc, dict) or doc.get("format") != PROFILE_FORMAT:
        raise bad(f"format must be {PROFILE_FORMAT!r}")
    if doc.get("version") != PROFILE_VERSION:
        raise bad(f"version {doc.get('version')!r}; this edge-finer reads version {PROFILE_VERSION}")
    orders = doc.get("orders")
    if not isinstance(orders, list) or not orders or not all(isinstance(n, int) and 0 < n < 9 for n in orders):
        raise bad("orders must be a list of small integers")
    total, counts = doc.get("total"), doc.get("ngrams")
    if not isinstance(total, int) or total <= 0 or not isinstance(counts, dict) or not counts:
        raise bad("needs a positive total and a non-empty ngrams table")
    # vectorised: eight profiles are read on every routed start, ~4,000 n-grams each
    values = list(counts.values())
    if not all(type(c) is int for c in values):  # bool is an int subclass; JSON floats are not
        bad_gram = next(g for g, c in counts.items() if type(c) is not int)
        raise bad(f"bad n-gram entry {bad_gram!r}: {counts[bad_gram]!r}")
    arr = np.array(values, dtype=np.float64)
    out_of_range = (arr <= 0) | (arr > total)
    if out_of_range.any():
        bad_gram = list(counts)[int(np.flatnonzero(out_of_range)[0])]
        raise bad(f"bad n-gram entry {bad_gram!r}: {counts[bad_gram]!r}")
    logp = dict(zip(counts, np.log(arr / total).tolist()))
    cal = doc.get("calibration", {})
    if not isinstance(cal, dict):
        raise bad("calibration must be an object")
    meta = {k: v for k, v in doc.items() if k in ("language", "sentences", "held_out")}
    return Profile(logp, tuple(orders), {k: dict(v) for k, v in cal.items() if isinstance(v, dict)}, meta)


def read_profile(path: Path) -> Profile:
    """Read and validate a profile file (JSON only; never anything executable)."""
    try:
        if path.stat().st_size > MAX_PROFILE_BYTES:
            raise BundleError(f"{path}: language profile larger than {MAX_PROFILE_BYTES} bytes")
        doc = safejson.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the language profile ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{path}: language profile is not valid JSON ({exc})") from None
    return parse_profile(doc, str(path))


def average_logp(profile: Profile, text: str) -> tuple[float, int]:
    """Mean log-probability per n-gram of ``text`` under one profile, and the n-gram count."""
    grams = ngrams(text, profile.orders)
    if not grams:
        return UNSEEN_LOGP, 0
    get = profile.logp.get
    return sum(get(g, UNSEEN_LOGP) for g in grams) / len(grams), len(grams)
