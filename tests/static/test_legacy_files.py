"""Models saved by word2bert 0.1.0 (before the static engine was consolidated) still load, to the
values that release read from them. The files and ``expected.json`` were written by
``data/legacy/make_fixtures.py`` at commit d10366e."""

import json
from pathlib import Path

import numpy as np
import pytest

from word2bert.static.classifier import FastTextClassifier
from word2bert.static.doc2vec import Doc2Vec
from word2bert.static.fasttext import FastText
from word2bert.static.glove import GloVe
from word2bert.static.word2vec import Word2Vec

LEGACY = Path(__file__).parent / "data" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text(encoding="utf-8"))


def close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual)[:4], expected, rtol=1e-6, atol=1e-7)


def test_word2vec_model_and_checkpoint():
    expected = EXPECTED["word2vec"]
    model = Word2Vec.load(LEGACY / "word2vec.model")
    assert model.wv.index_to_key == expected["words"]
    close(model.wv["alpha"], expected["alpha"])
    close(model.output_vectors_ns[1], expected["output_ns"])
    close(model.output_vectors_hs[0], expected["output_hs"])
    assert model.train_count == expected["train_count"] and model.vector_size == 8 and model.sg == 1
    checkpoint = Word2Vec.load(LEGACY / "word2vec_checkpoint.model")
    assert checkpoint._resume_state is not None
    close(checkpoint.wv["alpha"], expected["alpha"])


@pytest.mark.parametrize("name", ["fasttext.bin", "fasttext_checkpoint.npz"])
def test_fasttext(name):
    expected = EXPECTED["fasttext"]
    model = FastText.load(LEGACY / name) if name.endswith(".bin") else FastText.load_checkpoint(LEGACY / name)
    assert model.wv.index_to_key == expected["words"]
    close(model.wv["alpha"], expected["alpha"])
    close(model.wv["alphabet"], expected["oov"])


@pytest.mark.parametrize("name", ["classifier.bin", "classifier_checkpoint.npz"])
def test_classifier(name):
    expected = EXPECTED["classifier"]
    load = FastTextClassifier.load if name.endswith(".bin") else FastTextClassifier.load_checkpoint
    model = load(LEGACY / name)
    assert model.labels == expected["labels"]
    first_line = (LEGACY / "corpus.txt").read_text(encoding="utf-8").splitlines()[0]
    labels, probabilities = model.predict(first_line, k=2)
    assert list(labels) == expected["predict"][0]
    np.testing.assert_allclose(probabilities, expected["predict"][1], rtol=1e-5)


def test_doc2vec():
    expected = EXPECTED["doc2vec"]
    model = Doc2Vec.load(LEGACY / "doc2vec.npz")
    assert [str(t) for t in model.dv.index_to_key] == expected["tags"]
    close(model.dv[1], expected["doc1"])
    close(model.dv["doc0"], expected["doc0"])
    close(model.wv["alpha"], expected["alpha"])


def test_glove_checkpoint():
    expected = EXPECTED["glove"]
    model = GloVe.load_checkpoint(LEGACY / "glove_checkpoint.npz")
    assert model.words == expected["words"] and model.iterations_done == expected["iterations_done"]
    close(model.wv["alpha"], expected["alpha"])
    np.testing.assert_allclose(model.loss_history, expected["loss_history"])
