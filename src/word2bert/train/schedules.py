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


def slanted_triangular(step: int, warmup_steps: int, total_steps: int, ratio: float = 32.0) -> float:
    """ULMFiT's slanted triangular rates (Howard & Ruder 2018, eq. 3), the cut at ``cut = warmup_steps``
    (the trainer's ``warmup_steps=0.1`` is ``cut_frac = 0.1``)::

        p = t / cut                      for t < cut
        p = 1 - (t - cut) / (T - cut)    after it   (the paper's cut * (1 / cut_frac - 1))
        lr(t) = peak * (1 + p * (ratio - 1)) / ratio,   ratio = 32
    """
    if warmup_steps > 0 and step < warmup_steps:
        p = step / warmup_steps
    elif total_steps <= warmup_steps:
        p = 1.0
    else:
        p = max(0.0, 1.0 - (step - warmup_steps) / (total_steps - warmup_steps))
    return (1.0 + p * (ratio - 1.0)) / ratio


SCHEDULES["slanted_triangular"] = slanted_triangular


def make_scheduler(optimizer: torch.optim.Optimizer, name: str, warmup_steps: int, total_steps: int):
    """A ``LambdaLR`` applying the named schedule; its state goes into checkpoints."""
    if name not in SCHEDULES:
        raise Word2BertError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    if warmup_steps < 0:
        raise Word2BertError(f"parameter warmup_steps={warmup_steps} must be >= 0")
    function = SCHEDULES[name]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: function(step, warmup_steps, total_steps))


def inverse_sqrt(step: int, warmup_steps: int, total_steps: int) -> float:
    """The Transformer's schedule (Vaswani et al. 2017, eq. 3) as a multiplier of its peak rate::

        lr(t) = d^-0.5 * min(t^-0.5, t * w^-1.5) = peak * min(t / w, sqrt(w / t)),  peak = (d * w)^-0.5

    linear warm-up over ``w`` steps, then decay with the inverse square root of the step; ``total_steps``
    is not used (the rate never reaches 0). :func:`inverse_sqrt_peak` gives the paper's peak rate.
    """
    if step <= 0:
        return 0.0 if warmup_steps > 0 else 1.0
    if warmup_steps <= 0:
        return 1.0 / step**0.5
    return min(step / warmup_steps, (warmup_steps / step) ** 0.5)


def inverse_sqrt_peak(d_model: int, warmup_steps: int) -> float:
    """The peak learning rate of the paper's schedule, ``(d_model * warmup_steps)^-0.5`` (reached at step w)."""
    if d_model <= 0 or warmup_steps <= 0:
        raise Word2BertError(f"inverse_sqrt_peak needs d_model > 0 and warmup_steps > 0, got {d_model}, {warmup_steps}")
    return (d_model * warmup_steps) ** -0.5


SCHEDULES["inverse_sqrt"] = inverse_sqrt
