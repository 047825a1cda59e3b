"""The one engine of the static models: a bag of input rows -> hidden vector -> loss over output rows.

fastText's source is organised this way (``Model::update``: ``computeHidden`` then
``Loss::forward`` then the gradient added to every input row) and so is this module. One
training example is

    h = (1 / |B|) * sum_{r in B} input_vectors[r]           (the bag B of input rows)
    loss over output rows for the targets T (NS, HS, softmax or one-vs-all)
    input_vectors[r] += grad_scale * alpha * d log L / d h   for every r in B

and every model is a choice of B, T and the loss (see ../shared/DESIGN.md):

================  ==========================================  ======================
model             bag B of input rows                           targets T
================  ==========================================  ======================
fastText sg       the centre word + its char n-gram rows        the context words
fastText cbow     every context word + their n-gram rows         the centre word
classifier        words + hashed word n-grams of a line          one label (all for OVA)
PV-DBOW           one tag row of the document (each in turn)     each word of it
PV-DM             tag rows + context words                       the centre word
================  ==========================================  ======================

``grad_scale`` is 1 for fastText's unsupervised models, word2vec.c's CBOW and gensim's
PV-DM with ``dm_mean`` (the full error goes to every row), and ``1/|B|`` for the
supervised classifier (fastText's ``normalizeGradient``: the exact gradient of the mean).

Deviation from fastText, for speed: in skip-gram the hidden vector of a centre word is
computed once for its whole window and its rows are updated once with the summed gradient
(fastText recomputes and updates per context word; the Ji et al. 2016 idea of sharing work
across a window). bench/fasttext_vs_facebook.py shows the quality is unchanged.

The per-target losses are the shared steps of ``word2bert.static.losses``; training is
lock-free (Hogwild): Python threads run chunk kernels that release the GIL and update the
shared matrices in place.
"""

from __future__ import annotations

import concurrent.futures as futures

import numba
import numpy as np

from word2bert.static.losses import (
    binary_logistic_update,
    dot,
    full_softmax_step,
    hierarchical_softmax_step,
    negative_sampling_step,
)
from word2bert.static.sampling import MAX_EXP, log_sigmoid, random_int, random_uniform, sigmoid

LOSS_NS = 0
LOSS_HS = 1
LOSS_SOFTMAX = 2
LOSS_OVA = 3
LOSS_NAMES = {"ns": LOSS_NS, "hs": LOSS_HS, "softmax": LOSS_SOFTMAX, "ova": LOSS_OVA}

_JIT = dict(nogil=True, cache=True, fastmath=True)


# ---------------------------------------------------------------------------------------
# losses with frozen output rows (inference: only the input rows learn)
# ---------------------------------------------------------------------------------------
@numba.njit(inline="always", **_JIT)
def _frozen_logistic(hidden, output_row, label, alpha, grad_hidden):
    """``grad_hidden += alpha (label - sigma(h.v)) v`` without touching ``v``; returns ``-log L``."""
    x = dot(hidden, output_row)
    g = alpha * (label - sigmoid(x))
    for i in range(hidden.shape[0]):
        grad_hidden[i] += g * output_row[i]
    return -log_sigmoid(x) if label > 0.5 else -log_sigmoid(-x)


@numba.njit(**_JIT)
def loss_step(hidden, output_vectors, kind, target, negative, table, codes, points, code_lengths,
              state, alpha, grad_hidden, update_output):
    """One target's loss (NS, HS or full softmax) on ``hidden``; accumulates ``grad_hidden``.

    With ``update_output`` the output rows take their SGD step (training), otherwise they
    are read only (``infer_vector``). Returns ``(-log L, state)``.
    """
    if kind == LOSS_NS:
        if update_output:
            return negative_sampling_step(hidden, output_vectors, target, table, state, negative, alpha,
                                          grad_hidden)
        loss = _frozen_logistic(hidden, output_vectors[target], np.float32(1.0), alpha, grad_hidden)
        size = np.uint64(table.shape[0])
        for _ in range(negative):
            state = state * np.uint64(25214903917) + np.uint64(11)
            word = table[(state >> np.uint64(16)) % size]
            if word != target:
                loss += _frozen_logistic(hidden, output_vectors[word], np.float32(0.0), alpha, grad_hidden)
        return loss, state
    if kind == LOSS_HS:
        if update_output:
            return hierarchical_softmax_step(hidden, output_vectors, codes[target], points[target],
                                             code_lengths[target], alpha, grad_hidden), state
        loss = np.float32(0.0)
        for k in range(code_lengths[target]):
            row = output_vectors[points[target, k]]
            x = dot(hidden, row)
            if x <= -MAX_EXP or x >= MAX_EXP:
                loss -= log_sigmoid((np.float32(1.0) - np.float32(2.0) * codes[target, k]) * x)
                continue
            loss += _frozen_logistic(hidden, row, np.float32(1.0) - codes[target, k], alpha, grad_hidden)
        return loss, state
    return full_softmax_step(hidden, output_vectors, target, alpha, grad_hidden), state


@numba.njit(**_JIT)
def one_vs_all_step(hidden, output_vectors, targets, alpha, grad_hidden):
    """One-vs-all (fastText's ``OneVsAllLoss``): an independent logistic decision per label.

    ``log L = sum_l [y_l log sigma(h.v_l) + (1 - y_l) log sigma(-h.v_l)]`` with ``y_l = 1``
    for the labels in ``targets``; each decision is ``binary_logistic_update``.
    """
    loss = np.float32(0.0)
    for label in range(output_vectors.shape[0]):
        y = np.float32(0.0)
        for t in range(targets.shape[0]):
            if targets[t] == label:
                y = np.float32(1.0)
        loss += binary_logistic_update(hidden, output_vectors[label], y, alpha, grad_hidden)
    return loss


@numba.njit(**_JIT)
def train_bag(input_vectors, output_vectors, bag, targets, kind, negative, table, codes, points, code_lengths,
              state, alpha, grad_scale, hidden, grad_hidden, update_output, first_trainable_row):
    """One example of the engine.

    ``h = mean_{r in bag} input_vectors[r]``; the loss of every target in ``targets``
    (for one-vs-all, ``targets`` is the set of positive labels) accumulates
    ``g = alpha * d log L / d h``; then ``input_vectors[r] += grad_scale * g`` for every
    ``r`` in the bag with ``r >= first_trainable_row`` (a row repeated in the bag gets it
    once per occurrence, as in fastText). Returns ``(-log L, state)``.
    """
    dim = hidden.shape[0]
    n = bag.shape[0]
    for i in range(dim):
        hidden[i] = 0.0
        grad_hidden[i] = 0.0
    for k in range(n):
        row = input_vectors[bag[k]]
        for i in range(dim):
            hidden[i] += row[i]
    inv = np.float32(1.0) / np.float32(n)
    for i in range(dim):
        hidden[i] *= inv
    loss = np.float32(0.0)
    if kind == LOSS_OVA:
        loss = one_vs_all_step(hidden, output_vectors, targets, alpha, grad_hidden)
    else:
        for t in range(targets.shape[0]):
            step_loss, state = loss_step(hidden, output_vectors, kind, targets[t], negative, table, codes, points,
                                         code_lengths, state, alpha, grad_hidden, update_output)
            loss += step_loss
    for i in range(dim):
        grad_hidden[i] *= grad_scale
    for k in range(n):
        r = bag[k]
        if r >= first_trainable_row:
            row = input_vectors[r]
            for i in range(dim):
                row[i] += grad_hidden[i]
    return loss, state


@numba.njit(inline="always", **_JIT)
def _subsample(tokens, start, end, keep_probability, buffer, state):
    """Copy the tokens kept by subsampling (``u < p_keep(w)``) into ``buffer``; returns ``(n, state)``."""
    n = 0
    for p in range(start, end):
        word = tokens[p]
        u, state = random_uniform(state)
        if u < keep_probability[word]:
            buffer[n] = word
            n += 1
    return n, state


# ---------------------------------------------------------------------------------------
# chunk drivers: one call trains sentences [first, last) and releases the GIL
# ---------------------------------------------------------------------------------------
@numba.njit(**_JIT)
def subword_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, subword_offsets,
                  subword_rows, keep_probability, window, skipgram, kind, negative, table, codes, points,
                  code_lengths, alpha_start, alpha_end, seed):
    """fastText skip-gram or CBOW over sentences ``[first, last)`` with subword bags.

    Each kept word ``w`` has input rows ``subword_rows[subword_offsets[w]:subword_offsets[w+1]]``
    (itself and its n-grams). The window radius is uniform in ``1..window`` (fastText).
    Skip-gram: bag = rows of the centre word, targets = the context words. CBOW: bag =
    rows of every context word, target = the centre word. ``alpha`` decays linearly from
    ``alpha_start`` to ``alpha_end`` over the chunk's tokens. Returns ``(loss, examples, tokens)``.
    """
    dim = input_vectors.shape[1]
    hidden = np.empty(dim, np.float32)
    grad_hidden = np.empty(dim, np.float32)
    state = np.uint64(seed)
    total = sentence_offsets[last] - sentence_offsets[first]
    longest = 1
    for s in range(first, last):
        longest = max(longest, sentence_offsets[s + 1] - sentence_offsets[s])
    buffer = np.empty(longest, np.int32)
    targets = np.empty(2 * window + 1, np.int32)
    max_rows = 1
    for w in range(subword_offsets.shape[0] - 1):
        max_rows = max(max_rows, subword_offsets[w + 1] - subword_offsets[w])
    bag = np.empty(2 * window * max_rows, np.int32)
    loss = 0.0
    examples = 0
    done = 0
    for s in range(first, last):
        start = sentence_offsets[s]
        end = sentence_offsets[s + 1]
        alpha = np.float32(alpha_start + (alpha_end - alpha_start) * done / max(total, 1))
        done += end - start
        n, state = _subsample(tokens, start, end, keep_probability, buffer, state)
        for i in range(n):
            b, state = random_int(state, window)
            b += 1
            lo = max(0, i - b)
            hi = min(n, i + b + 1)
            if hi - lo <= 1:
                continue
            if skipgram:
                nt = 0
                for j in range(lo, hi):
                    if j != i:
                        targets[nt] = buffer[j]
                        nt += 1
                w = buffer[i]
                step, state = train_bag(input_vectors, output_vectors,
                                        subword_rows[subword_offsets[w]:subword_offsets[w + 1]], targets[:nt],
                                        kind, negative, table, codes, points, code_lengths, state, alpha,
                                        np.float32(1.0), hidden, grad_hidden, True, 0)
                examples += nt
            else:
                nb = 0
                for j in range(lo, hi):
                    if j != i:
                        w = buffer[j]
                        for q in range(subword_offsets[w], subword_offsets[w + 1]):
                            bag[nb] = subword_rows[q]
                            nb += 1
                targets[0] = buffer[i]
                step, state = train_bag(input_vectors, output_vectors, bag[:nb], targets[:1], kind, negative,
                                        table, codes, points, code_lengths, state, alpha, np.float32(1.0),
                                        hidden, grad_hidden, True, 0)
                examples += 1
            loss += step
    return loss, examples, total


@numba.njit(**_JIT)
def supervised_chunk(input_vectors, output_vectors, example_offsets, example_rows, label_offsets, labels, order,
                     first, last, kind, negative, table, codes, points, code_lengths, alpha_start, alpha_end, seed):
    """fastText supervised over the examples ``order[first:last]``.

    Bag = the example's rows (words, hashed word n-grams), gradient normalised by the bag
    size (``grad_scale = 1/|B|``, fastText's ``normalizeGradient``). Softmax/HS/NS train on
    one label drawn uniformly from the example's labels, one-vs-all on all of them (as
    ``FastText::supervised``). Examples without rows or labels are skipped.
    Returns ``(loss, examples, examples visited)``.
    """
    dim = input_vectors.shape[1]
    hidden = np.empty(dim, np.float32)
    grad_hidden = np.empty(dim, np.float32)
    state = np.uint64(seed)
    total = last - first
    loss = 0.0
    examples = 0
    done = 0
    for position in range(first, last):
        e = order[position]
        r0 = example_offsets[e]
        r1 = example_offsets[e + 1]
        l0 = label_offsets[e]
        l1 = label_offsets[e + 1]
        alpha = np.float32(alpha_start + (alpha_end - alpha_start) * done / max(total, 1))
        done += 1
        if r1 == r0 or l1 == l0:
            continue
        if kind == LOSS_OVA:
            chosen = labels[l0:l1]
        else:
            pick, state = random_int(state, l1 - l0)
            chosen = labels[l0 + pick:l0 + pick + 1]
        step, state = train_bag(input_vectors, output_vectors, example_rows[r0:r1], chosen, kind, negative, table,
                                codes, points, code_lengths, state, alpha, np.float32(1.0) / np.float32(r1 - r0),
                                hidden, grad_hidden, True, 0)
        loss += step
        examples += 1
    return loss, examples, total


@numba.njit(**_JIT)
def document_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, tag_offsets, tag_rows,
                   keep_probability, window, dm, dm_mean, train_words, kind, negative, table, codes, points,
                   code_lengths, alpha_start, alpha_end, seed, update_output, first_trainable_row):
    """Doc2Vec (Le & Mikolov 2014) over documents ``[first, last)``; input rows are words then tags.

    PV-DBOW (``dm=0``): for every kept word and every tag of the document, bag = that tag's
    row, target = the word (each tag separately and updated per word, as gensim). With ``train_words`` also skip-gram on the words
    (bag = a word row, targets = its context). PV-DM (``dm=1``): for every kept word, bag =
    tag rows + context word rows (window radius uniform in ``1..window``), target = the word;
    hidden is their mean (``dm_mean``; the full error goes to every row) or, without
    ``dm_mean``, treated as gensim's sum (error divided by the bag size).
    ``update_output=False`` and ``first_trainable_row`` freeze everything but new tag rows
    (``infer_vector``). Returns ``(loss, examples, tokens)``.
    """
    dim = input_vectors.shape[1]
    hidden = np.empty(dim, np.float32)
    grad_hidden = np.empty(dim, np.float32)
    state = np.uint64(seed)
    total = sentence_offsets[last] - sentence_offsets[first]
    longest = 1
    for s in range(first, last):
        longest = max(longest, sentence_offsets[s + 1] - sentence_offsets[s])
    buffer = np.empty(longest, np.int32)
    targets = np.empty(2 * window + 1, np.int32)
    max_tags = 1
    for d in range(first, last):
        max_tags = max(max_tags, tag_offsets[d + 1] - tag_offsets[d])
    bag = np.empty(2 * window + max_tags, np.int32)
    loss = 0.0
    examples = 0
    done = 0
    for s in range(first, last):
        start = sentence_offsets[s]
        end = sentence_offsets[s + 1]
        alpha = np.float32(alpha_start + (alpha_end - alpha_start) * done / max(total, 1))
        done += end - start
        n, state = _subsample(tokens, start, end, keep_probability, buffer, state)
        tags = tag_rows[tag_offsets[s]:tag_offsets[s + 1]]
        n_tags = tags.shape[0]
        if n_tags == 0:
            continue
        for i in range(n):
            if dm:
                b, state = random_int(state, window)
                b += 1
                for k in range(n_tags):
                    bag[k] = tags[k]
                nb = n_tags
                for j in range(max(0, i - b), min(n, i + b + 1)):
                    if j != i:
                        bag[nb] = buffer[j]
                        nb += 1
                targets[0] = buffer[i]
                scale = np.float32(1.0) if dm_mean else np.float32(1.0) / np.float32(nb)
                step, state = train_bag(input_vectors, output_vectors, bag[:nb], targets[:1], kind, negative,
                                        table, codes, points, code_lengths, state, alpha, scale, hidden,
                                        grad_hidden, update_output, first_trainable_row)
                loss += step
                examples += 1
            else:
                targets[0] = buffer[i]
                for k in range(n_tags):  # each tag predicts the word on its own (gensim's PV-DBOW)
                    step, state = train_bag(input_vectors, output_vectors, tags[k:k + 1], targets[:1], kind, negative,
                                            table, codes, points, code_lengths, state, alpha, np.float32(1.0),
                                            hidden, grad_hidden, update_output, first_trainable_row)
                    loss += step
                    examples += 1
                if train_words:
                    b, state = random_int(state, window)
                    b += 1
                    nt = 0
                    for j in range(max(0, i - b), min(n, i + b + 1)):
                        if j != i:
                            targets[nt] = buffer[j]
                            nt += 1
                    if nt > 0:
                        step, state = train_bag(input_vectors, output_vectors, buffer[i:i + 1], targets[:nt], kind,
                                                negative, table, codes, points, code_lengths, state, alpha,
                                                np.float32(1.0), hidden, grad_hidden, update_output,
                                                first_trainable_row)
                        loss += step
                        examples += nt
    return loss, examples, total


@numba.njit(**_JIT)
def bag_means(input_vectors, offsets, rows):
    """``out[i] = mean_{r in rows[offsets[i]:offsets[i+1]]} input_vectors[r]`` (zero for an empty bag).

    fastText's ``getWordVector``: a word's vector is the mean of its own row and its n-gram rows.
    """
    n = offsets.shape[0] - 1
    dim = input_vectors.shape[1]
    out = np.zeros((n, dim), np.float32)
    for w in range(n):
        count = offsets[w + 1] - offsets[w]
        if count == 0:
            continue
        for q in range(offsets[w], offsets[w + 1]):
            row = input_vectors[rows[q]]
            for i in range(dim):
                out[w, i] += row[i]
        inv = np.float32(1.0) / np.float32(count)
        for i in range(dim):
            out[w, i] *= inv
    return out


# ---------------------------------------------------------------------------------------
# Python side: chunking, learning-rate schedule, threads, progress
# ---------------------------------------------------------------------------------------
def chunk_bounds(offsets: np.ndarray, target_tokens: int = 50_000) -> list[tuple[int, int]]:
    """Split sentences into consecutive ranges of about ``target_tokens`` tokens each."""
    n = len(offsets) - 1
    if n <= 0:
        return []
    marks = np.searchsorted(offsets, np.arange(target_tokens, offsets[-1], target_tokens), side="left")
    cuts = np.unique(np.concatenate([[0], marks, [n]]))
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def schedule_jobs(offsets: np.ndarray, epochs: int, alpha: float, min_alpha: float, seed: int,
                  target_tokens: int = 50_000):
    """Jobs ``(epoch, first, last, alpha_start, alpha_end, seed)`` covering every epoch.

    The learning rate decays linearly with the position in the whole run,
    ``alpha(t) = alpha - (alpha - min_alpha) * t / (epochs * tokens)`` (fastText and word2vec.c).
    """
    bounds = chunk_bounds(offsets, target_tokens)
    total = float(offsets[-1]) * epochs
    jobs = []
    position = 0
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        for first, last in bounds:
            size = int(offsets[last] - offsets[first])
            a0 = alpha - (alpha - min_alpha) * position / total
            position += size
            a1 = alpha - (alpha - min_alpha) * position / total
            jobs.append((epoch, first, last, a0, a1, int(rng.integers(1, 2**62))))
    return jobs


def run_jobs(call, jobs, workers: int, progress=None):
    """Run ``call(job) -> (loss, examples, tokens)`` over ``jobs`` on ``workers`` threads.

    The kernels release the GIL, so threads train in parallel on shared matrices
    (Hogwild). Returns total ``(loss, examples, tokens)``; ``progress`` (tqdm) advances in tokens.
    """
    loss = 0.0
    examples = 0
    tokens = 0
    workers = max(1, int(workers))

    def account(result):
        nonlocal loss, examples, tokens
        loss += float(result[0])
        examples += int(result[1])
        tokens += int(result[2])
        if progress is not None:
            progress.update(int(result[2]))
            if examples:
                progress.set_postfix(loss=f"{loss / examples:.4f}", refresh=False)

    if workers == 1:
        for job in jobs:
            account(call(job))
        return loss, examples, tokens
    with futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending = set()
        job_iter = iter(jobs)
        for job in job_iter:
            pending.add(pool.submit(call, job))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
            for item in done:
                account(item.result())
            for job in job_iter:
                pending.add(pool.submit(call, job))
                if len(pending) >= 2 * workers:
                    break
    return loss, examples, tokens


def uniform_matrix(rows: int, cols: int, bound: float, seed: int) -> np.ndarray:
    """A float32 ``(rows, cols)`` matrix uniform in ``[-bound, bound]`` (fastText's input initialisation),
    drawn directly in float32 (a 2M x 100 matrix takes a second, not a float64 detour)."""
    out = np.random.default_rng(seed).random((rows, cols), dtype=np.float32)
    out *= np.float32(2.0 * bound)
    out -= np.float32(bound)
    return out


def uniform_rows(rows: int, cols: int, bound: float, seed: int, used) -> np.ndarray:
    """Like :func:`uniform_matrix` but only the rows in ``used`` are drawn; the others stay zero.

    A row that no training example touches never changes, so in fastText it only adds noise
    to the vector of an unseen test n-gram; zero is the neutral value, and ``np.zeros`` of a
    2M x 100 matrix costs nothing until written.
    """
    out = np.zeros((rows, cols), np.float32)
    out[used] = uniform_matrix(len(used), cols, bound, seed)
    return out


def dummy_tree():
    """Empty Huffman arrays, passed to the kernels when the loss is not HS (numba needs the types)."""
    return (np.zeros((1, 40), np.uint8), np.zeros((1, 40), np.int32), np.zeros(1, np.int32))


def dummy_table():
    """A one-entry negative table, passed when the loss is not NS."""
    return np.zeros(1, np.int32)
