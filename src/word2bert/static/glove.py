"""GloVe (Pennington, Socher & Manning 2014): weighted least squares on log co-occurrences.

The model fits, over the non-zero entries ``X_ij`` of a co-occurrence matrix
(:mod:`word2bert.static.cooccurrence`),

    J = sum_ij f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2,
    f(x) = min(1, (x / x_max)^alpha)                       (x_max 100, alpha 0.75),

with ``w`` the word vectors and ``w~`` the context vectors (``W`` and ``W~``; in GloVe.c both
live in one array ``W`` of ``2V`` rows with the bias as the last column). Training follows
GloVe.c: AdaGrad with the squared-gradient sums started at 1 (so the first step has rate
``eta``, 0.05), parameters initialised uniformly in ``[-0.5, 0.5) / dim``, lock-free (Hogwild)
threads, and the reported cost ``sum 0.5 f(X) diff^2 / nnz`` per iteration. As in GloVe.c the
AdaGrad accumulator receives the squared *scaled* gradient ``(eta * g)^2``, so a parameter
moves by ``eta g / sqrt(1 + sum (eta g)^2)``.

Where we differ, for speed: parameters are float32 (GloVe.c uses double); ``f(X)`` and
``log X`` are computed once per entry rather than at every update; and the order of the
entries is a global shuffle done once (as GloVe's ``shuffle`` does) followed, every
iteration, by a fresh random order of blocks of 4096 entries and a fresh random
(affine) order inside each block, so no two iterations visit the entries in the same order
(GloVe.c re-reads its shuffled file in the same order every iteration).

Output vectors are ``W + W~`` (GloVe's ``-model 2``, default) or ``W`` alone (``-model 1``).
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numba import njit

from word2bert.errors import Word2BertError, check_positive
from word2bert.static import jobs as training, storage
from word2bert.static.init import glove_uniform
from word2bert.static.native import prefetch, prepare

BLOCK_SIZE = 4096  # entries per shuffle block (a power of two)
BLOCKS_PER_JOB = 32  # blocks per kernel call, so the bar moves (and Ctrl-C is honoured soon)
PREFETCH_AHEAD = 6  # entries between a prefetch and the update that uses it
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}  # fastmath without nnan/ninf: isfinite stays meaningful


def glove_weighting(x, x_max: float = 100.0, alpha: float = 0.75):
    """GloVe's weighting function ``f(x) = (x / x_max)^alpha`` for ``x < x_max``, else 1."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x < x_max, np.power(np.maximum(x, 0.0) / x_max, alpha), 1.0)


def glove_loss(rows, cols, values, word_vectors, context_vectors, word_biases, context_biases,
               x_max: float = 100.0, alpha: float = 0.75) -> float:
    """The GloVe objective ``J = sum f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2`` (numpy, float64)."""
    diff = (np.einsum("nd,nd->n", word_vectors[rows].astype(np.float64), context_vectors[cols].astype(np.float64))
            + word_biases[rows] + context_biases[cols] - np.log(values))
    return float(np.sum(glove_weighting(values, x_max, alpha) * diff * diff))


@njit(nogil=True, cache=True, fastmath=_FAST, error_model="numpy")
def _adagrad_blocks(rows, cols, log_values, weights, block_order, block_multiplier, block_offset,
                    word_parameters, context_parameters, word_biases, context_biases,
                    word_bias_gradsq, context_bias_gradsq, eta):
    """One AdaGrad step per entry of the given blocks (GloVe.c's ``glove_thread``); returns the cost.

    ``word_parameters[i, 0]`` is ``w_i`` and ``word_parameters[i, 1]`` its AdaGrad sum ``G_i``
    (interleaved so one entry touches two memory regions, not four); likewise ``w~_j``, ``G~_j``.
    For entry ``(i, j)``: ``diff = w_i . w~_j + b_i + b~_j - log X_ij``, cost ``+= 0.5 f diff^2``,
    and with ``g = eta f diff`` each coordinate moves as
    ``w_i -= g w~_j / sqrt(G_i)``, ``w~_j -= g w_i / sqrt(G~_j)`` (both from the old values), then
    ``G_i += (g w~_j)^2``, ``G~_j += (g w_i)^2``; the biases likewise with gradient ``g``.
    Inside block ``b`` the ``k``-th step takes entry ``(k * multiplier[b] + offset[b]) mod 4096``
    (an odd multiplier makes it a permutation). Updates with a non-finite ``diff`` are skipped.
    Rows are indexed in place (no per-entry views, whose reference counts threads would
    share), ``error_model="numpy"`` drops the division-by-zero branch so the coordinate loops
    vectorise, and the rows of the entry ``PREFETCH_AHEAD`` steps ahead are prefetched.
    """
    n = len(rows)
    vocab_size = word_parameters.shape[0]
    dim = word_parameters.shape[2]
    word_rows = word_parameters.reshape((vocab_size, 2 * dim))
    context_rows = context_parameters.reshape((context_parameters.shape[0], 2 * dim))
    mask = BLOCK_SIZE - 1
    cost = 0.0
    word_steps = np.empty(dim, np.float32)
    context_steps = np.empty(dim, np.float32)
    for position in range(len(block_order)):
        base = block_order[position] * BLOCK_SIZE
        multiplier = block_multiplier[position]
        offset = block_offset[position]
        for k in range(BLOCK_SIZE):
            ahead = base + (((k + PREFETCH_AHEAD) * multiplier + offset) & mask)
            if ahead < n:
                next_i = rows[ahead]
                next_j = cols[ahead]
                for b in range(0, 2 * dim, 16):  # 16 float32 = one 64-byte line
                    prefetch(word_rows, next_i, b, True)
                    prefetch(context_rows, next_j, b, True)
            e = base + ((k * multiplier + offset) & mask)
            if e >= n:
                continue
            i = rows[e]
            j = cols[e]
            diff = word_biases[i] + context_biases[j] - log_values[e]
            for b in range(dim):
                diff += word_parameters[i, 0, b] * context_parameters[j, 0, b]
            if not math.isfinite(diff):
                continue
            fdiff = weights[e] * diff
            cost += 0.5 * fdiff * diff
            fdiff *= eta
            for b in range(dim):
                word_steps[b] = fdiff * context_parameters[j, 0, b]
                context_steps[b] = fdiff * word_parameters[i, 0, b]
            for b in range(dim):
                step = word_steps[b]
                word_parameters[i, 0, b] -= step / np.sqrt(word_parameters[i, 1, b])
                word_parameters[i, 1, b] += step * step
            for b in range(dim):
                step = context_steps[b]
                context_parameters[j, 0, b] -= step / np.sqrt(context_parameters[j, 1, b])
                context_parameters[j, 1, b] += step * step
            word_biases[i] -= fdiff / np.sqrt(word_bias_gradsq[i])
            context_biases[j] -= fdiff / np.sqrt(context_bias_gradsq[j])
            word_bias_gradsq[i] += fdiff * fdiff
            context_bias_gradsq[j] += fdiff * fdiff
    return cost


class GloVe:
    """GloVe trained by AdaGrad over the non-zero co-occurrences, Hogwild over ``workers`` threads.

    Parameter names follow GloVe.c and gensim: ``vector_size`` (-vector-size), ``x_max``,
    ``alpha``, ``epochs`` (-iter), ``eta``, ``workers`` (-threads), ``seed``; ``output_vectors``
    is ``"W+Wt"`` (-model 2) or ``"W"`` (-model 1).
    """

    def __init__(self, vector_size: int = 100, x_max: float = 100.0, alpha: float = 0.75, epochs: int = 25,
                 eta: float = 0.05, workers: int = 2, seed: int = 1, output_vectors: str = "W+Wt"):
        check_positive("vector_size", vector_size)
        check_positive("x_max", x_max)
        check_positive("alpha", alpha, allow_zero=True)
        check_positive("epochs", epochs)
        check_positive("eta", eta)
        check_positive("workers", workers)
        if output_vectors not in ("W+Wt", "W"):
            raise Word2BertError(f"parameter output_vectors={output_vectors!r} must be 'W+Wt' or 'W'")
        self.vector_size, self.x_max, self.alpha = int(vector_size), float(x_max), float(alpha)
        self.epochs, self.eta, self.workers, self.seed = int(epochs), float(eta), int(workers), int(seed)
        self.output_vectors = output_vectors
        self.loss_history: list[float] = []
        self.iterations_done = 0
        self._resume_state: dict | None = None  # where an interrupted fit() stopped (see save_checkpoint)
        self._resuming = False
        self.words: list[str] | None = None
        self.counts = None
        self._wv = None
        self._kernels = None

    # -- parameters ---------------------------------------------------------------------
    def _initialise(self, vocab_size: int, rng: np.random.Generator):
        """GloVe.c's initialisation: uniform in [-0.5, 0.5) / dim for vectors and biases; gradsq = 1."""
        dim = self.vector_size
        # [:, 0] the vectors, [:, 1] their AdaGrad sums (GloVe.c's W and gradsq, interleaved by row)
        self.word_parameters = np.ones((vocab_size, 2, dim), np.float32)
        self.context_parameters = np.ones((vocab_size, 2, dim), np.float32)
        self.word_parameters[:, 0] = glove_uniform((vocab_size, dim), dim, rng)
        self.context_parameters[:, 0] = glove_uniform((vocab_size, dim), dim, rng)
        self.word_biases = glove_uniform(vocab_size, dim, rng)
        self.context_biases = glove_uniform(vocab_size, dim, rng)
        self.word_bias_gradsq = np.ones(vocab_size, np.float32)
        self.context_bias_gradsq = np.ones(vocab_size, np.float32)

    # -- training -----------------------------------------------------------------------
    def fit(self, cooccurrence, words=None, counts=None, show_progress=None, log=None, checkpoint=None):
        """Train on a :class:`CooccurrenceMatrix` (or any square scipy sparse matrix with ``words``).

        ``log(iteration, cost)`` is called after each iteration; ``loss_history`` keeps the
        costs (GloVe.c's ``iter: NNN, cost: ...`` values). A model read by
        :meth:`load_checkpoint` continues where it stopped. On Ctrl-C the threads finish their
        blocks, the model is saved to ``checkpoint`` (if given) with the position it stopped at, and
        ``KeyboardInterrupt`` propagates (``iterations_done`` counts the completed iterations).
        """
        import scipy.sparse as sp

        from word2bert.progress import progress_bar

        if hasattr(cooccurrence, "matrix"):
            words = cooccurrence.words if words is None else words
            counts = cooccurrence.counts if counts is None else counts
            matrix = cooccurrence.matrix
        else:
            matrix = cooccurrence
        if not sp.issparse(matrix) or matrix.shape[0] != matrix.shape[1]:
            raise Word2BertError("GloVe needs a square sparse co-occurrence matrix")
        vocab_size = matrix.shape[0]
        if words is not None and len(words) != vocab_size:
            raise Word2BertError(f"{len(words)} words for a co-occurrence matrix of size {vocab_size}")
        coo = matrix.tocoo()
        keep = coo.data > 0
        if not np.all(np.isfinite(coo.data)):
            raise Word2BertError("the co-occurrence matrix has non-finite entries")
        rows, cols, values = coo.row[keep], coo.col[keep], coo.data[keep]
        nnz = len(values)
        if nnz == 0:
            raise Word2BertError("the co-occurrence matrix is empty: nothing to train on")
        if not self._resuming:
            self.iterations_done, self.loss_history, self._resume_state = 0, [], None
        elif words is not None and list(words) != self.words:
            raise Word2BertError("the checkpoint was trained on other words than this co-occurrence matrix: "
                                 "resume with the same corpus and counting options")
        self.words = list(words) if words is not None else [str(i) for i in range(vocab_size)]
        self.counts = counts
        self._wv = None
        if self.iterations_done == 0 and self._resume_state is None:
            self._initialise(vocab_size, np.random.default_rng([self.seed, 0]))
        elif self.word_parameters.shape[0] != vocab_size:
            raise Word2BertError(f"the checkpoint has {self.word_parameters.shape[0]} words but the "
                                 f"co-occurrence matrix {vocab_size}: resume with the same corpus and options")
        # one global shuffle (GloVe's `shuffle`), then per-iteration block orders
        order = np.random.default_rng([self.seed, 1]).permutation(nnz)
        rows = rows[order].astype(np.int32)
        cols = cols[order].astype(np.int32)
        values = values[order]
        del order, coo
        log_values = np.log(values).astype(np.float32)
        weights = glove_weighting(values, self.x_max, self.alpha).astype(np.float32)
        del values
        n_blocks = (nnz + BLOCK_SIZE - 1) // BLOCK_SIZE
        block_offsets = np.minimum(np.arange(n_blocks + 1, dtype=np.int64) * BLOCK_SIZE, nnz)
        jobs = training.schedule(block_offsets, self.epochs, self.eta, self.eta, self.seed,
                                 target_tokens=BLOCKS_PER_JOB * BLOCK_SIZE)
        parameters = (self.word_parameters, self.context_parameters, self.word_biases, self.context_biases,
                      self.word_bias_gradsq, self.context_bias_gradsq)
        orders: dict = {}
        lock = threading.Lock()

        def iteration_order(iteration):
            """The block order and in-block permutations of an iteration (reproducible after a resume)."""
            with lock:
                if iteration not in orders:
                    rng = np.random.default_rng([self.seed, 2, iteration])
                    orders.clear()  # jobs of one iteration at a time (epochs are run one after the other)
                    orders[iteration] = (rng.permutation(n_blocks).astype(np.int64),
                                         (rng.integers(0, BLOCK_SIZE // 2, n_blocks) * 2 + 1).astype(np.int64),
                                         rng.integers(0, BLOCK_SIZE, n_blocks).astype(np.int64))
                return orders[iteration]

        def call(job):
            block_order, multipliers, offsets = iteration_order(job.epoch)
            part = slice(job.first, job.last)
            cost = _adagrad_blocks(rows, cols, log_values, weights, block_order[part], multipliers[part],
                                   offsets[part], *parameters, np.float32(self.eta))
            entries = _entries(block_order[part], nnz)
            return cost, entries, entries

        def iteration_end(iteration, cost_sum, entries, _):
            cost = float(cost_sum) / nnz
            if not math.isfinite(cost):
                raise Word2BertError(f"GloVe diverged at iteration {iteration + 1} (cost {cost}); lower eta or x_max")
            self.loss_history.append(cost)
            self.iterations_done = iteration + 1
            bar.set_postfix(iteration=iteration + 1, loss=f"{cost:.5f}")
            if log is not None:
                log(iteration + 1, cost)

        def save(path, state):
            self._resume_state = state
            self.save_checkpoint(path)

        resume = self._resume_state
        if resume is None and self.iterations_done > 0:  # a 0.1.0 checkpoint: whole iterations done
            done = sum(1 for job in jobs if job.epoch < self.iterations_done)
            resume = training.resume_state(jobs, nnz, done, 0.0, 0, 0)
        disable = None if show_progress is None else not show_progress
        self.prepare().wait()
        self._kernels = None
        with progress_bar(self.epochs * nnz, desc="glove", unit="pair", disable=disable) as bar:
            training.run_jobs(call, jobs, self.workers, progress=bar, sizes=[BLOCK_SIZE * (j.last - j.first)
                                                                             for j in jobs],
                              resume=resume, corpus_size=nnz, checkpoint=checkpoint, save=save, what="glove",
                              on_epoch_end=iteration_end)
        self._resuming = False
        self._resume_state = None
        self._wv = None
        return self

    def prepare(self):
        """Start compiling the training kernel in a helper process (on a first run; a no-op once it is
        cached), e.g. before counting the co-occurrences; :meth:`fit` waits for it."""
        if self._kernels is None:
            self._kernels = prepare([("word2bert.static.glove", "warm_adagrad", {})], "glove", "AdaGrad")
        return self._kernels

    # -- checkpoints --------------------------------------------------------------------
    _SETTINGS = ("vector_size", "x_max", "alpha", "epochs", "eta", "workers", "seed", "output_vectors")
    _ARRAYS = ("word_parameters", "context_parameters", "word_biases", "context_biases", "word_bias_gradsq",
               "context_bias_gradsq")

    def save_checkpoint(self, path) -> None:
        """Write parameters, AdaGrad sums, settings, words and progress in word2bert's format
        (:mod:`word2bert.static.storage`), atomically."""
        if self.words is None or not hasattr(self, "word_parameters"):
            raise Word2BertError("nothing to save: the model has not started training")
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        if self.counts is not None:
            arrays["counts"] = np.asarray(self.counts)
        state = {"words": self.words, "iterations_done": self.iterations_done, "loss_history": self.loss_history}
        storage.save(path, "GloVe", {name: getattr(self, name) for name in self._SETTINGS}, state, arrays,
                     self._resume_state)

    @classmethod
    def load_checkpoint(cls, path) -> "GloVe":
        """Read :meth:`save_checkpoint`'s file (this release's or 0.1.0's); :meth:`fit` then continues
        where it stopped."""
        stored = storage.load(path, "GloVe", cls._ARRAYS)
        model = cls(**stored.params)
        for name in cls._ARRAYS:
            setattr(model, name, np.ascontiguousarray(stored.arrays[name], dtype=np.float32))
        model.words = list(stored.state["words"])
        model.iterations_done = int(stored.state["iterations_done"])
        model.loss_history = list(stored.state["loss_history"])
        model.counts = stored.arrays.get("counts")
        model._resume_state = stored.resume
        model._resuming = True
        return model

    # -- parameters as GloVe.c names them -----------------------------------------------
    @property
    def word_vectors(self) -> np.ndarray:
        """``W``: the word vectors (a view)."""
        return self.word_parameters[:, 0]

    @property
    def context_vectors(self) -> np.ndarray:
        """``W~``: the context vectors (a view)."""
        return self.context_parameters[:, 0]

    @property
    def word_gradsq(self) -> np.ndarray:
        return self.word_parameters[:, 1]

    @property
    def context_gradsq(self) -> np.ndarray:
        return self.context_parameters[:, 1]

    # -- output -------------------------------------------------------------------------
    @property
    def vectors(self) -> np.ndarray:
        """``W + W~`` (GloVe's ``-model 2``) or ``W`` (``-model 1``), float32 ``(V, dim)``."""
        if self.output_vectors == "W":
            return self.word_vectors.copy()
        return self.word_vectors + self.context_vectors

    def keyed_vectors(self):
        """The output vectors as :class:`word2bert.vectors.KeyedVectors` (every vector format), built once
        per training run (its norms are computed once however often it is used)."""
        from word2bert.vectors import KeyedVectors

        if self.words is None:
            raise Word2BertError("the model is not trained yet")
        if self._wv is None:
            self._wv = KeyedVectors(self.vectors, self.words, self.counts)
        return self._wv

    @property
    def wv(self):
        """The output vectors (:meth:`keyed_vectors`)."""
        return self.keyed_vectors()


def warm_adagrad():
    """(kernel, arguments) of a tiny AdaGrad call with the types training uses (see native.prepare)."""
    one = np.zeros(1, np.int32)
    matrix = np.ones((1, 2, 2), np.float32)
    vector = np.ones(1, np.float32)
    order = np.zeros(1, np.int64)
    return _adagrad_blocks, (one, one, np.zeros(1, np.float32), np.zeros(1, np.float32), order, order + 1, order,
                             matrix, matrix.copy(), vector, vector.copy(), vector.copy(), vector.copy(),
                             np.float32(0.0))


def _entries(blocks, nnz):
    """How many real entries (< nnz) the given blocks hold."""
    full = blocks * BLOCK_SIZE + BLOCK_SIZE <= nnz
    return int(full.sum() * BLOCK_SIZE + sum(nnz - b * BLOCK_SIZE for b in blocks[~full]))


def train_glove(cooccurrence, **kwargs) -> GloVe:
    """Convenience: ``GloVe(**kwargs).fit(cooccurrence)``."""
    show_progress = kwargs.pop("show_progress", None)
    return GloVe(**kwargs).fit(cooccurrence, show_progress=show_progress)


__all__ = ["GloVe", "glove_weighting", "glove_loss", "train_glove", "BLOCK_SIZE"]
