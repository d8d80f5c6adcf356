"""Giant records: a large file is annotated as a stream (edge_finer/bigfile.py) with output
byte-identical to the whole-text path.  The memory it saves is measured, not timed here:
benchmarks/giant_record.py and benchmarks/results/giant_record.md."""
from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

import edge_finer.bigfile as bigfile
from edge_finer.annotator import SENTENCES_PER_CHUNK, Annotator
from edge_finer.bundle import open_bundle
from edge_finer.formats import render
from edge_finer.segment import SentenceStream, iter_sentences
from edge_finer.textio import Source, iter_lines, read_text

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["Ravi", "Shankar", "Kumar", "visited", "Delhi", "Guwahati", "and", "Infosys", "Limited", "in", "the",
         "Zoë", "東京", "अमित", "शाह", "x", "co-op"]
ENDS = [". ", "! ", "? ", "… ", "। ", "。", " ", ", ", "Dr. ", "U.S. ", ".\" ", " "]


def _text(rng: random.Random, sentences: int) -> str:
    return "".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) + rng.choice(ENDS)
                   for _ in range(sentences))


def _corpus(rng: random.Random) -> str:
    """Lines of every kind the streaming path must get right: short and empty ones, CRLF, one
    line of many chunks, one with no boundary for longer than a sentence may be, CJK without
    spaces, a last line without a newline."""
    lines = [_text(rng, rng.randint(0, 5)) for _ in range(120)]
    lines[10] = ""
    lines[11] = "   "
    lines[20] = _text(rng, 2 * SENTENCES_PER_CHUNK + 17)  # a giant record
    lines[30] = " ".join(rng.choice(WORDS) for _ in range(4000))  # no boundary for ~25k characters
    lines[31] = "東京。" * 1000
    lines[40] = _text(rng, 300) + "\r"
    return "\n".join(lines) + "\n" + _text(rng, 4)


def _whole(annotator, path: Path, fmt: str, errors: str = "strict") -> str:
    import cli

    text = read_text(Source(str(path), path, path.stem), "utf-8", errors)
    return "".join(render(cli._records(annotator, str(path), text), fmt, "fine"))


@pytest.mark.parametrize("fmt", ["jsonl", "tsv", "brat"])
def test_streamed_output_is_byte_identical(annotator, tmp_path: Path, fmt: str):
    path = tmp_path / "corpus.txt"
    path.write_bytes(_corpus(random.Random(5)).encode("utf-8"))
    want = _whole(annotator, path, fmt)
    got = "".join(bigfile.stream_file(annotator, path, str(path), fmt, "fine", "strict", hold_chars=5000))
    assert got == want and want.count("\n") > 120


def test_streamed_output_is_byte_identical_with_a_real_int8_model(tmp_path: Path):
    """A shipped bundle (int8 activation scales per batch): one line of three chunks of dev
    sentences gives the same scores to the last digit only if every chunk holds the same
    sentences as in the whole-text path."""
    from benchmarks.soak import dev_sentences

    bundle = ROOT / "bundles" / "multiconer2-en"
    try:
        sents = dev_sentences(1050)
    except OSError:
        sents = []
    if not bundle.is_dir() or len(sents) < 1050:
        pytest.skip("needs the shipped English bundle and the English dev split")
    ann = Annotator(open_bundle(bundle), threads=1)
    path = tmp_path / "line.txt"
    path.write_text("Short first line.\n" + " ".join(sents) + "\n" + "\n".join(sents[:50]) + "\n", encoding="utf-8")
    got = "".join(bigfile.stream_file(ann, path, "x", "jsonl", "fine", "strict", hold_chars=10_000))
    assert got == _whole(ann, path, "jsonl").replace(f'"source": {str(path)!r}'.replace("'", '"'), '"source": "x"')


@pytest.mark.parametrize("errors", ["replace", "surrogateescape", "ignore"])
def test_undecodable_bytes_stream_as_the_whole_file_decodes(annotator, tmp_path: Path, errors: str, monkeypatch):
    monkeypatch.setattr(bigfile, "BLOCK", 1000)  # blocks cut multi-byte characters and CRLFs
    rng = random.Random(7)
    parts = [b"Ravi Shankar visited Delhi. ", b"\xff", b"\xe2\x82", b"\r\n", b"\n", "अमित शाह ".encode(), b"\r"]
    path = tmp_path / "bad.txt"
    path.write_bytes(b"".join(rng.choice(parts) for _ in range(3000)))
    got = "".join(bigfile.stream_file(annotator, path, str(path), "jsonl", "fine", errors, hold_chars=2000))
    assert got == _whole(annotator, path, "jsonl", errors)


def test_strict_decoding_error_names_the_byte_before_any_output(annotator, tmp_path: Path, monkeypatch):
    from edge_finer.errors import InputError

    monkeypatch.setattr(bigfile, "BLOCK", 64)
    path = tmp_path / "bad.txt"
    path.write_bytes(("Delhi é " * 40).encode() + b"\xe2\x82" + b" Delhi\n" * 40)
    with pytest.raises(InputError) as whole:
        read_text(Source(str(path), path, "bad"))
    with pytest.raises(InputError) as streamed:
        bigfile.stream_file(annotator, path, str(path), "jsonl", "fine", "strict")  # raises before output
    assert str(streamed.value) == str(whole.value)


def test_sentence_stream_equals_iter_sentences_on_random_cuts():
    rng = random.Random(3)
    alphabet = list("abcD xyz") + [". ", ".", "!", "?", "\"", ")", "。", "」", "\n", "\t", "Dr. ", "U.S. ", "J. ",
                                   "…", "।", "\u3000", ",", "क", "ा"]
    for _ in range(1500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        cap = rng.choice([5, 8, 20, 20_000])
        stream, got, pos = SentenceStream(cap), [], 0
        while pos < len(text):
            k = rng.randint(1, 25)
            got += [(base + a, base + b) for _, a, b, base in stream.feed(text[pos:pos + k])]
            pos += k
        got += [(base + a, base + b) for _, a, b, base in stream.finish()]
        assert got == list(iter_sentences(text, cap)), (text, cap)


def test_sentence_stream_holds_one_sentence_not_the_line():
    """Fed a megabyte with no sentence boundary, the stream keeps at most about one capped
    sentence of it (the whole-text path listed every sentence of the line first)."""
    stream = SentenceStream()
    for _ in range(100):
        stream.feed("word " * 2000)
        assert len(stream.buf) < 3 * 20_000 + 10_000


def test_line_pieces_split_as_iter_lines(monkeypatch):
    monkeypatch.setattr(bigfile, "BLOCK", 5)
    rng = random.Random(11)
    parts = [b"a", b" ", b"\n", b"\r", b"\r\n", "é".encode(), "क्ष".encode()]
    for _ in range(800):
        data = b"".join(rng.choice(parts) for _ in range(rng.randint(0, 30)))
        got, cur, off = [], [], 0
        for ev in bigfile.iter_line_pieces(io.BytesIO(data), "strict"):
            if ev[0] == "text":
                cur.append(ev[1])
            else:
                got.append((len(got) + 1, off, "".join(cur)))
                off, cur = off + ev[1] + 1, []
        assert got == list(iter_lines(data.decode())), data


def test_cli_streams_large_files_with_the_same_output(tiny_bundle: Path, tmp_path: Path, monkeypatch):
    """``annotate -o`` over a file above the streaming threshold writes what the whole-text
    path writes (threshold lowered here; 8 MB in use)."""
    from typer.testing import CliRunner

    import cli

    path = tmp_path / "in" / "corpus.txt"
    path.parent.mkdir()
    path.write_text(_corpus(random.Random(9)), encoding="utf-8")
    outs, real = {}, bigfile.stream_file
    for name, threshold in (("whole", 1 << 40), ("streamed", 1000)):
        monkeypatch.setattr(bigfile, "STREAM_FILE_BYTES", threshold)
        calls: list[int] = []
        monkeypatch.setattr(bigfile, "stream_file", lambda *a, **k: calls.append(1) or real(*a, **k))
        res = CliRunner().invoke(cli.app, ["annotate", str(path), "-b", str(tiny_bundle), "-f", "jsonl",
                                           "-o", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        assert bool(calls) == (name == "streamed")
        outs[name] = (tmp_path / name / "corpus.jsonl").read_bytes()
    assert outs["streamed"] == outs["whole"]


def test_binary_file_is_refused_as_the_whole_text_path_refuses_it(annotator, tmp_path: Path):
    from edge_finer.errors import InputError

    path = tmp_path / "report.txt"
    path.write_bytes(b"%PDF-1.4\n" + b"Delhi " * 1000)
    with pytest.raises(InputError) as whole:
        read_text(Source(str(path), path, "report"))
    with pytest.raises(InputError) as streamed:
        bigfile.stream_file(annotator, path, str(path), "jsonl", "fine", "strict")
    assert str(streamed.value) == str(whole.value)


# -- other encodings ----------------------------------------------------------------------------


def _whole_in(annotator, path: Path, fmt: str, encoding: str, errors: str = "strict") -> str:
    import cli

    text = read_text(Source(str(path), path, path.stem), encoding, errors)
    return "".join(render(cli._records(annotator, str(path), text), fmt, "fine"))


@pytest.mark.parametrize("encoding,safe", [
    ("utf-8", True), ("UTF8", True), ("utf-8-sig", True), ("latin-1", True), ("cp1252", True),
    ("shift_jis", True), ("ascii", True),
    ("utf-16", False), ("utf-16-le", False), ("utf-32", False), ("utf-7", False), ("iso2022_jp", False),
    ("cp037", False), ("euc-jp", False), ("gb18030", False), ("rot13", False), ("base64", False), ("idna", False),
    ("no-such-codec", False),
])
def test_encodings_split_at_newline_bytes_are_told_apart(encoding: str, safe: bool):
    """UTF-16/32 and UTF-7 are not ASCII-compatible, ISO-2022 escapes and EBCDIC change the
    bytes' meaning, and EUC-JP / GB18030 decode a bad sequence cut by a newline otherwise
    than the same bytes at the end of a line: none of those may be cut at b"\\n"."""
    assert bigfile.line_safe(encoding) is safe


def _encoded_corpus(encoding: str, seed: int) -> bytes:
    """The corpus in ``encoding`` (what it cannot write becomes ``?``); for UTF-8-SIG a file
    BOM and a line that starts with U+FEFF inside the file, longer than the lines held whole."""
    text = _corpus(random.Random(seed)).replace("x", "ÿ é Ä ï")
    if encoding == "utf-8-sig":
        text = text.replace("\n", "\n\ufeff" + _text(random.Random(1), 200) + "\n", 1)
    return text.encode(encoding, "replace")


@pytest.mark.parametrize("encoding,fmt", [("latin-1", "jsonl"), ("latin-1", "tsv"), ("cp1252", "jsonl"),
                                          ("shift_jis", "jsonl"), ("utf-8-sig", "jsonl")])
def test_other_encodings_stream_byte_identical(annotator, tmp_path: Path, encoding: str, fmt: str, monkeypatch):
    monkeypatch.setattr(bigfile, "BLOCK", 777)  # blocks cut multi-byte characters and CRLFs
    path = tmp_path / "corpus.txt"
    path.write_bytes(_encoded_corpus(encoding, 5))
    want = _whole_in(annotator, path, fmt, encoding)
    assert any(ord(c) > 127 for c in read_text(Source(str(path), path, "c"), encoding))
    got = "".join(bigfile.stream_file(annotator, path, str(path), fmt, "fine", "strict", hold_chars=3000,
                                      encoding=encoding))
    assert got == want and want.count("\n") > 120


@pytest.mark.parametrize("encoding", ["cp1252", "shift_jis", "ascii"])
@pytest.mark.parametrize("errors", ["replace", "surrogateescape", "ignore"])
def test_other_encodings_undecodable_bytes_stream_as_decoded_whole(annotator, tmp_path: Path, encoding: str,
                                                                   errors: str, monkeypatch):
    monkeypatch.setattr(bigfile, "BLOCK", 1000)
    rng = random.Random(8)
    parts = [b"Ravi Shankar visited Delhi. ", b"\x81", b"\x82", b"\x82\n", b"\xe9 ", b"\r\n", b"\n", b"\r",
             "東京".encode("shift_jis")]
    path = tmp_path / "bad.txt"
    path.write_bytes(b"".join(rng.choice(parts) for _ in range(3000)))
    got = "".join(bigfile.stream_file(annotator, path, str(path), "jsonl", "fine", errors, hold_chars=2000,
                                      encoding=encoding))
    assert got == _whole_in(annotator, path, "jsonl", encoding, errors)


@pytest.mark.parametrize("encoding,data", [
    ("cp1252", "Zoë in Delhi é ".encode("cp1252") * 60 + b"\x81" + b" Delhi\n" * 40),  # 0x81: no cp1252 character
    ("shift_jis", "東京 Delhi ".encode("shift_jis") * 60 + b"\x82\n" + b" Delhi\n" * 40),
    ("ascii", b"Delhi " * 60 + b"\xe9" + b" Delhi\n" * 40),
    ("utf-8-sig", codecs_bom := b"\xef\xbb\xbf" + "Zoë ".encode() * 60 + b"\xe2\x82 Delhi\n" * 3),
])
def test_other_encodings_strict_error_names_the_same_byte(annotator, tmp_path: Path, encoding: str, data: bytes,
                                                          monkeypatch):
    from edge_finer.errors import InputError

    monkeypatch.setattr(bigfile, "BLOCK", 64)
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    with pytest.raises(InputError) as whole:
        read_text(Source(str(path), path, "bad"), encoding)
    with pytest.raises(InputError) as streamed:
        bigfile.stream_file(annotator, path, str(path), "jsonl", "fine", "strict", encoding=encoding)
    assert str(streamed.value) == str(whole.value) and "(byte " in str(whole.value)


def test_document_sample_is_the_routers_sample(tmp_path: Path, monkeypatch):
    """The slices are cut by character position from blocks of bytes: the same string as
    ``router._sample`` of the text read whole, whatever the encoding and the cuts."""
    from edge_finer import router

    rng = random.Random(4)
    for encoding in ("utf-8", "latin-1", "shift_jis", "utf-8-sig"):
        for size in (10, 3999, 4000, 4001, 4013, 9000, 50_000):
            monkeypatch.setattr(bigfile, "BLOCK", rng.choice([1, 7, 100, 4096]) if size < 10_000 else 333)
            text = "".join(rng.choice(["Zoë ", "東京", "a", "\r\n", "\n", " ", "é"]) for _ in range(size))
            path = tmp_path / "s.txt"
            path.write_bytes(text.encode(encoding, "replace"))
            whole = read_text(Source(str(path), path, "s"), encoding)
            assert bigfile.scan(path, encoding, "strict") == (len(whole), not whole.strip())
            assert bigfile.document_sample(path, encoding, "strict") == router._sample(whole,
                                                                                       router.DOCUMENT_SAMPLE_CHARS)


# -- the CLI: routing, encodings, workers ---------------------------------------------------------


def _cli_outputs(monkeypatch, args: list, runs: dict) -> dict:
    """Run ``annotate ARGS`` once per ``name: (threshold, extra args)``; each run's exit code,
    stdout, stderr's error lines and whether it streamed."""
    from typer.testing import CliRunner

    import cli

    out, real = {}, bigfile.stream_file
    for name, (threshold, extra) in runs.items():
        monkeypatch.setattr(bigfile, "STREAM_FILE_BYTES", threshold)
        calls: list[int] = []
        monkeypatch.setattr(bigfile, "stream_file", lambda *a, **k: calls.append(1) or real(*a, **k))
        res = CliRunner().invoke(cli.app, ["annotate", *map(str, args), *map(str, extra)])
        out[name] = (res.exit_code, res.stdout_bytes, [ln for ln in res.stderr.splitlines() if "error" in ln],
                     len(calls))
    return out


def test_cli_streams_latin1_but_not_utf16(tiny_bundle: Path, tmp_path: Path, monkeypatch):
    path = tmp_path / "corpus.txt"
    text = _corpus(random.Random(9)).replace("Zoë", "Zoë Müller")
    for encoding, streams in (("latin-1", True), ("utf-16", False)):
        path.write_bytes(text.encode(encoding, "replace"))
        outs = _cli_outputs(monkeypatch, [path, "-b", tiny_bundle, "-f", "jsonl", "--encoding", encoding],
                            {"whole": (1 << 40, []), "streamed": (1000, [])})
        assert outs["whole"][3] == 0 and outs["streamed"][3] == int(streams), encoding
        assert outs["whole"][:3] == outs["streamed"][:3] and outs["whole"][0] == 0
        assert "Zoë Müller" in outs["streamed"][1].decode()
    data = text.encode("cp1252", "replace")
    path.write_bytes(data + b"\x81\n")  # an undefined cp1252 byte: the same one error line
    outs = _cli_outputs(monkeypatch, [path, "-b", tiny_bundle, "-f", "jsonl", "--encoding", "cp1252"],
                        {"whole": (1 << 40, []), "streamed": (1000, [])})
    assert outs["whole"][:3] == outs["streamed"][:3] and outs["whole"][0] == 1
    assert f"not valid charmap (byte {len(data)})" in outs["whole"][2][0]


from made_up_languages import MadeUpLanguages  # noqa: E402

LANGS = MadeUpLanguages({"aa": ["ka", "ta", "ma", "na", "ri", "lo", "ke", "ti", "mu", "sa"],
                         "bb": ["zo", "xu", "vo", "qe", "zy", "wu", "xo", "vy", "qu", "zw"],
                         "cc": ["ghr", "plk", "str", "mbn", "trr", "skj", "brd", "nkt"]}, words=8)


@pytest.fixture(scope="module")
def routed_bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_bundle import make_tiny_bundle

    root = tmp_path_factory.mktemp("routed-giant")
    for lang in ("aa", "bb"):
        make_tiny_bundle(root / f"tiny-{lang}", name=f"tiny-{lang}", lang=lang, iso3=lang * 2 + lang[0],
                         profile_text=LANGS.corpus(lang))
    return root


def _routed_corpus(seed: int, lang: str = "aa", names: float = 0.05) -> str:
    """Lines of one made-up language (the tiny profiles' calibration takes little else), some
    with the tiny model's gazetteer names, one CRLF line, one giant line, one line of Latin-1."""
    rng = random.Random(seed)
    lines = [" ".join(LANGS.sentence(lang, rng) for _ in range(rng.randint(0, 4)))
             + (" Ravi Shankar visited Delhi." if rng.random() < names else "") for _ in range(150)]
    lines[20] = " ".join(LANGS.sentence(lang, rng) for _ in range(2 * 64 + 5))
    lines[40] += "\r"
    lines[41] = "Zoë Müller"
    return "\n".join(lines) + "\n"


def test_cli_routed_run_streams_byte_identical(routed_bundles: Path, tmp_path: Path, monkeypatch):
    """Per-document routing of a large file: the decision from the sample cut from the file,
    the same ``routing`` in every record, the same bytes; an unroutable file is refused with
    the whole-text path's message; a blank file and ``--route sentence`` are not streamed."""
    import json

    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(routed_bundles))
    monkeypatch.setenv("EDGE_FINER_CLD3", "0")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_bytes(_routed_corpus(1).encode("latin-1"))
    (folder / "b.txt").write_bytes(_routed_corpus(2, "bb", names=0).encode("latin-1"))
    runs = {"whole": (1 << 40, []), "streamed": (1000, [])}
    for fmt in ("jsonl", "tsv"):
        outs = _cli_outputs(monkeypatch, [folder, "-f", fmt, "--encoding", "latin-1"], runs)
        assert outs["whole"][:3] == outs["streamed"][:3] and outs["whole"][0] == 0
        assert (outs["whole"][3], outs["streamed"][3]) == (0, 2)
    outs = _cli_outputs(monkeypatch, [folder, "-f", "jsonl", "--encoding", "latin-1"], runs)
    records = [json.loads(ln) for ln in outs["streamed"][1].decode().splitlines()]
    by_file = {r["source"]: r["routing"] for r in records}
    assert [v["bundle"] for k, v in sorted(by_file.items())] == ["tiny-aa", "tiny-bb"]
    assert all(r["routing"] == by_file[r["source"]] for r in records) and len(records) == 300
    assert any(r["entities"] for r in records) and any("Zoë Müller" == r["text"] for r in records)

    (folder / "c.txt").write_text("\n".join(" ".join(LANGS.corpus("cc", n=3, seed=k)) for k in range(60)) + "\n",
                                  encoding="utf-8")
    (folder / "d.txt").write_text(" \n\t\n" * 600, encoding="utf-8")
    outs = _cli_outputs(monkeypatch, [folder, "-f", "jsonl", "--encoding", "latin-1"], runs)
    assert outs["whole"][:3] == outs["streamed"][:3] and outs["whole"][0] == 1
    assert outs["streamed"][3] == 2  # a and b; c refused before output, d blank
    assert "c.txt: cannot tell the language" in outs["streamed"][2][0] and len(outs["streamed"][2]) == 2
    assert outs["streamed"][1].count(b'"source": ') == 300 + 1200  # d's blank lines, no routing
    (folder / "c.txt").unlink()
    outs = _cli_outputs(monkeypatch, [folder, "-f", "jsonl", "--route", "sentence"], runs)
    assert outs["whole"][:3] == outs["streamed"][:3] and outs["streamed"][3] == 0


def test_cli_workers_stream_large_files_in_the_parent(routed_bundles: Path, tiny_bundle: Path, tmp_path: Path,
                                                      monkeypatch):
    """--workers 2 over small files and large ones: the large ones are streamed (by the
    parent: no worker reads them whole), the output is one process's, byte for byte."""
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(routed_bundles))
    monkeypatch.setenv("EDGE_FINER_CLD3", "0")
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(4):
        (folder / f"small{k}.txt").write_text(" ".join(LANGS.corpus("aa", n=4, seed=k)) + "\n", encoding="utf-8")
    (folder / "big1.txt").write_text(_routed_corpus(3), encoding="utf-8")
    (folder / "big2.txt").write_text(_routed_corpus(4, "bb", names=0), encoding="utf-8")
    outs = _cli_outputs(monkeypatch, [folder, "-f", "tsv"], {  # routed, to stdout
        "one": (3000, []), "two": (3000, ["--workers", "2"]), "whole": (1 << 40, ["--workers", "2"])})
    assert outs["one"][:3] == outs["two"][:3] == outs["whole"][:3] and outs["one"][0] == 0
    assert (outs["one"][3], outs["two"][3], outs["whole"][3]) == (2, 2, 0)
    assert outs["one"][1].count(b"source\tline") == 1 and b"big2.txt" in outs["one"][1]
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    outs = _cli_outputs(monkeypatch, [folder, "-f", "jsonl", "-b", tiny_bundle], {  # one bundle, to files
        "one": (3000, ["-o", out1]), "two": (3000, ["-o", out2, "--workers", "2"])})
    assert outs["one"][:3] == outs["two"][:3] and outs["one"][0] == 0 and outs["two"][3] == 2
    for name in ("big1.jsonl", "big2.jsonl", "small0.jsonl", "small3.jsonl"):
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes()
