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
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, ignore_index):
        logits = hidden @ weight.t() if bias is None else torch.addmm(bias, hidden, weight.t())
        log_normaliser = torch.logsumexp(logits, dim=1)
        keep = targets != ignore_index
        safe_targets = torch.where(keep, targets, 0)
        target_logits = logits.gather(1, safe_targets[:, None]).squeeze(1)
        nll = torch.where(keep, log_normaliser - target_logits, 0.0)
        ctx.save_for_backward(hidden, weight, logits, log_normaliser, safe_targets, keep)
        ctx.has_bias = bias is not None
        count = keep.sum()
        ctx.mark_non_differentiable(count)
        return nll.sum(), count

    @staticmethod
    def backward(ctx, grad_loss, _grad_count):
        hidden, weight, logits, log_normaliser, targets, keep = ctx.saved_tensors
        grad = logits                                      # reuse the buffer: d loss / d logits
        grad.sub_(log_normaliser[:, None]).exp_()          # softmax
        rows = torch.arange(grad.size(0), device=grad.device)
        grad[rows, targets] -= 1.0
        if not bool(keep.all()):
            grad.mul_(keep[:, None])
        scale = float(grad_loss)
        grad_hidden = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_hidden = torch.mm(grad, weight).mul_(scale)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.mm(grad.t(), hidden).mul_(scale)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0).mul_(scale)
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
