"""One option, every spelling: gensim's, fastText's and word2vec.c's names for the same setting.

``add_option(parser, "--vector-size", ...)`` registers ``--vector-size`` with its synonyms
``--dim`` and ``--size``; the parser adds the one-dash twins (``-dim``, ``-size``) itself (see
:class:`word2bert.cli.Parser`). The first name given is the one ``--help`` shows first and the
attribute the command reads (``args.vector_size``), so ``train classifier`` can keep fastText's
``--dim`` first while also taking ``--vector-size``.

A name that means something else in one tool is not made a synonym there: GloVe's ``--alpha``
is the exponent of its weighting function (its learning rate is ``--eta``), and LSA's ``--neg``
is the PMI shift, so those commands register them without ``add_option``.
"""

from __future__ import annotations

import argparse

from word2bert.errors import Word2BertError

#: Groups of spellings of one setting (gensim's name first).
SYNONYMS = (
    ("--vector-size", "--dim", "--size"),          # gensim 4 / fastText / word2vec.c and gensim 3
    ("--epochs", "--epoch", "--iter"),              # gensim 4 / fastText / word2vec.c, GloVe, gensim 3
    ("--alpha", "--lr"),                            # initial learning rate: gensim, word2vec.c / fastText
    ("--min-count", "--minCount"),                  # gensim, word2vec.c, GloVe / fastText
    ("--min-n", "--minn"),                          # gensim / fastText
    ("--max-n", "--maxn"),
    ("--workers", "--threads", "--thread"),         # gensim / word2vec.c, GloVe / fastText
    ("--window", "--ws", "--window-size"),          # gensim, word2vec.c / fastText / GloVe
    ("--negative", "--neg"),                        # gensim, word2vec.c / fastText
    ("--sample", "-t"),                             # gensim, word2vec.c / fastText
    ("--word-ngrams", "--wordNgrams"),              # / fastText
    ("--max-vocab-size", "--max-vocab"),            # gensim / GloVe
    ("--min-count-label", "--minCountLabel"),
    ("--memory-limit", "--memory"),                 # / GloVe
)


def spellings(name: str, *extra: str) -> list[str]:
    """``name`` first, then its synonyms from :data:`SYNONYMS`, then ``extra``."""
    group = next((g for g in SYNONYMS if name in g), (name,))
    names = [name] + [n for n in group if n != name] + [n for n in extra if n not in group]
    return names


def add_option(parser: argparse.ArgumentParser, name: str, *extra: str, **kwargs):
    """``parser.add_argument`` under every spelling of ``name`` (see :func:`spellings`)."""
    return parser.add_argument(*spellings(name, *extra), **kwargs)


class _Inverted(argparse.Action):
    """``--cbow 1`` (word2vec.c) stores ``sg = 0``, ``--cbow 0`` stores ``sg = 1``."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, 1 - int(values))


def add_cbow_switch(parser: argparse.ArgumentParser) -> None:
    """word2vec.c's ``-cbow 0|1``, the inverse of gensim's ``--sg``."""
    parser.add_argument("--cbow", dest="sg", type=int, choices=(0, 1), action=_Inverted,
                        default=argparse.SUPPRESS, help="word2vec.c's switch: 1 CBOW (= --sg 0), 0 skip-gram")


def add_input(parser: argparse.ArgumentParser, dest: str, metavar: str, help: str,
              options=("--input", "--train")) -> None:
    """A positional input file that may also be given as ``--input FILE`` (fastText's ``-input``)
    or ``--train FILE`` (word2vec.c's ``-train``): read it with :func:`input_path`."""
    parser.add_argument(dest, metavar=metavar, nargs="?", default=None,
                        help=f"{help} (also accepted as {' / '.join(options)} {metavar})")
    parser.add_argument(*options, dest=f"{dest}_option", metavar=metavar, default=None, help=argparse.SUPPRESS)


def input_path(args, dest: str, metavar: str) -> str:
    """The input file given either way to :func:`add_input`'s argument."""
    positional, option = getattr(args, dest), getattr(args, f"{dest}_option", None)
    if positional is not None and option is not None and positional != option:
        raise Word2BertError(f"two input files given ({positional} and {option}); give one {metavar}")
    if positional is None and option is None:
        raise Word2BertError(f"give the input file {metavar}")
    return positional if positional is not None else option
