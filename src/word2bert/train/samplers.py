"""Which items form each micro-batch: a pure function of (seed, epoch), split across data-parallel ranks.

A sampler answers two questions for the :class:`~word2bert.train.Trainer`:

* ``num_batches(world_size)``: how many micro-batches an epoch has (every rank the same number);
* ``batches(epoch, rank, world_size)``: this rank's micro-batches of the epoch, each a list of keys
  into the training data (``train_data[key]``).

Because the batches depend only on (seed, epoch, rank), a position in the data is two integers
(epoch, micro-batch), which is what a checkpoint stores. ``stateful`` samplers deliver consecutive
batches that continue the same rows of a stream, so the trainer carries the model's ``state``
(LSTM states, Transformer-XL memory) from one to the next.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from word2bert.errors import Word2BertError


class Sampler:
    """Base class: see the module docstring."""

    stateful = False

    def num_batches(self, world_size: int = 1) -> int:
        raise NotImplementedError

    def batches(self, epoch: int, rank: int = 0, world_size: int = 1) -> list[list]:
        raise NotImplementedError


def _check(name: str, value: int, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise Word2BertError(f"parameter {name}={value!r} must be an integer >= {minimum}")


class ShuffledSampler(Sampler):
    """A permutation of the ``num_items`` items per epoch (or file order with ``shuffle=False``),
    cut into global batches of ``batch_size * world_size``; rank r takes items r, r + W, ... of each.

    With one process the last batch may be short; with several, only full global batches are used,
    so that every rank gets a full micro-batch (the same examples per step as one process with the
    combined batch).
    """

    def __init__(self, num_items: int, batch_size: int, seed: int = 0, shuffle: bool = True):
        _check("batch_size", batch_size)
        self.num_items, self.batch_size, self.seed, self.shuffle = int(num_items), int(batch_size), seed, shuffle

    def num_batches(self, world_size: int = 1) -> int:
        size = self.batch_size * world_size
        return self.num_items // size if world_size > 1 else math.ceil(self.num_items / size)

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_items)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_items)

    def batches(self, epoch: int, rank: int = 0, world_size: int = 1) -> list[list]:
        order, size = self.order(epoch), self.batch_size * world_size
        return [order[k * size:(k + 1) * size][rank::world_size].tolist() for k in range(self.num_batches(world_size))]


class LengthGroupedSampler(Sampler):
    """Batches of similar length, so little time goes to padding (Hugging Face's ``group_by_length``).

    Per epoch: shuffle the items, cut the order into "mega-batches" of ``mega * batch_size *
    world_size`` items, sort each by length (longest first), cut it into global batches, and shuffle
    the order of the global batches. Ranks take interleaved items of each global batch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, mega: int = 50):
        _check("batch_size", batch_size)
        _check("mega", mega)
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.mega = int(batch_size), seed, int(mega)

    def num_batches(self, world_size: int = 1) -> int:
        size = self.batch_size * world_size
        return len(self.lengths) // size if world_size > 1 else math.ceil(len(self.lengths) / size)

    def batches(self, epoch: int, rank: int = 0, world_size: int = 1) -> list[list]:
        size = self.batch_size * world_size
        rng = np.random.default_rng([self.seed, epoch, 17])
        order = rng.permutation(len(self.lengths))
        if world_size > 1:
            order = order[:self.num_batches(world_size) * size]
        global_batches = []
        for start in range(0, len(order), self.mega * size):
            chunk = order[start:start + self.mega * size]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            global_batches.extend(chunk[k:k + size] for k in range(0, len(chunk), size))
        shuffled = rng.permutation(len(global_batches))
        return [global_batches[i][rank::world_size].tolist() for i in shuffled]


class ContiguousStreamSampler(Sampler):
    """Back-propagation-through-time windows over one token stream (AWD-LSTM's ``batchify``).

    The stream of ``num_tokens`` tokens is cut into ``batch_size * world_size`` rows of equal length;
    rank r owns rows ``r*batch_size .. (r+1)*batch_size - 1``; the batch at step i reads the next
    window of every row, so row b of batch i+1 continues row b of batch i (``stateful``: the trainer
    carries the model's state between them). A key is ``(start, length)``: the window's first token
    in the stream and its length; the targets are the tokens one further (see :class:`TokenStream`).

    ``variable=True`` draws window lengths as AWD-LSTM does: the base length is ``bptt`` with
    probability 0.95 and ``bptt / 2`` otherwise, and the length is ``max(min_length,
    round(N(base, std)))``, clipped to what is left of the row. Lengths are a function of (seed,
    epoch), so the windows are the same on every rank.
    """

    stateful = True

    def __init__(self, num_tokens: int, batch_size: int, bptt: int, seed: int = 0, variable: bool = False,
                 std: float = 5.0, min_length: int = 5):
        _check("batch_size", batch_size)
        _check("bptt", bptt)
        self.num_tokens, self.batch_size, self.bptt = int(num_tokens), int(batch_size), int(bptt)
        self.seed, self.variable, self.std, self.min_length = seed, variable, std, int(min_length)
        if self.row_length(1) < 1:
            raise Word2BertError(f"a stream of {num_tokens} tokens is too short for {batch_size} rows of at "
                                 "least two tokens")

    def row_length(self, world_size: int) -> int:
        """Tokens per row that have a next token to predict."""
        return (self.num_tokens - 1) // (self.batch_size * world_size)

    def window_lengths(self, epoch: int, world_size: int) -> list[int]:
        usable = self.row_length(world_size)
        if usable < 1:
            raise Word2BertError(f"a stream of {self.num_tokens} tokens is too short for "
                                 f"{self.batch_size * world_size} rows")
        if not self.variable:
            return [min(self.bptt, usable - start) for start in range(0, usable, self.bptt)]
        rng = np.random.default_rng([self.seed, epoch, 23])
        lengths, position = [], 0
        while position < usable:
            base = self.bptt if rng.random() < 0.95 else self.bptt / 2
            length = max(self.min_length, int(round(rng.normal(base, self.std))))
            length = min(length, usable - position)
            lengths.append(length)
            position += length
        return lengths

    def num_batches(self, world_size: int = 1) -> int:
        return len(self.window_lengths(0, world_size))

    def batches(self, epoch: int, rank: int = 0, world_size: int = 1) -> list[list]:
        row_length = self.row_length(world_size)
        rows = range(rank * self.batch_size, (rank + 1) * self.batch_size)
        out, position = [], 0
        for length in self.window_lengths(epoch, world_size):
            out.append([(row * row_length + position, length) for row in rows])
            position += length
        return out


class TokenStream:
    """A token stream read by ``(start, length)`` keys: ``input_ids`` = tokens[start:start+length],
    ``labels`` = tokens[start+1:start+length+1] (the next token at each position)."""

    def __init__(self, tokens):
        self.tokens = np.asarray(tokens)
        if self.tokens.ndim != 1 or len(self.tokens) < 2:
            raise Word2BertError("a token stream must be a 1-D array of at least two tokens")

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, key) -> dict:
        start, length = key
        return {"input_ids": self.tokens[start:start + length], "labels": self.tokens[start + 1:start + length + 1]}


def stack_collate(items: Sequence[dict], rng=None) -> dict:
    """Stack equal-length items' arrays into (B, L) int64 tensors (the windows of a stream)."""
    return {key: torch.from_numpy(np.stack([np.asarray(item[key]) for item in items]).astype(np.int64))
            for key in items[0]}


__all__ = ["ContiguousStreamSampler", "LengthGroupedSampler", "Sampler", "ShuffledSampler", "TokenStream",
           "stack_collate"]
