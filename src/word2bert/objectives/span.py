"""SpanBERT's span boundary objective (Joshi et al. 2020, section 3.2; facebookresearch/SpanBERT).

Each token ``x_i`` of a masked span ``(s, e)`` is predicted a second time from the two tokens just
outside the span and its place in the span only::

    h0 = [x_{s-1} ; x_{e+1} ; p_{i-s+1}]          (concatenation; p: relative position embeddings)
    h1 = LayerNorm(GeLU(W1 h0))
    y  = LayerNorm(GeLU(W2 h1))
    logits = y E^T + b                              (E: the input embeddings, tied as in the MLM head)

and SpanBERT's loss is ``L_MLM + L_SBO`` (the two objectives of one pre-training model, weights 1).
The span of each masked token comes from the masking's ``masked_unit_ids`` (the first position of
its unit) when the batch has them, else from runs of consecutive masked positions (which joins two
spans that touch). Sizes follow the reference code: relative positions up to ``max_targets`` = 20
tokens, position embeddings of size 200.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.nn.transformer import get_activation
from word2bert.nn.linear_cross_entropy import Workspace, linear_cross_entropy
from word2bert.objectives.base import IGNORE_INDEX, Objective, ObjectiveOutput


class SpanBoundaryHead(nn.Module):
    """The SBO head (see the module docstring): boundary vectors + relative position -> vocabulary logits."""

    def __init__(self, hidden_size: int, vocab_size: int, max_targets: int = 20, position_size: int = 200,
                 activation: str = "gelu", layer_norm_eps: float = 1e-12):
        super().__init__()
        self.position_embeddings = nn.Embedding(max_targets, position_size)
        self.dense1 = nn.Linear(2 * hidden_size + position_size, hidden_size)
        self.layer_norm1 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dense2 = nn.Linear(hidden_size, hidden_size)
        self.layer_norm2 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.activation = get_activation(activation)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.max_targets = max_targets

    def transform(self, left: torch.Tensor, right: torch.Tensor, relative: torch.Tensor) -> torch.Tensor:
        """y (..., H) from ``left``, ``right`` (..., H) boundary vectors and ``relative`` (...) 0-based
        offsets in the span: everything but the output layer."""
        h0 = torch.cat([left, right, self.position_embeddings(relative.clamp(0, self.max_targets - 1))], dim=-1)
        h1 = self.layer_norm1(self.activation(self.dense1(h0)))
        return self.layer_norm2(self.activation(self.dense2(h1)))

    def forward(self, left: torch.Tensor, right: torch.Tensor, relative: torch.Tensor,
                word_embeddings: torch.Tensor) -> torch.Tensor:
        """logits = transform(left, right, relative) E^T + b."""
        return F.linear(self.transform(left, right, relative), word_embeddings, self.bias)


def span_bounds(positions: np.ndarray, valid: np.ndarray, unit_ids: np.ndarray | None = None):
    """First and last position of the span of every masked slot (B, P), -1 where not ``valid``.

    ``positions`` are increasing within a row (as MaskedLM emits them). With ``unit_ids`` a span is
    the slots of one unit; without, a run of consecutive positions.
    """
    rows, width = positions.shape
    first = np.full(positions.shape, -1, dtype=np.int64)
    last = np.full(positions.shape, -1, dtype=np.int64)
    row_index, slot = np.nonzero(valid)
    if len(slot) == 0:
        return first, last
    flat = positions[row_index, slot].astype(np.int64)
    if unit_ids is not None:
        group = unit_ids[row_index, slot].astype(np.int64)
        new = np.r_[True, (row_index[1:] != row_index[:-1]) | (group[1:] != group[:-1])]
    else:
        new = np.r_[True, (row_index[1:] != row_index[:-1]) | (flat[1:] != flat[:-1] + 1)]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.r_[starts, len(flat)])
    first[row_index, slot] = np.repeat(flat[starts], sizes)
    last[row_index, slot] = np.repeat(np.maximum.reduceat(flat, starts), sizes)
    return first, last


class SpanBoundaryObjective(Objective):
    """The SBO as an objective: runs after the masked-LM objective has masked the batch.

    ``prepare`` adds ``sbo_left`` / ``sbo_right`` (B, P), the boundary positions ``s - 1`` and
    ``e + 1`` of every masked token's span, and ``sbo_relative`` (B, P) = ``i - s``; the model reads
    the last layer at the boundaries only; ``forward`` predicts ``masked_labels`` and returns
    ``loss = mean -log p(x_i | x_{s-1}, x_{e+1}, p_{i-s+1})`` with ``nll`` / ``accuracy``. With targets
    the output layer and its softmax cross-entropy run as one step over the real targets only
    (:func:`~word2bert.nn.linear_cross_entropy.linear_cross_entropy`: no (B, P, V) logits are kept, so
    the output carries none; ``head(...)`` gives them).
    """

    input_keys = ("sbo_left", "sbo_right", "sbo_relative", "masked_labels")

    def __init__(self, head: SpanBoundaryHead | None = None):
        super().__init__()
        self.head = head
        self.workspace = Workspace()  # the output layer's logits buffer, kept between steps

    def prepare(self, batch, items, rng) -> None:
        if "masked_positions" not in batch or "masked_labels" not in batch:
            raise Word2BertError("the span boundary objective comes after a masked-LM objective (it reads "
                                 "masked_positions and masked_labels)")
        positions = np.asarray(batch["masked_positions"])
        valid = np.asarray(batch["masked_labels"]) != IGNORE_INDEX
        first, last = span_bounds(positions, valid, batch.get("masked_unit_ids"))
        width = np.asarray(batch["input_ids"]).shape[1]
        batch["sbo_left"] = np.where(valid, np.clip(first - 1, 0, width - 1), 0)
        batch["sbo_right"] = np.where(valid, np.clip(last + 1, 0, width - 1), 0)
        batch["sbo_relative"] = np.where(valid, positions - first, 0)

    def read_positions(self, batch) -> torch.Tensor:
        return torch.cat([batch["sbo_left"].long(), batch["sbo_right"].long()], dim=1)

    def forward(self, hidden, batch, model) -> ObjectiveOutput:
        count = batch["sbo_left"].shape[1]
        y = self.head.transform(hidden[:, :count], hidden[:, count:], batch["sbo_relative"].long())
        embeddings = model.get_input_embeddings().weight
        labels = batch["masked_labels"].reshape(-1).long()
        targets = int((labels != IGNORE_INDEX).sum())
        loss, nll, correct = linear_cross_entropy(y.reshape(labels.numel(), -1), embeddings, labels, self.head.bias,
                                                  reduction="mean", ignore_index=IGNORE_INDEX, with_nll=True,
                                                  workspace=self.workspace)
        return ObjectiveOutput(loss=loss, stats={"nll": (float(nll) * targets, targets),
                                                 "accuracy": (int(correct), targets)})


__all__ = ["SpanBoundaryHead", "SpanBoundaryObjective", "span_bounds"]
