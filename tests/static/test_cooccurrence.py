"""Co-occurrence counting: hand-checked counts, a plain-Python reference, spilling, files."""

import numpy as np
import pytest

from word2bert.corpus import EncodedCorpus
from word2bert.errors import Word2BertError
from word2bert.static.cooccurrence import (
    CooccurrenceMatrix,
    build_cooccurrence,
    count_cooccurrences,
    is_cooccurrence_file,
)


def encoded(sentences):
    tokens = np.concatenate([np.asarray(s, np.int32) for s in sentences])
    offsets = np.cumsum([0] + [len(s) for s in sentences]).astype(np.int64)
    return EncodedCorpus(tokens, offsets)


def reference_counts(sentences, vocab_size, window, symmetric=True, distance_weighting=True):
    """cooccur.c's loop in plain Python: every word with each word up to `window` to its left."""
    x = np.zeros((vocab_size, vocab_size))
    for sentence in sentences:
        for p, right in enumerate(sentence):
            for d in range(1, window + 1):
                if p - d < 0:
                    break
                left = sentence[p - d]
                weight = 1.0 / d if distance_weighting else 1.0
                x[left, right] += weight
                if symmetric:
                    x[right, left] += weight
    return x


# Worked by hand: sentence "a b c a" then "b b" (ids a=0, b=1, c=2), window 2.
# Pairs (left, right, d): (a,b,1) (b,c,1) (a,c,2) (c,a,1) (b,a,2) | (b,b,1); "a ... a" is at d=3 > 2.
TOY = [[0, 1, 2, 0], [1, 1]]


def test_toy_counts_symmetric_inverse_distance():
    x = count_cooccurrences(encoded(TOY), 3, window=2).toarray()
    expected = np.array([[0.0, 1.0 + 0.5, 0.5 + 1.0],
                         [1.5, 2.0, 1.0],      # b-b at d=1 counted in both orders: 2/1 on the diagonal
                         [1.5, 1.0, 0.0]])
    np.testing.assert_allclose(x, expected)
    np.testing.assert_allclose(x, x.T)


def test_toy_counts_left_only_and_uniform():
    left = count_cooccurrences(encoded(TOY), 3, window=2, symmetric=False).toarray()
    # X[i, j]: i occurs d <= 2 positions before j
    np.testing.assert_allclose(left, [[0, 1, 0.5], [0.5, 1, 1], [1, 0, 0]])
    uniform = count_cooccurrences(encoded(TOY), 3, window=2, distance_weighting=False).toarray()
    np.testing.assert_allclose(uniform, [[0, 2, 2], [2, 2, 1], [2, 1, 0]])


def test_windows_do_not_cross_sentences():
    x = count_cooccurrences(encoded([[0], [1]]), 2, window=5).toarray()
    assert not x.any()


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("workers", [1, 3])
def test_matches_plain_python_reference(symmetric, workers):
    rng = np.random.default_rng(3)
    sentences = [rng.integers(0, 40, rng.integers(1, 30)).tolist() for _ in range(120)]
    x = count_cooccurrences(encoded(sentences), 40, window=4, symmetric=symmetric, workers=workers)
    assert x.format == "csr" and x.has_sorted_indices
    np.testing.assert_allclose(x.toarray(), reference_counts(sentences, 40, 4, symmetric), rtol=1e-12)


@pytest.mark.parametrize("symmetric", [True, False])
def test_memory_bounded_counting_equals_in_memory(symmetric, tmp_path):
    rng = np.random.default_rng(5)
    # Zipf-like ids so some pairs repeat across spilled runs and must be summed by the merge
    sentences = [np.minimum(rng.zipf(1.3, rng.integers(5, 60)) - 1, 299).tolist() for _ in range(300)]
    corpus = encoded(sentences)
    in_memory, stats = count_cooccurrences(corpus, 300, window=5, symmetric=symmetric, workers=2,
                                           return_stats=True)
    assert stats["spilled_runs"] == 0
    bounded, stats = count_cooccurrences(corpus, 300, window=5, symmetric=symmetric, workers=2,
                                         memory_limit_mb=0.02, temp_dir=tmp_path, return_stats=True)
    assert stats["spilled_runs"] >= 4
    assert list(tmp_path.iterdir()) == []  # spill files are removed
    assert bounded.nnz == in_memory.nnz
    np.testing.assert_array_equal(bounded.indptr, in_memory.indptr)
    np.testing.assert_array_equal(bounded.indices, in_memory.indices)
    np.testing.assert_allclose(bounded.data, in_memory.data, rtol=1e-12)


def test_bad_parameters_are_reported():
    with pytest.raises(Word2BertError, match="window"):
        count_cooccurrences(encoded(TOY), 3, window=0)
    with pytest.raises(Word2BertError, match="word ids"):
        count_cooccurrences(encoded(TOY), 2, window=2)


def test_save_load_round_trip_and_detection(tmp_path):
    x = count_cooccurrences(encoded(TOY), 3, window=2)
    matrix = CooccurrenceMatrix(x, ["a", "bé", "猫"], [2, 3, 1], {"window": 2})
    path = tmp_path / "cooc.npz"
    matrix.save(path)
    assert is_cooccurrence_file(path)
    loaded = CooccurrenceMatrix.load(path)
    assert loaded.words == ["a", "bé", "猫"] and loaded.settings["window"] == "2"
    np.testing.assert_array_equal(loaded.counts, [2, 3, 1])
    np.testing.assert_array_equal(loaded.matrix.toarray(), x.toarray())
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    assert not is_cooccurrence_file(other)
    with pytest.raises(Word2BertError, match="not a word2bert co-occurrence"):
        CooccurrenceMatrix.load(other)
    with pytest.raises(Word2BertError, match="not found"):
        CooccurrenceMatrix.load(tmp_path / "missing.npz")
    with pytest.raises(Word2BertError, match="does not match"):
        CooccurrenceMatrix(x, ["a", "b"])


def test_build_from_text_keeps_long_lines_whole(tmp_path):
    # one line longer than the reader's default chunk: its windows must run across the chunk edge
    words = ["w%d" % (i % 7) for i in range(10005)]
    path = tmp_path / "corpus.txt"
    path.write_text(" ".join(words) + "\nw0 w1\n")
    matrix = build_cooccurrence(path, window=2, min_count=1, workers=2, show_progress=False)
    ids = [[matrix.words.index(w) for w in words], [matrix.words.index("w0"), matrix.words.index("w1")]]
    expected = reference_counts(ids, len(matrix.words), 2)
    np.testing.assert_allclose(matrix.matrix.toarray(), expected, rtol=1e-12)
