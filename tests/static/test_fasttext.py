"""FastText word vectors: planted topics and morphology recovered, OOV vectors, files, bad input."""

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.static.fasttext import FastText
from word2bert.static.native import whole_lines

TOPIC_A = ["walk", "walks", "walked", "walking", "walker", "stroll", "strolls", "strolled", "strolling"]
TOPIC_B = ["swim", "swims", "swam", "swimming", "swimmer", "dive", "dives", "dived", "diving"]


def planted_corpus(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.choice(TOPIC_A if i % 2 else TOPIC_B, size=10)) for i in range(n)]


SMALL = dict(vector_size=16, min_count=1, epochs=5, min_n=3, max_n=5, bucket=5000, sample=0, workers=2, seed=3,
             progress=False)


@pytest.fixture(scope="module")
def skipgram():
    return FastText(planted_corpus(), sg=1, **SMALL)


def neighbours_in_topic(wv):
    hits = 0
    for topic in (TOPIC_A, TOPIC_B):
        for word in topic:
            hits += wv.most_similar(word, topn=1)[0][0] in topic
    return hits / (len(TOPIC_A) + len(TOPIC_B))


def test_skipgram_recovers_planted_topics(skipgram):
    assert neighbours_in_topic(skipgram.wv) == 1.0


@pytest.mark.parametrize("mode", [dict(sg=0), dict(sg=1, hs=1, negative=0), dict(sg=0, negative=0)])
def test_other_modes_recover_planted_topics(mode):
    model = FastText(planted_corpus(), **mode, **SMALL)
    assert model.loss == ("hs" if mode.get("hs") else "ns" if mode.get("negative", 5) else "softmax")
    assert neighbours_in_topic(model.wv) >= 0.9


def test_subsampling_uses_fasttexts_token_count(monkeypatch):
    """fastText keeps word w with probability sqrt(t / f) + t / f (Dictionary::initTableDiscard), where
    f = count / ntokens and ntokens counts every token read: rare words below min_count and one
    "</s>" per line included."""
    from word2bert.static import kernels as bag_kernels

    seen = {}
    real = bag_kernels.subword_chunk

    def spy(*args):
        seen["keep"] = args[8].copy()
        return real(*args)

    monkeypatch.setattr(bag_kernels, "subword_chunk", spy)
    corpus = [["the"] * 30 + ["cat", "sat"] * 5 + ["rare"] for _ in range(20)]  # "rare": 20 < min_count
    model = FastText(corpus, **dict(SMALL, min_count=25, sample=1e-2, workers=1))
    ntokens = 20 * 41 + 20  # every token, plus one "</s>" per line
    t = 1e-2
    f = model.vocab.counts / ntokens
    np.testing.assert_allclose(seen["keep"], np.minimum(np.sqrt(t / f) + t / f, 1.0), rtol=1e-6)


def test_oov_words_get_vectors_from_their_ngrams(skipgram):
    wv = skipgram.wv
    for unseen, own, other in (("strollings", TOPIC_A, TOPIC_B), ("divings", TOPIC_B, TOPIC_A)):
        assert unseen not in wv.key_to_index and unseen in wv
        own_similarity = np.mean([wv.similarity(unseen, w) for w in own])
        other_similarity = np.mean([wv.similarity(unseen, w) for w in other])
        assert own_similarity > other_similarity + 0.1
        assert wv.most_similar(unseen, topn=1)[0][0] in own


def test_word_vector_is_the_mean_of_its_rows(skipgram):
    for word in ("walking", "unseenish"):
        _, rows = skipgram.get_subwords(word)
        np.testing.assert_allclose(skipgram.wv.word_vector(word), skipgram.input_vectors[rows].mean(axis=0),
                                   rtol=1e-5, atol=1e-7)
    assert skipgram.get_subwords("walk")[0][:3] == ["walk", "<wa", "<wal"]
    # "ab" is "<ab>": with min_n = max_n = 5 it has no n-gram, so no vector
    model = FastText(planted_corpus(50), **dict(SMALL, min_n=5, max_n=5))
    assert "ab" not in model.wv
    with pytest.raises(Word2BertError, match="no character n-grams"):
        model.wv["ab"]
    np.testing.assert_array_equal(model.wv.word_vector("ab"), np.zeros(16, np.float32))


def test_vectors_from_the_trained_rows_equal_those_from_the_full_input_matrix():
    """A model drawn from scratch trains on the rows its words use and answers from them (the other
    rows are zero); its full input matrix is built when asked for, with the same vectors, OOV too."""
    model = FastText(planted_corpus(100), sg=1, **dict(SMALL, epochs=1))
    assert model._input_vectors is None and model._trained_rows is not None
    wv = model.wv
    known, unseen = wv.vectors.copy(), wv.get_vector("strollings")  # "strollings" uses n-gram rows no word has
    assert model._input_vectors is None
    matrix = model.input_vectors  # built now
    assert matrix.shape == (len(wv) + 5000, 16) and model._trained_rows is None
    untouched = np.setdiff1d(np.arange(matrix.shape[0]), model.subword_rows)
    assert len(untouched) > 4000 and not matrix[untouched].any()
    model._wv = None
    np.testing.assert_allclose(model.wv.vectors, known, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.wv.get_vector("strollings"), unseen, rtol=1e-6, atol=1e-8)
    _, rows = model.get_subwords("strollings")
    np.testing.assert_allclose(unseen, matrix[rows].mean(axis=0), rtol=1e-5, atol=1e-7)


def test_save_load_and_continue_training(tmp_path, skipgram):
    path = tmp_path / "model.bin"
    skipgram.save(path)
    loaded = FastText.load(path)
    assert loaded.wv.index_to_key == skipgram.wv.index_to_key
    assert (loaded.sg, loaded.min_n, loaded.max_n, loaded.bucket, loaded.window) == (1, 3, 5, 5000, 5)
    np.testing.assert_array_equal(loaded.wv.vectors, skipgram.wv.vectors)
    np.testing.assert_array_equal(loaded.wv.word_vector("strollings"), skipgram.wv.word_vector("strollings"))
    before, output_before = loaded.wv.vectors.copy(), np.array(loaded.output_vectors)
    loaded.workers = 1
    loaded.train(planted_corpus(100, seed=9), epochs=1)
    assert not np.allclose(loaded.wv.vectors, before)
    assert neighbours_in_topic(loaded.wv) >= 0.9
    # the output rows, read back contiguous, were moved onto whole cache lines and trained there
    assert whole_lines(loaded.output_vectors).strides[0] == 64 and not np.allclose(loaded.output_vectors, output_before)


def test_output_rows_start_on_whole_cache_lines(skipgram):
    lines = whole_lines(skipgram.output_vectors)  # 16 floats: one line each
    assert lines is not None and all(lines[r].ctypes.data % 64 == 0 for r in range(len(lines)))
    wide = FastText(planted_corpus(50), sg=1, **dict(SMALL, vector_size=20, epochs=1))
    assert whole_lines(wide.output_vectors).shape == (len(wide.wv), 32) and wide.output_vectors.shape[1] == 20
    assert np.abs(wide.output_vectors).sum() > 0 and not whole_lines(wide.output_vectors)[:, 20:].any()


def test_bad_input_gets_clear_errors(tmp_path):
    with pytest.raises(Word2BertError, match="min_n"):
        FastText(min_n=5, max_n=3)
    with pytest.raises(Word2BertError, match="vector_size"):
        FastText(vector_size=0)
    with pytest.raises(Word2BertError, match="negative"):
        FastText(negative=-1)
    with pytest.raises(Word2BertError, match="build_vocab"):
        FastText().train([["a"]])
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(Word2BertError, match="empty"):
        FastText(corpus_file=empty, progress=False)
    with pytest.raises(Word2BertError, match="not found"):
        FastText(corpus_file=tmp_path / "missing.txt")
    with pytest.raises(Word2BertError, match="nothing to save"):
        FastText().save(tmp_path / "x.bin")


def test_command_line(tmp_path, capsys):
    from word2bert.cli import main
    from word2bert.vectors import KeyedVectors

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(s) for s in planted_corpus(300)) + "\n")
    model, vec = tmp_path / "model.bin", tmp_path / "vectors.vec"
    assert main(["train", "fasttext", str(corpus), "-o", str(model), "--vec", str(vec), "--min-count", "1",
                 "--vector-size", "16", "--bucket", "3000", "--min-n", "3", "--max-n", "5", "--sample", "0",
                 "--workers", "1", "--no-progress"]) == 0
    loaded = FastText.load(model)
    kv = KeyedVectors.load_word2vec_format(vec)
    assert kv.index_to_key == loaded.wv.index_to_key
    np.testing.assert_allclose(kv.vectors, loaded.wv.vectors, atol=1e-5)
    assert main(["train", "fasttext", str(tmp_path / "missing.txt"), "-o", str(model)]) == 2
    assert "not found" in capsys.readouterr().err
