"""The output layer and its softmax cross-entropy as one autograd step, for large vocabularies.

``linear_cross_entropy(h, W, y, b)`` returns ``(sum_i -ln softmax(W h_i + b)[y_i], number of rows whose
target has the largest logit)`` with the values and gradients of
``F.cross_entropy(F.linear(h, W, b), y, reduction="sum")``, computed chunk by chunk in one reused
(chunk, V) buffer turned in place into ``softmax - onehot`` (the gradient with respect to the logits).
With ``label_smoothing=eps`` the loss is that of ``F.cross_entropy(..., label_smoothing=eps)``.
PyTorch's composition allocates and passes over four (N, V) buffers (logits, log-softmax, the
zero-filled NLL gradient, the log-softmax gradient); on a CPU those passes and the page faults of
their fresh memory cost about as much as the matrix products (GPT-2's 50,257 logits of a 16 x 256
batch alone take 0.8 GB). Used by every language model's output layer: GPT/GPT-2 (causal LM),
the NNLM, AWD-LSTM and the Transformer encoder-decoder (label-smoothed).
"""

from __future__ import annotations

import torch

from word2bert.errors import Word2BertError

#: Rows of logits computed at once: 1024 x 50,257 floats are 206 MB, one buffer reused for every chunk.
#: Smaller chunks re-read the (V, d) gradient of the output weights more often.
DEFAULT_CHUNK_ROWS = 1024


class Workspace:
    """Memory :func:`linear_cross_entropy` may keep between calls (its logits buffer), so that each
    training step does not fault in hundreds of MB of fresh pages. Owned by a module (the causal LM
    objective, AWD-LSTM's language model, the Transformer's translation head); copies and pickles of it are
    empty."""

    def __init__(self):
        self.buffer: torch.Tensor | None = None

    def get(self, rows: int, columns: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        buffer = self.buffer
        if (buffer is None or buffer.dtype != dtype or buffer.device != device or buffer.shape[1] != columns
                or buffer.shape[0] < rows):
            buffer = self.buffer = None  # free the old one first
            buffer = self.buffer = torch.empty(rows, columns, dtype=dtype, device=device)
        return buffer

    def clear(self) -> None:
        self.buffer = None

    def __deepcopy__(self, memo):
        return Workspace()

    def __reduce__(self):
        return (Workspace, ())


class _LinearCrossEntropy(torch.autograd.Function):
    """s * sum_i loss_i (s = 1, or 1/N for the mean), s * sum_i -log p_i[y_i] and the count of rows whose
    target has the largest logit, chunk by chunk in ONE reused (chunk, V) buffer, where p_i = softmax(z_i),
    z_i = h_i W^T + b and, with label smoothing eps (Szegedy et al. 2016, section 7: the target
    distribution q = (1 - eps) onehot(y) + eps / V)::

        loss_i = -sum_v q_v log p_v = (1 - eps) (lse_i - z_iy) + eps (lse_i - mean_v z_iv),  lse_i = log sum_v exp z_iv

    Per chunk: z into the buffer; m = max_v z_v; the buffer becomes p = softmax(z) in place; then
    lse = m - log max_v p_v (exact: max_v p_v = 1 / sum_v exp(z_v - m) >= 1/V never underflows). When
    autograd needs them the gradients are computed right away: the buffer becomes
    d loss / dz = p - (1 - eps) onehot(y) - eps / V, then d h = s (d loss / dz) W and
    d W += (d loss / dz)^T (s h); backward returns them as they are when the incoming gradient is 1
    (``loss.backward()``), else scaled. PyTorch's composition (linear, log_softmax, nll_loss, argmax)
    allocates and passes over four (N, V) buffers."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_rows, scale, workspace, smoothing):
        needs_grad = any(ctx.needs_input_grad[:3])
        rows, vocabulary = hidden.shape[0], weight.shape[0]
        exact = torch.float64 if hidden.dtype == torch.float64 else torch.float32  # bf16/fp16 accumulate in fp32
        loss_sum = hidden.new_zeros((), dtype=exact)
        nll_sum = hidden.new_zeros((), dtype=exact)
        correct = torch.zeros((), dtype=torch.long, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = None
        grad_bias = torch.zeros(vocabulary, dtype=exact, device=weight.device) \
            if bias is not None and ctx.needs_input_grad[2] else None
        chunk = min(chunk_rows, rows)
        buffer = (workspace.get(chunk, vocabulary, exact, hidden.device) if workspace is not None
                  else torch.empty(chunk, vocabulary, dtype=exact, device=hidden.device))
        weight_t = weight.t().to(exact)
        for start in range(0, rows, chunk_rows):
            h = hidden[start:start + chunk_rows].to(exact)
            y = targets[start:start + chunk_rows]
            logits = buffer[:h.shape[0]]
            if bias is None:
                torch.mm(h, weight_t, out=logits)
            else:
                torch.addmm(bias.to(exact), h, weight_t, out=logits)
            target_logit = logits.gather(1, y[:, None]).squeeze(1)
            max_logit = logits.amax(dim=1)
            mean_logit = logits.mean(dim=1) if smoothing else None
            correct += (target_logit >= max_logit).sum()
            torch._softmax(logits, 1, False, out=logits)  # in place: each row is read before it is written
            log_normaliser = max_logit - logits.amax(dim=1).log()
            nll = (log_normaliser - target_logit).sum()
            nll_sum += nll
            loss_sum += nll if not smoothing else (
                (1.0 - smoothing) * nll + smoothing * (log_normaliser - mean_logit).sum())
            if not needs_grad:
                continue
            logits[torch.arange(y.shape[0], device=y.device), y] -= 1.0 - smoothing  # p - (1 - eps) onehot
            if smoothing:
                logits.sub_(smoothing / vocabulary)  # - eps / V
            if grad_hidden is not None:
                rows_grad = grad_hidden[start:start + chunk_rows]
                if logits.dtype == hidden.dtype:
                    torch.mm(logits, weight, out=rows_grad)
                else:
                    rows_grad.copy_(torch.mm(logits, weight_t.t()))
                if scale != 1.0:
                    rows_grad.mul_(scale)
            if ctx.needs_input_grad[1]:
                scaled = h if scale == 1.0 else h * scale
                if grad_weight is None:
                    grad_weight = torch.mm(logits.t(), scaled)
                else:
                    grad_weight.addmm_(logits.t(), scaled)
            if grad_bias is not None:
                grad_bias += logits.sum(0)
        if grad_bias is not None and scale != 1.0:
            grad_bias.mul_(scale)
        del buffer, logits
        ctx.save_for_backward(grad_hidden if grad_hidden is not None else hidden.new_empty(0),
                              grad_weight.to(weight.dtype) if grad_weight is not None else weight.new_empty(0),
                              grad_bias.to(weight.dtype) if grad_bias is not None else weight.new_empty(0))
        ctx.has = (grad_hidden is not None, grad_weight is not None, grad_bias is not None)
        nll_sum = nll_sum * scale
        ctx.mark_non_differentiable(nll_sum, correct)
        return loss_sum * scale, nll_sum, correct

    @staticmethod
    def backward(ctx, grad_loss, grad_nll, grad_correct):
        gradients = [g if has else None for g, has in zip(ctx.saved_tensors, ctx.has)]
        if not bool(grad_loss == 1):
            gradients = [None if g is None else g * grad_loss.to(g.dtype) for g in gradients]
        return (*gradients, None, None, None, None, None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         bias: torch.Tensor | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS, *,
                         reduction: str = "sum", workspace: Workspace | None = None,
                         ignore_index: int | None = None, label_smoothing: float = 0.0,
                         with_nll: bool = False) -> tuple[torch.Tensor, ...]:
    """``(loss, number of rows whose target has the largest logit)`` with
    ``loss = sum_i -log softmax(hidden_i W^T + b)[targets_i]`` (``reduction="sum"``) or that sum / N
    (``"mean"``), over the rows whose target is not ``ignore_index`` (N counts those).

    With ``label_smoothing=eps`` each row's loss is ``-sum_v q_v log p_v`` for the target distribution
    ``q = (1 - eps) onehot(y) + eps / V`` (``F.cross_entropy(..., label_smoothing=eps)``); ``with_nll=True``
    returns ``(loss, nll, correct)`` where ``nll`` is the unsmoothed negative log-likelihood, reduced
    alike (no gradient flows through it).

    ``hidden`` (..., d), ``weight`` (V, d), ``targets`` (...) in [0, V). Equal to
    ``F.cross_entropy(F.linear(hidden, weight, bias), targets, reduction=reduction,
    ignore_index=ignore_index)`` with the same gradients (zero at ignored rows), computed
    ``chunk_rows`` rows at a time without storing the (N, V) logits (a ``workspace`` keeps the chunk
    buffer from one call to the next). The gradients are computed during the forward pass when
    autograd will need them (first-order only: no gradient of a gradient through this function).
    A target tied with the largest logit counts as correct. It computes in float32 (float64 inputs
    stay float64), also under autocast.
    """
    if hidden.dim() < 1 or tuple(targets.shape) != tuple(hidden.shape[:-1]):
        raise Word2BertError(f"linear_cross_entropy takes hidden (..., d) and targets (...) of the same leading "
                             f"shape; got {tuple(hidden.shape)} and {tuple(targets.shape)}")
    if reduction not in ("sum", "mean"):
        raise Word2BertError(f"reduction={reduction!r} must be 'sum' or 'mean'")
    if not 0.0 <= label_smoothing < 1.0:
        raise Word2BertError(f"label_smoothing={label_smoothing!r} must be in [0, 1)")
    hidden = hidden.reshape(-1, hidden.shape[-1])
    targets = targets.reshape(-1).long()
    if ignore_index is not None:
        keep = targets != ignore_index
        if not bool(keep.all()):
            rows = keep.nonzero().squeeze(1)
            hidden, targets = hidden.index_select(0, rows), targets.index_select(0, rows)
    if hidden.shape[0] == 0:
        zero = (hidden.sum() + weight.sum() * 0.0) * 0.0
        loss, nll, correct = zero.float(), zero.detach().float(), torch.zeros((), dtype=torch.long, device=hidden.device)
    else:
        scale = 1.0 if reduction == "sum" else 1.0 / hidden.shape[0]
        if not torch.is_grad_enabled():
            # autograd.Function sets needs_input_grad from requires_grad alone, also under no_grad: detached
            # operands keep an evaluation from computing the two gradient products it would throw away
            hidden, weight = hidden.detach(), weight.detach()
            bias = None if bias is None else bias.detach()
        with torch.autocast(hidden.device.type, enabled=False):
            loss, nll, correct = _LinearCrossEntropy.apply(hidden, weight, bias, targets, int(chunk_rows), scale,
                                                           workspace, float(label_smoothing))
    return (loss, nll, correct) if with_nll else (loss, correct)


__all__ = ["DEFAULT_CHUNK_ROWS", "Workspace", "linear_cross_entropy"]
