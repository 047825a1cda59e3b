"""`word2bert train kneser-ney`, `train nnlm` (with resume) and `perplexity` end to end on tiny files."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from word2bert.cli import main
from word2bert.models.kneser_ney import KneserNeyLM
from word2bert.models.nnlm import NNLM, NNLMConfig, train_nnlm

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lm")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(20)]
    for name, lines in (("train", 300), ("test", 40)):
        rows = [" ".join(rng.choice(words, rng.integers(2, 8))) for _ in range(lines)]
        (directory / f"{name}.txt").write_text("\n".join(rows) + "\n")
    return directory / "train.txt", directory / "test.txt"


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_kneser_ney_train_and_perplexity(texts, tmp_path, capsys):
    train, test = texts
    out = tmp_path / "kn.npz"
    assert main(["train", "kneser-ney", str(train), "-o", str(out), "--order", "3", "--test", str(test)]) == 0
    summary = last_json(capsys)
    expected = KneserNeyLM.train(train, order=3).perplexity(test)
    assert summary["test_perplexity"] == pytest.approx(expected, abs=1e-3)
    assert main(["perplexity", str(out), str(test)]) == 0
    assert last_json(capsys)["perplexity"] == pytest.approx(expected, abs=1e-3)


def test_nnlm_train_and_perplexity(texts, tmp_path, capsys):
    train, test = texts
    out = tmp_path / "nnlm"
    assert main(["train", "nnlm", str(train), "-o", str(out), "--order", "3", "--embedding-size", "8",
                 "--hidden-size", "8", "--max-steps", "6", "--batch-size", "32", "--test", str(test),
                 "--quiet", "--threads", "1"]) == 0
    summary = last_json(capsys)
    assert summary["steps"] == 6 and summary["test_perplexity"] > 1
    for name in ("config.json", "model.safetensors", "word_vocab.txt", "checkpoint.pt"):
        assert (out / name).exists(), name
    assert main(["perplexity", str(out), str(test)]) == 0
    assert last_json(capsys)["perplexity"] == pytest.approx(summary["test_perplexity"], abs=1e-3)


def test_interrupted_nnlm_run_resumes_to_the_same_model(texts, tmp_path):
    train, _ = texts
    config = dict(order=3, embedding_size=8, hidden_size=8)
    whole = train_nnlm(train, NNLMConfig(**config), epochs=2, batch_size=64, progress=False, learning_rate=1e-2)

    def interrupt(trainer, state):
        if state.global_step == 5:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_nnlm(train, NNLMConfig(**config), epochs=2, batch_size=64, progress=False, learning_rate=1e-2,
                   output_dir=out, callbacks=[interrupt])
    resumed = train_nnlm(train, NNLMConfig(**config), epochs=2, batch_size=64, progress=False, learning_rate=1e-2,
                         output_dir=out, resume=True)
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(NNLM.from_pretrained(out).output.weight, whole.model.output.weight)


def test_bad_input_gets_one_line_and_exit_2(texts, tmp_path, capsys):
    train, test = texts
    assert main(["train", "kneser-ney", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "kn.npz")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["train", "kneser-ney", str(train), "-o", str(tmp_path / "kn.npz"), "--order", "7"]) == 2
    assert "--order 7" in capsys.readouterr().err  # the CLI shows parameters as its flags
    assert main(["train", "nnlm", str(train), "-o", str(tmp_path / "n"), "--resume", "--quiet"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["perplexity", str(tmp_path), str(test)]) == 2
    assert "neither a Kneser-Ney .npz file nor a model directory" in capsys.readouterr().err


def test_resume_refuses_conflicting_flags_and_continues_with_the_saved_ones(texts, tmp_path, capsys):
    train, _ = texts
    out = tmp_path / "nnlm"
    first = ["train", "nnlm", str(train), "-o", str(out), "--order", "3", "--embedding-size", "8",
             "--hidden-size", "8", "--max-steps", "3", "--batch-size", "32", "--quiet", "--threads", "1"]
    assert main(first) == 0
    assert json.loads((out / "training_args.json").read_text())["hidden_size"] == 8
    capsys.readouterr()
    assert main(["train", "nnlm", str(train), "-o", str(out), "--resume", "--hidden-size", "16", "--order", "3",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--hidden-size 16 (the checkpoint's: 8)" in err and "--order" not in err  # same value: accepted
    # no size flags: the run continues with its own (a default --hidden-size 200 would not fit the checkpoint)
    assert main(["train", "nnlm", str(train), "-o", str(out), "--resume", "--max-steps", "5", "--quiet",
                 "--threads", "1"]) == 0
    assert last_json(capsys)["steps"] == 5
    assert NNLM.from_pretrained(out).config.hidden_size == 8


def test_a_run_that_fails_on_its_input_leaves_no_directory(texts, tmp_path, capsys):
    train, _ = texts
    out = tmp_path / "new" / "nnlm"
    assert main(["train", "nnlm", str(train), "-o", str(out), "--order", "1", "--quiet"]) == 2
    assert "order" in capsys.readouterr().err
    assert not out.exists()


def test_the_trained_model_is_rescued_when_the_output_cannot_be_written(texts, tmp_path, capsys, monkeypatch):
    train, _ = texts
    out = tmp_path / "nnlm"
    original = NNLM.save_pretrained

    def failing(self, directory, vocab=None):
        if Path(directory) == out:
            raise OSError(28, "No space left on device")
        return original(self, directory, vocab)

    monkeypatch.setattr(NNLM, "save_pretrained", failing)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "nnlm", str(train), "-o", str(out), "--order", "3", "--embedding-size", "8",
                 "--hidden-size", "8", "--max-steps", "2", "--quiet", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "word2bert-rescued-" in err
    rescued = [p for p in tmp_path.iterdir() if p.name.startswith("word2bert-rescued-")]
    assert len(rescued) == 1 and NNLM.from_pretrained(rescued[0]).config.hidden_size == 8
    assert (rescued[0] / "word_vocab.txt").is_file()
