"""Doc2Vec: planted documents recovered, infer_vector finds its own document, tags, files, bad input."""

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.static.doc2vec import Doc2Vec, TaggedDocument

N_TOPICS = 4
N_DOCS = 120


def planted_documents(seed=0, topic_tags=True):
    """Every document mixes words of its topic with 4 words of its own (each used 3 times); its tags
    are ``doc<i>`` and (``topic_tags``) the int topic."""
    rng = np.random.default_rng(seed)
    documents = []
    for i in range(N_DOCS):
        topic = i % N_TOPICS
        words = [f"t{topic}w{k}" for k in rng.integers(15, size=18)] + [f"d{i}u{k}" for k in range(4)] * 3
        rng.shuffle(words)
        documents.append(TaggedDocument(words, [f"doc{i}", i % N_TOPICS] if topic_tags else [f"doc{i}"]))
    return documents


SETTINGS = dict(vector_size=24, min_count=1, epochs=40, sample=0, workers=1, seed=1, progress=False)


@pytest.fixture(scope="module", params=[dict(dm=0), dict(dm=1), dict(dm=0, dbow_words=1), dict(dm=0, hs=1)],
                ids=["dbow", "dm", "dbow_words", "dbow_hs"])
def model(request):
    # PV-DM averages all tags of a document into one hidden vector, so a new document's single
    # inferred row cannot stand for "doc + topic"; PV-DM is trained with one tag per document.
    model = Doc2Vec(planted_documents(topic_tags=not request.param["dm"]), **request.param, **SETTINGS)
    model.topic_tags = not request.param["dm"]
    return model


def test_infer_vector_lands_on_its_own_document(model):
    documents = planted_documents(topic_tags=model.topic_tags)
    inferred = model.infer_vectors([d.words for d in documents[:40]])
    doc_keys = [f"doc{i}" for i in range(N_DOCS)]
    doc_rows = np.array([model.dv.get_index(k) for k in doc_keys])
    unit = model.dv.get_normed_vectors()[doc_rows]
    scores = (inferred / np.linalg.norm(inferred, axis=1, keepdims=True)) @ unit.T
    hits = np.mean(np.argmax(scores, axis=1) == np.arange(40))
    assert hits >= (0.75 if model.dm else 0.9)  # chance: 1/120; gensim gets 0.78 (PV-DM) and 1.0 here
    single = model.infer_vector(documents[6].words)
    ranked = [key for key, _ in model.dv.most_similar([single], topn=N_DOCS + N_TOPICS) if isinstance(key, str)]
    assert "doc6" in ranked[: 3 if model.dm else 1]


def test_tags_of_several_kinds(model):
    if not model.topic_tags:
        pytest.skip("PV-DM model trained with one tag per document")
    dv = model.dv
    assert dv.index_to_key[:N_TOPICS] == list(range(N_TOPICS))  # int tags are their own rows, as gensim
    assert dv.index_to_key[N_TOPICS] == "doc0" and len(dv) == N_TOPICS + N_DOCS
    # documents of topic 1 are nearer to the topic-1 tag vector than to the other topic tags
    topic_vectors = dv.get_normed_vectors()[:N_TOPICS]
    docs = dv.get_normed_vectors()[[dv.get_index(f"doc{i}") for i in range(1, N_DOCS, N_TOPICS)]]
    assert np.mean(np.argmax(docs @ topic_vectors.T, axis=1) == 1) >= 0.9
    similar = [key for key, _ in dv.most_similar("doc1", topn=10) if isinstance(key, str)]
    assert np.mean([int(k[3:]) % N_TOPICS == 1 for k in similar]) >= 0.6


def test_save_and_load(tmp_path, model):
    path = tmp_path / "d2v.npz"
    model.save(path)
    loaded = Doc2Vec.load(path)
    assert loaded.dv.index_to_key == model.dv.index_to_key and loaded.dm == model.dm
    np.testing.assert_array_equal(loaded.dv.vectors, model.dv.vectors)
    np.testing.assert_array_equal(loaded.wv.vectors, model.wv.vectors)
    words = planted_documents()[3].words
    np.testing.assert_allclose(loaded.infer_vector(words), model.infer_vector(words), atol=1e-6)


def test_inference_leaves_the_model_unchanged(model):
    before_in, before_out = model.input_vectors.copy(), model.output_vectors.copy()
    model.infer_vectors([d.words for d in planted_documents(seed=5)[:10]])
    np.testing.assert_array_equal(model.input_vectors, before_in)
    np.testing.assert_array_equal(model.output_vectors, before_out)


def test_corpus_file_tags_are_line_numbers(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(" ".join(d.words) for d in planted_documents()[:20]) + "\n")
    model = Doc2Vec(corpus_file=path, **dict(SETTINGS, epochs=2, workers=2))
    assert model.dv.index_to_key == list(range(20))


def test_bad_input_gets_clear_errors(tmp_path):
    model = Doc2Vec(planted_documents()[:10], **dict(SETTINGS, epochs=1))
    with pytest.raises(Word2BertError, match="empty document"):
        model.infer_vector([])
    with pytest.raises(Word2BertError, match="not a string"):
        model.infer_vector("a whole string")
    with pytest.raises(Word2BertError, match="no tags"):
        Doc2Vec([TaggedDocument(["a", "b"], [])], **SETTINGS)
    with pytest.raises(Word2BertError, match="TaggedDocument"):
        Doc2Vec([["a", "b"]], **SETTINGS)
    with pytest.raises(Word2BertError, match="no documents"):
        Doc2Vec([], **SETTINGS)
    with pytest.raises(Word2BertError, match="dm_concat"):
        Doc2Vec(dm_concat=1)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(Word2BertError, match="not a word2bert Doc2Vec"):
        Doc2Vec.load(bad)


def test_command_line(tmp_path, capsys):
    from word2bert.cli import main
    from word2bert.vectors import KeyedVectors

    corpus = tmp_path / "docs.txt"
    corpus.write_text("\n".join(" ".join(d.words) for d in planted_documents()[:30]) + "\n")
    out = tmp_path / "d2v.npz"
    assert main(["train", "doc2vec", str(corpus), "-o", str(out), "--dm", "0", "--vector-size", "8", "--epochs", "2",
                 "--min-count", "1", "--doc-vectors", str(tmp_path / "docs.vec"), "--workers", "1",
                 "--no-progress"]) == 0
    model = Doc2Vec.load(out)
    kv = KeyedVectors.load_word2vec_format(tmp_path / "docs.vec")
    assert kv.index_to_key == [str(i) for i in range(30)]
    np.testing.assert_allclose(kv.vectors, model.dv.vectors, atol=1e-5)
    assert main(["train", "doc2vec", str(corpus), "-o", str(tmp_path / "no" / "d.npz")]) == 2
    assert "directory does not exist" in capsys.readouterr().err
