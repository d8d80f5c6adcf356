"""The annotator: raw text in, typed character spans out.

Pipeline per call: sentence chunking (``segment``) → word splitting (``pretokenize``, the same
function the build pipeline trains with) → subword ids from the bundle's ``tokenizer.json`` →
windows of at most ``max_length`` tokens with ``stride`` overlap → batched model run →
subword-to-word aggregation → constrained IOB2 decoding → spans mapped back to the original
string.  Offsets always come from the word splitter's spans over the caller's string, never
from re-joined text, which is what makes ``text[e.start:e.end] == e.text`` hold for any input.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .backend import Backend, OnnxBackend
from .bundle import Bundle, open_bundle, verify_output_width
from .decoding import AGGREGATIONS, LabelScheme, aggregate, decode_batch, spans
from .entity import Entity
from .errors import BundleError, EdgeFinerError
from .pretokenize import _WORD
from .segment import iter_sentences
from .windows import owned_windows

#: Sentences handed to the model per internal chunk: bounds memory on huge inputs while
#: keeping batches full.
SENTENCES_PER_CHUNK = 512

_cache: dict[tuple[Any, ...], "Annotator"] = {}
_cache_lock = threading.Lock()


class Annotator:
    """Annotates text with one bundle.  Thread-safe; create once, share freely.

    The onnxruntime session and tokenizer are created on first use, so listing or routing
    among many bundles costs only their manifests.
    """

    def __init__(
        self,
        bundle: Bundle,
        backend: Backend | None = None,
        *,
        threads: int | None = None,
        arena: bool = True,
        aggregation: str | None = None,
        threshold: float | None = None,
        batch_size: int = 32,
    ) -> None:
        decoding = bundle.manifest.get("decoding", {})
        self.bundle = bundle
        self.aggregation = aggregation or decoding.get("aggregation", "first")
        if self.aggregation not in AGGREGATIONS:
            raise EdgeFinerError(
                f"aggregation must be one of {', '.join(AGGREGATIONS)}, not {self.aggregation!r}"
            )
        self.threshold = float(decoding.get("threshold", 0.0) if threshold is None else threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise EdgeFinerError(f"threshold must be between 0 and 1, not {self.threshold}")
        self.threads = threads
        self.arena = arena
        self.batch_size = max(1, batch_size)
        self.scheme = LabelScheme.from_labels(bundle.labels)
        self.coarse = {t: bundle.coarse_groups.get(t, t) for t in self.scheme.types if t}
        self.max_tokens = int(bundle.manifest["max_length"]) - 2  # room for bos/eos
        self.stride = int(bundle.manifest["stride"])
        inp = bundle.manifest["input"]
        self.bos_id, self.eos_id, self.pad_id = int(inp["bos_id"]), int(inp["eos_id"]), int(inp["pad_id"])
        self._backend = backend
        self._tokenizer: Any = None
        self._init_lock = threading.Lock()

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike[str] | None = None,
        *,
        lang: str | None = None,
        taxonomy: str | None = None,
        threads: int | None = None,
        arena: bool = True,
        aggregation: str | None = None,
        threshold: float | None = None,
    ) -> "Annotator":
        """Find a bundle (path, name, or language) and return its cached annotator.

        Lookup order: explicit path, ``EDGE_FINER_BUNDLES``, the user data folder, the shipped
        bundles (see ``docs/bundle-format.md``).  The bundle is verified once per process.
        """
        from .registry import resolve

        path = resolve(name_or_path, lang=lang, taxonomy=taxonomy)
        key = (str(path.resolve()), threads, arena, aggregation, threshold)
        with _cache_lock:
            hit = _cache.get(key)
            if hit is None:
                hit = cls(open_bundle(path), threads=threads, arena=arena,
                          aggregation=aggregation, threshold=threshold)
                _cache[key] = hit
            return hit

    def warm_up(self) -> "Annotator":
        """Create the session and tokenizer now (and check the model against the labels)."""
        self._ensure_ready()
        return self

    def _ensure_ready(self) -> None:
        if self._tokenizer is not None:
            return
        with self._init_lock:
            if self._tokenizer is not None:
                return
            from tokenizers import Tokenizer

            if self._backend is None:
                backend = OnnxBackend(self.bundle.model_path, threads=self.threads, arena=self.arena)
                verify_output_width(self.bundle, backend.output_width)
                self._backend = backend
            try:
                tok = Tokenizer.from_file(str(self.bundle.tokenizer_path))
            except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
                raise BundleError(f"{self.bundle.tokenizer_path}: not a valid tokenizer ({exc})") from None
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok

    @property
    def backend(self) -> Backend:
        self._ensure_ready()
        assert self._backend is not None
        return self._backend

    # -- public API -----------------------------------------------------------------------

    def annotate(self, text: str) -> list[Entity]:
        """Entities in ``text``, sorted by position, offsets into ``text`` itself."""
        return list(self.iter_entities(text))

    def annotate_batch(self, texts: Sequence[str]) -> list[list[Entity]]:
        """Entities for each text; sentences of all texts share model batches."""
        return list(self.stream(texts))

    def stream(self, texts: Iterable[str]) -> Iterator[list[Entity]]:
        """Yield the entities of each text in order, reading ``texts`` lazily.

        Texts are grouped until about ``SENTENCES_PER_CHUNK`` sentences are pending, so short
        texts share model batches while memory stays flat however many texts come through.
        """
        self._ensure_ready()
        group: list[str] = []
        sentences: list[tuple[int, int, int]] = []  # (index in group, start, end)
        for text in texts:
            if not isinstance(text, str):
                raise EdgeFinerError(f"expected str, got {type(text).__name__}")
            group.append(text)
            sentences.extend((len(group) - 1, a, b) for a, b in iter_sentences(text))
            if len(sentences) >= SENTENCES_PER_CHUNK:
                yield from self._run_group(group, sentences)
                group, sentences = [], []
        if group:
            yield from self._run_group(group, sentences)

    def _run_group(self, group: list[str], sentences: list[tuple[int, int, int]]) -> list[list[Entity]]:
        results: list[list[Entity]] = [[] for _ in group]
        for i in range(0, len(sentences), SENTENCES_PER_CHUNK):
            part = sentences[i:i + SENTENCES_PER_CHUNK]
            found = self._annotate_sentences([(group[t], a, b) for t, a, b in part])
            for (t, _, _), ents in zip(part, found):
                results[t].extend(ents)
        return results

    def iter_entities(self, text: str) -> Iterator[Entity]:
        """Entities of one (possibly huge) text, produced chunk by chunk."""
        if not isinstance(text, str):
            raise EdgeFinerError(f"text is {type(text).__name__}, not str")
        self._ensure_ready()
        chunk: list[tuple[str, int, int]] = []
        for a, b in iter_sentences(text):
            chunk.append((text, a, b))
            if len(chunk) >= SENTENCES_PER_CHUNK:
                for ents in self._annotate_sentences(chunk):
                    yield from ents
                chunk = []
        if chunk:
            for ents in self._annotate_sentences(chunk):
                yield from ents

    def __call__(self, text: str) -> list[Entity]:
        return self.annotate(text)

    def __repr__(self) -> str:
        return f"Annotator({self.bundle.name!r}, path={str(self.bundle.path)!r})"

    # -- the pipeline ---------------------------------------------------------------------

    def _annotate_sentences(self, sentences: list[tuple[str, int, int]]) -> list[list[Entity]]:
        """Entities per sentence; each item is ``(text, start, end)`` of one sentence."""
        word_spans: list[list[tuple[int, int]]] = []
        word_lists: list[list[str]] = []
        for text, a, b in sentences:
            found = [m.span() for m in _WORD.finditer(text, a, b)]
            word_spans.append(found)
            word_lists.append([text[s:e] for s, e in found])
        out: list[list[Entity]] = [[] for _ in sentences]
        live = [k for k, w in enumerate(word_lists) if w]
        if not live:
            return out
        encodings = self._tokenizer.encode_batch(
            [word_lists[k] for k in live], is_pretokenized=True, add_special_tokens=False
        )
        # windows: (sentence, ids, word index per token, owned token range)
        windows: list[tuple[int, np.ndarray, np.ndarray, int, int]] = []
        for k, enc in zip(live, encodings):
            ids = np.asarray(enc.ids, dtype=np.int64)
            wids = np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64)
            keep = wids >= 0
            if not keep.all():
                ids, wids = ids[keep], wids[keep]
            for s, e, lo, hi in owned_windows(wids, self.max_tokens, self.stride):
                if s > 0 and wids[s - 1] == wids[s]:
                    # The window opens inside a word longer than a window: its first token is
                    # not that word's first subword, so this window must not label the word.
                    lo = max(lo, s + 1)
                windows.append((k, ids[s:e], wids[s:e], lo - s, hi - s))
        word_probs = {k: self._o_rows(len(word_lists[k])) for k in live}
        for batch in self._batches(windows):
            probs = self._run_batch([w[1] for w in batch])
            for row, (k, _, wids, lo, hi) in enumerate(batch):
                if wids.size == 0:
                    continue
                first, rows = aggregate(probs[row, 1:1 + wids.size], wids, self.aggregation)
                owned = (first >= lo) & (first < hi)
                word_probs[k][wids[first[owned]]] = rows[owned]
        decoded = decode_batch([word_probs[k] for k in live], self.scheme)
        for k, tags in zip(live, decoded):
            out[k] = self._entities(sentences[k][0], word_spans[k], word_probs[k], tags)
        return out

    def _o_rows(self, n: int) -> np.ndarray:
        """Probabilities for words the tokenizer dropped entirely: certainly not entities."""
        rows = np.zeros((n, len(self.scheme.labels)), dtype=np.float32)
        rows[:, self.scheme.labels.index("O")] = 1.0
        return rows

    def _batches(self, windows: list[Any]) -> Iterator[list[Any]]:
        # Longest first and similar lengths together: padding waste is what costs here.
        order = sorted(range(len(windows)), key=lambda i: -windows[i][1].size)
        for i in range(0, len(order), self.batch_size):
            yield [windows[j] for j in order[i:i + self.batch_size]]

    def _run_batch(self, seqs: list[np.ndarray]) -> np.ndarray:
        width = max(s.size for s in seqs) + 2
        ids = np.full((len(seqs), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for r, s in enumerate(seqs):
            ids[r, 0] = self.bos_id
            ids[r, 1:1 + s.size] = s
            ids[r, 1 + s.size] = self.eos_id
            mask[r, :s.size + 2] = 1
        logits = np.asarray(self.backend.run(ids, mask), dtype=np.float32)
        if logits.ndim != 3 or logits.shape[-1] != len(self.scheme.labels):
            raise BundleError(
                f"{self.bundle.model_path}: model returned shape {logits.shape}, expected "
                f"(batch, tokens, {len(self.scheme.labels)})"
            )
        logits -= logits.max(axis=-1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=-1, keepdims=True)
        return logits

    def _entities(self, text: str, word_spans: list[tuple[int, int]], probs: np.ndarray,
                  tags: np.ndarray) -> list[Entity]:
        ents = []
        for first, end, label_index, score in spans(tags, probs, self.scheme):
            if score < self.threshold:
                continue
            start, stop = word_spans[first][0], word_spans[end - 1][1]
            etype = self.scheme.types[label_index]
            ents.append(Entity(start, stop, text[start:stop], etype, self.coarse[etype], round(score, 6)))
        return ents


def clear_cache() -> None:
    """Forget loaded annotators (tests; long-running apps after removing a bundle)."""
    with _cache_lock:
        _cache.clear()


def load(name_or_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Annotator:
    """Shorthand for :meth:`Annotator.load`."""
    return Annotator.load(name_or_path, **kwargs)


__all__ = ["Annotator", "Entity", "load", "clear_cache", "Path"]
