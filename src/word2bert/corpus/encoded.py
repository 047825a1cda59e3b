"""The corpus encoded once as int32 word ids with sentence boundaries.

Every epoch of every static model reads this array, never the text. Out-of-vocabulary
tokens are dropped at encoding time (as word2vec.c skips them), so they take no window
position. The array lives in memory, or, for corpora larger than RAM, in a cache
directory as a raw int32 file that is memory-mapped: the page cache, not the Python heap,
then holds it, and peak memory does not grow with corpus size beyond it.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from word2bert.corpus.vocab import Vocabulary, sentence_is_a_string
from word2bert.errors import Word2BertError


def vocabulary_fingerprint(vocab: Vocabulary) -> str:
    """A short hash of the word list, to tell whether a cache was encoded with this vocabulary."""
    digest = hashlib.sha1()
    for word in vocab.words:
        digest.update(word.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


class EncodedCorpus:
    """``tokens[offsets[i]:offsets[i+1]]`` are the ids of sentence ``i``.

    ``raw_word_count`` counts every token read, in or out of vocabulary (gensim's
    ``corpus_total_words``) and is what progress and learning-rate decay are measured in.
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, raw_word_count: int | None = None):
        self.tokens = tokens
        self.offsets = offsets
        self.raw_word_count = int(raw_word_count if raw_word_count is not None else len(tokens))

    @property
    def n_sentences(self) -> int:
        return len(self.offsets) - 1

    def __len__(self) -> int:
        return len(self.tokens)

    def sentence(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self):
        for i in range(self.n_sentences):
            yield self.sentence(i)

    # -- encoding -----------------------------------------------------------------------
    @classmethod
    def encode(cls, sentences: Iterable[list[str]], vocab: Vocabulary, cache_dir=None, progress=None):
        """Map every sentence to ids, dropping OOV tokens and sentences left empty.

        With ``cache_dir`` the ids are streamed to ``cache_dir/tokens.int32`` in blocks
        (bounded memory) and memory-mapped back; the cache is reused by :meth:`open` when
        its vocabulary fingerprint matches.
        """
        index_get = vocab.index.get
        offsets = array.array("q", [0])  # 8 bytes per sentence (a list of ints would take 36)
        raw = 0
        n = 0
        block: list[np.ndarray] = []
        block_len = 0
        out = None
        tmp_dir = None
        if cache_dir is not None:
            cache_dir = Path(cache_dir)
            tmp_dir = cache_dir.with_name(cache_dir.name + ".partial")
            if tmp_dir.exists():
                shutil.rmtree(tmp_dir)
            tmp_dir.mkdir(parents=True)
            out = open(tmp_dir / "tokens.int32", "wb")
        try:
            for number, sentence in enumerate(sentences):
                if isinstance(sentence, (str, bytes)):
                    raise Word2BertError(sentence_is_a_string(number, sentence))
                raw += len(sentence)
                if progress is not None:
                    progress.update(len(sentence))
                ids = np.fromiter((index_get(w, -1) for w in sentence), dtype=np.int32, count=len(sentence))
                ids = ids[ids >= 0]
                if len(ids) == 0:
                    continue
                n += len(ids)
                offsets.append(n)
                block.append(ids)
                block_len += len(ids)
                if out is not None and block_len >= 1 << 22:
                    np.concatenate(block).tofile(out)
                    block, block_len = [], 0
            if raw == 0:
                raise Word2BertError("the corpus is empty: no tokens were read")
            if n == 0:
                raise Word2BertError("no token of the corpus is in the vocabulary")
            offsets_arr = np.frombuffer(offsets, dtype=np.int64).copy()
            del offsets
            if out is None:
                return cls(np.concatenate(block) if block else np.zeros(0, np.int32), offsets_arr, raw)
            if block:
                np.concatenate(block).tofile(out)
            out.close()
            out = None
            np.save(tmp_dir / "offsets.npy", offsets_arr)
            (tmp_dir / "meta.json").write_text(json.dumps(
                {"raw_word_count": raw, "n_tokens": n, "vocabulary": vocabulary_fingerprint(vocab)}))
            if cache_dir.exists():
                shutil.rmtree(cache_dir)
            os.replace(tmp_dir, cache_dir)
            return cls.open(cache_dir)
        except BaseException:
            if out is not None:
                out.close()
            if tmp_dir is not None and tmp_dir.exists():
                shutil.rmtree(tmp_dir)
            raise

    @classmethod
    def open(cls, cache_dir, vocab: Vocabulary | None = None):
        """Memory-map an encoded cache; with ``vocab``, check it was encoded with that vocabulary."""
        cache_dir = Path(cache_dir)
        meta_path = cache_dir / "meta.json"
        if not meta_path.exists():
            raise Word2BertError(f"not an encoded-corpus cache (no meta.json): {cache_dir}")
        try:
            meta = json.loads(meta_path.read_text())
            offsets = np.load(cache_dir / "offsets.npy")
            tokens = np.memmap(cache_dir / "tokens.int32", dtype=np.int32, mode="r")
        except (OSError, ValueError, KeyError) as exc:
            raise Word2BertError(f"corrupt encoded-corpus cache {cache_dir}: {exc}") from None
        if len(tokens) != meta["n_tokens"] or offsets[-1] != len(tokens):
            raise Word2BertError(f"corrupt encoded-corpus cache {cache_dir}: token count does not match")
        if vocab is not None and meta["vocabulary"] != vocabulary_fingerprint(vocab):
            raise Word2BertError(f"encoded-corpus cache {cache_dir} was made with another vocabulary")
        return cls(tokens, offsets, meta["raw_word_count"])
