"""Streaming text readers: one sentence or document per line, whitespace tokens.

Plain, .gz, .bz2 and .xz files are read the same way; lines longer than ``max_sentence_length``
tokens are split into chunks of that many tokens, as word2vec.c does with its 1000-word sentences.
:func:`read_text` checks what it reads: a file that is mostly not text (a binary given by mistake,
UTF-16) is refused before it is read, and undecodable bytes in a text file become U+FFFD and are
counted in a warning (:mod:`word2bert.corpus.scan`, whose compiled reader does the same).
"""

from __future__ import annotations

import codecs
import contextlib
import io
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from word2bert.errors import Word2BertError
from word2bert.fileio import open_binary

MAX_SENTENCE_LENGTH = 10000  # gensim's MAX_WORDS_IN_BATCH; word2vec.c uses 1000


_counts = threading.local()


def _count_undecodable(error: UnicodeDecodeError):
    """A codecs error handler: U+FFFD like ``errors="replace"``, counting the bytes it replaces."""
    _counts.value = getattr(_counts, "value", 0) + (error.end - error.start)
    return "\ufffd", error.end


codecs.register_error("word2bert.count", _count_undecodable)


def sniff_text(path, size: int = 1 << 16):
    """Refuse a file whose first ``size`` bytes are mostly not text (:func:`word2bert.corpus.scan.check_text`)."""
    import numpy as np

    from word2bert.corpus.scan import TextStats, check_text

    with open_binary(path) as handle:
        head = handle.read(size)
    data = np.frombuffer(head, np.uint8)
    control = int(np.count_nonzero(((data < 0x20) & ~np.isin(data, (9, 10, 11, 12, 13, 28, 29, 30, 31)))
                                   | (data == 0x7F)))
    sample = head if len(head) < size else head[:-3]  # a character cut at the end of the sample is no error
    undecodable = len(sample) - len(sample.decode("utf-8", "ignore").encode("utf-8"))
    stats = TextStats(head.count(b"\n"), len(head), undecodable, 0, control)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the whole file is counted while it is read
        check_text(path, stats, head[:4])


@contextlib.contextmanager
def read_text(path):
    """Open ``path`` as text (plain, .gz, .bz2, .xz; universal newlines) after :func:`sniff_text`; on
    closing, a warning counts the bytes that were not UTF-8 (read as U+FFFD)."""
    sniff_text(path)
    before = getattr(_counts, "value", 0)
    handle = io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="word2bert.count", newline=None)
    try:
        with handle:
            yield handle
    finally:
        replaced = getattr(_counts, "value", 0) - before
        if replaced:
            warnings.warn(f"{path}: {replaced:,} bytes are not UTF-8 (read as U+FFFD; a Latin-1 file?)",
                          UnicodeWarning, stacklevel=3)


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
    with read_text(path) as handle:
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
