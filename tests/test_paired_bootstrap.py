"""benchmarks/paired_bootstrap.py: its counts are seqeval's, and the bootstrap reads a gap right."""
from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("seqeval")

from benchmarks.paired_bootstrap import counts, f1_of, paired_bootstrap  # noqa: E402


def _tags(rng: random.Random, n: int) -> list[str]:
    out, inside = [], None
    for _ in range(n):
        r = rng.random()
        if r < 0.15:
            inside = rng.choice(["PER", "LOC"])
            out.append("B-" + inside)
        elif r < 0.3 and inside:
            out.append("I-" + inside)
        else:
            inside = None
            out.append("O")
    return out


def test_summed_counts_give_seqevals_micro_f1():
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    rng = random.Random(3)
    gold = [_tags(rng, rng.randint(1, 12)) for _ in range(200)]
    pred = [g if rng.random() < 0.6 else _tags(rng, len(g)) for g in gold]
    pred[0] = ["I-PER"] * len(pred[0])  # invalid in strict IOB2: no entity, as seqeval counts it
    want = f1_score(gold, pred, mode="strict", scheme=IOB2)
    assert f1_of(counts(gold, pred).sum(0)) == pytest.approx(want, abs=1e-12)


def test_bootstrap_of_a_system_against_itself_and_a_worse_one():
    rng = random.Random(5)
    gold = [_tags(rng, 10) for _ in range(300)]
    good = counts(gold, gold)
    worse = counts(gold, [g if k % 3 else ["O"] * len(g) for k, g in enumerate(gold)])
    same = paired_bootstrap(good, good, 200, 0)
    assert same["difference"] == 0 and same["ci95"] == [0.0, 0.0] and same["share_ours_at_least_as_good"] == 1.0
    gap = paired_bootstrap(good, worse, 200, 0)
    assert gap["difference"] > 0 and gap["ci95"][0] > 0 and gap["share_ours_at_least_as_good"] == 1.0
    back = paired_bootstrap(worse, good, 200, 0)
    assert back["ci95"][1] < 0 and back["share_ours_at_least_as_good"] == 0.0
    assert np.isclose(back["difference"], -gap["difference"])
