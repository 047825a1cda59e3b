import numpy as np
import pytest

from word2bert.corpus import EncodedCorpus, Vocabulary
from word2bert.errors import Word2BertError

SENTENCES = [["a", "b", "oov", "a"], ["oov"], ["c", "b"]]


def test_encode_drops_oov_and_empty_sentences():
    vocab = Vocabulary(["a", "b", "c"], [3, 2, 1])
    corpus = EncodedCorpus.encode(SENTENCES, vocab)
    assert corpus.tokens.dtype == np.int32
    assert corpus.tokens.tolist() == [0, 1, 0, 2, 1]
    assert corpus.offsets.tolist() == [0, 3, 5]
    assert corpus.raw_word_count == 7
    assert [s.tolist() for s in corpus] == [[0, 1, 0], [2, 1]]


def test_cache_is_memory_mapped_and_equal(tmp_path):
    vocab = Vocabulary(["a", "b", "c"], [3, 2, 1])
    in_memory = EncodedCorpus.encode(SENTENCES, vocab)
    cached = EncodedCorpus.encode(SENTENCES, vocab, cache_dir=tmp_path / "cache")
    assert isinstance(cached.tokens, np.memmap)
    assert cached.tokens.tolist() == in_memory.tokens.tolist()
    reopened = EncodedCorpus.open(tmp_path / "cache", vocab)
    assert reopened.offsets.tolist() == in_memory.offsets.tolist() and reopened.raw_word_count == 7
    with pytest.raises(Word2BertError, match="another vocabulary"):
        EncodedCorpus.open(tmp_path / "cache", Vocabulary(["x"], [1]))


def test_large_corpus_streams_in_blocks(tmp_path):
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(100)]
    vocab = Vocabulary(words, np.arange(100, 0, -1))
    sentences = [[words[j] for j in rng.integers(0, 100, size=1000)] for _ in range(5000)]  # 5M tokens
    cached = EncodedCorpus.encode(sentences, vocab, cache_dir=tmp_path / "big")
    assert len(cached) == 5_000_000 and cached.n_sentences == 5000
    assert cached.sentence(4999).tolist() == [vocab.index[w] for w in sentences[4999]]


def test_empty_and_fully_oov_corpora_are_refused(tmp_path):
    vocab = Vocabulary(["a"], [1])
    with pytest.raises(Word2BertError, match="corpus is empty"):
        EncodedCorpus.encode([], vocab)
    with pytest.raises(Word2BertError, match="no token of the corpus"):
        EncodedCorpus.encode([["zzz"]], vocab, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists() and not (tmp_path / "c.partial").exists()
