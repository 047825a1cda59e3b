"""Interpolated Kneser-Ney n-gram language model (Kneser & Ney 1995; Chen & Goodman 1998), n <= 5.

The probability of word ``w`` after the ``k - 1`` words ``h`` (``h'`` is ``h`` without its first word)::

    P_k(w | h) = max(c_k(h w) - D_k(c_k(h w)), 0) / c_k(h .)  +  gamma_k(h) * P_{k-1}(w | h')
    gamma_k(h) = (D_k(1) N_1(h .) + D_k(2) N_2(h .) + D_k(3+) N_3+(h .)) / c_k(h .)
    P_0(w)     = 1 / |V|

``c_n`` is the raw count at the highest order; at every lower order ``c_k(h w) = N_1+(. h w)``,
the number of distinct words seen before ``h w`` (the continuation count that makes it
Kneser-Ney). ``c_k(h .)`` is the sum over ``w`` of ``c_k(h w)`` and ``N_r(h .)`` the number of words
with ``c_k(h w) = r``. A context never seen at order ``k`` passes ``P_{k-1}`` through. Discounts per
order from the counts of counts ``n_r`` (Chen & Goodman's estimates):

    Y = n_1 / (n_1 + 2 n_2);  D(1) = 1 - 2Y n_2/n_1,  D(2) = 2 - 3Y n_3/n_2,  D(3+) = 3 - 4Y n_4/n_3

(``discount="modified"``) or one discount ``D = Y`` for every count (``discount="single"``,
interpolated Kneser-Ney proper). Each sentence is padded on the left with ``n - 1`` ``<s>`` and
ends with ``<eos>``, which is predicted; n-grams never cross sentences. ``V`` is the vocabulary
(with ``<unk>`` and ``<eos>``, without ``<s>``), and the probabilities over ``V`` sum to one.

Everything is numpy over whole arrays: the k-grams of the corpus get integer ids order by order
(``id_k = rank of id_{k-1}(context) * |V + 1| + w``, via ``np.unique``), counts are ``bincount`` s
and a query is a ``searchsorted`` per order.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from word2bert.corpus.encoded import EncodedCorpus
from word2bert.corpus.lm_corpus import EOS, UNK, build_lm_vocabulary, check_lm_vocabulary, encode_lines
from word2bert.corpus.vocab import Vocabulary
from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write

MAX_ORDER = 5


@dataclass
class _Order:
    """The k-grams of one order: sorted keys ``context_id * base + word``, their (continuation)
    counts, and per context (a (k-1)-gram id) the total count and the discounted mass."""

    keys: np.ndarray            # int64, sorted; k = 1: the word ids
    counts: np.ndarray          # float64, c_k per k-gram (0 for grams seen only as contexts)
    context_total: np.ndarray   # float64 per (k-1)-gram id (one entry at k = 1)
    context_mass: np.ndarray    # float64: D(1) N_1 + D(2) N_2 + D(3+) N_3+ per context
    discounts: np.ndarray       # float64 [D(1), D(2), D(3+)]


def estimate_discounts(counts: np.ndarray, modified: bool = True) -> np.ndarray:
    """``[D(1), D(2), D(3+)]`` from the counts of counts of ``counts`` (Chen & Goodman 1998).

    Where the estimate is undefined (a count of counts is zero, as in tiny corpora) or falls outside
    ``(0, r]``, the single discount ``Y`` is used, and ``0.5`` where ``Y`` is undefined too.
    """
    n = [int(np.count_nonzero(counts == r)) for r in range(1, 5)]
    y = n[0] / (n[0] + 2 * n[1]) if n[0] > 0 else 0.5
    if not 0 < y < 1:
        y = 0.5
    if not modified:
        return np.array([y, y, y])
    discounts = []
    for r in (1, 2, 3):
        d = r - (r + 1) * y * n[r] / n[r - 1] if n[r - 1] > 0 else float("nan")
        discounts.append(d if 0 < d <= r else y)
    return np.array(discounts)


class KneserNeyLM:
    """An interpolated (modified) Kneser-Ney language model of ``order`` n (1 to 5).

    Train with :meth:`train` (a text file) or :meth:`fit` (an encoded corpus and its vocabulary);
    score with :meth:`perplexity`, :meth:`log_probabilities` or :meth:`probabilities`.
    """

    def __init__(self, order: int = 3, discount: str = "modified"):
        if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
            raise Word2BertError(f"parameter order={order!r} must be an integer from 1 to {MAX_ORDER}")
        if discount not in ("modified", "single"):
            raise Word2BertError(f"parameter discount={discount!r} must be 'modified' or 'single'")
        self.order = order
        self.discount = discount
        self.vocab: Vocabulary | None = None
        self.orders: list[_Order] = []
        self.train_seconds = 0.0

    # ------------------------------------------------------------------ layout
    @property
    def vocab_size(self) -> int:
        """|V|: the words that can be predicted (``<s>`` is not one)."""
        return len(self.vocab)

    @property
    def _bos(self) -> int:
        return len(self.vocab)

    @property
    def _base(self) -> int:
        return len(self.vocab) + 1

    def _padded(self, corpus: EncodedCorpus) -> tuple[np.ndarray, np.ndarray]:
        """Sentences as ``<s>^(n-1) w_1 ... w_m <eos>``, concatenated; and each position's offset
        from the start of its padded sentence."""
        pad = self.order - 1
        lengths = np.diff(corpus.offsets).astype(np.int64)
        padded_lengths = lengths + pad + 1
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(padded_lengths[:-1], out=starts[1:])
        total = int(padded_lengths.sum())
        tokens = np.full(total, self._bos, dtype=np.int64)
        offset = np.arange(total, dtype=np.int64) - np.repeat(starts, padded_lengths)
        words = (offset >= pad) & (offset < np.repeat(padded_lengths, padded_lengths) - 1)
        tokens[words] = corpus.tokens
        tokens[starts + padded_lengths - 1] = self.vocab.index[EOS]
        return tokens, offset

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, path, order: int = 3, discount: str = "modified", vocab: Vocabulary | None = None,
              min_count: int = 1, max_vocab_size: int | None = None) -> KneserNeyLM:
        """Count the n-grams of the text file ``path`` (one sentence per line)."""
        model = cls(order, discount)
        started = time.perf_counter()
        if vocab is None:
            vocab = build_lm_vocabulary(path, min_count=min_count, max_vocab_size=max_vocab_size)
        model.fit(encode_lines(path, vocab), vocab)
        model.train_seconds = time.perf_counter() - started
        return model

    def fit(self, corpus: EncodedCorpus, vocab: Vocabulary) -> KneserNeyLM:
        """Collect the counts of every order from ``corpus`` (ids of ``vocab``)."""
        check_lm_vocabulary(vocab)
        if len(corpus.tokens) and (corpus.tokens.min() < 0 or corpus.tokens.max() >= len(vocab)):
            raise Word2BertError("the corpus holds ids outside the vocabulary")
        self.vocab = vocab
        tokens, offset = self._padded(corpus)
        predicted = tokens != self._bos
        n = self.order
        gram_ids = []           # per order k: the id of the k-gram ending at each position (-1: none)
        previous = tokens
        self.orders = []
        for k in range(1, n + 1):
            if k == 1:
                keys, ids = np.arange(self._base, dtype=np.int64), tokens.copy()
            else:
                valid = offset >= k - 1
                ids = np.full(len(tokens), -1, dtype=np.int64)
                raw = previous[:-1][valid[1:]] * self._base + tokens[1:][valid[1:]]
                keys, inverse = np.unique(raw, return_inverse=True)
                ids[1:][valid[1:]] = inverse
            gram_ids.append(ids)
            previous = ids
            self.orders.append(_Order(keys=keys, counts=np.zeros(len(keys)), context_total=np.zeros(0),
                                      context_mass=np.zeros(0), discounts=np.zeros(3)))
        # counts: raw at the highest order, continuation counts N_1+(. g) below it
        top = gram_ids[n - 1][predicted]
        self.orders[n - 1].counts = np.bincount(top, minlength=len(self.orders[n - 1].keys)).astype(np.float64)
        for k in range(1, n):
            longer = gram_ids[k][predicted]                  # the (k+1)-grams at predicted positions
            _, first = np.unique(longer, return_index=True)
            suffixes = gram_ids[k - 1][predicted][first]     # their last k words: one per distinct left word
            self.orders[k - 1].counts = np.bincount(suffixes, minlength=len(self.orders[k - 1].keys)).astype(np.float64)
        modified = self.discount == "modified"
        for k, table in enumerate(self.orders, start=1):
            counts = table.counts
            table.discounts = estimate_discounts(counts[counts > 0].astype(np.int64), modified)
            if k == 1:
                contexts, n_contexts = np.zeros(len(counts), dtype=np.int64), 1
            else:
                contexts, n_contexts = table.keys // self._base, len(self.orders[k - 2].keys)
            table.context_total = np.bincount(contexts, weights=counts, minlength=n_contexts)
            table.context_mass = np.bincount(contexts, weights=self._discount_of(counts, table.discounts),
                                             minlength=n_contexts)
        return self

    @staticmethod
    def _discount_of(counts: np.ndarray, discounts: np.ndarray) -> np.ndarray:
        """``D(c)`` for every count (0 for c = 0)."""
        index = np.minimum(counts, 3).astype(np.int64)
        return np.concatenate([[0.0], discounts])[index]

    # ------------------------------------------------------------------ queries
    def _lookup(self, k: int, context_ids: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Ids of the k-grams (context id, word) in order k's table, -1 where unseen."""
        keys = self.orders[k - 1].keys
        query = context_ids * self._base + words
        where = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        found = (keys[where] == query) & (context_ids >= 0)
        return np.where(found, where, -1)

    def _interpolate(self, gram_ids: list[np.ndarray], context_ids: list[np.ndarray]) -> np.ndarray:
        """``P_n`` for queries given, per order k, the k-gram id and the (k-1)-gram context id."""
        probability = np.full(len(gram_ids[0]), 1.0 / self.vocab_size)
        for k, table in enumerate(self.orders, start=1):
            grams, contexts = gram_ids[k - 1], context_ids[k - 1]
            counts = np.where(grams >= 0, table.counts[np.maximum(grams, 0)], 0.0)
            total = np.where(contexts >= 0, table.context_total[np.maximum(contexts, 0)], 0.0)
            mass = np.where(contexts >= 0, table.context_mass[np.maximum(contexts, 0)], 0.0)
            seen = total > 0
            safe_total = np.where(seen, total, 1.0)
            discounted = np.maximum(counts - self._discount_of(counts, table.discounts), 0.0)
            probability = np.where(seen, discounted / safe_total + mass / safe_total * probability, probability)
        return probability

    def _position_probabilities(self, tokens: np.ndarray, offset: np.ndarray) -> np.ndarray:
        gram_ids, context_ids = [], []
        previous = None
        for k in range(1, self.order + 1):
            if k == 1:
                ids = tokens.copy()
                contexts = np.zeros(len(tokens), dtype=np.int64)
            else:
                contexts = np.full(len(tokens), -1, dtype=np.int64)
                valid = offset >= k - 1
                contexts[1:] = np.where(valid[1:], previous[:-1], -1)
                ids = self._lookup(k, contexts, tokens)
            gram_ids.append(ids)
            context_ids.append(contexts)
            previous = ids
        return self._interpolate(gram_ids, context_ids)

    def _require_fitted(self) -> None:
        if self.vocab is None:
            raise Word2BertError("the model is not trained: call fit() or KneserNeyLM.train() first")

    def log_probabilities(self, corpus: EncodedCorpus) -> np.ndarray:
        """``ln P(w_t | history)`` of every word and every ``<eos>`` of ``corpus``, in order."""
        self._require_fitted()
        tokens, offset = self._padded(corpus)
        predicted = tokens != self._bos
        return np.log(self._position_probabilities(tokens, offset)[predicted])

    def perplexity(self, source) -> float:
        """``exp(-mean ln P)`` over the words and ``<eos>`` marks of a text file or an encoded corpus."""
        self._require_fitted()
        corpus = source if isinstance(source, EncodedCorpus) else encode_lines(source, self.vocab)
        return float(math.exp(-self.log_probabilities(corpus).mean()))

    def probabilities(self, context: list[str]) -> np.ndarray:
        """``P(w | context)`` for every word ``w`` of the vocabulary (``vocab.words`` order).

        ``context`` is the sentence so far (its last ``n - 1`` words count; fewer means the start
        of a sentence); unknown words map to ``<unk>``.
        """
        self._require_fitted()
        unk = self.vocab.index[UNK]
        history = [self.vocab.index.get(word, unk) for word in context][-(self.order - 1):] if self.order > 1 else []
        history = [self._bos] * (self.order - 1 - len(history)) + history
        words = np.arange(self.vocab_size, dtype=np.int64)
        gram_ids, context_ids = [words], [np.zeros(len(words), dtype=np.int64)]
        context_grams = self._context_gram_ids(history)
        for k in range(2, self.order + 1):
            contexts = np.full(len(words), context_grams[k - 2], dtype=np.int64)
            gram_ids.append(self._lookup(k, contexts, words))
            context_ids.append(contexts)
        return self._interpolate(gram_ids, context_ids)

    def _context_gram_ids(self, history: list[int]) -> list[int]:
        """Ids of the j-grams ``history[-j:]`` (j = 1 .. n-1) in order j's table (-1: unseen)."""
        result = []
        for j in range(1, self.order):
            words = history[-j:]
            gram = words[0]                           # build left to right: id_1(w_a), id_2(w_a w_b), ...
            for i in range(1, j):
                gram = int(self._lookup(i + 1, np.array([gram]), np.array([words[i]]))[0]) if gram >= 0 else -1
            result.append(gram)
        return result

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """One ``.npz``: the tables of every order and the vocabulary."""
        self._require_fitted()
        arrays = {"words": np.array(self.vocab.words), "word_counts": self.vocab.counts}
        for k, table in enumerate(self.orders, start=1):
            for name in ("keys", "counts", "context_total", "context_mass", "discounts"):
                arrays[f"order{k}_{name}"] = getattr(table, name)
        meta = {"format": "word2bert-kneser-ney", "order": self.order, "discount": self.discount}
        with atomic_write(path, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path) -> KneserNeyLM:
        path = Path(path)
        if not path.is_file():
            raise Word2BertError(f"file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != "word2bert-kneser-ney":
                    raise KeyError("format")
                model = cls(int(meta["order"]), meta["discount"])
                model.vocab = Vocabulary([str(w) for w in data["words"]], data["word_counts"])
                model.orders = [
                    _Order(**{name: data[f"order{k}_{name}"] for name in
                              ("keys", "counts", "context_total", "context_mass", "discounts")})
                    for k in range(1, model.order + 1)]
        except (KeyError, ValueError, OSError) as exc:
            raise Word2BertError(f"{path}: not a word2bert Kneser-Ney model ({exc})") from None
        return model
