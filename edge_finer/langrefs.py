"""Reference language profiles: what 51 languages look like, so the router can name a language
even when no bundle for it is installed.

Why: with only the installed bundles' profiles, text in a language without a bundle was
matched to the closest installed language (German, French, Swedish → English; Marathi,
Nepali, Bhojpuri → Hindi) at confidence 1.0, i.e. annotated by the wrong model without a word.
The router now identifies the language among every language with text in ``../shared/data``
first, and only then looks for a bundle.

The profiles are the same naive-Bayes character n-gram model as a bundle's ``profile.json``
(:mod:`edge_finer.langprofile`: orders 1-4, top 4,000 n-grams, one constant for unseen n-grams),
built by ``python -m quantize.langrefs`` from the train splits and shipped in one compact file,
``edge_finer/data/langrefs.zip``: ``meta.json`` (languages, scripts, calibration, each
language's ranking bias, sources and licences), ``vocab.txt`` (the n-grams) and raw
little-endian arrays (which n-grams each language keeps, and their log-probabilities quantized
to one byte) -- data only, nothing that deserialises objects.  Being the same model, a bundle's own profile (a language the references lack) scores
on the same scale as the references.

Scoring is vectorised: a text's n-grams are hashed with numpy over its code points (a 64-bit
polynomial hash per n-gram), looked up in an open-addressing hash table of one script's
n-grams, and the per-language byte tables are gathered and summed as integers.  That is what
keeps ``--route sentence`` a small share of annotation time (benchmarks/results/routing.md).

The file is opened lazily: its small index (languages, scripts, calibration) on the first
routing that needs it, its tables on the first text whose script several languages write.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import zipfile
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from . import safejson
from .errors import BundleError
from .langprofile import ORDERS, UNSEEN_LOGP, letter_runs, spaced

REFS_FILE = Path(__file__).resolve().parent / "data" / "langrefs.zip"
REFS_FORMAT = "edge-finer-langrefs"
REFS_VERSION = 1
#: ``EDGE_FINER_LANGREFS=/path/file.zip`` reads another reference file; ``0`` turns them off
#: (the router then knows only the installed languages, as before the references existed).
ENV_VAR = "EDGE_FINER_LANGREFS"
MAX_REFS_BYTES = 16 * 1024 * 1024
#: One byte per log-probability: 0 is "unseen" (``UNSEEN_LOGP``), 255 is log-probability 0.
STEP = -UNSEEN_LOGP / 255.0

# 64-bit polynomial hash of an n-gram's code points (arithmetic modulo 2**64).
_P = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xFF51AFD7ED558CCD)  # spreads a hash's high bits into a table slot
_PACKED_ROWS = 65535 // 255  # rows whose bytes a 16-bit lane can sum without overflow
#: n-grams of one batch gathered into a reused buffer (a batch of ``router._chunks`` stays below)
_BUFFER_ROWS = 1 << 17
_SPACE = 32
#: Between the texts of :meth:`ScoreTable._score_short`: never a letter, and not 0.
_SEPARATOR = "\x01"


def quantize_logp(logp: np.ndarray) -> np.ndarray:
    """Log-probabilities → bytes 1..255 (0 stays "unseen")."""
    q = np.rint((np.asarray(logp, dtype=np.float64) - UNSEEN_LOGP) / STEP)
    return np.clip(q, 1, 255).astype(np.uint8)


def text_hashes(text: str, runs: list[str] | None = None) -> np.ndarray:
    """The hashes of exactly the n-grams :func:`edge_finer.langprofile.ngrams` gives, orders 1-4
    (letter runs, case-folded, joined by spaces; unigrams skip the spaces).  ``runs``: the
    text's :func:`letter_runs`, when the caller has them already."""
    runs = letter_runs(text) if runs is None else runs
    if not runs:
        return np.zeros(0, dtype=np.uint64)
    c = np.frombuffer(spaced(runs).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    parts = [c[c != _SPACE]]
    h = c
    for n in ORDERS[1:]:
        if len(c) < n:
            break
        h = h[:-1] * _P + c[n - 1:]
        parts.append(h)
    return np.concatenate(parts)


def batch_hashes(texts: Sequence[str], runs: Sequence[list[str]] | None = None
                 ) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    """The n-gram hashes of several texts at once (what :func:`text_hashes` gives for each).

    Returns (hashes, spans, owners): ``hashes[a:b]`` for each order's ``(a, b)`` in ``spans``
    holds that order's n-grams of all texts, grouped by text in order, and ``owners`` says which
    text each hash belongs to.  One numpy pass instead of one per text: routing a document
    sentence by sentence is then cheap per sentence.  ``runs``: each text's
    :func:`letter_runs`, when the caller has them already (the word scores use them too).
    """
    pieces = [spaced(letter_runs(t) if runs is None else runs[k]) for k, t in enumerate(texts)]
    # texts are separated by NUL (never a letter): an n-gram across a separator is dropped
    c32 = np.frombuffer("\0".join(pieces).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    sep = c32 == 0
    zeros = np.concatenate(([0], np.cumsum(sep)))  # separators before each position
    owner_at = zeros[:-1]
    c = c32.astype(np.uint64)
    keep = ~sep & (c32 != _SPACE)
    parts, owners, spans, pos = [c[keep]], [owner_at[keep]], [], 0
    spans.append((0, len(parts[0])))
    pos = len(parts[0])
    h = c
    for n in ORDERS[1:]:
        if len(c) < n:
            break
        h = h[:-1] * _P + c[n - 1:]
        valid = zeros[n:] == zeros[:len(zeros) - n]  # no separator inside the window
        parts.append(h[valid])
        owners.append(owner_at[:len(h)][valid])
        spans.append((pos, pos + len(parts[-1])))
        pos += len(parts[-1])
    return np.concatenate(parts), spans, np.concatenate(owners)


#: The inverse of ``_P`` modulo 2**64 (``_P`` is odd): lets :func:`gram_hashes` take every
#: n-gram's polynomial hash from one prefix sum.
_P_INV = np.uint64(pow(int(_P), -1, 1 << 64))
_POWERS: list[tuple[np.ndarray, np.ndarray]] = []  # [(P**i, P_INV**i) for i < a length], grown on demand


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``P**i`` and ``P_INV**i`` modulo 2**64 for ``i < n`` (at least), computed once per size."""
    if _POWERS and len(_POWERS[-1][0]) >= n:
        return _POWERS[-1]
    size = max(1024, 1 << (n - 1).bit_length())
    with np.errstate(over="ignore"):
        up, down = np.full(size, _P, dtype=np.uint64), np.full(size, _P_INV, dtype=np.uint64)
        up[0] = down[0] = 1
        up, down = np.cumprod(up, dtype=np.uint64), np.cumprod(down, dtype=np.uint64)
    _POWERS[:] = [(up, down)]  # the larger table serves every shorter batch too
    return _POWERS[-1]


def gram_hashes(grams: Sequence[str]) -> np.ndarray:
    """Hashes of n-gram strings (the same function as :func:`text_hashes`: ``h = h * P + c``
    over the code points), vectorised.  A gram ``c[a:b]`` hashes to ``sum c_j P**(b-1-j)``,
    which is ``P**(b-1) * (S[b-1] - S[a-1])`` with ``S`` the prefix sums of ``c_j P**-j``:
    one pass over all the characters, where a loop over the longest gram's length cost a
    word table's lookup more than the lookup itself."""
    if not grams:
        return np.zeros(0, dtype=np.uint64)
    lengths = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
    ends = np.cumsum(lengths)
    c = np.frombuffer("".join(grams).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    up, down = _powers(len(c))
    with np.errstate(over="ignore"):
        prefix = np.cumsum(c * down[:len(c)], dtype=np.uint64)
        before = np.zeros(len(grams), dtype=np.uint64)
        has_before = ends - lengths > 0
        before[has_before] = prefix[(ends - lengths)[has_before] - 1]
        return up[ends - 1] * (prefix[ends - 1] - before)


@dataclass(frozen=True)
class RefLanguage:
    """One reference language: its index entry (the tables are loaded separately)."""

    code: str
    name: str
    scripts: frozenset[str]
    #: avg log-probability per n-gram of held-out sentences: {"long"|"short": {"p1": ..., "p50": ...}}
    calibration: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: added to the language's ranking score by the router: corrects the offset of a naive-Bayes
    #: score between profiles of different sizes and registers (fitted on the build's held-out
    #: tuning text, ``quantize/route_tuning.py``; 0 in files written before biases)
    bias: float = 0.0

    def percentile(self, short: bool, name: str) -> float | None:
        table = self.calibration.get("short" if short else "long") or self.calibration.get("long") or {}
        value = table.get(name)
        return float(value) if isinstance(value, (int, float)) else None


@dataclass
class References:
    """The reference profiles of one file: index now, tables on first use (thread-safe)."""

    path: Path
    languages: dict[str, RefLanguage]
    meta: dict[str, Any]
    _tables: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    _words: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def has_words(self) -> bool:
        """Whether the file carries word tables (files written before them do not)."""
        return bool(self.meta.get("top_words"))

    def by_script(self, script: str) -> list[str]:
        """Reference languages written in ``script``, in file order."""
        return [code for code, lang in self.languages.items() if script in lang.scripts]

    def table(self, code: str) -> tuple[np.ndarray, np.ndarray]:
        """(n-gram hashes, quantized log-probabilities) of one language; loads all tables once."""
        if self._tables is None:
            with self._lock:
                if self._tables is None:
                    order = [str(e["code"]) for e in self.meta["languages"]]
                    tables = _read_tables(self.path, order)
                    self._tables = {c: t for c, t in tables.items() if c in self.languages}
                    if self.has_words:
                        words = _read_tables(self.path, order, WORD_MEMBERS)
                        self._words = {c: t for c, t in words.items() if c in self.languages}
        return self._tables[code]

    def word_table(self, code: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(word hashes, quantized log-probabilities) of one language; None without word tables."""
        self.table(code)
        return None if self._words is None else self._words.get(code)

    def without(self, codes: Iterable[str]) -> "References":
        """The same references less some languages (the benchmark's "never seen" scenario)."""
        drop = set(codes)
        return References(self.path, {c: v for c, v in self.languages.items() if c not in drop}, self.meta,
                          None if self._tables is None else {c: t for c, t in self._tables.items() if c not in drop},
                          None if self._words is None else {c: t for c, t in self._words.items() if c not in drop})

    def without_biases(self) -> "References":
        """The same references with every language's bias 0 (the router before the biases: the
        benchmark's trade-off table); the tables already read are shared."""
        return References(self.path, {c: dataclasses.replace(v, bias=0.0) for c, v in self.languages.items()},
                          self.meta, self._tables, self._words)


def _bad(path: Path, why: str) -> BundleError:
    return BundleError(f"{path}: not a valid language reference file ({why}); reinstall edge-finer, or set "
                       f"{ENV_VAR}=0 to route among the installed languages only")


def read_references(path: Path) -> References:
    """Open a reference file and read its index (languages, scripts, calibration, provenance)."""
    try:
        if path.stat().st_size > MAX_REFS_BYTES:
            raise _bad(path, f"larger than {MAX_REFS_BYTES} bytes")
        with zipfile.ZipFile(path) as zf:
            meta = safejson.loads(zf.read("meta.json").decode("utf-8"))
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the language references ({exc.strerror or exc})") from None
    except (KeyError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise _bad(path, str(exc) or type(exc).__name__) from None
    if not isinstance(meta, dict) or meta.get("format") != REFS_FORMAT:
        raise _bad(path, f"format must be {REFS_FORMAT!r}")
    if meta.get("version") != REFS_VERSION:
        raise _bad(path, f"version {meta.get('version')!r}; this edge-finer reads version {REFS_VERSION}")
    if list(meta.get("orders", [])) != list(ORDERS) or meta.get("unseen_logp") != UNSEEN_LOGP:
        raise _bad(path, "built for another n-gram model (orders or unseen log-probability differ)")
    langs: dict[str, RefLanguage] = {}
    for entry in meta.get("languages", []):
        try:
            bias = entry.get("bias", 0.0)
            if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not math.isfinite(bias):
                raise ValueError("bias")
            langs[str(entry["code"])] = RefLanguage(str(entry["code"]), str(entry.get("name", entry["code"])),
                                                    frozenset(map(str, entry["scripts"])),
                                                    {k: dict(v) for k, v in entry.get("calibration", {}).items()},
                                                    float(bias))
        except (KeyError, TypeError, ValueError):
            raise _bad(path, f"bad language entry {str(entry)[:80]}") from None
    if not langs:
        raise _bad(path, "no languages")
    return References(path, langs, meta)


#: zip members of the n-gram tables and of the word tables: (vocabulary, offsets, entries, bytes)
GRAM_MEMBERS = ("vocab.txt", "offsets.bin", "grams.bin", "q.bin")
WORD_MEMBERS = ("words.txt", "woffsets.bin", "wgrams.bin", "wq.bin")


def _read_tables(path: Path, order: list[str], members: Sequence[str] = GRAM_MEMBERS
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        with zipfile.ZipFile(path) as zf:
            vocab = zf.read(members[0]).decode("utf-8").split("\n")
            offsets = np.frombuffer(zf.read(members[1]), dtype="<i8")
            grams = np.frombuffer(zf.read(members[2]), dtype="<u4")
            q = np.frombuffer(zf.read(members[3]), dtype=np.uint8)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise _bad(path, str(exc) or type(exc).__name__) from None
    if len(offsets) != len(order) + 1 or offsets[-1] != len(grams) or len(q) != len(grams) \
            or (len(grams) and int(grams.max()) >= len(vocab)):
        raise _bad(path, "tables do not match the index")
    hashes = gram_hashes(vocab)
    return {code: (hashes[grams[offsets[i]:offsets[i + 1]]], q[offsets[i]:offsets[i + 1]])
            for i, code in enumerate(order)}


_cache: dict[str, References | None] = {}
_cache_lock = threading.Lock()


def load_references() -> References | None:
    """The references the router uses (``EDGE_FINER_LANGREFS`` or the shipped file), read once
    per path; None when turned off.  A damaged file raises :class:`BundleError`."""
    setting = os.environ.get(ENV_VAR, "").strip()
    if setting.lower() in ("0", "off", "no", "false", "none"):
        return None
    path = Path(setting).expanduser() if setting else REFS_FILE
    key = str(path)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = read_references(path)
        return _cache[key]


# -- writing (the build side: quantize/langrefs.py) -----------------------------------------


def _table_members(names: Sequence[str], tables: list[tuple[list[str], np.ndarray]]) -> dict[str, bytes]:
    vocab: dict[str, int] = {}
    grams, qs, offsets = [], [], [0]
    for ngrams_, q in tables:
        grams.extend(vocab.setdefault(g, len(vocab)) for g in ngrams_)
        qs.append(np.asarray(q, dtype=np.uint8))
        offsets.append(len(grams))
    if any("\n" in g for g in vocab):
        raise ValueError("an n-gram holds a line break")
    return {names[0]: "\n".join(vocab).encode("utf-8"),
            names[1]: np.asarray(offsets, dtype="<i8").tobytes(),
            names[2]: np.asarray(grams, dtype="<u4").tobytes(),
            names[3]: (np.concatenate(qs) if qs else np.zeros(0, dtype=np.uint8)).tobytes()}


def write_references(path: Path, languages: list[dict[str, Any]], tables: list[tuple[list[str], np.ndarray]],
                     meta: dict[str, Any], words: list[tuple[list[str], np.ndarray]] | None = None) -> None:
    """Write a reference file: ``languages`` (index entries: code, name, scripts, calibration)
    and, in the same order, each language's (n-grams, quantized log-probabilities), and
    optionally its (words, quantized log-probabilities) (``meta`` then says ``top_words``).

    The zip members carry a fixed date, so the same input gives the same bytes.
    """
    doc = {"format": REFS_FORMAT, "version": REFS_VERSION, "orders": list(ORDERS), "unseen_logp": UNSEEN_LOGP,
           "step": STEP, **meta, "languages": languages}
    if words is not None and len(words) != len(tables):
        raise ValueError("one word table per language")
    if words is None:
        doc.pop("top_words", None)
    members = {"meta.json": json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8"),
               **_table_members(GRAM_MEMBERS, tables)}
    if words is not None:
        members.update(_table_members(WORD_MEMBERS, words))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compresslevel=9)
    os.replace(tmp, path)


# -- scoring ---------------------------------------------------------------------------------


class ScoreTable:
    """Several languages' quantized profiles over the union of their n-grams, for one script.

    ``score`` gives each language's mean log-probability per n-gram of a text: a binary search
    per n-gram hash and one integer gather-and-sum, however many languages share the script.
    """

    def __init__(self, codes: Sequence[str], tables: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        self.codes = list(codes)
        if tables:
            allh = np.concatenate([h for h, _ in tables])
            self.vocab, inverse = np.unique(allh, return_inverse=True)
        else:
            self.vocab, inverse = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        # one extra all-zero row: the "unseen" column every missed n-gram points at
        self.matrix = np.zeros((len(self.vocab) + 1, len(self.codes)), dtype=np.uint8)
        pos = 0
        for j, (h, q) in enumerate(tables):
            self.matrix[inverse[pos:pos + len(h)], j] = q
            pos += len(h)
        # rows by descending weight: the n-grams most texts are made of sit together, in a few
        # hundred KB that stay in cache (scoring is bound by these lookups)
        order = np.argsort(-self.matrix[:-1].sum(axis=1, dtype=np.int64), kind="stable")
        self.vocab = self.vocab[order]
        self.matrix[:-1] = self.matrix[order]
        # the same bytes as 16-bit lanes of 64-bit words: summing rows then adds four languages
        # at once with no conversion (twice as fast as a uint8 -> int32 reduction); a lane holds
        # the sum of up to _PACKED_ROWS rows
        lanes = np.zeros((len(self.matrix), -(-len(self.codes) // 4) * 4), dtype=np.uint16)
        lanes[:, :len(self.codes)] = self.matrix
        self._packed = lanes.view(np.uint64)
        self._local = threading.local()
        self._build_index()

    def _build_index(self) -> None:
        """An open-addressing hash table (linear probing, at most a quarter full) from n-gram
        hash to matrix row: one or two probes per n-gram where a binary search needed ~16
        cache misses (it was the largest single cost of routing a sentence)."""
        size = len(self.vocab)
        bits = max(4, int(np.ceil(np.log2(4 * max(size, 1)))))
        self._mask = (1 << bits) - 1
        self._shift = np.uint64(64 - bits)
        self._keys = np.zeros(1 << bits, dtype=np.uint64)
        self._rows = np.full(1 << bits, size, dtype=np.intp)  # == size: an empty slot
        slots = self._slot(self.vocab)
        pending = np.arange(size)
        while len(pending):  # one round places, per free slot, the first n-gram wanting it
            want = slots[pending]
            free = self._rows[want] == size
            taken, first = np.unique(want[free], return_index=True)
            placed = pending[free][first]
            self._rows[taken] = placed
            self._keys[taken] = self.vocab[placed]
            moved = np.ones(size, dtype=bool)
            moved[placed] = False
            pending = pending[moved[pending]]
            slots[pending] = (slots[pending] + 1) & self._mask

    def _slot(self, hashes: np.ndarray) -> np.ndarray:
        return ((hashes * _MIX) >> self._shift).astype(np.intp)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Row of each hash in :attr:`matrix` (the all-zero "unseen" row for a miss)."""
        size = len(self.vocab)
        slots = self._slot(hashes)
        rows = self._rows[slots]
        pending = np.flatnonzero((rows != size) & (self._keys[slots] != hashes))
        while len(pending):
            nxt = (slots[pending] + 1) & self._mask
            slots[pending] = nxt
            got = self._rows[nxt]
            rows[pending] = got
            pending = pending[(got != size) & (self._keys[nxt] != hashes[pending])]
        return rows

    def score_many(self, texts: Sequence[str], runs: Sequence[list[str]] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(mean log-probability per n-gram, texts × languages; n-grams per text).  ``runs``:
        each text's :func:`letter_runs`, when the caller has them (see :func:`batch_hashes`)."""
        count = len(texts)
        if count == 1:  # one text (a document, a lone sentence): no grouping to do
            hashes = text_hashes(texts[0], None if runs is None else runs[0])
            avg = self.score(hashes)[None, :] if len(hashes) else np.full((1, len(self.codes)), UNSEEN_LOGP)
            return avg, np.array([len(hashes)])
        found = [letter_runs(t) for t in texts] if runs is None else runs
        pieces = [spaced(words) for words in found]
        if max(map(len, pieces)) + max(ORDERS) < _PACKED_ROWS:  # sentences: each run fits a lane
            return self._score_short(pieces, [len(words) for words in found])
        hashes, spans, owners = batch_hashes(texts, found)
        width = len(self.codes)
        n = np.bincount(owners, minlength=count)
        sums = np.zeros((count, width), dtype=np.int64)
        if len(self.vocab) and len(hashes):
            packed = self._gathered(self.lookup(hashes))
            # one reduction over every (order, text) block of at most _PACKED_ROWS rows: within
            # an order the hashes are grouped by text, so a block starts where the text or the
            # order changes, and a long text's run is cut every _PACKED_ROWS rows
            change = np.empty(len(owners), dtype=bool)
            change[0] = True
            np.not_equal(owners[1:], owners[:-1], out=change[1:])
            change[[a for a, b in spans if a < b]] = True
            starts = np.flatnonzero(change)
            sizes = np.diff(starts, append=len(owners))
            long = np.flatnonzero(sizes > _PACKED_ROWS)  # a text of many n-grams: cut its run
            if len(long):
                cuts = [np.arange(starts[k] + _PACKED_ROWS, starts[k] + sizes[k], _PACKED_ROWS) for k in long.tolist()]
                starts = np.sort(np.concatenate([starts, *cuts]))
            blocks = np.add.reduceat(packed, starts, axis=0).view(np.uint16)[:, :width]
            # blocks come order by order: gather each text's blocks together and add them
            block_owner = owners[starts]
            by_text = np.argsort(block_owner, kind="stable")
            firsts = np.flatnonzero(np.diff(block_owner[by_text], prepend=-1))
            sums[block_owner[by_text[firsts]]] = np.add.reduceat(blocks[by_text], firsts, axis=0, dtype=np.int64)
        return UNSEEN_LOGP + STEP * sums / np.maximum(n, 1)[:, None], n

    def _score_short(self, pieces: list[str], words: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`score_many` of texts whose n-grams of one order a 16-bit lane can sum
        (``pieces``: each text's letter runs as :func:`edge_finer.langprofile.spaced` joins them; ``words``:
        how many runs each has).

        Every window of the joined texts is hashed, looked up and gathered, those that belong to
        no text included: a unigram space, and a window across the U+0001 between texts.  No
        profile holds a space alone or that control character, so they miss and take the
        all-zero row, unless their 64-bit hash collides with a profile's n-gram, as likely as two
        n-grams colliding, which the tables already accept.  (The separator is not NUL: a leading
        0 vanishes from a polynomial hash, so "\\0ab" would read as "ab".)  Each (order, text) run
        is then one contiguous block and a text's sums are its four blocks added: no per-n-gram
        owner array and no masks, a tenth less time than the general path for a batch of
        sentences (measured side by side)."""
        count, width, k_max = len(pieces), len(self.codes), max(ORDERS)
        lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=count)
        letters = lengths - np.asarray(words, dtype=np.int64) - (lengths > 0)
        n = letters + sum(np.maximum(lengths - k + 1, 0) for k in ORDERS[1:])
        if not len(self.vocab) or not n.any():
            return np.full((count, width), UNSEEN_LOGP), n
        # each text then a separator; k_max more at the end, so every order has a window at each text's start
        joined = _SEPARATOR.join(pieces) + _SEPARATOR * k_max
        c32 = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        c = c32.astype(np.uint64)
        text_starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
        hashes, starts, h, offset = [c], [text_starts], c, 0
        for k in ORDERS[1:]:
            offset += len(h)
            h = h[:-1] * _P + c[k - 1:]
            hashes.append(h)
            starts.append(offset + text_starts)
        rows = self.lookup(np.concatenate(hashes))
        blocks = np.add.reduceat(self._gathered(rows), np.concatenate(starts), axis=0)
        sums = blocks.view(np.uint16)[:, :width].reshape(len(ORDERS), count, width).sum(axis=0, dtype=np.int64)
        return UNSEEN_LOGP + STEP * sums / np.maximum(n, 1)[:, None], n

    def score_words(self, texts: Sequence[str], runs: Sequence[list[str]] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """For a table of *word* profiles: (mean log-probability per word, texts × languages;
        words per text).  A text without words scores ``UNSEEN_LOGP`` everywhere."""
        found = [letter_runs(t) for t in texts] if runs is None else runs
        count, width = len(found), len(self.codes)
        n = np.fromiter(map(len, found), dtype=np.int64, count=count)
        hashes = gram_hashes(list(chain.from_iterable(found)))
        sums = np.zeros((count, width), dtype=np.int64)
        if len(hashes) and len(self.vocab):
            present = np.flatnonzero(n)
            starts = (np.cumsum(n) - n)[present]
            rows = self.lookup(hashes)
            if n.max() <= _PACKED_ROWS:  # each text's words fit a 16-bit lane: sum the packed rows
                blocks = np.add.reduceat(self._gathered(rows), starts, axis=0).view(np.uint16)[:, :width]
            else:
                blocks = np.add.reduceat(self.matrix[rows], starts, axis=0, dtype=np.int64)
            sums[present] = blocks
        return UNSEEN_LOGP + STEP * sums / np.maximum(n, 1)[:, None], n

    def _gathered(self, rows: np.ndarray) -> np.ndarray:
        """``self._packed[rows]``, into a buffer this thread reuses: a fresh multi-MB array per
        batch cost more in page faults than the gather itself."""
        if len(rows) > _BUFFER_ROWS:
            return self._packed[rows]
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = np.empty((_BUFFER_ROWS, self._packed.shape[1]), dtype=np.uint64)
        return np.take(self._packed, rows, axis=0, out=buf[:len(rows)])

    def score(self, hashes: np.ndarray) -> np.ndarray:
        """Mean log-probability per n-gram of the text whose n-gram ``hashes`` are given, per
        language (``UNSEEN_LOGP`` everywhere for a text without n-grams)."""
        n = len(hashes)
        if n == 0 or len(self.vocab) == 0:
            return np.full(len(self.codes), UNSEEN_LOGP)
        # packed lanes summed in blocks a lane can hold, then the blocks (fewer, wider sums)
        blocks = np.add.reduceat(self._packed[self.lookup(hashes)], np.arange(0, n, _PACKED_ROWS), axis=0)
        qsum = blocks.view(np.uint16)[:, :len(self.codes)].sum(axis=0, dtype=np.int64)
        return UNSEEN_LOGP + STEP * qsum / n
