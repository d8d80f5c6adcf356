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
