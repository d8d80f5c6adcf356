"""Build the router's reference language profiles: ``python -m quantize.langrefs``.

Reads every language with text in ``../shared/data`` (never copies it: only n-gram statistics
leave this script), builds one naive-Bayes n-gram profile per language (the model of a bundle's
``profile.json``: :mod:`edge_finer.langprofile`), calibrates it on held-out sentences, and writes
``edge_finer/data/langrefs.zip`` (shipped with the runtime; see :mod:`edge_finer.langrefs`).

The split is honest and shared with ``benchmarks/routing.py`` (which imports
:func:`benchmark_texts`): profiles are counted from train splits; dev splits are never read
here.  Where a language has no train split (the MultiCoNER v2 dev-only languages) and for the
unlabelled ``text/`` files, every third sentence is held out for the benchmark
(:func:`held_out`) and the other two thirds are used here; a sentence that translates one in
another language's file (the UDHR, LoResMT) is held out with it, so no profile counts the
translation of a sentence the benchmark routes (:mod:`quantize.parallel_text`).

Licences: the statistics are derived from the data, so each language's sources and their
licences are recorded in the file's index (``edge-finer``'s README lists them).  GUIT-AsTourNE
states no licence ("research use only"), so Assamese is built from the Leipzig sentences of
``text/asm`` alone; its dev split is still used by the benchmark.
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from edge_finer.langprofile import TOP_NGRAMS, letter_runs, ngrams
from edge_finer.langrefs import REFS_FILE, ScoreTable, gram_hashes, quantize_logp, text_hashes, write_references
from edge_finer.languages import LANGUAGES, canonical
from edge_finer.router import WORD_WEIGHT

from .data import gold_text, read_conll
from .parallel_text import group_keys
from .profile import LONG_CHARS
from .route_tuning import BIAS_L2, fit_biases, tuning_scores

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
#: Sentences read per language (spread over its sources): a top-4,000 profile is stable long
#: before this, and the build stays a few minutes on one core.
MAX_SENTENCES = 6000
#: Languages with fewer sentences are calibrated by 5-fold cross-validation (every sentence
#: scored by a profile that did not count it) instead of a 10 % hold-out.
KFOLD_BELOW = 400
PERCENTILES = (0.5, 1, 2, 5, 10, 25, 50)
#: Words kept per language (its most frequent): the word tables add what the character n-grams
#: average away -- a few function words ("क्या", "तुम", "है") that one close language uses and
#: its neighbour never does (see ``edge_finer.router.WORD_WEIGHT``).
TOP_WORDS = 3000
#: A language's sources are weighted by their size to this power when its tables are counted
#: (:func:`count_profile`): 0.5 lets a large corpus count most without drowning a small one of
#: another register.  Equal weights (0) and 0.25 were measured through the router's tuning rule
#: (``python -m benchmarks.routing_variants``): the tuning text prefers 0.5.
SOURCE_POWER = 0.5
MIN_CALIBRATION = 20

#: folder → (dataset, licence, source), from ``../shared/data/README.md``.
DATASETS: dict[str, tuple[str, str, str]] = {
    "multiconer2": ("MultiCoNER v2", "CC BY 4.0",
                    "diqiuzhuanzhuan/semeval-2023 @ 3f2f140; OMGarad/MultiCoNER-2 @ 5b6ae49"),
    "il-ner": ("IL-NER", "CC BY 4.0", "ltrc/IL-NER @ ee20565"),
    "masakhaner2": ("MasakhaNER 2.0", "CC BY-NC 4.0", "masakhane-io/masakhane-ner @ ba5843c"),
    "mahaner": ("L3Cube-MahaNER", "CC BY-NC-SA 4.0", "l3cube-pune/MarathiNLP @ 8ee29fa"),
    "everest-ner": ("EverestNER", "non-commercial only", "nowalab/everest-ner @ c8df849"),
    "fine-mibbic-sample": ("FiNE-MiBBiC sample", "MIT (upstream Few-NERD CC BY-SA 4.0)",
                           "PrachuryyaKaushik/FiNE-MiBBiC @ 387c4f2"),
}
#: Read by the benchmark, never by the build: no licence stated (research use only).
BENCHMARK_ONLY = {"guit-astourne": ("GUIT-AsTourNE", "none stated (research use only)",
                                     "nlp30/GUIT-AsTourNE @ b32650e")}
_UDHR = "UDHR text (OHCHR); MIT (wooorm/udhr @ d3d3827)"
_LORESMT = "CC BY-NC-SA 4.0 (panlingua/loresmt-2020 @ d320483)"
#: text/<iso3> → licence of its sentences, from ``../shared/data/README.md``.
TEXT_LICENCES: dict[str, str] = {
    "asm": "MIT (indian-nlp/assamese-dataset @ 7d71542); Leipzig Corpora Collection terms",
    "ben": _UDHR, "bho": f"CC BY-SA 4.0 (UD_Bhojpuri-BHTB); {_LORESMT}; {_UDHR}",
    "guj": f"CC BY-SA 4.0 (UD_Gujarati-GujTB); {_UDHR}", "hin": f"{_UDHR}; {_LORESMT}", "kan": _UDHR,
    "lus": _UDHR, "mag": f"{_LORESMT}; {_UDHR}", "mai": _UDHR, "mal": f"CC BY-SA 4.0 (UD_Malayalam-UFAL); {_UDHR}",
    "mar": _UDHR, "nep": f"{_UDHR}; Apache-2.0 (dadelani/nepali-ner @ 6bc3766)", "pan": _UDHR, "san": _UDHR,
    "snd": "CC BY-SA 4.0 (UD_Sindhi-Isra)", "tam": _UDHR, "tel": _UDHR, "urd": _UDHR,
}


def held_out(index: int) -> bool:
    """Sentences the benchmark keeps for itself where there is no dev split: every third (a
    sentence with translations elsewhere follows the first of them: :func:`_texts`)."""
    return index % 3 == 2


def read_conll_sentences(path: Path, names: bool = True) -> list[str]:
    """The sentences of a CoNLL file as text, as it is written: tokens joined by spaces, except
    next to a Han character (Chinese is written without them, and users give it so).

    ``names=False``: without the tokens tagged as an entity (the text the word tables count:
    words that tell a language, not the people and places its corpus happened to mention; "Paris"
    in the French table outvoted "visited" in "Barack Obama visited Paris.").  One string per
    sentence either way (empty when every token is a name), so the two lists line up."""
    return [gold_text([t for t, tag in zip(s.tokens, s.tags) if names or tag == "O"], "han-chars")[0]
            for s in read_conll(path)]


def read_lines(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [s for s in (line.strip() for line in fh) if s]


Texts = dict[str, list[tuple[dict[str, str], list[str]]]]
#: Language → for each of its sources, each sentence's key (:func:`quantize.parallel_text.group_keys`;
#: None: a source with a split of its own, whose keys are the sentences' places in what is read).
Keys = dict[str, list[list[int] | None]]


def _texts(data: Path, benchmark: bool, names: bool = True) -> Texts:
    """Language → [(source description, sentences)], for the build or for the benchmark;
    ``names=False``: each sentence without its entity tokens where a corpus tags them (in the same
    places: the lists line up with those of ``names=True``)."""
    return _texts_keyed(data, benchmark, names)[0]


def _texts_keyed(data: Path, benchmark: bool, names: bool = True) -> tuple[Texts, Keys]:
    """:func:`_texts`, and the keys of its sentences."""
    out: Texts = {}
    keys: Keys = {}
    # no dev split, a third held out: (language, source, sentences, the sentences returned)
    split: list[tuple[str, dict[str, str], list[str], list[str]]] = []

    def add(code: str, source: dict[str, str], sents: list[str], sent_keys: list[int] | None = None) -> None:
        if sents:
            out.setdefault(canonical(code), []).append((source, sents))
            keys.setdefault(canonical(code), []).append(sent_keys)

    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        info = DATASETS.get(folder.name) or (BENCHMARK_ONLY.get(folder.name) if benchmark else None)
        if info is None:
            continue
        for lang_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            train, dev = lang_dir / "train.conll", lang_dir / "dev.conll"
            source = {"dataset": info[0], "licence": info[1], "source": info[2],
                      "folder": f"{folder.name}/{lang_dir.name}"}
            if train.is_file():
                add(lang_dir.name, {**source, "split": "dev" if benchmark else "train"},
                    read_conll_sentences(dev if benchmark else train, names)
                    if (dev.is_file() or not benchmark) else [])
            elif dev.is_file():  # dev only: two thirds build, one third benchmark
                whole = read_conll_sentences(dev)
                split.append((lang_dir.name, {**source, "split": f"dev, {'a third' if benchmark else 'two thirds'}"},
                              whole, whole if names else read_conll_sentences(dev, names=False)))
    text = data / "text"
    if text.is_dir():
        for lang_dir in sorted(p for p in text.iterdir() if p.is_dir()):
            path = lang_dir / "sentences.txt"
            if not path.is_file():
                continue
            lines = read_lines(path)  # untagged: nothing to take out
            split.append((lang_dir.name, {"dataset": f"text/{lang_dir.name}", "licence": TEXT_LICENCES.get(
                lang_dir.name, "see ../shared/data/README.md"), "folder": f"text/{lang_dir.name}",
                "split": "a third of the lines" if benchmark else "two thirds of the lines"}, lines, lines))
    # a third held out, a sentence with its translations in the other languages' files (UDHR, LoResMT)
    for (code, source, _, sents), line_keys in zip(split, _group_keys(tuple(
            (canonical(code), tuple(whole)) for code, _, whole, _ in split))):
        kept = [(s, k) for s, k in zip(sents, line_keys) if held_out(k) == benchmark]
        add(code, source, [s for s, _ in kept], [k for _, k in kept])
    unknown = sorted(set(out) - set(LANGUAGES))
    if unknown:
        raise SystemExit(f"error: languages missing from edge_finer/languages.py: {', '.join(unknown)}")
    return out, keys


@functools.lru_cache(maxsize=2)
def _group_keys(sources: tuple[tuple[str, tuple[str, ...]], ...]) -> list[list[int]]:
    """:func:`group_keys`, once for the same sources (the build reads its texts three ways)."""
    return group_keys(sources)


def build_texts(data: Path = DATA) -> Texts:
    """What the profiles are built from (train splits; two thirds of dev-only and text files)."""
    return _texts(data, benchmark=False)


def build_texts_keyed(data: Path = DATA) -> tuple[Texts, Keys]:
    """:func:`build_texts` and its sentences' keys: what decides which of them calibrate and tune
    (:func:`tuning`), so that a sentence and its translations are on one side there too."""
    return _texts_keyed(data, benchmark=False)


def build_word_texts(data: Path = DATA) -> Texts:
    """:func:`build_texts` without the entity tokens of the tagged corpora: what the word tables
    count (see :func:`read_conll_sentences`)."""
    return _texts(data, benchmark=False, names=False)


def benchmark_texts(data: Path = DATA) -> Texts:
    """What ``benchmarks/routing.py`` routes: dev splits and the held-out third; never build text."""
    return _texts(data, benchmark=True)


def _spread(sents: list[str], limit: int) -> list[str]:
    if len(sents) <= limit:
        return sents
    step = len(sents) / limit
    return [sents[int(i * step)] for i in range(limit)]


def count_profile(sources: Iterable[list[str]], top: int = TOP_NGRAMS, unit=ngrams, power: float = SOURCE_POWER
                  ) -> tuple[list[str], np.ndarray]:
    """The top n-grams (``unit=letter_runs``: words) and their log-probabilities, sources
    weighted by their size to the ``power`` (:data:`SOURCE_POWER`; 0.5, the square root: a large
    corpus still counts most, but a small one of another register, conversational Hindi beside
    news and Wikipedia, is not drowned)."""
    freqs: list[tuple[Counter[str], float, float]] = []
    for sents in sources:
        counts: Counter[str] = Counter()
        for s in sents:
            counts.update(unit(s))
        total = sum(counts.values())
        if total:
            freqs.append((counts, float(total), total ** power))
    if not freqs:
        raise ValueError("no letters in the text")
    weight = sum(w for _, _, w in freqs)
    merged: dict[str, float] = {}
    for counts, total, w in freqs:
        scale = w / (weight * total)
        for g, c in counts.items():
            merged[g] = merged.get(g, 0.0) + c * scale
    kept = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [g for g, _ in kept], np.log(np.array([f for _, f in kept], dtype=np.float64))


def _scores(grams: list[str], logp: np.ndarray, sents: list[str]) -> list[tuple[int, float]]:
    """(length, mean log-probability per n-gram) of each sentence, as the router scores it."""
    table = ScoreTable(["x"], [(gram_hashes(grams), quantize_logp(logp))])
    out = []
    for s in sents:
        h = text_hashes(s)
        if len(h):
            out.append((len(s.strip()), float(table.score(h)[0])))
    return out


def calibrate(scored: list[tuple[int, float]]) -> dict[str, dict[str, float]]:
    """Percentiles of held-out scores, for sentences of >= 20 characters ("long") and shorter."""
    cal: dict[str, dict[str, float]] = {}
    for name, keep in (("long", lambda n: n >= LONG_CHARS), ("short", lambda n: n < LONG_CHARS)):
        values = np.array([v for n, v in scored if keep(n)], dtype=np.float64)
        if len(values) >= MIN_CALIBRATION:
            cal[name] = {f"p{p:g}": round(float(x), 4) for p, x in zip(PERCENTILES, np.percentile(values, PERCENTILES))}
            cal[name]["sentences"] = len(values)
    return cal


def _part_sizes(sources: list[list[str]], limit: int) -> list[int]:
    """How many sentences are read of each source: ``limit`` in all.  A source smaller than an
    equal share keeps every sentence; what it leaves is spread over the larger ones by size.
    Spread by size alone, the 800 conversational Hindi sentences of LoResMT kept 222 beside
    5,778 of news and Wikipedia, and everyday Hindi ("रास्ते से ठेला हटाओ!") scored as Magahi or
    Bhojpuri, whose profiles are that register (benchmarks/results/routing.md)."""
    if sum(len(s) for s in sources) <= limit:
        return [len(s) for s in sources]
    share = limit / len(sources)
    small = [len(s) <= share for s in sources]
    left = limit - sum(len(s) for s, sm in zip(sources, small) if sm)
    large = sum(len(s) for s, sm in zip(sources, small) if not sm)
    return [len(s) if sm else max(1, round(left * len(s) / large)) for s, sm in zip(sources, small)]


def tuning(key: int) -> bool:
    """The build sentences no profile counts: they calibrate their language's profile and are the
    router's tuning text (``benchmarks/routing.py``).  Every tenth, by key, so a sentence and its
    translations are tuning text together."""
    return key % 10 == 9


def _split(sources: list[list[str]], limit: int, keys: list[list[int] | None] | None
           ) -> list[list[tuple[str, int]]]:
    """The sentences read of each source (:func:`_part_sizes`), each with its key: the source's own
    where it has them (translations share one), else the sentence's place in what is read."""
    keys = keys or [None] * len(sources)
    return [list(zip(_spread(s, n), range(min(len(s), n)) if k is None else _spread(k, n)))
            for s, k, n in zip(sources, keys, _part_sizes(sources, limit))]


def counted_part(parts: list[list[tuple[str, int]]]) -> list[list[str]]:
    """Each source's sentences that the tables count: all but the tuning tenth (:func:`tuning`)."""
    return [[s for s, k in p if not tuning(k)] for p in parts]


def counted_words(sources: list[list[str]], limit: int = MAX_SENTENCES, top: int = TOP_WORDS,
                  keys: list[list[int] | None] | None = None, without_tuning: bool = False,
                  power: float = SOURCE_POWER) -> tuple[list[str], np.ndarray]:
    """The word table of one language, from the sentences its n-gram profile counts (never the
    tuning ones); a small language's profile counts all of its sentences, and its table
    ``without_tuning`` is the one the tuning text is scored by."""
    parts = _split(sources, limit, keys)
    if sum(len(p) for p in parts) >= KFOLD_BELOW or without_tuning:
        return count_profile(counted_part(parts), top, letter_runs, power)
    return count_profile([[s for s, _ in p] for p in parts], top, letter_runs, power)


def build_language(sources: list[list[str]], limit: int = MAX_SENTENCES, top: int = TOP_NGRAMS,
                   keys: list[list[int] | None] | None = None, power: float = SOURCE_POWER
                   ) -> tuple[list[str], np.ndarray, dict[str, dict[str, float]], int]:
    """(n-grams, log-probabilities, calibration, sentences counted) of one language, from its
    sources' sentences; ``top``: n-grams kept; ``keys``: :func:`build_texts_keyed`' for the sources;
    ``power``: :data:`SOURCE_POWER`."""
    parts = _split(sources, limit, keys)
    n = sum(len(p) for p in parts)
    if n >= KFOLD_BELOW:  # the tuning tenth calibrates, the rest counts
        grams, logp = count_profile(counted_part(parts), top, power=power)
        held = [s for p in parts for s, k in p if tuning(k)]
        return grams, logp, calibrate(_scores(grams, logp, held)), n - len(held)
    scored = []
    for fold in range(5):
        g, lp = count_profile([[s for s, k in p if k % 5 != fold] for p in parts], top, power=power)
        scored += _scores(g, lp, [s for p in parts for s, k in p if k % 5 == fold])
    grams, logp = count_profile([[s for s, _ in p] for p in parts], top, power=power)
    return grams, logp, calibrate(scored), n


def build(data: Path = DATA, out: Path = REFS_FILE, limit: int = MAX_SENTENCES, log=print,
          top_ngrams: int = TOP_NGRAMS, top_words: int = TOP_WORDS, source_power: float = SOURCE_POWER,
          word_weight: float = WORD_WEIGHT, bias_l2: float = BIAS_L2) -> dict[str, Any]:
    """Build and write the reference file; returns a summary.  ``top_ngrams`` / ``top_words``:
    the table sizes; ``source_power``: how a language's sources are weighted; ``word_weight`` /
    ``bias_l2``: the router's word weight and the pull the biases are fitted at.  The shipped
    file's are the defaults; other values are for measuring them (``benchmarks/routing_variants.py``)."""
    started = time.perf_counter()
    texts, keys = build_texts_keyed(data)
    word_texts = build_word_texts(data) if top_words else {}
    entries: list[dict[str, Any]] = []
    tables: list[tuple[list[str], np.ndarray]] = []
    words: list[tuple[list[str], np.ndarray]] = []
    for code in sorted(texts):
        sources = texts[code]
        grams, logp, cal, counted = build_language([s for _, s in sources], limit, top_ngrams, keys[code],
                                                   source_power)
        if top_words:
            wgrams, wlogp = counted_words([s for _, s in word_texts[code]], limit, top_words, keys[code],
                                          power=source_power)
            words.append((wgrams, quantize_logp(wlogp)))
        lang = LANGUAGES[code]
        entries.append({"code": code, "name": lang.name, "iso639_3": lang.iso639_3, "scripts": list(lang.scripts),
                        "sentences": counted, "ngrams": len(grams), "calibration": cal,
                        "sources": [{**src, "sentences": len(s)} for src, s in sources]})
        tables.append((grams, quantize_logp(logp)))
        long = cal.get("long", {})
        log(f"{code:4s} {lang.name:22s} {counted:6d} sentences, {len(grams)} n-grams, held-out p1 "
            f"{long.get('p1', 'n/a')} p50 {long.get('p50', 'n/a')}")
    meta = {"top_ngrams": top_ngrams, "top_words": top_words, "max_sentences": limit, "source_power": source_power,
            "built_from": "train splits of ../shared/data (two thirds of dev-only splits and of text/ files; "
                          "GUIT-AsTourNE left out: no licence stated)",
            "note": "character n-gram statistics derived from the sources listed per language, under their licences"}
    write_references(out, entries, tables, meta, words if top_words else None)
    biases = fit_reference_biases(out, data, (texts, keys, word_texts), word_weight, bias_l2)
    for entry in entries:
        entry["bias"] = biases.get(entry["code"], 0.0)
    meta["biases"] = {"word_weight": word_weight, "l2": bias_l2, "fitted_on": "the tuning tenth of the build text"}
    write_references(out, entries, tables, meta, words if top_words else None)
    if biases:
        spread = [f"{c} {v:+.2f}" for c, v in sorted(biases.items(), key=lambda kv: kv[1])]
        log(f"biases: {', '.join(spread if len(spread) <= 6 else [*spread[:3], '...', *spread[-3:]])}")
    summary = {"languages": len(entries), "bytes": out.stat().st_size,
               "seconds": round(time.perf_counter() - started, 1)}
    log(f"wrote {out} ({summary['bytes'] / 1e6:.2f} MB, {summary['languages']} languages, {summary['seconds']} s)")
    return summary


def fit_reference_biases(path: Path, data: Path, read: tuple[Any, Any, Any], word_weight: float = WORD_WEIGHT,
                         l2: float = BIAS_L2) -> dict[str, float]:
    """Each language's bias for the router's ranking (:mod:`quantize.route_tuning`), fitted on the
    tuning tenth scored by the tables just written to ``path``, at ``word_weight`` (the router's
    unless a variant is measured) with the pull ``l2``."""
    from edge_finer.langrefs import read_references
    from edge_finer.router import EFFECTIVE_NGRAMS

    scores = tuning_scores(read_references(path), data, read)
    return fit_biases(scores, word_weight if read[2] else 0.0, EFFECTIVE_NGRAMS, l2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m quantize.langrefs", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    ap.add_argument("--out", type=Path, default=REFS_FILE, help="output file (default: the runtime's own)")
    ap.add_argument("--max-sentences", type=int, default=MAX_SENTENCES, help="sentences read per language")
    ap.add_argument("--top-ngrams", type=int, default=TOP_NGRAMS, help="n-grams kept per language")
    ap.add_argument("--top-words", type=int, default=TOP_WORDS, help="words kept per language (0: no word tables)")
    ap.add_argument("--source-power", type=float, default=SOURCE_POWER,
                    help="a language's sources weighted by their size to this power (0: alike, 1: by size; "
                         f"default {SOURCE_POWER})")
    args = ap.parse_args(argv)
    if args.top_ngrams < 1 or args.top_words < 0:
        print("error: --top-ngrams must be at least 1 and --top-words at least 0", file=sys.stderr)
        return 2
    if not 0.0 <= args.source_power <= 1.0:
        print("error: --source-power must be between 0 (sources alike) and 1 (by size)", file=sys.stderr)
        return 2
    if not args.data.is_dir():
        print(f"error: {args.data}: no such folder (the shared data)", file=sys.stderr)
        return 2
    build(args.data, args.out, args.max_sentences, top_ngrams=args.top_ngrams, top_words=args.top_words,
          source_power=args.source_power)
    return 0


if __name__ == "__main__":
    sys.exit(main())
