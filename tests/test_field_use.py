"""Field use (issue 16): pre-tokenised corpora in, outputs that annotation tools open, folders
that hold more than text.  Every export is parsed back with its own ecosystem's library
(dkpro-cassis, spaCy, pybrat) and every span's text compared with the original."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from edge_finer.annotator import Annotator
from edge_finer.bundle import open_bundle
from edge_finer.errors import EdgeFinerError
from edge_finer.pretokenize import words as runtime_words
from edge_finer.tokens import joined, token_tags

# Tokens that raw-text re-tokenisation would split ('s, COVID-19, 2.3, डॉ., U.S.), in the
# columns of a real CoNLL file: tab-separated with a gold tag last, a CoNLL-U comment, a
# -DOCSTART- line, and a space-separated sentence (CoNLL-2003 style).
CONLL = ("-DOCSTART-\tO\n"
         "\n"
         "# sent_id = 1\n"
         "Ravi\tNNP\tB-PER\n"
         "Shankar\tNNP\tI-PER\n"
         "of\tIN\tO\n"
         "Infosys\tNNP\tB-ORG\n"
         "Limited's\tNNP\tI-ORG\n"
         "COVID-19\tNN\tO\n"
         "plan\tNN\tO\n"
         "cost\tVBD\tO\n"
         "2.3\tCD\tO\n"
         "crore\tNN\tO\n"
         ".\t.\tO\n"
         "\n"
         "डॉ.\tNNP\tO\n"
         "अमित\tNNP\tB-PER\n"
         "शाह\tNNP\tI-PER\n"
         "U.S.\tNNP\tB-LOC\n"
         "\n"
         "Zoë NNP B-PER\n"
         "visited VBD O\n"
         "Guwahati NNP B-LOC\n"
         "\n")

DOC = ("Ravi Shankar Kumar works at Infosys Limited.\r\n"
       "\r\n"
       "अमित शाह दिल्ली गए। Zoë 🙂 met Ravi in Guwahati\n"
       "nothing here\n"
       "Infosys\tLimited, Shillong and 「東京」\n")


def run(*args: object, input: str | bytes | None = None):
    return CliRunner().invoke(cli.app, [str(a) for a in args], input=input)


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.output
    return [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]


@pytest.fixture
def conll_file(tmp_path: Path) -> Path:
    path = tmp_path / "gold.conll"
    path.write_text(CONLL, encoding="utf-8")
    return path


@pytest.fixture
def doc_file(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "doc.txt"
    path.parent.mkdir()
    path.write_bytes(DOC.encode("utf-8"))
    return path


def _expected(doc_file: Path) -> list[tuple[int, int, str, str]]:
    """(start, end, text, label) of every entity, in document offsets, from the tsv format."""
    rows = ok(run("annotate", doc_file, "-b", "tiny-en", "-f", "tsv")).splitlines()[1:]
    out = [(int(r[2]), int(r[3]), DOC[int(r[2]):int(r[3])], r[4]) for r in (row.split("\t") for row in rows)]
    assert len(out) == 9
    return out


# -- pre-tokenised input --------------------------------------------------------------------------


def test_conll_in_gives_the_same_rows_with_a_tag_column_and_seqeval_scores_every_sentence(bundles_env,
                                                                                        conll_file: Path):
    out = ok(run("annotate", conll_file, "-i", "conll", "-b", "tiny-en", "-f", "conll"))
    got, want = out.split("\n"), CONLL.split("\n")
    assert len(got) == len(want)
    gold, pred, sentence_gold, sentence_pred = [], [], [], []
    for g, w in zip(got, want):
        is_token = bool(w.strip()) and not w.startswith(("#", "-DOCSTART-"))
        if not is_token:
            assert g == w, "blank, comment and -DOCSTART- lines are kept as they are"
            if sentence_gold:
                gold.append(sentence_gold)
                pred.append(sentence_pred)
                sentence_gold, sentence_pred = [], []
            continue
        sep = "\t" if "\t" in w else " "
        row, tag = g.rsplit(sep, 1)
        assert row == w, "the input row, untouched, then the tag"
        sentence_gold.append(w.split(sep)[-1])
        sentence_pred.append(tag)
    assert len(gold) == 3 and [len(s) for s in gold] == [11, 4, 3]
    assert pred[0][:5] == ["B-PER", "I-PER", "O", "B-ORG", "I-ORG"], "Limited's is one token, tagged whole"
    assert pred[1][1:3] == ["B-PER", "I-PER"] and pred[2][0] == "B-PER" and pred[2][2] == "B-LOC"
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    f1 = f1_score(gold, pred, mode="strict", scheme=IOB2)  # raises if any sentence did not line up
    assert 0.0 < f1 <= 1.0


def test_tsv_keeps_tokens_that_hold_spaces(bundles_env, tmp_path: Path):
    src = tmp_path / "a.tsv"
    src.write_text("Ravi Shankar\tX\nvisited\tX\nNew Delhi\tX\n", encoding="utf-8")
    out = ok(run("annotate", src, "-i", "tsv", "-b", "tiny-en", "-f", "conll")).splitlines()
    assert [ln.rsplit("\t", 1)[0] for ln in out if ln] == ["Ravi Shankar\tX", "visited\tX", "New Delhi\tX"]
    assert [ln.rsplit("\t", 1)[1] for ln in out if ln] == ["B-PER", "O", "B-LOC"]
    rec = json.loads(ok(run("annotate", src, "-i", "tsv", "-b", "tiny-en", "-f", "jsonl")))
    assert rec["tokens"] == ["Ravi Shankar", "visited", "New Delhi"]
    assert [(e["token_start"], e["token_end"], e["text"]) for e in rec["entities"]] == [
        (0, 1, "Ravi Shankar"), (2, 3, "New Delhi")]


def test_jsonl_tokens_in(bundles_env, tmp_path: Path):
    src = tmp_path / "a.jsonl"
    lines = [{"id": 1, "tokens": ["Ravi", "joined", "Infosys", "Limited's", "team"]},
             {"id": 2, "tokens": ["Zoë", "🙂", "Guwahati", "COVID-19"]}, {"tokens": []}]
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines) + "\n", encoding="utf-8")
    recs = [json.loads(ln) for ln in ok(run("annotate", src, "-i", "jsonl", "-b", "tiny-en", "-f", "jsonl")).splitlines()]
    assert [r["tokens"] for r in recs] == [x["tokens"] for x in lines]
    assert [r["line"] for r in recs] == [1, 2, 3]
    for r in recs:
        assert len(r["tags"]) == len(r["tokens"])
        for e in r["entities"]:
            assert " ".join(r["tokens"][e["token_start"]:e["token_end"]]) == e["text"] == r["text"][e["start"]:e["end"]]
    assert recs[0]["tags"] == ["B-PER", "O", "B-ORG", "I-ORG", "O"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tokens": ["a"]}\n{"text": "no tokens"}\n', encoding="utf-8")
    res = run("annotate", bad, "-i", "jsonl", "-b", "tiny-en")
    assert res.exit_code == 1 and f"{bad}:2: expected an object with \"tokens\"" in error_lines(res)[0]


def test_annotate_tokens_api_sees_the_given_tokens(tiny_bundle: Path):
    ann = Annotator(open_bundle(tiny_bundle))
    text = "Ravi Shankar Kumar works at Infosys Limited in Guwahati and Delhi ."
    words = runtime_words(text)
    # tokens that are the runtime's own words: exactly what annotating the raw text gives
    assert [(e.start, e.end, e.label, e.score) for e in ann.annotate_tokens(words)] == [
        (e.start, e.end, e.label, e.score) for e in ann.annotate(" ".join(words))]
    toks = ["Infosys", "Limited's", "COVID-19", "Ravi-led", "2.3"]
    ents = ann.annotate_tokens(toks)
    text, spans = joined(toks)
    assert [(e.text, e.label) for e in ents] == [("Infosys Limited's", "ORG"), ("Ravi-led", "PER")]
    assert all(e.start in {a for a, _ in spans} and e.end in {b for _, b in spans} for e in ents)
    assert token_tags(spans, ents) == ["B-ORG", "I-ORG", "O", "B-PER", "O"]
    assert [len(x) for x in ann.stream_tokens([toks, [], ["Delhi"]])] == [2, 0, 1]
    with pytest.raises(EdgeFinerError):
        ann.annotate_tokens("Ravi Shankar")  # a string is not a token list


# -- exports ------------------------------------------------------------------------------------


def test_xmi_parsed_back_by_cassis(bundles_env, doc_file: Path, tmp_path: Path):
    cassis = pytest.importorskip("cassis")
    expected = _expected(doc_file)
    nul = doc_file.parent / "nul.txt"  # XML cannot hold C0 controls: U+FFFD, offsets unchanged
    nul.write_bytes("Ravi\x0c in Delhi\x1b\n".encode("utf-8"))
    out = tmp_path / "out"
    ok(run("annotate", doc_file, nul, "-b", "tiny-en", "-f", "xmi", "-o", out))
    with open(out / "TypeSystem.xml", "rb") as fh:
        ts = cassis.load_typesystem(fh)
    with open(out / "doc.xmi", "rb") as fh:
        cas = cassis.load_cas_from_xmi(fh, typesystem=ts)
    assert cas.sofa_string == DOC
    ne = [(a.begin, a.end, a.get_covered_text(), a.value)
          for a in cas.select("de.tudarmstadt.ukp.dkpro.core.api.ner.type.NamedEntity")]
    assert ne == expected
    tokens = cas.select("de.tudarmstadt.ukp.dkpro.core.api.segmentation.type.Token")
    assert [t.get_covered_text() for t in tokens][:4] == ["Ravi", "Shankar", "Kumar", "works"]
    assert "🙂" in [t.get_covered_text() for t in tokens]
    with open(out / "nul.xmi", "rb") as fh:
        cas = cassis.load_cas_from_xmi(fh, typesystem=ts)
    assert cas.sofa_string == "Ravi\ufffd in Delhi\ufffd\n"
    assert [a.get_covered_text() for a in cas.select("de.tudarmstadt.ukp.dkpro.core.api.ner.type.NamedEntity")] == [
        "Ravi", "Delhi"]


def _read_webanno(text: str) -> tuple[list[tuple[int, int, str]], dict[str, list[int]], list[str]]:
    """A reader of WebAnno TSV 3.3 as its specification describes it (INCEpTION's is Java):
    rows ``sent-tok  begin-end  token  value``; ``LABEL[n]`` joins the rows of one entity."""
    lines = text.split("\n")
    assert lines[0] == "#FORMAT=WebAnno TSV 3.3"
    assert lines[1] == "#T_SP=de.tudarmstadt.ukp.dkpro.core.api.ner.type.NamedEntity|value"
    rows, entities, sentences = [], {}, []
    for line in lines[2:]:
        if line.startswith("#Text="):
            sentences.append(line[len("#Text="):])
        elif line:
            ids, offsets, token, value, rest = line.split("\t")
            assert rest == "" and ids.count("-") == 1
            a, b = map(int, offsets.split("-"))
            rows.append((a, b, token))
            if value != "_":
                key = value if "[" in value else f"{value}@{len(rows)}"
                entities.setdefault(key, []).append(len(rows) - 1)
    return rows, entities, sentences


def test_webanno_tsv_offsets_are_utf16_and_entities_match(bundles_env, doc_file: Path, tmp_path: Path):
    expected = _expected(doc_file)
    out = tmp_path / "out"
    ok(run("annotate", doc_file, "-b", "tiny-en", "-f", "webanno", "-o", out))
    rows, entities, sentences = _read_webanno((out / "doc.tsv").read_text(encoding="utf-8"))
    utf16 = DOC.encode("utf-16-le")
    for a, b, token in rows:  # offsets count UTF-16 code units, as Java does (🙂 counts two)
        assert utf16[2 * a:2 * b].decode("utf-16-le") == token.replace("\\t", "\t")
    got = []
    for key, idx in entities.items():
        a, b = rows[idx[0]][0], rows[idx[-1]][1]
        got.append((utf16[2 * a:2 * b].decode("utf-16-le"), key.split("[")[0].split("@")[0]))
    assert sorted(got) == sorted((t, label) for _, _, t, label in expected)
    assert sentences[0] == "Ravi Shankar Kumar works at Infosys Limited."


def test_brat_collection_parsed_back_by_pybrat(bundles_env, tmp_path: Path, conll_file: Path):
    pybrat = pytest.importorskip("pybrat.parser")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("Ravi Shankar visited Guwahati.\nInfosys Limited hired Zoë.\n", encoding="utf-8")
    (src / "b.md").write_text("अमित शाह दिल्ली गए। 「東京」\n", encoding="utf-8")
    out = tmp_path / "out"
    ok(run("annotate", src, "-b", "tiny-en", "-f", "brat", "-o", out))
    out2 = tmp_path / "out2"
    ok(run("annotate", conll_file, "-i", "conll", "-b", "tiny-en", "-f", "brat", "-o", out2))
    mentions = {}
    for folder, ids in ((out, ["a", "b"]), (out2, ["gold"])):
        examples = pybrat.BratParser(error="raise").parse(folder)
        assert sorted(e.id for e in examples) == ids
        conf = (folder / "annotation.conf").read_text(encoding="utf-8")
        declared = set(conf.split("[entities]")[1].split("[relations]")[0].split())
        assert declared == {"PER", "LOC", "ORG"}, "the bundle's types, found or not"
        for ex in examples:
            for ent in ex.entities:
                assert ex.text[ent.start:ent.end] == ent.mention and ent.type in declared
            mentions[ex.id] = [ent.mention for ent in ex.entities]
    assert mentions["a"] == ["Ravi Shankar", "Guwahati", "Infosys Limited", "Zoë"]
    assert "Infosys Limited's" in mentions["gold"], "pre-tokenised: the .txt holds the tokens, a sentence a line"
    assert (out / "a.txt").read_bytes() == (src / "a.txt").read_bytes()


def test_brat_offsets_count_the_cr_of_crlf(bundles_env, doc_file: Path, tmp_path: Path):
    """brat reads the .txt without newline translation, so a CRLF counts two characters (the
    README says so); a reader that translates newlines must open the .txt with newline=""."""
    out = tmp_path / "out"
    ok(run("annotate", doc_file, "-b", "tiny-en", "-f", "brat", "-o", out))
    with open(out / "doc.txt", encoding="utf-8", newline="") as fh:
        text = fh.read()
    assert text == DOC
    for line in (out / "doc.ann").read_text(encoding="utf-8").splitlines():
        tid, span, mention = line.split("\t")
        _, a, b = span.split(" ")
        assert text[int(a):int(b)].replace("\t", " ") == mention  # a tab inside an entity is a space there


def test_spacy_docbin_parsed_back_by_spacy(bundles_env, doc_file: Path, tmp_path: Path, conll_file: Path):
    pytest.importorskip("spacy")
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    expected = _expected(doc_file)
    out = tmp_path / "out"
    ok(run("annotate", doc_file, "-b", "tiny-en", "-f", "spacy", "-o", out))
    docs = list(DocBin().from_disk(out / "doc.spacy").get_docs(Vocab()))
    assert len(docs) == 1 and docs[0].text == DOC
    assert [(e.start_char, e.end_char, e.text, e.label_) for e in docs[0].ents] == expected
    assert docs[0].user_data["edge_finer"]["source"] == str(doc_file)
    assert [s.text.strip() for s in docs[0].sents][0] == "Ravi Shankar Kumar works at Infosys Limited."
    # to stdout: one DocBin for all inputs; pre-tokenised input keeps its tokens as spaCy tokens
    res = CliRunner().invoke(cli.app, ["annotate", str(doc_file), str(conll_file), "-i", "text", "-b", "tiny-en",
                                       "-f", "spacy"])
    assert res.exit_code == 0
    assert len(list(DocBin().from_bytes(res.stdout_bytes).get_docs(Vocab()))) == 2
    res = CliRunner().invoke(cli.app, ["annotate", str(conll_file), "-i", "conll", "-b", "tiny-en", "-f", "spacy"])
    doc = next(DocBin().from_bytes(res.stdout_bytes).get_docs(Vocab()))
    assert "Limited's" in [t.text for t in doc] and "COVID-19" in [t.text for t in doc]
    assert "Infosys Limited's" in [e.text for e in doc.ents]


def test_spacy_jsonl_char_span_accepts_every_span(bundles_env, doc_file: Path):
    pytest.importorskip("spacy")
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

    n = 0
    for line in ok(run("annotate", doc_file, "-b", "tiny-en", "-f", "spacy-jsonl")).splitlines():
        rec = json.loads(line)
        doc = Doc(Vocab(), words=[t["text"] for t in rec["tokens"]], spaces=[t["ws"] for t in rec["tokens"]])
        assert doc.text == rec["text"]
        for sp in rec["spans"]:
            span = doc.char_span(sp["start"], sp["end"], label=sp["label"])
            assert span is not None and span.text == rec["text"][sp["start"]:sp["end"]]
            assert (span.start, span.end - 1) == (sp["token_start"], sp["token_end"])
            n += 1
    assert n == 9


def test_hf_pipeline_shape(bundles_env, doc_file: Path):
    lines = ok(run("annotate", doc_file, "-b", "tiny-en", "-f", "hf")).splitlines()
    assert len(lines) == 5, "one JSON list per input line"
    text_lines = DOC.split("\n")
    n = 0
    for raw, line in zip(text_lines, lines):
        for item in json.loads(line):
            assert set(item) == {"entity_group", "score", "word", "start", "end"}
            assert raw.rstrip("\r")[item["start"]:item["end"]] == item["word"] and 0 <= item["score"] <= 1
            n += 1
    assert n == 9


def test_several_inputs_to_stdout_start_with_a_document_boundary(bundles_env, doc_file: Path, tmp_path: Path):
    other = tmp_path / "other.txt"
    other.write_text("Delhi\n", encoding="utf-8")
    conll = ok(run("annotate", doc_file, other, "-b", "tiny-en", "-f", "conll"))
    assert conll.count("-DOCSTART-\tO\n\n") == 2 and conll.startswith("-DOCSTART-")
    brat = ok(run("annotate", doc_file, other, "-b", "tiny-en", "-f", "brat")).splitlines()
    assert [ln for ln in brat if ln.startswith("#")] == [f"# source = {doc_file}", f"# source = {other}"]
    assert ok(run("annotate", other, "-b", "tiny-en", "-f", "conll")) == "Delhi\tB-LOC\n\n", "one input: as before"
    res = run("annotate", doc_file, other, "-b", "tiny-en", "-f", "xmi")
    assert res.exit_code == 2 and "--output" in res.output


def test_a_missing_extra_is_one_error_line(bundles_env, doc_file: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cassis", None)  # as if dkpro-cassis were not installed
    res = run("annotate", doc_file, "-b", "tiny-en", "-f", "xmi", "-o", tmp_path / "out")
    lines = error_lines(res)
    assert res.exit_code == 1 and "pip install 'edge-finer[export]'" in lines[0]


# -- folders --------------------------------------------------------------------------------------


LATIN1 = "Zoë arrivait à Genève, où Ravi l'attendait près du lac; déjà l'été était là.\n"


def _field_folder(root: Path) -> Path:
    root.mkdir()
    (root / "a.txt").write_text("Ravi in Delhi\n", encoding="utf-8")
    (root / "notes.txt").write_text("Shillong\n", encoding="utf-8")
    (root / "notes.md").write_text("Guwahati\n", encoding="utf-8")
    (root / "session.eaf").write_text('<?xml version="1.0"?><ANNOTATION_DOCUMENT><TIER TIER_ID="Ravi"/>'
                                      "</ANNOTATION_DOCUMENT>\n", encoding="utf-8")
    (root / "session.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64))
    (root / "paper.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    (root / "nul.txt").write_bytes(b"Ravi\x00\x00\x00in\x00Delhi\n")
    (root / "latin.txt").write_bytes(LATIN1.encode("latin-1"))
    return root


def test_folder_walk_takes_text_only_and_says_why_not(bundles_env, tmp_path: Path):
    src = _field_folder(tmp_path / "field")
    out = src / "out"  # inside the input folder
    res = run("annotate", src, "-b", "tiny-en", "-o", out)
    assert res.exit_code == 1 and "Traceback" not in res.output
    errors = error_lines(res)
    assert len(errors) == 3 and "2 of 5 inputs failed" in errors[2]
    assert "latin.txt: not valid utf-8" in errors[0] and "pass --encoding " in errors[0]
    guess = errors[0].split("pass --encoding ")[1].split(",")[0].split()[0]
    assert LATIN1.encode("latin-1").decode(guess) == LATIN1, "the suggested encoding reads the file right"
    assert "nul.txt: not text: binary data (NUL byte at 4)" in errors[1]
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "skipped 3 files" in warnings[0]
    assert all(name in warnings[0] for name in ("paper.pdf", "session.eaf", "session.wav"))
    made = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert made == ["a.jsonl", "notes.md.jsonl", "notes.txt.jsonl"], "notes.txt and notes.md keep apart"
    assert json.loads((out / "notes.md.jsonl").read_text(encoding="utf-8"))["entities"][0]["text"] == "Guwahati"
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    res = run("annotate", src, "-b", "tiny-en", "-o", out, "--resume", "--encoding", "latin-1", "--exclude", "nul.*")
    assert "options (encoding)" in res.stderr, "a resume with another encoding is refused"
    res = run("annotate", src, "-b", "tiny-en", "-o", out, "--resume")
    assert res.exit_code == 1 and len(error_lines(res)) == 3, "the outputs are not taken as inputs"
    assert not (out / "out").exists() and {p: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_include_and_exclude_globs(bundles_env, tmp_path: Path):
    src = _field_folder(tmp_path / "field")
    lines = ok(run("annotate", src, "-b", "tiny-en", "--include", "*.eaf", "--include", "a.*", "-f", "jsonl"))
    assert {json.loads(ln)["source"] for ln in lines.splitlines()} == {str(src / "a.txt"), str(src / "session.eaf")}
    lines = ok(run("annotate", src, "-b", "tiny-en", "--exclude", "notes.*", "--exclude", "*l*.txt", "-f", "jsonl"))
    assert {json.loads(ln)["source"] for ln in lines.splitlines()} == {str(src / "a.txt")}


def test_a_named_binary_file_is_reported_for_what_it_is(bundles_env, tmp_path: Path):
    src = _field_folder(tmp_path / "field")
    for name, what in (("session.wav", "WAV audio"), ("paper.pdf", "a PDF document")):
        res = run("annotate", src / name, "-b", "tiny-en")
        assert res.exit_code == 1 and f"{name}: not text: {what}" in error_lines(res)[0]
    utf16 = tmp_path / "u16.txt"
    utf16.write_bytes("Ravi in Delhi\n".encode("utf-16"))
    res = run("annotate", utf16, "-b", "tiny-en")
    assert "pass --encoding utf-16" in error_lines(res)[0]
    assert "Delhi" in ok(run("annotate", utf16, "-b", "tiny-en", "--encoding", "utf-16", "-f", "tsv"))


# -- smaller breaks ---------------------------------------------------------------------------------


def test_help_keeps_the_defaults_written_in_help_texts():
    out = run("annotate", "--help").output
    flat = " ".join(out.split())
    for text in ("[default: table on a terminal, else jsonl]", "[default: the bundle's]", "[default: 1; more helps"):
        assert text in flat, text


def test_empty_file_without_lang_is_not_an_error(bundles_env, tmp_path: Path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\n  \n")
    assert ok(run("annotate", empty, "-f", "jsonl")) == ""
    recs = [json.loads(ln) for ln in ok(run("annotate", blank, "-f", "jsonl")).splitlines()]
    assert [(r["line"], r["entities"]) for r in recs] == [(1, []), (2, [])]


def test_unknown_taxonomy_is_refused(bundles_env, doc_file: Path):
    for args in ((), ("-b", "tiny-en")):
        res = run("annotate", doc_file, "--taxonomy", "nosuch", *args)
        assert res.exit_code == 2 and "nosuch" in res.output and "Traceback" not in res.output
    res = run("detect", doc_file, "--taxonomy", "nosuch")
    assert res.exit_code == 2 and "no installed bundle has taxonomy 'nosuch'" in " ".join(res.output.split())


def test_titles_do_not_end_sentences():
    from edge_finer.segment import iter_sentences

    def split(text: str) -> list[str]:
        return [text[a:b].strip() for a, b in iter_sentences(text)]

    assert split("Prof. Achebe wrote it. Then he left.") == ["Prof. Achebe wrote it.", "Then he left."]
    assert split("डॉ. मनमोहन सिंह आए। वे बोले।") == ["डॉ. मनमोहन सिंह आए।", "वे बोले।"]
    assert split("Capt. Musa met Gov. Bello. They spoke.") == ["Capt. Musa met Gov. Bello.", "They spoke."]
    assert split("It rained. Prices rose.") == ["It rained.", "Prices rose."]


def test_progress_counts_bytes_within_one_file():
    from edge_finer.formats import Record

    class Bar:
        def __init__(self) -> None:
            self.steps: list[float] = []

        def advance(self, task: object, step: float) -> None:
            self.steps.append(step)

    bar, done = Bar(), [0.0]
    text = "".join(f"line {k}\n" for k in range(10))
    records = (Record("x", k + 1, 0, "", []) for k in range(10))
    for _ in cli._tracked(records, text, 1000, (bar, None), done):
        pass
    assert len(bar.steps) == 10, "one big file moves the bar line by line"
    assert abs(sum(bar.steps) - 1000 * 10 / 11) < 1e-6 and done[0] == sum(bar.steps)


def test_pre_tokenised_input_with_workers_runs_in_one_process(bundles_env, conll_file: Path):
    one = ok(run("annotate", conll_file, "-i", "conll", "-b", "tiny-en", "-f", "conll"))
    res = run("annotate", conll_file, "-i", "conll", "-b", "tiny-en", "-f", "conll", "--workers", "2")
    assert res.exit_code == 0 and res.stdout == one
    assert "warning: --workers: --input-format conll runs in one process" in res.stderr


def test_bundle_word_scheme_is_used_inside_tokens_and_by_exports(tmp_path: Path):
    """A han-chars bundle (each Han character a word) sees 李白住 as three words inside the
    one token; the text exports cut their tokens at entity edges, so spaCy takes every span."""
    pytest.importorskip("spacy")
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

    from edge_finer import exports
    from edge_finer.formats import Record
    from tiny_bundle import make_tiny_bundle

    han = make_tiny_bundle(tmp_path / "tiny-zh", name="tiny-zh", lang="zh", iso3="zho", scripts=("Hani",),
                           pretokenizer="han-chars", gazetteer={"北": "B-LOC", "京": "I-LOC", "李": "B-PER", "白": "I-PER"})
    ann = Annotator(open_bundle(han))
    ents = ann.annotate_tokens(["李白住", "在", "北京。"])
    assert [(e.text, e.label) for e in ents] == [("李白住", "PER"), ("北京。", "LOC")], "whole tokens"
    text = "李白住在北京。"
    rec = Record("x", 1, 0, text, ann.annotate(text))
    line = json.loads("".join(exports.spacy_jsonl_chunks(rec, "fine")))
    doc = Doc(Vocab(), words=[t["text"] for t in line["tokens"]], spaces=[t["ws"] for t in line["tokens"]])
    assert [doc.char_span(s["start"], s["end"]).text for s in line["spans"]] == ["李白", "北京"]
    rows = exports.to_webanno(exports.document("x", [rec], text=text)).split("#Text=")[1].splitlines()[1:]
    assert [r.split("\t")[2:4] for r in rows] == [["李白", "PER"], ["住在", "_"], ["北京", "LOC"], ["。", "_"]]
