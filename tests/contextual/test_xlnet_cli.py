"""``word2bert pretrain xlnet`` end to end: a planted language learned, files transformers reads, resume."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from word2bert.cli import main

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a small red hen finds some golden wheat grains",
    "seven old sailors sing loud songs every night",
    "my clever cat sleeps under the warm blue blanket",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Documents made of four fixed sentences in random order: every word is predictable from its
    neighbours, on both sides."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("xlnet") / "corpus.txt"
    lines = [" ".join(SENTENCES[i] for i in rng.integers(0, 4, 6)) for _ in range(120)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(corpus, output, *extra):
    return main(["pretrain", "xlnet", str(corpus), "-o", str(output), "--layers", "2", "--hidden", "32",
                 "--heads", "2", "--ffn", "64", "--vocab-size", "60", "--seq-len", "24", "--mem-len", "12",
                 "--batch-size", "8", "--threads", "1", "--quiet", "--seed", "3", *extra])


def test_pretrain_learns_and_writes_files_transformers_reads(corpus, tmp_path, capsys):
    """A short run (the model-level test in test_xlnet.py trains to the end): held-out perplexity well
    under the uniform one, a directory transformers' XLNetLMHeadModel loads with the same outputs."""
    assert run(corpus, tmp_path, "--max-steps", "40", "--lr", "5e-3", "--warmup", "4", "--prediction-k", "4",
               "--eval-fraction", "0.1", "--save-steps", "0", "--dropout", "0") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 40
    vocab = json.loads((tmp_path / "config.json").read_text())["vocab_size"]
    assert summary["evaluation"]["plm_perplexity"] < 0.6 * vocab
    transformers = pytest.importorskip("transformers")
    theirs = transformers.XLNetLMHeadModel.from_pretrained(tmp_path).eval()
    from word2bert.models.xlnet import XLNetLMHeadModel
    ours = XLNetLMHeadModel.from_pretrained(tmp_path).eval()
    ids = torch.randint(5, vocab, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, atol=1e-5, rtol=1e-5)


def test_resume_continues_the_run(corpus, tmp_path, capsys):
    assert run(corpus, tmp_path, "--max-steps", "4", "--save-steps", "2", "--eval-fraction", "0") == 0
    assert run(corpus, tmp_path, "--max-steps", "6", "--resume", "--eval-fraction", "0") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 6 and math.isfinite(summary["final_loss"])


def test_bidirectional_data_runs(corpus, tmp_path, capsys):
    assert run(corpus, tmp_path, "--max-steps", "2", "--bi-data", "--eval-fraction", "0.1") == 0
    assert json.loads((tmp_path / "config.json").read_text())["bi_data"] is True


@pytest.mark.parametrize("flags, message", [
    (["--mem-len", "-1"], "mem-len"),
    (["--prediction-k", "0.5"], "K"),
    (["--seq-len", "0"], "seq-len"),
    (["--bi-data", "--batch-size", "3"], "even"),
])
def test_bad_flags_exit_2_with_one_line(corpus, tmp_path, capsys, flags, message):
    assert run(corpus, tmp_path, "--max-steps", "1", *flags) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0]


def test_finetune_from_the_last_token_and_encode(corpus, tmp_path, capsys):
    """`word2bert finetune` on a pre-trained XLNet directory: a label carried by the first words of a
    text is read from the last token's vector (XLNet's summary), which sees them through attention."""
    model_dir = tmp_path / "xlnet"
    assert run(corpus, model_dir, "--max-steps", "3", "--eval-fraction", "0") == 0
    rng = np.random.default_rng(4)
    lines = []
    for _ in range(200):
        label = int(rng.integers(2))
        start = "quick brown fox" if label else "golden wheat grains"
        lines.append(f"{start} {' '.join(rng.choice(['the', 'a', 'my', 'old', 'sing'], 5))}\t{label}")
    (tmp_path / "train.tsv").write_text("\n".join(lines[:160]) + "\n")
    (tmp_path / "dev.tsv").write_text("\n".join(lines[160:]) + "\n")
    capsys.readouterr()
    assert main(["finetune", str(model_dir), "--train", str(tmp_path / "train.tsv"), "--dev", str(tmp_path / "dev.tsv"),
                 "--pooling", "last", "--epochs", "4", "--lr", "3e-3", "--batch-size", "16", "--threads", "1",
                 "--quiet", "--json", "-o", str(tmp_path / "clf")]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["accuracy"] >= 0.9
    from word2bert.tasks.heads import load_finetuned
    assert load_finetuned(tmp_path / "clf").bert.config.model_type == "xlnet"
    assert main(["encode", str(model_dir), "the quick brown fox", "my clever cat", "--pooling", "last"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 2 and len(rows[0].split("\t")[1].split()) == 32


def interrupted_run(corpus, output):
    """A run of 4 steps with a checkpoint at step 2 and 4 (what --resume continues)."""
    assert run(corpus, output, "--max-steps", "4", "--save-steps", "2", "--eval-fraction", "0") == 0


def test_resume_alone_rebuilds_the_run_and_refuses_contradicting_flags(corpus, tmp_path, capsys):
    """--resume with no architecture flags takes them from the run (training_args.json); a flag that
    contradicts the run (or --overwrite beside --resume) is refused in one line, exit 2."""
    interrupted_run(corpus, tmp_path)
    capsys.readouterr()
    base = ["pretrain", "xlnet", str(corpus), "-o", str(tmp_path), "--resume", "--quiet", "--threads", "1"]
    assert main([*base, "--hidden", "48"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--hidden 48 (the checkpoint's: 32)" in error[0]
    assert main([*base, "--mem-len", "12", "--seq-len", "30"]) == 2  # the same memory, another window length
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--seq-len 30" in error[0] and "mem-len" not in error[0]
    assert main([*base, "--overwrite"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*base, "--max-steps", "6", "--hidden", "32"]) == 0  # the run's own value is accepted
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 6
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["d_model"], config["n_layer"], config["mem_len"]) == (32, 2, 12)


def test_a_model_that_cannot_be_written_goes_to_a_fallback(corpus, tmp_path, capsys, monkeypatch):
    """The output directory becomes unwritable at the end of training: the model is saved in the
    current directory instead and the one-line error says where."""
    from word2bert.models.xlnet import XLNetLMHeadModel

    output = tmp_path / "out"
    original = XLNetLMHeadModel.save_pretrained

    def failing(self, directory, *args, **kwargs):
        if Path(directory) == output:
            raise OSError(28, "No space left on device")
        return original(self, directory, *args, **kwargs)

    monkeypatch.setattr(XLNetLMHeadModel, "save_pretrained", failing)
    monkeypatch.chdir(tmp_path)
    assert run(corpus, output, "--max-steps", "1", "--eval-fraction", "0", "--save-steps", "0") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "No space left on device" in error[0]
    rescued = Path(error[0].split("saved to ")[1].split(" instead")[0])
    assert rescued.parent == tmp_path and (rescued / "config.json").is_file() and (rescued / "tokenizer.json").is_file()
    assert XLNetLMHeadModel.from_pretrained(rescued).config.d_model == 32
