"""The annotator: offsets into the original text, IOB2 decoding, aggregation, thresholds,
windowing of long sentences, batching/streaming, threads and huge inputs.

The tiny bundle's model is a gazetteer (see ``tiny_bundle.py``): each gazetteer token lights up
one label whatever its context, everything else is ``O``.  So the expected entities of any text
are known exactly, and any difference is the runtime's doing.
"""
from __future__ import annotations

import itertools
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_finer import annotator as annotator_mod
from edge_finer.annotator import Annotator
from edge_finer.bundle import open_bundle
from edge_finer.windows import owned_windows
from edge_finer.decoding import LabelScheme, aggregate, decode, spans, viterbi
from edge_finer.entity import Entity
from edge_finer.errors import EdgeFinerError
from edge_finer.pretokenize import split_words
from tiny_bundle import LABELS, make_tiny_bundle

NOT_AT_EDGE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\x00", "\u00ad"}


def check_spans(text: str, ents: list[Entity]) -> None:
    """The invariants every result must satisfy, whatever the text."""
    prev_end = -1
    for e in ents:
        assert 0 <= e.start < e.end <= len(text)
        assert text[e.start:e.end] == e.text, (text, e)
        assert e.start >= prev_end, f"overlapping or unsorted: {ents}"
        prev_end = e.end
        for edge in (e.text[0], e.text[-1]):
            assert not edge.isspace() and edge not in NOT_AT_EDGE, e
            assert not 0xD800 <= ord(edge) <= 0xDFFF, e
        assert e.label in ("PER", "LOC", "ORG")
        assert e.coarse_label == {"PER": "Person", "LOC": "Location", "ORG": "Group"}[e.label]
        assert 0.0 <= e.score <= 1.0


def found(ents: list[Entity]) -> list[tuple[str, str]]:
    return [(e.text, e.label) for e in ents]


# -- offsets over varied scripts ------------------------------------------------------------

SCRIPT_CASES = [
    # (text, expected (text, label) in order)
    ("Ravi Shankar Kumar works at Infosys Limited in Guwahati.",
     [("Ravi Shankar Kumar", "PER"), ("Infosys Limited", "ORG"), ("Guwahati", "LOC")]),
    # Latin with combining marks: precomposed Zoë is known; decomposed words stay whole and
    # never shift later offsets
    ("Zoë and Zoe\u0308 and Cafe\u0301 Ravi\u0301 in Delhi.", [("Zoë", "PER"), ("Delhi", "LOC")]),
    ("e\u0301\u0301\u0301 Delhi a\u0308", [("Delhi", "LOC")]),
    # Devanagari, with danda as sentence end and ZWJ/ZWNJ inside words
    ("अमित शाह दिल्ली गए। क्\u200dष अमित", [("अमित शाह", "PER"), ("अमित", "PER")]),
    # Bengali
    ("দিল্লী থেকে শিলং। শিলং", [("দিল্লী", "LOC"), ("শিলং", "LOC"), ("শিলং", "LOC")]),
    # Ol Chiki with its own sentence mark
    ("ᱥᱟᱱᱛᱟᱲ ᱫᱤᱥᱚᱢ᱾ ᱥᱟᱱᱛᱟᱲ", [("ᱥᱟᱱᱛᱟᱲ", "PER"), ("ᱥᱟᱱᱛᱟᱲ", "PER")]),
    # CJK: full-width punctuation separates words, no spaces needed
    ("「東京」は大きい。東京、Delhi！", [("東京", "LOC"), ("東京", "LOC"), ("Delhi", "LOC")]),
    # emoji, including astral-plane ones, flags and ZWJ sequences
    ("🙂 Ravi 🇮🇳 Delhi 👨\u200d👩\u200d👧 Shillong🙂", [("Ravi", "PER"), ("Delhi", "LOC"), ("Shillong", "LOC")]),
    ("𝐀𝐁 Delhi 𝐂", [("Delhi", "LOC")]),
    # CRLF, CR, tabs and other whitespace
    ("Ravi Shankar\r\nDelhi\r\n\r\nInfosys\tLimited\r", [("Ravi Shankar", "PER"), ("Delhi", "LOC"),
                                                        ("Infosys\tLimited", "ORG")]),
    ("\u3000Delhi\u00a0Shillong\u2028Ravi", [("Delhi", "LOC"), ("Shillong", "LOC"), ("Ravi", "PER")]),
    # NUL and other control characters
    ("\x00Delhi\x00 x\x01Shillong\x7f", [("Delhi", "LOC"), ("Shillong", "LOC")]),
    # lone surrogates (possible in Python strings read with surrogateescape)
    ("\ud800 Delhi \udfff Ravi\ud800", [("Delhi", "LOC"), ("Ravi", "PER")]),
    ("\udcff\udcfeDelhi", [("Delhi", "LOC")]),
    # zero-width characters around and inside words
    ("\u200bDelhi\u200b \ufeffShillong\u2060 \u200dRavi\u200c", [("Delhi", "LOC"), ("Shillong", "LOC"), ("Ravi", "PER")]),
    ("Del\u200bhi", []),  # a zero-width space splits a word: neither half is a place
    ("", []),
    ("   \n\r\n\t ", []),
    ("...!!!???", []),
]


@pytest.mark.parametrize("text,expected", SCRIPT_CASES, ids=range(len(SCRIPT_CASES)))
def test_offsets_slice_the_original_text(annotator: Annotator, text: str, expected):
    ents = annotator.annotate(text)
    check_spans(text, ents)
    assert found(ents) == expected


def test_exact_offsets_in_mixed_text(annotator: Annotator):
    text = "\ud800🙂 Zoë,\r\nअमित शाह\x00and 東京."
    ents = annotator.annotate(text)
    assert [(e.start, e.end, e.label) for e in ents] == [
        (text.index("Zoë"), text.index("Zoë") + 3, "PER"),
        (text.index("अमित"), text.index("शाह") + 3, "PER"),
        (text.index("東京"), text.index("東京") + 2, "LOC"),
    ]
    check_spans(text, ents)


def test_combining_marks_stay_inside_words():
    text = "Zoe\u0308 क्\u200dष Delhi"
    words = [text[s:e] for s, e in split_words(text)]
    assert words == ["Zoe\u0308", "क्\u200dष", "Delhi"]


def test_zero_width_joiners_only_inside_words():
    """ZWJ/ZWNJ belong to a word only between two of its characters, never at an edge."""
    text = "\u200dRavi\u200c \u200cक्\u200dष\u200d a\u200d\u200db \u200c\u200d"
    assert [text[s:e] for s, e in split_words(text)] == ["Ravi", "क्\u200dष", "a", "b"]


def test_non_str_input_is_refused(annotator: Annotator):
    with pytest.raises(EdgeFinerError):
        annotator.annotate(b"Delhi")  # type: ignore[arg-type]
    with pytest.raises(EdgeFinerError):
        annotator.annotate_batch(["Delhi", None])  # type: ignore[list-item]


GAZ_WORDS = ["Ravi", "Shankar", "Kumar", "Guwahati", "Delhi", "Shillong", "Infosys", "Limited",
             "अमित", "शाह", "দিল্লী", "ᱥᱟᱱᱛᱟᱲ", "東京", "Zoë", "Xhati", "Delhix"]
ODD = ["\ud800", "\udfff", "\r\n", "\r", "\n", "\x00", "\u200b", "\u200c", "\u200d", "\ufeff",
       "\u0301", "🙂", "👨\u200d👩", "。", "।", " ", "  ", "\t", ".", ". ", "Dr. ", "U.S. "]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.sampled_from(GAZ_WORDS), st.sampled_from(ODD),
                          st.text(st.characters(codec=None), max_size=4)), max_size=30))
def test_any_text_gives_valid_spans_and_windowing_changes_nothing(annotator, wide_annotator, parts):
    text = "".join(parts)
    ents = annotator.annotate(text)
    check_spans(text, ents)
    assert ents == wide_annotator.annotate(text)


# -- IOB2 decoding --------------------------------------------------------------------------

SCHEME = LabelScheme.from_labels(LABELS)
SMALL = LabelScheme.from_labels(["O", "B-A", "I-A", "B-B", "I-B"])


def _tags(*labels: str, scheme: LabelScheme = SCHEME) -> np.ndarray:
    return np.array([scheme.labels.index(x) for x in labels], dtype=np.int64)


@pytest.mark.parametrize("seq,ok", [
    ((), True),
    (("O",), True),
    (("B-PER", "I-PER", "I-PER", "O", "B-LOC"), True),
    (("B-PER", "B-PER", "I-PER"), True),
    (("I-PER",), False),
    (("O", "I-PER"), False),
    (("B-LOC", "I-PER"), False),
    (("B-PER", "I-PER", "I-LOC"), False),
])
def test_label_scheme_valid(seq, ok):
    assert SCHEME.valid(_tags(*seq)) is ok


def _valid_slow(tags, scheme) -> bool:
    prev = "O"
    for t in tags:
        lab = scheme.labels[t]
        if lab.startswith("I-") and prev[2:] != lab[2:]:
            return False
        prev = lab
    return True


def test_valid_agrees_with_definition_on_all_short_sequences():
    for n in range(4):
        for seq in itertools.product(range(len(SMALL.labels)), repeat=n):
            tags = np.array(seq, dtype=np.int64)
            assert SMALL.valid(tags) == _valid_slow(seq, SMALL), [SMALL.labels[t] for t in seq]


@pytest.mark.parametrize("labels", [["O", "B-A", "I-A", "B-B", "I-B"],
                                    ["O", "B-A", "I-A"],
                                    ["B-A", "O", "I-B", "I-A", "B-B"]])  # order does not matter
def test_viterbi_is_the_best_valid_sequence(labels):
    scheme = LabelScheme.from_labels(labels)
    rng = np.random.default_rng(0)
    for _ in range(150):
        n = int(rng.integers(1, 5))
        logp = np.log(rng.dirichlet(np.ones(len(labels)) * 0.5, size=n) + 1e-12)
        best, best_seq = -np.inf, None
        for seq in itertools.product(range(len(labels)), repeat=n):
            if _valid_slow(seq, scheme):
                score = sum(logp[t, k] for t, k in enumerate(seq))
                if score > best:
                    best, best_seq = score, seq
        got = viterbi(logp, scheme)
        assert _valid_slow(got, scheme)
        got_score = sum(logp[t, k] for t, k in enumerate(got))
        assert got_score == pytest.approx(best, abs=1e-9), (got, best_seq)


def test_viterbi_empty():
    assert viterbi(np.zeros((0, len(LABELS))), SCHEME).shape == (0,)


def test_decode_keeps_valid_argmax_and_repairs_invalid():
    rng = np.random.default_rng(1)
    for _ in range(300):
        probs = rng.dirichlet(np.ones(len(LABELS)) * 0.3, size=int(rng.integers(1, 12)))
        tags = decode(probs, SCHEME)
        assert SCHEME.valid(tags)
        if SCHEME.valid(probs.argmax(axis=1)):
            assert (tags == probs.argmax(axis=1)).all()


def test_spans_and_scores():
    tags = _tags("B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "I-LOC")
    probs = np.full((7, len(LABELS)), 0.01)
    probs[np.arange(7), tags] = [0.9, 0.7, 0.5, 0.6, 0.8, 0.4, 0.3]
    got = spans(tags, probs, SCHEME)
    assert [(s, e, SCHEME.labels[k]) for s, e, k, _ in got] == [(0, 2, "B-PER"), (3, 4, "B-LOC"), (4, 7, "B-LOC")]
    assert [sc for *_, sc in got] == pytest.approx([0.8, 0.6, 0.5])
    assert spans(_tags("O", "O"), probs[:2], SCHEME) == []
    assert spans(np.zeros(0, dtype=np.int64), probs[:0], SCHEME) == []


def test_invalid_model_output_is_decoded_to_valid_entities(annotator: Annotator):
    """The gazetteer says I-PER for a sentence-initial 'Shankar': no entity may start with I-.

    Viterbi's optimum is B-PER I-PER (one unlikely tag, p≈0.0003, then a likely one) rather than
    O O (two unlikely tags), so the pair becomes one entity with a low mean score.
    """
    ents = annotator.annotate("Shankar Kumar met Ravi Kumar. Limited Infosys Limited")
    assert found(ents) == [("Shankar Kumar", "PER"), ("Ravi Kumar", "PER"), ("Infosys Limited", "ORG")]
    assert ents[0].score == pytest.approx(0.4992, abs=2e-3) and ents[1].score > 0.99
    # an 'x' (p(O)≈0.9) is cheaper to relabel B-PER than 'Kumar' is to relabel O
    assert found(annotator.annotate("x Kumar")) == [("x Kumar", "PER")]


# -- aggregation ----------------------------------------------------------------------------


def test_aggregate_first_average_max():
    # word 0 = tokens 0..2, word 1 = token 3, word 2 = tokens 4..5
    wids = np.array([0, 0, 0, 1, 2, 2])
    p = np.array([[0.6, 0.4], [0.1, 0.9], [0.2, 0.8], [1.0, 0.0], [0.3, 0.7], [0.95, 0.05]], dtype=np.float32)
    first, rows = aggregate(p, wids, "first")
    assert first.tolist() == [0, 3, 4]
    np.testing.assert_allclose(rows, p[[0, 3, 4]])
    _, rows = aggregate(p, wids, "average")
    np.testing.assert_allclose(rows, [p[0:3].mean(0), p[3], p[4:6].mean(0)], rtol=1e-6)
    _, rows = aggregate(p, wids, "max")  # the row of each word's most confident token
    np.testing.assert_allclose(rows, p[[1, 3, 5]])
    with pytest.raises(ValueError):
        aggregate(p, wids, "median")


def _token_probs(ann: Annotator, word: str) -> np.ndarray:
    """Softmaxed model rows for the subword pieces of one word (without bos/eos)."""
    ann.warm_up()
    enc = ann._tokenizer.encode([word], is_pretokenized=True, add_special_tokens=False)
    ids = np.asarray(enc.ids, dtype=np.int64)
    window = (ids, np.zeros(ids.size, dtype=np.int64), 0, ids.size)
    return ann._run_batch([window], None)[0, 1:1 + len(enc.ids)], enc.tokens


@pytest.mark.parametrize("how", ["first", "average", "max"])
def test_aggregation_on_a_multi_piece_word(tiny_bundle: Path, how: str):
    ann = Annotator(open_bundle(tiny_bundle), aggregation=how)
    probs, tokens = _token_probs(ann, "Guwahati")
    assert tokens == ["Guwa", "##hati"]
    b_loc, i_loc = LABELS.index("B-LOC"), LABELS.index("I-LOC")
    assert probs[0].argmax() == b_loc and probs[1].argmax() == i_loc
    expected_row = {"first": probs[0], "average": probs.mean(0),
                    "max": probs[int(probs.max(1).argmax())]}[how]
    [e] = ann.annotate("Guwahati")
    assert (e.start, e.end, e.text, e.label) == (0, 8, "Guwahati", "LOC")
    # the word's label is its B- or I- row maximum; the score that label's probability
    assert e.score == pytest.approx(float(expected_row.max()), abs=1e-5)
    # documented values: first/max trust one confident piece (~0.998); average splits the
    # word's mass between B-LOC and I-LOC (~0.5 each), B- winning the tie
    assert e.score == pytest.approx({"first": 0.998, "average": 0.4992, "max": 0.998}[how], abs=2e-3)


def test_aggregation_default_comes_from_manifest(tmp_path: Path):
    folder = make_tiny_bundle(tmp_path / "avg", name="avg", aggregation="average")
    ann = Annotator(open_bundle(folder))
    assert ann.aggregation == "average"
    assert ann.annotate("Guwahati")[0].score == pytest.approx(0.4992, abs=2e-3)
    assert Annotator(open_bundle(folder), aggregation="first").annotate("Guwahati")[0].score > 0.99
    with pytest.raises(EdgeFinerError):
        Annotator(open_bundle(folder), aggregation="mean")


# -- threshold ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_bundle(tmp_path_factory) -> Path:
    """Average aggregation (Guwahati scores ~0.5) and a manifest threshold of 0.6."""
    return make_tiny_bundle(tmp_path_factory.mktemp("strict") / "strict", name="strict",
                            aggregation="average", threshold=0.6)


def test_threshold_default_from_manifest_and_override(strict_bundle: Path):
    text = "Guwahati and Delhi"
    default = Annotator(open_bundle(strict_bundle))
    assert default.threshold == 0.6
    assert found(default.annotate(text)) == [("Delhi", "LOC")]
    low = Annotator(open_bundle(strict_bundle), threshold=0.4)
    assert found(low.annotate(text)) == [("Guwahati", "LOC"), ("Delhi", "LOC")]
    assert Annotator(open_bundle(strict_bundle), threshold=1.0).annotate(text) == []
    # load() caches per threshold: an override never leaks into the default annotator
    assert found(Annotator.load(strict_bundle, threshold=0.0).annotate(text)) == found(low.annotate(text))
    assert found(Annotator.load(strict_bundle).annotate(text)) == [("Delhi", "LOC")]


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_threshold_out_of_range_is_refused(tiny_bundle: Path, bad: float):
    with pytest.raises(EdgeFinerError, match="threshold"):
        Annotator(open_bundle(tiny_bundle), threshold=bad)


# -- long sentences: windows with stride -----------------------------------------------------


@pytest.fixture(scope="module")
def window_annotators(tiny_bundle: Path, tmp_path_factory) -> list[Annotator]:
    """Annotators with small windows: 16/4 (the tiny bundle), 8/0 and 8/3."""
    root = tmp_path_factory.mktemp("windows")
    folders = [tiny_bundle,
               make_tiny_bundle(root / "w8s0", name="w8s0", max_length=8, stride=0),
               make_tiny_bundle(root / "w8s3", name="w8s3", max_length=8, stride=3)]
    return [Annotator(open_bundle(f)) for f in folders]


@pytest.mark.parametrize("entity,label,filler", [
    ("Ravi Shankar Kumar", "PER", "a"),
    ("Infosys Limited", "ORG", "a"),
    ("Guwahati", "LOC", "a"),
    ("Ravi Shankar Kumar", "PER", "abc"),  # three-piece filler words shift the windows
    ("Guwahati Delhi Shillong", "LOC", "ab"),
])
def test_entity_across_window_edges_is_found_once(window_annotators, wide_annotator, entity, label, filler):
    n_words = 40
    for position in range(n_words):
        words = [filler] * n_words
        words[position] = entity
        text = " ".join(words) + " ."
        start = len(" ".join(words[:position])) + (1 if position else 0)
        expected = wide_annotator.annotate(text)
        if label == "LOC" and " " in entity:
            assert len(expected) == 3
        else:
            assert [(e.start, e.end, e.text, e.label) for e in expected] == [
                (start, start + len(entity), entity, label)]
        for ann in window_annotators:
            assert len(owned_windows(_wids(ann, text), ann.max_tokens, ann.stride)) > 1, "the sentence must need several windows"
            got = ann.annotate(text)
            assert got == expected, (ann.bundle.name, position)


def _wids(ann: Annotator, text: str) -> np.ndarray:
    ann.warm_up()
    words = [text[s:e] for s, e in split_words(text)]
    enc = ann._tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)
    return np.asarray(enc.word_ids, dtype=np.int64)


def test_windowed_result_equals_unwindowed_on_random_long_sentences(window_annotators, wide_annotator):
    vocab = ["Ravi", "Shankar", "Kumar", "Guwahati", "Delhi", "Infosys", "Limited", "x", "the",
             "abcdefghijklmnopqrstuvwxyz", "Ravi Shankar Kumar", "Infosys Limited", "Xhati", ",", "🙂"]
    rng = random.Random(7)
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 60))) for _ in range(200)]
    expected = wide_annotator.annotate_batch(texts)
    assert sum(map(len, expected)) > 300
    for ann in window_annotators:
        assert ann.annotate_batch(texts) == expected


@pytest.mark.parametrize("text", [
    "RaviRaviRaviShankar",  # one word of 16 subwords: longer than a 14-token window
    "a a Ravi RaviRaviRaviRaviShankarKumar Delhi",
    "Delhi abcdefghijklmnopqrstuvwxyzabcdefghij Guwahati",
])
def test_word_longer_than_a_window_is_labelled_by_its_first_subword(window_annotators, wide_annotator, text):
    """Regression: the window opening inside an over-long word used to relabel that word from
    a middle subword, dropping or inventing entities."""
    expected = wide_annotator.annotate(text)
    assert expected, "the wide window sees the entity"
    for ann in window_annotators:
        assert ann.annotate(text) == expected, ann.bundle.name


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=40), st.sampled_from([(16, 4), (8, 0), (8, 3), (10, 4)]))
def test_windows_tile_the_sentence(word_sizes, geometry):
    """Owned ranges cover every token exactly once; windows respect the size limit."""
    max_length, stride = geometry
    ann = Annotator.__new__(Annotator)
    ann.max_tokens, ann.stride = max_length - 2, stride
    wids = np.repeat(np.arange(len(word_sizes)), word_sizes).astype(np.int64)
    n = int(wids.size)
    windows = owned_windows(wids, ann.max_tokens, ann.stride)
    owned = 0
    for s, e, lo, hi in windows:
        assert 0 <= s < e <= n and e - s <= ann.max_tokens
        assert s <= lo <= hi <= e
        assert lo == owned, windows
        owned = hi
    assert owned == n
    # a word that fits in a window is never cut by the window it is owned by
    starts = set(np.flatnonzero(np.diff(wids, prepend=-1) != 0).tolist())
    for s, e, lo, hi in windows:
        for k in range(lo, hi):
            w = wids[k]
            if word_sizes[w] <= ann.max_tokens and k in starts:
                assert k + word_sizes[w] <= e, (windows, k)


# -- batches, streams, threads ---------------------------------------------------------------


def _corpus(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    pieces = ["Ravi Shankar went to Delhi.", "Infosys Limited is in Guwahati!", "nothing here",
              "अमित शाह दिल्ली गए।", "「東京」", "", "\r\n", "Zoë\u0301 \ud800 Shillong? Ravi Kumar. ",
              "a a a a a a a a a a a a a a a a Ravi Shankar Kumar a a a a a"]
    return [" ".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in range(n)]


def test_annotate_batch_equals_annotate(annotator: Annotator):
    texts = _corpus(300)
    assert annotator.annotate_batch(texts) == [annotator.annotate(t) for t in texts]
    assert annotator.annotate_batch([]) == []


def test_batch_and_stream_across_chunk_boundaries(annotator: Annotator, monkeypatch):
    texts = _corpus(200, seed=4)
    serial = [annotator.annotate(t) for t in texts]
    for chunk in (1, 2, 3, 7):
        monkeypatch.setattr(annotator_mod, "SENTENCES_PER_CHUNK", chunk)
        assert annotator.annotate_batch(texts) == serial
        assert list(annotator.stream(iter(texts))) == serial
        assert [list(annotator.iter_entities(t)) for t in texts] == serial


def test_stream_is_lazy_and_gives_the_same(annotator: Annotator):
    pulled = 0
    total = 6 * annotator_mod.SENTENCES_PER_CHUNK
    texts = [f"Ravi {i} went to Delhi" if i % 3 else "Infosys Limited" for i in range(total)]

    def gen():
        nonlocal pulled
        for t in texts:
            pulled += 1
            yield t

    stream = annotator.stream(gen())
    assert pulled == 0, "nothing is read before the first result is asked for"
    first = next(stream)
    assert pulled <= 2 * annotator_mod.SENTENCES_PER_CHUNK, "the stream read ahead too far"
    rest = list(stream)
    assert pulled == total
    assert [first, *rest] == annotator.annotate_batch(texts)


def test_thread_shared_annotator_equals_serial(tiny_bundle: Path):
    texts = _corpus(400, seed=6)
    serial = Annotator(open_bundle(tiny_bundle)).annotate_batch(texts)
    shared = Annotator(open_bundle(tiny_bundle))  # not warmed up: threads race to initialise it
    barrier = threading.Barrier(8)

    def work(k: int):
        barrier.wait()
        mine = texts[k::8]
        return k, [shared.annotate(t) for t in mine], shared.annotate_batch(mine)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for k, one_by_one, batched in results:
        assert one_by_one == serial[k::8]
        assert batched == serial[k::8]


def test_load_is_cached_and_thread_safe(tiny_bundle: Path):
    with ThreadPoolExecutor(8) as pool:
        anns = list(pool.map(lambda _: Annotator.load(tiny_bundle), range(16)))
    assert all(a is anns[0] for a in anns)
    annotator_mod.clear_cache()
    assert Annotator.load(tiny_bundle) is not anns[0]


# -- huge inputs ----------------------------------------------------------------------------


def test_huge_text_without_punctuation(annotator: Annotator):
    rng = random.Random(8)
    words = [rng.choice(["Delhi", "went", "to", "x", "Shillong", "abc"]) for _ in range(45_000)]
    text = " ".join(words)
    assert len(text) > 200_000
    ents = annotator.annotate(text)
    check_spans(text, ents)
    expected = [(i, w) for i, w in enumerate(words) if w in ("Delhi", "Shillong")]
    assert len(ents) == len(expected)
    assert all(e.label == "LOC" for e in ents)
    offsets = np.cumsum([0] + [len(w) + 1 for w in words])
    assert [e.start for e in ents] == [int(offsets[i]) for i, _ in expected]


def test_huge_text_without_any_space(annotator: Annotator):
    for text in ("x" * 200_000, "東京" * 100_000, "🙂" * 100_000, "\ud800" * 50_000):
        ents = annotator.annotate(text)
        check_spans(text, ents)
        assert ents == []


def test_batched_viterbi_equals_one_at_a_time():
    from edge_finer.decoding import decode_batch, viterbi_batch

    rng = np.random.default_rng(3)
    for labels in (LABELS, ["O", "B-A", "I-A", "B-B", "I-B"], ["B-A", "O", "I-B", "I-A", "B-B"]):
        scheme = LabelScheme.from_labels(labels)
        logps = [np.log(rng.dirichlet(np.ones(len(labels)) * 0.3, size=int(n)) + 1e-12)
                 for n in rng.integers(0, 12, size=40)]
        got = viterbi_batch(logps, scheme)
        assert [g.tolist() for g in got] == [viterbi(lp, scheme).tolist() for lp in logps]
        probs = [np.exp(lp) for lp in logps]
        assert [t.tolist() for t in decode_batch(probs, scheme)] == [decode(p, scheme).tolist() for p in probs]
    assert viterbi_batch([], SCHEME) == []


def test_flat_decoding_equals_sentence_by_sentence():
    """The annotator decodes a whole chunk as one array; sentence boundaries must hold exactly."""
    from edge_finer.decoding import decode_flat, spans_flat

    rng = np.random.default_rng(5)
    sizes = [int(n) for n in rng.integers(0, 9, size=60)] + [0, 0]
    probs = [rng.dirichlet(np.ones(len(LABELS)) * 0.3, size=n) for n in sizes]
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    flat = np.concatenate(probs)
    tags = decode_flat(flat, offsets, SCHEME)
    found = list(zip(*(a.tolist() for a in spans_flat(tags, flat, offsets, SCHEME))))
    expected = []
    for k, p in enumerate(probs):
        own = decode(p, SCHEME)
        assert tags[offsets[k]:offsets[k + 1]].tolist() == own.tolist()
        expected += [(s + offsets[k], e + offsets[k], lab, sc) for s, e, lab, sc in spans(own, p, SCHEME)]
    assert [f[:3] for f in found] == [e[:3] for e in expected]
    assert [f[3] for f in found] == pytest.approx([e[3] for e in expected])


def test_an_entity_never_runs_into_the_next_sentence():
    # B-PER I-PER | I-PER O : the second sentence's I-PER is invalid there and is decoded away
    tags = _tags("B-PER", "I-PER", "I-PER", "O")
    probs = np.full((4, len(LABELS)), 0.01)
    probs[np.arange(4), tags] = 0.9
    from edge_finer.decoding import decode_flat, spans_flat

    offsets = np.array([0, 2, 4])
    fixed = decode_flat(probs, offsets, SCHEME)
    assert SCHEME.labels[fixed[2]] != "I-PER"
    # even handed invalid tags, spans stop at the boundary
    firsts, ends, _, _ = spans_flat(tags, probs, offsets, SCHEME)
    assert (firsts.tolist(), ends.tolist()) == ([0], [2])


def test_session_leaves_out_the_slow_fusion(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch):
    """SkipLayerNormalization fusion measured slower on our models (backend.DISABLED_FUSIONS)."""
    import onnxruntime as ort

    from edge_finer.backend import OnnxBackend

    seen = {}
    real = ort.InferenceSession

    def spy(model, sess_options=None, providers=None, **kw):
        seen.update(kw, threads=sess_options.intra_op_num_threads)
        return real(model, sess_options=sess_options, providers=providers, **kw)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    OnnxBackend(tiny_bundle / "model.onnx")
    assert "SkipLayerNormFusion" in seen["disabled_optimizers"] and seen["threads"] == 1


def test_batches_respect_the_token_budget(tiny_bundle: Path):
    """Long windows go fewer to a batch (bounded activation memory); results do not change."""
    texts = ["Ravi Kumar met Shankar Kumar in Infosys Limited yesterday at noon " * k for k in range(1, 9)]
    texts += ["Ravi Kumar met x."] * 40
    free = Annotator(open_bundle(tiny_bundle), threads=1, batch_size=32, max_batch_tokens=10**6)
    tight = Annotator(open_bundle(tiny_bundle), threads=1, batch_size=32, max_batch_tokens=48)
    shapes = []
    real = tight.backend.run

    def spy(ids, mask):
        shapes.append(ids.shape)
        return real(ids, mask)

    tight.backend.run = spy
    assert tight.annotate_batch(texts) == free.annotate_batch(texts)
    assert shapes and all(rows * width <= 48 or rows == 1 for rows, width in shapes)
    assert all(rows <= 32 for rows, _ in shapes)
    assert max(rows for rows, _ in shapes) > 1  # short windows still share batches
