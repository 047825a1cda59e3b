"""Ctrl-C during FastText / classifier / Doc2Vec training saves a checkpoint; resuming from it
on the same corpus ends with exactly the model of an uninterrupted run (one worker: the jobs
then run in order, each with its own random seed)."""

import signal

import numpy as np
import pytest

from word2bert.cli import main
from word2bert.errors import Word2BertError
from word2bert.static import kernels as bag_kernels
from word2bert.static.classifier import FastTextClassifier
from word2bert.static.doc2vec import Doc2Vec

from test_classifier import planted_lines
from test_doc2vec import planted_documents
from test_fasttext import SMALL, planted_corpus

FASTTEXT = dict(SMALL, workers=1, epochs=4)


def interrupt_after(monkeypatch, kernel: str, jobs: int):
    """Make the ``jobs``-th call of ``bag_kernels.<kernel>`` press Ctrl-C once its job is done, as a user
    would in the middle of a run.

    The press is the SIGINT handler installed at that moment (the training's, which only asks the run
    to stop) called right there, in the job's thread, before the job returns: the run then stops after
    the jobs already started, whatever the load. (A real signal is handled by the main thread whenever
    it next runs Python code, which under load can come before or after other jobs start; the signal
    path itself is tested in test_jobs.py.)"""
    # a shell starts background jobs with SIGINT ignored: install Python's handler for the test
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    real = getattr(bag_kernels, kernel)
    calls = []

    def kernel_then_ctrl_c(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == jobs:
            handler = signal.getsignal(signal.SIGINT)
            assert callable(handler) and handler is not signal.default_int_handler, "Ctrl-C outside run_jobs"
            handler(signal.SIGINT, None)
        return result

    monkeypatch.setattr(bag_kernels, kernel, kernel_then_ctrl_c)

    def restore():
        monkeypatch.setattr(bag_kernels, kernel, real)
        signal.signal(signal.SIGINT, previous)

    return restore


def interrupt_and_resume(monkeypatch, checkpoint, kernel: str, jobs: int, start, load, finish, whole):
    """``start(checkpoint)`` gets Ctrl-C after ``jobs`` jobs; the model ``load(checkpoint)`` must have
    stopped half-way, and after ``finish(resumed)`` equal the uninterrupted ``whole`` exactly."""
    restore = interrupt_after(monkeypatch, kernel, jobs)
    with pytest.raises(KeyboardInterrupt):
        start(checkpoint)
    restore()
    resumed = load(checkpoint)
    assert jobs <= resumed._resume_state["jobs_done"] < resumed._resume_state["n_jobs"]
    assert not np.array_equal(resumed.input_vectors, whole.input_vectors)
    finish(resumed)
    np.testing.assert_array_equal(resumed.input_vectors, whole.input_vectors)
    np.testing.assert_array_equal(resumed.output_vectors, whole.output_vectors)
    assert resumed._resume_state is None
    return resumed


def test_fasttext_resumes_to_the_uninterrupted_model(tmp_path, monkeypatch):
    from word2bert.static.fasttext import FastText

    corpus = planted_corpus(200)
    whole = FastText(corpus, sg=1, **FASTTEXT)
    model = FastText(sg=1, **FASTTEXT).build_vocab(corpus)
    checkpoint = tmp_path / "ft.checkpoint.npz"
    interrupt_and_resume(monkeypatch, checkpoint, "subword_chunk", 2,
                         lambda path: model.train(corpus, checkpoint=path), FastText.load_checkpoint,
                         lambda resumed: resumed.train(corpus), whole)

    with pytest.raises(Word2BertError, match="another corpus"):
        FastText.load_checkpoint(checkpoint).train(corpus[:150])
    with pytest.raises(Word2BertError, match="not a word2bert FastText checkpoint"):
        (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
        FastText.load_checkpoint(tmp_path / "junk.npz")
    with pytest.raises(Word2BertError, match="not of FastTextClassifier"):
        FastTextClassifier.load_checkpoint(checkpoint)


def test_classifier_resumes_to_the_uninterrupted_model(tmp_path, monkeypatch):
    lines, _ = planted_lines(600, np.random.default_rng(2))
    path_train = tmp_path / "train.txt"
    path_train.write_text("\n".join(lines) + "\n")
    settings = dict(dim=16, epoch=5, lr=0.5, word_ngrams=2, bucket=10_000, workers=1, progress=False)
    whole = FastTextClassifier(str(path_train), **settings)
    model = FastTextClassifier(**settings)
    checkpoint = tmp_path / "cl.checkpoint.npz"
    interrupt_and_resume(monkeypatch, checkpoint, "supervised_chunk", 1,
                         lambda path: model.train(str(path_train), checkpoint=path),
                         FastTextClassifier.load_checkpoint, lambda resumed: resumed.train(str(path_train)), whole)

    other = tmp_path / "other.txt"
    other.write_text("\n".join(planted_lines(600, np.random.default_rng(3), n_labels=3)[0]) + "\n")
    with pytest.raises(Word2BertError, match="not the training data of the checkpoint"):
        FastTextClassifier.load_checkpoint(checkpoint).train(str(other))


def test_doc2vec_resumes_to_the_uninterrupted_model(tmp_path, monkeypatch):
    documents = planted_documents()
    settings = dict(vector_size=24, min_count=1, epochs=5, sample=0, workers=1, seed=1, progress=False, dm=0)
    whole = Doc2Vec(documents, **settings)
    model = Doc2Vec(**settings)
    model.build_vocab(documents)
    resumed = interrupt_and_resume(monkeypatch, tmp_path / "d2v.checkpoint.npz", "document_chunk", 2,
                                   lambda path: model.train(documents, checkpoint=path), Doc2Vec.load,
                                   lambda resumed: resumed.train(documents), whole)
    # inference never touches the checkpoint state
    assert resumed.infer_vector(documents[0].words).shape == (24,)


def test_cli_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(s) for s in planted_corpus(200)) + "\n")
    out = tmp_path / "model.bin"
    common = ["--vector-size", "20", "--min-count", "1", "--min-n", "3", "--max-n", "5", "--bucket", "5000",
              "--epochs", "4", "--workers", "1", "--no-progress"]
    restore = interrupt_after(monkeypatch, "subword_chunk", 2)
    assert main(["train", "fasttext", str(corpus), "-o", str(out)] + common) == 130
    restore()
    checkpoint = tmp_path / "model.bin.checkpoint.npz"
    err = capsys.readouterr().err
    assert "checkpoint saved" in err and checkpoint.exists() and not out.exists()
    assert main(["train", "fasttext", str(corpus), "-o", str(out), "--resume", str(checkpoint)] + common) == 0
    assert out.exists() and not checkpoint.exists()
    assert main(["train", "fasttext", str(corpus), "-o", str(out), "--resume", str(checkpoint)] + common) == 2
    assert "file not found" in capsys.readouterr().err
