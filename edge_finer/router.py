"""Offline language routing: which language is this text in, and which installed bundle fits it?

Routing replaces an LLM agent's choice, so a wrong routing is a silent wrong answer.  The
router therefore names the *language* first, among many more languages than are installed,
and only then picks a bundle; text in a language without a bundle is named as such ("mr
(Marathi): no bundle installed ...") or called unknown, never given to a neighbour's bundle.

Evidence, cheapest first:
1. the dominant script of the letters narrows the candidates to the languages that write it:
   the installed bundles' and the reference languages' (:mod:`edge_finer.languages`); one
   candidate settles it (Odia script → Odia) without reading the reference tables;
2. character n-gram profiles score the text: the reference profile of every language that has
   one (:mod:`edge_finer.langrefs`, 51 languages), a bundle's own ``profile.json`` for a
   language the references lack.  Each profile's calibration on held-out sentences says when
   the text fits none of them.  Where every candidate has a reference word table, its words'
   score joins the ranking (:data:`WORD_WEIGHT`): a few function words ("क्या", "तुम", "है")
   that Hindi uses and Bhojpuri or Magahi never do count for little in an average over a
   hundred character n-grams.  Each reference language's bias (fitted on held-out build text)
   joins it too: a profile that wins other languages' text (Nigerian Pidgin's, English's) is
   lowered;
3. CLD3 and py3langid, when installed, may veto an installed language for text that is not
   typical of it (CLD3 also votes among the candidates it knows).
A text shorter than :data:`MIN_REFERENCE_LETTERS` letters is too short to tell among 51
languages: it is routed among the installed languages only.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from .errors import BundleError
from .langprofile import ORDERS, PROFILE_FILE, Profile, letter_runs_many, read_profile
from .langrefs import References, ScoreTable, gram_hashes, quantize_logp
from .languages import canonical, name_of, no_bundle_line
from .scripts import expand, script_counts, script_of, span_tallies
from .segment import iter_sentences

#: Characters read from a document to route it (ten slices spread over the document, not
#: only its head).  20,000 made routing ~10 % of the annotation time of a 200-sentence
#: document (benchmarks/results/routing.md); a few thousand letters settle a language.
DOCUMENT_SAMPLE_CHARS = 4_000
#: In sentence mode a sentence is scored on its first this many characters (~500 n-grams,
#: plenty to tell a language): a fifth of the cost of routing long news sentences (Swahili,
#: Yoruba) went into n-grams beyond them.
SENTENCE_SAMPLE_CHARS = 160
#: ... but read first on its first this many characters only: a sentence whose head already
#: names a language by at least :data:`SETTLED_MARGIN` over the runner-up is not read further;
#: the others (under 3 % of the dev sentences) are scored again on their first
#: :data:`SENTENCE_SAMPLE_CHARS`.  99.86 % of 12,489 dev sentences of 51 languages then get the
#: answer routing the whole sentence gives (99.88 % with one read of 160 characters), for about
#: half the n-grams of a long sentence (benchmarks/results/routing.md, "Sentence mode").
SENTENCE_HEAD_CHARS = 80
#: Ranking margin (the ranking score of ``ROUTE_MARGIN``) that settles a sentence on its head:
#: the smallest of the head table's whose answers match one read of 160 characters within a
#: few sentences (0.3 at word weight 0.2, 0.7 at 0.7; 0.5 at today's 0.5: 3 sentences from one
#: read, where 0.3 is 7).
SETTLED_MARGIN = 0.5
#: A sentence with fewer letters than this is too short to route alone in sentence mode; it
#: takes the decision of its line.
MIN_SENTENCE_LETTERS = 12
#: A text with fewer letters than this is routed among the installed languages only: a word or
#: two ("Delhi") cannot be told apart among 51 languages, and naming one would only refuse it ...
MIN_REFERENCE_LETTERS = 12
#: ... and so is a text of fewer distinct words than this ("Delhi Delhi Delhi").
MIN_REFERENCE_WORDS = 3
#: A text this short (characters) is scored against the profile's "short" calibration.
SHORT_CHARS = 20
#: CLD3 or py3langid overrule nothing below this probability.
CLD3_VETO_PROBABILITY = 0.9
#: The naive-Bayes posterior over all of a text's n-grams says 1.0 for nearly every text, wrong
#: ones included (overlapping n-grams are far from independent); the confidence reported counts
#: a text as this many independent n-grams at most.
EFFECTIVE_NGRAMS = 20
#: A language without a bundle is named only when it beats the runner-up by this much (mean
#: log-probability per n-gram); closer calls are "unknown".  0.1 kept xh/zu, bho/mag and es/it
#: pairs from naming each other on the benchmark (benchmarks/results/routing.md).
NAME_MARGIN = 0.1
#: Added to an installed language's mean log-probability per n-gram when the candidates are
#: ranked (a language someone installed a bundle for is a priori likelier in their text).  Before
#: the reference biases each 0.02 bought ~0.3 points of installed-language accuracy for ~0.15
#: points more text of other languages handed to an installed bundle; with them, 0.02 moves the
#: dev figures by a few sentences (benchmarks/results/routing.md, "Trade-off"), and the biases,
#: fitted without knowing what is installed, do the correcting: the safe side is kept.
INSTALLED_PRIOR = 0.0
#: An installed language gets a text only when it beats every other candidate, installed or
#: not, by this much (ranking score: mean log-probability per n-gram plus WORD_WEIGHT x per
#: word plus the language's bias); a closer call is "unknown" ("cannot tell en from pcm"), which
#: the user sees, rather than a neighbour's text annotated by the wrong model without a word.
#: Chosen with WORD_WEIGHT and the biases' pull (``quantize.route_tuning.BIAS_L2``) on held-out
#: *build* text, never on the benchmark's dev text (`benchmarks/routing.py`, "Tuning text"): of
#: the points at which >= 99 % of installed-language sentences are routed right and >= 99 % of
#: other languages' sentences come out unknown or as themselves, the one that hands the fewest of
#: the latter to an installed bundle (0.28 % there, the biases cross-fitted; 0.33 % at the best
#: point without biases, margin 0.15 at weight 0.7, shipped before).  The rule reads a target at
#: its edge (installed 99.00 % there), so a change of the reference text can move the choice.
ROUTE_MARGIN = 0.05
#: Weight of the word tables' evidence (mean log-probability per word, ``edge_finer.langrefs``)
#: added to the n-gram score when the candidates are ranked and their margins measured; the
#: calibration thresholds stay on the n-grams alone.  Chosen with ROUTE_MARGIN (above); the
#: reference biases are fitted at this weight (``python -m quantize.langrefs`` reads it).  The
#: word tables count no entity tokens of the tagged corpora: with the names in, a heavy weight let
#: them outvote the n-grams on a short text of names ("Barack Obama visited Paris." went to French
#: at 0.5, which is why 0.2 was shipped before); 0 turns the words off (the router before them).
WORD_WEIGHT = 0.5
#: A reference language's threshold for routing to its bundle: its held-out p1 lowered by this
#: share of the p1-p50 gap.  Among the 51 languages it changes little (the competition decides);
#: it is what keeps text of a language outside them from an installed bundle
#: (benchmarks/results/routing.md, "Trade-off" and "never seen").
REFERENCE_SLACK = 0.5
#: The same for naming a language that has no bundle: stricter, since calling such a text
#: "unknown" costs nothing (it is not annotated either way) and gibberish should not be named.
NAME_SLACK = 0.25


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


@dataclass(frozen=True, slots=True)
class Decision:
    """The routing answer for one text: a language and its bundle, a language that has no
    installed bundle (``bundle`` None), or unknown (``language`` None), with the reason."""

    language: str | None
    bundle: str | None
    path: Path | None
    confidence: float
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def unknown(self) -> bool:
        """The language could not be told."""
        return self.language is None

    @property
    def no_bundle(self) -> bool:
        """The language was named, but no installed bundle writes it."""
        return self.language is not None and self.bundle is None

    def to_json(self) -> dict[str, Any]:
        return {"language": self.language or "unknown", "bundle": self.bundle,
                "confidence": round(self.confidence, 4), "reason": self.reason, "evidence": self.evidence}


@dataclass(frozen=True, slots=True)
class Segment:
    """A span of a text routed on its own (``--route sentence``)."""

    start: int
    end: int
    decision: Decision


@dataclass
class _Pool:
    """The candidate languages of one script: who competes, and their profiles as one table."""

    codes: list[str]  # canonical codes: installed languages first, then reference-only ones
    installed: set[str]
    table: ScoreTable | None = None
    index: dict[str, int] = field(default_factory=dict)  # code → column of ``table``
    unprofiled: list[str] = field(default_factory=list)
    limits: dict[tuple[str, bool], tuple[float | None, float | None]] = field(default_factory=dict)
    prior: Any = 0.0  # per column of ``table``: the reference's bias, + INSTALLED_PRIOR for an installed language
    words: ScoreTable | None = None  # the same columns' word tables, when every column has one
    added: dict[str, float] = field(default_factory=dict)  # code → its ``prior``, where not 0 (the evidence)


class Router:
    """Chooses a language, then a bundle; build one with :meth:`installed` for the real set."""

    def __init__(self, candidates: Sequence[Candidate], cld3: Callable[[str], Any] | None = None,
                 min_confidence: float = 0.5, problems: Sequence[str] = (),
                 references: References | None = None, langid: Any = None) -> None:
        self.candidates = list(candidates)
        self.cld3 = cld3
        #: py3langid (``edge_finer.pylangid.LangidVoter``): a veto only, loaded on first use
        self.langid = langid
        self.min_confidence = min_confidence
        #: Bundles (or the references) left out because a file was unreadable or tampered with.
        self.problems = list(problems)
        self.references = references
        self.languages = sorted({c.language for c in self.candidates})
        self._no_bundle_lines: dict[str, str] = {}
        self._by_code: dict[str, list[Candidate]] = {}
        for c in sorted(self.candidates, key=lambda c: c.rank):
            self._by_code.setdefault(canonical(c.language), []).append(c)
        self._pools: dict[tuple[str, bool], _Pool | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def installed(cls, taxonomy: str | None = None, use_cld3: bool | None = None,
                  min_confidence: float = 0.5) -> "Router":
        """A router over the installed bundles (registry order decides between same-language
        ones) and the shipped reference profiles.

        ``use_cld3``: None = use CLD3 and py3langid when installed; False = never.
        """
        from .cld3 import load_detector
        from .langrefs import load_references
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
        try:
            references = load_references()
        except BundleError as exc:
            problems.append(str(exc))
            references = None
        detector = load_detector() if use_cld3 is not False else None
        voter = None
        if use_cld3 is not False:
            from .pylangid import load_voter

            voter = load_voter()
        return cls(candidates, detector, min_confidence, problems, references, voter)

    # -- one text -----------------------------------------------------------------------

    def route(self, text: str) -> Decision:
        """The decision for a whole text (a sample of it, spread over its length)."""
        return self.route_sample(_sample(text, DOCUMENT_SAMPLE_CHARS))

    def route_sample(self, sample: str) -> Decision:
        """The decision for a text given by its sample (``_sample``): how a file too large to
        read whole is routed (edge_finer/bigfile.py cuts the same sample from it)."""
        return self._decide([sample], [_tally(sample)])[0]

    def route_sentences(self, text: str) -> list[Segment]:
        """One decision per sentence, for code-mixed text; a sentence too short to route alone
        takes the decision of its line (routed once, lazily).  Sentences are scored together,
        a few hundred at a time, in one vectorised pass: routing then costs little per sentence
        (benchmarks/results/routing.md), so a caller should pass a whole text, not line by line."""
        spans = list(iter_sentences(text))
        out: list[Segment] = []
        lines: dict[int, Decision] = {}
        for chunk in _chunks(spans):
            tallies = span_tallies(text, chunk)
            routed = [k for k, t in enumerate(tallies) if t[0] >= MIN_SENTENCE_LETTERS]
            sentences = [text[chunk[k][0]:chunk[k][1]] for k in routed]
            samples = [_head(sentence, SENTENCE_HEAD_CHARS) for sentence in sentences]
            counts = [tallies[k] for k in routed]
            heads = len(samples)
            wanted: list[int] = []  # lines of the too-short sentences, scored in the same batch
            line_of: dict[int, int] = {}
            for k, (start, _) in enumerate(chunk):
                if tallies[k][0] < MIN_SENTENCE_LETTERS:
                    first = line_of[k] = text.rfind("\n", 0, start) + 1
                    if first not in lines and first not in wanted:
                        last = text.find("\n", start)
                        wanted.append(first)
                        samples.append(_sample(text[first:last if last >= 0 else len(text)], DOCUMENT_SAMPLE_CHARS))
                        counts.append(_tally(samples[-1]))
            decisions = self._decide(samples, counts)  # one batch: each batch has a fixed cost
            # the sentences whose head did not settle them are read again, further
            again = [j for j in range(heads) if len(sentences[j]) > len(samples[j]) and not _settled(decisions[j])]
            if again:
                longer = [_head(sentences[j], SENTENCE_SAMPLE_CHARS) for j in again]
                for j, decision in zip(again, self._decide(longer, [counts[j] for j in again])):
                    decisions[j] = decision
            decided = dict(zip(routed, decisions))
            lines.update(zip(wanted, decisions[len(routed):]))
            for k, (start, end) in enumerate(chunk):
                out.append(Segment(start, end, decided.get(k) or lines[line_of[k]]))
        return out

    def _decide(self, samples: list[str], tallies: list[tuple[int, str | None, int]]) -> list[Decision]:
        """Decisions for several texts, given each one's (letters, dominant script, its letters):
        each is narrowed by its script, then the texts of one candidate pool are scored together."""
        samples = list(samples)
        out: list[Decision | None] = [None] * len(samples)
        groups: dict[int, tuple[_Pool, list[tuple[int, dict[str, Any], bool, float]]]] = {}
        for i, (sample, (letters, script, count)) in enumerate(zip(samples, tallies)):
            if letters == 0 or script is None:
                out[i] = self._unknown("the text has no letters to tell its language by", {}, 0.0)
                continue
            evidence: dict[str, Any] = {"script": script, "script_share": round(count / letters, 4)}
            pool = self._pool(script, letters < MIN_REFERENCE_LETTERS or _few_words(sample))
            if pool is None:
                nobody = "no installed bundle" + (" and no language the router knows" if self.references else "")
                out[i] = self._unknown(f"the text is in the {script} script, which {nobody} writes", evidence, 0.0)
                continue
            evidence["candidates"] = pool.codes
            if count < letters:  # mixed scripts: only the dominant script's letters are scored
                samples[i] = _only_script(sample, script)
            groups.setdefault(id(pool), (pool, []))[1].append((i, evidence, len(sample.strip()) < SHORT_CHARS,
                                                               count / letters))
        for pool, items in groups.values():
            table = self._table(pool)
            if not pool.index:  # nothing to score with: the script decides, or nothing does
                for i, evidence, _, share in items:
                    if len(pool.codes) == 1:
                        out[i] = self._choose(pool.codes[0], share, "script (the bundle has no language profile)",
                                              evidence)
                    else:
                        out[i] = self._unknown(f"several installed languages use the {evidence['script']} script "
                                               f"({', '.join(pool.codes)}) and their bundles carry no language profile",
                                               evidence, 0.0)
                continue
            texts = [samples[i] for i, _, _, _ in items]
            # the letter runs once, for the n-grams and the words alike: over a whole batch a table
            # lookup per code point costs a quarter of str.translate text by text
            runs = letter_runs_many(texts)
            avg, n = table.score_many(texts, runs)
            if len(pool.codes) == 1:
                for (i, evidence, short, share), row in zip(items, avg[:, 0].tolist()):
                    out[i] = self._single(pool, row, short, share, evidence)
                continue
            # each reference language's bias (the offset of its profile's scores, fitted on held-out
            # build text), and INSTALLED_PRIOR for a language someone installed a bundle for
            adjusted = avg + pool.prior
            if pool.words is not None and WORD_WEIGHT:
                wavg, _ = pool.words.score_words(texts, runs)
                adjusted = adjusted + WORD_WEIGHT * wavg
            scaled = adjusted * np.minimum(n, EFFECTIVE_NGRAMS)[:, None]
            post = np.exp(scaled - scaled.max(axis=1, keepdims=True))
            post /= post.sum(axis=1, keepdims=True)
            if len(items) == 1 and self.cld3 is None:  # one text: plain Python beats a dozen tiny numpy calls
                ranked = [_top_one(table.codes, avg[0].tolist(), adjusted[0].tolist(), post[0].tolist())]
            elif self.cld3 is None:
                ranked = _top_many(table.codes, avg, adjusted, post)
            for k, (i, evidence, short, _) in enumerate(items):
                if self.cld3 is not None:  # the vote reorders the candidates: the full rows are needed
                    out[i] = self._compare(pool, samples[i], short, evidence, self._voted(
                        samples[i], table.codes, avg[k], adjusted[k], post[k], evidence))
                else:
                    out[i] = self._compare(pool, samples[i], short, evidence, ranked[k])
        return out  # type: ignore[return-value]

    def _voted(self, sample: str, codes: list[str], avg: np.ndarray, adjusted: np.ndarray, post: np.ndarray,
               evidence: dict[str, Any]) -> "_Ranked":
        """The top candidates after CLD3's vote (unchanged when CLD3 does not vote)."""
        vote = self._cld3_vote(sample, codes, evidence)
        if vote is not None:
            post = post * vote
            post /= post.sum()
        ranked = _top_one(codes, avg.tolist(), adjusted.tolist(), post.tolist())
        return ranked._replace(voted=vote is not None)

    def _single(self, pool: _Pool, avg: float, short: bool, share: float, evidence: dict[str, Any]) -> Decision:
        """One language writes the script: check only that the text fits it."""
        code = pool.codes[0]
        threshold = self._limits(pool, code, short)[0]
        if threshold is not None:
            evidence["calibration"] = {"avg_logp": round(avg, 4), "threshold": round(threshold, 4),
                                       "kind": "short" if short else "long"}
            if avg < threshold:
                return self._unknown(f"the text fits none of the languages written in its script (closest: {code}, "
                                     "scoring below its own held-out sentences)", evidence, 0.0, guess=code)
        if code in pool.installed:
            return self._choose(code, 1.0, "script", evidence)
        return self._named(code, share, "script", evidence)

    def _compare(self, pool: _Pool, sample: str, short: bool, evidence: dict[str, Any], ranked: "_Ranked"
                 ) -> Decision:
        """Several languages write the script: the n-gram profiles tell them apart.  ``ranked``:
        the best candidates, best first, with their scores (as measured, and as ranked: with the
        word score, the reference biases and the installed languages' prior) and posteriors."""
        if pool.unprofiled:
            evidence["no_profile"] = pool.unprofiled
        names = ranked.names
        best = names[0]
        confidence, best_avg = ranked.posts[0], ranked.avgs[0]
        evidence["ngram_avg_logp"] = dict(zip(names, ranked.avgs))
        # what the candidates are ranked by, and the margins measured on: the n-gram score plus
        # WORD_WEIGHT x the word score, plus the language's bias (and INSTALLED_PRIOR if installed)
        evidence["ranking_score"] = dict(zip(names, ranked.ranking))
        # what the ranking score adds to the measured scores per language (the reference bias,
        # and INSTALLED_PRIOR), where it is not 0: why a close call went the way it did
        added = {n: pool.added[n] for n in names if n in pool.added}
        if added:
            evidence["ranking_bias"] = added
        evidence["posterior"] = dict(zip(names[:2], ranked.posts))
        runner = names[1] if len(names) > 1 else None
        voted = ranked.voted
        threshold, typical = self._limits(pool, best, short)
        if threshold is not None:
            evidence["calibration"] = {"avg_logp": best_avg, "threshold": threshold,
                                       "kind": "short" if short else "long"}
        by = "n-gram profile" + (" + cld3" if voted else "")
        if best in pool.installed:
            if typical is None or best_avg < typical:
                veto = self._veto(sample, best, evidence)
                if veto:
                    return self._unknown(veto, evidence, confidence, guess=best)
            # applies even when CLD3 agrees: CLD3 calls Assamese Bengali, so its "yes" proves little
            if threshold is not None and best_avg < threshold:
                return self._unknown(f"the text fits none of the languages the router knows (closest: {best}, "
                                     "scoring below its own held-out sentences)", evidence, confidence, guess=best)
            if confidence < self.min_confidence and runner is not None:
                return self._unknown(f"cannot tell {best} from {runner} (confidence {confidence:.2f})",
                                     evidence, confidence, guess=best)
            # CLD3's vote, when it agreed, is evidence the n-gram margin does not see
            if runner is not None and not voted and ranked.margin < ROUTE_MARGIN:
                return self._unknown(f"cannot tell {best} ({name_of(best)}) from {runner} ({name_of(runner)}) "
                                     "with the margin routing to a bundle needs", evidence, confidence, guess=best)
            return self._choose(best, confidence, by, evidence)
        if threshold is not None and best_avg < threshold:
            return self._unknown(f"the text fits none of the languages the router knows (closest: {best}, "
                                 "scoring below its own held-out sentences)", evidence, confidence, guess=best)
        if runner is not None and ranked.margin < NAME_MARGIN:
            return self._unknown(f"cannot tell {best} ({name_of(best)}) from {runner} ({name_of(runner)})", evidence,
                                 confidence, guess=best)
        return self._named(best, confidence, by, evidence)

    # -- candidates and their profiles ----------------------------------------------------

    def _pool(self, script: str, installed_only: bool) -> _Pool | None:
        """The languages written in ``script``; only installed ones when asked and there are any."""
        key = (script, installed_only)
        if key not in self._pools:
            inst = [code for code, group in self._by_code.items()
                    if any(script in c.scripts or not c.scripts for c in group)]
            refs = self.references.by_script(script) if self.references is not None else []
            if installed_only and inst:
                codes = inst
            else:
                codes = inst + [code for code in refs if code not in inst]
            self._pools[key] = _Pool(codes, set(inst)) if codes else None
        return self._pools[key]

    def _table(self, pool: _Pool) -> ScoreTable:
        """The pool's profiles as one score table, built on first use.  A reference profile
        wherever the references have the language, except that a lone installed language is
        checked against its bundle's own profile (so a script that settles the language never
        reads the reference tables); a bundle's profile for a language the references lack."""
        if pool.table is None:
            with self._lock:  # one router serves many threads (the MCP and web servers)
                if pool.table is None:
                    codes, tables, unprofiled = [], [], []
                    for code in pool.codes:
                        bundle = self._bundle_profile_of(code)
                        if self._uses_reference(pool, code):
                            codes.append(code)
                            tables.append(self.references.table(code))  # type: ignore[union-attr]
                        elif bundle is not None:
                            codes.append(code)
                            tables.append(_profile_table(bundle))
                        else:
                            unprofiled.append(code)
                    pool.unprofiled = unprofiled
                    pool.index = {code: i for i, code in enumerate(codes)}
                    pool.prior = np.array([(INSTALLED_PRIOR if code in pool.installed else 0.0)
                                           + (self.references.languages[code].bias  # type: ignore[union-attr]
                                              if self._uses_reference(pool, code) else 0.0) for code in codes])
                    pool.added = {c: round(float(v), 4) for c, v in zip(codes, pool.prior) if v}
                    pool.table = ScoreTable(codes, tables)
                    if self.references is not None and all(self._uses_reference(pool, c) for c in codes):
                        words = [self.references.word_table(c) for c in codes]
                        if codes and all(w is not None for w in words):
                            pool.words = ScoreTable(codes, words)  # type: ignore[arg-type]
        return pool.table

    def _uses_reference(self, pool: _Pool, code: str) -> bool:
        """Whether ``code`` is scored by its reference profile in this pool (else by its bundle's)."""
        if self.references is None or code not in self.references.languages:
            return False
        return not (len(pool.codes) == 1 and code in pool.installed)

    def _bundle_profile_of(self, code: str) -> Profile | None:
        """The profile of the language's most preferred bundle that has a usable one."""
        return next((c.profile for c in self._by_code.get(code, [])
                     if c.profile is not None and c.profile.orders == ORDERS), None)

    def _limits(self, pool: _Pool, code: str, short: bool) -> tuple[float | None, float | None]:
        """(threshold, 10th percentile) of a language in this pool, computed once."""
        key = (code, short)
        if key not in pool.limits:
            threshold = self._threshold(pool, code, short)
            pool.limits[key] = (None if threshold is None else round(threshold, 4),
                                self._percentile(pool, code, short, "p10"))
        return pool.limits[key]

    def _percentile(self, pool: _Pool, code: str, short: bool, name: str) -> float | None:
        if self._uses_reference(pool, code):
            return self.references.languages[code].percentile(short, name)  # type: ignore[union-attr]
        profile = self._bundle_profile_of(code)
        return profile.percentile(short, name) if profile is not None else None

    def _threshold(self, pool: _Pool, code: str, short: bool) -> float | None:
        """Mean log-probability below which a text is "not this language"."""
        if self._uses_reference(pool, code):
            ref = self.references.languages[code]  # type: ignore[union-attr]
            low, mid = ref.percentile(short, "p1"), ref.percentile(short, "p50")
            slack = REFERENCE_SLACK if code in pool.installed else NAME_SLACK
            return None if low is None or mid is None else low - slack * max(0.0, mid - low)
        profile = self._bundle_profile_of(code)
        return profile.threshold(short) if profile is not None else None

    # -- CLD3 and py3langid ---------------------------------------------------------------

    def _cld3_vote(self, text: str, langs: list[str], evidence: dict[str, Any]) -> np.ndarray | None:
        """CLD3's factor per candidate language: it discriminates only among languages it knows."""
        if self.cld3 is None:
            return None
        from .cld3 import knows

        result = self.cld3(text)
        evidence["cld3"] = {**result.to_json(), "bcp47": result.language}
        if not result.reliable or not result.language or len(langs) < 2:
            return None
        if not any(knows(lang) for lang in langs):
            return None
        factors = []
        for lang in langs:
            if not knows(lang):
                factors.append(result.probability)  # CLD3 cannot speak for it: neutral
            elif lang.split("-")[0] == result.language:
                factors.append(result.probability)
            else:
                factors.append(max(1.0 - result.probability, 1e-6) / 100.0)
        return np.asarray(factors, dtype=np.float64)

    def _veto(self, sample: str, best: str, evidence: dict[str, Any]) -> str | None:
        """CLD3 or py3langid is sure of a language it knows that has no bundle, and the n-grams
        chose an installed language it also knows: e.g. Dutch text, a language the references
        lack, that the n-grams found closest to English."""
        from .cld3 import knows

        installed = set(self._by_code)
        cld3 = evidence.get("cld3")
        if cld3 and cld3["reliable"] and cld3["probability"] >= CLD3_VETO_PROBABILITY:
            said = canonical(cld3["bcp47"]) if cld3["bcp47"] else ""
            if said and knows(said) and knows(best) and said != best and said not in installed:
                return (f"CLD3 identifies the text as {cld3['bcp47']!r} (probability {cld3['probability']:.2f}), "
                        "which has no bundle")
        if self.langid is not None and self.langid.knows(best):
            result = self.langid(sample)
            evidence["py3langid"] = result.to_json()
            said = result.language
            if result.probability >= CLD3_VETO_PROBABILITY and said and said != best and said not in installed:
                return (f"py3langid identifies the text as {said!r} (probability {result.probability:.2f}), "
                        "which has no bundle")
        return None

    # -- answers --------------------------------------------------------------------------

    def _choose(self, code: str, confidence: float, by: str, evidence: dict[str, Any]) -> Decision:
        """The language's preferred bundle (registry order, ``--taxonomy`` first)."""
        chosen = self._by_code[code][0]
        evidence["by"] = by
        return Decision(chosen.language, chosen.name, chosen.path, float(confidence), f"routed by {by}", evidence)

    def _named(self, code: str, confidence: float, by: str, evidence: dict[str, Any]) -> Decision:
        evidence["by"] = by
        line = self._no_bundle_lines.get(code)
        if line is None:  # the catalogue lookup behind it stats files: once per language, not per sentence
            line = self._no_bundle_lines[code] = no_bundle_line(code)
        return Decision(code, None, None, float(confidence), line, evidence)

    def _unknown(self, why: str, evidence: dict[str, Any], confidence: float, guess: str | None = None) -> Decision:
        if guess:
            evidence["closest"] = guess
        langs = ", ".join(self.languages) or "none"
        return Decision(None, None, None, float(confidence),
                        f"{why}; installed languages: {langs}; pass --lang to choose", evidence)


def _profile_table(profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """A bundle profile as (n-gram hashes, quantized log-probabilities), like a reference's."""
    grams = list(profile.logp)
    return gram_hashes(grams), quantize_logp(np.fromiter(profile.logp.values(), dtype=np.float64, count=len(grams)))


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


def _tally(text: str) -> tuple[int, str | None, int]:
    """(letters, dominant script, its letters) of one text, as :func:`span_tallies` counts them
    (ties to the alphabetically first script), by a Counter: cheaper than numpy for one text."""
    counts = script_counts(text)
    if not counts:
        return 0, None, 0
    top = max(counts.values())
    return sum(counts.values()), min(code for code, c in counts.items() if c == top), top


class _Ranked(NamedTuple):
    """A text's best candidates (at most three), best first: their n-gram scores and ranking
    scores (rounded to four places, as the evidence shows them), their posteriors (the same),
    and the ranking margin of the best over the runner-up (unrounded: what the margins test)."""

    names: list[str]
    avgs: list[float]
    ranking: list[float]
    posts: list[float]
    margin: float
    voted: bool = False


def _top_one(codes: list[str], avg: list[float], adjusted: list[float], post: list[float]) -> _Ranked:
    """The three best columns of one text, as :func:`_top_many` ranks them (stable order)."""
    top = sorted(range(len(post)), key=lambda j: -post[j])[:3]
    margin = adjusted[top[0]] - adjusted[top[1]] if len(top) > 1 else float("inf")
    return _Ranked([codes[j] for j in top], [round(avg[j], 4) for j in top], [round(adjusted[j], 4) for j in top],
                   [round(post[j], 4) for j in top], margin)


def _top_many(codes: list[str], avg: np.ndarray, adjusted: np.ndarray, post: np.ndarray) -> list[_Ranked]:
    """:func:`_top_one` for every row at once (one numpy pass instead of Python per text)."""
    order = np.argsort(-post, axis=1, kind="stable")[:, :3]
    row = np.arange(len(order))[:, None]
    top_adj = adjusted[row, order]
    margins = (top_adj[:, 0] - top_adj[:, 1] if order.shape[1] > 1 else np.full(len(order), np.inf)).tolist()
    names = np.asarray(codes, dtype=object)[order].tolist()
    avgs = avg[row, order].round(4).tolist()
    posts = post[row, order].round(4).tolist()
    return list(map(_Ranked, names, avgs, top_adj.round(4).tolist(), posts, margins))


def _settled(decision: Decision) -> bool:
    """Whether a sentence's head names its language clearly enough not to read further: a
    language, and (when several were ranked) a ranking margin of :data:`SETTLED_MARGIN`."""
    if decision.language is None:
        return False
    ranking = decision.evidence.get("ranking_score")
    if not ranking or len(ranking) < 2:
        return True  # the script alone decided
    first, second = list(ranking.values())[:2]
    return first - second >= SETTLED_MARGIN


def _only_script(text: str, script: str) -> str:
    """``text`` with the letters of other scripts blanked: in "अमित शाह visited Delhi", the
    Devanagari name is no evidence for or against the Latin-script languages (every one of its
    n-grams is unseen by them), yet it pulled the text below English's calibration."""
    keep = {ch: ch if script_of(ch) in (script, None) else " " for ch in set(text)}
    return "".join(map(keep.__getitem__, text))


def _few_words(text: str) -> bool:
    """Fewer than :data:`MIN_REFERENCE_WORDS` distinct space-separated words (looked at only up
    to a few more than that: a long text is not split whole)."""
    head = text.split(None, 2 * MIN_REFERENCE_WORDS)
    if len(set(head[:2 * MIN_REFERENCE_WORDS])) >= MIN_REFERENCE_WORDS:
        return False
    if len(head) <= 2 * MIN_REFERENCE_WORDS:  # the whole text was split
        return True
    return len(set(text.split())) < MIN_REFERENCE_WORDS  # "Delhi Delhi Delhi Delhi Delhi Delhi Mumbai"


def _chunks(spans: list[tuple[int, int]], max_spans: int = 256,
            max_chars: int = 32_768) -> list[list[tuple[int, int]]]:
    """Consecutive spans in groups small enough to score together with bounded memory (a group
    has at most ~4 n-grams per character: its scratch arrays are reused, not reallocated)."""
    out: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for span in spans:
        if current and (len(current) >= max_spans or span[1] - current[0][0] > max_chars):
            out.append(current)
            current = []
        current.append(span)
    if current:
        out.append(current)
    return out


def _head(text: str, limit: int) -> str:
    """The first ``limit`` characters of a sentence, cut back to a space when one is near (a
    word cut in two would score as two made-up words)."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", limit - 24, limit)
    return text[:cut if cut > 0 else limit]


def sample_spans(length: int, limit: int) -> list[tuple[int, int]] | None:
    """Where :func:`_sample` cuts a text of ``length`` characters (None: it takes all of it);
    also used to cut the same sample from a file too large to read whole (edge_finer/bigfile.py)."""
    if length <= limit:
        return None
    step, width = length // 10, limit // 10
    return [(i * step, i * step + width) for i in range(10)]


def _sample(text: str, limit: int) -> str:
    """Up to ``limit`` characters: all of a short text, else ten slices spread over it."""
    spans = sample_spans(len(text), limit)
    if spans is None:
        return text
    return "\n".join(text[a:b] for a, b in spans)
