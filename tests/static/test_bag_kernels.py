"""The engine's multi-target example against fastText's skip-gram update, written out in numpy.

fastText's skip-gram (``FastText::skipgram``) calls ``Model::update`` once per (centre,
context) pair: the hidden vector is the mean of the centre's rows *as they are now*, the
loss's gradient is accumulated, and every row of the bag takes it before the next pair.
``train_bag`` with several targets must give the same matrices.
"""

import numpy as np
import pytest

from word2bert.static import kernels as bag_kernels
from word2bert.static.huffman import build_huffman_tree
from word2bert.static.native import GatheredRows
from word2bert.static.sampling import negative_sampling_table

DIM = 6
ALPHA = 0.5  # large, so that the hidden vector moves noticeably between targets


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def draws(table, state, count):
    """``count`` draws of word2vec.c's LCG from the alias table, as draw_negative makes them:
    ``x = high32(state) * V``, slot ``x >> 32``, kept if ``x mod 2^32`` is below its threshold
    (the entry's low 32 bits), else its alias (the high 32 bits)."""
    drawn = []
    for _ in range(count):
        state = (state * 25214903917 + 11) % 2**64
        product = (state >> 32) * len(table)
        slot, entry = product >> 32, int(table[product >> 32])
        drawn.append(int(slot) if product % 2**32 < entry % 2**32 else entry >> 32)
    return drawn, state


def fasttext_pairs(input_vectors, output_vectors, bag, decisions_of_target, targets):
    """fastText's per-pair loop in float64: ``decisions_of_target(t)`` lists (output row, label)."""
    inputs, outputs = input_vectors.astype(np.float64), output_vectors.astype(np.float64)
    for target in targets:
        hidden = inputs[bag].mean(axis=0)
        grad = np.zeros(DIM)
        for row, label in decisions_of_target(target):
            g = ALPHA * (label - sigmoid(hidden @ outputs[row]))
            grad += g * outputs[row]
            outputs[row] += g * hidden
        for r in bag:
            inputs[r] += grad
    return inputs, outputs


def run_engine(input_vectors, output_vectors, bag, targets, kind, negative, table, tree, state):
    new_in, new_out = input_vectors.copy(), output_vectors.copy()
    codes, points, lengths = tree
    bag_kernels.train_bag(new_in, new_out, np.array(bag, np.int32), np.array(targets, np.int32), kind, negative,
                          table, codes, points, lengths, np.uint64(state), np.float32(ALPHA), np.float32(1.0),
                          np.zeros(DIM, np.float32), np.zeros(DIM, np.float32), True, 0)
    return new_in, new_out


def model(n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.4, (n_in, DIM)).astype(np.float32), rng.normal(0, 0.4, (n_out, DIM)).astype(np.float32)


def shared_hidden(input_vectors, output_vectors, bag, decisions_of_target, targets):
    """The shortcut the engine must *not* take: one hidden vector for every target of the window."""
    inputs, outputs = input_vectors.astype(np.float64), output_vectors.astype(np.float64)
    hidden = inputs[bag].mean(axis=0)
    grad = np.zeros(DIM)
    for target in targets:
        for row, label in decisions_of_target(target):
            g = ALPHA * (label - sigmoid(hidden @ outputs[row]))
            grad += g * outputs[row]
            outputs[row] += g * hidden
    inputs[bag] += grad
    return inputs, outputs


def check(expected, got, not_expected):
    # the kernel's sigma is tabulated (error < 8e-4), fastText's too; the shortcut is far off
    for e, g, n in zip(expected, got, not_expected):
        np.testing.assert_allclose(g, e, atol=1e-3)
    assert max(np.abs(n - e).max() for e, n in zip(expected, not_expected)) > 5e-3


def distinct_rows(decisions):
    """No output row twice among one target's decisions (the engine computes a target's dot
    products before its updates, fastText one after the other: they differ only then)."""
    return all(len({row for row, _ in d}) == len(d) for d in decisions.values())


def test_negative_sampling_targets_in_turn_match_fasttexts_pairs():
    n_words, negative = 9, 3
    input_vectors, output_vectors = model(12, n_words)
    table = negative_sampling_table(np.arange(n_words, 0, -1) * 7, 0.5)
    bag, targets = [0, 4, 9, 11], [2, 5, 1, 7]

    def decisions_from(state):
        decisions = {}
        for t in targets:  # the draws of each target in turn, a draw equal to the target skipped
            drawn, state = draws(table, state, negative)
            decisions[t] = [(t, 1.0)] + [(w, 0.0) for w in drawn if w != t]
        return decisions

    state = next(s for s in range(1000, 3000) if distinct_rows(decisions_from(s)))
    decisions = decisions_from(state)
    expected = fasttext_pairs(input_vectors, output_vectors, bag, decisions.__getitem__, targets)
    got = run_engine(input_vectors, output_vectors, bag, targets, bag_kernels.LOSS_NS, negative, table,
                     bag_kernels.dummy_tree(), state)
    check(expected, got, shared_hidden(input_vectors, output_vectors, bag, decisions.__getitem__, targets))


def test_hierarchical_softmax_targets_in_turn_match_fasttexts_pairs():
    tree = build_huffman_tree([20, 4, 8, 6, 16, 3])
    input_vectors, output_vectors = model(7, 5, seed=1)
    bag, targets = [1, 2, 6], [0, 5, 3]

    def decisions(t):
        return [(int(tree.points[t, k]), 1.0 - float(tree.codes[t, k])) for k in range(tree.code_lengths[t])]

    expected = fasttext_pairs(input_vectors, output_vectors, bag, decisions, targets)
    got = run_engine(input_vectors, output_vectors, bag, targets, bag_kernels.LOSS_HS, 0, bag_kernels.dummy_table(),
                     (tree.codes, tree.points, tree.code_lengths), 1)
    check(expected, got, shared_hidden(input_vectors, output_vectors, bag, decisions, targets))


def test_softmax_targets_in_turn_match_fasttexts_pairs():
    input_vectors, output_vectors = model(6, 5, seed=2)
    bag, targets = [0, 3, 5], [4, 1, 4]

    def pairs(shared):
        inputs, outputs = input_vectors.astype(np.float64), output_vectors.astype(np.float64)
        hidden, total = inputs[bag].mean(axis=0), np.zeros(DIM)
        for target in targets:
            if not shared:
                hidden = inputs[bag].mean(axis=0)
            p = np.exp(outputs @ hidden - (outputs @ hidden).max())
            g = ALPHA * ((np.arange(len(outputs)) == target) - p / p.sum())
            grad = g @ outputs
            outputs += np.outer(g, hidden)
            if shared:
                total += grad
            else:
                inputs[bag] += grad
        inputs[bag] += total
        return inputs, outputs

    got = run_engine(input_vectors, output_vectors, bag, targets, bag_kernels.LOSS_SOFTMAX, 0,
                     bag_kernels.dummy_table(), bag_kernels.dummy_tree(), 1)
    check(pairs(shared=False), got, pairs(shared=True))


def train_on(layout, input_vectors, rows, run):
    """``run(matrix, rows)`` on the input matrix itself (``"scattered"``), or on the rows it uses gathered
    onto whole lines (``"gathered"``, as the models train: GatheredRows) and then written back."""
    if layout == "scattered":
        return run(input_vectors, rows)
    gathered = GatheredRows(input_vectors, rows)
    assert gathered.lines.shape == (len(np.unique(rows)), input_vectors.shape[1])
    result = run(gathered.lines, gathered.rows)
    gathered.write_back(input_vectors)
    return result


@pytest.mark.parametrize("layout", ["scattered", "gathered"])
@pytest.mark.parametrize("loss", ["ns", "hs"])
def test_skipgram_chunk_trains_like_fasttexts_pairs_on_a_sentence(loss, layout):
    """The chunk kernel on one sentence: same result as the pairs, window and draws replayed in Python;
    the same on the rows gathered onto lines (the last input row, which no word uses, stays as it was)."""
    n_words, negative, window = 6, 2, 2
    rng = np.random.default_rng(3)
    input_vectors = rng.normal(0, 0.4, (n_words + 5, DIM)).astype(np.float32)
    output_rows = n_words - 1 if loss == "hs" else n_words
    output_vectors = rng.normal(0, 0.4, (output_rows, DIM)).astype(np.float32)
    sub_offsets = np.array([0, 2, 4, 5, 7, 8, 10], np.int64)  # word w: its own row and one or two "n-gram" rows
    sub_rows = np.array([0, 6, 1, 7, 2, 3, 8, 4, 5, 9], np.int32)
    tokens = np.array([3, 0, 5, 2, 2, 4, 1], np.int32)
    offsets = np.array([0, len(tokens)], np.int64)
    keep = np.ones(n_words, np.float32)
    counts = np.array([20, 4, 8, 6, 16, 3])
    if loss == "hs":
        tree = build_huffman_tree(counts)
        tables = (bag_kernels.dummy_table(), tree.codes, tree.points, tree.code_lengths)
    else:
        tables = (negative_sampling_table(counts, 0.5),) + bag_kernels.dummy_tree()

    def replay(seed):
        """The kernel's random stream (per centre a radius in 1..window, then each target's draws)
        and fastText's per-pair updates; returns (matrices, decisions of every centre)."""
        inputs, outputs = input_vectors.astype(np.float64), output_vectors.astype(np.float64)
        state = seed
        n = len(tokens)
        every = []
        for i in range(n):
            state = (state * 25214903917 + 11) % 2**64
            radius = (((state >> 32) * window) >> 32) + 1
            context = [int(tokens[j]) for j in range(max(0, i - radius), min(n, i + radius + 1)) if j != i]
            bag = sub_rows[sub_offsets[tokens[i]]:sub_offsets[tokens[i] + 1]]
            decisions = []
            for t in context:
                if loss == "ns":
                    drawn, state = draws(tables[0], state, negative)
                    decisions.append([(t, 1.0)] + [(w, 0.0) for w in drawn if w != t])
                else:
                    decisions.append([(int(tree.points[t, k]), 1.0 - float(tree.codes[t, k]))
                                      for k in range(tree.code_lengths[t])])
            every.append(dict(enumerate(decisions)))
            for block in decisions:
                hidden = inputs[bag].mean(axis=0)
                grad = np.zeros(DIM)
                for row, label in block:
                    g = ALPHA * (label - sigmoid(hidden @ outputs[row]))
                    grad += g * outputs[row]
                    outputs[row] += g * hidden
                for r in bag:
                    inputs[r] += grad
        return (inputs, outputs), every

    seed = next(s for s in range(1, 1000) if all(distinct_rows(d) for d in replay(s)[1]))
    (inputs, outputs), _ = replay(seed)
    new_in, new_out = input_vectors.copy(), output_vectors.copy()
    kind = bag_kernels.LOSS_NAMES[loss]
    train_on(layout, new_in, sub_rows, lambda matrix, rows: bag_kernels.subword_chunk(
        matrix, new_out, tokens, offsets, 0, 1, sub_offsets, rows, keep, window, True, kind, negative, *tables, ALPHA,
        ALPHA, seed))
    assert np.array_equal(new_in[-1], input_vectors[-1])
    np.testing.assert_allclose(new_in, inputs, atol=2e-3)
    np.testing.assert_allclose(new_out, outputs, atol=2e-3)


@pytest.mark.parametrize("layout", ["scattered", "gathered"])
@pytest.mark.parametrize("batch", [1, 2, 5])
def test_label_rows_take_their_softmax_steps_in_batches(batch, layout):
    """supervised_chunk with ``output_batch``: every example's bag rows step at once (gradient from the
    label rows as they stand), the label rows take the summed steps g_v h once per ``batch`` examples
    (``batch = 1``: fastText's sequential update); the same on the rows gathered onto lines."""
    rng = np.random.default_rng(5)
    input_vectors = rng.normal(0, 0.4, (10, DIM)).astype(np.float32)  # row 9: no bag's
    output_vectors = rng.normal(0, 0.4, (4, DIM)).astype(np.float32)
    bags = [[0, 3], [1, 2, 8], [4], [5, 6, 7], [2, 3]]
    golds = [1, 3, 0, 2, 1]
    offsets = np.cumsum([0] + [len(b) for b in bags]).astype(np.int64)
    rows = np.concatenate(bags).astype(np.int32)
    label_offsets = np.arange(len(bags) + 1, dtype=np.int64)
    labels = np.array(golds, np.int32)
    inputs, outputs = input_vectors.astype(np.float64), output_vectors.astype(np.float64)
    pending = np.zeros_like(outputs)
    for e, (bag, gold) in enumerate(zip(bags, golds)):
        hidden = inputs[bag].mean(axis=0)
        p = np.exp(outputs @ hidden - (outputs @ hidden).max())
        g = ALPHA * ((np.arange(len(outputs)) == gold) - p / p.sum())
        inputs[bag] += (g @ outputs) / len(bag)  # fastText's gradient of the mean
        pending += np.outer(g, hidden)
        if (e + 1) % batch == 0 or e + 1 == len(bags):
            outputs += pending
            pending[:] = 0
    new_in, new_out = input_vectors.copy(), output_vectors.copy()
    train_on(layout, new_in, rows, lambda matrix, bag_rows: bag_kernels.supervised_chunk(
        matrix, new_out, offsets, bag_rows, label_offsets, labels, np.arange(len(bags)), 0, len(bags),
        bag_kernels.LOSS_SOFTMAX, 0, bag_kernels.dummy_table(), *bag_kernels.dummy_tree(), ALPHA, ALPHA, 1,
        output_batch=batch))
    assert np.array_equal(new_in[9], input_vectors[9])
    np.testing.assert_allclose(new_in, inputs, atol=1e-5)
    np.testing.assert_allclose(new_out, outputs, atol=1e-5)
