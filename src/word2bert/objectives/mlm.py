"""Masked language modelling (BERT, Devlin et al. 2019, section 3.1 and appendix A.1).

Which positions are predicted: ``num_to_predict = min(max_predictions_per_seq,
max(1, round(masked_lm_prob * n)))`` positions drawn uniformly without replacement from the
``n`` non-special, non-padding tokens of a sequence (google-research/bert
``create_masked_lm_predictions``; it counts ``n`` with [CLS]/[SEP] included, we count only the
candidates so that exactly 15% of the real tokens are predicted). Each chosen token is
replaced by ``[MASK]`` with probability 0.8, by a token drawn uniformly from the vocabulary
with probability 0.1, and left unchanged with probability 0.1; the label is the original token.

**Static vs dynamic masking is one option of this objective.** Static (BERT): the masks of a
sequence are a function of the sequence's identity (its instance index and the seed), so the
same copy is masked the same way every epoch; the data set holds ``dupe_factor`` copies of the
corpus, each masked differently. Dynamic (RoBERTa): a new mask every time a sequence is used,
drawn from the batch's random stream.

**Units.** Whole-word masking, SpanBERT spans, n-grams, phrases and entities differ from BERT's
token masking only in *which* positions are chosen: ``units`` is a selector object with
``select(input_ids, candidates, n_predict, rng) -> unit_ids`` that returns, per token, the
position of the first token of the chosen unit it belongs to (-1 = not chosen), never more than
``n_predict`` tokens a row, never a non-candidate. The 80/10/10 decision is then made **per unit** (all tokens of a unit are masked, or
all replaced by random tokens, or all kept). Without ``units`` each token is its own unit (BERT).

:class:`MaskedLMObjective` is the objective (``word2bert.objectives.base``): it applies this
corruption in ``prepare``, reads the last layer at the masked positions only, and predicts the
original tokens with :class:`MaskedLMHead`, whose decoder is tied to the input embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.objectives.base import Objective, ObjectiveOutput, classification_loss

IGNORE_INDEX = -100


@dataclass
class MaskedLM:
    """The MLM corruption: choose positions, apply 80/10/10, emit positions and labels.

    ``special_ids`` are never chosen ([CLS], [SEP], [PAD], [MASK], [UNK] by default).
    ``return_unit_ids``: :meth:`apply` also emits ``masked_unit_ids`` (what SpanBERT's boundary
    objective reads to tell two touching spans apart).
    """

    vocab_size: int
    mask_id: int
    special_ids: tuple = ()
    pad_id: int = 0
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 20
    mask_token_prob: float = 0.8
    random_token_prob: float = 0.1
    dynamic: bool = True
    seed: int = 0
    units: Any = None
    return_unit_ids: bool = False

    def __post_init__(self):
        if not 0.0 < self.masked_lm_prob < 1.0:
            raise Word2BertError(f"parameter masked_lm_prob={self.masked_lm_prob} must be in (0, 1)")
        if self.max_predictions_per_seq < 1:
            raise Word2BertError(f"parameter max_predictions_per_seq={self.max_predictions_per_seq} must be >= 1")
        if self.mask_token_prob < 0 or self.random_token_prob < 0 or \
                self.mask_token_prob + self.random_token_prob > 1:
            raise Word2BertError("mask_token_prob and random_token_prob must be >= 0 and sum to <= 1")
        if self.mask_id is None:
            raise Word2BertError("the vocabulary has no [MASK] token, which masked language modelling needs")
        self.special_ids = tuple(sorted(set(int(i) for i in self.special_ids) | {int(self.pad_id), int(self.mask_id)}))

    # ------------------------------------------------------------------ random numbers
    def draw_uniforms(self, lengths: np.ndarray, width: int, rng: np.random.Generator | None,
                      instance_ids=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Random numbers for a batch: selection scores, 80/10/10 draws and random token ids, each (B, T).

        Dynamic masking draws them from ``rng``; static masking from one generator per
        sequence seeded by ``(seed, instance_id)`` over its real length only, so a sequence
        gets the same mask whatever batch or padding it comes in.
        """
        batch = len(lengths)
        if self.dynamic:
            if rng is None:
                rng = np.random.default_rng()
            return (rng.random((batch, width)), rng.random((batch, width)),
                    rng.integers(0, self.vocab_size, (batch, width)))
        if instance_ids is None:
            raise Word2BertError("static masking needs the instance index of every sequence")
        scores = np.ones((batch, width))
        actions = np.ones((batch, width))
        randoms = np.zeros((batch, width), dtype=np.int64)
        for row, (length, instance) in enumerate(zip(lengths, instance_ids)):  # per sequence, not per token
            row_rng = np.random.default_rng([int(self.seed), int(instance)])
            scores[row, :length] = row_rng.random(length)
            actions[row, :length] = row_rng.random(length)
            randoms[row, :length] = row_rng.integers(0, self.vocab_size, length)
        return scores, actions, randoms

    # ------------------------------------------------------------------ the objective
    def candidates(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Positions that may be predicted: real tokens that are not special."""
        return (attention_mask > 0) & ~np.isin(input_ids, self.special_ids)

    def select_positions(self, input_ids: np.ndarray, candidates: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Bool (B, T): the ``min(max_pred, max(1, round(p * n)))`` candidates with the smallest scores.

        With i.i.d. uniform scores this is a uniform draw without replacement.
        """
        n_predict = self.budget(candidates)
        keyed = np.where(candidates, scores, 2.0)
        ranks = np.argsort(np.argsort(keyed, axis=1, kind="stable"), axis=1, kind="stable")
        return ranks < n_predict[:, None]

    def budget(self, candidates: np.ndarray) -> np.ndarray:
        """Tokens to predict per row: ``min(max_predictions, max(1, round(p * n)), n)``, n = candidates."""
        n_candidates = candidates.sum(axis=1)
        n_predict = np.minimum(self.max_predictions_per_seq,
                               np.maximum(1, np.rint(n_candidates * self.masked_lm_prob).astype(np.int64)))
        return np.minimum(n_predict, n_candidates)

    def select_units(self, input_ids: np.ndarray, candidates: np.ndarray, actions: np.ndarray,
                     rng: np.random.Generator | None, instance_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Chosen tokens (B, T) from the unit selector, the 80/10/10 draws shared within a unit, and
        the selector's unit ids (B, T) (first position of each chosen token's unit, -1 elsewhere).

        Every token of a unit takes the action draw of the unit's first token, so the whole unit
        is masked, replaced or kept together. Static masking runs the selector row by row with the
        row's own generator (seeded by the instance), as for tokens.
        """
        n_predict = self.budget(candidates)
        if self.dynamic:
            unit_ids = np.asarray(self.units.select(input_ids, candidates, n_predict,
                                                    rng if rng is not None else np.random.default_rng()))
        else:
            unit_ids = np.full(input_ids.shape, -1, dtype=np.int64)
            for row, instance in enumerate(instance_ids):  # per sequence, not per token
                row_rng = np.random.default_rng([int(self.seed), int(instance), 1])
                unit_ids[row] = self.units.select(input_ids[row:row + 1], candidates[row:row + 1],
                                                  n_predict[row:row + 1], row_rng)[0]
        chosen = unit_ids >= 0
        if unit_ids.shape != input_ids.shape or bool((unit_ids >= input_ids.shape[1]).any()):
            raise Word2BertError(f"unit selector {type(self.units).__name__} returned ids outside the sequence")
        if bool((chosen & ~candidates).any()) or bool((chosen.sum(axis=1) > n_predict).any()):
            raise Word2BertError(f"unit selector {type(self.units).__name__} chose a special token or "
                                 "more tokens than the prediction budget")
        # the action of a unit is the draw at its first token, so the unit is treated as one
        unit_actions = np.take_along_axis(actions, np.where(chosen, unit_ids, 0), axis=1)
        return chosen, np.where(chosen, unit_actions, actions), unit_ids

    def apply(self, input_ids: np.ndarray, attention_mask: np.ndarray, rng: np.random.Generator | None = None,
              instance_ids=None) -> dict[str, np.ndarray]:
        """Corrupt a padded batch ``input_ids`` (B, T).

        Returns ``input_ids`` (corrupted copy), ``masked_positions`` (B, P) and ``masked_labels``
        (B, P), where P is the largest number of predictions in the batch; unused slots have
        position 0 and label -100. Positions are in increasing order within a row. With
        ``return_unit_ids`` also ``masked_unit_ids`` (B, P): the position of the first token of each
        slot's unit (-1 for unused slots; without a unit selector a token is its own unit).
        """
        input_ids = np.asarray(input_ids, dtype=np.int64)
        attention_mask = np.asarray(attention_mask)
        lengths = attention_mask.sum(axis=1).astype(np.int64)
        scores, actions, randoms = self.draw_uniforms(lengths, input_ids.shape[1], rng, instance_ids)
        candidates = self.candidates(input_ids, attention_mask)
        if self.units is None:
            chosen = self.select_positions(input_ids, candidates, scores)
            unit_ids = np.where(chosen, np.arange(input_ids.shape[1])[None, :], -1)  # each token its own unit
        else:
            chosen, actions, unit_ids = self.select_units(input_ids, candidates, actions, rng, instance_ids)
        corrupted = input_ids.copy()
        to_mask = chosen & (actions < self.mask_token_prob)
        to_random = chosen & (actions >= 1.0 - self.random_token_prob)  # the 10% "unchanged" lie between
        corrupted[to_mask] = self.mask_id
        corrupted[to_random] = randoms[to_random]
        counts = chosen.sum(axis=1)
        width = max(1, int(counts.max()) if len(counts) else 1)
        order = np.argsort(~chosen, axis=1, kind="stable")[:, :width]  # chosen positions first, ascending
        valid = np.arange(width)[None, :] < counts[:, None]
        positions = np.where(valid, order, 0)
        labels = np.where(valid, np.take_along_axis(input_ids, order, axis=1), IGNORE_INDEX)
        masked = {"input_ids": corrupted, "masked_positions": positions, "masked_labels": labels}
        if self.return_unit_ids:
            masked["masked_unit_ids"] = np.where(valid, np.take_along_axis(unit_ids, order, axis=1), -1)
        return masked


class MaskedLMHead(nn.Module):
    """BERT's masked-LM head on hidden vectors h (N, d), decoder tied to the word embeddings E (V, d)::

        logits = LayerNorm(act(h W_t + b_t)) E^T + b
    """

    def __init__(self, hidden_size: int, vocab_size: int, activation: str = "gelu", layer_norm_eps: float = 1e-12):
        super().__init__()
        from word2bert.nn.transformer import get_activation

        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = get_activation(activation)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        transformed = self.layer_norm(self.activation(self.dense(hidden)))
        return F.linear(transformed, word_embeddings, self.bias)


class MaskedLMObjective(Objective):
    """Masked language modelling as an objective.

    ``prepare`` corrupts ``input_ids`` with ``masking`` (a :class:`MaskedLM`) and adds
    ``masked_positions`` (B, P) and ``masked_labels`` (B, P, -100 for unused slots); the model reads
    the last layer at the masked positions only; ``forward`` returns

        loss = mean over predicted positions of -log softmax(head(h_p))[original token]

    with statistics ``nll`` and ``accuracy``. ``head`` may be None for an objective that only builds
    batches (a collator outside the model).
    """

    input_keys = ("masked_positions",)

    def __init__(self, head: MaskedLMHead | None = None, masking: MaskedLM | None = None):
        super().__init__()
        self.head = head
        self.masking = masking

    def prepare(self, batch, items, rng) -> None:
        if self.masking is None:
            raise Word2BertError("the masked-LM objective has no masking settings (MaskedLM) to build batches with")
        instance_ids = [item.get("index", 0) for item in items]
        masked = self.masking.apply(batch["input_ids"], batch["attention_mask"], rng, instance_ids=instance_ids)
        batch.update(masked)

    def active(self, batch) -> bool:
        if batch.get("masked_positions") is None and batch.get("masked_labels") is not None:
            raise Word2BertError("masked_labels given without masked_positions")
        return batch.get("masked_positions") is not None

    def read_positions(self, batch) -> torch.Tensor:
        positions = batch["masked_positions"].long()
        input_ids = batch["input_ids"]
        seq_len = input_ids.shape[1]
        if positions.dim() != 2 or positions.shape[0] != input_ids.shape[0]:
            raise Word2BertError(f"masked_positions must be (batch, predictions), got shape {tuple(positions.shape)}")
        if positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= seq_len):
            raise Word2BertError(f"masked_positions must index into the sequence length {seq_len}")
        return positions

    def forward(self, hidden, batch, model) -> ObjectiveOutput:
        logits = self.head(hidden, model.get_input_embeddings().weight)
        labels = batch.get("masked_labels")
        if labels is None:
            return ObjectiveOutput(logits=logits)
        if tuple(labels.shape) != tuple(batch["masked_positions"].shape):
            raise Word2BertError(f"masked_labels shape {tuple(labels.shape)} != masked_positions shape "
                                 f"{tuple(batch['masked_positions'].shape)}")
        loss, stats = classification_loss(logits.reshape(-1, logits.shape[-1]), labels)
        return ObjectiveOutput(loss=loss, stats=stats, logits=logits)
