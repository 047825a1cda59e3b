"""Evaluation of word vectors: word-pair similarity and analogies, with bundled benchmark sets.

``evaluate_word_pairs(kv)`` scores the bundled WordSim353, ``evaluate_word_analogies(kv)`` the
bundled Google analogy set (see ``data/SOURCES.md``); both accept any file of the same shape.
"""

from word2bert.evaluate.analogy import GOOGLE_ANALOGIES, METHODS, evaluate_word_analogies, read_analogies
from word2bert.evaluate.similarity import WORDSIM353, evaluate_word_pairs, read_word_pairs

__all__ = ["evaluate_word_pairs", "evaluate_word_analogies", "read_word_pairs", "read_analogies",
           "WORDSIM353", "GOOGLE_ANALOGIES", "METHODS"]
