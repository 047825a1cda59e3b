"""The readable reference steps of the static models' losses, with the exact sigmoid: each does one SGD
step on the output rows it touches in place and accumulates ``alpha * d log L / d h`` into
``grad_hidden`` (word2vec.c's ``neu1e``), returning the example's loss ``-log L`` before the update.
``test_losses.py`` checks them against finite differences; the training kernels
(``word2bert.static.losses``) tabulate the sigmoid and are checked against per-pair loops like these.
Output rows are updated one after another and ``grad_hidden`` uses each row *before* its own update,
exactly as word2vec.c and gensim do.
"""

import math

import numba
import numpy as np

from word2bert.static.sampling import MAX_EXP, draw_negative, log_sigmoid, sigmoid


@numba.njit(inline="always")
def binary_logistic_update_row(hidden, output_vectors, row, label, alpha, grad_hidden):
    """One logistic decision ``p = sigma(h . v)``, ``v = output_vectors[row]``, target ``label`` in {0, 1}.

    ``log L = label * log sigma(x) + (1 - label) * log sigma(-x)``, ``x = h . v``;
    ``d log L / dx = label - sigma(x)``, so with ``g = alpha * (label - sigma(x))``:
    ``grad_hidden += g * v`` and ``v += g * h``. Returns ``-log L``.
    (Rows are indexed in 2-D, never sliced: a slice costs an atomic reference count; the index
    is made unsigned so that no negative-index wraparound keeps the loops from vectorizing.)
    """
    row = np.uint64(row)
    dim = hidden.shape[0]
    x = np.float32(0.0)
    for i in range(dim):
        x += hidden[i] * output_vectors[row, i]
    g = alpha * (label - sigmoid(x))
    if label > 0.5:
        loss = -log_sigmoid(x)
    else:
        loss = -log_sigmoid(-x)
    for i in range(dim):
        grad_hidden[i] += g * output_vectors[row, i]
    for i in range(dim):
        output_vectors[row, i] += g * hidden[i]
    return loss


@numba.njit
def negative_sampling_step(hidden, output_vectors, target, table, state, negative, alpha, grad_hidden):
    """Negative sampling (Mikolov et al. 2013), word2vec.c's ``syn1neg`` loop.

    ``log L = log sigma(h . v_t) + sum_{k=1..K} log sigma(-h . v_{n_k})`` with ``K = negative``
    words ``n_k`` drawn from ``table`` (a draw equal to ``target`` is skipped, as in
    word2vec.c). Gradient: ``d log L / d h = (1 - sigma(h.v_t)) v_t - sum_k sigma(h.v_{n_k}) v_{n_k}``.
    Updates ``v_t`` and the ``v_{n_k}`` in place, ``grad_hidden += alpha * d log L / d h``.
    Returns ``(-log L, state)``.
    """
    loss = binary_logistic_update_row(hidden, output_vectors, target, np.float32(1.0), alpha, grad_hidden)
    for _ in range(negative):
        word, state = draw_negative(table, state)
        if word == target:
            continue
        loss += binary_logistic_update_row(hidden, output_vectors, word, np.float32(0.0), alpha, grad_hidden)
    return loss, state


@numba.njit(inline="always")
def hierarchical_softmax_path(hidden, output_vectors, codes, points, word, alpha, grad_hidden, length):
    """:func:`hierarchical_softmax_step` for row ``word`` of the tree's ``codes``/``points`` matrices."""
    loss = np.float32(0.0)
    dim = hidden.shape[0]
    for k in range(length):
        node = np.uint64(points[word, k])
        x = np.float32(0.0)
        for i in range(dim):
            x += hidden[i] * output_vectors[node, i]
        sign = np.float32(1.0) - np.float32(2.0) * codes[word, k]
        loss -= log_sigmoid(sign * x)
        if x <= -MAX_EXP or x >= MAX_EXP:
            continue
        g = alpha * (np.float32(1.0) - codes[word, k] - sigmoid(x))
        for i in range(dim):
            grad_hidden[i] += g * output_vectors[node, i]
        for i in range(dim):
            output_vectors[node, i] += g * hidden[i]
    return loss


@numba.njit
def hierarchical_softmax_step(hidden, output_vectors, codes, points, length, alpha, grad_hidden):
    """Hierarchical softmax along a Huffman path, word2vec.c's ``syn1`` loop.

    ``log L = sum_{k<length} log sigma((1 - 2 c_k) h . u_{p_k})`` for code bits ``c_k`` and
    inner nodes ``p_k`` (rows of ``output_vectors``); per node ``g = alpha (1 - c_k - sigma(x))``,
    ``grad_hidden += g u_{p_k}``, ``u_{p_k} += g h``. As word2vec.c and gensim do, a node with
    ``|x| >= MAX_EXP`` (6) is not updated (its sigmoid is saturated); its loss still counts.
    ``codes`` / ``points`` are one word's rows of the tree (1-D). Returns ``-log L``.
    """
    return hierarchical_softmax_path(hidden, output_vectors, codes.reshape((1, -1)), points.reshape((1, -1)), 0,
                                     alpha, grad_hidden, length)


@numba.njit
def full_softmax_step(hidden, output_vectors, target, alpha, grad_hidden):
    """Full softmax over every output row: the naive model the word2vec notes start from.

    ``log L = h . v_t - log sum_v exp(h . v_v)``; ``d log L / d h = v_t - sum_v p_v v_v`` with
    ``p_v = softmax(h . V)_v``. Per row ``g_v = alpha (1[v = t] - p_v)``: ``grad_hidden += g_v v_v``
    (old rows), then ``v_v += g_v h``. O(V * dim) per example: small vocabularies only.
    Returns ``-log L``.
    """
    n = output_vectors.shape[0]
    dim = hidden.shape[0]
    scores = np.empty(n, np.float32)
    top = np.float32(-np.inf)
    for v in range(np.uint64(n)):
        x = np.float32(0.0)
        for i in range(dim):
            x += hidden[i] * output_vectors[v, i]
        scores[v] = x
        if scores[v] > top:
            top = scores[v]
    total = 0.0
    for v in range(n):
        scores[v] = math.exp(scores[v] - top)
        total += scores[v]
    loss = -(math.log(scores[target] / total))
    for v in range(n):
        g = alpha * ((np.float32(1.0) if v == target else np.float32(0.0)) - np.float32(scores[v] / total))
        for i in range(dim):
            grad_hidden[i] += g * output_vectors[v, i]
    for v in range(n):
        g = alpha * ((np.float32(1.0) if v == target else np.float32(0.0)) - np.float32(scores[v] / total))
        for i in range(dim):
            output_vectors[v, i] += g * hidden[i]
    return loss
