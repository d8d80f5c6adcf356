"""Language routing: scripts, n-gram profiles, CLD3 votes, per-sentence routing, the CLI.

Languages here are made up in the test (seeded syllable generators), so the router's logic is
tested without any real corpus; the shipped bundles' real profiles are tested in
test_shipped.py against the dev splits.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from edge_finer.cld3 import Cld3Result, knows, load_detector
from edge_finer.errors import BundleError
from edge_finer.langprofile import ngrams, parse_profile, read_profile
from edge_finer.router import Router
from edge_finer.scripts import expand, script_counts, script_of
from quantize.profile import build_profile
from made_up_languages import MadeUpLanguages
from tiny_bundle import make_tiny_bundle

# Two made-up languages in the Latin script with different sound systems, a third one that
# has no bundle, and a made-up language in the Odia script.
SYLLABLES = {
    "aa": ["ka", "ta", "ma", "na", "ri", "lo", "ke", "ti", "mu", "sa"],
    "bb": ["zo", "xu", "vo", "qe", "zy", "wu", "xo", "vy", "qu", "zw"],
    "cc": ["ghr", "plk", "str", "mbn", "trr", "skj", "brd", "nkt"],
    "or": ["କା", "ତା", "ମା", "ନା", "ରି", "ଲୋ", "କେ", "ଟି"],
}


TEXT = MadeUpLanguages(SYLLABLES, words=8)
sentence, corpus = TEXT.sentence, TEXT.corpus


@pytest.fixture(scope="module")
def routed_bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("routed")
    make_tiny_bundle(root / "tiny-aa", name="tiny-aa", lang="aa", iso3="aaa", profile_text=corpus("aa"))
    make_tiny_bundle(root / "tiny-bb", name="tiny-bb", lang="bb", iso3="bbb", profile_text=corpus("bb"))
    make_tiny_bundle(root / "tiny-or", name="tiny-or", lang="or", iso3="ory", scripts=("Orya",),
                     profile_text=corpus("or"))
    return root


@pytest.fixture
def routed_env(routed_bundles: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(routed_bundles))
    monkeypatch.setenv("EDGE_FINER_CLD3", "0")
    return routed_bundles


# -- scripts --------------------------------------------------------------------------------


@pytest.mark.parametrize("text,code", [
    ("Guwahati", "Latn"), ("Zoë", "Latn"), ("दिल्ली", "Deva"), ("গুৱাহাটী", "Beng"), ("ଭୁବନେଶ୍ୱର", "Orya"),
    ("ᱥᱟᱱᱛᱟᱲᱤ", "Olck"), ("ꯃꯤꯇꯩ", "Mtei"), ("اردو", "Arab"), ("東京", "Hani"), ("서울", "Hang"),
    ("Москва", "Cyrl"), ("አዲስ", "Ethi"), ("తెలుగు", "Telu"), ("ગુજરાતી", "Gujr"), ("ਪੰਜਾਬੀ", "Guru"),
    ("Αθήνα", "Grek"), ("ไทย", "Thai"),
])
def test_script_of_each_family(text: str, code: str):
    counts = script_counts(text)
    assert counts.most_common(1)[0][0] == code
    assert sum(counts.values()) == len(text)  # every letter and mark voted


def test_digits_punctuation_and_inherited_marks_do_not_vote():
    assert script_of("7") is None and script_of(".") is None and script_of("🙂") is None
    assert script_of("\u0301") is None  # combining acute: inherited from its base letter
    assert script_counts("2024 — 🙂 !!") == {}
    assert script_counts("Delhi दिल्ली दिल्ली").most_common(1)[0][0] == "Deva"


def test_manifest_script_aliases():
    assert expand(["Jpan"]) == {"Hira", "Kana", "Hani"}
    assert expand(["Hans"]) == {"Hani"} and expand(["Orya"]) == {"Orya"}


# -- profiles -------------------------------------------------------------------------------


def test_ngrams_are_case_folded_letter_runs():
    assert ngrams("Ab, ab 12!", orders=(1, 2)) == ["a", "b", "a", "b", " a", "ab", "b ", " a", "ab", "b "]
    assert ngrams("123 !?") == []


def test_joiners_inside_a_word_do_not_cut_it():
    """A zero-width joiner (Devanagari half-forms), non-joiner or soft hyphen is part of the word
    it sits in: cut there, "सम्‍मान" became "सम्" and "मान", which Hindi never writes; the
    zero-width space still separates words."""
    from edge_finer.langprofile import letter_runs, letter_runs_many

    texts = ["सम्\u200dमान हिन्\u200cदी", "Sil\u00adben zähl\u2060en", "a\u200bb"]
    want = [["सम्मान", "हिन्दी"], ["silben", "zählen"], ["a", "b"]]
    assert [letter_runs(t) for t in texts] == want
    assert letter_runs_many(texts) == want
    assert ngrams("म\u200dन", orders=(2,)) == [" म", "मन", "न "]


def test_profile_is_deterministic_and_calibrated():
    a = build_profile(corpus("aa"), {"bcp47": "aa"})
    assert a == build_profile(corpus("aa"), {"bcp47": "aa"})
    prof = parse_profile(a, "test")
    assert prof.threshold(short=False) is not None
    assert a["held_out"] == 40 and a["sentences"] == 360


@pytest.mark.parametrize("change,why", [
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d.update(ngrams={"ab": -3}), "bad n-gram"),
    (lambda d: d.update(total=0), "positive total"),
    (lambda d: d.update(orders="1234"), "orders"),
])
def test_bad_profiles_are_refused(change, why: str):
    doc = build_profile(corpus("aa"), {"bcp47": "aa"})
    change(doc)
    with pytest.raises(BundleError, match=why):
        parse_profile(doc, "p.json")


def test_profile_file_that_is_not_json(tmp_path: Path):
    p = tmp_path / "profile.json"
    p.write_bytes(b"\x80not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_profile(p)


# -- routing --------------------------------------------------------------------------------


def test_each_language_routes_to_its_bundle(routed_env: Path):
    router = Router.installed()
    assert router.languages == ["aa", "bb", "or"] and not router.problems
    for lang in ("aa", "bb", "or"):
        held_out = corpus(lang, n=30, seed=1)  # sentences the profiles never saw
        decisions = [router.route(s) for s in held_out]
        # never a wrong language; "unknown" for at most the odd sentence below the calibration
        assert all(d.unknown or (d.language == lang and d.bundle == f"tiny-{lang}") for d in decisions), lang
        assert sum(d.unknown for d in decisions) <= 1, lang
        assert min(d.confidence for d in decisions if not d.unknown) > 0.99
    assert router.route(held_out[0]).evidence["by"] == "script"  # Odia: the script settles it


def test_unknown_language_and_unknown_script(routed_env: Path):
    router = Router.installed()
    for s in corpus("cc", n=20, seed=1):
        d = router.route(s)
        assert d.unknown and d.language is None and d.bundle is None
        assert "installed languages: aa, bb, or" in d.reason and "--lang" in d.reason
    d = router.route("ᱥᱟᱱᱛᱟᱲᱤ ᱯᱟᱹᱨᱥᱤ ᱥᱟᱱᱛᱟᱲᱤ")  # Ol Chiki: no installed bundle writes it
    assert d.unknown and "Olck" in d.reason
    assert router.route("2024 !!").unknown


def test_code_mixed_document_routed_per_sentence(routed_env: Path):
    rng = random.Random(5)
    parts = [sentence("aa", rng), sentence("bb", rng), sentence("or", rng), "Yes!", sentence("cc", rng)]
    text = " ".join(parts)
    segments = Router.installed().route_sentences(text)
    assert [text[s.start:s.end].strip() for s in segments] == parts
    assert [s.decision.language for s in segments][:3] == ["aa", "bb", "or"]
    assert segments[4].decision.unknown
    # "Yes!" is too short to route alone: it takes the document's decision
    assert segments[3].decision.evidence == Router.installed().route(text).evidence


def test_cld3_votes_only_among_languages_it_knows(routed_bundles: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(routed_bundles))
    text = corpus("aa", n=1, seed=3)[0]
    router = Router.installed(use_cld3=False)
    # a stand-in CLD3 that is sure the text is French: neither aa nor bb is a CLD3 language, so
    # it cannot overrule them ...
    router.cld3 = lambda t: Cld3Result("fr", 0.99, True, "fr")
    d = router.route(text)
    assert d.language == "aa" and d.evidence["cld3"]["language"] == "fr"
    # ... but when the n-grams pick a language CLD3 does know, a sure CLD3 answer for a language
    # without a bundle vetoes it
    monkeypatch.setattr("edge_finer.cld3.knows", lambda lang: lang in ("aa", "bb", "fr"))
    from edge_finer.langprofile import Profile

    real = Profile.percentile

    def p10_is(value: float):
        return lambda self, short, name: value if name == "p10" else real(self, short, name)

    def fresh(answer: Cld3Result) -> Router:  # a router computes each language's limits once
        r = Router.installed(use_cld3=False)
        r.cld3 = lambda t: answer
        return r

    monkeypatch.setattr(Profile, "percentile", p10_is(float("inf")))  # the text is atypical of aa
    d = fresh(Cld3Result("fr", 0.99, True, "fr")).route(text)
    assert d.unknown and "'fr'" in d.reason
    monkeypatch.setattr(Profile, "percentile", p10_is(float("-inf")))  # typical aa: CLD3 cannot veto it
    assert fresh(Cld3Result("fr", 0.99, True, "fr")).route(text).language == "aa"
    monkeypatch.setattr(Profile, "percentile", real)
    router = fresh(Cld3Result("fr", 0.99, True, "fr"))
    # a CLD3 vote for an installed language it knows is weighed, but cannot outvote clear n-grams
    router.cld3 = lambda t: Cld3Result("bb", 0.999, True, "bb")
    d = router.route(text)
    assert d.language == "aa" and d.evidence["by"] == "n-gram profile + cld3"


def test_cld3_binding_when_installed(routed_env: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EDGE_FINER_CLD3", "1")
    detect = load_detector()
    if detect is None:
        pytest.skip("no CLD3 binding (gcld3 or pycld3) installed")
    r = detect("Le président de la République a visité Marseille hier soir avec sa famille.")
    assert r.language == "fr" and r.reliable and knows("fr") and not knows("as")
    router = Router.installed()
    assert router.cld3 is not None
    assert router.route(corpus("aa", n=1, seed=4)[0]).language == "aa"  # CLD3 present, still routes


def test_cld3_can_be_turned_off(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EDGE_FINER_CLD3", "0")
    assert load_detector() is None


def test_tampered_profile_leaves_that_bundle_out(routed_bundles: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "b"
    shutil.copytree(routed_bundles, root)
    prof = root / "tiny-bb" / "profile.json"
    doc = json.loads(prof.read_text(encoding="utf-8"))
    doc["ngrams"] = {g: doc["total"] for g in doc["ngrams"]}  # steer everything to bb
    prof.write_text(json.dumps(doc), encoding="utf-8")
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(root))
    router = Router.installed(use_cld3=False)
    assert router.languages == ["aa", "or"]
    assert len(router.problems) == 1 and "checksum mismatch" in router.problems[0]


def test_explicit_taxonomy_orders_same_language_bundles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    text = corpus("aa", n=60)
    make_tiny_bundle(tmp_path / "aa-one", name="aa-one", lang="aa", taxonomy="one", profile_text=text)
    make_tiny_bundle(tmp_path / "aa-two", name="aa-two", lang="aa", taxonomy="two", profile_text=text)
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(tmp_path))
    s = corpus("aa", n=1, seed=2)[0]
    assert Router.installed(use_cld3=False).route(s).bundle == "aa-one"
    assert Router.installed(taxonomy="two", use_cld3=False).route(s).bundle == "aa-two"


# -- CLI ------------------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(cli.app, list(args))


def test_cli_detect_and_annotate_record_the_route(routed_env: Path):
    aa, bb = corpus("aa", n=1, seed=7)[0], corpus("bb", n=1, seed=7)[0]
    res = run("detect", "--text", aa, "--format", "jsonl", "--evidence")
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["language"] == "aa" and row["bundle"] == "tiny-aa" and row["evidence"]["script"] == "Latn"
    res = run("detect", "--text", f"{aa} {bb}", "--route", "sentence", "--format", "jsonl")
    assert [json.loads(line)["language"] for line in res.stdout.splitlines()] == ["aa", "bb"]
    res = run("annotate", "--text", f"{aa} {bb}", "--route", "sentence", "--format", "jsonl")
    rec = json.loads(res.stdout)
    assert rec["routing"]["mode"] == "sentence"
    assert [s["bundle"] for s in rec["routing"]["segments"]] == ["tiny-aa", "tiny-bb"]
    res = run("annotate", "--text", aa, "--format", "jsonl")
    assert json.loads(res.stdout)["routing"]["bundle"] == "tiny-aa"


def test_cli_unknown_language_is_one_clear_error(routed_env: Path, tmp_path: Path):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text(corpus("bb", n=1, seed=8)[0] + "\n", encoding="utf-8")
    bad.write_text(corpus("cc", n=1, seed=8)[0] + "\n", encoding="utf-8")
    res = run("annotate", str(bad), str(good), "--format", "jsonl")
    assert res.exit_code == 1 and "Traceback" not in res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert "bad.txt: cannot tell the language" in errors[0] and "--lang" in errors[0]
    assert "1 of 2 inputs failed" in errors[1]
    assert json.loads(res.stdout)["routing"]["language"] == "bb"  # the other file still annotated
    res = run("detect", "--text", corpus("cc", n=1, seed=8)[0], "--format", "jsonl")
    assert res.exit_code == 0 and json.loads(res.stdout)["language"] == "unknown"


# -- any text -------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PIECES = ["kamatari ", "zoxuvo ", "କାତାମା ", "ᱥᱟᱱᱛᱟᱲ", "東京", "\ud800", "\r\n", "\x00", "\u200d", "\u0301",
          "🙂", "。", "।", ". ", "! ", "Dr. ", "1234", " ", "\t"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(st.characters(codec=None), max_size=5)), max_size=40))
def test_routing_any_text_never_fails_and_sentences_cover_it(routed_env, parts):
    router = _ROUTER.setdefault("r", Router.installed())
    text = "".join(parts)
    d = router.route(text)
    assert 0.0 <= d.confidence <= 1.0
    # a bundle always comes with its language; a language may come without a bundle (named,
    # none installed), and then it is one the router knows
    assert d.bundle is None or d.language in router.languages
    assert d.language is None or d.bundle is not None or d.language in router.references.languages
    assert d.unknown == (d.language is None)
    segments = router.route_sentences(text)
    pos = 0
    for seg in segments:
        assert pos <= seg.start < seg.end <= len(text)
        assert not text[pos:seg.start].strip()  # nothing but spaces between sentences
        pos = seg.end
    assert not text[pos:].strip()


_ROUTER: dict[str, Router] = {}
