"""End-to-end builds: tiny teachers of both families → int8 bundles the runtime loads and runs.

Each build uses hidden size 32 and a few dozen steps, so a whole build takes seconds; what is
checked is the plumbing (formats, ids, parity, agreement, resumption), not accuracy.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from rich.console import Console

from edge_finer.annotator import Annotator
from edge_finer.bundle import open_bundle
from quantize.build import run_recipe
from quantize.evaluate import gold_text, spans_to_tags, token_agreement
from quantize.workdir import file_stamp, folder_stamp
from quantize_helpers import (LABELS, SHARED, make_teacher, offline, read_shared_sample, recipe_text,
                              synthetic_sentences, write_conll)

FAMILIES = ["bert", "xlm-roberta"]


def _quiet() -> Console:
    return Console(file=open("/dev/null", "w"), width=120)  # noqa: SIM115


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("synthetic")
    return (write_conll(d / "train.conll", synthetic_sentences(300, seed=11)),
            write_conll(d / "dev.conll", synthetic_sentences(60, seed=12)))


@pytest.fixture(scope="module", params=FAMILIES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          synthetic: tuple[Path, Path]) -> dict:
    """A bundle built from a user-style random-init teacher folder of one family."""
    family = request.param
    d = tmp_path_factory.mktemp(f"build-{family}")
    teacher = make_teacher(d / "teacher", family, synthetic_sentences(300, seed=11))
    recipe = d / "recipe.toml"
    recipe.write_text(recipe_text(f"test-{family}", *synthetic, teacher=str(teacher)), encoding="utf-8")
    t0 = time.monotonic()
    with offline():
        bundle = run_recipe(recipe, work_dir=d / "work", out_dir=d / "out", console=_quiet())
    return {"family": family, "bundle": bundle, "work": d / "work", "recipe": recipe, "out": d / "out",
            "teacher": teacher, "seconds": time.monotonic() - t0}


def test_bundle_opens_and_annotates(built: dict) -> None:
    bundle = open_bundle(built["bundle"])
    m = bundle.manifest
    assert bundle.path == built["out"] / f"test-{built['family']}"
    assert m["labels"] == LABELS  # the teacher's id2label order
    assert m["model"]["architecture"] == built["family"]
    assert m["demo"] is True
    ann = Annotator(bundle, threads=1)
    text = "anna lopez works for acme corp in new york ."
    ents = ann.annotate(text)
    assert isinstance(ents, list)
    for e in ents:
        assert text[e.start:e.end] == e.text and e.label in ("PER", "LOC", "ORG")
        assert e.coarse_label == {"PER": "Person", "LOC": "Location", "ORG": "Group"}[e.label]
    assert len(ann.annotate_batch([text, "", "nothing here ."])) == 3


def test_manifest_is_complete(built: dict) -> None:
    m = json.loads((built["bundle"] / "manifest.json").read_text(encoding="utf-8"))
    fam = built["family"]
    assert m["format_version"] == 2 and set(m["files"]) == {"model.onnx", "tokenizer.json", "MODEL_CARD.md", "profile.json"}
    assert m["language"]["bcp47"] == "en" and m["taxonomy"]["name"] == "synthetic"
    assert m["taxonomy"]["coarse"] == {"PER": "Person", "LOC": "Location", "ORG": "Group"}
    assert m["pretokenizer"] == {"name": "edge-finer-words", "version": 1}
    tok = json.loads((built["bundle"] / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    id_to_tok = {v: k for k, v in vocab.items()} if isinstance(vocab, dict) else {i: p for i, (p, _) in enumerate(vocab)}
    specials = ("[CLS]", "[SEP]", "[PAD]") if fam == "bert" else ("<s>", "</s>", "<pad>")
    assert tuple(id_to_tok[m["input"][k]] for k in ("bos_id", "eos_id", "pad_id")) == specials
    assert ("token_type_ids" in m["input"]["names"]) == (fam == "bert")
    assert m["decoding"] == {"aggregation": "first", "threshold": 0.0}
    model = m["model"]
    assert model["vocab_size"] == len(vocab) and model["opset"] == 18 and model["parameters"] > 0
    assert model["vocabulary"]["after"] < model["vocabulary"]["before"]
    assert model["exporter"].startswith("optimum") and model["export_fallback_reason"] == ""
    q = m["quantization"]
    assert q["method"] == "dynamic" and q["weight_type"] == "int8" and q["preset"] == "avx2"
    ev = m["evaluation"]
    for system in ("teacher_fp32", "student_fp32", "student_int8"):
        assert 0.0 <= ev[system]["f1"] <= 1.0 and "per_type" in ev[system]
        assert ev[system]["words_per_second"] > 0
    assert ev["split"] == "dev" and ev["sentences"] == 60
    assert ev["size_bytes"] > 0 and ev["teacher_size_bytes"] > ev["size_bytes"]
    assert m["training_data"][0]["licence"] == "CC0 1.0" and m["licence"] == "CC0 1.0"
    for tool in ("edge_finer", "onnxruntime", "torch", "transformers", "tokenizers"):
        assert tool in m["built_with"]
    card = (built["bundle"] / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "DEMO — not for real use" in card and "| student (ONNX, int8)" in card and "CC0 1.0" in card


def test_int8_agrees_with_fp32(built: dict) -> None:
    """≥ 99 % of tokens get the same tag from the int8 and fp32 students (through the runtime)."""
    ev = json.loads((built["bundle"] / "manifest.json").read_text(encoding="utf-8"))["evaluation"]
    assert ev["int8_fp32_token_agreement"] >= 0.99
    # and independently, on sentences the build never saw
    bundle = open_bundle(built["bundle"])
    fp32_dir = built["work"] / "fp32-check"
    fp32_dir.mkdir(exist_ok=True)
    (fp32_dir / "model.onnx").write_bytes((built["work"] / "export" / "model.onnx").read_bytes())
    (fp32_dir / "tokenizer.json").write_bytes((built["bundle"] / "tokenizer.json").read_bytes())
    from edge_finer.bundle import Bundle

    fp32 = Annotator(Bundle(path=fp32_dir, manifest=bundle.manifest), threads=1)
    int8 = Annotator(bundle, threads=1)
    sents = synthetic_sentences(80, seed=99)
    grids = [gold_text(toks) for toks, _ in sents]
    a = [spans_to_tags(e, g) for e, (_, g) in zip(fp32.annotate_batch([t for t, _ in grids]), grids)]
    b = [spans_to_tags(e, g) for e, (_, g) in zip(int8.annotate_batch([t for t, _ in grids]), grids)]
    assert token_agreement(a, b) >= 0.99


def test_trimmed_tokenizer_matches_the_teacher_on_the_corpus(built: dict) -> None:
    from tokenizers import Tokenizer

    from edge_finer.pretokenize import words

    old = Tokenizer.from_file(str(built["teacher"] / "tokenizer.json"))
    new = Tokenizer.from_file(str(built["bundle"] / "tokenizer.json"))
    for toks, _ in synthetic_sentences(300, seed=11)[:100]:
        ws = [w for t in toks for w in words(t)]
        a = old.encode(ws, is_pretokenized=True, add_special_tokens=False)
        b = new.encode(ws, is_pretokenized=True, add_special_tokens=False)
        assert a.tokens == b.tokens


def test_resume_reuses_finished_stages(built: dict, synthetic: tuple[Path, Path]) -> None:
    work = built["work"]
    markers = {p.parent.name: p.stat().st_mtime_ns for p in work.glob("*/.done")}
    assert set(markers) == {"data", "teacher", "trim", "student", "export", "quantize", "evaluate", "profile"}
    # inputs copied anew (same bytes, new modification times: a re-synced dataset) are the same inputs
    for p in [*synthetic, *(f for f in built["teacher"].rglob("*") if f.is_file())]:
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    t0 = time.monotonic()
    run_recipe(built["recipe"], work_dir=work, out_dir=built["out"], console=_quiet())
    assert time.monotonic() - t0 < max(8.0, built["seconds"] / 2)
    assert {p.parent.name: p.stat().st_mtime_ns for p in work.glob("*/.done")} == markers
    # a changed student section reruns the student and what follows, not the data/teacher/trim
    text = built["recipe"].read_text(encoding="utf-8").replace("max_steps = 60", "max_steps = 30")
    built["recipe"].write_text(text, encoding="utf-8")
    run_recipe(built["recipe"], work_dir=work, out_dir=built["out"], console=_quiet())
    after = {p.parent.name: p.stat().st_mtime_ns for p in work.glob("*/.done")}
    for stage in ("data", "teacher", "trim"):
        assert after[stage] == markers[stage]
    for stage in ("student", "export", "quantize", "evaluate"):
        assert after[stage] != markers[stage]
    m = open_bundle(built["bundle"]).manifest
    assert m["model"]["distillation"]["steps"] == 30


def test_input_stamps_follow_content_not_place_or_time(tmp_path: Path) -> None:
    a = tmp_path / "a" / "train.conll"
    a.parent.mkdir()
    a.write_text("Ram B-NEP\n\n", encoding="utf-8")
    b = tmp_path / "b" / "train.conll"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    os.utime(b, ns=(0, 0))
    assert file_stamp(a) == file_stamp(b) and folder_stamp(a.parent) == folder_stamp(b.parent)
    b.write_text("Ram B-NEL\n\n", encoding="utf-8")  # same size, one changed byte
    assert file_stamp(a) != file_stamp(b)
    (b.parent / "dev.conll").write_bytes(b"")
    assert folder_stamp(a.parent) != folder_stamp(b.parent)


def test_profile_is_built_from_the_training_text_and_refreshable(built: dict, tmp_path: Path) -> None:
    """The router's profile comes from the recipe's train split; `python -m quantize profile`
    recomputes it in an existing bundle without touching the model."""
    import shutil

    from edge_finer.langprofile import read_profile
    from quantize.__main__ import main as quantize_main

    prof = read_profile(built["bundle"] / "profile.json")
    assert prof.meta["language"]["bcp47"] == "en" and prof.meta["sentences"] + prof.meta["held_out"] == 300
    assert prof.logp.get(" a") is not None  # "anna", "acme" ... start with a
    copy = tmp_path / built["bundle"].name
    shutil.copytree(built["bundle"], copy)
    (copy / "profile.json").unlink()
    before = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    del before["files"]["profile.json"]
    (copy / "manifest.json").write_text(json.dumps(before), encoding="utf-8")
    with offline():
        assert quantize_main(["profile", str(built["recipe"]), "--bundle", str(copy)]) == 0
    after = open_bundle(copy).manifest  # verifies every checksum
    assert (copy / "profile.json").read_bytes() == (built["bundle"] / "profile.json").read_bytes()
    assert (copy / "model.onnx").read_bytes() == (built["bundle"] / "model.onnx").read_bytes()
    assert {k: v for k, v in after.items() if k != "files"} == {k: v for k, v in before.items() if k != "files"}


def test_pipeline_trains_its_own_teacher_on_real_sample(tmp_path: Path) -> None:
    """No teacher given: a tokenizer and teacher are trained here (Unigram, Devanagari text)."""
    if not (SHARED / "il-ner/hi/train.conll").is_file():
        pytest.skip("shared data not present")
    train = write_conll(tmp_path / "train.conll", read_shared_sample("il-ner/hi/train.conll", 250))
    dev = write_conll(tmp_path / "dev.conll", read_shared_sample("il-ner/hi/dev.conll", 50))
    tax = '[taxonomy]\nname = "il-ner"\n'
    recipe = tmp_path / "r.toml"
    recipe.write_text(recipe_text("test-hi", train, dev, family="xlm-roberta", language="hi", taxonomy_block=tax)
                      .replace('[[training_data]]', '[[training_data]]').replace('vocab_size = 400', 'vocab_size = 1200'),
                      encoding="utf-8")
    with offline():
        path = run_recipe(recipe, work_dir=tmp_path / "w", out_dir=tmp_path / "o", console=_quiet())
    bundle = open_bundle(path)
    assert bundle.manifest["model"]["teacher"]["origin"] == "trained from scratch by this build"
    assert bundle.manifest["taxonomy"]["types"] and all(
        lab == "O" or lab[2:] in bundle.manifest["taxonomy"]["types"] for lab in bundle.labels)
    teacher_dir = tmp_path / "w" / "teacher" / "model"
    from transformers import AutoTokenizer

    fast = AutoTokenizer.from_pretrained(str(teacher_dir), local_files_only=True)  # loadable offline
    assert fast.is_fast and fast.cls_token == "<s>"
    text = "मुत्थुस्वामी दीक्षितार के भाई बालुस्वामी दीक्षितार आयरिश सारंगी वादकों के संपर्क में आए ।"
    for e in Annotator(bundle, threads=1).annotate(text):
        assert text[e.start:e.end] == e.text
    assert bundle.manifest["evaluation"]["int8_fp32_token_agreement"] >= 0.99


@pytest.mark.parametrize("family", FAMILIES)
def test_fresh_builds_are_identical(tmp_path: Path, synthetic: tuple[Path, Path], family: str) -> None:
    """Same recipe, fresh work folders: byte-identical model and tokenizer (teacher trained here)."""
    recipe = tmp_path / "r.toml"
    recipe.write_text(recipe_text(f"repro-{family}", *synthetic, family=family)
                      .replace("max_steps = 40", "max_steps = 15").replace("max_steps = 60", "max_steps = 15"),
                      encoding="utf-8")
    digests = []
    for k in range(2):
        with offline():
            path = run_recipe(recipe, work_dir=tmp_path / f"w{k}", out_dir=tmp_path / f"o{k}", console=_quiet())
        files = json.loads((path / "manifest.json").read_text(encoding="utf-8"))["files"]
        digests.append({name: files[name]["sha256"] for name in ("model.onnx", "tokenizer.json")})
    assert digests[0] == digests[1]
