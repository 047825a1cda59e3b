"""LSA / PPMI-SVD: factorise the shifted positive PMI matrix (Levy, Goldberg & Dagan 2015).

From co-occurrence counts ``X`` (:mod:`word2bert.static.cooccurrence`):

    P(w, c)  = X_wc / sum X
    P(w)     = sum_c X_wc / sum X
    P_a(c)   = (sum_w X_wc)^a / sum_c' (sum_w X_wc')^a        (context distribution smoothing, a = 0.75)
    PMI(w,c) = log( P(w, c) / (P(w) P_a(c)) )
    SPPMI    = max(PMI - log k, 0)                             (shift k = ``neg``, 1 = plain PPMI)

then a truncated SVD ``SPPMI ~ U S V^T`` of rank ``dim`` and word vectors ``U S^p``
(eigenvalue weighting). We default to ``p = 0.5``, the symmetric weighting Levy et al. found
better than the classic ``p = 1`` on similarity and analogy tasks (``p = 0`` is the other
option they recommend). The SVD is scikit-learn's ``randomized_svd`` (Halko et al.; default,
fast) or SciPy's ARPACK ``svds`` (exact to its tolerance); both on the sparse matrix, so
memory stays ``O(nnz + V dim)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from word2bert.errors import Word2BertError, check_positive


def ppmi_matrix(counts, cds: float = 0.75, neg: float = 1.0) -> sp.csr_matrix:
    """Shifted PPMI with context distribution smoothing: ``max(log(P(w,c) / (P(w) P_cds(c))) - log neg, 0)``.

    Only the non-zero counts can give a positive PMI, so the result keeps ``X``'s sparsity
    pattern (zeros dropped). float64 CSR.
    """
    check_positive("cds", cds)
    check_positive("neg", neg)
    counts = sp.csr_matrix(counts, dtype=np.float64)
    counts.sum_duplicates()
    total = counts.sum()
    if total <= 0:
        raise Word2BertError("the co-occurrence matrix is empty")
    row_sums = np.asarray(counts.sum(axis=1)).ravel()
    col_sums = np.asarray(counts.sum(axis=0)).ravel()
    smoothed = np.power(col_sums, cds)
    context_probability = smoothed / smoothed.sum()
    word_probability = row_sums / total
    coo = counts.tocoo()
    with np.errstate(divide="ignore"):
        pmi = (np.log(coo.data / total) - np.log(word_probability[coo.row])
               - np.log(context_probability[coo.col]) - np.log(neg))
    keep = pmi > 0
    result = sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)
    result.sort_indices()
    return result


def _check_rank(dim, shape):
    n = min(shape)
    if not 0 < dim < n:
        raise Word2BertError(f"parameter vector_size={dim} must be between 1 and {n - 1} "
                             f"(the co-occurrence matrix is {shape[0]} x {shape[1]})")


def truncated_svd(matrix, dim: int, method: str = "randomized", seed: int = 1, n_iter: int = 5):
    """Rank-``dim`` SVD ``matrix ~ U diag(S) V^T`` with singular values in decreasing order."""
    _check_rank(dim, matrix.shape)
    if method == "randomized":
        try:
            from sklearn.utils.extmath import randomized_svd
        except ImportError:
            raise Word2BertError("the randomized SVD needs scikit-learn (pip install scikit-learn); "
                                 "or use svd='arpack' (--svd arpack)") from None

        u, s, vt = randomized_svd(matrix, dim, n_iter=n_iter, random_state=seed)
    elif method == "arpack":
        from scipy.sparse.linalg import svds

        rng = np.random.default_rng(seed)
        u, s, vt = svds(matrix.astype(np.float64), k=dim, solver="arpack",
                        v0=rng.standard_normal(min(matrix.shape)))
        order = np.argsort(-s)
        u, s, vt = u[:, order], s[order], vt[order]
    else:
        raise Word2BertError(f"parameter svd={method!r} must be 'randomized' or 'arpack'")
    return u, s, vt


class LSA:
    """PPMI-SVD word vectors: ``U S^eig`` of the shifted, smoothed PPMI matrix.

    ``vector_size`` is the SVD rank, ``neg`` the shift ``k`` (``log k`` subtracted; 1 = none),
    ``cds`` the context-distribution smoothing exponent, ``eig`` the eigenvalue weight ``p``,
    ``svd`` ``"randomized"`` or ``"arpack"``.
    """

    def __init__(self, vector_size: int = 100, neg: float = 1.0, cds: float = 0.75, eig: float = 0.5,
                 svd: str = "randomized", seed: int = 1):
        check_positive("vector_size", vector_size)
        if svd not in ("randomized", "arpack"):
            raise Word2BertError(f"parameter svd={svd!r} must be 'randomized' or 'arpack'")
        self.vector_size, self.neg, self.cds, self.eig = int(vector_size), float(neg), float(cds), float(eig)
        self.svd, self.seed = svd, int(seed)
        self.words: list[str] | None = None
        self.counts = None
        self._wv = None

    def fit(self, cooccurrence, words=None, counts=None):
        if hasattr(cooccurrence, "matrix"):
            words = cooccurrence.words if words is None else words
            counts = cooccurrence.counts if counts is None else counts
            cooccurrence = cooccurrence.matrix
        _check_rank(self.vector_size, cooccurrence.shape)
        ppmi = ppmi_matrix(cooccurrence, cds=self.cds, neg=self.neg)
        if ppmi.nnz == 0:
            raise Word2BertError("no positive PMI entry: the corpus is too small or neg too large")
        u, s, _ = truncated_svd(ppmi, self.vector_size, self.svd, self.seed)
        self.singular_values = s
        self.vectors = (u * np.power(s, self.eig)).astype(np.float32)
        n = cooccurrence.shape[0]
        self.words = list(words) if words is not None else [str(i) for i in range(n)]
        self.counts = counts
        self._wv = None
        return self

    def keyed_vectors(self):
        """The vectors as :class:`word2bert.vectors.KeyedVectors` (built once per fit: its norms are
        computed once however often it is used)."""
        from word2bert.vectors import KeyedVectors

        if self.words is None:
            raise Word2BertError("the model is not trained yet")
        if self._wv is None or self._wv.vectors is not self.vectors:
            self._wv = KeyedVectors(self.vectors, self.words, self.counts)
        return self._wv

    @property
    def wv(self):
        """The vectors (:meth:`keyed_vectors`)."""
        return self.keyed_vectors()
