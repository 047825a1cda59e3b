"""Initial weights of the static models.

Input rows start uniform in ``[-bound, bound)`` with ``bound = 1 / dim`` (fastText, gensim 4 and
Doc2Vec; word2vec.c's range is half as wide, which leaves CBOW's averaged hidden vectors smaller and
its vectors measurably worse after 5 epochs), output rows at zero (every model), GloVe's vectors
and biases uniform in ``[-0.5, 0.5) / dim`` (GloVe.c).

:func:`uniform_matrix` and :func:`uniform_rows_at` draw from SplitMix64 (Steele et al. 2014) keyed by
``(seed, row)`` in a compiled loop straight into the matrix: a row's values do not depend on which
other rows are drawn or how many threads draw them. :func:`numpy_uniform` is numpy's generator, as
Word2Vec and GloVe have always drawn.
"""

from __future__ import annotations

import concurrent.futures as futures

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def _fill_uniform(out, keys, cols, bound, seed):
    """``out[q, :cols] ~ U[-bound, bound)`` from SplitMix64 keyed by ``(seed, keys[q])``: the values of
    row ``keys[q]`` of :func:`uniform_matrix`, whatever the other rows."""
    scale = np.float32(2.0 * bound / 16777216.0)
    shift = np.float32(bound)
    for q in range(keys.shape[0]):
        r = keys[q]
        place = np.uint64(q)
        x = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(r) * np.uint64(0xD1B54A32D192ED03)
        for i in range(cols):
            x += np.uint64(0x9E3779B97F4A7C15)
            z = x
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            out[place, i] = np.float32(z >> np.uint64(40)) * scale - shift


def uniform_matrix(rows: int, cols: int, bound: float, seed: int) -> np.ndarray:
    """A float32 ``(rows, cols)`` matrix uniform in ``[-bound, bound)`` (fastText's input initialisation)."""
    out = np.empty((rows, cols), np.float32)
    uniform_rows_at(out, np.arange(rows), cols, bound, seed)
    return out


def uniform_rows_at(out: np.ndarray, keys, cols: int, bound: float, seed: int, workers: int = 1) -> None:
    """``out[q, :cols] = `` row ``keys[q]`` of :func:`uniform_matrix` (``cols`` columns, same ``bound``
    and ``seed``) for ``q < len(keys)``, into the C-contiguous float32 ``out``, whose rows may be wider
    (:func:`~word2bert.static.native.line_aligned_zeros`'s padded rows: the padding is left alone).
    E.g. the rows that training touches, gathered (:meth:`~word2bert.static.native.GatheredRows.drawn`),
    without drawing the others (which stay zero in the model's full matrix: a row that no training
    example touches never changes, so in fastText it only adds noise to the vector of an unseen test
    n-gram; zero is the neutral value). ``workers`` threads share the rows (the kernel releases the GIL)."""
    keys = np.asarray(keys, np.int64)

    def fill(start, end):
        _fill_uniform(out[start:end], keys[start:end], np.int64(cols), np.float64(bound), np.int64(seed))

    workers = max(1, int(workers))
    if workers == 1:
        fill(0, len(keys))
        return
    edges = np.linspace(0, len(keys), workers + 1).astype(np.int64)
    with futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fill, edges[:-1], edges[1:]))


def numpy_uniform(shape, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """float32 uniform in ``[low, high)`` from numpy's generator, drawn in float32 (Word2Vec, GloVe)."""
    out = rng.random(shape, dtype=np.float32)
    out *= np.float32(high - low)
    out += np.float32(low)
    return out


def glove_uniform(shape, dim: int, rng: np.random.Generator) -> np.ndarray:
    """GloVe.c's initialisation: ``(u - 0.5) / dim`` with ``u ~ U[0, 1)``, float32."""
    return ((rng.random(shape, dtype=np.float32) - np.float32(0.5)) / np.float32(dim)).astype(np.float32)
