"""The student's shape and its initialisation from the teacher.

Why initialise from the teacher: a small model distils far better from a start that already
encodes the teacher's vocabulary and layers than from noise.  Where shapes match, tensors are
copied; where the hidden size shrinks, every residual-stream axis is projected onto the top
principal directions of the teacher's word embeddings (truncated SVD), so embeddings, layers
and classifier stay expressed in one consistent basis.  Student layers take evenly spaced
teacher layers (12 → 6 takes every other one), attention-inner axes keep their leading heads,
and feed-forward neurons are chosen by weight norm.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Sequence

import torch

from .teacher import model_classes


def student_config(teacher_cfg: Any, layers: int, hidden: int, heads: int, intermediate: int,
                   max_length: int, dropout: float) -> Any:
    """The teacher's config with the student's sizes (labels, vocabulary, specials unchanged)."""
    cfg = copy.deepcopy(teacher_cfg)
    extra = (cfg.pad_token_id + 1) if cfg.model_type == "xlm-roberta" else 0
    cfg.num_hidden_layers, cfg.hidden_size = layers, hidden
    cfg.num_attention_heads, cfg.intermediate_size = heads, intermediate
    cfg.max_position_embeddings = max_length + extra
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = dropout
    cfg.architectures = None
    cfg._name_or_path = ""
    return cfg


def default_layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """Evenly spaced teacher layers ending at the last one: 12→6 gives 1,3,5,7,9,11."""
    if student_layers >= teacher_layers:
        return [min(j, teacher_layers - 1) for j in range(student_layers)]
    return [round((j + 1) * teacher_layers / student_layers) - 1 for j in range(student_layers)]


def projection(word_embeddings: torch.Tensor, hidden: int) -> torch.Tensor | None:
    """``[H_teacher, hidden]`` orthonormal basis of the top principal directions; None if no shrink."""
    h_t = word_embeddings.shape[1]
    if hidden >= h_t:
        return None
    x = word_embeddings.double() - word_embeddings.double().mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return vh[:hidden].T.float().contiguous()


# Axis kinds of every per-layer tensor (first axis, second axis); H = residual stream.
_LAYER_AXES = {
    r"attention\.self\.(query|key|value)\.weight": ("A", "H"),
    r"attention\.self\.(query|key|value)\.bias": ("A",),
    r"attention\.output\.dense\.weight": ("H", "A"),
    r"attention\.output\.dense\.bias": ("H",),
    r"attention\.output\.LayerNorm\.weight": ("G",),
    r"attention\.output\.LayerNorm\.bias": ("H",),
    r"intermediate\.dense\.weight": ("I", "H"),
    r"intermediate\.dense\.bias": ("I",),
    r"output\.dense\.weight": ("H", "I"),
    r"output\.dense\.bias": ("H",),
    r"output\.LayerNorm\.weight": ("G",),
    r"output\.LayerNorm\.bias": ("H",),
}
_OTHER_AXES = {
    r"embeddings\.(word|position|token_type)_embeddings\.weight": ("R", "H"),
    r"embeddings\.LayerNorm\.weight": ("G",),
    r"embeddings\.LayerNorm\.bias": ("H",),
    r"classifier\.weight": ("R", "H"),
    r"classifier\.bias": ("R",),
}


def init_student(teacher: torch.nn.Module, cfg: Any, layer_map: Sequence[int] | None, seed: int,
                 from_teacher: bool = True) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A student model; with ``from_teacher`` its tensors are derived from the teacher's."""
    _, model_cls = model_classes(cfg.model_type)
    torch.manual_seed(seed)
    student = model_cls(cfg)
    facts: dict[str, Any] = {"init": "random"}
    if not from_teacher:
        return student, facts
    t_cfg = teacher.config
    lmap = list(layer_map) if layer_map else default_layer_map(t_cfg.num_hidden_layers, cfg.num_hidden_layers)
    if any(not 0 <= i < t_cfg.num_hidden_layers for i in lmap):
        raise ValueError(f"layer_map {lmap} names a layer the teacher (with {t_cfg.num_hidden_layers}) lacks")
    t_sd = teacher.state_dict()
    prefix = teacher.base_model_prefix
    p = projection(t_sd[f"{prefix}.embeddings.word_embeddings.weight"], cfg.hidden_size)
    s_sd = student.state_dict()
    new_sd: dict[str, torch.Tensor] = {}
    keep_neurons: dict[int, torch.Tensor] = {}
    for name, s_tensor in s_sd.items():
        m = re.match(rf"{prefix}\.encoder\.layer\.(\d+)\.(.+)$", name)
        if m:
            t_layer = lmap[int(m.group(1))]
            t_name = f"{prefix}.encoder.layer.{t_layer}.{m.group(2)}"
            axes = _axes(_LAYER_AXES, m.group(2))
            if axes and "I" in axes and t_layer not in keep_neurons:
                keep_neurons[t_layer] = _neuron_order(t_sd, prefix, t_layer)
            order = keep_neurons.get(t_layer)
        else:
            t_name, axes, order = name, _axes(_OTHER_AXES, name), None
        if t_name not in t_sd or axes is None:
            new_sd[name] = s_tensor
            continue
        new_sd[name] = _fit(t_sd[t_name], s_tensor, axes, p, order)
    student.load_state_dict(new_sd)
    facts = {"init": "teacher", "layer_map": lmap,
             "hidden_projection": "truncated SVD of teacher word embeddings" if p is not None else "none"}
    return student, facts


def _axes(table: dict[str, tuple[str, ...]], name: str) -> tuple[str, ...] | None:
    for pattern, axes in table.items():
        if re.search(pattern + "$", name):
            return axes
    return None


def _neuron_order(t_sd: dict[str, torch.Tensor], prefix: str, layer: int) -> torch.Tensor:
    """Feed-forward neurons of a teacher layer, most important (largest in+out norm) first."""
    base = f"{prefix}.encoder.layer.{layer}"
    w_in = t_sd[f"{base}.intermediate.dense.weight"]
    w_out = t_sd[f"{base}.output.dense.weight"]
    score = w_in.norm(dim=1) * w_out.norm(dim=0)
    return torch.argsort(score, descending=True)


def _fit(t: torch.Tensor, s: torch.Tensor, axes: tuple[str, ...], p: torch.Tensor | None,
         order: torch.Tensor | None) -> torch.Tensor:
    """Teacher tensor ``t`` brought to the student's shape; untouched parts keep ``s``'s init."""
    x = t.clone().float()
    for dim, kind in enumerate(axes):
        if kind == "H" and p is not None:
            x = torch.tensordot(x, p, dims=([dim], [0])).movedim(-1, dim)
        elif kind == "G" and p is not None:  # LayerNorm gain: no basis to rotate it into; keep its scale
            x = torch.full((p.shape[1],), float(x.mean()))
        elif kind == "I" and order is not None:
            x = x.index_select(dim, order[: s.shape[dim]] if s.shape[dim] < x.shape[dim] else order)
    out = s.clone()
    region = tuple(slice(0, min(a, b)) for a, b in zip(out.shape, x.shape))
    out[region] = x[region].to(out.dtype)
    return out


def with_features(student: torch.nn.Module, teacher: torch.nn.Module, spec: Any, dim: int,
                  from_teacher: bool) -> tuple[torch.nn.Module, str]:
    """The student wrapped with a word-feature input; its tables are the teacher's when the
    teacher has the same features, width and hidden size (else a fresh initialisation)."""
    from .featured import FeaturedTokenClassifier

    model = FeaturedTokenClassifier(student, spec, dim)
    t_feats = getattr(teacher, "features", None)
    same = (t_feats is not None and getattr(teacher, "spec", None) == spec
            and t_feats.proj.weight.shape == model.features.proj.weight.shape
            and t_feats.table.weight.shape == model.features.table.weight.shape)
    if from_teacher and same:
        model.features.load_state_dict(t_feats.state_dict())
        return model, "copied from the teacher"
    return model, "random"
