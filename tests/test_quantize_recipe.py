"""Recipes: parsing, path resolution, clear refusals (unknown keys, hub-id teachers), the CLI."""
from __future__ import annotations

from pathlib import Path

import pytest

from quantize.__main__ import main
from quantize.build import run_recipe
from quantize.errors import RecipeError, TeacherError
from quantize.recipe import load_recipe
from quantize.teacher import inspect_teacher, resolve_teacher
from quantize_helpers import ROOT, recipe_text, synthetic_sentences, write_conll


@pytest.fixture()
def data(tmp_path: Path) -> tuple[Path, Path]:
    return (write_conll(tmp_path / "train.conll", synthetic_sentences(40, 1)),
            write_conll(tmp_path / "dev.conll", synthetic_sentences(10, 2)))


def test_recipe_parses_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    sub = tmp_path / "recipes"
    sub.mkdir()
    p = sub / "r.toml"
    p.write_text('name = "x"\nversion = "1.0.0"\nroot = ".."\n[language]\nbcp47 = "en"\n'
                 '[taxonomy]\nname = "t"\n[data]\ntrain = "data/train.conll"\neval = "data/dev.conll"\n'
                 '[student]\nsize = "small"\n', encoding="utf-8")
    r = load_recipe(p)
    assert r.root == tmp_path.resolve()
    assert r.data.train == ["data/train.conll"]
    assert r.resolve(r.data.eval) == tmp_path.resolve() / "data/dev.conll"
    assert r.student.shape() == (4, 256, 4, 1024)
    assert r.quantization.preset == "avx2" and r.export.opset == 18


@pytest.mark.parametrize("body,fragment", [
    ('name = "x"\nversion = "1"\ncolour = 1\n', "unknown key 'colour'"),
    ('name = "x"\nversion = "1"\n[student]\nsise = "tiny"\n', "unknown key 'sise' in [student]"),
    ('name = "x"\nversion = "1"\n[student]\nsize = "huge"\n', "student.size"),
    ('name = "x"\nversion = "1"\n[teacher]\nlayers = "four"\n', "teacher.layers must be int"),
    ('name = "x"\n', "'version' is missing"),
    ('name = "x"\nversion = \n', "not valid TOML"),
])
def test_recipe_errors_are_one_line(tmp_path: Path, body: str, fragment: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(RecipeError) as err:
        load_recipe(p)
    assert fragment in str(err.value) and str(p) in str(err.value)


@pytest.mark.parametrize("spec", ["xlm-roberta-base", "google-bert/bert-base-multilingual-cased"])
def test_hub_id_teacher_is_refused(tmp_path: Path, data: tuple[Path, Path], spec: str) -> None:
    with pytest.raises(TeacherError, match="not a local folder.*never downloads"):
        resolve_teacher(spec, tmp_path)
    p = tmp_path / "r.toml"
    p.write_text(recipe_text("hub", *data, teacher=spec), encoding="utf-8")
    with pytest.raises(TeacherError, match="set teacher.path to that folder"):
        run_recipe(p, work_dir=tmp_path / "w", out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_teacher_folder_checks(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(TeacherError, match="no config.json"):
        inspect_teacher(tmp_path / "m")
    (tmp_path / "m/config.json").write_text('{"model_type": "bert", "id2label": {"0": "LABEL_0", "1": "LABEL_1"}}')
    with pytest.raises(TeacherError, match="fine-tuned"):
        inspect_teacher(tmp_path / "m")
    (tmp_path / "m/config.json").write_text('{"model_type": "gpt2", "id2label": {"0": "O"}}')
    with pytest.raises(TeacherError, match="not supported"):
        inspect_teacher(tmp_path / "m")
    with pytest.raises(TeacherError, match="does not exist"):
        resolve_teacher("./missing/folder", tmp_path)


def test_cli_prints_one_line_and_exits_2(tmp_path: Path, data: tuple[Path, Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "r.toml"
    p.write_text(recipe_text("cli", *data, teacher="xlm-roberta-base"), encoding="utf-8")
    assert main(["build", str(p), "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: teacher 'xlm-roberta-base' is not a local folder") and "\n" not in err
    capsys.readouterr()
    assert main(["build", str(tmp_path / "missing.toml")]) == 2


def test_malformed_training_file_fails_the_build_naming_file_and_line(tmp_path: Path,
                                                                      data: tuple[Path, Path]) -> None:
    bad = tmp_path / "bad.conll"
    bad.write_text("Ravi\tB-PER\nShankar\tI-PER\n\nvisited\n", encoding="utf-8")
    p = tmp_path / "r.toml"
    p.write_text(recipe_text("bad", bad, data[1]), encoding="utf-8")
    from quantize.errors import DataError

    with pytest.raises(DataError, match=rf"^{bad}:4: expected 'token<TAB>tag'"):
        run_recipe(p, work_dir=tmp_path / "w", out_dir=tmp_path / "o")


def test_shipped_recipes_parse() -> None:
    recipes = sorted((ROOT / "recipes").glob("*.toml"))
    assert recipes
    for p in recipes:
        r = load_recipe(p)
        assert r.training_data and all(s.licence for s in r.training_data), p


def test_work_folder_that_is_not_ours_is_never_wiped(tmp_path: Path, data: tuple[Path, Path]) -> None:
    from quantize.errors import BuildError

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete", encoding="utf-8")
    p = tmp_path / "r.toml"
    p.write_text(recipe_text("w", *data), encoding="utf-8")
    with pytest.raises(BuildError, match="not an edge-finer build work folder"):
        run_recipe(p, work_dir=precious, out_dir=tmp_path / "o", resume=False)
    assert (precious / "thesis.tex").read_text(encoding="utf-8") == "do not delete"
