"""Per-language biases of the reference profiles (issue 14): fitted on the build's held-out
tuning text (quantize/route_tuning.py), written into the reference file, added by the router.

Made-up score tables test the fit; made-up languages, built by the pipeline's own functions,
test the file and the router.  What the biases buy on real text is measured by
benchmarks/routing.py ("Trade-off", "Tuning text"), not here.
"""
from __future__ import annotations

import json
import math
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge_finer.errors import BundleError
from edge_finer.langrefs import read_references, write_references
from edge_finer.router import EFFECTIVE_NGRAMS, WORD_WEIGHT, Router
from quantize.route_tuning import ScriptScores, cross_fitted_gaps, fit_biases, tuning_scores
from made_up_languages import MadeUpLanguages
from quantize_helpers import write_conll
from tiny_bundle import make_tiny_bundle


def _scores(seed: int = 0, lift: float = 0.4, n: int = 300) -> ScriptScores:
    """Three languages whose true language scores best by ~0.3 on average, except that "b"'s
    profile scores every sentence ``lift`` higher than it should: it wins many of a's and c's."""
    rng = np.random.default_rng(seed)
    codes = ["a", "b", "c"]
    truth = [codes[i % 3] for i in range(n)]
    avg = rng.normal(-8.0, 0.25, (n, 3))
    for i, t in enumerate(truth):
        avg[i, codes.index(t)] += 0.3
    avg[:, 1] += lift
    return ScriptScores("Latn", codes, truth, avg, np.zeros_like(avg), np.full(n, 40.0),
                        np.array([(i // 3) % 2 for i in range(n)], dtype=np.int8))


def _right(s: ScriptScores, biases: dict[str, float] | None) -> float:
    top = s.ranking(0.0, biases).argmax(axis=1)
    return float(np.mean([s.codes[j] == t for j, t in zip(top, s.truth)]))


def test_a_profile_that_wins_others_text_gets_a_lower_bias():
    s = _scores()
    biases = fit_biases([s], 0.0, EFFECTIVE_NGRAMS)
    assert biases["b"] < biases["a"] - 0.2 and biases["b"] < biases["c"] - 0.2, biases
    assert _right(s, biases) > _right(s, None) + 0.1
    # the pull towards 0: a stronger one keeps every bias smaller
    strong = fit_biases([s], 0.0, EFFECTIVE_NGRAMS, l2=10.0)
    assert max(map(abs, strong.values())) < max(map(abs, biases.values()))
    # nothing to correct: biases near 0
    fair = fit_biases([_scores(lift=0.0)], 0.0, EFFECTIVE_NGRAMS)
    assert max(map(abs, fair.values())) < 0.1, fair


def test_every_language_weighs_alike_however_many_sentences_it_has():
    """a's sentences are most of the text; b still gets the bias that makes its own likely."""
    s = _scores(lift=0.0, n=600)
    keep = [i for i, t in enumerate(s.truth) if t != "b" or i % 20 == 1]  # b: a tenth of the others
    few = ScriptScores(s.script, s.codes, [s.truth[i] for i in keep], s.avg[keep], s.words[keep], s.ngrams[keep],
                       s.fold[keep])
    biases = fit_biases([few], 0.0, EFFECTIVE_NGRAMS)
    assert abs(biases["b"] - biases["a"]) < 0.1, biases  # not pushed down for being rare


def test_cross_fitting_ranks_each_half_with_biases_fitted_on_the_other():
    s = _scores()
    zero = fit_biases([s], 0.0, EFFECTIVE_NGRAMS, fold=0)  # fitted on fold 1 only
    changed = ScriptScores(s.script, s.codes, s.truth, s.avg.copy(), s.words, s.ngrams, s.fold)
    changed.avg[changed.fold == 0, 2] += 3.0  # fold 0's text now says "c" loudly
    assert fit_biases([changed], 0.0, EFFECTIVE_NGRAMS, fold=0) == zero
    assert fit_biases([changed], 0.0, EFFECTIVE_NGRAMS, fold=1) != fit_biases([s], 0.0, EFFECTIVE_NGRAMS, fold=1)
    gaps = cross_fitted_gaps([s], 0.0, EFFECTIVE_NGRAMS)
    assert len(gaps) == len(s.truth) and all(g >= 0 for _, _, g in gaps)
    right = np.mean([t == top for t, top, _ in gaps])
    plain = np.mean([t == top for t, top, _ in cross_fitted_gaps([s], 0.0, EFFECTIVE_NGRAMS, biased=False)])
    assert right > plain + 0.1  # the biases help on text they were not fitted on


# -- the file and the router -----------------------------------------------------------------

SYLLABLES = {"aa": ["ka", "ta", "ma", "na", "ri", "lo", "ke", "ti", "mu", "sa"],
             "cc": ["zo", "xu", "vo", "qe", "zy", "wu", "xo", "vy", "qu", "ka"]}
TEXT = MadeUpLanguages(SYLLABLES, words=9)


def _write_conll(path: Path, sentences: list[str]) -> None:
    """Untagged sentences as a CoNLL train split (every token O)."""
    write_conll(path, [(s.split(), ["O"] * len(s.split())) for s in sentences])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A reference file built by ``python -m quantize.langrefs`` from two made-up Latin-script
    languages (as Hausa and Yoruba train splits); a third of Yoruba's sentences are Hausa words
    only, which Hausa's sharper profile wins."""
    from quantize.langrefs import main as build_refs

    root = tmp_path_factory.mktemp("biases")
    data = root / "data"
    rng = random.Random(3)
    hausa = TEXT.corpus("aa", 600, seed=1)
    yoruba = [TEXT.sentence("aa" if k % 3 == 0 else "cc", rng) for k in range(600)]
    _write_conll(data / "masakhaner2" / "hau" / "train.conll", hausa)
    _write_conll(data / "masakhaner2" / "yor" / "train.conll", yoruba)
    out = root / "refs.zip"
    assert build_refs(["--data", str(data), "--out", str(out)]) == 0
    return data, out


def test_the_build_writes_the_biases_fitted_on_its_tuning_text(built: tuple[Path, Path]):
    data, out = built
    refs = read_references(out)
    stored = {code: lang.bias for code, lang in refs.languages.items()}
    assert stored == fit_biases(tuning_scores(refs, data), WORD_WEIGHT, EFFECTIVE_NGRAMS)
    assert stored["yo"] > stored["ha"], stored  # the profile that wins the other's text is lowered
    assert refs.meta["biases"]["word_weight"] == WORD_WEIGHT


def test_the_router_adds_each_languages_bias(built: tuple[Path, Path], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch):
    """The same file with a large bias for Yoruba: a Hausa sentence that the file routes to the
    installed Hausa bundle goes to Yoruba (named, no bundle) instead."""
    _, out = built
    make_tiny_bundle(tmp_path / "bundles" / "tiny-ha", name="tiny-ha", lang="ha", iso3="hau",
                     profile_text=TEXT.corpus("aa", 200, seed=5))
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(tmp_path / "bundles"))
    monkeypatch.setenv("EDGE_FINER_CLD3", "0")
    monkeypatch.setenv("EDGE_FINER_LANGID", "0")
    with zipfile.ZipFile(out) as zf:
        meta = json.loads(zf.read("meta.json"))
    sentence = TEXT.sentence("aa", random.Random(99))
    monkeypatch.setenv("EDGE_FINER_LANGREFS", str(out))
    plain = Router.installed().route(sentence)
    assert plain.language == "ha" and plain.bundle == "tiny-ha", plain
    lifted = tmp_path / "lifted.zip"
    _rewrite(out, lifted, {e["code"]: {"bias": 5.0 if e["code"] == "yo" else e["bias"]} for e in meta["languages"]})
    monkeypatch.setenv("EDGE_FINER_LANGREFS", str(lifted))
    moved = Router.installed().route(sentence)
    assert moved.language == "yo" and moved.bundle is None, moved
    assert moved.evidence["ranking_score"]["yo"] - moved.evidence["ranking_score"]["ha"] > 4.0
    assert moved.evidence["ranking_bias"]["yo"] == 5.0  # the evidence says why


def _rewrite(src: Path, dst: Path, changes: dict[str, dict]) -> None:
    """A copy of a reference file with some index entries changed (the tables as they are)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "meta.json":
                meta = json.loads(data)
                for entry in meta["languages"]:
                    entry.update(changes.get(entry["code"], {}))
                data = json.dumps(meta).encode("utf-8")
            zout.writestr(info, data)


@pytest.mark.parametrize("bad", [math.inf, "0.3", True, None])
def test_a_bad_bias_is_a_damaged_file(built: tuple[Path, Path], tmp_path: Path, bad):
    _, out = built
    damaged = tmp_path / "damaged.zip"
    _rewrite(out, damaged, {"yo": {"bias": bad}})
    with pytest.raises(BundleError, match="not a valid language reference file"):
        read_references(damaged)


def test_a_file_written_before_biases_reads_as_no_bias(tmp_path: Path):
    entry = {"code": "ha", "name": "Hausa", "scripts": ["Latn"], "calibration": {}}
    write_references(tmp_path / "old.zip", [entry], [(["ka"], np.array([200], dtype=np.uint8))], {})
    assert read_references(tmp_path / "old.zip").languages["ha"].bias == 0.0


def test_the_tuning_grid_chooses_among_pulls_weights_and_margins(built: tuple[Path, Path]):
    """benchmarks/routing.py's tuning text on the made-up build: every (pull, weight, margin)
    point scored, biases cross-fitted, the rule's choice one of the points; weighted like a
    benchmark that routes only Yoruba, installed Hausa has no sentence to get right."""
    from benchmarks.routing import TUNING_L2, TUNING_MARGINS, TUNING_WORD_WEIGHTS, choose_tuning_point, tuning_text

    data, out = built
    got = tuning_text(read_references(out), {"ha"}, {"yo": 50}, data=data)
    assert len(got["rows"]) == len(got["unbiased"]) == len(TUNING_WORD_WEIGHTS) * len(TUNING_MARGINS)
    assert got["sentences"] > 50 and all(r["l2"] is None for r in got["unbiased"])
    chosen = choose_tuning_point(got["rows"])
    assert chosen and (got["chosen_l2"], got["chosen_word_weight"], got["chosen"]) == (
        chosen["l2"], chosen["word_weight"], chosen["route_margin"]) and got["chosen_l2"] in TUNING_L2
    assert got["chosen_as_benchmark"]["installed_sentences"] == 0
    assert got["chosen_as_benchmark"]["other_sentences"] == pytest.approx(50)


# -- variants of the build (benchmarks/routing_variants.py) ------------------------------------

@pytest.mark.parametrize("power", [0.0, 0.5, 1.0])
def test_a_languages_sources_are_weighted_by_their_size_to_the_power(power: float):
    """A word only the small source has gets that source's share of the mass: its size to the
    power over the sources' sizes to the power (equal shares at 0, by size at 1)."""
    from quantize.langrefs import count_profile
    from edge_finer.langprofile import letter_runs

    big = ["ka ta ma"] * 300  # 900 words
    small = ["zo ka ma"] * 10  # 30 words, "zo" 10 of them
    words, logp = count_profile([big, small], 10, letter_runs, power)
    share = 30 ** power / (30 ** power + 900 ** power)
    assert math.exp(logp[words.index("zo")]) == pytest.approx(share * 10 / 30)
    assert math.exp(logp[words.index("ta")]) == pytest.approx((1 - share) * 300 / 900)


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made-up data where a small language (under 400 sentences: its shipped tables count every
    sentence, its tuning text is scored by tables counted without it) has two sources of very
    different sizes and registers: how they are weighted changes what the tuning text reads."""
    root = tmp_path_factory.mktemp("variants")
    data = root / "data"
    rng = random.Random(4)
    _write_conll(data / "masakhaner2" / "hau" / "train.conll", TEXT.corpus("aa", 600, seed=1))
    _write_conll(data / "masakhaner2" / "yor" / "train.conll",
                 [TEXT.sentence("cc", rng) for _ in range(240)])
    (data / "text" / "yor").mkdir(parents=True)
    (data / "text" / "yor" / "sentences.txt").write_text(
        "\n".join(TEXT.sentence("aa" if k % 2 else "cc", rng) for k in range(60)) + "\n", encoding="utf-8")
    return data


def test_a_variant_build_records_its_parameters_and_fits_its_biases_at_them(two_sources: Path, tmp_path: Path):
    from quantize.langrefs import build

    out = tmp_path / "variant.zip"
    build(two_sources, out, log=lambda *_: None, source_power=0.0, word_weight=0.3, bias_l2=0.1)
    refs = read_references(out)
    assert refs.meta["source_power"] == 0.0
    assert (refs.meta["biases"]["word_weight"], refs.meta["biases"]["l2"]) == (0.3, 0.1)
    stored = {code: lang.bias for code, lang in refs.languages.items()}
    # the tuning text is scored with the file's own weighting of sources (Yoruba's own tables)
    assert stored == fit_biases(tuning_scores(refs, two_sources), 0.3, EFFECTIVE_NGRAMS, 0.1)
    refs.meta["source_power"] = 0.5
    assert stored != fit_biases(tuning_scores(refs, two_sources), 0.3, EFFECTIVE_NGRAMS, 0.1)


def test_the_rule_over_variants_needs_both_targets_then_fewest_to_installed():
    from benchmarks.routing_variants import preferred

    def row(name: str, both: bool, to_installed: float, n: int = 10_000) -> dict:
        return {"name": name, "both_targets": both, "tuning": {"other_to_installed": to_installed, "other_sentences": n}}

    assert preferred([row("shipped", True, 0.60), row("a", True, 0.25), row("b", False, 0.10)]) == "a"
    assert preferred([row("a", True, 0.30), row("shipped", True, 0.30)]) == "shipped"  # a tie keeps what ships
    # 25 sentences of 10,000 against 28: the tuning text's noise, not a reason to ship another file
    assert preferred([row("shipped", True, 0.28), row("a", True, 0.25)]) == "shipped"
    assert preferred([row("shipped", True, 0.28, 1_000_000), row("a", True, 0.25, 1_000_000)]) == "a"
    assert preferred([row("shipped", False, 0.30), row("a", True, 0.29)]) == "a"  # the shipped one misses a target
    assert preferred([row("shipped", False, 0.30), row("a", False, 0.2)]) is None


def test_the_variants_table_shows_each_variant_and_the_rules_pick():
    from benchmarks.routing_variants import markdown, preferred

    def row(name: str, to_installed: float, chosen: bool = True) -> dict:
        figures = {"installed_right": 99.0, "other_ok": 99.1, "other_to_installed": to_installed,
                   "installed_sentences": 4000, "other_sentences": 12000}
        if not chosen:
            return {"name": name, "params": {"limit": 5}, "chosen": None}
        return {"name": name, "params": {}, "bytes": 1_470_000, "both_targets": True, "tuning": figures,
                "dev": figures, "chosen": {"l2": 0.03, "word_weight": 0.5, "route_margin": 0.05},
                "dev_missed": {"en": 14, "hi": 19}}

    rows = [row("shipped", 0.28), row("bigger", 0.25), row("broken", 0.0, chosen=False)]
    text = markdown({"command": "python -m benchmarks.routing_variants", "variants": rows, "preferred": preferred(rows),
                     "machine": {"cpu": "x", "cores": 2, "python": "3", "lscpu_flags": {"avx2": True}}})
    assert "| shipped | 0.03, 0.5, 0.05 | 99.00 % / 99.10 % / 0.28 % | yes |" in text
    assert "| broken | none | - | no | - | -, - | - |" in text
    assert "bigger +0.4" in text and "The rule prefers: **shipped**" in text
    alone = markdown({"command": "c", "variants": rows[:1], "preferred": "shipped", "machine": {"cpu": "x", "cores": 2,
                                                                                             "python": "3"}})
    assert "standard errors" not in alone and "The rule prefers: **shipped**" in alone
