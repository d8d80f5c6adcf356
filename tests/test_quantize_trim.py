"""Vocabulary trimming keeps tokenisation exact (WordPiece and Unigram) and the embeddings aligned."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edge_finer.pretokenize import words
from quantize.teacher import load_model
from quantize.tokenizer_train import load_backend_tokenizer, special_ids, special_roles, train_tokenizer
from quantize.trim import first_mismatch, plan_keep, rewrite_tokenizer, trim_embeddings
from quantize_helpers import one_torch_thread, SHARED, make_teacher, read_shared_sample, synthetic_sentences


_torch_threads = pytest.fixture(autouse=True)(one_torch_thread)


def _corpus(n: int = 200, seed: int = 1) -> list[list[str]]:
    return [[w for t in toks for w in words(t)] for toks, _ in synthetic_sentences(n, seed)]


@pytest.mark.parametrize("family", ["bert", "xlm-roberta"])
def test_trim_preserves_tokenisation_of_its_corpus(family: str) -> None:
    big = _corpus(400, seed=1) + [["unrelated", "vocabulary", "extends", "beyond", "trimming", "corpus"]] * 3
    tok = train_tokenizer(big, family, vocab_size=300)
    corpus = _corpus(120, seed=2)
    ids = special_ids(tok, family)
    keep = plan_keep(tok, corpus, "corpus", ids["pad_id"])
    new = rewrite_tokenizer(tok, keep)
    assert new.get_vocab_size() == len(keep) < tok.get_vocab_size()
    assert first_mismatch(tok, new, corpus) is None
    # same strings token by token, and the ids map back through `keep`
    for ws in corpus[:30]:
        a = tok.encode(ws, is_pretokenized=True, add_special_tokens=False)
        b = new.encode(ws, is_pretokenized=True, add_special_tokens=False)
        assert a.tokens == b.tokens
        assert [keep[i] for i in b.ids] == a.ids
    # specials keep working and keep their strings
    for key in ("bos_id", "eos_id", "pad_id"):
        assert new.id_to_token(special_ids(new, family)[key]) == tok.id_to_token(ids[key])
    with_specials = new.encode(corpus[0], is_pretokenized=True, add_special_tokens=True)
    assert with_specials.tokens[0] == tok.id_to_token(ids["bos_id"])


def test_trim_keeps_single_characters_seen() -> None:
    tok = train_tokenizer(_corpus(300), "bert", vocab_size=300)
    corpus = _corpus(50, seed=5)
    new = rewrite_tokenizer(tok, plan_keep(tok, corpus, "corpus", 0))
    vocab = new.get_vocab()
    chars = {c for ws in corpus for w in ws for c in w}
    for c in chars:
        if c in tok.get_vocab():
            assert c in vocab
        if "##" + c in tok.get_vocab():
            assert "##" + c in vocab
    # an unseen word made of seen characters still tokenises without [UNK]
    enc = new.encode(["lopezanna"], is_pretokenized=True, add_special_tokens=False)
    assert "[UNK]" not in enc.tokens


@pytest.mark.parametrize("family", ["bert", "xlm-roberta"])
def test_trim_user_teacher_embeddings_follow_the_vocabulary(tmp_path: Path, family: str) -> None:
    sents = synthetic_sentences(200, seed=3)
    folder = make_teacher(tmp_path / family, family, sents + [(["zzz", "qqq", "unused", "words"], ["O"] * 4)] * 5)
    model = load_model(folder)
    tok = load_backend_tokenizer(folder)
    ids = special_ids(tok, family, special_roles(folder))
    corpus = [[w for t in toks for w in words(t)] for toks, _ in sents[:80]]
    keep = plan_keep(tok, corpus, "corpus", ids["pad_id"])
    new_tok = rewrite_tokenizer(tok, keep)
    assert first_mismatch(tok, new_tok, corpus) is None
    old_emb = model.get_input_embeddings().weight.detach().clone()
    new_ids = trim_embeddings(model, keep, ids)
    assert model.config.vocab_size == len(keep)
    assert torch.equal(model.get_input_embeddings().weight, old_emb[keep])
    assert new_ids["pad_id"] == ids["pad_id"] or family == "bert"
    # logits on the corpus are unchanged by trimming
    original = load_model(folder)
    ws = corpus[0]
    a = tok.encode(ws, is_pretokenized=True)
    b = new_tok.encode(ws, is_pretokenized=True)
    with torch.no_grad():
        la = original(input_ids=torch.tensor([a.ids])).logits
        lb = model(input_ids=torch.tensor([b.ids])).logits
    np.testing.assert_allclose(la.numpy(), lb.numpy(), atol=1e-5)


def test_trim_on_real_sample_indic_unigram() -> None:
    if not (SHARED / "il-ner/hi/train.conll").is_file():
        pytest.skip("shared data not present")
    sample = read_shared_sample("il-ner/hi/train.conll", 300)
    corpus = [[w for t in toks for w in words(t)] for toks, _ in sample]
    tok = train_tokenizer(corpus, "xlm-roberta", vocab_size=2000)
    part = corpus[:100]
    keep = plan_keep(tok, part, "corpus", special_ids(tok, "xlm-roberta")["pad_id"])
    new = rewrite_tokenizer(tok, keep)
    assert len(keep) < tok.get_vocab_size()
    assert first_mismatch(tok, new, part) is None
