"""``data.transliterate``: a neighbour's annotated sentences in another Brahmic script become
training text in the bundle's script (quantize/transliterate.py), and only training text: the
evaluation split, the language profile and the runtime never see them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from edge_finer.annotator import Annotator
from edge_finer.bundle import open_bundle
from quantize.errors import RecipeError
from quantize.profile import build_profile
from quantize.recipe import load_recipe
from quantize.transliterate import digit_style, foreign_script, transliterate_sentences, transliterate_word
from quantize_helpers import PEOPLE, offline, recipe_text, synthetic_sentences, write_conll


@pytest.mark.parametrize("word, target, digits, expected", [
    ("भारत", "Orya", "ascii", "ଭାରତ"),  # every letter one block further: U+0900 + 0x200
    ("ଭାରତ", "Deva", "ascii", "भारत"),
    ("ভারত", "Orya", "ascii", "ଭାରତ"),  # Bengali too
    ("2019", "Orya", "native", "୨୦୧୯"),  # the digits the bundle's own training text uses
    ("२०१९", "Orya", "ascii", "2019"),
    ("ज़िला", "Orya", "ascii", "ଜ଼ିଲା"),  # a precomposed nukta letter: its parts
    ("डॉक्टर", "Orya", "ascii", "ଡୋକ୍ଟର"),  # candra O, which Odia lacks: O
    ("विकास", "Orya", "ascii", "ବିକାସ"),  # Odia spells "va" with BA
    ("योजना", "Orya", "ascii", "ଯୋଜନା"),  # YA at the start of a word,
    ("प्रयाग", "Orya", "ascii", "ପ୍ରୟାଗ"),  # YYA after it
    ("।", "Orya", "ascii", "।"),  # the danda all these scripts share
    ("Delhi", "Orya", "native", "Delhi"),
])
def test_letters_move_between_brahmic_blocks(word: str, target: str, digits: str, expected: str):
    assert transliterate_word(word, target, digits) == expected


def test_only_sentences_of_another_brahmic_script_move():
    sents = [["भारत", "में", "2019"], ["ଭାରତ", "୨୦୧୯"], ["Delhi", "in", "2019"]]
    assert foreign_script(sents[0], "Orya") == "Deva" and foreign_script(sents[1], "Orya") is None
    assert foreign_script(sents[2], "Orya") is None  # Latin: not ours to move
    assert digit_style([sents[1]], "Orya") == "native" and digit_style([sents[0]], "Deva") == "ascii"
    out, moved = transliterate_sentences(sents, "Orya", "native")
    assert out == [["ଭାରତ", "ମେଂ", "୨୦୧୯"], sents[1], sents[2]] and moved == {"Deva": 1}


# Latin test words written in Devanagari consonants (each with an Odia letter 0x200 further on)
_DEVA = {c: chr(cp) for c, cp in zip("abcdefghijklmnopqrstuvwxyz", [*range(0x915, 0x929), *range(0x92A, 0x92F),
                                                                     0x930])}


def _script(sentences, shift: int):
    return [([("".join(chr(ord(_DEVA[c]) + shift) if c in _DEVA else c for c in t)) for t in toks], tags)
            for toks, tags in sentences]


@pytest.fixture(scope="module")
def odia_build(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from quantize.build import run_recipe

    d = tmp_path_factory.mktemp("translit")
    # Odia train names only the first four people; the Hindi file, in Devanagari, the other four
    known = {" ".join(p) for p in PEOPLE[:4]}
    sents = synthetic_sentences(900, seed=21)
    unknown = {" ".join(p) for p in PEOPLE[4:]}
    odia = [s for s in sents if not any(p in " ".join(s[0]) for p in unknown)][:300]
    hindi = [s for s in sents if not any(p in " ".join(s[0]) for p in known)][:300]
    train = write_conll(d / "or.conll", _script(odia, 0x200))
    neighbour = write_conll(d / "hi.conll", _script(hindi, 0))
    dev = write_conll(d / "dev.conll", _script(synthetic_sentences(60, seed=22), 0x200))
    text = recipe_text("test-or", train, dev, family="cnn", language="or",
                       extra="[features]\nenabled = true\nbuckets = 512\ndim = 8\n")
    text = text.replace('scripts = ["Latn"]', 'scripts = ["Orya"]')
    unlabelled = d / "hi.txt"  # the neighbour's plain text: the student reads it in Odia script too
    unlabelled.write_text("".join(" ".join(toks) + "\n" for toks, _ in _script(synthetic_sentences(40, seed=23), 0)),
                          encoding="utf-8")
    text = text.replace(f'train = ["{train}"]', f'train = ["{train}", "{neighbour}"]\ntransliterate = "Orya"\n'
                        f'unlabelled = ["{unlabelled}"]\n'
                        'transliterated_drop_types = ["ORG"]')  # as if the neighbour tagged them otherwise
    text = text.replace("max_steps = 40", "max_steps = 150").replace("max_steps = 60", "max_steps = 150")
    recipe = d / "recipe.toml"
    recipe.write_text(text, encoding="utf-8")
    with offline():
        bundle = run_recipe(recipe, work_dir=d / "work", out_dir=d / "out",
                            console=Console(file=open("/dev/null", "w"), width=120))  # noqa: SIM115
    return {"bundle": bundle, "work": d / "work", "recipe": recipe, "odia": odia, "hindi": hindi}


def test_the_neighbours_sentences_train_in_the_bundles_script(odia_build: dict):
    rows = [json.loads(line) for line in (odia_build["work"] / "data" / "train.jsonl").read_text("utf-8").splitlines()]
    moved = [r for r in rows if r.get("moved_from") == "Deva"]
    assert len(moved) == len(odia_build["hindi"]) and len(rows) == len(moved) + len(odia_build["odia"])
    assert not any(0x0900 <= ord(c) < 0x0980 for r in moved for w in r["words"] for c in w)  # no Devanagari left
    assert moved[0]["words"] == _script([(odia_build["hindi"][0][0], None)], 0x200)[0][0]
    assert moved[0]["tags"] == [t if "ORG" not in t else "O" for t in odia_build["hindi"][0][1]]
    own = [r for r in rows if not r.get("moved_from")]
    assert not any("ORG" in t for r in moved for t in r["tags"])  # dropped in the moved sentences only
    assert sum(t == "B-ORG" for r in own for t in r["tags"]) == sum(t == "B-ORG" for _, tags in odia_build["odia"]
                                                                   for t in tags) > 0
    unlabelled = [json.loads(line) for line in
                  (odia_build["work"] / "data" / "unlabelled.jsonl").read_text("utf-8").splitlines()]
    assert len(unlabelled) == 40 and not any(0x0900 <= ord(c) < 0x0980 for r in unlabelled for w in r["words"]
                                             for c in w)
    assert any(0x0B00 <= ord(c) < 0x0B80 for c in unlabelled[0]["words"][0])
    stats = json.loads((odia_build["work"] / "data" / "stats.json").read_text("utf-8"))
    assert stats["transliterated_train_sentences"] == {"Deva": len(moved)}
    assert stats["transliterated_unlabelled_sentences"] == {"Deva": 40}
    manifest = open_bundle(odia_build["bundle"]).manifest
    assert manifest["transliteration"] == {"to": "Orya", "train_sentences_from": {"Deva": len(moved)},
                                           "unlabelled_sentences_from": {"Deva": 40}}
    # the router's profile is the bundle's own language only
    profile = json.loads((Path(odia_build["bundle"]) / "profile.json").read_text("utf-8"))
    own = build_profile([" ".join(toks) for toks, _ in _script(odia_build["odia"], 0x200)], profile["language"])
    assert profile["ngrams"] == own["ngrams"] and profile["sentences"] == own["sentences"]


def test_a_name_only_the_neighbour_annotated_is_found_in_the_bundles_script(odia_build: dict):
    ann = Annotator(open_bundle(odia_build["bundle"]), threads=1)
    (toks, _), = _script([(["omar", "haddad", "lives", "in", "paris", "."], None)], 0x200)
    found = [(e.text, e.label) for e in ann.annotate(" ".join(toks))]
    assert (" ".join(toks[:2]), "PER") in found


def test_transliterate_must_name_a_brahmic_script_the_bundle_writes(odia_build: dict, tmp_path: Path):
    text = odia_build["recipe"].read_text(encoding="utf-8")
    for bad, match in (('transliterate = "Latn"', "must be one of the Brahmic scripts"),
                       ('transliterate = "Beng"', "which the bundle does not write"),
                       ('transliterate = ""', "set data.transliterate too")):
        path = tmp_path / "r.toml"
        path.write_text(text.replace('transliterate = "Orya"', bad), encoding="utf-8")
        with pytest.raises(RecipeError, match=match):
            load_recipe(path)
