"""fastText word vectors: skip-gram and CBOW whose input rows are a word plus its character n-grams.

Bojanowski, Grave, Joulin & Mikolov (2017), "Enriching Word Vectors with Subword Information".
A word ``w`` is represented by its own input row and the rows of its character n-grams
``G_w`` (``min_n``..``max_n`` characters of ``<w>``, hashed into ``bucket`` rows with
fastText's hash, see :mod:`word2bert.static.subwords`):

    u_w = (1 / (1 + |G_w|)) * (x_w + sum_{g in G_w} z_g)

and ``u_w`` replaces the plain input vector of word2vec. Skip-gram predicts each context
word from ``u_centre``; CBOW predicts the centre word from the mean of the context words'
rows. A word never seen in training still gets ``u_w`` from its n-grams.

This is a configuration of the engine (:mod:`word2bert.static.kernels`: bag = subword rows). Defaults follow fastText where they matter for its quality: learning rate
0.05 (gensim uses 0.025), negative-sampling table over ``count^0.5`` (``ns_exponent``,
fastText's choice; word2vec uses 0.75), window radius uniform in ``1..window``, subsampling
with fastText's word frequency (count over every token read, not only the vocabulary's);
``sample`` keeps gensim's 1e-3 (fastText's ``-t`` is 1e-4; the benchmark sets it for both).

Save/load use Facebook's ``.bin`` format, so a model trained here opens in the ``fasttext``
package and a Facebook model (e.g. ``cc.en.300.bin``) opens here, OOV vectors included.
"""

from __future__ import annotations

import time

import numpy as np

from word2bert.corpus.encoded import EncodedCorpus
from word2bert.corpus.reader import MAX_SENTENCE_LENGTH, as_sentences
from word2bert.corpus.scan import encode_scan, file_key, file_source, merge_duplicates, scan_file, vocabulary_of
from word2bert.corpus.vocab import Vocabulary
from word2bert.errors import UnknownWordError, Word2BertError, check_positive
from word2bert.progress import progress_bar
from word2bert.static import jobs as training, kernels, storage
from word2bert.static.huffman import build_huffman_tree
from word2bert.static.native import GatheredInputMatrix, line_aligned_zeros, on_whole_lines, prepare
from word2bert.static.sampling import keep_probabilities, negative_sampling_table
from word2bert.static.subwords import subword_rows, word_ngrams
from word2bert.static.word2vec import check_gensim_options, one_of
from word2bert.vectors import KeyedVectors


class FastTextKeyedVectors(KeyedVectors):
    """Word vectors that also answer for out-of-vocabulary words, from their n-grams.

    ``vectors`` holds ``u_w`` of the vocabulary words (the mean of each word's own row and
    its n-gram rows); ``input_vectors`` is the full input matrix (``nwords + bucket`` rows)
    from which a vector for any string is computed (``get_vector``). ``word in kv`` is true for
    vocabulary words and for any word with at least one n-gram (gensim's convention);
    ``has_index_for`` tells vocabulary membership. ``model``: instead of ``input_vectors``, the
    :class:`FastText` whose rows these are (its full matrix is built only when asked for).
    """

    def __init__(self, vectors, index_to_key, counts=None, input_vectors=None, min_n=3, max_n=6, bucket=2_000_000,
                 model=None):
        super().__init__(vectors, index_to_key, counts)
        self.input_vectors = input_vectors
        self._model = model
        self.min_n = int(min_n)
        self.max_n = int(max_n)
        self.bucket = int(bucket)

    @property
    def input_vectors(self) -> np.ndarray | None:
        if self._input_vectors is None and self._model is not None:
            self._input_vectors = self._model.input_vectors
        return self._input_vectors

    @input_vectors.setter
    def input_vectors(self, matrix) -> None:
        self._input_vectors, self._model = matrix, None

    def _input_rows(self, rows) -> np.ndarray:
        return self._model.input_rows(rows) if self._input_vectors is None else self._input_vectors[rows]

    def __repr__(self) -> str:
        return (f"FastTextKeyedVectors({len(self)} words, dimension {self.vector_size}, "
                f"n-grams {self.min_n}..{self.max_n} in {self.bucket} buckets)")

    def ngram_rows(self, word: str) -> np.ndarray:
        """Input rows of the n-grams of ``word`` (``nwords + hash % bucket``, fastText's ids)."""
        if (self._input_vectors is None and self._model is None) or self.max_n <= 0 or self.bucket <= 0:
            return np.zeros(0, np.int32)
        _, rows = subword_rows([word], self.min_n, self.max_n, self.bucket, nwords=len(self), include_self=False)
        return rows

    def __contains__(self, key) -> bool:
        return key in self.key_to_index or (isinstance(key, str) and len(self.ngram_rows(key)) > 0)

    def get_vector(self, key, norm: bool = False) -> np.ndarray:
        """``u_w`` for a vocabulary word; for another word the mean of its n-gram rows (fastText's
        ``getWordVector``); a word without any n-gram has no vector (Word2BertError)."""
        if not isinstance(key, str) or key in self.key_to_index:
            return super().get_vector(key, norm=norm)
        rows = self.ngram_rows(key)
        if len(rows) == 0:
            raise UnknownWordError(key, f"word {key!r} is not in the vocabulary and has no character n-grams")
        vector = self._input_rows(rows).mean(axis=0, dtype=np.float64).astype(np.float32)
        if norm:
            length = np.linalg.norm(vector)
            return vector / length if length > 0 else vector
        return vector

    def word_vector(self, word: str) -> np.ndarray:
        """Like fastText's ``get_word_vector``: zeros (not an error) for a word without n-grams."""
        try:
            return self.get_vector(word)
        except Word2BertError:
            return np.zeros(self.vector_size, np.float32)

    def _resolve(self, items):
        if items is None:
            return None
        if isinstance(items, (str, np.ndarray)) or not hasattr(items, "__iter__"):
            items = [items]
        return [self.get_vector(i) if isinstance(i, str) and i not in self.key_to_index else i for i in items]

    def most_similar(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """As :meth:`KeyedVectors.most_similar`; out-of-vocabulary words are used by their n-gram vector."""
        return super().most_similar(self._resolve(positive), self._resolve(negative), topn, restrict_vocab)

    def similarity(self, key1, key2) -> float:
        a = self.get_vector(key1, norm=True)
        b = self.get_vector(key2, norm=True)
        return float(np.dot(a, b))


class FastText(GatheredInputMatrix):
    """fastText unsupervised (``sg=1`` skip-gram, ``sg=0`` CBOW) with gensim's parameter names.

    ``FastText(corpus_file="text.txt", sg=1)`` trains at once; ``build_vocab`` then ``train``
    splits the steps. ``hs=1`` uses hierarchical softmax, else ``negative > 0`` negative
    sampling, else a full softmax. ``model.wv`` are the vectors (OOV-capable),
    ``model.save("m.bin")`` writes a Facebook ``.bin``.
    """

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, window=5, min_count=5, sg=0, hs=0,
                 negative=5, sample=1e-3, min_n=3, max_n=6, bucket=2_000_000, alpha=0.05, min_alpha=0.0,
                 epochs=5, workers=3, seed=1, ns_exponent=0.5, max_vocab_size=None, lowercase=False,
                 cache_dir=None, progress=None, corpus_iterable=None):
        started = time.perf_counter()
        sentences = one_of(sentences, corpus_iterable)
        check_positive("vector_size", vector_size)
        check_positive("window", window)
        check_positive("min_count", min_count)
        check_positive("negative", negative, allow_zero=True)
        check_positive("sample", sample, allow_zero=True)
        check_positive("bucket", bucket, allow_zero=True)
        check_positive("alpha", alpha)
        check_positive("min_alpha", min_alpha, allow_zero=True)
        check_positive("epochs", epochs)
        check_positive("workers", workers)
        check_positive("min_n", min_n, allow_zero=True)
        check_positive("max_n", max_n, allow_zero=True)
        if max_n > 0 and min_n > max_n:
            raise Word2BertError(f"parameters min_n={min_n} and max_n={max_n}: min_n must be <= max_n")
        if max_n > 0 and min_n < 1:
            raise Word2BertError(f"parameter min_n={min_n} must be >= 1 when max_n > 0")
        self.vector_size = int(vector_size)
        self.window = int(window)
        self.min_count = int(min_count)
        self.sg = int(bool(sg))
        self.hs = int(bool(hs))
        self.negative = int(negative)
        self.sample = float(sample)
        self.min_n = int(min_n)
        self.max_n = int(max_n)
        self.bucket = int(bucket)
        self.alpha = float(alpha)
        self.min_alpha = float(min_alpha)
        self.epochs = int(epochs)
        self.workers = int(workers)
        self.seed = int(seed)
        self.ns_exponent = float(ns_exponent)
        self.max_vocab_size = max_vocab_size
        self.lowercase = lowercase
        self.cache_dir = cache_dir
        self.progress = progress
        self.vocab: Vocabulary | None = None
        self.input_vectors = None  # (GatheredInputMatrix: built from the trained rows when asked for)
        self.output_vectors: np.ndarray | None = None
        self.ntokens = 0
        self.training_loss = 0.0
        self._wv: FastTextKeyedVectors | None = None
        self._resume_state: dict | None = None  # where an interrupted train() stopped (see save_checkpoint)
        self._scanned = None  # (file key, vocabulary, scan) of the file build_vocab read, for train
        self._kernels = None  # the training kernel, compiled ahead (see word2bert.static.native.prepare)
        self._started = None
        self.timings: dict = {}
        if sentences is not None or corpus_file is not None:
            self._started = started
            self.build_vocab(sentences, corpus_file)
            self.train(sentences, corpus_file)

    # -- the loss ----------------------------------------------------------------------
    @property
    def loss(self) -> str:
        """"hs", "ns" or "softmax" (fastText's ``-loss``)."""
        if self.hs:
            return "hs"
        return "ns" if self.negative > 0 else "softmax"

    # -- vocabulary and weights --------------------------------------------------------
    @property
    def ngram_buckets(self) -> int:
        """The input rows of hashed character n-grams after the word rows: ``bucket``, or 0 without
        n-grams (``max_n == 0``), as fastText."""
        return self.bucket if self.max_n > 0 else 0

    def build_vocab(self, sentences=None, corpus_file=None, corpus_iterable=None, **gensim_options):
        """Count words (``min_count``, ``max_vocab_size``), build n-gram tables and initialise weights.

        A text file (``corpus_file``, or a :class:`LineSentence`) is read once by a compiled scanner
        that also encodes it for :meth:`train`, while the training kernel compiles in a helper process
        on a first run. Input rows are uniform in ``[-1/dim, 1/dim]`` (fastText), output rows zero;
        n-gram buckets that no vocabulary word uses stay zero (they can never be trained): the rows that
        are used are drawn straight onto whole lines (:meth:`GatheredRows.drawn`), the full input matrix
        is built from them only when asked for (``input_vectors``).
        """
        check_gensim_options("build_vocab", gensim_options, ("progress_per", "keep_raw_vocab", "trim_rule", "update"))
        sentences = one_of(sentences, corpus_iterable)
        if self._started is None:
            self._started = time.perf_counter()
        source = file_source(sentences, corpus_file)
        self._prepare_kernel()
        self._scanned = None
        start = time.perf_counter()
        progress = progress_bar(desc="vocabulary", unit="word", disable=self.progress is False or None)
        with progress:
            if source is not None and self.max_vocab_size is None and self.cache_dir is None:
                key, path, lowercase, max_length = self._file_settings(source)
                scanned = merge_duplicates(scan_file(path, lowercase, max_length, progress=progress))
                vocab = vocabulary_of(scanned, self.min_count)
                self._scanned = (key, vocab, scanned)
            else:
                corpus = as_sentences(sentences, corpus_file, lowercase=self.lowercase)
                vocab = Vocabulary.build(corpus, min_count=self.min_count, max_vocab_size=self.max_vocab_size,
                                         progress=progress)
        self.timings["vocabulary"] = time.perf_counter() - start
        self._set_vocabulary(vocab)
        self._draw_input_rows(self.subword_rows, self.seed, self.workers)
        self.output_vectors = line_aligned_zeros(len(vocab), self.vector_size)[:, :self.vector_size]
        self._wv = None
        return self

    def _file_settings(self, source):
        path, lowercase, max_length = source
        lowercase = self.lowercase if lowercase is None else lowercase
        max_length = MAX_SENTENCE_LENGTH if max_length is None else max_length
        return file_key(path, lowercase, max_length), path, lowercase, max_length

    def _prepare_kernel(self):
        """Start compiling the training kernel (a no-op when it is cached or already prepared)."""
        if self._kernels is None:
            self._kernels = prepare([("word2bert.static.kernels", "warm_subword",
                                      dict(dim=self.vector_size, kind=kernels.LOSS_NAMES[self.loss],
                                           negative=self.negative))],
                                    "fasttext", f"vector size {self.vector_size}")
        return self._kernels

    def _encode(self, sentences, corpus_file) -> EncodedCorpus:
        source = file_source(sentences, corpus_file)
        if source is not None and self.cache_dir is None:
            key, path, lowercase, max_length = self._file_settings(source)
            if self._scanned is not None and self._scanned[0] == key and self._scanned[1] is self.vocab:
                scanned = self._scanned[2]
            else:
                scanned = merge_duplicates(scan_file(path, lowercase, max_length))
            self._scanned = None
            return encode_scan(scanned, self.vocab)
        corpus = as_sentences(sentences, corpus_file, lowercase=self.lowercase)
        return EncodedCorpus.encode(corpus, self.vocab, cache_dir=self.cache_dir)

    def _set_vocabulary(self, vocab: Vocabulary):
        self.vocab = vocab
        self.subword_offsets, self.subword_rows = subword_rows(vocab.words, self.min_n, self.max_n,
                                                               self.ngram_buckets)

    def _output_tables(self):
        counts = self.vocab.counts
        if self.hs:
            tree = build_huffman_tree(counts)
            codes, points, lengths = tree.codes, tree.points, tree.code_lengths
        else:
            codes, points, lengths = kernels.dummy_tree()
        table = negative_sampling_table(counts, self.ns_exponent) if self.loss == "ns" else kernels.dummy_table()
        return table, codes, points, lengths

    # -- training ----------------------------------------------------------------------
    def train(self, sentences=None, corpus_file=None, epochs=None, encoded: EncodedCorpus | None = None,
              checkpoint=None, corpus_iterable=None, total_examples=None, total_words=None, **gensim_options):
        """Train on the corpus (encoded once to int32 ids; every epoch reads the ids).

        ``encoded`` is a corpus already encoded with this model's vocabulary (then the text is not read).

        The learning rate decays linearly from ``alpha`` to ``min_alpha`` over all epochs.
        Returns ``(total loss, examples)``; ``training_loss`` keeps the mean loss per target.
        On Ctrl-C with a ``checkpoint`` path the model is saved there (:meth:`save_checkpoint`);
        ``FastText.load_checkpoint(path).train(same corpus)`` continues where it stopped.
        ``corpus_iterable``, ``total_examples`` and ``total_words`` are gensim 4's names (the counts
        are known exactly here); ``timings`` then holds where the time went.
        """
        check_gensim_options("train", gensim_options, ("start_alpha", "end_alpha", "queue_factor", "report_delay",
                                                        "compute_loss", "callbacks"))
        sentences = one_of(sentences, corpus_iterable)
        if self.vocab is None:
            raise Word2BertError("call build_vocab before train (or pass the corpus to FastText(...))")
        started = self._started if self._started is not None else time.perf_counter()
        self._started = None
        if self._resume_state is not None:
            epochs = self._resume_state["epochs"]
        epochs = int(epochs or self.epochs)
        if encoded is None:
            start = time.perf_counter()
            encoded = self._encode(sentences, corpus_file)
            self.timings["encode"] = time.perf_counter() - start
        self.ntokens = encoded.raw_word_count
        # fastText's word frequency f = count / ntokens counts every token read (out-of-vocabulary ones
        # and one "</s>" per line too), not only the vocabulary's: the same keep-probability formula
        # with the threshold sample * ntokens
        ntokens = encoded.raw_word_count + encoded.n_sentences
        keep = keep_probabilities(self.vocab.counts, self.sample * ntokens / max(int(self.vocab.counts.sum()), 1))
        table, codes, points, lengths = self._output_tables()
        kind = kernels.LOSS_NAMES[self.loss]
        tokens, offsets = encoded.tokens, encoded.offsets
        jobs = training.schedule(offsets, epochs, self.alpha, self.min_alpha, self.seed)

        # the rows training touches, together on whole lines (GatheredRows); input_vectors is built from
        # them when asked for
        gathered = self._rows_to_train(self.subword_rows)
        self._trained_rows = gathered
        self.output_vectors = on_whole_lines(self.output_vectors)  # loaded or set by the user: onto lines once

        def call(job):
            return kernels.subword_chunk(
                gathered.lines, self.output_vectors, tokens, offsets, job.first, job.last, self.subword_offsets,
                gathered.rows, keep, self.window, bool(self.sg), kind, self.negative, table, codes, points,
                lengths, job.alpha_start, job.alpha_end, job.seed)

        bar = progress_bar(total=int(offsets[-1]) * epochs, desc="fasttext", unit="word",
                           disable=self.progress is False or None)

        def save(path, state):
            self._trained_rows = gathered  # (the checkpoint writes them into input_vectors)
            self._resume_state = dict(state, epochs=epochs)
            self.save_checkpoint(path)

        self._wv = None
        self.timings["compile_wait"] = self._prepare_kernel().wait()
        self._kernels = None
        start = time.perf_counter()
        self.timings["first_word"] = start - started
        try:
            with bar:
                loss, examples, _, _ = training.run_jobs(
                    call, jobs, self.workers, progress=bar, sizes=_job_sizes(jobs, offsets),
                    resume=self._resume_state, corpus_size=int(offsets[-1]), checkpoint=checkpoint, save=save,
                    what="fasttext")
        finally:
            self._trained_rows = gathered
        self.timings["training"] = time.perf_counter() - start
        self._resume_state = None
        self.training_loss = loss / max(examples, 1)
        return loss, examples

    # -- vectors -----------------------------------------------------------------------
    @property
    def wv(self) -> FastTextKeyedVectors:
        """The word vectors ``u_w`` (mean of own and n-gram rows) with OOV support."""
        if self.vocab is None:
            raise Word2BertError("the model has no vocabulary yet (call build_vocab/train)")
        if self._wv is None:
            matrix, rows = self._rows_source(self.subword_rows)  # (without building the full matrix)
            vectors = kernels.bag_means(matrix, self.subword_offsets, rows)
            self._wv = FastTextKeyedVectors(vectors, self.vocab.words, self.vocab.counts, None, self.min_n, self.max_n,
                                            self.ngram_buckets, model=self)
        return self._wv

    def get_subwords(self, word: str):
        """(n-gram strings, input rows) of ``word``, as fastText's ``get_subwords`` (word first if known)."""
        bucket = self.ngram_buckets
        _, rows = subword_rows([word], self.min_n, self.max_n, bucket, nwords=len(self.vocab), include_self=False)
        grams = word_ngrams(word, self.min_n, self.max_n) if bucket else []
        if word in self.vocab:
            return [word] + grams, np.concatenate([[self.vocab.index[word]], rows]).astype(np.int32)
        return grams, rows

    def _input_shape(self) -> tuple:
        return (len(self.vocab) + self.ngram_buckets, self.vector_size)

    # -- files -------------------------------------------------------------------------
    def to_fasttext_file(self):
        from word2bert.interop.fasttext_format import LOSS_CODES, MODEL_CODES, FastTextFile

        args = dict(dim=self.vector_size, ws=self.window, epoch=self.epochs, minCount=self.min_count,
                    neg=self.negative, wordNgrams=1, loss=LOSS_CODES[self.loss],
                    model=MODEL_CODES["sg" if self.sg else "cbow"], bucket=self.ngram_buckets,
                    minn=self.min_n if self.max_n > 0 else 0, maxn=self.max_n, lrUpdateRate=100, t=self.sample)
        return FastTextFile(args, self.vocab.words, self.vocab.counts, [], np.zeros(0, np.int64),
                            self.ntokens or int(self.vocab.counts.sum()), self.input_vectors, self.output_vectors)

    @classmethod
    def from_fasttext_file(cls, data):
        args = data.args
        loss = data.loss
        if data.model == "sup":
            raise Word2BertError("this .bin is a supervised classifier; use FastTextClassifier.load")
        if data.quantized or data.pruneidx is not None:
            raise Word2BertError("a quantized or pruned word-vector model cannot be read (fastText quantizes "
                                 "only classifiers)")
        model = cls(vector_size=args["dim"], window=max(args["ws"], 1), min_count=max(args["minCount"], 1),
                    sg=int(data.model == "sg"), hs=int(loss == "hs"), negative=args["neg"] if loss == "ns" else 0,
                    sample=args["t"], min_n=args["minn"], max_n=args["maxn"], bucket=args["bucket"],
                    epochs=max(args["epoch"], 1))
        if loss not in ("ns", "hs", "softmax"):
            raise Word2BertError(f"unsupported loss {loss!r} for a word-vector model")
        model._set_vocabulary(Vocabulary(data.words, data.counts))
        model.input_vectors = np.ascontiguousarray(data.input_matrix, np.float32)
        model.output_vectors = np.ascontiguousarray(data.output_matrix, np.float32)
        model.ntokens = data.ntokens
        return model

    def save(self, path) -> None:
        """Write Facebook's ``.bin`` (loadable by ``fasttext.load_model``), atomically."""
        from word2bert.interop.fasttext_format import write_fasttext_bin

        if self.vocab is None:
            raise Word2BertError("nothing to save: the model has no vocabulary yet")
        write_fasttext_bin(path, self.to_fasttext_file())

    @classmethod
    def load(cls, path) -> "FastText":
        """Read a ``.bin`` written by :meth:`save` or by Facebook's fastText (not quantized ``.ftz``)."""
        from word2bert.interop.fasttext_format import read_fasttext_bin

        return cls.from_fasttext_file(read_fasttext_bin(path))

    _PARAMS = ("vector_size", "window", "min_count", "sg", "hs", "negative", "sample", "min_n", "max_n", "bucket",
               "alpha", "min_alpha", "epochs", "workers", "seed", "ns_exponent", "max_vocab_size", "lowercase")

    def save_checkpoint(self, path) -> None:
        """Write everything :meth:`train` needs to continue (parameters, vocabulary, both matrices and
        where an interrupted run stopped) in word2bert's format (:mod:`word2bert.static.storage`)."""
        params = {name: getattr(self, name) for name in self._PARAMS}
        storage.save(path, "FastText", params, {"words": self.vocab.words, "ntokens": self.ntokens},
                     {"counts": self.vocab.counts, "input_vectors": self.input_vectors,
                      "output_vectors": self.output_vectors}, self._resume_state)

    @classmethod
    def load_checkpoint(cls, path) -> "FastText":
        """Read a :meth:`save_checkpoint` file; ``train`` on the same corpus then continues the run."""
        stored = storage.load(path, "FastText", ("counts", "input_vectors", "output_vectors"))
        model = cls(**stored.params)
        model._set_vocabulary(Vocabulary(stored.state["words"], stored.arrays["counts"]))
        model.ntokens = stored.state["ntokens"]
        model.input_vectors = stored.arrays["input_vectors"]
        model.output_vectors = stored.arrays["output_vectors"]
        rows = len(model.vocab) + model.ngram_buckets
        storage.check_shape(path, "input_vectors", model.input_vectors, (rows, model.vector_size))
        storage.check_shape(path, "output_vectors", model.output_vectors, (len(model.vocab), model.vector_size))
        model._resume_state = stored.resume
        return model


def _job_sizes(jobs, offsets) -> np.ndarray:
    """The tokens of every job (to move a resumed run's progress bar past the jobs done)."""
    return np.array([offsets[job.last] - offsets[job.first] for job in jobs], np.int64)


def load_facebook_model(path):
    """Load a fastText ``.bin``/``.ftz`` (Facebook's or ours): a :class:`FastText` (cbow/sg) or a
    :class:`~word2bert.static.classifier.FastTextClassifier` (supervised); gensim's name."""
    from word2bert.interop.fasttext_format import read_fasttext_bin

    data = read_fasttext_bin(path)
    if data.model == "sup":
        from word2bert.static.classifier import FastTextClassifier

        return FastTextClassifier.from_fasttext_file(data)
    return FastText.from_fasttext_file(data)


def load_facebook_vectors(path) -> FastTextKeyedVectors:
    """The :class:`FastTextKeyedVectors` of a fastText ``.bin`` (in-vocabulary and OOV vectors); gensim's name."""
    from word2bert.interop.fasttext_format import read_fasttext_bin

    data = read_fasttext_bin(path)
    if data.model == "sup":
        raise Word2BertError(f"{path} is a supervised (classifier) model; load it with load_facebook_model")
    return FastText.from_fasttext_file(data).wv


def save_facebook_model(model, path) -> None:
    """Write a :class:`FastText` or a classifier as a Facebook ``.bin``; gensim's name."""
    model.save(path)
