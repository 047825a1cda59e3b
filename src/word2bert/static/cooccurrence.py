"""Word–context co-occurrence counts, as Stanford GloVe's ``cooccur`` computes them.

``X[i, j]`` sums, over every occurrence of word ``j`` and every word ``i`` at distance
``d = 1 .. window`` to its left in the same line, the weight ``1/d`` (``distance_weighting``,
GloVe's default) or ``1`` (uniform). With ``symmetric`` (GloVe's ``-symmetric 1``, default) the
pair is also added as ``X[j, i]``, so ``X`` is symmetric and a word paired with itself adds
``2/d`` to the diagonal, exactly as ``cooccur.c`` does; left-only (``-symmetric 0``) keeps just
``X[left word, right word]``.

Boundaries follow ``cooccur.c``: every line of the corpus is a document and windows never
cross a line break (``get_word`` returns a newline flag and the window index is reset);
out-of-vocabulary tokens are skipped and take no window position (they are dropped when the
corpus is encoded). Callers that read text should therefore not split long lines
(:func:`build_cooccurrence` reads lines whole).

Counting is multi-threaded: each thread takes a contiguous shard of sentences and owns an
open-addressing hash table ``(i, j) -> weight`` (float64 sums, GloVe's ``real``). The table
doubles while it fits in the thread's share of ``memory_limit_mb``; when it would outgrow
it, it is sorted into a run of (key, value) pairs, spilled to a temporary ``.npy`` shard and
emptied (GloVe's overflow files). At the end all runs (spilled and in memory) are merged,
two at a time and smallest first, summing equal keys. The symmetric case stores each unordered pair once and
mirrors it at the end, which halves the hashing work and gives the same matrix.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numba import njit

from word2bert.errors import Word2BertError, check_positive
from word2bert.fileio import atomic_save
from word2bert.static.native import prepare

EMPTY = -1
SLOT_BYTES = 16  # int64 key + float64 value
MIN_CAPACITY = 1 << 16
MAX_LOAD = 0.7
FORMAT_TAG = "word2bert-cooccurrence-1"


# ---------------------------------------------------------------------------------------
# numba kernels
# ---------------------------------------------------------------------------------------
@njit(nogil=True, cache=True, inline="always")
def _slot(key, mask):
    """Fibonacci hashing: the top bits of ``key * 2^64/phi`` (wrapping), masked to the table."""
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64((h ^ (h >> np.uint64(31))) & np.uint64(mask))


@njit(nogil=True, cache=True)
def _table_add(keys, values, key, weight):
    """Add ``weight`` at ``key`` (linear probing); return 1 if a new slot was taken, else 0."""
    mask = len(keys) - 1
    s = _slot(key, mask)
    while True:
        k = keys[s]
        if k == key:
            values[s] += weight
            return 0
        if k == EMPTY:
            keys[s] = key
            values[s] = weight
            return 1
        s = (s + 1) & mask


@njit(nogil=True, cache=True)
def _count_kernel(tokens, offsets, sentence, position, sentence_end, window, symmetric,
                  distance_weighting, vocab_size, keys, values, used, max_used):
    """Accumulate window pairs of sentences ``sentence .. sentence_end-1`` into the table.

    For the token ``w2`` at position ``p`` of a sentence starting at ``s0`` and each
    ``d = 1 .. min(window, p - s0)``, the left word ``w1 = tokens[p - d]`` adds ``1/d`` (or 1)
    at key ``w1 * V + w2`` (left-only) or ``min(w1, w2) * V + max(w1, w2)`` (symmetric, one
    unordered pair). Starts at token ``position`` of ``sentence`` and stops early, between
    two tokens, when the next token could push the table past ``max_used`` entries.
    Returns ``(sentence, position, used)`` to resume from.
    """
    while sentence < sentence_end:
        start = offsets[sentence]
        end = offsets[sentence + 1]
        if position < start:
            position = start
        while position < end:
            if used + window > max_used:
                return sentence, position, used
            w2 = np.int64(tokens[position])
            lo = position - window
            if lo < start:
                lo = start
            for q in range(position - 1, lo - 1, -1):
                w1 = np.int64(tokens[q])
                weight = 1.0 / (position - q) if distance_weighting else 1.0
                if symmetric and w1 > w2:
                    key = w2 * vocab_size + w1
                else:
                    key = w1 * vocab_size + w2
                used += _table_add(keys, values, key, weight)
            position += 1
        sentence += 1
    return sentence, position, used


@njit(nogil=True, cache=True)
def _rehash(keys, values, new_keys, new_values):
    """Move every occupied slot of the old table into the (empty) new one."""
    for s in range(len(keys)):
        if keys[s] != EMPTY:
            _table_add(new_keys, new_values, keys[s], values[s])


@njit(nogil=True, cache=True)
def _sorted_run(keys, values, used, vocab_size):
    """The occupied slots as (keys, values) sorted by key, in O(n) buckets by row + row sorts.

    Keys are ``row * V + col``: a counting sort by row, then a sort of each row's columns.
    """
    row_counts = np.zeros(vocab_size + 1, np.int64)
    for s in range(len(keys)):
        if keys[s] != EMPTY:
            row_counts[keys[s] // vocab_size + 1] += 1
    row_start = np.cumsum(row_counts)
    fill = row_start[:-1].copy()
    out_keys = np.empty(used, np.int64)
    out_values = np.empty(used, np.float64)
    for s in range(len(keys)):
        k = keys[s]
        if k != EMPTY:
            r = k // vocab_size
            out_keys[fill[r]] = k
            out_values[fill[r]] = values[s]
            fill[r] += 1
    for r in range(vocab_size):
        a = row_start[r]
        b = row_start[r + 1]
        if b - a > 1:
            order = np.argsort(out_keys[a:b])
            out_keys[a:b] = out_keys[a:b][order]
            out_values[a:b] = out_values[a:b][order]
    return out_keys, out_values


@njit(nogil=True, cache=True)
def _merge_two(keys_a, values_a, keys_b, values_b):
    """Merge two key-sorted runs into one, summing the values of equal keys.

    Two passes: count the distinct keys, then fill an output of exactly that size.
    """
    n_a, n_b = len(keys_a), len(keys_b)
    distinct = 0
    i = j = 0
    while i < n_a or j < n_b:
        if j == n_b or (i < n_a and keys_a[i] < keys_b[j]):
            i += 1
        elif i == n_a or keys_b[j] < keys_a[i]:
            j += 1
        else:
            i += 1
            j += 1
        distinct += 1
    keys = np.empty(distinct, np.int64)
    values = np.empty(distinct, np.float64)
    i = j = k = 0
    while i < n_a or j < n_b:
        if j == n_b or (i < n_a and keys_a[i] < keys_b[j]):
            keys[k] = keys_a[i]
            values[k] = values_a[i]
            i += 1
        elif i == n_a or keys_b[j] < keys_a[i]:
            keys[k] = keys_b[j]
            values[k] = values_b[j]
            j += 1
        else:
            keys[k] = keys_a[i]
            values[k] = values_a[i] + values_b[j]
            i += 1
            j += 1
        k += 1
    return keys, values


def _merge_runs(runs):
    """Merge sorted runs (arrays, or .npy paths read memory-mapped) smallest pair first, into one run."""
    import heapq

    def opened(run):
        keys, values = run
        if isinstance(keys, str):
            keys, values = np.load(keys, mmap_mode="r"), np.load(values, mmap_mode="r")
        return np.asarray(keys), np.asarray(values)

    if not runs:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    heap = [(len(opened(run)[0]), n, run) for n, run in enumerate(runs)]
    heapq.heapify(heap)
    counter = len(heap)
    while len(heap) > 1:
        _, _, first = heapq.heappop(heap)
        _, _, second = heapq.heappop(heap)
        merged = _merge_two(*opened(first), *opened(second))
        heapq.heappush(heap, (len(merged[0]), counter, merged))
        counter += 1
    last = heap[0][2]
    keys, values = opened(last)
    if isinstance(last[0], str):  # a single spilled run: read it into memory, its file is about to go
        keys, values = np.array(keys), np.array(values)
    return keys, values


# ---------------------------------------------------------------------------------------
# per-thread counting with growth and spilling
# ---------------------------------------------------------------------------------------
class _ShardCounter:
    """Counts one shard of sentences; keeps its sorted runs (in memory or spilled)."""

    def __init__(self, tokens, offsets, first, last, window, symmetric, distance_weighting, vocab_size,
                 max_slots, spill_dir, progress):
        self.tokens, self.offsets = tokens, offsets  # plain ndarrays (a memmap's buffer)
        self.first, self.last = first, last
        self.window, self.symmetric, self.distance_weighting = window, symmetric, distance_weighting
        self.vocab_size = vocab_size
        self.max_slots = max_slots
        self.spill_dir = spill_dir
        self.progress = progress
        self.runs: list[tuple] = []  # (keys, values) arrays or (keys_path, values_path)
        self.error: BaseException | None = None
        self.spills = 0

    def _new_table(self, capacity):
        return np.full(capacity, EMPTY, np.int64), np.zeros(capacity, np.float64)

    def run(self):
        try:
            self._run()
        except BaseException as exc:  # reported by the caller in the main thread
            self.error = exc

    def _run(self):
        tokens, offsets = self.tokens, self.offsets
        capacity = min(MIN_CAPACITY, self.max_slots)
        keys, values = self._new_table(capacity)
        used = 0
        sentence, position = self.first, int(offsets[self.first]) if self.first < len(offsets) else 0
        done_tokens = position
        # Work in slices of sentences so the progress bar moves.
        while sentence < self.last:
            stop = min(self.last, int(np.searchsorted(offsets, offsets[sentence] + (1 << 20), "right")))
            stop = max(stop, sentence + 1)
            while sentence < stop:
                max_used = int(capacity * MAX_LOAD)
                sentence, position, used = _count_kernel(
                    tokens, offsets, sentence, position, stop, self.window, self.symmetric,
                    self.distance_weighting, self.vocab_size, keys, values, used, max_used)
                if sentence < stop:  # table full: grow, or spill when at the memory limit
                    if capacity * 2 <= self.max_slots:
                        capacity *= 2
                        new_keys, new_values = self._new_table(capacity)
                        _rehash(keys, values, new_keys, new_values)
                        keys, values = new_keys, new_values
                    else:
                        self._spill(keys, values, used)
                        keys.fill(EMPTY)
                        values.fill(0.0)
                        used = 0
            if self.progress is not None:
                now = int(offsets[sentence]) if sentence < len(offsets) else done_tokens
                self.progress.update(now - done_tokens)
                done_tokens = now
        run_keys, run_values = _sorted_run(keys, values, used, self.vocab_size)
        del keys, values
        self.runs.append((run_keys, run_values))

    def _spill(self, keys, values, used):
        run_keys, run_values = _sorted_run(keys, values, used, self.vocab_size)
        stem = Path(self.spill_dir) / f"run-{id(self):x}-{self.spills:04d}"
        np.save(f"{stem}.keys.npy", run_keys)
        np.save(f"{stem}.values.npy", run_values)
        self.spills += 1
        self.runs.append((f"{stem}.keys.npy", f"{stem}.values.npy"))


def _shard_bounds(offsets: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Split sentences into ``parts`` contiguous ranges holding about equal numbers of tokens."""
    n_sentences = len(offsets) - 1
    targets = offsets[-1] * np.arange(1, parts) / parts
    cuts = [0] + [int(c) for c in np.searchsorted(offsets, targets)] + [n_sentences]
    cuts = np.clip(cuts, 0, n_sentences)
    return [(int(cuts[i]), int(cuts[i + 1])) for i in range(parts) if cuts[i + 1] > cuts[i]]


def count_cooccurrences(corpus, vocab_size: int, window: int = 10, symmetric: bool = True,
                        distance_weighting: bool = True, workers: int = 2, memory_limit_mb: float = 4096,
                        temp_dir=None, progress=None, return_stats: bool = False):
    """Co-occurrence counts of an :class:`~word2bert.corpus.EncodedCorpus` as a CSR matrix.

    ``X[i, j] = sum over occurrences of j, and i at distance d <= window to its left in the
    same sentence, of 1/d`` (or 1 without ``distance_weighting``), plus the mirrored pairs when
    ``symmetric``. ``memory_limit_mb`` bounds the hash tables of all threads together (a soft
    limit, like GloVe's ``-memory``): a thread whose table outgrows its share spills sorted
    runs to ``temp_dir`` and they are merged at the end. float64 ``V x V`` CSR with sorted
    column indices; with ``return_stats`` also a dict (number of spilled runs).
    """
    check_positive("window", window)
    check_positive("workers", workers)
    check_positive("memory_limit_mb", memory_limit_mb)
    check_positive("vocab_size", vocab_size)
    tokens = np.asarray(corpus.tokens)
    if len(tokens) and (int(tokens.max()) >= vocab_size or int(tokens.min()) < 0):
        raise Word2BertError(f"the corpus has word ids outside 0..{vocab_size - 1}")
    offsets = np.asarray(corpus.offsets, dtype=np.int64)
    max_slots = int(memory_limit_mb * (1 << 20) / workers / SLOT_BYTES)
    max_slots = 1 << max(int(np.floor(np.log2(max(max_slots, 1024)))), 10)
    if max_slots * MAX_LOAD < 4 * window:
        raise Word2BertError(f"memory_limit_mb={memory_limit_mb} is too small to count a window of {window}")

    spill_root = tempfile.mkdtemp(prefix="word2bert-cooccur-", dir=temp_dir)
    try:
        counters = [_ShardCounter(tokens, offsets, a, b, window, bool(symmetric), bool(distance_weighting), vocab_size,
                                  max_slots, spill_root, progress)
                    for a, b in _shard_bounds(offsets, workers)]
        threads = [threading.Thread(target=c.run, daemon=True) for c in counters]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in counters:
            if c.error is not None:
                raise c.error
        keys, values = _merge_runs([run for c in counters for run in c.runs])
        n_spilled = sum(c.spills for c in counters)
    finally:
        shutil.rmtree(spill_root, ignore_errors=True)
    rows = (keys // vocab_size).astype(np.int32)
    cols = (keys % vocab_size).astype(np.int32)
    del keys
    matrix = _csr_from_sorted(rows, cols, values, vocab_size)
    if symmetric:
        # mirror the upper triangle; the diagonal doubles, as cooccur.c adds both orders
        matrix = (matrix + matrix.T).tocsr()
        matrix.sort_indices()
    if return_stats:
        return matrix, {"spilled_runs": n_spilled}
    return matrix


def _csr_from_sorted(rows, cols, values, n):
    """CSR from row-major sorted, duplicate-free COO triples without another sort."""
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    matrix = sp.csr_matrix((values, cols, indptr), shape=(n, n))
    matrix.has_sorted_indices = True
    return matrix


# ---------------------------------------------------------------------------------------
# the matrix with its vocabulary, saved and reused
# ---------------------------------------------------------------------------------------
class CooccurrenceMatrix:
    """A co-occurrence matrix with the words of its rows/columns and how it was counted.

    ``matrix`` is a float64 CSR ``V x V``; ``words[i]`` and ``counts[i]`` describe row and
    column ``i``; ``settings`` records window, symmetric and distance_weighting.
    """

    def __init__(self, matrix, words, counts=None, settings: dict | None = None):
        matrix = sp.csr_matrix(matrix)
        if matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(words):
            raise Word2BertError(f"co-occurrence matrix of shape {matrix.shape} does not match "
                                 f"{len(words)} words")
        self.matrix = matrix
        self.words = list(words)
        self.counts = None if counts is None else np.asarray(counts, dtype=np.int64)
        self.settings = dict(settings or {})

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    def save(self, path) -> None:
        """Write an ``.npz`` (CSR arrays, words, counts, settings) atomically."""
        settings = np.array([f"{k}={v}" for k, v in sorted(self.settings.items())], dtype=str)
        counts = self.counts if self.counts is not None else np.zeros(0, np.int64)

        encoded = [word.encode("utf-8", "surrogatepass") for word in self.words]
        word_offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(b) for b in encoded], out=word_offsets[1:])

        def writer(tmp):
            with open(tmp, "wb") as handle:
                np.savez(handle, format=np.array(FORMAT_TAG), indptr=self.matrix.indptr,
                         indices=self.matrix.indices, data=self.matrix.data,
                         shape=np.array(self.matrix.shape, np.int64),
                         word_bytes=np.frombuffer(b"".join(encoded), np.uint8), word_offsets=word_offsets,
                         counts=counts, settings=settings)

        atomic_save(path, writer)

    @classmethod
    def load(cls, path):
        """Read a matrix written by :meth:`save`; a clear error for anything else."""
        path = Path(path)
        if not path.exists():
            raise Word2BertError(f"file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                if "format" not in data or str(data["format"]) != FORMAT_TAG:
                    raise Word2BertError(f"{path} is not a word2bert co-occurrence file")
                shape = tuple(int(x) for x in data["shape"])
                matrix = sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=shape)
                blob = data["word_bytes"].tobytes()
                offsets = data["word_offsets"]
                words = [blob[offsets[i]:offsets[i + 1]].decode("utf-8", "surrogatepass")
                         for i in range(len(offsets) - 1)]
                counts = data["counts"]
                settings = dict(s.split("=", 1) for s in data["settings"].tolist())
        except (OSError, ValueError, KeyError, IndexError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise Word2BertError(f"cannot read co-occurrence file {path}: {exc}") from None
        return cls(matrix, words, counts if len(counts) else None, settings)


def is_cooccurrence_file(path) -> bool:
    """True when ``path`` is an ``.npz`` written by :meth:`CooccurrenceMatrix.save`."""
    path = Path(path)
    if path.suffix != ".npz" or not path.is_file():
        return False
    with contextlib.suppress(OSError, ValueError, zipfile.BadZipFile):
        with np.load(path, allow_pickle=False) as data:
            return "format" in data and str(data["format"]) == FORMAT_TAG
    return False


def warm_count():
    """(kernel, arguments) of a tiny count with the types counting uses (see native.prepare)."""
    keys, values = np.full(16, EMPTY, np.int64), np.zeros(16, np.float64)
    return _count_kernel, (np.zeros(2, np.int32), np.array([0, 2], np.int64), 0, 0, 1, 1, True, True, 1, keys, values,
                           0, 8)


def warm_rehash():
    keys, values = np.full(16, EMPTY, np.int64), np.zeros(16, np.float64)
    return _rehash, (keys, values, keys.copy(), values.copy())


def warm_sorted_run():
    return _sorted_run, (np.full(16, EMPTY, np.int64), np.zeros(16, np.float64), 0, 1)


def warm_merge():
    keys, values = np.zeros(1, np.int64), np.zeros(1, np.float64)
    return _merge_two, (keys, values, keys.copy(), values.copy())


COUNTING_KERNELS = [("word2bert.static.cooccurrence", name, {})
                    for name in ("warm_count", "warm_rehash", "warm_sorted_run", "warm_merge")]


def build_cooccurrence(corpus_file, window: int = 10, min_count: int = 5, max_vocab_size=None,
                       symmetric: bool = True, distance_weighting: bool = True, workers: int = 2,
                       memory_limit_mb: float = 4096, lowercase: bool = False, temp_dir=None,
                       show_progress=None, timings: dict | None = None) -> CooccurrenceMatrix:
    """Vocabulary + encoding + counting for a text file (one document per line, lines kept whole).

    ``timings``, when given, receives ``vocabulary`` and ``cooccurrence`` wall seconds.
    """
    import time

    from word2bert.corpus import EncodedCorpus, Vocabulary, iter_sentences
    from word2bert.corpus.scan import encode_scan, merge_duplicates, scan_file, vocabulary_of
    from word2bert.progress import progress_bar

    whole_lines = 1 << 62  # GloVe never splits a line: windows stop only at line breaks

    class _Lines:
        def __iter__(self):
            return iter_sentences(corpus_file, lowercase=lowercase, max_sentence_length=whole_lines)

    disable = None if show_progress is None else not show_progress
    start = time.perf_counter()
    kernels = prepare(COUNTING_KERNELS, "co-occurrence", "counting")  # compiled (first run) while the file is read
    if max_vocab_size is None:  # one compiled read of the file: vocabulary and ids at once
        with progress_bar(None, desc="vocabulary", unit="word", disable=disable) as bar:
            scanned = merge_duplicates(scan_file(corpus_file, lowercase, whole_lines, progress=bar))
        vocab = vocabulary_of(scanned, min_count)
        corpus = encode_scan(scanned, vocab)
        del scanned
    else:  # word2vec.c's pruning of the running counts (ReduceVocab) bounds the counting's memory
        with progress_bar(None, desc="vocabulary", unit="word", disable=disable) as bar:
            vocab = Vocabulary.build(_Lines(), min_count=min_count, max_vocab_size=max_vocab_size, progress=bar)
        with progress_bar(getattr(vocab, "raw_total_words", None), desc="encoding", unit="word",
                          disable=disable) as bar:
            corpus = EncodedCorpus.encode(_Lines(), vocab, progress=bar)
    middle = time.perf_counter()
    kernels.wait()
    with progress_bar(len(corpus.tokens), desc="co-occurrence", unit="word", disable=disable) as bar:
        matrix = count_cooccurrences(corpus, len(vocab), window=window, symmetric=symmetric,
                                     distance_weighting=distance_weighting, workers=workers,
                                     memory_limit_mb=memory_limit_mb, temp_dir=temp_dir, progress=bar)
    end = time.perf_counter()
    if timings is not None:
        timings["vocabulary"] = middle - start
        timings["cooccurrence"] = end - middle
    settings = {"window": window, "symmetric": int(bool(symmetric)),
                "distance_weighting": int(bool(distance_weighting)), "min_count": min_count}
    return CooccurrenceMatrix(matrix, vocab.words, vocab.counts, settings)
