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

Subclasses that choose *different positions* (whole words, spans, phrases) override
:meth:`MaskedLM.select_positions` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from word2bert.errors import Word2BertError

IGNORE_INDEX = -100


@dataclass
class MaskedLM:
    """The MLM corruption: choose positions, apply 80/10/10, emit positions and labels.

    ``special_ids`` are never chosen ([CLS], [SEP], [PAD], [MASK], [UNK] by default).
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
        n_candidates = candidates.sum(axis=1)
        n_predict = np.minimum(self.max_predictions_per_seq,
                               np.maximum(1, np.rint(n_candidates * self.masked_lm_prob).astype(np.int64)))
        n_predict = np.minimum(n_predict, n_candidates)
        keyed = np.where(candidates, scores, 2.0)
        ranks = np.argsort(np.argsort(keyed, axis=1, kind="stable"), axis=1, kind="stable")
        return ranks < n_predict[:, None]

    def apply(self, input_ids: np.ndarray, attention_mask: np.ndarray, rng: np.random.Generator | None = None,
              instance_ids=None) -> dict[str, np.ndarray]:
        """Corrupt a padded batch ``input_ids`` (B, T).

        Returns ``input_ids`` (corrupted copy), ``masked_positions`` (B, P) and ``masked_labels``
        (B, P), where P is the largest number of predictions in the batch; unused slots have
        position 0 and label -100. Positions are in increasing order within a row.
        """
        input_ids = np.asarray(input_ids, dtype=np.int64)
        attention_mask = np.asarray(attention_mask)
        lengths = attention_mask.sum(axis=1).astype(np.int64)
        scores, actions, randoms = self.draw_uniforms(lengths, input_ids.shape[1], rng, instance_ids)
        chosen = self.select_positions(input_ids, self.candidates(input_ids, attention_mask), scores)
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
        return {"input_ids": corrupted, "masked_positions": positions, "masked_labels": labels}
