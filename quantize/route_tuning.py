"""The router's tuning text, scored: what fits the reference languages' biases (the build,
:mod:`quantize.langrefs`) and what chooses the router's margin and word weight
(``benchmarks/routing.py``, "Tuning text").

The tuning text is the tenth of the build text that no profile counts (:func:`quantize.langrefs.tuning`:
a sentence together with its translations in other languages' files), so what is fitted or chosen
on it never saw the benchmark's dev text.  A language of under ``KFOLD_BELOW`` sentences, whose
shipped tables count all of them, is scored by tables counted without its tenth.

Why biases: a naive-Bayes score (mean log-probability per n-gram, per word) is not comparable
across profiles of different sizes and registers.  A profile counted from 50 machine-translated
sentences (Chhattisgarhi) or from news that quotes English names (Nigerian Pidgin) wins text that
is not its language, and the margin that keeps such text from an installed bundle then turns away
text that is.  One number per language, added to its ranking score, corrects the offset; it is
fitted to make each language's held-out sentences likely (each language weighted alike), with an
L2 pull towards 0 (:data:`BIAS_L2`) so that a language with little tuning text keeps a small one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: Strength of the pull of every bias towards 0 (the loss is the mean over languages of their
#: sentences' mean cross-entropy, ~0.1).  Chosen with the router's margin and word weight by the
#: tuning-text rule (``benchmarks/routing.py``, ``TUNING_L2``), the biases cross-fitted; at 0.03
#: the shipped references' biases lie within about +-0.3 per n-gram.
BIAS_L2 = 0.03
#: Sentences shorter than this (characters) are not tuning text: the targets count >= 20.
MIN_CHARS = 20


@dataclass
class ScriptScores:
    """The tuning sentences of one script, scored against every reference language that writes it."""

    script: str
    codes: list[str]  # the columns: reference languages of the script, in file order
    truth: list[str]  # each sentence's language (not always a column: a Chinese line of Latin letters)
    avg: np.ndarray  # mean n-gram log-probability, sentences x codes
    words: np.ndarray  # mean word log-probability (zeros where the file has no word tables)
    ngrams: np.ndarray  # n-grams per sentence (what the posterior scales by)
    fold: np.ndarray  # 0 or 1 per sentence, a sentence with its translations (for cross-fitting)

    def ranking(self, weight: float, biases: dict[str, float] | None = None) -> np.ndarray:
        """What the router ranks by: n-grams + ``weight`` x words + each language's bias."""
        out = self.avg + weight * self.words
        if biases:
            out = out + np.array([biases.get(c, 0.0) for c in self.codes])
        return out


def tuning_scores(references: Any, data: Path | None = None, read: tuple[Any, Any, Any] | None = None
                  ) -> list[ScriptScores]:
    """The tuning sentences (>= :data:`MIN_CHARS` characters) of every reference language, by
    dominant script, scored as the router scores them (letters of other scripts blanked).
    ``read``: (texts, keys, word texts) as the build already read them from ``data``."""
    from edge_finer.langrefs import ScoreTable, gram_hashes, quantize_logp
    from edge_finer.router import _only_script, _tally

    from .langrefs import (DATA, KFOLD_BELOW, MAX_SENTENCES, SOURCE_POWER, TOP_NGRAMS, TOP_WORDS, _split,
                           build_texts_keyed, build_word_texts, count_profile, counted_part, counted_words, tuning)

    data = data or DATA
    has_words = references.has_words
    top_ngrams = int(references.meta.get("top_ngrams") or TOP_NGRAMS)
    top_words = int(references.meta.get("top_words") or TOP_WORDS)
    limit = int(references.meta.get("max_sentences") or MAX_SENTENCES)
    power = float(references.meta.get("source_power", SOURCE_POWER))  # files before it: the square root
    if read is None:
        texts, keys = build_texts_keyed(data)
        word_texts = build_word_texts(data) if has_words else {}
    else:
        texts, keys, word_texts = read
    held: dict[str, list[tuple[str, int]]] = {}
    own: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # small languages: tables without their tuning tenth
    own_words: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for code, sources in texts.items():
        if code not in references.languages:
            continue
        parts = _split([s for _, s in sources], limit, keys[code])
        held[code] = [(s, k) for p in parts for s, k in p if tuning(k)]  # as quantize.langrefs.build_language
        if sum(len(p) for p in parts) < KFOLD_BELOW:  # its shipped tables count every sentence
            grams, logp = count_profile(counted_part(parts), top_ngrams, power=power)
            own[code] = (gram_hashes(grams), quantize_logp(logp))
            if has_words:
                words, wlogp = counted_words([s for _, s in word_texts[code]], limit, top_words, keys[code],
                                             without_tuning=True, power=power)
                own_words[code] = (gram_hashes(words), quantize_logp(wlogp))
    by_script: dict[str, list[tuple[str, str, int]]] = {}
    for code, sents in held.items():
        for s, k in sents:
            letters, script, count = _tally(s)
            if letters and len(s.strip()) >= MIN_CHARS:
                by_script.setdefault(script, []).append((code, _only_script(s, script) if count < letters else s,
                                                         (k // 10) % 2))  # keys of the tenth end in 9
    out = []
    for script, items in sorted(by_script.items()):
        codes = references.by_script(script)
        if not codes:
            continue
        sents = [s for _, s, _ in items]
        avg, n = ScoreTable(codes, [references.table(c) for c in codes]).score_many(sents)
        wavg = np.zeros_like(avg)
        if has_words:
            wavg, _ = ScoreTable(codes, [references.word_table(c) for c in codes]).score_words(sents)
        # a small language is scored by its tables without the tuning tenth, for every sentence:
        # its own (never counted) and their translations in other languages alike
        for code in set(own) & set(codes):
            avg[:, codes.index(code)] = ScoreTable([code], [own[code]]).score_many(sents)[0][:, 0]
            if has_words:
                wavg[:, codes.index(code)] = ScoreTable([code], [own_words[code]]).score_words(sents)[0][:, 0]
        out.append(ScriptScores(script, list(codes), [c for c, _, _ in items], avg, wavg, np.asarray(n, float),
                                np.array([f for _, _, f in items], dtype=np.int8)))
    return out


def fit_biases(scores: Sequence[ScriptScores], weight: float, effective_ngrams: float, l2: float = BIAS_L2,
               fold: int | None = None) -> dict[str, float]:
    """Per-language biases that make the tuning sentences' languages likely under the router's
    posterior (ranking score x min(n-grams, ``effective_ngrams``), softmax over the script's
    languages): the mean over languages of each one's mean cross-entropy, plus ``l2`` x the sum of
    squared biases, minimised (L-BFGS; convex).  ``fold``: fit on the sentences of the *other*
    fold only (what cross-fitting scores this fold with).  A column language without tuning
    sentences of its own still gets one (from the sentences of others it wins)."""
    from scipy.optimize import minimize

    codes = sorted({c for s in scores for c in s.codes})
    column = {c: i for i, c in enumerate(codes)}
    parts = []  # per script: (ranking, scale, columns, row of each sentence, its true column, its weight)
    per_language: dict[str, int] = {}
    for s in scores:
        rows = np.array([i for i, t in enumerate(s.truth) if t in s.codes and (fold is None or s.fold[i] != fold)],
                        dtype=np.int64)
        for i in rows:
            per_language[s.truth[i]] = per_language.get(s.truth[i], 0) + 1
        parts.append((s, rows))
    if not per_language:
        return {}
    prepared = []
    for s, rows in parts:
        if len(rows) == 0 or len(s.codes) < 2:
            continue
        true = np.array([s.codes.index(s.truth[i]) for i in rows])
        weights = np.array([1.0 / per_language[s.truth[i]] for i in rows]) / len(per_language)
        scale = np.minimum(s.ngrams[rows], effective_ngrams)[:, None]
        prepared.append((scale * s.ranking(weight)[rows], scale, np.array([column[c] for c in s.codes]), true, weights))

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = float(l2 * b @ b), 2 * l2 * b
        for base, scale, cols, true, weights in prepared:
            z = base + scale * b[cols]
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            picked = np.arange(len(true))
            total -= float(weights @ np.log(p[picked, true]))
            p[picked, true] -= 1.0
            np.add.at(grad, cols, ((weights[:, None] * scale) * p).sum(axis=0))
        return total, grad

    result = minimize(loss, np.zeros(len(codes)), jac=True, method="L-BFGS-B")
    return {c: round(float(v), 4) for c, v in zip(codes, result.x)}


def cross_fitted_gaps(scores: Sequence[ScriptScores], weight: float, effective_ngrams: float,
                      l2: float = BIAS_L2, biased: bool = True) -> list[tuple[str, str, float]]:
    """(true language, top language, its ranking margin over the runner-up) of every tuning
    sentence, each fold ranked with biases fitted on the other: what choosing the margin and the
    weight reads, free of the biases' own fit (``biased=False``: no biases)."""
    fitted = {f: fit_biases(scores, weight, effective_ngrams, l2, fold=f) if biased else {} for f in (0, 1)}
    out = []
    for s in scores:
        rank = {f: s.ranking(weight, fitted[f]) for f in (0, 1)}
        for i, truth in enumerate(s.truth):
            row = rank[int(s.fold[i])][i]
            order = np.argsort(-row, kind="stable")
            gap = float(row[order[0]] - row[order[1]]) if len(order) > 1 else 99.0
            out.append((truth, s.codes[order[0]], gap))
    return out
