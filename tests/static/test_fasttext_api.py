"""``import word2bert.fasttext as fasttext`` gives the fasttext package's API: the same kinds of results
(checked against the package on the same file), its files both ways, and product quantization (.ftz)."""

import numpy as np
import pytest
from fasttext_reference import facebook_train
from test_classifier import planted_lines

import word2bert.fasttext as ours
from word2bert.errors import Word2BertError
from word2bert.interop.fasttext_format import QuantizedMatrixData, read_fasttext_bin
from word2bert.static.quantize import decode, dequantize, encode, quantize_matrix, train_quantizer

facebook = pytest.importorskip("fasttext")

SETTINGS = dict(dim=16, epoch=8, lr=0.5, wordNgrams=2, bucket=20000, thread=1)  # (facebook_train adds verbose=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("facade")
    rng = np.random.default_rng(1)
    train, _ = planted_lines(1500, rng)
    test, _ = planted_lines(300, rng)
    (directory / "train.txt").write_text("\n".join(train) + "\n")
    (directory / "test.txt").write_text("\n".join(test) + "\n")
    theirs = facebook_train(directory, "train_supervised", directory / "train.txt", **SETTINGS)
    return directory, ours.train_supervised(str(directory / "train.txt"), verbose=0, **SETTINGS), theirs


def facebook_predict(model, lines, k=1):
    """The package's predictions (its single-string ``predict`` breaks on numpy 2: use the list form)."""
    labels, probabilities = model.predict(lines, k=k)
    return labels, probabilities


def test_same_kinds_of_results_as_the_fasttext_package(data):
    directory, model, theirs_path = data
    theirs = facebook.load_model(str(theirs_path))
    text = "sig1_3 sig1_7 noise2 noise5"
    labels, probabilities = model.predict(text, k=2)
    assert isinstance(labels, tuple) and len(labels) == 2 and all(isinstance(x, str) for x in labels)
    assert isinstance(probabilities, np.ndarray) and probabilities.shape == (2,) and probabilities[0] >= probabilities[1]
    their_labels, _ = facebook_predict(theirs, [text], k=2)
    assert labels[0] == their_labels[0][0] == "__label__c1"
    batch_labels, batch_probabilities = model.predict([text, "sig3_1 sig3_2"], k=1)
    assert [list(x) for x in batch_labels] == [["__label__c1"], ["__label__c3"]] and len(batch_probabilities) == 2
    assert sorted(model.get_labels()) == sorted(theirs.get_labels())
    assert set(model.get_words()) == set(theirs.get_words())
    words, counts = model.get_words(include_freq=True)
    their_words, their_counts = theirs.get_words(include_freq=True)
    assert dict(zip(words, counts.tolist())) == dict(zip(their_words, their_counts.tolist()))
    n, precision, recall = model.test(str(directory / "test.txt"))
    their_n, their_precision, _ = theirs.test(str(directory / "test.txt"))
    assert (n, type(precision), type(recall)) == (their_n, float, float) and abs(precision - their_precision) < 0.05
    per_label = model.test_label(str(directory / "test.txt"))
    assert set(per_label) == set(model.get_labels())
    assert set(per_label["__label__c0"]) == set(theirs.test_label(str(directory / "test.txt"))["__label__c0"])
    neighbours = model.get_nearest_neighbors("sig2_3", k=3)
    assert len(neighbours) == 3 and all(isinstance(s, float) and isinstance(w, str) for s, w in neighbours)
    assert all(isinstance(s, float) for s, _ in theirs.get_nearest_neighbors("sig2_3", k=3))
    assert model.get_word_vector("sig2_3").shape == (16,) and model.get_word_vector("sig2_3").dtype == np.float32
    assert model.get_sentence_vector(text).shape == theirs.get_sentence_vector(text).shape
    assert model.get_dimension() == 16 and "sig2_3" in model and "unseen" not in model
    with pytest.raises(Word2BertError, match="one line"):
        model.get_sentence_vector("two\nlines")


def test_fasttexts_bin_gives_fasttexts_predictions_and_vectors(data):
    directory, _, theirs_path = data
    theirs = facebook.load_model(str(theirs_path))
    loaded = ours.load_model(str(theirs_path))
    lines = (directory / "test.txt").read_text().splitlines()[:50]
    their_labels, their_probabilities = facebook_predict(theirs, lines, k=2)
    our_labels, our_probabilities = loaded.predict(lines, k=2)
    assert our_labels == their_labels
    np.testing.assert_allclose(np.array(our_probabilities), np.array(their_probabilities), atol=1e-4)
    for word in ("sig0_1", "noise3", "__never_seen__"):
        np.testing.assert_allclose(loaded.get_word_vector(word), theirs.get_word_vector(word), atol=1e-6)
    for line in lines[:5]:  # the classifier's sentence vector: the mean of the line's input rows, </s> included
        np.testing.assert_allclose(loaded.get_sentence_vector(line), theirs.get_sentence_vector(line), atol=1e-5)


def test_product_quantizer_recovers_clustered_rows_and_round_trips_codes():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(256, 2)).astype(np.float32) * 10
    rows = centres[rng.integers(0, 256, 5000)] + rng.normal(scale=1e-3, size=(5000, 2)).astype(np.float32)
    matrix = np.concatenate([rows, rows[:, ::-1], rows[:, :1]], axis=1)  # dim 5: blocks of 2, 2 and 1
    pq = train_quantizer(matrix, 2, np.random.default_rng(1))
    assert (pq.nsubq, pq.lastdsub, pq.centroids.shape) == (3, 1, (5 * 256,))
    codes = encode(matrix, pq)
    reconstruction = decode(codes, pq)
    # 256 well separated clusters per block: k-means finds most of them; the rows land near their centre
    assert np.median(np.abs(reconstruction - matrix)) < 1e-2
    np.testing.assert_array_equal(encode(reconstruction, pq), codes)
    with pytest.raises(Word2BertError, match="at least 256 rows"):
        train_quantizer(matrix[:100], 2, np.random.default_rng(1))
    normed = quantize_matrix(matrix, dsub=2, qnorm=True)
    assert normed.norm_codes.shape == (5000,) and normed.norm_pq.dim == 1
    norms = np.linalg.norm(dequantize(normed), axis=1)
    np.testing.assert_allclose(norms, np.linalg.norm(matrix, axis=1), rtol=0.05)


def test_quantize_keeps_precision_shrinks_the_file_and_fasttext_reads_it(tmp_path, data):
    directory, _, _ = data
    model = ours.train_supervised(str(directory / "train.txt"), verbose=0, **SETTINGS)
    full = tmp_path / "model.bin"
    model.save_model(str(full))
    _, precision, _ = model.test(str(directory / "test.txt"))
    model.quantize(qnorm=True, dsub=2)
    assert model.is_quantized()
    _, quantized_precision, _ = model.test(str(directory / "test.txt"))
    assert abs(precision - quantized_precision) <= 0.02
    small = tmp_path / "model.ftz"
    model.save_model(str(small))
    assert small.stat().st_size < full.stat().st_size / 4
    assert isinstance(read_fasttext_bin(small).input_matrix, QuantizedMatrixData)
    lines = (directory / "test.txt").read_text().splitlines()[:40]
    their_labels, their_probabilities = facebook_predict(facebook.load_model(str(small)), lines, k=2)
    our_labels, our_probabilities = model.predict(lines, k=2)
    assert our_labels == their_labels
    np.testing.assert_allclose(np.array(our_probabilities), np.array(their_probabilities), atol=1e-4)
    reloaded = ours.load_model(str(small))
    assert reloaded.predict(lines, k=2)[0] == our_labels
    with pytest.raises(Word2BertError, match="cannot be trained"):
        reloaded.model.train(str(directory / "train.txt"))


def test_fasttexts_ftz_gives_fasttexts_predictions(tmp_path, data):
    directory, _, _ = data
    ftz = facebook_train(tmp_path, "train_supervised", directory / "train.txt",
                         after=f"m.quantize(input={str(directory / 'train.txt')!r}, qnorm=True)",
                         **SETTINGS)
    theirs = facebook.load_model(str(ftz))
    loaded = ours.load_model(str(ftz))
    assert loaded.is_quantized()
    lines = (directory / "test.txt").read_text().splitlines()[:40]
    their_labels, their_probabilities = facebook_predict(theirs, lines, k=2)
    our_labels, our_probabilities = loaded.predict(lines, k=2)
    assert our_labels == their_labels
    np.testing.assert_allclose(np.array(our_probabilities), np.array(their_probabilities), atol=1e-4)
    copy = tmp_path / "copy.ftz"
    loaded.save_model(str(copy))
    assert copy.read_bytes() == ftz.read_bytes()


def test_unsupervised_api(tmp_path):
    rng = np.random.default_rng(2)
    topics = [[f"{t}{i}" for i in range(8)] for t in ("apple", "river")]
    lines = [" ".join(rng.choice(topics[rng.integers(2)], 10)) for _ in range(400)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    model = ours.train_unsupervised(str(corpus), model="skipgram", dim=16, epoch=10, minCount=1, minn=3, maxn=5,
                                    bucket=5000, thread=1, verbose=0)
    neighbours = model.get_nearest_neighbors("apple1", k=5)
    assert all(isinstance(s, float) for s, _ in neighbours)
    assert sum(w.startswith("apple") for _, w in neighbours) >= 4
    analogies = model.get_analogies("apple1", "apple2", "river3", k=3)
    assert len(analogies) == 3 and not {"apple1", "apple2", "river3"} & {w for _, w in analogies}
    assert model.get_word_vector("applesauce").shape == (16,)  # from its character n-grams
    assert model.get_labels() == model.get_words()
    subwords, rows = model.get_subwords("apple1")
    assert subwords[0] == "apple1" and "<ap" in subwords and len(rows) == len(subwords)
    path = tmp_path / "vectors.bin"
    model.save_model(str(path))
    np.testing.assert_allclose(facebook.load_model(str(path)).get_word_vector("applesauce"),
                               model.get_word_vector("applesauce"), atol=1e-5)
    with pytest.raises(Word2BertError, match="supervised"):
        model.predict("apple1")
