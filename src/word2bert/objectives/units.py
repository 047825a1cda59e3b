"""Masking units: which tokens a masked-LM step predicts *together* (BERT-WWM, ERNIE, SpanBERT, ALBERT).

Every selector answers one question for a padded batch: given ``input_ids`` (B, T), the
``candidates`` that may be predicted (real, non-special tokens) and a budget ``n_predict`` (B,)
of tokens per row (MLM's 15%), which tokens are chosen, grouped in units? The answer is
``unit_ids`` (B, T): for a chosen token the position of the first token of its unit, -1 for a
token not chosen. The masked-LM objective then makes its 80% ``[MASK]`` / 10% random / 10% kept
decision once per unit. Rules shared by all selectors:

* a unit is never split: all of its tokens are chosen or none;
* a unit that would overflow the remaining budget is skipped and the next one tried (Google's
  ``create_pretraining_data.py``, ``if len(masked_lms) + len(index_set) > num_to_predict:
  continue``), so a row gets exactly its budget whenever small units are left to fill it;
* units never contain special tokens and never cross one (no span runs over ``[SEP]``).

The selectors:

=============  =======================================================================================
``token``      every token is a unit (BERT).
``whole-word`` a word's pieces are one unit (BERT-WWM): a word starts at a piece without ``##``
               (WordPiece), with ``▁`` (unigram) or ``Ġ`` (byte-level BPE). For Chinese, whose
               characters WordPiece splits one per token, the characters of one word of a segmenter
               (``jieba``, or any callable) are one unit (Chinese-BERT-wwm).
``span``       SpanBERT: span length ``l`` in *words* drawn from a geometric distribution
               ``p(l) ∝ p (1 - p)^(l - 1)`` clipped to ``1..max_span`` (p = 0.2 and 10, the paper's;
               the reference code's default p is 0.3), start word uniform among the starts where
               ``l`` free words of one segment fit the remaining budget; spans are drawn until the
               budget is spent (a length that fits nowhere is skipped and another drawn).
``ngram``      ALBERT: from each word in random order, an n-gram of ``n <= 3`` words with
               ``p(n) ∝ 1/n``, shortened while it overflows the budget, skipped if it overlaps one
               already chosen (``create_pretraining_data.py`` of google-research/albert).
``phrase``     ERNIE 1.0 phrase-level masking: phrases (a :class:`~word2bert.static.phrases.Phrases`
               model, or a list) and the remaining words are the units.
``entity``     ERNIE 1.0 entity-level masking: entities of a gazetteer file (or found by spaCy's NER)
               and the remaining words are the units.
=============  =======================================================================================

Phrases and entities are matched as token-id sequences that begin and end at word boundaries
(rolling 64-bit hashes over the batch, every hit verified exactly; overlapping matches resolved
longest first, left to right), so selection needs only ``input_ids`` and works with dynamic
masking. The per-row loops (filling a budget with units, drawing spans, n-grams) are compiled.

Deviations from the reference code, on purpose: ALBERT decides 80/10/10 per token and lets an
n-gram run over ``[SEP]``; SpanBERT picks an anchor token and lets a span run into masked tokens
and cut its last word at the budget. Here every selector follows the rules above.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numba
import numpy as np

from word2bert.errors import Word2BertError

_JIT = dict(nogil=True, cache=True)
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: the rolling hash is a bijection per position


# ------------------------------------------------------------------------------ word boundaries
def word_start_table(tokenizer) -> np.ndarray:
    """Bool per vocabulary id: the token can begin a word.

    WordPiece: tokens without the ``##`` prefix; unigram (SentencePiece): tokens with ``▁``;
    byte-level BPE: tokens with ``Ġ`` (the encoded space). Special tokens are True. A tokeniser
    with its own ``word_start_table()`` is asked directly.
    """
    if hasattr(tokenizer, "word_start_table"):
        return np.asarray(tokenizer.word_start_table(), dtype=bool)
    vocab = tokenizer.get_vocab()
    tokens = [""] * (max(vocab.values()) + 1)
    for token, index in vocab.items():
        tokens[index] = token
    if any(t.startswith("##") for t in tokens):
        table = np.array([not t.startswith("##") for t in tokens], dtype=bool)
    elif sum(t.startswith("\u0120") for t in tokens) > len(tokens) // 10:
        table = np.array([t.startswith("\u0120") for t in tokens], dtype=bool)
    elif sum(t.startswith("\u2581") for t in tokens) > len(tokens) // 10:
        table = np.array([t.startswith("\u2581") for t in tokens], dtype=bool)
    else:
        table = np.ones(len(tokens), dtype=bool)
    table[list(getattr(tokenizer, "special_ids", []))] = True
    return table


def word_starts(input_ids: np.ndarray, candidates: np.ndarray, table: np.ndarray | None) -> np.ndarray:
    """(B, T) bool: candidates that begin a word (by ``table``), or follow a non-candidate.

    ``table=None`` makes every token a word.
    """
    candidates = np.asarray(candidates, dtype=bool)
    if table is None:
        return candidates.copy()
    ids = np.asarray(input_ids)
    if ids.size and (int(ids.max()) >= len(table) or int(ids.min()) < 0):
        raise Word2BertError(f"token id {int(ids.max())} is outside the vocabulary of {len(table)} tokens")
    after_gap = np.ones_like(candidates)
    after_gap[:, 1:] = ~candidates[:, :-1]
    return candidates & (table[ids] | after_gap)


# ------------------------------------------------------------------------------ compiled row loops
@numba.njit(**_JIT)
def _row_units(unit_start, candidates, starts, lengths, runs):
    """Units of one row: first position, length in tokens and segment (run of candidates) of each."""
    n = 0
    run = -1
    t = 0
    width = candidates.shape[0]
    while t < width:
        if candidates[t]:
            if t == 0 or not candidates[t - 1]:
                run += 1
            first = t
            t += 1
            while t < width and candidates[t] and not unit_start[t]:
                t += 1
            starts[n] = first
            lengths[n] = t - first
            runs[n] = run
            n += 1
        else:
            t += 1
    return n


@numba.njit(**_JIT)
def _fill_units(unit_start, candidates, priority, n_predict, out):
    """Greedy budget filling: units in order of ``priority`` (random), skipping those that overflow."""
    rows, width = candidates.shape
    starts = np.empty(width, np.int64)
    lengths = np.empty(width, np.int64)
    runs = np.empty(width, np.int64)
    keys = np.empty(width, np.float64)
    for b in range(rows):
        n = _row_units(unit_start[b], candidates[b], starts, lengths, runs)
        for i in range(n):
            keys[i] = priority[b, starts[i]]
        order = np.argsort(keys[:n])
        remaining = n_predict[b]
        for k in range(n):
            if remaining <= 0:
                break
            i = order[k]
            if lengths[i] > remaining:
                continue
            for t in range(starts[i], starts[i] + lengths[i]):
                out[b, t] = starts[i]
            remaining -= lengths[i]


@numba.njit(**_JIT)
def _fill_spans(word_start, candidates, n_predict, span_words, uniforms, out):
    """SpanBERT: for each drawn length ``l`` (words), a uniform start among the places it fits."""
    rows, width = candidates.shape
    starts = np.empty(width, np.int64)
    lengths = np.empty(width, np.int64)
    runs = np.empty(width, np.int64)
    used = np.zeros(width + 1, np.int64)
    tokens = np.zeros(width + 1, np.int64)
    for b in range(rows):
        n = _row_units(word_start[b], candidates[b], starts, lengths, runs)
        tokens[0] = 0
        for i in range(n):
            tokens[i + 1] = tokens[i] + lengths[i]
        used[: n + 1] = 0  # prefix counts of chosen words
        remaining = n_predict[b]
        for k in range(span_words.shape[1]):
            if remaining <= 0:
                break
            size = span_words[b, k]
            count = 0
            for i in range(n - size + 1):
                if (runs[i + size - 1] == runs[i] and used[i + size] == used[i]
                        and tokens[i + size] - tokens[i] <= remaining):
                    count += 1
            if count == 0:
                continue  # this length fits nowhere: draw another
            pick = min(int(uniforms[b, k] * count), count - 1)
            for i in range(n - size + 1):
                if (runs[i + size - 1] == runs[i] and used[i + size] == used[i]
                        and tokens[i + size] - tokens[i] <= remaining):
                    if pick == 0:
                        first = starts[i]
                        for t in range(first, starts[i + size - 1] + lengths[i + size - 1]):
                            out[b, t] = first
                        remaining -= tokens[i + size] - tokens[i]
                        for j in range(i + 1, n + 1):
                            used[j] += min(j - i, size)
                        break
                    pick -= 1


@numba.njit(**_JIT)
def _fill_ngrams(word_start, candidates, n_predict, priority, uniforms, ngram_probs, out):
    """ALBERT's n-grams: from each word in random order, n ~ p(n) over the n-grams that exist there,
    shortened while the n-gram overflows the budget, skipped when it overlaps a chosen one."""
    rows, width = candidates.shape
    max_n = ngram_probs.shape[0]
    starts = np.empty(width, np.int64)
    lengths = np.empty(width, np.int64)
    runs = np.empty(width, np.int64)
    keys = np.empty(width, np.float64)
    covered = np.zeros(width, np.bool_)
    for b in range(rows):
        n = _row_units(word_start[b], candidates[b], starts, lengths, runs)
        for i in range(n):
            keys[i] = priority[b, starts[i]]
            covered[i] = False
        order = np.argsort(keys[:n])
        remaining = n_predict[b]
        for k in range(n):
            if remaining <= 0:
                break
            i = order[k]
            available = 0
            while available < max_n and i + available < n and runs[i + available] == runs[i]:
                available += 1
            total = 0.0
            for m in range(available):
                total += ngram_probs[m]
            target = uniforms[b, starts[i]] * total
            size = available
            cumulative = 0.0
            for m in range(available):
                cumulative += ngram_probs[m]
                if target < cumulative:
                    size = m + 1
                    break
            span_tokens = 0
            for j in range(i, i + size):
                span_tokens += lengths[j]
            while span_tokens > remaining and size > 1:
                size -= 1
                span_tokens -= lengths[i + size]
            if span_tokens > remaining:
                continue
            overlap = False
            for j in range(i, i + size):
                if covered[j]:
                    overlap = True
            if overlap:
                continue
            first = starts[i]
            for j in range(i, i + size):
                covered[j] = True
                for t in range(starts[j], starts[j] + lengths[j]):
                    out[b, t] = first
            remaining -= span_tokens


def _checked(input_ids, candidates, n_predict):
    input_ids = np.asarray(input_ids, dtype=np.int64)
    candidates = np.asarray(candidates, dtype=bool)
    n_predict = np.asarray(n_predict, dtype=np.int64).reshape(-1)
    if input_ids.ndim != 2 or candidates.shape != input_ids.shape or n_predict.shape[0] != input_ids.shape[0]:
        raise Word2BertError(f"unit selection needs input_ids and candidates of one (batch, length) shape and "
                             f"one budget per row; got {input_ids.shape}, {candidates.shape}, {n_predict.shape}")
    return input_ids, candidates, n_predict


def masking_budget(candidates: np.ndarray, masked_lm_prob: float = 0.15, max_predictions: int | None = None):
    """Tokens to predict per row: ``min(max_predictions, max(1, round(p * n)), n)`` for n candidates."""
    n = np.asarray(candidates, dtype=bool).sum(axis=1)
    budget = np.maximum(1, np.rint(n * masked_lm_prob).astype(np.int64))
    if max_predictions is not None:
        budget = np.minimum(budget, max_predictions)
    return np.minimum(budget, n)


# ------------------------------------------------------------------------------ selectors
class UnitSelector:
    """Base of the selectors: ``select(input_ids, candidates, n_predict, rng) -> unit_ids``.

    Partition-based selectors (token, whole word, phrase, entity) define :meth:`unit_starts`
    and share the budget filling of :func:`_fill_units`.
    """

    name = "units"

    def unit_starts(self, input_ids: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def select(self, input_ids, candidates, n_predict, rng: np.random.Generator | None = None) -> np.ndarray:
        input_ids, candidates, n_predict = _checked(input_ids, candidates, n_predict)
        rng = rng if rng is not None else np.random.default_rng()
        starts = self.unit_starts(input_ids, candidates) & candidates
        out = np.full(input_ids.shape, -1, dtype=np.int64)
        _fill_units(starts, candidates, rng.random(input_ids.shape), n_predict, out)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TokenUnits(UnitSelector):
    """Every token is its own unit (BERT's masking)."""

    name = "token"

    def unit_starts(self, input_ids, candidates):
        return np.asarray(candidates, dtype=bool).copy()


class CachedSegmenter:
    """A word segmenter that remembers the last ``size`` texts it segmented (picklable)."""

    def __init__(self, segmenter: Callable[[str], Sequence[str]], size: int = 1 << 16):
        self.segmenter, self.size, self.cache = segmenter, size, {}

    def __call__(self, text: str) -> tuple[str, ...]:
        words = self.cache.get(text)
        if words is None:
            if len(self.cache) >= self.size:
                self.cache.clear()
            words = self.cache[text] = tuple(self.segmenter(text))
        return words


class WholeWordUnits(UnitSelector):
    """A word's pieces form one unit (BERT-WWM); with ``segmenter``, Chinese words too (Chinese-BERT-wwm).

    ``table`` is :func:`word_start_table` of the tokeniser. For Chinese, give ``tokens`` (the
    vocabulary strings by id) and a ``segmenter`` (``text -> words``, e.g.
    :func:`~word2bert.tokenizers.chinese.jieba_segmenter`): each run of one-character CJK tokens
    is joined back into text, segmented, and the characters after a word's first are not starts.
    """

    name = "whole-word"

    def __init__(self, table: np.ndarray, segmenter: Callable[[str], Sequence[str]] | None = None,
                 tokens: Sequence[str] | None = None):
        self.table = np.asarray(table, dtype=bool)
        self.segmenter = segmenter
        self.tokens = None
        self.cjk_table = None
        if segmenter is not None:
            from word2bert.tokenizers.chinese import is_cjk_character

            if tokens is None:
                raise Word2BertError("Chinese whole-word masking needs the vocabulary's tokens to rebuild the text")
            # dynamic masking meets the same sentences every epoch: segment each run of characters once
            self.segmenter = CachedSegmenter(segmenter)
            self.tokens = list(tokens)
            self.cjk_table = np.array([len(t) == 1 and is_cjk_character(t) for t in self.tokens], dtype=bool)

    @classmethod
    def from_tokenizer(cls, tokenizer, segmenter=None, chinese: bool = False) -> WholeWordUnits:
        """From a tokeniser; ``chinese=True`` uses ``segmenter`` (default jieba) for Chinese words."""
        if chinese and segmenter is None:
            from word2bert.tokenizers.chinese import jieba_segmenter
            segmenter = jieba_segmenter()
        tokens = None
        if segmenter is not None:
            vocab = tokenizer.get_vocab()
            tokens = [""] * (max(vocab.values()) + 1)
            for token, index in vocab.items():
                tokens[index] = token
        return cls(word_start_table(tokenizer), segmenter=segmenter, tokens=tokens)

    def unit_starts(self, input_ids, candidates):
        starts = word_starts(input_ids, candidates, self.table)
        if self.segmenter is not None:
            self._mark_chinese_words(input_ids, candidates, starts)
        return starts

    def _mark_chinese_words(self, input_ids, candidates, starts) -> None:
        cjk = self.cjk_table[input_ids] & candidates
        padded = np.zeros((cjk.shape[0], cjk.shape[1] + 2), dtype=np.int8)
        padded[:, 1:-1] = cjk
        edges = np.diff(padded, axis=1)
        for row, first in zip(*np.nonzero(edges == 1)):  # one step per run of characters, not per token
            last = first + int(np.argmax(edges[row, first + 1:] == -1))
            if last - first < 1:
                continue
            text = "".join(self.tokens[i] for i in input_ids[row, first:last + 1])
            position = first
            for word in self.segmenter(text):
                size = len(word)
                if size > 1:
                    starts[row, position + 1:position + size] = False
                position += size
            if position != last + 1:
                raise Word2BertError(f"the segmenter's words do not add up to the text {text!r}")


class SpanUnits(UnitSelector):
    """SpanBERT's contiguous spans of whole words with geometric lengths (see the module docstring).

    ``geometric_p`` 0.2 (the paper; the reference code's default is 0.3), ``max_span`` 10 words.
    ``table=None`` measures spans in tokens.
    """

    name = "span"

    def __init__(self, table: np.ndarray | None = None, geometric_p: float = 0.2, max_span: int = 10,
                 max_draws: int | None = None):
        if not 0 < geometric_p <= 1:
            raise Word2BertError(f"parameter geometric_p={geometric_p} must be in (0, 1]")
        if max_span < 1:
            raise Word2BertError(f"parameter max_span={max_span} must be >= 1")
        self.table = None if table is None else np.asarray(table, dtype=bool)
        self.geometric_p = float(geometric_p)
        self.max_span = int(max_span)
        self.max_draws = max_draws
        lengths = np.arange(1, self.max_span + 1)
        probs = self.geometric_p * (1 - self.geometric_p) ** (lengths - 1)
        self.length_probs = probs / probs.sum()

    @classmethod
    def from_tokenizer(cls, tokenizer, **options) -> SpanUnits:
        return cls(word_start_table(tokenizer), **options)

    def sample_lengths(self, rng: np.random.Generator, shape) -> np.ndarray:
        """Span lengths in words, ``p(l) ∝ p (1 - p)^(l - 1)`` for ``l = 1..max_span``."""
        return rng.choice(np.arange(1, self.max_span + 1), size=shape, p=self.length_probs)

    def select(self, input_ids, candidates, n_predict, rng=None):
        input_ids, candidates, n_predict = _checked(input_ids, candidates, n_predict)
        rng = rng if rng is not None else np.random.default_rng()
        starts = word_starts(input_ids, candidates, self.table)
        # enough draws to spend any budget with one-word spans, whatever lengths are skipped
        draws = self.max_draws or int(4 * (n_predict.max(initial=0)) + 16)
        out = np.full(input_ids.shape, -1, dtype=np.int64)
        _fill_spans(starts, candidates, n_predict, self.sample_lengths(rng, (len(input_ids), draws)),
                    rng.random((len(input_ids), draws)), out)
        return out

    def __repr__(self) -> str:
        return f"SpanUnits(geometric_p={self.geometric_p}, max_span={self.max_span})"


class NgramUnits(UnitSelector):
    """ALBERT's n-gram masking: ``n <= max_n`` words, ``p(n) ∝ 1/n`` (``favor_shorter``) or uniform."""

    name = "ngram"

    def __init__(self, table: np.ndarray | None = None, max_n: int = 3, favor_shorter: bool = True):
        if max_n < 1:
            raise Word2BertError(f"parameter max_n={max_n} must be >= 1")
        self.table = None if table is None else np.asarray(table, dtype=bool)
        self.max_n = int(max_n)
        sizes = np.arange(1, self.max_n + 1, dtype=np.float64)
        probs = 1.0 / sizes if favor_shorter else np.ones_like(sizes)
        self.ngram_probs = probs / probs.sum()

    @classmethod
    def from_tokenizer(cls, tokenizer, **options) -> NgramUnits:
        return cls(word_start_table(tokenizer), **options)

    def select(self, input_ids, candidates, n_predict, rng=None):
        input_ids, candidates, n_predict = _checked(input_ids, candidates, n_predict)
        rng = rng if rng is not None else np.random.default_rng()
        starts = word_starts(input_ids, candidates, self.table)
        out = np.full(input_ids.shape, -1, dtype=np.int64)
        _fill_ngrams(starts, candidates, n_predict, rng.random(input_ids.shape), rng.random(input_ids.shape),
                     self.ngram_probs, out)
        return out

    def __repr__(self) -> str:
        return f"NgramUnits(max_n={self.max_n})"


class SequenceMatcher:
    """Find known token-id sequences (phrases, entity names) in a batch, at word boundaries."""

    def __init__(self, sequences: Iterable[Sequence[int]]):
        by_length: dict[int, dict[int, set]] = {}
        for sequence in sequences:
            sequence = tuple(int(i) for i in sequence)
            if len(sequence) < 1:
                continue
            key = int(self._hash(np.asarray([sequence], dtype=np.int64), len(sequence))[0, 0])
            by_length.setdefault(len(sequence), {}).setdefault(key, set()).add(sequence)
        self.by_length = by_length
        self.hashes = {k: np.fromiter(table, dtype=np.uint64) for k, table in by_length.items()}

    def __len__(self) -> int:
        return sum(len(s) for table in self.by_length.values() for s in table.values())

    @staticmethod
    def _hash(ids: np.ndarray, size: int) -> np.ndarray:
        """``h = sum_j ids[t + j] * M^(size - 1 - j)`` mod 2^64 for every window start t: (B, T - size + 1)."""
        ids = ids.astype(np.uint64)
        span = ids.shape[1] - size + 1
        h = np.zeros((ids.shape[0], span), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(size):
                h = h * _HASH_MULTIPLIER + ids[:, j:j + span]
        return h

    def find(self, input_ids: np.ndarray, candidates: np.ndarray, starts: np.ndarray) -> list[tuple[int, int, int]]:
        """``(row, first position, length)`` of every match made of candidates, starting a word and
        ending where the next token starts a word (or is not a candidate)."""
        width = input_ids.shape[1]
        is_end = np.ones((input_ids.shape[0], width + 1), dtype=bool)
        is_end[:, 1:width] = starts[:, 1:] | ~candidates[:, 1:]
        not_candidate = np.concatenate([np.zeros((len(input_ids), 1), np.int64),
                                        np.cumsum(~candidates, axis=1)], axis=1)
        matches = []
        for size, hashes in self.hashes.items():
            if size > width:
                continue
            h = self._hash(input_ids, size)
            hit = np.isin(h, hashes)
            hit &= starts[:, :width - size + 1] & is_end[:, size:]
            hit &= (not_candidate[:, size:] - not_candidate[:, :width - size + 1]) == 0
            table = self.by_length[size]
            for row, first in zip(*np.nonzero(hit)):  # one step per occurrence, verified exactly
                window = tuple(input_ids[row, first:first + size].tolist())
                if window in table[int(h[row, first])]:
                    matches.append((int(row), int(first), size))
        return matches


class GazetteerUnits(UnitSelector):
    """Known multi-word sequences (phrases or entities) are units; other words are whole-word units.

    Overlapping matches are resolved longest first, then left to right.
    """

    name = "gazetteer"

    def __init__(self, table: np.ndarray, sequences: Iterable[Sequence[int]]):
        self.table = np.asarray(table, dtype=bool)
        self.matcher = SequenceMatcher(sequences)

    @classmethod
    def from_texts(cls, tokenizer, texts: Iterable[str]):
        """Units for ``texts`` (phrases or names, words separated by spaces) as ``tokenizer`` splits them.

        Each text is encoded alone and after a space (byte-level BPE marks a word after a space).
        """
        texts = [t.strip() for t in texts if t and t.strip()]
        if not texts:
            raise Word2BertError(f"no {cls.name} entries to mask")
        sequences = {tuple(ids) for variant in (texts, [" " + t for t in texts])
                     for ids in tokenizer.ids_batch(variant) if ids}
        return cls(word_start_table(tokenizer), sequences)

    def unit_starts(self, input_ids, candidates):
        starts = word_starts(input_ids, candidates, self.table)
        merged = starts.copy()
        taken_until = {}
        for row, first, size in sorted(self.matcher.find(input_ids, candidates, starts),
                                       key=lambda m: (m[0], -m[2], m[1])):
            spans = taken_until.setdefault(row, [])
            if any(first < end and start < first + size for start, end in spans):
                continue
            spans.append((first, first + size))
            merged[row, first + 1:first + size] = False
        return merged

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.matcher)} sequences)"


class PhraseUnits(GazetteerUnits):
    """ERNIE 1.0 phrase-level masking: the phrases of a phrase model (or a list) are units."""

    name = "phrase"

    @classmethod
    def from_phrases(cls, tokenizer, phrases) -> PhraseUnits:
        """``phrases``: a :class:`~word2bert.static.phrases.Phrases`/``FrozenPhrases``/pipeline, a saved
        one's path, or an iterable of phrases (``new_york`` or ``new york``)."""
        delimiter = "_"
        if isinstance(phrases, (str, Path)):
            from word2bert.static.phrases import load_phrases
            phrases = load_phrases(phrases)
        if hasattr(phrases, "export_phrases"):
            delimiter = phrases.delimiter
            phrases = phrases.export_phrases()
        texts = [" ".join(p.split(delimiter)) if delimiter in p else p for p in phrases]
        return cls.from_texts(tokenizer, texts)


class EntityUnits(GazetteerUnits):
    """ERNIE 1.0 entity-level masking: the names of a gazetteer (or of spaCy's NER) are units."""

    name = "entity"

    @classmethod
    def from_gazetteer(cls, tokenizer, path) -> EntityUnits:
        """A gazetteer file: one entity name per line (a TAB and a type after the name are ignored;
        ``#`` lines are comments)."""
        return cls.from_texts(tokenizer, read_gazetteer(path))

    @classmethod
    def from_spacy(cls, tokenizer, texts: Iterable[str], model: str = "en_core_web_sm",
                   labels: Sequence[str] | None = None) -> EntityUnits:
        """Entity names found by spaCy's named-entity recogniser ``model`` in ``texts`` (optional)."""
        try:
            import spacy
        except ImportError:
            raise Word2BertError("entity masking with spaCy needs spaCy and a model (pip install spacy; "
                                 f"python -m spacy download {model}), or give a gazetteer file") from None
        try:
            nlp = spacy.load(model, disable=["parser", "lemmatizer"])
        except OSError as exc:
            raise Word2BertError(f"spaCy model {model!r} is not installed: {exc}") from None
        names = {entity.text for doc in nlp.pipe(texts) for entity in doc.ents
                 if labels is None or entity.label_ in labels}
        return cls.from_texts(tokenizer, sorted(names))


def read_gazetteer(path) -> list[str]:
    """Entity names of a gazetteer file (see :meth:`EntityUnits.from_gazetteer`); errors name the file."""
    from word2bert.fileio import open_text

    path = Path(path)
    try:
        with open_text(path) as handle:
            names = [line.split("\t")[0].strip() for line in handle
                     if line.strip() and not line.lstrip().startswith("#")]
    except (OSError, Word2BertError) as exc:
        raise Word2BertError(f"cannot read the gazetteer {path}: {exc}") from None
    if not names:
        raise Word2BertError(f"the gazetteer {path} has no entity names")
    return names


SELECTORS = ("token", "whole-word", "span", "ngram", "phrase", "entity")


def make_selector(name: str, tokenizer=None, *, phrases=None, gazetteer=None, segmenter=None,
                  chinese: bool = False, geometric_p: float = 0.2, max_span: int = 10, max_ngram: int = 3,
                  spacy_model: str | None = None, spacy_texts: Iterable[str] | None = None) -> UnitSelector:
    """The selector called ``name`` (``token``, ``whole-word``, ``span``, ``ngram``, ``phrase``, ``entity``)."""
    key = name.replace("_", "-").lower()
    if key in ("wwm", "whole-words", "word"):
        key = "whole-word"
    if key not in SELECTORS:
        raise Word2BertError(f"unknown masking {name!r}: choose one of {', '.join(SELECTORS)}")
    if key == "token":
        return TokenUnits()
    if tokenizer is None:
        raise Word2BertError(f"{key} masking needs the tokenizer (to tell where words begin)")
    if key == "whole-word":
        return WholeWordUnits.from_tokenizer(tokenizer, segmenter=segmenter, chinese=chinese)
    if key == "span":
        return SpanUnits.from_tokenizer(tokenizer, geometric_p=geometric_p, max_span=max_span)
    if key == "ngram":
        return NgramUnits.from_tokenizer(tokenizer, max_n=max_ngram)
    if key == "phrase":
        if phrases is None:
            raise Word2BertError("phrase masking needs phrases: a phrase model (word2bert phrases --save-model) "
                                 "or a list")
        return PhraseUnits.from_phrases(tokenizer, phrases)
    if gazetteer is not None:
        return EntityUnits.from_gazetteer(tokenizer, gazetteer)
    if spacy_model is not None:
        return EntityUnits.from_spacy(tokenizer, spacy_texts or [], model=spacy_model)
    raise Word2BertError("entity masking needs a gazetteer file (one name per line) or a spaCy model")


__all__ = [
    "SELECTORS",
    "EntityUnits",
    "GazetteerUnits",
    "NgramUnits",
    "PhraseUnits",
    "SequenceMatcher",
    "SpanUnits",
    "TokenUnits",
    "UnitSelector",
    "WholeWordUnits",
    "make_selector",
    "masking_budget",
    "read_gazetteer",
    "word_start_table",
    "word_starts",
]
