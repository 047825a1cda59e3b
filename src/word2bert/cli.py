"""The ``word2bert`` command.

Sub-commands live in ``word2bert.commands``: every public module there defines
``register(commands, train_commands)`` and is found automatically, so adding a model adds
one file (modules whose name starts with ``_`` hold shared helpers). ``commands`` is the
top-level sub-parser group (``word2bert similar ...``), ``train_commands`` the group under
``word2bert train`` (``word2bert train word2vec ...``). Each sub-command sets ``func(args) -> int``.

Bad input raises :class:`Word2BertError`; it is printed as one line and the exit status is 2.
Python parameter names in such a message (``vector_size=0``) are shown as the sub-command's
flags (``--vector-size 0``). A mistyped flag or sub-command gets the sub-command's usage and a
"did you mean" suggestion. Every long option also works with one dash (``-dim``, ``-epoch``), as
fastText and word2vec.c spell them.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import importlib
import pkgutil
import re
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
  word2bert distill --teacher bert/ --corpus corpus.txt -o distilbert/    DistilBERT: half the layers

Options also take fastText's and word2vec.c's spellings (-dim, -epoch, -size, -iter, -threads).
"""

class HelpfulFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep example blocks as written, show defaults (but not a meaningless "default: None"), and
    list an option's spellings once: ``--vector-size, --dim, --size N`` (the one-dash twins that
    every long option has are not listed)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        if action.help and "%(default)" in action.help:
            return action.help
        return super()._get_help_string(action)

    def _format_action_invocation(self, action):
        if not action.option_strings:
            return super()._format_action_invocation(action)
        shown = [s for s in action.option_strings if not _is_one_dash_twin(s, action.option_strings)]
        if action.nargs == 0:
            return ", ".join(shown)
        return ", ".join(shown) + " " + self._format_args(action, self._get_default_metavar_for_optional(action))


def _is_one_dash_twin(option: str, options) -> bool:
    return len(option) > 2 and option[0] == "-" and option[1] != "-" and "-" + option in options


class Parser(argparse.ArgumentParser):
    """argparse with the sub-command's usage and a "did you mean" on a mistake, and a one-dash
    twin (``-min-count``) for every long option (``--min-count``)."""

    def add_argument(self, *names, **kwargs):
        twins = getattr(self, "_twins", None)
        if twins is None:
            twins = self._twins = set()
        for name in names:  # an option spelled explicitly takes the place of an earlier automatic twin
            if name in twins and name in self._option_string_actions:
                self._option_string_actions.pop(name).option_strings.remove(name)
                twins.discard(name)
        new_twins = [f"-{name[2:]}" for name in names
                     if name.startswith("--") and len(name) > 3 and f"-{name[2:]}" not in self._option_string_actions
                     and f"-{name[2:]}" not in names]
        twins.update(new_twins)
        return super().add_argument(*names, *new_twins, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if not hasattr(namespace, "_leaf_parser"):  # the innermost sub-command parser sets it first
            namespace._leaf_parser = self
        return namespace, extras

    def option_strings(self) -> list[str]:
        return [s for action in self._actions for s in action.option_strings]

    def error(self, message):
        options = set(self.option_strings())
        message = re.sub(r"/(-[A-Za-z][\w-]+)", lambda m: "" if "-" + m.group(1) in options else m.group(0), message)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}{_suggestion(self, message)}\n")


def _suggestion(parser: Parser, message: str) -> str:
    """'; did you mean --vector-size?' for an unknown flag or sub-command, else ''."""
    unknown = re.match(r"unrecognized arguments: (\S+)", message)
    if unknown and unknown.group(1).startswith("-"):
        flag = unknown.group(1).split("=", 1)[0]
        candidates = [s for s in parser.option_strings() if s.startswith("--") or len(s) == 2]
        close = difflib.get_close_matches(flag, candidates, n=2, cutoff=0.6)
        if not close and not flag.startswith("--"):
            close = difflib.get_close_matches("-" + flag, candidates, n=2, cutoff=0.6)
        if close:
            return f"; did you mean {' or '.join(close)}?"
        return f" (see {parser.prog} --help)"
    choice = re.match(r"argument \S+: invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        options = re.findall(r"'([^']*)'", choice.group(2))
        close = difflib.get_close_matches(choice.group(1), options, n=1, cutoff=0.5)
        if close:
            return f"; did you mean {close[0]!r}?"
    return ""


def build_parser() -> Parser:
    parser = Parser(
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
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"word2bert.commands.{info.name}")
        module.register(commands, train_commands)
    return parser


def _missing(parser: argparse.ArgumentParser, what: str) -> int:
    parser.print_help(sys.stderr)
    print(f"\n{parser.prog}: error: give {what}", file=sys.stderr)
    return 2


# ---------------------------------------------------------------------------------------------
# which flags were given


_UNSET = object()


def _all_parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(p): p for p in action.choices.values()}.values():
                yield from _all_parsers(sub)


def given_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the options and arguments written on the command line ``argv``
    (whatever their value), found by parsing it again with every default replaced by a marker."""
    saved = []
    for each in _all_parsers(parser):
        for action in each._actions:
            if action.dest is not argparse.SUPPRESS and action.default is not argparse.SUPPRESS:
                saved.append((action, action.default))
                action.default = _UNSET
    try:
        namespace, _extras = parser.parse_known_args(argv)
    finally:
        for action, default in saved:
            action.default = default
    return {dest for dest, value in vars(namespace).items() if value is not _UNSET and not dest.startswith("_")}


# ---------------------------------------------------------------------------------------------
# messages


def _flag_of(parser: argparse.ArgumentParser | None, name: str):
    """The action and flag the sub-command uses for the Python parameter ``name``, or None."""
    if parser is None:
        return None
    renamed = parser.get_default("python_names") or {}
    for action in parser._actions:
        if not action.option_strings:
            continue
        if action.dest == name or renamed.get(name) in action.option_strings:
            long = [s for s in action.option_strings if s.startswith("--")]
            return action, (long or action.option_strings)[0]
    return None


def cli_message(message: str, parser: argparse.ArgumentParser | None) -> str:
    """Show Python parameters as flags: ``vector_size=0`` -> ``--vector-size 0``, ``softmax=True``
    -> ``--softmax`` (only names that are options of the sub-command)."""

    def replace(match):
        found = _flag_of(parser, match.group(1))
        if found is None:
            return match.group(0)
        action, flag = found
        value = match.group(2).strip("'\"")
        if action.nargs == 0:
            return flag if value == "True" else f"no {flag}"
        return f"{flag} {value}"

    return re.sub(r"(?<![\w./-])([A-Za-z_][A-Za-z0-9_]*)=('[^']*'|\"[^\"]*\"|[^\s,;:)]+)", replace, message)


def missing_package_message(exc: ImportError, command: str | None) -> str | None:
    """One line naming what to install when an optional package is missing, else None."""
    from word2bert.commands._contextual import _PACKAGES, missing_message

    name = (getattr(exc, "name", None) or "").split(".")[0]
    if name not in _PACKAGES:
        return None
    return missing_message(command or "this command", [name])


def _dashes_for_underscores(parser, argv: list[str]) -> list[str]:
    """``--learning_rate`` -> ``--learning-rate`` (Hugging Face's scripts spell options with
    underscores) when only the dashed spelling is an option."""
    known = {s for each in _all_parsers(parser) for action in each._actions for s in action.option_strings}
    fixed = []
    for position, arg in enumerate(argv):
        if arg == "--":
            return fixed + argv[position:]
        name, equals, value = arg.partition("=")
        if arg.startswith("-") and "_" in name and name not in known and name.replace("_", "-") in known:
            arg = name.replace("_", "-") + equals + value
        fixed.append(arg)
    return fixed


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    argv = _dashes_for_underscores(parser, argv)
    args, extras = parser.parse_known_args(argv)
    leaf = getattr(args, "_leaf_parser", parser)
    if extras:
        leaf.error(f"unrecognized arguments: {' '.join(extras)}")
    if not hasattr(args, "func"):
        return _missing(parser, "a command")
    args._given = given_options(parser, argv)
    command = leaf.prog.removeprefix("word2bert").strip() or None
    try:
        return int(args.func(args) or 0)
    except Word2BertError as exc:
        print(f"word2bert: error: {cli_message(str(exc), leaf)}", file=sys.stderr)
        return 2
    except ImportError as exc:
        message = missing_package_message(exc, command)
        if message is None:
            raise
        print(f"word2bert: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("word2bert: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `word2bert similar ... | head`
        return 0


def run() -> None:
    """The ``word2bert`` command: :func:`main`, then an exit that skips the interpreter's last
    garbage-collection passes over every object still alive (``gc.freeze``). After numba has loaded
    its compiler's registries those passes took 0.5 s of every command; the command's files are
    written and closed by then, and its objects are still freed by reference counting.
    (:func:`main` itself leaves the collector alone: tests and other callers keep running.)"""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
