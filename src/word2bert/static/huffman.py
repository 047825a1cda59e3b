"""The Huffman tree of hierarchical softmax, built exactly as word2vec.c's ``CreateBinaryTree``.

Hierarchical softmax (Morin & Bengio 2005; Mikolov et al. 2013) replaces the softmax over
``V`` words by ``V - 1`` binary decisions at the inner nodes of a binary tree. For a word
``w`` with path of inner nodes ``points[w, 0..L-1]`` (root first) and code bits
``codes[w, 0..L-1]``:

    p(w | h) = prod_k sigma((1 - 2 * codes[w, k]) * h . output_vectors[points[w, k]])

so bit 0 means "take the sigma(+x) branch" and bit 1 the sigma(-x) branch (word2vec.c's
``g = (1 - code - f) * alpha``). ``output_vectors`` then has one row per inner node
(word2vec.c's ``syn1``).

Conventions of word2vec.c, kept exactly so that trees (and trained models) match:

* leaves are the words ``0..n-1`` in the vocabulary's order (decreasing count); inner
  nodes are created in order and numbered ``0..n-2``; the root is inner node ``n-2``;
* at each merge the two smallest nodes ``min1`` (smallest) and ``min2`` are taken (ties
  prefer the leaf side, ``count[pos1] < count[pos2]`` strictly), and ``binary[min2] = 1``:
  the second-smallest (the larger, "left" in the word2vec notes) child gets bit 1;
* codes and points are stored root first.

Counts given in any order are handled by a stable sort by decreasing count first (which is
the vocabulary's own order, so for a sorted vocabulary this is word2vec.c to the bit).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from word2bert.errors import Word2BertError

MAX_CODE_LENGTH = 40  # word2vec.c's MAX_CODE_LENGTH


class HuffmanTree(NamedTuple):
    """Codes and inner-node paths of every word (row ``w`` for word id ``w``).

    ``codes[w, :code_lengths[w]]`` are the bits, ``points[w, :code_lengths[w]]`` the inner
    node ids (rows of the hierarchical-softmax ``output_vectors``), both root first.
    """

    codes: np.ndarray  # uint8 (n_words, MAX_CODE_LENGTH)
    points: np.ndarray  # int32 (n_words, MAX_CODE_LENGTH)
    code_lengths: np.ndarray  # int32 (n_words,)

    @property
    def n_inner(self) -> int:
        """Number of inner nodes (rows of the HS output matrix): ``n_words - 1`` (at least 1)."""
        return max(len(self.code_lengths) - 1, 1)


@numba.njit(cache=True)
def _create_binary_tree(sorted_counts, codes, points, code_lengths):  # pragma: no cover - numba
    """word2vec.c's CreateBinaryTree on counts sorted in decreasing order (O(n) two-queue merge)."""
    n = sorted_counts.shape[0]
    count = np.empty(2 * n + 1, np.int64)
    binary = np.zeros(2 * n + 1, np.uint8)
    parent = np.zeros(2 * n + 1, np.int64)
    for a in range(n):
        count[a] = sorted_counts[a]
    for a in range(n, 2 * n + 1):
        count[a] = np.int64(10) ** 15
    pos1 = n - 1
    pos2 = n
    for a in range(n - 1):
        if pos1 >= 0 and count[pos1] < count[pos2]:
            min1 = pos1
            pos1 -= 1
        else:
            min1 = pos2
            pos2 += 1
        if pos1 >= 0 and count[pos1] < count[pos2]:
            min2 = pos1
            pos1 -= 1
        else:
            min2 = pos2
            pos2 += 1
        count[n + a] = count[min1] + count[min2]
        parent[min1] = n + a
        parent[min2] = n + a
        binary[min2] = 1
    code = np.empty(MAX_CODE_LENGTH, np.uint8)
    point = np.empty(MAX_CODE_LENGTH, np.int64)
    root = 2 * n - 2
    for a in range(n):
        b = a
        i = 0
        while b != root:
            if i >= MAX_CODE_LENGTH:
                return False
            code[i] = binary[b]
            point[i] = b
            i += 1
            b = parent[b]
        code_lengths[a] = i
        # word2vec.c: point[0] = root; point[i - b] = point[b] - vocab_size (inner-node ids)
        for k in range(i):
            codes[a, i - k - 1] = code[k]
        if i > 0:
            points[a, 0] = n - 2
            for k in range(1, i):
                points[a, i - k] = point[k] - n
    return True


def build_huffman_tree(counts) -> HuffmanTree:
    """Build the hierarchical-softmax tree for word ``counts`` (word2vec.c's CreateBinaryTree).

    The expected code length ``sum_w p(w) L(w)`` is minimal (Huffman), so frequent words
    take few sigmoid evaluations. A single word gets an empty code (p(w) = 1).
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or len(counts) == 0:
        raise Word2BertError("cannot build a Huffman tree for an empty vocabulary")
    if (counts < 0).any():
        raise Word2BertError("word counts must be >= 0 to build a Huffman tree")
    n = len(counts)
    order = np.argsort(-counts, kind="stable")
    sorted_codes = np.zeros((n, MAX_CODE_LENGTH), np.uint8)
    sorted_points = np.zeros((n, MAX_CODE_LENGTH), np.int32)
    sorted_lengths = np.zeros(n, np.int32)
    if not _create_binary_tree(counts[order], sorted_codes, sorted_points, sorted_lengths):
        raise Word2BertError(f"Huffman code longer than MAX_CODE_LENGTH={MAX_CODE_LENGTH}")
    if (order == np.arange(n)).all():
        return HuffmanTree(sorted_codes, sorted_points, sorted_lengths)
    codes = np.empty_like(sorted_codes)
    points = np.empty_like(sorted_points)
    lengths = np.empty_like(sorted_lengths)
    codes[order] = sorted_codes
    points[order] = sorted_points
    lengths[order] = sorted_lengths
    return HuffmanTree(codes, points, lengths)
