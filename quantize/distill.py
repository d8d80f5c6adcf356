"""Knowledge distillation: the student learns the teacher's softened label distributions.

Why both losses: the teacher's temperature-softened logits (KL divergence, scaled by T² so its
gradients keep their size as T changes) carry which wrong labels are *almost* right, while the
gold cross-entropy keeps the student anchored where the teacher is wrong.  Extra unlabelled
text, when a recipe lists some, contributes the distillation term only.  Both terms sit on the
first subword of each word, the only position the runtime reads.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F

from .encode import IGNORE, Window, batches, drop_forms, drop_words
from .featured import forward_kwargs
from .progress import Reporter
from .train import Schedule, fit

if TYPE_CHECKING:
    from .selection import BestCheckpoint


@torch.no_grad()
def teacher_logits(teacher: torch.nn.Module, windows: Sequence[Window], pad_id: int,
                   reporter: Reporter, batch_size: int = 64) -> list[torch.Tensor]:
    """Teacher logits at each window's first-subword positions (``[n_first, labels]`` each)."""
    out: list[torch.Tensor | None] = [None] * len(windows)
    teacher.eval()
    n_batches = (len(windows) + batch_size - 1) // batch_size
    with reporter.bar("teacher labels", n_batches) as bar:
        for idx, batch in batches(windows, batch_size, pad_id, rng=None):
            logits = teacher(**forward_kwargs(teacher, batch)).logits.float().cpu()
            for row, i in enumerate(idx):
                out[i] = logits[row][batch["first"][row]].clone()
            bar.advance(1)
    assert all(t is not None for t in out)
    return out  # type: ignore[return-value]


def distill(student: torch.nn.Module, windows: Sequence[Window], soft: Sequence[torch.Tensor],
            sched: Schedule, pad_id: int, seed: int, temperature: float, alpha: float,
            reporter: Reporter, word_dropout: float = 0.0, unk_id: int | None = None,
            select: "BestCheckpoint | None" = None, form_dropout: float = 0.0,
            form_columns: Sequence[int] = ()) -> dict[str, float]:
    """Train ``student`` in place on ``alpha``·CE(gold) + (1−``alpha``)·T²·KL(teacher ‖ student).

    The teacher's targets come from clean inputs; ``word_dropout`` hides subword ids from the
    student only (it must then infer the teacher's answer from context and word features);
    ``form_dropout`` hides whole words from it, ids and the feature ``form_columns``."""
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(m: torch.nn.Module, batch: dict[str, torch.Tensor], idx: list[int]) -> torch.Tensor:
        if word_dropout > 0 and unk_id is not None:
            batch = drop_words(batch, word_dropout, unk_id, gen)
        if form_dropout > 0 and unk_id is not None:
            batch = drop_forms(batch, form_dropout, unk_id, form_columns, gen)
        logits = m(**forward_kwargs(m, batch)).logits
        first = batch["first"].to(logits.device)
        s = logits[first]  # row-major: window by window, positions ascending, as `soft` was built
        t = torch.cat([soft[i] for i in idx], dim=0).to(logits.device)
        kd = F.kl_div(F.log_softmax(s / temperature, dim=-1), F.log_softmax(t / temperature, dim=-1),
                      reduction="batchmean", log_target=True) * temperature ** 2
        gold = batch["labels"].to(logits.device)[first]
        if alpha > 0 and bool((gold != IGNORE).any()):
            ce = F.cross_entropy(s, gold, ignore_index=IGNORE)
            return alpha * ce + (1 - alpha) * kd
        return kd  # unlabelled rows (or alpha = 1 with no gold in the batch): distillation only

    return fit(student, windows, sched, pad_id, seed, loss_fn, reporter, "student", select)
