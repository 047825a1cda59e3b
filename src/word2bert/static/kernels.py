"""The example kernels and chunk drivers of every word-vector model: one call trains one chunk of
sentences (or lines, or documents) and releases the GIL.

Every model is a choice of input rows, output rows and loss (see ../shared/DESIGN.md):

================  ==========================================  ======================
model             input rows (the hidden vector)                targets
================  ==========================================  ======================
word2vec sg       one context word's row (each in turn)          the centre word
word2vec cbow     the mean (or sum) of the context rows          the centre word
fastText sg       the centre word + its char n-gram rows          the context words
fastText cbow     every context word + their n-gram rows          the centre word
classifier        words + hashed word n-grams of a line           one label (all for OVA)
PV-DBOW           one tag row of the document (each in turn)      each word of it
PV-DM             tag rows + context words                        the centre word
================  ==========================================  ======================

The losses are :mod:`word2bert.static.losses` (NS, HS, softmax, one-vs-all); the bag models share
one example, :func:`bag_example` (fastText's ``Model::update``: ``computeHidden``, ``Loss::forward``,
the gradient added to every input row); every chunk driver subsamples with
:func:`~word2bert.static.sampling.subsample` and draws negatives with
:func:`~word2bert.static.losses.negative_decisions`. Python threads run the drivers
(:mod:`word2bert.static.jobs`) on shared matrices without locks (Hogwild, as word2vec.c, gensim and
fastText do); each call owns its random state (word2vec.c's LCG, seeded per job).

The entry points at the bottom are compiled for one vector size and one loss (see
:mod:`word2bert.static.native`), take their scratch arrays from the Python side (allocated per
call, so threads never share them) and keep the signatures the kernel tests call.
"""

from __future__ import annotations

import functools
import threading

import numba
import numpy as np

from word2bert.static.huffman import MAX_CODE_LENGTH
from word2bert.static.losses import (
    LOSS_HS,
    LOSS_NAMES,
    LOSS_NS,
    LOSS_OVA,
    LOSS_SOFTMAX,
    MODE_HS,
    MODE_NS,
    MODE_NS_HS,
    MODE_SOFTMAX,
    bag_targets,
    bag_work,
    huffman_decisions,
    negative_decisions,
    word2vec_outputs,
)
from word2bert.static.native import (ENTRY_JIT, JIT, SOURCE_STAMP, TINY_JIT, line_aligned_zeros, prefetch_row,
                                     readonly, whole_lines, writable)
from word2bert.static.sampling import random_int, subsample

PRIVATE_MERGE_WORDS = 1000  # words between merges of a thread's private hot rows (see _word2vec_chunk)
# Huffman inner nodes nearest the root that each thread copies: 16 removed the contention on the root's lines
# (session 6); 512 trains CBOW + HS 6% faster than 64 with 2 threads, skip-gram + HS 1.5% (paired runs, session 21)
HOT_NODES = 512
HOT_WORDS = 16  # most frequent words whose negative-sampling output rows each thread copies

__all__ = ["LOSS_NS", "LOSS_HS", "LOSS_SOFTMAX", "LOSS_OVA", "LOSS_NAMES", "train_skipgram_chunk", "train_cbow_chunk",
           "subword_chunk", "supervised_chunk", "document_chunk", "train_bag", "bag_means", "dummy_tree",
           "dummy_table"]


# ---------------------------------------------------------------------------------------
# word2vec: skip-gram and CBOW
# ---------------------------------------------------------------------------------------
@numba.njit(**TINY_JIT)
def _context(kept, n, i, window, context, state):
    """Fill ``context`` with the words within the reduced window ``window - b`` of position ``i``.

    ``b`` is uniform in ``{0, .., window-1}`` (word2vec.c's dynamic window, which weights a
    context word at distance ``d`` by ``(window - d + 1) / window`` on average). Returns (count, state).
    """
    b, state = random_int(state, window)
    reach = window - b
    lo = max(i - reach, 0)
    hi = min(i + reach + 1, n)
    count = 0
    for j in range(lo, hi):
        if j != i:
            context[count] = kept[j]
            count += 1
    return count, state


@numba.njit(**TINY_JIT)
def _private(ids, count, hot_start, hot_end, shift):
    """Replace every row in ``[hot_start, hot_end)`` among ``ids[:count]`` by its private row ``+ shift``."""
    for k in range(count):
        if hot_start <= ids[k] < hot_end:
            ids[k] += shift


@numba.njit(**TINY_JIT)
def _draw_negatives(target, table, negative, ids, labels, hot_start, hot_end, shift, state):
    """:func:`~word2bert.static.losses.negative_decisions` of ``target`` into ``ids/labels``, hot rows
    replaced by their private rows (:func:`_private`). Returns (their number, state)."""
    m, state = negative_decisions(target, table, negative, ids, labels, 0, state)
    _private(ids, m, hot_start, hot_end, shift)
    return m, state


@numba.njit(**TINY_JIT)
def _next_negatives(ns_ids, ns_labels, next_ids, next_labels, next_m, kept, i, n, table, negative, output_ns,
                    hot_start, hot_end, shift, state, dim):
    """Move the decisions drawn for centre ``i`` into ``ns_ids``; draw those of centre ``i + 1`` into
    ``next_ids`` and prefetch their rows, which then load while centre ``i``'s block computes
    (+10-15%: the noise rows are the random, uncached memory accesses of negative sampling).
    Returns (decisions of centre ``i``, decisions of centre ``i + 1``, state)."""
    for k in range(next_m):
        ns_ids[k] = next_ids[k]
        ns_labels[k] = next_labels[k]
    m = next_m
    next_m = 0
    if i + 1 < n:
        next_m, state = _draw_negatives(kept[i + 1], table, negative, next_ids, next_labels, hot_start, hot_end, shift,
                                        state)
        for k in range(1, next_m):
            prefetch_row(output_ns, np.uint64(next_ids[k]), dim)
    return m, next_m, state


@numba.njit(**TINY_JIT)
def _path_decisions(word, codes, points, code_lengths, hot_start, hot_end, shift, hs_ids, hs_labels):
    """``word``'s Huffman path as decisions ``hs_ids/hs_labels`` (:func:`huffman_decisions`), with every
    inner node in ``[hot_start, hot_end)`` replaced by its private row ``node + shift``. Returns their number."""
    length = huffman_decisions(word, codes, points, code_lengths, hs_ids, hs_labels, 0)
    _private(hs_ids, length, hot_start, hot_end, shift)
    return length


@numba.njit(**JIT)
def _sync_private_rows(matrix, hot_start, hot_end, shift, dim):
    """Merge a thread's private copies of the hot rows (inner nodes or words) into the shared rows.

    Private row ``p = x + shift`` of row ``x`` has moved from its base copy ``q = p + (hot_end -
    hot_start)`` (the shared row when last merged); the shared row takes that step,
    ``v_x += v_p - v_q``, and both copies restart from the merged row, so a step is merged once
    however many calls the thread makes. A first call on a fresh thread (``v_p = v_q``) only
    copies the shared rows in.
    """
    n_hot = hot_end - hot_start
    for x in range(hot_start, hot_end):
        shared = np.uint64(x)
        private = np.uint64(x + shift)
        base = np.uint64(x + shift + n_hot)
        for i in range(dim):
            merged = matrix[shared, i] + (matrix[private, i] - matrix[base, i])
            matrix[shared, i] = merged
            matrix[private, i] = merged
            matrix[base, i] = merged


@numba.njit(**TINY_JIT)
def _sum_rows(matrix, ids, count, out, dim):
    """``out[0] = sum_b matrix[ids[b]]`` over ``b < count``, two rows per pass (half the loads and
    stores of ``out``)."""
    b = count & 1
    if b:
        first = np.uint64(ids[0])
        for j in range(dim):
            out[0, j] = matrix[first, j]
    else:
        for j in range(dim):
            out[0, j] = 0.0
    while b < count:
        row0 = np.uint64(ids[b])
        row1 = np.uint64(ids[b + 1])
        for j in range(dim):
            out[0, j] += matrix[row0, j] + matrix[row1, j]
        b += 2


@numba.njit(**JIT)
def _word2vec_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end, keep_prob,
                    table, codes, points, code_lengths, window, negative, mode, skipgram, cbow_mean, alpha, state,
                    compute_loss, hot_start, hot_end, private_shift, work, dim):
    """word2vec over sentences ``[sentence_start, sentence_end)``; returns (loss, examples, words, state).

    Per sentence the words are subsampled (dropped words take no window position), then every
    kept centre word ``w`` gets a reduced window of context words ``c_1..c_B``.

    Skip-gram (word2vec.c's direction): each context row ``u_{c_b}`` is a hidden vector and the
    target is ``w``. Negative sampling draws one set of ``K = negative`` negatives per centre word,
    shared by its ``B`` context words, so the step is one ``B x (K+1)`` block (Ji et al. 2016,
    "Parallelizing Word2Vec in Shared and Distributed Memory"; word2vec.c draws K per pair: sharing
    keeps the rows of a block in cache); hierarchical softmax shares the centre's Huffman path the
    same way. ``examples`` counts (context, centre) pairs.

    CBOW: ``h = sum_b u_{c_b}`` (divided by ``B`` when ``cbow_mean``) predicts ``w`` (a 1-row
    block); the accumulated ``alpha d log L / d h`` is added to every context row (undivided with
    ``cbow_mean``, like word2vec.c and gensim). ``examples`` counts centre words.

    ``words`` counts the words kept by subsampling. ``mode`` picks the output layers
    (:func:`~word2bert.static.losses.word2vec_outputs`); ``dim`` is the vector size: the matrices may
    be wider, their rows padded to whole cache lines (:func:`~word2bert.static.native.whole_lines`),
    and only the first ``dim`` columns are read or written.

    Private hot rows (``private_shift > 0``, several threads): every Huffman path starts at the
    root, so the inner nodes near it (``[hot_start, hot_end)``, the last created) are written by
    every example of every thread; in negative sampling the output rows of the most frequent words
    (``[0, hot_end)``, the vocabulary being sorted by count) are drawn as noise by most examples.
    Two threads writing the same rows make each core wait for the other's cache lines (measured:
    2 threads took 1.4x as long in hierarchical softmax as with private output rows; skip-gram and
    CBOW with negative sampling train 10-20% faster with the 16 most frequent words private). Each
    call works on its own copies of those rows (``row + private_shift`` of the output matrix, the
    tree's when it is trained, else negative sampling's) and merges their steps into the shared
    rows every ``PRIVATE_MERGE_WORDS`` words and at its end (:func:`_sync_private_rows`): the other
    rows stay Hogwild as in word2vec.c; the hot ones see the other thread's steps up to that many
    words late.
    """
    kept, context, grad, coef, ns_ids, ns_labels, next_ids, next_labels, hs_ids, hs_labels, hidden, hidden_id, \
        scores = work
    use_hs = mode == MODE_HS or mode == MODE_NS_HS
    private = private_shift > 0 and (use_hs or mode == MODE_NS)
    hot_rows = output_hs if use_hs else output_ns
    if private:
        _sync_private_rows(hot_rows, hot_start, hot_end, private_shift, dim)
    else:
        hot_end = hot_start  # no row is private
    hs_hot_end = hot_end if use_hs else hot_start
    ns_hot_end = hot_start if use_hs else hot_end
    next_m = 0
    loss = 0.0
    examples = 0
    words = 0
    unmerged = 0
    for s in range(sentence_start, sentence_end):
        n, state = subsample(tokens, offsets[s], offsets[s + 1], keep_prob, kept, state)
        words += n
        if private:
            unmerged += n
            if unmerged >= PRIVATE_MERGE_WORDS:
                _sync_private_rows(hot_rows, hot_start, hot_end, private_shift, dim)
                unmerged = 0
        if n < 2:
            continue  # no context
        if negative > 0:
            next_m, state = _draw_negatives(kept[0], table, negative, next_ids, next_labels, hot_start, ns_hot_end,
                                            private_shift, state)
        for i in range(n):
            centre = kept[i]
            m = 0
            if negative > 0:
                m, next_m, state = _next_negatives(ns_ids, ns_labels, next_ids, next_labels, next_m, kept, i, n, table,
                                                   negative, output_ns, hot_start, ns_hot_end, private_shift, state,
                                                   dim)
            n_hs = 0
            if use_hs:
                n_hs = _path_decisions(centre, codes, points, code_lengths, hot_start, hs_hot_end, private_shift,
                                       hs_ids, hs_labels)
            n_ctx, state = _context(kept, n, i, window, context, state)
            if skipgram:
                examples += n_ctx
                loss += word2vec_outputs(mode, input_vectors, context, np.int64(n_ctx), output_ns, output_hs, centre,
                                         ns_ids, ns_labels, np.int64(m), hs_ids, hs_labels, np.int64(n_hs), alpha, grad,
                                         coef, hidden, scores, compute_loss, dim)
                for b in range(n_ctx):
                    row = np.uint64(context[b])
                    for j in range(dim):
                        input_vectors[row, j] += grad[b, j]
                        grad[b, j] = 0.0
            else:
                examples += 1
                _sum_rows(input_vectors, context, n_ctx, hidden, dim)
                if cbow_mean:
                    scale = np.float32(1.0) / n_ctx
                    for j in range(dim):
                        hidden[0, j] *= scale
                loss += word2vec_outputs(mode, hidden, hidden_id, np.int64(1), output_ns, output_hs, centre, ns_ids,
                                         ns_labels, np.int64(m), hs_ids, hs_labels, np.int64(n_hs), alpha, grad, coef,
                                         hidden, scores, compute_loss, dim)
                for b in range(n_ctx):
                    row = np.uint64(context[b])
                    for j in range(dim):
                        input_vectors[row, j] += grad[0, j]
                for j in range(dim):
                    grad[0, j] = 0.0
    if private:
        _sync_private_rows(hot_rows, hot_start, hot_end, private_shift, dim)
    return loss, examples, words, state


def _word2vec_work(offsets, sentence_start, sentence_end, window, negative, n_outputs, skipgram, dim):
    """The scratch arrays of :func:`_word2vec_chunk` for one call."""
    longest = max(int(np.max(np.diff(offsets[sentence_start:sentence_end + 1]), initial=1)), 1)
    rows = 2 * window if skipgram else 1
    width = max(negative + 1, MAX_CODE_LENGTH)
    return (np.empty(longest, np.int32), np.empty(2 * window, np.int32), line_aligned_zeros(rows, dim),
            np.empty((rows, width), np.float32), np.empty(negative + 1, np.int32), np.empty(negative + 1, np.float32),
            np.empty(negative + 1, np.int32), np.empty(negative + 1, np.float32), np.empty(MAX_CODE_LENGTH, np.int32),
            np.empty(MAX_CODE_LENGTH, np.float32), line_aligned_zeros(1, dim), np.zeros(1, np.int32),
            np.empty((1, max(n_outputs, 1)), np.float32))


@functools.lru_cache(maxsize=None)
def _word2vec_for(dim: int, mode: int, skipgram: bool):
    stamp = SOURCE_STAMP  # a closure cell: numba's cache key holds those, not the globals
    def word2vec_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end, keep_prob,
                       table, codes, points, code_lengths, window, negative, cbow_mean, alpha, state, compute_loss,
                       hot_start, hot_end, private_shift, work):
        _ = stamp
        return _word2vec_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end,
                               keep_prob, table, codes, points, code_lengths, window, negative, mode, skipgram,
                               cbow_mean, alpha, state, compute_loss, hot_start, hot_end, private_shift, work, dim)

    return numba.njit(**ENTRY_JIT)(word2vec_chunk)


def word2vec_mode(negative: int, hs: bool, softmax: bool) -> int:
    """The output layers of word2vec: negative sampling, hierarchical softmax, both, or the full softmax."""
    if softmax:
        return MODE_SOFTMAX
    if negative > 0:
        return MODE_NS_HS if hs else MODE_NS
    return MODE_HS


def _word2vec_call(skipgram, input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end,
                   keep_prob, table, codes, points, code_lengths, window, negative, use_hs, use_softmax, cbow_mean,
                   alpha, state, compute_loss, dim, private_rows=None):
    """The compiled kernel and its arguments, with the types every call uses (one signature).
    ``private_rows`` is ``(hot_start, hot_end, private_shift)`` (see :func:`_word2vec_chunk`) or None."""
    hot_start, hot_end, private_shift = private_rows if private_rows is not None else (0, 0, 0)
    dim = int(dim)
    kernel = _word2vec_for(dim, word2vec_mode(int(negative), bool(use_hs), bool(use_softmax)), bool(skipgram))
    work = _word2vec_work(offsets, int(sentence_start), int(sentence_end), int(window), int(negative),
                          output_ns.shape[0] if use_softmax else 1, skipgram, dim)
    return kernel, (input_vectors, output_ns, output_hs, readonly(tokens, np.int32), readonly(offsets, np.int64),
                    np.int64(sentence_start), np.int64(sentence_end), readonly(keep_prob, np.float32),
                    readonly(table, np.uint64), readonly(codes, np.uint8), readonly(points, np.int32),
                    readonly(code_lengths, np.int32), np.int64(window), np.int64(negative), bool(cbow_mean),
                    np.float32(alpha), np.uint64(state), bool(compute_loss), np.int64(hot_start), np.int64(hot_end),
                    np.int64(private_shift), work)


def _word2vec(*args, private_rows=None):
    kernel, arguments = _word2vec_call(*args, private_rows=private_rows)
    return kernel(*arguments)


def warm_word2vec(dim: int, negative: int, hs: bool, softmax: bool, skipgram: bool):
    """(kernel, arguments) of a tiny word2vec chunk with the types training uses (see native.prepare)."""
    inputs = np.zeros((2, dim), np.float32)
    outputs = np.zeros((2, dim), np.float32)
    codes, points, lengths = dummy_tree()
    return _word2vec_call(skipgram, inputs, outputs, outputs, np.zeros(2, np.int32), np.array([0, 2], np.int64), 0, 1,
                          np.ones(2, np.float32), np.zeros(2, np.uint64), codes, points, lengths, 1, negative, hs,
                          softmax, True, 0.0, 1, True, dim)


def train_skipgram_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end, keep_prob,
                         table, codes, points, code_lengths, window, negative, use_hs, use_softmax, alpha, state,
                         compute_loss, dim, private_rows=None):
    """Skip-gram over sentences ``[sentence_start, sentence_end)`` (see :func:`_word2vec_chunk`), compiled
    for ``dim`` and the output layers in use; returns (loss, examples, words, state). ``private_rows``:
    ``(hot_start, hot_end, private_shift)``, this thread's copies of the hot output rows
    (:class:`PrivateHotRows`), or None."""
    return _word2vec(True, input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end,
                     keep_prob, table, codes, points, code_lengths, window, negative, use_hs, use_softmax, False, alpha,
                     state, compute_loss, dim, private_rows=private_rows)


def train_cbow_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end, keep_prob,
                     table, codes, points, code_lengths, window, negative, use_hs, use_softmax, cbow_mean, alpha, state,
                     compute_loss, dim, private_rows=None):
    """CBOW over sentences ``[sentence_start, sentence_end)`` (see :func:`_word2vec_chunk`), compiled for
    ``dim`` and the output layers in use; returns (loss, examples, words, state). ``private_rows`` as
    for :func:`train_skipgram_chunk`."""
    return _word2vec(False, input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end,
                     keep_prob, table, codes, points, code_lengths, window, negative, use_hs, use_softmax, cbow_mean,
                     alpha, state, compute_loss, dim, private_rows=private_rows)


class PrivateHotRows:
    """Each training thread's own copies of the hot rows ``[hot_start, hot_start + n_hot)`` of an
    output matrix (see :func:`_word2vec_chunk`).

    ``matrix`` is the output matrix with, after its ``n`` shared rows, two rows per hot row and
    thread (the private copy, then its base copy), each row on whole cache lines
    (:func:`~word2bert.static.native.line_aligned_zeros`: with the scratch rows aligned too, 4-11%
    faster than on 400-byte rows that straddle lines, session 20); ``shared`` is the view of its
    first ``n`` rows and ``dim`` columns, which the model keeps as its output matrix (so a later
    training call that :meth:`fits` reuses this one instead of copying the matrix again).
    :meth:`rows` gives the calling thread its ``(hot_start, hot_end, private_shift)``, the same
    every call from that thread until :meth:`new_run`.
    """

    def __init__(self, output: np.ndarray, threads: int, hot_start: int, n_hot: int):
        n, dim = output.shape
        self.hot_start = int(hot_start)
        self.n_hot = int(n_hot)
        self.threads = int(threads)
        self.matrix = line_aligned_zeros(n + self.threads * 2 * self.n_hot, dim)
        self.matrix[:n, :dim] = output
        self.shared = self.matrix[:n, :dim]
        self._slots: dict = {}
        self._lock = threading.Lock()

    def fits(self, output: np.ndarray, threads: int) -> bool:
        """Whether ``output`` is this object's shared matrix and it has private rows for ``threads``."""
        return output is self.shared and threads <= self.threads

    def new_run(self):
        """Forget which thread had which slot (a new training call runs new threads)."""
        with self._lock:
            self._slots = {}

    def rows(self):
        """``(hot_start, hot_end, private_shift)`` for the calling thread; None once every slot is taken
        by other threads (that thread then writes the shared rows, as word2vec.c does)."""
        n = self.shared.shape[0]
        with self._lock:
            slot = self._slots.get(threading.get_ident())
            if slot is None:
                if len(self._slots) >= self.threads:
                    return None
                slot = self._slots[threading.get_ident()] = len(self._slots)
        return self.hot_start, self.hot_start + self.n_hot, n + slot * 2 * self.n_hot - self.hot_start


class PrivateHotNodes(PrivateHotRows):
    """Hierarchical softmax: the ``n_hot`` inner nodes nearest the root, the last created
    (``[n_inner - n_hot, n_inner)``)."""

    def __init__(self, output_hs: np.ndarray, threads: int, n_hot: int = HOT_NODES):
        n_hot = min(int(n_hot), output_hs.shape[0])
        super().__init__(output_hs, threads, output_hs.shape[0] - n_hot, n_hot)


class PrivateHotWords(PrivateHotRows):
    """Negative sampling: the output rows of the ``n_hot`` most frequent words (the first rows of a
    vocabulary sorted by count)."""

    def __init__(self, output_ns: np.ndarray, threads: int, n_hot: int = HOT_WORDS):
        super().__init__(output_ns, threads, 0, min(int(n_hot), output_ns.shape[0]))


# ---------------------------------------------------------------------------------------
# the bag example (fastText, the classifier, Doc2Vec)
# ---------------------------------------------------------------------------------------
@numba.njit(**JIT)
def bag_example(kind, input_vectors, output_vectors, bag, bag_start, bag_count, targets, target_start, target_count,
                negative, table, codes, points, code_lengths, state, alpha, hidden_scale, grad_scale, update_output,
                skip_saturated, first_trainable_row, hidden, grad, work, dim):
    """One example of the engine: the bag ``B = bag[bag_start:+bag_count]``, the targets
    ``T = targets[target_start:+target_count]``.

        h = hidden_scale * sum_{r in B} input_vectors[r]        (hidden_scale = 1/|B|: the mean)
        the loss ``kind`` of T on h (:func:`~word2bert.static.losses.bag_targets`)
        input_vectors[r] += grad_scale * alpha * d log L / d h   for every r in B, r >= first_trainable_row

    (once per occurrence of ``r``, as fastText). Between targets ``h`` moves by the step its rows
    took, ``hidden_scale * |B| * grad_scale`` times the accumulated gradient. ``skip_saturated``:
    logistic decisions with ``|x| >= MAX_EXP`` take no step (word2vec.c's HS rule). ``hidden`` and
    ``grad`` are ``(1, dim)`` scratch rows, ``work`` is :func:`~word2bert.static.losses.bag_work`'s.
    Returns ``(-log L, state)``.
    """
    for i in range(dim):
        hidden[0, i] = 0.0
        grad[0, i] = 0.0
    for q in range(bag_start, bag_start + bag_count):
        row = np.uint64(bag[q])
        for i in range(dim):
            hidden[0, i] += input_vectors[row, i]
    for i in range(dim):
        hidden[0, i] *= hidden_scale
    step_scale = hidden_scale * np.float32(bag_count) * grad_scale
    loss, state = bag_targets(kind, hidden, output_vectors, targets, target_start, target_count, negative, table, codes,
                              points, code_lengths, state, alpha, grad, work, step_scale, update_output, skip_saturated,
                              dim)
    for i in range(dim):
        grad[0, i] *= grad_scale
    for q in range(bag_start, bag_start + bag_count):
        r = bag[q]
        if r >= first_trainable_row:
            row = np.uint64(r)
            for i in range(dim):
                input_vectors[row, i] += grad[0, i]
    return loss, state


@numba.njit(**JIT)
def _train_bag(input_vectors, output_vectors, bag, targets, kind, negative, table, codes, points, code_lengths, state,
               alpha, grad_scale, hidden, grad, update_output, first_trainable_row, work):
    return bag_example(kind, input_vectors, output_vectors, bag, np.int64(0), np.int64(bag.shape[0]), targets,
                       np.int64(0), np.int64(targets.shape[0]), negative, table, codes, points, code_lengths,
                       np.uint64(state), alpha, np.float32(1.0) / np.float32(bag.shape[0]), grad_scale, update_output,
                       kind == LOSS_HS, first_trainable_row, hidden, grad, work, hidden.shape[1])


def train_bag(input_vectors, output_vectors, bag, targets, kind, negative, table, codes, points, code_lengths, state,
              alpha, grad_scale, hidden, grad_hidden, update_output, first_trainable_row):
    """One example of the engine on its own (the chunk drivers run the same :func:`bag_example`).

    ``h = mean_{r in bag} input_vectors[r]``; the loss of every target in ``targets`` in turn
    (for one-vs-all, ``targets`` is the set of positive labels) accumulates
    ``g = alpha * d log L / d h``; then ``input_vectors[r] += grad_scale * g`` for every ``r`` in the
    bag with ``r >= first_trainable_row``. ``hidden``/``grad_hidden`` (1-D, ``dim``) receive ``h`` and
    the gradient. Returns ``(-log L, state)``.
    """
    dim = hidden.shape[0]
    work = bag_work(int(kind), int(negative), output_vectors.shape[0], len(targets), dim)
    return _train_bag(input_vectors, output_vectors, bag, targets, np.int64(kind), np.int64(negative), table, codes,
                      points, code_lengths, np.uint64(state), np.float32(alpha), np.float32(grad_scale),
                      hidden.reshape(1, dim), grad_hidden.reshape(1, dim), bool(update_output),
                      np.int64(first_trainable_row), work)


# ---------------------------------------------------------------------------------------
# chunk drivers of the bag models
# ---------------------------------------------------------------------------------------
@numba.njit(**JIT)
def _subword_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, subword_offsets,
                   subword_rows, keep_probability, window, skipgram, kind, negative, table, codes, points,
                   code_lengths, alpha_start, alpha_end, seed, buffer, targets, bag, hidden, grad, work, dim):
    """fastText skip-gram or CBOW over sentences ``[first, last)`` with subword bags.

    Each kept word ``w`` has input rows ``subword_rows[subword_offsets[w]:subword_offsets[w+1]]``
    (itself and its n-grams). The window radius is uniform in ``1..window`` (fastText).
    Skip-gram: bag = rows of the centre word, targets = the context words. CBOW: bag =
    rows of every context word, target = the centre word. ``alpha`` decays linearly from
    ``alpha_start`` to ``alpha_end`` over the chunk's tokens. Returns ``(loss, examples, tokens)``.
    """
    state = np.uint64(seed)
    total = sentence_offsets[last] - sentence_offsets[first]
    one = np.float32(1.0)
    saturated = kind == LOSS_HS
    loss = 0.0
    examples = 0
    done = 0
    for s in range(first, last):
        start = sentence_offsets[s]
        end = sentence_offsets[s + 1]
        alpha = np.float32(alpha_start + (alpha_end - alpha_start) * done / max(total, 1))
        done += end - start
        n, state = subsample(tokens, start, end, keep_probability, buffer, state)
        for i in range(n):
            b, state = random_int(state, window)
            b += 1
            lo = max(0, i - b)
            hi = min(n, i + b + 1)
            if hi - lo <= 1:
                continue
            if skipgram:
                if i + 1 < n:  # the next centre's n-gram rows are scattered over a large matrix: fetch them now
                    following = buffer[i + 1]
                    for q in range(subword_offsets[following], subword_offsets[following + 1]):
                        prefetch_row(input_vectors, subword_rows[q], dim)
                nt = 0
                for j in range(lo, hi):
                    if j != i:
                        targets[nt] = buffer[j]
                        nt += 1
                w = buffer[i]
                r0 = subword_offsets[w]
                count = subword_offsets[w + 1] - r0
                step, state = bag_example(kind, input_vectors, output_vectors, subword_rows, r0, count, targets,
                                          np.int64(0), np.int64(nt), negative, table, codes, points, code_lengths,
                                          state, alpha, one / np.float32(count), one, True, saturated, np.int64(0),
                                          hidden, grad, work, dim)
                examples += nt
            else:
                nb = 0
                for j in range(lo, hi):
                    if j != i:
                        w = buffer[j]
                        for q in range(subword_offsets[w], subword_offsets[w + 1]):
                            bag[nb] = subword_rows[q]
                            nb += 1
                step, state = bag_example(kind, input_vectors, output_vectors, bag, np.int64(0), np.int64(nb), buffer,
                                          np.int64(i), np.int64(1), negative, table, codes, points, code_lengths,
                                          state, alpha, one / np.float32(nb), one, True, saturated, np.int64(0),
                                          hidden, grad, work, dim)
                examples += 1
            loss += step
    return loss, examples, total


@numba.njit(**JIT)
def _supervised_chunk(input_vectors, output_vectors, example_offsets, example_rows, label_offsets, labels, order,
                      first, last, kind, negative, table, codes, points, code_lengths, alpha_start, alpha_end, seed,
                      output_batch, pending, hidden, grad, work, dim):
    """fastText supervised over the examples ``order[first:last]``.

    Bag = the example's rows (words, hashed word n-grams), gradient normalised by the bag
    size (``grad_scale = 1/|B|``, fastText's ``normalizeGradient``). Softmax/HS/NS train on
    one label drawn uniformly from the example's labels, one-vs-all on all of them (as
    ``FastText::supervised``). Examples without rows or labels are skipped.
    Returns ``(loss, examples, examples visited)``.

    Deviation for speed with several threads (``output_batch > 1``): softmax and one-vs-all
    update every label row on every example, so Hogwild threads sharing the small label
    matrix keep taking its cache lines from each other (2 threads ran 1.2x one thread's
    speed); here each call adds its label-row steps ``g_v h`` to the shared matrix once
    per ``output_batch`` examples (a mini-batch for the output layer only: an example reads
    the label rows without its own call's last ``< output_batch`` steps; the input rows and
    the gradient reaching them are as before). ``output_batch = 1`` is fastText's update.
    """
    n_labels = output_vectors.shape[0]
    coef = work[4]
    deferred = output_batch > 1 and (kind == LOSS_SOFTMAX or kind == LOSS_OVA)
    n_pending = 0
    state = np.uint64(seed)
    total = last - first
    saturated = kind == LOSS_HS
    loss = 0.0
    examples = 0
    done = 0
    for position in range(first, last):
        e = order[position]
        r0 = example_offsets[e]
        r1 = example_offsets[e + 1]
        l0 = label_offsets[e]
        l1 = label_offsets[e + 1]
        alpha = np.float32(alpha_start + (alpha_end - alpha_start) * done / max(total, 1))
        done += 1
        if position + 1 < last:  # the next bag's rows are scattered over a large matrix: fetch them now
            following = order[position + 1]
            for q in range(example_offsets[following], example_offsets[following + 1]):
                prefetch_row(input_vectors, example_rows[q], dim)
        if r1 == r0 or l1 == l0:
            continue
        if kind == LOSS_OVA:
            chosen = l0
            n_chosen = l1 - l0
        else:
            pick, state = random_int(state, l1 - l0)
            chosen = l0 + pick
            n_chosen = np.int64(1)
        inverse = np.float32(1.0) / np.float32(r1 - r0)
        step, state = bag_example(kind, input_vectors, output_vectors, example_rows, r0, r1 - r0, labels, chosen,
                                  n_chosen, negative, table, codes, points, code_lengths, state, alpha, inverse,
                                  inverse, not deferred, saturated, np.int64(0), hidden, grad, work, dim)
        loss += step
        examples += 1
        if deferred:  # the label rows' steps g_v h (g_v left in coef, h in hidden by the example)
            for v in range(n_labels):
                g = coef[0, v]
                row = np.uint64(v)
                for i in range(dim):
                    pending[row, i] += g * hidden[0, i]
            n_pending += 1
            if n_pending == output_batch:
                _flush(output_vectors, pending, dim)
                n_pending = 0
    if deferred and n_pending > 0:
        _flush(output_vectors, pending, dim)
    return loss, examples, total


@numba.njit(**TINY_JIT)
def _flush(output_vectors, pending, dim):
    """``output_vectors += pending`` then ``pending = 0``."""
    for v in range(pending.shape[0]):
        row = np.uint64(v)
        for i in range(dim):
            output_vectors[row, i] += pending[row, i]
            pending[row, i] = 0.0


@numba.njit(**JIT)
def _document_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, tag_offsets, tag_rows,
                    keep_probability, window, dm, dm_mean, train_words, kind, negative, table, codes, points,
                    code_lengths, alpha_start, alpha_end, seed, update_output, first_trainable_row, buffer, targets,
                    bag, hidden, grad, work, dim):
    """Doc2Vec (Le & Mikolov 2014) over documents ``[first, last)``; input rows are words then tags.

    PV-DBOW (``dm=0``): for every tag of the document, bag = that tag's row, targets = the
    kept words in turn (the row moves after each word: gensim's per-word update; gensim
    takes the tags inside the word loop, the same updates in another order). With
    ``train_words`` also skip-gram on the words (bag = a word row, targets = its context).
    PV-DM (``dm=1``): for every kept word, bag = tag rows + context word rows (window radius
    uniform in ``1..window``), target = the word; hidden is their mean (``dm_mean``; the full
    error goes to every row) or, without ``dm_mean``, their sum with the error divided by the
    bag size (gensim). ``update_output=False`` and ``first_trainable_row`` freeze everything
    but new tag rows (``infer_vector``). Returns ``(loss, examples, tokens)``.
    """
    state = np.uint64(seed)
    total = sentence_offsets[last] - sentence_offsets[first]
    loss = 0.0
    examples = 0
    done = 0
    one = np.float32(1.0)
    saturated = True
    for s in range(first, last):
        start = sentence_offsets[s]
        end = sentence_offsets[s + 1]
        alpha = np.float32(alpha_start + (alpha_end - alpha_start) * done / max(total, 1))
        done += end - start
        n, state = subsample(tokens, start, end, keep_probability, buffer, state)
        t0 = tag_offsets[s]
        n_tags = tag_offsets[s + 1] - t0
        if n_tags == 0:
            continue
        if dm:  # PV-DM: one example per word, bag = tags + context words
            for i in range(n):
                b, state = random_int(state, window)
                b += 1
                for k in range(n_tags):
                    bag[k] = tag_rows[t0 + k]
                nb = n_tags
                for j in range(max(0, i - b), min(n, i + b + 1)):
                    if j != i:
                        bag[nb] = buffer[j]
                        nb += 1
                inverse = one / np.float32(nb)
                step, state = bag_example(kind, input_vectors, output_vectors, bag, np.int64(0), np.int64(nb), buffer,
                                          np.int64(i), np.int64(1), negative, table, codes, points, code_lengths,
                                          state, alpha, inverse if dm_mean else one, one if dm_mean else inverse,
                                          update_output, saturated, first_trainable_row, hidden, grad, work, dim)
                loss += step
                examples += 1
        elif n > 0:
            # each tag predicts every word in turn, its row moving after each word (gensim's PV-DBOW)
            for k in range(n_tags):
                step, state = bag_example(kind, input_vectors, output_vectors, tag_rows, np.int64(t0 + k),
                                          np.int64(1), buffer, np.int64(0), np.int64(n), negative, table, codes,
                                          points, code_lengths, state, alpha, one, one, update_output, saturated,
                                          first_trainable_row, hidden, grad, work, dim)
                loss += step
                examples += n
            if train_words:  # skip-gram on the words: bag = a word's row, targets = its context
                for i in range(n):
                    b, state = random_int(state, window)
                    b += 1
                    nt = 0
                    for j in range(max(0, i - b), min(n, i + b + 1)):
                        if j != i:
                            targets[nt] = buffer[j]
                            nt += 1
                    if nt > 0:
                        step, state = bag_example(kind, input_vectors, output_vectors, buffer, np.int64(i),
                                                  np.int64(1), targets, np.int64(0), np.int64(nt), negative, table,
                                                  codes, points, code_lengths, state, alpha, one, one, update_output,
                                                  saturated, first_trainable_row, hidden, grad, work, dim)
                        loss += step
                        examples += nt
    return loss, examples, total


# -- entry points: the chunk drivers compiled for one vector size and loss (see word2bert.static.native) --
@functools.lru_cache(maxsize=None)
def _subword_for(dim: int, kind: int):
    stamp = SOURCE_STAMP  # a closure cell: numba's cache key holds those, not the globals
    def chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, subword_offsets, subword_rows,
              keep_probability, window, skipgram, negative, table, codes, points, code_lengths, alpha_start,
              alpha_end, seed, buffer, targets, bag, hidden, grad, work):
        _ = stamp
        return _subword_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, subword_offsets,
                              subword_rows, keep_probability, window, skipgram, kind, negative, table, codes, points,
                              code_lengths, alpha_start, alpha_end, seed, buffer, targets, bag, hidden, grad, work,
                              dim)

    return numba.njit(**ENTRY_JIT)(chunk)


@functools.lru_cache(maxsize=None)
def _supervised_for(dim: int, kind: int):
    stamp = SOURCE_STAMP  # a closure cell: numba's cache key holds those, not the globals
    def chunk(input_vectors, output_vectors, example_offsets, example_rows, label_offsets, labels, order, first, last,
              negative, table, codes, points, code_lengths, alpha_start, alpha_end, seed, output_batch, pending,
              hidden, grad, work):
        _ = stamp
        return _supervised_chunk(input_vectors, output_vectors, example_offsets, example_rows, label_offsets, labels,
                                 order, first, last, kind, negative, table, codes, points, code_lengths, alpha_start,
                                 alpha_end, seed, output_batch, pending, hidden, grad, work, dim)

    return numba.njit(**ENTRY_JIT)(chunk)


@functools.lru_cache(maxsize=None)
def _document_for(dim: int, kind: int):
    stamp = SOURCE_STAMP  # a closure cell: numba's cache key holds those, not the globals
    def chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, tag_offsets, tag_rows,
              keep_probability, window, dm, dm_mean, train_words, negative, table, codes, points, code_lengths,
              alpha_start, alpha_end, seed, update_output, first_trainable_row, buffer, targets, bag, hidden, grad,
              work):
        _ = stamp
        return _document_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, tag_offsets,
                               tag_rows, keep_probability, window, dm, dm_mean, train_words, kind, negative, table,
                               codes, points, code_lengths, alpha_start, alpha_end, seed, update_output,
                               first_trainable_row, buffer, targets, bag, hidden, grad, work, dim)

    return numba.njit(**ENTRY_JIT)(chunk)


def _longest(offsets, first, last) -> int:
    return max(int(np.max(np.diff(offsets[first:last + 1]), initial=1)), 1)


def _rows(dim):
    """The hidden and gradient scratch rows of a bag kernel, each on whole cache lines."""
    return line_aligned_zeros(1, dim), line_aligned_zeros(1, dim)


def _kernel_matrix(matrix):
    """The C-contiguous matrix a bag kernel indexes for a ``(rows, dim)`` input or output matrix: the
    matrix itself, or the padded one behind a :func:`~word2bert.static.native.line_aligned_copy` view
    (a :class:`~word2bert.static.native.GatheredRows`'s ``lines``, fastText's output rows); the kernels
    read and write its first ``dim`` columns only."""
    lines = whole_lines(matrix)
    return lines if lines is not None else matrix


def _subword_call(input_vectors, output_vectors, tokens, sentence_offsets, first, last, subword_offsets, subword_rows,
                  keep_probability, window, skipgram, kind, negative, table, codes, points, code_lengths, alpha_start,
                  alpha_end, seed):
    dim, first, last, window, kind, negative = (int(input_vectors.shape[1]), int(first), int(last), int(window),
                                                int(kind), int(negative))
    max_rows = max(int(np.max(np.diff(subword_offsets), initial=1)), 1)
    hidden, grad = _rows(dim)
    return _subword_for(dim, kind), (
        _kernel_matrix(input_vectors), _kernel_matrix(output_vectors), readonly(tokens, np.int32),
        readonly(sentence_offsets, np.int64), np.int64(first), np.int64(last), readonly(subword_offsets, np.int64),
        writable(subword_rows, np.int32), readonly(keep_probability, np.float32), np.int64(window), bool(skipgram),
        np.int64(negative), readonly(table, np.uint64), readonly(codes, np.uint8), readonly(points, np.int32),
        readonly(code_lengths, np.int32), np.float64(alpha_start), np.float64(alpha_end), np.int64(seed),
        np.empty(_longest(sentence_offsets, first, last), np.int32), np.empty(2 * window + 1, np.int32),
        np.empty(2 * window * max_rows, np.int32), hidden, grad,
        bag_work(kind, negative, output_vectors.shape[0], 2 * window, dim))


def subword_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, subword_offsets, subword_rows,
                  keep_probability, window, skipgram, kind, negative, table, codes, points, code_lengths, alpha_start,
                  alpha_end, seed):
    """:func:`_subword_chunk` compiled for ``dim = input_vectors.shape[1]`` and the loss ``kind``
    (either matrix may be the view of rows on whole lines: see :func:`_kernel_matrix`)."""
    kernel, arguments = _subword_call(input_vectors, output_vectors, tokens, sentence_offsets, first, last,
                                      subword_offsets, subword_rows, keep_probability, window, skipgram, kind,
                                      negative, table, codes, points, code_lengths, alpha_start, alpha_end, seed)
    return kernel(*arguments)


def warm_subword(dim: int, kind: int, negative: int):
    """(kernel, arguments) of a tiny fastText chunk with the types training uses (see native.prepare)."""
    codes, points, lengths = dummy_tree()
    return _subword_call(np.zeros((2, dim), np.float32), np.zeros((2, dim), np.float32), np.zeros(2, np.int32),
                         np.array([0, 2], np.int64), 0, 1, np.array([0, 1, 2], np.int64), np.array([0, 1], np.int32),
                         np.ones(2, np.float32), 1, True, kind, negative, np.zeros(2, np.uint64), codes, points, lengths,
                         0.0, 0.0, 1)


def _supervised_call(input_vectors, output_vectors, example_offsets, example_rows, label_offsets, labels, order, first,
                     last, kind, negative, table, codes, points, code_lengths, alpha_start, alpha_end, seed,
                     output_batch=1):
    dim, kind, negative = int(input_vectors.shape[1]), int(kind), int(negative)
    deferred = output_batch > 1 and kind in (LOSS_SOFTMAX, LOSS_OVA)
    pending = np.zeros((output_vectors.shape[0] if deferred else 1, dim), np.float32)
    hidden, grad = _rows(dim)
    return _supervised_for(dim, kind), (
        _kernel_matrix(input_vectors), _kernel_matrix(output_vectors), readonly(example_offsets, np.int64),
        readonly(example_rows, np.int32), readonly(label_offsets, np.int64), readonly(labels, np.int32),
        readonly(order, np.int64), np.int64(first), np.int64(last), np.int64(negative), readonly(table, np.uint64),
        readonly(codes, np.uint8), readonly(points, np.int32), readonly(code_lengths, np.int32),
        np.float64(alpha_start), np.float64(alpha_end), np.int64(seed), np.int64(output_batch), pending, hidden, grad,
        bag_work(kind, negative, output_vectors.shape[0], 1, dim))


def supervised_chunk(input_vectors, output_vectors, example_offsets, example_rows, label_offsets, labels, order, first,
                     last, kind, negative, table, codes, points, code_lengths, alpha_start, alpha_end, seed,
                     output_batch=1):
    """:func:`_supervised_chunk` compiled for ``dim = input_vectors.shape[1]`` and the loss ``kind``
    (either matrix may be the view of rows on whole lines: see :func:`_kernel_matrix`)."""
    kernel, arguments = _supervised_call(input_vectors, output_vectors, example_offsets, example_rows, label_offsets,
                                         labels, order, first, last, kind, negative, table, codes, points,
                                         code_lengths, alpha_start, alpha_end, seed, output_batch)
    return kernel(*arguments)


def warm_supervised(dim: int, kind: int, negative: int, output_batch: int):
    """(kernel, arguments) of a tiny classifier chunk with the types training uses (see native.prepare)."""
    codes, points, lengths = dummy_tree()
    return _supervised_call(np.zeros((2, dim), np.float32), np.zeros((2, dim), np.float32), np.array([0, 1], np.int64),
                            np.zeros(1, np.int32), np.array([0, 1], np.int64), np.zeros(1, np.int32),
                            np.zeros(1, np.int64), 0, 1, kind, negative, np.zeros(2, np.uint64), codes, points, lengths,
                            0.0, 0.0, 1, output_batch)


def _document_call(input_vectors, output_vectors, tokens, sentence_offsets, first, last, tag_offsets, tag_rows,
                   keep_probability, window, dm, dm_mean, train_words, kind, negative, table, codes, points,
                   code_lengths, alpha_start, alpha_end, seed, update_output, first_trainable_row):
    dim, first, last, window, kind, negative = (int(input_vectors.shape[1]), int(first), int(last), int(window),
                                                int(kind), int(negative))
    longest = _longest(sentence_offsets, first, last)
    max_tags = max(int(np.max(np.diff(tag_offsets[first:last + 1]), initial=1)), 1)
    hidden, grad = _rows(dim)
    return _document_for(dim, kind), (
        input_vectors, output_vectors, readonly(tokens, np.int32), readonly(sentence_offsets, np.int64),
        np.int64(first), np.int64(last), readonly(tag_offsets, np.int64), writable(tag_rows, np.int32),
        readonly(keep_probability, np.float32), np.int64(window), bool(dm), bool(dm_mean), bool(train_words),
        np.int64(negative), readonly(table, np.uint64), readonly(codes, np.uint8), readonly(points, np.int32),
        readonly(code_lengths, np.int32), np.float64(alpha_start), np.float64(alpha_end), np.int64(seed),
        bool(update_output), np.int64(first_trainable_row), np.empty(longest, np.int32),
        np.empty(2 * window + 1, np.int32), np.empty(2 * window + max_tags, np.int32), hidden, grad,
        bag_work(kind, negative, output_vectors.shape[0], max(2 * window, longest), dim))


def document_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, tag_offsets, tag_rows,
                   keep_probability, window, dm, dm_mean, train_words, kind, negative, table, codes, points,
                   code_lengths, alpha_start, alpha_end, seed, update_output, first_trainable_row):
    """:func:`_document_chunk` compiled for ``dim = input_vectors.shape[1]`` and the loss ``kind``."""
    kernel, arguments = _document_call(input_vectors, output_vectors, tokens, sentence_offsets, first, last,
                                       tag_offsets, tag_rows, keep_probability, window, dm, dm_mean, train_words, kind,
                                       negative, table, codes, points, code_lengths, alpha_start, alpha_end, seed,
                                       update_output, first_trainable_row)
    return kernel(*arguments)


def warm_document(dim: int, kind: int, negative: int):
    """(kernel, arguments) of a tiny Doc2Vec chunk with the types training uses (see native.prepare)."""
    codes, points, lengths = dummy_tree()
    return _document_call(np.zeros((3, dim), np.float32), np.zeros((2, dim), np.float32), np.zeros(2, np.int32),
                          np.array([0, 2], np.int64), 0, 1, np.array([0, 1], np.int64), np.array([2], np.int32),
                          np.ones(2, np.float32), 1, True, True, False, kind, negative, np.zeros(2, np.uint64), codes,
                          points, lengths, 0.0, 0.0, 1, True, 0)


def bag_means(input_vectors, offsets, rows):
    """``out[i] = mean_{r in rows[offsets[i]:offsets[i+1]]} input_vectors[r]`` (zero for an empty bag), float32:
    the product ``A X`` with the sparse averaging matrix ``A[i, r] = (times r is in bag i) / |bag i|``.

    fastText's ``getWordVector`` (a word's vector is the mean of its own row and its n-gram rows) and the
    classifier's hidden vectors. scipy's CSR product reads each row where it is used without gathering
    them first, and leaves nothing to compile: the first call after installing costs what later ones do
    (a numba loop took 1.4 s to compile for the classifier's first ``test()``).
    """
    from scipy import sparse

    offsets = np.asarray(offsets, np.int64)
    counts = np.diff(offsets)
    weights = np.repeat((1.0 / np.maximum(counts, 1)).astype(np.float32), counts)
    averaging = sparse.csr_matrix((weights, np.asarray(rows), offsets), shape=(len(counts), input_vectors.shape[0]))
    padded = whole_lines(input_vectors)  # rows on whole lines (GatheredRows): their zero padding too, no copy
    if padded is None:
        return np.asarray(averaging @ np.asarray(input_vectors, np.float32), dtype=np.float32)
    return np.ascontiguousarray((averaging @ padded)[:, :input_vectors.shape[1]], dtype=np.float32)


def dummy_tree():
    """Empty Huffman arrays, passed to the kernels when the loss is not HS (numba needs the types)."""
    return (np.zeros((1, MAX_CODE_LENGTH), np.uint8), np.zeros((1, MAX_CODE_LENGTH), np.int32), np.zeros(1, np.int32))


def dummy_table():
    """A one-entry negative table, passed when the loss is not NS."""
    return np.zeros(1, np.uint64)
