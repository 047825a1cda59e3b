"""How the engine's numba code is compiled: the jit options, cache prefetch, and the entry points
compiled for one vector size.

* ``JIT`` (internal kernels), ``TINY_JIT`` (one-line helpers, inlined by numba) and ``ENTRY_JIT``
  (the entry points, cached on disk): see the note above ``SOURCE_STAMP``.
* :func:`prefetch_row` asks the CPU to bring a matrix row into cache ahead of its use
  (LLVM's ``llvm.prefetch``). The kernels draw the random rows of the *next* example
  (negative samples, Huffman-path nodes) and prefetch them while the current example is
  computed, so the memory latency of a row that is not in cache overlaps useful work.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

CACHE_LINE_FLOATS = 16  # float32 values per 64-byte cache line


@intrinsic
def prefetch(typingctx, array, row, column, for_writing):
    """Hint the CPU to fetch ``array[row, column]``'s cache line (``llvm.prefetch``; a no-op
    semantically). ``for_writing`` must be a literal bool (True when the line will be written)."""
    if not isinstance(for_writing, types.BooleanLiteral):
        return None
    write = 1 if for_writing.literal_value else 0
    signature = types.void(array, row, column, for_writing)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        handle = context.make_array(array_type)(context, builder, args[0])
        index = [context.cast(builder, args[1], sig.args[1], types.intp),
                 context.cast(builder, args[2], sig.args[2], types.intp)]
        pointer = cgutils.get_item_pointer(context, builder, array_type, handle, index, wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32])
        function = builder.module.declare_intrinsic("llvm.prefetch", [byte_pointer], function_type)
        # (address, rw, locality = 3 keep in all cache levels, cache type = 1 data)
        builder.call(function, [builder.bitcast(pointer, byte_pointer), ir.Constant(int32, write),
                                ir.Constant(int32, 3), ir.Constant(int32, 1)])
        return context.get_dummy_value()

    return signature, codegen


@numba.njit(inline="always", nogil=True)
def prefetch_row(matrix, row, dim):
    """Prefetch every cache line of ``matrix[row, :dim]`` for writing (the kernels update what they read)."""
    for column in range(0, dim, CACHE_LINE_FLOATS):
        prefetch(matrix, row, column, True)
    prefetch(matrix, row, dim - 1, True)  # a row that is not line-aligned spills into one more line


def _package_source_stamp() -> str:
    """A digest of the names, sizes and modification times of this package's source files."""
    digest = hashlib.sha1()
    for path in sorted(Path(__file__).resolve().parent.parent.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


# A kernel specialised for one vector size is a closure ``lambda ...: kernel(..., dim)`` over
# ``dim`` (numba types a captured int as a literal, so ``dim`` is a constant in the kernel's
# code: the row loops get a known trip count and are unrolled and vectorised without
# remainder handling, 20-40% faster at dim 100). The loss (``kind``/``mode``) is captured the
# same way, so only its code is compiled (see word2bert.static.losses). The parameters must be
# spelled out (``*args`` would pass ``dim`` through a tuple and lose the constant).
#
# Compilation time: only these entry points are cached on disk (ENTRY_JIT). numba caches a closure
# keyed by its captured values but checks only the closure's own source file for changes, so the
# closure also captures SOURCE_STAMP (as a variable of the enclosing function: numba's cache key
# hashes the closure's cells and the function's bytecode, never the globals it reads): an edited
# kernel anywhere in the package is recompiled, never loaded stale from the cache. The kernels
# they call (JIT) are compiled once per process, each with one signature (callers pass the same
# types: a literal argument would compile another copy), and are not inlined by numba (its
# inliner copies and re-types a function at every call site, which made a chunk kernel cost 15-30 s
# to compile): LLVM still inlines what is small.
#
# No reference counting (``_nrt=False``): a call from one compiled function to another that is not
# inlined (word2vec's output layers, once per centre word; fastText's example, once per example)
# otherwise increments and decrements the reference count of every array it passes, an atomic
# operation on a count that both training threads share (the matrices'). The kernels allocate
# nothing (their scratch arrays come from Python), so they need no counting: without it skip-gram
# and CBOW with negative sampling train 7% and 13% faster, fastText's skip-gram 6% (paired runs,
# session 20). A kernel that allocated an array would no longer compile.
SOURCE_STAMP = _package_source_stamp()
JIT = dict(nogil=True, fastmath=True, _nrt=False)
TINY_JIT = dict(inline="always", nogil=True, fastmath=True, _nrt=False)
ENTRY_JIT = dict(nogil=True, cache=True, fastmath=True, _nrt=False)


def line_aligned_zeros(rows: int, dim: int) -> "np.ndarray":
    """A float32 matrix of zeros whose rows each start on a 64-byte cache line: ``rows x stride`` with
    ``stride`` = ``dim`` rounded up to whole lines (``CACHE_LINE_FLOATS``), its data at a 64-byte
    boundary (numpy's large arrays start 16 bytes past one). With rows of 100 floats (400 bytes)
    three rows in four would straddle lines, and every 64-byte vector load or store of them would
    touch two; the kernels index rows by the matrix's stride and loop over ``dim`` columns only."""
    import numpy as np

    stride = -(-int(dim) // CACHE_LINE_FLOATS) * CACHE_LINE_FLOATS
    raw = np.zeros(int(rows) * stride + CACHE_LINE_FLOATS, np.float32)
    skip = (-raw.ctypes.data % 64) // 4
    return raw[skip:skip + int(rows) * stride].reshape(int(rows), stride)


def line_aligned_copy(matrix) -> "np.ndarray":
    """A copy of the float32 ``(rows, dim)`` ``matrix`` on whole cache lines: the ``(rows, dim)`` view
    of a :func:`line_aligned_zeros` matrix (not C-contiguous unless ``dim`` fills whole lines);
    :func:`whole_lines` gives the kernels the matrix it views."""
    rows, dim = matrix.shape
    lines = line_aligned_zeros(rows, dim)
    lines[:, :dim] = matrix
    return lines[:, :dim]


def on_whole_lines(matrix) -> "np.ndarray":
    """``matrix`` when its rows are on whole cache lines (:func:`whole_lines`), else a
    :func:`line_aligned_copy` of it (a matrix loaded from disk or set by the user, moved once)."""
    import numpy as np

    return matrix if whole_lines(matrix) is not None else line_aligned_copy(np.asarray(matrix, np.float32))


def _byte_bounds(array):
    import numpy as np

    utils = getattr(np.lib, "array_utils", None)  # numpy 2 moved byte_bounds there
    return (utils.byte_bounds if utils is not None else np.byte_bounds)(array)


def whole_lines(view) -> "np.ndarray | None":
    """The C-contiguous ``(rows, stride)`` matrix whose first ``dim`` columns are the float32
    ``(rows, dim)`` ``view`` (same memory), when each of its rows starts on a 64-byte line: ``view``
    itself when it is C-contiguous and so placed, else the matrix behind a :func:`line_aligned_copy`
    (or a row slice of one). None for any other layout (rows straddling lines, a transposed or
    column-sliced array): the caller copies it with :func:`line_aligned_copy`."""
    import numpy as np

    if not isinstance(view, np.ndarray) or view.dtype != np.float32 or view.ndim != 2 or not view.flags.writeable:
        return None
    rows, dim = view.shape
    row_bytes, column_bytes = view.strides
    start = view.__array_interface__["data"][0]
    if column_bytes != 4 or row_bytes % 64 or row_bytes < 4 * dim or start % 64:
        return None
    if view.flags.c_contiguous:
        return view
    if row_bytes - 4 * dim >= 64:
        return None  # a column slice: more than a line's padding
    owner = view
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    low, high = _byte_bounds(owner)
    if start < low or start + rows * row_bytes > high:
        return None
    return np.lib.stride_tricks.as_strided(view, shape=(rows, row_bytes // 4), strides=(row_bytes, 4))


class GatheredRows:
    """The rows of a large matrix that training touches, gathered onto whole cache lines in the order
    of their first use, for the bag kernels (fastText, the classifier).

    fastText's input matrix has a row per word and per n-gram bucket (2M by default) and a corpus
    uses few of them: enmix's vocabulary 250k rows of 2.05M, wn_lexname's training lines 443k. Spread
    over 800 MB, the rows of one word or line lie far apart; gathered, the rows of the frequent words
    (first in a vocabulary sorted by count, or first met in a file) lie together, each on whole
    lines, so the rows two threads write never share a line. Measured against the scattered matrix
    (session 22, 2 threads): paired runs, job by job (both layouts' rows then share the caches),
    fastText skip-gram 0.85-0.91, the classifier 0.90-0.92; in sorted row order instead 0.95, in order
    of use counts 0.96, the full matrix on whole lines 0.97-0.98. Whole five-epoch fastText runs on
    enmix, alternating with the scattered matrix, did not show it past the machine's swings (26.0 /
    38.2 / 23.8 s against 45.8 / 46.4 s, an hour later 34.1 / 44.2 s against 33.1 / 32.5 s).
    Gathering costs 0.1-0.4 s for fastText, 0.2-0.7 s for the classifier's 443k rows (since session 24
    a model trained from scratch draws them in place instead, :meth:`drawn`).

    ``used`` are row numbers of ``matrix`` (every bag's rows, repeats allowed); ``rows`` are the same
    renumbered: ``lines[rows[i]]`` starts as ``matrix[used[i]]``. ``lines`` is the ``(n, dim)`` view
    of the gathered rows (:func:`line_aligned_copy`; :func:`whole_lines` gives the kernels the
    matrix behind it). :meth:`write_back` copies them into ``matrix`` after training.

    :meth:`drawn` gathers the rows of a matrix that is never built (a model trained from scratch:
    its rows' initial values are drawn straight into ``lines``), and the rows then also stand in for
    that matrix after training: :meth:`slots` renumbers any of its rows into ``lines_and_zero``
    (``lines`` and one zero row, for the rows training never touched, zero in such a matrix), so a
    classifier predicts without first writing 443k rows into 800 MB of zeros.
    """

    COPY_ROWS = 1 << 15

    def __init__(self, matrix, used):
        self._index(matrix.shape[0], matrix.shape[1], used)
        for start in range(0, len(self.order), self.COPY_ROWS):  # in parts: no full-size temporary
            part = self.order[start:start + self.COPY_ROWS]
            self.lines[start:start + len(part)] = matrix[part]

    @classmethod
    def drawn(cls, n_rows: int, dim: int, used, draw) -> "GatheredRows":
        """The rows ``used`` of an ``(n_rows, dim)`` matrix that is not built: ``draw(lines, order)``
        gives ``lines[q]`` (the C-contiguous matrix on whole lines, padding columns included) the
        initial value of row ``order[q]``."""
        gathered = cls.__new__(cls)
        gathered._index(n_rows, dim, used)
        draw(gathered._padded, gathered.order)
        return gathered

    def _index(self, n_rows: int, dim: int, used) -> None:
        """``order`` (the distinct rows in order of first use), ``position`` (a row's place in ``lines``;
        ``len(order)``, the zero row, for the others), ``rows`` and zeros for ``lines``."""
        import numpy as np

        used = np.asarray(used)
        first_use = np.full(n_rows, len(used), np.int64)
        np.minimum.at(first_use, used, np.arange(len(used)))  # (5x faster than np.unique's sort)
        distinct = np.flatnonzero(first_use < len(used))
        self.order = distinct[np.argsort(first_use[distinct], kind="stable")]
        n = len(self.order)
        self.position = np.full(n_rows, n, np.int32)
        self.position[self.order] = np.arange(n, dtype=np.int32)
        self.rows = self.position[used]
        self._padded = line_aligned_zeros(n + 1, dim)
        self.lines = self._padded[:n, :dim]
        self.lines_and_zero = self._padded[:, :dim]

    def slots(self, rows) -> "np.ndarray":
        """``rows`` of the matrix as rows of ``lines_and_zero`` (int32): a row training never touched
        becomes the zero row, so this stands for the matrix only where such rows are zero there."""
        import numpy as np

        return self.position[np.asarray(rows)]

    def write_back(self, matrix) -> None:
        """``matrix[order] = lines``: the trained rows back in their places."""
        matrix[self.order] = self.lines


class GatheredInputMatrix:
    """``input_vectors`` of a bag model (fastText, the classifier) that trains on :class:`GatheredRows`.

    After :meth:`GatheredRows.drawn` and training, the rows training touched live in
    ``_trained_rows``; the full matrix (``_input_shape()``: 800 MB with 2M n-gram buckets, most of them
    rows nothing uses, zero) is written from them when ``input_vectors`` is first asked for.
    :meth:`input_rows` and :meth:`_fresh_rows` serve lookups without building it. Setting
    ``input_vectors`` drops the gathered rows; a model that trains from a full matrix gathers from it
    and keeps its rows there until they are asked for again.
    """

    _input_vectors = None
    _trained_rows = None

    def _input_shape(self) -> tuple:
        raise NotImplementedError

    @property
    def input_vectors(self):
        """The input matrix: a row per word, then the rows of the hashed n-grams."""
        if self._trained_rows is not None:
            import numpy as np

            matrix = self._input_vectors
            if matrix is None:
                matrix = np.zeros(self._input_shape(), np.float32)
            self._trained_rows.write_back(matrix)
            self._input_vectors, self._trained_rows = matrix, None
        return self._input_vectors

    @input_vectors.setter
    def input_vectors(self, matrix) -> None:
        self._input_vectors, self._trained_rows = matrix, None

    def _draw_input_rows(self, used, seed: int, workers: int) -> None:
        """A new input matrix of ``_input_shape()``, ``U[-1/dim, 1/dim)`` as fastText, of which only the
        rows ``used`` are drawn (:meth:`GatheredRows.drawn`, :func:`~word2bert.static.init.uniform_rows_at`);
        the others, which no training touches, are zero."""
        from word2bert.static.init import uniform_rows_at

        n_rows, dim = self._input_shape()
        self.input_vectors = None
        self._trained_rows = GatheredRows.drawn(
            n_rows, dim, used, lambda lines, order: uniform_rows_at(lines, order, dim, 1.0 / dim, seed, workers))

    def _fresh_rows(self):
        """The GatheredRows of a model drawn from scratch whose full input matrix is not built yet
        (they stand for it: its other rows are zero), else None."""
        return self._trained_rows if self._trained_rows is not None and self._input_vectors is None else None

    def _rows_source(self, rows):
        """``(matrix, rows)`` with ``matrix[rows] == input_vectors[rows]``: the fresh rows and their
        slots when the full matrix is not built yet (it is not built here), else the full matrix."""
        fresh = self._fresh_rows()
        if fresh is not None:
            return fresh.lines_and_zero, fresh.slots(rows)
        return self.input_vectors, rows

    def _rows_to_train(self, used) -> GatheredRows:
        """The rows ``used`` to train on: the fresh rows when there are (``used`` are theirs), else
        gathered from the full matrix (the caller keeps them as ``_trained_rows``)."""
        fresh = self._fresh_rows()
        return fresh if fresh is not None else GatheredRows(self.input_vectors, used)

    def input_rows(self, rows):
        """``input_vectors[rows]`` (a copy), without building the full matrix after training."""
        import numpy as np

        matrix, rows = self._rows_source(np.asarray(rows))
        return matrix[rows]


# ---------------------------------------------------------------------------------------
# compiling ahead: the kernels of a run are compiled in a helper process while the data is read
# ---------------------------------------------------------------------------------------
def readonly(array, dtype) -> "np.ndarray":
    """``array`` as a C-contiguous read-only view of ``dtype`` (no copy when it already is one): the
    kernels take their input-only arrays this way, so one compiled signature serves every call."""
    import numpy as np

    view = np.ascontiguousarray(array, dtype=dtype).view()
    view.flags.writeable = False
    return view


def writable(array, dtype) -> "np.ndarray":
    """``array`` as a C-contiguous writable array of ``dtype`` (copied only when it is not one). For
    the index arrays a kernel passes to the same callee as a scratch buffer it fills itself (the
    n-gram rows of a word, the tag rows of a document): both then have one type, where a read-only
    one would compile that callee a second time (1.2 s on a first run)."""
    import numpy as np

    array = np.ascontiguousarray(array, dtype=dtype)
    return array if array.flags.writeable else array.copy()


def load_cached(dispatcher, args) -> bool:
    """Whether ``dispatcher`` has (now) a compiled version for ``args``: already in this process, or
    loaded from numba's on-disk cache. Never compiles."""
    from numba import typeof
    from numba.core.typing.typeof import Purpose

    try:
        signature = tuple(typeof(a, Purpose.argument) for a in args)
        if signature in dispatcher.overloads:
            return True
        cache = getattr(dispatcher, "_cache", None)
        if cache is None:
            return False
        compiled = cache.load_overload(signature, dispatcher.targetctx)
        if compiled is None:
            return False
        dispatcher.targetctx.insert_user_function(compiled.entry_point, compiled.fndesc, [compiled.library])
        dispatcher.add_overload(compiled)
        return True
    except Exception:  # a numba without these internals: compile as usual
        return False


class Preparation:
    """Kernels being compiled ahead of their first use (:func:`prepare`); :meth:`wait` before using them."""

    def __init__(self, what: str, detail: str, process=None, pending=()):
        self.what = what
        self.detail = detail
        self.process = process
        self.pending = list(pending)  # (dispatcher, args) not compiled yet
        self.waited = 0.0

    def wait(self) -> float:
        """Block until the kernels are ready (compiling them here if the helper failed); on a terminal
        a spinner says what is compiled and that this is the first run only. Returns the seconds waited."""
        import time

        from word2bert.progress import spinner

        if not self.pending:
            return 0.0
        start = time.perf_counter()
        with spinner(f"{self.what}: compiling the numba kernels for {self.detail} (first run only; cached "
                     "afterwards)"):
            if self.process is not None:
                self.process.wait()
                self.process = None
            for dispatcher, args in self.pending:
                if not load_cached(dispatcher, args):
                    dispatcher(*args)  # the helper could not compile or cache it: compile here
        self.pending = []
        self.waited = time.perf_counter() - start
        return self.waited


def prepare(warmups, what: str, detail: str) -> Preparation:
    """Start compiling the kernels that the ``warmups`` name, while the caller reads its data.

    ``warmups`` are ``(module, function, kwargs)``: ``module.function(**kwargs)`` returns
    ``(dispatcher, args)``, a kernel and arguments of the types training will call it with (tiny
    data: calling it trains nothing that matters). Kernels found in numba's cache are loaded now;
    the others are compiled by a helper process (``python -m word2bert.static.native``) into that
    cache, on another core while this process reads and counts the corpus, and :meth:`wait` then
    loads them. ``WORD2BERT_COMPILE=here`` compiles in this process instead (at :meth:`wait`).
    """
    import importlib
    import json
    import os
    import subprocess
    import sys

    pending, specs = [], []
    for module, function, kwargs in warmups:
        dispatcher, args = getattr(importlib.import_module(module), function)(**kwargs)
        if not load_cached(dispatcher, args):
            pending.append((dispatcher, args))
            specs.append([module, function, kwargs])
    process = None
    if specs and os.environ.get("WORD2BERT_COMPILE", "process") != "here":
        key = json.dumps(specs)
        process = _HELPERS.get(key)
        if process is None or process.poll() is not None:  # (a model built right after another shares its helper)
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
            try:
                process = subprocess.Popen([sys.executable, "-m", "word2bert.static.native", key], env=env,
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
                _HELPERS[key] = process
            except OSError:
                process = None
    return Preparation(what, detail, process, pending)


_HELPERS: dict = {}  # the helper process compiling each set of kernels


def _compile_main(specs_json: str) -> None:
    """The helper process: compile (and so cache) the kernels of ``specs_json``."""
    import importlib
    import json

    for module, function, kwargs in json.loads(specs_json):
        dispatcher, args = getattr(importlib.import_module(module), function)(**kwargs)
        dispatcher(*args)


if __name__ == "__main__":
    import sys

    _compile_main(sys.argv[1])
