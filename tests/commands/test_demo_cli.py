"""`word2bert demo`, Quick start's first command: a meaningful score, the same output every run."""

import re

from word2bert import datasets
from word2bert.cli import main


def scores(output: str) -> dict:
    found = re.findall(r"(nearest neighbours|questions): ([\d.]+)%\s+\(random vectors: ([\d.]+)%\)", output)
    return {name: (float(model), float(control)) for name, model, control in found}


def without_timing(output: str) -> str:
    return re.sub(r" in [\d.]+ s;", "", output)


def test_demo_learns_the_corpus_word_forms(capsys):
    assert main(["demo", "--epochs", "2"]) == 0
    output = capsys.readouterr().out
    assert f"corpus: {datasets.cache_dir() / 'python-docs.txt'}" in output
    assert "file : files :: directory : directories" in output
    recall, control = scores(output)["nearest neighbours"]
    assert recall > 5 * control + 5  # in % (5 epochs: 41% against 0.2%)
    assert "WordSim353" in output and "Spearman" not in output


def test_demo_output_is_the_same_every_run(tmp_path, capsys, monkeypatch):
    full = datasets.demo_corpus()
    small = tmp_path / "python-docs.txt"
    small.write_text("".join(full.read_text().splitlines(keepends=True)[:400]))
    monkeypatch.setattr(datasets, "demo_corpus", lambda: small)
    runs = []
    for _ in range(2):
        assert main(["demo", "--epochs", "1", "-o", str(tmp_path / "v.npz")]) == 0
        runs.append(without_timing(capsys.readouterr().out))
        assert (tmp_path / "v.npz").exists()
    assert runs[0] == runs[1] and "trained skip-gram" in runs[0]
