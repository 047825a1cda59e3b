"""Word2Vec end to end: planted structure recovered in every mode, save/load/continue, resume."""

import numpy as np
import pytest

from word2bert.corpus import EncodedCorpus
from word2bert.errors import Word2BertError
from word2bert.static.word2vec import Word2Vec

GROUPS, PER_GROUP = 6, 8


def planted_corpus(n_sentences=1500, length=10, seed=0):
    """Sentences drawn from one group each: words of group k co-occur only with group k."""
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n_sentences):
        group = rng.integers(GROUPS)
        sentences.append([f"g{group}w{i}" for i in rng.integers(PER_GROUP, size=length)])
    return sentences


def group_of(word):
    return int(word[1 : word.index("w")])


def neighbour_accuracy(model):
    """Fraction of words whose cosine nearest neighbour is in the same planted group."""
    vectors = np.asarray(model.wv.vectors, dtype=np.float64)
    words = model.wv.index_to_key
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    groups = np.array([group_of(w) for w in words])
    return float(np.mean(groups[nearest] == groups))


def between_within_gap(model):
    vectors = np.asarray(model.wv.vectors, dtype=np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    groups = np.array([group_of(w) for w in model.wv.index_to_key])
    same = groups[:, None] == groups[None, :]
    np.fill_diagonal(same, False)
    similarity = unit @ unit.T
    different = groups[:, None] != groups[None, :]
    return similarity[same].mean() - similarity[different].mean()


SMALL = dict(vector_size=16, window=3, min_count=1, sample=0, epochs=4, workers=2, progress=False)


@pytest.mark.parametrize("sg", [1, 0])
@pytest.mark.parametrize("loss", ["ns", "hs", "softmax"])
def test_planted_groups_recovered(sg, loss):
    options = {"ns": dict(negative=5, hs=0), "hs": dict(negative=0, hs=1),
               "softmax": dict(negative=0, hs=0, softmax=True)}[loss]
    model = Word2Vec(planted_corpus(), sg=sg, **SMALL, **options)
    assert len(model.wv.index_to_key) == GROUPS * PER_GROUP
    assert neighbour_accuracy(model) >= 0.95
    assert between_within_gap(model) > 0.3
    assert len(model.epoch_losses) == SMALL["epochs"]
    assert model.epoch_losses[-1] < model.epoch_losses[0]
    assert model.get_latest_training_loss() > 0


def test_untrained_model_has_no_structure():
    """The accuracy check can fail: random initial vectors do not show the groups."""
    model = Word2Vec(**SMALL)
    model.build_vocab(planted_corpus())
    assert neighbour_accuracy(model) < 0.6


def test_cbow_sum_and_both_losses():
    model = Word2Vec(planted_corpus(), sg=0, cbow_mean=0, hs=1, negative=3, alpha=0.01, **SMALL)
    assert model.output_vectors_hs is not None and model.output_vectors_ns is not None
    assert neighbour_accuracy(model) >= 0.95


def test_subsampling_drops_frequent_words():
    rng = np.random.default_rng(1)
    sentences = [["the"] * 20 + [f"w{i}" for i in rng.integers(200, size=5)] for _ in range(400)]
    kept_all = Word2Vec(sentences, **{**SMALL, "epochs": 1})
    words_all, _ = kept_all.train(sentences, epochs=1)
    sub = Word2Vec(sentences, **{**SMALL, "epochs": 1, "sample": 1e-3})
    words_sub, raw = sub.train(sentences, epochs=1)
    assert words_all == raw == 400 * 25
    # expected survivors: sum over words of count * keep probability (word2vec.c's formula)
    counts = sub.vocab.counts.astype(float)
    threshold = 1e-3 * counts.sum()
    keep = np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts)
    expected = float(np.sum(counts * keep))
    assert abs(words_sub - expected) < 5 * np.sqrt(expected)


def test_deterministic_with_one_worker():
    options = {**SMALL, "workers": 1, "seed": 7}
    a = Word2Vec(planted_corpus(300), sg=1, **options)
    b = Word2Vec(planted_corpus(300), sg=1, **options)
    c = Word2Vec(planted_corpus(300), sg=1, **{**options, "seed": 8})
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)
    assert not np.allclose(a.wv.vectors, c.wv.vectors)


def test_wv_shares_input_vectors():
    model = Word2Vec(planted_corpus(200), **SMALL)
    assert np.shares_memory(model.wv.vectors, model.input_vectors)
    assert model.wv.index_to_key == model.vocab.words


def test_word_vectors_live_on_whole_cache_lines_and_loaded_ones_move_there_to_train(tmp_path):
    from word2bert.static.native import whole_lines

    model = Word2Vec(vector_size=20, min_count=1, seed=1, workers=1, progress=False).build_vocab(planted_corpus(100))
    assert whole_lines(model.input_vectors) is not None and not model.input_vectors.flags.c_contiguous
    assert whole_lines(model.input_vectors).strides[0] == 128  # 20 floats padded to two 64-byte lines
    vectors = model.wv.vectors
    model.train(planted_corpus(100), epochs=1)
    assert model.wv.vectors is vectors and not whole_lines(vectors)[:, 20:].any()  # trained in place
    model.save(tmp_path / "model.w2v")
    loaded = Word2Vec.load(tmp_path / "model.w2v")
    np.testing.assert_array_equal(loaded.wv.vectors, vectors)
    before = loaded.input_vectors.copy()
    loaded.train(planted_corpus(100), epochs=1)
    assert whole_lines(loaded.input_vectors) is not None and np.shares_memory(loaded.wv.vectors, loaded.input_vectors)
    assert np.abs(loaded.wv.vectors - before).max() > 1e-3


def test_save_load_continue(tmp_path):
    sentences = planted_corpus(400)
    model = Word2Vec(sentences, sg=1, hs=1, negative=5, **SMALL)
    path = tmp_path / "model.w2v"
    model.save(path)
    loaded = Word2Vec.load(path)
    np.testing.assert_array_equal(loaded.input_vectors, model.input_vectors)
    np.testing.assert_array_equal(loaded.output_vectors_ns, model.output_vectors_ns)
    np.testing.assert_array_equal(loaded.output_vectors_hs, model.output_vectors_hs)
    assert loaded.vocab.words == model.vocab.words and loaded.sg == 1 and loaded.hs == 1
    before = loaded.input_vectors.copy()
    loaded.train(sentences, epochs=1)
    assert not np.allclose(before, loaded.input_vectors)
    assert neighbour_accuracy(loaded) >= 0.95
    assert [p.name for p in tmp_path.iterdir()] == ["model.w2v"]  # no temporary left behind


def test_interrupt_saves_checkpoint_and_resumes(tmp_path):
    sentences = planted_corpus(600)

    class InterruptAfterFirstEpoch:
        def on_epoch_end(self, model):
            raise KeyboardInterrupt

    model = Word2Vec(**{**SMALL, "epochs": 3})
    model.build_vocab(sentences)
    checkpoint = tmp_path / "checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        model.train(sentences, callbacks=[InterruptAfterFirstEpoch()], checkpoint=checkpoint)
    assert checkpoint.exists()
    resumed = Word2Vec.load(checkpoint)
    assert resumed._resume_state["epoch"] == 1
    assert len(resumed.epoch_losses) == 1
    resumed.train(sentences)
    assert len(resumed.epoch_losses) == 3
    assert resumed._resume_state is None
    assert neighbour_accuracy(resumed) >= 0.95


def test_encoded_corpus_and_cache(tmp_path):
    sentences = planted_corpus(300)
    model = Word2Vec(cache_dir=tmp_path / "cache", **SMALL)
    model.build_vocab(sentences)
    encoded = model.encode(sentences)
    assert isinstance(encoded.tokens, np.memmap)
    model.train(encoded)
    again = EncodedCorpus.open(tmp_path / "cache", model.vocab)
    assert len(again) == 300 * 10


@pytest.mark.parametrize("bad, message", [
    (dict(negative=-1), "negative"), (dict(window=0), "window"), (dict(vector_size=0), "vector_size"),
    (dict(sg=2), "sg"), (dict(hs=0, negative=0), "no output layer"), (dict(alpha=0), "alpha"),
    (dict(softmax=True), "softmax"), (dict(epochs=0), "epochs"), (dict(sample=-1), "sample"),
])
def test_parameter_validation(bad, message):
    with pytest.raises(Word2BertError, match=message):
        Word2Vec(**{**SMALL, **bad})


def test_softmax_refuses_large_vocabulary():
    sentences = [[f"w{i}" for i in range(j, j + 10)] for j in range(0, 6000, 10)]
    with pytest.raises(Word2BertError, match="5000"):
        Word2Vec(sentences, softmax=True, negative=0, **SMALL)


def test_bad_input():
    with pytest.raises(Word2BertError):
        Word2Vec([[]], **SMALL)
    with pytest.raises(Word2BertError):
        Word2Vec("a string is not a corpus", **SMALL)
    with pytest.raises(Word2BertError):
        Word2Vec(**SMALL).train([["a"]])
    with pytest.raises(Word2BertError, match="not found"):
        Word2Vec.load("/nonexistent/model.npz")
