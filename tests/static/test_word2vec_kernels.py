"""The compiled word2vec kernels against word2vec.c's per-pair loops, written out in numpy (float64).

A window of 1 and no subsampling make every context deterministic; negative sampling draws
from a distribution with a single word, so the negatives are known without replaying the RNG.
The kernels tabulate the sigmoid (4096 steps on [-6, 6]), the reference computes it exactly,
hence the tolerance.
"""

import numpy as np
import pytest

from word2bert.static.huffman import build_huffman_tree
from word2bert.static.kernels import (PrivateHotNodes, PrivateHotWords, _sync_private_rows, train_cbow_chunk,
                                      train_skipgram_chunk)
from word2bert.static.sampling import negative_sampling_table

VOCAB, DIM, ALPHA = 7, 12, 0.4
ATOL = 5e-4  # the tabulated sigmoid is off by up to 4e-4 in sigma; measured deviations stay below 3e-4
NOISE_WORD = VOCAB - 1  # the only word the negative-sampling distribution can return
SENTENCES = [[0, 1, 2, 3, 1, 4], [2, 5, 0], [3]]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def corpus():
    tokens = np.array([w for s in SENTENCES for w in s], np.int32)
    offsets = np.cumsum([0] + [len(s) for s in SENTENCES]).astype(np.int64)
    return tokens, offsets


def contexts(sentence, i):
    return [sentence[j] for j in (i - 1, i + 1) if 0 <= j < len(sentence)]


def start_weights(n_inner):
    rng = np.random.default_rng(3)
    return (rng.uniform(-1, 1, (VOCAB, DIM)), rng.uniform(-1, 1, (VOCAB, DIM)),
            rng.uniform(-1, 1, (n_inner, DIM)))


def logistic_steps(hidden, output, decisions, grad):
    """word2vec.c: for each (row, label): f = h.v; g = alpha (label - sigma(f)); neu1e += g v; v += g h.
    Returns -log L. ``decisions`` may ask to skip saturated |f| >= 6 (its HS rule)."""
    loss = 0.0
    for row, label, skip_saturated in decisions:
        f = hidden @ output[row]
        loss -= np.log(sigmoid(f if label else -f))
        if skip_saturated and abs(f) >= 6:
            continue
        g = ALPHA * (label - sigmoid(f))
        grad += g * output[row]
        output[row] += g * hidden
    return loss


def decisions_for(centre, loss, tree):
    if loss == "ns":
        return [(centre, 1.0, False)] + ([(NOISE_WORD, 0.0, False)] if centre != NOISE_WORD else [])
    return [(tree.points[centre, k], 1.0 - tree.codes[centre, k], True) for k in range(tree.code_lengths[centre])]


def tree_and_table(counts=(9, 7, 6, 5, 4, 3, 2)):
    """The Huffman tree and the negative-sampling table of a vocabulary with these counts."""
    counts = np.array(counts)
    return build_huffman_tree(counts), negative_sampling_table(counts)


def train_chunk(sg, loss, inputs, output_ns, output_hs, tree, table, first, last, negative, seed, cbow_mean=True,
                private_rows=None):
    """The skip-gram or CBOW kernel on ``SENTENCES[first:last]`` (window 1, no subsampling), in place."""
    tokens, offsets = corpus()
    args = (inputs, output_ns, output_hs, tokens, offsets, first, last, np.ones(VOCAB, np.float32), table,
            tree.codes, tree.points, tree.code_lengths, 1, negative if loss == "ns" else 0, loss == "hs", False)
    if sg:
        return train_skipgram_chunk(*args, np.float32(ALPHA), np.uint64(seed), True, DIM, private_rows=private_rows)
    return train_cbow_chunk(*args, cbow_mean, np.float32(ALPHA), np.uint64(seed), True, DIM,
                            private_rows=private_rows)


def run_kernel(sg, loss, inputs, output_ns, output_hs, tree, table, cbow_mean=True):
    inputs, output_ns, output_hs = (m.astype(np.float32) for m in (inputs, output_ns, output_hs))
    result = train_chunk(sg, loss, inputs, output_ns, output_hs, tree, table, 0, len(SENTENCES), 1, 5, cbow_mean)
    return result, inputs, output_ns, output_hs


@pytest.mark.parametrize("loss", ["ns", "hs"])
@pytest.mark.parametrize("sg", [1, 0])
def test_kernel_matches_word2vec_c_pair_loop(sg, loss):
    counts = np.array([9, 7, 6, 5, 4, 3, 2])
    tree = build_huffman_tree(counts)
    single_word = np.zeros(VOCAB)
    single_word[NOISE_WORD] = 1
    table = negative_sampling_table(single_word, 1.0)
    inputs, output_ns, output_hs = start_weights(tree.n_inner)
    output = output_ns if loss == "ns" else output_hs
    expected_inputs, expected_output = inputs.copy(), output.copy()
    expected_loss, expected_examples = 0.0, 0
    for sentence in SENTENCES:
        for i, centre in enumerate(sentence):
            context = contexts(sentence, i)
            if not context:
                continue
            decisions = decisions_for(centre, loss, tree)
            if sg:  # each context word's row predicts the centre (word2vec.c's direction)
                for c in context:
                    grad = np.zeros(DIM)
                    expected_loss += logistic_steps(expected_inputs[c].copy(), expected_output, decisions, grad)
                    expected_inputs[c] += grad
                    expected_examples += 1
            else:  # the mean of the context rows predicts the centre; every row gets the whole error
                grad = np.zeros(DIM)
                hidden = expected_inputs[context].mean(axis=0)
                expected_loss += logistic_steps(hidden, expected_output, decisions, grad)
                for c in context:
                    expected_inputs[c] += grad
                expected_examples += 1
    (loss_value, examples, words, _), got_inputs, got_ns, got_hs = run_kernel(
        sg, loss, inputs, output_ns, output_hs, tree, table)
    got_output = got_ns if loss == "ns" else got_hs
    assert examples == expected_examples
    assert words == sum(len(s) for s in SENTENCES)
    assert np.abs(got_inputs - inputs).max() > 0.05  # the steps are large against the tolerance below
    np.testing.assert_allclose(got_inputs, expected_inputs, atol=ATOL)
    np.testing.assert_allclose(got_output, expected_output, atol=ATOL)
    assert loss_value == pytest.approx(expected_loss, rel=2e-3)


@pytest.mark.parametrize("dim", [3, 16, 100])
def test_every_vector_size_gets_its_own_compiled_kernel(dim):
    # the kernels are compiled per vector size: each size must still train the whole row
    counts = np.array([5, 4, 3])
    tree = build_huffman_tree(counts)
    tokens = np.array([0, 1, 2, 1, 0], np.int32)
    offsets = np.array([0, 5], np.int64)
    rng = np.random.default_rng(0)
    inputs = rng.uniform(-1, 1, (3, dim)).astype(np.float32)
    outputs = rng.uniform(-1, 1, (3, dim)).astype(np.float32)
    before = inputs.copy()
    train_skipgram_chunk(inputs, outputs, outputs[:1], tokens, offsets, 0, 1, np.ones(3, np.float32),
                         negative_sampling_table(counts), tree.codes, tree.points, tree.code_lengths, 2, 3, False,
                         False, np.float32(0.5), np.uint64(1), False, dim)
    assert np.all(np.abs(inputs - before).max(axis=0) > 0)  # every coordinate moved


# --- private copies of the hot output rows (several threads) -----------------------------------
def test_merging_private_rows_adds_the_private_step_to_the_shared_row():
    # one hot node (row 0 of 1 shared row); private copy at row 1, its base at row 2
    matrix = np.array([[1.0, 3.0],   # shared: another thread moved it from (1, 2) to (1, 3) meanwhile
                       [1.5, 2.0],   # private: this thread moved it from its base by (0.5, 0)
                       [1.0, 2.0]],  # base: the shared row when this thread last merged
                      np.float32)
    _sync_private_rows(matrix, 0, 1, 1, 2)
    np.testing.assert_array_equal(matrix, [[1.5, 3.0]] * 3)  # both steps kept; both copies restart there
    matrix[1] = [2.0, 3.5]  # this thread's next step
    _sync_private_rows(matrix, 0, 1, 1, 2)
    np.testing.assert_array_equal(matrix, [[2.0, 3.5]] * 3)  # only the new step: the first is not merged twice
    _sync_private_rows(matrix, 0, 1, 1, 2)
    np.testing.assert_array_equal(matrix, [[2.0, 3.5]] * 3)  # nothing new, nothing moves


@pytest.mark.parametrize("loss", ["hs", "ns"])
@pytest.mark.parametrize("sg", [1, 0])
def test_private_hot_rows_give_one_thread_the_same_model_over_several_calls(sg, loss):
    # alone, a thread working on private copies and merging them sees exactly its own steps, however
    # many chunks it trains (each call merges at its end and picks the shared rows up at its start)
    tree, table = tree_and_table()
    inputs, output_ns, output_hs = start_weights(tree.n_inner)
    chunks = [(0, 1), (1, 3), (0, 2), (0, 3)]

    def train(private):
        ins, ns, hs = (m.astype(np.float32) for m in (inputs, output_ns, output_hs))
        hot = None
        if private:
            hot = PrivateHotNodes(hs, threads=2, n_hot=3) if loss == "hs" else PrivateHotWords(ns, threads=2, n_hot=3)
            ns, hs = (ns, hot.matrix) if loss == "hs" else (hot.matrix, hs)
        for first, last in chunks:
            train_chunk(sg, loss, ins, ns, hs, tree, table, first, last, 2, first + 5,
                        private_rows=hot.rows() if hot is not None else None)
        output = hot.shared if hot is not None else (hs if loss == "hs" else ns)
        return ins, output, hot

    shared_inputs, shared_output, _ = train(private=False)
    private_inputs, private_output, hot = train(private=True)
    expected_rows = (tree.n_inner - 3, tree.n_inner) if loss == "hs" else (0, 3)
    shared_rows = tree.n_inner if loss == "hs" else VOCAB  # slot 0's copies start right after the shared rows
    assert hot.rows() == expected_rows + (shared_rows - expected_rows[0],)
    start = output_hs if loss == "hs" else output_ns
    assert np.abs(private_output - start)[expected_rows[0]:expected_rows[1]].max() > 0.05  # the hot rows trained
    np.testing.assert_allclose(private_output, shared_output, atol=1e-5)
    np.testing.assert_allclose(private_inputs, shared_inputs, atol=1e-5)


def test_each_thread_gets_its_own_private_rows():
    import threading

    output_hs = np.arange(20, dtype=np.float32).reshape(10, 2)
    hot = PrivateHotNodes(output_hs, threads=2, n_hot=4)
    assert hot.matrix.shape[0] == 10 + 2 * 2 * 4 and hot.shared.shape == (10, 2)
    # every row on whole 64-byte cache lines: padded to 16 floats, the data at a 64-byte boundary
    assert hot.matrix.shape[1] == 16 and hot.matrix.ctypes.data % 64 == 0 and hot.matrix.flags.c_contiguous
    np.testing.assert_array_equal(hot.shared, output_hs)
    assert not hot.matrix[:10, 2:].any() and not hot.matrix[10:].any()
    assert np.shares_memory(hot.shared, hot.matrix)
    seen = {}
    turn = [threading.Event() for _ in range(3)]
    alive = threading.Barrier(3)  # the three threads live together (a finished thread's id can be reused)

    def ask(i):
        if i:
            turn[i - 1].wait()
        seen[i] = (hot.rows(), hot.rows())
        turn[i].set()
        alive.wait()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (a, a_again), (b, b_again), (c, _) = seen[0], seen[1], seen[2]
    assert a == a_again and b == b_again
    assert c is None  # more threads than slots: the last one writes the shared rows
    ranges = []
    for hot_start, hot_end, shift in (a, b):
        assert (hot_start, hot_end) == (6, 10)
        private = np.arange(hot_start, hot_end) + shift
        ranges.append(set(private) | set(private + 4))  # private copies and their bases
        assert min(ranges[-1]) >= 10 and max(ranges[-1]) < hot.matrix.shape[0]
    assert not ranges[0] & ranges[1]


def test_a_new_training_call_reuses_the_private_rows_and_hands_out_the_slots_again():
    import threading

    output_ns = np.arange(20, dtype=np.float32).reshape(10, 2)
    hot = PrivateHotWords(output_ns, threads=2, n_hot=3)
    assert hot.matrix.shape[0] == 10 + 2 * 2 * 3 and hot.shared.shape == (10, 2) and hot.fits(hot.shared, 2)
    assert not hot.fits(hot.shared, 3) and not hot.fits(output_ns, 2)  # too few slots; not its matrix
    seen = []
    together = threading.Barrier(2)  # the two threads of a run live together (a finished thread's id can be reused)

    def ask():
        seen.append(hot.rows())
        together.wait()

    for _ in range(2):  # two threads, then two more: without new_run they would find every slot taken
        hot.new_run()
        pair = [threading.Thread(target=ask) for _ in range(2)]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join()
    assert None not in seen
    assert {rows[2] for rows in seen} == {10, 16}  # slot 0 and slot 1, each handed out in both runs
    assert all(rows[:2] == (0, 3) for rows in seen)


@pytest.mark.parametrize("loss", ["hs", "ns"])
@pytest.mark.parametrize("sg", [1, 0])
def test_word_vectors_on_whole_cache_lines_train_as_contiguous_ones(sg, loss):
    # the kernels index rows by the matrix's stride and loop over DIM columns: a matrix whose rows are
    # padded to whole lines trains exactly as the contiguous one, and its padding stays zero
    from word2bert.static.native import line_aligned_copy, whole_lines

    tree, table = tree_and_table()
    inputs, output_ns, output_hs = (m.astype(np.float32) for m in start_weights(tree.n_inner))
    padded = whole_lines(line_aligned_copy(inputs))
    assert padded.shape == (VOCAB, 16) and padded.flags.c_contiguous and padded.ctypes.data % 64 == 0
    trained = []
    for ins in (inputs.copy(), padded):
        ns, hs = output_ns.copy(), output_hs.copy()
        train_chunk(sg, loss, ins, ns, hs, tree, table, 0, 3, 2, 5)
        trained.append((ins[:, :DIM].copy(), ns, hs))
    assert np.abs(trained[0][0] - inputs).max() > 0.05  # the word vectors trained
    for contiguous, lines in zip(trained[0], trained[1]):
        np.testing.assert_array_equal(lines, contiguous)
    assert not padded[:, DIM:].any()
