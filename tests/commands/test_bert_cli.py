"""`word2bert pretrain bert`, `word2bert finetune`, `word2bert encode` end to end on tiny inputs."""

import json

import numpy as np
import pytest
import torch

from word2bert.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    lines = []
    for _ in range(60):  # documents separated by blank lines, one sentence per line
        for _ in range(4):
            lines.append(" ".join(rng.choice(words, size=rng.integers(4, 9))) + " .")
        lines.append("")
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


SIZES = ["--layers", "1", "--hidden", "16", "--heads", "2", "--ffn", "32", "--vocab-size", "60",
         "--max-seq-length", "32", "--batch-size", "8", "--quiet", "--threads", "1"]


def test_pretrain_resume_finetune_encode(corpus, tmp_path, capsys):
    out = tmp_path / "bert"
    assert main(["pretrain", "bert", str(corpus), "-o", str(out), "--max-steps", "4", "--save-steps", "2",
                 "--dupe-factor", "2", "--json", *SIZES]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 4 and summary["evaluation"]["mlm_perplexity"] > 1
    for name in ("config.json", "model.safetensors", "vocab.txt", "checkpoint.pt"):
        assert (out / name).exists(), name
    transformers = pytest.importorskip("transformers")
    loaded = transformers.BertForPreTraining.from_pretrained(str(out))
    assert loaded.config.num_hidden_layers == 1 and loaded.config.hidden_size == 16
    # resume with more steps continues from step 4
    assert main(["pretrain", "bert", str(corpus), "-o", str(out), "--max-steps", "6", "--resume",
                 "--dupe-factor", "2", "--json", *SIZES]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 6

    train = tmp_path / "train.tsv"
    train.write_text("".join(f"{'alpha beta' if i % 2 else 'gamma delta'} eta\t{'ab' if i % 2 else 'gd'}\n"
                             for i in range(40)), encoding="utf-8")
    assert main(["finetune", str(out), "--train", str(train), "--dev", str(train), "--task", "classification",
                 "-o", str(tmp_path / "clf"), "--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--quiet",
                 "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= metrics["accuracy"] <= 1 and metrics["examples"] == 40
    assert (tmp_path / "clf" / "task.json").exists()

    assert main(["encode", str(out), "alpha beta", "gamma", "--pooling", "mean"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 2 and rows[0].startswith("alpha beta\t")
    assert len(rows[0].split("\t")[1].split()) == 16
    assert main(["encode", str(out), "alpha", "--layer", "mix"]) == 0


def test_bad_input_gets_one_line_errors(corpus, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hidden_size": 30, "num_attention_heads": 4}), encoding="utf-8")
    assert main(["pretrain", "bert", str(corpus), "-o", str(tmp_path / "a"), "--config", str(config),
                 "--vocab-size", "60", "--quiet"]) == 2
    assert "word2bert: error:" in capsys.readouterr().err
    assert main(["pretrain", "bert", str(corpus), "-o", str(tmp_path / "b"), "--vocab",
                 str(tmp_path / "missing.txt"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "word2bert: error:" in err and "missing.txt" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["pretrain", "bert", str(empty), "-o", str(tmp_path / "c"), "--quiet"]) == 2
    assert "word2bert: error:" in capsys.readouterr().err
    assert main(["pretrain", "bert", str(corpus), "-o", str(tmp_path / "d"), "--resume", "--quiet"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["finetune", str(tmp_path / "nomodel"), "--train", str(corpus), "-o", str(tmp_path / "f")]) == 2
    assert "word2bert: error:" in capsys.readouterr().err
    assert main(["encode", str(tmp_path / "nomodel"), "text"]) == 2
