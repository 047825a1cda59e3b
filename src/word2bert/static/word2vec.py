"""Word2Vec (Mikolov et al. 2013): skip-gram and CBOW with negative sampling, hierarchical
softmax or a full softmax, in gensim's shape (``Word2Vec(sentences, vector_size=..., ...)``,
``build_vocab`` / ``train``, ``model.wv``).

The corpus is encoded once (:class:`~word2bert.corpus.EncodedCorpus`, optionally a
memory-mapped cache) and every epoch reads the int32 ids. Each epoch is cut into jobs of
about ``JOB_WORDS`` words (whole sentences), run by :func:`word2bert.static.jobs.run_jobs` on
``workers`` threads with the ``nogil`` kernels of :mod:`word2bert.static.kernels`, all updating
the shared matrices without locks (Hogwild). The learning rate decays linearly from
``alpha`` to ``min_alpha`` over all epochs (gensim's and word2vec.c's schedule), and is fixed
per job.

An interrupted ``train`` (Ctrl-C) lets running jobs finish, then, if a ``checkpoint`` path
was given, saves the model together with its position there; loading that file and calling
``train`` again on the same corpus resumes where it stopped.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from word2bert.corpus import EncodedCorpus, Vocabulary
from word2bert.corpus.reader import MAX_SENTENCE_LENGTH, as_sentences
from word2bert.corpus.scan import encode_scan, file_key, file_source, merge_duplicates, scan_file, vocabulary_of
from word2bert.errors import Word2BertError
from word2bert.progress import progress_bar
from word2bert.static import jobs as training, kernels, storage
from word2bert.static.huffman import MAX_CODE_LENGTH, build_huffman_tree
from word2bert.static.init import numpy_uniform
from word2bert.static.native import line_aligned_copy, on_whole_lines, prepare, whole_lines
from word2bert.static.sampling import keep_probabilities, negative_sampling_table

JOB_WORDS = 10_000  # words per kernel call (gensim's MAX_WORDS_IN_BATCH, word2vec.c's 10k lr step)
MAX_SOFTMAX_VOCAB = 5_000  # the full softmax is O(V) per example


def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise Word2BertError(f"parameter {name}={value!r} must be an integer")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise Word2BertError(f"parameter {name}={value!r} must be {bound}")
    return int(value)


def _check_float(name, value, low=0.0, strict=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise Word2BertError(f"parameter {name}={value!r} must be a number") from None
    if not np.isfinite(value) or value < low or (strict and value == low):
        raise Word2BertError(f"parameter {name}={value!r} must be {'>' if strict else '>='} {low}")
    return value


class Word2Vec:
    """Skip-gram (``sg=1``) or CBOW (``sg=0``) word vectors.

    Losses: negative sampling with ``negative`` noise words (``ns_exponent`` 0.75), and/or
    hierarchical softmax (``hs=1``, word2vec.c's Huffman tree); with ``hs=0, negative=0,
    softmax=True`` the naive full softmax (vocabularies up to 5,000 words). Parameters and
    defaults follow gensim. Given ``sentences`` or ``corpus_file``, the vocabulary is built
    and the model trained at once.

    Matrices: ``input_vectors`` (``syn0``, the word vectors, shared with ``wv``),
    ``output_vectors_ns`` (``syn1neg``) and ``output_vectors_hs`` (``syn1``).
    """

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, window=5, min_count=5,
                 max_vocab_size=None, sample=1e-3, seed=1, workers=3, min_alpha=0.0001, sg=0, hs=0,
                 negative=5, ns_exponent=0.75, cbow_mean=1, alpha=0.025, epochs=5, max_final_vocab=None,
                 compute_loss=True, callbacks=(), max_sentence_length=MAX_SENTENCE_LENGTH, cache_dir=None,
                 softmax=False, lowercase=False, progress=None, corpus_iterable=None):
        started = time.perf_counter()
        sentences = one_of(sentences, corpus_iterable)
        self.vector_size = _check_int("vector_size", vector_size, 1)
        self.window = _check_int("window", window, 1)
        self.min_count = _check_int("min_count", min_count, 1)
        self.max_vocab_size = None if max_vocab_size is None else _check_int("max_vocab_size", max_vocab_size, 1)
        self.max_final_vocab = None if max_final_vocab is None else _check_int("max_final_vocab",
                                                                               max_final_vocab, 1)
        self.sample = _check_float("sample", sample)
        self.seed = _check_int("seed", seed, 0)
        self.workers = _check_int("workers", workers, 1)
        self.alpha = _check_float("alpha", alpha, strict=True)
        self.min_alpha = _check_float("min_alpha", min_alpha)
        self.sg = _check_int("sg", sg, 0, 1)
        self.hs = _check_int("hs", hs, 0, 1)
        self.negative = _check_int("negative", negative, 0)
        self.ns_exponent = _check_float("ns_exponent", ns_exponent, low=-np.inf)
        self.cbow_mean = _check_int("cbow_mean", cbow_mean, 0, 1)
        self.epochs = _check_int("epochs", epochs, 1)
        self.max_sentence_length = _check_int("max_sentence_length", max_sentence_length, 1)
        self.softmax = bool(softmax)
        if self.softmax and (self.hs or self.negative):
            raise Word2BertError("softmax=True is the full softmax: set hs=0 and negative=0 with it")
        if not self.softmax and not self.hs and not self.negative:
            raise Word2BertError("no output layer: with hs=0 and negative=0 nothing is trained; "
                                 "set negative>0, hs=1, or softmax=True (small vocabularies)")
        self.compute_loss = bool(compute_loss)
        self.callbacks = tuple(callbacks)
        self.cache_dir = cache_dir
        self.lowercase = bool(lowercase)
        self.progress = progress
        self.vocab: Vocabulary | None = None
        self.corpus_total_words = 0
        self.corpus_count = 0
        self.input_vectors = None
        self.output_vectors_ns = None
        self.output_vectors_hs = None
        self.running_training_loss = 0.0
        self.epoch_losses: list[float] = []
        self.train_count = 0
        self.total_train_time = 0.0
        self._resume_state = None
        self._wv = None
        self._scanned = None  # (file key, EncodedCorpus) of the file build_vocab read, for train
        self._kernels = None  # the training kernel, compiled ahead (see word2bert.static.native.prepare)
        self._hot_rows = None  # the threads' private hot output rows (see _private_hot_rows)
        self._started = None
        self.timings: dict = {}
        if sentences is not None or corpus_file is not None:
            self._started = started
            self.build_vocab(sentences=sentences, corpus_file=corpus_file)
            self.train(sentences=sentences, corpus_file=corpus_file)

    # -- vocabulary ---------------------------------------------------------------------
    def _sentences(self, sentences, corpus_file):
        return as_sentences(sentences, corpus_file, lowercase=self.lowercase,
                            max_sentence_length=self.max_sentence_length)

    def build_vocab(self, sentences=None, corpus_file=None, vocabulary: Vocabulary | None = None,
                    corpus_iterable=None, **gensim_options):
        """Count words (one pass), keep those with ``min_count``, then initialise the weights.

        A ready :class:`Vocabulary` may be given instead of a corpus (``corpus_iterable`` is gensim 4's
        name for ``sentences``). A text file (``corpus_file``, or a :class:`LineSentence`) is read
        once by a compiled scanner that also encodes it for :meth:`train`, while the training kernel
        compiles in a helper process on a first run. Input rows start uniform in
        ``[-1, 1) / vector_size`` (gensim's and fastText's range; word2vec.c's is half as wide, which
        leaves CBOW's averaged hidden vectors smaller and its vectors measurably worse after 5
        epochs), output rows at zero.
        """
        check_gensim_options("build_vocab", gensim_options, ("progress_per", "keep_raw_vocab", "trim_rule", "update"))
        sentences = one_of(sentences, corpus_iterable)
        if self._started is None:
            self._started = time.perf_counter()
        self._prepare_kernel()
        self._scanned = None
        if vocabulary is None:
            if isinstance(sentences, EncodedCorpus):
                raise Word2BertError("build_vocab needs the text corpus (or vocabulary=), not an EncodedCorpus")
            bar = self._bar(None, "vocab", "word")
            start = time.perf_counter()
            try:
                source = file_source(sentences, corpus_file)
                if source is not None and self.max_vocab_size is None and self.cache_dir is None:
                    path, lowercase, max_length = self._file_settings(source)
                    scanned = merge_duplicates(scan_file(path, lowercase, max_length, progress=bar))
                    vocabulary = vocabulary_of(scanned, self.min_count, self.max_final_vocab)
                    self._scanned = (file_key(path, lowercase, max_length), vocabulary, scanned)
                else:
                    vocabulary = Vocabulary.build(self._sentences(sentences, corpus_file), min_count=self.min_count,
                                                  max_vocab_size=self.max_vocab_size, progress=bar)
            finally:
                bar.close()
            self.timings["vocabulary"] = time.perf_counter() - start
        if self.max_final_vocab is not None and len(vocabulary) > self.max_final_vocab:
            vocabulary = Vocabulary(vocabulary.words[: self.max_final_vocab],
                                    vocabulary.counts[: self.max_final_vocab])
        if self.softmax and len(vocabulary) > MAX_SOFTMAX_VOCAB:
            raise Word2BertError(
                f"the full softmax costs O(vocabulary) per example and is refused for {len(vocabulary)} words "
                f"(limit {MAX_SOFTMAX_VOCAB}); use negative sampling or hs=1, or raise min_count")
        self.vocab = vocabulary
        self.corpus_total_words = int(getattr(vocabulary, "raw_total_words", vocabulary.total_words))
        self._prepare_tables()
        n, dim = len(vocabulary), self.vector_size
        self.input_vectors = line_aligned_copy(numpy_uniform((n, dim), -1.0 / dim, 1.0 / dim,
                                                             np.random.default_rng(self.seed)))
        self.output_vectors_ns = np.zeros((n, dim), np.float32) if (self.negative or self.softmax) else None
        self.output_vectors_hs = np.zeros((self._tree.n_inner, dim), np.float32) if self.hs else None
        self._wv = None
        self._resume_state = None
        return self

    def _file_settings(self, source):
        path, lowercase, max_length = source
        return (path, self.lowercase if lowercase is None else lowercase,
                self.max_sentence_length if max_length is None else max_length)

    def _input_lines(self):
        """The word vectors as the kernels take them: each row on whole cache lines, the C-contiguous
        ``(n, stride)`` matrix that ``input_vectors`` is the ``(n, dim)`` view of
        (:func:`~word2bert.static.native.whole_lines`; :meth:`build_vocab` makes them so: skip-gram
        trains 3-5% faster than on 400-byte rows that straddle lines, session 21). Vectors loaded or set
        another way are copied onto lines once, and ``input_vectors`` and ``wv`` become that copy."""
        self.input_vectors = on_whole_lines(self.input_vectors)
        return whole_lines(self.input_vectors)

    def _private_hot_rows(self):
        """With several threads, each thread's own copies of the output rows that every example writes
        (:class:`~word2bert.static.kernels.PrivateHotRows`): the Huffman nodes nearest the root with
        ``hs``, else the most frequent words' negative-sampling rows; None with one thread or the full
        softmax. The output matrix becomes the shared part of the object's larger matrix, which later
        calls reuse."""
        if self.workers < 2 or self.softmax:
            return None
        output = self.output_vectors_hs if self.hs else self.output_vectors_ns
        hot_rows = self._hot_rows
        if hot_rows is None or not hot_rows.fits(output, self.workers):
            make = kernels.PrivateHotNodes if self.hs else kernels.PrivateHotWords
            hot_rows = self._hot_rows = make(output, self.workers)
            if self.hs:
                self.output_vectors_hs = hot_rows.shared
            else:
                self.output_vectors_ns = hot_rows.shared
        hot_rows.new_run()
        return hot_rows

    def _prepare_kernel(self):
        """Start compiling the training kernel (a no-op when it is cached or already prepared)."""
        if self._kernels is None:
            self._kernels = prepare(
                [("word2bert.static.kernels", "warm_word2vec",
                  dict(dim=self.vector_size, negative=self.negative, hs=bool(self.hs), softmax=self.softmax,
                       skipgram=bool(self.sg)))], "word2vec", f"vector size {self.vector_size}")
        return self._kernels

    def _prepare_tables(self):
        counts = self.vocab.counts
        self._keep = keep_probabilities(counts, self.sample)
        self._table = (negative_sampling_table(counts, self.ns_exponent) if self.negative
                       else np.zeros(1, np.int32))
        if self.hs:
            self._tree = build_huffman_tree(counts)
        else:
            self._tree = None

    # -- accessors ----------------------------------------------------------------------
    @property
    def wv(self):
        """The word vectors as a KeyedVectors sharing ``input_vectors`` (no copy)."""
        self._require_vocab()
        if self._wv is None or self._wv.vectors is not self.input_vectors:
            from word2bert.vectors import KeyedVectors

            self._wv = KeyedVectors(self.input_vectors, list(self.vocab.words), self.vocab.counts)
        return self._wv

    def get_latest_training_loss(self) -> float:
        """Sum of the per-example losses ``-log L`` of the last ``train`` call (gensim's meaning)."""
        return float(self.running_training_loss)

    def _require_vocab(self):
        if self.vocab is None or self.input_vectors is None:
            raise Word2BertError("the model has no vocabulary yet: call build_vocab() first")

    def _bar(self, total, desc, unit):
        return progress_bar(total=total, desc=desc, unit=unit, disable=None if self.progress is None
                            else not self.progress)

    # -- training -----------------------------------------------------------------------
    def encode(self, sentences=None, corpus_file=None) -> EncodedCorpus:
        """Encode a corpus with this vocabulary (reusing ``cache_dir`` when it holds a matching cache, or
        the encoding made while :meth:`build_vocab` read the same file)."""
        self._require_vocab()
        if isinstance(sentences, EncodedCorpus):
            return sentences
        if self.cache_dir is not None and (Path(self.cache_dir) / "meta.json").exists():
            try:
                return EncodedCorpus.open(self.cache_dir, self.vocab)
            except Word2BertError:
                pass  # stale cache (other vocabulary): re-encode below
        source = file_source(sentences, corpus_file)
        if source is not None and self.cache_dir is None:
            path, lowercase, max_length = self._file_settings(source)
            key = file_key(path, lowercase, max_length)
            if self._scanned is not None and self._scanned[0] == key and self._scanned[1] is self.vocab:
                scanned = self._scanned[2]
            else:
                scanned = merge_duplicates(scan_file(path, lowercase, max_length))
            self._scanned = None  # (the ids are not kept beyond one training run)
            return encode_scan(scanned, self.vocab)
        bar = self._bar(None, "encode", "word")
        try:
            return EncodedCorpus.encode(self._sentences(sentences, corpus_file), self.vocab,
                                        cache_dir=self.cache_dir, progress=bar)
        finally:
            bar.close()

    def train(self, sentences=None, corpus_file=None, total_examples=None, total_words=None, epochs=None,
              start_alpha=None, end_alpha=None, compute_loss=None, callbacks=None, checkpoint=None,
              corpus_iterable=None, **gensim_options):
        """Train on a corpus (text, a file, or an EncodedCorpus) for ``epochs`` passes.

        Can be called again to continue training (the learning rate runs from ``start_alpha``
        to ``end_alpha`` again, defaulting to ``alpha`` and ``min_alpha``). Returns
        ``(effective_words, raw_words)`` trained, as gensim does. ``total_examples`` and
        ``total_words`` are accepted for gensim compatibility; the exact counts are known.
        Callbacks get gensim's ``on_epoch_begin(model)`` / ``on_epoch_end(model)``; ``timings`` then
        holds where the time went (``first_word``: seconds from the call to the first trained word).
        """
        check_gensim_options("train", gensim_options, ("queue_factor", "report_delay"))
        sentences = one_of(sentences, corpus_iterable)
        self._require_vocab()
        started = self._started if self._started is not None else time.perf_counter()
        self._started = None
        start = time.perf_counter()
        corpus = self.encode(sentences, corpus_file)
        self.timings["encode"] = time.perf_counter() - start
        if corpus.n_sentences == 0:
            raise Word2BertError("the corpus has no sentence with an in-vocabulary word")
        if compute_loss is not None:
            self.compute_loss = bool(compute_loss)
        callbacks = self.callbacks if callbacks is None else tuple(callbacks)
        resume = self._resume_state
        if resume is not None:
            epochs = resume["epochs"]
            start_alpha, end_alpha = resume["start_alpha"], resume["end_alpha"]
        epochs = self.epochs if epochs is None else _check_int("epochs", epochs, 1)
        start_alpha = self.alpha if start_alpha is None else _check_float("start_alpha", start_alpha, strict=True)
        end_alpha = self.min_alpha if end_alpha is None else _check_float("end_alpha", end_alpha)
        self.corpus_total_words = corpus.raw_word_count
        self.corpus_count = corpus.n_sentences
        offsets = np.ascontiguousarray(corpus.offsets, dtype=np.int64)
        tokens = np.asarray(corpus.tokens, dtype=np.int32).view()
        tokens.flags.writeable = False  # one kernel signature for in-memory and memory-mapped corpora
        # one RNG stream per job, seeded from (seed, training call)
        jobs = training.schedule(offsets, epochs, start_alpha, end_alpha, self.seed * 1_000_003 + self.train_count,
                                 target_tokens=JOB_WORDS)
        sizes = np.array([offsets[job.last] - offsets[job.first] for job in jobs], np.float64)
        raw_per_token = corpus.raw_word_count / max(len(tokens), 1)
        if resume is None:
            self.running_training_loss = 0.0
            self.epoch_losses = []
        else:
            resume = _resume_from_0_1(resume)
            self.running_training_loss = resume["loss"]
        tree = self._tree
        codes = tree.codes if tree is not None else np.zeros((1, MAX_CODE_LENGTH), np.uint8)
        points = tree.points if tree is not None else np.zeros((1, MAX_CODE_LENGTH), np.int32)
        lengths = tree.code_lengths if tree is not None else np.zeros(1, np.int32)
        dummy = np.zeros((1, self.vector_size), np.float32)
        out_ns = self.output_vectors_ns if self.output_vectors_ns is not None else dummy
        out_hs = self.output_vectors_hs if self.output_vectors_hs is not None else dummy
        inputs = self._input_lines()
        hot_rows = self._private_hot_rows()
        if hot_rows is not None:
            out_hs, out_ns = (hot_rows.matrix, out_ns) if self.hs else (out_hs, hot_rows.matrix)
        chunk = kernels.train_skipgram_chunk if self.sg else kernels.train_cbow_chunk
        bar = self._bar(int(corpus.raw_word_count * epochs), "word2vec", "word")

        def call(job):
            alpha = np.float32(max(end_alpha, job.alpha_start))
            args = (inputs, out_ns, out_hs, tokens, offsets, job.first, job.last, self._keep, self._table,
                    codes, points, lengths, self.window, self.negative, bool(self.hs), self.softmax)
            private_rows = hot_rows.rows() if hot_rows is not None else None
            if self.sg:
                loss, examples, effective, _ = chunk(*args, alpha, job.seed, self.compute_loss, self.vector_size,
                                                     private_rows=private_rows)
            else:
                loss, examples, effective, _ = chunk(*args, bool(self.cbow_mean), alpha, job.seed, self.compute_loss,
                                                     self.vector_size, private_rows=private_rows)
            raw = int(round(float(offsets[job.last] - offsets[job.first]) * raw_per_token))
            bar.set_postfix(lr=f"{float(alpha):.5f}", refresh=False)
            return loss, examples, raw, effective

        effective_total = [0]
        lock = threading.Lock()

        def counted(job):
            loss, examples, raw, effective = call(job)
            with lock:
                effective_total[0] += effective
            return loss, examples, raw

        def epoch_begin(epoch):
            for cb in callbacks:
                if hasattr(cb, "on_epoch_begin"):
                    cb.on_epoch_begin(self)

        def epoch_end(epoch, loss, examples, raw):
            self.running_training_loss += loss
            self.epoch_losses.append(loss / max(examples, 1))
            for cb in callbacks:
                if hasattr(cb, "on_epoch_end"):
                    cb.on_epoch_end(self)

        def save(path, state):
            self._resume_state = dict(state, epochs=epochs, start_alpha=start_alpha, end_alpha=end_alpha,
                                      loss=self.running_training_loss)
            self.save(path)

        self.timings["compile_wait"] = self._prepare_kernel().wait()
        self._kernels = None
        start_time = time.perf_counter()
        self.timings["first_word"] = start_time - started
        with bar:
            totals = training.run_jobs(counted, jobs, self.workers, progress=bar, sizes=sizes * raw_per_token,
                                       resume=resume, corpus_size=len(tokens), checkpoint=checkpoint, save=save,
                                       what="word2vec", on_epoch_begin=epoch_begin, on_epoch_end=epoch_end)
        self._resume_state = None
        self.train_count += 1
        self.timings["training"] = time.perf_counter() - start_time
        self.total_train_time += self.timings["training"]
        raw_total = sum(raw for _, _, raw in totals.epochs.values())
        return effective_total[0], raw_total

    # -- persistence ----------------------------------------------------------------------
    _PARAMS = ("vector_size", "window", "min_count", "max_vocab_size", "max_final_vocab", "sample", "seed", "workers",
               "alpha", "min_alpha", "sg", "hs", "negative", "ns_exponent", "cbow_mean", "epochs",
               "max_sentence_length", "softmax", "compute_loss", "lowercase")

    def save(self, path) -> None:
        """Save the full model (weights, vocabulary, parameters) to one file, atomically
        (:mod:`word2bert.static.storage`; training can continue from it).

        Arrays: ``input_vectors``, ``output_vectors_ns`` / ``output_vectors_hs`` (when used),
        ``counts``; the metadata holds the parameters, the word list and, for a checkpoint, the
        position to resume from.
        """
        self._require_vocab()
        arrays = {"input_vectors": self.input_vectors, "counts": self.vocab.counts}
        if self.output_vectors_ns is not None:
            arrays["output_vectors_ns"] = self.output_vectors_ns
        if self.output_vectors_hs is not None:
            arrays["output_vectors_hs"] = self.output_vectors_hs
        state = {"words": self.vocab.words, "corpus_total_words": self.corpus_total_words,
                 "corpus_count": self.corpus_count, "train_count": self.train_count,
                 "running_training_loss": self.running_training_loss, "epoch_losses": self.epoch_losses}
        storage.save(path, "Word2Vec", {name: getattr(self, name) for name in self._PARAMS}, state, arrays,
                     self._resume_state)

    @classmethod
    def load(cls, path) -> Word2Vec:
        """Load a model written by :meth:`save` (by this release or word2bert 0.1.0)."""
        stored = storage.load(path, "Word2Vec", ("input_vectors", "counts"))
        state, arrays = stored.state, stored.arrays
        model = cls(**stored.params)
        model.vocab = Vocabulary(state["words"], arrays["counts"])
        model._prepare_tables()
        model.input_vectors = np.ascontiguousarray(arrays["input_vectors"], dtype=np.float32)
        model.output_vectors_ns = arrays.get("output_vectors_ns")
        model.output_vectors_hs = arrays.get("output_vectors_hs")
        storage.check_shape(path, "input_vectors", model.input_vectors, (len(model.vocab), model.vector_size))
        model.corpus_total_words = state.get("corpus_total_words", 0)
        model.corpus_count = state.get("corpus_count", 0)
        model.train_count = state.get("train_count", 0)
        model.running_training_loss = state.get("running_training_loss", 0.0)
        model.epoch_losses = list(state.get("epoch_losses", []))
        model._resume_state = stored.resume
        return model

    def __repr__(self) -> str:
        size = len(self.vocab) if self.vocab is not None else 0
        mode = ("sg" if self.sg else "cbow") + ("+hs" if self.hs else "") + (
            f"+ns{self.negative}" if self.negative else "") + ("+softmax" if self.softmax else "")
        return f"Word2Vec(vocab={size}, vector_size={self.vector_size}, {mode}, window={self.window})"


def _resume_from_0_1(resume: dict) -> dict:
    """The resume state of a Word2Vec checkpoint in :func:`word2bert.static.jobs.resume_state`'s form;
    0.1.0 kept ``(epoch, job)`` and its per-epoch job count (jobs cut the same way)."""
    if "jobs_done" in resume:
        return resume
    per_epoch = int(resume["n_jobs"]) - 1
    return {"jobs_done": int(resume["epoch"]) * per_epoch + int(resume["job"]), "n_jobs": per_epoch * resume["epochs"],
            "corpus_size": int(resume["n_tokens"]), "epoch": int(resume["epoch"]), "loss": float(resume["loss"]),
            "examples": 0, "tokens": 0}


def one_of(sentences, corpus_iterable):
    """``sentences`` or gensim 4's ``corpus_iterable`` (the same thing under its newer name)."""
    if corpus_iterable is not None:
        if sentences is not None:
            raise Word2BertError("give sentences= or corpus_iterable= (gensim 4's name), not both")
        return corpus_iterable
    return sentences


def check_gensim_options(method: str, options: dict, accepted) -> None:
    """gensim options that change nothing here are accepted; any other keyword is an error."""
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise Word2BertError(f"{method}() got an unexpected keyword argument {unknown[0]!r}")
    if options.get("update"):
        raise Word2BertError("build_vocab(update=True) (growing a trained vocabulary) is not supported")
