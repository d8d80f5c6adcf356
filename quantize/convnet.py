"""A convolutional token classifier: the ``cnn`` family of teachers and students.

Why: a transformer trained from scratch on 5-15k sentences overfits and learns local patterns
slowly; spaCy's NER, which beat our transformer bundles on every small dataset, encodes words
with a few convolution layers over hashed word features.  This model does the same over the
runtime's subword windows, so nothing in the runtime changes: embeddings of the subword ids
plus the hashed word features, then ``layers`` gated convolution blocks (window ``kernel``,
residual, LayerNorm), then a linear classifier read at each word's first subword.  A block may
be dilated (its window reads every ``d``-th position): wider context for the same work per
token, since the shifted copies are simply taken further apart.

Each convolution is written as "concatenate the shifted copies of the sequence, then one
matrix product", so the exported graph is Slice/Concat/MatMul: onnxruntime's dynamic int8
quantisation turns every weight product into the same MatMulInteger kernel the transformer
bundles use.  Positions outside the attention mask are zeroed before every block, so padding
never leaks into a window's real tokens.

A saved model is a folder with ``config.json`` (``model_type: edge-finer-cnn``) and
``model.safetensors``, plus the word-feature files of :mod:`quantize.featured`; it uses the same
``save_pretrained``/``load_model`` calls as a transformers model, and the same vocabulary
trimming (``get_input_embeddings``/``set_input_embeddings``).
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MODEL_TYPE = "edge-finer-cnn"


class ConvConfig(SimpleNamespace):
    """The few numbers a :class:`ConvTokenClassifier` needs, stored as ``config.json``."""

    model_type = MODEL_TYPE

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "model_type": MODEL_TYPE}

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    def block_dilations(self) -> list[int]:
        """Each block's dilation; configs written before dilation existed mean 1 everywhere."""
        return list(getattr(self, "dilations", None) or [1] * self.num_hidden_layers)


def make_conv_config(vocab_size: int, layers: int, hidden: int, kernel: int, labels: list[str], pad_id: int,
                     dropout: float, dilations: list[int] | None = None) -> ConvConfig:
    dilations = list(dilations or [1] * layers)
    if len(dilations) != layers or min(dilations) < 1:
        raise ValueError(f"dilations {dilations}: one integer >= 1 per block ({layers} blocks)")
    return ConvConfig(vocab_size=vocab_size, num_hidden_layers=layers, hidden_size=hidden, kernel_size=kernel,
                      dilations=dilations,
                      # manifest fields shared with the transformer families: no attention heads,
                      # and each block's gated product is 2 × hidden wide
                      num_attention_heads=0, intermediate_size=2 * hidden,
                      id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)},
                      pad_token_id=pad_id, hidden_dropout_prob=dropout)


class ConvBlock(nn.Module):
    """x + dropout(GLU(conv(x))), then LayerNorm; the convolution as shifted copies × one matrix."""

    def __init__(self, hidden: int, kernel: int, dropout: float, dilation: int = 1) -> None:
        super().__init__()
        self.kernel = kernel
        self.dilation = dilation
        self.dense = nn.Linear(kernel * hidden, 2 * hidden)
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x * mask
        half, d = self.kernel // 2, self.dilation
        padded = F.pad(x, (0, 0, half * d, (self.kernel - 1 - half) * d))
        length = x.shape[1]
        window = torch.cat([padded[:, k * d:k * d + length] for k in range(self.kernel)], dim=-1)
        a, b = self.dense(window).chunk(2, dim=-1)
        return self.norm(x + self.dropout(a * torch.sigmoid(b)))


class ConvTokenClassifier(nn.Module):
    """Subword embeddings → gated convolution blocks → per-token label logits."""

    base_model_prefix = "cnn"

    def __init__(self, config: ConvConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden_size
        self.embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        self.embed_norm = nn.LayerNorm(h)
        self.blocks = nn.ModuleList(ConvBlock(h, config.kernel_size, config.hidden_dropout_prob, d)
                                    for d in config.block_dilations())
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(h, config.num_labels)
        nn.init.normal_(self.embeddings.weight, std=0.02)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value

    def encode(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
               inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Each token's state after the last block: what the classifier reads, and what masked-word
        pretraining (:mod:`quantize.pretrain`) trains."""
        x = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        mask = (torch.ones(x.shape[:2], dtype=x.dtype, device=x.device) if attention_mask is None
                else attention_mask.to(x.dtype)).unsqueeze(-1)
        x = self.dropout(self.embed_norm(x))
        for block in self.blocks:
            x = block(x, mask)
        return x

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> Any:
        x = self.encode(input_ids, attention_mask, inputs_embeds)
        logits = self.classifier(self.dropout(x))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return SimpleNamespace(logits=logits, loss=loss)

    def save_pretrained(self, folder: str | Path, **_: Any) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = self.config.to_dict()
        cfg["id2label"] = {str(k): v for k, v in cfg["id2label"].items()}
        (folder / "config.json").write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))


def is_conv_folder(folder: Path) -> bool:
    path = Path(folder) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (OSError, ValueError):
        return False


def load_conv(folder: Path) -> ConvTokenClassifier:
    from safetensors.torch import load_file

    doc = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    doc.pop("model_type", None)
    doc["id2label"] = {int(k): v for k, v in doc["id2label"].items()}
    model = ConvTokenClassifier(ConvConfig(**doc))
    model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
    return model.eval()


def init_conv_student(teacher: ConvTokenClassifier, layers: int, hidden: int, seed: int,
                      from_teacher: bool, dropout: float) -> tuple[ConvTokenClassifier, dict[str, Any]]:
    """A smaller convolutional student; with ``from_teacher`` (same width) it takes the teacher's
    embeddings, classifier and evenly spaced blocks."""
    from .student import default_layer_map

    t_cfg = teacher.config
    lmap = default_layer_map(t_cfg.num_hidden_layers, layers)
    t_dil = t_cfg.block_dilations()
    cfg = ConvConfig(**{**vars(t_cfg), "num_hidden_layers": layers, "hidden_size": hidden,
                        "intermediate_size": 2 * hidden, "hidden_dropout_prob": dropout,
                        "dilations": [t_dil[i] for i in lmap]})  # each block keeps its teacher block's reach
    torch.manual_seed(seed)
    student = ConvTokenClassifier(cfg)
    if not from_teacher or hidden != t_cfg.hidden_size:
        return student, {"init": "random"}
    sd = student.state_dict()
    for name, tensor in teacher.state_dict().items():
        if name.startswith("blocks."):
            continue
        sd[name] = tensor.clone()
    for j, i in enumerate(lmap):
        for key, tensor in teacher.blocks[i].state_dict().items():
            sd[f"blocks.{j}.{key}"] = tensor.clone()
    student.load_state_dict(sd)
    return student, {"init": "teacher", "layer_map": lmap, "hidden_projection": "none"}
