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
