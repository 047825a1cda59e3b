"""Samplers checked statistically and against word2vec.c's formulas."""

import numba
import numpy as np
import pytest
from scipy import stats

from word2bert.errors import Word2BertError
from word2bert.static.sampling import (alias_probabilities, draw_negative, keep_probabilities,
                                       negative_sampling_table, next_random, random_int, random_uniform,
                                       sigmoid)


@numba.njit
def _draw_many(table, state, n):
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i], state = draw_negative(table, state)
    return out, state


@numba.njit
def _uniform_many(state, n):
    out = np.empty(n, np.float64)
    for i in range(n):
        out[i], state = random_uniform(state)
    return out


def test_lcg_matches_word2vec_c_arithmetic():
    state = 12345
    for _ in range(20):
        expected = (state * 25214903917 + 11) % 2**64
        state = int(next_random(np.uint64(state)))
        assert state == expected


def test_draw_negative_follows_the_alias_rule():
    counts = np.array([1000, 300, 50, 20, 7, 1, 3])
    table = negative_sampling_table(counts, 0.75)
    words, _ = _draw_many(table, np.uint64(99), 200)
    s = 99
    for w in words:  # slot from the high 32 bits, fraction from the low half of the product
        s = (s * 25214903917 + 11) % 2**64
        product = (s >> 32) * len(table)
        slot, fraction = product >> 32, product % 2**32
        entry = int(table[slot])
        assert w == (slot if fraction < entry % 2**32 else entry >> 32)


@numba.njit
def _ints_many(state, n, high):
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i], state = random_int(state, high)
    return out


@pytest.mark.parametrize("high", [2, 5, 10, 1_000_003])
def test_random_int_is_uniform(high):
    values = _ints_many(np.uint64(11), 300_000, high)
    assert values.min() >= 0 and values.max() < high
    if high <= 10:
        _, pvalue = stats.chisquare(np.bincount(values, minlength=high))
    else:  # too many cells for a chi-square: the scaled values must be uniform on [0, 1)
        pvalue = stats.kstest((values + 0.5) / high, "uniform").pvalue
    assert pvalue > 1e-4


@pytest.mark.parametrize("exponent", [0.75, 0.5, 1.0])
def test_alias_table_encodes_unigram_power_exactly(exponent):
    counts = np.random.default_rng(1).integers(1, 100_000, size=5000)
    counts[[3, 17]] = 0  # never drawn
    p = np.where(counts > 0, counts.astype(float) ** exponent, 0.0)
    p /= p.sum()
    got = alias_probabilities(negative_sampling_table(counts, exponent))
    assert got[3] == 0 and got[17] == 0
    np.testing.assert_allclose(got, p, rtol=1e-6, atol=1e-12)


def test_alias_table_by_hand():
    # P = (0.5, 0.25, 0.25) over 3 slots: word 0 keeps its slot and takes 1/4 of both others'
    table = negative_sampling_table([2, 1, 1], exponent=1.0)
    keep = (table % 2**32) / 2**32
    alias = table >> np.uint64(32)
    assert np.isclose(keep[1], 0.75) and np.isclose(keep[2], 0.75)
    assert alias[1] == 0 and alias[2] == 0 and alias[0] == 0


@pytest.mark.parametrize("exponent", [0.75, 1.0, 0.0])
def test_negative_draws_follow_unigram_power(exponent):
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 5000, size=40)
    table = negative_sampling_table(counts, exponent)
    draws, _ = _draw_many(table, np.uint64(7), 400_000)
    observed = np.bincount(draws, minlength=len(counts))
    p = counts.astype(float) ** exponent
    p /= p.sum()
    chi2, pvalue = stats.chisquare(observed, p * len(draws))
    assert pvalue > 1e-4, (chi2, pvalue)


def test_uniform_is_uniform():
    u = _uniform_many(np.uint64(3), 200_000)
    assert u.min() >= 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_random_int_range():
    state = np.uint64(1)
    seen = set()
    for _ in range(2000):
        value, state = random_int(np.uint64(state), 5)
        seen.add(int(value))
    assert seen == {0, 1, 2, 3, 4}


def test_keep_probabilities_word2vec_c_formula():
    counts = np.array([100000, 20000, 3000, 500, 40, 3], dtype=np.int64)
    sample = 1e-3
    keep = keep_probabilities(counts, sample)
    total = counts.sum()
    for c, p in zip(counts, keep):
        ran = (np.sqrt(c / (sample * total)) + 1) * (sample * total) / c  # word2vec.c
        assert p == pytest.approx(min(1.0, ran), rel=1e-6)
    assert keep[0] < keep[1] < keep[2] <= 1.0
    assert keep[-1] == 1.0
    assert np.all(keep_probabilities(counts, 0) == 1.0)


def test_subsampling_rate_statistically():
    counts = np.array([50000, 8000, 900, 60])
    keep = keep_probabilities(counts, 1e-3)
    u = _uniform_many(np.uint64(11), 100_000)
    for p in keep:
        kept = np.mean(u < p)
        assert abs(kept - p) < 4 * np.sqrt(p * (1 - p) / len(u)) + 1e-9


def test_sigmoid_exact_and_clipped():
    for x in [-50.0, -6.0, -1.0, 0.0, 0.5, 6.0, 50.0]:
        assert sigmoid(x) == pytest.approx(1 / (1 + np.exp(-np.clip(x, -30, 30))), rel=1e-6, abs=1e-12)


def test_bad_input():
    with pytest.raises(Word2BertError):
        negative_sampling_table([])
    with pytest.raises(Word2BertError):
        negative_sampling_table([0, 0])
