"""Each loss step against finite differences of its log-likelihood (numpy, float64)."""

import numpy as np
import pytest

from word2bert.static.huffman import build_huffman_tree
from reference_losses import full_softmax_step, hierarchical_softmax_step, negative_sampling_step
from word2bert.static.sampling import negative_sampling_table

ALPHA = 1e-3


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def numerical_gradient(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def tiny_model(n_rows, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.5, dim), rng.normal(0, 0.5, (n_rows, dim))


def check_step(loglik, hidden, output, run_step):
    """grad_hidden / alpha == d logL/dh and (V_new - V_old) / alpha == d logL/dV."""
    expected_h = numerical_gradient(loglik, hidden)
    expected_v = numerical_gradient(loglik, output)
    before = output.copy()
    loss_before = -loglik()
    grad_hidden = np.zeros_like(hidden)
    loss = run_step(grad_hidden)
    assert loss == pytest.approx(loss_before, rel=1e-5)
    np.testing.assert_allclose(grad_hidden / ALPHA, expected_h, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose((output - before) / ALPHA, expected_v, rtol=1e-4, atol=1e-6)


def test_negative_sampling_gradient():
    n = 12
    hidden, output = tiny_model(n)
    counts = np.arange(n, 0, -1) * 10
    table = negative_sampling_table(counts)
    target, negative = 3, 5

    def draws(state):
        """The negatives the step will draw: word2vec.c's LCG and draw_negative's alias-table
        draw (slot ``x >> 32`` of ``x = high32(state) * V``, kept if ``x mod 2^32`` is below its
        threshold, else its alias), done here in Python."""
        drawn, s = [], state
        for _ in range(negative):
            s = (s * 25214903917 + 11) % 2**64
            product = (s >> 32) * len(table)
            entry = int(table[product >> 32])
            w = int(product >> 32) if product % 2**32 < entry % 2**32 else entry >> 32
            if w != target:
                drawn.append(w)
        return drawn, s

    # a seed whose negatives are distinct (a repeat would be applied sequentially, not jointly)
    state = next(st for st in range(1000, 2000) if len(set(draws(st)[0])) == len(draws(st)[0]) >= 4)
    drawn, s = draws(state)

    def loglik():
        value = log_sigmoid(hidden @ output[target])
        for w in drawn:
            value += log_sigmoid(-(hidden @ output[w]))
        return value

    def run(grad_hidden):
        loss, new_state = negative_sampling_step(hidden, output, target, table, np.uint64(state),
                                                 negative, ALPHA, grad_hidden)
        assert int(new_state) == s
        return loss

    check_step(loglik, hidden, output, run)


def test_hierarchical_softmax_gradient():
    counts = np.array([20, 16, 8, 6, 4, 3])
    tree = build_huffman_tree(counts)
    hidden, output = tiny_model(len(counts) - 1, seed=1)
    word = 5
    length = tree.code_lengths[word]
    codes, points = tree.codes[word], tree.points[word]

    def loglik():
        return sum(log_sigmoid((1 - 2.0 * codes[k]) * (hidden @ output[points[k]])) for k in range(length))

    check_step(loglik, hidden, output,
               lambda g: hierarchical_softmax_step(hidden, output, codes, points, length, ALPHA, g))


def test_hierarchical_softmax_probabilities_sum_to_one():
    counts = np.array([20, 16, 8, 6, 4, 3])
    tree = build_huffman_tree(counts)
    hidden, output = tiny_model(len(counts) - 1, seed=2)
    total = 0.0
    for word in range(len(counts)):
        g = np.zeros_like(hidden)
        loss = hierarchical_softmax_step(hidden, output.copy(), tree.codes[word], tree.points[word],
                                         tree.code_lengths[word], 0.0, g)
        total += np.exp(-loss)
    assert total == pytest.approx(1.0, rel=1e-5)


def test_full_softmax_gradient():
    hidden, output = tiny_model(9, seed=3)
    target = 4

    def loglik():
        scores = output @ hidden
        return scores[target] - np.log(np.sum(np.exp(scores)))

    check_step(loglik, hidden, output, lambda g: full_softmax_step(hidden, output, target, ALPHA, g))


def test_float32_rows_update_in_place():
    hidden, output = tiny_model(9, seed=4)
    hidden, output = hidden.astype(np.float32), output.astype(np.float32)
    before = output.copy()
    g = np.zeros_like(hidden)
    full_softmax_step(hidden, output, 2, np.float32(0.1), g)
    assert not np.allclose(before, output) and np.abs(g).sum() > 0
