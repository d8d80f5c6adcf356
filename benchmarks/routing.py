"""Routing accuracy and cost on held-out text of every language in ``../shared/data``.

What the router must do (issue 14): route sentences of installed languages to their bundle,
and name sentences of every other language as that language, or say "unknown" -- never hand
them to an installed neighbour's bundle.  Sentences come from :func:`quantize.langrefs.
benchmark_texts`: the dev splits, and the third of the dev-only splits and ``text/`` files that
the reference build never reads (``quantize.langrefs.held_out``).

Scenarios:
- ``default``: the shipped bundles (plus ``--extra`` folders) and the shipped references, no
  CLD3, no py3langid (the default install).  One row per language; the close pairs (Assamese
  and Bishnupriya against Bengali, the Devanagari languages against Hindi) also on their own.
- ``never seen``: each language without a bundle is taken out of the references in turn and its
  sentences are routed: how often text of a language the router has never seen reaches an
  installed bundle.  With and without py3langid (when installed) as a veto.
- ``cost``: routing set against annotation, side by side, one thread, medians of repeats, per
  installed language: ``--route sentence`` (a document of 200 sentences routed sentence by
  sentence, each sentence then annotated alone, as the CLI does) and ``--route document`` (the
  document routed once, then annotated in model batches).  Plus what loading the references
  costs, and the file's size.

    python -m benchmarks.routing [--extra DIR] [--per-source 300] [--repeats 5]

Writes ``benchmarks/results/routing.json`` and ``benchmarks/results/routing.md``.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterator

from benchmarks.report import save_results

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
LONG = 20
#: The close pairs reported on their own: (language, the installed neighbour it must not reach).
PAIRS = [("as", "bn"), ("bpy", "bn"), ("mr", "hi"), ("ne", "hi"), ("bho", "hi"), ("mai", "hi"), ("mag", "hi"),
         ("hne", "hi"), ("sa", "hi"), ("pcm", "en"), ("de", "en"), ("fr", "en"), ("es", "en"), ("sv", "en"),
         ("ig", "yo"), ("zu", "sw"), ("ur", "-")]


def benchmark_sentences(per_source: int) -> dict[str, list[str]]:
    """Language → held-out sentences (up to ``per_source`` of each source, a seeded sample)."""
    from quantize.langrefs import benchmark_texts

    out: dict[str, list[str]] = {}
    for code, sources in sorted(benchmark_texts().items()):
        for k, (_, sents) in enumerate(sources):
            pick = list(sents)
            random.Random(f"{code}-{k}").shuffle(pick)
            out.setdefault(code, []).extend(pick[:per_source])
    return out


_BASE: list = []


def make_router(references, langid: bool = False):
    """The installed bundles with these references; CLD3 off, py3langid on only if asked."""
    from edge_finer.pylangid import load_voter
    from edge_finer.router import Router

    if not _BASE:
        _BASE.append(Router.installed(use_cld3=False))
    base = _BASE[0]
    voter = None
    if langid:
        os.environ.pop("EDGE_FINER_LANGID", None)
        voter = load_voter()
    return Router(base.candidates, None, base.min_confidence, base.problems, references, voter)


def route_all(router, sets: dict[str, list[str]]) -> dict[str, dict[str, Counter]]:
    """{"long"|"short": {true language: Counter(answer)}}; an answer is a language code (with
    or without a bundle) or "unknown"."""
    out: dict[str, dict[str, Counter]] = {"long": defaultdict(Counter), "short": defaultdict(Counter)}
    for lang, sents in sets.items():
        for s in sents:
            if not _has_letters(s):
                continue  # "(( (( ((": in no language at all
            d = router.route(s)
            out["long" if len(s.strip()) >= LONG else "short"][lang][d.language or "unknown"] += 1
    return out


def _has_letters(text: str) -> bool:
    from edge_finer.langprofile import letter_runs

    return bool(letter_runs(text))


def _long(sents: list[str]) -> Iterator[str]:
    """The sentences the targets count: >= LONG characters, with letters."""
    return (s for s in sents if len(s.strip()) >= LONG and _has_letters(s))


def show_misrouted(router, sets: dict[str, list[str]], installed: set[str]) -> None:
    """The long sentences that went wrong, for a person to read (stderr only: the data stays out of
    the committed results): other languages handed to an installed bundle, installed languages
    not routed to theirs."""
    for lang, sents in sets.items():
        for s in _long(sents):
            d = router.route(s)
            got = d.language or "unknown"
            if (lang in installed and got != lang) or (lang not in installed and d.bundle is not None):
                print(f"{lang} -> {got}: {s[:160]}", file=sys.stderr)


#: py3langid's probability above which the audit takes its reading of a sentence's language.
AUDIT_PROBABILITY = 0.9


def audit_to_installed(router, sets: dict[str, list[str]], installed: set[str], voter) -> dict:
    """The sentences of languages without a bundle that reached an installed bundle, read by an
    independent identifier (py3langid, which the default router does not consult): how many it
    also reads as the installed language they were routed to.  A sentence's language here is
    its corpus's (an English quotation in a Nigerian Pidgin news corpus counts as Pidgin), so
    those it reads so are text of the installed language inside another language's corpus: the
    "never" target cannot be met on them.  Reported beside the headline, never instead of it."""
    c = Counter()
    pairs: dict[str, int] = Counter()
    for lang, sents in sets.items():
        if lang in installed:
            continue
        for s in _long(sents):
            d = router.route(s)
            if d.bundle is None:
                continue
            c["to_installed"] += 1
            judged = voter(s)
            if judged.language == d.language and judged.probability >= AUDIT_PROBABILITY:
                c["judge_agrees"] += 1
                pairs[f"{lang}->{d.language}"] += 1
    return {"to_installed": c["to_installed"], "judge_agrees": c["judge_agrees"],
            "probability": AUDIT_PROBABILITY, "by_pair": dict(pairs.most_common())}


def summarise(table: dict[str, Counter], installed: set[str]) -> dict:
    """Installed languages: share routed right.  Others: share unknown or named as themselves,
    and share handed to an installed bundle (the silent wrong answer)."""
    t = Counter()
    for lang, row in table.items():
        n = sum(row.values())
        if lang in installed:
            t["in"] += n
            t["in_right"] += row[lang]
            t["in_unknown"] += row["unknown"]
        else:
            t["out"] += n
            t["out_ok"] += row[lang] + row["unknown"]
            t["out_named"] += row[lang]
            t["out_installed"] += sum(v for k, v in row.items() if k in installed)
    pct = lambda a, b: round(100 * t[a] / max(1, t[b]), 2)  # noqa: E731
    return {"installed_sentences": t["in"], "installed_right": pct("in_right", "in"),
            "installed_unknown": pct("in_unknown", "in"), "other_sentences": t["out"],
            "other_ok": pct("out_ok", "out"), "other_named": pct("out_named", "out"),
            "other_to_installed": pct("out_installed", "out")}


def sentence_mode(router, sets: dict[str, list[str]], installed: set[str],
                  whole: dict | None = None) -> dict:
    """``--route sentence`` against the whole-sentence answers above: each language's sentences
    (one per line) routed by one ``route_sentences`` call, as the CLI routes a file, and every
    segment that is exactly one benchmark sentence compared with ``route`` of that sentence.
    Sentence mode reads a sentence's head first and the rest only when the head leaves it open
    (``edge_finer.router.SENTENCE_HEAD_CHARS``): this is what that costs in answers.  ``whole``:
    the whole-sentence decisions by sentence, filled here and reused by later calls (they do not
    depend on sentence mode's settings)."""
    whole = {} if whole is None else whole
    table: dict[str, Counter] = defaultdict(Counter)
    whole_table: dict[str, Counter] = defaultdict(Counter)  # the same sentences, routed whole
    same = compared = segments = 0
    for lang, sents in sets.items():
        lines = [s.strip() for s in _long(sents) if "\n" not in s.strip()]
        if not lines:
            continue
        document = "\n".join(lines)
        wanted = set(lines)
        for seg in router.route_sentences(document):
            segments += 1
            piece = document[seg.start:seg.end].strip()
            if piece not in wanted:
                continue  # a line the segmenter cut into several sentences
            if piece not in whole:
                whole[piece] = router.route(piece)
            routed_whole = whole[piece]
            compared += 1
            same += (seg.decision.language, seg.decision.bundle) == (routed_whole.language, routed_whole.bundle)
            table[lang][seg.decision.language or "unknown"] += 1
            whole_table[lang][routed_whole.language or "unknown"] += 1
    return {"sentences": compared, "segments": segments, "same_answer": round(100 * same / max(1, compared), 2),
            "summary": summarise(table, installed), "summary_whole": summarise(whole_table, installed)}


#: (head characters, settling margin) points of the sentence-head table; the shipped point is
#: ``edge_finer.router.SENTENCE_HEAD_CHARS`` / ``SETTLED_MARGIN``.
HEAD_SWEEP = [(head, margin) for head in (48, 64, 80, 96) for margin in (0.3, 0.5, 0.7, 1.0)]


def head_sweep(router, sets: dict[str, list[str]], installed: set[str], whole: dict | None = None) -> list[dict]:
    """Sentence mode's head and settling margin, moved together: how many sentences are read
    twice, and what reading less does to the answers (``sentence_mode`` at each point, all points
    sharing ``whole``, the whole-sentence decisions)."""
    whole = {} if whole is None else whole
    from edge_finer import router as routing

    shipped = routing.SENTENCE_HEAD_CHARS, routing.SETTLED_MARGIN
    settle = routing._settled
    rows = []
    try:
        # first the router before the heads: one read of SENTENCE_SAMPLE_CHARS (margin None)
        for head, margin in [(routing.SENTENCE_SAMPLE_CHARS, None), *HEAD_SWEEP]:
            routing.SENTENCE_HEAD_CHARS, routing.SETTLED_MARGIN = head, (shipped[1] if margin is None else margin)
            open_heads = 0

            def counting(decision, settle=settle, once=margin is None):
                nonlocal open_heads
                answer = once or settle(decision)
                open_heads += not answer
                return answer

            routing._settled = counting  # asked only of sentences longer than their head
            row = sentence_mode(router, sets, installed, whole)
            again = round(100 * open_heads / max(1, row["segments"]), 2)
            rows.append({"head": head, "margin": margin, "read_again": again, "same_answer": row["same_answer"],
                         **row["summary"]})
    finally:
        routing.SENTENCE_HEAD_CHARS, routing.SETTLED_MARGIN = shipped
        routing._settled = settle
    return rows


def never_seen(references, sets: dict[str, list[str]], installed: set[str], langid: bool) -> dict:
    """Each language without a bundle, taken out of the references: where do its sentences go?"""
    rows, total = {}, Counter()
    for lang in sorted(sets):
        if lang in installed or lang not in references.languages:
            continue
        router = make_router(references.without([lang]), langid)
        c = Counter()
        for s in _long(sets[lang]):
            d = router.route(s)
            c["installed:" + d.language if d.bundle else ("named" if d.language else "unknown")] += 1
        n = sum(c.values())
        bad = sum(v for k, v in c.items() if k.startswith("installed:"))
        rows[lang] = {"sentences": n, "to_installed": round(100 * bad / max(1, n), 2),
                      "answers": dict(c.most_common())}
        total["n"] += n
        total["bad"] += bad
    return {"languages": rows, "to_installed": round(100 * total["bad"] / max(1, total["n"]), 2),
            "sentences": total["n"]}


#: (ROUTE_MARGIN, INSTALLED_PRIOR, REFERENCE_SLACK, WORD_WEIGHT, reference biases on) points of
#: the trade-off table; the first is the default.  The biases are the file's (fitted at the
#: default weight), so a row of another weight shows that weight with them, not refitted.
SWEEP = [(0.05, 0.0, 0.5, 0.5, True), (0.05, 0.0, 0.5, 0.5, False), (0.15, 0.0, 0.5, 0.7, False),
         (0.05, 0.0, 0.5, 0.0, True), (0.0, 0.0, 0.5, 0.5, True), (0.1, 0.0, 0.5, 0.5, True),
         (0.15, 0.0, 0.5, 0.5, True), (0.05, 0.0, 0.25, 0.5, True), (0.05, 0.0, 1.0, 0.5, True),
         (0.05, 0.02, 0.5, 0.5, True), (0.05, 0.0, 0.5, 0.3, True), (0.05, 0.0, 0.5, 0.7, True)]
#: Route margins tried on the tuning text.
TUNING_MARGINS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
#: Word weights tried on the tuning text (0: the n-grams alone).
TUNING_WORD_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0)
#: Pulls of the biases towards 0 (``quantize.route_tuning.BIAS_L2``) tried on the tuning text.
TUNING_L2 = (0.003, 0.01, 0.03, 0.1)
#: The issue's share (%) for installed languages routed right and for other languages unknown or
#: named as themselves.
TARGET = 99.0


def trade_off(references, sets: dict[str, list[str]], installed: set[str]) -> list[dict]:
    """The router's tunable constants, moved one at a time: what each point buys and costs."""
    import edge_finer.router as router_mod

    names = ("ROUTE_MARGIN", "INSTALLED_PRIOR", "REFERENCE_SLACK", "WORD_WEIGHT")
    saved = [getattr(router_mod, k) for k in names]
    rows = []
    try:
        for *point, biased in SWEEP:
            for k, v in zip(names, point):
                setattr(router_mod, k, v)
            refs = references if biased else references.without_biases()
            s = summarise(route_all(make_router(refs), sets)["long"], installed)
            unseen = never_seen(refs, sets, installed, langid=False)
            margin, prior, slack, weight = point
            rows.append({"route_margin": margin, "installed_prior": prior, "reference_slack": slack,
                         "word_weight": weight, "biases": biased, **s,
                         "never_seen_to_installed": unseen["to_installed"]})
    finally:
        for k, v in zip(names, saved):
            setattr(router_mod, k, v)
    return rows


def choose_tuning_point(rows: list[dict]) -> dict | None:
    """The rule of :func:`tuning_text` over its (bias pull, word weight, margin) rows: the issue's
    targets read on the tuning text.  Of the points at which both shares reach :data:`TARGET`
    (installed languages routed right; other languages unknown or named as themselves), the one
    that hands the fewest other sentences to an installed bundle (the "never" target, which no
    point meets outright), the lighter weight, the smaller margin and the stronger pull of the
    biases towards 0 on a tie; where no point reaches both, of those that keep the other
    languages' target, the most installed sentences right."""
    both = [r for r in rows if r["installed_right"] >= TARGET and r["other_ok"] >= TARGET]
    if both:
        return min(both, key=lambda r: (r["other_to_installed"], r["word_weight"], r["route_margin"],
                                        -(r.get("l2") or 0.0)))
    safe = [r for r in rows if r["other_ok"] >= TARGET]
    return max(safe, key=lambda r: (r["installed_right"], -r["other_to_installed"], -r["word_weight"],
                                    -r["route_margin"])) if safe else None


def tuning_text(references, installed: set[str], composition: dict[str, int] | None = None,
                data: Path | None = None) -> dict:
    """How the route margin and the word weight were chosen: on held-out *build* text, never on
    the dev text above.

    The sentences the reference build kept out of each profile's counts to calibrate it (every
    tenth of each source by ``quantize.langrefs.tuning``, a sentence with its translations in
    other languages' files; :func:`quantize.route_tuning.tuning_scores`), ranked against every
    reference profile of their script by the n-gram score plus ``weight`` times the word score
    plus each language's bias; an installed language wins when it beats the runner-up by the
    margin, another language is named when it beats it by ``NAME_MARGIN``.  The biases are
    cross-fitted: each half of the tuning text (a sentence with its translations) is ranked with
    biases fitted on the other half at that weight, so the rows do not flatter the fit.  Ranking
    and margins only: the calibration thresholds (which turn away text that fits no language) are
    left out, so the figures are close to, not equal to, the router's.  The rule:
    :func:`choose_tuning_point`, over every pull of the biases towards 0 (:data:`TUNING_L2`);
    ``rows``: the grid at the chosen pull; ``unbiased``: the grid without biases (the router
    before them); ``composition`` (sentences per language the benchmark routes): the chosen
    point's shares also weighted like the benchmark (``chosen_as_benchmark``); ``data``: the
    shared data folder (default ``../shared/data``).
    """
    from edge_finer.router import EFFECTIVE_NGRAMS, NAME_MARGIN
    from quantize.route_tuning import cross_fitted_gaps, tuning_scores

    scores = tuning_scores(references, data)
    weights = TUNING_WORD_WEIGHTS if references.has_words else (0.0,)
    out: dict = {"sentences": sum(len(s.truth) for s in scores)}

    def shares(gaps: list[tuple[str, str, float]], margin: float, weight_of: dict[str, float] | None = None) -> dict:
        table_: dict[str, Counter] = defaultdict(Counter)
        for code, top, gap in gaps:
            need = margin if top in installed else NAME_MARGIN
            table_[code][top if gap >= need else "unknown"] += weight_of[code] if weight_of else 1
        return summarise(table_, installed)

    grid: dict[float | None, list[dict]] = {}
    gaps_at: dict[tuple[float | None, float], list[tuple[str, str, float]]] = {}
    for l2 in (*TUNING_L2, None):  # None: no biases
        rows = grid[l2] = []
        for w in weights:
            gaps = gaps_at[l2, w] = cross_fitted_gaps(scores, w, EFFECTIVE_NGRAMS, l2 or 0.0, biased=l2 is not None)
            rows += [{"l2": l2, "word_weight": w, "route_margin": m, **shares(gaps, m)} for m in TUNING_MARGINS]
    best = choose_tuning_point([r for l2 in TUNING_L2 for r in grid[l2]])
    out["chosen_l2"] = best and best["l2"]
    out["chosen_word_weight"], out["chosen"] = best and best["word_weight"], best and best["route_margin"]
    out["rows"] = grid[best["l2"]] if best else []
    out["by_l2"] = [choose_tuning_point(grid[l2]) for l2 in TUNING_L2]  # each pull's own best point
    out["unbiased"] = grid[None]
    out["unbiased_chosen"] = choose_tuning_point(grid[None])
    if composition and best:
        # the chosen point's shares with each language's tuning sentences counted as often as the
        # benchmark routes its sentences (Hindi has three sources there): what the tuning text
        # says the dev figures should be, composition aside from the text itself
        counts = Counter(t for s in scores for t in s.truth)
        weight_of = {code: composition.get(code, 0) / n for code, n in counts.items()}
        out["chosen_as_benchmark"] = shares(gaps_at[best["l2"], best["word_weight"]], best["route_margin"], weight_of)
    return out


def cost(sets: dict[str, list[str]], repeats: int, count: int) -> dict:
    """Routing time against annotation time, side by side, one thread (medians of repeats)."""
    from edge_finer.annotator import Annotator
    from edge_finer.langrefs import load_references

    router = make_router(load_references())
    out = {}
    for lang in router.languages:
        sents = [s for s in sets.get(lang, []) if len(s.strip()) >= LONG][:count]
        if not sents:
            continue
        document = "\n".join(sents)
        decision = router.route(document)
        if decision.bundle is None:
            continue
        ann = Annotator.load(str(decision.path), threads=1)
        ann.warm_up()
        router.route_sentences(document)  # warm: tables read, pool built
        cpu_t: dict[str, list[float]] = defaultdict(list)
        wall_t: dict[str, list[float]] = defaultdict(list)

        def timed(key: str, fn) -> object:
            c0, w0 = time.process_time(), time.perf_counter()
            result = fn()
            cpu_t[key].append(time.process_time() - c0)
            wall_t[key].append(time.perf_counter() - w0)
            return result

        for _ in range(repeats):  # interleaved, so a busy spell of the machine hits both sides
            segments = timed("route_sentences", lambda: router.route_sentences(document))
            timed("annotate_each", lambda: [ann.annotate(document[g.start:g.end]) for g in segments])
            timed("route_document", lambda: router.route(document))
            timed("annotate_stream", lambda: list(ann.stream(sents)))
            # the same sentences routed by one call each (a caller going line by line)
            timed("route_one_by_one", lambda: [router.route_sentences(s) for s in sents])
        m = {k: statistics.median(v) for k, v in cpu_t.items()}
        w = {k: statistics.median(v) for k, v in wall_t.items()}
        n = len(sents)

        def share(a: str, b: str, t: dict) -> float:
            return round(t[a] / (t[a] + t[b]), 4)

        out[lang] = {
            "bundle": decision.bundle, "sentences": n, "segments": len(segments),
            "route_us_per_sentence": round(1e6 * m["route_sentences"] / n, 1),
            "annotate_us_per_sentence": round(1e6 * m["annotate_each"] / n, 1),
            "sentence_share": share("route_sentences", "annotate_each", m),
            "route_document_ms": round(1e3 * m["route_document"], 2),
            "annotate_document_ms": round(1e3 * m["annotate_stream"], 1),
            "document_share": share("route_document", "annotate_stream", m),
            "one_by_one_us_per_sentence": round(1e6 * m["route_one_by_one"] / n, 1),
            "one_by_one_share": share("route_one_by_one", "annotate_each", m),
            "wall": {"sentence_share": share("route_sentences", "annotate_each", w),
                     "document_share": share("route_document", "annotate_stream", w),
                     "route_us_per_sentence": round(1e6 * w["route_sentences"] / n, 1),
                     "annotate_us_per_sentence": round(1e6 * w["annotate_each"] / n, 1)},
        }
    return out


_LOAD_PROBE = """
import time, json
t0 = time.perf_counter()
from edge_finer.router import Router
t1 = time.perf_counter()
r = Router.installed(use_cld3=False)
t2 = time.perf_counter()
r.route("ଓଡ଼ିଶାର ମୁଖ୍ୟମନ୍ତ୍ରୀ ଭୁବନେଶ୍ୱରରେ ଆଜି କହିଛନ୍ତି।")
t3 = time.perf_counter()
r.route("The committee met in the capital on Monday to discuss the new budget.")
t4 = time.perf_counter()
r.route("Die Regierung hat gestern in Berlin einen neuen Plan vorgestellt.")
t5 = time.perf_counter()
print(json.dumps({"import_ms": 1e3 * (t1 - t0), "router_installed_ms": 1e3 * (t2 - t1),
                  "first_route_script_settles_ms": 1e3 * (t3 - t2), "first_route_latin_ms": 1e3 * (t4 - t3),
                  "second_route_latin_ms": 1e3 * (t5 - t4)}))
"""


def load_cost(repeats: int, path: Path | None = None) -> dict:
    """What the references cost: file size, reading the index and the tables, building the
    Latin-script table, and cold routing in a fresh process (medians)."""
    import json

    import numpy as np

    from edge_finer.langrefs import REFS_FILE, ScoreTable, read_references

    path = path or REFS_FILE
    index, tables, latin = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        refs = read_references(path)
        t1 = time.perf_counter()
        codes = refs.by_script("Latn")
        for c in refs.languages:
            refs.table(c)
        t2 = time.perf_counter()
        ScoreTable(codes, [refs.table(c) for c in codes])
        t3 = time.perf_counter()
        index.append(t1 - t0)
        tables.append(t2 - t1)
        latin.append(t3 - t2)
    refs = read_references(path)
    memory = sum(h.nbytes + q.nbytes for h, q in (refs.table(c) for c in refs.languages))
    table = ScoreTable(refs.by_script("Latn"), [refs.table(c) for c in refs.by_script("Latn")])
    cold = []
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDGE_FINER_CLD3="0", EDGE_FINER_LANGID="0")
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, "-c", _LOAD_PROBE], capture_output=True, text=True, env=env,
                              cwd=str(ROOT), timeout=120)
        if proc.returncode == 0:
            cold.append(json.loads(proc.stdout))
    cold_median = {k: round(statistics.median(c[k] for c in cold), 1) for k in cold[0]} if cold else {}
    return {"file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
            "file_bytes": path.stat().st_size, "languages": len(refs.languages),
            "top_ngrams": refs.meta.get("top_ngrams", 4000), "top_words": refs.meta.get("top_words", 0),
            "read_index_ms": round(1e3 * statistics.median(index), 2),
            "read_tables_ms": round(1e3 * statistics.median(tables), 1),
            "build_latin_table_ms": round(1e3 * statistics.median(latin), 1),
            "tables_memory_mb": round(memory / 1e6, 2),
            "latin_table_memory_mb": round((table.matrix.nbytes + table.vocab.nbytes + table._keys.nbytes
                                            + table._rows.nbytes) / 1e6, 2),
            "latin_languages": len(table.codes), "cold_process": cold_median,
            "numpy": np.__version__}


def cpu() -> dict:
    from benchmarks.shipped import cpu_flags, machine

    m = machine()
    try:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        have = next((line for line in flags.splitlines() if line.startswith("Flags")), "")
        m["lscpu_flags"] = {f: f in have.split() for f in ("avx2", "avx512_vnni")}
    except (OSError, subprocess.SubprocessError):
        m["lscpu_flags"] = cpu_flags()
    try:
        m["load_average"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        pass
    m["nice"] = os.nice(0)
    return m


def _pct(x: float) -> str:
    return f"{x:.2f} %"


def markdown(res: dict) -> str:
    m = res["machine"]
    flags = m.get("lscpu_flags", {})
    s = res["default"]["summary"]["long"]
    lines = [
        "# Routing: languages with and without a bundle (held-out text of ../shared/data)", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime {m['onnxruntime']}; lscpu "
        f"flags: avx2 {'yes' if flags.get('avx2') else 'no'}, "
        f"avx512_vnni {'yes' if flags.get('avx512_vnni') else 'no'}. "
        f"One thread{', under `nice -n ' + str(m['nice']) + '`' if m.get('nice') else ''}, load average "
        f"{' '.join(m.get('load_average', []))} at the end (other jobs shared the machine when it is above 1): "
        "absolute times are then inflated; the shares compare routing and annotation measured side by side, "
        "interleaved.",
        f"Command: `{res['command']}`. Text: the dev splits, and the third of the dev-only splits and of the "
        "`text/` files that the reference build never reads (`quantize/langrefs.py`); up to "
        f"{res['per_source']} sentences per source. Installed: {', '.join(res['installed'])} (shipped bundles"
        f"{' + ' + ', '.join(res['extra']) if res['extra'] else ''}); no CLD3, no py3langid.", "",
        "## Done-when checks (sentences of >= 20 characters)", "",
        "| criterion | measured | target |", "|---|---|---|",
        f"| installed languages routed right | {_pct(s['installed_right'])} of {s['installed_sentences']} "
        f"(unknown {_pct(s['installed_unknown'])}) | >= 99 % |",
        f"| languages without a bundle: unknown or named as themselves | {_pct(s['other_ok'])} of "
        f"{s['other_sentences']} (named {_pct(s['other_named'])}) | >= 99 % |",
        f"| languages without a bundle handed to an installed bundle | {_pct(s['other_to_installed'])} | never |",
    ]
    c = res["cost"]
    if c:
        worst_s = max(v["sentence_share"] for v in c.values())
        worst_d = max(v["document_share"] for v in c.values())
        lines += [f"| `--route sentence`: routing / (routing + annotation), worst language | {_pct(100 * worst_s)} "
                  "| < 5 % |",
                  f"| `--route document`: the same, worst language | {_pct(100 * worst_d)} | < 5 % |"]
    sm = res.get("sentence_mode")
    if sm:
        t = sm["summary"]
        lines += ["", f"Sentence mode (`--route sentence`: each language's sentences, one per line, routed by one "
                  "`route_sentences` call; a sentence's head is read first, the rest only when the head leaves it "
                  f"open): of {sm['sentences']} sentences, {_pct(sm['same_answer'])} get the same answer as routed "
                  f"whole; installed routed right {_pct(t['installed_right'])}, others unknown or themselves "
                  f"{_pct(t['other_ok'])}, handed to an installed bundle {_pct(t['other_to_installed'])}."]
        w = sm.get("summary_whole")
        if w:
            lines[-1] += (f" The same sentences routed whole: {_pct(w['installed_right'])}, {_pct(w['other_ok'])} and "
                          f"{_pct(w['other_to_installed'])}: these are the lines the segmenter leaves whole, easier "
                          "than the lines it cuts (which the headline figures include).")
    audit = res.get("audit")
    if audit:
        pairs = ", ".join(f"{k} {v}" for k, v in audit["by_pair"].items()) or "none"
        lines += ["", f"Audit of the {audit['to_installed']} sentences handed to an installed bundle: py3langid (an "
                  "independent identifier the default router does not consult) reads "
                  f"{audit['judge_agrees']} of them as that installed language itself (probability >= "
                  f"{audit['probability']:g}; {pairs}). A sentence's language in this benchmark is its corpus's, "
                  "so those are text of the installed language inside another language's corpus (quotations, "
                  "titles), routed where their words belong; the rest (mostly lists of names and titles, which "
                  "py3langid reads otherwise or is unsure of) are misroutings. The headline figures count all of "
                  "them as wrong."]
    lines += ["", "## Every language (sentences of >= 20 characters)", "",
              "Installed languages: 'right' is the share routed to their bundle. Others: 'right' is the share "
              "named as themselves or unknown; 'to installed' is the share handed to an installed bundle.", "",
              "| language | installed | n | right | named | unknown | to installed | other answers |",
              "|---|---|---|---|---|---|---|---|"]
    installed = set(res["installed"])
    table = res["default"]["table"]["long"]
    from edge_finer.languages import name_of

    for lang in sorted(table):
        row = Counter(table[lang])
        n = sum(row.values())
        inst = lang in installed
        right = row[lang] if inst else row[lang] + row["unknown"]
        to_inst = sum(v for k, v in row.items() if k in installed and k != lang)
        others = ", ".join(f"{k} {v}" for k, v in row.most_common() if k not in (lang, "unknown"))
        lines.append(f"| {lang} ({name_of(lang)}) | {'yes' if inst else ''} | {n} | {100 * right / n:.1f} % | "
                     f"{row[lang]} | {row['unknown']} | {to_inst} | {others or '-'} |")
    lines += ["", "## Close pairs", "",
              "| text in | n | named as itself | unknown | to the installed neighbour | to another installed | "
              "other named |", "|---|---|---|---|---|---|---|"]
    for lang, neighbour in PAIRS:
        row = Counter(table.get(lang, {}))
        n = sum(row.values())
        if not n:
            continue
        other_inst = sum(v for k, v in row.items() if k in installed and k not in (lang, neighbour))
        other_named = sum(v for k, v in row.items() if k not in installed and k not in (lang, "unknown"))
        lines.append(f"| {lang} ({name_of(lang)}) vs {neighbour} | {n} | {row[lang]} | {row['unknown']} | "
                     f"{row.get(neighbour, 0)} | {other_inst} | {other_named} |")
    def answers(lang: str) -> str:
        row = Counter(table.get(lang, {}))
        parts = [f"{lang} {row[lang]}", f"unknown {row['unknown']}"]
        parts += [f"{k} {v}" for k, v in row.most_common() if k not in (lang, "unknown")]
        return f"{sum(row.values())}: {', '.join(parts)}"

    lines += ["", f"And the other way: Hindi sentences {answers('hi')}. Bengali sentences {answers('bn')}."]
    sh = res["default"]["summary"]["short"]
    lines += ["", f"Short sentences (< {LONG} characters; not part of the target): installed routed right "
              f"{_pct(sh['installed_right'])} of {sh['installed_sentences']}; others unknown or named as "
              f"themselves {_pct(sh['other_ok'])} of {sh['other_sentences']}, handed to an installed bundle "
              f"{_pct(sh['other_to_installed'])}."]
    lines += ["", "## Languages the router has never seen", "",
              "Each language without a bundle is taken out of the references in turn, and its sentences routed: "
              "the share that reaches an installed bundle is what text of a language outside the 51 risks "
              "(only the installed language's calibration stands in the way).", ""]
    header = "| language | n | to installed (n-grams only) |"
    sep = "|---|---|---|"
    variants = res["never_seen"]
    if "py3langid" in variants:
        header += " with py3langid veto |"
        sep += "---|"
    lines += [header, sep]
    base = variants["n-grams"]
    for lang, row in base["languages"].items():
        cells = f"| {lang} | {row['sentences']} | {row['to_installed']:.1f} % |"
        if "py3langid" in variants:
            cells += f" {variants['py3langid']['languages'][lang]['to_installed']:.1f} % |"
        lines.append(cells)
    total = f"| all | {base['sentences']} | {base['to_installed']:.2f} % |"
    if "py3langid" in variants:
        total += f" {variants['py3langid']['to_installed']:.2f} % |"
    lines.append(total)
    if "py3langid_default" in res:
        p = res["py3langid_default"]["summary"]["long"]
        lines += ["", f"With py3langid as a veto in the default scenario: installed routed right "
                  f"{_pct(p['installed_right'])}, others unknown or themselves {_pct(p['other_ok'])}, to installed "
                  f"{_pct(p['other_to_installed'])} (without: {_pct(s['installed_right'])}, {_pct(s['other_ok'])}, "
                  f"{_pct(s['other_to_installed'])})."]
    tune = res.get("tuning")
    if tune:
        lines += ["", "## Tuning text: how the biases' pull, `ROUTE_MARGIN` and `WORD_WEIGHT` were chosen", "",
                  f"Not the dev text above: the {tune['sentences']} held-out sentences (>= {LONG} characters) of the "
                  "reference build (every tenth sentence of each source, a sentence together with its translations "
                  "in other languages' files, which neither the n-gram nor the word tables counted; a language of "
                  "under 400 sentences, whose shipped tables count them all, is scored by tables counted without "
                  "its tenth), ranked against every reference language of their script by the n-gram "
                  "score plus the word weight times the word score plus the language's bias "
                  "(`quantize/route_tuning.py`: one number per language, fitted so that each language's held-out "
                  "sentences are likely, every language weighted alike, pulled towards 0 by `BIAS_L2`). The biases "
                  "are cross-fitted here: each half of the tuning text (a sentence with its translations) is ranked "
                  "with biases fitted on the other half at that weight; the shipped ones are fitted on all of it. "
                  "Ranking and margins only (no calibration thresholds). The rule: of the points at which both "
                  f">= {TARGET:g} % of installed-language sentences are routed right and >= {TARGET:g} % of other "
                  "languages' sentences come out unknown or as themselves, the one that hands the fewest of the "
                  "latter to an installed bundle (the lighter weight, then the smaller margin, then the stronger "
                  f"pull, on a tie): pull **{tune.get('chosen_l2')}**, word weight "
                  f"**{tune.get('chosen_word_weight')}**, margin **{tune['chosen']}**. The word tables count "
                  "no entity tokens of the tagged corpora (names tell a corpus's topics, not its language).", ""]
        if tune.get("by_l2"):
            lines += ["Each pull's best point by the same rule:", "",
                      "| pull (L2) | word weight | route margin | installed right | others unknown or themselves | "
                      "others to installed |", "|---|---|---|---|---|---|"]
            for r in [*tune["by_l2"], tune.get("unbiased_chosen")]:
                if r:
                    lines.append(f"| {'no biases' if r['l2'] is None else r['l2']} | {r['word_weight']} | "
                                 f"{r['route_margin']} | {_pct(r['installed_right'])} | {_pct(r['other_ok'])} | "
                                 f"{_pct(r['other_to_installed'])} |")
            bench = tune.get("chosen_as_benchmark")
            if bench:
                lines += ["", "The tuning text counts each language about alike (a tenth of at most 6,000 "
                          f"sentences), the benchmark by source (up to {res.get('per_source')} sentences of each; Hindi "
                          "has three sources, English one). Weighted like the benchmark (each language's tuning sentences counted as often as the "
                          "benchmark routes its own), the chosen point gives installed right "
                          f"{_pct(bench['installed_right'])}, others unknown or themselves {_pct(bench['other_ok'])}, "
                          f"to installed {_pct(bench['other_to_installed'])}: what the tuning text expects of the "
                          "dev figures above."]
            lines += ["", f"The grid at the chosen pull ({tune.get('chosen_l2')}):", ""]
        lines += ["| word weight | route margin | installed right | installed unknown | others unknown or themselves | "
                  "others to installed |", "|---|---|---|---|---|---|"]
        for r in tune["rows"]:
            lines.append(f"| {r.get('word_weight', 0.0)} | {r['route_margin']} | {_pct(r['installed_right'])} | "
                         f"{_pct(r['installed_unknown'])} | {_pct(r['other_ok'])} | {_pct(r['other_to_installed'])} |")
    if res.get("trade_off"):
        lines += ["", "## Trade-off: the router's constants, on the dev text", "",
                  "`ROUTE_MARGIN` (how much an installed language must beat every other candidate by), "
                  "`INSTALLED_PRIOR` (added to an installed language's score when ranking), `REFERENCE_SLACK` "
                  "(how far below its held-out p1 a text may score and still go to an installed bundle) and "
                  "`WORD_WEIGHT` (the word tables' share of the ranking score; 0: the n-grams alone, the router "
                  "before the word tables), and the reference file's per-language biases on or off (off: the "
                  "router before them; the second row is the biases' own effect, the third the setting shipped "
                  "before them), moved one at a time; the first row is the shipped setting. A row of another "
                  "weight keeps the biases fitted at the shipped one. Shown to make the trade-off visible, not "
                  "used to choose: the pull, the margin and the weight were chosen on the tuning text.", "",
                  "| margin | prior | slack | word weight | biases | installed right | installed unknown | "
                  "others unknown or themselves | others to installed | never seen: to installed |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["trade_off"]:
            lines.append(f"| {r.get('route_margin', 0.0)} | {r['installed_prior']} | {r['reference_slack']} | "
                         f"{r.get('word_weight', 0.0)} | {'on' if r.get('biases', False) else 'off'} | "
                         f"{_pct(r['installed_right'])} | "
                         f"{_pct(r['installed_unknown'])} | {_pct(r['other_ok'])} | {_pct(r['other_to_installed'])} | "
                         f"{_pct(r['never_seen_to_installed'])} |")
    heads = res.get("heads")
    if heads:
        from edge_finer.router import SENTENCE_HEAD_CHARS, SETTLED_MARGIN

        lines += ["", "## Sentence mode: the head and the margin that settles it", "",
                  "`--route sentence` reads a sentence's first `SENTENCE_HEAD_CHARS` characters, and its first "
                  "`SENTENCE_SAMPLE_CHARS` (160) only when the head does not name a language by `SETTLED_MARGIN`. "
                  "Each point routes every language's sentences as the \"Sentence mode\" line above does; 'same "
                  "answer' compares with `route` of the whole sentence; 'read again': the share of sentences "
                  "scored twice. The first row is the router before the heads (one read of 160 characters). "
                  f"Shipped: head {SENTENCE_HEAD_CHARS}, margin {SETTLED_MARGIN:g}, chosen by the same answer "
                  "(what reading less costs), not by accuracy.", "",
                  "| head | margin | read again | same answer | installed right | others unknown or themselves "
                  "| others to installed |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['head']} | {'-' if r['margin'] is None else format(r['margin'], 'g')} | "
                  f"{_pct(r['read_again'])} | {_pct(r['same_answer'])} | "
                  f"{_pct(r['installed_right'])} | {_pct(r['other_ok'])} | {_pct(r['other_to_installed'])} |"
                  for r in heads]
    if c:
        lines += ["", "## Cost: routing against annotation (one thread, medians of "
                  f"{res['repeats']} interleaved repeats)", "",
                  "Times are CPU time of the process (`time.process_time`): with the other core busy, wall-clock "
                  "time includes random waits for a core that swung single shares by two points from run to run; "
                  "the wall-clock shares are in the last column (and in routing.json).", "",
                  "`--route sentence`: a document of the sentences (one per line) routed by one `route_sentences` "
                  "call (sentences scored together), each sentence then annotated alone (as the CLI does). "
                  "`--route document`: the document routed once, annotated in model batches (`stream`). "
                  "'one call each': `route_sentences` called once per sentence (a caller going line by line; "
                  "the CLI and the service route the whole text at once).", "",
                  "| language | bundle | sentences | route µs/sentence | annotate µs/sentence | share, sentence mode | "
                  "route ms/document | annotate ms/document | share, document mode | one call each: µs, share | "
                  "wall clock: sentence, document |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for lang, v in c.items():
            lines.append(f"| {lang} | {v['bundle']} | {v['sentences']} | {v['route_us_per_sentence']} | "
                         f"{v['annotate_us_per_sentence']} | {_pct(100 * v['sentence_share'])} | "
                         f"{v['route_document_ms']} | {v['annotate_document_ms']} | "
                         f"{_pct(100 * v['document_share'])} | "
                         f"{v['one_by_one_us_per_sentence']}, {_pct(100 * v['one_by_one_share'])} | "
                         f"{_pct(100 * v['wall']['sentence_share'])}, {_pct(100 * v['wall']['document_share'])} |")
    ld = res["load"]
    cold = ld.get("cold_process", {})
    lines += ["", "## The reference file", "",
              f"`{ld.get('file', 'edge_finer/data/langrefs.zip')}`: {ld['file_bytes'] / 1e6:.2f} MB, "
              f"{ld['languages']} languages ({ld.get('top_ngrams', 4000):,} n-grams and {ld.get('top_words', 0):,} words each, one byte per log-probability). Reading its index: {ld['read_index_ms']} ms "
              f"(on the first routing); its tables: {ld['read_tables_ms']} ms, {ld['tables_memory_mb']} MB (on the "
              f"first text whose script several languages write); the Latin-script table ({ld['latin_languages']} "
              f"languages): {ld['build_latin_table_ms']} ms, {ld['latin_table_memory_mb']} MB. A text whose script "
              "settles the language (Odia, Telugu ...) reads no table."]
    if cold:
        lines += ["", f"Cold, in a fresh process (medians): import {cold.get('import_ms')} ms, `Router.installed()` "
                  f"{cold.get('router_installed_ms')} ms, first routing of Odia text "
                  f"{cold.get('first_route_script_settles_ms')}"
                  f" ms, then of English text {cold.get('first_route_latin_ms')} ms (tables read, Latin table built), "
                  f"then German {cold.get('second_route_latin_ms')} ms."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extra", action="append", default=[], help="another folder of bundles to install")
    ap.add_argument("--per-source", type=int, default=300, help="sentences per source (dev split, text file)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--cost-sentences", type=int, default=200)
    ap.add_argument("--no-sweep", action="store_true", help="skip the tuning-text and trade-off tables (the slowest part)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--references", type=Path,
                    help="another reference file (e.g. built with other table sizes by python -m quantize.langrefs); "
                         "default: the shipped one")
    ap.add_argument("--show-misrouted", action="store_true",
                    help="print (to stderr, never to the results) the sentences routed to a wrong bundle or lost")
    args = ap.parse_args()
    from edge_finer.langrefs import load_references

    # the user's own bundles must not leak into the figures: an empty user folder
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="edge-finer-bench.")
    os.environ["EDGE_FINER_BUNDLES"] = os.pathsep.join(str(Path(p).resolve()) for p in args.extra)
    if args.references is not None:
        if not args.references.is_file():
            raise SystemExit(f"error: {args.references}: no such reference file")
        os.environ["EDGE_FINER_LANGREFS"] = str(args.references.resolve())
    else:
        os.environ.pop("EDGE_FINER_LANGREFS", None)
    os.environ["EDGE_FINER_LANGID"] = "0"
    started = time.perf_counter()
    sets = benchmark_sentences(args.per_source)
    refs = load_references()
    router = make_router(refs)
    installed = set(router.languages)
    res: dict = {"command": "python -m benchmarks.routing"
                 + "".join(f" --extra {e}" for e in args.extra)
                 + (f" --per-source {args.per_source}" if args.per_source != 300 else "")
                 + (f" --references {args.references}" if args.references is not None else ""),
                 "per_source": args.per_source, "repeats": args.repeats, "extra": args.extra,
                 "installed": sorted(installed), "sentences": {k: len(v) for k, v in sets.items()}}
    table = route_all(router, sets)
    res["default"] = {"table": {k: {lang: dict(c) for lang, c in v.items()} for k, v in table.items()},
                      "summary": {k: summarise(v, installed) for k, v in table.items()}}
    whole: dict = {}  # whole-sentence decisions, shared by sentence mode and its head table
    res["sentence_mode"] = sentence_mode(router, sets, installed, whole)
    print(f"default scenario done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    from edge_finer.pylangid import load_voter

    os.environ.pop("EDGE_FINER_LANGID")
    judge = load_voter()
    os.environ["EDGE_FINER_LANGID"] = "0"
    res["never_seen"] = {"n-grams": never_seen(refs, sets, installed, langid=False)}
    if judge is not None:
        res["audit"] = audit_to_installed(router, sets, installed, judge)
        res["never_seen"]["py3langid"] = never_seen(refs, sets, installed, langid=True)
        t = route_all(make_router(refs, langid=True), sets)
        res["py3langid_default"] = {"summary": {k: summarise(v, installed) for k, v in t.items()}}
    os.environ["EDGE_FINER_LANGID"] = "0"
    print(f"never-seen scenario done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    if args.show_misrouted:
        show_misrouted(router, sets, installed)
    if not args.no_sweep:
        res["tuning"] = tuning_text(refs, installed, {lang: sum(1 for _ in _long(sents)) for lang, sents in sets.items()})
        print(f"tuning text done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        res["trade_off"] = trade_off(refs, sets, installed)
        print(f"trade-off sweep done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        res["heads"] = head_sweep(router, sets, installed, whole)
        print(f"sentence-head sweep done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    res["cost"] = cost(sets, args.repeats, args.cost_sentences)
    res["load"] = load_cost(args.repeats, args.references.resolve() if args.references is not None else None)
    res["machine"] = cpu()
    res["seconds"] = round(time.perf_counter() - started)
    save_results(args.out, "routing", res, markdown(res))


if __name__ == "__main__":
    main()
