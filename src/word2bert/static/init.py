"""Initial weights of the static models.

Input rows start uniform in ``[-bound, bound)`` with ``bound = 1 / dim`` (fastText, gensim 4 and
Doc2Vec; word2vec.c's range is half as wide, which leaves CBOW's averaged hidden vectors smaller and
its vectors measurably worse after 5 epochs), output rows at zero (every model), GloVe's vectors
and biases uniform in ``[-0.5, 0.5) / dim`` (GloVe.c).

:func:`uniform_matrix` and :func:`uniform_rows` draw from SplitMix64 (Steele et al. 2014) keyed by
``(seed, row)`` in a compiled loop straight into the matrix: a row's values do not depend on which
other rows are drawn or how many threads draw them. :func:`numpy_uniform` is numpy's generator, as
Word2Vec and GloVe have always drawn.
"""

from __future__ import annotations

import concurrent.futures as futures
import ctypes
import threading

import numba
import numpy as np

WORD_ROWS_ROOM = 1 << 20  # word rows an input matrix allocated ahead of its vocabulary has room for
WORD_ROWS_MAPPED = 1 << 16  # of which mapped ahead with the n-gram rows (26 MB at dim 100)


@numba.njit(nogil=True, cache=True)
def _fill_uniform(out, places, keys, cols, bound, seed):
    """``out[places[q], :cols] ~ U[-bound, bound)`` from SplitMix64 keyed by ``(seed, keys[q])``: the
    values of row ``keys[q]`` (``places = keys`` fills a matrix's own rows; other places gather them)."""
    scale = np.float32(2.0 * bound / 16777216.0)
    shift = np.float32(bound)
    for q in range(keys.shape[0]):
        r = keys[q]
        place = np.uint64(places[q])
        x = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(r) * np.uint64(0xD1B54A32D192ED03)
        for i in range(cols):
            x += np.uint64(0x9E3779B97F4A7C15)
            z = x
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            out[place, i] = np.float32(z >> np.uint64(40)) * scale - shift


def _fill(out, places, keys, cols, bound, seed):
    _fill_uniform(out, np.asarray(places, np.int64), np.asarray(keys, np.int64), np.int64(cols), np.float64(bound),
                  np.int64(seed))


def _fill_parts(out, places, keys, cols, bound, seed, workers):
    """:func:`_fill` with the rows shared by ``workers`` threads (the kernel releases the GIL)."""
    parts = np.array_split(np.arange(len(keys)), max(1, int(workers)))
    if len(parts) == 1:
        _fill(out, places, keys, cols, bound, seed)
    else:
        with futures.ThreadPoolExecutor(max_workers=len(parts)) as pool:
            list(pool.map(lambda part: _fill(out, places[part], keys[part], cols, bound, seed), parts))


def uniform_matrix(rows: int, cols: int, bound: float, seed: int) -> np.ndarray:
    """A float32 ``(rows, cols)`` matrix uniform in ``[-bound, bound)`` (fastText's input initialisation)."""
    out = np.empty((rows, cols), np.float32)
    every = np.arange(rows, dtype=np.int64)
    _fill(out, every, every, cols, bound, seed)
    return out


class ZerosInBackground:
    """A float32 zero matrix with room for ``rows`` rows of ``cols``, whose first ``mapped_rows``
    rows (all by default) a background thread faults in now.

    ``np.zeros`` of fastText's 2M x 100 input matrix costs nothing until written, but the first
    writes then fault in 800 MB page by page (with transparent huge pages the kernel also has to
    assemble 2 MB pages): 0.1-1.5 s on the machines we measured, paid by the initialisation.
    Here a thread faults them in (:func:`_map_pages`, without the GIL) while the caller reads its
    data and loads its kernels. Rows past ``mapped_rows`` stay unmapped (virtual memory only) until
    written. :meth:`result` waits for the thread and returns the first ``n`` rows (a view), or None
    when ``n`` exceeds the room.
    """

    def __init__(self, rows: int, cols: int, mapped_rows: int | None = None):
        self._matrix = np.zeros((int(rows), int(cols)), np.float32)
        mapped = self._matrix[:rows if mapped_rows is None else min(int(mapped_rows), int(rows))]
        self._thread = threading.Thread(target=_map_pages, args=(mapped,), daemon=True)
        self._thread.start()

    def result(self, n: int) -> np.ndarray | None:
        self._thread.join()
        return self._matrix[:n] if n <= self._matrix.shape[0] else None


def input_matrix_ahead(source, bucket: int, dim: int) -> ZerosInBackground | None:
    """The zeros of a fastText input matrix (word rows, then ``bucket`` n-gram rows) for training on
    the text file ``source``, mapped in the background while the caller reads the file and loads
    its kernels: the n-gram rows and the first word rows. A distinct token takes at least 2 bytes of
    an uncompressed file, which bounds the words. None without n-gram rows or a file."""
    from pathlib import Path

    from word2bert.fileio import is_compressed

    if bucket <= 0 or not isinstance(source, (str, Path)) or not Path(source).is_file():
        return None
    most_words = WORD_ROWS_ROOM if is_compressed(source) else min(Path(source).stat().st_size // 2 + 2,
                                                                    WORD_ROWS_ROOM)
    return ZerosInBackground(most_words + bucket, dim, mapped_rows=min(most_words, WORD_ROWS_MAPPED) + bucket)


def _map_pages(matrix: np.ndarray) -> None:
    """Fault in every page of ``matrix`` by writing its zeros again (``memset``: a ctypes call, which
    releases the GIL). Each page fault holds the process's memory map only briefly, where
    ``madvise(MADV_POPULATE_WRITE)`` held it for up to a second and stalled the caller's own
    allocations meanwhile."""
    ctypes.memset(matrix.ctypes.data, 0, matrix.nbytes)


def uniform_rows(rows: int, cols: int, bound: float, seed: int, used, workers: int = 1,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Like :func:`uniform_matrix` but only the rows in ``used`` are drawn (``used`` may repeat rows,
    e.g. every bag's rows); the others stay zero. Row ``r`` gets the same values as in
    ``uniform_matrix``, whatever ``workers`` (threads sharing the work, as fastText's ``uniform``).
    ``out``: a zero float32 ``(rows, cols)`` matrix to draw into (e.g. from :class:`ZerosInBackground`).

    A row that no training example touches never changes, so in fastText it only adds noise
    to the vector of an unseen test n-gram; zero is the neutral value, and ``np.zeros`` of a
    2M x 100 matrix costs nothing until written (the first writes cost page faults, which
    threads take in parallel).
    """
    mask = np.zeros(rows, bool)
    mask[np.asarray(used)] = True  # a mask, not np.unique: 50x faster on millions of rows
    used = np.flatnonzero(mask)
    if out is None:
        out = np.zeros((rows, cols), np.float32)
    elif out.shape != (rows, cols) or out.dtype != np.float32:
        raise ValueError(f"out has shape {out.shape} and dtype {out.dtype}, not ({rows}, {cols}) float32")
    _fill_parts(out, used, used, cols, bound, seed, workers)
    return out


def uniform_rows_at(out: np.ndarray, keys, cols: int, bound: float, seed: int, workers: int = 1) -> None:
    """``out[q, :cols] = `` row ``keys[q]`` of :func:`uniform_matrix` (``cols`` columns, same ``bound``
    and ``seed``) for ``q < len(keys)``, into the C-contiguous float32 ``out``, whose rows may be wider
    (:func:`~word2bert.static.native.line_aligned_zeros`'s padded rows: the padding is left alone).
    E.g. the rows that training touches, gathered (:meth:`~word2bert.static.native.GatheredRows.drawn`)
    without drawing the others."""
    keys = np.asarray(keys, np.int64)
    _fill_parts(out, np.arange(len(keys), dtype=np.int64), keys, cols, bound, seed, workers)


def numpy_uniform(shape, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """float32 uniform in ``[low, high)`` from numpy's generator, drawn in float32 (Word2Vec, GloVe)."""
    out = rng.random(shape, dtype=np.float32)
    out *= np.float32(high - low)
    out += np.float32(low)
    return out


def glove_uniform(shape, dim: int, rng: np.random.Generator) -> np.ndarray:
    """GloVe.c's initialisation: ``(u - 0.5) / dim`` with ``u ~ U[0, 1)``, float32."""
    return ((rng.random(shape, dtype=np.float32) - np.float32(0.5)) / np.float32(dim)).astype(np.float32)
