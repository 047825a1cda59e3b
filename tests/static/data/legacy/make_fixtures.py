"""Writes the files of ``tests/static/data/legacy/``: tiny static models saved by word2bert 0.1.0 as it
was at commit d10366e (before the static engine was consolidated), with the values the code of that
commit read back from them (``expected.json``). ``test_legacy_files.py`` checks that today's code
still loads every file to the same values. Kept to document how the files were made; running it
with today's code would write today's formats, not the old ones."""

import json
import sys
from pathlib import Path

import numpy as np

from word2bert.static.classifier import FastTextClassifier
from word2bert.static.cooccurrence import build_cooccurrence
from word2bert.static.doc2vec import Doc2Vec, TaggedDocument
from word2bert.static.fasttext import FastText
from word2bert.static.glove import GloVe
from word2bert.static.word2vec import Word2Vec

HERE = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)


def lines():
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "caf\u00e9"]
    return [" ".join(rng.choice(words, 8)) for _ in range(60)]


def first(vector):
    return [float(x) for x in np.asarray(vector)[:4]]


def main():
    text = lines()
    corpus = HERE / "corpus.txt"
    corpus.write_text("\n".join(text) + "\n", encoding="utf-8")
    expected = {}

    w2v = Word2Vec(corpus_file=corpus, vector_size=8, min_count=1, epochs=1, workers=1, sg=1, hs=1, negative=2)
    w2v.save(HERE / "word2vec.model")
    w2v._resume_state = {"epoch": 0, "job": 0, "words_done": 0.0, "epochs": 2, "start_alpha": 0.025,
                         "end_alpha": 0.0001, "n_jobs": 2, "n_tokens": 480, "loss": 1.5}
    w2v.save(HERE / "word2vec_checkpoint.model")
    expected["word2vec"] = {"words": w2v.wv.index_to_key, "alpha": first(w2v.wv["alpha"]),
                            "output_ns": first(w2v.output_vectors_ns[1]), "output_hs": first(w2v.output_vectors_hs[0]),
                            "train_count": w2v.train_count}

    ft = FastText(corpus_file=corpus, vector_size=8, min_count=1, epochs=1, workers=1, sg=1, bucket=50)
    ft.save(HERE / "fasttext.bin")
    ft._resume_state = {"jobs_done": 0, "n_jobs": 2, "corpus_size": 480, "loss": 0.0, "examples": 0, "tokens": 0,
                        "epochs": 2}
    ft.save_checkpoint(HERE / "fasttext_checkpoint.npz")
    expected["fasttext"] = {"words": ft.wv.index_to_key, "alpha": first(ft.wv["alpha"]), "oov": first(ft.wv["alphabet"])}

    supervised = HERE / "supervised.txt"
    supervised.write_text("".join(f"__label__{'ab'[i % 2]} {line}\n" for i, line in enumerate(text)), encoding="utf-8")
    clf = FastTextClassifier(supervised, dim=8, epoch=2, workers=1, word_ngrams=2, bucket=50)
    clf.save(HERE / "classifier.bin")
    clf.save_checkpoint(HERE / "classifier_checkpoint.npz")
    labels, probabilities = clf.predict(text[0], k=2)
    expected["classifier"] = {"labels": clf.labels, "predict": [list(labels), [float(p) for p in probabilities]]}

    documents = [TaggedDocument(line.split(), [i if i % 3 else f"doc{i}"]) for i, line in enumerate(text)]
    d2v = Doc2Vec(documents, vector_size=8, min_count=1, epochs=2, workers=1, dm=1)
    d2v.save(HERE / "doc2vec.npz")  # (0.1.0 wrote an empty file for a name without .npz)
    expected["doc2vec"] = {"tags": [str(t) for t in d2v.dv.index_to_key], "doc1": first(d2v.dv[1]),
                           "doc0": first(d2v.dv["doc0"]), "alpha": first(d2v.wv["alpha"])}

    glove = GloVe(vector_size=8, epochs=2, workers=1).fit(build_cooccurrence(corpus, min_count=1, window=3))
    glove.save_checkpoint(HERE / "glove_checkpoint.npz")
    expected["glove"] = {"words": glove.words, "alpha": first(glove.wv["alpha"]),
                         "iterations_done": glove.iterations_done, "loss_history": glove.loss_history}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
