"""`word2bert pretrain {roberta,albert,spanbert,ernie}` and `pretrain bert --masking ...`: tiny runs
whose checkpoints `finetune` and `encode` take; bad input gets one clear line."""

import json
import random

import pytest

pytest.importorskip("torch")

from word2bert.cli import main  # noqa: E402

WORDS = ("the cat sat on a mat and the dog ran to new york city where people live but it rains because of "
         "weather however we stay home").split()
TINY = ["--layers", "1", "--hidden", "16", "--heads", "2", "--vocab-size", "300", "--max-steps", "2",
        "--batch-size", "4", "--max-seq-length", "24", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    rng = random.Random(0)
    documents = ["\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9)))
                           for _ in range(rng.randint(2, 5))) for _ in range(20)]
    (root / "corpus.txt").write_text("\n\n".join(documents) + "\n")
    (root / "train.tsv").write_text("".join(f"{' '.join(rng.choice(WORDS) for _ in range(5))}\t{rng.choice('ab')}\n"
                                            for _ in range(16)))
    (root / "names.txt").write_text("new york city\n")
    (root / "dialogues.txt").write_text("\n\n".join("\n".join(" ".join(rng.choice(WORDS) for _ in range(4))
                                                              for _ in range(3)) for _ in range(6)) + "\n")
    return root


@pytest.mark.parametrize("model,extra", [("roberta", ["--packing", "doc-sentences"]),
                                         ("albert", ["--embedding-size", "8"]),
                                         ("spanbert", ["--masking", "span", "--geometric-p", "0.3"]),
                                         ("ernie", ["--masking", "entity", "--tasks",
                                                    "knowledge_masking,sentence_reordering,sentence_distance",
                                                    "--max-steps", "3"]),
                                         ("ernie", ["--tasks", "basic_masking,entity_masking,dialogue", "--sequential",
                                                    "--max-steps", "3"])], ids=["roberta", "albert", "spanbert",
                                                                                "ernie2", "ernie1"])
def test_pretrain_then_finetune_and_encode(files, model, extra, capsys):
    output = files / (model + str(len(extra)))
    arguments = ["pretrain", model, str(files / "corpus.txt"), "-o", str(output), *TINY, *extra]
    if model == "ernie":
        arguments += ["--gazetteer", str(files / "names.txt")]
        if "--sequential" in extra:
            arguments += ["--dialogues", str(files / "dialogues.txt")]
    assert main(arguments) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == model and summary["steps"] == (3 if model == "ernie" else 2)
    assert (output / "config.json").is_file() and (output / "model.safetensors").is_file()
    if model in ("roberta", "albert"):   # the new tokenizers load for fine-tuning and encoding
        assert main(["finetune", str(output), "--train", str(files / "train.tsv"), "--epochs", "1",
                     "--batch-size", "8", "--max-length", "20", "--quiet", "--threads", "1",
                     "-o", str(files / f"{model}-classifier"), "--json"]) == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["train_steps"] == 2
        assert main(["encode", str(output), "the cat sat", "--pooling", "mean"]) == 0
        line = capsys.readouterr().out.strip()
        assert line.startswith("the cat sat\t") and len(line.split("\t")[1].split()) == 16


def test_pretrain_bert_with_whole_word_masking(files, capsys):
    assert main(["pretrain", "bert", str(files / "corpus.txt"), "-o", str(files / "bert-wwm"), *TINY,
                 "--masking", "whole-word", "--dynamic-masking", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 2


def test_bad_input_is_one_line(files, capsys):
    corpus = str(files / "corpus.txt")
    assert main(["pretrain", "ernie", corpus, "-o", str(files / "bad"), *TINY, "--masking", "entity",
                 "--tasks", "knowledge_masking",
                 "--gazetteer", str(files / "missing.txt")]) == 2
    assert "cannot read the gazetteer" in capsys.readouterr().err
    single = files / "single.txt"
    single.write_text("\n\n".join(" ".join(WORDS[k:k + 6]) for k in range(0, 24, 6)) + "\n")
    assert main(["pretrain", "albert", str(single), "-o", str(files / "bad2"), *TINY]) == 2
    assert "at least two sentences" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["pretrain", "roberta", corpus, "-o", str(files / "bad3"), "--masking", "spans"])
    assert "invalid choice: 'spans'" in capsys.readouterr().err


def test_resume_continues_and_refuses_conflicting_flags(files, capsys):
    output = files / "spanbert-resume"
    base = ["pretrain", "spanbert", str(files / "corpus.txt"), "-o", str(output), *TINY, "--save-steps", "1"]
    assert main(base + ["--masking", "span", "--geometric-p", "0.3"]) == 0
    capsys.readouterr()
    assert json.loads((output / "training_args.json").read_text())["geometric_p"] == 0.3
    # a different masking or width contradicts the checkpoint's run
    assert main([*base, "--resume", "--max-steps", "3", "--geometric-p", "0.2"]) == 2
    error = capsys.readouterr().err
    assert "--geometric-p 0.2 (the checkpoint's: 0.3)" in error and len(error.strip().splitlines()) == 1
    assert main([*base, "--resume", "--overwrite"]) == 2
    assert "give one of them" in capsys.readouterr().err
    # settings not given come from the run being continued; --max-steps may grow
    assert main([*base, "--resume", "--max-steps", "4"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 4
    assert main(["pretrain", "albert", str(files / "corpus.txt"), "-o", str(files / "none"), "--resume",
                 *TINY]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_a_failed_final_save_goes_to_a_fallback(files, capsys, monkeypatch, tmp_path):
    from word2bert.models.roberta import RobertaForMaskedLM

    output = files / "roberta-rescue"
    original = RobertaForMaskedLM.save_pretrained

    def disk_full_at_output(self, directory, *args, **kwargs):
        if str(directory) == str(output):
            raise OSError(28, "No space left on device")
        return original(self, directory, *args, **kwargs)

    monkeypatch.setattr(RobertaForMaskedLM, "save_pretrained", disk_full_at_output)
    monkeypatch.chdir(tmp_path)
    assert main(["pretrain", "roberta", str(files / "corpus.txt"), "-o", str(output), *TINY]) == 2
    error = capsys.readouterr().err
    assert "No space left on device" in error and "saved to" in error
    rescued = error.split("saved to ")[1].split(" instead")[0]
    assert (tmp_path / rescued.split("/")[-1] / "model.safetensors").is_file()
