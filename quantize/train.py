"""The one training loop both the teacher and the student use.

Why shared: seeding, the step budget (epochs, ``max_steps``, ``max_minutes``), the warm-up
schedule and progress reporting must behave the same for both models, and a time cap is what
keeps a recipe's build time predictable on a small machine.
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from .encode import Window, batches
from .progress import Reporter

if TYPE_CHECKING:
    from .selection import BestCheckpoint


@dataclass
class Schedule:
    epochs: float
    max_steps: int
    batch_size: int
    learning_rate: float
    warmup: float
    weight_decay: float
    max_minutes: float
    # Decay of an exponential moving average of the weights (0: off).  With it the average, not
    # the last step's weights, is what the dev selection scores and what training returns.
    average: float = 0.0


def cores() -> int:
    """Cores this process may use (affinity-aware)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def build_threads(requested: int) -> int:
    """Threads for training and scoring: ``requested``, or the cores other work leaves idle.

    Why not always all cores: on a shared machine a torch thread pool that must wait for a busy
    core runs several times slower than one thread (measured 7× on 2 cores with one taken).
    """
    return requested if requested > 0 else idle_cores()


def idle_cores() -> int:
    """Cores this process may use less those the load average says are busy (at least 1)."""
    try:
        busy = int(round(os.getloadavg()[0]))
    except OSError:
        busy = 0
    return max(1, min(cores(), cores() - busy))


def lr_factor(frac: float, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` of training, then linear decay to zero."""
    if warmup > 0 and frac < warmup:
        return max(frac / warmup, 1e-3)
    return max(0.0, (1.0 - frac) / max(1e-9, 1.0 - warmup))


def seed_everything(seed: int, threads: int) -> None:
    """Same seed, same build: Python, NumPy and torch generators, deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(threads)


def fit(model: torch.nn.Module, windows: Sequence[Window], sched: Schedule, pad_id: int, seed: int,
        loss_fn: Callable[[torch.nn.Module, dict[str, torch.Tensor], list[int]], torch.Tensor],
        reporter: Reporter, what: str, select: "BestCheckpoint | None" = None) -> dict[str, float]:
    """Train ``model`` in place; returns facts for the manifest (steps, minutes, final loss).

    With ``select`` the model is scored on the evaluation split at the steps it asks for (and
    at the end), and the best-scoring weights are what the model holds on return."""
    per_epoch = max(1, math.ceil(len(windows) / sched.batch_size))
    total = max(1, int(math.ceil(per_epoch * sched.epochs)))
    if sched.max_steps > 0:
        total = min(total, sched.max_steps) if sched.epochs > 0 else sched.max_steps
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": sched.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=sched.learning_rate)
    cap = sched.max_minutes * 60 if sched.max_minutes > 0 else math.inf
    started = time.monotonic()
    rng = random.Random(seed)
    model.train()
    step, ema = 0, None
    stopped = "steps"
    averaged = weight_average(model, sched.average)
    scored = model if averaged is None else averaged.module  # what selection sees and training returns
    if select is not None and select.due(0):
        select.check(scored, 0)
    with reporter.bar(what, total) as bar:
        while step < total:
            for idx, batch in batches(windows, sched.batch_size, pad_id, rng):
                # Progress is steps done or time used, whichever is further along: a time cap
                # then still ends with the learning rate annealed to zero, not cut off mid-way.
                frac = max(step / total, (time.monotonic() - started) / cap)
                for group in opt.param_groups:
                    group["lr"] = sched.learning_rate * lr_factor(frac, sched.warmup)
                loss = loss_fn(model, batch, idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                step += 1
                ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
                if select is not None and select.due(step) and step < total:
                    f1 = select.check(scored, step)
                    reporter.note(f"{what} step {step}: dev F1 {f1:.4f} (best {select.best_f1:.4f} at {select.best_step})")
                bar.advance(1, f"loss {ema:.4f}")
                if step >= total:
                    break
                if time.monotonic() - started > cap:
                    stopped = "time cap"
                    break
            if stopped == "time cap":
                break
        bar.finish(f"loss {ema:.4f} ({stopped})" if ema is not None else "")
    facts = {"steps": step, "planned_steps": total, "minutes": round((time.monotonic() - started) / 60, 2),
             "final_loss": round(float(ema or 0.0), 5), "stopped_by": stopped}
    if averaged is not None:
        facts["weight_average"] = sched.average
    if select is not None:
        final = select.check(scored, step)
        facts.update(select.restore(model))
        reporter.note(f"{what}: final dev F1 {final:.4f}; kept step {select.best_step} "
                      f"(dev F1 {select.best_f1:.4f})")
    elif averaged is not None:
        model.load_state_dict(averaged.module.state_dict())
    model.eval()
    return facts


def weight_average(model: torch.nn.Module, decay: float) -> "torch.optim.swa_utils.AveragedModel | None":
    """An exponential moving average of ``model``'s weights (and buffers), or None for ``decay`` 0.

    Why: these models peak a few epochs in on a few thousand sentences, and the weights of any one
    step carry that step's batch noise; an average over the last ~1/(1-decay) steps is a smoother
    point of the same run, at the cost of one copy of the weights and one lerp per step."""
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
