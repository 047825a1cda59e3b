from collections import Counter

import numpy as np
import pytest

from word2bert.corpus import Vocabulary
from word2bert.errors import Word2BertError


def test_build_sorts_by_count_and_applies_min_count():
    sentences = [["b", "a", "b", "c"], ["a", "b", "d", "d"]]
    vocab = Vocabulary.build(sentences, min_count=2)
    assert vocab.words == ["b", "a", "d"]
    assert vocab.counts.tolist() == [3, 2, 2]
    assert vocab.raw_total_words == 8
    assert vocab.lookup("a") == 1 and "c" not in vocab
    with pytest.raises(KeyError, match="word 'c' is not in the vocabulary"):  # gensim code catches KeyError
        vocab.lookup("c")


def test_max_vocab_size_keeps_the_most_frequent():
    counter = Counter({"x": 10, "y": 7, "z": 3, "w": 1})
    vocab = Vocabulary.from_counter(counter, min_count=1, max_vocab_size=2)
    assert vocab.words == ["x", "y"]


def test_pruning_bounds_the_table_like_word2vec_reduce_vocab():
    # 50 frequent words and many hapaxes: pruning drops the hapaxes, keeps the frequent ones exactly.
    rng = np.random.default_rng(0)
    frequent = [f"f{i}" for i in range(50)]
    sentences = []
    for k in range(400):
        sentence = list(rng.choice(frequent, size=20)) + [f"rare{k}_{j}" for j in range(5)]
        sentences.append(sentence)
    full = Vocabulary.build(sentences, min_count=1)
    pruned = Vocabulary.build(sentences, min_count=1, max_vocab_size=50, prune_at=200)
    assert pruned.words == full.words[:50]
    assert set(pruned.words) == set(frequent)
    # frequent words are never undercounted by more than the number of prunes times min_reduce
    full_counts = dict(zip(full.words, full.counts))
    for word, count in zip(pruned.words, pruned.counts):
        assert 0 <= full_counts[word] - count <= 200


def test_save_load_round_trip(tmp_path):
    vocab = Vocabulary(["the", "of", "zebra"], [100, 50, 5])
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    assert path.read_text() == "the 100\nof 50\nzebra 5\n"
    loaded = Vocabulary.load(path)
    assert loaded.words == vocab.words and loaded.counts.tolist() == [100, 50, 5]


def test_bad_input_has_clear_messages(tmp_path):
    with pytest.raises(Word2BertError, match="corpus is empty"):
        Vocabulary.build([[], []])
    with pytest.raises(Word2BertError, match="min_count=3"):
        Vocabulary.build([["a", "b"]], min_count=3)
    with pytest.raises(Word2BertError, match="min_count=0"):
        Vocabulary.build([["a"]], min_count=0)
    bad = tmp_path / "v.txt"
    bad.write_text("the 10\nof many\n")
    with pytest.raises(Word2BertError, match=r"v.txt:2: count 'many' is not an integer"):
        Vocabulary.load(bad)
