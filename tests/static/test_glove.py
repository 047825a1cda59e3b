"""GloVe: weighting function, AdaGrad step against finite differences, planted structure, CLI."""

import numpy as np
import pytest
import scipy.sparse as sp

from word2bert.cli import main
from word2bert.corpus import EncodedCorpus
from word2bert.errors import Word2BertError
from word2bert.static.cooccurrence import CooccurrenceMatrix, count_cooccurrences
from word2bert.static.glove import BLOCK_SIZE, GloVe, _adagrad_blocks, glove_loss, glove_weighting


def test_weighting_function_shape():
    x_max, alpha = 100.0, 0.75
    x = np.array([0.0, 1.0, 10.0, 50.0, 99.9, 100.0, 101.0, 1e6])
    f = glove_weighting(x, x_max, alpha)
    assert f[0] == 0.0
    np.testing.assert_allclose(f[1], 100.0 ** -0.75)
    np.testing.assert_allclose(f[2], 0.1 ** 0.75)
    np.testing.assert_array_equal(f[5:], 1.0)              # capped at 1 from x_max on
    assert np.all(np.diff(f) >= 0) and np.all(f <= 1)      # non-decreasing, bounded
    # concave below x_max (alpha < 1): the midpoint lies above the chord
    a, b = 10.0, 90.0
    assert glove_weighting((a + b) / 2) > (glove_weighting(a) + glove_weighting(b)) / 2
    np.testing.assert_allclose(glove_weighting(x, x_max, 1.0)[:5], x[:5] / x_max)


def one_entry_state(rng, dim, i, j):
    vocab = 4
    params = [(rng.random((vocab, dim), dtype=np.float32) - 0.5) / 2 for _ in range(2)]
    params += [(rng.random(vocab, dtype=np.float32) - 0.5) / 2 for _ in range(2)]
    return params


@pytest.mark.parametrize("i,j,x", [(1, 2, 3.0), (3, 3, 250.0)])
def test_adagrad_step_equals_gradient_by_finite_differences(i, j, x):
    """With gradsq = 1 the first step is -eta * dL/dtheta for L = 0.5 f(x) (w.w~ + b + b~ - log x)^2."""
    rng = np.random.default_rng(0)
    dim, eta, x_max, alpha = 6, 0.05, 100.0, 0.75
    w, c, bw, bc = one_entry_state(rng, dim, i, j)
    before = [p.astype(np.float64) for p in (w, c, bw, bc)]
    rows, cols, values = np.array([i]), np.array([j]), np.array([x])

    def half_loss(params):
        return 0.5 * glove_loss(rows, cols, values, *params, x_max=x_max, alpha=alpha)

    numeric = []
    h = 1e-6
    for k, p in enumerate(before):
        grad = np.zeros_like(p)
        for index in np.ndindex(p.shape):
            plus = [q.copy() for q in before]
            minus = [q.copy() for q in before]
            plus[k][index] += h
            minus[k][index] -= h
            grad[index] = (half_loss(plus) - half_loss(minus)) / (2 * h)
        numeric.append(grad)

    word_parameters = np.stack([w, np.ones_like(w)], axis=1)  # [:, 0] vectors, [:, 1] AdaGrad sums
    context_parameters = np.stack([c, np.ones_like(c)], axis=1)
    bias_gradsq = [np.ones_like(bw), np.ones_like(bc)]
    cost = _adagrad_blocks(rows.astype(np.int32), cols.astype(np.int32),
                           np.log(values).astype(np.float32), glove_weighting(values, x_max, alpha).astype(np.float32),
                           np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, np.int64),
                           word_parameters, context_parameters, bw, bc, *bias_gradsq, np.float32(eta))
    np.testing.assert_allclose(cost, half_loss(before), rtol=1e-5)
    w, c = word_parameters[:, 0], context_parameters[:, 0]
    gradsq = [word_parameters[:, 1], context_parameters[:, 1]] + bias_gradsq
    for k, (new, old) in enumerate(zip((w, c, bw, bc), before)):
        step = (new - old) / -eta
        np.testing.assert_allclose(step, numeric[k], rtol=1e-3, atol=2e-6)
        # AdaGrad accumulates the squared scaled gradient, as GloVe.c does
        np.testing.assert_allclose(gradsq[k], 1 + (eta * numeric[k]) ** 2, rtol=1e-5)


def test_block_visit_order_is_a_permutation():
    """Each block is visited in (k * odd + offset) mod 4096 order: every entry exactly once."""
    n = BLOCK_SIZE + 100
    rows = np.arange(n, dtype=np.int32)
    vocab = n
    word_parameters = np.zeros((vocab, 2, 1), np.float32)
    word_parameters[:, 1] = 1
    context_parameters = np.ones((vocab, 2, 1), np.float32)
    bw = np.zeros(vocab, np.float32)
    bc = np.zeros(vocab, np.float32)
    # log x = -1 and f = 1: every visited entry i moves w_i by eta * 1 * 1 (diff = 1) exactly once
    _adagrad_blocks(rows, rows.copy(), np.full(n, -1, np.float32), np.ones(n, np.float32),
                    np.array([1, 0]), np.array([777, 3]), np.array([5, 4000]),
                    word_parameters, context_parameters, bw, bc, np.ones(vocab, np.float32),
                    np.ones(vocab, np.float32), np.float32(0.5))
    np.testing.assert_allclose(word_parameters[:, 0, 0], -0.5)


def planted_matrix(rng, vocab=80, rank=4):
    """X_ij = exp(u_i . v_j + a_i + c_j): log X has exact rank-`rank` + bias structure."""
    u = rng.normal(0, 0.6, (vocab, rank))
    v = rng.normal(0, 0.6, (vocab, rank))
    a = rng.normal(1, 0.3, vocab)
    c = rng.normal(1, 0.3, vocab)
    log_x = u @ v.T + a[:, None] + c[None, :]
    mask = rng.random((vocab, vocab)) < 0.7
    return sp.csr_matrix(np.where(mask, np.exp(log_x), 0.0)), log_x, mask


def test_training_recovers_planted_log_bilinear_structure():
    rng = np.random.default_rng(1)
    matrix, log_x, mask = planted_matrix(rng)
    model = GloVe(vector_size=4, x_max=1.0, epochs=300, eta=0.05, workers=1, seed=2)
    model.fit(matrix)
    fitted = (model.word_vectors.astype(np.float64) @ model.context_vectors.T
              + model.word_biases[:, None] + model.context_biases[None, :])
    assert model.loss_history[-1] < 0.02 * model.loss_history[0]
    assert np.corrcoef(fitted[mask], log_x[mask])[0, 1] > 0.99
    # the held-out (zero) entries are predicted too: the structure, not the entries, was learned
    assert np.corrcoef(fitted[~mask], log_x[~mask])[0, 1] > 0.95


def cluster_corpus(rng, groups=3, words_per_group=8, sentences=600, length=12):
    sentences_ids = []
    for _ in range(sentences):
        g = rng.integers(groups)
        sentences_ids.append(rng.integers(0, words_per_group, length) + g * words_per_group)
    tokens = np.concatenate(sentences_ids).astype(np.int32)
    offsets = np.arange(0, len(tokens) + 1, length, dtype=np.int64)
    return EncodedCorpus(tokens, offsets), groups * words_per_group, words_per_group


def test_end_to_end_clusters_are_recovered():
    from word2bert.vectors import KeyedVectors

    rng = np.random.default_rng(4)
    corpus, vocab, per_group = cluster_corpus(rng)
    counts = count_cooccurrences(corpus, vocab, window=5, workers=2)
    words = [f"g{i // per_group}w{i % per_group}" for i in range(vocab)]
    model = GloVe(vector_size=10, x_max=10, epochs=40, workers=2, seed=3).fit(
        CooccurrenceMatrix(counts, words))
    kv = model.keyed_vectors()
    assert isinstance(kv, KeyedVectors) and kv.vectors.shape == (vocab, 10)
    for word in words:
        neighbours = [w for w, _ in kv.most_similar(word, topn=per_group - 1)]
        assert all(n.split("w")[0] == word.split("w")[0] for n in neighbours), (word, neighbours)
    assert model.loss_history[-1] < 0.2 * model.loss_history[0]


def test_output_vectors_and_determinism():
    rng = np.random.default_rng(1)
    matrix, _, _ = planted_matrix(rng, vocab=30)
    a = GloVe(vector_size=3, epochs=3, workers=1, seed=7, output_vectors="W").fit(matrix)
    b = GloVe(vector_size=3, epochs=3, workers=1, seed=7).fit(matrix)
    np.testing.assert_array_equal(a.word_vectors, b.word_vectors)
    np.testing.assert_array_equal(a.vectors, a.word_vectors)
    np.testing.assert_array_equal(b.vectors, b.word_vectors + b.context_vectors)


def test_bad_input_is_reported():
    with pytest.raises(Word2BertError, match="output_vectors"):
        GloVe(output_vectors="W+C")
    with pytest.raises(Word2BertError, match="eta"):
        GloVe(eta=0)
    with pytest.raises(Word2BertError, match="empty"):
        GloVe().fit(sp.csr_matrix((5, 5)))
    with pytest.raises(Word2BertError, match="square"):
        GloVe().fit(sp.csr_matrix(np.ones((2, 3))))


def write_cluster_text(path, rng):
    corpus, vocab, per_group = cluster_corpus(rng, sentences=300)
    words = [f"g{i // per_group}w{i % per_group}" for i in range(vocab)]
    lines = [" ".join(words[t] for t in s) for s in corpus]
    path.write_text("\n".join(lines) + "\n")


def test_cli_trains_saves_and_reuses_counts(tmp_path, capsys):
    from word2bert.vectors import KeyedVectors

    corpus = tmp_path / "corpus.txt"
    write_cluster_text(corpus, np.random.default_rng(0))
    out, cooc = tmp_path / "vec.txt", tmp_path / "cooc.npz"
    assert main(["train", "glove", str(corpus), "-o", str(out), "--format", "glove", "--vector-size", "8",
                 "--window", "4", "--epochs", "5", "--min-count", "1", "--save-cooccurrence", str(cooc),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "iter: 005, cost:" in err
    kv = KeyedVectors.load(out)
    assert kv.vectors.shape == (24, 8)
    again = tmp_path / "again.npz"
    assert main(["train", "glove", str(cooc), "-o", str(again), "--vector-size", "4", "--epochs", "2",
                 "--output-vectors", "W", "--no-progress"]) == 0
    assert KeyedVectors.load(again).vectors.shape == (24, 4)
    assert main(["train", "glove", str(tmp_path / "missing.txt"), "-o", str(out)]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["train", "glove", str(corpus), "-o", str(out), "--window", "0"]) == 2
    assert "--window" in capsys.readouterr().err


def test_cli_counting_switches_reach_the_counts(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\nc b a b\n")
    out, cooc = tmp_path / "vec.npz", tmp_path / "cooc.npz"
    assert main(["train", "glove", str(corpus), "-o", str(out), "--vector-size", "2", "--epochs", "1",
                 "--min-count", "1", "--window", "2", "--left-only", "--uniform", "--save-cooccurrence", str(cooc),
                 "--no-progress"]) == 0
    saved = CooccurrenceMatrix.load(cooc)
    assert saved.settings["symmetric"] == "0" and saved.settings["distance_weighting"] == "0"
    index = {w: i for i, w in enumerate(saved.words)}
    x = saved.matrix.toarray()
    # left-only, uniform, X[left, right]: line 1 gives (a,b,d1) (b,c,d1) (a,c,d2);
    # line 2 gives (c,b,d1) (b,a,d1) (c,a,d2) (a,b,d1) (b,b,d2); no pair crosses the line break
    expected = {("a", "b"): 2, ("b", "a"): 1, ("a", "c"): 1, ("c", "a"): 1, ("b", "c"): 1, ("c", "b"): 1,
                ("b", "b"): 1}
    for (left, right), value in expected.items():
        assert x[index[left], index[right]] == value, (left, right)
    assert x.sum() == sum(expected.values())


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path):
    rng = np.random.default_rng(1)
    matrix, _, _ = planted_matrix(rng, vocab=40)
    words = [f"w{i}" for i in range(40)]
    straight = GloVe(vector_size=3, epochs=4, workers=1, seed=5).fit(CooccurrenceMatrix(matrix, words))

    def interrupt_after_two(iteration, cost):
        if iteration == 2:
            raise KeyboardInterrupt

    model = GloVe(vector_size=3, epochs=4, workers=1, seed=5)
    with pytest.raises(KeyboardInterrupt):
        model.fit(CooccurrenceMatrix(matrix, words), log=interrupt_after_two)
    assert model.iterations_done == 2
    path = tmp_path / "glove.checkpoint.npz"
    model.save_checkpoint(path)
    resumed = GloVe.load_checkpoint(path)
    assert resumed.iterations_done == 2 and resumed.words == words
    resumed.fit(CooccurrenceMatrix(matrix, words))
    assert resumed.iterations_done == 4
    np.testing.assert_array_equal(resumed.word_parameters, straight.word_parameters)
    np.testing.assert_array_equal(resumed.context_biases, straight.context_biases)
    np.testing.assert_allclose(resumed.loss_history, straight.loss_history)
    with pytest.raises(Word2BertError, match="other words"):
        GloVe.load_checkpoint(path).fit(CooccurrenceMatrix(matrix, [f"v{i}" for i in range(40)]))
    with pytest.raises(Word2BertError, match="not a word2bert GloVe checkpoint"):
        np.savez(tmp_path / "x.npz", a=np.zeros(2))
        GloVe.load_checkpoint(tmp_path / "x.npz")


def test_cli_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "corpus.txt"
    write_cluster_text(corpus, np.random.default_rng(0))
    out = tmp_path / "vec.npz"
    original_fit = GloVe.fit

    def fit_interrupted(self, *args, **kwargs):
        def log(iteration, cost):
            if iteration == 1:
                raise KeyboardInterrupt
        kwargs["log"] = log
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(GloVe, "fit", fit_interrupted)
    common = ["--vector-size", "4", "--window", "3", "--min-count", "1", "--no-progress"]
    assert main(["train", "glove", str(corpus), "-o", str(out), "--epochs", "3"] + common) == 130
    checkpoint = tmp_path / "vec.npz.checkpoint.npz"
    assert "checkpoint saved" in capsys.readouterr().err and checkpoint.exists() and not out.exists()
    monkeypatch.setattr(GloVe, "fit", original_fit)
    assert main(["train", "glove", str(corpus), "-o", str(out), "--resume", str(checkpoint)] + common) == 0
    err = capsys.readouterr().err
    assert "iter: 002" in err and "iter: 003" in err and "iter: 001" not in err
    assert out.exists() and not checkpoint.exists()
