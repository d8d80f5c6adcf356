"""The accuracy levers the recipes use, each proven end to end on a tiny build: the
convolutional family, word features, word dropout, checkpoint selection on the evaluation
split, and the per-bundle threshold calibrated on it (recorded in the manifest, shown by
``bundles info``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from edge_finer.annotator import Annotator
from edge_finer.bundle import open_bundle
from edge_finer.entity import Entity
from quantize.data import Sentence
from quantize.augment import mentions_of, replace_mentions
from quantize.encode import FORM_KINDS, drop_forms, drop_words, form_columns
from quantize.errors import RecipeError
from quantize.evaluate import calibrate_threshold
from quantize.recipe import load_recipe
from quantize_helpers import offline, recipe_text, synthetic_sentences, write_conll

CNN_EXTRA = """
[features]
enabled = true
buckets = 512
dim = 8
"""


def _cnn_recipe(d: Path, name: str = "test-cnn", extra: str = CNN_EXTRA) -> Path:
    train = write_conll(d / "train.conll", synthetic_sentences(300, seed=11))
    dev = write_conll(d / "dev.conll", synthetic_sentences(60, seed=12))
    # text annotated with another taxonomy: its people and places are ours, its companies are not said
    other = {"PER": "Politician", "LOC": "Settlement", "ORG": "Company"}
    unlabelled = write_conll(d / "other.conll", [(toks, [t if t == "O" else t[:2] + other[t[2:]] for t in tags])
                                                 for toks, tags in synthetic_sentences(80, seed=13)])
    text = recipe_text(name, train, dev, family="cnn", extra=extra)
    text = text.replace("[runtime]", "[runtime]\ncalibrate_threshold = true\ncalibrate_per_type = true")
    text = text.replace("[teacher]\n", "[teacher]\nensemble = 2\nmention_replacement = 0.5\nform_dropout = 0.1\n"
                                        "self_training = true\nword_members = 1\n")
    text = text.replace("[data]\n", f"[data]\nunlabelled = ['{unlabelled}']\n"
                                     "unlabelled_types = { Politician = 'PER', Settlement = 'LOC' }\n")
    text = text.replace("[student]\n", "[student]\nform_dropout = 0.1\nmention_replacement = 0.5\n")
    text = text.replace("learning_rate = 3e-3\n",
                        "learning_rate = 3e-3\nword_dropout = 0.1\nselect_on_dev = true\nselect_every = 0.5\n")
    path = d / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cnn_build(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from quantize.build import run_recipe

    d = tmp_path_factory.mktemp("cnn")
    recipe = _cnn_recipe(d)
    with offline():
        bundle = run_recipe(recipe, work_dir=d / "work", out_dir=d / "out",
                            console=Console(file=open("/dev/null", "w"), width=120))  # noqa: SIM115
    return {"bundle": bundle, "recipe": recipe}


def test_cnn_recipe_builds_an_int8_bundle_that_annotates(cnn_build: dict):
    bundle = open_bundle(cnn_build["bundle"])
    m = bundle.manifest
    assert m["model"]["architecture"] == "edge-finer-cnn" and m["model"]["teacher"]["architecture"] == "cnn"
    assert m["model"]["init"]["init"] == "teacher" and m["model"]["init"]["features"] == "copied from the teacher"
    assert "edge-finer-cnn" in m["model"]["export_fallback_reason"]
    assert m["quantization"]["weight_type"] == "int8" and "word_features" in m["input"]["names"]
    ev = m["evaluation"]
    assert ev["int8_fp32_token_agreement"] >= 0.99 and ev["student_int8"]["f1"] > 0.8
    got = [(e.text, e.label) for e in Annotator(bundle, threads=1).annotate("ravi shankar lives in lagos .")]
    assert got == [("ravi shankar", "PER"), ("lagos", "LOC")]


def test_dev_selection_keeps_the_best_scored_checkpoint(cnn_build: dict):
    m = open_bundle(cnn_build["bundle"]).manifest["model"]
    for facts in (m["teacher"]["training"], m["distillation"]):
        history = dict(map(tuple, facts["dev_f1_history"]))
        assert len(history) >= 3  # every half epoch, and at the end
        assert facts["selected_dev_f1"] == max(history.values())
        assert history[facts["selected_step"]] == facts["selected_dev_f1"]
    # the student's history starts at step 0: the teacher's weights, before any distillation
    assert m["distillation"]["dev_f1_history"][0][0] == 0
    card = (cnn_build["bundle"] / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert (f"student step {m['distillation']['selected_step']} "
            f"(dev F1 {m['distillation']['selected_dev_f1']:.3f})") in card
    assert "The same split chose the checkpoints and the threshold" in card


def test_ensemble_teachers_are_trained_and_distilled_together(cnn_build: dict):
    manifest = open_bundle(cnn_build["bundle"]).manifest
    m, seed = manifest["model"], manifest["recipe"]["seed"]
    members = m["teacher"]["training"]["ensemble"]
    assert [x["seed"] for x in members] == [seed, seed + 1] and all(x["steps"] > 0 for x in members)
    assert "ensemble of 2" in m["teacher"]["origin"]


def test_a_word_level_member_joins_the_ensemble_the_student_learns(cnn_build: dict):
    manifest = open_bundle(cnn_build["bundle"]).manifest
    m, seed = manifest["model"], manifest["recipe"]["seed"]
    (word,) = m["teacher"]["training"]["word_members"]
    assert word["seed"] == seed + 2 and word["steps"] > 0
    assert word["dev_f1"] > 0.5 and 0 < word["kept_step"] <= word["steps"]  # chosen on dev like the others
    assert "1 word-level member(s)" in m["teacher"]["origin"]
    assert m["distillation"]["teachers"] == 3  # two subword members and the word-level one


def test_the_student_reads_swapped_mention_copies_as_unlabelled_text(cnn_build: dict):
    manifest = open_bundle(cnn_build["bundle"]).manifest
    dist = manifest["model"]["distillation"]
    bearing = sum(any(t != "O" for t in tags) for _, tags in synthetic_sentences(300, seed=11))
    assert dist["swapped_mention_sentences"] == round(0.5 * bearing)  # half a copy per sentence with a mention
    assert dist["unlabelled_sentences"] == 80  # the other-taxonomy file, counted apart
    # every copy is a window of its own (the sentences are short): train + unlabelled + copies
    assert dist["windows"] == 300 + 80 + dist["swapped_mention_sentences"]


def test_members_trained_in_worker_processes_are_the_members_trained_in_line(cnn_build: dict, tmp_path: Path):
    """``jobs = 2`` trains the members after the self-training one in two spawned workers; each
    member is seeded only from its own seed, so its weights are the in-line build's, byte for byte."""
    from quantize.build import run_recipe

    recipe = tmp_path / "recipe.toml"
    text = cnn_build["recipe"].read_text(encoding="utf-8")
    recipe.write_text(text.replace("threads = 1\n", "threads = 1\njobs = 2\n", 1), encoding="utf-8")
    log = tmp_path / "log.txt"
    with offline(), open(log, "w") as out:
        bundle = run_recipe(recipe, work_dir=tmp_path / "work", out_dir=tmp_path / "out",
                            console=Console(file=out, width=120))
    printed = " ".join(log.read_text(encoding="utf-8").split())  # long lines wrap at the console's width
    assert "training 2 members in 2 worker processes of 1 thread(s) each" in printed
    assert "2 member jobs, 2 threads for the student" in printed  # the student has both cores
    # each worker's notes reach the build's own console, named
    assert "[subword member 2] ensemble member 2 of 2 (seed 4)" in printed
    assert "[word member 1] word-level member 1 of 1 (seed 5)" in printed
    inline, parallel = cnn_build["recipe"].parent / "work" / "teacher", tmp_path / "work" / "teacher"
    for member in ("model", "model_1", "word_0"):
        files = sorted(p.name for p in (inline / member).iterdir())
        assert files and files == sorted(p.name for p in (parallel / member).iterdir())
        for name in files:
            assert (inline / member / name).read_bytes() == (parallel / member / name).read_bytes(), (member, name)
    assert not list(parallel.glob("*.pickle"))  # the workers' shared inputs are removed
    a = open_bundle(cnn_build["bundle"]).manifest["model"]["teacher"]["training"]
    b = open_bundle(bundle).manifest["model"]["teacher"]["training"]
    for x, y in zip(a["ensemble"] + a["word_members"], b["ensemble"] + b["word_members"]):
        assert {k: v for k, v in x.items() if k not in ("minutes", "seconds")} == \
            {k: v for k, v in y.items() if k not in ("minutes", "seconds")}


def test_worker_count_and_order():
    from quantize.members import MemberJob, longest_first, worker_count

    assert worker_count(4, 1, 3) == 3 and worker_count(1, 1, 5) == 1 and worker_count(2, 1, 0) == 1
    assert 1 <= worker_count(0, 1, 8) <= 8  # the idle cores, however many
    jobs = [MemberJob("subword", 0, 1, 6), MemberJob("word", 0, 3, 5), MemberJob("subword", 1, 2, 0)]
    assert [j.seed for j in longest_first(jobs)] == [2, 1, 3]  # no cap (0) counts as the longest


def test_jobs_setting_is_checked(tmp_path: Path):
    from quantize.build import run_recipe

    path = _cnn_recipe(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("threads = 1\n", "threads = 1\njobs = -1\n", 1),
                    encoding="utf-8")
    with pytest.raises(RecipeError, match="jobs must be between 0"):
        load_recipe(path)
    path = _cnn_recipe(tmp_path / "b")
    with pytest.raises(RecipeError, match="--jobs must be between 0"):
        run_recipe(path, work_dir=tmp_path / "w", jobs=65)


def test_word_member_targets_line_up_with_every_window_of_a_long_sentence():
    """A sentence longer than a window is cut into overlapping windows; each window's rows must
    be the member's rows for exactly the words that start in it, as the subword teachers' are."""
    from quantize.encode import encode
    from quantize.tokenizer_train import special_ids, train_tokenizer
    from quantize.wordtagger import window_targets

    sentences = [[f"w{i}" for i in range(40)], ["short", "one"]]
    tok = train_tokenizer([" ".join(s).split() for s in sentences], "bert", 200, False)
    ids = special_ids(tok, "bert")
    windows = encode(tok, sentences, None, None, 16, 4, ids["bos_id"], ids["eos_id"])
    assert sum(w.sentence == 0 for w in windows) > 2
    logp = [torch.arange(len(s), dtype=torch.float32)[:, None].repeat(1, 3) for s in sentences]
    for w, rows in zip(windows, window_targets(logp, windows)):
        assert rows.shape == (int(w.first.sum()), 3)
        assert rows[:, 0].tolist() == list(range(w.first_word, w.first_word + rows.shape[0]))


def test_word_member_settings_are_checked(tmp_path: Path):
    path = _cnn_recipe(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("word_members = 1", "word_members = 9"), encoding="utf-8")
    with pytest.raises(RecipeError, match="word_members must be between 0 and 8"):
        load_recipe(path)
    path.write_text(text.replace("word_members = 1", "word_members = 1\nword_max_minutes = -1"), encoding="utf-8")
    with pytest.raises(RecipeError, match="word_max_minutes must be 0"):
        load_recipe(path)
    path.write_text(text.replace("form_dropout = 0.1\nmention_replacement = 0.5\n",
                                 "form_dropout = 0.1\nmention_replacement = 5\n"), encoding="utf-8")
    with pytest.raises(RecipeError, match="student.mention_replacement must be between 0 and 4"):
        load_recipe(path)


def test_members_after_the_first_learn_the_unlabelled_text_self_trained(cnn_build: dict):
    """Member 2 also trains on the other corpus: its people and places as annotated there (mapped
    by data.unlabelled_types), its companies (a type the map leaves out) as member 1 tags them."""
    teacher = open_bundle(cnn_build["bundle"]).manifest["model"]["teacher"]["training"]
    facts, (first, second) = teacher["self_training"], teacher["ensemble"]
    spans = [t for line in (cnn_build["recipe"].parent / "other.conll").read_text(encoding="utf-8").splitlines()
             if line for t in [line.split("\t")[1]] if t.startswith("B-")]
    assert facts["sentences"] == 80
    assert facts["entities_from_the_source"] == sum(t != "B-Company" for t in spans)
    assert facts["entities"].get("ORG", 0) >= 0.8 * spans.count("B-Company")  # tagged by member 1
    assert facts["entities_tagged_by_the_first_member"] >= facts["entities"].get("ORG", 0)
    assert second["windows"] >= first["windows"] + 80  # the train split's windows and the other corpus's


def test_teachers_train_on_sentences_with_swapped_mentions(cnn_build: dict):
    manifest = open_bundle(cnn_build["bundle"]).manifest
    r = load_recipe(cnn_build["recipe"])  # the fixture's build also ran with form dropout on both models
    assert r.teacher.mention_replacement == 0.5 and r.teacher.form_dropout == r.student.form_dropout == 0.1
    # synthetic train: 300 sentences, nearly all with a mention → about 150 copies
    assert 100 <= manifest["model"]["teacher"]["training"]["swapped_mention_sentences"] <= 150


def test_ensemble_needs_teachers_trained_here(tmp_path: Path):
    path = _cnn_recipe(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("ensemble = 2", "ensemble = 0"), encoding="utf-8")
    with pytest.raises(RecipeError, match="ensemble must be between 1 and 16"):
        load_recipe(path)


def test_calibrated_threshold_is_recorded_and_used(cnn_build: dict):
    m = open_bundle(cnn_build["bundle"]).manifest
    cal = m["evaluation"]["threshold_calibration"]
    assert cal["split"] == "dev" and m["decoding"]["threshold"] == cal["threshold"]
    assert cal["f1_global"] >= cal["f1_at_zero"] and cal["f1_global"] == max(cal["curve"].values())
    assert cal["f1"] >= cal["f1_global"] and set(cal["cross_validated"]) == {"global", "per_type", "folds"}
    assert m["decoding"].get("type_thresholds", {}) == cal["type_thresholds"]
    ann = Annotator(open_bundle(cnn_build["bundle"]), threads=1)
    assert ann.threshold == cal["threshold"] and ann.type_thresholds == cal["type_thresholds"]
    card = (cnn_build["bundle"] / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f"Entity-score threshold {cal['threshold']:.2f}, calibrated on the `dev` split" in card
    assert "Word features (bundle format 2)" in card


def test_bundles_info_shows_features_and_threshold(cnn_build: dict, monkeypatch: pytest.MonkeyPatch):
    from cli import app

    out = CliRunner().invoke(app, ["bundles", "info", str(cnn_build["bundle"])])
    assert out.exit_code == 0, out.output
    assert "features:    lower, prefix1" in out.output and "hashed into 512 rows" in out.output
    assert "threshold:   " in out.output and "calibrated on dev" in out.output


def test_calibration_picks_the_lowest_threshold_with_the_best_f1():
    # per sentence: one right entity (score 0.9) and one wrong one (0.4)
    found = [[Entity(0, 4, "Anna", "PER", "Person", 0.9), Entity(11, 16, "Paris", "ORG", "Group", 0.4)]] * 3
    sents = [Sentence(["Anna", "visited", "Paris"], ["B-PER", "O", "O"])] * 3
    cal = calibrate_threshold(found, sents)
    assert cal["threshold"] == 0.45 and cal["f1"] == 1.0 and cal["f1_at_zero"] == pytest.approx(0.6667, abs=1e-3)


def _typed_case() -> tuple[list, list]:
    """PER right at low scores, ORG wrong at middling ones and right only when sure: one
    global threshold must trade them off, one per type need not."""
    found, sents = [], []
    for k in range(8):
        right = (k // 2) % 2 == 0  # both halves of the cross-validation (even / odd) hold both kinds
        found.append([Entity(0, 4, "Anna", "PER", "Person", 0.35),
                      Entity(13, 18, "Paris", "ORG", "Group", 0.95 if right else 0.6)])
        sents.append(Sentence(["Anna", "visited", "Paris"], ["B-PER", "O", "B-ORG" if right else "O"]))
    return found, sents


def test_per_type_calibration_beats_one_threshold_and_says_what_it_is_worth():
    found, sents = _typed_case()
    cal = calibrate_threshold(found, sents, per_type=True)
    assert cal["f1_global"] < 1.0 and cal["f1"] == 1.0
    assert cal["type_thresholds"] and all(0.0 <= v <= 1.0 for v in cal["type_thresholds"].values())
    kept = [[e for e in ents if e.score >= cal["type_thresholds"].get(e.label, cal["threshold"])] for ents in found]
    assert all([e.label for e in ents] == (["PER", "ORG"] if (k // 2) % 2 == 0 else ["PER"])
               for k, ents in enumerate(kept))
    cv = cal["cross_validated"]
    assert cv["folds"] == 2 and cv["per_type"] == 1.0 and cv["global"] < 1.0
    plain = calibrate_threshold(found, sents)
    assert "type_thresholds" not in plain and plain["f1"] == cal["f1_global"]


def test_per_type_thresholds_that_do_not_carry_over_to_the_other_half_are_not_kept(monkeypatch):
    import quantize.evaluate as evaluate

    found, sents = _typed_case()
    monkeypatch.setattr(evaluate, "PER_TYPE_MARGIN", 1.01)  # no cross-validated gain can reach it
    cal = calibrate_threshold(found, sents, per_type=True)
    assert not cal["per_type_kept"] and cal["type_thresholds"] == {} and cal["per_type_fitted"]
    assert cal["f1"] == cal["f1_global"] < cal["per_type_f1_in_sample"] == 1.0


def _with_decoding(src: Path, dest: Path, **decoding) -> Path:
    import shutil

    shutil.copytree(src, dest)
    m = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    m["decoding"].update(decoding)
    (dest / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    return dest


def test_runtime_applies_per_type_thresholds_and_an_explicit_threshold_replaces_them(cnn_build: dict,
                                                                                        tmp_path: Path):
    text = " ".join(" ".join(tokens) for tokens, _ in synthetic_sentences(20, seed=12))
    base = Annotator(open_bundle(_with_decoding(cnn_build["bundle"], tmp_path / "zero", threshold=0.0,
                                                type_thresholds={})), threads=1).annotate(text)
    types = sorted({e.label for e in base})
    assert len(types) >= 2, "the tiny model should find at least two types in its own dev text"
    closed = types[0]
    strict = _with_decoding(cnn_build["bundle"], tmp_path / "strict", threshold=0.0, type_thresholds={closed: 1.0})
    got = Annotator(open_bundle(strict), threads=1).annotate(text)
    assert [e for e in base if e.label != closed and e.score < 1.0] == [e for e in got if e.score < 1.0]
    assert not any(e.label == closed and e.score < 1.0 for e in got)
    assert Annotator(open_bundle(strict), threads=1, threshold=0.0).annotate(text) == base
    from cli import app

    out = CliRunner().invoke(app, ["bundles", "info", str(strict)])
    assert out.exit_code == 0 and f"per type:    {closed} 1.00" in out.output, out.output


@pytest.mark.parametrize("value, message", [({"NOSUCH": 0.5}, "not one of the bundle's types"),
                                            ({"__first__": 1.5}, "between 0 and 1"),
                                            ({"__first__": "high"}, "between 0 and 1"),
                                            ([0.5], "must be an object")])
def test_bad_per_type_thresholds_are_refused_in_one_line(cnn_build: dict, tmp_path: Path, value, message):
    from cli import app
    from edge_finer.errors import BundleError

    labels = open_bundle(cnn_build["bundle"]).labels
    first = next(lab[2:] for lab in labels if lab != "O")
    if isinstance(value, dict):
        value = {first if k == "__first__" else k: v for k, v in value.items()}
    bad = _with_decoding(cnn_build["bundle"], tmp_path / "bad", type_thresholds=value)
    with pytest.raises(BundleError, match=message):
        Annotator(open_bundle(bad), threads=1)
    out = CliRunner().invoke(app, ["annotate", "--bundle", str(bad), "--text", "Anna visited Paris"])
    assert out.exit_code != 0 and message in out.output and "Traceback" not in out.output


def test_recalibration_rewrites_thresholds_only(cnn_build: dict, tmp_path: Path):
    import shutil

    from quantize.__main__ import main

    copy = tmp_path / "bundle"
    shutil.copytree(cnn_build["bundle"], copy)
    m = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    m["decoding"] = {"aggregation": "first", "threshold": 0.0}  # as an old build left it
    del m["evaluation"]["threshold_calibration"]
    (copy / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    before = {f: (copy / f).read_bytes() for f in ("model.onnx", "tokenizer.json", "profile.json")}
    with offline():
        assert main(["calibrate", str(cnn_build["recipe"]), "--bundle", str(copy)]) == 0
    again = open_bundle(copy)  # verifies every checksum
    assert {f: (copy / f).read_bytes() for f in before} == before
    cal = again.manifest["evaluation"]["threshold_calibration"]
    built = open_bundle(cnn_build["bundle"]).manifest["evaluation"]["threshold_calibration"]
    assert cal["threshold"] == built["threshold"] and cal["type_thresholds"] == built["type_thresholds"]
    assert again.manifest["decoding"]["threshold"] == cal["threshold"]
    assert again.manifest["decoding"].get("type_thresholds", {}) == cal["type_thresholds"]
    assert "Per-type thresholds" in (copy / "MODEL_CARD.md").read_text(encoding="utf-8") or not cal["type_thresholds"]


def test_word_dropout_hides_only_real_subwords():
    ids = torch.tensor([[2, 10, 11, 12, 3, 0, 0], [2, 13, 3, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    batch = {"input_ids": ids, "attention_mask": mask}
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(drop_words(batch, 0.0, 1, gen)["input_ids"], ids)
    all_gone = drop_words(batch, 0.999999, 1, gen)["input_ids"]
    assert all_gone.tolist() == [[2, 1, 1, 1, 3, 0, 0], [2, 1, 3, 0, 0, 0, 0]]
    assert torch.equal(batch["input_ids"], ids)  # the caller's batch is not changed


def test_form_dropout_hides_whole_words_and_their_identifying_features():
    from edge_finer.features import KINDS

    # bos, a word of two subwords, a word of one, eos, padding
    ids = torch.tensor([[2, 10, 11, 12, 3, 0]])
    first = torch.tensor([[False, True, False, True, False, False]])
    feats = torch.arange(1, 6 * len(KINDS) + 1).reshape(1, 6, len(KINDS))
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long(), "first": first, "word_features": feats}
    cols = form_columns(KINDS)
    assert [KINDS[c] for c in cols] == list(FORM_KINDS)
    gen = torch.Generator().manual_seed(0)
    kept = drop_forms(batch, 0.0, 1, cols, gen)
    assert torch.equal(kept["input_ids"], ids) and torch.equal(kept["word_features"], feats)
    gone = drop_forms(batch, 0.999999, 1, cols, gen)
    assert gone["input_ids"].tolist() == [[2, 1, 1, 1, 3, 0]]
    others = [k for k in range(len(KINDS)) if k not in cols]
    assert (gone["word_features"][0, 1:4][:, cols] == 0).all()  # the words' forms are hidden ...
    assert torch.equal(gone["word_features"][0, 1:4][:, others], feats[0, 1:4][:, others])  # ... shape, script stay
    assert torch.equal(gone["word_features"][0, [0, 4]], feats[0, [0, 4]])  # bos and eos untouched
    assert torch.equal(batch["word_features"], feats)  # the caller's batch is not changed
    # a word's subwords go together: over many draws the two subwords of word 1 always agree
    many = {"input_ids": ids.repeat(400, 1), "attention_mask": (ids != 0).long().repeat(400, 1),
            "first": first.repeat(400, 1)}
    out = drop_forms(many, 0.5, 1, [], gen)["input_ids"]
    assert torch.equal(out[:, 1] == 1, out[:, 2] == 1) and 100 < int((out[:, 1] == 1).sum()) < 300


def test_mention_replacement_swaps_mentions_within_their_type():
    sents = [(["Ada", "Obi", "went", "to", "Kano"], ["B-PER", "I-PER", "O", "O", "B-LOC"]),
             (["Musa", "saw", "Lagos", "State"], ["B-PER", "O", "B-LOC", "I-LOC"]),
             (["nothing", "here"], ["O", "O"])]
    people, places = {("Ada", "Obi"), ("Musa",)}, {("Kano",), ("Lagos", "State")}
    out = replace_mentions(sents, 2.0, seed=5)
    assert len(out) == 4  # two copies of each of the two sentences with a mention
    assert out == replace_mentions(sents, 2.0, seed=5)  # deterministic
    for words, tags in out:
        assert len(words) == len(tags)
        contexts = [w for w, t in zip(words, tags) if t == "O"]
        assert contexts in (["went", "to"], ["saw"])
        for a, b, etype in mentions_of(tags):
            assert tuple(words[a:b]) in (people if etype == "PER" else places)
    assert replace_mentions(sents, 0.0, seed=5) == []


@pytest.mark.parametrize("old, new, match", [
    ("[teacher]\n", "[teacher]\nkernel = 4\n", "teacher.kernel must be an odd number"),
    ("[teacher]\n", "[teacher]\ndilations = [1, 2, 4]\n", "one integer ≥ 1 per layer"),
    ("[teacher]\n", "[teacher]\ndilations = [1, 0]\n", "one integer ≥ 1 per layer"),
    ("word_dropout = 0.1\n", "word_dropout = 1.0\n", "word_dropout must be in"),
    ("form_dropout = 0.1\n", "form_dropout = 1.5\n", "form_dropout must be in"),
    ("mention_replacement = 0.5\n", "mention_replacement = -1\n", "mention_replacement must be between"),
    ("[student]\n", "[student]\naverage = 1.0\n", "average must be in"),
    ("[teacher]\n", "[teacher]\naverage = -0.5\n", "average must be in"),
    ("dim = 8\n", 'dim = 8\nkinds = ["lower", "nosuch"]\n', "features.kinds must be distinct names"),
    ("dim = 8\n", "dim = 0\n", "features.dim in 1..1024"),
])
def test_recipe_refuses_bad_lever_settings(tmp_path: Path, old: str, new: str, match: str):
    path = _cnn_recipe(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RecipeError, match=match):
        load_recipe(path)


def _reach(model: torch.nn.Module, length: int = 41, at: int = 20) -> list[int]:
    """Positions whose logits change when the subword at ``at`` changes."""
    ids = torch.randint(1, 100, (1, length), generator=torch.Generator().manual_seed(3))
    other = ids.clone()
    other[0, at] = ids[0, at] % 99 + 1
    mask = torch.ones(1, length)
    with torch.no_grad():
        delta = (model(input_ids=other, attention_mask=mask).logits
                 - model(input_ids=ids, attention_mask=mask).logits).abs().sum(-1)[0]
    return (delta > 1e-6).nonzero().flatten().tolist()


def test_dilated_blocks_see_further_for_the_same_work_and_students_keep_their_reach():
    from quantize.convnet import ConvTokenClassifier, init_conv_student, make_conv_config

    labels = ["O", "B-X", "I-X"]
    plain = ConvTokenClassifier(make_conv_config(100, 4, 16, 3, labels, 0, 0.0)).eval()
    dilated = ConvTokenClassifier(make_conv_config(100, 4, 16, 3, labels, 0, 0.0, [1, 1, 2, 4])).eval()
    assert _reach(plain) == list(range(16, 25))  # ±4 subwords
    assert _reach(dilated) == list(range(12, 29))  # ±8
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in dilated.parameters())
    student, facts = init_conv_student(dilated, 3, 16, 0, True, 0.0)
    assert facts["layer_map"] == [0, 2, 3] and student.config.dilations == [1, 2, 4]
    with pytest.raises(ValueError, match="one integer >= 1 per block"):
        make_conv_config(100, 2, 16, 3, labels, 0, 0.0, [1])


def test_dilated_model_exports_to_a_graph_that_agrees_and_old_configs_still_load(tmp_path: Path):
    """The dilation is in the exported graph (Slice offsets), not in the runtime; a model folder
    written before dilations existed (no key in config.json) loads undilated."""
    from quantize.convnet import ConvTokenClassifier, load_conv, make_conv_config
    from quantize.encode import Window
    from quantize.export import check_against_torch, export_onnx

    model = ConvTokenClassifier(make_conv_config(100, 2, 16, 3, ["O", "B-X", "I-X"], 0, 0.0, [1, 3])).eval()
    model.save_pretrained(tmp_path / "m")
    facts = export_onnx(tmp_path / "m", tmp_path / "model.onnx", opset=18)
    assert facts["tool"].startswith("torch.onnx")
    gen = torch.Generator().manual_seed(1)
    windows = [Window(torch.randint(1, 100, (n,), generator=gen).numpy(), np.zeros(n, dtype=np.int64),
                      np.ones(n, dtype=bool)) for n in (5, 17, 40)]
    assert check_against_torch(load_conv(tmp_path / "m"), tmp_path / "model.onnx", windows, 0) < 1e-4
    cfg = json.loads((tmp_path / "m" / "config.json").read_text(encoding="utf-8"))
    assert cfg["dilations"] == [1, 3]
    del cfg["dilations"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    assert load_conv(tmp_path / "m").config.block_dilations() == [1, 1]


def test_every_shipped_recipe_uses_the_kept_levers():
    """The rebuilt bundles' recipes: convolutions, word features, a calibrated threshold,
    dev selection for teachers and student, an ensemble of teachers."""
    root = Path(__file__).resolve().parent.parent
    index = json.loads((root / "bundles" / "index.json").read_text(encoding="utf-8"))
    for entry in index["bundles"]:
        if entry.get("demo"):
            continue
        r = load_recipe(root / "recipes" / f"{entry['name']}.toml")
        assert r.teacher.family == "cnn" and r.features.enabled and r.runtime.calibrate_threshold, entry["name"]
        assert r.teacher.select_on_dev and r.student.select_on_dev and r.teacher.ensemble > 1, entry["name"]


def _text_windows(n: int = 120):
    from edge_finer.features import FeatureSpec
    from quantize.encode import encode
    from quantize.tokenizer_train import special_ids, train_tokenizer

    words = [w for w, _ in synthetic_sentences(n, seed=21)]
    tok = train_tokenizer(words, "bert", 300, False)
    ids = special_ids(tok, "bert")
    spec = FeatureSpec(seed=3, buckets=256)
    windows = encode(tok, words, None, None, 32, 8, ids["bos_id"], ids["eos_id"], features=spec)
    return tok, ids, spec, windows


def _tagged_windows():
    """The synthetic tagged sentences as windows, with the tokenizer, word features and labels."""
    from quantize.encode import encode

    tok, ids, spec, _ = _text_windows()
    sents = synthetic_sentences(60, seed=22)
    labels = ["O"] + sorted({t for _, tags in sents for t in tags if t != "O"})
    windows = encode(tok, [w for w, _ in sents], [t for _, t in sents], {lab: i for i, lab in enumerate(labels)},
                     32, 8, ids["bos_id"], ids["eos_id"], features=spec)
    return tok, ids, spec, sents, labels, windows


def test_masked_word_pretraining_hides_whole_words_and_learns_to_predict_them():
    from quantize.convnet import ConvTokenClassifier, make_conv_config
    from quantize.encode import collate, word_mask
    from quantize.featured import FeaturedTokenClassifier
    from quantize.pretrain import hide_words, pretrain_masked_words
    from quantize.progress import Reporter
    from quantize.train import Schedule

    tok, ids, spec, windows = _text_windows()
    mask_id = tok.token_to_id("[MASK]")
    batch = collate(windows[:8], ids["pad_id"])
    hide = word_mask(batch, 0.5, torch.Generator().manual_seed(0))
    assert bool(hide.any()) and not bool(hide[:, 0].any())
    word = torch.cumsum(batch["first"].long(), 1)
    real = batch["attention_mask"].bool()
    real[torch.arange(real.shape[0]), real.sum(1) - 1] = False  # the eos shares the last word's index
    for r, t in hide.nonzero().tolist():  # every subword of a hidden word is hidden
        assert bool(hide[r][(word[r] == word[r, t]) & real[r]].all())
    # nothing of a hidden word survives: change its ids and features, the masked input is the same
    other = {**batch, "input_ids": torch.where(hide, batch["input_ids"] + 1, batch["input_ids"]),
             "word_features": torch.where(hide.unsqueeze(-1), batch["word_features"] + 1, batch["word_features"])}
    a, b = hide_words(batch, hide, mask_id), hide_words(other, hide, mask_id)
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["word_features"], b["word_features"])
    assert bool((a["input_ids"][hide] == mask_id).all()) and int(a["word_features"][hide].abs().sum()) == 0

    torch.manual_seed(0)
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    model = FeaturedTokenClassifier(ConvTokenClassifier(make_conv_config(tok.get_vocab_size(), 2, 32, 3, labels,
                                                                         ids["pad_id"], 0.0)), spec, 8)
    classifier = model.base.classifier.weight.detach().clone()
    sched = Schedule(epochs=100, max_steps=150, batch_size=16, learning_rate=3e-3, warmup=0.1, weight_decay=0.0,
                     max_minutes=0)
    facts = pretrain_masked_words(model, windows, sched, ids["pad_id"], 0, Reporter(None, 1), mask_id)
    # from ln(vocab) ≈ 5.7 for a random head to well below: the synthetic words are predictable
    assert facts["steps"] == 150 and facts["final_loss"] < 3.5
    assert torch.equal(model.base.classifier.weight, classifier)  # the tagger's head is not pretrained


def test_teacher_fine_tunes_a_copy_of_the_pretrained_encoder():
    from quantize.convnet import ConvTokenClassifier, make_conv_config
    from quantize.featured import FeaturedTokenClassifier
    from quantize.progress import Reporter
    from quantize.teacher import train_teacher
    from quantize.train import Schedule

    tok, ids, spec, _, labels, windows = _tagged_windows()
    cfg = make_conv_config(tok.get_vocab_size(), 2, 32, 3, labels, ids["pad_id"], 0.0)
    torch.manual_seed(5)
    pre = FeaturedTokenClassifier(ConvTokenClassifier(cfg), spec, 8)
    before = {k: v.clone() for k, v in pre.state_dict().items()}
    frozen = Schedule(epochs=1, max_steps=1, batch_size=16, learning_rate=0.0, warmup=0.0, weight_decay=0.0,
                      max_minutes=0)
    model, _ = train_teacher(cfg, windows, frozen, ids["pad_id"], 9, Reporter(None, 1), features=(spec, 8),
                             pretrained=pre)
    assert model is not pre
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # started from it (lr 0)
    fresh, _ = train_teacher(cfg, windows, frozen, ids["pad_id"], 9, Reporter(None, 1), features=(spec, 8))
    assert not torch.equal(fresh.base.embeddings.weight, pre.base.embeddings.weight)
    trained, _ = train_teacher(cfg, windows, Schedule(1, 5, 16, 1e-2, 0.0, 0.0, 0), ids["pad_id"], 9,
                               Reporter(None, 1), features=(spec, 8), pretrained=pre)
    assert all(torch.equal(v, pre.state_dict()[k]) for k, v in before.items())  # the original is untouched
    assert not torch.equal(trained.base.embeddings.weight, pre.base.embeddings.weight)


def test_accuracy_report_is_additive():
    """Rerunning some probes replaces their rows in place and keeps the committed rows and remarks."""
    from benchmarks.accuracy import merged

    row = lambda v, f, b="s1400": {"dataset": "il-ner/hi", "variant": v, "budget": b, "dev_f1": f}  # noqa: E731
    earlier = {"probes": [row("v3", 0.75), row("v3+chars", 0.73), row("v3", 0.70, 8.0)], "remark": "First round."}
    rows, remark = merged(earlier, [row("v3+chars", 0.74), row("v3+new", 0.76)], "Second round.")
    assert [(r["variant"], r["budget"], r["dev_f1"]) for r in rows] == [
        ("v3", "s1400", 0.75), ("v3+chars", "s1400", 0.74), ("v3", 8.0, 0.70), ("v3+new", "s1400", 0.76)]
    assert remark == "First round.\n\nSecond round."
    assert merged({}, [row("v3", 0.75)], "")[1] == ""


def test_ensemble_ceiling_scores_members_and_their_mean(cnn_build: dict):
    from benchmarks.ensemble_ceiling import report, score_members

    work = cnn_build["recipe"].parent / "work"
    result = score_members(cnn_build["recipe"], [work], [[0], [1], [2], [0, 1, 2]])
    members, groups = result["members"], result["groups"]
    assert [m["member"] for m in members] == [0, 1, 2] and all(0.0 <= m["dev_f1"] <= 1.0 for m in members)
    # the mean of one member is that member: the mean scorer and the single scorer agree
    assert [g["dev_f1"] for g in groups[:3]] == [m["dev_f1"] for m in members]
    assert groups[3]["best_member"] == max(m["dev_f1"] for m in members)
    # the word-level member comes after the subword ones, scored as its build scored it
    (word,) = open_bundle(cnn_build["bundle"]).manifest["model"]["teacher"]["training"]["word_members"]
    assert Path(members[2]["folder"]).name == "word_0" and members[2]["dev_f1"] == word["dev_f1"]
    assert "| 0, 1, 2 |" in report(result, "two seeds and a word member")
    with pytest.raises(SystemExit, match="numbered 0..2"):
        score_members(cnn_build["recipe"], [work], [[0, 3]])


def test_training_feeds_each_batch_to_the_device_its_model_is_on():
    """Batches are built on the CPU; the model may live elsewhere (a lent GPU for probes and
    family teachers). The meta device stands in for one on every machine."""
    from quantize.convnet import ConvTokenClassifier, make_conv_config
    from quantize.encode import collate
    from quantize.featured import FeaturedTokenClassifier, forward_kwargs, model_device

    tok, ids, spec, windows = _text_windows()
    batch = collate(windows[:4], ids["pad_id"])
    cfg = make_conv_config(tok.get_vocab_size(), 2, 32, 3, ["O", "B-PER", "I-PER"], ids["pad_id"], 0.0)
    featured = FeaturedTokenClassifier(ConvTokenClassifier(cfg), spec, 8)
    assert set(forward_kwargs(featured, batch)) == {"input_ids", "attention_mask", "word_features"}
    assert set(forward_kwargs(ConvTokenClassifier(cfg), batch)) == {"input_ids", "attention_mask"}
    featured.to("meta")
    assert model_device(featured).type == "meta"
    kwargs = forward_kwargs(featured, batch)
    assert {t.device.type for t in kwargs.values()} == {"meta"}
    assert featured(**kwargs).logits.shape == (*batch["input_ids"].shape, 3)
    assert batch["input_ids"].device.type == "cpu"  # the batch itself is left where it was built


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (the meta-device test covers the moves)")
def test_teacher_trains_and_is_scored_on_a_gpu():
    from quantize.featured import forward_kwargs
    from quantize.progress import Reporter
    from quantize.selection import DevScorer
    from quantize.teacher import make_config, train_teacher
    from quantize.train import Schedule

    tok, ids, spec, sents, labels, windows = _tagged_windows()
    cfg = make_config("cnn", tok.get_vocab_size(), 2, 32, 4, 64, labels, 32, ids, 0.0, 3, None)
    sched = Schedule(epochs=3, max_steps=0, batch_size=16, learning_rate=3e-3, warmup=0.1, weight_decay=0.0,
                     max_minutes=0)
    model, facts = train_teacher(cfg, windows, sched, ids["pad_id"], 0, Reporter(None, 1), features=(spec, 8),
                                 device="cuda")
    assert next(model.parameters()).device.type == "cuda" and facts["steps"] > 0
    scorer = DevScorer(windows, [t for _, t in sents], labels, ids["pad_id"],
                       lambda m, b: m(**forward_kwargs(m, b)).logits)
    assert 0.0 <= scorer(model.eval()) <= 1.0
