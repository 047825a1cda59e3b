import subprocess
import sys

import word2bert


def test_every_lazy_export_resolves():
    for name in word2bert.__all__:
        assert getattr(word2bert, name) is not None


def test_import_is_cheap_and_cli_runs_as_module():
    code = "import sys, word2bert; assert 'numba' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run([sys.executable, "-m", "word2bert", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"word2bert {word2bert.__version__}"


def test_cli_without_command_or_model_exits_2(capsys):
    from word2bert.cli import main

    assert main([]) == 2
    assert main(["train"]) == 2
    assert "give a model to train" in capsys.readouterr().err


def test_the_command_exits_with_mains_code_and_its_output_written(tmp_path):
    """``python -m word2bert`` (and the installed ``word2bert`` script, ``cli.run``) ends with
    ``gc.freeze``: the exit code and the files must be those of :func:`main`."""
    import tomllib
    from pathlib import Path

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 50)
    out = tmp_path / "vectors.bin"
    command = [sys.executable, "-m", "word2bert", "train", "word2vec", str(corpus), "--output", str(out),
               "--min-count", "1", "--epochs", "1", "--workers", "1", "--size", "8"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"7 8\n")  # cat sat on the mat dog log: 7 words, 8 dims
    missing = subprocess.run(command[:5] + [str(tmp_path / "missing.txt")] + command[6:], capture_output=True,
                             text=True)
    assert missing.returncode == 2 and "file not found" in missing.stderr
    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["word2bert"] == "word2bert.cli:run"
