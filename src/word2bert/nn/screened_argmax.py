"""The exact argmax of a large linear layer without computing all of it: greedy decoding's next token.

Greedy search needs ``i* = argmax_i W_i . h`` for the last hidden row h (d,) and the output embedding
W (V, d). Computing every logit reads all of W per new token (77 MB for GPT-2's 50,257 x 384 in fp32),
which bounds decoding speed on a CPU. :class:`ArgmaxScreen` keeps an int8 copy of W,
``W~_i = s_i q_i`` (per-row scale s_i, a bfloat16 number, q_i in [-127, 127]), and per row
``e_i = ||W_i - W~_i||_2`` and ``n_i = ||W~_i||_2``. With h~ the bfloat16 rounding of h and a_i the
int8 kernel's value of W~_i . h~ (fp32 accumulation, bfloat16 output)::

    |W_i . h - a_i| <= e_i ||h|| + n_i ||h - h~|| + r_i = B_i                      (Cauchy-Schwarz)
    r_i = 4 (2^-8 |a_i| + 2^-20 n_i ||h~||) + d 2^-23 (n_i + e_i) ||h||

(r_i: four times the kernel's own rounding, measured on the machine when the screen is built, plus
the rounding of an fp32 product of length d). The argmax is among the candidates
``{i : a_i + B_i >= max_k (a_k - B_k)}`` — usually one to a few rows — whose logits are recomputed
in fp32; the largest wins (the smallest index on ties, as ``torch.argmax``). That reads 19 MB
instead of 77 and gives the token the full product gives (up to the float rounding by which any two
fp32 matrix products of the same numbers may differ, as before).
"""

from __future__ import annotations

import torch

from word2bert.nn import weight_cache

#: The screen serves up to this many rows at once (beyond, the full fp32 product is efficient).
MAX_ROWS = 16
_KERNEL_ERROR_FACTOR = 4.0


def _int8_kernel():
    return getattr(torch, "_weight_int8pack_mm", None)


class ArgmaxScreen:
    """An int8 screen of ``weight`` (V, d) finding ``argmax(h @ weight.T, -1)`` exactly (see module doc).

    Build it with :meth:`for_weight` (cached per weight tensor by :mod:`word2bert.nn.weight_cache`);
    that returns None where the screen cannot be used (not a float32 CPU matrix, no int8 kernel in
    this torch, or a kernel whose rounding exceeds the assumed bound on this machine)."""

    def __init__(self, weight: torch.Tensor):
        weight = weight.detach()
        self.weight = weight
        scales = (weight.abs().amax(1) / 127.0).clamp_min(torch.finfo(torch.float32).tiny).bfloat16()
        quantized = torch.round(weight / scales.float()[:, None]).clamp_(-127, 127)
        self.scales = scales
        self.quantized = quantized.to(torch.int8)
        dequantized = quantized.double() * scales.double()[:, None]
        self.row_error = (weight.double() - dequantized).norm(dim=1).float()
        self.row_norm = dequantized.norm(dim=1).float()

    @classmethod
    def for_weight(cls, weight: torch.Tensor) -> ArgmaxScreen | None:
        if _int8_kernel() is None or weight.dtype != torch.float32 or weight.device.type != "cpu" or weight.dim() != 2:
            return None
        return weight_cache.derived(weight, "argmax_screen", cls._checked)

    @classmethod
    def _checked(cls, weight: torch.Tensor) -> ArgmaxScreen | None:
        screen = cls(weight)
        return screen if screen.kernel_within_bound() else None

    def approximate(self, hidden_bf16: torch.Tensor) -> torch.Tensor:
        """a = the int8 kernel's W~ h~ for rows h~ (B, d) in bfloat16 -> (B, V) float32."""
        return _int8_kernel()(hidden_bf16, self.quantized, self.scales).float()

    def kernel_within_bound(self) -> bool:
        """Check on this machine that the kernel's rounding is within half of the bound assumed, on random
        rows of four magnitudes."""
        generator = torch.Generator().manual_seed(0)
        magnitudes = torch.tensor([[0.1], [1.0], [3.0], [10.0]])
        hidden = torch.randn(len(magnitudes), self.weight.shape[1], generator=generator) * magnitudes
        rounded = hidden.bfloat16()
        approximate = self.approximate(rounded).double()
        exact = (rounded.double() @ self.quantized.double().t()) * self.scales.double()[None, :]
        allowed = 2.0 * (2.0 ** -8 * approximate.abs()
                         + 2.0 ** -20 * self.row_norm.double()[None, :] * rounded.double().norm(dim=1, keepdim=True))
        return bool(((approximate - exact).abs() <= allowed).all())

    def candidates(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, columns) of every i with a_i + B_i >= max_k (a_k - B_k), for each row of ``hidden``."""
        rounded = hidden.bfloat16()
        approximate = self.approximate(rounded)
        rounded_values = rounded.float()
        hidden_norm = hidden.norm(dim=1, keepdim=True)
        rounding_norm = (hidden - rounded_values).norm(dim=1, keepdim=True)
        rounded_norm = rounded_values.norm(dim=1, keepdim=True)
        length = hidden.shape[1]
        bound = (self.row_error[None, :] * hidden_norm
                 + self.row_norm[None, :] * (rounding_norm + _KERNEL_ERROR_FACTOR * 2.0 ** -20 * rounded_norm)
                 + _KERNEL_ERROR_FACTOR * 2.0 ** -8 * approximate.abs()
                 + length * 2.0 ** -23 * (self.row_norm + self.row_error)[None, :] * hidden_norm)
        bound.mul_(1.0 + 1e-5).add_(1e-30)  # the bound's own fp32 rounding
        floor = (approximate - bound).amax(dim=1, keepdim=True)
        return (approximate + bound >= floor).nonzero(as_tuple=True)

    def argmax(self, hidden: torch.Tensor) -> torch.Tensor:
        """argmax_i W_i . h for each row h of ``hidden`` (B, d) float32 -> (B,) long."""
        rows, columns = self.candidates(hidden)
        logits = (self.weight[columns] * hidden[rows]).sum(1)
        batch = hidden.shape[0]
        best = torch.full((batch,), float("-inf")).scatter_reduce(0, rows, logits, "amax")
        winners = logits == best[rows]
        return torch.full((batch,), self.weight.shape[0], dtype=torch.long).scatter_reduce(
            0, rows[winners], columns[winners], "amin")


def screened_argmax(hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``argmax(hidden @ weight.T, -1)`` for ``hidden`` (B, d), through an :class:`ArgmaxScreen` when
    one can serve (float32 CPU, B <= MAX_ROWS, finite rows), else with the full product."""
    if hidden.dim() == 2 and hidden.shape[0] <= MAX_ROWS and hidden.dtype == torch.float32 \
            and bool(torch.isfinite(hidden).all()):
        screen = ArgmaxScreen.for_weight(weight)
        if screen is not None:
            return screen.argmax(hidden)
    return torch.mm(weight, hidden.t()).t().argmax(-1)


__all__ = ["MAX_ROWS", "ArgmaxScreen", "screened_argmax"]
