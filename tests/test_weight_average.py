"""The moving average of the weights (``teacher.average`` / ``student.average``): what training
returns, and what the dev selection scores, must be the average of the steps' weights, not the
last step's weights."""
from __future__ import annotations

import io

import numpy as np
import torch
from rich.console import Console

from quantize.encode import Window
from quantize.progress import Reporter
from quantize.selection import BestCheckpoint
from quantize.train import Schedule, fit, seed_everything


def _windows(n: int = 40) -> list[Window]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        ids = rng.integers(1, 20, size=6)
        out.append(Window(ids=ids, labels=(ids % 3).astype(np.int64), first=np.ones(6, dtype=bool)))
    return out


def _model() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Embedding(20, 8), torch.nn.Linear(8, 3))


def _loss(recorded: list[dict[str, torch.Tensor]] | None):
    def loss_fn(model: torch.nn.Module, batch: dict[str, torch.Tensor], _idx: list[int]) -> torch.Tensor:
        if recorded is not None:  # the weights this step starts from: the previous step's result
            recorded.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        logits = model(batch["input_ids"])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 3), batch["labels"].reshape(-1))
    return loss_fn


def _train(average: float, recorded=None, select=None) -> tuple[torch.nn.Module, dict]:
    seed_everything(5, 1)
    model = _model()
    sched = Schedule(epochs=3, max_steps=0, batch_size=8, learning_rate=0.05, warmup=0.0, weight_decay=0.0,
                     max_minutes=0, average=average)
    rep = Reporter(Console(file=io.StringIO()))
    facts = fit(model, _windows(), sched, 0, 7, _loss(recorded), rep, "probe", select)
    return model, facts


def test_training_returns_the_moving_average_of_the_steps_weights():
    steps: list[dict[str, torch.Tensor]] = []
    last, facts = _train(0.0, recorded=steps)
    assert facts["steps"] == 15 and len(steps) == 15
    trajectory = steps[1:] + [last.state_dict()]  # the weights after each of the 15 steps
    decay = 0.8
    expected = {k: v.clone() for k, v in trajectory[0].items()}  # the first update copies
    for w in trajectory[1:]:
        for k in expected:
            expected[k] = decay * expected[k] + (1 - decay) * w[k]
    averaged, facts = _train(decay)
    assert facts["weight_average"] == decay
    for k, v in averaged.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=1e-5, atol=1e-6)
        assert not torch.allclose(v, last.state_dict()[k])  # not the last step's weights


def test_dev_selection_scores_the_averaged_weights():
    seen: list[torch.Tensor] = []

    def scorer(model: torch.nn.Module) -> float:
        seen.append(model[1].weight.detach().clone())
        return -float(len(seen))  # the first scoring (step 0) is the best, so it is restored

    plain, _ = _train(0.0)
    model, facts = _train(0.9, select=BestCheckpoint(scorer, every=5))
    assert facts["selected_step"] == 0 and len(seen) == 4  # steps 0, 5, 10 and the end (15)
    assert torch.equal(model[1].weight, seen[0])
    assert not torch.allclose(seen[-1], plain[1].weight)  # the end's scoring saw the average, not the last weights
