"""Checkpoint selection on the evaluation split: the scorer must give the F1 the runtime's
decoding would, also for sentences cut into several windows, and the selector must hand back
the weights it scored best."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from quantize.encode import encode
from quantize.selection import BestCheckpoint, DevScorer
from quantize.tokenizer_train import special_ids, train_tokenizer

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _corpus() -> tuple[list[list[str]], list[list[str]]]:
    rng = np.random.default_rng(3)
    names, places = ["ada", "obi", "musa"], ["kano", "lagos"]
    words, tags = [], []
    for _ in range(12):
        ws, ts = [], []
        for _ in range(int(rng.integers(3, 40))):  # long ones span several 16-token windows
            r = rng.random()
            if r < 0.15:
                ws += [str(rng.choice(names)), "okafor"]
                ts += ["B-PER", "I-PER"]
            elif r < 0.25:
                ws.append(str(rng.choice(places)))
                ts.append("B-LOC")
            else:
                ws.append("word" + str(int(rng.integers(0, 50))))
                ts.append("O")
        words.append(ws)
        tags.append(ts)
    return words, tags


class Oracle(torch.nn.Module):
    """Puts all mass on the gold label of each window position (or on a fixed wrong one)."""

    def __init__(self, table: dict[tuple[int, ...], np.ndarray], wrong: bool = False) -> None:
        super().__init__()
        self.table, self.wrong = table, wrong
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = torch.full((*input_ids.shape, len(LABELS)), -20.0)
        for r in range(input_ids.shape[0]):
            key = tuple(int(x) for x in input_ids[r] if int(x) != 0)
            gold = self.table[key]
            for pos, lab in enumerate(gold):
                out[r, pos, 0 if self.wrong else max(int(lab), 0)] = 0.0
        return out


@pytest.fixture(scope="module")
def setup() -> dict:
    words, tags = _corpus()
    tok = train_tokenizer(words, "bert", 200, False)
    ids = special_ids(tok, "bert")
    label2id = {lab: i for i, lab in enumerate(LABELS)}
    gold_windows = encode(tok, words, tags, label2id, 16, 4, ids["bos_id"], ids["eos_id"])
    windows = encode(tok, words, None, None, 16, 4, ids["bos_id"], ids["eos_id"])
    assert len(windows) > len(words)  # some sentences really are cut into several windows
    table = {tuple(int(x) for x in w.ids): w.labels for w in gold_windows}
    return {"words": words, "tags": tags, "windows": windows, "table": table, "pad": ids["pad_id"]}


def test_scorer_gives_full_marks_to_gold_and_none_to_all_o(setup: dict):
    scorer = DevScorer(setup["windows"], setup["tags"], LABELS, setup["pad"], lambda m, b: m(b["input_ids"]))
    assert scorer(Oracle(setup["table"])) == 1.0
    assert scorer(Oracle(setup["table"], wrong=True)) == 0.0


def test_windows_know_their_sentence_and_first_word(setup: dict):
    for w in setup["windows"]:
        assert 0 <= w.sentence < len(setup["words"])
        assert w.first_word + int(w.first.sum()) <= len(setup["words"][w.sentence])


def test_best_checkpoint_restores_the_best_weights():
    model = torch.nn.Linear(2, 1)
    scores = iter([0.2, 0.7, 0.5])
    best = BestCheckpoint(lambda m: next(scores), every=10)
    kept = None
    for step, value in ((0, 1.0), (10, 2.0), (20, 3.0)):
        with torch.no_grad():
            model.weight.fill_(value)
        best.check(model, step)
        if step == 10:
            kept = model.weight.detach().clone()
    facts = best.restore(model)
    assert torch.equal(model.weight, kept)
    assert facts["selected_step"] == 10 and facts["selected_dev_f1"] == 0.7
    assert [s for s, _ in facts["dev_f1_history"]] == [0, 10, 20]
    assert best.due(0) and best.due(20) and not best.due(15)
