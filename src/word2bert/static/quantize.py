"""Product quantization of a fastText model's matrices, as fastText's ``quantize`` (``.ftz`` files).

Joulin et al. (2016), "FastText.zip: Compressing text classification models"; Jégou et al. (2011),
"Product quantization for nearest neighbor search". A ``(rows, dim)`` matrix is cut into
``nsubq = ceil(dim / dsub)`` column blocks of ``dsub`` columns (the last one ``lastdsub``); each block
has its own codebook of ``K = 256`` centroids learned by k-means, and each row is stored as one byte
per block, the index of the nearest centroid:

    row_i  ~  concat_m  centroids[m][code[i, m]]            (times the row's norm with ``qnorm``)

With ``qnorm`` the rows are divided by their L2 norm before quantization and the norms are quantized
by a one-dimensional quantizer of their own. fastText's choices are kept: at most 256 points per
centroid are used to train (65,536 sampled rows), 25 k-means iterations started from random rows, an
empty cluster splits a large one in two (moved by +-1e-7). The random draws are numpy's, not
fastText's ``minstd_rand`` (the codebooks differ in detail, not in quality).

The layout is fastText's, so the codebooks and codes read from or written to an ``.ftz`` by
:mod:`word2bert.interop.fasttext_format` are used as they are.
"""

from __future__ import annotations

import numba
import numpy as np

from word2bert.errors import Word2BertError
from word2bert.interop.fasttext_format import ProductQuantizerData, QuantizedMatrixData

KSUB = 256
MAX_POINTS_PER_CLUSTER = 256
MAX_POINTS = KSUB * MAX_POINTS_PER_CLUSTER
N_ITERATIONS = 25
EPS = 1e-7
SEED = 1234


@numba.njit(nogil=True, cache=True)
def _assign(x, centroids, codes):
    """``codes[i] = argmin_k ||x_i - c_k||^2`` (the first of equal distances, as fastText)."""
    n, d = x.shape
    for i in range(n):
        best = np.inf
        code = 0
        for k in range(centroids.shape[0]):
            dist = 0.0
            for j in range(d):
                t = x[i, j] - centroids[k, j]
                dist += t * t
            if dist < best:
                best = dist
                code = k
        codes[i] = code


@numba.njit(nogil=True, cache=True)
def _kmeans(x, centroids, start, iterations, eps, seed):
    """Lloyd's k-means from the rows ``x[start[k]]``; an empty cluster takes half of a cluster chosen
    with probability growing with its size (fastText's ``MStep``)."""
    np.random.seed(seed)
    n, d = x.shape
    ksub = centroids.shape[0]
    for k in range(ksub):
        for j in range(d):
            centroids[k, j] = x[start[k], j]
    codes = np.zeros(n, np.int64)
    counts = np.zeros(ksub, np.int64)
    for _ in range(iterations):
        _assign(x, centroids, codes)
        centroids[:] = 0.0
        counts[:] = 0
        for i in range(n):
            k = codes[i]
            counts[k] += 1
            for j in range(d):
                centroids[k, j] += x[i, j]
        for k in range(ksub):
            if counts[k] > 0:
                for j in range(d):
                    centroids[k, j] /= counts[k]
        for k in range(ksub):
            if counts[k] == 0:
                m = 0
                while np.random.random() * (n - ksub) >= counts[m] - 1:
                    m = (m + 1) % ksub
                for j in range(d):
                    sign = (j % 2) * 2 - 1
                    centroids[k, j] = centroids[m, j] + sign * eps
                    centroids[m, j] -= sign * eps
                counts[k] = counts[m] // 2
                counts[m] -= counts[k]


def _blocks(dim: int, dsub: int):
    """``(nsubq, lastdsub)`` of a ``dim``-column matrix cut into blocks of ``dsub`` (fastText's layout)."""
    nsubq, lastdsub = dim // dsub, dim % dsub
    if lastdsub == 0:
        lastdsub = dsub
    else:
        nsubq += 1
    return nsubq, lastdsub


def _centroids(pq: ProductQuantizerData, m: int) -> np.ndarray:
    """The ``(256, d)`` codebook of block ``m`` inside fastText's flat centroid array."""
    if m == pq.nsubq - 1:
        start = m * KSUB * pq.dsub
        return pq.centroids[start:start + KSUB * pq.lastdsub].reshape(KSUB, pq.lastdsub)
    return pq.centroids[m * KSUB * pq.dsub:(m + 1) * KSUB * pq.dsub].reshape(KSUB, pq.dsub)


def train_quantizer(x: np.ndarray, dsub: int, rng: np.random.Generator) -> ProductQuantizerData:
    """Codebooks for the rows of ``x`` (at least 256 of them)."""
    n, dim = x.shape
    if n < KSUB:
        raise Word2BertError(f"a matrix of {n} rows is too small to quantize: it needs at least {KSUB} rows")
    nsubq, lastdsub = _blocks(dim, dsub)
    pq = ProductQuantizerData(dim, nsubq, dsub, lastdsub, np.zeros(dim * KSUB, np.float32))
    points = min(n, MAX_POINTS)
    for m in range(nsubq):
        d = lastdsub if m == nsubq - 1 else dsub
        rows = rng.permutation(n)[:points] if points != n else np.arange(n)
        block = np.ascontiguousarray(x[rows, m * dsub:m * dsub + d], dtype=np.float32)
        codebook = np.zeros((KSUB, d), np.float32)
        _kmeans(block, codebook, rng.permutation(points)[:KSUB], N_ITERATIONS, np.float32(EPS),
                int(rng.integers(2**31)))
        _centroids(pq, m)[:] = codebook
    return pq


def encode(x: np.ndarray, pq: ProductQuantizerData) -> np.ndarray:
    """``(n, nsubq)`` uint8 codes: each block of each row's nearest centroid."""
    codes = np.empty((x.shape[0], pq.nsubq), np.uint8)
    block_codes = np.empty(x.shape[0], np.int64)
    for m in range(pq.nsubq):
        d = pq.lastdsub if m == pq.nsubq - 1 else pq.dsub
        _assign(np.ascontiguousarray(x[:, m * pq.dsub:m * pq.dsub + d], dtype=np.float32), _centroids(pq, m),
                block_codes)
        codes[:, m] = block_codes
    return codes


def decode(codes: np.ndarray, pq: ProductQuantizerData) -> np.ndarray:
    """The rows the ``(n, nsubq)`` codes stand for, ``(n, dim)`` float32."""
    out = np.empty((codes.shape[0], pq.dim), np.float32)
    for m in range(pq.nsubq):
        d = pq.lastdsub if m == pq.nsubq - 1 else pq.dsub
        out[:, m * pq.dsub:m * pq.dsub + d] = _centroids(pq, m)[codes[:, m]]
    return out


def quantize_matrix(matrix: np.ndarray, dsub: int = 2, qnorm: bool = False, seed: int = SEED) -> QuantizedMatrixData:
    """fastText's ``QuantMatrix``: the product-quantized ``matrix`` (rows normalised first with ``qnorm``)."""
    if dsub < 1:
        raise Word2BertError(f"parameter dsub={dsub} must be >= 1")
    rng = np.random.default_rng(seed)
    x = np.asarray(matrix, np.float32)
    norm_codes = norm_pq = None
    if qnorm:
        norms = np.linalg.norm(x, axis=1).astype(np.float32)
        x = x / np.where(norms > 0, norms, 1.0)[:, None]
        norm_pq = train_quantizer(norms[:, None], 1, rng)
        norm_codes = encode(norms[:, None], norm_pq)[:, 0]
    pq = train_quantizer(x, dsub, rng)
    return QuantizedMatrixData(x.shape[0], x.shape[1], encode(x, pq), pq, norm_codes, norm_pq)


def dequantize(matrix: QuantizedMatrixData, rows=None) -> np.ndarray:
    """The float32 rows (all, or ``rows``) a quantized matrix stands for (fastText's ``addRowToVector``)."""
    codes = matrix.codes if rows is None else matrix.codes[np.asarray(rows)]
    out = decode(codes, matrix.pq)
    if matrix.norm_pq is not None:
        norm_codes = matrix.norm_codes if rows is None else matrix.norm_codes[np.asarray(rows)]
        out *= _centroids(matrix.norm_pq, 0)[norm_codes]
    return out
