"""One file format for every static model (arrays + versioned JSON metadata), and what it refuses."""

import json
import zipfile

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.static import storage
from word2bert.static.classifier import FastTextClassifier
from word2bert.static.cooccurrence import CooccurrenceMatrix
from word2bert.static.doc2vec import Doc2Vec, TaggedDocument
from word2bert.static.fasttext import FastText
from word2bert.static.glove import GloVe
from word2bert.static.word2vec import Word2Vec

SMALL = dict(min_count=1, workers=1, progress=False)


def sentences():
    rng = np.random.default_rng(0)
    return [[f"w{i}" for i in rng.integers(0, 30, 8)] for _ in range(60)]


def metadata(path):
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(str(archive["metadata"])), sorted(archive.files)


def test_every_model_writes_the_one_format_and_reads_it_back(tmp_path):
    w2v = Word2Vec(sentences(), vector_size=8, epochs=1, **SMALL)
    w2v.save(tmp_path / "w2v.model")
    ft = FastText(sentences(), vector_size=8, epochs=1, bucket=100, **SMALL)
    ft.save_checkpoint(tmp_path / "ft.npz")
    lines = [f"__label__{'ab'[i % 2]} " + " ".join(s) for i, s in enumerate(sentences())]
    clf = FastTextClassifier(lines, dim=8, epoch=1, workers=1, progress=False)
    clf.save_checkpoint(tmp_path / "clf.npz")
    d2v = Doc2Vec([TaggedDocument(s, [i]) for i, s in enumerate(sentences())], vector_size=8, epochs=1, **SMALL)
    d2v.save(tmp_path / "d2v")  # (0.1.0 wrote an empty file when the name did not end in .npz)
    rng = np.random.default_rng(1)
    import scipy.sparse as sp

    matrix = sp.random(300, 300, density=0.05, random_state=1, format="csr") * 10
    glove = GloVe(vector_size=8, epochs=1, workers=1).fit(CooccurrenceMatrix(matrix + matrix.T,
                                                                             [f"v{i}" for i in range(300)]))
    glove.save_checkpoint(tmp_path / "glove.npz")
    del rng
    for name, model in (("w2v.model", "Word2Vec"), ("ft.npz", "FastText"), ("clf.npz", "FastTextClassifier"),
                        ("d2v", "Doc2Vec"), ("glove.npz", "GloVe")):
        meta, files = metadata(tmp_path / name)
        assert meta["format"] == "word2bert.static" and meta["version"] == storage.VERSION and meta["model"] == model
        assert "metadata" in files and meta["word2bert"]
    np.testing.assert_array_equal(Word2Vec.load(tmp_path / "w2v.model").wv.vectors, w2v.wv.vectors)
    np.testing.assert_array_equal(FastText.load_checkpoint(tmp_path / "ft.npz").input_vectors, ft.input_vectors)
    np.testing.assert_array_equal(FastTextClassifier.load_checkpoint(tmp_path / "clf.npz").output_vectors,
                                  clf.output_vectors)
    back = Doc2Vec.load(tmp_path / "d2v")
    np.testing.assert_array_equal(back.dv.vectors, d2v.dv.vectors)
    assert back.tag_keys == d2v.tag_keys
    restored = GloVe.load_checkpoint(tmp_path / "glove.npz")
    np.testing.assert_array_equal(restored.word_parameters, glove.word_parameters)
    assert restored.iterations_done == 1 and restored.wv is restored.wv  # built once, not on every access
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.npz", "d2v", "ft.npz", "glove.npz", "w2v.model"]


def test_files_of_other_models_newer_versions_and_junk_are_refused(tmp_path):
    storage.save(tmp_path / "a.npz", "Doc2Vec", {}, {}, {"x": np.zeros(2)})
    with pytest.raises(Word2BertError, match="of Doc2Vec, not of Word2Vec"):
        storage.load(tmp_path / "a.npz", "Word2Vec")
    with pytest.raises(Word2BertError, match="array 'counts' missing"):
        storage.load(tmp_path / "a.npz", "Doc2Vec", ("counts",))
    newer = tmp_path / "newer.npz"
    with zipfile.ZipFile(tmp_path / "a.npz") as source, zipfile.ZipFile(newer, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "metadata.npy":
                meta = json.loads(str(np.lib.format.read_array(__import__("io").BytesIO(data))))
                meta["version"] = storage.VERSION + 1
                buffer = __import__("io").BytesIO()
                np.lib.format.write_array(buffer, np.array(json.dumps(meta)))
                data = buffer.getvalue()
            target.writestr(item, data)
    with pytest.raises(Word2BertError, match="newer word2bert"):
        storage.load(newer, "Doc2Vec")
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(Word2BertError, match="not a word2bert Word2Vec checkpoint or model.*not an .npz archive"):
        Word2Vec.load(junk)
    with pytest.raises(Word2BertError, match="file not found"):
        Word2Vec.load(tmp_path / "missing.model")
