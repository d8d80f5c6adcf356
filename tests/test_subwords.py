"""Word-by-word subword encoding with a cache must give exactly the ids of whole-sentence encoding."""
from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from edge_finer.subwords import WordEncoder

TEXT = ["the cat sat on the mat", "São Paulo hosted the 2014 games", "naïve co-op U.S. wins",
        "नई दिल्ली में बारिश", "the the the cat"]


def _wordpiece() -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(TEXT * 20, trainers.WordPieceTrainer(vocab_size=120, special_tokens=["[UNK]", "[PAD]"]))
    return tok


def _unigram(scheme: str) -> Tokenizer:
    """XLM-R style: SentencePiece unigram behind a Metaspace pre-tokenizer."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme=scheme)
    tok.train_from_iterator(TEXT * 20, trainers.UnigramTrainer(vocab_size=80, special_tokens=["<pad>", "<unk>"],
                                                               unk_token="<unk>"))
    return tok


def _reference(tok: Tokenizer, sentences: list[list[str]]) -> tuple[list[int], list[int]]:
    ids: list[int] = []
    words: list[int] = []
    base = 0
    for enc, sent in zip(tok.encode_batch(sentences, is_pretokenized=True, add_special_tokens=False), sentences):
        ids += enc.ids
        words += [base + w for w in enc.word_ids]
        base += len(sent)
    return ids, words


@pytest.mark.parametrize("make", [_wordpiece, lambda: _unigram("always"), lambda: _unigram("first")])
def test_cached_encoding_equals_whole_sentence_encoding(make):
    tok = make()
    enc = WordEncoder(tok, capacity=10)  # smaller than the vocabulary: the cache is cleared on the way
    sentences = [s.split() for s in TEXT] + [[]] + [s.split() for s in TEXT]
    assert enc.cached
    for _ in range(2):  # second round from the (partly) filled cache
        ids, words, starts = enc.encode(sentences)
        ref_ids, ref_words = _reference(tok, sentences)
        assert ids.tolist() == ref_ids and words.tolist() == ref_words
        assert 0 < len(enc._cache) <= 10
        lengths = [len(tok.encode(s, is_pretokenized=True, add_special_tokens=False).ids) for s in sentences]
        assert np.diff(starts).tolist() == lengths


def test_cache_stays_bounded():
    enc = WordEncoder(_wordpiece(), capacity=50)
    for i in range(40):
        enc.encode([[f"w{i}x{j}" for j in range(10)]])
        assert len(enc._cache) <= 50
    enc.encode([[f"many{j}" for j in range(80)]])  # one call with more distinct words than fit
    assert len(enc._cache) <= 50
    enc.clear()
    assert enc._cache == {}


class _ContextDependent:
    """A tokenizer whose first word encodes differently in a sentence than alone."""

    def __init__(self, tok: Tokenizer) -> None:
        self.tok = tok

    def encode_batch(self, batch, **kw):
        out = self.tok.encode_batch(batch, **kw)
        return [_Shifted(e) if len(b) > 1 else e for e, b in zip(out, batch)]


class _Shifted:
    def __init__(self, enc) -> None:
        self.ids = [i + 1 if w == 0 else i for i, w in zip(enc.ids, enc.word_ids)]
        self.word_ids = enc.word_ids


def test_a_context_dependent_tokenizer_is_used_uncached():
    tok = _ContextDependent(_wordpiece())
    enc = WordEncoder(tok)
    assert not enc.cached
    sentences = [s.split() for s in TEXT]
    ids, _, _ = enc.encode(sentences)
    ref_ids = [i for e in tok.encode_batch(sentences, is_pretokenized=True, add_special_tokens=False) for i in e.ids]
    assert ids.tolist() == ref_ids
    assert enc._cache == {}
