"""Causal language modelling (next-token prediction): GPT, GPT-2, and GPT-1's auxiliary fine-tuning loss.

For a sequence x_1 .. x_T the encoder's row h_t sees x_1 .. x_t only (causal attention), and::

    loss = - 1/N  sum_{t : x_{t+1} is a target}  log softmax(W h_t + b)[x_{t+1}]

where W (V, d) is the output embedding, usually tied to the input word embeddings (GPT, GPT-2),
and N counts the targets (padding and ``-100`` labels are not targets). The statistics are the
summable pairs ``nll = (sum of -log p, N)`` (the trainer shows ``exp(nll)`` as perplexity) and
``accuracy = (correct argmax predictions, N)``.

The vocabulary projection runs only at the rows that have a target (not at padding, not at the
last position): for GPT-2's 50,257 tokens that product and its two gradient products are most of a
training step's work. :func:`linear_cross_entropy` is the same loss computed in chunks of rows
without ever storing the (N, V) logits (the logits of a 16 x 256 batch take 0.8 GB; other models'
objectives use it to bound memory); on a 2-core CPU it measured slower than one large product and
PyTorch's fused log-softmax, so this objective uses the latter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.objectives.base import IGNORE_INDEX, Objective


#: Rows of logits computed at once: 256 x 50,257 floats are 51 MB; smaller chunks lose matmul speed.
DEFAULT_CHUNK_ROWS = 256


class _LinearCrossEntropy(torch.autograd.Function):
    """sum_i -log softmax(h_i W^T + b)[y_i] (a sum; the caller divides), with the gradients computed
    chunk by chunk in the forward pass (d loss / d logits = softmax - onehot) and scaled in backward."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_rows):
        needs_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        rows = hidden.shape[0]
        exact = torch.float64 if hidden.dtype == torch.float64 else torch.float32  # bf16/fp16 accumulate in fp32
        nll_sum = hidden.new_zeros((), dtype=exact)
        correct = torch.zeros((), dtype=torch.long, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight, dtype=exact) if ctx.needs_input_grad[1] else None
        grad_bias = torch.zeros(weight.shape[0], dtype=exact, device=weight.device) \
            if bias is not None and ctx.needs_input_grad[2] else None
        for start in range(0, rows, chunk_rows):
            h = hidden[start:start + chunk_rows]
            y = targets[start:start + chunk_rows]
            logits = F.linear(h, weight, bias).to(exact)
            log_norm = torch.logsumexp(logits, dim=1)
            target_logit = logits.gather(1, y[:, None]).squeeze(1)
            nll_sum += (log_norm - target_logit).sum()
            correct += (logits.argmax(1) == y).sum()
            if needs_grad:
                probabilities = logits.sub_(log_norm[:, None]).exp_()  # softmax, in place
                probabilities[torch.arange(y.shape[0], device=y.device), y] -= 1.0
                gradient = probabilities.to(hidden.dtype)
                if grad_hidden is not None:
                    grad_hidden[start:start + chunk_rows] = gradient @ weight
                if grad_weight is not None:
                    grad_weight.addmm_(gradient.t().to(exact), h.to(exact))
                if grad_bias is not None:
                    grad_bias += gradient.to(exact).sum(0)
        ctx.save_for_backward(grad_hidden if grad_hidden is not None else hidden.new_empty(0),
                              grad_weight if grad_weight is not None else weight.new_empty(0),
                              grad_bias if grad_bias is not None else weight.new_empty(0))
        ctx.has = (grad_hidden is not None, grad_weight is not None, grad_bias is not None)
        ctx.weight_dtype = weight.dtype
        ctx.mark_non_differentiable(correct)
        return nll_sum, correct

    @staticmethod
    def backward(ctx, grad_nll, grad_correct):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        has_hidden, has_weight, has_bias = ctx.has
        scale = grad_nll
        return (grad_hidden * scale.to(grad_hidden.dtype) if has_hidden else None,
                (grad_weight * scale).to(ctx.weight_dtype) if has_weight else None,
                (grad_bias * scale).to(ctx.weight_dtype) if has_bias else None,
                None, None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         bias: torch.Tensor | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum_i -log softmax(hidden_i W^T + b)[targets_i], number of correct argmax predictions)``.

    ``hidden`` (N, d), ``weight`` (V, d), ``targets`` (N,) in [0, V). Equal to
    ``F.cross_entropy(F.linear(hidden, weight, bias), targets, reduction="sum")`` with the same
    gradients, computed ``chunk_rows`` rows at a time without storing the (N, V) logits. The
    gradients are computed during the forward pass when autograd will need them, so call
    ``backward`` at most once through this result.
    """
    if hidden.dim() != 2 or targets.dim() != 1 or hidden.shape[0] != targets.shape[0]:
        raise Word2BertError(f"linear_cross_entropy takes hidden (N, d) and targets (N,); got "
                             f"{tuple(hidden.shape)} and {tuple(targets.shape)}")
    if hidden.shape[0] == 0:
        zero = (hidden.sum() + weight.sum() * 0.0) * 0.0
        return zero.float(), torch.zeros((), dtype=torch.long, device=hidden.device)
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets.long(), int(chunk_rows))


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
        logits = F.linear(rows, weight, bias)
        nll_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
        with torch.no_grad():
            correct = int((logits.argmax(-1) == targets).sum())
        stats = {"nll": (float(nll_sum.detach()), count), "accuracy": (correct, count)}
        return CausalLMOutput(nll_sum / count, stats, hidden, self, model)


__all__ = ["CausalLMOutput", "CausalLanguageModeling", "DEFAULT_CHUNK_ROWS", "linear_cross_entropy"]
