"""Self-training's tags (quantize.pseudo): a source annotated with another taxonomy is trusted
for the types mapped to ours, a first teacher answers for the rest, and the result is valid IOB2."""
from __future__ import annotations

from pathlib import Path

import pytest

from quantize.augment import mentions_of
from quantize.data import read_unlabelled_tagged
from quantize.errors import RecipeError
from quantize.pseudo import UNKNOWN, merge, trusted_tags
from quantize.recipe import load_recipe
from quantize_helpers import recipe_text, synthetic_sentences, write_conll

MAP = {"Politician": "NEP", "HumanSettlement": "NEL"}


def test_trusted_tags_keep_mapped_types_and_mark_the_others_unknown() -> None:
    source = ["B-Politician", "I-Politician", "O", "B-Facility", "I-Facility", "B-HumanSettlement", "O"]
    assert trusted_tags(source, MAP) == ["B-NEP", "I-NEP", "O", UNKNOWN, UNKNOWN, "B-NEL", "O"]


def test_mentions_skip_unknown_words() -> None:
    assert mentions_of(["B-A", "I-A", "B-A", UNKNOWN, "O", "B-B"]) == [(0, 2, "A"), (2, 3, "A"), (5, 6, "B")]


def test_a_source_span_wins_over_an_overlapping_prediction() -> None:
    trusted = ["B-NEP", "I-NEP", "O", "O"]
    predicted = ["O", "B-NEO", "I-NEO", "O"]  # overlaps the person: dropped whole
    assert merge(predicted, trusted, {"NEP", "NEL"}) == ["B-NEP", "I-NEP", "O", "O"]


def test_a_predicted_entity_of_a_trusted_type_where_the_source_says_none_is_dropped() -> None:
    trusted = ["O", "O", "O", "O"]
    predicted = ["B-NEL", "O", "B-NEN", "I-NEN"]  # the source annotates places, not numbers
    assert merge(predicted, trusted, {"NEP", "NEL"}) == ["O", "O", "B-NEN", "I-NEN"]


def test_a_prediction_over_an_unmapped_source_entity_stays() -> None:
    trusted = ["O", UNKNOWN, UNKNOWN, "O"]  # a Facility: an entity, but which of ours is not said
    predicted = ["O", "B-NEL", "I-NEL", "O"]
    assert merge(predicted, trusted, {"NEP", "NEL"}) == predicted


def test_plain_text_takes_the_prediction_and_lengths_must_agree() -> None:
    assert merge(["B-NEP", "O"], None, {"NEP"}) == ["B-NEP", "O"]
    with pytest.raises(ValueError):
        merge(["O"], ["O", "O"], {"NEP"})


def test_annotated_files_carry_trusted_tags_and_text_files_none(tmp_path: Path) -> None:
    conll = write_conll(tmp_path / "other.conll", [(["Modi", "visited", "Delhi-Agra", "."],
                                                    ["B-Politician", "O", "B-HumanSettlement", "O"])])
    rows = read_unlabelled_tagged(conll, MAP)
    # the runtime's words: "Delhi-Agra" is three words, the tags follow them
    assert rows == [(["Modi", "visited", "Delhi", "-", "Agra", "."],
                     ["B-NEP", "O", "B-NEL", "I-NEL", "I-NEL", "O"])]
    # no mapping (every recipe without self-training): words only, as read_unlabelled gives them
    assert read_unlabelled_tagged(conll, {}) == [(rows[0][0], None)]
    text = tmp_path / "plain.txt"
    text.write_text("Ravi went home .\n", encoding="utf-8")
    assert read_unlabelled_tagged(text, MAP) == [(["Ravi", "went", "home", "."], None)]


def _recipe(tmp_path: Path, teacher: str, data: str = "") -> Path:
    train = write_conll(tmp_path / "train.conll", synthetic_sentences(20, seed=1))
    dev = write_conll(tmp_path / "dev.conll", synthetic_sentences(5, seed=2))
    text = recipe_text("st", train, dev, family="cnn").replace("[teacher]\n", "[teacher]\n" + teacher)
    path = tmp_path / "recipe.toml"
    path.write_text(text.replace("[data]\n", "[data]\n" + data), encoding="utf-8")
    return path


def test_self_training_needs_an_ensemble_and_unlabelled_text(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="self_training needs teacher.ensemble ≥ 2"):
        load_recipe(_recipe(tmp_path, "self_training = true\nensemble = 1\n", f"unlabelled = ['{tmp_path}/x.txt']\n"))
    with pytest.raises(RecipeError, match="and data.unlabelled"):
        load_recipe(_recipe(tmp_path, "self_training = true\nensemble = 2\n"))
    with pytest.raises(RecipeError, match="unlabelled_types is read by teacher self-training only"):
        load_recipe(_recipe(tmp_path, "ensemble = 2\n", "unlabelled_types = { Politician = 'PER' }\n"))
    with pytest.raises(RecipeError, match="a non-empty string"):
        load_recipe(_recipe(tmp_path, "self_training = true\nensemble = 2\n",
                            f"unlabelled = ['{tmp_path}/x.txt']\nunlabelled_types = {{ Politician = 1 }}\n"))
    ok = load_recipe(_recipe(tmp_path, "self_training = true\nensemble = 2\n",
                             f"unlabelled = ['{tmp_path}/x.txt']\nunlabelled_types = {{ Politician = 'PER' }}\n"))
    assert ok.teacher.self_training and ok.data.unlabelled_types == {"Politician": "PER"}


def test_a_mapping_to_a_type_outside_the_taxonomy_is_refused_before_training(tmp_path: Path) -> None:
    from rich.console import Console

    from quantize.build import run_recipe
    from quantize.errors import DataError

    other = write_conll(tmp_path / "other.conll", [(["Modi", "spoke"], ["B-Politician", "O"])])
    path = _recipe(tmp_path, "self_training = true\nensemble = 2\n",
                   f"unlabelled = ['{other}']\nunlabelled_types = {{ Politician = 'NEP' }}\n")
    with pytest.raises(DataError, match=r"maps to \[.NEP.\], not types the model learns"):
        run_recipe(path, work_dir=tmp_path / "work", out_dir=tmp_path / "out",
                   console=Console(file=open("/dev/null", "w"), width=120))  # noqa: SIM115
    assert not (tmp_path / "work" / "teacher").exists()
