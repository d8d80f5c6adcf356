"""Masked-word pretraining of a from-scratch convolutional encoder on unlabelled text.

Why: the teachers learn every word from the train split alone (5-15k sentences); text without
labels (the language's other corpora in ``../shared/data``) can teach the encoder which words
go together before it learns the tags.  Whole words are hidden (every subword id becomes
``[MASK]``, every word feature of the word becomes the "no value" row, since the hashed
lower-cased form would give the word away) and the encoder's state at each hidden subword
must predict that subword's id.  Only the ``cnn`` family: a transformers teacher comes
pretrained or not at all.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .encode import Window, word_mask
from .errors import BuildError
from .progress import Reporter
from .train import Schedule, fit


def encoder_states(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The states a convolutional token classifier (featured or not) computes before its classifier."""
    from .convnet import ConvTokenClassifier
    from .featured import FeaturedTokenClassifier

    base = model.base if isinstance(model, FeaturedTokenClassifier) else model
    if not isinstance(base, ConvTokenClassifier):
        raise BuildError("masked-word pretraining is for teachers of the 'cnn' family")
    embeds = (model.input_embeddings(batch["input_ids"], batch["word_features"])
              if isinstance(model, FeaturedTokenClassifier) else base.get_input_embeddings()(batch["input_ids"]))
    return base.encode(inputs_embeds=embeds, attention_mask=batch["attention_mask"])


class MaskedWords(nn.Module):
    """The encoder plus a prediction head over the subword vocabulary (thrown away afterwards)."""

    def __init__(self, model: nn.Module, mask_id: int, rate: float, seed: int) -> None:
        super().__init__()
        self.model = model
        self.head = nn.Linear(model.config.hidden_size, model.config.vocab_size)
        self.mask_id = mask_id
        self.rate = rate
        self.gen = torch.Generator().manual_seed(seed)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hide = word_mask(batch, self.rate, self.gen)
        if not bool(hide.any()):
            return self.head.weight.sum() * 0.0  # nothing drawn in this batch: no signal, no NaN
        states = encoder_states(self.model, hide_words(batch, hide, self.mask_id))
        return F.cross_entropy(self.head(states[hide]), batch["input_ids"][hide])


def hide_words(batch: dict[str, torch.Tensor], hide: torch.Tensor, mask_id: int) -> dict[str, torch.Tensor]:
    """``batch`` with the ``hide`` positions' ids set to ``mask_id`` and all their word features
    to 0: nothing of a hidden word is left for the encoder to copy."""
    out = {**batch, "input_ids": torch.where(hide, torch.full_like(batch["input_ids"], mask_id), batch["input_ids"])}
    if "word_features" in batch:
        out["word_features"] = torch.where(hide.unsqueeze(-1), torch.zeros_like(batch["word_features"]),
                                           batch["word_features"])
    return out


def pretrain_masked_words(model: nn.Module, windows: Sequence[Window], sched: Schedule, pad_id: int, seed: int,
                          reporter: Reporter, mask_id: int, rate: float = 0.15) -> dict[str, Any]:
    """Train ``model``'s encoder in place on ``windows`` (labels ignored); returns facts for the
    manifest.  The classifier is untouched: fine-tuning starts it from scratch."""
    if not 0 < rate < 1:
        raise BuildError(f"masked-word rate must be in (0, 1), not {rate}")
    task = MaskedWords(model, mask_id, rate, seed)
    facts = fit(task, windows, sched, pad_id, seed, lambda m, b, _: m(b), reporter, "pretrain")
    model.train()
    return {**facts, "rate": rate, "windows": len(windows)}
