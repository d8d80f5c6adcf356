"""Choosing the training checkpoint by its F1 on the evaluation split.

Why: a model trained from scratch on a few thousand sentences peaks before the end of a long
budget and then memorises; the last weights are not the best.  spaCy's trainer keeps the
checkpoint with the best dev score, and so does this: during training the model is scored
every so often on the recipe's evaluation split (``data.eval``, the dev split — test splits
are never given to a build) and the best weights are restored at the end.

The score is the one users get, cheaply: seqeval strict IOB2 on the runtime's word grid, each
word's labels from its first subword, overlapping windows averaged, constrained Viterbi as in
the runtime.  The evaluate stage still scores the exported int8 model through the runtime.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import numpy as np
import torch

from edge_finer.decoding import LabelScheme, viterbi_batch

from .encode import Window, batches


class DevScorer:
    """Entity F1 of a model on fixed, already-encoded evaluation windows."""

    def __init__(self, windows: Sequence[Window], gold: Sequence[Sequence[str]], labels: Sequence[str],
                 pad_id: int, forward: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor],
                 batch_size: int = 64) -> None:
        self.windows, self.gold, self.labels = list(windows), [list(g) for g in gold], list(labels)
        self.pad_id, self.forward, self.batch_size = pad_id, forward, batch_size

    def __call__(self, model: torch.nn.Module) -> float:
        from .evaluate import score

        pred = predict_tags(model, self.windows, [len(g) for g in self.gold], self.labels, self.pad_id,
                            self.forward, self.batch_size)
        return float(score(self.gold, pred)["f1"])


@torch.no_grad()
def predict_tags(model: torch.nn.Module, windows: Sequence[Window], lengths: Sequence[int], labels: Sequence[str],
                 pad_id: int, forward: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor],
                 batch_size: int = 64) -> list[list[str]]:
    """Each sentence's IOB2 tags as the runtime would give them (see the module docstring);
    ``lengths``: words per sentence, in the order :func:`~quantize.encode.encode` was given them."""
    return tags_of(word_log_probs(model, windows, lengths, len(labels), pad_id, forward, batch_size), labels)


def tags_of(logps: Sequence[np.ndarray], labels: Sequence[str]) -> list[list[str]]:
    """Each sentence's IOB2 tags from its ``(words, labels)`` log-probabilities, by the runtime's
    constrained Viterbi (an empty sentence gets no tags)."""
    paths = viterbi_batch(list(logps), LabelScheme.from_labels(labels))
    return [[labels[int(t)] for t in p] for p in paths]


@torch.no_grad()
def word_log_probs(model: torch.nn.Module, windows: Sequence[Window], lengths: Sequence[int], n: int,
                   pad_id: int, forward: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor],
                   batch_size: int = 64) -> list[np.ndarray]:
    """Each sentence's ``(words, labels)`` log-probabilities: each word's first subword, averaged
    over the windows that hold it (what :func:`predict_tags` decodes)."""
    was_training = model.training
    model.eval()
    sums = [np.zeros((length, n), dtype=np.float32) for length in lengths]
    counts = [np.zeros(length, dtype=np.float32) for length in lengths]
    for idx, batch in batches(windows, batch_size, pad_id, None):
        logp = torch.log_softmax(forward(model, batch).float(), -1).cpu().numpy()
        first = batch["first"].numpy()
        for r, i in enumerate(idx):
            w = windows[i]
            rows = logp[r][first[r]]
            words = w.first_word + np.arange(rows.shape[0])
            keep = words < lengths[w.sentence]
            sums[w.sentence][words[keep]] += rows[keep]
            counts[w.sentence][words[keep]] += 1
    if was_training:
        model.train()
    return [s / np.maximum(c, 1)[:, None] for s, c in zip(sums, counts)]


class BestCheckpoint:
    """Scores a model at chosen steps and remembers the best weights seen (ties: the later)."""

    def __init__(self, scorer: Callable[[torch.nn.Module], float], every: int, start: int = 0) -> None:
        self.scorer, self.every, self.start = scorer, max(1, every), start
        self.best_f1, self.best_step = -1.0, -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[tuple[int, float]] = []

    def due(self, step: int) -> bool:
        return step >= self.start and (step - self.start) % self.every == 0

    def check(self, model: torch.nn.Module, step: int) -> float:
        f1 = self.scorer(model)
        self.history.append((step, round(f1, 4)))
        if f1 >= self.best_f1:
            self.best_f1, self.best_step = f1, step
            self.best_state = copy.deepcopy(model.state_dict())
        return f1

    def restore(self, model: torch.nn.Module) -> dict[str, Any]:
        """Load the best weights into ``model``; the facts for the manifest."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        return {"selected_step": self.best_step, "selected_dev_f1": round(self.best_f1, 4),
                "dev_f1_history": self.history}
