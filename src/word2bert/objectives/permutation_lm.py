"""Permutation language modelling (XLNet, Yang et al. 2019): factorisation orders realised as masks.

For a sequence x and a factorisation order z (a permutation of its positions), XLNet maximises
``sum_{t > c} log p(x_{z_t} | x_{z_<t})``: only the last positions of the order are predicted
(*partial prediction*: about 1/K of the tokens, K = 6 or 7 in the paper). Nothing is reordered; the
order becomes two attention masks (:func:`two_stream_masks`):

- content stream: position i sees j iff z(j) <= z(i) (itself included);
- query stream:   position i sees j iff z(j) <  z(i) (its own position, never its own content).

As in the reference data pipeline (``data_utils.py``: ``_sample_mask``, ``_local_perm``), the tokens
that are not predicted come first in the order and see each other freely; the predicted ones follow
in a random order. Which tokens are predicted: ``target_unit="span"`` builds the reference's n-gram
spans (n in 1..5 with p(n) ∝ 1/n, one span of n words in every context of ``n * mask_alpha /
mask_beta`` tokens: about 1/6 of the tokens for alpha 6, beta 1, i.e. 85 predictions per 512
tokens), ``"token"`` picks single tokens uniformly (the last |x|/K positions of a uniformly random
order). ``bi_data`` reverses the second half of every batch (XLNet's bidirectional data; the model
then negates its relative distances for that half).

The batch it builds holds transformers' names: ``perm_mask`` (B, T, T), 1/True where i may NOT see
j; ``target_mapping`` (B, Q, T), one-hot rows of the predicted positions (all-zero rows pad);
``labels`` (B, Q), the tokens to predict (-100 padding). These are exactly the keyword arguments of
transformers' ``XLNetLMHeadModel`` and of :class:`word2bert.models.xlnet.XLNetLMHeadModel`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.objectives.base import (
    IGNORE_INDEX,
    Objective,
    ObjectiveOutput,
    to_tensors,
)

TARGET_UNITS = ("span", "token")


# --------------------------------------------------------------------------- orders

def sample_orders(batch: int, length: int, rng: np.random.Generator, perm_size: int | None = None) -> np.ndarray:
    """Factorisation orders as ranks: ``ranks[b, i]`` is the step of the order at which position i comes.

    Every row is an independent, uniformly random permutation of ``range(length)``. With ``perm_size``
    (the reference's ``_local_perm``) the sequence is cut into blocks of ``perm_size`` positions
    visited block after block, all blocks of a row sharing one random order inside the block.
    """
    perm_size = length if perm_size is None else perm_size
    if perm_size < 1 or length % perm_size:
        raise Word2BertError(f"parameter perm_size={perm_size} must divide the sequence length {length}")
    within = np.argsort(rng.random((batch, perm_size)), axis=1)  # a uniformly random permutation per row
    blocks = np.arange(length // perm_size) * perm_size
    return (blocks[None, :, None] + within[:, None, :]).reshape(batch, length)


def permutation_mask(ranks: np.ndarray, is_target: np.ndarray, functional: np.ndarray | None = None) -> np.ndarray:
    """``perm_mask[b, i, j]`` True where position i may NOT see position j (the reference's ``_local_perm``).

    Non-predicted ordinary tokens are moved to the front of the order (rank -1): everyone sees them and
    they see none of the predicted tokens. A predicted token i sees j iff ``rank(j) < rank(i)``.
    ``functional`` tokens ([SEP], [CLS]) keep their rank, are never predicted and see themselves.
    The query stream uses this mask as is; the content stream also sees itself (:func:`two_stream_masks`).
    """
    ranks = np.asarray(ranks)
    is_target = np.asarray(is_target, dtype=bool)
    functional = np.zeros_like(is_target) if functional is None else np.asarray(functional, dtype=bool)
    ordinary_context = ~is_target & ~functional
    order_rank = np.where(ordinary_context, -1, ranks)
    predicted = is_target & ~functional
    own_rank = np.where(predicted, order_rank, order_rank + 1)  # a predicted token does not see itself
    return (own_rank[:, :, None] <= order_rank[:, None, :]) & ~ordinary_context[:, None, :]


def two_stream_masks(perm_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(content_allowed, query_allowed)`` (B, T, T): True where i may attend to j in each stream."""
    query_allowed = ~np.asarray(perm_mask, dtype=bool)
    content_allowed = query_allowed | np.eye(query_allowed.shape[-1], dtype=bool)[None]
    return content_allowed, query_allowed


# --------------------------------------------------------------------------- which tokens are predicted

def _span_length_probabilities(max_gram: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, max_gram + 1)
    return weights / weights.sum()


def span_targets(length: int, num_predict: int | None, rng: np.random.Generator, word_starts: np.ndarray | None = None,
                 mask_alpha: float = 6, mask_beta: float = 1, max_gram: int = 5,
                 eligible: np.ndarray | None = None) -> np.ndarray:
    """The reference's ``_sample_mask``: a boolean (length,) mask with exactly ``num_predict`` True.

    Walk left to right; each step draws n in 1..max_gram with p(n) ∝ 1/n, a context of
    ``ctx = n * mask_alpha // mask_beta`` tokens and a left part ``l ~ U{0..ctx-1}``; the span of n
    words starts at the first word start at or after ``cursor + l`` and the cursor moves ``ctx - l``
    past its end, so every span of n tokens spends ``n + ctx`` tokens: the walk alone predicts about
    ``length * beta / (alpha + beta)`` tokens (1/7 for 6 and 1). A span that would reach the end of
    the sequence stops the walk; then random single tokens fill up to ``num_predict`` (None: no goal,
    the walk alone, as the reference without ``num_predict``). ``word_starts`` (bool per token; None: every token is a word)
    keeps spans on whole words. The reference's word counter inspects the span's first piece rather
    than each new piece, so its spans count n pieces; here they count n words (the same when every
    token is a word). ``eligible`` (bool) excludes tokens (padding, specials) from every span.
    """
    if num_predict is not None and num_predict < 0:
        raise Word2BertError(f"num_predict={num_predict} must be >= 0")
    starts = np.ones(length, dtype=bool) if word_starts is None else np.asarray(word_starts, dtype=bool)
    allowed = np.ones(length, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    goal = int(allowed.sum()) if num_predict is None else min(num_predict, int(allowed.sum()))
    mask = np.zeros(length, dtype=bool)
    probabilities = _span_length_probabilities(max_gram)
    cursor = predicted = 0
    while cursor < length and predicted < goal:
        n = min(int(rng.choice(max_gram, p=probabilities)) + 1, goal - predicted)
        context = int(n * mask_alpha // mask_beta)
        left = int(rng.integers(context)) if context > 0 else 0
        begin = cursor + left
        while begin < length and not (starts[begin] and allowed[begin]):
            begin += 1
        if begin >= length:
            break
        end, words = begin + 1, 1
        while end < length and allowed[end]:  # the span stops before padding or a special token
            if starts[end]:
                words += 1
                if words > n:
                    break
            end += 1
        if end >= length:
            break
        mask[begin:end] = True
        predicted += end - begin
        cursor = end + context - left
    if num_predict is None:
        return mask
    if predicted < goal:  # fill up with random single tokens
        free = np.flatnonzero(~mask & allowed)
        mask[rng.choice(free, size=goal - predicted, replace=False)] = True
    elif predicted > goal:  # the last span's words had several pieces: keep the count exact
        mask[np.flatnonzero(mask)[goal:]] = False
    return mask


def token_targets(length: int, num_predict: int, rng: np.random.Generator,
                  eligible: np.ndarray | None = None) -> np.ndarray:
    """``num_predict`` positions chosen uniformly among the eligible ones: the last ``num_predict``
    steps of a uniformly random factorisation order."""
    allowed = np.ones(length, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    candidates = np.flatnonzero(allowed)
    mask = np.zeros(length, dtype=bool)
    mask[rng.choice(candidates, size=min(num_predict, len(candidates)), replace=False)] = True
    return mask


# --------------------------------------------------------------------------- the objective

class PermutationLanguageModeling(Objective):
    """XLNet's permutation-LM objective: builds the batch (numpy) and scores the query stream (torch).

    ``vocab_size``: the size of the head's output bias (the decoder is the encoder's word embeddings,
    tied); None builds a batch-only objective without a head.
    ``prediction_k``: the paper's K, about ``length / K`` tokens of each sequence are predicted (when
    ``num_predict`` is not given). ``num_predict``: a fixed number of predictions per sequence (the
    reference's ``num_predict``, 85 for 512 tokens). ``target_unit``: "span" or "token".
    ``perm_size``: orders over blocks of that many positions (None: the whole sequence).
    ``functional_ids``: token ids ([SEP], [CLS]) that are never predicted and keep their place.
    ``word_start``: a boolean array over the vocabulary, True for pieces that start a word (e.g.
    SentencePiece's "▁" pieces), for whole-word spans. ``bi_data``: reverse the second half of the batch.
    """

    input_keys = ("labels",)

    def __init__(self, vocab_size: int | None = None, prediction_k: float = 6.0, num_predict: int | None = None,
                 target_unit: str = "span", mask_alpha: float = 6, mask_beta: float = 1, max_gram: int = 5,
                 perm_size: int | None = None, functional_ids=(), word_start: np.ndarray | None = None,
                 bi_data: bool = False, pad_id: int | None = None):
        super().__init__()
        if isinstance(prediction_k, bool) or not isinstance(prediction_k, (int, float)) or not prediction_k >= 1:
            raise Word2BertError(f"parameter prediction_k (K)={prediction_k!r} must be >= 1: about 1/K of the "
                                 "tokens are predicted")
        if num_predict is not None and (isinstance(num_predict, bool) or not isinstance(num_predict, int)
                                        or num_predict < 1):
            raise Word2BertError(f"parameter num_predict={num_predict!r} must be a positive integer")
        if target_unit not in TARGET_UNITS:
            raise Word2BertError(f"parameter target_unit={target_unit!r} must be one of {', '.join(TARGET_UNITS)}")
        if not mask_alpha > 0 or not mask_beta > 0 or mask_alpha < mask_beta:
            raise Word2BertError(f"mask_alpha={mask_alpha} and mask_beta={mask_beta} must be > 0 with "
                                 "mask_alpha >= mask_beta (beta tokens predicted in every alpha)")
        if not isinstance(max_gram, int) or max_gram < 1:
            raise Word2BertError(f"parameter max_gram={max_gram!r} must be a positive integer")
        if perm_size is not None and (not isinstance(perm_size, int) or perm_size < 1):
            raise Word2BertError(f"parameter perm_size={perm_size!r} must be a positive integer")
        self.prediction_k = float(prediction_k)
        self.num_predict = num_predict
        self.target_unit = target_unit
        self.mask_alpha, self.mask_beta, self.max_gram = mask_alpha, mask_beta, max_gram
        self.perm_size = perm_size
        self.functional_ids = np.asarray(sorted({int(i) for i in functional_ids}), dtype=np.int64)
        self.word_start = None if word_start is None else np.asarray(word_start, dtype=bool)
        self.bi_data = bi_data
        self.pad_id = pad_id
        self.bias = nn.Parameter(torch.zeros(vocab_size)) if vocab_size else None

    def predictions_for(self, length: int) -> int:
        """How many tokens of a sequence of ``length`` real tokens are predicted."""
        if self.num_predict is not None:
            return min(self.num_predict, length)
        return min(length, max(1, round(length / self.prediction_k)))

    def prepare(self, batch: dict, items: Sequence[dict] | None = None,
                rng: np.random.Generator | None = None) -> None:
        """Add ``perm_mask``, ``target_mapping`` and ``labels`` to a padded numpy batch in place.

        ``batch["input_ids"]`` (B, T) and optionally ``batch["attention_mask"]`` (B, T, 1 = token);
        with ``bi_data`` the second half's tokens are reversed (within their real length) first.
        """
        rng = rng if rng is not None else np.random.default_rng()
        input_ids = np.asarray(batch["input_ids"])
        if input_ids.ndim != 2:
            raise Word2BertError(f"input_ids must be (batch, length), got shape {input_ids.shape}")
        size, length = input_ids.shape
        real = np.asarray(batch.get("attention_mask", np.ones_like(input_ids))).astype(bool)
        lengths = real.sum(axis=1)
        if self.bi_data:
            if size % 2:
                raise Word2BertError(f"bi_data needs an even batch size, got {size}")
            input_ids = input_ids.copy()
            for row in range(size // 2, size):
                input_ids[row, :lengths[row]] = input_ids[row, :lengths[row]][::-1]
            batch["input_ids"] = input_ids
            if "token_type_ids" in batch:
                types = np.asarray(batch["token_type_ids"]).copy()
                for row in range(size // 2, size):
                    types[row, :lengths[row]] = types[row, :lengths[row]][::-1]
                batch["token_type_ids"] = types
        functional = np.isin(input_ids, self.functional_ids) & real
        eligible = real & ~functional
        is_target = np.zeros((size, length), dtype=bool)
        for row in range(size):
            count = self.predictions_for(int(eligible[row].sum()))
            if self.target_unit == "span":
                starts = None if self.word_start is None else self.word_start[input_ids[row]]
                is_target[row] = span_targets(length, count, rng, starts, self.mask_alpha, self.mask_beta,
                                              self.max_gram, eligible[row])
            else:
                is_target[row] = token_targets(length, count, rng, eligible[row])
        ranks = sample_orders(size, length, rng, self.perm_size)
        batch["perm_mask"] = permutation_mask(ranks, is_target, functional)
        counts = is_target.sum(axis=1)
        width = max(1, int(counts.max()))
        target_mapping = np.zeros((size, width, length), dtype=np.float32)
        labels = np.full((size, width), IGNORE_INDEX, dtype=np.int64)
        for row in range(size):
            positions = np.flatnonzero(is_target[row])
            target_mapping[row, np.arange(len(positions)), positions] = 1.0
            labels[row, :len(positions)] = input_ids[row, positions]
        batch["target_mapping"] = target_mapping
        batch["labels"] = labels

    def collate(self, items: list[dict], rng: np.random.Generator | None = None, pad_id: int | None = None):
        """Pad ``items`` (dicts with ``input_ids``), :meth:`prepare`, and return torch tensors."""
        pad = self.pad_id if pad_id is None else pad_id
        width = max(len(item["input_ids"]) for item in items)
        lengths = np.array([len(item["input_ids"]) for item in items])
        real = np.arange(width)[None, :] < lengths[:, None]
        input_ids = np.full((len(items), width), 0 if pad is None else pad, dtype=np.int64)
        input_ids[real] = np.concatenate([np.asarray(item["input_ids"], dtype=np.int64) for item in items])
        batch = {"input_ids": input_ids}
        if not real.all():
            batch["attention_mask"] = real.astype(np.int64)
        self.prepare(batch, items, rng)
        return to_tensors(batch)

    # ------------------------------------------------------------------ the head and the loss
    def logits(self, hidden: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """``g E^T + b``: vocabulary logits of the query-stream rows ``hidden`` (..., d)."""
        return F.linear(hidden, model.get_input_embeddings().weight, self.bias)

    def forward(self, hidden: torch.Tensor, batch: dict, model: nn.Module) -> ObjectiveOutput:
        """Mean ``-log softmax(g E^T + b)[label]`` over the labels that are not -100, with the summable
        statistics ``nll`` = (sum, count) and ``accuracy`` = (correct, count). ``hidden`` (B, Q, d) are
        the query stream's rows; ``batch["labels"]`` (B, Q) the tokens at those positions."""
        labels = batch["labels"]
        if tuple(labels.shape) != tuple(hidden.shape[:2]):
            raise Word2BertError(f"labels of shape {tuple(labels.shape)} do not match the predicted rows "
                                 f"{tuple(hidden.shape[:2])}")
        loss, stats = output_layer_loss(hidden, model.get_input_embeddings().weight, self.bias, labels)
        return ObjectiveOutput(loss, stats)


def output_layer_loss(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Mean ``-log softmax(h W^T + b)[label]`` over the rows whose label is not -100 (the projection runs
    at those rows only), with the summable statistics ``nll`` = (sum, count) and ``accuracy`` =
    (correct, count). ``hidden`` (..., d) and ``labels`` (...) share their leading shape."""
    keep = labels != IGNORE_INDEX
    targets = labels[keep].long()
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= weight.shape[0]):
        raise Word2BertError(f"labels contain an id outside the vocabulary [0, {weight.shape[0]})")
    logits = F.linear(hidden[keep], weight, bias)
    count = int(targets.numel())
    if count == 0:  # nothing to predict in this batch: a zero loss that keeps the graph connected
        return logits.sum() * 0.0, {"nll": (0.0, 0), "accuracy": (0, 0)}
    nll_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
    with torch.no_grad():
        correct = int((logits.argmax(-1) == targets).sum())
    return nll_sum / count, {"nll": (float(nll_sum.detach()), count), "accuracy": (correct, count)}


def expected_walk_predictions(length: int, mask_alpha: float = 6, mask_beta: float = 1) -> float:
    """About how many tokens the span walk alone predicts in ``length`` tokens (no goal): every span of n
    tokens spends n + n * alpha / beta tokens, so ``length * beta / (alpha + beta)``."""
    return length * mask_beta / (mask_alpha + mask_beta)


__all__ = [
    "IGNORE_INDEX",
    "PermutationLanguageModeling",
    "expected_walk_predictions",
    "output_layer_loss",
    "permutation_mask",
    "sample_orders",
    "span_targets",
    "token_targets",
    "two_stream_masks",
]
