"""LSA / PPMI-SVD: PPMI against a dense numpy computation, SVD solvers, planted clusters, CLI."""

import numpy as np
import pytest
import scipy.sparse as sp

from word2bert.cli import main
from word2bert.corpus import EncodedCorpus
from word2bert.errors import Word2BertError
from word2bert.static.cooccurrence import CooccurrenceMatrix, count_cooccurrences
from word2bert.static.lsa import LSA, ppmi_matrix, truncated_svd


def dense_sppmi(x, cds, neg):
    """Levy et al.'s definition written out on a dense array, entry by entry."""
    total = x.sum()
    out = np.zeros_like(x)
    col = x.sum(axis=0) ** cds
    for w in range(x.shape[0]):
        for c in range(x.shape[1]):
            if x[w, c] > 0:
                p_wc = x[w, c] / total
                p_w = x[w].sum() / total
                p_c = col[c] / col.sum()
                out[w, c] = max(np.log(p_wc / (p_w * p_c)) - np.log(neg), 0.0)
    return out


@pytest.mark.parametrize("cds,neg", [(1.0, 1.0), (0.75, 1.0), (0.75, 5.0)])
def test_ppmi_matches_direct_numpy(cds, neg):
    rng = np.random.default_rng(0)
    x = rng.poisson(1.5, (12, 9)).astype(float) * (rng.random((12, 9)) < 0.6)
    x[3] = 0.0  # an empty row stays empty
    result = ppmi_matrix(sp.csr_matrix(x), cds=cds, neg=neg)
    np.testing.assert_allclose(result.toarray(), dense_sppmi(x, cds, neg), rtol=1e-12, atol=1e-12)
    assert np.all(result.data > 0)  # zeros are not stored


def test_worked_pmi_example():
    # X = [[2, 0], [1, 1]], no smoothing: P(w0,c0) = 1/2, P(w0) = 1/2, P(c0) = 3/4 -> log(4/3)
    result = ppmi_matrix(sp.csr_matrix(np.array([[2.0, 0.0], [1.0, 1.0]])), cds=1.0).toarray()
    np.testing.assert_allclose(result, [[np.log(4 / 3), 0.0], [0.0, np.log(2.0)]])


@pytest.mark.parametrize("method", ["randomized", "arpack"])
def test_truncated_svd_matches_dense_svd(method):
    rng = np.random.default_rng(1)
    low_rank = rng.normal(size=(60, 5)) @ np.diag([9, 7, 5, 3, 2.0]) @ rng.normal(size=(5, 40))
    matrix = sp.csr_matrix(low_rank + 0.01 * rng.normal(size=(60, 40)))
    u, s, vt = truncated_svd(matrix, 5, method=method, seed=0)
    s_dense = np.linalg.svd(matrix.toarray(), compute_uv=False)[:5]
    np.testing.assert_allclose(s, s_dense, rtol=1e-6)
    np.testing.assert_allclose((u * s) @ vt, np.linalg.svd(matrix.toarray())[0][:, :5] * s_dense
                               @ np.linalg.svd(matrix.toarray())[2][:5], atol=1e-6)
    assert np.all(np.diff(s) <= 0)


def test_eigenvalue_weighting():
    rng = np.random.default_rng(2)
    counts = sp.csr_matrix(rng.poisson(2.0, (30, 30)).astype(float))
    base = LSA(vector_size=4, eig=0.0, seed=0).fit(counts)
    weighted = LSA(vector_size=4, eig=1.0, seed=0).fit(counts)
    np.testing.assert_allclose(weighted.vectors, base.vectors * weighted.singular_values, rtol=1e-4, atol=1e-6)
    half = LSA(vector_size=4, seed=0).fit(counts)  # default eig 0.5
    np.testing.assert_allclose(half.vectors, base.vectors * np.sqrt(weighted.singular_values), rtol=1e-4,
                               atol=1e-6)


def test_planted_clusters_are_recovered():
    rng = np.random.default_rng(4)
    groups, per_group, length = 3, 8, 12
    sentences = [rng.integers(0, per_group, length) + rng.integers(groups) * per_group for _ in range(600)]
    tokens = np.concatenate(sentences).astype(np.int32)
    corpus = EncodedCorpus(tokens, np.arange(0, len(tokens) + 1, length, dtype=np.int64))
    vocab = groups * per_group
    words = [f"g{i // per_group}w{i % per_group}" for i in range(vocab)]
    counts = count_cooccurrences(corpus, vocab, window=5, distance_weighting=False)
    kv = LSA(vector_size=3, seed=0).fit(CooccurrenceMatrix(counts, words)).keyed_vectors()
    for word in words:
        neighbours = [w for w, _ in kv.most_similar(word, topn=per_group - 1)]
        assert all(n.split("w")[0] == word.split("w")[0] for n in neighbours), (word, neighbours)


def test_bad_input_is_reported():
    counts = sp.csr_matrix(np.ones((5, 5)))
    with pytest.raises(Word2BertError, match="vector_size"):
        LSA(vector_size=5).fit(counts)
    with pytest.raises(Word2BertError, match="svd"):
        LSA(svd="lanczos")
    with pytest.raises(Word2BertError, match="empty"):
        ppmi_matrix(sp.csr_matrix((3, 3)))
    with pytest.raises(Word2BertError, match="no positive PMI"):
        LSA(vector_size=2).fit(counts)  # uniform counts: PMI is 0 everywhere


def test_cli_trains_lsa(tmp_path, capsys):
    from word2bert.vectors import KeyedVectors

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words, 10)) for _ in range(200)) + "\n")
    out = tmp_path / "lsa.bin"
    assert main(["train", "lsa", str(corpus), "-o", str(out), "--vector-size", "5", "--min-count", "1",
                 "--neg", "1", "--svd", "arpack", "--no-progress"]) == 0
    assert "lsa: 30 words x 5 dims" in capsys.readouterr().err
    assert KeyedVectors.load(out).vectors.shape == (30, 5)
    assert main(["train", "lsa", str(corpus), "-o", str(out), "--vector-size", "30", "--min-count", "1",
                 "--no-progress"]) == 2
    assert "--vector-size 30" in capsys.readouterr().err
