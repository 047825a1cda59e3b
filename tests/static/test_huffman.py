"""Huffman tree: the worked example by hand, and word2vec.c's CreateBinaryTree transcribed."""

import heapq

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.static.huffman import MAX_CODE_LENGTH, build_huffman_tree


def reference_create_binary_tree(counts):
    """A straight Python transcription of word2vec.c's CreateBinaryTree (counts sorted desc)."""
    vocab_size = len(counts)
    count = list(counts) + [10**15] * (vocab_size + 1)
    binary = [0] * (2 * vocab_size + 1)
    parent_node = [0] * (2 * vocab_size + 1)
    pos1, pos2 = vocab_size - 1, vocab_size
    for a in range(vocab_size - 1):
        if pos1 >= 0:
            if count[pos1] < count[pos2]:
                min1i, pos1 = pos1, pos1 - 1
            else:
                min1i, pos2 = pos2, pos2 + 1
        else:
            min1i, pos2 = pos2, pos2 + 1
        if pos1 >= 0:
            if count[pos1] < count[pos2]:
                min2i, pos1 = pos1, pos1 - 1
            else:
                min2i, pos2 = pos2, pos2 + 1
        else:
            min2i, pos2 = pos2, pos2 + 1
        count[vocab_size + a] = count[min1i] + count[min2i]
        parent_node[min1i] = vocab_size + a
        parent_node[min2i] = vocab_size + a
        binary[min2i] = 1
    codes, points = [], []
    for a in range(vocab_size):
        b, code, point = a, [], []
        while True:
            code.append(binary[b])
            point.append(b)
            b = parent_node[b]
            if b == vocab_size * 2 - 2:
                break
        i = len(code)
        word_code = [0] * i
        word_point = [0] * (i + 1)
        word_point[0] = vocab_size - 2
        for b in range(i):
            word_code[i - b - 1] = code[b]
            word_point[i - b] = point[b] - vocab_size
        codes.append(word_code)
        points.append(word_point[:i])
    return codes, points


def as_lists(tree):
    codes = [tree.codes[w, : tree.code_lengths[w]].tolist() for w in range(len(tree.code_lengths))]
    points = [tree.points[w, : tree.code_lengths[w]].tolist() for w in range(len(tree.code_lengths))]
    return codes, points


def test_worked_example_by_hand():
    # weights 20, 4, 8, 6, 16, 3. Merges (word2vec.c, min2 gets bit 1):
    # 3+4=7 (inner 0, the 4 gets 1); 6+7=13 (inner 1, 7 gets 1); 8+13=21 (inner 2, 13 gets 1);
    # 16+20=36 (inner 3, 20 gets 1); 21+36=57 (root, inner 4, 36 gets 1).
    tree = build_huffman_tree([20, 4, 8, 6, 16, 3])
    codes, points = as_lists(tree)
    assert codes == [[1, 1], [0, 1, 1, 1], [0, 0], [0, 1, 0], [1, 0], [0, 1, 1, 0]]
    assert points == [[4, 3], [4, 2, 1, 0], [4, 2], [4, 2, 1], [4, 3], [4, 2, 1, 0]]
    assert tree.codes.shape == (6, MAX_CODE_LENGTH) and tree.codes.dtype == np.uint8
    assert tree.points.dtype == np.int32 and tree.code_lengths.dtype == np.int32


def test_left_child_is_the_larger_and_gets_bit_one():
    # word2vec.c: binary[min2i] = 1, min2 being the larger of the two merged nodes.
    counts = np.array([20, 16, 8, 6, 4, 3])
    tree = build_huffman_tree(counts)
    # subtree weight reached by each (node, bit) pair
    weight = {}
    for w, c in enumerate(counts):
        for k in range(tree.code_lengths[w]):
            key = (tree.points[w, k], tree.codes[w, k])
            weight[key] = weight.get(key, 0) + c
    for (node, bit), total in weight.items():
        if bit == 1:
            assert total >= weight[(node, 0)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_word2vec_c_transcription(seed):
    rng = np.random.default_rng(seed)
    counts = np.sort(rng.zipf(1.3, size=300).clip(1, 10**6))[::-1]  # sorted, with many ties
    codes, points = as_lists(build_huffman_tree(counts))
    ref_codes, ref_points = reference_create_binary_tree(counts.tolist())
    assert codes == ref_codes
    assert points == ref_points


def test_optimal_and_prefix_free():
    rng = np.random.default_rng(5)
    counts = np.sort(rng.integers(1, 1000, size=200))[::-1]
    tree = build_huffman_tree(counts)
    lengths = tree.code_lengths
    # Kraft equality for a full binary tree, and minimal expected length (heapq Huffman)
    assert np.isclose(np.sum(2.0 ** -lengths.astype(float)), 1.0)
    heap = counts.tolist()
    heapq.heapify(heap)
    optimal = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        optimal += merged
        heapq.heappush(heap, merged)
    assert int(np.sum(lengths * counts)) == optimal
    words = ["".join(map(str, tree.codes[w, : lengths[w]])) for w in range(len(counts))]
    for a in words:
        for b in words:
            assert a is b or not b.startswith(a)
    assert tree.points[:, : lengths.max()].max() <= len(counts) - 2


def test_unsorted_counts_follow_the_stable_sort():
    counts = np.array([3, 20, 4, 16, 8, 6])
    order = np.argsort(-counts, kind="stable")
    tree = build_huffman_tree(counts)
    sorted_tree = build_huffman_tree(counts[order])
    for rank, word in enumerate(order):
        n = tree.code_lengths[word]
        assert n == sorted_tree.code_lengths[rank]
        assert (tree.codes[word, :n] == sorted_tree.codes[rank, :n]).all()
        assert (tree.points[word, :n] == sorted_tree.points[rank, :n]).all()


def test_degenerate_inputs():
    assert build_huffman_tree([7]).code_lengths.tolist() == [0]
    two = build_huffman_tree([5, 9])
    assert as_lists(two) == ([[0], [1]], [[0], [0]])
    with pytest.raises(Word2BertError):
        build_huffman_tree([])
    with pytest.raises(Word2BertError):
        build_huffman_tree([3, -1])
