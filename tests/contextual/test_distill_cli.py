"""`word2bert distill` end to end on tiny models: masked-LM distillation into a DistilBERT that
transformers, `finetune` and `encode` read; the output-folder rules (-o, --overwrite, --resume); task
distillation from a fine-tuned teacher; teachers it cannot use."""

import json

import numpy as np
import pytest
import torch

from word2bert.cli import main
from word2bert.corpus.wordpiece import WordPieceTokenizer
from word2bert.models.bert import BertConfig, BertForPreTraining, BertModel
from word2bert.tasks.heads import SequenceClassification, load_finetuned

torch.set_num_threads(1)

WORDS = [f"w{i}" for i in range(30)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A WordPiece vocabulary, a corpus, a planted classification file, a BERT teacher with an MLM head
    and a fine-tuned classification teacher (untrained weights: the commands' plumbing is under test)."""
    root = tmp_path_factory.mktemp("distill")
    tokenizer = WordPieceTokenizer({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS)})
    rng = np.random.default_rng(0)
    (root / "corpus.txt").write_text("\n".join(" ".join(rng.choice(WORDS, rng.integers(6, 14))) for _ in range(120)))
    lines = []
    for _ in range(96):
        words = list(rng.choice(WORDS[1:], rng.integers(3, 7)))
        label = "yes" if rng.random() < 0.5 else "no"
        if label == "yes":
            words[rng.integers(len(words))] = "w0"
        lines.append(" ".join(words) + "\t" + label)
    (root / "train.tsv").write_text("\n".join(lines[:64]) + "\n")
    (root / "dev.tsv").write_text("\n".join(lines[64:]) + "\n")
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(0)
    BertForPreTraining(config).save_pretrained(root / "teacher")
    tokenizer.save(root / "teacher")
    SequenceClassification(BertModel(config), 2, pooling="mean", labels=["no", "yes"]).save_pretrained(root / "clf")
    tokenizer.save(root / "clf")
    return root


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_masked_lm_distillation_writes_a_distilbert_others_read(files, tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    out = tmp_path / "student"
    common = ["distill", "--teacher", files / "teacher", "--corpus", files / "corpus.txt", "-o", out,
              "--batch-size", "8", "--min-seq-length", "5", "--threads", "1", "--quiet", "--json"]
    code, stdout, err = run(capsys, *common, "--max-steps", "3", "--layers", "2")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["student"] == "DistilBertForMaskedLM" and summary["teacher_layers"] == [0, 3]
    assert summary["steps"] == 3 and {"ce", "nll", "cos", "teacher_accuracy"} <= set(summary["evaluation"])
    theirs = transformers.DistilBertForMaskedLM.from_pretrained(out).eval()
    from word2bert.models.distilbert import DistilBertForMaskedLM

    ours = DistilBertForMaskedLM.from_pretrained(out).eval()
    ids = torch.tensor([[2, 7, 4, 9, 3]])
    with torch.no_grad():
        expected = theirs(input_ids=ids).logits
        got = ours(ids, masked_positions=torch.arange(5)[None]).mlm_logits
    assert (got - expected).abs().max() < 1e-5
    # the output folder rules
    code, _, err = run(capsys, *common, "--max-steps", "3")
    assert code == 2 and "--overwrite" in err and "--resume" in err
    code, stdout, err = run(capsys, *common, "--max-steps", "5", "--resume")
    assert code == 0, err
    assert json.loads(stdout)["steps"] == 5 and json.loads(stdout)["teacher_layers"] == [0, 3]  # its own settings
    code, _, err = run(capsys, *common, "--max-steps", "6", "--resume", "--layers", "3")
    assert code == 2 and "--layers 3" in err
    # encode and finetune take the student
    code, stdout, err = run(capsys, "encode", out, "w1 w2 w3")
    assert code == 0 and len(stdout.split("\t")[1].split()) == 16, err
    code, _, err = run(capsys, "finetune", out, "--train", files / "train.tsv", "-o", tmp_path / "clf", "--max-steps",
                       "2", "--threads", "1", "--quiet")
    assert code == 0, err


def test_task_distillation_from_a_finetuned_teacher(files, tmp_path, capsys):
    out = tmp_path / "small"
    code, stdout, err = run(capsys, "distill", "--teacher", files / "clf", "--task", "classification", "--train",
                            files / "train.tsv", "--dev", files / "dev.tsv", "-o", out, "--layers", "1",
                            "--max-steps", "4", "--batch-size", "16", "--threads", "1", "--quiet", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["student"] == "DistilBertModel" and summary["layers"] == 1
    assert summary["evaluation"]["examples"] == 32 and 0 <= summary["evaluation"]["teacher_accuracy"] <= 1
    student = load_finetuned(out)
    assert student.labels == ["no", "yes"] and student.pooling == "mean"
    code, _, err = run(capsys, "encode", out, "w1 w2")
    assert code == 0, err
    # the teacher's own class keeps its head
    code, stdout, err = run(capsys, "distill", "--teacher", files / "clf", "--task", "classification", "--train",
                            files / "train.tsv", "-o", tmp_path / "same", "--student", "same", "--layers", "2",
                            "--max-steps", "1", "--threads", "1", "--quiet", "--json")
    assert code == 0 and json.loads(stdout)["student"] == "BertModel", err


def test_teachers_and_flags_it_cannot_use(files, tmp_path, capsys):
    bare = tmp_path / "bare"
    BertModel(BertConfig(vocab_size=35, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=32)).save_pretrained(bare)
    WordPieceTokenizer.from_pretrained(files / "teacher").save(bare)
    code, _, err = run(capsys, "distill", "--teacher", bare, "--corpus", files / "corpus.txt", "-o", tmp_path / "a")
    assert code == 2 and "no masked-LM head" in err and "--task" in err
    code, _, err = run(capsys, "distill", "--teacher", files / "teacher", "--task", "classification", "--train",
                       files / "train.tsv", "-o", tmp_path / "b")
    assert code == 2 and "task.json" in err
    code, _, err = run(capsys, "distill", "--teacher", files / "teacher", "-o", tmp_path / "c")
    assert code == 2 and "--corpus" in err
    code, _, err = run(capsys, "distill", "--teacher", files / "teacher", "--corpus", files / "corpus.txt", "-o",
                       tmp_path / "d", "--alpha-task", "1")
    assert code == 2 and "--alpha-task" in err
    code, _, err = run(capsys, "distill", "--teacher", files / "teacher", "--corpus", files / "corpus.txt", "-o",
                       tmp_path / "e", "--teacher-layers", "0,9")
    assert code == 2 and "layer 9 does not exist" in err
    code, _, err = run(capsys, "distill", "--teacher", files / "clf", "--task", "classification", "--train",
                       files / "train.tsv", "-o", tmp_path / "f", "--mlm-smoothing", "0")
    assert code == 2 and "--mlm-smoothing applies to masked-LM distillation only" in err
    code, _, err = run(capsys, "distill", "--teacher", tmp_path / "no-such-teacher", "--corpus", files / "corpus.txt",
                       "-o", tmp_path / "g")
    assert code == 2 and f"--teacher {tmp_path / 'no-such-teacher'}: model directory not found" in err
    for temperature in ("0", "-1"):
        code, _, err = run(capsys, "distill", "--teacher", files / "teacher", "--corpus", files / "corpus.txt", "-o",
                           tmp_path / "h", "--temperature", temperature)
        assert code == 2 and f"--temperature {float(temperature)}: must be > 0" in err
    # a student deeper than the 4-layer teacher it copies its layers from (masked-LM and task distillation)
    code, _, err = run(capsys, "distill", "--teacher", files / "teacher", "--corpus", files / "corpus.txt", "-o",
                       tmp_path / "i", "--layers", "6")
    assert code == 2 and "a student of 6 layers cannot take its layers from a teacher of 4" in err, err
    code, _, err = run(capsys, "distill", "--teacher", files / "clf", "--task", "classification", "--train",
                       files / "train.tsv", "-o", tmp_path / "j", "--layers", "5")
    assert code == 2 and "a student of 5 layers cannot take its layers from a teacher of 4" in err, err
    assert not any((tmp_path / name).exists() for name in "abcdefghij")
    assert all(len(line) < 300 and "Traceback" not in line for line in err.splitlines())
