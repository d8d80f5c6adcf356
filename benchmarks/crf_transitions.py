"""Would learned tag transitions (a CRF layer over the bundle's word probabilities) help?

The issue's "decoder over whole entities" lever, measured cheaply before any change to the
format: the runtime's Viterbi today allows every valid IOB2 transition at no cost.  Here a
linear-chain CRF is fitted on top of a shipped bundle's frozen word log-probabilities (a
transition matrix over the valid IOB2 moves, start scores and one emission scale), and the
bundle re-decoded with it.  Emissions on the train split are near-certain (the model was
trained there), so the CRF is fitted on dev and judged by 2-fold cross-validation on dev
(even / odd sentences): each half is decoded with transitions fitted on the other half, next
to the plain decoder on the same sentences.  Scoring as everywhere: seqeval, strict IOB2, on
the gold tokens, through ``Annotator.stream_tokens`` with the bundle's own threshold.

    python -m benchmarks.crf_transitions il-ner-hi masakhaner2-hau multiconer2-hi

Writes ``benchmarks/results/crf_transitions.{json,md}``.  Needs torch (the ``build`` extra).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

import edge_finer.annotator as annotator_module
from edge_finer.annotator import Annotator
from edge_finer.decoding import LabelScheme
from edge_finer.registry import resolve
from edge_finer.tokens import joined, token_tags

from .peer_spacy import read_conll
from .shipped import dataset_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
Decoder = Callable[[np.ndarray, np.ndarray, LabelScheme, int], np.ndarray]


def predict(ann: Annotator, sentences: Sequence[Sequence[str]], decoder: Decoder) -> list[list[str]]:
    """IOB2 tags on the given tokens, with ``decoder`` in place of the runtime's own."""
    saved = annotator_module.decode_flat
    annotator_module.decode_flat = decoder
    try:
        out = []
        for toks, ents in zip(sentences, ann.stream_tokens(sentences)):
            out.append(token_tags(joined(toks)[1], ents))
        return out
    finally:
        annotator_module.decode_flat = saved


def word_probabilities(ann: Annotator, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Each sentence's (words × labels) probabilities, as the runtime's decoder receives them."""
    seen: list[np.ndarray] = []
    plain = annotator_module.decode_flat

    def capture(probs: np.ndarray, offsets: np.ndarray, scheme: LabelScheme, group: int = 64) -> np.ndarray:
        seen.extend(probs[offsets[k]:offsets[k + 1]].copy() for k in range(len(offsets) - 1))
        return plain(probs, offsets, scheme, group)

    predict(ann, sentences, capture)
    return seen


def valid_moves(scheme: LabelScheme) -> tuple[np.ndarray, np.ndarray]:
    """IOB2's hard constraints: (previous, next) pairs allowed, and labels allowed first."""
    k = len(scheme.labels)
    allowed = np.ones((k, k), dtype=bool)
    for j in np.flatnonzero(scheme.is_i):
        allowed[:, j] = (scheme.type_id == scheme.type_id[j])
    return allowed, ~scheme.is_i


def fit_crf(probs: list[np.ndarray], gold: list[list[int]], scheme: LabelScheme,
            l2: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Transitions, start scores and emission scale maximising the CRF likelihood of ``gold``."""
    import torch

    allowed, first_ok = (torch.from_numpy(a) for a in valid_moves(scheme))
    n, width, k = len(probs), max(p.shape[0] for p in probs), len(scheme.labels)
    em = torch.zeros(n, width, k, dtype=torch.float64)
    tags = torch.zeros(n, width, dtype=torch.long)
    live = torch.zeros(n, width, dtype=torch.bool)
    for b, (p, g) in enumerate(zip(probs, gold)):
        em[b, :len(g)] = torch.from_numpy(np.log(np.maximum(p, 1e-12)))
        tags[b, :len(g)] = torch.tensor(g)
        live[b, :len(g)] = True
    trans = torch.zeros(k, k, dtype=torch.float64, requires_grad=True)
    start = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    scale = torch.ones(1, dtype=torch.float64, requires_grad=True)
    rows = torch.arange(n)
    opt = torch.optim.LBFGS([trans, start, scale], max_iter=150, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        t = torch.where(allowed, trans, torch.full_like(trans, -1e4))
        s = torch.where(first_ok, start, torch.full_like(start, -1e4))
        e = em * scale
        alpha = s + e[:, 0]
        path = s[tags[:, 0]] + e[rows, 0, tags[:, 0]]
        for i in range(1, width):
            on = live[:, i]
            alpha = torch.where(on[:, None], torch.logsumexp(alpha[:, :, None] + t[None], dim=1) + e[:, i], alpha)
            step = t[tags[:, i - 1], tags[:, i]] + e[rows, i, tags[:, i]]
            path = path + torch.where(on, step, torch.zeros_like(step))
        value = (torch.logsumexp(alpha, dim=1) - path).mean()
        value = value + l2 * (trans.pow(2).sum() + start.pow(2).sum() + (scale - 1).pow(2).sum())
        value.backward()
        return value

    opt.step(loss)
    return trans.detach().numpy(), start.detach().numpy(), float(scale.detach())


def crf_decoder(trans: np.ndarray, start: np.ndarray, scale: float, scheme: LabelScheme) -> Decoder:
    """Viterbi with the fitted scores, IOB2's hard constraints kept."""
    allowed, first_ok = valid_moves(scheme)
    t = np.where(allowed, trans, -np.inf)
    s = np.where(first_ok, start, -np.inf)

    def decode(probs: np.ndarray, offsets: np.ndarray, _scheme: LabelScheme, group: int = 64) -> np.ndarray:
        logp = np.log(np.maximum(probs, 1e-12)) * scale
        tags = np.zeros(probs.shape[0], dtype=np.int64)
        for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
            if b == a:
                continue
            delta, back = s + logp[a], []
            for i in range(a + 1, b):
                scores = delta[:, None] + t
                best = scores.argmax(axis=0)
                back.append(best)
                delta = scores[best, np.arange(len(best))] + logp[i]
            path = [int(delta.argmax())]
            for best in reversed(back):
                path.append(int(best[path[-1]]))
            tags[a:b] = path[::-1]
        return tags

    return decode


def measure(name: str, l2s: Sequence[float]) -> dict:
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    def f1(gold: list[list[str]], pred: list[list[str]]) -> float:
        return round(100 * f1_score(gold, pred, mode="strict", scheme=IOB2), 2)

    ann = Annotator.load(resolve(name), threads=1)
    dev = read_conll(dataset_dir(name) / "dev.conll")
    words = [toks for toks, _ in dev]
    gold = [tags for _, tags in dev]
    plain = predict(ann, words, annotator_module.decode_flat)
    probs = word_probabilities(ann, words)
    index = {lab: i for i, lab in enumerate(ann.scheme.labels)}
    halves = [list(range(0, len(dev), 2)), list(range(1, len(dev), 2))]
    row = {"bundle": name, "sentences": len(dev), "types": len(set(ann.scheme.types) - {""}),
           "threshold": ann.threshold, "plain": f1(gold, plain), "crf": {}}
    for l2 in l2s:
        pred: list[list[str] | None] = [None] * len(dev)
        t0 = time.perf_counter()
        for fit_half, test_half in (halves, halves[::-1]):
            fit = [i for i in fit_half if probs[i].shape[0] == len(gold[i])]  # words = tokens
            # a gold tag the bundle cannot produce (Odia's stray "B-'") is fitted as O
            trans, start, scale = fit_crf([probs[i] for i in fit], [[index.get(t, index["O"]) for t in gold[i]]
                                                                    for i in fit],
                                          ann.scheme, l2)
            for i, tags in zip(test_half, predict(ann, [words[i] for i in test_half],
                                                  crf_decoder(trans, start, scale, ann.scheme))):
                pred[i] = tags
        row["crf"][str(l2)] = {"f1": f1(gold, pred), "fit_s": round(time.perf_counter() - t0, 1)}
        print(f"{name}: plain {row['plain']}  crf(l2={l2}) {row['crf'][str(l2)]['f1']}", flush=True)
    return row


def render(rows: list[dict]) -> str:
    l2s = list(rows[0]["crf"]) if rows else []
    out = ["# Learned tag transitions (CRF over frozen word probabilities), 2-fold cross-validated on dev", "",
           "Command: `python -m benchmarks.crf_transitions " + " ".join(r["bundle"] for r in rows) + "`. "
           "Each dev half is decoded with transitions fitted on the other half; `plain` is the runtime's "
           "decoder (every valid IOB2 move free) on the same sentences, the bundle's threshold applied to both. "
           "Entity F1, seqeval strict IOB2, on the gold tokens.", "",
           "| bundle | types | dev sentences | plain | " + " | ".join(f"CRF, L2 {l}" for l in l2s) + " |",
           "|---|---|---|---|" + "---|" * len(l2s)]
    for r in rows:
        out.append(f"| {r['bundle']} | {r['types']} | {r['sentences']} | {r['plain']:.2f} | "
                   + " | ".join(f"{r['crf'][l]['f1']:.2f} ({r['crf'][l]['f1'] - r['plain']:+.2f})" for l in l2s) + " |")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help="bundle names (shipped, or under EDGE_FINER_BUNDLES)")
    ap.add_argument("--l2", type=float, nargs="+", default=[0.01, 0.1])
    args = ap.parse_args(argv)
    rows = [measure(n, args.l2) for n in args.names]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "crf_transitions.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    (RESULTS / "crf_transitions.md").write_text(render(rows), encoding="utf-8")
    print(render(rows))


if __name__ == "__main__":
    main()
