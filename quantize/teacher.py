"""The teacher: a user's local fine-tuned token classifier, or one trained here from scratch.

Why refuse hub ids: a build must be reproducible and offline, and nothing in edge-finer may
download.  A teacher that is not an existing folder is refused with a message saying what to
do.  Supported families are the two whose tokenizers the trimmer understands: ``bert``
(WordPiece) and ``xlm-roberta`` (Unigram).  The labels are the teacher's ``id2label``, in order.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .encode import Window
from .errors import TeacherError
from .progress import Reporter
from .train import Schedule, fit

FAMILY_OF = {"bert": "bert", "xlm-roberta": "xlm-roberta"}


@dataclass
class TeacherInfo:
    folder: Path
    family: str
    labels: list[str]


def resolve_teacher(spec: str, root: Path) -> Path:
    """An existing local folder for ``spec``, or a :class:`TeacherError` saying why not."""
    p = Path(spec).expanduser()
    p = p if p.is_absolute() else (root / p)
    if p.is_dir():
        return p.resolve()
    looks_like_hub = not spec.startswith((".", "/", "~")) and spec.count("/") <= 1 and not p.exists()
    if looks_like_hub:
        raise TeacherError(
            f"teacher {spec!r} is not a local folder; edge-finer never downloads models. Download it "
            f"yourself (e.g. `huggingface-cli download {spec} --local-dir ./teachers/{spec.split('/')[-1]}`) "
            "and set teacher.path to that folder")
    raise TeacherError(f"teacher folder {p} does not exist")


def inspect_teacher(folder: Path) -> TeacherInfo:
    """Family and IOB2 labels of a local teacher folder, read from its config.json only."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise TeacherError(f"{folder}: no config.json; a teacher is a transformers model folder")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TeacherError(f"{cfg_path}: not valid JSON ({exc})") from None
    mtype = cfg.get("model_type")
    if mtype not in FAMILY_OF:
        raise TeacherError(f"{cfg_path}: model_type {mtype!r} is not supported (use a BERT/WordPiece or "
                           "XLM-R/Unigram token classifier)")
    id2label = cfg.get("id2label") or {}
    try:
        labels = [id2label[str(i)] for i in range(len(id2label))]
    except KeyError:
        raise TeacherError(f"{cfg_path}: id2label ids are not 0..n-1") from None
    if not labels or all(lab.startswith("LABEL_") for lab in labels):
        raise TeacherError(f"{cfg_path}: id2label has no entity labels; the teacher must be fine-tuned "
                           "for token classification")
    for lab in labels:
        if not (lab == "O" or (lab[:2] in ("B-", "I-") and len(lab) > 2)):
            raise TeacherError(f"{cfg_path}: label {lab!r} is not IOB2 (O, B-TYPE, I-TYPE)")
    if "O" not in labels:
        raise TeacherError(f"{cfg_path}: the labels have no 'O'")
    return TeacherInfo(folder, FAMILY_OF[mtype], labels)


def model_classes(family: str) -> tuple[Any, Any]:
    from transformers import BertConfig, BertForTokenClassification, XLMRobertaConfig, XLMRobertaForTokenClassification

    return {"bert": (BertConfig, BertForTokenClassification),
            "xlm-roberta": (XLMRobertaConfig, XLMRobertaForTokenClassification)}[family]


def make_config(family: str, vocab_size: int, layers: int, hidden: int, heads: int, intermediate: int,
                labels: list[str], max_length: int, special: dict[str, int], dropout: float,
                kernel: int = 3, dilations: list[int] | None = None) -> Any:
    """A config for a from-scratch model of ``family`` (transformers', or :mod:`.convnet`'s).

    XLM-R numbers positions from ``pad_id + 1``, so it needs ``pad_id + 1`` extra rows.
    """
    if family == "cnn":
        from .convnet import make_conv_config

        return make_conv_config(vocab_size, layers, hidden, kernel, labels, special["pad_id"], dropout, dilations)
    config_cls, _ = model_classes(family)
    extra = special["pad_id"] + 1 if family == "xlm-roberta" else 0
    kwargs: dict[str, Any] = dict(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=intermediate, max_position_embeddings=max_length + extra,
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
        num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
        pad_token_id=special["pad_id"],
    )
    if family == "xlm-roberta":
        kwargs.update(bos_token_id=special["bos_id"], eos_token_id=special["eos_id"], type_vocab_size=1)
    return config_cls(**kwargs)


def load_model(folder: Path) -> torch.nn.Module:
    """A token classifier from a local folder (never the hub), in eval mode."""
    from transformers import AutoModelForTokenClassification

    from .convnet import is_conv_folder, load_conv

    try:
        if is_conv_folder(folder):
            model = load_conv(folder)
        else:
            model = AutoModelForTokenClassification.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # transformers raises many kinds (OSError, ValueError, ...)
        raise TeacherError(f"{folder}: cannot load the model ({exc})") from None
    from .featured import wrap

    return wrap(model, folder).eval()


def new_model(config: Any, features: tuple[Any, int] | None = None) -> torch.nn.Module:
    """A randomly initialised token classifier of ``config`` (with hashed word features when
    ``features`` = ``(FeatureSpec, dim)``)."""
    from .convnet import MODEL_TYPE as CONV, ConvTokenClassifier
    from .featured import FeaturedTokenClassifier

    model = ConvTokenClassifier(config) if config.model_type == CONV else model_classes(config.model_type)[1](config)
    return FeaturedTokenClassifier(model, *features) if features is not None else model


def train_teacher(config: Any, windows: list[Window], sched: Schedule, pad_id: int, seed: int,
                  reporter: Reporter, features: tuple[Any, int] | None = None, word_dropout: float = 0.0,
                  unk_id: int | None = None, select: Any = None,
                  form_dropout: float = 0.0, pretrained: torch.nn.Module | None = None,
                  device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, float]]:
    """Train a randomly initialised token classifier on gold labels (cross-entropy).

    ``features`` = ``(FeatureSpec, dim)`` adds hashed word features to its input;
    ``word_dropout`` replaces that share of subword ids by ``unk_id`` in each training batch;
    ``form_dropout`` hides that share of whole words, ids and identifying features
    (:func:`~quantize.encode.drop_forms`);
    ``select`` (a :class:`~quantize.selection.BestCheckpoint`) keeps the best weights on dev;
    ``pretrained`` (a model of this config, e.g. from :mod:`quantize.pretrain`) is copied and
    fine-tuned instead of a random initialisation; ``device``: where it trains (batches are
    built on the CPU and moved there)."""
    from .encode import drop_forms, drop_words, form_columns
    from .featured import forward_kwargs

    torch.manual_seed(seed)
    if pretrained is not None:
        import copy

        model = copy.deepcopy(pretrained)
    else:
        model = new_model(config, features)
    model.to(device)

    gen = torch.Generator().manual_seed(seed)
    columns = form_columns(features[0].kinds) if features is not None else []

    def loss_fn(m: torch.nn.Module, batch: dict[str, torch.Tensor], _: list[int]) -> torch.Tensor:
        if word_dropout > 0 and unk_id is not None:
            batch = drop_words(batch, word_dropout, unk_id, gen)
        if form_dropout > 0 and unk_id is not None:
            batch = drop_forms(batch, form_dropout, unk_id, columns, gen)
        kwargs = forward_kwargs(m, batch)
        return m(**kwargs, labels=batch["labels"].to(kwargs["input_ids"].device)).loss

    facts = fit(model, windows, sched, pad_id, seed, loss_fn, reporter, "teacher", select)
    return model, facts


def count_parameters(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
