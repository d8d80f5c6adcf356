"""Words → model windows, exactly as the runtime feeds them.

Why this is its own module: the training/runtime parity rule.  The runtime encodes word lists
with ``encode_batch(..., is_pretokenized=True, add_special_tokens=False)``, drops tokens that
belong to no word, cuts sequences longer than ``max_length - 2`` into word-aligned windows that
overlap by about ``stride`` tokens, and wraps each as ``[bos] + ids + [eos]``.  Teacher
training, distillation and the trimming check all go through :func:`encode` so they see the
same ids; labels sit on the FIRST subword of each word (the runtime's ``first`` aggregation).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from edge_finer.features import FeatureSpec, word_feature_ids
from edge_finer.windows import word_windows

IGNORE = -100


@dataclass
class Window:
    """One model input row: ids with bos/eos, gold label per position, first-subword mask."""

    ids: np.ndarray  # int64 [T]
    labels: np.ndarray  # int64 [T]; IGNORE where no gold (non-first subword, special, unlabelled)
    first: np.ndarray  # bool [T]; first subword of a word
    feats: np.ndarray | None = None  # int64 [T, kinds]; the word's feature ids per token, 0 on bos/eos
    sentence: int = -1  # index of its sentence in the list given to :func:`encode`
    first_word: int = 0  # index (in that sentence) of the first word that STARTS in this window
    words: np.ndarray | None = None  # int64 [n_first]; the sentence word index of each first subword


def encode(tok: Tokenizer, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None,
           label2id: dict[str, int] | None, max_length: int, stride: int, bos_id: int, eos_id: int,
           batch: int = 512, features: FeatureSpec | None = None) -> list[Window]:
    """Encode word lists (and optional IOB2 tags) into windows; see the module docstring.

    With ``features`` each window also carries every token's word feature ids, computed by the
    runtime's own :func:`edge_finer.features.word_feature_ids`."""
    out: list[Window] = []
    cap = max_length - 2
    for lo in range(0, len(sentences), batch):
        chunk = [list(ws) for ws in sentences[lo:lo + batch]]
        live = [k for k, ws in enumerate(chunk) if ws]
        encs = tok.encode_batch([chunk[k] for k in live], is_pretokenized=True, add_special_tokens=False)
        for k, enc in zip(live, encs):
            ids = np.asarray(enc.ids, dtype=np.int64)
            wids = np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64)
            keep = wids >= 0
            ids, wids = ids[keep], wids[keep]
            if ids.size == 0:
                continue
            first = np.diff(wids, prepend=-1) != 0
            tok_feats = word_feature_ids(chunk[k], features)[wids] if features is not None else None
            gold = np.full(ids.size, IGNORE, dtype=np.int64)
            if tags is not None and label2id is not None:
                sent_tags = tags[lo + k]
                gold[first] = [label2id[sent_tags[w]] for w in wids[first]]
            for s, e in word_windows(wids, cap, stride):
                w_first = first[s:e]
                out.append(Window(
                    ids=np.concatenate(([bos_id], ids[s:e], [eos_id])).astype(np.int64),
                    labels=np.concatenate(([IGNORE], np.where(w_first, gold[s:e], IGNORE), [IGNORE])),
                    first=np.concatenate(([False], w_first, [False])),
                    feats=None if tok_feats is None else np.pad(tok_feats[s:e], ((1, 1), (0, 0))),
                    sentence=lo + k, first_word=int(wids[s]) + (0 if first[s] else 1),
                    words=wids[s:e][w_first],
                ))
    return out


def batches(windows: Sequence[Window], batch_size: int, pad_id: int, rng: random.Random | None,
            ) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """Length-bucketed, shuffled batches: similar lengths together waste little padding.

    Yields ``(window indices, tensors)``; ``rng=None`` keeps a fixed order (evaluation).
    """
    order = sorted(range(len(windows)), key=lambda i: (windows[i].ids.size, i))
    groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    for g in groups:
        yield g, collate([windows[i] for i in g], pad_id)


def collate(ws: Sequence[Window], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(w.ids.size for w in ws)
    ids = np.full((len(ws), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ws), width), dtype=np.int64)
    labels = np.full((len(ws), width), IGNORE, dtype=np.int64)
    first = np.zeros((len(ws), width), dtype=bool)
    for r, w in enumerate(ws):
        n = w.ids.size
        ids[r, :n], mask[r, :n], labels[r, :n], first[r, :n] = w.ids, 1, w.labels, w.first
    out = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
           "labels": torch.from_numpy(labels), "first": torch.from_numpy(first)}
    if ws[0].feats is not None:
        feats = np.zeros((len(ws), width, ws[0].feats.shape[1]), dtype=np.int64)
        for r, w in enumerate(ws):
            feats[r, :w.ids.size] = w.feats
        out["word_features"] = torch.from_numpy(feats)
    return out


def drop_words(batch: dict[str, torch.Tensor], rate: float, unk_id: int,
               gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A copy of ``batch`` whose real subword ids (not bos/eos/padding) are replaced by
    ``unk_id`` with probability ``rate``: word dropout, which makes a model lean on context and
    on the word features instead of memorising the ids of training names."""
    ids = batch["input_ids"]
    real = batch["attention_mask"].bool()
    real[:, 0] = False
    last = batch["attention_mask"].sum(1) - 1
    real[torch.arange(ids.shape[0]), last] = False
    drop = real & (torch.rand(ids.shape, generator=gen) < rate)
    return {**batch, "input_ids": torch.where(drop, torch.full_like(ids, unk_id), ids)}


#: Feature kinds that identify a word (its form and long affixes); :func:`drop_forms` hides them.
FORM_KINDS = ("lower", "prefix3", "prefix4", "suffix3", "suffix4")


def drop_forms(batch: dict[str, torch.Tensor], rate: float, unk_id: int, columns: Sequence[int],
               gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A copy of ``batch`` in which that share of WORDS lose their identity: every subword id of
    the word becomes ``unk_id`` and its identifying feature ids (``columns`` of ``word_features``,
    the :data:`FORM_KINDS`) become 0, the "no value" row.

    Why: subword dropout alone leaves the hashed lower-cased form of a name in the input, so a
    model still memorises training names through it (dev F1 peaks after 2-4 epochs, then falls);
    hiding the whole word makes it read the context, the shape and the short affixes instead."""
    hide = word_mask(batch, rate, gen)
    out = {**batch, "input_ids": torch.where(hide, torch.full_like(batch["input_ids"], unk_id), batch["input_ids"])}
    if columns and "word_features" in batch:
        feats = batch["word_features"].clone()
        cols = torch.as_tensor(list(columns), dtype=torch.long)
        sub = feats[:, :, cols]
        feats[:, :, cols] = torch.where(hide.unsqueeze(-1), torch.zeros_like(sub), sub)
        out["word_features"] = feats
    return out


def word_mask(batch: dict[str, torch.Tensor], rate: float, gen: torch.Generator) -> torch.Tensor:
    """``(batch, tokens)`` bool: every subword of each word drawn with probability ``rate``
    (whole words, never a window's bos/eos or padding)."""
    first = batch["first"]
    word = torch.cumsum(first.long(), dim=1)  # 1.. for the words' subwords; 0 before the first word
    hide_word = torch.rand((first.shape[0], first.shape[1] + 1), generator=gen) < rate
    hide = torch.gather(hide_word, 1, word) & (word > 0) & batch["attention_mask"].bool()
    # a window's bos/eos are never `first` and the eos is past the last word: keep them
    hide[:, 0] = False
    last = batch["attention_mask"].sum(1) - 1
    hide[torch.arange(hide.shape[0]), last] = False
    return hide


def form_columns(kinds: Sequence[str]) -> list[int]:
    """Columns of ``word_features`` (a spec's ``kinds``, in order) that :func:`drop_forms` hides."""
    return [k for k, kind in enumerate(kinds) if kind in FORM_KINDS]
