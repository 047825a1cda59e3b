"""The bad inputs of docs/bad_inputs.md that need no trained model: each ends in one line naming the
file, line or flag, exit status 2 (a usage error for a mistyped command line), no traceback, and
nothing written. The rest of the table is covered by the tests it names; a test below checks that
every test the table names exists."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from word2bert.cli import main
from word2bert.vectors import KeyedVectors

HAS_TORCH = importlib.util.find_spec("torch") is not None
DOC = Path(__file__).resolve().parents[2] / "docs" / "bad_inputs.md"


@pytest.fixture
def files(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 20)
    (tmp_path / "blank.txt").write_text("  \n\n \n")
    KeyedVectors(np.eye(5, dtype=np.float32), ["a", "b", "c", "d", "e"]).save_word2vec_format(
        tmp_path / "vectors.bin", binary=True)
    (tmp_path / "nan.txt").write_text("3 2\na 1 0\nb nan 1\nc 0 1\n")
    (tmp_path / "binary.dat").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "train.tsv").write_text("good text\tpos\nmore text\tneg\nbad text\t\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "plain").mkdir()
    (tmp_path / "out.bin.checkpoint.npz").write_bytes(b"left by an interrupted run")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        (read_only / "probe").touch()
        (read_only / "probe").unlink()
        read_only = Path("/sys")  # root writes anywhere but here
    except OSError:
        pass
    return {"tmp": tmp_path, "ro": read_only}


# (id, command line, exit status, what the message says, needs torch)
CASES = [
    ("output-is-a-directory", "train word2vec {tmp}/corpus.txt -o {tmp}", 2, "-o {tmp} is a directory", False),
    ("output-directory-missing", "train word2vec {tmp}/corpus.txt -o {tmp}/no/v.bin", 2,
     "directory does not exist: {tmp}/no", False),
    ("output-directory-read-only", "train fasttext {tmp}/corpus.txt -o {ro}/m.bin", 2, "cannot write in {ro}", False),
    ("second-output-a-directory", "train fasttext {tmp}/corpus.txt -o {tmp}/m.bin --vec {tmp}", 2,
     "--vec {tmp} is a directory", False),
    ("save-model-directory-missing", "train word2vec {tmp}/corpus.txt -o {tmp}/v.bin --save-model {tmp}/no/m", 2,
     "directory does not exist: {tmp}/no", False),
    ("vocab-output-a-directory", "vocab {tmp}/corpus.txt -o {tmp}", 2, "is a directory", False),
    ("lsa-output-a-directory", "train lsa {tmp}/corpus.txt -o {tmp}", 2, "is a directory", False),
    ("demo-output-a-directory", "demo -o {tmp}", 2, "is a directory", False),
    ("convert-output-a-directory", "convert {tmp}/vectors.bin {tmp}", 2, "OUT {tmp} is a directory", False),
    ("corpus-missing", "train word2vec {tmp}/none.txt -o {tmp}/v.bin", 2, "file not found: {tmp}/none.txt", False),
    ("corpus-blank", "train word2vec {tmp}/blank.txt -o {tmp}/v.bin --min-count 1", 2,
     "{tmp}/blank.txt: the corpus is empty", False),
    ("classifier-test-file-missing", "train classifier {tmp}/corpus.txt -o {tmp}/c.bin --test {tmp}/none.txt", 2,
     "file not found: {tmp}/none.txt", False),
    ("leftover-checkpoint", "train word2vec {tmp}/corpus.txt -o {tmp}/out.bin", 2,
     "{tmp}/out.bin.checkpoint.npz holds an interrupted run: continue it with --resume", False),
    ("resume-from-vectors", "train word2vec {tmp}/corpus.txt -o {tmp}/v.bin --resume {tmp}/vectors.bin", 2,
     "--resume {tmp}/vectors.bin: not a checkpoint", False),
    ("glove-resume-from-text", "train glove {tmp}/corpus.txt -o {tmp}/v.bin --resume {tmp}/corpus.txt", 2,
     "not a checkpoint", False),
    ("resume-missing", "train doc2vec {tmp}/corpus.txt -o {tmp}/d.npz --resume {tmp}/none.npz", 2,
     "--resume: file not found", False),
    ("parameter-python-name", "train word2vec {tmp}/corpus.txt -o {tmp}/v.bin --window 0", 2, "--window 0", False),
    ("softmax-with-negative", "train word2vec {tmp}/corpus.txt -o {tmp}/v.bin --softmax", 2,
     "--softmax is the full softmax: set --hs 0 and --negative 0", False),
    ("misspelt-flag", "train word2vec {tmp}/corpus.txt -o {tmp}/v.bin --vector-sise 50", 2,
     "did you mean --vector-size?", False),
    ("misspelt-command", "train word2vek {tmp}/corpus.txt", 2, "did you mean 'word2vec'?", False),
    ("unknown-word", "similar {tmp}/vectors.bin zebra", 2, "word 'zebra' is not in the vocabulary", False),
    ("nan-in-vectors", "similar {tmp}/nan.txt a", 2, "{tmp}/nan.txt: line 3: the vector of 'b' holds nan", False),
    ("binary-as-vectors", "similar {tmp}/binary.dat a", 2, "not a vector file", False),
    ("topn-zero", "similar {tmp}/vectors.bin a --topn 0", 2, "--topn 0: must be > 0", False),
    ("evaluate-pairs-missing", "evaluate {tmp}/vectors.bin --similarity {tmp}/none.tsv", 2, "file not found", False),
    ("vectors-as-classifier", "predict {tmp}/vectors.bin {tmp}/corpus.txt", 2, "not a fastText .bin classifier",
     False),
    ("predict-k-zero", "predict {tmp}/vectors.bin {tmp}/corpus.txt -k 0", 2, "-k 0: must be >= 1", False),
    ("test-threshold", "test {tmp}/vectors.bin {tmp}/corpus.txt --threshold 2", 2, "--threshold 2.0: a probability",
     False),
    ("download-read-only", "download text8 --dir {ro}/x", 2, "{ro}/x", False),
    ("pretrain-into-a-model", "pretrain bert {tmp}/corpus.txt -o {tmp}/model", 2,
     "output directory {tmp}/model already holds a model; give --overwrite", True),
    ("pretrain-output-a-file", "pretrain bert {tmp}/corpus.txt -o {tmp}/corpus.txt", 2, "is a file", True),
    ("pretrain-heads", "pretrain bert {tmp}/corpus.txt -o {tmp}/new --hidden 30 --heads 4", 2,
     "--hidden 30 is not a multiple of --heads 4", True),
    ("finetune-without-output", "finetune {tmp}/model --train {tmp}/train.tsv", 2, "required: -o/--output", True),
    ("finetune-into-files", "finetune {tmp}/model --train {tmp}/train.tsv -o {tmp}/plain/..", 2,
     "already holds files; give --overwrite", True),
    ("finetune-missing-model", "finetune {tmp}/none --train {tmp}/train.tsv -o {tmp}/f", 2,
     "model directory not found", True),
    ("finetune-empty-label", "finetune {tmp}/model --train {tmp}/train.tsv -o {tmp}/f", 2,
     "{tmp}/train.tsv:3: empty label", True),
    ("finetune-dev-missing", "finetune {tmp}/model --train {tmp}/train.tsv --dev {tmp}/none.tsv -o {tmp}/f", 2,
     "--dev: file not found", True),
    ("encode-not-a-model", "encode {tmp}/plain a sentence", 2, "has no config.json", True),
    ("other-models-into-a-model", "pretrain roberta {tmp}/corpus.txt -o {tmp}/model", 2, "already holds a model",
     True),
    ("xlnet-into-a-model", "pretrain xlnet {tmp}/corpus.txt -o {tmp}/model", 2, "already holds a model", True),
    ("elmo-into-a-model", "pretrain elmo {tmp}/corpus.txt -o {tmp}/model", 2, "already holds a model", True),
    ("awd-lstm-into-a-model", "pretrain awd-lstm {tmp}/corpus.txt -o {tmp}/model", 2, "already holds a model",
     True),
    ("nnlm-into-a-model", "train nnlm {tmp}/corpus.txt -o {tmp}/model", 2, "already holds a model", True),
    ("cove-into-a-model", "train cove {tmp}/train.tsv --glove {tmp}/vectors.bin -o {tmp}/model", 2,
     "already holds a model", True),
    ("kneser-ney-output-a-directory", "train kneser-ney {tmp}/corpus.txt -o {tmp}", 2, "-o {tmp} is a directory",
     False),
    ("phrases-output-a-directory", "phrases {tmp}/corpus.txt -o {tmp}", 2, "-o {tmp} is a directory", False),
    ("hugging-face-spelling", "finetune {tmp}/model --train_file {tmp}/train.tsv --output_dir {tmp}/f "
     "--learning_rate 0", 2, "--lr 0.0: must be > 0", True),
]


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_line(files, capsys, case):
    _name, command, status, message, needs_torch = case
    if needs_torch and not HAS_TORCH:
        pytest.skip("needs torch")
    before = sorted(p.name for p in files["tmp"].iterdir())
    argv = [arg.format(**files) for arg in command.split()]
    code, err = run(argv, capsys)
    assert code == status and "Traceback" not in err
    assert message.format(**files) in err
    if err.startswith("usage:"):
        assert err.strip().splitlines()[-1].startswith("word2bert")
    else:
        assert len(err.strip().splitlines()) == 1 and err.startswith("word2bert: error: ")
    assert sorted(p.name for p in files["tmp"].iterdir()) == before  # nothing written, nothing removed


def test_unwritable_cache_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORD2BERT_HOME", "/sys/word2bert-cache")
    code, err = run(["demo"], capsys)
    assert code == 2 and "cannot create the cache directory" in err and len(err.strip().splitlines()) == 1


def test_every_test_the_table_names_exists():
    text = DOC.read_text(encoding="utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)(?:\[([\w-]+)\])?`", text)
    assert len(named) > 30
    ids = {case[0] for case in CASES}
    root = DOC.parents[1]
    for path, test, case_id in named:
        source = (root / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {test}\(", source, re.M), f"{path}::{test}"
        if case_id:
            assert case_id in ids, case_id
    assert ids <= {case_id for _p, _t, case_id in named}, "every case is in the table"
