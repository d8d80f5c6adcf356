"""Scoring models through the runtime, on the gold token grid.

Why through the runtime: the figures in a manifest must describe what users get, so every
system — the PyTorch teacher (plugged in as a custom backend), the fp32 student and the int8
student — is run by ``edge_finer.annotator.Annotator`` on raw text (the gold tokens joined by
single spaces, or by nothing next to a Han character under ``han-chars``: Chinese is written
without spaces), with the runtime's own sentence splitting, windowing and IOB2 decoding.  The
predicted character spans are mapped back onto the gold tokens (first overlapping token B-,
the rest I-) and scored with seqeval, strict IOB2, overall and per type.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from edge_finer.annotator import Annotator
from edge_finer.bundle import Bundle
from edge_finer.pretokenize import DEFAULT as DEFAULT_PRETOKENIZER, HAN

from .data import Sentence


class TorchBackend:
    """A PyTorch token classifier behind the runtime's backend interface."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()

    @torch.no_grad()
    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray,
            word_features: np.ndarray | None = None) -> np.ndarray:
        kwargs = {} if word_features is None else {"word_features": torch.from_numpy(word_features)}
        out = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask),
                         **kwargs)
        return out.logits.float().numpy()


@dataclass
class SystemResult:
    scores: dict[str, Any]
    tags: list[list[str]]  # predicted IOB2 per gold token, per sentence
    entities: list[list[Any]]  # the annotator's entities per sentence (for threshold calibration)


_HAN_CHAR = re.compile("[" + HAN + "]")


def gold_text(tokens: Sequence[str], pretokenizer: str = DEFAULT_PRETOKENIZER) -> tuple[str, list[tuple[int, int]]]:
    """The tokens joined as text, and each token's character span in that text.

    Joined by single spaces; under ``han-chars`` no space is put next to a Han character, so
    Chinese is scored as it is written (``北京大学`` rather than ``北 京 大 学``).  Either way the
    runtime's words of the text are the re-split gold tokens (the pipeline's training grid).
    """
    han = pretokenizer == "han-chars"
    parts: list[str] = []
    spans, pos = [], 0
    for k, tok in enumerate(tokens):
        if k:
            glue = "" if han and (_HAN_CHAR.match(tokens[k - 1][-1:]) or _HAN_CHAR.match(tok[:1])) else " "
            parts.append(glue)
            pos += len(glue)
        spans.append((pos, pos + len(tok)))
        parts.append(tok)
        pos += len(tok)
    return "".join(parts), spans


def spans_to_tags(entities: Sequence[Any], token_spans: Sequence[tuple[int, int]]) -> list[str]:
    """IOB2 tags on the gold tokens: first token an entity overlaps is B-, the rest I-."""
    tags = ["O"] * len(token_spans)
    for ent in sorted(entities, key=lambda e: (e.start, e.end)):
        hit = [k for k, (a, b) in enumerate(token_spans) if a < ent.end and b > ent.start and tags[k] == "O"]
        for j, k in enumerate(hit):
            tags[k] = ("B-" if j == 0 else "I-") + ent.label
    return tags


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """seqeval strict IOB2: overall micro P/R/F1 and per-type figures with support."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    report = classification_report(list(map(list, gold)), list(map(list, pred)), mode="strict", scheme=IOB2,
                                    output_dict=True, zero_division=0)
    per_type = {k: {"f1": round(float(v["f1-score"]), 4), "precision": round(float(v["precision"]), 4),
                    "recall": round(float(v["recall"]), 4), "support": int(v["support"])}
                for k, v in report.items() if not k.endswith(" avg")}
    micro = report.get("micro avg", {"f1-score": 0.0, "precision": 0.0, "recall": 0.0})
    return {"f1": round(float(micro["f1-score"]), 4), "precision": round(float(micro["precision"]), 4),
            "recall": round(float(micro["recall"]), 4), "per_type": per_type}


def run_system(annotator: Annotator, speed_annotator: Annotator, sentences: Sequence[Sentence],
               speed_sentences: int, threads: int) -> SystemResult:
    """Annotate the gold texts with ``annotator`` and score them; time ``speed_sentences`` of them
    with ``speed_annotator`` (built for ``threads`` threads, the figure users compare)."""
    key = annotator.bundle.pretokenizer.key
    texts, grids = zip(*(gold_text(s.tokens, key) for s in sentences)) if sentences else ((), ())
    found = annotator.annotate_batch(list(texts))
    pred = [spans_to_tags(ents, grid) for ents, grid in zip(found, grids)]
    result = score([s.tags for s in sentences], pred)
    result["words_per_second"] = round(words_per_second(speed_annotator, list(texts[:speed_sentences]), threads), 1)
    result["threads"] = threads
    return SystemResult(result, pred, list(found))


def words_per_second(annotator: Annotator, texts: list[str], threads: int) -> float:
    """Words (runtime words) per second over ``texts``, best of two passes after a warm-up."""
    if not texts:
        return 0.0
    n_words = sum(len(annotator.bundle.pretokenizer.split(t)) for t in texts)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        annotator.annotate_batch(texts[:8])
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            annotator.annotate_batch(texts)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)
    return n_words / best if best > 0 else 0.0


def token_agreement(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> float:
    """Share of gold tokens on which two systems predict the same tag."""
    total = sum(len(x) for x in a)
    same = sum(p == q for x, y in zip(a, b) for p, q in zip(x, y))
    return same / total if total else 1.0


def staged_bundle(folder: Path, manifest: Mapping[str, Any]) -> Bundle:
    """A :class:`Bundle` view of a folder holding ``model.onnx``/``tokenizer.json`` before the real
    bundle is written (the manifest's ``files`` are not needed by the annotator)."""
    return Bundle(path=folder, manifest=dict(manifest))


#: Entity-score thresholds tried on the evaluation split (0 = keep every decoded entity).
THRESHOLDS = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def calibrate_threshold(found: Sequence[Sequence[Any]], sentences: Sequence[Sentence],
                        pretokenizer: str = DEFAULT_PRETOKENIZER) -> dict[str, Any]:
    """The entity-score threshold that maximises F1 on ``sentences`` (ties: the lowest).

    Why per bundle: how confident a model is when it is right differs by language and data
    (OTTER found per-language thresholds worth about 1.5 F1), and a user should get the best
    default without tuning.  ``found`` are the entities :func:`run_system` already produced
    for these sentences at threshold 0, so nothing is annotated twice: the sweep only filters.
    """
    grids = [gold_text(s.tokens, pretokenizer)[1] for s in sentences]
    gold = [s.tags for s in sentences]
    curve = {}
    for t in THRESHOLDS:
        pred = [spans_to_tags([e for e in ents if e.score >= t], grid) for ents, grid in zip(found, grids)]
        curve[t] = score(gold, pred)["f1"]
    best = max(THRESHOLDS, key=lambda t: (curve[t], -t))
    return {"threshold": best, "f1": curve[best], "f1_at_zero": curve[0.0],
            "curve": {f"{t:.2f}": f for t, f in curve.items()}}
