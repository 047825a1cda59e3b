"""The exact argmax of a large linear layer without computing all of it: greedy decoding's next token.

Greedy search needs ``i* = argmax_i W_i . h`` for the last hidden rows h (B, d) and the output embedding
W (V, d). Computing every logit reads all of W per new token (77 MB for GPT-2's 50,257 x 384 in fp32)
and costs B V d multiply-adds, which bounds decoding speed on a CPU. An :class:`ArgmaxScreen` keeps an
int8 copy of W, ``W~_i = s_i q_i`` (per-row scale s_i, q_i in [-127, 127]) with, per row,
``e_i = ||W_i - W~_i||_2`` and ``n_i = ||W~_i||_2``; it rounds h to h~ and takes a_i, the int8 kernel's
value of W~_i . h~. Then, by Cauchy-Schwarz, for the fp32 logit z_i = W_i . h::

    |z_i - a_i| <= e_i ||h|| + n_i ||h - h~|| + r_i + d 2^-23 (n_i + e_i) ||h|| = B_i

with r_i the kernel's own rounding (a bound assumed per kernel, and checked on the machine, with half
of it as the limit, when the screen is built) and the last term the rounding of an fp32 product of
length d. The argmax is among the candidates ``{i : a_i + B_i >= max_k (a_k - B_k)}`` (the true
argmax i* has a_i* + B_i* >= z_i* >= z_k >= a_k - B_k), usually one to a few rows, whose logits are
recomputed in fp32; the largest wins (the smallest index on ties, as ``torch.argmax``). The token is
the one the full product gives (up to the float rounding by which any two fp32 matrix products of the
same numbers may differ).

Two int8 kernels, tried in this order (:data:`KERNELS`):

* ``"uint8_dynamic"``: the quantised engine's dynamic linear layer (fbgemm on x86: uint8 activations
  times int8 weights, exact int32 sums, one fp32 rescaling). Its rows h~ are h rounded to a grid of
  128 levels, ``h~ = s (q - z)``, q in [0, 127] (7 bits: two u8 x s8 products summed in int16 cannot
  saturate); the grid is chosen here and forced on the kernel by a guard row holding both ends of the
  grid, so that the kernel's own requantisation of h~ is exact and ``||h - h~||`` is known. Kernel
  rounding assumed: ``r_i = 4 * 2^-22 (|a_i| + n_i ||h~||)`` (two fp32 products; the kernel's scale,
  recomputed from the grid's ends, within 2^-22 of s). Its B_i are replaced by their maximum over i
  per row, which needs one pass over the (B, V) scores instead of five.
* ``"int8_weight_only"``: ``torch._weight_int8pack_mm`` (bfloat16 activations h~ = bf16(h), int8
  weights with bfloat16 scales, bfloat16 output): ``r_i = 4 (2^-8 |a_i| + 2^-20 n_i ||h~||)``.
"""

from __future__ import annotations

import warnings

import torch

from word2bert.nn import weight_cache

#: The screen serves up to this many rows at once (beyond, the full fp32 product is efficient).
MAX_ROWS = 16
#: The int8 kernels tried, in order of preference (the first one available and checked is used).
KERNELS = ("uint8_dynamic", "int8_weight_only")
_KERNEL_ERROR_FACTOR = 4.0
_GRID_LEVELS = 127  # q in [0, 127]: 7-bit activations (see the module doc)


def _int8_kernel():
    return getattr(torch, "_weight_int8pack_mm", None)


def _dynamic_kernel():
    ops = getattr(torch.ops, "quantized", None)
    try:
        return ops.linear_prepack, ops.linear_dynamic
    except (AttributeError, RuntimeError):
        return None


def _bound(hidden: torch.Tensor, rounded: torch.Tensor, error, norm, kernel: torch.Tensor) -> torch.Tensor:
    """``B = e ||h|| + n ||h - h~|| + r + d 2^-23 (n + e) ||h||`` per row of ``hidden`` (module doc), with
    ``e``, ``n`` the rows' quantisation errors and norms (per output row, or their maxima) and ``r`` the
    kernel's rounding."""
    hidden_norm = hidden.norm(dim=1, keepdim=True)
    rounding_norm = (hidden - rounded).norm(dim=1, keepdim=True)
    return (error * hidden_norm + norm * rounding_norm + kernel
            + hidden.shape[1] * 2.0 ** -23 * (norm + error) * hidden_norm)


class ArgmaxScreen:
    """An int8 screen of ``weight`` (V, d) finding ``argmax(h @ weight.T, -1)`` exactly (see module doc).

    Build one with :meth:`for_weight` (cached per weight tensor by :mod:`word2bert.nn.weight_cache`);
    that returns None where no screen can be used (not a float32 CPU matrix, no int8 kernel in this
    torch, or kernels whose rounding exceeds the assumed bound on this machine). Subclasses give the
    kernel: :meth:`scores` (a and h~) and :meth:`bound`."""

    kernel = ""
    scale_dtype = torch.float32

    def __init__(self, weight: torch.Tensor):
        weight = weight.detach()
        self.weight = weight
        scales = (weight.abs().amax(1) / 127.0).clamp_min(torch.finfo(torch.float32).tiny).to(self.scale_dtype)
        quantized = torch.round(weight / scales.float()[:, None]).clamp_(-127, 127)
        self.scales = scales
        self.quantized = quantized.to(torch.int8)
        dequantized = quantized.double() * scales.double()[:, None]
        self.row_error = (weight.double() - dequantized).norm(dim=1).float()
        self.row_norm = dequantized.norm(dim=1).float()

    @classmethod
    def for_weight(cls, weight: torch.Tensor) -> ArgmaxScreen | None:
        if weight.dtype != torch.float32 or weight.device.type != "cpu" or weight.dim() != 2:
            return None
        return weight_cache.derived(weight, "argmax_screen", _first_checked_screen)

    @classmethod
    def available(cls) -> bool:
        raise NotImplementedError

    @classmethod
    def checked(cls, weight: torch.Tensor) -> ArgmaxScreen | None:
        """A screen of ``weight`` with this kernel, or None if the kernel is missing, fails, or rounds
        worse than assumed."""
        if not cls.available():
            return None
        try:
            screen = cls(weight)
            return screen if screen.kernel_within_bound() else None
        except Exception:  # noqa: BLE001 - any failure of an optional kernel (an engine without per-row
            return None    # int8 weights, a removed operator) means: use the next kernel or the full product

    def scores(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, h~): the kernel's W~ h~ (B, V) float32 and the rows h~ (B, d) float32 it multiplied."""
        raise NotImplementedError

    def kernel_error(self, approximate: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
        """r: the kernel's rounding allowed (broadcastable to (B, V))."""
        raise NotImplementedError

    def kernel_within_bound(self) -> bool:
        """Check on this machine that the kernel's rounding is within half of the bound assumed: on random
        rows of four magnitudes against ``weight``'s screen, and on a small weight of extreme values."""
        generator = torch.Generator().manual_seed(0)
        magnitudes = torch.tensor([[0.1], [1.0], [3.0], [10.0]])
        hidden = torch.randn(len(magnitudes), self.weight.shape[1], generator=generator) * magnitudes
        if not self._within_half_bound(hidden):
            return False
        width = self.weight.shape[1]
        extreme = torch.ones(4, width)
        extreme[1] = -1.0
        extreme[2, 1::2] = -1.0
        extreme[3] = torch.rand(width, generator=generator) - 0.5
        probe = type(self)(extreme)  # full-scale int8 rows: the sums that would overflow a narrow kernel
        rows = torch.cat([extreme.abs(), -extreme.abs(), extreme, torch.zeros(1, width)])
        rows[-1, 0] = 1.0  # a row with a single non-zero value (the grid's zero point at its edge)
        return probe._within_half_bound(rows)

    def _within_half_bound(self, hidden: torch.Tensor) -> bool:
        approximate, rounded = self.scores(hidden)
        exact = (rounded.double() @ self.quantized.double().t()) * self.scales.double()[None, :]
        allowed = 0.5 * self.kernel_error(approximate.double(), rounded.double())
        return bool(((approximate.double() - exact).abs() <= allowed).all())

    def bound(self, hidden: torch.Tensor, approximate: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
        """B (broadcastable to (B, V)): |W_i . h - a_i| <= B_i for every row (module doc)."""
        return _bound(hidden, rounded, self.row_error[None, :], self.row_norm[None, :],
                      self.kernel_error(approximate, rounded))

    def candidates(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, columns) of every i with a_i + B_i >= max_k (a_k - B_k), for each row of ``hidden``."""
        approximate, rounded = self.scores(hidden)
        bound = self.bound(hidden, approximate, rounded)
        bound = bound.mul(1.0 + 1e-5).add_(1e-30)  # the bound's own fp32 rounding
        if bound.shape[1] == 1:  # one bound per row: a_i >= max_k a_k - 2 B
            floor = approximate.amax(dim=1, keepdim=True) - 2.0 * bound
            return (approximate >= floor).nonzero(as_tuple=True)
        floor = (approximate - bound).amax(dim=1, keepdim=True)
        return (approximate + bound >= floor).nonzero(as_tuple=True)

    def argmax(self, hidden: torch.Tensor) -> torch.Tensor:
        """argmax_i W_i . h for each row h of ``hidden`` (B, d) float32 -> (B,) long."""
        rows, columns = self.candidates(hidden)
        logits = torch.linalg.vecdot(self.weight.index_select(0, columns), hidden.index_select(0, rows))
        batch, vocabulary = hidden.shape[0], self.weight.shape[0]
        best = torch.full((batch,), float("-inf")).scatter_reduce(0, rows, logits, "amax")
        winners = torch.where(logits == best.index_select(0, rows), columns, vocabulary)
        return torch.full((batch,), vocabulary, dtype=torch.long).scatter_reduce(0, rows, winners, "amin")


class DynamicUint8Screen(ArgmaxScreen):
    """The ``"uint8_dynamic"`` kernel (module doc): 7-bit activations on a grid forced by a guard row."""

    kernel = "uint8_dynamic"
    scale_dtype = torch.float32

    def __init__(self, weight: torch.Tensor):
        super().__init__(weight)
        prepack, _ = _dynamic_kernel()
        rows = self.quantized.shape[0]
        with warnings.catch_warnings():  # torch deprecates quantised tensors; the probe catches a removal
            warnings.simplefilter("ignore")
            per_row = torch._make_per_channel_quantized_tensor(
                self.quantized, self.scales.double(), torch.zeros(rows, dtype=torch.long), 0)
            self.packed = prepack(per_row, None)
        self.largest_error_and_norm = (self.row_error.max(), self.row_norm.max())

    @classmethod
    def available(cls) -> bool:
        return _dynamic_kernel() is not None

    def grid(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h~, guard): h rounded to s (q - z), q in [0, 127], with s = (max(h, 0) - min(h, 0)) / 127 over
        all rows; the guard row holds the grid's ends -z s and (127 - z) s (and zeros)."""
        low, high = torch.aminmax(hidden)
        low, high = low.clamp(max=0.0), high.clamp(min=0.0)
        step = (high - low) / _GRID_LEVELS
        step = torch.where(step > 0, step, torch.ones_like(step))  # h = 0: any grid is exact
        zero = torch.round(-low / step).clamp(0, _GRID_LEVELS)
        rounded = (torch.round(hidden / step) + zero).clamp_(0, _GRID_LEVELS).sub_(zero).mul_(step)
        guard = torch.zeros(1, hidden.shape[1])
        guard[0, 0] = -zero * step
        if hidden.shape[1] > 1:
            guard[0, 1] = (_GRID_LEVELS - zero) * step
        return rounded, guard

    def scores(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rounded, guard = self.grid(hidden)
        _, dynamic_linear = _dynamic_kernel()
        approximate = dynamic_linear(torch.cat([rounded, guard]), self.packed, True)[:-1]
        return approximate, rounded

    def kernel_error(self, approximate: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
        rounded_norm = rounded.norm(dim=1, keepdim=True)
        return _KERNEL_ERROR_FACTOR * 2.0 ** -22 * (approximate.abs() + self.row_norm.to(rounded.dtype)[None, :] * rounded_norm)

    def bound(self, hidden: torch.Tensor, approximate: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
        """max_i B_i per row (B, 1), with |a_i| <= n_i ||h~|| (1 + 2^-21) in the kernel's term: one bound per
        row, so the candidates need one pass over a."""
        error_max, norm_max = self.largest_error_and_norm
        rounded_norm = rounded.norm(dim=1, keepdim=True)
        kernel = _KERNEL_ERROR_FACTOR * 2.0 ** -22 * norm_max * rounded_norm * (2.0 + 2.0 ** -21)
        return _bound(hidden, rounded, error_max, norm_max, kernel)


class WeightOnlyInt8Screen(ArgmaxScreen):
    """The ``"int8_weight_only"`` kernel (module doc): ``torch._weight_int8pack_mm`` on bfloat16 rows."""

    kernel = "int8_weight_only"
    scale_dtype = torch.bfloat16

    @classmethod
    def available(cls) -> bool:
        return _int8_kernel() is not None

    def scores(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rounded = hidden.bfloat16()
        return _int8_kernel()(rounded, self.quantized, self.scales).float(), rounded.float()

    def kernel_error(self, approximate: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
        rounded_norm = rounded.norm(dim=1, keepdim=True)
        return _KERNEL_ERROR_FACTOR * (2.0 ** -8 * approximate.abs()
                                       + 2.0 ** -20 * self.row_norm.to(rounded.dtype)[None, :] * rounded_norm)


_SCREENS = {screen.kernel: screen for screen in (DynamicUint8Screen, WeightOnlyInt8Screen)}


def _first_checked_screen(weight: torch.Tensor) -> ArgmaxScreen | None:
    for name in KERNELS:
        screen = _SCREENS[name].checked(weight)
        if screen is not None:
            return screen
    return None


def screened_argmax(hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``argmax(hidden @ weight.T, -1)`` for ``hidden`` (B, d), through an :class:`ArgmaxScreen` when
    one can serve (float32 CPU, B <= MAX_ROWS, finite rows), else with the full product."""
    if hidden.dim() == 2 and hidden.shape[0] <= MAX_ROWS and hidden.dtype == torch.float32 \
            and bool(torch.isfinite(hidden).all()):
        screen = ArgmaxScreen.for_weight(weight)
        if screen is not None:
            return screen.argmax(hidden)
    return torch.mm(weight, hidden.t()).t().argmax(-1)


__all__ = ["KERNELS", "MAX_ROWS", "ArgmaxScreen", "DynamicUint8Screen", "WeightOnlyInt8Screen", "screened_argmax"]
