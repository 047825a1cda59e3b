"""numba kernels of word2vec: one call trains one chunk (~10k words) of an EncodedCorpus.

Each kernel is ``nogil``; the Python driver (:mod:`word2bert.static.word2vec`) runs one per
worker thread over different chunks at the same time, all writing the shared
``input_vectors`` / ``output_vectors`` without locks (Hogwild, as word2vec.c and gensim).
Each call owns its RNG state (word2vec.c's LCG, see :mod:`word2bert.static.sampling`) and
returns it, so a thread's stream continues across its chunks.

Per sentence a kernel first subsamples (word2vec.c: word ``w`` is kept with probability
``keep_prob[w]``; dropped words take no window position), then for every kept centre word
draws the reduced window ``b ~ U{0..window-1}`` and uses the ``window - b`` words on each
side as context. The direction is word2vec.c's: in skip-gram the *context* word's input
row is the hidden vector and the *centre* word is predicted; in CBOW the mean (or sum) of
the context rows predicts the centre word.

Names: ``input_vectors`` is word2vec.c's ``syn0``; ``output_ns`` its ``syn1neg`` (one row per
word); ``output_hs`` its ``syn1`` (one row per Huffman inner node).
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from word2bert.static.huffman import MAX_CODE_LENGTH
from word2bert.static.losses import full_softmax_step
from word2bert.static.native import SOURCE_STAMP, SPECIALISED_JIT, prefetch_row
from word2bert.static.sampling import MAX_EXP, draw_negative, random_int, random_uniform

_JIT = dict(nogil=True, cache=True, fastmath=True)

# word2vec.c's EXP_TABLE: sigma tabulated on [-MAX_EXP, MAX_EXP), saturated outside (gensim does the
# same). One lookup instead of an expf call per (input, output) pair; error < 12/4096 * max sigma' < 8e-4.
SIGMOID_TABLE_SIZE = 4096
_grid = (np.arange(SIGMOID_TABLE_SIZE, dtype=np.float64) + 0.5) / SIGMOID_TABLE_SIZE * 2 * MAX_EXP - MAX_EXP
SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-_grid))).astype(np.float32)
LOG_SIGMOID_TABLE = (-np.logaddexp(0.0, -_grid)).astype(np.float32)  # log sigma, for the reported loss


@numba.njit(inline="always", **_JIT)
def _table_index(x):
    return int((x + MAX_EXP) * (SIGMOID_TABLE_SIZE / (2 * MAX_EXP)))


@numba.njit(inline="always", **_JIT)
def _negative_log_sigmoid(z):
    """``-log sigma(z)`` from the table; ``-z`` below -MAX_EXP and 0 above (error < 0.0025)."""
    if z >= MAX_EXP:
        return 0.0
    if z <= -MAX_EXP:
        return -z
    return -LOG_SIGMOID_TABLE[_table_index(z)]


@numba.njit(inline="always", **_JIT)
def _subsample(tokens, start, end, keep_prob, kept, state):
    """Copy the words of ``tokens[start:end]`` kept by subsampling into ``kept``; return (n, state).

    Word ``w`` survives with probability ``keep_prob[w]`` (word2vec.c's
    ``(sqrt(f/s) + 1) s/f`` clipped to 1): a uniform ``u`` is drawn and ``w`` kept if ``u < p``.
    """
    n = 0
    for p in range(start, end):
        word = tokens[p]
        keep = keep_prob[word]
        if keep < 1.0:
            u, state = random_uniform(state)
            if u >= keep:
                continue
        kept[n] = word
        n += 1
    return n, state


@numba.njit(inline="always", **_JIT)
def _context(kept, n, i, window, context, state):
    """Fill ``context`` with the words within the reduced window ``window - b`` of position ``i``.

    ``b`` is uniform in ``{0, .., window-1}`` (word2vec.c's dynamic window, which weights a
    context word at distance ``d`` by ``(window - d + 1) / window`` on average). Returns (count, state).
    """
    b, state = random_int(state, window)
    reach = window - b
    lo = i - reach
    if lo < 0:
        lo = 0
    hi = i + reach + 1
    if hi > n:
        hi = n
    count = 0
    for j in range(lo, hi):
        if j != i:
            context[count] = kept[j]
            count += 1
    return count, state


@numba.njit(inline="always", **_JIT)
def _draw_negatives(out_ids, centre, table, negative, state):
    """``out_ids[0] = centre`` then ``negative`` draws from the unigram table, skipping draws equal
    to the centre (word2vec.c); returns (number of output rows, state)."""
    out_ids[0] = centre
    m = 1
    for _ in range(negative):
        word, state = draw_negative(table, state)
        if word != centre:
            out_ids[m] = word
            m += 1
    return m, state


@numba.njit(inline="always", **_JIT)
def _next_negatives(out_ids, next_ids, m, kept, i, n, table, negative, output_ns, state, dim):
    """Move the negatives drawn for centre ``i`` into ``out_ids``; draw those of centre ``i + 1``
    into ``next_ids`` and prefetch their rows, which then load while centre ``i``'s block
    computes (+10-15%: the noise rows are the random, uncached memory accesses of
    negative sampling). Returns (rows of centre ``i``, rows of centre ``i + 1``, state)."""
    for k in range(m):
        out_ids[k] = next_ids[k]
    next_m = 0
    if i + 1 < n:
        next_m, state = _draw_negatives(next_ids, kept[i + 1], table, negative, state)
        for k in range(1, next_m):
            prefetch_row(output_ns, np.uint64(next_ids[k]), dim)
    return m, next_m, state


@numba.njit(inline="always", **_JIT)
def _sum_rows(matrix, ids, count, out, dim):
    """``out[0] = sum_b matrix[ids[b]]`` over ``b < count``, two rows per pass (half the
    loads and stores of ``out``)."""
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


@numba.njit(inline="always", **_JIT)
def _huffman_path(centre, codes, points, code_lengths, hs_labels, path):
    """Fill the centre word's Huffman path (inner-node rows) and labels ``1 - code``; return its length."""
    length = code_lengths[centre]
    for k in range(length):
        hs_labels[k] = 1.0 - codes[centre, k]
        path[k] = points[centre, k]
    return length


@numba.njit(inline="always", **_JIT)
def _block_logistic(input_vectors, in_ids, n_in, output_vectors, out_ids, labels, n_out, alpha,
                    grad_in, coef, skip_saturated, compute_loss, dim):
    """Independent logistic decisions for every (input row b, output row k) pair of a block.

    ``x_bk = u_b . v_k``, ``log L = sum_bk [l_k log sigma(x_bk) + (1 - l_k) log sigma(-x_bk)]``.
    With ``g_bk = alpha (l_k - sigma(x_bk))`` (0 where ``skip_saturated`` and ``|x_bk| >= 6``,
    word2vec.c's HS rule) each pair takes word2vec.c's step ``grad_in[b] += g_bk v_k`` (the
    caller adds ``grad_in[b]`` to ``u_b`` after the block), then ``v_k += g_bk u_b``. Pairs
    run input row by input row, as word2vec.c runs context word by context word; within a
    row the ``x_bk`` are computed first (independent dot products overlap in the CPU
    instead of waiting on each update), which differs from word2vec.c only when a row
    occurs twice among the ``v_k``. Returns ``-log L`` (0 unless ``compute_loss``).

    Speed: rows are indexed in 2-D with unsigned indices, never sliced (a slice costs an
    atomic reference count, a signed index a wraparound test that stops vectorization).
    """
    loss = 0.0
    for b in range(n_in):
        row_in = np.uint64(in_ids[b])
        for k in range(n_out):  # all dot products first: independent, so they overlap in the CPU
            row_out = np.uint64(out_ids[k])
            x = np.float32(0.0)
            for i in range(dim):
                x += input_vectors[row_in, i] * output_vectors[row_out, i]
            coef[b, k] = x
        for k in range(n_out):
            x = coef[b, k]
            label = labels[k]
            if compute_loss:
                loss += _negative_log_sigmoid(x if label > 0.5 else -x)
            if x >= MAX_EXP:
                s = np.float32(1.0)
                if skip_saturated:
                    coef[b, k] = 0.0
                    continue
            elif x <= -MAX_EXP:
                s = np.float32(0.0)
                if skip_saturated:
                    coef[b, k] = 0.0
                    continue
            else:
                s = SIGMOID_TABLE[_table_index(x)]
            coef[b, k] = alpha * (label - s)
        for k in range(n_out):
            g = coef[b, k]
            if g != 0.0:
                row_out = np.uint64(out_ids[k])
                for i in range(dim):
                    v = output_vectors[row_out, i]
                    grad_in[b, i] += g * v
                    output_vectors[row_out, i] = v + g * input_vectors[row_in, i]
    return loss


@numba.njit(**_JIT)
def _skipgram_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end,
                    keep_prob, table, codes, points, code_lengths, window, negative, use_hs,
                    use_softmax, alpha, state, compute_loss, dim):
    """Skip-gram over sentences ``[sentence_start, sentence_end)``; returns (loss, examples, words, state).

    For a centre word ``w`` with context ``c_1..c_B`` the hidden vectors are the rows
    ``u_{c_b}`` and the target is ``w``. Negative sampling: one set of ``K = negative``
    negatives is drawn per centre word and shared by its ``B`` context words, so the step is
    the ``B x (K+1)`` block of :func:`_block_logistic` (Ji et al. 2016, "Parallelizing Word2Vec
    in Shared and Distributed Memory"; word2vec.c draws K per pair: sharing keeps the rows
    of a block in cache). Hierarchical softmax: the
    ``B`` context words share the centre's Huffman path, the same block form. Full softmax:
    :func:`full_softmax_step` per pair. ``examples`` counts (context, centre) pairs, ``words``
    the centre words kept by subsampling. ``dim`` is ``input_vectors.shape[1]`` (a compile-time
    constant through :func:`~word2bert.static.native.specialise`).
    """
    longest = 1
    for s in range(sentence_start, sentence_end):
        if offsets[s + 1] - offsets[s] > longest:
            longest = offsets[s + 1] - offsets[s]
    kept = np.empty(longest, np.int32)
    context = np.empty(2 * window, np.int32)
    grad_in = np.zeros((2 * window, dim), np.float32)
    width = max(negative + 1, MAX_CODE_LENGTH)
    coef = np.empty((2 * window, width), np.float32)
    out_ids = np.empty(negative + 1, np.int32)
    next_ids = np.empty(negative + 1, np.int32)
    next_m = 0
    ns_labels = np.zeros(negative + 1, np.float32)
    ns_labels[0] = 1.0
    hs_labels = np.empty(MAX_CODE_LENGTH, np.float32)
    path = np.empty(MAX_CODE_LENGTH, np.int32)
    loss = 0.0
    examples = 0
    words = 0
    for s in range(sentence_start, sentence_end):
        n, state = _subsample(tokens, offsets[s], offsets[s + 1], keep_prob, kept, state)
        words += n
        if n < 2:
            continue  # no context
        if negative > 0:
            next_m, state = _draw_negatives(next_ids, kept[0], table, negative, state)
        for i in range(n):
            centre = kept[i]
            if negative > 0:
                m, next_m, state = _next_negatives(out_ids, next_ids, next_m, kept, i, n, table, negative,
                                                   output_ns, state, dim)
            n_ctx, state = _context(kept, n, i, window, context, state)
            examples += n_ctx
            if use_softmax:  # small vocabularies only: slices are fine here
                for b in range(n_ctx):
                    loss += full_softmax_step(input_vectors[context[b]], output_ns, centre, alpha, grad_in[b])
            if negative > 0:
                loss += _block_logistic(input_vectors, context, n_ctx, output_ns, out_ids, ns_labels, m, alpha,
                                        grad_in, coef, False, compute_loss, dim)
            if use_hs:
                length = _huffman_path(centre, codes, points, code_lengths, hs_labels, path)
                loss += _block_logistic(input_vectors, context, n_ctx, output_hs, path, hs_labels, length,
                                        alpha, grad_in, coef, True, compute_loss, dim)
            for b in range(n_ctx):
                row = np.uint64(context[b])
                for j in range(dim):
                    input_vectors[row, j] += grad_in[b, j]
                    grad_in[b, j] = 0.0
    return loss, examples, words, state


@numba.njit(**_JIT)
def _cbow_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end,
                keep_prob, table, codes, points, code_lengths, window, negative, use_hs,
                use_softmax, cbow_mean, alpha, state, compute_loss, dim):
    """CBOW over sentences ``[sentence_start, sentence_end)``; returns (loss, examples, words, state).

    Hidden vector ``h = sum_b u_{c_b}`` (divided by ``B`` when ``cbow_mean``) predicts the
    centre word: negative sampling (the centre and ``negative`` draws) and hierarchical
    softmax (the centre's Huffman path) as a 1-row block of :func:`_block_logistic` (the same
    decisions as word2vec.c's per-word loop, with every output row updated from the values
    before the step), or :func:`full_softmax_step`. The accumulated ``alpha d log L / d h``
    is then added to every context row; with ``cbow_mean`` the exact gradient would be
    divided by ``B``, but like word2vec.c and gensim we add it undivided.
    """
    longest = 1
    for s in range(sentence_start, sentence_end):
        if offsets[s + 1] - offsets[s] > longest:
            longest = offsets[s + 1] - offsets[s]
    kept = np.empty(longest, np.int32)
    context = np.empty(2 * window, np.int32)
    hidden = np.empty((1, dim), np.float32)
    hidden_id = np.zeros(1, np.int32)
    grad = np.zeros((1, dim), np.float32)
    coef = np.empty((1, max(negative + 1, MAX_CODE_LENGTH)), np.float32)
    out_ids = np.empty(negative + 1, np.int32)
    next_ids = np.empty(negative + 1, np.int32)
    next_m = 0
    ns_labels = np.zeros(negative + 1, np.float32)
    ns_labels[0] = 1.0
    hs_labels = np.empty(MAX_CODE_LENGTH, np.float32)
    path = np.empty(MAX_CODE_LENGTH, np.int32)
    loss = 0.0
    examples = 0
    words = 0
    for s in range(sentence_start, sentence_end):
        n, state = _subsample(tokens, offsets[s], offsets[s + 1], keep_prob, kept, state)
        words += n
        if n < 2:
            continue  # no context
        if negative > 0:
            next_m, state = _draw_negatives(next_ids, kept[0], table, negative, state)
        for i in range(n):
            centre = kept[i]
            if negative > 0:
                m, next_m, state = _next_negatives(out_ids, next_ids, next_m, kept, i, n, table, negative,
                                                   output_ns, state, dim)
            n_ctx, state = _context(kept, n, i, window, context, state)
            examples += 1
            for j in range(dim):
                grad[0, j] = 0.0
            _sum_rows(input_vectors, context, n_ctx, hidden, dim)
            if cbow_mean:
                scale = np.float32(1.0) / n_ctx
                for j in range(dim):
                    hidden[0, j] *= scale
            if use_softmax:
                loss += full_softmax_step(hidden[0], output_ns, centre, alpha, grad[0])
            if negative > 0:
                loss += _block_logistic(hidden, hidden_id, 1, output_ns, out_ids, ns_labels, m, alpha,
                                        grad, coef, False, compute_loss, dim)
            if use_hs:
                length = _huffman_path(centre, codes, points, code_lengths, hs_labels, path)
                loss += _block_logistic(hidden, hidden_id, 1, output_hs, path, hs_labels, length,
                                        alpha, grad, coef, True, compute_loss, dim)
            for b in range(n_ctx):
                row = np.uint64(context[b])
                for j in range(dim):
                    input_vectors[row, j] += grad[0, j]
    return loss, examples, words, state


# -- entry points: the kernels compiled for one vector size (see word2bert.static.native) ----
@functools.lru_cache(maxsize=None)
def _skipgram_for(dim: int):
    def skipgram_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end,
                       keep_prob, table, codes, points, code_lengths, window, negative, use_hs,
                       use_softmax, alpha, state, compute_loss):
        _ = SOURCE_STAMP
        return _skipgram_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end,
                               keep_prob, table, codes, points, code_lengths, window, negative, use_hs,
                               use_softmax, alpha, state, compute_loss, dim)

    return numba.njit(**SPECIALISED_JIT)(skipgram_chunk)


@functools.lru_cache(maxsize=None)
def _cbow_for(dim: int):
    def cbow_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end,
                   keep_prob, table, codes, points, code_lengths, window, negative, use_hs,
                   use_softmax, cbow_mean, alpha, state, compute_loss):
        _ = SOURCE_STAMP
        return _cbow_chunk(input_vectors, output_ns, output_hs, tokens, offsets, sentence_start, sentence_end,
                           keep_prob, table, codes, points, code_lengths, window, negative, use_hs,
                           use_softmax, cbow_mean, alpha, state, compute_loss, dim)

    return numba.njit(**SPECIALISED_JIT)(cbow_chunk)


def train_skipgram_chunk(*args):
    """:func:`_skipgram_chunk` with its last argument ``dim`` compiled in as a constant."""
    return _skipgram_for(int(args[-1]))(*args[:-1])


def train_cbow_chunk(*args):
    """:func:`_cbow_chunk` with its last argument ``dim`` compiled in as a constant."""
    return _cbow_for(int(args[-1]))(*args[:-1])
