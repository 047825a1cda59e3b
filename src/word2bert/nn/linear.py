"""Linear layers that decode and train fast: ``y = x W^T + b`` on a pre-packed copy of W when few rows
come in, and with oneDNN's products when many rows train.

Decoding one token at a time multiplies a few rows (a batch of beams, a handful of prompts) by every
weight matrix of the model. There, the general matrix product spends as much time re-arranging W into
its blocked layout as multiplying (on a 2-core AVX2 machine, 8 x 768 by 768 x 2304 takes 1.1 ms with
``F.linear`` and 0.6 ms with W packed beforehand; beam search's 64 x 256 by 256 x 8,000 output layer
3.7 ms against 2.2). :func:`linear` packs W once for oneDNN (``torch.ops.mkldnn._reorder_linear_weight``,
kept by :mod:`word2bert.nn.weight_cache` and rebuilt when W changes) and multiplies with
``torch.ops.mkldnn._linear_pointwise``, when:

- no gradient is wanted (``torch.no_grad``, inference mode, or nothing requires one),
- x and W are float32 on the CPU and x has from :data:`MIN_ROWS` to :data:`MAX_ROWS` rows (beyond,
  the plain product is as fast),
- this torch has oneDNN, and the packed product agreed with ``F.linear`` on a probe the first time
  (otherwise, or if the operator fails, every call takes ``F.linear`` from then on).

The packed product sums in another order than ``F.linear``: results agree to float rounding (relative
~1e-6), as any two fp32 matrix products do. Training never takes the packed path (large inputs take
oneDNN's training products below, the others ``F.linear`` unchanged). The packed copy costs the weight's size again in memory while it is cached
(:func:`set_packed_inference` switches the path off and frees them).

A single row (greedy decoding of one sequence) goes, under the same conditions (and contiguous),
through :mod:`word2bert.nn.gemv`'s matrix-vector product, which reads the weights at about twice the
rate of MKL's gemv (``F.linear``): 3.0-3.3 ms against 6-8 ms for GPT-2's 24 layer matrices of width 384.

Training (gradients wanted) on at least :data:`MIN_TRAINING_ROWS` rows of float32 on the CPU takes
:class:`_OneDNNLinear`: the output ``y = x W^T + b`` and the input gradient ``dL/dx = g W`` (g = dL/dy)
are oneDNN's products, the weight and bias gradients ``dL/dW = g^T x``, ``dL/db = sum_rows g`` are
torch's (``F.linear``'s backward computes the same three). On this project's CPU (AMD EPYC with AVX-512)
PyTorch's ``F.linear`` goes to MKL's sgemm, which reaches 70-150 GFLOP/s on a transformer's shapes
(4,096 rows by 256-1,536), where oneDNN's JIT kernels reach 110-200; for the weight gradient MKL was the
faster of the two, and below ~2,000 rows oneDNN's per-call overhead costs more than it saves (measured:
4,096 rows 1.14-1.31x faster forward + backward per layer, 1,024 rows 0.95-1.02x, 256 rows 0.7x). The
sums run in another order than MKL's: values and gradients agree to fp32 rounding. Switch it off with
:func:`set_onednn_training` (then training is ``F.linear`` bit for bit).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.nn import weight_cache

#: The packed path serves inputs of MIN_ROWS to MAX_ROWS rows (tokens x batch).
MIN_ROWS = 2
MAX_ROWS = 256
#: Training inputs of at least this many rows (tokens x batch) take oneDNN's products (see the module doc).
MIN_TRAINING_ROWS = 2048
_KIND = "mkldnn_packed_linear"
_STATE = {"enabled": True, "checked": False, "training": True}


def set_packed_inference(enabled: bool) -> None:
    """Use (True, the default) or never use the packed and one-row products (then every call is
    ``F.linear``); switching off frees the packed copies."""
    _STATE["enabled"] = bool(enabled)
    if not enabled:
        weight_cache.clear(_KIND)


def set_onednn_training(enabled: bool) -> None:
    """Train large inputs with oneDNN's products (True, the default) or always with ``F.linear``."""
    _STATE["training"] = bool(enabled)


def _available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _pack(weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 64)


def _packed_product(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


def _agrees_on_a_probe() -> bool:
    """The packed product equals ``F.linear`` on random numbers, to fp32 rounding."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 96, generator=generator)
    weight = torch.randn(200, 96, generator=generator)
    bias = torch.randn(200, generator=generator)
    expected = F.linear(x, weight, bias)
    got = _packed_product(x, _pack(weight), bias)
    return got.shape == expected.shape and bool(((got - expected).abs() <= 1e-4 * (1 + expected.abs())).all())


def _disable(reason: str) -> None:
    _STATE["enabled"] = False
    weight_cache.clear(_KIND)
    warnings.warn(f"pre-packed linear layers are off ({reason}); F.linear is used", RuntimeWarning, stacklevel=4)


class _OneDNNLinear(torch.autograd.Function):
    """``y = x W^T + b`` and ``dL/dx = g W`` with oneDNN's products; ``dL/dW = g^T x`` and
    ``dL/db = sum_rows g`` with torch's (``g = dL/dy``; x is flattened to rows, as ``F.linear`` does)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        rows = x.reshape(-1, x.shape[-1])
        if not rows.is_contiguous():
            rows = rows.contiguous()
        ctx.save_for_backward(rows, weight)
        ctx.has_bias = bias is not None
        out = _packed_product(rows, weight.detach(), None if bias is None else bias.detach())
        return out.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        rows, weight = ctx.saved_tensors
        grad_rows = grad_out.reshape(-1, grad_out.shape[-1])
        if not grad_rows.is_contiguous():
            grad_rows = grad_rows.contiguous()
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = _packed_product(grad_rows, weight.t().contiguous(), None)
            grad_x = grad_x.view(*grad_out.shape[:-1], weight.shape[1])
        if ctx.needs_input_grad[1]:
            grad_weight = grad_rows.t().mm(rows)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_rows.sum(0)
        return grad_x, grad_weight, grad_bias


def _wants_gradient(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Autograd will differentiate the product: gradients are on and an operand requires one."""
    return torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                        or (bias is not None and bias.requires_grad))


def _float32_cpu_operands(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """x (..., K), W (N, K) and b (N,) are float32 on the CPU: what oneDNN's product takes."""
    if x.dtype != torch.float32 or weight.dtype != torch.float32 or not (x.is_cpu and weight.is_cpu):
        return False
    if weight.dim() != 2 or x.dim() == 0 or x.shape[-1] != weight.shape[1]:
        return False
    return bias is None or (bias.dtype == torch.float32 and bias.dim() == 1)


def _trains_with_onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Gradients are wanted for float32 CPU operands of at least MIN_TRAINING_ROWS rows (module doc)."""
    if not (_STATE["training"] and _STATE["enabled"] and _wants_gradient(x, weight, bias)):
        return False
    if not _float32_cpu_operands(x, weight, bias) or x.dim() < 2 or x.numel() == 0:
        return False
    return x.numel() >= MIN_TRAINING_ROWS * x.shape[-1] and _operator_checked()


def _operator_checked() -> bool:
    """Whether the oneDNN operator may be used: probed once per process (:func:`_agrees_on_a_probe`);
    a failure switches the packed and training paths off with a warning."""
    if not _STATE["checked"]:
        _STATE["checked"] = True
        try:
            agrees = _available() and _agrees_on_a_probe()
        except RuntimeError as error:
            agrees = False
            reason = f"the oneDNN operator failed: {error}"
        else:
            reason = "this torch has no oneDNN linear operator" if not _available() else \
                "the packed product disagreed with F.linear on a probe"
        if not agrees:
            _disable(reason)
    return _STATE["enabled"]


def _fast_paths_apply(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """The conditions the packed and the one-row products share: switched on, no gradient wanted,
    float32 CPU operands of matching widths (see the module doc)."""
    return _STATE["enabled"] and not _wants_gradient(x, weight, bias) and _float32_cpu_operands(x, weight, bias)


def _one_contiguous_row(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """x is a single row, and x, W and b are contiguous (what :mod:`word2bert.nn.gemv` reads)."""
    return (x.numel() == x.shape[-1] and x.is_contiguous() and weight.is_contiguous()
            and (bias is None or bias.is_contiguous()))


def _numpy_view(tensor: torch.Tensor) -> np.ndarray:
    """A numpy array sharing ``tensor``'s memory, kept with the tensor (kind ``numpy_view``)."""
    return weight_cache.derived(tensor, "numpy_view", lambda t: t.detach().numpy())


def _one_row(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x W^T + b`` for x holding a single row, through :func:`word2bert.nn.gemv.row_times_matrix`."""
    from word2bert.nn.gemv import row_times_matrix

    out = np.empty(x.shape[:-1] + (weight.shape[0],), dtype=np.float32)
    row = (x.detach() if x.requires_grad else x).numpy().reshape(-1)
    row_times_matrix(row, _numpy_view(weight), None if bias is None else _numpy_view(bias), out.reshape(-1))
    return torch.from_numpy(out)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x W^T + b`` (as ``F.linear``), on W pre-packed for oneDNN where that is faster, or through a
    parallel matrix-vector product for a single row, or with oneDNN's products when training on many
    rows (see module doc)."""
    if _trains_with_onednn(x, weight, bias):
        try:
            return _OneDNNLinear.apply(x, weight, bias)
        except RuntimeError as error:
            _disable(f"the oneDNN operator failed: {error}")
            return F.linear(x, weight, bias)
    if not _fast_paths_apply(x, weight, bias):
        return F.linear(x, weight, bias)
    if _one_contiguous_row(x, weight, bias):
        return _one_row(x, weight, bias)
    if not MIN_ROWS * x.shape[-1] <= x.numel() <= MAX_ROWS * x.shape[-1]:
        return F.linear(x, weight, bias)
    if not _operator_checked():
        return F.linear(x, weight, bias)
    try:
        packed = weight_cache.derived(weight, _KIND, _pack)
        return _packed_product(x if x.is_contiguous() else x.contiguous(), packed,
                               None if bias is None else bias.detach())
    except RuntimeError as error:
        _disable(f"the oneDNN operator failed: {error}")
        return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``torch.nn.Linear`` (same parameters, state-dict keys and initialisation) whose forward is
    :func:`linear`: a pre-packed weight when decoding a few rows without gradients."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


__all__ = ["Linear", "MAX_ROWS", "MIN_ROWS", "MIN_TRAINING_ROWS", "linear", "set_onednn_training",
           "set_packed_inference"]
