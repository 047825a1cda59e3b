"""Compiled helpers shared by the numba kernels: cache prefetch and compile-time vector sizes.

* :func:`prefetch_row` asks the CPU to bring a matrix row into cache ahead of its use
  (LLVM's ``llvm.prefetch``). The kernels draw the random rows of the *next* example
  (negative samples, Huffman-path nodes) and prefetch them while the current example is
  computed, so the memory latency of a row that is not in cache overlaps useful work.
* ``SOURCE_STAMP`` and ``SPECIALISED_JIT`` serve the kernels compiled for one vector size
  (see the note above ``SOURCE_STAMP``).
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


@numba.njit(inline="always", nogil=True, cache=True)
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
# remainder handling, 20-40% faster at dim 100). The parameters must be spelled out
# (``*args`` would pass ``dim`` through a tuple and lose the constant). numba caches a
# closure keyed by its captured values but checks only the closure's own source file for
# changes, so the closure also captures SOURCE_STAMP: an edited kernel is recompiled,
# never loaded stale from the cache.
SOURCE_STAMP = _package_source_stamp()
SPECIALISED_JIT = dict(nogil=True, cache=True, fastmath=True)
