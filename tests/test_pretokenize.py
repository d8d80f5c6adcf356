"""Word pre-tokenisation schemes: ``words`` and ``han-chars`` (Chinese), one function for the
runtime and the build pipeline, named in the manifest; and right-to-left text (Urdu) whose
offsets slice the caller's string.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_finer.annotator import Annotator
from edge_finer.bundle import MANIFEST, open_bundle
from edge_finer.errors import BundleError
from edge_finer.formats import Record, conll
from edge_finer.pretokenize import HAN, SCHEMES, from_manifest, scheme, split_words, words
from quantize.data import Sentence, read_jsonl, to_model_words
from quantize.evaluate import gold_text
from quantize.errors import RecipeError
from quantize.recipe import load_recipe
from tiny_bundle import make_tiny_bundle

ROOT = Path(__file__).resolve().parent.parent
HAN_GAZ = {"北": "B-LOC", "京": "I-LOC", "李": "B-PER", "白": "I-PER"}


def test_han_chars_makes_each_han_character_a_word_and_keeps_other_runs_whole():
    text = "北京大学2023年成立，Zoë去了東京。〇々"
    assert words(text, "han-chars") == ["北", "京", "大", "学", "2023", "年", "成", "立", "，", "Zoë", "去",
                                        "了", "東", "京", "。", "〇", "々"]
    assert words(text) == ["北京大学2023年成立", "，", "Zoë去了東京", "。", "〇々"]  # the default: runs
    # a variation selector stays with its character; Kangxi radicals are Han too
    assert words("葛\U000e0100城 ⼈", "han-chars") == ["葛\U000e0100", "城", "⼈"]


CHARS = st.sampled_from(list("abZ9 _.,\u200d\u200c\u0301北京東。，〇々ऩि्ک\u064fلا\n\t") + ["\U00020000", "\U000e0100"])


@settings(max_examples=300, deadline=None)
@given(st.text(CHARS | st.characters(codec="utf-8"), max_size=40))
def test_han_chars_only_ever_cuts_finer_than_words(text: str):
    """Every ``words`` word is one or more consecutive ``han-chars`` words: the schemes agree
    outside Han text, so a text without Han characters is split identically."""
    coarse, fine = split_words(text), split_words(text, "han-chars")
    for s, e in fine:
        assert text[s:e] and not text[s].isspace() and text[s] not in "\u200c\u200d"
    fine_in = iter(fine)
    for s, e in coarse:
        pieces = []
        for a, b in fine_in:
            if a >= s:
                pieces.append((a, b))
            if b >= e:
                break
        assert pieces and pieces[0][0] >= s and pieces[-1][1] <= e, (text, s, e, pieces)
    if not re.search("[" + HAN + "]", text):
        assert coarse == fine


def test_schemes_are_named_in_manifests_and_unknown_ones_are_refused():
    assert from_manifest({"name": "edge-finer-han-chars", "version": 1}) is SCHEMES["han-chars"]
    assert from_manifest({"name": "edge-finer-words", "version": 1}) is SCHEMES["words"]
    for bad in ({"name": "edge-finer-han-chars", "version": 2}, {"name": "jieba"}, "words", None,
                {"name": "edge-finer-words", "version": True}):
        with pytest.raises(ValueError, match="pre-tokenisation"):
            from_manifest(bad)
    with pytest.raises(ValueError, match="known: words, han-chars"):
        scheme("jieba")


@pytest.fixture(scope="module")
def han_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("zh") / "tiny-zh", name="tiny-zh", lang="zh", iso3="zho",
                            scripts=("Hani",), pretokenizer="han-chars", gazetteer=HAN_GAZ)


def test_runtime_splits_with_the_scheme_the_manifest_names(han_bundle: Path, tmp_path: Path):
    text = "李白住在北京。Ravi Shankar 也在北京"
    b = open_bundle(han_bundle)
    assert b.manifest["pretokenizer"] == {"name": "edge-finer-han-chars", "version": 1}
    ents = Annotator(b).annotate(text)
    assert [(e.text, e.label) for e in ents] == [("李白", "PER"), ("北京", "LOC"), ("Ravi Shankar", "PER"),
                                                 ("北京", "LOC")]
    assert all(text[e.start:e.end] == e.text for e in ents)
    # the same model under the default scheme sees one unknown word per Han run: nothing found
    words_twin = make_tiny_bundle(tmp_path / "tiny-zh-words", name="tiny-zh-words", lang="zh", iso3="zho",
                                  scripts=("Hani",), gazetteer=HAN_GAZ)
    assert [e.text for e in Annotator(open_bundle(words_twin)).annotate(text)] == ["Ravi Shankar"]


def test_a_bundle_naming_an_unknown_scheme_is_refused_with_one_line(han_bundle: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(han_bundle, copy)
    m = json.loads((copy / MANIFEST).read_text(encoding="utf-8"))
    m["pretokenizer"] = {"name": "edge-finer-han-chars", "version": 9}
    (copy / MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(BundleError, match="pre-tokenisation .* upgrade edge-finer") as err:
        open_bundle(copy)
    assert "\n" not in str(err.value)


def test_pipeline_and_runtime_agree_on_the_word_grid_of_chinese():
    """Training (gold tokens re-split by to_model_words) and run time (the raw text split by the
    bundle's scheme) see the same words, whether the gold tokens are characters or runs."""
    for tokens, written in (
            (["內", "穆", "爾", "·", "哈", "克", "(", "生", "于", "1949", "年", ")", "."], "內穆爾·哈克(生于1949年) ."),
            (["北京大学", "saenuri", "dang", "东京", "2023年"], "北京大学saenuri dang东京2023年")):
        text, spans = gold_text(tokens, "han-chars")
        assert text == written  # Chinese is scored as it is written: no space next to a Han character
        assert [text[a:b] for a, b in spans] == tokens
        model = to_model_words(Sentence(tokens, ["O"] * len(tokens)), "han-chars").tokens
        assert words(text, "han-chars") == model
    s = to_model_words(Sentence(["北京大学", "很", "好"], ["B-ORG", "O", "O"]), "han-chars")
    assert s.tokens == ["北", "京", "大", "学", "很", "好"] and s.tags == ["B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O"]
    assert gold_text(["a", "b"]) == ("a b", [(0, 1), (2, 3)])  # the default scheme joins with spaces


def test_jsonl_text_records_are_cut_with_the_recipe_scheme(tmp_path: Path):
    p = tmp_path / "zh.jsonl"
    p.write_text(json.dumps({"text": "我住在北京", "spans": [{"start": 3, "end": 5, "label": "LOC"}]},
                            ensure_ascii=False) + "\n", encoding="utf-8")
    s = read_jsonl(p, pretokenizer="han-chars")[0]
    assert s.tokens == ["我", "住", "在", "北", "京"] and s.tags == ["O", "O", "O", "B-LOC", "I-LOC"]
    s = read_jsonl(p)[0]  # the default scheme: one word, in the span
    assert s.tokens == ["我住在北京"] and s.tags == ["B-LOC"]


def test_recipes_name_a_known_scheme(tmp_path: Path):
    assert load_recipe(ROOT / "recipes" / "multiconer2-zh.toml").pretokenizer == "han-chars"
    assert load_recipe(ROOT / "recipes" / "masakhaner2-hau.toml").pretokenizer == "words"
    text = (ROOT / "recipes" / "multiconer2-zh.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('pretokenizer = "han-chars"', 'pretokenizer = "jieba"').replace(
        'root = ".."', f'root = "{ROOT.parent}"'), encoding="utf-8")
    with pytest.raises(RecipeError, match="pretokenizer: unknown word pre-tokenisation 'jieba'"):
        load_recipe(bad)


def test_conll_rows_keep_entities_found_inside_a_run_whole(han_bundle: Path):
    text = "我住在北京和李白"  # one default-scheme word holding two entities
    ents = Annotator(open_bundle(han_bundle)).annotate(text)
    rows = "".join(conll(Record("x", 1, 0, text, ents), "fine")).splitlines()
    assert rows == ["我住在\tO", "北京\tB-LOC", "和\tO", "李白\tB-PER", ""]


URDU = "میں کل لاہور گیا، پھر کراچی۔ عِمران خان نے کہا؟"
URDU_GAZ = {"لاہور": "B-LOC", "کراچی": "B-LOC", "عِمران": "B-PER", "خان": "I-PER"}


def test_urdu_right_to_left_offsets_slice_the_original_string(tmp_path: Path):
    """Urdu is stored in logical order; spans index that string, diacritics (zer) stay inside
    their word, and the Urdu full stop and question mark end sentences."""
    spans = split_words(URDU)
    assert "".join(URDU[a:b] for a, b in spans) == URDU.replace(" ", "")
    assert "عِمران" in [URDU[a:b] for a, b in spans] and "۔" in [URDU[a:b] for a, b in spans]
    b = make_tiny_bundle(tmp_path / "tiny-ur", name="tiny-ur", lang="ur", iso3="urd", scripts=("Arab",),
                         gazetteer=URDU_GAZ)
    ents = Annotator(open_bundle(b)).annotate(URDU)
    assert [(e.text, e.label) for e in ents] == [("لاہور", "LOC"), ("کراچی", "LOC"), ("عِمران خان", "PER")]
    for e in ents:
        assert URDU[e.start:e.end] == e.text
    assert URDU.index("عِمران") == ents[2].start


def test_language_profiles_count_chinese_as_written(tmp_path: Path):
    """The router scores the text users give (Chinese has no spaces between characters), so
    the bundle's profile and the reference file must count it so, not as the gold grid's
    space-joined characters."""
    from types import SimpleNamespace

    from quantize.build import Build
    from quantize.langrefs import read_conll_sentences

    conll = tmp_path / "zh.conll"
    conll.write_text("李\tB-PER\n白\tI-PER\n住\tO\n在\tO\n北\tB-LOC\n京\tI-LOC\nNew\tB-LOC\nYork\tI-LOC\n\n",
                     encoding="utf-8")
    assert read_conll_sentences(conll) == ["李白住在北京New York"]
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"words": list("李白住在北京") + ["New", "York"], "tags": ["O"] * 8}] * 30
    (data / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                      encoding="utf-8")
    fake = SimpleNamespace(r=SimpleNamespace(language=SimpleNamespace(bcp47="zh", iso639_3="zho", scripts=["Hani"]),
                                             pretokenizer="han-chars", data=SimpleNamespace(train=["x"]),
                                             resolve=lambda p: p),
                           work=SimpleNamespace(path=lambda stage: data), rep=SimpleNamespace(note=lambda *a: None))
    out = tmp_path / "profile"
    out.mkdir()
    Build.stage_profile(fake, out)  # type: ignore[arg-type]
    grams = set(json.loads((out / "profile.json").read_text(encoding="utf-8"))["ngrams"])
    assert "北京" in grams and "住在北" in grams  # adjacent, as written
    assert not any(re.search("[\u4e00-\u9fff] [\u4e00-\u9fff]", g) for g in grams)  # never "北 京"
    assert any("york" in g.lower() for g in grams)  # other words keep their spaces
