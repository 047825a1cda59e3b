"""The output layer and its softmax cross-entropy as one autograd step (for large vocabularies).

``linear_cross_entropy(h, W, b, y)`` returns ``sum_i -ln softmax(W h_i + b)[y_i]`` and its
gradients, with the same values as ``F.cross_entropy(F.linear(h, W, b), y, reduction="sum")``.
It keeps one (N, V) buffer: the logits, turned in place into ``softmax - onehot`` (the gradient
of the loss with respect to the logits) during the backward pass. PyTorch's composition allocates
and passes over four such buffers (logits, log-softmax, the zero-filled NLL gradient, the
log-softmax gradient); on a CPU those passes and the page faults of their fresh memory cost
about as much as the matrix products for a 10,000-word vocabulary.
"""

from __future__ import annotations

import torch


class _LinearCrossEntropy(torch.autograd.Function):
    """Forward: ``z = h W^T + b`` into one buffer, ``m = max_j z_j``; the buffer becomes ``e = exp(z - m)``
    in place and ``nll = m + ln(sum_j e_j) - z_y``. Backward: ``e / sum_j e_j - onehot(y)`` in the same
    buffer is the gradient with respect to ``z``; two matrix products give those of ``h`` and ``W``."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, ignore_index):
        buffer = hidden @ weight.t() if bias is None else torch.addmm(bias, hidden, weight.t())
        keep = targets != ignore_index
        safe_targets = torch.where(keep, targets, 0)
        target_logits = buffer.gather(1, safe_targets[:, None]).squeeze(1)
        row_max = buffer.amax(dim=1)
        torch.sub(buffer, row_max[:, None], out=buffer).exp_()          # e = exp(z - m), in place
        sums = buffer.sum(dim=1)
        nll = torch.where(keep, row_max + sums.log() - target_logits, 0.0)
        ctx.save_for_backward(hidden, weight, buffer, sums, safe_targets, keep)
        ctx.has_bias = bias is not None
        count = keep.sum()
        ctx.mark_non_differentiable(count)
        return nll.sum(), count

    @staticmethod
    def backward(ctx, grad_loss, _grad_count):
        hidden, weight, buffer, sums, targets, keep = ctx.saved_tensors
        scale = float(grad_loss)
        # d loss / d z = scale * (softmax - onehot), rows without a target zeroed: built in the buffer
        row_scale = torch.where(keep, scale / sums, 0.0)
        grad = buffer.mul_(row_scale[:, None])
        rows = torch.arange(grad.size(0), device=grad.device)
        grad[rows, targets] -= torch.where(keep, scale, 0.0).to(grad.dtype)
        grad_hidden = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_hidden = torch.mm(grad, weight)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.mm(grad.t(), hidden)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_hidden, grad_weight, grad_bias, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         targets: torch.Tensor, ignore_index: int = -100) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum of -ln softmax(hidden W^T + bias)[target], number of targets)`` over rows whose target
    is not ``ignore_index``; ``hidden`` (..., d), ``weight`` (V, d), ``targets`` (...).

    The backward pass overwrites the saved logits, so the graph cannot be run backward twice.
    It computes in float32 (float64 inputs stay float64), also under autocast.
    """
    hidden = hidden.reshape(-1, hidden.size(-1))
    targets = targets.reshape(-1)
    with torch.autocast(hidden.device.type, enabled=False):
        return _LinearCrossEntropy.apply(_full_precision(hidden), _full_precision(weight),
                                         None if bias is None else _full_precision(bias), targets, ignore_index)


def _full_precision(tensor: torch.Tensor) -> torch.Tensor:
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()
