"""A token classifier whose input embedding also sees hashed word features.

Why a wrapper and not a new architecture: the transformer, its tokenizer, trimming, the
student's initialisation from the teacher and the runtime's windows all stay as they are; the
word features (``edge_finer.features``: lower-cased form, prefixes and suffixes of 1-4
characters, shape, script) are embedded, concatenated, projected to the hidden size and added
to each subword's embedding before the position embeddings and LayerNorm.  A folder holding
``word_features.json`` beside the transformers files is such a model; :func:`load_featured`
reads either kind.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edge_finer.features import FeatureSpec

SPEC_FILE = "word_features.json"
WEIGHTS_FILE = "word_features.safetensors"


class WordFeatureEmbedding(nn.Module):
    """``(batch, tokens, kinds)`` ids → ``(batch, tokens, hidden)``: one table shared by all kinds
    (ids are already hashed per kind), the kinds' vectors concatenated and projected."""

    def __init__(self, buckets: int, kinds: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.table = nn.Embedding(buckets, dim, padding_idx=0)
        self.proj = nn.Linear(kinds * dim, hidden, bias=False)
        nn.init.normal_(self.table.weight, std=0.02)
        with torch.no_grad():
            self.table.weight[0].zero_()
        nn.init.normal_(self.proj.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        vecs = self.table(ids)
        return self.proj(vecs.reshape(vecs.shape[0], vecs.shape[1], -1))


class FeaturedTokenClassifier(nn.Module):
    """A transformers token classifier (``base``) plus word features added to its input embeddings."""

    def __init__(self, base: nn.Module, spec: FeatureSpec, dim: int) -> None:
        super().__init__()
        self.base = base
        self.spec = spec
        self.dim = dim
        self.features = WordFeatureEmbedding(spec.buckets, len(spec.kinds), dim, base.config.hidden_size)

    @property
    def config(self) -> Any:
        return self.base.config

    @property
    def base_model_prefix(self) -> str:
        return self.base.base_model_prefix

    def get_input_embeddings(self) -> nn.Module:
        return self.base.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.base.set_input_embeddings(value)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                word_features: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> Any:
        embeds = self.input_embeddings(input_ids, word_features)
        return self.base(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels)

    def input_embeddings(self, input_ids: torch.Tensor, word_features: torch.Tensor | None) -> torch.Tensor:
        """What the base model reads instead of its own embeddings: subword plus word-feature vectors."""
        if word_features is None:
            raise ValueError("this model needs word_features (see edge_finer.features)")
        return self.base.get_input_embeddings()(input_ids) + self.features(word_features)

    def save_pretrained(self, folder: str | Path, **kwargs: Any) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        self.base.save_pretrained(str(folder), **kwargs)
        save_file({k: v.contiguous() for k, v in self.features.state_dict().items()}, str(folder / WEIGHTS_FILE))
        (folder / SPEC_FILE).write_text(json.dumps({**self.spec.to_manifest(), "dim": self.dim}, indent=1) + "\n",
                                        encoding="utf-8")


def feature_spec_of(folder: Path) -> tuple[FeatureSpec, int] | None:
    """The feature spec and embedding width of a saved featured model; None for a plain one."""
    path = Path(folder) / SPEC_FILE
    if not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    return FeatureSpec.from_manifest(doc), int(doc["dim"])


def wrap(base: nn.Module, folder: Path) -> nn.Module:
    """``base`` wrapped with the word features saved in ``folder`` (``base`` itself if none)."""
    found = feature_spec_of(folder)
    if found is None:
        return base
    from safetensors.torch import load_file

    model = FeaturedTokenClassifier(base, *found)
    model.features.load_state_dict(load_file(str(Path(folder) / WEIGHTS_FILE)))
    return model


def forward_kwargs(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model inputs of a collated batch (``word_features`` only for a featured model), on
    the model's device: batches are built (and word-dropped) on the CPU, so that the same loop
    trains a model moved to a GPU (``train_teacher(device=...)``)."""
    names = ("input_ids", "attention_mask") + (("word_features",) if isinstance(model, FeaturedTokenClassifier) else ())
    device = model_device(model)
    return {k: batch[k].to(device) for k in names}


def logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """A token classifier's logits on a collated batch: the ``forward`` the dev scorer and the
    teachers' labelling take (a module-level function, so that a scorer can be pickled)."""
    return model(**forward_kwargs(model, batch)).logits


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s weights live (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))
