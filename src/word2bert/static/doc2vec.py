"""Doc2Vec: paragraph vectors (Le & Mikolov 2014, "Distributed Representations of Sentences and Documents").

Every document has one or more tags, and every tag a vector ``d`` learned alongside the words:

* **PV-DM** (``dm=1``): predict each word from the mean of the document's tag vectors and the
  context word vectors, ``h = mean(d_tags..., x_{t-b}, ..., x_{t+b})`` (gensim's
  ``dm_mean=1``; ``dm_mean=0`` uses the sum), target ``w_t``.
* **PV-DBOW** (``dm=0``): predict each word of the document from a tag vector alone,
  ``h = d_tag``, for each of the document's tags in turn (as gensim); ``dbow_words=1``
  interleaves skip-gram training of word vectors.

Both are configurations of the engine (:mod:`word2bert.static.kernels`): one input
matrix holds the word rows then the tag rows, and the output rows and losses (NS/HS) are
word2vec's. ``infer_vector`` learns a new tag row for an unseen document with everything else
frozen. Names follow gensim (``TaggedDocument``, ``dm``, ``dbow_words``, ``dv``, ``wv``).
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from word2bert.corpus.reader import LineSentence, read_text
from word2bert.corpus.vocab import Vocabulary
from word2bert.errors import Word2BertError, check_positive
from word2bert.progress import progress_bar
from word2bert.static import jobs as training, kernels, storage
from word2bert.static.init import uniform_matrix
from word2bert.static.losses import LOSS_HS, LOSS_NS
from word2bert.static.native import prepare
from word2bert.static.word2vec import check_gensim_options, one_of
from word2bert.static.huffman import build_huffman_tree
from word2bert.static.sampling import keep_probabilities, negative_sampling_table
from word2bert.vectors import KeyedVectors


class TaggedDocument(NamedTuple):
    """A document: its ``words`` (a list of tokens) and ``tags`` (a list of str or int)."""

    words: list
    tags: list


class TaggedLineDocument:
    """Each line of a file is a document tagged with its line number (gensim's ``TaggedLineDocument``)."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise Word2BertError(f"file not found: {self.path}")

    def __iter__(self):
        with read_text(self.path) as handle:
            for number, line in enumerate(handle):
                yield TaggedDocument(line.split(), [number])


def _tags_of(document, number):
    tags = getattr(document, "tags", None)
    words = getattr(document, "words", None)
    if words is None or tags is None:
        raise Word2BertError(f"document {number} is not a TaggedDocument(words, tags)")
    if isinstance(words, str):
        raise Word2BertError(f"document {number}: words must be a list of tokens, not a string")
    if isinstance(tags, (str, int, np.integer)):
        tags = [tags]
    if len(tags) == 0:
        raise Word2BertError(f"document {number} has no tags")
    return words, list(tags)


class Doc2Vec:
    """Paragraph vectors with gensim's names and defaults (``epochs=10``, ``alpha=0.025``)."""

    def __init__(self, documents=None, corpus_file=None, vector_size=100, dm=1, dm_mean=1, dbow_words=0, window=5,
                 min_count=5, hs=0, negative=5, ns_exponent=0.75, sample=1e-3, alpha=0.025, min_alpha=0.0001,
                 epochs=10, workers=3, seed=1, max_vocab_size=None, dm_concat=0, progress=None, corpus_iterable=None):
        started = time.perf_counter()
        documents = one_of(documents, corpus_iterable)
        check_positive("vector_size", vector_size)
        check_positive("window", window)
        check_positive("min_count", min_count)
        check_positive("negative", negative, allow_zero=True)
        check_positive("sample", sample, allow_zero=True)
        check_positive("alpha", alpha)
        check_positive("min_alpha", min_alpha, allow_zero=True)
        check_positive("epochs", epochs)
        check_positive("workers", workers)
        if dm_concat:
            raise Word2BertError("dm_concat=1 is not supported (use dm_mean=1, the usual PV-DM)")
        if not hs and negative == 0:
            raise Word2BertError("give hs=1 or negative > 0")
        self.vector_size = int(vector_size)
        self.dm = int(bool(dm))
        self.dm_mean = int(bool(dm_mean))
        self.dbow_words = int(bool(dbow_words))
        self.window = int(window)
        self.min_count = int(min_count)
        self.hs = int(bool(hs))
        self.negative = 0 if self.hs else int(negative)
        self.ns_exponent = float(ns_exponent)
        self.sample = float(sample)
        self.alpha = float(alpha)
        self.min_alpha = float(min_alpha)
        self.epochs = int(epochs)
        self.workers = int(workers)
        self.seed = int(seed)
        self.max_vocab_size = max_vocab_size
        self.progress = progress
        self.vocab: Vocabulary | None = None
        self.tag_keys: list = []
        self.input_vectors = None
        self.output_vectors = None
        self._resume_state: dict | None = None  # where an interrupted train() stopped (saved by save())
        self._kernels = None  # the training kernel, compiled ahead (see word2bert.static.native.prepare)
        self._started = None
        self.timings: dict = {}
        if documents is not None or corpus_file is not None:
            self._started = started
            self.build_vocab(documents, corpus_file)
            self.train(documents, corpus_file)

    # -- corpus ------------------------------------------------------------------------
    @staticmethod
    def _documents(documents, corpus_file):
        if (documents is None) == (corpus_file is None):
            raise Word2BertError("give exactly one of documents= and corpus_file=")
        if corpus_file is not None:
            return TaggedLineDocument(corpus_file)
        if iter(documents) is documents:
            raise Word2BertError("documents is a one-shot iterator; give a list or a re-iterable corpus")
        return documents

    def build_vocab(self, documents=None, corpus_file=None, corpus_iterable=None, **gensim_options):
        """Count words (``min_count``), collect the tags and initialise the weights (``corpus_iterable`` is
        gensim 4's name for ``documents``); the training kernel compiles meanwhile on a first run.

        Integer tags ``t`` get row ``t`` (as gensim), string tags the rows after the largest integer.
        """
        check_gensim_options("build_vocab", gensim_options, ("progress_per", "keep_raw_vocab", "trim_rule", "update"))
        documents = one_of(documents, corpus_iterable)
        if self._kernels is None:
            self._kernels = self._prepare_kernel()
        documents = self._documents(documents, corpus_file)
        int_tags, str_tags = set(), {}
        words_iter = []
        for number, document in enumerate(documents):
            words, tags = _tags_of(document, number)
            words_iter.append(words)
            for tag in tags:
                if isinstance(tag, (int, np.integer)) and not isinstance(tag, bool):
                    if tag < 0:
                        raise Word2BertError(f"document {number}: integer tags must be >= 0, got {tag}")
                    int_tags.add(int(tag))
                else:
                    str_tags.setdefault(str(tag), None)
        if not words_iter:
            raise Word2BertError("the corpus has no documents")
        n_int = max(int_tags) + 1 if int_tags else 0
        self.tag_keys = list(range(n_int)) + list(str_tags)
        self.vocab = Vocabulary.build(words_iter, min_count=self.min_count, max_vocab_size=self.max_vocab_size)
        rows = len(self.vocab) + len(self.tag_keys)
        # gensim 4's initialisation: word and tag rows uniform in [-1, 1)/dim (inferred rows: [-0.5, 0.5)/dim)
        self.input_vectors = uniform_matrix(rows, self.vector_size, 1.0 / self.vector_size, self.seed)
        output_rows = max(len(self.vocab) - 1, 1) if self.hs else len(self.vocab)
        self.output_vectors = np.zeros((output_rows, self.vector_size), np.float32)
        self._tag_index = {key: i for i, key in enumerate(self.tag_keys)}
        return self

    def _encode_words(self, word_lists):
        """``(tokens int32, offsets int64)``: the in-vocabulary word ids of every document (empty kept)."""
        lookup = defaultdict(lambda: -1, self.vocab.index)
        lengths = np.fromiter(map(len, word_lists), np.int64, len(word_lists))
        flat = np.fromiter(map(lookup.__getitem__, itertools.chain.from_iterable(word_lists)), np.int64,
                           int(lengths.sum()))
        kept = flat >= 0
        document_of = np.repeat(np.arange(len(word_lists)), lengths)
        offsets = np.zeros(len(word_lists) + 1, np.int64)
        np.cumsum(np.bincount(document_of[kept], minlength=len(word_lists)), out=offsets[1:])
        return flat[kept].astype(np.int32), offsets

    def _prepare_kernel(self):
        """Start compiling the training kernel (a no-op when it is cached)."""
        return prepare([("word2bert.static.kernels", "warm_document",
                         dict(dim=self.vector_size, kind=LOSS_HS if self.hs else LOSS_NS, negative=self.negative))],
                       "doc2vec", f"vector size {self.vector_size}")

    def _output_tables(self):
        if self.hs:
            tree = build_huffman_tree(self.vocab.counts)
            codes, points, lengths = tree.codes, tree.points, tree.code_lengths
        else:
            codes, points, lengths = kernels.dummy_tree()
        table = negative_sampling_table(self.vocab.counts, self.ns_exponent) if not self.hs else \
            kernels.dummy_table()
        return table, codes, points, lengths

    def _run(self, input_vectors, tokens, offsets, tag_offsets, tag_rows, epochs, alpha, min_alpha, train_words,
             update_output, first_trainable_row, desc, seed, checkpoint=None):
        started = time.perf_counter()
        keep = keep_probabilities(self.vocab.counts, self.sample)
        table, codes, points, lengths = self._output_tables()
        kind = LOSS_HS if self.hs else LOSS_NS
        jobs = training.schedule(offsets, epochs, alpha, min_alpha, seed, target_tokens=20_000)

        def call(job):
            return kernels.document_chunk(
                input_vectors, self.output_vectors, tokens, offsets, job.first, job.last, tag_offsets, tag_rows, keep,
                self.window, bool(self.dm), bool(self.dm_mean), train_words, kind, self.negative, table, codes,
                points, lengths, job.alpha_start, job.alpha_end, job.seed, update_output, first_trainable_row)

        bar = progress_bar(total=int(offsets[-1]) * epochs, desc=desc, unit="word",
                           disable=self.progress is False or None)

        def save(path, state):
            self._resume_state = dict(state, epochs=epochs)
            self.save(path)

        resume = self._resume_state if update_output else None  # inference never resumes
        sizes = [offsets[job.last] - offsets[job.first] for job in jobs]
        self.timings["compile_wait"] = (self._kernels or self._prepare_kernel()).wait()
        self._kernels = None
        if update_output:
            self.timings["first_word"] = time.perf_counter() - (self._started or started)
            self._started = None
        with bar:
            return training.run_jobs(call, jobs, self.workers, progress=bar, sizes=sizes, resume=resume,
                                     corpus_size=int(offsets[-1]), checkpoint=checkpoint, save=save, what=desc)

    def train(self, documents=None, corpus_file=None, epochs=None, checkpoint=None, corpus_iterable=None,
              total_examples=None, total_words=None, **gensim_options):
        """Train ``epochs`` passes; ``alpha`` decays linearly to ``min_alpha``. Returns ``(loss, examples)``.

        On Ctrl-C with a ``checkpoint`` path the model is saved there with the position it stopped
        at; ``Doc2Vec.load(path).train(same documents)`` continues the run.
        """
        check_gensim_options("train", gensim_options, ("start_alpha", "end_alpha", "queue_factor", "report_delay",
                                                        "compute_loss", "callbacks"))
        documents = one_of(documents, corpus_iterable)
        if self.vocab is None:
            raise Word2BertError("call build_vocab before train (or pass the documents to Doc2Vec(...))")
        if self._resume_state is not None:
            epochs = self._resume_state["epochs"]
        documents = self._documents(documents, corpus_file)
        word_lists, tag_lists = [], []
        for number, document in enumerate(documents):
            words, tags = _tags_of(document, number)
            word_lists.append(words)
            try:
                tag_lists.append([self._tag_index[t if not isinstance(t, np.integer) else int(t)] for t in tags])
            except KeyError as exc:
                raise Word2BertError(f"document {number}: tag {exc.args[0]!r} was not seen by build_vocab") from None
        tokens, offsets = self._encode_words(word_lists)
        if offsets[-1] == 0:
            raise Word2BertError("no word of any document is in the vocabulary")
        tag_offsets = np.zeros(len(tag_lists) + 1, np.int64)
        np.cumsum([len(t) for t in tag_lists], out=tag_offsets[1:])
        tag_rows = (np.array([r for rows in tag_lists for r in rows], np.int64) + len(self.vocab)).astype(np.int32)
        train_words = bool(self.dbow_words) and not self.dm
        loss, examples, _, _ = self._run(self.input_vectors, tokens, offsets, tag_offsets, tag_rows,
                                      int(epochs or self.epochs), self.alpha, self.min_alpha, train_words, True, 0,
                                      "doc2vec", self.seed, checkpoint)
        self._resume_state = None
        self.training_loss = loss / max(examples, 1)
        return loss, examples

    # -- vectors -----------------------------------------------------------------------
    @property
    def wv(self) -> KeyedVectors:
        """Word vectors (trained by PV-DM, or by PV-DBOW with ``dbow_words=1``); a view, not a copy."""
        self._check()
        return KeyedVectors(self.input_vectors[: len(self.vocab)], self.vocab.words, self.vocab.counts)

    @property
    def dv(self) -> KeyedVectors:
        """Document (tag) vectors, keyed by tag; ``dv.most_similar(tag)`` finds similar documents."""
        self._check()
        return KeyedVectors(self.input_vectors[len(self.vocab):], self.tag_keys)

    def _check(self):
        if self.vocab is None:
            raise Word2BertError("the model is not trained (call build_vocab and train)")

    def infer_vectors(self, documents, alpha=None, min_alpha=None, epochs=None, seed=None) -> np.ndarray:
        """Vectors for unseen documents (lists of tokens), one row each.

        Each gets a new tag row (uniform in ``[-0.5/dim, 0.5/dim]``) trained for ``epochs``
        passes with ``alpha -> min_alpha`` while word and output rows stay frozen (gensim's
        ``infer_vector``); documents are independent, so they are inferred in parallel.
        """
        self._check()
        documents = list(documents)
        for number, document in enumerate(documents):
            if isinstance(document, str):
                raise Word2BertError(f"document {number} is a string; give a list of tokens (text.split())")
        word_lists = [list(d.words) if hasattr(d, "words") else list(d) for d in documents]
        n = len(word_lists)
        if n == 0:
            return np.zeros((0, self.vector_size), np.float32)
        tokens, offsets = self._encode_words(word_lists)
        unknown = np.flatnonzero(np.diff(offsets) == 0)
        if len(unknown):
            warnings.warn(f"{len(unknown)} of {n} documents have no word in the vocabulary (the first: document "
                          f"{unknown[0]}, {word_lists[unknown[0]][:5]!r}): their vectors are the random initial "
                          "ones, as in gensim", UserWarning, stacklevel=2)
        nwords = len(self.vocab)
        seed = self.seed if seed is None else int(seed)
        fresh = uniform_matrix(n, self.vector_size, 0.5 / self.vector_size, seed + 7919)
        if self.dm:
            base = nwords
            input_vectors = np.concatenate([self.input_vectors[:nwords], fresh])
        else:
            base = 0  # PV-DBOW reads no word rows: the bag is the new tag row alone
            input_vectors = fresh
        tag_offsets = np.arange(n + 1, dtype=np.int64)
        tag_rows = (np.arange(n) + base).astype(np.int32)
        self._run(input_vectors, tokens, offsets, tag_offsets, tag_rows, int(epochs or self.epochs),
                  float(alpha if alpha is not None else self.alpha),
                  float(min_alpha if min_alpha is not None else self.min_alpha), False, False, base, "infer", seed)
        return np.ascontiguousarray(input_vectors[base:base + n])

    def infer_vector(self, doc_words, alpha=None, min_alpha=None, epochs=None) -> np.ndarray:
        """The vector of one unseen document (a list of tokens); see :meth:`infer_vectors`."""
        if isinstance(doc_words, str):
            raise Word2BertError("infer_vector needs a list of tokens, not a string (use text.split())")
        if len(doc_words) == 0:
            raise Word2BertError("cannot infer a vector for an empty document")
        return self.infer_vectors([list(doc_words)], alpha, min_alpha, epochs)[0]

    # -- files -------------------------------------------------------------------------
    _PARAMS = ("vector_size", "dm", "dm_mean", "dbow_words", "window", "min_count", "hs", "negative", "ns_exponent",
               "sample", "alpha", "min_alpha", "epochs", "workers", "seed")

    def save(self, path) -> None:
        """Write the whole model (parameters, vocabulary, tags, both matrices and, for a checkpoint, where
        an interrupted ``train`` stopped) in word2bert's format (:mod:`word2bert.static.storage`), atomically."""
        self._check()
        params = {name: getattr(self, name) for name in self._PARAMS}
        tags = [[isinstance(t, int), str(t)] for t in self.tag_keys]
        storage.save(path, "Doc2Vec", params, {"words": self.vocab.words, "tags": tags},
                     {"counts": self.vocab.counts, "input_vectors": self.input_vectors,
                      "output_vectors": self.output_vectors}, self._resume_state)

    @classmethod
    def load(cls, path) -> "Doc2Vec":
        """Read a model written by :meth:`save` (by this release or word2bert 0.1.0)."""
        stored = storage.load(path, "Doc2Vec", ("counts", "input_vectors", "output_vectors"))
        words, tags = stored.state["words"], stored.state["tags"]
        model = cls(**stored.params)
        model.vocab = Vocabulary(words, stored.arrays["counts"])
        model.tag_keys = [int(v) if is_int else v for is_int, v in tags]
        model._tag_index = {key: i for i, key in enumerate(model.tag_keys)}
        model.input_vectors = np.ascontiguousarray(stored.arrays["input_vectors"], np.float32)
        model.output_vectors = np.ascontiguousarray(stored.arrays["output_vectors"], np.float32)
        if model.input_vectors.shape[0] != len(words) + len(model.tag_keys):
            raise Word2BertError(f"{path}: corrupt Doc2Vec model (matrix rows do not match words + tags)")
        model._resume_state = stored.resume
        return model


__all__ = ["Doc2Vec", "TaggedDocument", "TaggedLineDocument", "LineSentence"]
