"""gensim 4's ``corpus_iterable`` is ``sentences`` / ``documents`` under its newer name (constructor,
``build_vocab``, ``train``) in Word2Vec, FastText and Doc2Vec; every static ``train`` command's defaults
equal its Python class's, or its ``--help`` names the difference."""

import argparse
import inspect

import numpy as np
import pytest

from word2bert.cli import build_parser
from word2bert.errors import Word2BertError
from word2bert.static.classifier import FastTextClassifier
from word2bert.static.doc2vec import Doc2Vec
from word2bert.static.fasttext import FastText
from word2bert.static.glove import GloVe
from word2bert.static.word2vec import Word2Vec

from test_doc2vec import planted_documents
from test_fasttext import SMALL as FASTTEXT_SMALL
from test_fasttext import planted_corpus as fasttext_corpus
from test_word2vec import SMALL as WORD2VEC_SMALL
from test_word2vec import planted_corpus as word2vec_corpus


@pytest.mark.parametrize("model_class, corpus, settings, vectors", [
    (Word2Vec, word2vec_corpus(150), dict(WORD2VEC_SMALL, workers=1, epochs=2, seed=4), "wv"),
    (FastText, fasttext_corpus(100), dict(FASTTEXT_SMALL, workers=1, epochs=2, progress=False), "wv"),
    (Doc2Vec, planted_documents()[:60], dict(vector_size=24, min_count=1, epochs=2, sample=0, workers=1, seed=1,
                                             progress=False, dm=0), "dv"),
], ids=["Word2Vec", "FastText", "Doc2Vec"])
def test_corpus_iterable_is_the_corpus_under_gensim_4s_name(model_class, corpus, settings, vectors):
    """One worker: the jobs run in order, so the same corpus under either name gives the same model."""
    positional = model_class(corpus, **settings)
    named = model_class(corpus_iterable=corpus, **settings)
    stepwise = model_class(**settings)
    stepwise.build_vocab(corpus_iterable=corpus)
    stepwise.train(corpus_iterable=corpus, total_examples=len(corpus), epochs=settings["epochs"])
    expected = getattr(positional, vectors).vectors
    assert np.abs(expected).sum() > 0
    np.testing.assert_array_equal(getattr(named, vectors).vectors, expected)
    np.testing.assert_array_equal(getattr(stepwise, vectors).vectors, expected)
    with pytest.raises(Word2BertError, match="not both"):
        model_class(corpus, corpus_iterable=corpus, **settings)


def subcommand(parser, *names):
    for name in names:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


@pytest.mark.parametrize("command, model_class", [
    ("word2vec", Word2Vec), ("fasttext", FastText), ("classifier", FastTextClassifier), ("doc2vec", Doc2Vec),
    ("glove", GloVe)])
def test_cli_defaults_are_pythons_or_the_help_says_how_they_differ(command, model_class):
    parser = subcommand(build_parser(), "train", command)
    parameters = inspect.signature(model_class.__init__).parameters
    compared = 0
    for action in parser._actions:
        if action.dest not in parameters or action.default is argparse.SUPPRESS:
            continue
        compared += 1
        python_default = parameters[action.dest].default
        if action.default != python_default:
            assert f"Python's {model_class.__name__}()" in (action.help or ""), (
                f"train {command} {action.option_strings[0]}: default {action.default!r}, "
                f"{model_class.__name__}({action.dest}={python_default!r}), and --help does not say so")
            assert f"Python's {model_class.__name__}()" in parser.description
    assert compared >= 5
