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
from .decoding import AGGREGATIONS, LabelScheme, aggregate, decode_flat, spans_flat
from .entity import Entity
from .errors import BundleError, EdgeFinerError
from .features import WordFeaturizer
from .segment import iter_sentences
from .subwords import WordEncoder
from .tokcheck import load_tokenizer
from .windows import owned_windows

#: Sentences handed to the model per internal chunk: bounds memory on huge inputs while
#: keeping batches full.
SENTENCES_PER_CHUNK = 512

#: Padded tokens per model batch at most (default).  onnxruntime's arena keeps the largest
#: activations it has seen, so one batch of 32 full 128-token windows set the memory of a
#: whole stream: streaming 10 MB peaked at 125 MB before this bound and at 105 MB with it
#: (benchmarks/results/perf.md, "Scaling", before and after), at unchanged speed: sentences of
#: ~22 tokens still go 32 to a batch, and long windows ran no slower in smaller batches.
MAX_BATCH_TOKENS = 1024
#: ``--low-memory``: smaller batches still (92 MB streaming 1 MB on one core, against 130 MB
#: with the arena turned off, the obvious knob: malloc fragments under varying shapes).
LOW_MEMORY_BATCH_TOKENS = 256

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
        max_batch_tokens: int = MAX_BATCH_TOKENS,
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
        self.max_batch_tokens = max(1, max_batch_tokens)
        self.scheme = LabelScheme.from_labels(bundle.labels)
        # per-type thresholds calibrated by the build; an explicit threshold replaces them all
        self.type_thresholds = type_thresholds(bundle, self.scheme) if threshold is None else {}
        self._label_threshold = np.array([self.type_thresholds.get(t, self.threshold) for t in self.scheme.types])
        self.coarse = {t: bundle.coarse_groups.get(t, t) for t in self.scheme.types if t}
        self.max_tokens = int(bundle.manifest["max_length"]) - 2  # room for bos/eos
        self.stride = int(bundle.manifest["stride"])
        inp = bundle.manifest["input"]
        self.bos_id, self.eos_id, self.pad_id = int(inp["bos_id"]), int(inp["eos_id"]), int(inp["pad_id"])
        self._backend = backend
        try:
            spec = bundle.feature_spec
        except ValueError as exc:
            raise BundleError(f"{bundle.path}: {exc}") from None
        self._featurizer = WordFeaturizer(spec) if spec is not None else None
        self._split = bundle.pretokenizer.pattern  # the scheme the model was trained on
        self._tokenizer: Any = None
        self._words: Any = None
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
        max_batch_tokens: int = MAX_BATCH_TOKENS,
    ) -> "Annotator":
        """Find a bundle (path, name, or language) and return its cached annotator.

        Lookup order: explicit path, ``EDGE_FINER_BUNDLES``, the user data folder, the shipped
        bundles (see ``docs/bundle-format.md``).  The bundle is verified once per process.
        """
        from .registry import resolve

        path = resolve(name_or_path, lang=lang, taxonomy=taxonomy)
        key = (str(path.resolve()), threads, arena, aggregation, threshold, max_batch_tokens)
        with _cache_lock:
            hit = _cache.get(key)
            if hit is None:
                hit = cls(open_bundle(path), threads=threads, arena=arena, aggregation=aggregation,
                          threshold=threshold, max_batch_tokens=max_batch_tokens)
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
            if self._backend is None:
                backend = OnnxBackend(self.bundle.model_path, threads=self.threads, arena=self.arena,
                                      labels=len(self.bundle.labels),
                                      feature_kinds=None if self._featurizer is None
                                      else len(self._featurizer.spec.kinds))
                verify_output_width(self.bundle, backend.output_width)
                if backend.takes_features != (self._featurizer is not None):
                    raise BundleError(
                        f"{self.bundle.model_path}: the model {'takes' if backend.takes_features else 'lacks'} "
                        f"the word_features input but the manifest {'has no' if backend.takes_features else 'has a'} "
                        "'features' section; the bundle is inconsistent")
                self._backend = backend
            tok = load_tokenizer(self.bundle.tokenizer_path)  # refuses hostile tokenizers (tokcheck)
            tok.no_truncation()
            tok.no_padding()
            self._words = WordEncoder(tok)
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

    def annotate_tokens(self, tokens: Sequence[str]) -> list[Entity]:
        """Entities over tokens the caller already has (a CoNLL column, a treebank): the model
        sees exactly these tokens; offsets index ``" ".join(tokens)`` and every entity covers
        whole tokens (:func:`edge_finer.tokens.token_tags` turns them into IOB2 tags)."""
        from .tokens import stream_tokens

        return next(stream_tokens(self, [tokens]))

    def stream_tokens(self, sentences: Iterable[Sequence[str]]) -> Iterator[list[Entity]]:
        """:meth:`annotate_tokens` for many token lists, read lazily, sharing model batches."""
        from .tokens import stream_tokens

        return stream_tokens(self, sentences)

    def __call__(self, text: str) -> list[Entity]:
        return self.annotate(text)

    def __repr__(self) -> str:
        return f"Annotator({self.bundle.name!r}, path={str(self.bundle.path)!r})"

    # -- the pipeline ---------------------------------------------------------------------

    def _annotate_sentences(self, sentences: list[tuple[str, int, int]],
                            word_spans: list[list[tuple[int, int]]] | None = None) -> list[list[Entity]]:
        """Entities per sentence; each item is ``(text, start, end)`` of one sentence.

        ``word_spans`` gives each sentence's words instead of the word splitter (pre-tokenised
        input, ``edge_finer/tokens.py``): entities then start and end on those spans.

        All words of the chunk live in one ``(words, labels)`` array (sentence ``k`` is rows
        ``offsets[k]:offsets[k + 1]``), so aggregation, decoding and span finding are a few
        numpy calls per model batch or per chunk rather than per sentence: at ~15 words a
        sentence, per-sentence numpy calls cost more than the model's own glue.
        """
        if word_spans is None:
            word_spans = [[m.span() for m in self._split.finditer(text, a, b)] for text, a, b in sentences]
        offsets = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in word_spans], out=offsets[1:])
        out: list[list[Entity]] = [[] for _ in sentences]
        live = [k for k, w in enumerate(word_spans) if w]
        if not live:
            return out
        word_lists = [[text[s:e] for s, e in spans] for (text, _, _), spans in zip(sentences, word_spans)]
        all_ids, all_words, token_starts = self._words.encode(word_lists)
        feats = (self._featurizer([w for ws in word_lists for w in ws]) if self._featurizer is not None
                 else None)
        # windows: (ids, index among all words per token, owned token range)
        windows: list[tuple[np.ndarray, np.ndarray, int, int]] = []
        for k in live:
            ids = all_ids[token_starts[k]:token_starts[k + 1]]
            wids = all_words[token_starts[k]:token_starts[k + 1]]
            for s, e, lo, hi in owned_windows(wids, self.max_tokens, self.stride):
                if s > 0 and wids[s - 1] == wids[s]:
                    # The window opens inside a word longer than a window: its first token is
                    # not that word's first subword, so this window must not label the word.
                    lo = max(lo, s + 1)
                if e > s:
                    windows.append((ids[s:e], wids[s:e], lo - s, hi - s))
        # Words the tokenizer dropped entirely keep these rows: certainly not entities.
        word_probs = np.zeros((int(offsets[-1]), len(self.scheme.labels)), dtype=np.float32)
        word_probs[:, self.scheme.labels.index("O")] = 1.0
        for batch in self._batches(windows):
            self._scatter(batch, self._run_batch(batch, feats), word_probs)
        tags = decode_flat(word_probs, offsets, self.scheme)
        firsts, ends, labels, scores = spans_flat(tags, word_probs, offsets, self.scheme)
        keep = scores >= self._label_threshold[labels]
        owners = np.searchsorted(offsets, firsts[keep], side="right") - 1
        base = offsets.tolist()
        types, coarse = self.scheme.types, self.coarse
        for k, first, end, label, score in zip(owners.tolist(), firsts[keep].tolist(), ends[keep].tolist(),
                                               labels[keep].tolist(), scores[keep].tolist()):
            text, spans_k = sentences[k][0], word_spans[k]
            start, stop = spans_k[first - base[k]][0], spans_k[end - 1 - base[k]][1]
            etype = types[label]
            out[k].append(Entity(start, stop, text[start:stop], etype, coarse[etype], round(score, 6)))
        return out

    def _scatter(self, batch: list[tuple[np.ndarray, np.ndarray, int, int]], probs: np.ndarray,
                 word_probs: np.ndarray) -> None:
        """Write each word's probabilities from the window that owns it, for a whole batch at once."""
        sizes = np.array([w[1].size for w in batch])
        row_start = np.cumsum(sizes) - sizes
        row = np.repeat(np.arange(len(batch)), sizes)
        pos = np.arange(int(sizes.sum())) - row_start[row]  # token position within its window
        words = np.concatenate([w[1] for w in batch])
        # A word's tokens are contiguous within a window; a window boundary always starts a word.
        new_word = np.empty(words.size, dtype=bool)
        new_word[0] = True
        np.not_equal(words[1:], words[:-1], out=new_word[1:])
        new_word[row_start] = True
        first, rows = aggregate(probs[row, pos + 1], np.cumsum(new_word), self.aggregation)
        lo = np.array([w[2] for w in batch])[row[first]]
        hi = np.array([w[3] for w in batch])[row[first]]
        owned = (pos[first] >= lo) & (pos[first] < hi)
        word_probs[words[first[owned]]] = rows[owned]

    def _batches(self, windows: list[Any]) -> Iterator[list[Any]]:
        """Model batches: longest windows first and similar lengths together (padding waste is
        what costs here), at most ``batch_size`` windows and ``max_batch_tokens`` padded tokens."""
        order = sorted(range(len(windows)), key=lambda i: -windows[i][0].size)
        i = 0
        while i < len(order):
            longest = windows[order[i]][0].size + 2  # the first of a group is its longest
            take = max(1, min(self.batch_size, self.max_batch_tokens // longest))
            yield [windows[j] for j in order[i:i + take]]
            i += take

    def _run_batch(self, batch: list[tuple[np.ndarray, np.ndarray, int, int]],
                   feats: np.ndarray | None) -> np.ndarray:
        """Softmax probabilities for a batch of windows ``(ids, word index per token, …)``;
        ``feats`` holds the word feature ids of every word of the chunk (None: no features)."""
        width = max(w[0].size for w in batch) + 2
        ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        tok_feats = None if feats is None else np.zeros((len(batch), width, feats.shape[1]), dtype=np.int64)
        for r, (s, wids, _, _) in enumerate(batch):
            ids[r, 0] = self.bos_id
            ids[r, 1:1 + s.size] = s
            ids[r, 1 + s.size] = self.eos_id
            mask[r, :s.size + 2] = 1
            if tok_feats is not None:
                tok_feats[r, 1:1 + s.size] = feats[wids]
        logits = np.asarray(self.backend.run(ids, mask) if tok_feats is None
                            else self.backend.run(ids, mask, tok_feats), dtype=np.float32)
        if logits.ndim != 3 or logits.shape[-1] != len(self.scheme.labels):
            raise BundleError(
                f"{self.bundle.model_path}: model returned shape {logits.shape}, expected "
                f"(batch, tokens, {len(self.scheme.labels)})"
            )
        logits -= logits.max(axis=-1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=-1, keepdims=True)
        return logits


def type_thresholds(bundle: Bundle, scheme: LabelScheme) -> dict[str, float]:
    """The manifest's ``decoding.type_thresholds`` (entity type → minimum score), checked: a
    tampered or mistyped value is one clear :class:`BundleError`, never a silent default."""
    raw = bundle.manifest.get("decoding", {}).get("type_thresholds", {})
    where = f"{bundle.path}: manifest decoding.type_thresholds"
    if not isinstance(raw, dict):
        raise BundleError(f"{where} must be an object of entity type → threshold")
    known = {t for t in scheme.types if t}
    out: dict[str, float] = {}
    for etype, value in raw.items():
        if etype not in known:
            raise BundleError(f"{where} names {etype!r}, not one of the bundle's types")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise BundleError(f"{where}[{etype!r}] must be a number between 0 and 1")
        out[etype] = float(value)
    return out


def clear_cache() -> None:
    """Forget loaded annotators (tests; long-running apps after removing a bundle)."""
    with _cache_lock:
        _cache.clear()


def load(name_or_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Annotator:
    """Shorthand for :meth:`Annotator.load`."""
    return Annotator.load(name_or_path, **kwargs)


__all__ = ["Annotator", "Entity", "load", "clear_cache", "Path"]
