"""The output losses of the engine, for every static model: the sigmoid tables, the block of
logistic decisions (negative sampling, hierarchical softmax, one-vs-all) and the softmax.

A loss takes hidden vectors ``h`` (rows of ``inputs``: a context word's input row in word2vec's
skip-gram, the mean of a bag of rows elsewhere), does one SGD step on the output rows it
touches **in place**, and accumulates ``alpha * d log L / d h`` into ``grad`` (word2vec.c's
``neu1e``); the caller adds ``grad`` to the input rows that made ``h``.

sigma and log sigma are tabulated as word2vec.c and fastText do (``EXP_TABLE``): one lookup
instead of an ``exp`` (and a ``log1p`` for the reported loss) per decision. The exact steps these
replace are the readable references in ``tests/static/reference_losses.py``, checked there
against finite differences.

Which loss a kernel runs is a compile-time constant (``kind`` or ``mode``, a literal in the
kernels specialised by :func:`word2bert.static.native.specialise`): :func:`bag_targets` and
:func:`word2vec_outputs` pick the code of that loss while the kernel is typed, so a model
compiles only the loss it trains with (a third of the compilation time of all four).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types
from numba.extending import overload

from word2bert.static.huffman import MAX_CODE_LENGTH
from word2bert.static.native import JIT, TINY_JIT, prefetch_row
from word2bert.static.sampling import MAX_EXP, draw_negative

LOSS_NS = 0
LOSS_HS = 1
LOSS_SOFTMAX = 2
LOSS_OVA = 3
LOSS_NAMES = {"ns": LOSS_NS, "hs": LOSS_HS, "softmax": LOSS_SOFTMAX, "ova": LOSS_OVA}

# word2vec's output layers, alone or together (gensim trains hs=1 with negative>0 on both)
MODE_NS = 1
MODE_HS = 2
MODE_NS_HS = 3
MODE_SOFTMAX = 4

# Counts and positions passed to logistic_block go through int64(): numba compiles a jitted callee
# once per distinct argument type, and a literal (``1``, or a count whose type inference has not
# settled) is a type of its own, so without it the block compiled six times per kernel. The one
# literal kept on purpose is ``first = 0`` where every call of a kernel passes it (word2vec's
# layers, one-vs-all), so such a kernel still compiles one block: the block specialised for it
# trains skip-gram + NS 12-15% faster on enmix (9.3 against 10.1-10.7 s a 3-epoch run, one thread).
_int64 = np.int64

# word2vec.c's EXP_TABLE (fastText tabulates sigmoid and log the same way): sigma and -log sigma on
# [-MAX_EXP, MAX_EXP) at the midpoints of SIGMOID_TABLE_SIZE cells, saturated outside. Error
# < 12/4096 * max sigma' < 8e-4 for sigma, < 0.0025 for -log sigma.
SIGMOID_TABLE_SIZE = 4096
_grid = (np.arange(SIGMOID_TABLE_SIZE, dtype=np.float64) + 0.5) / SIGMOID_TABLE_SIZE * 2 * MAX_EXP - MAX_EXP
SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-_grid))).astype(np.float32)
NEGATIVE_LOG_SIGMOID_TABLE = np.logaddexp(0.0, -_grid).astype(np.float32)
del _grid


@numba.njit(**TINY_JIT)
def _table_index(x):
    return int((x + MAX_EXP) * (SIGMOID_TABLE_SIZE / (2 * MAX_EXP)))


@numba.njit(**TINY_JIT)
def table_sigmoid(x):
    """``sigma(x)`` from SIGMOID_TABLE for ``|x| < MAX_EXP``; 0 below, 1 above (word2vec.c)."""
    if x >= MAX_EXP:
        return np.float32(1.0)
    if x <= -MAX_EXP:
        return np.float32(0.0)
    return SIGMOID_TABLE[_table_index(x)]


@numba.njit(**TINY_JIT)
def table_negative_log_sigmoid(z):
    """``-log sigma(z)`` from NEGATIVE_LOG_SIGMOID_TABLE; ``-z`` below -MAX_EXP, 0 above."""
    if z >= MAX_EXP:
        return np.float32(0.0)
    if z <= -MAX_EXP:
        return np.float32(-z)
    return NEGATIVE_LOG_SIGMOID_TABLE[_table_index(z)]


@numba.njit(**JIT)
def logistic_block(inputs, in_ids, n_in, outputs, out_ids, labels, first, end, alpha, grad, coef, skip_saturated,
                   update_output, compute_loss, dim):
    """Independent logistic decisions of every hidden row ``u_b = inputs[in_ids[b]]``, ``b < n_in``,
    against every output row ``v_k = outputs[out_ids[k]]``, ``first <= k < end``.

    ``x_bk = u_b . v_k``, ``log L = sum_bk [l_k log sigma(x_bk) + (1 - l_k) log sigma(-x_bk)]`` with
    labels ``l_k`` in {0, 1}. With ``g_bk = alpha (l_k - sigma(x_bk))`` (0 where ``skip_saturated``
    and ``|x_bk| >= 6``, word2vec.c's HS rule) each pair takes word2vec.c's step
    ``grad[b] += g_bk v_k``, then (``update_output``) ``v_k += g_bk u_b``. This is negative
    sampling (the target and its negatives), hierarchical softmax (the target's Huffman path)
    and one-vs-all (every label) alike; word2vec's skip-gram runs a centre's ``B`` context rows
    against one shared set of output rows (Ji et al. 2016). Returns ``-log L`` (0 unless
    ``compute_loss``).

    Speed: input row by input row, as word2vec.c runs context word by context word, but within
    a row the ``x_bk`` are computed first (independent dot products overlap in the CPU instead
    of each waiting for the previous update), which differs from word2vec.c and fastText only
    when a row occurs twice among the ``v_k``. Rows are indexed in 2-D with unsigned indices,
    never sliced (a slice costs an atomic reference count, a signed index a wraparound test that
    stops vectorization).
    """
    loss = 0.0
    for b in range(n_in):
        row_in = np.uint64(in_ids[b])
        for k in range(first, end):
            row_out = np.uint64(out_ids[k])
            x = np.float32(0.0)
            for i in range(dim):
                x += inputs[row_in, i] * outputs[row_out, i]
            coef[b, k] = x
        for k in range(first, end):
            x = coef[b, k]
            label = labels[k]
            if compute_loss:
                loss += table_negative_log_sigmoid(x if label > 0.5 else -x)
            if skip_saturated and (x >= MAX_EXP or x <= -MAX_EXP):
                coef[b, k] = 0.0
            else:
                coef[b, k] = alpha * (label - table_sigmoid(x))
        for k in range(first, end):
            g = coef[b, k]
            if g != 0.0:
                row_out = np.uint64(out_ids[k])
                if update_output:
                    for i in range(dim):
                        v = outputs[row_out, i]
                        grad[b, i] += g * v
                        outputs[row_out, i] = v + g * inputs[row_in, i]
                else:
                    for i in range(dim):
                        grad[b, i] += g * outputs[row_out, i]
    return loss


@numba.njit(**JIT)
def softmax(hidden, outputs, target, alpha, grad, scores, update_output, dim):
    """Full softmax of ``h = hidden[0]`` over every output row (fastText's ``SoftmaxLoss``, the naive
    model the word2vec notes start from).

    ``p = softmax(V h)``, ``log L = log p_t = x_t - log sum_v exp(x_v)``; with
    ``g_v = alpha (1[v = t] - p_v)``: ``grad[0] += g_v v_v`` (the row before its update), then
    ``v_v += g_v h``. One ``exp`` per row, no allocation (``scores[0]`` is scratch and holds the
    ``g_v`` afterwards). O(V * dim) per example. Returns ``-log L``.
    """
    n = outputs.shape[0]
    top = np.float32(-np.inf)
    for v in range(n):
        row = np.uint64(v)
        x = np.float32(0.0)
        for i in range(dim):
            x += hidden[0, i] * outputs[row, i]
        scores[0, v] = x
        top = max(top, x)
    x_target = scores[0, target]
    total = np.float32(0.0)
    for v in range(n):
        e = np.float32(math.exp(scores[0, v] - top))
        scores[0, v] = e
        total += e
    scale = alpha / total
    for v in range(n):
        g = -scores[0, v] * scale
        if v == target:
            g += alpha
        scores[0, v] = g
        row = np.uint64(v)
        if update_output:
            for i in range(dim):
                w = outputs[row, i]
                grad[0, i] += g * w
                outputs[row, i] = w + g * hidden[0, i]
        else:
            for i in range(dim):
                grad[0, i] += g * outputs[row, i]
    return math.log(total) - (x_target - top)


# ---------------------------------------------------------------------------------------
# decisions: which output rows a target is scored against
# ---------------------------------------------------------------------------------------
@numba.njit(**TINY_JIT)
def negative_decisions(target, table, negative, out_ids, labels, m, state):
    """Append the target (label 1) and ``negative`` draws from the alias ``table`` (label 0) to the
    decisions ``out_ids/labels`` from position ``m``; a draw equal to the target is skipped, as
    word2vec.c and fastText do. Returns ``(m, state)``."""
    out_ids[m] = target
    labels[m] = 1.0
    m += 1
    for _ in range(negative):
        word, state = draw_negative(table, state)
        if word != target:
            out_ids[m] = word
            labels[m] = 0.0
            m += 1
    return m, state


@numba.njit(**TINY_JIT)
def huffman_decisions(target, codes, points, code_lengths, out_ids, labels, m):
    """Append the target's Huffman path (inner-node rows, labels ``1 - code``) from position ``m``."""
    for k in range(code_lengths[target]):
        out_ids[m] = points[target, k]
        labels[m] = np.float32(1.0) - codes[target, k]
        m += 1
    return m


# ---------------------------------------------------------------------------------------
# the targets of one bag example (fastText, the classifier, Doc2Vec)
# ---------------------------------------------------------------------------------------
@numba.njit(**TINY_JIT)
def _move_hidden(hidden, hidden_start, grad, step_scale, dim):
    """``h = h_start + step_scale * g``: the mean of the bag's rows after the steps taken so far."""
    for i in range(dim):
        hidden[0, i] = hidden_start[0, i] + step_scale * grad[0, i]


@numba.njit(**TINY_JIT)
def _keep_hidden(hidden, hidden_start, dim):
    for i in range(dim):
        hidden_start[0, i] = hidden[0, i]


@numba.njit(**JIT)
def _logistic_targets(hidden, outputs, targets, target_start, target_count, kind, negative, table, codes, points,
                      code_lengths, state, alpha, grad, work, step_scale, update_output, skip_saturated, dim):
    """NS or HS for each target in turn on the hidden vector ``hidden[0]``, which moves by
    ``step_scale * grad`` after each target (see :func:`bag_targets`). Every target's decisions
    are made first, so the rows of later targets are prefetched while the earlier ones train."""
    hidden_start, one_row, out_ids, labels, coef, block_ends = work
    m = 0
    for t in range(target_count):
        target = targets[target_start + t]
        if kind == LOSS_NS:
            m, state = negative_decisions(target, table, negative, out_ids, labels, m, state)
        else:
            m = huffman_decisions(target, codes, points, code_lengths, out_ids, labels, m)
        block_ends[t] = m
    if target_count > 0:
        for k in range(block_ends[0], m):
            prefetch_row(outputs, out_ids[k], dim)
    if target_count > 1:
        _keep_hidden(hidden, hidden_start, dim)
    loss = 0.0
    first = 0
    for t in range(target_count):
        if t > 0:
            _move_hidden(hidden, hidden_start, grad, step_scale, dim)
        loss += logistic_block(hidden, one_row, _int64(1), outputs, out_ids, labels, _int64(first),
                               _int64(block_ends[t]), alpha, grad, coef, skip_saturated, update_output, True, dim)
        first = block_ends[t]
    return loss, state


@numba.njit(**JIT)
def _softmax_targets(hidden, outputs, targets, target_start, target_count, alpha, grad, work, step_scale,
                     update_output, dim):
    """The softmax for each target in turn, ``hidden[0]`` moving after each (see :func:`bag_targets`)."""
    hidden_start, _, _, _, coef, _ = work
    if target_count > 1:
        _keep_hidden(hidden, hidden_start, dim)
    loss = 0.0
    for t in range(target_count):
        if t > 0:
            _move_hidden(hidden, hidden_start, grad, step_scale, dim)
        loss += softmax(hidden, outputs, targets[target_start + t], alpha, grad, coef, update_output, dim)
    return loss


@numba.njit(**JIT)
def _one_vs_all(hidden, outputs, targets, target_start, target_count, alpha, grad, work, update_output,
                skip_saturated, dim):
    """One-vs-all: one logistic decision per output row, label 1 for the targets (all positives)."""
    _, one_row, out_ids, labels, coef, _ = work
    m = outputs.shape[0]
    for k in range(m):
        out_ids[k] = k
        labels[k] = 0.0
    for t in range(target_start, target_start + target_count):
        labels[targets[t]] = 1.0
    return logistic_block(hidden, one_row, _int64(1), outputs, out_ids, labels, 0, _int64(m), alpha, grad, coef,
                          skip_saturated, update_output, True, dim)


def bag_targets(kind, hidden, outputs, targets, target_start, target_count, negative, table, codes, points,
                code_lengths, state, alpha, grad, work, step_scale, update_output, skip_saturated, dim):
    """The loss ``kind`` of the targets ``targets[target_start:+target_count]`` on the hidden vector
    ``hidden[0]``; returns ``(-log L, state)`` and accumulates ``alpha * d log L / d h`` in ``grad[0]``.

    NS, HS and softmax take the targets in turn, and between them ``h`` moves by the step its rows
    took, ``h = h_start + step_scale * grad`` (fastText's skip-gram recomputes the mean of the
    centre's rows after updating them for each (centre, context) pair, and since every row of the
    bag took the same step that mean is the previous one plus the step). One-vs-all takes one block
    of decisions over every output row. Compiled jitted code only (an ``overload``): with a literal
    ``kind`` only that loss's code is compiled. ``work`` is :func:`bag_work`'s.
    """
    raise NotImplementedError("bag_targets runs inside numba-compiled kernels only")


@overload(bag_targets, prefer_literal=True, jit_options=JIT)
def _bag_targets(kind, hidden, outputs, targets, target_start, target_count, negative, table, codes, points,
                 code_lengths, state, alpha, grad, work, step_scale, update_output, skip_saturated, dim):
    chosen = kind.literal_value if isinstance(kind, types.IntegerLiteral) else None

    def logistic(kind, hidden, outputs, targets, target_start, target_count, negative, table, codes, points,
                 code_lengths, state, alpha, grad, work, step_scale, update_output, skip_saturated, dim):
        return _logistic_targets(hidden, outputs, targets, target_start, target_count, kind, negative, table, codes,
                                 points, code_lengths, state, alpha, grad, work, step_scale, update_output,
                                 skip_saturated, dim)

    def softmax_(kind, hidden, outputs, targets, target_start, target_count, negative, table, codes, points,
                 code_lengths, state, alpha, grad, work, step_scale, update_output, skip_saturated, dim):
        return _softmax_targets(hidden, outputs, targets, target_start, target_count, alpha, grad, work, step_scale,
                                update_output, dim), state

    def one_vs_all(kind, hidden, outputs, targets, target_start, target_count, negative, table, codes, points,
                   code_lengths, state, alpha, grad, work, step_scale, update_output, skip_saturated, dim):
        return _one_vs_all(hidden, outputs, targets, target_start, target_count, alpha, grad, work, update_output,
                           skip_saturated, dim), state

    def any_kind(kind, hidden, outputs, targets, target_start, target_count, negative, table, codes, points,
                 code_lengths, state, alpha, grad, work, step_scale, update_output, skip_saturated, dim):
        if kind == LOSS_OVA:
            return _one_vs_all(hidden, outputs, targets, target_start, target_count, alpha, grad, work,
                               update_output, skip_saturated, dim), state
        if kind == LOSS_SOFTMAX:
            return _softmax_targets(hidden, outputs, targets, target_start, target_count, alpha, grad, work,
                                    step_scale, update_output, dim), state
        return _logistic_targets(hidden, outputs, targets, target_start, target_count, kind, negative, table, codes,
                                 points, code_lengths, state, alpha, grad, work, step_scale, update_output,
                                 skip_saturated, dim)

    return {LOSS_NS: logistic, LOSS_HS: logistic, LOSS_SOFTMAX: softmax_, LOSS_OVA: one_vs_all}.get(chosen, any_kind)


def bag_work(kind, negative, n_outputs, max_targets, dim):
    """The scratch arrays of :func:`bag_targets` for up to ``max_targets`` targets per example:
    ``(hidden_start, one_row, out_ids, labels, coef, block_ends)`` (allocated by the caller once)."""
    if kind == LOSS_NS:
        size = max_targets * (negative + 1)
    elif kind == LOSS_HS:
        size = max_targets * MAX_CODE_LENGTH
    else:
        size = max(n_outputs, 1)  # softmax: one score per output row; one-vs-all: one decision per label
    return (np.empty((1, dim), np.float32), np.zeros(1, np.int32), np.empty(size, np.int32),
            np.empty(size, np.float32), np.empty((1, size), np.float32), np.empty(max(max_targets, 1), np.int64))


# ---------------------------------------------------------------------------------------
# the output layers of one word2vec centre word
# ---------------------------------------------------------------------------------------
def word2vec_outputs(mode, inputs, in_ids, n_in, output_ns, output_hs, centre, ns_ids, ns_labels, n_ns, hs_ids,
                     hs_labels, n_hs, alpha, grad, coef, hidden, scores, compute_loss, dim):
    """word2vec's output layers for one centre word, with hidden rows ``inputs[in_ids[:n_in]]``: the
    ``n_ns`` negative-sampling decisions ``ns_ids/ns_labels`` (the centre and its negatives), the
    ``n_hs`` decisions of the centre's Huffman path ``hs_ids/hs_labels`` (:func:`huffman_decisions`),
    both, or the full softmax per row; the decisions are shared by the ``n_in`` rows.
    ``alpha * d log L / d u_b`` goes to ``grad[b]``. Returns ``-log L``. Compiled jitted code only
    (an ``overload``): a literal ``mode`` compiles only its layers."""
    raise NotImplementedError("word2vec_outputs runs inside numba-compiled kernels only")


@numba.njit(**JIT)
def _word2vec_softmax(inputs, in_ids, n_in, output_ns, centre, alpha, grad, hidden, scores, dim):
    """The full softmax of every hidden row in turn (small vocabularies only)."""
    loss = 0.0
    for b in range(n_in):
        row = np.uint64(in_ids[b])
        for i in range(dim):
            hidden[0, i] = inputs[row, i]
        loss += softmax(hidden, output_ns, centre, alpha, grad[b:b + 1], scores, True, dim)
    return loss


@overload(word2vec_outputs, prefer_literal=True, jit_options=JIT)
def _word2vec_outputs(mode, inputs, in_ids, n_in, output_ns, output_hs, centre, ns_ids, ns_labels, n_ns, hs_ids,
                      hs_labels, n_hs, alpha, grad, coef, hidden, scores, compute_loss, dim):
    chosen = mode.literal_value if isinstance(mode, types.IntegerLiteral) else None

    def ns(mode, inputs, in_ids, n_in, output_ns, output_hs, centre, ns_ids, ns_labels, n_ns, hs_ids, hs_labels, n_hs,
           alpha, grad, coef, hidden, scores, compute_loss, dim):
        return logistic_block(inputs, in_ids, _int64(n_in), output_ns, ns_ids, ns_labels, 0, _int64(n_ns),
                              alpha, grad, coef, False, True, compute_loss, dim)

    def hs(mode, inputs, in_ids, n_in, output_ns, output_hs, centre, ns_ids, ns_labels, n_ns, hs_ids, hs_labels, n_hs,
           alpha, grad, coef, hidden, scores, compute_loss, dim):
        return logistic_block(inputs, in_ids, _int64(n_in), output_hs, hs_ids, hs_labels, 0, _int64(n_hs),
                              alpha, grad, coef, True, True, compute_loss, dim)

    def ns_hs(mode, inputs, in_ids, n_in, output_ns, output_hs, centre, ns_ids, ns_labels, n_ns, hs_ids, hs_labels,
              n_hs, alpha, grad, coef, hidden, scores, compute_loss, dim):
        loss = logistic_block(inputs, in_ids, _int64(n_in), output_ns, ns_ids, ns_labels, 0, _int64(n_ns),
                              alpha, grad, coef, False, True, compute_loss, dim)
        return loss + logistic_block(inputs, in_ids, _int64(n_in), output_hs, hs_ids, hs_labels, 0,
                                     _int64(n_hs), alpha, grad, coef, True, True, compute_loss, dim)

    def softmax_(mode, inputs, in_ids, n_in, output_ns, output_hs, centre, ns_ids, ns_labels, n_ns, hs_ids, hs_labels,
                 n_hs, alpha, grad, coef, hidden, scores, compute_loss, dim):
        return _word2vec_softmax(inputs, in_ids, n_in, output_ns, centre, alpha, grad, hidden, scores, dim)

    def any_mode(mode, inputs, in_ids, n_in, output_ns, output_hs, centre, ns_ids, ns_labels, n_ns, hs_ids, hs_labels,
                 n_hs, alpha, grad, coef, hidden, scores, compute_loss, dim):
        if mode == MODE_SOFTMAX:
            return _word2vec_softmax(inputs, in_ids, n_in, output_ns, centre, alpha, grad, hidden, scores, dim)
        loss = 0.0
        if mode == MODE_NS or mode == MODE_NS_HS:
            loss += logistic_block(inputs, in_ids, _int64(n_in), output_ns, ns_ids, ns_labels, 0, _int64(n_ns),
                                   alpha, grad, coef, False, True, compute_loss, dim)
        if mode == MODE_HS or mode == MODE_NS_HS:
            loss += logistic_block(inputs, in_ids, _int64(n_in), output_hs, hs_ids, hs_labels, 0,
                                   _int64(n_hs), alpha, grad, coef, True, True, compute_loss, dim)
        return loss

    return {MODE_NS: ns, MODE_HS: hs, MODE_NS_HS: ns_hs, MODE_SOFTMAX: softmax_}.get(chosen, any_mode)
