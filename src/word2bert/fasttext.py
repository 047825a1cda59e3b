"""fastText's own Python API on word2bert's models: ``import word2bert.fasttext as fasttext``.

A script written for Facebook's ``fasttext`` package runs by changing its import::

    import word2bert.fasttext as fasttext

    model = fasttext.train_supervised("train.txt", lr=0.5, epoch=25, wordNgrams=2)
    model.predict("which baking dish is best", k=3)        # (labels, probabilities)
    model.test("valid.txt")                                 # (N, P@1, R@1)
    model.quantize(input="train.txt", retrain=True)
    model.save_model("model.ftz")

    vectors = fasttext.train_unsupervised("text.txt", model="skipgram", minn=3, maxn=6)
    vectors.get_nearest_neighbors("king")                  # [(score, word), ...]
    fasttext.load_model("cc.en.300.bin").get_word_vector("unseenword")

The argument names and defaults are fastText's (``dim``, ``ws``, ``epoch``, ``minCount``, ``wordNgrams``,
``thread``, ``t``, ...); the models are :class:`word2bert.static.fasttext.FastText` and
:class:`word2bert.static.classifier.FastTextClassifier`, so files move both ways (``.bin``, ``.ftz``).
Differences: ``lrUpdateRate`` is accepted but the learning rate decays continuously; the classifier
visits the lines in a new random order each epoch (fastText reads them in file order, which hurts
on files sorted by label); ``pretrainedVectors`` and autotuning are not supported.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from word2bert.errors import Word2BertError

__all__ = ["train_supervised", "train_unsupervised", "load_model", "FastTextModel"]


def _threads(thread) -> int:
    return max(1, int(thread)) if thread is not None else max(1, (os.cpu_count() or 2) - 1)


def _refuse(pretrainedVectors="", autotuneValidationFile="", **_):
    if pretrainedVectors:
        raise Word2BertError("pretrainedVectors is not supported: train from scratch, or load the vectors with "
                             "word2bert.KeyedVectors")
    if autotuneValidationFile:
        raise Word2BertError("autotune (autotuneValidationFile) is not supported: choose the parameters")


def train_unsupervised(input, model="skipgram", lr=0.05, dim=100, ws=5, epoch=5, minCount=5, minCountLabel=0, minn=3,
                       maxn=6, neg=5, wordNgrams=1, loss="ns", bucket=2000000, thread=None, lrUpdateRate=100, t=1e-4,
                       label="__label__", verbose=2, pretrainedVectors="", seed=0, **autotune) -> FastTextModel:
    """fastText's ``train_unsupervised``: skip-gram or CBOW word vectors with subwords from a text file."""
    from word2bert.static.fasttext import FastText

    _refuse(pretrainedVectors, **autotune)
    if model not in ("skipgram", "cbow"):
        raise Word2BertError(f"parameter model={model!r} must be 'skipgram' or 'cbow'")
    if loss not in ("ns", "hs", "softmax"):
        raise Word2BertError(f"parameter loss={loss!r} must be 'ns', 'hs' or 'softmax' for word vectors")
    trained = FastText(corpus_file=input, sg=int(model == "skipgram"), alpha=lr, vector_size=dim, window=ws,
                       epochs=epoch, min_count=minCount, min_n=minn, max_n=maxn,
                       negative=neg if loss == "ns" else 0, hs=int(loss == "hs"), bucket=bucket,
                       workers=_threads(thread), sample=t, seed=seed, progress=False if not verbose else None)
    return FastTextModel(trained)


def train_supervised(input, lr=0.1, dim=100, ws=5, epoch=5, minCount=1, minCountLabel=0, minn=0, maxn=0, neg=5,
                     wordNgrams=1, loss="softmax", bucket=2000000, thread=None, lrUpdateRate=100, t=1e-4,
                     label="__label__", verbose=2, pretrainedVectors="", seed=0, **autotune) -> FastTextModel:
    """fastText's ``train_supervised``: a text classifier from lines ``__label__x words ...``."""
    from word2bert.static.classifier import FastTextClassifier

    _refuse(pretrainedVectors, **autotune)
    trained = FastTextClassifier(input, lr=lr, dim=dim, epoch=epoch, min_count=minCount,
                                 min_count_label=minCountLabel, word_ngrams=wordNgrams, bucket=bucket, minn=minn,
                                 maxn=maxn, neg=neg, loss=loss, label=label, workers=_threads(thread), seed=seed,
                                 progress=False if not verbose else None)
    return FastTextModel(trained)


def load_model(path) -> FastTextModel:
    """Read a fastText ``.bin`` or ``.ftz`` (Facebook's or word2bert's)."""
    from word2bert.static.fasttext import load_facebook_model

    return FastTextModel(load_facebook_model(path))


class FastTextModel:
    """The model fastText's functions return (its ``_FastText``), over a word2bert model (``.model``)."""

    def __init__(self, model):
        from word2bert.static.classifier import FastTextClassifier

        self.model = model
        self.supervised = isinstance(model, FastTextClassifier)
        self._word_vectors = None

    # -- the dictionary -------------------------------------------------------------------
    @property
    def words(self) -> list:
        return self.get_words()

    @property
    def labels(self) -> list:
        return self.get_labels()

    def get_dimension(self) -> int:
        return self.model.dim if self.supervised else self.model.vector_size

    def get_words(self, include_freq: bool = False, on_unicode_error: str = "strict"):
        """The vocabulary's words (and their counts), most frequent first."""
        words = list(self.model.words if self.supervised else self.model.vocab.words)
        if include_freq:
            counts = self.model.word_counts if self.supervised else self.model.vocab.counts
            return words, np.asarray(counts, np.int64)
        return words

    def get_labels(self, include_freq: bool = False, on_unicode_error: str = "strict"):
        """The labels (and their counts); an unsupervised model's "labels" are its words, as in fastText."""
        if not self.supervised:
            return self.get_words(include_freq)
        if include_freq:
            return list(self.model.labels), np.asarray(self.model.label_counts, np.int64)
        return list(self.model.labels)

    def get_word_id(self, word: str) -> int:
        """The word's row, or -1."""
        if self.supervised:
            return self.model._tables()[0].get(word, -1)
        return self.model.vocab.index.get(word, -1)

    def get_label_id(self, label: str) -> int:
        if not self.supervised:
            return self.get_word_id(label)
        return self.model._tables()[1].get(label, -1)

    def get_subwords(self, word: str, on_unicode_error: str = "strict"):
        """``(subwords, rows)``: the word (when known) and its character n-grams, with their input rows."""
        if self.supervised:
            from word2bert.static.subwords import subword_rows, word_ngrams

            index = self.model._tables()[0]
            _, rows = subword_rows([word], self.model.minn, self.model.maxn, self.model.bucket,
                                   nwords=self.model.nwords, include_self=False)
            grams = word_ngrams(word, self.model.minn, self.model.maxn) if self.model.bucket else []
            if word in index:
                return [word] + grams, np.concatenate([[index[word]], rows]).astype(np.int32)
            return grams, rows
        return self.model.get_subwords(word)

    def get_subword_id(self, subword: str) -> int:
        """The input row of a character n-gram: ``nwords + hash % bucket``."""
        from word2bert.static.subwords import fasttext_hash

        nwords = self.model.nwords if self.supervised else len(self.model.vocab)
        bucket = self.model.bucket
        return nwords + fasttext_hash(subword) % bucket if bucket else -1

    def get_line(self, text: str, on_unicode_error: str = "strict"):
        """``(words, labels)`` of one line (or lists of them for a list of lines)."""
        if isinstance(text, list):
            pairs = [self.get_line(t) for t in text]
            return [p[0] for p in pairs], [p[1] for p in pairs]
        prefix = self.model.label if self.supervised else "__label__"
        tokens = text.split()
        return [t for t in tokens if not t.startswith(prefix)], [t for t in tokens if t.startswith(prefix)]

    # -- vectors --------------------------------------------------------------------------
    def get_input_matrix(self) -> np.ndarray:
        if self.supervised and self.model.is_quantized:
            raise Word2BertError("a quantized model has no dense input matrix")
        return self.model.input_vectors

    def get_output_matrix(self) -> np.ndarray:
        return self.model.output_vectors

    def get_input_vector(self, ind: int) -> np.ndarray:
        if self.supervised and self.model.is_quantized:
            from word2bert.static.quantize import dequantize

            return dequantize(self.model.quantized_input, [ind])[0]
        return self.model.input_rows([ind])[0]

    def get_word_vector(self, word: str) -> np.ndarray:
        """The mean of the word's input rows (its own and its character n-grams'); zeros without any."""
        if not self.supervised:
            return self.model.wv.word_vector(word)
        _, rows = self.get_subwords(word)
        if len(rows) == 0:
            return np.zeros(self.get_dimension(), np.float32)
        if self.model.is_quantized:
            from word2bert.static.quantize import dequantize

            return dequantize(self.model.quantized_input, rows).mean(axis=0).astype(np.float32)
        return self.model.input_rows(rows).mean(axis=0).astype(np.float32)

    def __getitem__(self, word: str) -> np.ndarray:
        return self.get_word_vector(word)

    def __contains__(self, word: str) -> bool:
        return self.get_word_id(word) >= 0

    def get_sentence_vector(self, text: str) -> np.ndarray:
        """fastText's sentence vector: for word vectors the mean of the words' vectors, each divided by its
        norm; for a classifier the mean of the line's input rows (its hidden vector, as ``predict`` uses)."""
        if "\n" in text:
            raise Word2BertError("get_sentence_vector processes one line at a time (remove '\\n')")
        if self.supervised:
            from word2bert.static.subwords import EOS

            probabilities_input = self.model.encode([text.split() + [EOS]])
            offsets, rows = probabilities_input[0], probabilities_input[1]
            if offsets[1] == 0:
                return np.zeros(self.get_dimension(), np.float32)
            if self.model.is_quantized:
                from word2bert.static.quantize import dequantize

                return dequantize(self.model.quantized_input, rows).mean(axis=0).astype(np.float32)
            return self.model.input_rows(rows).mean(axis=0).astype(np.float32)
        total = np.zeros(self.get_dimension(), np.float64)
        count = 0
        for word in text.split():
            vector = self.get_word_vector(word)
            norm = np.linalg.norm(vector)
            if norm > 0:
                total += vector / norm
                count += 1
        return (total / max(count, 1)).astype(np.float32)

    def _neighbours(self, query: np.ndarray, k: int, exclude) -> list:
        if self._word_vectors is None:  # every word's vector, normalised (fastText's precomputeWordVectors)
            words = self.get_words()
            vectors = np.stack([self.get_word_vector(w) for w in words]) if words else np.zeros((0, 1))
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            self._word_vectors = (words, vectors / np.where(norms > 0, norms, 1.0))
        words, vectors = self._word_vectors
        norm = np.linalg.norm(query)
        scores = vectors @ (query / (norm if norm > 1e-8 else 1.0))
        result = []
        for i in np.argsort(-scores, kind="stable"):
            if words[i] not in exclude:
                result.append((float(scores[i]), words[i]))
                if len(result) == k:
                    break
        return result

    def get_nearest_neighbors(self, word: str, k: int = 10, on_unicode_error: str = "strict") -> list:
        """The ``k`` words of largest cosine with ``word``'s vector, as ``(score, word)`` pairs."""
        return self._neighbours(self.get_word_vector(word), int(k), {word})

    def get_analogies(self, wordA: str, wordB: str, wordC: str, k: int = 10, on_unicode_error: str = "strict") -> list:
        """Words ``d`` with ``A - B + C ~ d`` (each vector normalised first), as ``(score, word)`` pairs:
        ``get_analogies("berlin", "germany", "france")`` -> ``paris``."""
        query = np.zeros(self.get_dimension(), np.float64)
        for word, sign in ((wordA, 1.0), (wordB, -1.0), (wordC, 1.0)):
            vector = self.get_word_vector(word)
            query += sign * vector / (np.linalg.norm(vector) + 1e-8)
        return self._neighbours(query, int(k), {wordA, wordB, wordC})

    # -- classification -------------------------------------------------------------------
    def _classifier(self):
        if not self.supervised:
            raise Word2BertError("predict, test and quantize need a supervised model (train_supervised)")
        return self.model

    def predict(self, text, k: int = 1, threshold: float = 0.0, on_unicode_error: str = "strict"):
        """The ``k`` most probable labels of one line (``(labels, probabilities)``) or of a list of lines
        (``(list of label lists, list of probability arrays)``), as fastText."""
        labels, probabilities = self._classifier().predict(text, k=k, threshold=threshold)
        if isinstance(text, str):
            return labels, probabilities
        return [list(row) for row in labels], probabilities

    def test(self, path, k: int = 1, threshold: float = 0.0):
        """``(N, precision@k, recall@k)`` on a labelled file."""
        return self._classifier().test(path, k=k, threshold=threshold)

    def test_label(self, path, k: int = 1, threshold: float = 0.0) -> dict:
        """``{label: {"precision", "recall", "f1score"}}`` on a labelled file."""
        return self._classifier().test_label(path, k=k, threshold=threshold)

    def quantize(self, input=None, qout: bool = False, cutoff: int = 0, retrain: bool = False, epoch=None, lr=None,
                 thread=None, verbose=None, dsub: int = 2, qnorm: bool = False) -> None:
        """Product-quantize the classifier (fastText's ``.ftz``; :mod:`word2bert.static.quantize`).
        ``input``, ``retrain``, ``epoch``, ``lr``, ``thread`` only matter with ``cutoff``, which is not
        supported."""
        if retrain and not cutoff:
            warnings.warn("quantize(retrain=True) retrains only after a cutoff; nothing to retrain", UserWarning,
                          stacklevel=2)
        self._classifier().quantize(dsub=dsub, qnorm=qnorm, qout=qout, cutoff=cutoff)

    def is_quantized(self) -> bool:
        return self.supervised and self.model.is_quantized

    # -- files ----------------------------------------------------------------------------
    def save_model(self, path) -> None:
        """Write the model as fastText's ``.bin`` (``.ftz`` content once quantized)."""
        self.model.save(path)

    def __repr__(self) -> str:
        return f"FastTextModel({self.model!r})"
