"""Hashed word features: one function for both halves, a build that uses them, and bundles of
both format versions.

The parity test is the important one: the ids the build pipeline trains on (``quantize.encode``)
must be exactly the ids the runtime feeds (``Annotator`` → ``backend.run``) for the same text,
in every script, or a featured model is trained on inputs it never sees.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from edge_finer.annotator import Annotator
from edge_finer.bundle import open_bundle
from edge_finer.errors import BundleError
from edge_finer.features import (KINDS, FeatureSpec, WordFeaturizer, feature_values, word_feature_ids,
                                 word_script, word_shape)
from edge_finer.pretokenize import words as split_to_words

VARIED = [
    "Barack Obama visited the Louvre in Paris.",
    "ZOË van der Berg-Müller, 2003, COVID-19 & U.S.",
    "अमित शाह ने नई दिल्ली में कहा",
    "ঢাকা বিশ্ববিদ্যালয়ের শিক্ষক",
    "ଭୁବନେଶ୍ୱର ଓଡ଼ିଶାର ରାଜଧାନୀ",
    "ᱥᱟᱱᱛᱟᱲ ᱯᱟᱹᱨᱥᱤ",
    "東京 大学 の 研究",
    "وزیر اعظم نے لاہور میں",
    "Rais Samia Suluhu Hassan alizuru Dodoma",
    "Ọba Adéyẹmí lọ sí Ìbàdàn",
]


def test_feature_values_follow_the_documented_definitions():
    assert feature_values("Barack") == ["barack", "b", "ba", "bar", "bara", "k", "ck", "ack", "rack", "Xxxx", "Latn"]
    assert feature_values("2003")[-2:] == ["dddd"[:3], ""]  # digits: shape run cut at 3, no script
    assert word_shape("COVID-19") == "XXX-dd" and word_shape("McDonald") == "XxXxxx"
    assert word_shape("दिल्ली").startswith("a") and set(word_shape("दिल्ली")) <= {"a", "m"}
    assert [word_script(w) for w in ("दिल्ली", "ঢাকা", "ଓଡ଼ିଶା", "ᱥᱟᱱᱛᱟᱲ", "東京", "لاہور", "...")] == \
        ["Deva", "Beng", "Orya", "Olck", "Hani", "Arab", ""]
    # prefixes and suffixes count code points of the case-folded word; short words repeat whole
    assert feature_values("Ab", ("prefix4", "suffix4", "lower")) == ["ab", "ab", "ab"]


def test_ids_are_the_documented_crc32_and_never_zero():
    spec = FeatureSpec(buckets=97, seed=13)
    ids = word_feature_ids(["Dodoma"], spec)[0]
    want = [zlib.crc32(v.encode(), zlib.crc32(f"13:{k}".encode())) % 96 + 1
            for k, v in zip(KINDS, feature_values("Dodoma"))]
    assert ids.tolist() == want
    many = word_feature_ids([w for text in VARIED for w in split_to_words(text)], spec)
    assert many.min() >= 1 and many.max() <= 96 and many.dtype == np.int64


def test_ids_do_not_depend_on_the_process_or_the_seed_is_used():
    """Python's own hash() is salted per process; ours must not be."""
    code = ("from edge_finer.features import FeatureSpec, word_feature_ids;"
            "print(word_feature_ids(['Nairobi', 'दिल्ली', 'ᱥᱟᱱᱛᱟᱲ'], FeatureSpec(seed=7)).tolist())")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(s), "PATH": "/usr/bin:/bin"},
                           cwd=Path(__file__).resolve().parent.parent).stdout for s in (1, 2)}
    assert len(runs) == 1
    here = word_feature_ids(["Nairobi", "दिल्ली", "ᱥᱟᱱᱛᱟᱲ"], FeatureSpec(seed=7)).tolist()
    assert json.loads(runs.pop()) == here
    assert word_feature_ids(["Nairobi"], FeatureSpec(seed=8)).tolist()[0] != here[0]


def test_cache_is_bounded_and_does_not_change_ids():
    fz = WordFeaturizer(FeatureSpec(seed=1), capacity=5)
    ws = [f"w{i}" for i in range(40)]
    first = fz(ws)
    assert len(fz._cache) <= 5
    assert (fz(ws) == first).all()
    assert (WordFeaturizer(FeatureSpec(seed=1))(ws) == first).all()


def test_lone_surrogates_and_odd_text_hash_without_error():
    ids = word_feature_ids(["\ud800x", "\x00", "🙂", "a\u0301"], FeatureSpec())
    assert ids.shape == (4, len(KINDS)) and ids.min() >= 1


def test_manifest_section_is_checked():
    good = FeatureSpec(seed=5).to_manifest()
    assert FeatureSpec.from_manifest(good) == FeatureSpec(seed=5)
    for bad in ({**good, "version": 99}, {**good, "kinds": ["lower", "nosuch"]}, {**good, "kinds": []},
                {**good, "buckets": 1}, {**good, "seed": -1}, {**good, "input": "other"}, []):
        with pytest.raises(ValueError):
            FeatureSpec.from_manifest(bad)


# -- a featured build, end to end ----------------------------------------------------------------

@pytest.fixture(scope="module")
def featured(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from quantize.build import run_recipe
    from quantize_helpers import offline, recipe_text, synthetic_sentences, write_conll

    d = tmp_path_factory.mktemp("featured")
    train = write_conll(d / "train.conll", synthetic_sentences(300, seed=11))
    dev = write_conll(d / "dev.conll", synthetic_sentences(60, seed=12))
    recipe = d / "recipe.toml"
    recipe.write_text(recipe_text("test-featured", train, dev,
                                  extra="\n[features]\nenabled = true\nbuckets = 512\ndim = 8\n"), encoding="utf-8")
    with offline():
        bundle = run_recipe(recipe, work_dir=d / "work", out_dir=d / "out",
                            console=Console(file=open("/dev/null", "w"), width=120))  # noqa: SIM115
    return {"bundle": bundle, "work": d / "work"}


def test_featured_bundle_records_its_features_and_annotates(featured: dict):
    bundle = open_bundle(featured["bundle"])
    m = bundle.manifest
    assert m["format_version"] == 2
    assert m["features"]["kinds"] == list(KINDS) and m["features"]["buckets"] == 512 and m["features"]["seed"] == 3
    assert "word_features" in m["input"]["names"]
    assert "word_features" in m["model"]["export_fallback_reason"]
    ev = m["evaluation"]
    assert ev["int8_fp32_token_agreement"] >= 0.99 and ev["student_int8"]["f1"] > 0.8
    text = "anna lopez works for acme corp in new york ."
    got = [(e.text, e.label) for e in Annotator(bundle, threads=1).annotate(text)]
    assert ("anna lopez", "PER") in got and ("new york", "LOC") in got


def test_runtime_feeds_exactly_the_ids_the_pipeline_trains_on(featured: dict):
    """Parity: for text in ten scripts, the word_features the annotator hands onnxruntime equal
    those ``quantize.encode`` builds for the same words (token by token, bos/eos zero)."""
    from tokenizers import Tokenizer

    from quantize.encode import encode

    bundle = open_bundle(featured["bundle"])
    spec = bundle.feature_spec
    ann = Annotator(bundle, threads=1)
    ann.warm_up()
    fed: list[tuple[np.ndarray, np.ndarray]] = []
    real = ann.backend.run

    def spy(ids, mask, word_features=None):
        fed.append((ids.copy(), word_features.copy()))
        return real(ids, mask, word_features)

    ann.backend.run = spy  # type: ignore[method-assign]
    tok = Tokenizer.from_file(str(bundle.tokenizer_path))
    inp = bundle.manifest["input"]
    for text in VARIED:
        fed.clear()
        ann.annotate(text)
        (ids, feats), = fed
        (win,) = encode(tok, [split_to_words(text)], None, None, bundle.manifest["max_length"],
                        bundle.manifest["stride"], inp["bos_id"], inp["eos_id"], features=spec)
        n = win.ids.size
        assert ids[0, :n].tolist() == win.ids.tolist(), text
        assert feats[0, :n].tolist() == win.feats.tolist(), text
        assert not feats[0, n:].any() and not feats[0, 0].any() and not feats[0, n - 1].any()


def test_featured_model_without_its_manifest_section_is_refused(featured: dict, tmp_path: Path):
    from edge_finer.bundle import write_bundle

    src = open_bundle(featured["bundle"])
    manifest = {k: v for k, v in src.manifest.items() if k not in ("files", "format_version", "features")}
    files = {name: src.path / name for name in src.manifest["files"] if name != "MODEL_CARD.md"}
    broken = write_bundle(tmp_path / "broken", manifest, files, "card").path
    with pytest.raises(BundleError, match="word_features input but the manifest has no 'features'"):
        Annotator(open_bundle(broken), threads=1).annotate("anna lopez")


def test_unknown_feature_version_or_format_version_is_refused_with_one_line(featured: dict, tmp_path: Path):
    for field, value, match in (("features", {"version": 9}, "features version 9 is not supported"),
                                ("format_version", 3, "bundle format version 3 is not supported")):
        dest = tmp_path / field
        shutil.copytree(featured["bundle"], dest)
        m = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
        m[field] = {**m["features"], **value} if field == "features" else value
        (dest / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
        with pytest.raises(BundleError, match=match) as info:
            open_bundle(dest)
        assert "\n" not in str(info.value)


def test_version_1_bundles_still_load_and_annotate():
    """Bundles built before features existed (format version 1) keep working unchanged."""
    from tiny_bundle import make_tiny_bundle  # written as format 1 below

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = make_tiny_bundle(Path(tmp) / "old")
        m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        m["format_version"] = 1
        (path / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
        bundle = open_bundle(path)
        assert bundle.feature_spec is None
        ents = Annotator(bundle, threads=1).annotate("Ravi Shankar works at Infosys Limited in Delhi.")
        assert [e.label for e in ents] == ["PER", "ORG", "LOC"]
