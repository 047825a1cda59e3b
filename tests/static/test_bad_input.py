"""Input that used to train degenerate models or fail deep inside (issue "Reliability and everyday use")
now gets a clear message, a warning with counts, or a documented result."""

import warnings

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.static.classifier import FastTextClassifier
from word2bert.static.doc2vec import Doc2Vec, TaggedDocument
from word2bert.static.fasttext import FastText
from word2bert.static.word2vec import Word2Vec

SMALL = dict(vector_size=8, min_count=1, epochs=1, workers=1, progress=False)


@pytest.mark.parametrize("model", [Word2Vec, FastText])
def test_strings_as_sentences_are_refused(model):
    """gensim trains on characters (and only warns); a list of strings is a list of texts, not of token lists."""
    with pytest.raises(Word2BertError, match="sentence 0 of the corpus is a string .*split the texts"):
        model(sentences=["the quick brown fox"] * 50, **SMALL)


def test_binary_file_is_refused_by_every_file_reader(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "ls"
    path.write_bytes(b"\x7fELF" + bytes(rng.integers(0, 256, 100_000, dtype=np.uint8)))
    for train in (lambda: Word2Vec(corpus_file=path, **SMALL), lambda: FastText(corpus_file=path, **SMALL)):
        with pytest.raises(Word2BertError, match="does not look like a text file"):
            train()


def supervised(tmp_path, lines):
    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_unlabelled_lines_are_reported(tmp_path):
    lines = [f"__label__{'ab'[i % 2]} w{i % 7} w{i % 5}" for i in range(40)] + ["no label here at all"] * 3
    with pytest.warns(UserWarning, match="3 of 43 lines have no label .*the first is line 41"):
        FastTextClassifier(str(supervised(tmp_path, lines)), dim=8, epoch=1, workers=1, progress=False)


def test_an_empty_label_is_refused_with_its_line(tmp_path):
    lines = ["__label__a x y", "__label__b y z", "__label__ x z"]
    with pytest.raises(Word2BertError, match=r"train.txt:3: an empty label"):
        FastTextClassifier(str(supervised(tmp_path, lines)), dim=8, epoch=1, workers=1, progress=False)


def test_predict_on_an_empty_text_gives_no_label(tmp_path):
    lines = [f"__label__{'ab'[i % 2]} w{i % 7} w{i % 5}" for i in range(40)]
    model = FastTextClassifier(str(supervised(tmp_path, lines)), dim=8, epoch=1, workers=1, progress=False)
    labels, probabilities = model.predict("")
    assert labels == () and len(probabilities) == 0
    labels, probabilities = model.predict(["", "w1 w2", "   "], k=2)
    assert labels[0] == () and len(labels[1]) == 2 and labels[2] == ()


def test_inferring_a_document_of_unknown_words_warns_and_gives_the_initial_vector():
    documents = [TaggedDocument([f"w{(i + j) % 9}" for j in range(6)], [i]) for i in range(30)]
    model = Doc2Vec(documents, **SMALL)
    with pytest.warns(UserWarning, match="no word in the vocabulary"):
        vector = model.infer_vector(["zzz"])
    assert vector.shape == (8,) and np.all(np.isfinite(vector)) and np.abs(vector).max() <= 0.5 / 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.infer_vector(["w1", "zzz"]).shape == (8,)


def test_a_negative_topn_is_refused_and_zero_gives_no_neighbours():
    """gensim returns ``[]`` for ``topn=-1`` (a silent slice); here it is an error, ``topn=0`` is ``[]`` and
    ``topn=None`` every score, as in gensim."""
    from word2bert.vectors import KeyedVectors

    kv = KeyedVectors(np.eye(4, dtype=np.float32) + 0.1, ["a", "b", "c", "d"])
    for method in (kv.most_similar, kv.most_similar_cosmul):
        with pytest.raises(Word2BertError, match="topn=-1 must be >= 0"):
            method("a", topn=-1)
        with pytest.raises(Word2BertError, match="topn=2.5 must be a whole number"):
            method("a", topn=2.5)
        assert method("a", topn=0) == []
        assert [w for w, _ in method("a", topn=2)] != [] and len(method("a", topn=None)) == 4
