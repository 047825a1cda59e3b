"""Random numbers, the negative-sampling table, frequent-word subsampling and the sigmoid.

Everything here is shared by every bag-of-rows model (word2vec, fastText, doc2vec).

* RNG: word2vec.c's linear congruential generator,
  ``state <- state * 25214903917 + 11 (mod 2^64)``, one state per thread.
* Negative sampling: words are drawn from the unigram distribution raised to
  ``ns_exponent`` (0.75), ``P(w) = c_w^0.75 / sum_v c_v^0.75``, in O(1) per draw with
  Walker's alias method (one 8-byte entry per word) instead of word2vec.c's and fastText's
  slot table (10^8 or 10^7 slots, word ``w`` filling ``round(P(w) * size)`` of them). The
  alias table is exact up to 2^-32 and small enough to stay in cache (46k words: 370 KB
  against 40 MB); a draw from the slot table is a cache miss, and it cost half the time of
  CBOW with negative sampling.
* Subsampling (word2vec.c): word ``w`` with corpus frequency ``f = c_w / T`` is kept with
  probability ``min(1, (sqrt(f / s) + 1) * s / f)`` for threshold ``s = sample``.
* Sigmoid: exact ``1 / (1 + exp(-x))`` here, for the reference losses; the kernels tabulate it
  as word2vec.c does (:mod:`word2bert.static.losses`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from word2bert.errors import Word2BertError
from word2bert.static.native import JIT

LCG_MULTIPLIER = np.uint64(25214903917)
LCG_INCREMENT = np.uint64(11)
LOW_32 = np.uint64(0xFFFFFFFF)
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
    """One word drawn from the distribution of an alias ``table`` (:func:`negative_sampling_table`).

    With ``x = high32(state) * V`` for ``V = len(table)``, the slot is ``i = x >> 32`` (uniform,
    as in :func:`random_int`) and ``x mod 2^32`` is a uniform 32-bit fraction that keeps ``i``
    when below ``i``'s threshold and otherwise takes ``i``'s alias. Returns ``(word, state)``.
    """
    state = np.uint64(state) * np.uint64(25214903917) + np.uint64(11)
    product = (state >> np.uint64(32)) * np.uint64(table.shape[0])
    slot = product >> np.uint64(32)
    entry = np.uint64(table[slot])
    if (product & np.uint64(0xFFFFFFFF)) < (entry & np.uint64(0xFFFFFFFF)):
        return np.int32(slot), state
    return np.int32(entry >> np.uint64(32)), state


@numba.njit(**JIT)
def subsample(tokens, start, end, keep_probability, kept, state):
    """Copy the words of ``tokens[start:end]`` kept by subsampling into ``kept``; returns ``(n, state)``.

    Word ``w`` survives with probability ``keep_probability[w]`` (:func:`keep_probabilities`): a
    uniform ``u`` is drawn and ``w`` kept if ``u < p`` (no draw when ``p = 1``). Dropped words take
    no window position, as in word2vec.c, fastText and gensim.
    """
    n = 0
    for p in range(start, end):
        word = tokens[p]
        keep = keep_probability[word]
        if keep < 1.0:
            u, state = random_uniform(state)
            if u >= keep:
                continue
        kept[n] = word
        n += 1
    return n, state


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


@numba.njit(cache=True)
def _alias_method(probabilities):
    """Vose's construction of Walker's alias table: ``(keep, alias)`` with
    ``P(w) = (keep_w + sum_{i: alias_i = w, i != w} (1 - keep_i)) / V`` for every ``w``."""
    n = probabilities.shape[0]
    scaled = probabilities * n
    keep = np.ones(n, np.float64)
    alias = np.arange(n)
    small = np.empty(n, np.int64)
    large = np.empty(n, np.int64)
    n_small = 0
    n_large = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[n_small] = i
            n_small += 1
        else:
            large[n_large] = i
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        poor = small[n_small]
        rich = large[n_large - 1]
        keep[poor] = scaled[poor]
        alias[poor] = rich
        scaled[rich] = (scaled[rich] + scaled[poor]) - 1.0
        if scaled[rich] < 1.0:  # the donor is now poor itself
            n_large -= 1
            small[n_small] = rich
            n_small += 1
    return keep, alias  # leftovers keep probability 1 (their alias is themselves)


def negative_sampling_table(counts, exponent: float = 0.75) -> np.ndarray:
    """Walker's alias table for ``P(w) = c_w^exponent / sum_v c_v^exponent``, one uint64 per word.

    Entry ``w`` packs ``alias_w`` (high 32 bits) and ``floor(keep_w * 2^32)`` (low 32 bits;
    ``keep_w = 1`` is stored as ``2^32 - 1`` with ``alias_w = w``). :func:`draw_negative` picks
    a slot ``i`` uniformly, keeps it with probability ``keep_i``, otherwise returns
    ``alias_i``; so ``P(w) = (keep_w + sum_{i: alias_i = w, i != w} (1 - keep_i)) / V``
    (:func:`alias_probabilities` inverts it, for tests). Words with count 0 are never drawn.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0:
        raise Word2BertError("cannot build a negative-sampling table for an empty vocabulary")
    if len(counts) >= 2**32:
        raise Word2BertError("negative sampling supports at most 2^32 - 1 words")
    if not np.isfinite(exponent):
        raise Word2BertError(f"parameter ns_exponent={exponent!r} must be a finite number")
    weights = np.where(counts > 0, counts, 0.0) ** exponent
    weights[counts <= 0] = 0.0
    total = weights.sum()
    if total <= 0:
        raise Word2BertError("cannot build a negative-sampling table: all word counts are 0")
    keep, alias = _alias_method(weights / total)
    thresholds = np.minimum(np.floor(keep * 2.0**32), 2.0**32 - 1).astype(np.uint64)
    alias = np.where(thresholds == 2**32 - 1, np.arange(len(counts)), alias)
    never = weights == 0  # (rounding could leave one as its own alias)
    thresholds[never] = 0
    alias[never & (alias == np.arange(len(counts)))] = int(np.argmax(weights))
    alias = alias.astype(np.uint64)
    return (alias << np.uint64(32)) | thresholds


def alias_probabilities(table) -> np.ndarray:
    """The distribution an alias table draws from (exact, float64): see :func:`negative_sampling_table`."""
    table = np.asarray(table, dtype=np.uint64)
    n = len(table)
    keep = (table & LOW_32).astype(np.float64) / 2.0**32
    alias = (table >> np.uint64(32)).astype(np.int64)
    own = np.where(alias == np.arange(n), 1.0, keep)
    probabilities = own.copy()
    np.add.at(probabilities, alias, np.where(alias == np.arange(n), 0.0, 1.0 - keep))
    return probabilities / n


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
