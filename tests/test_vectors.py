"""KeyedVectors against gensim's KeyedVectors (reference) and against the formulas written out."""

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.vectors import KeyedVectors

gensim_models = pytest.importorskip("gensim.models")


@pytest.fixture(scope="module")
def pair():
    """Our KeyedVectors and gensim's, holding the same random vectors."""
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(400)] + ["king", "queen", "man", "woman", "Ünïcode"]
    vectors = rng.standard_normal((len(words), 16)).astype(np.float32)
    ours = KeyedVectors(vectors.copy(), words, counts=np.arange(len(words))[::-1])
    reference = gensim_models.KeyedVectors(16)
    reference.add_vectors(words, vectors.copy())
    return ours, reference


def assert_same_neighbours(ours, theirs):
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=0, atol=1e-5)


@pytest.mark.parametrize("query", [
    dict(positive=["w1"]),
    dict(positive=["king", "woman"], negative=["man"]),
    dict(positive=["w3", "w4", "w5"], negative=["w6", "w7"], topn=7),
    dict(positive=["w10"], restrict_vocab=50, topn=5),
    dict(positive=[("w2", 2.0), "w9"], negative=[("w8", 0.5)]),
])
def test_most_similar_matches_gensim(pair, query):
    ours, reference = pair
    assert_same_neighbours(ours.most_similar(**query), reference.most_similar(**query))


def test_most_similar_with_raw_vectors_matches_gensim(pair):
    ours, reference = pair
    vector = np.linspace(-1, 1, 16).astype(np.float32)
    assert_same_neighbours(ours.most_similar(positive=[vector, "w1"], negative=["w2"]),
                           reference.most_similar(positive=[vector, "w1"], negative=["w2"]))
    assert_same_neighbours(ours.similar_by_vector(vector, topn=4), reference.similar_by_vector(vector, topn=4))


def test_most_similar_by_the_formula(pair):
    """Score = cos(v_j, unit(mean of unit inputs with +1/-1)), inputs excluded, sorted descending."""
    ours, _ = pair
    v = ours.vectors.astype(np.float64)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    i, j, k = ours.key_to_index["king"], ours.key_to_index["woman"], ours.key_to_index["man"]
    query = (unit[i] + unit[j] - unit[k]) / 3
    scores = unit @ (query / np.linalg.norm(query))
    scores[[i, j, k]] = -np.inf
    expected = [ours.index_to_key[t] for t in np.argsort(-scores)[:10]]
    assert [w for w, _ in ours.most_similar(["king", "woman"], ["man"])] == expected
    all_scores = ours.most_similar(["king", "woman"], ["man"], topn=None)
    assert all_scores.shape == (len(ours),)
    np.testing.assert_allclose(all_scores[np.isfinite(scores)], scores[np.isfinite(scores)], atol=1e-5)


def test_most_similar_cosmul_matches_gensim_and_formula(pair):
    ours, reference = pair
    query = dict(positive=["king", "woman"], negative=["man"], topn=8)
    assert_same_neighbours(ours.most_similar_cosmul(**query), reference.most_similar_cosmul(**query))
    v = ours.vectors.astype(np.float64)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)

    def shifted(word):
        return (1 + unit @ unit[ours.key_to_index[word]]) / 2

    expected = shifted("king") * shifted("woman") / (shifted("man") + 1e-6)
    np.testing.assert_allclose(ours.most_similar_cosmul(**{**query, "topn": None}), expected, rtol=1e-5)
    # restrict_vocab is honoured (gensim ignores it here): every answer is among the first 30 rows
    restricted = ours.most_similar_cosmul(positive=["w1", "w2"], negative=["w3"], restrict_vocab=30)
    assert all(ours.key_to_index[w] < 30 for w, _ in restricted)


def test_pairwise_methods_match_gensim(pair):
    ours, reference = pair
    assert ours.similarity("w1", "w2") == pytest.approx(float(reference.similarity("w1", "w2")), abs=1e-6)
    assert ours.distance("king", "queen") == pytest.approx(float(reference.distance("king", "queen")), abs=1e-6)
    assert ours.n_similarity(["w1", "w2"], ["w3", "king"]) == pytest.approx(
        float(reference.n_similarity(["w1", "w2"], ["w3", "king"])), abs=1e-6)
    np.testing.assert_allclose(ours.distances("w5", ["w1", "w2", "w3"]),
                               reference.distances("w5", ["w1", "w2", "w3"]), atol=1e-6)
    np.testing.assert_allclose(ours.distances("w5"), reference.distances("w5"), atol=1e-6)
    assert ours.rank("w1", "w2") == reference.rank("w1", "w2")
    words = ["w1", "w2", "w3", "w4", "king"]
    assert ours.doesnt_match(words) == reference.doesnt_match(words)


def test_lookup_and_unknown_words(pair):
    ours, _ = pair
    assert "king" in ours and "kingdom" not in ours
    assert len(ours) == 405 and ours.vector_size == 16
    np.testing.assert_array_equal(ours["king"], ours.vectors[ours.key_to_index["king"]])
    assert ours[["king", "man"]].shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(ours.get_vector("man", norm=True)), 1.0, rtol=1e-6)
    with pytest.raises(Word2BertError, match="word 'xyz' is not in the vocabulary"):
        ours["xyz"]
    with pytest.raises(Word2BertError, match="word 'xyz' is not in the vocabulary"):
        ours.most_similar(["king", "xyz"])
    with pytest.raises(Word2BertError, match="dimension 16"):
        ours.most_similar(positive=[np.ones(5)])
    with pytest.raises(Word2BertError):
        ours.most_similar()


def test_unknown_words_are_key_errors_as_in_gensim(pair):
    """gensim code catches KeyError around ``wv[word]``; the error is also a Word2BertError whose
    text reads as a sentence (KeyError's own str() would quote it)."""
    ours, reference = pair
    from word2bert.errors import UnknownWordError

    for kv in (ours, reference):
        with pytest.raises(KeyError):
            kv["zebra"]
    with pytest.raises(UnknownWordError) as caught:
        ours.similarity("king", "zebra")
    assert isinstance(caught.value, Word2BertError) and caught.value.key == "zebra"
    assert str(caught.value) == "word 'zebra' is not in the vocabulary"
    import pickle

    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)


def test_topn_zero_negative_and_none(pair):
    ours, reference = pair
    assert ours.most_similar("king", topn=0) == reference.most_similar("king", topn=0) == []
    assert len(ours.most_similar("king", topn=None)) == len(ours)
    for bad in (-1, 2.5):
        with pytest.raises(Word2BertError, match="topn"):
            ours.most_similar("king", topn=bad)
        with pytest.raises(Word2BertError, match="topn"):
            ours.most_similar_cosmul("king", topn=bad)


def test_constructor_rejects_bad_input():
    with pytest.raises(Word2BertError, match="2 words but 3 vectors"):
        KeyedVectors(np.zeros((3, 4)), ["a", "b"])
    with pytest.raises(Word2BertError, match="'a' occurs more than once"):
        KeyedVectors(np.zeros((2, 4)), ["a", "a"])
    with pytest.raises(Word2BertError, match="2-D"):
        KeyedVectors(np.zeros(4), ["a"])
    kv = KeyedVectors(np.ones((2, 3), dtype=np.float64), ["a", "b"])
    assert kv.vectors.dtype == np.float32


def test_norm_cache_follows_vector_changes():
    kv = KeyedVectors(np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32), ["x", "y", "z"])
    assert kv.similarity("x", "y") == pytest.approx(0.0)
    kv.vectors = np.array([[1, 0], [1, 0.001], [0, 1]], dtype=np.float32)
    assert kv.similarity("x", "y") == pytest.approx(1.0, abs=1e-5)
    kv.vectors[1] = [0, 1]  # in place, as training does: a change to the first rows is noticed
    assert kv.similarity("x", "y") == pytest.approx(0.0)
    big = KeyedVectors(np.ones((100, 2), dtype=np.float32), [f"w{i}" for i in range(100)])
    assert big.similarity("w50", "w51") == pytest.approx(1.0)
    big.vectors[51] = [1, -1]  # a row the fingerprint does not probe: stale until invalidated
    big.invalidate_norms()
    assert big.similarity("w50", "w51") == pytest.approx(0.0, abs=1e-6)
    zero = KeyedVectors(np.zeros((2, 3), dtype=np.float32), ["a", "b"])
    assert zero.similarity("a", "b") == 0.0  # zero rows stay zero, no NaN


def test_npz_round_trip_keeps_words_vectors_counts(pair, tmp_path):
    ours, _ = pair
    path = tmp_path / "vectors.npz"
    ours.save(path)
    loaded = KeyedVectors.load(path)
    assert loaded.index_to_key == ours.index_to_key
    np.testing.assert_array_equal(loaded.vectors, ours.vectors)
    np.testing.assert_array_equal(loaded.counts, ours.counts)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary left behind


def test_save_chooses_format_by_extension(pair, tmp_path):
    ours, reference = pair
    for name, binary in (("v.bin", True), ("v.txt", False)):
        ours.save(tmp_path / name)
        back = gensim_models.KeyedVectors.load_word2vec_format(str(tmp_path / name), binary=binary)
        np.testing.assert_allclose(back.vectors, ours.vectors, atol=1e-6)
        assert KeyedVectors.load(tmp_path / name).index_to_key == ours.index_to_key


def test_load_rejects_corrupt_npz(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(Word2BertError, match="broken.npz"):
        KeyedVectors.load(path)
    with pytest.raises(Word2BertError, match="file not found"):
        KeyedVectors.load(tmp_path / "missing.bin")
