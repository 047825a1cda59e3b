"""Character n-grams and fastText's hash: against an independent Python reference and the fasttext package."""

import numpy as np
import pytest
from fasttext_reference import facebook_train

from word2bert.static.subwords import (
    fasttext_hash,
    hash_tokens,
    subword_rows,
    word_ngrams,
)

WORDS = ["where", "a", "héllo", "日本語", "naïve", "x😀y", "</s>", "ab", "straße"]


def reference_hash(text: str) -> int:
    """FNV-1a over UTF-8 bytes with fastText's int8 sign extension, written out in plain Python."""
    h = 2166136261
    for byte in text.encode("utf-8"):
        extended = byte if byte < 128 else byte | 0xFFFFFF00  # uint32(int8(byte))
        h = ((h ^ extended) * 16777619) % 2**32
    return h


def test_hash_matches_plain_python_reference():
    assert fasttext_hash("") == 2166136261
    assert fasttext_hash("a") == 0xE40C292C  # textbook FNV-1a of "a" (ASCII is unaffected by the quirk)
    for word in WORDS + ["<hé", "語>"]:
        assert fasttext_hash(word) == reference_hash(word)
    np.testing.assert_array_equal(hash_tokens(WORDS), [reference_hash(w) for w in WORDS])


def test_non_ascii_hash_differs_from_textbook_fnv():
    textbook = 2166136261
    for byte in "é".encode("utf-8"):
        textbook = ((textbook ^ byte) * 16777619) % 2**32
    assert fasttext_hash("é") != textbook


def test_ngrams_of_paper_example_and_utf8_boundaries():
    # Bojanowski et al. 2017, section 3.2: "where" with n = 3
    assert word_ngrams("where", 3, 3) == ["<wh", "whe", "her", "ere", "re>"]
    # n counts characters: a 2-byte character is one position, never split
    assert word_ngrams("hé", 1, 2) == ["<h", "h", "hé", "é", "é>"]
    assert word_ngrams("</s>", 3, 6) == []


def test_subword_rows_layout():
    offsets, rows = subword_rows(["where", "</s>"], 3, 3, bucket=1000)
    assert rows[0] == 0 and offsets[1] == 1 + 5
    expected = [2 + reference_hash(g) % 1000 for g in ["<wh", "whe", "her", "ere", "re>"]]
    np.testing.assert_array_equal(rows[1:6], expected)
    assert offsets[2] - offsets[1] == 1 and rows[6] == 1  # </s>: itself only
    offsets, rows = subword_rows(["where"], 3, 6, bucket=0)
    np.testing.assert_array_equal(rows, [0])


@pytest.fixture(scope="module")
def fasttext_model(tmp_path_factory):
    fasttext = pytest.importorskip("fasttext")
    path = tmp_path_factory.mktemp("ft") / "corpus.txt"
    rng = np.random.default_rng(0)
    vocab = WORDS[:-3] + ["straße", "ßß", "ab", "été", "çà", "ωμέγα", "кошка"]
    lines = [" ".join(rng.choice(vocab, size=10)) for _ in range(1000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return fasttext.load_model(str(facebook_train(path.parent, "train_unsupervised", path, dim=5, epoch=1, minCount=1,
                                                  thread=1, bucket=5000, lr=0.01, minn=2, maxn=5, t=1.0)))


def test_ids_and_ngrams_match_fasttext(fasttext_model):
    words = fasttext_model.words
    offsets, rows = subword_rows(words, 2, 5, bucket=5000)
    for i, word in enumerate(words):
        strings, ids = fasttext_model.get_subwords(word)
        np.testing.assert_array_equal(rows[offsets[i]:offsets[i + 1]], ids, err_msg=word)
        assert list(strings[1:]) == word_ngrams(word, 2, 5)
    for word in ["zébra", "日本", "q", "😀😀", "unseenword"]:
        strings, ids = fasttext_model.get_subwords(word)
        _, ours = subword_rows([word], 2, 5, bucket=5000, nwords=len(words), include_self=False)
        np.testing.assert_array_equal(ours, ids, err_msg=word)
        assert list(strings) == word_ngrams(word, 2, 5)
