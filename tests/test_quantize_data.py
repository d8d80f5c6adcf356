"""Data reading for the build pipeline: CoNLL dialects and JSONL → IOB2, re-splitting, errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantize.data import (Sentence, check_types, read_annotated, read_conll, read_jsonl, read_unlabelled,
                           to_iob2, to_model_words)
from quantize.errors import DataError
from edge_finer.errors import EdgeFinerError


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _pairs(sentences: list[Sentence]) -> list[list[tuple[str, str]]]:
    return [list(zip(s.tokens, s.tags)) for s in sentences]


def test_iob1_with_middle_columns_docstart_and_comments(tmp_path: Path) -> None:
    p = _write(tmp_path, "c.conll", (
        "-DOCSTART- -X- -X- O\n\n"
        "# sent_id = 1\n"
        "EU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\ncall NN I-NP O\n\n"
        "Peter NNP B-NP I-PER\nPaul NNP B-NP B-PER\nBlack NNP I-NP I-PER\n\n"
    ))
    assert _pairs(read_conll(p)) == [
        [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O")],
        [("Peter", "B-PER"), ("Paul", "B-PER"), ("Black", "I-PER")],
    ]


def test_bilou_and_iobes(tmp_path: Path) -> None:
    bilou = _write(tmp_path, "b.conll", "New\tB-LOC\nYork\tL-LOC\nis\tO\nbig\tO\nRavi\tU-PER\n\n")
    iobes = _write(tmp_path, "e.conll", "Acme\tB-ORG\nCorp\tI-ORG\nLtd\tE-ORG\nand\tO\nBob\tS-PER\nAl\tS-PER\n")
    assert _pairs(read_conll(bilou)) == [[("New", "B-LOC"), ("York", "I-LOC"), ("is", "O"), ("big", "O"),
                                          ("Ravi", "B-PER")]]
    assert _pairs(read_conll(iobes, scheme="iobes")) == [[("Acme", "B-ORG"), ("Corp", "I-ORG"), ("Ltd", "I-ORG"),
                                                          ("and", "O"), ("Bob", "B-PER"), ("Al", "B-PER")]]


def test_hash_tokens_crlf_bom_and_io_scheme(tmp_path: Path) -> None:
    p = tmp_path / "h.conll"
    p.write_bytes("\ufeff#\tO\r\n#India\tB-LOC\r\n# a comment line\r\nrocks\tO\r\n\r\n".encode("utf-8"))
    assert _pairs(read_conll(p)) == [[("#", "O"), ("#India", "B-LOC"), ("rocks", "O")]]
    io = _write(tmp_path, "io.conll", "Ravi\tPER\nShankar\tPER\nin\tO\nDelhi\tLOC\n")
    assert _pairs(read_conll(io, scheme="io")) == [[("Ravi", "B-PER"), ("Shankar", "I-PER"), ("in", "O"),
                                                    ("Delhi", "B-LOC")]]


def test_to_iob2_strict_refuses_dangling_i() -> None:
    assert to_iob2(["O", "I-PER", "I-PER"], "iob1", ["f:1", "f:2", "f:3"]) == ["O", "B-PER", "I-PER"]
    with pytest.raises(DataError, match="f:2"):
        to_iob2(["O", "I-PER"], "iob2", ["f:1", "f:2"])


@pytest.mark.parametrize("content,line,fragment", [
    ("Ravi\tB-PER\nShankar\n", 2, "one column"),
    ("Ravi\tB-PER\n\nin\tO\nDelhi\tX-LOC\n", 4, "X-LOC"),
    ("a\tO\nb\tO\n\nc\tO\nd\tI-PER\n", 5, "without B-PER"),
])
def test_malformed_conll_names_file_and_line(tmp_path: Path, content: str, line: int, fragment: str) -> None:
    p = _write(tmp_path, "bad.conll", content)
    with pytest.raises(DataError) as err:
        read_annotated(p, scheme="iob2")
    msg = str(err.value)
    assert msg.startswith(f"{p}:{line}:"), msg
    assert fragment in msg
    assert "\n" not in msg
    assert isinstance(err.value, EdgeFinerError)  # the CLI prints it as one line


def test_not_utf8_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "latin1.conll"
    p.write_bytes("caf\xe9\tO\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_annotated(p)
    with pytest.raises(DataError, match="not found"):
        read_annotated(tmp_path / "nope.conll")


def test_jsonl_token_spans_char_spans_and_tags(tmp_path: Path) -> None:
    rows = [
        {"tokens": ["Ravi", "Shankar", "visited", "New", "York"],
         "spans": [{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}]},
        {"text": "Anna met Bob in São Paulo.", "entities": [{"start": 0, "end": 4, "label": "PER"},
                                                          {"start": 16, "end": 25, "label": "LOC"}]},
        {"tokens": ["Acme", "Corp"], "tags": ["B-ORG", "L-ORG"]},
    ]
    p = _write(tmp_path, "d.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    got = _pairs(read_jsonl(p))
    assert got[0] == [("Ravi", "B-PER"), ("Shankar", "I-PER"), ("visited", "O"), ("New", "B-LOC"), ("York", "I-LOC")]
    assert got[1] == [("Anna", "B-PER"), ("met", "O"), ("Bob", "O"), ("in", "O"), ("São", "B-LOC"),
                      ("Paulo", "I-LOC"), (".", "O")]
    assert got[2] == [("Acme", "B-ORG"), ("Corp", "I-ORG")]


@pytest.mark.parametrize("row,fragment", [
    ('{"tokens": ["a"], "spans": [{"start": 0, "end": 3, "label": "PER"}]}', "offsets"),
    ('{"tokens": ["a", "b"], "spans": [{"start": 0, "end": 2, "label": "PER"}, '
     '{"start": 1, "end": 2, "label": "LOC"}]}', "overlaps"),
    ('{"tokens": ["a"], ', "not valid JSON"),
    ('{"words": ["a"]}', "expected 'tokens'"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path: Path, row: str, fragment: str) -> None:
    p = _write(tmp_path, "bad.jsonl", '{"tokens": ["ok"], "tags": ["O"]}\n' + row + "\n")
    with pytest.raises(DataError) as err:
        read_annotated(p)
    assert str(err.value).startswith(f"{p}:2:") and fragment in str(err.value)


def test_types_checked_against_taxonomy(tmp_path: Path) -> None:
    p = _write(tmp_path, "t.conll", "a\tO\n\nRavi\tB-PER\nin\tO\nDelhi\tB-CITY\n")
    sents = read_conll(p)
    check_types(sents, {"PER", "CITY"}, "the taxonomy")
    with pytest.raises(DataError, match=rf"^{p}:5: tag 'B-CITY'.*taxonomy"):
        check_types(sents, {"PER", "LOC"}, "the taxonomy 'x'")


def test_resplit_follows_the_runtime_word_splitter() -> None:
    s = Sentence(["Mr.", "O'Neil", "\u200b", "works", "at", "AT&T", "Inc."],
                 ["O", "B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG"])
    m = to_model_words(s)
    assert list(zip(m.tokens, m.tags)) == [
        ("Mr", "O"), (".", "O"), ("O", "B-PER"), ("'", "I-PER"), ("Neil", "I-PER"), ("works", "O"), ("at", "O"),
        ("AT", "B-ORG"), ("&", "I-ORG"), ("T", "I-ORG"), ("Inc", "I-ORG"), (".", "I-ORG")]
    # a dropped token that carried the B- leaves a valid I- → B- sequence
    d = to_model_words(Sentence(["\u200b", "York"], ["B-LOC", "I-LOC"]))
    assert list(zip(d.tokens, d.tags)) == [("York", "B-LOC")]


def test_unlabelled_text(tmp_path: Path) -> None:
    p = _write(tmp_path, "u.txt", "Ravi went home.\n\n  \nनमस्ते दुनिया\n")
    assert read_unlabelled(p) == [["Ravi", "went", "home", "."], ["नमस्ते", "दुनिया"]]


def test_drop_types_turns_stray_tags_into_o() -> None:
    from quantize.data import Sentence, drop_types

    sents = [Sentence(["a", "b", "c"], ["B-'", "B-PER", "I-PER"]), Sentence(["d"], ["O"])]
    assert drop_types(sents, ["'"]) == 1
    assert sents[0].tags == ["O", "B-PER", "I-PER"]
