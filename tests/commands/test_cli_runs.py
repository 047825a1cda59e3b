"""No lost runs: outputs checked before training, a fallback when saving still fails, --resume
that refuses contradicting flags, and a fresh run that does not discard an interrupted one."""

import importlib
import inspect
import os
import zipfile

import numpy as np
import pytest

from word2bert.cli import build_parser, main
from word2bert.commands import check_resume_flags, save_or_rescue
from word2bert.errors import Word2BertError
from word2bert.static.word2vec import Word2Vec
from word2bert.vectors import KeyedVectors

from test_word2vec_cli import FAST, write_corpus


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("word2bert: error: "), err
    return err[0]


def unwritable_directory(tmp_path):
    """A directory this process cannot create files in (chmod for a user; /sys for root, where
    chmod does not stop writes), or skip."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        (directory / "probe").touch()
    except OSError:
        return directory
    (directory / "probe").unlink()
    try:
        open("/sys/word2bert-probe", "w").close()
    except OSError:
        return "/sys"
    pytest.skip("no unwritable directory on this machine")


def trains_nothing(monkeypatch):
    """Make any training call fail the test: the command must stop before it."""
    def forbidden(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(Word2Vec, "train", forbidden)


@pytest.mark.parametrize("command", ["word2vec", "fasttext", "doc2vec", "glove", "lsa"])
def test_bad_output_paths_are_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    corpus = write_corpus(tmp_path / "corpus.txt", 20)
    trains_nothing(monkeypatch)
    for output, message in ((tmp_path, "is a directory"),
                            (tmp_path / "missing" / "v.bin", "directory does not exist"),
                            (f"{unwritable_directory(tmp_path)}/v.bin", "cannot write in")):
        assert main(["train", command, str(corpus), "-o", str(output), "--no-progress"]) == 2
        assert message in one_error_line(capsys)
    assert main(["train", "classifier", str(corpus), "-o", str(tmp_path)]) == 2
    assert "is a directory" in one_error_line(capsys)


def test_a_save_that_fails_after_training_goes_to_a_fallback(tmp_path, capsys, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus.txt", 50)
    target = tmp_path / "vectors.bin"
    real_save = KeyedVectors.save

    def disk_full_at_the_target(self, path, format=None):
        if os.path.abspath(path) == str(target):
            raise OSError(28, "No space left on device")
        return real_save(self, path, format=format)

    monkeypatch.setattr(KeyedVectors, "save", disk_full_at_the_target)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "word2vec", str(corpus), "-o", str(target), *FAST]) == 2
    message = one_error_line(capsys)
    assert "No space left on device" in message and "saved to" in message
    rescued = message.split("saved to ")[1].split(" instead")[0]
    assert KeyedVectors.load(rescued).vectors.shape == (24, 16) and not target.exists()


def test_save_or_rescue_tries_the_next_place_and_says_when_all_fail(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = []

    def only_in_home(path):
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(13, "Permission denied")
        written.append(path)

    monkeypatch.setenv("HOME", str(tmp_path.parent / "home"))
    (tmp_path.parent / "home").mkdir(exist_ok=True)
    with pytest.raises(Word2BertError, match="Permission denied.*saved to .*home"):
        save_or_rescue(only_in_home, tmp_path / "model.bin")
    assert len(written) == 1

    def never(path):
        raise OSError(5, "Input/output error")

    with pytest.raises(Word2BertError, match="nor to a fallback"):
        save_or_rescue(never, tmp_path / "model.bin")


def interrupted_word2vec(tmp_path, corpus, out, **settings):
    """A real checkpoint: a run stopped by Ctrl-C after its first epoch."""
    from word2bert.corpus import LineSentence

    class Interrupt:
        def on_epoch_end(self, model):
            raise KeyboardInterrupt

    model = Word2Vec(**{"vector_size": 16, "window": 3, "min_count": 1, "epochs": 3, "progress": False, **settings})
    model.build_vocab(LineSentence(corpus))
    checkpoint = tmp_path / f"{out.name}.checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        model.train(LineSentence(corpus), callbacks=[Interrupt()], checkpoint=checkpoint)
    return checkpoint


def test_resume_refuses_flags_that_contradict_the_checkpoint(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", 100)
    out = tmp_path / "vectors.txt"
    checkpoint = interrupted_word2vec(tmp_path, corpus, out, sg=1)
    capsys.readouterr()
    assert main(["train", "word2vec", str(corpus), "-o", str(out), "--resume", str(checkpoint),
                 "--vector-size", "50", "--sg", "0", "--epochs", "1", "--no-progress"]) == 2
    message = one_error_line(capsys)
    for part in ("--vector-size 50 (the checkpoint's: 16)", "--sg 0 (the checkpoint's: 1)",
                 "--epochs 1 (the checkpoint's: 3)"):
        assert part in message
    assert checkpoint.exists() and not out.exists()
    # the checkpoint's own values, and settings a resumed run may change, are accepted
    assert main(["train", "word2vec", str(corpus), "-o", str(out), "--resume", str(checkpoint),
                 "--vector-size", "16", "--sg", "1", "--workers", "1", "--no-progress"]) == 0
    assert KeyedVectors.load(out).vector_size == 16 and not checkpoint.exists()


def test_a_fresh_run_keeps_an_interrupted_runs_checkpoint(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", 100)
    out = tmp_path / "vectors.txt"
    checkpoint = interrupted_word2vec(tmp_path, corpus, out)
    capsys.readouterr()
    before = checkpoint.read_bytes()
    assert main(["train", "word2vec", str(corpus), "-o", str(out), *FAST]) == 2
    message = one_error_line(capsys)
    assert f"--resume {checkpoint}" in message and "--overwrite" in message
    assert checkpoint.read_bytes() == before
    assert main(["train", "word2vec", str(corpus), "-o", str(out), "--overwrite", *FAST]) == 0
    assert not checkpoint.exists() and out.exists()


@pytest.mark.parametrize("kind", ["vectors", "text", "foreign-npz"])
def test_resume_from_a_file_that_is_not_a_checkpoint(tmp_path, capsys, kind):
    corpus = write_corpus(tmp_path / "corpus.txt", 20)
    path = tmp_path / "given"
    if kind == "vectors":
        KeyedVectors(np.ones((2, 3), np.float32), ["a", "b"]).save_word2vec_format(path, binary=True)
    elif kind == "text":
        path.write_text("hello\n")
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("x.npy", b"not numpy")
    for command in ("word2vec", "fasttext", "doc2vec", "glove"):
        assert main(["train", command, str(corpus), "-o", str(tmp_path / "out.bin"), "--resume", str(path),
                     "--no-progress"]) == 2
        message = one_error_line(capsys)
        assert "not a checkpoint" in message and "allow_pickle" not in message and "numpy" not in message


@pytest.mark.parametrize("command, module", [("word2vec", "word2vec"), ("fasttext", "fasttext"),
                                             ("classifier", "fasttext"), ("doc2vec", "fasttext"),
                                             ("glove", "glove")])
def test_the_settings_resume_checks_are_options_and_model_attributes(command, module):
    """The tables that --resume compares must name real flags and real model attributes."""
    tables = {"word2vec": ("RESUME_SETTINGS", "word2bert.static.word2vec:Word2Vec"),
              "fasttext": ("FASTTEXT_SETTINGS", "word2bert.static.fasttext:FastText"),
              "classifier": ("CLASSIFIER_SETTINGS", "word2bert.static.classifier:FastTextClassifier"),
              "doc2vec": ("DOC2VEC_SETTINGS", "word2bert.static.doc2vec:Doc2Vec"),
              "glove": ("GLOVE_SETTINGS", "word2bert.static.glove:GloVe")}
    table_name, model_path = tables[command]
    table = getattr(importlib.import_module(f"word2bert.commands.{module}"), table_name)
    model_module, model_name = model_path.split(":")
    cls = getattr(importlib.import_module(model_module), model_name)
    model = cls()
    parser = build_parser()
    dests = {action.dest for action in parser._subparsers._group_actions[0].choices["train"]._subparsers
             ._group_actions[0].choices[command]._actions}
    parameters = set(inspect.signature(cls).parameters)
    for dest, attribute in table.items():
        assert dest in dests, dest
        if callable(attribute):
            attribute(model)
        else:
            assert attribute in parameters and hasattr(model, attribute), attribute


def test_check_resume_flags_compares_only_what_was_given():
    class Args:
        _given = {"epochs", "alpha"}
        epochs, alpha, window = 5, 0.025, 99

    class Model:
        epochs, alpha, window = 5, 0.02500000001, 5

    check_resume_flags(Args, Model, {"epochs": "epochs", "alpha": "alpha", "window": "window"})
    Args._given = {"window"}
    with pytest.raises(Word2BertError, match="--window 99 \\(the checkpoint's: 5\\)"):
        check_resume_flags(Args, Model, {"window": "window"})


def test_a_diverged_run_writes_nothing(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", 100)
    out = tmp_path / "vectors.bin"
    code = main(["train", "word2vec", str(corpus), "-o", str(out), *FAST, "--alpha", "1e30"])
    assert code == 2 and "training diverged" in one_error_line(capsys) and not out.exists()
