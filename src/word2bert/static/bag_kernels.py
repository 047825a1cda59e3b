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

In skip-gram the centre word's rows are read once per window: fastText recomputes their
mean for every (centre, context) pair after updating them, and since every row of the bag
took the same step, that mean is the previous one plus the step (see :func:`_example`).

Speed (the word2vec kernels' recipe): the chunk kernels are compiled per vector size (``dim``
a compile-time constant, see :mod:`word2bert.static.native`); sigma and log sigma are
tabulated (fastText, word2vec.c); the NS/HS/one-vs-all decisions of one example form one
block whose dot products are computed before any update; rows are indexed in 2-D, never
sliced. Training is lock-free (Hogwild): Python threads run chunk kernels that release the
GIL and update the shared matrices in place.
"""

from __future__ import annotations

import concurrent.futures as futures
import functools
import math
import sys

import numba
import numpy as np

from word2bert.errors import Word2BertError
from word2bert.static.huffman import MAX_CODE_LENGTH
from word2bert.static.losses import table_negative_log_sigmoid, table_sigmoid
from word2bert.static.native import SOURCE_STAMP, SPECIALISED_JIT, prefetch_row
from word2bert.static.sampling import MAX_EXP, draw_negative, random_int, random_uniform

LOSS_NS = 0
LOSS_HS = 1
LOSS_SOFTMAX = 2
LOSS_OVA = 3
LOSS_NAMES = {"ns": LOSS_NS, "hs": LOSS_HS, "softmax": LOSS_SOFTMAX, "ova": LOSS_OVA}

_JIT = dict(nogil=True, cache=True, fastmath=True)


# ---------------------------------------------------------------------------------------
# the losses over output rows, for one hidden vector
# ---------------------------------------------------------------------------------------
@numba.njit(inline="always", **_JIT)
def _logistic_block(hidden, output_vectors, out_ids, labels, first, end, alpha, grad_hidden, coef, skip_saturated,
                    update_output, dim):
    """Independent logistic decisions of one hidden vector ``h`` against output rows ``v_k = out_ids[k]``,
    ``first <= k < end``.

    ``x_k = h . v_k``, ``log L = sum_k [l_k log sigma(x_k) + (1 - l_k) log sigma(-x_k)]`` with
    labels ``l_k`` in {0, 1}. With ``g_k = alpha (l_k - sigma(x_k))`` (0 where ``skip_saturated``
    and ``|x_k| >= 6``, word2vec.c's HS rule): ``grad_hidden += g_k v_k``, then (``update_output``)
    ``v_k += g_k h``. This is negative sampling (the target and its negatives), hierarchical
    softmax (the target's Huffman path) and one-vs-all (every label) alike. Returns ``-log L``.

    Speed: the ``x_k`` are computed first, then the ``g_k``, then the updates (independent dot
    products overlap in the CPU instead of each waiting for the previous update), so a row
    that occurs twice in the block has both decisions computed from its value before the
    block (fastText updates it in between). sigma and log sigma are tabulated (fastText and
    word2vec.c). Rows are indexed in 2-D with unsigned indices, never sliced.
    """
    for k in range(first, end):
        row = np.uint64(out_ids[k])
        x = np.float32(0.0)
        for i in range(dim):
            x += hidden[i] * output_vectors[row, i]
        coef[k] = x
    loss = 0.0
    for k in range(first, end):
        x = coef[k]
        label = labels[k]
        loss += table_negative_log_sigmoid(x if label > 0.5 else -x)
        if skip_saturated and (x >= MAX_EXP or x <= -MAX_EXP):
            coef[k] = 0.0
        else:
            coef[k] = alpha * (label - table_sigmoid(x))
    if update_output:
        for k in range(first, end):
            g = coef[k]
            if g != 0.0:
                row = np.uint64(out_ids[k])
                for i in range(dim):
                    v = output_vectors[row, i]
                    grad_hidden[i] += g * v
                    output_vectors[row, i] = v + g * hidden[i]
    else:
        for k in range(first, end):
            g = coef[k]
            if g != 0.0:
                row = np.uint64(out_ids[k])
                for i in range(dim):
                    grad_hidden[i] += g * output_vectors[row, i]
    return loss


@numba.njit(inline="always", **_JIT)
def _softmax(hidden, output_vectors, target, alpha, grad_hidden, scores, update_output, dim):
    """Full softmax over every output row (fastText's ``SoftmaxLoss``; the classifier's labels).

    ``p = softmax(V h)``, ``log L = log p_t = x_t - log sum_v exp(x_v)``; with
    ``g_v = alpha (1[v = t] - p_v)``: ``grad_hidden += g_v v_v`` (the row before its update),
    then ``v_v += g_v h``. One ``exp`` per row, no allocation (``scores`` is scratch and holds the
    ``g_v`` afterwards). Returns ``-log L``.
    """
    n = output_vectors.shape[0]
    top = np.float32(-np.inf)
    for v in range(n):
        row = np.uint64(v)
        x = np.float32(0.0)
        for i in range(dim):
            x += hidden[i] * output_vectors[row, i]
        scores[v] = x
        top = max(top, x)
    x_target = scores[target]
    total = np.float32(0.0)
    for v in range(n):
        e = np.float32(math.exp(scores[v] - top))
        scores[v] = e
        total += e
    scale = alpha / total
    for v in range(n):
        g = -scores[v] * scale
        if v == target:
            g += alpha
        scores[v] = g
        row = np.uint64(v)
        if update_output:
            for i in range(dim):
                w = output_vectors[row, i]
                grad_hidden[i] += g * w
                output_vectors[row, i] = w + g * hidden[i]
        else:
            for i in range(dim):
                grad_hidden[i] += g * output_vectors[row, i]
    return math.log(total) - (x_target - top)


@numba.njit(inline="always", **_JIT)
def _remember_hidden(hidden, hidden_start, target_count, hidden_scale, bag_count, grad_scale, dim):
    """Keep ``h`` before the first of several targets; returns how far ``h`` moves per unit of the
    accumulated gradient, ``hidden_scale * |B| * grad_scale`` (each of the ``|B|`` rows takes it)."""
    if target_count > 1:
        for i in range(dim):
            hidden_start[i] = hidden[i]
    return hidden_scale * np.float32(bag_count) * grad_scale


@numba.njit(inline="always", **_JIT)
def _move_hidden(hidden, hidden_start, grad_hidden, step_scale, dim):
    """``h = h_start + step_scale * g``: the mean of the bag's rows after the steps taken so far."""
    for i in range(dim):
        hidden[i] = hidden_start[i] + step_scale * grad_hidden[i]


@numba.njit(inline="always", **_JIT)
def _example(input_vectors, output_vectors, bag, bag_start, bag_count, targets, target_start, target_count, kind,
             negative, table, codes, points, code_lengths, state, alpha, hidden_scale, grad_scale, update_output,
             skip_saturated, first_trainable_row, scratch, dim):
    """One example of the engine: the bag ``B = bag[bag_start:+bag_count]``, the targets
    ``T = targets[target_start:+target_count]``.

    ``h = hidden_scale * sum_{r in B} input_vectors[r]`` (``hidden_scale = 1/|B|``: the mean).
    Each target in turn takes its loss on ``h``: NS (the target and ``negative`` draws from
    ``table``, a draw equal to the target skipped, as word2vec.c), HS (the target's Huffman
    path) or softmax, giving ``g_t = alpha * d log L_t / d h``; one-vs-all takes one block of
    decisions over every output row (``T`` = the positive labels). Every row ``r`` of ``B``
    with ``r >= first_trainable_row`` gets ``grad_scale * sum_t g_t`` (once per occurrence, as
    fastText). Between targets ``h`` moves by the step its rows took,
    ``h += hidden_scale * |B| * grad_scale * g_t``: fastText's skip-gram recomputes the mean
    after updating the rows for each (centre, context) pair, and this is that mean (exact
    unless a row occurs twice in the bag) without re-reading the rows. Returns ``(-log L, state)``.
    ``skip_saturated``: logistic decisions with ``|x| >= MAX_EXP`` take no step (word2vec.c's HS
    rule; gensim's for NS too). ``scratch`` is :func:`_scratch`'s.
    """
    hidden, grad_hidden, hidden_start, out_ids, labels, coef, block_ends = scratch
    for i in range(dim):
        hidden[i] = 0.0
        grad_hidden[i] = 0.0
    for q in range(bag_start, bag_start + bag_count):
        row = np.uint64(bag[q])
        for i in range(dim):
            hidden[i] += input_vectors[row, i]
    for i in range(dim):
        hidden[i] *= hidden_scale
    loss = 0.0
    if kind == LOSS_OVA:
        m = output_vectors.shape[0]
        for k in range(m):
            out_ids[k] = k
            labels[k] = 0.0
        for t in range(target_start, target_start + target_count):
            labels[targets[t]] = 1.0
        loss = _logistic_block(hidden, output_vectors, out_ids, labels, 0, m, alpha, grad_hidden, coef,
                               skip_saturated, update_output, dim)
    elif kind == LOSS_SOFTMAX:
        step_scale = _remember_hidden(hidden, hidden_start, target_count, hidden_scale, bag_count, grad_scale, dim)
        for t in range(target_count):
            if t > 0:
                _move_hidden(hidden, hidden_start, grad_hidden, step_scale, dim)
            loss += _softmax(hidden, output_vectors, targets[target_start + t], alpha, grad_hidden, coef,
                             update_output, dim)
    else:
        # every target's decisions first (the rows of later targets are then prefetched while the
        # earlier ones train), then each target in turn
        m = 0
        for t in range(target_count):
            target = targets[target_start + t]
            if kind == LOSS_NS:
                out_ids[m] = target
                labels[m] = 1.0
                m += 1
                for _ in range(negative):
                    word, state = draw_negative(table, state)
                    if word != target:
                        out_ids[m] = word
                        labels[m] = 0.0
                        m += 1
            else:
                for k in range(code_lengths[target]):
                    out_ids[m] = points[target, k]
                    labels[m] = np.float32(1.0) - codes[target, k]
                    m += 1
            block_ends[t] = m
        for k in range(block_ends[0] if target_count > 0 else m, m):
            prefetch_row(output_vectors, out_ids[k], dim)
        step_scale = _remember_hidden(hidden, hidden_start, target_count, hidden_scale, bag_count, grad_scale, dim)
        first = 0
        for t in range(target_count):
            if t > 0:
                _move_hidden(hidden, hidden_start, grad_hidden, step_scale, dim)
            loss += _logistic_block(hidden, output_vectors, out_ids, labels, first, block_ends[t], alpha, grad_hidden,
                                    coef, skip_saturated, update_output, dim)
            first = block_ends[t]
    for i in range(dim):
        grad_hidden[i] *= grad_scale
    for q in range(bag_start, bag_start + bag_count):
        r = bag[q]
        if r >= first_trainable_row:
            row = np.uint64(r)
            for i in range(dim):
                input_vectors[row, i] += grad_hidden[i]
    return loss, state


@numba.njit(inline="always", **_JIT)
def _scratch(kind, negative, n_outputs, max_targets, dim):
    """The work arrays of :func:`_example` for up to ``max_targets`` targets per example:
    ``(hidden, grad_hidden, hidden_start, out_ids, labels, coef, block_ends)``."""
    if kind == LOSS_NS:
        size = max_targets * (negative + 1)
    elif kind == LOSS_HS:
        size = max_targets * MAX_CODE_LENGTH
    else:
        size = max(n_outputs, 1)  # softmax: one score per output row; one-vs-all: one decision per label
    return (np.empty(dim, np.float32), np.empty(dim, np.float32), np.empty(dim, np.float32),
            np.empty(size, np.int32), np.empty(size, np.float32), np.empty(size, np.float32),
            np.empty(max(max_targets, 1), np.int64))


@numba.njit(**_JIT)
def train_bag(input_vectors, output_vectors, bag, targets, kind, negative, table, codes, points, code_lengths,
              state, alpha, grad_scale, hidden, grad_hidden, update_output, first_trainable_row):
    """One example of the engine on its own (the chunk kernels below run the same :func:`_example`).

    ``h = mean_{r in bag} input_vectors[r]``; the loss of every target in ``targets`` in turn
    (for one-vs-all, ``targets`` is the set of positive labels) accumulates
    ``g = alpha * d log L / d h``; then ``input_vectors[r] += grad_scale * g`` for every
    ``r`` in the bag with ``r >= first_trainable_row`` (a row repeated in the bag gets it
    once per occurrence, as in fastText). Returns ``(-log L, state)``.
    """
    work = _scratch(kind, negative, output_vectors.shape[0], targets.shape[0], hidden.shape[0])
    scratch = (hidden, grad_hidden) + work[2:]
    return _example(input_vectors, output_vectors, bag, 0, bag.shape[0], targets, 0, targets.shape[0], kind, negative,
                    table, codes, points, code_lengths, np.uint64(state), alpha,
                    np.float32(1.0) / np.float32(bag.shape[0]), grad_scale, update_output, kind == LOSS_HS,
                    first_trainable_row, scratch, hidden.shape[0])


@numba.njit(inline="always", **_JIT)
def _subsample(tokens, start, end, keep_probability, buffer, state):
    """Copy the tokens kept by subsampling (``u < p_keep(w)``; no draw when ``p_keep = 1``) into
    ``buffer``; returns ``(n, state)``."""
    n = 0
    for p in range(start, end):
        word = tokens[p]
        keep = keep_probability[word]
        if keep < 1.0:
            u, state = random_uniform(state)
            if u >= keep:
                continue
        buffer[n] = word
        n += 1
    return n, state


# ---------------------------------------------------------------------------------------
# chunk drivers: one call trains sentences [first, last) and releases the GIL
# ---------------------------------------------------------------------------------------
@numba.njit(**_JIT)
def _subword_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, subword_offsets,
                   subword_rows, keep_probability, window, skipgram, kind, negative, table, codes, points,
                   code_lengths, alpha_start, alpha_end, seed, dim):
    """fastText skip-gram or CBOW over sentences ``[first, last)`` with subword bags.

    Each kept word ``w`` has input rows ``subword_rows[subword_offsets[w]:subword_offsets[w+1]]``
    (itself and its n-grams). The window radius is uniform in ``1..window`` (fastText).
    Skip-gram: bag = rows of the centre word, targets = the context words. CBOW: bag =
    rows of every context word, target = the centre word. ``alpha`` decays linearly from
    ``alpha_start`` to ``alpha_end`` over the chunk's tokens. Returns ``(loss, examples, tokens)``.
    ``dim`` is ``input_vectors.shape[1]``, a compile-time constant (see :func:`subword_chunk`).
    """
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
    scratch = _scratch(kind, negative, output_vectors.shape[0], 2 * window, dim)
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
                if i + 1 < n:  # the next centre's n-gram rows are scattered over a large matrix: fetch them now
                    following = buffer[i + 1]
                    for q in range(subword_offsets[following], subword_offsets[following + 1]):
                        prefetch_row(input_vectors, subword_rows[q], dim)
                nt = 0
                for j in range(lo, hi):
                    if j != i:
                        targets[nt] = buffer[j]
                        nt += 1
                w = buffer[i]
                r0 = subword_offsets[w]
                step, state = _example(input_vectors, output_vectors, subword_rows, r0, subword_offsets[w + 1] - r0,
                                       targets, 0, nt, kind, negative, table, codes, points, code_lengths, state,
                                       alpha, np.float32(1.0) / np.float32(subword_offsets[w + 1] - r0),
                                       np.float32(1.0), True, kind == LOSS_HS, 0, scratch, dim)
                examples += nt
            else:
                nb = 0
                for j in range(lo, hi):
                    if j != i:
                        w = buffer[j]
                        for q in range(subword_offsets[w], subword_offsets[w + 1]):
                            bag[nb] = subword_rows[q]
                            nb += 1
                step, state = _example(input_vectors, output_vectors, bag, 0, nb, buffer, i, 1, kind, negative,
                                       table, codes, points, code_lengths, state, alpha,
                                       np.float32(1.0) / np.float32(nb), np.float32(1.0), True, kind == LOSS_HS, 0,
                                       scratch, dim)
                examples += 1
            loss += step
    return loss, examples, total


@numba.njit(**_JIT)
def _supervised_chunk(input_vectors, output_vectors, example_offsets, example_rows, label_offsets, labels, order,
                      first, last, kind, negative, table, codes, points, code_lengths, alpha_start, alpha_end, seed,
                      output_batch, dim):
    """fastText supervised over the examples ``order[first:last]``.

    Bag = the example's rows (words, hashed word n-grams), gradient normalised by the bag
    size (``grad_scale = 1/|B|``, fastText's ``normalizeGradient``). Softmax/HS/NS train on
    one label drawn uniformly from the example's labels, one-vs-all on all of them (as
    ``FastText::supervised``). Examples without rows or labels are skipped.
    Returns ``(loss, examples, examples visited)``.

    Deviation for speed with several threads (``output_batch > 1``): softmax and one-vs-all
    update every label row on every example, so Hogwild threads sharing the small label
    matrix keep taking its cache lines from each other (2 threads ran 1.2x one thread's
    speed); here each call adds its label-row steps ``g_v h`` to the shared matrix once
    per ``output_batch`` examples (a mini-batch for the output layer only: an example reads
    the label rows without its own call's last ``< output_batch`` steps; the input rows and
    the gradient reaching them are as before). ``output_batch = 1`` is fastText's update.
    """
    n_labels = output_vectors.shape[0]
    scratch = _scratch(kind, negative, n_labels, 1, dim)
    hidden = scratch[0]
    coef = scratch[5]
    deferred = output_batch > 1 and (kind == LOSS_SOFTMAX or kind == LOSS_OVA)
    pending = np.zeros((n_labels if deferred else 1, dim), np.float32)
    n_pending = 0
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
        if position + 1 < last:  # the next bag's rows are scattered over a large matrix: fetch them now
            following = order[position + 1]
            for q in range(example_offsets[following], example_offsets[following + 1]):
                prefetch_row(input_vectors, example_rows[q], dim)
        if r1 == r0 or l1 == l0:
            continue
        if kind == LOSS_OVA:
            chosen = l0
            n_chosen = l1 - l0
        else:
            pick, state = random_int(state, l1 - l0)
            chosen = l0 + pick
            n_chosen = 1
        inverse = np.float32(1.0) / np.float32(r1 - r0)
        step, state = _example(input_vectors, output_vectors, example_rows, r0, r1 - r0, labels, chosen, n_chosen,
                               kind, negative, table, codes, points, code_lengths, state, alpha, inverse, inverse,
                               not deferred, kind == LOSS_HS, 0, scratch, dim)
        loss += step
        examples += 1
        if deferred:  # the label rows' steps g_v h (g_v left in coef, h in hidden by the example)
            for v in range(n_labels):
                g = coef[v]
                row = np.uint64(v)
                for i in range(dim):
                    pending[row, i] += g * hidden[i]
            n_pending += 1
            if n_pending == output_batch:
                _flush(output_vectors, pending, dim)
                n_pending = 0
    if deferred and n_pending > 0:
        _flush(output_vectors, pending, dim)
    return loss, examples, total


@numba.njit(inline="always", **_JIT)
def _flush(output_vectors, pending, dim):
    """``output_vectors += pending`` then ``pending = 0``."""
    for v in range(pending.shape[0]):
        row = np.uint64(v)
        for i in range(dim):
            output_vectors[row, i] += pending[row, i]
            pending[row, i] = 0.0


@numba.njit(**_JIT)
def _document_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, tag_offsets, tag_rows,
                    keep_probability, window, dm, dm_mean, train_words, kind, negative, table, codes, points,
                    code_lengths, alpha_start, alpha_end, seed, update_output, first_trainable_row, dim):
    """Doc2Vec (Le & Mikolov 2014) over documents ``[first, last)``; input rows are words then tags.

    PV-DBOW (``dm=0``): for every tag of the document, bag = that tag's row, targets = the
    kept words in turn (the row moves after each word: gensim's per-word update; gensim
    takes the tags inside the word loop, the same updates in another order). With
    ``train_words`` also skip-gram on the words (bag = a word row, targets = its context).
    PV-DM (``dm=1``): for every kept word, bag = tag rows + context word rows (window radius
    uniform in ``1..window``), target = the word; hidden is their mean (``dm_mean``; the full
    error goes to every row) or, without ``dm_mean``, their sum with the error divided by the
    bag size (gensim). ``update_output=False`` and ``first_trainable_row`` freeze everything
    but new tag rows (``infer_vector``). Returns ``(loss, examples, tokens)``.
    """
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
    scratch = _scratch(kind, negative, output_vectors.shape[0], max(2 * window, longest), dim)
    loss = 0.0
    examples = 0
    done = 0
    one = np.float32(1.0)
    for s in range(first, last):
        start = sentence_offsets[s]
        end = sentence_offsets[s + 1]
        alpha = np.float32(alpha_start + (alpha_end - alpha_start) * done / max(total, 1))
        done += end - start
        n, state = _subsample(tokens, start, end, keep_probability, buffer, state)
        t0 = tag_offsets[s]
        n_tags = tag_offsets[s + 1] - t0
        if n_tags == 0:
            continue
        if dm:  # PV-DM: one example per word, bag = tags + context words
            for i in range(n):
                b, state = random_int(state, window)
                b += 1
                for k in range(n_tags):
                    bag[k] = tag_rows[t0 + k]
                nb = n_tags
                for j in range(max(0, i - b), min(n, i + b + 1)):
                    if j != i:
                        bag[nb] = buffer[j]
                        nb += 1
                inverse = one / np.float32(nb)
                step, state = _example(input_vectors, output_vectors, bag, 0, nb, buffer, i, 1, kind, negative,
                                       table, codes, points, code_lengths, state, alpha,
                                       inverse if dm_mean else one, one if dm_mean else inverse, update_output,
                                       True, first_trainable_row, scratch, dim)
                loss += step
                examples += 1
        elif n > 0:
            # each tag predicts every word in turn, its row moving after each word (gensim's PV-DBOW)
            for k in range(n_tags):
                step, state = _example(input_vectors, output_vectors, tag_rows, t0 + k, 1, buffer, 0, n, kind,
                                       negative, table, codes, points, code_lengths, state, alpha, one, one,
                                       update_output, True, first_trainable_row, scratch, dim)
                loss += step
                examples += n
            if train_words:  # skip-gram on the words: bag = a word's row, targets = its context
                for i in range(n):
                    b, state = random_int(state, window)
                    b += 1
                    nt = 0
                    for j in range(max(0, i - b), min(n, i + b + 1)):
                        if j != i:
                            targets[nt] = buffer[j]
                            nt += 1
                    if nt > 0:
                        step, state = _example(input_vectors, output_vectors, buffer, i, 1, targets, 0, nt, kind,
                                               negative, table, codes, points, code_lengths, state, alpha, one, one,
                                               update_output, True, first_trainable_row, scratch, dim)
                        loss += step
                        examples += nt
    return loss, examples, total


# -- entry points: the chunk kernels compiled for one vector size (see word2bert.static.native) --
@functools.lru_cache(maxsize=None)
def _subword_for(dim: int):
    def chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, subword_offsets, subword_rows,
              keep_probability, window, skipgram, kind, negative, table, codes, points, code_lengths, alpha_start,
              alpha_end, seed):
        _ = SOURCE_STAMP
        return _subword_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, subword_offsets,
                              subword_rows, keep_probability, window, skipgram, kind, negative, table, codes, points,
                              code_lengths, alpha_start, alpha_end, seed, dim)

    return numba.njit(**SPECIALISED_JIT)(chunk)


@functools.lru_cache(maxsize=None)
def _supervised_for(dim: int):
    def chunk(input_vectors, output_vectors, example_offsets, example_rows, label_offsets, labels, order, first, last,
              kind, negative, table, codes, points, code_lengths, alpha_start, alpha_end, seed, output_batch):
        _ = SOURCE_STAMP
        return _supervised_chunk(input_vectors, output_vectors, example_offsets, example_rows, label_offsets, labels,
                                 order, first, last, kind, negative, table, codes, points, code_lengths, alpha_start,
                                 alpha_end, seed, output_batch, dim)

    return numba.njit(**SPECIALISED_JIT)(chunk)


@functools.lru_cache(maxsize=None)
def _document_for(dim: int):
    def chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, tag_offsets, tag_rows,
              keep_probability, window, dm, dm_mean, train_words, kind, negative, table, codes, points, code_lengths,
              alpha_start, alpha_end, seed, update_output, first_trainable_row):
        _ = SOURCE_STAMP
        return _document_chunk(input_vectors, output_vectors, tokens, sentence_offsets, first, last, tag_offsets,
                               tag_rows, keep_probability, window, dm, dm_mean, train_words, kind, negative, table,
                               codes, points, code_lengths, alpha_start, alpha_end, seed, update_output,
                               first_trainable_row, dim)

    return numba.njit(**SPECIALISED_JIT)(chunk)


def subword_chunk(input_vectors, output_vectors, *args):
    """:func:`_subword_chunk` compiled for ``dim = input_vectors.shape[1]``; same arguments but ``dim``."""
    return _subword_for(int(input_vectors.shape[1]))(input_vectors, output_vectors, *args)


def supervised_chunk(input_vectors, output_vectors, *args, output_batch=1):
    """:func:`_supervised_chunk` compiled for ``dim = input_vectors.shape[1]``; same arguments but ``dim``."""
    return _supervised_for(int(input_vectors.shape[1]))(input_vectors, output_vectors, *args, int(output_batch))


def document_chunk(input_vectors, output_vectors, *args):
    """:func:`_document_chunk` compiled for ``dim = input_vectors.shape[1]``; same arguments but ``dim``."""
    return _document_for(int(input_vectors.shape[1]))(input_vectors, output_vectors, *args)


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
            row = np.uint64(rows[q])
            for i in range(dim):
                out[w, i] += input_vectors[row, i]
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


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_jobs`, raised once the running jobs have finished: the matrices
    then hold exactly the first ``jobs_done`` jobs, and ``loss``/``examples``/``tokens`` are theirs
    (those of this call)."""

    def __init__(self, jobs_done: int, loss: float, examples: int, tokens: int):
        super().__init__(f"interrupted after {jobs_done} jobs")
        self.jobs_done = jobs_done
        self.loss = loss
        self.examples = examples
        self.tokens = tokens


def run_jobs(call, jobs, workers: int, progress=None, first_job: int = 0):
    """Run ``call(job) -> (loss, examples, tokens)`` over ``jobs[first_job:]`` on ``workers`` threads.

    The kernels release the GIL, so threads train in parallel on shared matrices
    (Hogwild). Returns total ``(loss, examples, tokens)``; ``progress`` (tqdm) advances in tokens.
    Jobs start in order and at most ``2 * workers`` are in flight; on Ctrl-C no new job starts,
    the started ones finish, and :class:`TrainingInterrupted` says how many jobs are done.
    The main thread only waits (also with one worker), so the interrupt never lands inside a job.
    """
    totals = [0.0, 0, 0]
    workers = max(1, int(workers))

    def account(result):
        totals[0] += float(result[0])
        totals[1] += int(result[1])
        totals[2] += int(result[2])
        if progress is not None:
            progress.update(int(result[2]))
            if totals[1]:
                progress.set_postfix(loss=f"{totals[0] / totals[1]:.4f}", refresh=False)

    next_job = first_job
    with futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending = set()
        try:
            while pending or next_job < len(jobs):
                while next_job < len(jobs) and len(pending) < 2 * workers:
                    pending.add(pool.submit(call, jobs[next_job]))
                    next_job += 1
                done, pending = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                for item in done:
                    account(item.result())
        except KeyboardInterrupt:
            for item in pending:
                account(item.result())
            raise TrainingInterrupted(next_job, *totals) from None
    return tuple(totals)


def run_resumable(call, jobs, offsets, workers: int, progress, resume, checkpoint, save_checkpoint, what: str):
    """:func:`run_jobs` that can stop on Ctrl-C and continue later from a checkpoint file.

    ``offsets`` are the corpus's example offsets (a job ``(epoch, first, last, ...)`` covers
    ``offsets[last] - offsets[first]`` tokens). ``resume`` is ``None`` or the state of an
    interrupted run (:func:`resume_state`); its first ``jobs_done`` jobs are skipped. On
    Ctrl-C with a ``checkpoint`` path, ``save_checkpoint(path, state)`` writes the model with
    the new state before the interrupt goes on. Returns ``(loss, examples, tokens)`` of the
    whole run, the interrupted part included.
    """
    first_job, loss, examples, tokens = 0, 0.0, 0, 0
    corpus_size = int(offsets[-1])
    if resume is not None:
        if resume["n_jobs"] != len(jobs) or resume["corpus_size"] != corpus_size:
            raise Word2BertError(f"the {what} checkpoint was made on another corpus or with other epochs "
                                 f"({resume['corpus_size']:,} tokens, {resume['n_jobs']} jobs; now {corpus_size:,} "
                                 f"tokens, {len(jobs)} jobs): resume with the corpus it was trained on")
        first_job = int(resume["jobs_done"])
        loss, examples, tokens = float(resume["loss"]), int(resume["examples"]), int(resume["tokens"])
        if progress is not None:
            progress.update(sum(int(offsets[job[2]] - offsets[job[1]]) for job in jobs[:first_job]))
    try:
        more = run_jobs(call, jobs, workers, progress, first_job=first_job)
    except TrainingInterrupted as stop:
        if checkpoint is not None:
            state = resume_state(jobs, corpus_size, stop.jobs_done, loss + stop.loss, examples + stop.examples,
                                 tokens + stop.tokens)
            save_checkpoint(checkpoint, state)
            message = (f"{what}: interrupted after {stop.jobs_done} of {len(jobs)} jobs; checkpoint saved to "
                       f"{checkpoint} (resume with the same corpus)")
            if progress is not None:
                progress.write(message, file=sys.stderr)  # above the bar, not through it
            else:
                print(message, file=sys.stderr)
        raise
    return loss + more[0], examples + more[1], tokens + more[2]


def resume_state(jobs, corpus_size: int, jobs_done: int, loss: float, examples: int, tokens: int) -> dict:
    """What a checkpoint keeps to continue a run: the jobs done and the run's shape (JSON-ready)."""
    return {"jobs_done": int(jobs_done), "n_jobs": len(jobs), "corpus_size": int(corpus_size),
            "loss": float(loss), "examples": int(examples), "tokens": int(tokens)}


@numba.njit(**_JIT)
def _fill_uniform(out, rows, bound, seed):
    """``out[r, :] ~ U[-bound, bound)`` for every ``r`` in ``rows``, from SplitMix64 (Steele et al.
    2014) keyed by ``(seed, r)``: the values of a row do not depend on which other rows are drawn."""
    cols = out.shape[1]
    scale = np.float32(2.0 * bound / 16777216.0)
    shift = np.float32(bound)
    for q in range(rows.shape[0]):
        r = rows[q]
        x = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(r) * np.uint64(0xD1B54A32D192ED03)
        for i in range(cols):
            x += np.uint64(0x9E3779B97F4A7C15)
            z = x
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            out[np.uint64(r), i] = np.float32(z >> np.uint64(40)) * scale - shift


def uniform_matrix(rows: int, cols: int, bound: float, seed: int) -> np.ndarray:
    """A float32 ``(rows, cols)`` matrix uniform in ``[-bound, bound)`` (fastText's input initialisation),
    drawn in a compiled loop straight into the matrix."""
    out = np.empty((rows, cols), np.float32)
    _fill_uniform(out, np.arange(rows, dtype=np.int64), bound, seed)
    return out


def uniform_rows(rows: int, cols: int, bound: float, seed: int, used, workers: int = 1) -> np.ndarray:
    """Like :func:`uniform_matrix` but only the rows in ``used`` are drawn (``used`` may repeat rows,
    e.g. every bag's rows); the others stay zero. Row ``r`` gets the same values as in
    ``uniform_matrix``, whatever ``workers`` (threads sharing the work, as fastText's ``uniform``).

    A row that no training example touches never changes, so in fastText it only adds noise
    to the vector of an unseen test n-gram; zero is the neutral value, and ``np.zeros`` of a
    2M x 100 matrix costs nothing until written (the first writes cost page faults, which
    threads take in parallel).
    """
    mask = np.zeros(rows, bool)
    mask[np.asarray(used)] = True  # a mask, not np.unique: 50x faster on millions of rows
    used = np.flatnonzero(mask)
    out = np.zeros((rows, cols), np.float32)
    parts = np.array_split(used, max(1, int(workers)))
    if len(parts) == 1:
        _fill_uniform(out, used, bound, seed)
    else:
        with futures.ThreadPoolExecutor(max_workers=len(parts)) as pool:
            list(pool.map(lambda part: _fill_uniform(out, part, bound, seed), parts))
    return out


def dummy_tree():
    """Empty Huffman arrays, passed to the kernels when the loss is not HS (numba needs the types)."""
    return (np.zeros((1, 40), np.uint8), np.zeros((1, 40), np.int32), np.zeros(1, np.int32))


def dummy_table():
    """A one-entry negative table, passed when the loss is not NS."""
    return np.zeros(1, np.int32)
