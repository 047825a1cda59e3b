"""Facebook .bin/.vec interop, both directions, checked against the fasttext package itself."""

import numpy as np
import pytest
from fasttext_reference import facebook_train

from word2bert.errors import Word2BertError
from word2bert.interop.fasttext_format import load_vec, read_fasttext_bin, save_vec
from word2bert.static.fasttext import FastText, load_facebook_model, load_facebook_vectors, save_facebook_model

fasttext = pytest.importorskip("fasttext")

OOV = ["zébra", "unseenword", "日本", "xq", "q"]


def write_corpus(path, n_lines=1000, seed=0):
    rng = np.random.default_rng(seed)
    stems = ["walk", "talk", "run", "jump", "swim", "read", "écrire", "naïve", "straße", "кот"]
    suffixes = ["", "s", "ed", "ing", "er"]
    vocab = [s + x for s in stems for x in suffixes]
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    lines = [" ".join(rng.choice(vocab, size=10, p=weights / weights.sum())) for _ in range(n_lines)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def facebook_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fb")
    corpus = write_corpus(directory / "corpus.txt")
    path = facebook_train(directory, "train_unsupervised", corpus, model="skipgram", dim=10, epoch=1, minCount=1,
                          thread=1, bucket=20000, lr=0.02, t=1.0)
    return fasttext.load_model(str(path)), path, corpus


def test_read_facebook_bin_gives_fasttexts_vectors(facebook_model):
    model, path, _ = facebook_model
    data = read_fasttext_bin(path)
    assert data.args["dim"] == 10 and data.args["bucket"] == 20000 and data.model == "sg" and data.loss == "ns"
    assert data.words == model.words
    np.testing.assert_allclose(data.input_matrix, model.get_input_matrix(), atol=1e-7)
    np.testing.assert_allclose(data.output_matrix, model.get_output_matrix(), atol=1e-7)
    kv = load_facebook_vectors(path)
    for word in model.words:
        np.testing.assert_allclose(kv[word], model.get_word_vector(word), atol=1e-5, err_msg=word)
    for word in OOV:
        assert word not in kv.key_to_index
        np.testing.assert_allclose(kv.word_vector(word), model.get_word_vector(word), atol=1e-5, err_msg=word)


def test_our_bin_loads_in_fasttext(tmp_path, facebook_model):
    _, _, corpus = facebook_model
    ours = FastText(corpus_file=corpus, vector_size=8, min_count=1, epochs=1, bucket=2000, workers=1, sg=1,
                    min_n=2, max_n=4, progress=False)
    path = tmp_path / "ours.bin"
    ours.save(path)
    loaded = fasttext.load_model(str(path))
    assert loaded.get_dimension() == 8 and loaded.words == ours.wv.index_to_key
    for word in ours.wv.index_to_key:
        np.testing.assert_allclose(ours.wv[word], loaded.get_word_vector(word), atol=1e-5, err_msg=word)
    for word in OOV:
        np.testing.assert_allclose(ours.wv.word_vector(word), loaded.get_word_vector(word), atol=1e-5)
    np.testing.assert_array_equal(loaded.get_output_matrix(), ours.output_vectors)


def test_facebook_model_round_trips_through_our_writer(tmp_path, facebook_model):
    model, path, _ = facebook_model
    ours = load_facebook_model(path)
    copy = tmp_path / "copy.bin"
    save_facebook_model(ours, copy)
    assert copy.read_bytes() == path.read_bytes()


def test_vec_round_trip(tmp_path, facebook_model):
    _, path, _ = facebook_model
    kv = load_facebook_vectors(path)
    vec = tmp_path / "vectors.vec"
    save_vec(kv, vec)
    header = vec.read_text(encoding="utf-8").splitlines()[0]
    assert header == f"{len(kv)} 10"
    back = load_vec(vec)
    assert back.index_to_key == kv.index_to_key
    np.testing.assert_allclose(back.vectors, kv.vectors, atol=1e-5)


def test_corrupt_files_get_clear_errors(tmp_path, facebook_model):
    _, path, _ = facebook_model
    data = path.read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(Word2BertError, match="truncated"):
        read_fasttext_bin(truncated)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01" * 100)
    with pytest.raises(Word2BertError, match="not a fastText"):
        read_fasttext_bin(garbage)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(Word2BertError, match="too short"):
        read_fasttext_bin(empty)
    bad_dictionary = bytearray(data)
    bad_dictionary[64:68] = (10**6).to_bytes(4, "little")  # dictionary size no longer nwords + nlabels
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(bad_dictionary))
    with pytest.raises(Word2BertError, match="corrupt"):
        read_fasttext_bin(bad)
    with pytest.raises(Word2BertError, match="not found"):
        read_fasttext_bin(tmp_path / "missing.bin")


def test_quantized_model_is_read(tmp_path):
    """A fastText .ftz: the product-quantized input matrix is read as codes and codebooks (its
    predictions are checked in test_fasttext_api.py)."""
    train = tmp_path / "train.txt"
    rng = np.random.default_rng(1)
    lines = [f"__label__{c} " + " ".join(f"w{c}{rng.integers(5)}" for _ in range(5)) for c in rng.integers(3, size=2000)]
    train.write_text("\n".join(lines) + "\n")
    ftz = facebook_train(tmp_path, "train_supervised", train, after=f"m.quantize(input={str(train)!r}, dsub=2)",
                         dim=4, epoch=5, thread=1, lr=0.05, wordNgrams=2, bucket=1000)
    data = read_fasttext_bin(ftz)
    assert data.quantized and data.input_matrix.codes.shape == (data.input_matrix.rows, 2)
    assert data.input_matrix.pq.centroids.shape == (4 * 256,) and data.pruneidx is None
