"""``word2bert train translation`` and ``word2bert translate``: files, stdin, scores, resume, bad input."""

import io
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sacrebleu")

from word2bert.cli import main  # noqa: E402

WORDS = {"cat": "chat", "dog": "chien", "file": "fichier", "open": "ouvrir", "the": "le", "a": "un"}


def write_pairs(path, count=60):
    english = list(WORDS)
    lines = []
    for i in range(count):
        words = [english[(i + k) % len(english)] for k in range(1 + i % 4)]
        lines.append(" ".join(words) + "\t" + " ".join(WORDS[w] for w in words))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TINY = ["--layers", "1", "--d-model", "16", "--heads", "2", "--ffn", "32", "--vocab-size", "300",
        "--max-tokens", "200", "--warmup", "5", "--lr", "3e-3", "--quiet", "--save-steps", "0"]


def test_train_then_translate_files_stdin_and_score(tmp_path, capsys, monkeypatch):
    pairs = write_pairs(tmp_path / "pairs.tsv")
    out = tmp_path / "model"
    assert main(["train", "translation", str(pairs), "-o", str(out), "--valid", str(pairs), "--max-steps", "6",
                 *TINY]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 6 and "nll" in json.dumps(summary["evaluation"])
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt", "training.json"):
        assert (out / name).is_file(), name
    sources = tmp_path / "sources.txt"
    sources.write_text("the cat\na dog open\n", encoding="utf-8")
    hypotheses = tmp_path / "hyp.txt"
    assert main(["translate", str(out), str(sources), "-o", str(hypotheses), "--beam", "2", "--max-len", "5"]) == 0
    assert len(hypotheses.read_text(encoding="utf-8").splitlines()) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("the file\n"))
    assert main(["translate", str(out), "--beam", "1", "--max-len", "5"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["translate", str(out), str(pairs), "--score", "--beam", "1", "--max-len", "5",
                 "-o", str(tmp_path / "scored.txt")]) == 0
    scores = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert {"bleu", "chrf", "sentences_per_second"} <= set(scores) and scores["sentences"] == 60
    # resume continues the run to a larger step count
    assert main(["train", "translation", str(pairs), "-o", str(out), "--max-steps", "8", "--resume", *TINY]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 8


def test_bad_input_names_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("the cat\tle chat\nno tab on this line\n", encoding="utf-8")
    assert main(["train", "translation", str(bad), "-o", str(tmp_path / "m"), "--max-steps", "1", *TINY]) == 2
    assert "bad.tsv:2: no tab" in capsys.readouterr().err
    bad.write_text("the cat\tle chat\n\tvide\n", encoding="utf-8")
    assert main(["train", "translation", str(bad), "-o", str(tmp_path / "m"), "--max-steps", "1", *TINY]) == 2
    assert "bad.tsv:2: empty source" in capsys.readouterr().err
    pairs = write_pairs(tmp_path / "pairs.tsv")
    out = tmp_path / "short"
    assert main(["train", "translation", str(pairs), "-o", str(out), "--max-steps", "1", "--max-length", "12",
                 *TINY]) == 0
    capsys.readouterr()
    long_input = tmp_path / "long.txt"
    long_input.write_text("the cat\n" + " ".join(["dog"] * 40) + "\n", encoding="utf-8")
    assert main(["translate", str(out), str(long_input), "--beam", "1"]) == 2
    error = capsys.readouterr().err
    assert "long.txt: line 2" in error and "positions" in error and error.count("\n") == 1
    long_pairs = tmp_path / "long.tsv"
    long_pairs.write_text("the cat\tle chat\n\n" + " ".join(["dog"] * 40) + "\tchiens\n", encoding="utf-8")
    assert main(["translate", str(out), str(long_pairs), "--score", "--beam", "1"]) == 2
    assert "long.tsv: line 3: the source has" in capsys.readouterr().err  # the line, not the pair's number
    assert main(["translate", str(tmp_path), str(long_input)]) == 2
    assert "not a translation model directory" in capsys.readouterr().err


def test_long_training_pairs_are_an_error_or_skipped(tmp_path, capsys):
    pairs = write_pairs(tmp_path / "pairs.tsv")
    with open(pairs, "a", encoding="utf-8") as handle:
        handle.write("\n" + " ".join(["cat"] * 30) + "\tchat\n")  # after a blank line: pair 61 is on line 62
    out = tmp_path / "m"
    assert main(["train", "translation", str(pairs), "-o", str(out), "--max-steps", "1", "--max-length", "16",
                 *TINY]) == 2
    assert "pairs.tsv: line 62: the source has" in capsys.readouterr().err
    assert main(["train", "translation", str(pairs), "-o", str(out), "--max-steps", "1", "--max-length", "16",
                 "--skip-long", *[t for t in TINY if t != "--quiet"]]) == 0
    assert "left out 1 training pairs" in capsys.readouterr().err


def test_output_directory_is_checked_before_training(tmp_path, capsys):
    pairs = write_pairs(tmp_path / "pairs.tsv")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["train", "translation", str(pairs), "-o", str(taken), "--max-steps", "1", *TINY]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (taken / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_resume_refuses_flags_that_contradict_the_run(tmp_path, capsys):
    pairs = write_pairs(tmp_path / "pairs.tsv", count=20)
    out = tmp_path / "model"
    assert main(["train", "translation", str(pairs), "-o", str(out), "--max-steps", "1", *TINY]) == 0
    saved = json.loads((out / "training_args.json").read_text(encoding="utf-8"))
    assert saved["layers"] == 1 and saved["d_model"] == 16 and "max_steps" not in saved
    capsys.readouterr()
    wider = [t if t != "16" else "32" for t in TINY]  # --d-model 32
    assert main(["train", "translation", str(pairs), "-o", str(out), "--max-steps", "2", "--resume", *wider]) == 2
    error = capsys.readouterr().err
    assert "--d-model 32 (the checkpoint's: 16)" in error and error.count("\n") == 1
    assert main(["train", "translation", str(pairs), "-o", str(out), "--max-steps", "2", "--resume",
                 "--init", str(out)]) == 2
    assert "--init" in capsys.readouterr().err
    # the refused runs changed nothing; the same flags (and a new stopping point) continue the run
    assert main(["train", "translation", str(pairs), "-o", str(out), "--max-steps", "2", "--resume", *TINY]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 2


def test_a_failed_save_rescues_the_model_elsewhere(tmp_path, capsys, monkeypatch):
    from word2bert.models.transformer import TransformerForTranslation

    pairs = write_pairs(tmp_path / "pairs.tsv", count=20)
    out = tmp_path / "model"
    original = TransformerForTranslation.save_pretrained

    def disk_full_in_out(self, directory, *args, **kwargs):
        if Path(directory) == out:
            raise OSError(28, "No space left on device")
        return original(self, directory, *args, **kwargs)

    monkeypatch.setattr(TransformerForTranslation, "save_pretrained", disk_full_in_out)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "translation", str(pairs), "-o", str(out), "--max-steps", "1", *TINY]) == 2
    error = capsys.readouterr().err
    assert "No space left on device" in error and "saved to" in error
    rescued = [p for p in tmp_path.iterdir() if p.name.startswith("word2bert-rescued-")]
    assert len(rescued) == 1 and (rescued[0] / "model.safetensors").is_file() and (rescued[0] / "vocab.json").is_file()
    TransformerForTranslation.from_pretrained(rescued[0])  # a whole model


def test_translate_checks_its_output_before_translating(tmp_path, capsys, monkeypatch):
    pairs = write_pairs(tmp_path / "pairs.tsv", count=20)
    out = tmp_path / "model"
    assert main(["train", "translation", str(pairs), "-o", str(out), "--max-steps", "1", *TINY]) == 0
    capsys.readouterr()
    import word2bert.commands.translation as command

    def never(*args, **kwargs):
        raise AssertionError("translated before checking -o")

    monkeypatch.setattr(command, "translate_sentences", never)
    assert main(["translate", str(out), str(pairs), "-o", str(tmp_path / "missing" / "hyp.txt")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["translate", str(out), str(pairs), "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
