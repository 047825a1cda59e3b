"""The objective contract: how a batch is built, which rows are read, which head, which loss.

A contextual model in word2bert is a network plus objectives (``../shared/DESIGN.md``). An
:class:`Objective` is an ``nn.Module`` that owns its head, so its weights belong to the model and
to its checkpoints. It takes part twice:

1. **Building the batch** (numpy, in the data pipeline): :class:`ObjectiveCollator` pads a list
   of items into ``(B, T)`` arrays with an ``attention_mask``, then calls every objective's
   :meth:`Objective.prepare` in order. An objective may corrupt the input (MLM masks tokens), set
   its own attention mask (a boolean (B, T, T) for UniLM or XLNet), and add its targets
   (``masked_positions``, ``next_sentence_label``, ...). The result, as tensors, is the model's
   keyword arguments.
2. **The loss** (torch, in the model): :meth:`Objective.read_positions` names the rows of the last
   layer it needs (the pre-training model computes the last layer only at the union of those), and
   :meth:`Objective.forward` turns those rows into an :class:`ObjectiveOutput`: its loss and
   **summable statistics**, pairs such as ``(sum of negative log-likelihood, count)`` or
   ``(correct, count)``. The trainer adds the pairs over batches and reports ``sum / count``
   (and ``exp(sum / count)`` for a statistic named ``nll``, the perplexity) without knowing names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from word2bert.errors import Word2BertError

IGNORE_INDEX = -100


@dataclass
class ObjectiveOutput:
    """``loss`` (a scalar tensor, or None when the batch has no targets for this objective),
    ``stats`` ({name: (numerator, count)}), and the head's ``logits`` for inspection."""

    loss: torch.Tensor | None = None
    stats: dict = field(default_factory=dict)
    logits: torch.Tensor | None = None


class Objective(nn.Module):
    """Base class of the objectives; see the module docstring for the contract.

    ``input_keys`` are the batch keys without which the objective does not run (for example MLM's
    ``masked_positions``); ``reads_pooled`` says whether :meth:`forward` uses the encoder's pooler,
    so a model without such an objective can leave the pooler out of training.
    """

    input_keys: tuple[str, ...] = ()
    reads_pooled: bool = False

    def prepare(self, batch: dict, items: Sequence[dict], rng: np.random.Generator | None) -> None:
        """Add this objective's arrays to the padded numpy ``batch`` (and corrupt its inputs)."""

    def active(self, batch: dict) -> bool:
        """Whether the batch carries what this objective needs."""
        return all(batch.get(key) is not None for key in self.input_keys)

    def read_positions(self, batch: dict) -> torch.Tensor | None:
        """(B, Q) positions of the last layer this objective reads; None = every position."""
        return None

    def forward(self, hidden: torch.Tensor, batch: dict, model: nn.Module) -> ObjectiveOutput:
        """The loss and statistics from ``hidden``, the encoder rows at :meth:`read_positions`."""
        raise NotImplementedError


def classification_stats(logits: torch.Tensor, labels: torch.Tensor, mean_loss: torch.Tensor | None = None) -> dict:
    """``{"nll": (sum of -log p(label), n), "accuracy": (correct, n)}`` over labels != -100.

    ``mean_loss``, when the caller already has ``F.cross_entropy(logits, labels, ignore_index=-100)``
    (the mean over those n), gives ``sum = mean_loss * n`` without a second pass over the logits.
    Counts are plain numbers: the statistics are detached from the graph.
    """
    with torch.no_grad():
        labels = labels.reshape(-1).long()
        logits = logits.reshape(labels.numel(), -1)
        keep = labels != IGNORE_INDEX
        count = int(keep.sum())
        if count == 0:
            return {"nll": (0.0, 0), "accuracy": (0, 0)}
        if mean_loss is not None:
            nll = float(mean_loss) * count
        else:
            nll = float(torch.nn.functional.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX,
                                                          reduction="sum"))
        correct = int(((logits.argmax(-1) == labels) & keep).sum())
    return {"nll": (nll, count), "accuracy": (correct, count)}


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """``(loss, stats)`` for (N, C) ``logits`` and (N,) ``labels``: ``loss`` = mean over labels != -100 of
    ``-log softmax(logits)[label]`` (``F.cross_entropy``), or a zero that keeps the graph connected when
    no label is set; ``stats`` = :func:`classification_stats` from that loss."""
    labels = labels.reshape(-1).long()
    if bool((labels != IGNORE_INDEX).any()):
        loss = torch.nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
    else:
        loss = logits.sum() * 0.0
    return loss, classification_stats(logits, labels, loss)


# --------------------------------------------------------------------------- batches

def pad_batch(items: Sequence[dict], pad_id: int, keys: Sequence[str] = ("input_ids", "token_type_ids"),
              fills: dict | None = None) -> dict[str, np.ndarray]:
    """Right-pad the variable-length arrays ``keys`` of ``items`` into (B, T) int64 arrays, plus
    ``attention_mask`` (1 = token, 0 = padding). ``input_ids`` are padded with ``pad_id``, other
    keys with ``fills.get(key, 0)``; a key absent from the first item is skipped."""
    if not items:
        raise Word2BertError("cannot build a batch from no items")
    lengths = np.array([len(item["input_ids"]) for item in items])
    width = int(lengths.max())
    mask = np.arange(width)[None, :] < lengths[:, None]
    fills = {"input_ids": pad_id, **(fills or {})}
    out = {}
    for key in keys:
        if key not in items[0]:
            continue
        array = np.full((len(items), width), fills.get(key, 0), dtype=np.int64)
        array[mask] = np.concatenate([np.asarray(item[key], dtype=np.int64) for item in items])
        out[key] = array
    out["attention_mask"] = mask.astype(np.int64)
    return out


def to_tensors(batch: dict) -> dict:
    """numpy arrays -> tensors (bool stays bool, integers become int64); other values pass through."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, np.ndarray):
            tensor = torch.from_numpy(np.ascontiguousarray(value))
            if value.dtype != np.bool_ and np.issubdtype(value.dtype, np.integer):
                tensor = tensor.long()
            out[key] = tensor
        else:
            out[key] = value
    return out


class ObjectiveCollator:
    """Items -> the keyword arguments of a model with ``objectives``: pad, then each ``prepare``.

    ``collate(items, rng)``: ``rng`` is the numpy Generator the trainer derives from
    (seed, epoch, micro-batch, rank), so corruption is reproducible and resumable.
    ``keys`` are the per-token arrays of the items to pad.
    """

    def __init__(self, objectives, pad_id: int = 0, keys: Sequence[str] = ("input_ids", "token_type_ids")):
        self.objectives = list(objectives.values()) if hasattr(objectives, "values") else list(objectives)
        self.pad_id = pad_id
        self.keys = tuple(keys)

    def __call__(self, items: Sequence[dict], rng: np.random.Generator | None = None) -> dict:
        batch = pad_batch(items, self.pad_id, self.keys)
        for objective in self.objectives:
            objective.prepare(batch, items, rng)
        return to_tensors(batch)


__all__ = ["IGNORE_INDEX", "Objective", "ObjectiveCollator", "ObjectiveOutput", "classification_stats",
           "pad_batch", "to_tensors"]
