"""The ``word2bert`` command.

Sub-commands live in ``word2bert.commands``: every module there defines
``register(commands, train_commands)`` and is found automatically, so adding a model adds
one file. ``commands`` is the top-level sub-parser group (``word2bert similar ...``),
``train_commands`` the group under ``word2bert train`` (``word2bert train word2vec ...``).
Each sub-command sets ``func(args) -> int``.

Bad input raises :class:`Word2BertError`; it is printed as one line and the exit status is 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from word2bert import __version__
from word2bert.errors import Word2BertError

EPILOG = """examples:
  word2bert demo                                   train on Python's own docs, show neighbours
  word2bert train word2vec corpus.txt -o vec.bin --sg 1 --vector-size 100
  word2bert similar vec.bin king --topn 10
  word2bert analogy vec.bin man king woman
  word2bert evaluate vec.bin                       WordSim353 + Google analogies (bundled)
  word2bert convert vec.bin vec.txt                between word2vec binary/text, GloVe, .npz
  word2bert train fasttext corpus.txt -o ft.bin    subword vectors; Facebook .bin/.vec
  word2bert train classifier train.txt -o clf.bin  fastText supervised (__label__ lines)
  word2bert test clf.bin test.txt -k 1             P@k and R@k
  word2bert train glove corpus.txt -o glove.txt --window 10 --x-max 10
  word2bert train lsa corpus.txt -o lsa.txt        PPMI + truncated SVD
  word2bert pretrain bert corpus.txt -o bert/ --layers 4 --hidden 256 --heads 4
  word2bert finetune bert/ --train train.tsv --dev dev.tsv --task classification -o clf/
"""


class HelpfulFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep example blocks as written and show defaults (but not a meaningless "default: None")."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="word2bert", description="Word representations from word2vec to BERT.",
        epilog=EPILOG, formatter_class=HelpfulFormatter)
    parser.add_argument("--version", action="version", version=f"word2bert {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    train = commands.add_parser("train", help="train a model on a corpus",
                                formatter_class=HelpfulFormatter,
                                description="Train a model; `word2bert train MODEL --help` for its options.")
    train_commands = train.add_subparsers(title="models", dest="model", metavar="MODEL")
    train.set_defaults(func=lambda args: _missing(train, "a model to train"))

    import word2bert.commands as command_package

    for info in sorted(pkgutil.iter_modules(command_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"word2bert.commands.{info.name}")
        module.register(commands, train_commands)
    return parser


def _missing(parser: argparse.ArgumentParser, what: str) -> int:
    parser.print_help(sys.stderr)
    print(f"\n{parser.prog}: error: give {what}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        return _missing(parser, "a command")
    try:
        return int(args.func(args) or 0)
    except Word2BertError as exc:
        print(f"word2bert: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("word2bert: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `word2bert similar ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
