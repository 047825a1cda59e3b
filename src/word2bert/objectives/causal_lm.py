"""Causal language modelling (next-token prediction): GPT, GPT-2, and GPT-1's auxiliary fine-tuning loss.

For a sequence x_1 .. x_T the encoder's row h_t sees x_1 .. x_t only (causal attention), and::

    loss = - 1/N  sum_{t : x_{t+1} is a target}  log softmax(W h_t + b)[x_{t+1}]

where W (V, d) is the output embedding, usually tied to the input word embeddings (GPT, GPT-2),
and N counts the targets (padding and ``-100`` labels are not targets). The statistics are the
summable pairs ``nll = (sum of -log p, N)`` (the trainer shows ``exp(nll)`` as perplexity) and
``accuracy = (correct argmax predictions, N)``.

The vocabulary projection runs only at the rows that have a target (not at padding, not at the
last position): for GPT-2's 50,257 tokens that product and its two gradient products are most of a
training step's work. (A chunked projection fused with the loss, which never stores the (N, V)
logits, was measured slower on a 2-core CPU than one large product and PyTorch's fused
log-softmax; the logits of a 16 x 256 batch take 0.8 GB.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
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
    an ``nn.Linear(d, V)`` is an untied output layer. Targets: the batch's ``labels`` (B, T), aligned
    with ``input_ids`` as in Hugging Face (position t is predicted from the rows before it; -100 is
    no target), else the input ids themselves, with padding (``attention_mask`` 0) left out.
    ``prepare`` adds ``labels`` to a collated batch the same way.
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

    def prepare(self, batch: dict, items: Sequence[dict], rng: np.random.Generator | None) -> None:
        """``labels`` = ``input_ids`` with padding set to -100 (unless the items brought their own)."""
        if "labels" in batch:
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
        labels = self.targets(batch)
        if tuple(labels.shape) != tuple(hidden.shape[:2]):
            raise Word2BertError(f"labels shape {tuple(labels.shape)} does not match the input's "
                                 f"{tuple(hidden.shape[:2])}")
        next_tokens = labels[:, 1:]
        keep = next_tokens != IGNORE_INDEX
        rows = hidden[:, :-1][keep]
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


__all__ = ["CausalLMOutput", "CausalLanguageModeling"]
