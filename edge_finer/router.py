"""Offline language routing: which installed bundle should annotate this text?

Evidence, cheapest first:
1. the dominant script of the letters narrows the candidates to the installed bundles that
   declare it (and settles the choice when only one language writes that script);
2. each candidate bundle's character n-gram profile (``profile.json``, built from its training
   text) scores the text; languages that share a script are told apart here, and the profile's
   calibration on held-out sentences says when the text fits none of them;
3. CLD3, when a binding is installed, votes among the candidates it knows (and only those).
Below ``min_confidence``, or when the text fits no profile, the answer is "unknown", with the
installed languages and the ``--lang`` hint, never a guess.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import BundleError
from .langprofile import ORDERS, PROFILE_FILE, UNSEEN_LOGP, Profile, ngrams, read_profile
from .scripts import expand, script_counts
from .segment import iter_sentences

#: Characters read from a document to route it (ten slices spread over the document, not
#: only its head).  20,000 made routing ~10 % of the annotation time of a 200-sentence
#: document (benchmarks/results/routing.md); a few thousand letters settle a language.
DOCUMENT_SAMPLE_CHARS = 4_000
#: A sentence with fewer letters than this is too short to route alone in sentence mode; it
#: takes the decision of the document around it.
MIN_SENTENCE_LETTERS = 12
#: A text this short (characters) is scored against the profile's "short" calibration.
SHORT_CHARS = 20
#: CLD3 overrules nothing below this probability.
CLD3_VETO_PROBABILITY = 0.9


@dataclass(frozen=True)
class Candidate:
    """An installed bundle as the router sees it."""

    name: str
    path: Path
    language: str
    scripts: frozenset[str]
    taxonomy: str
    profile: Profile | None
    rank: int  # position in the registry's preference order for its language (0 = preferred)


@dataclass(frozen=True)
class Decision:
    """The routing answer for one text: a bundle and language, or unknown with the reason."""

    language: str | None
    bundle: str | None
    path: Path | None
    confidence: float
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def unknown(self) -> bool:
        return self.bundle is None

    def to_json(self) -> dict[str, Any]:
        return {"language": self.language or "unknown", "bundle": self.bundle,
                "confidence": round(self.confidence, 4), "reason": self.reason, "evidence": self.evidence}


@dataclass(frozen=True)
class Segment:
    """A span of a text routed on its own (``--route sentence``)."""

    start: int
    end: int
    decision: Decision


class Router:
    """Chooses among candidate bundles; build one with :meth:`installed` for the real set."""

    def __init__(self, candidates: Sequence[Candidate], cld3: Callable[[str], Any] | None = None,
                 min_confidence: float = 0.5, problems: Sequence[str] = ()) -> None:
        self.candidates = list(candidates)
        self.cld3 = cld3
        self.min_confidence = min_confidence
        #: Bundles left out because their profile was unreadable or tampered with.
        self.problems = list(problems)
        self.languages = sorted({c.language for c in self.candidates})
        # all profiles as one matrix over the union of their n-grams: scoring a text is then one
        # dict lookup per n-gram and one numpy gather, however many bundles are installed
        self._rows: dict[int, int] = {}
        tables = []
        for i, c in enumerate(self.candidates):
            if c.profile is not None and c.profile.orders == ORDERS:
                self._rows[i] = len(tables)
                tables.append(c.profile.logp)
        # (dict.fromkeys/itemgetter keep the per-n-gram loops in C: this runs on every routed start)
        self._vocab: dict[str, int] = {g: k for k, g in enumerate(dict.fromkeys(chain.from_iterable(tables)))}
        self._row_of = {id(self.candidates[i]): row for i, row in self._rows.items()}
        self._matrix = np.full((len(tables), len(self._vocab) + 1), UNSEEN_LOGP, dtype=np.float32)
        for row, logp in enumerate(tables):
            cols = itemgetter(*logp)(self._vocab) if len(logp) > 1 else [self._vocab[g] for g in logp]
            self._matrix[row, np.asarray(cols, dtype=np.int64)] = np.fromiter(logp.values(), dtype=np.float32,
                                                                                count=len(logp))

    @classmethod
    def installed(cls, taxonomy: str | None = None, use_cld3: bool | None = None,
                  min_confidence: float = 0.5) -> "Router":
        """A router over the installed bundles (registry order decides between same-language ones).

        ``use_cld3``: None = use a binding if one is installed; False = never.
        """
        from .cld3 import load_detector
        from .registry import installed, preference_order

        found = installed()
        problems: list[str] = []
        candidates: list[Candidate] = []
        by_lang: dict[str, list[Any]] = {}
        for b in found:
            by_lang.setdefault(b.language.lower(), []).append(b)
        for lang, group in by_lang.items():
            ordered = preference_order(group, taxonomy)
            for rank, b in enumerate(ordered):
                try:
                    profile = _bundle_profile(b.path, b.manifest)
                except BundleError as exc:
                    problems.append(str(exc))
                    continue
                info = b.manifest.get("language", {})
                candidates.append(Candidate(b.name, b.path, lang, frozenset(expand(info.get("scripts", []))),
                                            b.taxonomy, profile, rank))
        detector = load_detector() if use_cld3 is not False else None
        return cls(candidates, detector, min_confidence, problems)

    # -- one text -----------------------------------------------------------------------

    def route(self, text: str) -> Decision:
        """The bundle for a whole text (a sample of it, spread over its length)."""
        sample = _sample(text, DOCUMENT_SAMPLE_CHARS)
        return self._decide(sample, script_counts(sample))

    def _decide(self, sample: str, scripts: Counter[str]) -> Decision:
        letters = sum(scripts.values())
        if not self.candidates:
            return self._unknown("no bundles are installed", {}, 0.0)
        if letters == 0:
            return self._unknown("the text has no letters to tell its language by", {}, 0.0)
        script, count = scripts.most_common(1)[0]
        evidence: dict[str, Any] = {"script": script, "script_share": round(count / letters, 4)}
        cands = [c for c in self.candidates if script in c.scripts or not c.scripts]
        if not cands:
            return self._unknown(f"the text is in the {script} script and no installed bundle is", evidence, 0.0)
        langs = sorted({c.language for c in cands})
        evidence["candidates"] = langs
        short = len(sample.strip()) < SHORT_CHARS
        best_of: dict[str, tuple[float, int, Candidate]] = {}
        for c, avg, n in self._scores(cands, sample):
            prev = best_of.get(c.language)
            if prev is None or avg > prev[0] or (avg == prev[0] and c.rank < prev[2].rank):
                best_of[c.language] = (avg, n, c)
        if best_of:
            evidence["ngram_avg_logp"] = {lang: round(v[0], 4) for lang, v in sorted(best_of.items())}
        unprofiled = sorted({c.language for c in cands} - set(best_of))
        if unprofiled:
            evidence["no_profile"] = unprofiled
        if not best_of:
            if len(langs) == 1:
                return self._choose(langs[0], count / letters, "script (the bundle has no language profile)",
                                    evidence)
            return self._unknown(f"several installed languages use the {script} script ({', '.join(langs)}) and "
                                 "their bundles carry no language profile", evidence, 0.0)
        # naive-Bayes posterior over languages from total log-likelihoods (n-grams x average)
        totals = {lang: v[0] * max(v[1], 1) for lang, v in best_of.items()}
        posterior = _softmax(totals)
        vote = self._cld3_vote(sample, list(posterior), evidence)
        if vote:
            posterior = _normalise({lang: p * vote[lang] for lang, p in posterior.items()})
        evidence["posterior"] = {lang: round(p, 4) for lang, p in sorted(posterior.items())}
        best = max(posterior, key=lambda lang: (posterior[lang], lang))
        confidence = posterior[best]
        avg, _, cand = best_of[best]
        # CLD3 may veto only text that is not typical of the chosen language (below the 10th
        # percentile of its held-out sentences): unconditional, it turned away 22 % of real
        # Yoruba dev sentences, which it labels as other languages (benchmarks/routing.py)
        typical = cand.profile.percentile(short, "p10") if cand.profile else None  # type: ignore[union-attr]
        veto = self._cld3_veto(best, evidence) if typical is None or avg < typical else None
        if veto:
            return self._unknown(veto, evidence, confidence, guess=best)
        threshold = cand.profile.threshold(short) if cand.profile else None  # type: ignore[union-attr]
        if threshold is not None:
            evidence["calibration"] = {"avg_logp": round(avg, 4), "threshold": round(threshold, 4),
                                       "kind": "short" if short else "long"}
            # applies even when CLD3 agrees: CLD3 calls Assamese Bengali, so its "yes" proves little
            if avg < threshold:
                return self._unknown(f"the text fits none of the installed languages (closest: {best}, scoring "
                                     f"below its own held-out sentences)", evidence, confidence, guess=best)
        if confidence < self.min_confidence:
            runner = sorted(posterior, key=posterior.get, reverse=True)[1]  # type: ignore[arg-type]
            return self._unknown(f"cannot tell {best} from {runner} (confidence {confidence:.2f})", evidence,
                                 confidence, guess=best)
        by = "script" if len(langs) == 1 else "n-gram profile"
        if vote:
            by += " + cld3"
        return self._choose(best, confidence, by, evidence)

    def route_sentences(self, text: str) -> list[Segment]:
        """One decision per sentence, for code-mixed text; too-short sentences take the
        document's decision (routed once, lazily)."""
        out: list[Segment] = []
        document: Decision | None = None
        for start, end in iter_sentences(text):
            piece = _sample(text[start:end], DOCUMENT_SAMPLE_CHARS)
            scripts = script_counts(piece)  # counted once: it says "too short" and then routes
            if sum(scripts.values()) < MIN_SENTENCE_LETTERS:
                if document is None:
                    document = self.route(text)
                decision = document
            else:
                decision = self._decide(piece, scripts)
            out.append(Segment(start, end, decision))
        return out

    # -- helpers ------------------------------------------------------------------------

    def _scores(self, cands: list[Candidate], text: str) -> list[tuple[Candidate, float, int]]:
        """(candidate, mean log-probability per n-gram, n-grams) for the profiled candidates."""
        rows = [(c, self._row_of[id(c)]) for c in cands if id(c) in self._row_of]
        if not rows:
            return []
        grams = ngrams(text)
        if not grams:
            return [(c, UNSEEN_LOGP, 0) for c, _ in rows]
        unseen = len(self._vocab)
        get = self._vocab.get
        cols = np.fromiter(map(get, grams, repeat(unseen)), dtype=np.int64, count=len(grams))
        sums = self._matrix.take(cols, axis=1).sum(axis=1, dtype=np.float64)
        return [(c, float(sums[r]) / len(grams), len(grams)) for c, r in rows]

    def _cld3_vote(self, text: str, langs: list[str], evidence: dict[str, Any]) -> dict[str, float] | None:
        """CLD3's factor per candidate language: it discriminates only among languages it knows."""
        if self.cld3 is None:
            return None
        from .cld3 import knows

        result = self.cld3(text)
        evidence["cld3"] = {**result.to_json(), "bcp47": result.language}
        if not result.reliable or not result.language or len(langs) < 2:
            return None
        known = [lang for lang in langs if knows(lang)]
        if not known:
            return None
        factors = {}
        for lang in langs:
            if not knows(lang):
                factors[lang] = result.probability  # CLD3 cannot speak for it: neutral
            elif lang.split("-")[0] == result.language:
                factors[lang] = result.probability
            else:
                factors[lang] = max(1.0 - result.probability, 1e-6) / 100.0
        return factors

    def _cld3_veto(self, best: str, evidence: dict[str, Any]) -> str | None:
        """CLD3 is sure of a language it knows, that has no bundle, and the n-grams chose another
        language CLD3 also knows: e.g. French text when only English and Swahili are installed."""
        cld3 = evidence.get("cld3")
        if not cld3 or not cld3["reliable"] or cld3["probability"] < CLD3_VETO_PROBABILITY:
            return None
        from .cld3 import knows

        said = cld3["bcp47"]
        if not said or not knows(said) or not knows(best) or said == best.split("-")[0]:
            return None
        if any(lang.split("-")[0] == said for lang in self.languages):
            return None  # the vote already weighed it
        return f"CLD3 identifies the text as {said!r} (probability {cld3['probability']:.2f}), which has no bundle"

    def _choose(self, language: str, confidence: float, by: str, evidence: dict[str, Any]) -> Decision:
        """The language's preferred bundle (registry order, ``--taxonomy`` first)."""
        group = sorted((c for c in self.candidates if c.language == language), key=lambda c: c.rank)
        chosen = group[0]
        evidence["by"] = by
        return Decision(language, chosen.name, chosen.path, float(confidence), f"routed by {by}", evidence)

    def _unknown(self, why: str, evidence: dict[str, Any], confidence: float, guess: str | None = None) -> Decision:
        if guess:
            evidence["closest"] = guess
        langs = ", ".join(self.languages) or "none"
        return Decision(None, None, None, float(confidence),
                        f"{why}; installed languages: {langs}; pass --lang to choose", evidence)


def _bundle_profile(path: Path, manifest: dict[str, Any]) -> Profile | None:
    """The bundle's profile, checked against its manifest checksum (a tampered profile could
    steer text to the wrong bundle); None when the bundle has none."""
    meta = manifest.get("files", {}).get(PROFILE_FILE)
    if meta is None:
        return None
    from .bundle import sha256_file

    fpath = path / PROFILE_FILE
    if not fpath.is_file() or fpath.is_symlink():
        raise BundleError(f"{fpath}: missing from the bundle (the manifest lists it)")
    if sha256_file(fpath) != meta.get("sha256"):
        raise BundleError(f"{fpath}: checksum mismatch; the file was changed or damaged after the bundle was "
                          "built. Reinstall the bundle.")
    return read_profile(fpath)


def _sample(text: str, limit: int) -> str:
    """Up to ``limit`` characters: all of a short text, else ten slices spread over it."""
    if len(text) <= limit:
        return text
    step, width = len(text) // 10, limit // 10
    return "\n".join(text[i * step:i * step + width] for i in range(10))


def _softmax(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    exp = {k: math.exp(v - top) for k, v in scores.items()}
    return _normalise(exp)


def _normalise(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values()) or 1.0
    return {k: v / total for k, v in weights.items()}
