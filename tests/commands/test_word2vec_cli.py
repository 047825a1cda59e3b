"""`word2bert train word2vec` and `word2bert vocab`: outputs, exit codes and messages."""

import numpy as np
import pytest

from word2bert.cli import main
from word2bert.static.word2vec import Word2Vec
from word2bert.vectors import KeyedVectors


def write_corpus(path, n_sentences=400, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n_sentences):
        group = rng.integers(4)
        lines.append(" ".join(f"g{group}w{i}" for i in rng.integers(6, size=10)))
    path.write_text("\n".join(lines) + "\n")
    return path


FAST = ["--vector-size", "16", "--window", "3", "--min-count", "1", "--epochs", "2", "--workers", "2",
        "--no-progress"]


def test_train_writes_vectors_and_model(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt")
    out = tmp_path / "vectors.bin"
    model_path = tmp_path / "model.w2v"
    code = main(["train", "word2vec", str(corpus), "-o", str(out), "--sg", "1", "--save-model", str(model_path),
                 *FAST])
    assert code == 0
    kv = KeyedVectors.load(out)
    assert len(kv.index_to_key) == 24 and kv.vectors.shape == (24, 16)
    model = Word2Vec.load(model_path)
    np.testing.assert_allclose(model.input_vectors, kv.vectors)
    assert "loss per epoch" in capsys.readouterr().err
    assert not (tmp_path / "vectors.bin.checkpoint.npz").exists()


def test_train_text_format_by_binary_switch(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt")
    out = tmp_path / "vectors.out"
    assert main(["train", "word2vec", str(corpus), "-o", str(out), "--binary", "0", "--hs", "1",
                 "--negative", "0", *FAST]) == 0
    header = out.read_text().splitlines()[0].split()
    assert header == ["24", "16"]


def test_missing_corpus(tmp_path, capsys):
    code = main(["train", "word2vec", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "v.bin"), *FAST])
    assert code == 2
    err = capsys.readouterr().err
    assert "error" in err and "nope.txt" in err and "Traceback" not in err


def test_empty_corpus(tmp_path, capsys):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("\n\n")
    out = tmp_path / "v.bin"
    assert main(["train", "word2vec", str(corpus), "-o", str(out), *FAST]) == 2
    assert "empty" in capsys.readouterr().err
    assert not out.exists()


def test_bad_parameter(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", 20)
    assert main(["train", "word2vec", str(corpus), "-o", str(tmp_path / "v.bin"), *FAST, "--window", "0"]) == 2
    assert "window" in capsys.readouterr().err
    assert main(["train", "word2vec", str(corpus), "-o", str(tmp_path / "v.bin"), *FAST,
                 "--negative", "0"]) == 2
    assert "no output layer" in capsys.readouterr().err


def test_missing_output_directory(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", 20)
    assert main(["train", "word2vec", str(corpus), "-o", str(tmp_path / "no" / "v.bin"), *FAST]) == 2
    assert "directory does not exist" in capsys.readouterr().err


def test_resume_from_checkpoint(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt")
    out = tmp_path / "vectors.txt"
    checkpoint = tmp_path / "vectors.txt.checkpoint.npz"

    class Interrupt:
        def on_epoch_end(self, model):
            raise KeyboardInterrupt

    from word2bert.corpus import LineSentence
    model = Word2Vec(vector_size=16, window=3, min_count=1, epochs=3, progress=False)
    model.build_vocab(LineSentence(corpus))
    with pytest.raises(KeyboardInterrupt):
        model.train(LineSentence(corpus), callbacks=[Interrupt()], checkpoint=checkpoint)
    assert main(["train", "word2vec", str(corpus), "-o", str(out), "--resume", str(checkpoint),
                 "--no-progress"]) == 0
    assert KeyedVectors.load(out).vectors.shape == (24, 16)
    assert not checkpoint.exists()
    # a finished model is not a checkpoint
    model_path = tmp_path / "done.w2v"
    model.train(LineSentence(corpus))
    model.save(model_path)
    assert main(["train", "word2vec", str(corpus), "-o", str(out), "--resume", str(model_path),
                 "--no-progress"]) == 2


def test_vocab_command(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("b a b c\nA b a\n")
    out = tmp_path / "vocab.txt"
    assert main(["vocab", str(corpus), "-o", str(out), "--min-count", "2"]) == 0
    assert out.read_text().splitlines() == ["b 3", "a 2"]
    assert main(["vocab", str(corpus), "-o", str(out), "--min-count", "2", "--lowercase"]) == 0
    assert out.read_text().splitlines() == ["b 3", "a 3"]
    assert main(["vocab", str(tmp_path / "missing.txt"), "-o", str(out)]) == 2
    assert "missing.txt" in capsys.readouterr().err
