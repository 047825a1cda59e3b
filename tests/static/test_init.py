"""Initial weights: seeded rows that do not depend on which rows are drawn or how many threads draw them."""

import numpy as np

from word2bert.static.init import uniform_matrix, uniform_rows_at


def test_uniform_matrix_is_uniform_and_seeded():
    full = uniform_matrix(50, 7, 0.25, seed=3)
    assert full.dtype == np.float32 and np.all(np.abs(full) <= 0.25) and np.all(full != 0)
    assert abs(float(full.mean())) < 0.05 and 0.12 < float(full.std()) < 0.16  # U[-a, a): std a / sqrt(3) = 0.144
    np.testing.assert_array_equal(uniform_matrix(50, 7, 0.25, seed=3), full)
    assert not np.array_equal(uniform_matrix(50, 7, 0.25, seed=4), full)


def test_uniform_rows_at_gathers_rows_of_uniform_matrix_into_wider_rows_leaving_the_padding():
    full = uniform_matrix(50, 7, 0.25, seed=3)
    keys = np.array([31, 4, 0, 49], np.int64)
    for workers in (1, 2, 3, 6):
        out = np.zeros((5, 16), np.float32)  # rows padded to 16 columns, one row more than drawn
        uniform_rows_at(out, keys, 7, 0.25, 3, workers)
        np.testing.assert_array_equal(out[:4, :7], full[keys])
        assert not out[:, 7:].any() and not out[4].any()
