"""Random numbers, the negative-sampling table, frequent-word subsampling and the sigmoid.

Everything here is shared by every bag-of-rows model (word2vec, fastText, doc2vec).

* RNG: word2vec.c's linear congruential generator,
  ``state <- state * 25214903917 + 11 (mod 2^64)``, one state per thread.
* Negative sampling: words are drawn from the unigram distribution raised to
  ``ns_exponent`` (0.75), ``P(w) = c_w^0.75 / sum_v c_v^0.75``. We use a lookup table as
  word2vec.c and fastText do (O(1) per draw): ``table[j]`` is the word whose cumulative
  probability interval contains ``(j + 0.5) / table_size``, so word ``w`` fills
  ``round(P(w) * table_size)`` slots. The default size is fastText's 10^7 (word2vec.c uses
  10^8; 40 MB instead of 400 MB, and the quantisation error per word is below 10^-7).
* Subsampling (word2vec.c): word ``w`` with corpus frequency ``f = c_w / T`` is kept with
  probability ``min(1, (sqrt(f / s) + 1) * s / f)`` for threshold ``s = sample``.
* Sigmoid: exact ``1 / (1 + exp(-x))`` (word2vec.c tabulates it on [-6, 6] and saturates
  outside; the exact function gives exact gradients and costs one ``exp`` per dot product).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from word2bert.errors import Word2BertError

LCG_MULTIPLIER = np.uint64(25214903917)
LCG_INCREMENT = np.uint64(11)
NEGATIVE_TABLE_SIZE = 10_000_000  # fastText's NEGATIVE_TABLE_SIZE
MAX_EXP = 6.0  # word2vec.c's MAX_EXP: HS skips decisions with |x| beyond it (as word2vec.c)

_JIT = dict(nogil=True, cache=True, fastmath=True)


@numba.njit(inline="always", **_JIT)
def next_random(state):
    """word2vec.c's LCG: ``state * 25214903917 + 11 (mod 2^64)`` on a uint64 state."""
    return np.uint64(state) * np.uint64(25214903917) + np.uint64(11)


@numba.njit(inline="always", **_JIT)
def random_uniform(state):
    """A float in [0, 1) from the top 24 bits of the next state; returns ``(u, state)``."""
    state = np.uint64(state) * np.uint64(25214903917) + np.uint64(11)
    return np.float32((state >> np.uint64(40)) * (1.0 / 16777216.0)), state


@numba.njit(inline="always", **_JIT)
def random_int(state, n):
    """An integer in [0, n) from the next state: ``(high32(state) * n) >> 32``; returns ``(k, state)``.

    word2vec.c takes ``(next_random >> 16) % n``; the multiply-shift (Lemire 2019) draws from
    the same uniform distribution (bias below ``n / 2^32``) without a 64-bit division, and
    uses the LCG's high bits, its most random ones.
    """
    state = np.uint64(state) * np.uint64(25214903917) + np.uint64(11)
    return np.int64(((state >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)), state


@numba.njit(inline="always", **_JIT)
def draw_negative(table, state):
    """One word drawn from the unigram^0.75 table, ``table[random_int(len(table))]``.

    Returns ``(word, state)`` (word2vec.c's ``table[(next_random >> 16) % table_size]``, with
    the division-free range reduction of :func:`random_int`).
    """
    state = np.uint64(state) * np.uint64(25214903917) + np.uint64(11)
    return table[((state >> np.uint64(32)) * np.uint64(table.shape[0])) >> np.uint64(32)], state


@numba.njit(inline="always", **_JIT)
def sigmoid(x):
    """``sigma(x) = 1 / (1 + exp(-x))``, with ``x`` clipped to [-30, 30] to avoid overflow."""
    if x > 30.0:
        x = 30.0
    elif x < -30.0:
        x = -30.0
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-np.float32(x)))


@numba.njit(inline="always", **_JIT)
def log_sigmoid(x):
    """``log sigma(x) = -log(1 + exp(-x))``, computed stably for both signs of ``x``."""
    if x >= 0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


def negative_sampling_table(counts, exponent: float = 0.75, table_size: int | None = None) -> np.ndarray:
    """The int32 table with ``table[j] = min{w : F(w) > (j + 0.5) / size}``.

    ``F(w) = sum_{v <= w} c_v^exponent / sum_v c_v^exponent`` is the cumulative unigram^exponent
    distribution, so word ``w`` owns ``~ P(w) * size`` slots and a uniform slot is a draw
    from ``P``. ``table_size`` defaults to ``min(10^7, max(10^5, 100 * n_words))``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0:
        raise Word2BertError("cannot build a negative-sampling table for an empty vocabulary")
    if not np.isfinite(exponent):
        raise Word2BertError(f"parameter ns_exponent={exponent!r} must be a finite number")
    weights = np.where(counts > 0, counts, 0.0) ** exponent
    weights[counts <= 0] = 0.0
    total = weights.sum()
    if total <= 0:
        raise Word2BertError("cannot build a negative-sampling table: all word counts are 0")
    if table_size is None:
        table_size = int(min(NEGATIVE_TABLE_SIZE, max(100_000, 100 * len(counts))))
    cumulative = np.cumsum(weights / total)
    cumulative[-1] = 1.0
    quantiles = (np.arange(table_size, dtype=np.float64) + 0.5) / table_size
    table = np.searchsorted(cumulative, quantiles, side="right").astype(np.int32)
    np.minimum(table, len(counts) - 1, out=table)
    return table


def keep_probabilities(counts, sample: float) -> np.ndarray:
    """word2vec.c's subsampling: ``p_keep(w) = min(1, (sqrt(f_w / s) + 1) * s / f_w)``.

    With ``f_w = c_w / T`` (``T`` the total count) this is word2vec.c's
    ``(sqrt(c / (s T)) + 1) * (s T) / c``. ``sample <= 0`` keeps everything (float32 array).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample is None or sample <= 0:
        return np.ones(len(counts), dtype=np.float32)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    keep = np.where(counts > 0, keep, 1.0)
    return np.minimum(keep, 1.0).astype(np.float32)
