"""Student initialisation from the teacher, and the distillation loss going down."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from rich.console import Console

from quantize.distill import distill, teacher_logits
from edge_finer.windows import word_windows
from quantize.encode import encode
from quantize.progress import Reporter
from quantize.student import default_layer_map, init_student, projection, student_config
from quantize.teacher import make_config, model_classes
from quantize.tokenizer_train import special_ids, train_tokenizer
from quantize.train import Schedule
from quantize_helpers import one_torch_thread, LABELS, synthetic_sentences


_torch_threads = pytest.fixture(autouse=True)(one_torch_thread)


def _teacher(family: str, hidden: int = 64, layers: int = 4):
    sents = synthetic_sentences(120, seed=4)
    tok = train_tokenizer([t for t, _ in sents], family, 300)
    ids = special_ids(tok, family)
    cfg = make_config(family, tok.get_vocab_size(), layers, hidden, 4, 2 * hidden, LABELS, 32, ids, 0.0)
    torch.manual_seed(0)
    return model_classes(family)[1](cfg).eval(), tok, ids, sents


def test_default_layer_map() -> None:
    assert default_layer_map(12, 6) == [1, 3, 5, 7, 9, 11]
    assert default_layer_map(4, 2) == [1, 3]
    assert default_layer_map(2, 2) == [0, 1]
    assert default_layer_map(2, 3) == [0, 1, 1]


def test_projection_is_orthonormal() -> None:
    emb = torch.randn(200, 64)
    p = projection(emb, 16)
    assert p.shape == (64, 16)
    torch.testing.assert_close(p.T @ p, torch.eye(16), atol=1e-5, rtol=0)
    assert projection(emb, 64) is None


@pytest.mark.parametrize("family", ["bert", "xlm-roberta"])
def test_same_shape_student_copies_the_teacher(family: str) -> None:
    teacher, _, _, _ = _teacher(family, layers=2)
    cfg = student_config(teacher.config, 2, 64, 4, 128, 32, 0.0)
    student, facts = init_student(teacher, cfg, None, seed=1)
    assert facts["layer_map"] == [0, 1] and facts["hidden_projection"] == "none"
    ids = torch.randint(5, teacher.config.vocab_size, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(student.eval()(input_ids=ids).logits, teacher(input_ids=ids).logits)


@pytest.mark.parametrize("family", ["bert", "xlm-roberta"])
def test_smaller_student_is_projected_and_learns(family: str) -> None:
    teacher, tok, ids, sents = _teacher(family)
    cfg = student_config(teacher.config, 2, 32, 2, 48, 32, 0.0)
    student, facts = init_student(teacher, cfg, None, seed=1)
    assert facts["layer_map"] == [1, 3] and "SVD" in facts["hidden_projection"]
    emb_t = teacher.get_input_embeddings().weight
    p = projection(emb_t.detach(), 32)
    torch.testing.assert_close(student.get_input_embeddings().weight.detach(), emb_t.detach() @ p)
    label2id = {lab: i for i, lab in enumerate(LABELS)}
    windows = encode(tok, [t for t, _ in sents], [g for _, g in sents], label2id, 32, 8, ids["bos_id"], ids["eos_id"])
    rep = Reporter(Console(file=open("/dev/null", "w")))  # noqa: SIM115
    soft = teacher_logits(teacher, windows, ids["pad_id"], rep)
    assert sum(s.shape[0] for s in soft) == sum(int(w.first.sum()) for w in windows)
    sched = Schedule(epochs=0, max_steps=25, batch_size=16, learning_rate=3e-3, warmup=0.1, weight_decay=0.0,
                     max_minutes=0)
    facts = distill(student, windows, soft, sched, ids["pad_id"], 0, 2.0, 0.5, rep)
    assert facts["steps"] == 25 and np.isfinite(facts["final_loss"])


def test_windows_cover_long_sentences_on_word_boundaries() -> None:
    wids = np.repeat(np.arange(30), 2)  # 30 words of 2 subwords
    spans = word_windows(wids, cap=10, stride=4)
    assert spans[0][0] == 0 and spans[-1][1] == 60
    for s, e in spans:
        assert e - s <= 10 and s % 2 == 0 and e % 2 == 0
    for (s1, e1), (s2, _) in zip(spans, spans[1:]):
        assert s1 < s2 <= e1  # overlapping or touching, always advancing
    assert word_windows(np.arange(5), 10, 2) == [(0, 5)]
