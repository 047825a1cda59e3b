"""Dropout (Srivastava et al. 2014) with a cheaper mask, and dropout fused into a residual addition.

Inverted dropout keeps each element with probability 1 - p' and scales what it keeps::

    dropout(x)_i = x_i * m_i,    m_i = [u_i >= t] * 65536 / (65536 - t),    t = round(65536 p),

with u_i uniform on {0, ..., 65535} (16 random bits), i.e. p' = t / 65536 (|p' - p| <= 2^-17) and
E[m_i] = 1 exactly, so the layer is the identity in expectation and at evaluation.
``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``, which dominates its cost on the
CPU; here the 16-bit draws come from numpy's PCG64 (its raw 64-bit outputs, each read as 4 draws of 16
bits), seeded from torch's default generator so that ``torch.manual_seed`` makes runs repeatable:
about 5x cheaper than ``bernoulli_`` for the same number of elements. ``residual + dropout(x)`` is
one ``addcmul`` (one pass instead of two); its gradient is ``d residual = g``, ``d x = g * m``.

:func:`set_mask_source` ``("torch")`` draws every mask as ``torch.nn.functional.dropout`` does instead,
``m = bernoulli(1 - p) / (1 - p)`` with p unrounded: from the same generator state the masks are then
those of ``torch.nn.Dropout`` and of SDPA's dropout, bit for bit, so that a model here and its
transformers counterpart that drop at the same places in the same order train identically with dropout
on (for comparisons; it costs the cheaper draw).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from word2bert.errors import Word2BertError

#: Dropout probabilities are rounded to multiples of 1 / MASK_LEVELS (16-bit uniform draws).
MASK_LEVELS = 65536
MASK_SOURCES = ("numpy", "torch")
_SOURCE = {"masks": "numpy"}


def set_mask_source(source: str) -> str:
    """Draw dropout masks with numpy's 16-bit draws (``"numpy"``, the default) or with torch's
    ``bernoulli_`` exactly as ``F.dropout`` (``"torch"``); returns the source in use before."""
    if source not in MASK_SOURCES:
        raise Word2BertError(f"dropout mask source must be one of {', '.join(MASK_SOURCES)}, got {source!r}")
    previous, _SOURCE["masks"] = _SOURCE["masks"], source
    return previous


def mask_source() -> str:
    """The source dropout masks are drawn from now (see :func:`set_mask_source`)."""
    return _SOURCE["masks"]


def check_probability(p: float, name: str = "dropout") -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise Word2BertError(f"{name} probability must be a number in [0, 1], got {p!r}")
    return float(p)


def _threshold(p: float) -> int:
    """t = round(65536 p): an element is dropped when its 16-bit draw u is below t."""
    return round(p * MASK_LEVELS)


def dropout_mask(like: torch.Tensor, p: float, shape=None) -> torch.Tensor:
    """m with the dtype and device of ``like`` and its shape (or ``shape``): m_i = [u_i >= t] * 65536 /
    (65536 - t) with t = round(65536 p) and u_i uniform 16-bit integers (0 <= t < 65536); with the
    ``"torch"`` source, m_i = bernoulli(1 - p) / (1 - p) as ``F.dropout`` draws it."""
    shape = tuple(like.shape) if shape is None else tuple(shape)
    if _draws_like_torch(p):
        return _torch_mask(like.new_empty(shape), p)
    return _mask_for_threshold(like, shape, _threshold(p))


def _mask_for_threshold(like: torch.Tensor, shape: tuple, threshold: int) -> torch.Tensor:
    seed = int(torch.randint(0, 2**62, (1,)).item())
    half = MASK_LEVELS // 2  # the draws read as signed int16: u - 32768
    count = math.prod(shape)
    words = np.random.default_rng(seed).bit_generator.random_raw((count + 3) // 4)  # 64 bits = four 16-bit draws
    bits = words.view(np.int16)[:count]
    keep = torch.from_numpy(bits).view(shape) >= threshold - half
    return keep.to(device=like.device, dtype=like.dtype).mul_(MASK_LEVELS / (MASK_LEVELS - threshold))


def _draws_like_torch(p: float) -> bool:
    """The ``"torch"`` source is on and p is one that ``F.dropout`` draws a mask for (0 < p < 1)."""
    return _SOURCE["masks"] == "torch" and 0.0 < p < 1.0


def _torch_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """``F.dropout``'s mask: bernoulli(1 - p) / (1 - p), drawn by ``bernoulli_`` from torch's generator."""
    return torch.empty_like(like).bernoulli_(1 - p).div_(1 - p)


def _mask_or_none(x: torch.Tensor, p: float, training: bool) -> torch.Tensor | None:
    """The mask to multiply ``x`` by, or None where dropout is the identity (evaluation, or t = 0)."""
    if training and _draws_like_torch(p):
        return _torch_mask(x, p)
    threshold = _threshold(p)
    if not training or threshold == 0:
        return None
    if threshold >= MASK_LEVELS:
        return torch.zeros_like(x)
    return _mask_for_threshold(x, tuple(x.shape), threshold)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """x * m (see :func:`dropout_mask`) while training; x itself at evaluation and for p < 2^-17."""
    mask = _mask_or_none(x, p, training)
    return x if mask is None else x * mask


def dropout_add(residual: torch.Tensor, x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """residual + dropout(x), in one pass (``addcmul``) when a mask is drawn."""
    mask = _mask_or_none(x, p, training)
    return residual + x if mask is None else torch.addcmul(residual, x, mask)


class Dropout(nn.Module):
    """Drop-in replacement of ``torch.nn.Dropout(p)`` (same state dict: none) drawing its mask with
    :func:`dropout_mask`; ``add(residual, x)`` is ``residual + self(x)`` fused."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = check_probability(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def add(self, residual: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return dropout_add(residual, x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


__all__ = ["MASK_LEVELS", "MASK_SOURCES", "Dropout", "check_probability", "dropout", "dropout_add", "dropout_mask",
           "mask_source", "set_mask_source"]
