"""Streaming text readers: one sentence or document per line, whitespace tokens.

Plain, .gz, .bz2 and .xz files are read the same way; undecodable bytes become U+FFFD
(never fatal); lines longer than ``max_sentence_length`` tokens are split into chunks of
that many tokens, as word2vec.c does with its 1000-word sentences.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from word2bert.errors import Word2BertError
from word2bert.fileio import open_text

MAX_SENTENCE_LENGTH = 10000  # gensim's MAX_WORDS_IN_BATCH; word2vec.c uses 1000


def split_long(tokens: list[str], max_sentence_length: int) -> Iterator[list[str]]:
    """Yield ``tokens`` in consecutive chunks of at most ``max_sentence_length``."""
    if len(tokens) <= max_sentence_length:
        yield tokens
        return
    for start in range(0, len(tokens), max_sentence_length):
        yield tokens[start : start + max_sentence_length]


def iter_sentences(
    path, lowercase: bool = False, max_sentence_length: int = MAX_SENTENCE_LENGTH
) -> Iterator[list[str]]:
    """Yield the whitespace tokens of each non-empty line of ``path`` (chunked if long)."""
    if max_sentence_length < 1:
        raise Word2BertError(f"parameter max_sentence_length={max_sentence_length} must be >= 1")
    with open_text(path) as handle:
        for line in handle:
            if lowercase:
                line = line.lower()
            tokens = line.split()
            if tokens:
                yield from split_long(tokens, max_sentence_length)


class LineSentence:
    """A re-iterable corpus over a text file, as gensim's ``LineSentence``.

    Iterating it several times re-reads the file each time; use ``EncodedCorpus`` to read
    it once and reuse the ids for every epoch.
    """

    def __init__(self, source, max_sentence_length: int = MAX_SENTENCE_LENGTH, lowercase: bool = False):
        self.source = Path(source)
        if not self.source.exists():
            raise Word2BertError(f"file not found: {self.source}")
        self.max_sentence_length = max_sentence_length
        self.lowercase = lowercase

    def __iter__(self) -> Iterator[list[str]]:
        return iter_sentences(self.source, self.lowercase, self.max_sentence_length)


def as_sentences(sentences: Iterable | None, corpus_file=None, lowercase: bool = False,
                 max_sentence_length: int = MAX_SENTENCE_LENGTH) -> Iterable[list[str]]:
    """Return a re-iterable corpus from either an iterable of token lists or a file path.

    Exactly one of ``sentences`` and ``corpus_file`` must be given. A bare string given as
    ``sentences`` is a common mistake (it would iterate characters) and is refused.
    """
    if (sentences is None) == (corpus_file is None):
        raise Word2BertError("give exactly one of sentences= and corpus_file=")
    if corpus_file is not None:
        return LineSentence(corpus_file, max_sentence_length=max_sentence_length, lowercase=lowercase)
    if isinstance(sentences, (str, bytes)):
        raise Word2BertError("sentences must be an iterable of token lists, not a string; "
                             "use corpus_file= for a path")
    if iter(sentences) is sentences:
        raise Word2BertError("sentences is a one-shot iterator; give a list or a re-iterable corpus "
                             "(e.g. LineSentence) since it is read more than once")
    return sentences
