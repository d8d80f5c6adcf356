"""`edge-finer build` on an install without the build extra: an instruction, not a traceback."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
import quantize


def test_missing_build_extra_gives_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(quantize.BUILD_DEPENDENCIES, "no_such_module_edge_finer", "no-such-dist")
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "x"\n', encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["build", str(recipe)])
    assert result.exit_code == 1
    out = result.output
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no-such-dist" in errors[0] and "edge-finer[build]" in errors[0]


def test_python_m_quantize_reports_missing_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from quantize.__main__ import main

    monkeypatch.setitem(quantize.BUILD_DEPENDENCIES, "no_such_module_edge_finer", "no-such-dist")
    assert main(["build", str(tmp_path / "r.toml")]) == 2
    assert "no-such-dist" in capsys.readouterr().err


def test_jobs_out_of_range_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from quantize.__main__ import main

    from quantize_helpers import recipe_text, synthetic_sentences, write_conll

    train = write_conll(tmp_path / "train.conll", synthetic_sentences(20, seed=1))
    recipe = tmp_path / "r.toml"
    recipe.write_text(recipe_text("x", train, train, family="cnn"), encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["build", str(recipe), "--jobs", "65"])
    assert result.exit_code != 0 and "Traceback" not in result.output and "--jobs" in result.output
    assert main(["build", str(recipe), "--jobs", "-1", "--work", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "--jobs must be between 0" in err and "Traceback" not in err
