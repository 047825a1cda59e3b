"""Word-level language-modelling text: one sentence per line, whitespace tokens (the PTB layout).

The vocabulary is a :class:`~word2bert.corpus.vocab.Vocabulary` that always holds ``<unk>``
(every out-of-vocabulary token maps to it) and ``<eos>`` (the end of every line, a word the
model predicts, as in Mikolov's PTB setup: 887,521 words + 42,068 lines = 929,589 tokens).
Files encode to int32 ids with sentence offsets; :func:`token_stream` appends ``<eos>`` to every
sentence and concatenates them, the input of recurrent language models.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from word2bert.corpus.encoded import EncodedCorpus
from word2bert.corpus.vocab import Vocabulary
from word2bert.errors import Word2BertError
from word2bert.fileio import open_text

UNK = "<unk>"
EOS = "<eos>"
VOCAB_FILE = "word_vocab.txt"   # the vocabulary beside a word-level language model (``word count`` lines)


def _lines(path):
    path = Path(path)
    if not path.is_file():
        raise Word2BertError(f"file not found: {path}")
    with open_text(path) as handle:
        for line in handle:
            tokens = line.split()
            if tokens:
                yield tokens


def build_lm_vocabulary(path, min_count: int = 1, max_vocab_size: int | None = None) -> Vocabulary:
    """Count the words of ``path``; keep those with ``count >= min_count`` (at most ``max_vocab_size``
    of them), plus ``<eos>`` (count: the number of lines) and ``<unk>`` (count: the tokens dropped)."""
    if min_count < 1:
        raise Word2BertError(f"parameter min_count={min_count} must be >= 1")
    counter: Counter = Counter()
    lines = 0
    for tokens in _lines(path):
        counter.update(tokens)
        lines += 1
    if lines == 0:
        raise Word2BertError(f"{path}: no tokens (the file is empty)")
    eos_seen, unk_seen = counter.pop(EOS, 0), counter.pop(UNK, 0)
    limit = None if max_vocab_size is None else max(max_vocab_size - 2, 1)
    vocab = Vocabulary.from_counter(counter, min_count=min_count, max_vocab_size=limit)
    dropped = sum(counter.values()) - vocab.total_words
    words = vocab.words + [EOS, UNK]
    counts = np.concatenate([vocab.counts, [lines + eos_seen, unk_seen + dropped]])
    order = np.argsort(-counts, kind="stable")
    return Vocabulary([words[i] for i in order], counts[order])


def check_lm_vocabulary(vocab: Vocabulary, source="the vocabulary") -> None:
    """A language-model vocabulary must hold ``<unk>`` and ``<eos>``."""
    missing = [w for w in (UNK, EOS) if w not in vocab]
    if missing:
        raise Word2BertError(f"{source} lacks {' and '.join(missing)}: a language-model vocabulary needs both")


def encode_lines(path, vocab: Vocabulary) -> EncodedCorpus:
    """The ids of every non-empty line of ``path`` (unknown words -> ``<unk>``), without ``<eos>``."""
    check_lm_vocabulary(vocab)
    unk = vocab.index[UNK]
    index = vocab.index
    ids, lengths = [], []
    for tokens in _lines(path):
        ids.extend([index.get(token, unk) for token in tokens])
        lengths.append(len(tokens))
    if not lengths:
        raise Word2BertError(f"{path}: no tokens (the file is empty)")
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return EncodedCorpus(np.asarray(ids, dtype=np.int32), offsets)


def token_stream(corpus: EncodedCorpus, eos_id: int) -> np.ndarray:
    """All sentences, each followed by ``eos_id``, as one int64 array."""
    lengths = np.diff(corpus.offsets)
    stream = np.full(len(corpus.tokens) + len(lengths), eos_id, dtype=np.int64)
    keep = np.ones(len(stream), dtype=bool)
    keep[np.cumsum(lengths + 1) - 1] = False            # the <eos> slots
    stream[keep] = corpus.tokens
    return stream
