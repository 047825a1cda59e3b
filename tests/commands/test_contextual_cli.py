"""`pretrain bert`, `finetune`, `encode` as a new user meets them: output folders checked first and
never overwritten silently, -o required, --resume bound to the run's settings, a one-line human
summary (JSON behind --json), and a one-line install hint when PyTorch is missing."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from word2bert.cli import main  # noqa: E402

torch.set_num_threads(1)

SIZES = ["--layers", "1", "--hidden", "16", "--heads", "2", "--ffn", "32", "--vocab-size", "60",
         "--max-seq-length", "32", "--batch-size", "8", "--dupe-factor", "1", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    lines = []
    for _ in range(30):
        lines += [" ".join(rng.choice(words, size=rng.integers(4, 9))) + " ." for _ in range(4)] + [""]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_dir(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained") / "bert"
    assert main(["pretrain", "bert", str(corpus), "-o", str(out), "--max-steps", "2", *SIZES]) == 0
    return out


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("word2bert: error: "), err
    return err[0]


def snapshot(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_pretrain_refuses_a_used_directory_and_replaces_it_only_when_asked(corpus, model_dir, capsys):
    before = snapshot(model_dir)
    assert main(["pretrain", "bert", str(corpus), "-o", str(model_dir), "--max-steps", "1", *SIZES]) == 2
    message = one_error_line(capsys)
    assert "already holds a model" in message and "--overwrite" in message and "--resume" in message
    assert snapshot(model_dir) == before
    a_file = model_dir / "config.json"
    assert main(["pretrain", "bert", str(corpus), "-o", str(a_file), *SIZES]) == 2
    assert "is a file" in one_error_line(capsys)
    assert main(["pretrain", "bert", str(corpus), "-o", str(model_dir), "--resume", "--overwrite", *SIZES]) == 2
    assert "give one of them" in one_error_line(capsys)


def test_failed_checks_leave_no_directory(corpus, tmp_path, capsys):
    bad_config = tmp_path / "config.json"
    bad_config.write_text('{"hidden_size": 30', encoding="utf-8")
    cases = [(["--config", str(bad_config)], "not valid JSON"),
             (["--hidden", "30", "--heads", "4"], "not a multiple of --heads"),
             (["--vocab", str(tmp_path / "missing.txt")], "missing.txt"),
             (["--masked-lm-prob", "1.5"], "--masked-lm-prob 1.5")]
    for extra, expected in cases:
        out = tmp_path / "new" / "bert"
        assert main(["pretrain", "bert", str(corpus), "-o", str(out), "--quiet", *extra]) == 2
        assert expected in one_error_line(capsys)
        assert not (tmp_path / "new").exists()
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["pretrain", "bert", str(empty), "-o", str(tmp_path / "e"), *SIZES]) == 2
    assert "empty" in one_error_line(capsys) and not (tmp_path / "e").exists()


def test_overwrite_and_resume(corpus, tmp_path, capsys):
    out = tmp_path / "bert"
    assert main(["pretrain", "bert", str(corpus), "-o", str(out), "--max-steps", "2", *SIZES]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("pretrain bert: 2 steps") and summary.endswith(f"-> {out}")
    # --resume keeps the run's settings: contradicting flags are refused, the rest come from the run
    assert main(["pretrain", "bert", str(corpus), "-o", str(out), "--resume", "--max-steps", "3", "--layers", "2",
                 "--lr", "0.1", "--quiet"]) == 2
    message = one_error_line(capsys)
    assert "--layers 2 (the checkpoint's: 1)" in message and "--lr 0.1 (the checkpoint's: 0.0001)" in message
    assert main(["pretrain", "bert", str(corpus), "-o", str(out), "--resume", "--max-steps", "3", "--quiet",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 3
    smaller = [("8" if previous == "--hidden" else a) for previous, a in zip([None] + SIZES, SIZES)]
    assert main(["pretrain", "bert", str(corpus), "-o", str(out), "--overwrite", "--max-steps", "1", *smaller,
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 1
    assert json.loads((out / "config.json").read_text())["hidden_size"] == 8


def classification_file(path, n=24, empty_label_at=None):
    lines = [f"{'alpha beta' if i % 2 else 'gamma delta'} eta\t{'ab' if i % 2 else 'gd'}" for i in range(n)]
    if empty_label_at is not None:
        lines[empty_label_at - 1] = "theta iota\t"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_finetune_needs_an_output_and_keeps_what_is_there(model_dir, tmp_path, capsys):
    train = classification_file(tmp_path / "train.tsv")
    with pytest.raises(SystemExit):
        main(["finetune", str(model_dir), "--train", str(train)])
    assert "required: -o" in capsys.readouterr().err
    out = tmp_path / "clf"
    args = ["finetune", str(model_dir), "--train", str(train), "--dev", str(train), "-o", str(out), "--epochs", "1",
            "--batch-size", "8", "--quiet", "--threads", "1"]
    assert main(args) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("finetune: classification, 2 labels, 3 steps")
    assert "dev accuracy" in summary[0] and summary[0].endswith(f"-> {out}")
    assert {"task.json", "head.safetensors", "config.json", "vocab.txt"} <= {p.name for p in out.iterdir()}
    before = snapshot(out)
    assert main(args) == 2
    assert "already holds a model" in one_error_line(capsys) and snapshot(out) == before
    assert main(args + ["--overwrite", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 24


def test_finetune_refuses_empty_labels_before_training(model_dir, tmp_path, capsys):
    train = classification_file(tmp_path / "train.tsv", empty_label_at=7)
    out = tmp_path / "clf"
    assert main(["finetune", str(model_dir), "--train", str(train), "-o", str(out), "--quiet"]) == 2
    assert "train.tsv:7: empty label" in one_error_line(capsys) and not out.exists()


def test_encode_checks_the_layer(model_dir, capsys):
    assert main(["encode", str(model_dir), "alpha beta", "--layer", "5"]) == 2
    assert "layers 0 (embeddings) to 1" in one_error_line(capsys)
    assert main(["encode", str(model_dir), "alpha beta", "--layer", "-2", "--pooling", "mean"]) == 0
    assert len(capsys.readouterr().out.split("\t")[1].split()) == 16


BLOCK_TORCH = textwrap.dedent("""
    import contextlib, io, json, sys

    class NoContextualPackages:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "tokenizers", "safetensors"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoContextualPackages())
    from word2bert.cli import main

    results = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit_:
                code = exit_.code
        results.append([code, err.getvalue()])
    print(json.dumps(results))
""")


def test_without_torch_the_contextual_commands_say_what_to_install(corpus, tmp_path):
    """Quick start's first command installs no PyTorch: these commands then end in one line, exit 2,
    having created nothing; the static commands still work."""
    script = tmp_path / "no_torch.py"
    script.write_text(BLOCK_TORCH)
    runs = [["pretrain", "bert", str(corpus), "-o", str(tmp_path / "bert")],
            ["finetune", str(tmp_path), "--train", str(corpus), "-o", str(tmp_path / "clf")],
            ["encode", str(tmp_path), "a sentence"],
            ["vocab", str(corpus), "-o", str(tmp_path / "vocab.txt"), "--min-count", "1"]]
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run([sys.executable, str(script), json.dumps(runs)], capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for (code, err), argv in zip(results[:3], runs):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (argv, err)
        assert "needs PyTorch" in lines[0] and "pip install 'word2bert[contextual]'" in lines[0]
    assert not (tmp_path / "bert").exists() and not (tmp_path / "clf").exists()
    assert results[3][0] == 0 and (tmp_path / "vocab.txt").exists()
