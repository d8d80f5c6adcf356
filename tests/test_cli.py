"""The ``edge-finer`` command, run in-process through typer's CliRunner (plus a few real
subprocess runs), against the tiny bundle found through ``EDGE_FINER_BUNDLES``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from edge_finer import registry
from edge_finer.annotator import Annotator
from edge_finer.bundle import open_bundle
from edge_finer.decoding import LabelScheme
from edge_finer.errors import OutputError
from edge_finer.formats import TSV_HEADER
from edge_finer.pretokenize import split_words
from edge_finer.textio import atomic_write
from tiny_bundle import LABELS, make_tiny_bundle

ROOT = Path(__file__).resolve().parent.parent

DOC = ("Ravi Shankar Kumar works at Infosys Limited.\r\n"
       "\r\n"
       "अमित शाह दिल्ली गए। Zoë 🙂 met Ravi in Guwahati\n"
       "nothing here\n"
       "Infosys\tLimited, Shillong and 「東京」\n")


def run(*args: str, input: str | bytes | None = None, env: dict | None = None):
    return CliRunner().invoke(cli.app, [str(a) for a in args], input=input, env=env)


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def assert_user_error(result, *fragments: str, code: int = 1) -> str:
    """Exit ``code``, no traceback, and exactly one ``error:`` line containing the fragments."""
    assert result.exit_code == code, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def assert_input_error(result, *fragments: str, failed: str = "1 of 1") -> str:
    """A per-input failure: exit 1, no traceback, one ``error:`` line for the input at fault
    (with the fragments) and the closing ``N of M inputs failed`` line."""
    assert result.exit_code == 1, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 2 and f"{failed} inputs failed" in lines[1], result.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "doc.txt"
    path.parent.mkdir()
    path.write_bytes(DOC.encode("utf-8"))
    return path


@pytest.fixture
def expected(tiny_bundle: Path):
    """(line number, line offset, entities) for every line of DOC, from the library itself."""
    ann = Annotator(open_bundle(tiny_bundle))
    out = []
    offset = 0
    raws = DOC.split("\n")
    if raws[-1] == "":  # a final newline ends the last line; it does not start a new one
        raws.pop()
    for number, raw in enumerate(raws, start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        out.append((number, offset, ann.annotate(line)))
        offset += len(raw) + 1
    assert sum(len(e) for *_, e in out) == 9
    return out


def _doc_entities(expected):
    return [(off + e.start, off + e.end, e.label) for _, off, ents in expected for e in ents]


# -- formats --------------------------------------------------------------------------------


def test_jsonl(bundles_env, doc: Path, expected):
    out = ok(run("annotate", doc, "-b", "tiny-en", "-f", "jsonl"))
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == len(expected)
    for rec, (number, offset, ents) in zip(records, expected):
        assert rec["source"] == str(doc) and rec["line"] == number and rec["offset"] == offset
        assert DOC[offset:offset + len(rec["text"])] == rec["text"]
        assert "\n" not in rec["text"] and not rec["text"].endswith("\r")
        for e in rec["entities"]:
            assert rec["text"][e["start"]:e["end"]] == e["text"]
        assert [(e["start"], e["end"], e["label"], e["coarse_label"]) for e in rec["entities"]] == [
            (e.start, e.end, e.label, e.coarse_label) for e in ents]


def test_default_format_off_a_terminal_is_jsonl(bundles_env, doc: Path):
    assert ok(run("annotate", doc, "-b", "tiny-en")) == ok(run("annotate", doc, "-b", "tiny-en", "-f", "jsonl"))


def test_tsv_offsets_index_the_decoded_file(bundles_env, doc: Path, expected):
    out = ok(run("annotate", doc, "-b", "tiny-en", "-f", "tsv"))
    assert out.startswith(TSV_HEADER)
    rows = [line.split("\t") for line in out.splitlines()[1:]]
    assert all(len(r) == 7 for r in rows), "a tab inside an entity must not add a column"
    text = doc.read_bytes().decode("utf-8")
    got = []
    for source, line, start, end, label, score, etext in rows:
        start, end = int(start), int(end)
        assert source == str(doc)
        assert text[start:end].replace("\t", " ") == etext
        assert 0.0 <= float(score) <= 1.0
        got.append((start, end, label))
    assert got == _doc_entities(expected)
    assert [int(r[1]) for r in rows] == [n for n, _, ents in expected for _ in ents]


def test_brat_offsets_index_the_decoded_file(bundles_env, doc: Path, expected):
    out = ok(run("annotate", doc, "-b", "tiny-en", "-f", "brat"))
    text = doc.read_bytes().decode("utf-8")
    got = []
    for k, line in enumerate(out.splitlines(), start=1):
        tid, middle, etext = line.split("\t")
        label, start, end = middle.split(" ")
        assert tid == f"T{k}"
        assert text[int(start):int(end)].replace("\t", " ") == etext
        got.append((int(start), int(end), label))
    assert got == _doc_entities(expected)


def _conll_sentences(out: str) -> list[list[tuple[str, str]]]:
    assert out.endswith("\n\n")
    return [[tuple(row.split("\t")) for row in block.split("\n")] for block in out.strip("\n").split("\n\n")]


def test_conll_tags_are_valid_iob2_and_match_entities(bundles_env, doc: Path, expected):
    out = ok(run("annotate", doc, "-b", "tiny-en", "-f", "conll"))
    sentences = _conll_sentences(out)
    lines = [(n, off, ents) for n, off, ents in expected]
    texts = [raw[:-1] if raw.endswith("\r") else raw for raw in DOC.split("\n")]
    with_words = [(t, ents) for t, (_, _, ents) in zip(texts, lines) if split_words(t)]
    assert len(sentences) == len(with_words), "one block per line that has words"
    scheme = LabelScheme.from_labels(LABELS)
    import numpy as np
    for rows, (line, ents) in zip(sentences, with_words):
        words = split_words(line)
        assert [w for w, _ in rows] == [line[s:e] for s, e in words]
        tags = [t for _, t in rows]
        assert scheme.valid(np.array([LABELS.index(t) for t in tags]))
        # entities rebuilt from the tags are exactly the annotator's
        rebuilt, k = [], 0
        while k < len(tags):
            if tags[k].startswith("B-"):
                j = k + 1
                while j < len(tags) and tags[j] == "I-" + tags[k][2:]:
                    j += 1
                rebuilt.append((words[k][0], words[j - 1][1], tags[k][2:]))
                k = j
            else:
                k += 1
        assert rebuilt == [(e.start, e.end, e.label) for e in ents]


def _table_rows(out: str) -> list[list[str]]:
    """Header and body rows of a rich table (heavy bars in the header, light in the body)."""
    rows = []
    for line in out.splitlines():
        for bar in ("┃", "│"):
            if line.startswith(bar):
                rows.append([c.strip() for c in line.strip(bar).split(bar)])
    return rows


def test_table(bundles_env, doc: Path, expected):
    out = ok(run("annotate", doc, "-b", "tiny-en", "-f", "table", env={"COLUMNS": "200"}))
    rows = _table_rows(out)
    assert rows[0] == ["source", "line", "start", "end", "text", "label", "group", "score"]
    got = [(int(r[1]), int(r[2]), int(r[3]), r[4], r[5], r[6]) for r in rows[1:]]
    want = [(n, e.start, e.end, e.text.replace("\t", " "), e.label, e.coarse_label)
            for n, _, ents in expected for e in ents]
    assert got == want, "one row per entity, tabs flattened"
    assert all(r[0] == str(doc) for r in rows[1:])
    assert "no entities found" in ok(run("annotate", "-b", "tiny-en", "-f", "table", "-t", "nothing"))


def test_table_does_not_interpret_markup(bundles_env, tmp_path: Path):
    """Regression: rich markup in a file name was applied ([draft]) or crashed rich ([/b])."""
    names = ["[draft] notes.txt", "x[/bold]/a.txt", "[red]y.txt"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("Ravi [bold] Delhi\n", encoding="utf-8")
    result = run("annotate", *(tmp_path / n for n in names), "-b", "tiny-en", "-f", "table",
                 env={"COLUMNS": "300"})
    rows = _table_rows(ok(result))
    assert sorted({r[0] for r in rows if r[0] != "source"}) == sorted(str(tmp_path / n) for n in names)
    assert [r[4] for r in rows if r[0] != "source"] == ["Ravi", "Delhi"] * 3
    out = tmp_path / "out"
    ok(run("annotate", tmp_path / names[1], "-b", "tiny-en", "-f", "table", "-o", out))
    assert str(tmp_path / names[1]) in (out / "a.txt").read_text(encoding="utf-8")


def test_granularity_coarse(bundles_env, doc: Path):
    fine = [json.loads(x) for x in ok(run("annotate", doc, "-b", "tiny-en")).splitlines()]
    coarse = [json.loads(x) for x in ok(run("annotate", doc, "-b", "tiny-en", "-g", "coarse")).splitlines()]
    fine_labels = [e["label"] for r in fine for e in r["entities"]]
    coarse_labels = [e["label"] for r in coarse for e in r["entities"]]
    mapping = {"PER": "Person", "LOC": "Location", "ORG": "Group"}
    assert coarse_labels == [mapping[x] for x in fine_labels]
    assert set(coarse_labels) == {"Person", "Location", "Group"}
    assert all("coarse_label" not in e for r in coarse for e in r["entities"])
    for fmt in ("tsv", "brat", "conll"):
        out = ok(run("annotate", doc, "-b", "tiny-en", "-g", "coarse", "-f", fmt))
        assert "Person" in out and "PER" not in out.replace("Person", ""), fmt


def test_text_and_stdin(bundles_env):
    out = ok(run("annotate", "-b", "tiny-en", "-t", "Ravi Shankar in Delhi"))
    [rec] = [json.loads(x) for x in out.splitlines()]
    assert rec["source"] == "<text>"
    assert [(e["text"], e["label"]) for e in rec["entities"]] == [("Ravi Shankar", "PER"), ("Delhi", "LOC")]
    for args in ((), ("-",)):
        out = ok(run("annotate", *args, "-b", "tiny-en", input=DOC.encode("utf-8")))
        records = [json.loads(x) for x in out.splitlines()]
        assert all(r["source"] == "<stdin>" for r in records)
        assert sum(len(r["entities"]) for r in records) == 9
        for r in records:
            assert DOC[r["offset"]:r["offset"] + len(r["text"])] == r["text"]


def test_stdin_that_is_not_utf8(bundles_env):
    assert_user_error(run("annotate", "-b", "tiny-en", input=b"Delhi \xff\xfe"), "<stdin>", "utf-8")
    out = ok(run("annotate", "-b", "tiny-en", "--errors", "replace", input=b"Delhi \xff"))
    assert json.loads(out)["text"] == "Delhi \ufffd"


def test_lang_and_only_installed_bundle(bundles_env):
    a = json.loads(ok(run("annotate", "-l", "en", "-t", "Delhi")))
    b = json.loads(ok(run("annotate", "-t", "Delhi")))  # routed: the one Latin-script bundle
    assert "routing" not in a  # --lang: no routing happened
    assert b.pop("routing")["bundle"] == "tiny-en"
    assert a == b and a["entities"][0]["label"] == "LOC"


def test_threshold_and_aggregation_options(bundles_env):
    out = ok(run("annotate", "-b", "tiny-en", "--aggregation", "average", "-t", "Guwahati Delhi"))
    assert [e["text"] for e in json.loads(out)["entities"]] == ["Guwahati", "Delhi"]
    out = ok(run("annotate", "-b", "tiny-en", "--aggregation", "average", "--threshold", "0.6",
                 "-t", "Guwahati Delhi"))
    assert [e["text"] for e in json.loads(out)["entities"]] == ["Delhi"]
    from edge_finer import annotator as annotator_mod

    annotator_mod.clear_cache()
    out = ok(run("annotate", "-b", "tiny-en", "--threads", "1", "--low-memory", "-t", "Delhi"))
    assert json.loads(out)["entities"][0]["text"] == "Delhi"
    # --low-memory means small model batches (the arena stays on: off, it used more memory)
    (used,) = annotator_mod._cache.values()
    assert used.max_batch_tokens == annotator_mod.LOW_MEMORY_BATCH_TOKENS < annotator_mod.MAX_BATCH_TOKENS
    assert used.arena


# -- files, folders, outputs ----------------------------------------------------------------


def _all_files(root: Path) -> set[str]:
    """Output files, less the run record (see test_resume.py)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".edge-finer-run.json"}


def test_output_folder_one_file_per_input_with_recursion(bundles_env, tmp_path: Path):
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / ".hidden").mkdir()
    (src / "a.txt").write_text("Ravi in Delhi\n", encoding="utf-8")
    (src / "sub" / "b.txt").write_text("Shillong\n", encoding="utf-8")
    (src / "sub" / "deeper" / "c.md").write_text("Infosys Limited\n", encoding="utf-8")
    (src / ".hidden" / "x.txt").write_text("Delhi\n", encoding="utf-8")
    (src / ".dot.txt").write_text("Delhi\n", encoding="utf-8")
    out = tmp_path / "out"
    for fmt, ext in (("jsonl", ".jsonl"), ("conll", ".conll"), ("tsv", ".tsv"), ("table", ".txt")):
        result = run("annotate", src, "-b", "tiny-en", "-f", fmt, "-o", out)
        assert ok(result) == ""
        assert _all_files(out) >= {f"a{ext}", f"sub/b{ext}", f"sub/deeper/c{ext}"}
    assert _all_files(out) == {f"{stem}{ext}" for stem in ("a", "sub/b", "sub/deeper/c")
                               for ext in (".jsonl", ".conll", ".tsv", ".txt")}, "no .part files"
    brat = tmp_path / "brat"  # a brat collection: each .ann with its .txt, and the types declared
    assert ok(run("annotate", src, "-b", "tiny-en", "-f", "brat", "-o", brat)) == ""
    assert _all_files(brat) == {f"{stem}{ext}" for stem in ("a", "sub/b", "sub/deeper/c")
                                for ext in (".ann", ".txt")} | {"annotation.conf"}
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
    rec = json.loads((out / "sub" / "deeper" / "c.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert rec["source"] == str(src / "sub" / "deeper" / "c.md")
    assert rec["entities"][0]["text"] == "Infosys Limited"
    assert "Ravi" in (out / "a.txt").read_text(encoding="utf-8")


def test_output_refuses_existing_file_without_force(bundles_env, doc: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "doc.jsonl").write_text("precious\n", encoding="utf-8")
    other = doc.parent / "other.txt"
    other.write_text("Delhi\n", encoding="utf-8")
    result = run("annotate", doc, other, "-b", "tiny-en", "-o", out)
    assert_input_error(result, str(out / "doc.jsonl"), "--force", failed="1 of 2")
    assert (out / "doc.jsonl").read_text(encoding="utf-8") == "precious\n"
    assert (out / "other.jsonl").is_file(), "the other input is still processed"
    ok(run("annotate", doc, "-b", "tiny-en", "-o", out, "--force"))
    assert "Infosys Limited" in (out / "doc.jsonl").read_text(encoding="utf-8")
    assert _all_files(out) == {"doc.jsonl", "other.jsonl"}


def test_output_never_overwrites_an_input(bundles_env, tmp_path: Path):
    folder = tmp_path / "d"
    folder.mkdir()
    victim = folder / "notes.jsonl"
    victim.write_text("Ravi in Delhi\n", encoding="utf-8")
    for extra in ((), ("--force",)):
        result = run("annotate", victim, "-b", "tiny-en", "-f", "jsonl", "-o", folder, *extra)
        assert_input_error(result, str(victim), "input")
        assert victim.read_text(encoding="utf-8") == "Ravi in Delhi\n"
    assert _all_files(folder) == {"notes.jsonl"}


def test_two_inputs_with_one_output_name_never_clobber(bundles_env, tmp_path: Path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "a.txt").write_text("Delhi\n", encoding="utf-8")
    (tmp_path / "y" / "a.txt").write_text("Shillong\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run("annotate", tmp_path / "x" / "a.txt", tmp_path / "y" / "a.txt", "-b", "tiny-en",
                 "-o", out, "--force")
    assert_input_error(result, str(out / "a.jsonl"), str(tmp_path / "x" / "a.txt"), failed="1 of 2")
    assert "Delhi" in (out / "a.jsonl").read_text(encoding="utf-8")


def test_output_that_is_a_file(bundles_env, doc: Path, tmp_path: Path):
    (tmp_path / "file").write_text("x")
    assert_user_error(run("annotate", doc, "-b", "tiny-en", "-o", tmp_path / "file"), "not a folder")


def test_unwritable_output_folder(bundles_env, doc: Path, tmp_path: Path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("running with privileges that ignore folder permissions")
        result = run("annotate", doc, "-b", "tiny-en", "-o", out)
        assert_input_error(result, str(out))
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o700)


def test_atomic_write_leaves_old_file_or_new_never_part(tmp_path: Path, monkeypatch):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n", encoding="utf-8")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OutputError, match="No space left"):
        atomic_write(target, "new\n")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    monkeypatch.undo()
    atomic_write(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_surrogateescape_round_trips_into_output_files(bundles_env, tmp_path: Path):
    """Regression: lone surrogates crashed atomic_write (traceback, .part file left behind)."""
    src = tmp_path / "bad.txt"
    src.write_bytes(b"Delhi \xff Ravi\n")
    out = tmp_path / "out"
    for fmt in ("jsonl", "tsv", "conll", "table"):
        ok(run("annotate", src, "-b", "tiny-en", "--errors", "surrogateescape", "-f", fmt, "-o", out))
    assert _all_files(out) == {"bad.jsonl", "bad.tsv", "bad.conll", "bad.txt"}
    brat = tmp_path / "brat"
    ok(run("annotate", src, "-b", "tiny-en", "--errors", "surrogateescape", "-f", "brat", "-o", brat))
    assert (brat / "bad.txt").read_bytes() == src.read_bytes(), "brat's .txt holds the input's bytes"
    rec = json.loads((out / "bad.jsonl").read_bytes().decode("utf-8", "surrogateescape").splitlines()[0])
    assert rec["text"].encode("utf-8", "surrogateescape") == b"Delhi \xff Ravi"
    assert [e["text"] for e in rec["entities"]] == ["Delhi", "Ravi"]


def test_atomic_write_refuses_unencodable_text_cleanly(tmp_path: Path):
    with pytest.raises(OutputError, match="surrogates"):
        atomic_write(tmp_path / "x.jsonl", "\ud800")
    assert list(tmp_path.iterdir()) == []


def test_output_files_get_the_usual_permissions(bundles_env, doc: Path, tmp_path: Path):
    """Regression: outputs kept mkstemp's 0o600 instead of 0o666 less the umask."""
    old = os.umask(0o027)
    try:
        ok(run("annotate", doc, "-b", "tiny-en", "-o", tmp_path / "out"))
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "doc.jsonl").stat().st_mode & 0o777 == 0o640


def test_non_utf8_file_fails_alone_and_errors_replace_fixes_it(bundles_env, tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("Delhi\n", encoding="utf-8")
    (src / "b.txt").write_bytes(b"Ravi \xe9t\xe9 Delhi\n")  # latin-1
    (src / "c.txt").write_text("Shillong\n", encoding="utf-8")
    result = run("annotate", src, "-b", "tiny-en", "-f", "tsv")
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert [ln for ln in errors if str(src / "b.txt") in ln] == [errors[0]]
    assert "utf-8" in errors[0] and "--errors replace" in errors[0]
    assert "1 of 3 inputs failed" in errors[-1]
    assert result.stdout.startswith(TSV_HEADER) and result.stdout.count(TSV_HEADER) == 1
    sources = {line.split("\t")[0] for line in result.stdout.splitlines()[1:]}
    assert sources == {str(src / "a.txt"), str(src / "c.txt")}, "the other files are still annotated"

    out = ok(run("annotate", src, "-b", "tiny-en", "-f", "tsv", "--errors", "replace"))
    assert out.count(TSV_HEADER) == 1, "one header for all inputs on one stream"
    rows = [line.split("\t") for line in out.splitlines()[1:]]
    assert {r[0] for r in rows} == {str(src / p) for p in ("a.txt", "b.txt", "c.txt")}
    decoded = (src / "b.txt").read_bytes().decode("utf-8", "replace")
    for r in rows:
        if r[0] == str(src / "b.txt"):
            assert decoded[int(r[2]):int(r[3])] == r[6]
    out = ok(run("annotate", src / "b.txt", "-b", "tiny-en", "--encoding", "latin-1"))
    assert json.loads(out.splitlines()[0])["text"] == "Ravi été Delhi"


def test_missing_input_and_empty_folder(bundles_env, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    result = run("annotate", tmp_path / "nope.txt", "-b", "tiny-en")
    assert result.exit_code == 1 and str(tmp_path / "nope.txt") in result.stderr
    result = run("annotate", tmp_path / "empty", "-b", "tiny-en")
    assert result.exit_code == 1 and "no readable files" in result.stderr
    assert "Traceback" not in result.output


# -- user errors ----------------------------------------------------------------------------


def test_unknown_bundle(bundles_env):
    assert_user_error(run("annotate", "-b", "nope", "-t", "Delhi"), "nope", "tiny-en")


def test_unknown_language(bundles_env):
    assert_user_error(run("annotate", "-l", "xx", "-t", "Delhi"), "'xx'", "en")
    assert_user_error(run("annotate", "-l", "en", "--taxonomy", "other", "-t", "Delhi"), "other", "tiny")


def test_no_bundle_installed():
    assert_user_error(run("annotate", "-t", "Delhi"), "--lang")


def test_tampered_bundle(bundle_copy: Path, monkeypatch):
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(bundle_copy.parent))
    path = bundle_copy / "model.onnx"
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    assert_user_error(run("annotate", "-b", "tiny-en", "-t", "Delhi"), str(path), "checksum")
    assert_user_error(run("annotate", "-b", str(bundle_copy), "-t", "Delhi"), str(path))


def test_model_with_wrong_width(tmp_path: Path):
    folder = make_tiny_bundle(tmp_path / "wide" / "wrong", name="wrong", width=len(LABELS) + 1)
    assert_user_error(run("annotate", "-b", folder, "-t", "Delhi"), str(folder / "model.onnx"), "labels")
    assert_user_error(run("bundles", "verify", folder), str(folder / "model.onnx"))


@pytest.mark.parametrize("args", [
    ("annotate", "-t", "x", "file.txt"),
    ("annotate", "--threshold", "2", "-t", "x"),
    ("annotate", "--format", "xml", "-t", "x"),
    ("nonsense",),
])
def test_usage_errors_exit_2(bundles_env, args):
    result = run(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_version():
    from edge_finer import __version__

    assert ok(run("--version")).strip() == f"edge-finer {__version__}"


# -- bundles subcommands --------------------------------------------------------------------


def test_bundles_list_info_verify(bundles_env):
    rows = json.loads(ok(run("bundles", "list")))
    assert [(r["name"], r["language"], r["taxonomy"], r["source"], r["demo"]) for r in rows] == [
        ("tiny-en", "en", "tiny", "env", True)]
    assert rows[0]["path"] == str(bundles_env)
    assert json.loads(ok(run("bundles", "list", "--json"))) == rows
    info = ok(run("bundles", "info", "tiny-en"))
    assert "tiny-en 0.0.1" in info and "DEMO" in info and "CC0-1.0" in info and "labels:      7" in info
    assert ok(run("bundles", "verify")).split() == ["ok", str(bundles_env)]
    assert ok(run("bundles", "verify", "tiny-en")).split() == ["ok", "tiny-en"]


def test_bundles_list_empty():
    assert json.loads(ok(run("bundles", "list"))) == []


def test_bundles_verify_reports_each_bad_bundle(bundle_copy: Path, tiny_bundle: Path, monkeypatch):
    monkeypatch.setenv("EDGE_FINER_BUNDLES", os.pathsep.join([str(bundle_copy.parent)]))
    (bundle_copy / "tokenizer.json").write_bytes(b"{}")
    result = run("bundles", "verify", str(bundle_copy), str(tiny_bundle))
    assert_user_error(result, str(bundle_copy / "tokenizer.json"), "checksum")
    assert f"ok      {tiny_bundle}" in result.stdout
    info = run("bundles", "info", "tiny-en")
    assert_user_error(info, "checksum")


def test_bundles_install_remove_pack(tiny_bundle: Path, tmp_path: Path):
    out = ok(run("bundles", "install", tiny_bundle))
    dest = registry.user_bundles_dir() / "tiny-en"
    assert out.strip() == f"installed tiny-en 0.0.1 (CC0-1.0) to {dest}"
    assert_user_error(run("bundles", "install", tiny_bundle), "already installed", "--force")
    ok(run("bundles", "install", tiny_bundle, "--force"))
    rows = json.loads(ok(run("bundles", "list")))
    assert [(r["name"], r["source"]) for r in rows] == [("tiny-en", "user")]
    assert json.loads(ok(run("annotate", "-t", "Delhi")))["entities"][0]["label"] == "LOC"

    archive = Path(ok(run("bundles", "pack", "tiny-en", "-o", tmp_path)).strip())
    assert archive == tmp_path / "tiny-en-0.0.1.tar.gz" and archive.is_file()
    assert ok(run("bundles", "remove", "tiny-en")).strip() == f"removed {dest}"
    assert not dest.exists()
    assert_user_error(run("bundles", "remove", "tiny-en"), "tiny-en")
    assert_user_error(run("annotate", "-b", "tiny-en", "-t", "x"), "unknown bundle")

    ok(run("bundles", "install", archive))
    assert open_bundle(dest).manifest == open_bundle(tiny_bundle).manifest
    out = ok(run("annotate", "-b", archive, "-t", "Ravi Shankar"))
    assert json.loads(out)["entities"][0]["text"] == "Ravi Shankar"
    assert_user_error(run("bundles", "install", tmp_path / "missing"), "no such bundle")


# -- real processes -------------------------------------------------------------------------


def _subprocess_env(tiny_bundle: Path, isolated_user_dirs: Path) -> dict:
    env = dict(os.environ)
    env["EDGE_FINER_BUNDLES"] = str(tiny_bundle.parent)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_python_cli_py_subprocess(tiny_bundle: Path, isolated_user_dirs: Path, tmp_path: Path):
    env = _subprocess_env(tiny_bundle, isolated_user_dirs)
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "annotate", "-b", "tiny-en", "-f", "tsv"],
                          input=DOC.encode("utf-8"), capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.decode("utf-8").splitlines()[1:]
    assert len(rows) == 9
    for row in rows:
        _, _, start, end, _, _, text = row.split("\t")
        assert DOC[int(start):int(end)].replace("\t", " ") == text

    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "annotate", "-b", "nope", "-t", "x"],
                          capture_output=True, env=env, cwd=tmp_path, timeout=120)
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 1 and err.startswith("error: unknown bundle 'nope'") and err.count("\n") == 1
    assert "Traceback" not in err and proc.stdout == b""


def test_console_script_subprocess(tiny_bundle: Path, isolated_user_dirs: Path, tmp_path: Path):
    exe = shutil.which("edge-finer")
    if exe is None:
        pytest.skip("the edge-finer console script is not installed")
    env = _subprocess_env(tiny_bundle, isolated_user_dirs)
    proc = subprocess.run([exe, "annotate", "-b", "tiny-en", "-t", "Ravi in Delhi"],
                          capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [e["text"] for e in json.loads(proc.stdout)["entities"]] == ["Ravi", "Delhi"]
    proc = subprocess.run([exe, "bundles", "verify", "nope"], capture_output=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 1 and b"Traceback" not in proc.stderr and proc.stderr.startswith(b"error:")


def test_explicit_bundle_on_a_script_it_does_not_write_warns_once(bundles_env, tmp_path: Path):
    """--lang/--bundle on text in a script the bundle does not write: one warning line per input
    (the output is still written); with --strict that input is refused and the others go on."""
    deva = tmp_path / "hi.txt"
    deva.write_text("अमित शाह दिल्ली गए और शिलांग में रहे।\n", encoding="utf-8")
    latin = tmp_path / "en.txt"
    latin.write_text("Ravi Shankar works at Infosys Limited.\n", encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "cli", "annotate", "-b", "tiny-en", str(deva), str(latin)],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ})
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "hi.txt" in warnings[0] and "Deva" in warnings[0] and "tiny-en" in warnings[0]
    assert len(res.stdout.splitlines()) == 2 and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-m", "cli", "annotate", "-b", "tiny-en", "--strict", str(deva), str(latin)],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ})
    assert res.returncode == 1 and "refused: --strict" in res.stderr and "Traceback" not in res.stderr
    assert [json.loads(line)["source"] for line in res.stdout.splitlines()] == [str(latin)]
