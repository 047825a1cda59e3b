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
from word2bert.nn.linear_cross_entropy import DEFAULT_CHUNK_ROWS, Workspace, linear_cross_entropy
from word2bert.objectives.base import IGNORE_INDEX, Objective


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
