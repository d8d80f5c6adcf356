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

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from edge_finer.annotator import Annotator
from edge_finer.bundle import Bundle
from edge_finer.pretokenize import DEFAULT as DEFAULT_PRETOKENIZER

from .data import Sentence, gold_text  # gold_text: kept importable from here


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


#: Per-type thresholds are kept when their 2-fold cross-validated F1 beats one threshold's by
#: at least this much (F1 as a fraction): a smaller gain is within what refitting on halves moves.
PER_TYPE_MARGIN = 0.002
#: Entity-score thresholds tried on the evaluation split (0 = keep every decoded entity).
THRESHOLDS = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def calibrate_threshold(found: Sequence[Sequence[Any]], sentences: Sequence[Sentence],
                        pretokenizer: str = DEFAULT_PRETOKENIZER, per_type: bool = False) -> dict[str, Any]:
    """The entity-score threshold that maximises F1 on ``sentences`` (ties: the lowest), and
    with ``per_type`` a threshold per entity type on top of it.

    Why per bundle: how confident a model is when it is right differs by language and data
    (OTTER found per-language thresholds worth about 1.5 F1), and a user should get the best
    default without tuning.  Why per type: it differs by type too — a rare type (IL-NER's
    artefacts, MasakhaNER's dates) is right at scores where a frequent one is usually wrong.
    ``found`` are the entities :func:`run_system` already produced for these sentences at
    threshold 0, so nothing is annotated twice: the sweep only filters.

    Per-type thresholds are fitted on the same split they are scored on, so the result also
    carries ``cross_validated``: the whole procedure fitted on one half of the sentences (even /
    odd) and scored on the other, both ways — global threshold vs per-type — which is the
    honest estimate of what the extra thresholds are worth on unseen text.  They are kept only
    when that estimate beats one threshold's (:data:`PER_TYPE_MARGIN`); otherwise the
    calibration is the global one, with what was fitted recorded beside it.
    """
    grids = [gold_text(s.tokens, pretokenizer)[1] for s in sentences]
    gold = [s.tags for s in sentences]
    everyone = list(range(len(sentences)))
    best, curve = _best_global(found, grids, gold, everyone)
    out: dict[str, Any] = {"threshold": best, "f1": curve[best], "f1_at_zero": curve[0.0],
                           "curve": {f"{t:.2f}": f for t, f in curve.items()}}
    if not per_type:
        return out
    types = sorted({e.label for ents in found for e in ents})
    chosen, f1 = _per_type(found, grids, gold, everyone, best, types, curve[best])
    halves = [everyone[0::2], everyone[1::2]]
    pred_global: list[list[str]] = []
    pred_typed: list[list[str]] = []
    held: list[list[str]] = []
    for fit, test in (halves, halves[::-1]):
        g, g_curve = _best_global(found, grids, gold, fit)
        typed, _ = _per_type(found, grids, gold, fit, g, types, g_curve[g])
        pred_global += _filtered(found, grids, test, {}, g)
        pred_typed += _filtered(found, grids, test, typed, g)
        held += [gold[i] for i in test]
    cv = {"global": _f1(held, pred_global), "per_type": _f1(held, pred_typed), "folds": 2}
    # kept only where fitting them on one half helps the other: per-type thresholds fitted on
    # few entities can as well fit noise (benchmarks/results/accuracy.md, fifth round: +0.4 on
    # Hausa dev, -0.6 on Swahili, -0.4 on MultiCoNER Hindi), and this is the split's own evidence
    kept = cv["per_type"] >= cv["global"] + PER_TYPE_MARGIN and bool(chosen)
    out.update({"f1_global": curve[best], "f1": f1 if kept else curve[best],
                "type_thresholds": chosen if kept else {}, "cross_validated": cv,
                "per_type_kept": kept, "per_type_fitted": chosen, "per_type_f1_in_sample": f1})
    return out


def calibrated_decoding(cal: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's ``decoding`` fields a calibration sets."""
    out: dict[str, Any] = {"threshold": cal["threshold"]}
    if cal.get("type_thresholds"):
        out["type_thresholds"] = dict(cal["type_thresholds"])
    return out


def calibration_line(cal: Mapping[str, Any]) -> str:
    """One line of build output for a calibration."""
    line = f"threshold {cal['threshold']:.2f}: F1 {cal['f1_at_zero']:.4f} at 0 → {cal.get('f1_global', cal['f1']):.4f}"
    if "cross_validated" in cal:
        cv = cal["cross_validated"]
        typed = ", ".join(f"{t} {v:.2f}" for t, v in cal["per_type_fitted"].items()) or "none differ"
        line += (f"; per type ({typed}) → {cal['per_type_f1_in_sample']:.4f} in sample, 2-fold cross-validated "
                 f"{cv['global']:.4f} → {cv['per_type']:.4f}: {'kept' if cal['per_type_kept'] else 'not kept'}")
    return line


def _f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Micro F1 only (seqeval strict IOB2, as :func:`score`), rounded as :func:`score` rounds:
    the sweeps call it hundreds of times, the per-type report is not needed there."""
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    return round(float(f1_score(list(map(list, gold)), list(map(list, pred)), mode="strict", scheme=IOB2,
                                zero_division=0)), 4)


def _filtered(found: Sequence[Sequence[Any]], grids: Sequence[Any], idx: Sequence[int],
              by_type: Mapping[str, float], default: float) -> list[list[str]]:
    return [spans_to_tags([e for e in found[i] if e.score >= by_type.get(e.label, default)], grids[i]) for i in idx]


def _best_global(found: Sequence[Sequence[Any]], grids: Sequence[Any], gold: Sequence[Sequence[str]],
                 idx: Sequence[int]) -> tuple[float, dict[float, float]]:
    want = [gold[i] for i in idx]
    curve = {t: _f1(want, _filtered(found, grids, idx, {}, t)) for t in THRESHOLDS}
    return max(THRESHOLDS, key=lambda t: (curve[t], -t)), curve


def _per_type(found: Sequence[Sequence[Any]], grids: Sequence[Any], gold: Sequence[Sequence[str]],
              idx: Sequence[int], default: float, types: Sequence[str], f1: float,
              sweeps: int = 2) -> tuple[dict[str, float], float]:
    """Coordinate ascent from the global threshold: each type in turn takes the grid value with
    the best overall F1 (a change only when it strictly helps), twice over the types."""
    want = [gold[i] for i in idx]
    chosen: dict[str, float] = {}
    for _ in range(sweeps):
        for t in types:
            for value in THRESHOLDS:
                if value == chosen.get(t, default):
                    continue
                trial = {**chosen, t: value}
                got = _f1(want, _filtered(found, grids, idx, trial, default))
                if got > f1 + 1e-12:
                    chosen, f1 = trial, got
    return {t: v for t, v in sorted(chosen.items()) if v != default}, f1
