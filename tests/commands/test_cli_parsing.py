"""The command line itself: every spelling of an option, "did you mean", help for every flag,
Python's names in messages shown as flags, and CLI defaults that differ from Python's named."""

import argparse
import inspect

import pytest

from word2bert.cli import build_parser, cli_message, given_options, main


def leaf(parser, *names):
    for name in names:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def parse(argv):
    args, extras = build_parser().parse_known_args(argv)
    assert extras == []
    return args


def test_word2vec_c_fasttext_and_gensim_spellings_are_one_option():
    gensim = parse(["train", "word2vec", "text8", "-o", "v.bin", "--vector-size", "200", "--epochs", "15",
                    "--workers", "2", "--sample", "1e-4", "--negative", "25", "--window", "8", "--sg", "1",
                    "--min-count", "3", "--alpha", "0.05"])
    word2vec_c = parse(["train", "word2vec", "-train", "text8", "-output", "v.bin", "-size", "200", "-iter", "15",
                        "-threads", "2", "-sample", "1e-4", "-negative", "25", "-window", "8", "-cbow", "0",
                        "-min-count", "3", "-alpha", "0.05"])
    fasttext = parse(["train", "word2vec", "-input", "text8", "-o", "v.bin", "-dim", "200", "-epoch", "15",
                      "-thread", "2", "-t", "1e-4", "-neg", "25", "-ws", "8", "--sg", "1", "-minCount", "3",
                      "-lr", "0.05"])
    names = ["vector_size", "epochs", "workers", "sample", "negative", "window", "sg", "min_count", "alpha", "output"]
    for args in (word2vec_c, fasttext):
        assert {n: getattr(args, n) for n in names} == {n: getattr(gensim, n) for n in names}
    assert gensim.corpus == "text8" and word2vec_c.corpus_option == fasttext.corpus_option == "text8"
    assert parse(["train", "word2vec", "c.txt", "-o", "v", "-cbow", "1"]).sg == 0


def test_classifier_takes_gensim_names_and_fasttext_names():
    fasttext = parse(["train", "classifier", "-input", "train.txt", "-o", "m.bin", "-lr", "1.0", "-dim", "10",
                      "-epoch", "25", "-wordNgrams", "2", "-minn", "2", "-maxn", "4", "-thread", "1", "-neg", "3"])
    gensim = parse(["train", "classifier", "train.txt", "-o", "m.bin", "--alpha", "1.0", "--vector-size", "10",
                    "--epochs", "25", "--word-ngrams", "2", "--min-n", "2", "--max-n", "4", "--workers", "1",
                    "--negative", "3"])
    for name in ("lr", "dim", "epoch", "word_ngrams", "minn", "maxn", "workers", "neg"):
        assert getattr(fasttext, name) == getattr(gensim, name), name


def test_hugging_face_spellings_with_underscores(monkeypatch):
    seen = {}
    monkeypatch.setattr("word2bert.commands.finetune.run_finetune", lambda args: seen.update(vars(args)) or 0)
    parser = build_parser()
    leaf(parser, "finetune").set_defaults(func=lambda args: seen.update(vars(args)) or 0)
    monkeypatch.setattr("word2bert.cli.build_parser", lambda: parser)
    assert main(["finetune", "--model_name_or_path", "bert", "--train_file", "t.tsv", "--output_dir", "out",
                 "--learning_rate", "3e-5", "--num_train_epochs", "2", "--per_device_train_batch_size", "8",
                 "--overwrite_output_dir", "--max_seq_length", "64"]) == 0
    assert (seen["model_option"], seen["train"], seen["output"], seen["lr"], seen["epochs"], seen["batch_size"],
            seen["overwrite"], seen["max_length"]) == ("bert", "t.tsv", "out", 3e-5, 2.0, 8, True, 64)


@pytest.mark.parametrize("argv, usage, suggestion", [
    (["train", "word2vec", "c.txt", "-o", "v.bin", "--vector-sise", "50"], "usage: word2bert train word2vec",
     "did you mean --vector-size?"),
    (["train", "fasttext", "c.txt", "-o", "m.bin", "--minm", "2"], "usage: word2bert train fasttext",
     "did you mean --minn"),
    (["train", "word2vek", "c.txt"], "usage: word2bert train ", "did you mean 'word2vec'?"),
    (["simlar", "v.bin", "king"], "usage: word2bert ", "did you mean 'similar'?"),
    (["finetune", "bert", "--train", "t.tsv", "-o", "out", "--epohcs", "2"], "usage: word2bert finetune",
     "did you mean --epochs?"),
])
def test_a_mistake_shows_the_sub_commands_usage_and_a_suggestion(capsys, argv, usage, suggestion):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and suggestion in err and "Traceback" not in err
    assert "/-" not in err  # the one-dash twins of long options are not listed


def test_a_missing_required_flag_names_it_once(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "bert", "--train", "t.tsv"])
    err = capsys.readouterr().err
    assert err.startswith("usage: word2bert finetune") and "required: -o/--output/--output-dir" in err


def test_an_explicit_one_dash_option_takes_the_place_of_a_twin():
    from word2bert.cli import Parser

    parser = Parser(prog="p")
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("-lr", dest="other", default=None)  # another command's own spelling wins
    args = parser.parse_args(["-lr", "x", "--lr", "2"])
    assert (args.other, args.lr) == ("x", 2.0)


def test_given_options_are_those_written_whatever_their_value():
    parser = build_parser()
    given = given_options(parser, ["train", "word2vec", "c.txt", "-o", "v.bin", "--epochs", "5", "-size", "7"])
    assert {"epochs", "vector_size", "output", "corpus"} <= given
    assert "window" not in given and "sg" not in given


def test_python_names_in_messages_become_the_commands_flags():
    parser = leaf(build_parser(), "train", "word2vec")
    assert cli_message("softmax=True is the full softmax: set hs=0 and negative=0 with it", parser) == \
        "--softmax is the full softmax: set --hs 0 and --negative 0 with it"
    assert cli_message("parameter vector_size=0 must be >= 1", parser) == "parameter --vector-size 0 must be >= 1"
    assert cli_message("see /tmp/a=b and unknown_name=3", parser) == "see /tmp/a=b and unknown_name=3"
    bert = leaf(build_parser(), "pretrain", "bert")
    assert cli_message("parameter learning_rate=0 must be > 0", bert) == "parameter --lr 0 must be > 0"


def all_leaf_parsers(parser, prefix=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(prefix), parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from all_leaf_parsers(child, prefix + (name,))


#: The commands of issue 16's scope (the modules commands/{word2vec,fasttext,glove,vectors,demo,bert,finetune}).
CHECKED = {"train word2vec", "vocab", "train fasttext", "train classifier", "predict", "test", "train doc2vec",
           "train glove", "train lsa", "similar", "analogy", "evaluate", "convert", "demo", "download",
           "pretrain bert", "finetune", "encode"}


def test_every_option_of_every_command_explains_itself():
    missing = [f"{name}: {action.option_strings or action.dest}"
               for name, parser in all_leaf_parsers(build_parser()) if name in CHECKED
               for action in parser._actions
               if action.help is not argparse.SUPPRESS and not (action.help or "").strip()
               and action.dest not in ("help",)]
    assert missing == []
    for command in (["finetune"], ["pretrain", "bert"], ["train", "word2vec"], ["encode"]):
        text = leaf(build_parser(), *command).format_help()
        assert "examples:" in text, command


def python_defaults(cls):
    return {name: p.default for name, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize("command, import_path", [
    ("word2vec", "word2bert.static.word2vec:Word2Vec"),
    ("fasttext", "word2bert.static.fasttext:FastText"),
    ("classifier", "word2bert.static.classifier:FastTextClassifier"),
    ("doc2vec", "word2bert.static.doc2vec:Doc2Vec"),
    ("glove", "word2bert.static.glove:GloVe"),
])
def test_cli_defaults_agree_with_python_or_the_help_says_so(command, import_path):
    """A default that differs between `word2bert train X` and Python's class is named in --help."""
    import importlib

    module, name = import_path.split(":")
    defaults = python_defaults(getattr(importlib.import_module(module), name))
    parser = leaf(build_parser(), "train", command)
    unexplained = []
    for action in parser._actions:
        if action.dest in defaults and action.default is not argparse.SUPPRESS and action.option_strings:
            python = defaults[action.dest]
            if action.default != python and "Python" not in (action.help or ""):
                unexplained.append(f"{action.option_strings[0]}: CLI {action.default!r}, Python {python!r}")
    assert unexplained == []
