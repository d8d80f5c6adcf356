"""A word-level teacher member: hashed word features → convolutions over words → labels.

Why: the subword CNN teachers of one recipe make the same mistakes (their mean adds at most
+0.3 F1 over the best of them, benchmarks/results/ensemble_ceiling.md), so more of them cannot
lift the student.  A model of another shape can: spaCy's NER, the peer every bundle is judged
against, reads whole words (hashed form, prefixes, suffixes, shape) through a few
convolutions over *words*, and its errors differ from ours.  This member does the same, is
trained on the same train split, and joins the ensemble whose mean the student learns; it is
never exported (the student keeps the runtime's subword shape), so the runtime is unchanged.

Its features come from the runtime's one feature function (:func:`edge_finer.features.word_feature_ids`)
with the member's own, wider hash table (it has no subword embeddings to fall back on).
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edge_finer.features import FeatureSpec, word_feature_ids

from .encode import Window
from .progress import Reporter

MODEL_TYPE = "edge-finer-word-tagger"
#: Hash buckets of the member's feature table: every distinct word form of a train split of
#: ~10k sentences keeps a row of its own (the subword models share theirs with subword ids).
BUCKETS = 65_536
FEATURE_DIM = 48
HASH_SEED = 0
#: Sentences per forward pass when labelling (no gradients).
EVAL_BATCH = 128
#: The member's own learning rate and dropout ceiling, not the subword teachers': the IL-NER Hindi
#: probe that chose this shape (benchmarks/results/accuracy.md, fifteenth round) trained with them.
LEARNING_RATE = 1e-3
MAX_DROPOUT = 0.2

Sentence = tuple[Sequence[str], Sequence[str]]


class WordTagger(nn.Module):
    """``(batch, words, kinds)`` feature ids → ``(batch, words, labels)`` logits."""

    def __init__(self, labels: Sequence[str], hidden: int = 128, layers: int = 4, dropout: float = 0.2,
                 kinds: int = 0) -> None:
        super().__init__()
        self.labels = list(labels)
        self.hidden, self.layers, self.dropout_p = hidden, layers, dropout
        self.spec = FeatureSpec(buckets=BUCKETS, seed=HASH_SEED)
        kinds = kinds or len(self.spec.kinds)
        self.table = nn.Embedding(BUCKETS, FEATURE_DIM, padding_idx=0)
        self.proj = nn.Linear(kinds * FEATURE_DIM, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.convs = nn.ModuleList(nn.Linear(3 * hidden, 2 * hidden) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, len(self.labels))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.table(ids)
        x = self.drop(self.norm(self.proj(x.reshape(*x.shape[:2], -1))))
        keep = mask.unsqueeze(-1).to(x.dtype)
        for conv, norm in zip(self.convs, self.norms):  # window of three words, gated, residual
            x = x * keep
            p = F.pad(x, (0, 0, 1, 1))
            a, b = conv(torch.cat([p[:, :-2], p[:, 1:-1], p[:, 2:]], dim=-1)).chunk(2, dim=-1)
            x = norm(x + self.drop(a * torch.sigmoid(b)))
        return self.out(self.drop(x))

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(
            {"model_type": MODEL_TYPE, "labels": self.labels, "hidden": self.hidden, "layers": self.layers,
             "dropout": self.dropout_p, "buckets": BUCKETS, "feature_dim": FEATURE_DIM, "hash_seed": HASH_SEED},
            indent=1) + "\n", encoding="utf-8")
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))


def load_word_tagger(folder: Path) -> WordTagger:
    from safetensors.torch import load_file

    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    model = WordTagger(cfg["labels"], cfg["hidden"], cfg["layers"], cfg["dropout"])
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.eval()


def _encode(words: Sequence[str], spec: FeatureSpec) -> torch.Tensor:
    return torch.from_numpy(word_feature_ids(list(words), spec))  # (0, kinds) for no words


def _pad(rows: Sequence[torch.Tensor], kinds: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = max((len(r) for r in rows), default=1) or 1
    ids = torch.zeros(len(rows), n, kinds, dtype=torch.long)
    mask = torch.zeros(len(rows), n, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
        mask[i, :len(r)] = True
    return ids, mask


@torch.no_grad()
def word_log_probs(model: WordTagger, sentences: Sequence[Sequence[str]]) -> list[torch.Tensor]:
    """Each sentence's ``(words, labels)`` log-probabilities (empty sentences give 0 rows)."""
    was = model.training
    model.eval()
    feats = [_encode(ws, model.spec) for ws in sentences]
    out: list[torch.Tensor] = []
    for lo in range(0, len(feats), EVAL_BATCH):
        part = feats[lo:lo + EVAL_BATCH]
        ids, mask = _pad(part, len(model.spec.kinds))
        logp = F.log_softmax(model(ids, mask).float(), dim=-1)
        out.extend(logp[i, :len(r)].clone() for i, r in enumerate(part))
    model.train(was)
    return out


def dev_f1(model: WordTagger, dev: Sequence[Sentence]) -> float:
    """Entity F1 (seqeval strict IOB2) with the runtime's constrained Viterbi, as builds score."""
    from .evaluate import score
    from .selection import tags_of

    pred = tags_of([lp.numpy() for lp in word_log_probs(model, [w for w, _ in dev])], model.labels)
    return float(score([list(t) for _, t in dev], pred)["f1"])


def train_word_tagger(train: Sequence[Sentence], dev: Sequence[Sentence] | None, labels: Sequence[str], seed: int,
                      epochs: float, max_minutes: float, batch_size: int, dropout: float, word_dropout: float,
                      reporter: Reporter) -> tuple[WordTagger, dict[str, Any]]:
    """Train one member; with ``dev`` it is scored after every epoch and its best weights kept
    (as the subword members are).  ``word_dropout`` hides a word's whole form feature (its other
    features stay), so the member also learns to read affixes and context."""
    import copy

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = WordTagger(labels, dropout=min(dropout, MAX_DROPOUT))
    index = {lab: i for i, lab in enumerate(labels)}
    rows = [(_encode(w, model.spec), torch.tensor([index.get(t, index["O"]) for t in tags], dtype=torch.long))
            for w, tags in train if len(w)]
    opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    started, step, epoch = time.monotonic(), 0, 0
    best: tuple[float, dict[str, torch.Tensor] | None, int] = (-1.0, None, 0)
    out_of_time = False
    model.train()
    while epoch < max(1, int(np.ceil(epochs))) and not out_of_time:
        epoch += 1
        order = list(range(len(rows)))
        rng.shuffle(order)
        for lo in range(0, len(order), batch_size):
            part = [rows[i] for i in order[lo:lo + batch_size]]
            ids, mask = _pad([f for f, _ in part], len(model.spec.kinds))
            gold = torch.full(mask.shape, -100, dtype=torch.long)
            for i, (_, g) in enumerate(part):
                gold[i, :len(g)] = g
            if word_dropout > 0:
                hide = (torch.rand(mask.shape) < word_dropout) & mask
                ids[..., 0] = torch.where(hide, torch.zeros_like(ids[..., 0]), ids[..., 0])
            loss = F.cross_entropy(model(ids, mask).reshape(-1, len(labels)), gold.reshape(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if max_minutes and time.monotonic() - started > 60 * max_minutes:
                out_of_time = True
                break
        if dev is not None:
            score = dev_f1(model, dev)
            reporter.note(f"word member epoch {epoch} (step {step}): dev F1 {score:.4f}")
            if score > best[0]:
                best = (score, copy.deepcopy(model.state_dict()), step)
    facts: dict[str, Any] = {"steps": step, "epochs_run": epoch, "seconds": round(time.monotonic() - started, 1)}
    if best[1] is not None:
        model.load_state_dict(best[1])
        facts.update({"dev_f1": round(best[0], 4), "kept_step": best[2]})
    return model.eval(), facts


def window_targets(word_logp: Sequence[torch.Tensor], windows: Sequence[Window]) -> list[torch.Tensor]:
    """The member's log-probabilities at each window's first-subword positions, in the order
    the subword teachers give theirs (``[n_first, labels]`` per window)."""
    out = []
    for w in windows:
        if w.words is None:
            raise ValueError("windows encoded without their word indices; re-encode them")
        out.append(word_logp[w.sentence][torch.from_numpy(w.words)])
    return out
