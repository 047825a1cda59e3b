"""Word2Vec (Mikolov et al. 2013): skip-gram and CBOW with negative sampling, hierarchical
softmax or a full softmax, in gensim's shape (``Word2Vec(sentences, vector_size=..., ...)``,
``build_vocab`` / ``train``, ``model.wv``).

The corpus is encoded once (:class:`~word2bert.corpus.EncodedCorpus`, optionally a
memory-mapped cache) and every epoch reads the int32 ids. Each epoch is cut into jobs of
about ``JOB_WORDS`` words (whole sentences); ``workers`` Python threads take jobs in order
and run the ``nogil`` numba kernels of :mod:`word2bert.static.kernels` on them, all updating
the shared matrices without locks (Hogwild). The learning rate decays linearly from
``alpha`` to ``min_alpha`` over all epochs, measured in raw words processed (gensim's and
word2vec.c's schedule), and is fixed per job.

An interrupted ``train`` (Ctrl-C) lets running jobs finish, then, if a ``checkpoint`` path
was given, saves the model together with its position (epoch, job) there; loading that
file and calling ``train`` again on the same corpus resumes where it stopped.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from word2bert.corpus import EncodedCorpus, Vocabulary
from word2bert.corpus.reader import MAX_SENTENCE_LENGTH, as_sentences
from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write
from word2bert.progress import progress_bar
from word2bert.static.huffman import MAX_CODE_LENGTH, build_huffman_tree
from word2bert.static.kernels import train_cbow_chunk, train_skipgram_chunk
from word2bert.static.sampling import keep_probabilities, negative_sampling_table

JOB_WORDS = 10_000  # words per kernel call (gensim's MAX_WORDS_IN_BATCH, word2vec.c's 10k lr step)
MAX_SOFTMAX_VOCAB = 5_000  # the full softmax is O(V) per example
FORMAT_VERSION = 1


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
                 softmax=False, lowercase=False, progress=None):
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
        if sentences is not None or corpus_file is not None:
            self.build_vocab(sentences=sentences, corpus_file=corpus_file)
            self.train(sentences=sentences, corpus_file=corpus_file)

    # -- vocabulary ---------------------------------------------------------------------
    def _sentences(self, sentences, corpus_file):
        return as_sentences(sentences, corpus_file, lowercase=self.lowercase,
                            max_sentence_length=self.max_sentence_length)

    def build_vocab(self, sentences=None, corpus_file=None, vocabulary: Vocabulary | None = None):
        """Count words (one pass), keep those with ``min_count``, then initialise the weights.

        A ready :class:`Vocabulary` may be given instead of a corpus. Input rows start
        uniform in ``[-1, 1) / vector_size`` (gensim's and fastText's range; word2vec.c's is half as
        wide, which leaves CBOW's averaged hidden vectors smaller and its vectors measurably
        worse after 5 epochs), output rows at zero.
        """
        if vocabulary is None:
            if isinstance(sentences, EncodedCorpus):
                raise Word2BertError("build_vocab needs the text corpus (or vocabulary=), not an EncodedCorpus")
            bar = self._bar(None, "vocab", "word")
            try:
                vocabulary = Vocabulary.build(self._sentences(sentences, corpus_file), min_count=self.min_count,
                                              max_vocab_size=self.max_vocab_size, progress=bar)
            finally:
                bar.close()
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
        rng = np.random.default_rng(self.seed)
        n, dim = len(vocabulary), self.vector_size
        self.input_vectors = rng.random((n, dim), dtype=np.float32)
        self.input_vectors *= np.float32(2.0 / dim)
        self.input_vectors -= np.float32(1.0 / dim)
        self.output_vectors_ns = np.zeros((n, dim), np.float32) if (self.negative or self.softmax) else None
        self.output_vectors_hs = np.zeros((self._tree.n_inner, dim), np.float32) if self.hs else None
        self._wv = None
        self._resume_state = None
        return self

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
        """Encode a corpus with this vocabulary (reusing ``cache_dir`` when it holds a matching cache)."""
        self._require_vocab()
        if isinstance(sentences, EncodedCorpus):
            return sentences
        if self.cache_dir is not None and (Path(self.cache_dir) / "meta.json").exists():
            try:
                return EncodedCorpus.open(self.cache_dir, self.vocab)
            except Word2BertError:
                pass  # stale cache (other vocabulary): re-encode below
        bar = self._bar(None, "encode", "word")
        try:
            return EncodedCorpus.encode(self._sentences(sentences, corpus_file), self.vocab,
                                        cache_dir=self.cache_dir, progress=bar)
        finally:
            bar.close()

    @staticmethod
    def _jobs(corpus: EncodedCorpus) -> np.ndarray:
        """Sentence index boundaries cutting the corpus into jobs of about JOB_WORDS tokens."""
        offsets = np.asarray(corpus.offsets)
        targets = np.arange(JOB_WORDS, offsets[-1], JOB_WORDS)
        cuts = np.searchsorted(offsets, targets, side="left")
        bounds = np.unique(np.concatenate([[0], cuts, [corpus.n_sentences]]))
        return bounds.astype(np.int64)

    def train(self, sentences=None, corpus_file=None, total_examples=None, total_words=None, epochs=None,
              start_alpha=None, end_alpha=None, compute_loss=None, callbacks=None, checkpoint=None):
        """Train on a corpus (text, a file, or an EncodedCorpus) for ``epochs`` passes.

        Can be called again to continue training (the learning rate runs from ``start_alpha``
        to ``end_alpha`` again, defaulting to ``alpha`` and ``min_alpha``). Returns
        ``(effective_words, raw_words)`` trained, as gensim does. ``total_examples`` and
        ``total_words`` are accepted for gensim compatibility; the exact counts are known.
        """
        self._require_vocab()
        corpus = self.encode(sentences, corpus_file)
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
        jobs = self._jobs(corpus)
        offsets = np.ascontiguousarray(corpus.offsets, dtype=np.int64)
        tokens = np.asarray(corpus.tokens, dtype=np.int32).view()
        tokens.flags.writeable = False  # one kernel signature for in-memory and memory-mapped corpora
        job_tokens = np.diff(offsets[jobs])
        raw_per_token = corpus.raw_word_count / max(len(tokens), 1)
        total_raw = corpus.raw_word_count * epochs
        first_epoch, first_job, words_done = 0, 0, 0.0
        if resume is not None:
            if resume["n_jobs"] != len(jobs) or resume["n_tokens"] != len(tokens):
                raise Word2BertError("the checkpoint was made on another corpus (different size); "
                                     "resume with the corpus it was trained on")
            first_epoch, first_job = resume["epoch"], resume["job"]
            words_done = resume["words_done"]
            self.running_training_loss = resume["loss"]
        else:
            self.running_training_loss = 0.0
            self.epoch_losses = []
        tree = self._tree
        codes = tree.codes if tree is not None else np.zeros((1, MAX_CODE_LENGTH), np.uint8)
        points = tree.points if tree is not None else np.zeros((1, MAX_CODE_LENGTH), np.int32)
        lengths = tree.code_lengths if tree is not None else np.zeros(1, np.int32)
        dummy = np.zeros((1, self.vector_size), np.float32)
        out_ns = self.output_vectors_ns if self.output_vectors_ns is not None else dummy
        out_hs = self.output_vectors_hs if self.output_vectors_hs is not None else dummy
        dim = int(self.vector_size)
        lock = threading.Lock()
        stop = threading.Event()
        shared = {"job": first_job, "words": words_done, "loss": 0.0, "examples": 0, "effective": 0,
                  "raw": 0, "error": None}
        bar = self._bar(total_raw, "word2vec", "word")
        bar.update(int(words_done))
        # one RNG stream per (training call, worker), word2vec.c's LCG seeded like its thread id
        base_seed = (self.seed * 1_000_003 + self.train_count * 7919) % (2**32)
        states = [np.uint64(base_seed + 97 * (w + 1)) for w in range(self.workers)]
        start_time = time.perf_counter()

        def worker(w):
            state = states[w]
            try:
                while not stop.is_set():
                    with lock:
                        j = shared["job"]
                        if j >= len(jobs) - 1:
                            break
                        shared["job"] = j + 1
                        progress = shared["words"] / total_raw
                        shared["words"] += job_tokens[j] * raw_per_token
                    alpha = np.float32(max(end_alpha, start_alpha - (start_alpha - end_alpha) * progress))
                    args = (self.input_vectors, out_ns, out_hs, tokens, offsets, jobs[j], jobs[j + 1], self._keep,
                            self._table, codes, points, lengths, self.window, self.negative, bool(self.hs),
                            self.softmax)
                    if self.sg:
                        loss, examples, effective, state = train_skipgram_chunk(*args, alpha, np.uint64(state),
                                                                                self.compute_loss, dim)
                    else:
                        loss, examples, effective, state = train_cbow_chunk(*args, bool(self.cbow_mean), alpha,
                                                                            np.uint64(state), self.compute_loss, dim)
                    with lock:
                        shared["loss"] += loss
                        shared["examples"] += examples
                        shared["effective"] += effective
                        shared["raw"] += int(job_tokens[j] * raw_per_token)
                        bar.update(int(job_tokens[j] * raw_per_token))
                        if shared["examples"]:
                            bar.set_postfix(loss=f"{shared['loss'] / shared['examples']:.4f}",
                                            lr=f"{float(alpha):.5f}", refresh=False)
            except BaseException as exc:  # surfaced in the main thread
                shared["error"] = exc
                stop.set()
            states[w] = state  # the stream continues in the next epoch

        effective_total, raw_total = 0, 0
        epoch = first_epoch
        try:
            while epoch < epochs:
                for cb in callbacks:
                    if hasattr(cb, "on_epoch_begin"):
                        cb.on_epoch_begin(self)
                shared.update(loss=0.0, examples=0, effective=0, raw=0)
                threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(self.workers)]
                for t in threads:
                    t.start()
                for t in threads:
                    while t.is_alive():
                        t.join(0.1)
                if shared["error"] is not None:
                    raise shared["error"]
                self.running_training_loss += shared["loss"]
                self.epoch_losses.append(shared["loss"] / max(shared["examples"], 1))
                effective_total += shared["effective"]
                raw_total += shared["raw"]
                epoch += 1
                shared["job"] = 0
                for cb in callbacks:
                    if hasattr(cb, "on_epoch_end"):
                        cb.on_epoch_end(self)
        except KeyboardInterrupt:
            stop.set()
            for t in threads:
                t.join()
            if checkpoint is not None:
                self._resume_state = {"epoch": epoch, "job": int(shared["job"]), "words_done": shared["words"],
                                      "epochs": epochs, "start_alpha": start_alpha, "end_alpha": end_alpha,
                                      "n_jobs": len(jobs), "n_tokens": len(tokens),
                                      "loss": self.running_training_loss + shared["loss"]}
                self.save(checkpoint)
                bar.write(f"interrupted: checkpoint saved to {checkpoint} (epoch {epoch + 1}/{epochs}); "
                          "resume with the same corpus", file=sys.stderr)
            raise
        finally:
            bar.close()
        self._resume_state = None
        self.train_count += 1
        self.total_train_time += time.perf_counter() - start_time
        return effective_total, raw_total

    # -- persistence ----------------------------------------------------------------------
    def _metadata(self) -> dict:
        params = {name: getattr(self, name) for name in (
            "vector_size", "window", "min_count", "max_vocab_size", "max_final_vocab", "sample", "seed", "workers",
            "alpha", "min_alpha", "sg", "hs", "negative", "ns_exponent", "cbow_mean", "epochs",
            "max_sentence_length", "softmax", "compute_loss", "lowercase")}
        return {"format": "word2bert.Word2Vec", "version": FORMAT_VERSION, "params": params,
                "corpus_total_words": self.corpus_total_words, "corpus_count": self.corpus_count,
                "words": self.vocab.words, "train_count": self.train_count,
                "running_training_loss": self.running_training_loss, "epoch_losses": self.epoch_losses,
                "resume": self._resume_state}

    def save(self, path) -> None:
        """Save the full model (weights, vocabulary, parameters) to one ``.npz`` file, atomically.

        Arrays: ``input_vectors``, ``output_vectors_ns`` / ``output_vectors_hs`` (when used),
        ``counts``; a JSON string ``metadata`` holds the parameters, the word list and, for a
        checkpoint, the position to resume from.
        """
        self._require_vocab()
        arrays = {"input_vectors": self.input_vectors, "counts": self.vocab.counts,
                  "metadata": np.array(json.dumps(self._metadata()))}
        if self.output_vectors_ns is not None:
            arrays["output_vectors_ns"] = self.output_vectors_ns
        if self.output_vectors_hs is not None:
            arrays["output_vectors_hs"] = self.output_vectors_hs
        with atomic_write(path, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path) -> Word2Vec:
        """Load a model written by :meth:`save` (training can continue from it)."""
        path = Path(path)
        if not path.exists():
            raise Word2BertError(f"file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            meta = json.loads(str(arrays["metadata"]))
        except (OSError, ValueError, KeyError) as exc:
            raise Word2BertError(f"not a word2bert Word2Vec model file: {path} ({exc})") from None
        if meta.get("format") != "word2bert.Word2Vec":
            raise Word2BertError(f"not a word2bert Word2Vec model file: {path}")
        model = cls(**meta["params"])
        model.vocab = Vocabulary(meta["words"], arrays["counts"])
        model._prepare_tables()
        model.input_vectors = np.ascontiguousarray(arrays["input_vectors"], dtype=np.float32)
        model.output_vectors_ns = arrays.get("output_vectors_ns")
        model.output_vectors_hs = arrays.get("output_vectors_hs")
        expected = (len(model.vocab), model.vector_size)
        if model.input_vectors.shape != expected:
            raise Word2BertError(f"corrupt model file {path}: input_vectors has shape "
                                 f"{model.input_vectors.shape}, expected {expected}")
        model.corpus_total_words = meta.get("corpus_total_words", 0)
        model.corpus_count = meta.get("corpus_count", 0)
        model.train_count = meta.get("train_count", 0)
        model.running_training_loss = meta.get("running_training_loss", 0.0)
        model.epoch_losses = list(meta.get("epoch_losses", []))
        model._resume_state = meta.get("resume")
        return model

    def __repr__(self) -> str:
        size = len(self.vocab) if self.vocab is not None else 0
        mode = ("sg" if self.sg else "cbow") + ("+hs" if self.hs else "") + (
            f"+ns{self.negative}" if self.negative else "") + ("+softmax" if self.softmax else "")
        return f"Word2Vec(vocab={size}, vector_size={self.vector_size}, {mode}, window={self.window})"
