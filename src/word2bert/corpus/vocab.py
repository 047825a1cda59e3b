"""Vocabulary: one counting pass, ``min_count``, ``max_vocab_size`` pruning, frequency order.

Ids are assigned in order of decreasing count (ties broken by first appearance, as a stable
sort gives), which is what word2vec.c and gensim do and what the negative-sampling table
and the Huffman tree expect. Saved and loaded as ``word count`` lines (word2vec.c's
``-save-vocab`` format).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from word2bert.errors import UnknownWordError, Word2BertError
from word2bert.fileio import atomic_write, open_text


def sentence_is_a_string(number: int, sentence) -> str:
    """The message for a corpus whose sentences are strings (iterating one would give characters)."""
    return (f"sentence {number} of the corpus is a string ({str(sentence)[:40]!r}), not a list of tokens: "
            "a string would be read character by character; split the texts first "
            "([text.split() for text in texts]) or give corpus_file= for a text file")


class Vocabulary:
    """Words sorted by decreasing count, with ``counts[i]`` the corpus count of ``words[i]``."""

    def __init__(self, words: list[str], counts):
        counts = np.asarray(counts, dtype=np.int64)
        if len(words) != len(counts):
            raise Word2BertError(f"vocabulary has {len(words)} words but {len(counts)} counts")
        self.words = list(words)
        self.counts = counts
        self.index = {word: i for i, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise Word2BertError("vocabulary contains duplicate words")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_counter(cls, counter: Counter | dict, min_count: int = 5, max_vocab_size: int | None = None):
        """Keep words with count >= ``min_count``, then at most ``max_vocab_size`` of the most frequent."""
        items = [(w, c) for w, c in counter.items() if c >= min_count]
        items.sort(key=lambda wc: -wc[1])  # stable: ties keep first-seen order
        if max_vocab_size is not None:
            items = items[:max_vocab_size]
        return cls([w for w, _ in items], [c for _, c in items])

    @classmethod
    def build(cls, sentences: Iterable[list[str]], min_count: int = 5, max_vocab_size: int | None = None,
              prune_at: int | None = None, progress=None):
        """Count words in one pass over ``sentences``.

        When ``max_vocab_size`` is given the running table is pruned as word2vec.c does
        (``ReduceVocab``): whenever it holds more than ``prune_at`` (default
        ``10 * max_vocab_size``) entries, words with count <= ``min_reduce`` are dropped and
        ``min_reduce`` grows by one, which bounds memory on huge corpora at the price of
        undercounting rare words.
        """
        if min_count < 1:
            raise Word2BertError(f"parameter min_count={min_count} must be >= 1")
        if max_vocab_size is not None and max_vocab_size < 1:
            raise Word2BertError(f"parameter max_vocab_size={max_vocab_size} must be >= 1")
        if prune_at is None and max_vocab_size is not None:
            prune_at = 10 * max_vocab_size
        counter: Counter = Counter()
        min_reduce = 1
        total = 0
        for number, sentence in enumerate(sentences):
            if isinstance(sentence, (str, bytes)):
                raise Word2BertError(sentence_is_a_string(number, sentence))
            counter.update(sentence)
            total += len(sentence)
            if progress is not None:
                progress.update(len(sentence))
            if prune_at is not None and len(counter) > prune_at:
                counter = Counter({w: c for w, c in counter.items() if c > min_reduce})
                min_reduce += 1
        if total == 0:
            raise Word2BertError("the corpus is empty: no tokens were read")
        vocab = cls.from_counter(counter, min_count=min_count, max_vocab_size=max_vocab_size)
        vocab.raw_total_words = total
        if len(vocab) == 0:
            raise Word2BertError(
                f"no word occurs at least min_count={min_count} times in the corpus ({total} tokens); "
                "lower min_count")
        return vocab

    # -- queries ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return word in self.index

    @property
    def total_words(self) -> int:
        """Sum of the counts of in-vocabulary words."""
        return int(self.counts.sum())

    def lookup(self, word: str) -> int:
        """The id of ``word``; a clear error if it is not in the vocabulary (:class:`UnknownWordError`, also a
        ``KeyError``, as gensim code expects)."""
        try:
            return self.index[word]
        except KeyError:
            raise UnknownWordError(word) from None

    # -- files --------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write ``word count`` lines, most frequent first (word2vec.c's -save-vocab)."""
        with atomic_write(path, "w", encoding="utf-8") as out:
            for word, count in zip(self.words, self.counts.tolist()):
                out.write(f"{word} {count}\n")

    @classmethod
    def load(cls, path):
        """Read ``word count`` lines (the counts need not be sorted; they are re-sorted)."""
        words, counts = [], []
        with open_text(path) as handle:
            for line_number, line in enumerate(handle, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2:
                    raise Word2BertError(f"{path}:{line_number}: expected 'word count', got {line.strip()[:60]!r}")
                try:
                    count = int(parts[1])
                except ValueError:
                    raise Word2BertError(f"{path}:{line_number}: count {parts[1]!r} is not an integer") from None
                words.append(parts[0])
                counts.append(count)
        if not words:
            raise Word2BertError(f"vocabulary file is empty: {path}")
        order = np.argsort(-np.asarray(counts, dtype=np.int64), kind="stable")
        return cls([words[i] for i in order], np.asarray(counts, dtype=np.int64)[order])
