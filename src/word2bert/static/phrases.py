"""Phrase detection: word2vec.c's ``word2phrase`` and gensim's ``Phrases`` (Mikolov et al. 2013, section 4).

Adjacent words ``a b`` that occur together more often than chance become one token ``a_b``.
A candidate is scored from corpus counts and kept when its score is strictly above
``threshold``:

* ``scoring="default"`` (gensim's ``original_scorer``, word2vec.c's formula with gensim's scale):
  ``score = (count(ab) - min_count) / (count(a) * count(b)) * len_vocab``, where ``len_vocab``
  is the number of distinct unigrams *and* bigrams counted (gensim's ``len(vocab)``).
  ``min_count`` is the discount ``delta`` of the paper.
* ``scoring="word2phrase"`` (word2vec.c's ``word2phrase``): the same discounted ratio scaled by
  the number of tokens read, ``(count(ab) - min_count) / count(a) / count(b) * train_words``,
  and 0 when ``count(a)``, ``count(b)`` or ``count(ab)`` is below ``min_count`` (word2phrase drops
  those entries from its vocabulary). word2phrase computes in float32; we compute in float64.
* ``scoring="npmi"`` (gensim's ``npmi_scorer``, Bouma 2009): with ``p(x) = count(x) / N`` for
  ``N`` tokens read, ``npmi = ln(p(ab) / (p(a) p(b))) / -ln(p(ab))`` in [-1, 1], and ``-inf``
  when ``count(ab) < min_count``.
* a callable with gensim's keyword arguments (``worda_count, wordb_count, bigram_count,
  len_vocab, min_count, corpus_word_count``); here it receives numpy arrays (one entry per
  candidate) and returns an array of scores.

``connector_words`` (gensim 4) may sit inside a phrase but never start or end one:
``bank of america`` is the candidate ``(bank, [of], america)`` counted as ``bank_of_america``.
Connector words are not counted as unigrams. Applying a model walks each sentence left to
right and joins greedily: once ``a b`` is joined, ``b`` cannot also start the next phrase, so
one pass makes bigrams; a second pass over the phrased corpus makes phrases of up to four
words (word2vec.c's demo runs two passes with thresholds 200 and 100), see
:class:`PhrasePipeline` and :func:`learn_phrases`.

Speed: counting maps tokens to ids with a C-level dict pass, then counts unigrams with
``np.bincount`` and candidates with a sort over 64-bit keys; applying a model to a corpus runs a
compiled kernel. No Python loop runs per token in either (the per-sentence
:meth:`analyze_sentence` is gensim's loop, for single sentences).

Where this differs from gensim, on purpose:

* gensim prunes its count table (``max_vocab_size``) after any sentence that makes it too large;
  we prune after merging a chunk of about a million tokens (same rule: drop counts below
  ``min_reduce``, then raise ``min_reduce``), so pruning happens at slightly different moments.
* gensim's ``export_phrases``/``FrozenPhrases`` re-split every counted key on the delimiter and
  score ``(first, last)``, which disagrees with its own ``Phrases[...]`` once tokens contain the
  delimiter (a second pass); we score every candidate by its actual ``(a, connectors, b)``, as
  ``Phrases[...]`` does, so a frozen model transforms exactly as the full one.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numba
import numpy as np

from word2bert.corpus.reader import MAX_SENTENCE_LENGTH, iter_sentences
from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save, atomic_write, open_text

ENGLISH_CONNECTOR_WORDS = frozenset(
    ["a", "an", "the", "for", "of", "with", "without", "at", "from", "to", "in", "on", "by", "and", "or"])  # gensim's set

CHUNK_TOKENS = 1 << 20  # tokens counted per vectorised chunk
_ID_BITS = 32  # a candidate key is (id(a) << 32) | id(b)
_MAX_CODE = 1 << 62


# ---------------------------------------------------------------------------------- scoring
def original_scorer(worda_count, wordb_count, bigram_count, len_vocab, min_count, corpus_word_count):
    """``(count(ab) - min_count) / (count(a) * count(b)) * len_vocab``; ``-inf`` when a count is 0."""
    worda_count = np.asarray(worda_count, dtype=np.float64)
    denominator = worda_count * np.asarray(wordb_count, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = (np.asarray(bigram_count, dtype=np.float64) - min_count) / denominator * len_vocab
    return np.where(denominator == 0, -np.inf, score)


def word2phrase_scorer(worda_count, wordb_count, bigram_count, len_vocab, min_count, corpus_word_count):
    """word2vec.c: ``(count(ab) - min_count) / count(a) / count(b) * train_words``, 0 if any count < min_count."""
    a = np.asarray(worda_count, dtype=np.float64)
    b = np.asarray(wordb_count, dtype=np.float64)
    ab = np.asarray(bigram_count, dtype=np.float64)
    rare = (a < min_count) | (b < min_count) | (ab < min_count)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = (ab - min_count) / a / b * float(corpus_word_count)
    return np.where(rare, 0.0, score)


def npmi_scorer(worda_count, wordb_count, bigram_count, len_vocab, min_count, corpus_word_count):
    """``ln(p(ab) / (p(a) p(b))) / -ln(p(ab))`` with ``p(x) = count(x) / N``; ``-inf`` below ``min_count``."""
    total = float(corpus_word_count)
    pa = np.asarray(worda_count, dtype=np.float64) / total
    pb = np.asarray(wordb_count, dtype=np.float64) / total
    bigram_count = np.asarray(bigram_count, dtype=np.float64)
    pab = bigram_count / total
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.log(pab / (pa * pb)) / -np.log(pab)
    score = np.where(np.isfinite(score), score, -np.inf)
    return np.where(bigram_count >= min_count, score, -np.inf)


SCORERS: dict[str, Callable] = {"default": original_scorer, "word2phrase": word2phrase_scorer,
                                "npmi": npmi_scorer}


def _resolve_scoring(scoring, threshold):
    if callable(scoring):
        return scoring
    if scoring not in SCORERS:
        raise Word2BertError(f"parameter scoring={scoring!r} must be one of {', '.join(SCORERS)} or a function")
    if scoring == "npmi" and not -1.0 <= threshold <= 1.0:
        raise Word2BertError(f"parameter threshold={threshold} must be in [-1, 1] for npmi scoring")
    if scoring != "npmi" and threshold <= 0:
        raise Word2BertError(f"parameter threshold={threshold} must be > 0 for {scoring} scoring")
    return SCORERS[scoring]


# ---------------------------------------------------------------------------------- kernels
@numba.njit(nogil=True, cache=True)
def _accepted(keys, mids, key, mid):
    """Whether ``(key, mid)`` is in the table sorted by ``(keys, mids)``."""
    low = np.searchsorted(keys, key)
    while low < keys.shape[0] and keys[low] == key:
        if mids[low] == mid:
            return True
        low += 1
    return False


@numba.njit(nogil=True, cache=True)
def _join_kernel(ids, offsets, n_connectors, base, max_gap, keys, mids, phrase_start, phrase_length,
                 needs_python):
    """Greedy left-to-right joining of every sentence (gensim's ``analyze_sentence``).

    ``ids`` are token ids (-1: unknown; ``0 <= id < n_connectors``: a connector word); sentence
    ``s`` is ``ids[offsets[s]:offsets[s + 1]]``. Writes the input span ``(phrase_start,
    phrase_length)`` of every joined phrase and returns their number. A sentence with a run of
    connectors longer than ``max_gap`` (no numeric code) is flagged in ``needs_python``.
    """
    count = 0
    for sentence in range(offsets.shape[0] - 1):
        start = -1  # position of the word that may start a phrase
        for i in range(offsets[sentence], offsets[sentence + 1]):
            word = ids[i]
            if 0 <= word < n_connectors:
                continue  # connectors sit between start and the next word
            if start >= 0:
                gap = i - start - 1
                if gap > max_gap:
                    needs_python[sentence] = True
                elif ids[start] >= 0 and word >= 0:
                    mid = np.int64(0)
                    for j in range(start + 1, i):
                        mid = mid * base + ids[j] + 1
                    key = (np.int64(ids[start]) << 32) | np.int64(word)
                    if _accepted(keys, mids, key, mid):
                        phrase_start[count] = start
                        phrase_length[count] = i - start + 1
                        count += 1
                        start = -1
                        continue
            start = i
    return count


def _group_counts(keys: np.ndarray, mids: np.ndarray, counts: np.ndarray):
    """Sum ``counts`` over equal ``(keys, mids)``; returns the distinct pairs and their sums.

    Pairs without connectors in between (``mid == 0``, most of them) are grouped by one sort
    of ``keys``; the others by a sort on both columns.
    """
    plain = mids == 0
    groups = []
    for part in (plain, ~plain):
        part_keys, part_mids, part_counts = keys[part], mids[part], counts[part]
        if len(part_keys) == 0:
            continue
        if part is plain:
            order = np.argsort(part_keys)
        else:
            order = np.lexsort((part_mids, part_keys))
        part_keys, part_mids, part_counts = part_keys[order], part_mids[order], part_counts[order]
        first = np.ones(len(part_keys), dtype=bool)
        first[1:] = (part_keys[1:] != part_keys[:-1]) | (part_mids[1:] != part_mids[:-1])
        starts = np.flatnonzero(first)
        groups.append((part_keys[starts], part_mids[starts], np.add.reduceat(part_counts, starts)))
    if not groups:
        return keys, mids, counts
    return tuple(np.concatenate(column) for column in zip(*groups))


def _chunks(sentences: Iterable[Sequence[str]], chunk_tokens: int = CHUNK_TOKENS) -> Iterator[list]:
    chunk, size = [], 0
    for sentence in sentences:
        if isinstance(sentence, str):
            raise Word2BertError("sentences must be lists of tokens, not strings (split them first)")
        chunk.append(sentence)
        size += len(sentence)
        if size >= chunk_tokens:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


# ---------------------------------------------------------------------------------- applying
class PhraseTransformer:
    """What every phrase model shares: a table of accepted candidates and the ways to apply it.

    ``phrases[sentence]`` (a list of tokens) returns the phrased list; ``phrases[corpus]`` (an
    iterable of token lists) returns a re-iterable phrased corpus (compiled kernel, in chunks).
    The table holds ``(a, connector..., b) -> score`` for every candidate whose score is above
    the threshold.
    """

    delimiter: str
    connector_words: frozenset
    threshold: float

    def _table(self) -> dict[tuple, float]:
        raise NotImplementedError

    # -------------------------------------------------------------- one sentence (Python)
    def analyze_sentence(self, sentence: Sequence[str]) -> Iterator[tuple[str, float | None]]:
        """Yield ``(token, None)`` for words left alone and ``(phrase, score)`` for joined phrases."""
        for start, length, score in self._analyze_spans(sentence):
            if length == 1:
                yield sentence[start], None
            else:
                yield self.delimiter.join(sentence[start:start + length]), score

    def _analyze_spans(self, sentence: Sequence[str]) -> Iterator[tuple[int, int, float | None]]:
        table = self._table()
        connectors = self.connector_words
        start = -1
        for i, word in enumerate(sentence):
            if word in connectors:
                if start < 0:
                    yield i, 1, None
                continue
            if start >= 0:
                score = table.get(tuple(sentence[start:i + 1]))
                if score is not None:
                    yield start, i - start + 1, score
                    start = -1
                    continue
                for j in range(start, i):
                    yield j, 1, None
            start = i
        if start >= 0:
            for j in range(start, len(sentence)):
                yield j, 1, None

    def phrase_spans(self, sentence: Sequence[str]) -> list[tuple[int, int]]:
        """``(start, end)`` word ranges (end exclusive) of the output tokens of ``sentence``."""
        return [(start, start + length) for start, length, _ in self._analyze_spans(list(sentence))]

    def __getitem__(self, sentence):
        """A phrased sentence (list of tokens in) or a phrased corpus (iterable of lists in)."""
        if isinstance(sentence, str):
            raise Word2BertError("give a list of tokens (or a corpus of token lists), not a string")
        if isinstance(sentence, (list, tuple)) and (not sentence or isinstance(sentence[0], str)):
            return [token for token, _ in self.analyze_sentence(sentence)]
        return TransformedCorpus(self, sentence)

    def find_phrases(self, sentences: Iterable[Sequence[str]]) -> dict[str, float]:
        """The phrases joined in ``sentences`` with their scores."""
        found = {}
        for sentence in sentences:
            for token, score in self.analyze_sentence(sentence):
                if score is not None:
                    found[token] = score
        return found

    def export_phrases(self) -> dict[str, float]:
        """Every accepted phrase (joined with the delimiter) and its score."""
        exported: dict[str, float] = {}
        for words, score in self._table().items():
            phrase = self.delimiter.join(words)
            exported[phrase] = max(score, exported.get(phrase, -math.inf))
        return exported

    # -------------------------------------------------------------- a corpus (compiled)
    def _kernel_tables(self):
        """(index, n_connectors, base, max_gap, keys, mids) for :func:`_join_kernel`."""
        cached = getattr(self, "_kernel_cache", None)
        if cached is not None:
            return cached
        index: dict[str, int] = {}
        for word in sorted(self.connector_words):
            index[word] = len(index)
        table = self._table()
        for words in table:
            for word in (words[0], words[-1]):
                if word not in index:
                    index[word] = len(index)
        n_connectors = len(self.connector_words)
        base, max_gap = _mid_code_limits(n_connectors)
        keys = np.empty(len(table), dtype=np.int64)
        mids = np.empty(len(table), dtype=np.int64)
        kept = 0
        for words in table:
            gap = len(words) - 2
            if gap > max_gap:
                continue  # found by the Python path of sentences flagged by the kernel
            mid = 0
            for word in words[1:-1]:
                mid = mid * base + index[word] + 1
            keys[kept] = (index[words[0]] << _ID_BITS) | index[words[-1]]
            mids[kept] = mid
            kept += 1
        order = np.lexsort((mids[:kept], keys[:kept]))
        cached = (index, n_connectors, base, max_gap, keys[:kept][order].copy(), mids[:kept][order].copy())
        self._kernel_cache = cached
        return cached

    def transform_chunk(self, sentences: list[Sequence[str]]) -> list[list[str]]:
        """Phrase a list of sentences with the compiled kernel (same output as ``self[s]`` for each)."""
        if not sentences:
            return []
        index, n_connectors, base, max_gap, keys, mids = self._kernel_tables()
        flat = list(itertools.chain.from_iterable(sentences))
        lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
        offsets = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        get = index.get
        ids = np.fromiter(map(get, flat, itertools.repeat(-1)), dtype=np.int64, count=len(flat))
        phrase_start = np.empty(len(flat) // 2 + 1, dtype=np.int64)
        phrase_length = np.empty(len(flat) // 2 + 1, dtype=np.int64)
        needs_python = np.zeros(len(sentences), dtype=np.bool_)
        count = _join_kernel(ids, offsets, n_connectors, base, max_gap, keys, mids, phrase_start,
                             phrase_length, needs_python)
        result = [list(sentence) for sentence in sentences]
        starts = phrase_start[:count]
        sentence_of = np.searchsorted(offsets, starts, side="right") - 1
        delimiter = self.delimiter
        # one step per phrase, not per token; from the right so that earlier positions stay valid
        for start, length, s in zip(starts[::-1].tolist(), phrase_length[:count][::-1].tolist(),
                                    sentence_of[::-1].tolist()):
            local = start - int(offsets[s])
            result[s][local:local + length] = [delimiter.join(flat[start:start + length])]
        for s in np.flatnonzero(needs_python):
            result[s] = self[list(sentences[s])]
        return result

    def transform_file(self, source, output, progress=None, lowercase: bool = False) -> tuple[int, int]:
        """Phrase a text file line by line into ``output`` (written atomically).

        Returns ``(tokens read, tokens written)``.
        """
        read = written = 0
        with atomic_write(output, "w", encoding="utf-8") as out:
            for chunk in _chunks(iter_sentences(source, lowercase=lowercase,
                                                max_sentence_length=MAX_SENTENCE_LENGTH)):
                phrased = self.transform_chunk(chunk)
                out.write("\n".join(" ".join(sentence) for sentence in phrased))
                out.write("\n")
                n = sum(map(len, chunk))
                read += n
                written += sum(map(len, phrased))
                if progress is not None:
                    progress.update(n)
        return read, written


def _mid_code_limits(n_connectors: int) -> tuple[int, int]:
    """Base and longest connector run for numeric codes ``sum (id_j + 1) base^k`` below 2^62."""
    base = n_connectors + 1
    if n_connectors == 0:
        return base, 0
    max_gap = 0
    while base ** (max_gap + 1) < _MAX_CODE:
        max_gap += 1
    return base, max_gap


class TransformedCorpus:
    """A re-iterable phrased corpus: ``transformer[corpus]``; phrased in chunks by the kernel."""

    def __init__(self, transformer: PhraseTransformer, corpus: Iterable[Sequence[str]]):
        self.transformer = transformer
        self.corpus = corpus

    def __iter__(self) -> Iterator[list[str]]:
        for chunk in _chunks(self.corpus):
            yield from self.transformer.transform_chunk(chunk)


# ---------------------------------------------------------------------------------- counting
class Phrases(PhraseTransformer):
    """Learn phrases from unigram and bigram counts (gensim's ``Phrases``, word2vec.c's ``word2phrase``).

    ``Phrases(sentences, min_count=5, threshold=10.0, scoring="default", delimiter="_",
    connector_words=frozenset())`` with gensim's names and defaults; ``corpus_file=`` reads a
    text file instead (one sentence per line, whitespace tokens). ``add_vocab`` counts more
    sentences; ``freeze()`` keeps only the accepted phrases.
    """

    def __init__(self, sentences=None, min_count: float = 5, threshold: float = 10.0,
                 max_vocab_size: int = 40_000_000, delimiter: str = "_", scoring="default",
                 connector_words: Iterable[str] = frozenset(), corpus_file=None, progress=None):
        if min_count <= 0:
            raise Word2BertError(f"parameter min_count={min_count} must be >= 1")
        if not isinstance(delimiter, str) or not delimiter:
            raise Word2BertError(f"parameter delimiter={delimiter!r} must be a non-empty string")
        if max_vocab_size < 1:
            raise Word2BertError(f"parameter max_vocab_size={max_vocab_size} must be >= 1")
        self.scoring = _resolve_scoring(scoring, threshold)
        self.scoring_name = scoring if isinstance(scoring, str) else getattr(scoring, "__name__", "custom")
        self.min_count = min_count
        self.threshold = float(threshold)
        self.max_vocab_size = int(max_vocab_size)
        self.delimiter = delimiter
        self.connector_words = frozenset(connector_words)
        self.corpus_word_count = 0
        self.min_reduce = 1
        # connector words take ids 0..C-1 so the kernels tell them by id
        self._index: dict[str, int] = {w: i for i, w in enumerate(sorted(self.connector_words))}
        self._words: list[str] = list(self._index)
        self._unigram_counts = np.zeros(len(self._words), dtype=np.int64)
        self._base, self._max_gap = _mid_code_limits(len(self.connector_words))
        self._long_mids: dict[tuple, int] = {}  # connector runs too long for a numeric code -> -(k+1)
        self._keys = np.zeros(0, dtype=np.int64)   # (id(a) << 32) | id(b), sorted with _mids
        self._mids = np.zeros(0, dtype=np.int64)   # code of the connectors in between (0: none)
        self._counts = np.zeros(0, dtype=np.int64)
        self._accepted_table: dict[tuple, float] | None = None
        self._candidate_counts = None
        if (sentences is not None) and (corpus_file is not None):
            raise Word2BertError("give sentences= or corpus_file=, not both")
        if corpus_file is not None:
            if not Path(corpus_file).exists():
                raise Word2BertError(f"file not found: {corpus_file}")
            sentences = iter_sentences(corpus_file)
        if sentences is not None:
            self.add_vocab(sentences, progress=progress)

    def __repr__(self) -> str:
        return (f"Phrases<{self.vocab_size} vocab, min_count={self.min_count}, threshold={self.threshold}, "
                f"scoring={self.scoring_name}>")

    # -------------------------------------------------------------- counting
    def add_vocab(self, sentences: Iterable[Sequence[str]], progress=None) -> None:
        """Count the unigrams and candidate bigrams of ``sentences`` (added to the counts so far)."""
        if isinstance(sentences, (str, bytes)):
            raise Word2BertError("sentences must be an iterable of token lists, not a string")
        pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        pending_size = 0
        index = defaultdict(None, self._index)
        index.default_factory = index.__len__  # a new word gets the next id, inside the C loop
        for chunk in _chunks(sentences):
            n_before = len(index)
            flat = list(itertools.chain.from_iterable(chunk))
            ids = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=len(flat))
            if len(index) > n_before:
                if len(index) >= 1 << 31:
                    raise Word2BertError("more than 2^31 distinct words: too many for Phrases")
                self._words.extend(itertools.islice(index, n_before, None))
                self._unigram_counts = np.concatenate(
                    [self._unigram_counts, np.zeros(len(index) - n_before, dtype=np.int64)])
            lengths = np.fromiter(map(len, chunk), dtype=np.int64, count=len(chunk))
            self._count_chunk(ids, lengths, pending)
            pending_size += len(pending[-1][0])
            self.corpus_word_count += len(flat)
            if pending_size > max(len(self._keys), 1 << 22):
                self._merge(pending)
                pending, pending_size = [], 0
            if progress is not None:
                progress.update(len(flat))
        self._merge(pending)
        self._index = dict(index)
        self._accepted_table = self._candidate_counts = None
        self._kernel_cache = None

    def _count_chunk(self, ids: np.ndarray, lengths: np.ndarray, pending: list) -> None:
        n_connectors = len(self.connector_words)
        real = ids >= n_connectors
        self._unigram_counts += np.bincount(ids[real], minlength=len(self._unigram_counts))
        positions = np.flatnonzero(real)  # candidates pair each real word with the previous one
        sentence = np.repeat(np.arange(len(lengths)), lengths)
        previous, current = positions[:-1], positions[1:]
        same = sentence[previous] == sentence[current]
        previous, current = previous[same], current[same]
        keys = (ids[previous] << _ID_BITS) | ids[current]
        mids = np.zeros(len(keys), dtype=np.int64)
        gaps = current - previous - 1
        active = np.flatnonzero(gaps > 0)
        long_runs = active[gaps[active] > self._max_gap]
        active = active[gaps[active] <= self._max_gap]
        step = 1
        while len(active):  # one step per connector position in a gap, over the pairs still open
            mids[active] = mids[active] * self._base + ids[previous[active] + step] + 1
            active = active[gaps[active] > step]
            step += 1
        for k in long_runs:  # connector runs longer than a 64-bit code holds: rare
            run = tuple(ids[previous[k] + 1:current[k]].tolist())
            mids[k] = self._long_mids.setdefault(run, -(len(self._long_mids) + 1))
        pending.append(_group_counts(keys, mids, np.ones(len(keys), dtype=np.int64)))

    def _merge(self, pending: list) -> None:
        if not pending:
            return
        keys = np.concatenate([self._keys] + [p[0] for p in pending])
        mids = np.concatenate([self._mids] + [p[1] for p in pending])
        counts = np.concatenate([self._counts] + [p[2] for p in pending])
        self._keys, self._mids, self._counts = _group_counts(keys, mids, counts)
        if self._n_entries() > self.max_vocab_size:  # gensim's prune_vocab: drop counts < min_reduce
            keep = self._counts >= self.min_reduce
            self._keys, self._mids, self._counts = self._keys[keep], self._mids[keep], self._counts[keep]
            self._unigram_counts[self._unigram_counts < self.min_reduce] = 0
            self.min_reduce += 1

    def _n_entries(self) -> int:
        return int(np.count_nonzero(self._unigram_counts)) + len(self._keys)

    @property
    def vocab_size(self) -> int:
        """Distinct unigrams and bigram strings counted (gensim's ``len(phrases.vocab)``)."""
        return self.candidate_counts()[3]

    def word_count(self, word: str) -> int:
        """How often ``word`` was counted as a unigram (0 for connector words and unseen words)."""
        index = self._index.get(word)
        return 0 if index is None else int(self._unigram_counts[index])

    # -------------------------------------------------------------- scoring
    def _candidate_words(self, k: int) -> tuple[str, ...]:
        key, mid = int(self._keys[k]), int(self._mids[k])
        words = self._words
        if mid == 0:
            middle = ()
        elif mid < 0:
            run = list(self._long_mids)[-mid - 1]  # codes are -(insertion rank + 1)
            middle = tuple(words[i] for i in run)
        else:
            digits = []
            while mid:
                mid, digit = divmod(mid, self._base)
                digits.append(words[digit - 1])
            middle = tuple(reversed(digits))
        return (words[key >> _ID_BITS], *middle, words[key & 0xFFFFFFFF])

    def candidate_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Per counted candidate: ``count(a)``, ``count(b)``, ``count(ab)``, and ``len_vocab``.

        Counts are looked up by string as gensim's one dictionary does, so when tokens contain
        the delimiter (a second pass), ``new_york`` counted as a word and the candidate
        ``new york`` add up, as they do in gensim.
        """
        if self._candidate_counts is None:
            self._candidate_counts = self._count_candidates()
        return self._candidate_counts

    def _count_candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        a = self._unigram_counts[self._keys >> _ID_BITS]
        b = self._unigram_counts[self._keys & 0xFFFFFFFF]
        ab = self._counts
        delimiter = self.delimiter
        if not any(delimiter in word for word in self._words):
            return a, b, ab, self._n_entries()
        merged: dict[str, int] = {}  # one string table, gensim's vocab
        for word, count in zip(self._words, self._unigram_counts.tolist()):
            if count:
                merged[word] = count
        joined = [delimiter.join(self._candidate_words(k)) for k in range(len(self._keys))]
        for phrase, count in zip(joined, ab.tolist()):
            merged[phrase] = merged.get(phrase, 0) + count
        words = self._words
        a = np.array([merged.get(words[int(k) >> _ID_BITS], 0) for k in self._keys], dtype=np.int64)
        b = np.array([merged.get(words[int(k) & 0xFFFFFFFF], 0) for k in self._keys], dtype=np.int64)
        ab = np.array([merged[p] for p in joined], dtype=np.int64)
        return a, b, ab, len(merged)

    def scores(self) -> np.ndarray:
        """The score of every counted candidate (order of the internal table)."""
        a, b, ab, len_vocab = self.candidate_counts()
        scores = self.scoring(worda_count=a, wordb_count=b, bigram_count=ab, len_vocab=len_vocab,
                              min_count=self.min_count, corpus_word_count=self.corpus_word_count)
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != a.shape:
            raise Word2BertError("a custom scoring function must return one score per candidate (an array)")
        return scores

    def _table(self) -> dict[tuple, float]:
        if self._accepted_table is None:
            scores = self.scores()
            accepted = np.flatnonzero(scores > self.threshold)
            self._accepted_table = {self._candidate_words(int(k)): float(scores[k]) for k in accepted}
        return self._accepted_table

    def freeze(self) -> FrozenPhrases:
        """The accepted phrases only (small; applies exactly as this model)."""
        return FrozenPhrases(dict(self._table()), delimiter=self.delimiter,
                             connector_words=self.connector_words, threshold=self.threshold,
                             min_count=self.min_count, scoring=self.scoring_name)

    # -------------------------------------------------------------- files
    def save(self, path) -> None:
        """Save the counts and settings (``.npz``) so that more text can be counted later."""
        if not isinstance(self.scoring_name, str) or self.scoring_name not in SCORERS:
            raise Word2BertError("a Phrases model with a custom scoring function cannot be saved; "
                                 "save its freeze() instead")
        meta = {"format": "word2bert-phrases", "version": 1, "min_count": self.min_count,
                "threshold": self.threshold, "max_vocab_size": self.max_vocab_size,
                "delimiter": self.delimiter, "scoring": self.scoring_name,
                "connector_words": sorted(self.connector_words),
                "corpus_word_count": self.corpus_word_count, "min_reduce": self.min_reduce,
                "long_mids": [[list(run), code] for run, code in self._long_mids.items()]}
        words = "\n".join(self._words).encode("utf-8")
        atomic_save(path, _save_npz, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
                    words=np.frombuffer(words, dtype=np.uint8), unigram_counts=self._unigram_counts,
                    keys=self._keys, mids=self._mids, counts=self._counts)

    @classmethod
    def _from_npz(cls, archive, path) -> Phrases:
        meta = json.loads(bytes(archive["meta"]).decode("utf-8"))
        model = cls(min_count=meta["min_count"], threshold=meta["threshold"],
                    max_vocab_size=meta["max_vocab_size"], delimiter=meta["delimiter"],
                    scoring=meta["scoring"], connector_words=meta["connector_words"])
        words = bytes(archive["words"]).decode("utf-8")
        model._words = words.split("\n") if words else []
        model._index = {w: i for i, w in enumerate(model._words)}
        model._unigram_counts = np.asarray(archive["unigram_counts"], dtype=np.int64)
        model._keys = np.asarray(archive["keys"], dtype=np.int64)
        model._mids = np.asarray(archive["mids"], dtype=np.int64)
        model._counts = np.asarray(archive["counts"], dtype=np.int64)
        model._long_mids = {tuple(run): code for run, code in meta["long_mids"]}
        model.corpus_word_count = meta["corpus_word_count"]
        model.min_reduce = meta["min_reduce"]
        if len(model._unigram_counts) != len(model._words) or len(model._keys) != len(model._counts):
            raise Word2BertError(f"{path}: corrupt Phrases file (array sizes do not match)")
        return model

    @staticmethod
    def load(path) -> Phrases | FrozenPhrases | PhrasePipeline:
        """Load any phrase model saved by :meth:`save` (counts), ``FrozenPhrases.save`` or a pipeline."""
        return load_phrases(path)


def _save_npz(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


class FrozenPhrases(PhraseTransformer):
    """The accepted phrases of a :class:`Phrases` model and how to apply them (gensim's ``FrozenPhrases``)."""

    def __init__(self, table: dict[tuple, float], delimiter: str = "_", connector_words=frozenset(),
                 threshold: float = 10.0, min_count: float = 5, scoring: str = "default"):
        self._accepted_table = {tuple(k): float(v) for k, v in table.items()}
        self.delimiter = delimiter
        self.connector_words = frozenset(connector_words)
        self.threshold = float(threshold)
        self.min_count = min_count
        self.scoring_name = scoring
        self._kernel_cache = None

    def __repr__(self) -> str:
        return f"FrozenPhrases<{len(self._accepted_table)} phrases, threshold={self.threshold}>"

    def __len__(self) -> int:
        return len(self._accepted_table)

    def _table(self) -> dict[tuple, float]:
        return self._accepted_table

    def to_dict(self) -> dict:
        return {"delimiter": self.delimiter, "connector_words": sorted(self.connector_words),
                "threshold": self.threshold, "min_count": self.min_count, "scoring": self.scoring_name,
                "phrases": [[list(words), score] for words, score in self._accepted_table.items()]}

    @classmethod
    def from_dict(cls, data: dict) -> FrozenPhrases:
        return cls({tuple(words): score for words, score in data["phrases"]}, delimiter=data["delimiter"],
                   connector_words=data["connector_words"], threshold=data["threshold"],
                   min_count=data["min_count"], scoring=data["scoring"])

    def save(self, path) -> None:
        """Write the accepted phrases and settings as JSON (atomically)."""
        with atomic_write(path, "w", encoding="utf-8") as handle:
            json.dump({"format": "word2bert-frozen-phrases", "version": 1, "stages": [self.to_dict()]}, handle)

    @staticmethod
    def load(path):
        return load_phrases(path)


# ---------------------------------------------------------------------------------- several passes
class PhrasePipeline:
    """Several phrase models applied one after the other (longer phrases: word2vec.c's two passes).

    ``pipeline[sentence]``, ``pipeline[corpus]``, :meth:`transform_file` and
    :meth:`phrase_spans` (word ranges of the final tokens in the input sentence).
    """

    def __init__(self, stages: Sequence[PhraseTransformer]):
        if not stages:
            raise Word2BertError("a phrase pipeline needs at least one stage")
        self.stages = list(stages)
        self.delimiter = self.stages[-1].delimiter

    def __repr__(self) -> str:
        return f"PhrasePipeline({self.stages!r})"

    def __getitem__(self, sentence):
        if isinstance(sentence, str):
            raise Word2BertError("give a list of tokens (or a corpus of token lists), not a string")
        if isinstance(sentence, (list, tuple)) and (not sentence or isinstance(sentence[0], str)):
            for stage in self.stages:
                sentence = stage[list(sentence)]
            return sentence
        for stage in self.stages:
            sentence = TransformedCorpus(stage, sentence)
        return sentence

    def transform_chunk(self, sentences):
        for stage in self.stages:
            sentences = stage.transform_chunk(sentences)
        return sentences

    def phrase_spans(self, sentence: Sequence[str]) -> list[tuple[int, int]]:
        """``(start, end)`` ranges of the input words that make each final token."""
        tokens = list(sentence)
        spans = [(i, i + 1) for i in range(len(tokens))]
        for stage in self.stages:
            stage_spans = stage.phrase_spans(tokens)
            spans = [(spans[s][0], spans[e - 1][1]) for s, e in stage_spans]
            tokens = [stage.delimiter.join(tokens[s:e]) for s, e in stage_spans]
        return spans

    def export_phrases(self) -> dict[str, float]:
        exported = {}
        for stage in self.stages:
            exported.update(stage.export_phrases())
        return exported

    def find_phrases(self, sentences) -> dict[str, float]:
        """The phrases each stage joins in ``sentences`` (as phrased by the stages before it)."""
        found: dict[str, float] = {}
        sentences = [list(s) for s in sentences]
        for stage in self.stages:
            found.update(stage.find_phrases(sentences))
            sentences = [stage[s] for s in sentences]
        return found

    transform_file = PhraseTransformer.transform_file

    def save(self, path) -> None:
        stages = [stage.freeze() if isinstance(stage, Phrases) else stage for stage in self.stages]
        with atomic_write(path, "w", encoding="utf-8") as handle:
            json.dump({"format": "word2bert-frozen-phrases", "version": 1,
                       "stages": [stage.to_dict() for stage in stages]}, handle)

    @staticmethod
    def load(path):
        return load_phrases(path)


def learn_phrases(sentences=None, passes: int = 2, threshold: float | Sequence[float] = (200.0, 100.0),
                  corpus_file=None, progress_factory=None, **kwargs) -> PhrasePipeline:
    """Learn ``passes`` phrase models, each on the corpus phrased by the ones before.

    ``threshold`` is one value or one per pass (the last repeats); word2vec.c's demo uses two
    passes at 200 and 100 with ``scoring="word2phrase"``. Other keyword arguments go to
    :class:`Phrases`. Returns a :class:`PhrasePipeline` of frozen stages.
    """
    if passes < 1:
        raise Word2BertError(f"parameter passes={passes} must be >= 1")
    thresholds = [threshold] if isinstance(threshold, (int, float)) else list(threshold)
    if not thresholds:
        raise Word2BertError("give at least one threshold")
    thresholds += [thresholds[-1]] * (passes - len(thresholds))
    if corpus_file is not None:
        if sentences is not None:
            raise Word2BertError("give sentences= or corpus_file=, not both")
        if not Path(corpus_file).exists():
            raise Word2BertError(f"file not found: {corpus_file}")
        sentences = _FileCorpus(corpus_file)
    if sentences is None:
        raise Word2BertError("give sentences= or corpus_file=")
    if iter(sentences) is sentences:
        raise Word2BertError("sentences is a one-shot iterator; give a list or a re-iterable corpus")
    stages: list[FrozenPhrases] = []
    for pass_number in range(passes):
        corpus = sentences
        for stage in stages:
            corpus = TransformedCorpus(stage, corpus)
        progress = progress_factory(pass_number) if progress_factory is not None else None
        try:
            model = Phrases(corpus, threshold=thresholds[pass_number], progress=progress, **kwargs)
        finally:
            if progress is not None:
                progress.close()
        stages.append(model.freeze())
    return PhrasePipeline(stages)


class _FileCorpus:
    def __init__(self, path):
        self.path = path

    def __iter__(self):
        return iter_sentences(self.path)


def load_phrases(path) -> Phrases | FrozenPhrases | PhrasePipeline:
    """Load a phrase model: ``.npz`` counts (:class:`Phrases`) or JSON accepted phrases (frozen/pipeline)."""
    path = Path(path)
    if not path.is_file():
        raise Word2BertError(f"phrase model not found: {path}")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic.startswith(b"PK"):
        try:
            with np.load(path) as archive:
                return Phrases._from_npz(archive, path)
        except (OSError, ValueError, KeyError) as exc:
            raise Word2BertError(f"{path}: not a word2bert Phrases file ({exc})") from None
    try:
        with open_text(path) as handle:
            data = json.load(handle)
        if data.get("format") != "word2bert-frozen-phrases":
            raise ValueError("unknown format")
        stages = [FrozenPhrases.from_dict(stage) for stage in data["stages"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Word2BertError(f"{path}: not a word2bert phrase model ({exc})") from None
    return stages[0] if len(stages) == 1 else PhrasePipeline(stages)
