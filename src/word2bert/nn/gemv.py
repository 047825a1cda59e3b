"""A matrix-vector product ``y = W x + b`` for decoding one sequence at a time (used by
:func:`word2bert.nn.linear.linear` for a single row; imported on its first use, so that loading a model
does not import numba).

Greedy decoding of one sequence multiplies one row by every weight matrix of the model at every
token; the product is bound by reading W from memory. GPT-2's 24 layer matrices of width 384 are
42 MB, more than this machine's 32 MB L3 cache, so they come from DRAM at every token: MKL's gemv
(``F.linear``) reads them at ~7 GB/s (6-8 ms a token on 2 threads), where the machine streams ~17 GB/s.
:func:`row_times_matrix` cuts the output rows into one contiguous block per thread (numba ``prange``)
and vectorises each dot product: 3.0-3.3 ms for the same 24 matrices. Its sums run in another order than
``F.linear``'s: the results agree to float rounding, as any two float32 products do.
"""

from __future__ import annotations

import contextlib
import threading

import numba
import numpy as np
import torch

_LOCK = threading.Lock()
_STATE = {"threads": 0}


@numba.njit(parallel=True, nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _row_product(weight, x, bias, has_bias, parts, out):  # pragma: no cover - compiled
    """``out_j = sum_i weight[j, i] x_i (+ bias_j)``; the rows are cut into ``parts`` contiguous blocks,
    one per thread."""
    rows, width = weight.shape
    for part in numba.prange(parts):
        for j in range(part * rows // parts, (part + 1) * rows // parts):
            total = np.float32(0.0)
            for i in range(width):
                total += weight[j, i] * x[i]
            out[j] = total + bias[j] if has_bias else total


def _threads() -> int:
    """torch's thread count (within numba's limit), set for numba's parallel loops when it changes.

    numba's first parallel call starts its thread pool, and with the OpenMP layer that sets OpenMP's
    thread count, which torch shares (same libgomp), to numba's pool size: a process that had set
    ``torch.set_num_threads(1)`` would run its torch work on every core from then on. torch's count is
    put back after that start.
    """
    threads = torch.get_num_threads()
    if threads != _STATE["threads"]:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        _STATE["threads"] = threads
    return numba.get_num_threads()


def row_times_matrix(row: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, out: np.ndarray) -> None:
    """``out = weight @ row (+ bias)`` for contiguous float32 arrays: row (K,), weight (N, K), bias and out (N,).

    numba's "workqueue" threading layer (the fallback where neither OpenMP nor TBB is installed) cannot run
    parallel loops from two threads at once, so there the calls are serialised.
    """
    threads = _threads()
    serialise = _STATE.get("layer", "workqueue") == "workqueue"   # unknown before the first call, or workqueue
    with _LOCK if serialise else contextlib.nullcontext():
        _row_product(weight, row, out if bias is None else bias, bias is not None, threads, out)
        if serialise:
            _STATE.setdefault("layer", numba.threading_layer())


__all__ = ["row_times_matrix"]
