"""KeyedVectors: a word -> vector table with similarity, neighbours and analogies (gensim's names).

``model.wv`` of every static model is a :class:`KeyedVectors`. Rows are usually sorted by
descending frequency (so ``restrict_vocab=k`` means "the k most frequent words"). Cosine
similarities use the unit-normalised matrix, computed once and cached; assigning
``kv.vectors = ...`` drops the cache, and code that changes ``kv.vectors`` in place (training)
calls :meth:`KeyedVectors.invalidate_norms` afterwards (a change to the most frequent rows is
also noticed on its own).

Files: :meth:`KeyedVectors.save` writes the native ``.npz`` (vectors, words, counts) or, by
extension, word2vec binary (``.bin``) / text (``.txt``, ``.vec``); :meth:`KeyedVectors.load`
reads any supported format, detected from the content.
"""

from __future__ import annotations

import zipfile
from numbers import Integral

import numpy as np

from word2bert.errors import UnknownWordError, Word2BertError, check_positive
from word2bert.fileio import atomic_write, open_binary
from word2bert.interop import word2vec_format as w2v_files

__all__ = ["KeyedVectors", "unit_vector"]

_NPZ_VERSION = 1


def unit_vector(vector: np.ndarray) -> np.ndarray:
    """Return ``v / ||v||_2`` (the zero vector stays zero)."""
    vector = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def _no_neighbours(topn) -> bool:
    """True for ``topn=0``; an error for a negative or non-integer ``topn`` (None means all scores)."""
    if topn is None or topn is False:
        return False
    if isinstance(topn, bool) or not isinstance(topn, Integral):
        raise Word2BertError(f"parameter topn={topn!r} must be a whole number >= 0, or None for every score")
    if topn < 0:
        raise Word2BertError(f"parameter topn={topn} must be >= 0 (None: every score)")
    return topn == 0


def _rows_contiguous_float32(matrix: np.ndarray) -> bool:
    """Whether the 2-D ``matrix`` is float32 with each row contiguous and rows in order (C-contiguous,
    or rows at a larger stride, as the whole-cache-line rows the trainers keep)."""
    return (matrix.dtype == np.float32 and (matrix.flags.c_contiguous or matrix.strides[1] == 4
                                            and matrix.strides[0] >= 4 * matrix.shape[1]))


class KeyedVectors:
    """Vectors addressed by word.

    Parameters
    ----------
    vectors : array (n, dim), stored as float32 (no copy when it already is float32 with each row
        contiguous, so a trainer can share the array: C-contiguous, or a model's word vectors, whose
        rows are padded to whole cache lines).
    index_to_key : the n words, row order.
    counts : optional corpus frequencies (int64, length n).
    """

    def __init__(self, vectors, index_to_key, counts=None):
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise Word2BertError(f"vectors must be a 2-D array (words x dimension), got shape {vectors.shape}")
        if not _rows_contiguous_float32(vectors):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index_to_key = list(index_to_key)
        if len(index_to_key) != vectors.shape[0]:
            raise Word2BertError(f"{len(index_to_key)} words but {vectors.shape[0]} vectors")
        key_to_index = {key: i for i, key in enumerate(index_to_key)}
        if len(key_to_index) != len(index_to_key):
            seen = set()
            duplicate = next(k for k in index_to_key if k in seen or seen.add(k))
            raise Word2BertError(f"word {duplicate!r} occurs more than once in the vocabulary")
        if counts is not None:
            counts = np.asarray(counts, dtype=np.int64)
            if counts.shape != (len(index_to_key),):
                raise Word2BertError(f"counts must have one entry per word ({len(index_to_key)}), got {counts.shape}")
        self._vectors = vectors
        self.index_to_key = index_to_key
        self.key_to_index = key_to_index
        self.counts = counts
        self._norms = None
        self._normed_vectors = None
        self._norms_fingerprint = None

    # ------------------------------------------------------------------------------------------
    # the table

    @property
    def vectors(self) -> np.ndarray:
        """float32 (n, dim). word2vec.c's ``syn0`` / gensim's ``wv.vectors``."""
        return self._vectors

    @vectors.setter
    def vectors(self, value):
        value = np.asarray(value)
        if value.ndim != 2 or value.shape[0] != len(self.index_to_key):
            raise Word2BertError(
                f"new vectors must have shape ({len(self.index_to_key)}, dim), got {value.shape}")
        if not _rows_contiguous_float32(value):
            value = np.ascontiguousarray(value, dtype=np.float32)
        self._vectors = value
        self.invalidate_norms()

    @property
    def vector_size(self) -> int:
        return int(self._vectors.shape[1])

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, key) -> bool:
        return key in self.key_to_index

    def has_index_for(self, key) -> bool:
        return key in self.key_to_index

    def __repr__(self) -> str:
        return f"KeyedVectors({len(self)} words, dimension {self.vector_size})"

    def get_index(self, key, default=None) -> int:
        """Row of ``key``; an int within range is taken as a row already. Unknown -> UnknownWordError
        (a Word2BertError and a KeyError)."""
        index = self.key_to_index.get(key) if isinstance(key, str) else None
        if index is not None:
            return index
        if isinstance(key, Integral) and not isinstance(key, bool) and 0 <= key < len(self):
            return int(key)
        if default is not None:
            return default
        raise UnknownWordError(key)

    def get_vector(self, key, norm: bool = False) -> np.ndarray:
        """The vector of ``key``; ``norm=True`` gives ``v / ||v||``."""
        index = self.get_index(key)
        if norm:
            return self.get_normed_vectors()[index]
        return self._vectors[index]

    def __getitem__(self, keys):
        if isinstance(keys, (str, Integral)):
            return self.get_vector(keys)
        return np.vstack([self.get_vector(key) for key in keys]) if len(keys) else \
            np.zeros((0, self.vector_size), dtype=np.float32)

    # ------------------------------------------------------------------------------------------
    # norms

    def invalidate_norms(self) -> None:
        """Forget the cached unit-normalised matrix (call after changing ``vectors`` in place)."""
        self._norms = None
        self._normed_vectors = None
        self._norms_fingerprint = None

    def _fingerprint(self) -> int:
        """Hash of a few rows (the first 8, the most frequent, and 8 spread out): a cheap way to
        notice that training changed ``vectors`` in place. Not a proof of equality; code that
        edits other rows only calls :meth:`invalidate_norms`."""
        n = self._vectors.shape[0]
        probe = np.unique(np.concatenate([np.arange(min(n, 8)), np.linspace(0, max(n - 1, 0), 8).astype(np.int64)]))
        return hash(self._vectors[probe].tobytes()) if n else 0

    def fill_norms(self, force: bool = False) -> None:
        """Compute ``norms[i] = ||v_i||`` and the unit rows ``v_i / ||v_i||`` (zero rows stay zero)."""
        fingerprint = self._fingerprint()
        if self._normed_vectors is not None and not force and fingerprint == self._norms_fingerprint:
            return
        norms = np.linalg.norm(self._vectors, axis=1).astype(np.float32)
        safe = np.where(norms > 0, norms, 1.0).astype(np.float32)
        self._norms = norms
        self._normed_vectors = self._vectors / safe[:, None]
        self._norms_fingerprint = fingerprint

    @property
    def norms(self) -> np.ndarray:
        self.fill_norms()
        return self._norms

    def get_normed_vectors(self) -> np.ndarray:
        """The cached matrix of unit rows ``v_i / ||v_i||`` (float32, n x dim)."""
        self.fill_norms()
        return self._normed_vectors

    # ------------------------------------------------------------------------------------------
    # similarity

    def _as_vector(self, item, norm: bool) -> np.ndarray:
        """A word (its vector, unit length when ``norm``) or a raw vector (used as given)."""
        if isinstance(item, (str, Integral)):
            return np.asarray(self.get_vector(item, norm=norm), dtype=np.float64)
        vector = np.asarray(item, dtype=np.float64)
        if vector.shape != (self.vector_size,):
            raise Word2BertError(
                f"a vector of shape {vector.shape} was given, but the vectors have dimension {self.vector_size}")
        return vector

    def _restrict(self, restrict_vocab) -> int:
        if restrict_vocab is None:
            return len(self)
        check_positive("restrict_vocab", restrict_vocab)
        return min(int(restrict_vocab), len(self))

    @staticmethod
    def _weighted_items(positive, negative):
        """gensim's input rule: keys or vectors weigh +1 (positive) or -1 (negative); a (key, weight)
        pair carries its own signed weight wherever it is given."""
        def as_list(items):
            if items is None:
                return []
            if isinstance(items, (str, Integral)) or (isinstance(items, np.ndarray) and items.ndim == 1):
                return [items]
            return list(items)

        weighted = []
        for items, sign in ((as_list(positive), 1.0), (as_list(negative), -1.0)):
            for item in items:
                if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                    weighted.append((item[0], float(item[1])))
                else:
                    weighted.append((item, sign))
        return weighted

    def _top(self, scores: np.ndarray, topn: int, exclude: set[int], offset: int = 0):
        """The ``topn`` best rows of ``scores`` (descending), skipping the rows in ``exclude``."""
        count = min(topn + len(exclude), scores.shape[0])
        if count <= 0:
            return []
        if count < scores.shape[0]:
            best = np.argpartition(-scores, count - 1)[:count]
        else:
            best = np.arange(scores.shape[0])
        best = best[np.argsort(-scores[best], kind="stable")]
        result = [(self.index_to_key[i + offset], float(scores[i])) for i in best if i + offset not in exclude]
        return result[:topn]

    def most_similar(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """Words nearest to the weighted mean of the inputs (3CosAdd for analogies).

        ``query = unit(sum_i w_i x_i / sum_i |w_i|)`` where ``x_i`` is the unit vector of a word (a
        raw vector is used as given), ``w_i = +1`` for positive and ``-1`` for negative inputs;
        the score of word j is ``cos(v_j, query)``. Input words are not returned. ``topn=None``
        returns the scores of all (restricted) words, ``topn=0`` an empty list (as gensim); a
        negative ``topn`` is an error. ``restrict_vocab=k`` searches the first k rows.
        """
        if _no_neighbours(topn):
            return []
        weighted = self._weighted_items(positive, negative)
        if not weighted:
            raise Word2BertError("most_similar needs at least one positive or negative word or vector")
        mean = np.zeros(self.vector_size, dtype=np.float64)
        total = 0.0
        exclude = set()
        for item, weight in weighted:
            mean += weight * self._as_vector(item, norm=True)
            total += abs(weight)
            if isinstance(item, (str, Integral)):
                exclude.add(self.get_index(item))
        query = unit_vector(mean / (total or 1.0)).astype(np.float32)
        limit = self._restrict(restrict_vocab)
        scores = self.get_normed_vectors()[:limit] @ query
        if not topn:
            return scores
        return self._top(scores, int(topn), exclude)

    def most_similar_cosmul(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """3CosMul (Levy & Goldberg 2014, eq. 4, with cosines shifted to [0, 1] as in their footnote 7).

        ``score(j) = prod_{p in positive} s(j, p) / (prod_{q in negative} s(j, q) + 1e-6)`` with
        ``s(j, x) = (1 + cos(v_j, x)) / 2``. With one positive word the ranking equals
        :meth:`most_similar`. Input words are not returned; ``restrict_vocab=k`` searches the
        first k rows (gensim ignores this argument here).
        """
        if _no_neighbours(topn):
            return []
        weighted = self._weighted_items(positive, negative)
        if not any(weight > 0 for _item, weight in weighted):
            raise Word2BertError("most_similar_cosmul needs at least one positive word or vector")
        limit = self._restrict(restrict_vocab)
        normed = self.get_normed_vectors()[:limit]
        numerator = np.ones(limit, dtype=np.float64)
        denominator = np.ones(limit, dtype=np.float64)
        exclude = set()
        for item, weight in weighted:
            direction = unit_vector(self._as_vector(item, norm=True)).astype(np.float32)
            shifted = (1.0 + (normed @ direction).astype(np.float64)) / 2.0
            if weight > 0:
                numerator *= shifted
            else:
                denominator *= shifted
            if isinstance(item, (str, Integral)):
                exclude.add(self.get_index(item))
        scores = numerator / (denominator + 1e-6)
        if not topn:
            return scores
        return self._top(scores, int(topn), exclude)

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        """Words nearest (cosine) to a raw vector; no word is excluded."""
        return self.most_similar(positive=[np.asarray(vector)], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_key(self, key, topn=10, restrict_vocab=None):
        """Words nearest (cosine) to ``key``, without ``key`` itself."""
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_word = similar_by_key

    def similarity(self, key1, key2) -> float:
        """Cosine similarity ``v1 . v2 / (||v1|| ||v2||)``."""
        return float(np.dot(self.get_vector(key1, norm=True), self.get_vector(key2, norm=True)))

    def n_similarity(self, keys1, keys2) -> float:
        """Cosine between the means of two word sets: ``cos(mean(v for keys1), mean(v for keys2))``."""
        keys1, keys2 = list(keys1), list(keys2)
        if not keys1 or not keys2:
            raise Word2BertError("n_similarity needs at least one word in each list")
        mean1 = self[keys1].astype(np.float64).mean(axis=0)
        mean2 = self[keys2].astype(np.float64).mean(axis=0)
        return float(np.dot(unit_vector(mean1), unit_vector(mean2)))

    def distance(self, key1, key2) -> float:
        """Cosine distance ``1 - cos(v1, v2)``."""
        return 1.0 - self.similarity(key1, key2)

    def distances(self, word_or_vector, other_words=()) -> np.ndarray:
        """``1 - cos(x, v_j)`` from a word or vector to each of ``other_words`` (default: all words)."""
        query = unit_vector(self._as_vector(word_or_vector, norm=False)).astype(np.float32)
        normed = self.get_normed_vectors()
        if other_words is None or len(other_words) == 0:
            others = normed
        else:
            others = normed[[self.get_index(word) for word in other_words]]
        return 1.0 - others @ query

    def closer_than(self, key1, key2) -> list[str]:
        """Words closer to ``key1`` than ``key2`` is (``key1`` itself excluded)."""
        index1 = self.get_index(key1)
        all_distances = self.distances(key1)
        closer = np.flatnonzero(all_distances < all_distances[self.get_index(key2)])
        return [self.index_to_key[i] for i in closer if i != index1]

    def rank(self, key1, key2) -> int:
        """Rank of ``key2`` among the neighbours of ``key1`` (1 = nearest)."""
        return len(self.closer_than(key1, key2)) + 1

    def doesnt_match(self, words) -> str:
        """The word farthest from the others: argmin_i ``x_i . unit(mean_j x_j)`` with unit rows x."""
        words = list(words)
        if not words:
            raise Word2BertError("doesnt_match needs at least one word")
        unit_rows = self.get_normed_vectors()[[self.get_index(word) for word in words]].astype(np.float64)
        centre = unit_vector(unit_rows.mean(axis=0))
        return words[int(np.argmin(unit_rows @ centre))]

    # ------------------------------------------------------------------------------------------
    # files

    def save(self, path, format: str | None = None) -> None:
        """Write to ``path`` atomically: native ``.npz`` unless the format (or extension) says otherwise.

        ``format`` is one of "npz", "word2vec-binary", "word2vec-text", "glove"; without it,
        ``.bin`` -> word2vec binary, ``.txt``/``.vec`` -> word2vec text, anything else -> npz.
        """
        fmt = format or w2v_files.format_from_extension(path) or "npz"
        if fmt == "npz":
            self._save_npz(path)
        elif fmt == "word2vec-binary":
            self.save_word2vec_format(path, binary=True)
        elif fmt == "word2vec-text":
            self.save_word2vec_format(path, binary=False)
        elif fmt == "glove":
            self.save_glove_format(path)
        else:
            raise Word2BertError(f"unknown vector format {fmt!r}; choose from {', '.join(w2v_files.FORMATS)}")

    def _save_npz(self, path) -> None:
        encoded = [key.encode("utf-8") for key in self.index_to_key]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        arrays = {
            "format_version": np.array(_NPZ_VERSION),
            "vectors": self._vectors,
            "key_bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8),
            "key_offsets": offsets,
        }
        if self.counts is not None:
            arrays["counts"] = self.counts
        with atomic_write(path, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def _load_npz(cls, path) -> "KeyedVectors":
        try:
            with open_binary(path) as handle, np.load(handle, allow_pickle=False) as archive:
                vectors = archive["vectors"]
                key_bytes = archive["key_bytes"].tobytes()
                offsets = archive["key_offsets"]
                counts = archive["counts"] if "counts" in archive.files else None
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
            raise Word2BertError(f"{path}: not a word2bert .npz vector file or corrupt ({exc})") from None
        if offsets.ndim != 1 or offsets.shape[0] != vectors.shape[0] + 1 or offsets[-1] != len(key_bytes):
            raise Word2BertError(f"{path}: corrupt .npz vector file (words and vectors disagree)")
        keys = [key_bytes[offsets[i]:offsets[i + 1]].decode("utf-8", errors="replace")
                for i in range(len(offsets) - 1)]
        if vectors.ndim == 2:
            w2v_files.check_finite_rows(path, vectors, keys, lambda i: f"vector {i + 1}")
        return cls(vectors, keys, counts)

    @classmethod
    def load(cls, path, format: str | None = None) -> "KeyedVectors":
        """Read any supported file; the format is detected from the content unless given."""
        fmt = format or w2v_files.detect_format(path)
        if fmt == "npz":
            return cls._load_npz(path)
        if fmt == "word2vec-binary":
            return cls.load_word2vec_format(path, binary=True)
        if fmt == "word2vec-text":
            return cls.load_word2vec_format(path, binary=False)
        if fmt == "glove":
            return cls.load_glove_format(path)
        raise Word2BertError(f"unknown vector format {fmt!r}; choose from {', '.join(w2v_files.FORMATS)}")

    def save_word2vec_format(self, path, binary: bool = False) -> None:
        """word2vec.c's text (``binary=False``) or binary file, readable by word2vec.c and gensim."""
        w2v_files.write_word2vec_format(path, self._vectors, self.index_to_key, binary=binary)

    @classmethod
    def load_word2vec_format(cls, path, binary: bool | None = None, limit: int | None = None) -> "KeyedVectors":
        """Read a word2vec text or binary file (``binary=None``: detected); ``limit``: first rows only."""
        vectors, words = w2v_files.read_word2vec_format(path, binary=binary, limit=limit)
        return cls(vectors, words)

    def save_glove_format(self, path) -> None:
        """GloVe's text file: ``word v1 ... vd`` lines, no header."""
        w2v_files.write_glove_format(path, self._vectors, self.index_to_key)

    @classmethod
    def load_glove_format(cls, path, limit: int | None = None) -> "KeyedVectors":
        vectors, words = w2v_files.read_glove_format(path, limit=limit)
        return cls(vectors, words)
