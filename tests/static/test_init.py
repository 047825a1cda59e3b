"""Initial weights: seeded rows that do not depend on which rows or how many threads, and the zero
matrix mapped in the background."""

import numpy as np

from word2bert.static.init import ZerosInBackground, uniform_matrix, uniform_rows, uniform_rows_at


def test_uniform_rows_draws_the_rows_of_uniform_matrix_and_leaves_the_others_zero():
    full = uniform_matrix(50, 7, 0.25, seed=3)
    assert full.dtype == np.float32 and np.all(np.abs(full) <= 0.25) and np.all(full != 0)
    assert abs(float(full.mean())) < 0.05 and 0.12 < float(full.std()) < 0.16  # U[-a, a): std a / sqrt(3) = 0.144
    used = np.array([4, 9, 9, 31, 4, 0], np.int64)
    for workers in (1, 2, 3):
        partial = uniform_rows(50, 7, 0.25, 3, used, workers)
        np.testing.assert_array_equal(partial[[0, 4, 9, 31]], full[[0, 4, 9, 31]])
        assert not partial[np.setdiff1d(np.arange(50), used)].any()
    assert not np.array_equal(uniform_matrix(50, 7, 0.25, seed=4), full)


def test_uniform_rows_into_a_matrix_mapped_in_the_background():
    zeros = ZerosInBackground(40 + 1000, 5, mapped_rows=30)
    out = zeros.result(1000 + 12)
    assert out.shape == (1012, 5) and out.flags.c_contiguous and not out.any()
    drawn = uniform_rows(1012, 5, 0.1, 7, np.array([3, 1011, 500]), 2, out=out)
    assert drawn is out
    np.testing.assert_array_equal(drawn, uniform_rows(1012, 5, 0.1, 7, np.array([3, 1011, 500]), 1))
    assert ZerosInBackground(10, 5).result(11) is None  # no room: the caller allocates its own
    assert not ZerosInBackground(10, 5).result(10).any()


def test_uniform_rows_at_gathers_rows_of_uniform_matrix_into_wider_rows_leaving_the_padding():
    full = uniform_matrix(50, 7, 0.25, seed=3)
    keys = np.array([31, 4, 0, 49], np.int64)
    for workers in (1, 2, 3):
        out = np.zeros((5, 16), np.float32)  # rows padded to 16 columns, one row more than drawn
        uniform_rows_at(out, keys, 7, 0.25, 3, workers)
        np.testing.assert_array_equal(out[:4, :7], full[keys])
        assert not out[:, 7:].any() and not out[4].any()
