"""Hashed word features: what a word looks like, as a few integer ids per word.

Why: a subword model trained from scratch on 5-15k sentences learns little about words it saw
rarely.  spaCy's NER, which beat our subword-only bundles on small data, feeds its encoder the
lower-cased form, prefix, suffix and shape of every word, hashed into embedding tables; those
generalise to unseen names ("-pur", "-abad", capitalised, all digits).  A bundle whose manifest
has a ``features`` section takes the same signals as a second model input, ``word_features``
(``batch × tokens × kinds``, int64), each subword carrying the ids of the word it belongs to.

This module is the ONE place they are computed: the build pipeline trains on
:func:`word_feature_ids` and the runtime feeds it, so the two can never drift (training /
runtime parity; the tests compare both halves on text in many scripts).  The hash is CRC-32
seeded with the manifest's ``seed`` and the kind's name, so it is the same on every machine,
Python version and process (Python's own ``hash`` is salted per process).  Id 0 is reserved
for "no word" (bos/eos/padding) and never produced by a word.
"""
from __future__ import annotations

import threading
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .scripts import script_of

#: Version of the feature definitions below; a manifest naming another is refused.
FEATURES_VERSION = 1
#: Every kind this version can compute, in a fixed order.
KINDS = ("lower", "prefix1", "prefix2", "prefix3", "prefix4", "suffix1", "suffix2", "suffix3", "suffix4",
         "shape", "script")
#: Name of the model input the features travel in.
INPUT_NAME = "word_features"
#: Distinct words whose ids are remembered (~200 bytes each).
CACHE_WORDS = 32_768


@dataclass(frozen=True)
class FeatureSpec:
    """Which kinds, how many hash buckets (rows of the model's table), and the hash seed."""

    kinds: tuple[str, ...] = KINDS
    buckets: int = 8192
    seed: int = 0
    version: int = FEATURES_VERSION

    @classmethod
    def from_manifest(cls, section: Mapping[str, Any]) -> "FeatureSpec":
        """The spec of a manifest's ``features`` section; ValueError naming what is wrong."""
        if not isinstance(section, Mapping):
            raise ValueError("'features' must be an object")
        version = section.get("version")
        if version != FEATURES_VERSION:
            raise ValueError(f"features version {version!r} is not supported (this runtime computes version "
                             f"{FEATURES_VERSION}); upgrade edge-finer or rebuild the bundle")
        kinds = section.get("kinds")
        if (not isinstance(kinds, list) or not kinds or len(set(kinds)) != len(kinds)
                or any(k not in KINDS for k in kinds)):
            raise ValueError(f"features.kinds must be a non-empty list of distinct names from {list(KINDS)}")
        buckets, seed = section.get("buckets"), section.get("seed")
        if not isinstance(buckets, int) or isinstance(buckets, bool) or not 2 <= buckets <= 1 << 22:
            raise ValueError("features.buckets must be an integer between 2 and 4194304")
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 1 << 32:
            raise ValueError("features.seed must be an integer between 0 and 2**32 - 1")
        if section.get("input", INPUT_NAME) != INPUT_NAME:
            raise ValueError(f"features.input must be {INPUT_NAME!r}")
        return cls(tuple(kinds), buckets, seed, version)

    def to_manifest(self) -> dict[str, Any]:
        return {"version": self.version, "kinds": list(self.kinds), "buckets": self.buckets, "seed": self.seed,
                "input": INPUT_NAME, "hash": "crc32(utf-8 value, start=crc32(f'{seed}:{kind}')) % (buckets - 1) + 1"}


def word_shape(word: str) -> str:
    """``Xxxx``-style shape: upper X, lower x, other letters a, digits d, marks m, the rest as is;
    runs of one class longer than 3 are cut to 3 (``Xxxxxxx`` → ``Xxxx``… ``Xxxx``)."""
    out: list[str] = []
    run = 0
    for ch in word:
        if ch.isdigit():
            c = "d"
        elif ch.isalpha():
            c = "X" if ch.isupper() else "x" if ch.islower() else "a"
        elif unicodedata.category(ch)[0] == "M":
            c = "m"
        else:
            c = ch
        run = run + 1 if out and out[-1] == c else 1
        if run <= 3:
            out.append(c)
    return "".join(out)


def word_script(word: str) -> str:
    """ISO 15924 code of the word's first letter ("" for words without one: digits, punctuation)."""
    for ch in word:
        code = script_of(ch)
        if code is not None:
            return code
    return ""


def feature_values(word: str, kinds: Sequence[str] = KINDS) -> list[str]:
    """The feature strings of one word, in the order of ``kinds`` (before hashing)."""
    low = word.casefold()
    out = []
    for kind in kinds:
        if kind == "lower":
            out.append(low)
        elif kind.startswith("prefix"):
            out.append(low[:int(kind[6:])])
        elif kind.startswith("suffix"):
            out.append(low[-int(kind[6:]):])
        elif kind == "shape":
            out.append(word_shape(word))
        else:
            out.append(word_script(word))
    return out


class WordFeaturizer:
    """Feature ids for words, with a bounded cache of distinct words.  Thread-safe."""

    def __init__(self, spec: FeatureSpec, capacity: int = CACHE_WORDS) -> None:
        self.spec = spec
        self.capacity = capacity
        self._starts = [zlib.crc32(f"{spec.seed}:{kind}".encode()) for kind in spec.kinds]
        self._cache: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def ids_of(self, word: str) -> tuple[int, ...]:
        """The ids of one word, one per kind, each in ``1 .. buckets - 1``."""
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        mod = self.spec.buckets - 1
        ids = tuple(zlib.crc32(value.encode("utf-8", "surrogatepass"), start) % mod + 1
                    for value, start in zip(feature_values(word, self.spec.kinds), self._starts))
        with self._lock:
            if len(self._cache) >= self.capacity:
                self._cache.clear()  # crude but bounded; the next text's words refill it at once
            self._cache[word] = ids
        return ids

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        """``(len(words), kinds)`` int64 ids (:func:`word_feature_ids` with this spec)."""
        out = np.empty((len(words), len(self.spec.kinds)), dtype=np.int64)
        ids_of = self.ids_of
        for i, word in enumerate(words):
            out[i] = ids_of(word)
        return out


_featurizers: dict[FeatureSpec, WordFeaturizer] = {}


def word_feature_ids(words: Sequence[str], spec: FeatureSpec) -> np.ndarray:
    """``(len(words), len(spec.kinds))`` int64 feature ids: the function both halves call."""
    fz = _featurizers.get(spec)
    if fz is None:
        fz = _featurizers.setdefault(spec, WordFeaturizer(spec))
    return fz(words)
