"""Compiling ahead: a helper process compiles a run's kernels into numba's cache while the run reads its
data, and the run then loads them instead of compiling them itself."""

import os
import subprocess
import sys
import textwrap

KERNEL = textwrap.dedent("""
    import numba
    import numpy as np

    @numba.njit(cache=True)
    def total(values, scale):
        out = 0.0
        for v in values:
            out += v * scale
        return out

    def warm():
        return total, (np.arange(3, dtype=np.float64), 2.0)
""")

PARENT = textwrap.dedent("""
    import json
    from word2bert.static.native import prepare
    import kernel_for_test as k

    first = prepare([("kernel_for_test", "warm", {})], "test", "a kernel")
    helper = first.process is not None
    waited = first.wait()
    assert k.total(*k.warm()[1]) == 6.0
    again = prepare([("kernel_for_test", "warm", {})], "test", "a kernel")
    print(json.dumps({"helper": helper, "compiled_here": len(k.total._cache_misses),
                      "second_needs_nothing": not again.pending and again.process is None}))
""")


def run_parent(tmp_path, **env):
    (tmp_path / "kernel_for_test.py").write_text(KERNEL)
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), **env,
                       PYTHONPATH=os.pathsep.join([str(tmp_path)] + sys.path))
    done = subprocess.run([sys.executable, "-c", PARENT], env=environment, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    import json

    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_helper_process_compiles_and_the_run_loads_from_the_cache(tmp_path):
    result = run_parent(tmp_path)
    assert result == {"helper": True, "compiled_here": 0, "second_needs_nothing": True}


def test_compiling_here_when_asked(tmp_path):
    result = run_parent(tmp_path, WORD2BERT_COMPILE="here")
    assert result == {"helper": False, "compiled_here": 1, "second_needs_nothing": True}


def test_a_wait_for_compiling_says_so_on_a_terminal(monkeypatch):
    """A first run that has to wait for its kernels says what is compiled and that it happens once (issue
    "Reliability", item 12); nothing is said when nothing is pending."""
    import io
    import time

    from word2bert.static.native import Preparation

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    waited = Preparation("word2vec", "vector size 100", pending=[(lambda: time.sleep(0.8), ())]).wait()
    assert waited >= 0.8
    assert "word2vec: compiling the numba kernels for vector size 100 (first run only" in terminal.getvalue()
    assert Preparation("word2vec", "vector size 100").wait() == 0.0


def test_compiled_kernels_pass_arrays_without_reference_counting():
    """JIT's ``_nrt=False`` is what keeps the per-example calls between kernels free of atomic
    reference counts (see the note above SOURCE_STAMP): a jitted function that passes arrays to
    another, not inlined, compiles without any NRT_incref/NRT_decref; with numba's default it has them."""
    import numba
    import numpy as np

    from word2bert.static.native import JIT

    def make(options):
        @numba.njit(**options)
        def callee(a, b, n):
            total = 0.0
            for i in range(n):
                for j in range(a.shape[1]):
                    total += a[i, j] * b[i, j]
                    b[i, j] = a[i, j] - b[i, j]
            return total

        @numba.njit(**options)
        def caller(a, b, n):
            total = 0.0
            for i in range(n):
                total += callee(a, b, i)
            return total

        a = np.ones((3, 4), np.float32)
        b = np.full((3, 4), 2.0, np.float32)
        # callee(n=1): row 0, 1*2 x4 = 8 (b row 0 -> -1); callee(n=2): row 0, 1*(-1) x4 = -4, row 1, 8
        assert caller(a, b, 3) == 12.0
        return "\n".join(caller.inspect_llvm().values())

    default = dict(JIT)
    default.pop("_nrt", None)
    assert "NRT_incref" in make(default)
    assert "NRT_incref" not in make(JIT) and "NRT_decref" not in make(JIT)


def test_a_change_anywhere_in_the_package_changes_the_cached_kernels_key(monkeypatch):
    """The entry points are cached on disk under numba's index key, which hashes the function's
    bytecode and its closure's cells but not the globals it reads: SOURCE_STAMP (the package's
    files) must be a cell, or a kernel cached before an edit of another file (losses.py, native.py)
    is loaded stale after it. Checked with numba's own key function, for every entry point."""
    from word2bert.static import kernels
    from word2bert.static.losses import LOSS_NS, MODE_NS

    builders = [(kernels._word2vec_for, (8, MODE_NS, True)), (kernels._subword_for, (8, LOSS_NS)),
                (kernels._supervised_for, (8, LOSS_NS)), (kernels._document_for, (8, LOSS_NS))]
    for build, args in builders:
        def key(stamp):
            monkeypatch.setattr(kernels, "SOURCE_STAMP", stamp)
            dispatcher = build.__wrapped__(*args)  # a new dispatcher (the lru_cache would return the old one)
            return dispatcher._cache._index_key(("signature",), dispatcher.targetctx.codegen())

        assert key("package as installed") == key("package as installed")
        assert key("package as installed") != key("package after an edit of losses.py"), build.__name__


def test_line_aligned_rows_start_on_cache_lines():
    import numpy as np

    from word2bert.static.native import line_aligned_zeros

    for dim, stride in ((100, 112), (128, 128), (300, 304), (2, 16)):
        matrix = line_aligned_zeros(7, dim)
        assert matrix.shape == (7, stride) and matrix.dtype == np.float32 and matrix.flags.c_contiguous
        assert all(matrix[row].ctypes.data % 64 == 0 for row in range(7)) and not matrix.any()


def test_whole_lines_gives_the_padded_matrix_behind_a_line_aligned_copy_and_refuses_other_layouts():
    import numpy as np

    from word2bert.static.native import line_aligned_copy, whole_lines

    values = np.arange(5 * 100, dtype=np.float32).reshape(5, 100)
    view = line_aligned_copy(values)
    assert not view.flags.c_contiguous and np.array_equal(view, values)
    lines = whole_lines(view)
    assert lines.shape == (5, 112) and lines.flags.c_contiguous and lines.ctypes.data % 64 == 0
    lines[2, 7] = -1.0
    assert view[2, 7] == -1.0 and not lines[:, 100:].any()  # the same memory; the padding is zeros
    assert whole_lines(view[1:3]).shape == (2, 112)  # whole rows of it stay on lines
    aligned = line_aligned_copy(np.ones((4, 128), np.float32))
    assert whole_lines(aligned) is aligned  # 128 floats fill two lines: no padding, C-contiguous
    for other in (values,                      # numpy's own placement: rows straddle lines
                  values.T, view[:, :80],      # transposed; a column slice (more than a line's padding)
                  values.astype(np.float64), np.zeros((2, 3, 4), np.float32)):
        assert whole_lines(other) is None


def test_gathered_rows_are_the_used_rows_in_order_of_first_use_on_whole_lines_and_go_back_in_place():
    import numpy as np

    from word2bert.static.native import GatheredRows, whole_lines

    matrix = np.arange(12 * 100, dtype=np.float32).reshape(12, 100)
    used = np.array([7, 2, 7, 11, 0, 2, 5], np.int32)  # rows 1, 3, 4, 6, 8, 9, 10: no bag's
    gathered = GatheredRows(matrix, used)
    assert gathered.order.tolist() == [7, 2, 11, 0, 5]  # first use, not sorted
    assert gathered.rows.tolist() == [0, 1, 0, 2, 3, 1, 4] and gathered.rows.dtype == np.int32
    assert np.array_equal(gathered.lines[gathered.rows], matrix[used])
    lines = whole_lines(gathered.lines)
    assert lines.shape == (5, 112) and all(lines[r].ctypes.data % 64 == 0 for r in range(5))
    before = matrix.copy()
    gathered.lines[gathered.rows[3]] += 1.0  # "training": row 11
    gathered.lines[gathered.rows[1]] -= 2.0  # row 2
    gathered.write_back(matrix)
    expected = before.copy()
    expected[11] += 1.0
    expected[2] -= 2.0
    assert np.array_equal(matrix, expected)


def test_drawn_gathered_rows_stand_for_a_matrix_whose_other_rows_are_zero():
    import numpy as np

    from word2bert.static.init import uniform_matrix, uniform_rows_at
    from word2bert.static.kernels import bag_means
    from word2bert.static.native import GatheredRows

    used = np.array([7, 2, 7, 11, 0, 2, 5], np.int32)
    gathered = GatheredRows.drawn(12, 100, used, lambda lines, order: uniform_rows_at(lines, order, 100, 0.01, 4))
    full = uniform_matrix(12, 100, 0.01, 4)  # the matrix these rows stand for: the others zero
    full[np.setdiff1d(np.arange(12), used)] = 0.0
    assert gathered.order.tolist() == [7, 2, 11, 0, 5]
    assert np.array_equal(gathered.lines[gathered.rows], full[used])
    assert gathered.lines_and_zero.shape == (6, 100) and not gathered.lines_and_zero[5].any()
    # any rows, touched or not: the same bag means as from the full matrix
    offsets = np.array([0, 3, 3, 7], np.int64)
    rows = np.array([1, 7, 3, 9, 11, 2, 5], np.int32)
    assert gathered.slots(rows).tolist() == [5, 0, 5, 5, 2, 1, 4]
    np.testing.assert_allclose(bag_means(gathered.lines_and_zero, offsets, gathered.slots(rows)),
                               bag_means(full, offsets, rows), rtol=1e-6, atol=1e-9)
    rebuilt = np.zeros((12, 100), np.float32)
    gathered.write_back(rebuilt)
    assert np.array_equal(rebuilt, full)
