"""Learning-rate schedules (multipliers of the peak rate, for ``torch.optim.lr_scheduler.LambdaLR``)."""

from __future__ import annotations

import torch

from word2bert.errors import Word2BertError


def linear_warmup_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    """BERT's schedule: ``lr(t) = peak * t / w`` for ``t < w``, then ``peak * (T - t) / (T - w)``, floored at 0.

    ``t`` is the number of optimizer steps taken, ``w`` the warm-up steps, ``T`` the total.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return step / warmup_steps
    if total_steps <= warmup_steps:
        return 1.0
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))


def constant_with_warmup(step: int, warmup_steps: int, total_steps: int) -> float:
    """``lr(t) = peak * min(1, t / w)``."""
    return min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0


SCHEDULES = {"linear": linear_warmup_decay, "constant": constant_with_warmup}


def make_scheduler(optimizer: torch.optim.Optimizer, name: str, warmup_steps: int, total_steps: int):
    """A ``LambdaLR`` applying the named schedule; its state goes into checkpoints."""
    if name not in SCHEDULES:
        raise Word2BertError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    if warmup_steps < 0:
        raise Word2BertError(f"parameter warmup_steps={warmup_steps} must be >= 0")
    function = SCHEDULES[name]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: function(step, warmup_steps, total_steps))
