"""fastText's supervised text classifier (Joulin et al. 2017, "Bag of Tricks for Efficient Text Classification").

A text is a bag of input rows: its words (and, with ``minn``/``maxn``, their character
n-grams) plus its word n-grams up to ``word_ngrams`` hashed into ``bucket`` rows. The text
vector is their mean ``h``, and a linear layer over the labels is trained with a softmax,
hierarchical softmax, negative sampling or one-vs-all loss:

    p(label | text) = softmax(W h)     (softmax; the others replace this normaliser)

Everything follows fastText 0.9's ``Dictionary::getLine`` and ``FastText::supervised`` so that
models move between the two: lines are ``__label__a __label__b word word ...`` (labels
anywhere), each line ends with the ``</s>`` token (a word, as in fastText), word n-gram ``i..j``
has the row ``nwords + H % bucket`` with ``H = H * 116049371 + hash(w_k)`` over the words'
int32 hashes, a line with several labels trains on one of them chosen uniformly (all of them
with one-vs-all), and the gradient is divided by the bag size (the exact gradient of the mean).

Training is :func:`word2bert.static.kernels.supervised_chunk` run by :func:`word2bert.static.jobs.run_jobs`.
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from pathlib import Path

import numba
import numpy as np

from word2bert.errors import Word2BertError, check_positive
from word2bert.corpus.reader import read_text
from word2bert.corpus.scan import merge_duplicates, scan_file
from word2bert.fileio import is_compressed
from word2bert.interop.fasttext_format import QuantizedMatrixData
from word2bert.progress import progress_bar
from word2bert.static import jobs as training, kernels, storage
from word2bert.static.losses import LOSS_HS, LOSS_NAMES, LOSS_SOFTMAX
from word2bert.static.native import GatheredInputMatrix, prepare
from word2bert.static.quantize import dequantize, quantize_matrix
from word2bert.static.huffman import build_huffman_tree
from word2bert.static.sampling import negative_sampling_table
from word2bert.static.subwords import EOS, hash_tokens, subword_rows

WORD_NGRAM_MULTIPLIER = 116049371  # fastText's Dictionary::addWordNgrams
OUTPUT_BATCH = 16  # examples per batch of label-row steps when threads share them (softmax, one-vs-all)


@numba.njit(nogil=True, cache=True)
def _example_rows(token_ids, token_hashes, line_offsets, nwords, bucket, word_ngrams, sub_offsets, sub_rows,
                  oov_index, oov_offsets, oov_rows, offsets, rows, count_only, counts):
    """One pass of :func:`_encode_examples`: count the rows of each line, or write them."""
    n_lines = line_offsets.shape[0] - 1
    hashes = np.empty(16, np.int64)
    for e in range(n_lines):
        k = 0 if count_only else offsets[e]
        start = line_offsets[e]
        end = line_offsets[e + 1]
        n_hashes = 0
        if end - start > hashes.shape[0]:
            hashes = np.empty(2 * (end - start), np.int64)
        for t in range(start, end):
            w = token_ids[t]
            if w == -2:
                continue
            if w >= 0:
                for q in range(sub_offsets[w], sub_offsets[w + 1]):
                    if not count_only:
                        rows[k] = sub_rows[q]
                    k += 1
            else:
                o = oov_index[t]
                for q in range(oov_offsets[o], oov_offsets[o + 1]):
                    if not count_only:
                        rows[k] = oov_rows[q]
                    k += 1
            hashes[n_hashes] = np.int64(np.int32(token_hashes[t]))  # fastText keeps hashes as int32
            n_hashes += 1
        if bucket > 0:
            for i in range(n_hashes):
                h = np.uint64(hashes[i])
                for j in range(i + 1, min(n_hashes, i + word_ngrams)):
                    h = h * np.uint64(WORD_NGRAM_MULTIPLIER) + np.uint64(hashes[j])
                    if not count_only:
                        rows[k] = nwords + np.int64(h % np.uint64(bucket))
                    k += 1
        if count_only:
            counts[e] = k


def _encode_examples(token_ids, token_hashes, line_offsets, nwords, bucket, word_ngrams, sub_offsets, sub_rows,
                     oov_index, oov_offsets, oov_rows):
    """CSR input rows of every line, in fastText's order: the words' rows, then the word n-grams.

    ``token_ids[t]`` is a word id (>= 0), ``-1`` for an OOV word, ``-2`` for a label token.
    Words contribute ``sub_rows[sub_offsets[w]:sub_offsets[w+1]]`` (the word, plus its
    character n-grams if enabled); OOV words contribute their character n-grams only
    (``oov_index[t]`` into ``oov_offsets/oov_rows``). For ``2 <= n <= word_ngrams`` the
    word n-gram starting at word ``i`` has row ``nwords + H % bucket``, where
    ``H_i = uint64(int32 hash_i)`` and ``H <- H * 116049371 + uint64(int32 hash_j)`` (mod 2^64).
    """
    n_lines = len(line_offsets) - 1
    counts = np.zeros(n_lines, np.int64)
    dummy_offsets = np.zeros(1, np.int64)
    dummy_rows = np.zeros(0, np.int32)
    args = (token_ids, token_hashes, line_offsets, nwords, bucket, word_ngrams, sub_offsets, sub_rows,
            oov_index, oov_offsets, oov_rows)
    _example_rows(*args, dummy_offsets, dummy_rows, True, counts)
    offsets = np.zeros(n_lines + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    rows = np.empty(offsets[-1], np.int32)
    _example_rows(*args, offsets, rows, False, counts)
    return offsets, rows


@numba.njit(nogil=True, cache=True, fastmath=True)
def _row_dot(matrix, row, vector):
    """``matrix[row] . vector`` as a loop (numba's ``np.dot`` and ``@`` go through BLAS, whose
    bindings took most of this module's 9 s first-run compile)."""
    total = np.float32(0.0)
    for i in range(vector.shape[0]):
        total += matrix[row, i] * vector[i]
    return total


def label_probabilities(input_vectors, output_vectors, offsets, rows, kind, codes, points, code_lengths):
    """``P[e, l]`` for every example ``e`` with bag mean ``h_e`` (:func:`~word2bert.static.kernels.bag_means`):
    softmax(W h_e) (softmax), sigma(w_l . h_e) (NS, one-vs-all), or the product of the path decisions (HS,
    compiled: :func:`_label_probabilities`); a row of zeros for an example without rows.

    Softmax and sigmoid are two matrix products and numpy passes here: nothing to compile, so the first
    ``test()`` or ``predict()`` after installing answers at once (the compiled kernel took 1.4-3.6 s to
    compile; wn_lexname's 23,463 test lines: 0.09-0.11 s here, 0.07-0.09 s in the compiled kernel)."""
    if kind == LOSS_HS:
        return _label_probabilities(input_vectors, output_vectors, offsets, rows, kind, codes, points, code_lengths)
    scores = kernels.bag_means(input_vectors, offsets, rows) @ output_vectors.T
    if kind == LOSS_SOFTMAX:
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
    else:
        np.negative(scores, out=scores)
        np.exp(scores, out=scores)
        scores += np.float32(1.0)
        np.reciprocal(scores, out=scores)
    scores[offsets[1:] == offsets[:-1]] = 0.0
    return scores


@numba.njit(nogil=True, cache=True, fastmath=True)
def _label_probabilities(input_vectors, output_vectors, offsets, rows, kind, codes, points, code_lengths):
    """``P[e, l]`` for every example: softmax(W h) (softmax), sigma(w_l . h) (NS, one-vs-all), or the
    product of the path decisions ``prod_k sigma((1 - 2 c_k) u_{p_k} . h)`` (HS). The compiled
    form of :func:`label_probabilities`, which calls it for HS only (the tests compare the two)."""
    n = offsets.shape[0] - 1
    n_labels = output_vectors.shape[0] if kind != LOSS_HS else code_lengths.shape[0]
    dim = input_vectors.shape[1]
    out = np.zeros((n, n_labels), np.float32)
    hidden = np.empty(dim, np.float32)
    scores = np.empty(n_labels, np.float32)
    for e in range(n):
        count = offsets[e + 1] - offsets[e]
        if count == 0:
            continue
        hidden[:] = 0.0
        for q in range(offsets[e], offsets[e + 1]):
            row = input_vectors[rows[q]]
            for i in range(dim):
                hidden[i] += row[i]
        hidden /= np.float32(count)
        if kind == LOSS_HS:
            for label in range(n_labels):
                logp = 0.0
                for k in range(code_lengths[label]):
                    x = _row_dot(output_vectors, points[label, k], hidden)
                    s = 1.0 - 2.0 * codes[label, k]
                    z = s * x
                    logp += -np.log1p(np.exp(-z)) if z >= 0 else z - np.log1p(np.exp(z))
                out[e, label] = np.exp(logp)
        else:
            for label in range(n_labels):
                scores[label] = _row_dot(output_vectors, label, hidden)
            if kind == LOSS_SOFTMAX:
                top = scores.max()
                total = np.float32(0.0)
                for label in range(n_labels):
                    scores[label] = np.exp(scores[label] - top)
                    total += scores[label]
                for label in range(n_labels):
                    out[e, label] = scores[label] / total
            else:
                for label in range(n_labels):
                    out[e, label] = 1.0 / (1.0 + np.exp(-scores[label]))
    return out


def _pruned_rows(offsets, rows, nwords: int, bucket: int, pruneidx: dict):
    """Input rows of a pruned model (fastText's ``Dictionary::pushHash``): n-gram bucket ``b`` (row
    ``nwords + b``) becomes row ``nwords + pruneidx[b]``, or is dropped when not kept."""
    lookup = np.full(max(bucket, 1), -1, np.int64)
    if pruneidx:
        lookup[np.fromiter(pruneidx.keys(), np.int64)] = np.fromiter(pruneidx.values(), np.int64)
    rows = rows.astype(np.int64)
    is_ngram = rows >= nwords
    rows[is_ngram] = np.where(lookup[rows[is_ngram] - nwords] >= 0, nwords + lookup[rows[is_ngram] - nwords], -1)
    kept = rows >= 0
    running = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(kept, out=running[1:])
    return running[offsets], rows[kept].astype(np.int32)


def scanned_lines(path):
    """``(unique tokens, token -> unique id array, line offsets)`` of a plain text file with ``</s>``
    appended to every line, exactly as ``FastTextClassifier._tokenize`` gives them for the lines
    Python reads (``line.split() + ["</s>"]``), from one pass of the compiled scanner
    (:func:`~word2bert.corpus.scan.scan_file`, which splits as ``str.split`` does).

    The scanner numbers distinct tokens by first appearance, as ``_tokenize`` does, but it has no
    ``</s>`` and keeps no line without tokens. ``</s>`` first appears at the end of line 1, so with
    ``k`` distinct tokens in line 1 (ids ``0..k-1``) it takes id ``k``, unless the text itself
    holds a ``</s>`` (id ``j``) within line 1 (``j < k``: ids unchanged); ids ``k..j-1`` move up by
    one. Returns None (read it in Python) for a compressed file, an empty one, or one with a line
    without tokens (Python keeps that line: a ``</s>`` and a line number the messages name).
    """
    if is_compressed(path):
        return None
    scanned = merge_duplicates(scan_file(path, max_sentence_length=1 << 62))
    words, tokens, offsets = scanned.words, scanned.tokens, scanned.offsets
    n_lines = len(offsets) - 1
    if n_lines == 0:
        return None
    with open(path, "rb") as handle:  # an unterminated last line is a line to Python, not to stats.lines
        handle.seek(-1, os.SEEK_END)
        unterminated = handle.read(1) not in (b"\n", b"\r")
    if n_lines != scanned.stats.lines + unterminated:
        return None
    k = int(tokens[:offsets[1]].max()) + 1
    try:
        j = words.index(EOS)
    except ValueError:
        j = len(words)
    eos = min(j, k)
    new_id = np.arange(len(words), dtype=np.int64)
    new_id[k:j] += 1
    unique = words[:k] + [EOS] + words[k:j] + words[j + 1:] if j >= k else words
    if j < len(words):
        new_id[j] = eos
    line_offsets = offsets + np.arange(n_lines + 1)
    is_eos = np.zeros(line_offsets[-1], bool)
    is_eos[line_offsets[1:] - 1] = True
    local = np.empty(line_offsets[-1], np.int64)
    local[is_eos] = eos
    local[~is_eos] = new_id[tokens]
    return unique, local, line_offsets


def fasttext_line_order(n: int, threads: int, epoch: int) -> np.ndarray:
    """The order in which fastText's ``threads`` training threads visit ``n`` lines in ``epoch``.

    Thread ``t`` starts at the ``t``-th of ``threads`` equal parts of the file and reads on,
    wrapping at the end (fastText's ``FastText::trainThread`` seeks to ``t * size / threads``), so
    in epoch ``e`` it reads part ``(t + e) mod threads``; the threads run side by side, one line
    each in turn. Parts start at ``floor(t * n / threads)``. One thread: the file order.
    """
    bounds = (np.arange(threads + 1, dtype=np.int64) * n) // threads
    parts = [np.arange(bounds[p], bounds[p + 1]) for p in ((t + epoch) % threads for t in range(threads))]
    order = np.full((max(len(part) for part in parts), threads), -1, np.int64)
    for t, part in enumerate(parts):
        order[:len(part), t] = part
    order = order.ravel()
    return order[order >= 0]


class FastTextClassifier(GatheredInputMatrix):
    """fastText supervised. ``FastTextClassifier("train.txt", epoch=25, lr=0.5, word_ngrams=2)`` trains.

    Parameters keep fastText's meaning (snake_case): ``lr`` (0.1), ``dim`` (100), ``epoch`` (5),
    ``min_count`` (1), ``min_count_label`` (0), ``word_ngrams`` (1), ``bucket`` (2,000,000; 0 when
    ``word_ngrams <= 1`` and ``maxn == 0``, as fastText), ``minn``/``maxn`` (0: no character
    n-grams), ``neg`` (5), ``loss`` ("softmax", "hs", "ns", "ova"), ``label`` prefix, ``workers``.
    ``shuffle`` (default True) visits the lines in a new random order each epoch; ``shuffle=False``
    follows fastText's reading order (:func:`fasttext_line_order`: each thread reads on from its own
    place in the file), which hurts on files sorted by label.
    """

    def __init__(self, input=None, lr=0.1, dim=100, epoch=5, min_count=1, min_count_label=0, word_ngrams=1,
                 bucket=2_000_000, minn=0, maxn=0, neg=5, loss="softmax", label="__label__", workers=3, seed=1,
                 shuffle=True, progress=None):
        check_positive("lr", lr)
        check_positive("dim", dim)
        check_positive("epoch", epoch)
        check_positive("min_count", min_count)
        check_positive("min_count_label", min_count_label, allow_zero=True)
        check_positive("word_ngrams", word_ngrams)
        check_positive("bucket", bucket, allow_zero=True)
        check_positive("neg", neg)
        check_positive("workers", workers)
        if loss not in LOSS_NAMES:
            raise Word2BertError(f"parameter loss={loss!r} must be one of {', '.join(LOSS_NAMES)}")
        if maxn and (minn < 1 or minn > maxn):
            raise Word2BertError(f"parameters minn={minn}, maxn={maxn}: need 1 <= minn <= maxn")
        if not label:
            raise Word2BertError("parameter label (the label prefix) must not be empty")
        self.lr = float(lr)
        self.dim = int(dim)
        self.epoch = int(epoch)
        self.min_count = int(min_count)
        self.min_count_label = int(min_count_label)
        self.word_ngrams = int(word_ngrams)
        self.minn = int(minn)
        self.maxn = int(maxn)
        self.bucket = 0 if (self.word_ngrams <= 1 and self.maxn == 0) else int(bucket)
        self.neg = int(neg)
        self.loss = loss
        self.label = label
        self.workers = int(workers)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.progress = progress
        self.words: list[str] = []
        self.word_counts = np.zeros(0, np.int64)
        self.labels: list[str] = []
        self.label_counts = np.zeros(0, np.int64)
        self.ntokens = 0
        self.input_vectors = None  # (GatheredInputMatrix: built from the trained rows when asked for)
        self.output_vectors = None
        self.quantized_input = None  # a QuantizedMatrixData once quantized (then input_vectors is None)
        self.quantized_output = None
        self.pruneidx: dict | None = None  # n-gram bucket -> row, in a pruned (quantized) fastText model
        self._resume_state: dict | None = None  # where an interrupted train() stopped (see save_checkpoint)
        self.timings: dict = {}
        if input is not None:
            self.train(input)

    def _input_shape(self) -> tuple:
        return (self.nwords + self.bucket, self.dim)

    # -- reading -----------------------------------------------------------------------
    def _tokenized(self, source):
        """:meth:`_tokenize` of every line of ``source`` (a path or an iterable of strings or token
        lists), ``</s>`` appended to each line. A plain text file is read by the compiled scanner
        (:func:`scanned_lines`) when it can give the same result."""
        if isinstance(source, (str, Path)):
            tokenized = scanned_lines(source)
            if tokenized is not None:
                return tokenized
            with read_text(source) as handle:
                return self._tokenize([line.split() + [EOS] for line in handle])
        return self._tokenize([(line.split() if isinstance(line, str) else list(line)) + [EOS] for line in source])

    @staticmethod
    def _tokenize(lines):
        """``(unique tokens, token -> unique id array, line offsets)`` in one pass over the tokens."""
        flat = list(itertools.chain.from_iterable(lines))
        unique = list(dict.fromkeys(flat))  # first-seen order
        index = {token: i for i, token in enumerate(unique)}
        local = np.fromiter(map(index.__getitem__, flat), np.int64, len(flat))
        line_offsets = np.zeros(len(lines) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, lines), np.int64, len(lines)), out=line_offsets[1:])
        return unique, local, line_offsets

    def _build_dictionary(self, tokenized, where: str):
        """Words with count >= min_count and labels with count >= min_count_label, most frequent first."""
        unique, local, line_offsets = tokenized
        counts = np.bincount(local, minlength=len(unique))
        prefix = self.label
        is_label = np.array([t.startswith(prefix) for t in unique], bool)
        order = np.argsort(-counts, kind="stable")
        words = [i for i in order if not is_label[i] and counts[i] >= self.min_count]
        labels = [i for i in order if is_label[i] and counts[i] >= self.min_count_label]
        if not labels:
            first = " ".join(unique[i] for i in local[:min(len(local), 10)] if unique[i] != EOS)
            raise Word2BertError(f"{where}: no label found; a supervised file needs lines like "
                                 f"'{prefix}<label> word word ...' (first line starts: {first[:60]!r})")
        if prefix in unique:  # the prefix alone: a label without a name
            line = int(np.searchsorted(line_offsets, int(np.flatnonzero(local == unique.index(prefix))[0]),
                                       side="right"))
            raise Word2BertError(f"{where}:{line}: an empty label ({prefix!r} with no name after it); "
                                 f"labels are written {prefix}<name>")
        line_has_label = np.add.reduceat(is_label[local].astype(np.int64), line_offsets[:-1]) > 0 \
            if len(local) else np.zeros(0, bool)
        unlabelled = np.flatnonzero(~line_has_label)
        if len(unlabelled):
            warnings.warn(f"{where}: {len(unlabelled):,} of {len(line_has_label):,} lines have no label "
                          f"(no token starting with {prefix!r}; the first is line {unlabelled[0] + 1}); they are "
                          "not trained on", UserWarning, stacklevel=3)
        if not words:
            raise Word2BertError(f"{where}: no word occurs at least min_count={self.min_count} times")
        self.words = [unique[i] for i in words]
        self.word_counts = counts[words].astype(np.int64)
        self.labels = [unique[i] for i in labels]
        self.label_counts = counts[labels].astype(np.int64)
        self.ntokens = int(len(local))
        self._index = None

    @property
    def nwords(self) -> int:
        return len(self.words)

    def _tables(self):
        if getattr(self, "_index", None) is None:
            self._index = {w: i for i, w in enumerate(self.words)}
            self._label_index = {w: i for i, w in enumerate(self.labels)}
            self._sub_offsets, self._sub_rows = subword_rows(self.words, self.minn, self.maxn, self.bucket)
        return self._index, self._label_index

    def encode(self, lines, tokenized=None):
        """``(offsets, rows, label_offsets, labels)``: each line's input rows and known label ids."""
        index, label_index = self._tables()
        unique, local, line_offsets = tokenized if tokenized is not None else self._tokenize(lines)
        prefix = self.label
        unique_ids = np.array([index.get(t, -2 if t.startswith(prefix) else -1) for t in unique], np.int64)
        unique_labels = np.array([label_index.get(t, -1) for t in unique], np.int64)
        token_ids = unique_ids[local] if len(unique) else np.zeros(0, np.int64)
        oov_index = np.zeros(len(local), np.int64)
        oov_unique = np.flatnonzero(unique_ids == -1)
        if self.maxn > 0 and len(oov_unique):
            oov_offsets, oov_rows = subword_rows([unique[i] for i in oov_unique], self.minn, self.maxn, self.bucket,
                                                 nwords=self.nwords, include_self=False)
            position = np.zeros(len(unique), np.int64)
            position[oov_unique] = np.arange(len(oov_unique))
            oov_index = position[local]
        else:
            oov_offsets, oov_rows = np.zeros(2, np.int64), np.zeros(0, np.int32)
        if self.bucket > 0 and self.word_ngrams > 1:
            hashes = hash_tokens(unique).astype(np.int64)[local]
        else:
            hashes = np.zeros(len(local), np.int64)
        offsets, rows = _encode_examples(token_ids, hashes, line_offsets, self.nwords, self.bucket,
                                         self.word_ngrams if self.bucket > 0 else 1, self._sub_offsets,
                                         self._sub_rows, oov_index, oov_offsets, oov_rows)
        if self.pruneidx is not None:  # a pruned model keeps some n-gram buckets, in rows of their own
            offsets, rows = _pruned_rows(offsets, rows, self.nwords, self.bucket, self.pruneidx)
        token_labels = unique_labels[local] if len(unique) else np.zeros(0, np.int64)
        is_label = token_labels >= 0
        line_of_token = np.repeat(np.arange(len(line_offsets) - 1), np.diff(line_offsets))
        label_offsets = np.zeros(len(line_offsets), np.int64)
        np.cumsum(np.bincount(line_of_token[is_label], minlength=len(line_offsets) - 1), out=label_offsets[1:])
        return offsets, rows, label_offsets, token_labels[is_label].astype(np.int32)

    # -- training ----------------------------------------------------------------------
    def _output_tables(self):
        if self.loss == "hs":
            tree = build_huffman_tree(self.label_counts)
            codes, points, lengths = tree.codes, tree.points, tree.code_lengths
        else:
            codes, points, lengths = kernels.dummy_tree()
        # fastText draws negative labels from count^0.5
        table = negative_sampling_table(self.label_counts, 0.5) if self.loss == "ns" else kernels.dummy_table()
        return table, codes, points, lengths

    def train(self, input, checkpoint=None):
        """Read ``input`` (path or lines), build the dictionary, initialise and train ``epoch`` epochs.

        ``lr`` decays linearly to 0. Returns the mean training loss per example. On Ctrl-C with a
        ``checkpoint`` path the model is saved there (:meth:`save_checkpoint`);
        ``FastTextClassifier.load_checkpoint(path).train(same input)`` continues where it stopped.
        """
        started = time.perf_counter()
        where = str(input) if isinstance(input, (str, Path)) else "training data"
        if self.is_quantized or self.pruneidx is not None:
            raise Word2BertError("a quantized or pruned model cannot be trained further")
        resume = self._resume_state
        preparation = self._prepare_kernel()
        trained = (self.words, self.labels)
        tokenized = self._tokenized(input)
        self._build_dictionary(tokenized, where)
        if resume is not None and (self.words, self.labels) != trained:
            raise Word2BertError(f"{where}: not the training data of the checkpoint (its words or labels differ); "
                                 "resume with the file it was trained on")
        offsets, rows, label_offsets, labels = self.encode(None, tokenized)
        del tokenized
        if len(labels) == 0:
            raise Word2BertError(f"{where}: no line has a label")
        # the rows training touches, together on whole lines (GatheredRows); a new model draws them
        # there, U[-1/dim, 1/dim) as fastText, and builds its full input matrix only when asked for it
        # (input_vectors): the other rows are zero, and predicting needs only these
        if resume is None:
            self._draw_input_rows(rows, self.seed, self.workers)
            self.output_vectors = np.zeros((len(self.labels), self.dim), np.float32)
        gathered = self._rows_to_train(rows)
        del rows
        self._trained_rows = gathered
        table, codes, points, lengths = self._output_tables()
        kind = LOSS_NAMES[self.loss]
        n = len(offsets) - 1
        rng = np.random.default_rng(self.seed)
        # fastText reads the file in order (its threads from different offsets); a file sorted by
        # label then trains on one or two labels at a time. We visit the lines in a fresh random
        # order every epoch (shuffle=False: fastText's order).
        orders = [rng.permutation(n) if self.shuffle else fasttext_line_order(n, self.workers, e)
                  for e in range(self.epoch)]
        jobs = training.schedule(np.arange(n + 1), self.epoch, self.lr, 0.0, self.seed, target_tokens=2_000)

        # with several threads the label rows take their steps in batches (see supervised_chunk)
        output_batch = OUTPUT_BATCH if self.workers > 1 else 1

        def call(job):
            return kernels.supervised_chunk(gathered.lines, self.output_vectors, offsets, gathered.rows,
                                            label_offsets, labels, orders[job.epoch], job.first, job.last, kind,
                                            self.neg, table, codes, points, lengths, job.alpha_start, job.alpha_end,
                                            job.seed, output_batch=output_batch)

        bar = progress_bar(total=n * self.epoch, desc="classifier", unit="line",
                           disable=self.progress is False or None)

        def save(path, state):
            self._trained_rows = gathered  # (the checkpoint writes them into input_vectors)
            self._resume_state = state
            self.save_checkpoint(path)

        self.timings["compile_wait"] = preparation.wait()
        start = time.perf_counter()
        self.timings["first_word"] = start - started
        try:
            with bar:
                loss, examples, _, _ = training.run_jobs(
                    call, jobs, self.workers, progress=bar, sizes=[job.last - job.first for job in jobs],
                    resume=resume, corpus_size=n, checkpoint=checkpoint, save=save, what="classifier")
        finally:
            self._trained_rows = gathered
        self.timings["training"] = time.perf_counter() - start
        self._resume_state = None
        self.training_loss = loss / max(examples, 1)
        return self.training_loss

    def _prepare_kernel(self):
        """Start compiling the training kernel (a no-op when it is cached)."""
        return prepare([("word2bert.static.kernels", "warm_supervised",
                         dict(dim=self.dim, kind=LOSS_NAMES[self.loss], negative=self.neg,
                              output_batch=OUTPUT_BATCH if self.workers > 1 else 1))],
                       "classifier", f"dim {self.dim}")

    # -- prediction --------------------------------------------------------------------
    def _check_trained(self):
        if self.output_vectors is None:
            raise Word2BertError("the classifier is not trained (call train or load a model)")

    @property
    def is_quantized(self) -> bool:
        """Whether the input matrix is product-quantized (:meth:`quantize`, or an ``.ftz`` file)."""
        return self.quantized_input is not None

    def quantize(self, dsub: int = 2, qnorm: bool = False, qout: bool = False, cutoff: int = 0) -> None:
        """Product-quantize the input matrix (and the output matrix with ``qout``), as fastText's
        ``quantize`` (:mod:`word2bert.static.quantize`): each row becomes one byte per ``dsub`` columns
        (an 8x smaller matrix at ``dsub=2``), and :meth:`save` writes an ``.ftz``. Predictions then use
        the quantized rows; the model can no longer be trained. ``cutoff`` (keeping only the
        ``cutoff`` rows of largest norm before quantizing) is not supported.
        """
        self._check_trained()
        if cutoff:
            raise Word2BertError("quantize(cutoff=...) (pruning the rows before quantizing) is not supported; "
                                 "quantize without cutoff")
        if self.is_quantized:
            raise Word2BertError("the model is already quantized")
        self.quantized_input = quantize_matrix(self.input_vectors, dsub=dsub, qnorm=qnorm, seed=self.seed)
        self.input_vectors = None
        if qout:
            self.quantized_output = quantize_matrix(self.output_vectors, dsub=2, qnorm=qnorm, seed=self.seed)
            self.output_vectors = dequantize(self.quantized_output)

    def label_probabilities(self, lines) -> np.ndarray:
        """``(n_lines, n_labels)`` probabilities of every label for token lists ``lines``."""
        self._check_trained()
        offsets, rows, _, _ = self.encode(lines)
        return self._probabilities_of_encoded(offsets, rows)

    def _probabilities_of_encoded(self, offsets, rows) -> np.ndarray:
        """:meth:`label_probabilities` of lines already encoded (``offsets``, ``rows`` of :meth:`encode`)."""
        if self.loss == "hs":
            _, codes, points, lengths = self._output_tables()
        else:
            codes, points, lengths = kernels.dummy_tree()
        if self.loss != "hs":  # (the HS kernel takes the full matrix)
            input_vectors, rows = self._rows_source(rows)
        else:
            input_vectors = self.input_vectors
        if self.quantized_input is not None:  # only the rows these lines use, decoded from their codes
            used, rows = np.unique(rows, return_inverse=True)
            input_vectors = dequantize(self.quantized_input, used)
            rows = rows.astype(np.int32)
        return label_probabilities(input_vectors, self.output_vectors, offsets, rows, LOSS_NAMES[self.loss], codes,
                                   points, lengths)

    @staticmethod
    def _top_k(probabilities, k, threshold):
        k = min(k, probabilities.shape[1]) if k > 0 else probabilities.shape[1]
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        result = []
        for e in range(probabilities.shape[0]):
            chosen = [int(i) for i in order[e] if probabilities[e, i] >= threshold]
            result.append(chosen)
        return result

    def predict(self, text, k: int = 1, threshold: float = 0.0):
        """The ``k`` most probable labels with probability ``>= threshold``, as fastText's ``predict``.

        ``text`` is one string (returns ``(labels tuple, probabilities array)``) or a list of
        strings (returns ``(list of tuples, list of arrays)``); labels keep the prefix. A text
        without any word gets no label (an empty tuple).
        """
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        if any("\n" in t for t in texts):
            raise Word2BertError("predict processes one line per text; the text contains a newline")
        lines = [t.split() + [EOS] for t in texts]
        probabilities = self.label_probabilities(lines)
        labels, probs = [], []
        for e, chosen in enumerate(self._top_k(probabilities, int(k), float(threshold))):
            if len(lines[e]) == 1:  # no word at all: no prediction (fastText would answer from "</s>" alone)
                chosen = []
            labels.append(tuple(self.labels[i] for i in chosen))
            probs.append(probabilities[e, chosen].astype(np.float64))
        return (labels[0], probs[0]) if single else (labels, probs)

    def test(self, path, k: int = 1, threshold: float = 0.0):
        """``(n, P@k, R@k)`` on a labelled file, as fastText's ``test``.

        Over the ``n`` lines with at least one known label: precision = correct predictions /
        predictions made, recall = correct predictions / gold labels.
        """
        self._check_trained()
        offsets, rows, label_offsets, labels = self.encode(None, self._tokenized(path))
        has_label = np.diff(label_offsets) > 0
        if not has_label.any():
            raise Word2BertError(f"{path}: no line has a known label (prefix {self.label!r})")
        probabilities = self._probabilities_of_encoded(offsets, rows)[has_label]
        predictions = self._top_k(probabilities, int(k), float(threshold))
        correct = predicted = gold = 0
        for row, e in zip(predictions, np.flatnonzero(has_label)):
            truth = set(labels[label_offsets[e]:label_offsets[e + 1]].tolist())
            correct += sum(1 for p in row if p in truth)
            predicted += len(row)
            gold += len(truth)
        precision = correct / predicted if predicted else float("nan")
        return int(has_label.sum()), precision, correct / gold

    def test_label(self, path, k: int = 1, threshold: float = 0.0) -> dict:
        """Per-label ``{"precision", "recall", "f1score"}`` on a labelled file, as fastText's ``test_label``
        (precision ``nan`` for a label never predicted)."""
        self._check_trained()
        offsets, rows, label_offsets, labels = self.encode(None, self._tokenized(path))
        has_label = np.flatnonzero(np.diff(label_offsets) > 0)
        predictions = self._top_k(self._probabilities_of_encoded(offsets, rows)[has_label], int(k), float(threshold))
        n = len(self.labels)
        predicted, gold, correct = np.zeros(n), np.zeros(n), np.zeros(n)
        for row, e in zip(predictions, has_label):
            truth = set(labels[label_offsets[e]:label_offsets[e + 1]].tolist())
            for p in row:
                predicted[p] += 1
                correct[p] += p in truth
            for t in truth:
                gold[t] += 1
        result = {}
        for i, name in enumerate(self.labels):
            precision = correct[i] / predicted[i] if predicted[i] else float("nan")
            recall = correct[i] / gold[i] if gold[i] else float("nan")
            f1 = 2 * correct[i] / (predicted[i] + gold[i]) if predicted[i] + gold[i] else float("nan")
            result[name] = {"precision": precision, "recall": recall, "f1score": f1}
        return result

    # -- files -------------------------------------------------------------------------
    def to_fasttext_file(self):
        from word2bert.interop.fasttext_format import LOSS_CODES, MODEL_CODES, FastTextFile

        self._check_trained()
        args = dict(dim=self.dim, ws=5, epoch=self.epoch, minCount=self.min_count, neg=self.neg,
                    wordNgrams=self.word_ngrams, loss=LOSS_CODES[self.loss], model=MODEL_CODES["sup"],
                    bucket=self.bucket, minn=self.minn, maxn=self.maxn, lrUpdateRate=100, t=1e-4)
        return FastTextFile(args, self.words, self.word_counts, self.labels, self.label_counts, self.ntokens,
                            self.quantized_input if self.is_quantized else self.input_vectors,
                            self.quantized_output if self.quantized_output is not None else self.output_vectors,
                            self.pruneidx)

    @classmethod
    def from_fasttext_file(cls, data):
        if data.model != "sup":
            raise Word2BertError("this .bin holds word vectors, not a classifier; use FastText.load")
        if not data.labels:
            raise Word2BertError("this supervised .bin has no labels")
        args = data.args
        label_prefix = "__label__"
        if not all(name.startswith(label_prefix) for name in data.labels):  # .bin does not store -label
            label_prefix = os.path.commonprefix(data.labels) or data.labels[0][:1]
        model = cls(lr=0.1, dim=args["dim"], epoch=max(args["epoch"], 1), min_count=max(args["minCount"], 1),
                    word_ngrams=max(args["wordNgrams"], 1), bucket=args["bucket"], minn=args["minn"], maxn=args["maxn"],
                    neg=max(args["neg"], 1), loss=data.loss, label=label_prefix)
        model.bucket = int(args["bucket"])
        model.words = list(data.words)
        model.word_counts = np.asarray(data.counts, np.int64)
        model.labels = list(data.labels)
        model.label_counts = np.asarray(data.label_counts, np.int64)
        model.ntokens = data.ntokens
        model.pruneidx = data.pruneidx
        if isinstance(data.input_matrix, QuantizedMatrixData):
            model.quantized_input = data.input_matrix
        else:
            model.input_vectors = np.ascontiguousarray(data.input_matrix, np.float32)
        if isinstance(data.output_matrix, QuantizedMatrixData):
            model.quantized_output = data.output_matrix
            model.output_vectors = dequantize(data.output_matrix)
        else:
            model.output_vectors = np.ascontiguousarray(data.output_matrix, np.float32)
        model._index = None
        return model

    def save(self, path) -> None:
        """Write Facebook's supervised ``.bin``, or ``.ftz`` once quantized (``fasttext.load_model`` reads
        both; for ``loss='hs'`` fastText rebuilds its own label tree, so only softmax/ns/ova predictions
        carry over)."""
        from word2bert.interop.fasttext_format import write_fasttext_bin

        write_fasttext_bin(path, self.to_fasttext_file())

    @classmethod
    def load(cls, path) -> "FastTextClassifier":
        """Read a supervised ``.bin`` or quantized ``.ftz`` (ours or Facebook's)."""
        from word2bert.interop.fasttext_format import read_fasttext_bin

        return cls.from_fasttext_file(read_fasttext_bin(path))

    _PARAMS = ("lr", "dim", "epoch", "min_count", "min_count_label", "word_ngrams", "bucket", "minn", "maxn", "neg",
               "loss", "label", "workers", "seed", "shuffle")

    def save_checkpoint(self, path) -> None:
        """Write everything :meth:`train` needs to continue (parameters, dictionary, both matrices and
        where an interrupted run stopped) in word2bert's format (:mod:`word2bert.static.storage`)."""
        self._check_trained()
        params = {name: getattr(self, name) for name in self._PARAMS}
        storage.save(path, "FastTextClassifier", params,
                     {"words": self.words, "labels": self.labels, "ntokens": self.ntokens},
                     {"word_counts": self.word_counts, "label_counts": self.label_counts,
                      "input_vectors": self.input_vectors, "output_vectors": self.output_vectors},
                     self._resume_state)

    @classmethod
    def load_checkpoint(cls, path) -> "FastTextClassifier":
        """Read a :meth:`save_checkpoint` file; ``train`` on the same data then continues the run."""
        stored = storage.load(path, "FastTextClassifier",
                              ("word_counts", "label_counts", "input_vectors", "output_vectors"))
        state, arrays = stored.state, stored.arrays
        model = cls(**stored.params)
        model.words, model.labels, model.ntokens = list(state["words"]), list(state["labels"]), state["ntokens"]
        model.word_counts, model.label_counts = arrays["word_counts"], arrays["label_counts"]
        model.input_vectors, model.output_vectors = arrays["input_vectors"], arrays["output_vectors"]
        storage.check_shape(path, "input_vectors", model.input_vectors, (len(model.words) + model.bucket, model.dim))
        storage.check_shape(path, "output_vectors", model.output_vectors, (len(model.labels), model.dim))
        model._index = None
        model._resume_state = stored.resume
        return model


def train_supervised(input, **kwargs) -> FastTextClassifier:
    """fastText's ``train_supervised``: ``train_supervised("train.txt", lr=0.5, epoch=25, word_ngrams=2)``."""
    return FastTextClassifier(input, **kwargs)
