"""Causal language modelling (next-token prediction): GPT, GPT-2, and GPT-1's auxiliary fine-tuning loss.

For a sequence x_1 .. x_T the encoder's row h_t sees x_1 .. x_t only (causal attention), and::

    loss = - 1/N  sum_{t : x_{t+1} is a target}  log softmax(W h_t + b)[x_{t+1}]

where W (V, d) is the output embedding, usually tied to the input word embeddings (GPT, GPT-2),
and N counts the targets (padding and ``-100`` labels are not targets). The statistics are the
summable pairs ``nll = (sum of -log p, N)`` (the trainer shows ``exp(nll)`` as perplexity) and
``accuracy = (correct argmax predictions, N)``.

The vocabulary projection runs only at the rows that have a target (not at padding, not at the
last position): for GPT-2's 50,257 tokens that product and its two gradient products are most of a
training step's work. :func:`linear_cross_entropy` computes the loss, the accuracy count and the
gradients chunk by chunk in one reused buffer, turned in place into softmax - onehot, instead of
the four (N, V) buffers of ``cross_entropy(linear(h, W))`` (the logits of a 16 x 256 batch alone
take 0.8 GB); the logits themselves are computed only when read (``output.logits``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.objectives.base import IGNORE_INDEX, Objective


#: Rows of logits computed at once: 1024 x 50,257 floats are 206 MB, one buffer reused for every chunk.
#: Smaller chunks re-read the (V, d) gradient of the output weights more often.
DEFAULT_CHUNK_ROWS = 1024


class Workspace:
    """Memory :func:`linear_cross_entropy` may keep between calls (its logits buffer), so that each
    training step does not fault in hundreds of MB of fresh pages. Owned by a module (an objective);
    copies and pickles of it are empty."""

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
    """s * sum_i -log softmax(h_i W^T + b)[y_i] (s = 1, or 1/N for the mean) and the count of rows whose
    target has the largest logit, chunk by chunk in ONE reused (chunk, V) buffer.

    Per chunk: z = h W^T + b into the buffer; m = max_j z_j; the buffer becomes p = softmax(z) in
    place; -log p_y = (m - z_y) - log max_j p_j (exact: max_j p_j = 1 / sum_j exp(z_j - m) >= 1/V
    never underflows). When autograd needs them the gradients are computed right away: the buffer
    becomes p - onehot(y) = d(-log p_y)/dz, then d h = s (p - onehot) W and d W += (p - onehot)^T (s h);
    backward returns them as they are when the incoming gradient is 1 (``loss.backward()``), else
    scaled. PyTorch's composition (linear, log_softmax, nll_loss, argmax) allocates and passes over
    four (N, V) buffers."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_rows, scale, workspace):
        needs_grad = any(ctx.needs_input_grad[:3])
        rows = hidden.shape[0]
        exact = torch.float64 if hidden.dtype == torch.float64 else torch.float32  # bf16/fp16 accumulate in fp32
        nll_sum = hidden.new_zeros((), dtype=exact)
        correct = torch.zeros((), dtype=torch.long, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = None
        grad_bias = torch.zeros(weight.shape[0], dtype=exact, device=weight.device) \
            if bias is not None and ctx.needs_input_grad[2] else None
        chunk = min(chunk_rows, rows)
        buffer = (workspace.get(chunk, weight.shape[0], exact, hidden.device) if workspace is not None
                  else torch.empty(chunk, weight.shape[0], dtype=exact, device=hidden.device))
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
            correct += (target_logit >= max_logit).sum()
            torch._softmax(logits, 1, False, out=logits)  # in place: each row is read before it is written
            nll_sum += (max_logit - target_logit - logits.amax(dim=1).log()).sum()
            if not needs_grad:
                continue
            logits[torch.arange(y.shape[0], device=y.device), y] -= 1.0  # softmax - onehot
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
        ctx.mark_non_differentiable(correct)
        return nll_sum * scale, correct

    @staticmethod
    def backward(ctx, grad_loss, grad_correct):
        gradients = [g if has else None for g, has in zip(ctx.saved_tensors, ctx.has)]
        if not bool(grad_loss == 1):
            gradients = [None if g is None else g * grad_loss.to(g.dtype) for g in gradients]
        return (*gradients, None, None, None, None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         bias: torch.Tensor | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS, *,
                         reduction: str = "sum", workspace: Workspace | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, number of rows whose target has the largest logit)`` with
    ``loss = sum_i -log softmax(hidden_i W^T + b)[targets_i]`` (``reduction="sum"``) or that sum / N
    (``"mean"``).

    ``hidden`` (N, d), ``weight`` (V, d), ``targets`` (N,) in [0, V). Equal to
    ``F.cross_entropy(F.linear(hidden, weight, bias), targets, reduction=reduction)`` with the same
    gradients, computed ``chunk_rows`` rows at a time without storing the (N, V) logits (a
    ``workspace`` keeps the chunk buffer from one call to the next). The gradients are computed
    during the forward pass when autograd will need them (first-order only: no gradient of a
    gradient through this function). A target tied with the largest logit counts as correct.
    """
    if hidden.dim() != 2 or targets.dim() != 1 or hidden.shape[0] != targets.shape[0]:
        raise Word2BertError(f"linear_cross_entropy takes hidden (N, d) and targets (N,); got "
                             f"{tuple(hidden.shape)} and {tuple(targets.shape)}")
    if reduction not in ("sum", "mean"):
        raise Word2BertError(f"reduction={reduction!r} must be 'sum' or 'mean'")
    if hidden.shape[0] == 0:
        zero = (hidden.sum() + weight.sum() * 0.0) * 0.0
        return zero.float(), torch.zeros((), dtype=torch.long, device=hidden.device)
    scale = 1.0 if reduction == "sum" else 1.0 / hidden.shape[0]
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets.long(), int(chunk_rows), scale, workspace)


class CausalLMOutput:
    """The causal LM objective's output: ``loss`` (mean over targets), ``stats`` and ``logits``.

    ``logits`` (B, T, V) — the next-token logits at every position — are computed from the kept
    hidden rows only when read (training never needs them)."""

    def __init__(self, loss, stats, hidden, objective, model):
        self.loss = loss
        self.stats = stats
        self._hidden, self._objective, self._model = hidden, objective, model
        self._logits = None

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None:
            self._logits = self._objective.logits(self._hidden, self._model)
        return self._logits


class CausalLanguageModeling(Objective):
    """Next-token prediction over every position (GPT's pre-training objective).

    ``decoder``: None ties the output embedding to the encoder's input embeddings (GPT, GPT-2);
    an ``nn.Linear(d, V)`` is an untied output layer. Targets, in this order:

    - ``target_ids`` (B, T): the token each position predicts, already shifted (a token stream's
      next tokens, so the last position of a window has its target too); -100 = none;
    - ``labels`` (B, T), aligned with ``input_ids`` as in Hugging Face: position t is predicted
      from the rows before it; -100 = no target;
    - else the input ids themselves, with padding (``attention_mask`` 0) left out.

    ``prepare`` adds ``labels`` to a collated batch that has neither.
    """

    input_keys: tuple[str, ...] = ()

    def __init__(self, decoder: nn.Linear | None = None):
        super().__init__()
        self.decoder = decoder
        self.workspace = Workspace()  # the loss's logits buffer, kept between training steps

    def output_weights(self, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.decoder is not None:
            return self.decoder.weight, self.decoder.bias
        return model.get_input_embeddings().weight, None

    def logits(self, hidden: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Vocabulary logits W h + b of ``hidden`` (..., d)."""
        weight, bias = self.output_weights(model)
        return F.linear(hidden, weight, bias)

    def next_token_logits(self, hidden: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Logits (B, V) of a few rows ``hidden`` (B, d), as (W h^T)^T: on CPU the product with the
        (V, d) table on the left runs about twice as fast as ``h W^T`` for a handful of rows
        (generation's last positions)."""
        weight, bias = self.output_weights(model)
        logits = torch.mm(weight, hidden.t()).t()
        return logits if bias is None else logits + bias

    def prepare(self, batch: dict, items: Sequence[dict], rng: np.random.Generator | None) -> None:
        """``labels`` = ``input_ids`` with padding set to -100 (unless the items brought their own)."""
        if "labels" in batch or "target_ids" in batch:
            return
        labels = batch["input_ids"].copy()
        if "attention_mask" in batch and batch["attention_mask"].ndim == 2:
            labels[batch["attention_mask"] == 0] = IGNORE_INDEX
        batch["labels"] = labels

    @staticmethod
    def targets(batch: dict) -> torch.Tensor:
        """(B, T) labels aligned with the inputs (-100 = no target)."""
        labels = batch.get("labels")
        if labels is not None:
            return labels
        labels = batch["input_ids"]
        mask = batch.get("attention_mask")
        if mask is not None and mask.dim() == 2:
            labels = labels.masked_fill(mask == 0, IGNORE_INDEX)
        return labels

    def forward(self, hidden: torch.Tensor, batch: dict, model: nn.Module) -> CausalLMOutput:
        shifted = batch.get("target_ids") is not None
        labels = batch["target_ids"] if shifted else self.targets(batch)
        if tuple(labels.shape) != tuple(hidden.shape[:2]):
            raise Word2BertError(f"{'target_ids' if shifted else 'labels'} shape {tuple(labels.shape)} does not "
                                 f"match the input's {tuple(hidden.shape[:2])}")
        next_tokens = labels if shifted else labels[:, 1:]
        keep = next_tokens != IGNORE_INDEX
        rows = (hidden if shifted else hidden[:, :-1])[keep]
        targets = next_tokens[keep]
        weight, bias = self.output_weights(model)
        count = int(targets.numel())
        if count and (int(targets.min()) < 0 or int(targets.max()) >= weight.shape[0]):
            raise Word2BertError(f"labels contain an id outside the vocabulary [0, {weight.shape[0]})")
        if count == 0:  # nothing to predict: a zero loss that keeps the graph connected
            loss = hidden.sum() * 0.0
            return CausalLMOutput(loss, {"nll": (0.0, 0), "accuracy": (0, 0)}, hidden, self, model)
        loss, correct = linear_cross_entropy(rows, weight, targets, bias, reduction="mean",
                                             workspace=self.workspace if self.training else None)
        stats = {"nll": (float(loss.detach()) * count, count), "accuracy": (int(correct), count)}
        return CausalLMOutput(loss, stats, hidden, self, model)


__all__ = ["CausalLMOutput", "CausalLanguageModeling", "DEFAULT_CHUNK_ROWS", "Workspace", "linear_cross_entropy"]
