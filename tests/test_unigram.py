"""The unigram (SentencePiece-style) tokenizer: training, files, and transformers' AlbertTokenizer reading them."""

import json

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.tokenizers.unigram import SPECIAL_TOKENS, UnigramTokenizer

TEXTS = [f"the {w}ing of {w}s and un{w}able {w}ers ``quoted'' Café naïve" for w in
         ("walk", "talk", "read", "play", "work", "sing", "jump", "think", "build", "paint")] * 30


@pytest.fixture(scope="module")
def tokenizer():
    return UnigramTokenizer.train(texts=TEXTS, vocab_size=120)


def test_training_gives_albert_specials_and_a_viterbi_segmentation(tokenizer):
    assert tokenizer.vocab_size <= 120
    assert [tokenizer.id_to_token(i) for i in range(5)] == list(SPECIAL_TOKENS)
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == (0, 1, 2, 3, 4)
    pieces = tokenizer.tokenize("The walking of talks")
    assert pieces[0].startswith("\u2581") and "".join(pieces).replace("\u2581", " ").strip() == "the walking of talks"
    # the chosen segmentation maximises the sum of piece log-probabilities (checked by brute force)
    scores = dict(tokenizer.pieces)
    word = "\u2581walking"
    best = {0: 0.0}
    for end in range(1, len(word) + 1):
        best[end] = max((best[start] + scores[word[start:end]] for start in range(end)
                         if start in best and word[start:end] in scores), default=-np.inf)
    got = tokenizer.tokenize("walking")
    assert sum(scores[p] for p in got) == pytest.approx(best[len(word)])
    # the normaliser: `` and '' become ", accents go, lower case
    assert tokenizer.decode(tokenizer.encode("Café ``naïve''")["input_ids"]) == 'cafe "naive"'


def test_pairs_and_padding(tokenizer):
    encoded = tokenizer.encode("the walking", "of talks")
    ids, types = encoded["input_ids"], encoded["token_type_ids"]
    assert ids[0] == tokenizer.cls_id and ids.count(tokenizer.sep_id) == 2 and ids[-1] == tokenizer.sep_id
    assert types == [0] * (ids.index(tokenizer.sep_id) + 1) + [1] * (len(ids) - ids.index(tokenizer.sep_id) - 1)
    batch = tokenizer.encode_batch(["the", "the walking of talks"], padding=True)
    assert len(set(map(len, batch["input_ids"]))) == 1 and batch["input_ids"][0][-1] == tokenizer.pad_id
    words = tokenizer.encode_words(["walking", "talks"])
    assert words["word_ids"][0] is None and set(w for w in words["word_ids"] if w is not None) == {0, 1}


def test_word_starts_mark_pieces_with_the_space_symbol(tokenizer):
    table = tokenizer.word_start_table()
    for piece, _ in tokenizer.pieces[5:]:
        assert table[tokenizer.token_to_id(piece)] == piece.startswith("\u2581")
    assert table[:5].all()


def test_save_load_and_transformers_reads_it(tokenizer, tmp_path):
    tokenizer.save(tmp_path)
    again = UnigramTokenizer.from_pretrained(tmp_path)
    texts = ["The unbelievable Café ``quoted''  walkers", "naïve  résumé 12,345", "a b"]
    assert again.encode_batch(texts)["input_ids"] == tokenizer.encode_batch(texts)["input_ids"]
    transformers = pytest.importorskip("transformers")
    theirs = transformers.AlbertTokenizer.from_pretrained(tmp_path)
    for text in texts:
        ours = tokenizer.encode(text, "thinking of it")
        expected = theirs(text, "thinking of it", return_token_type_ids=True)
        assert ours["input_ids"] == expected["input_ids"]
        assert ours["token_type_ids"] == expected["token_type_ids"]
    cased = UnigramTokenizer(tokenizer.pieces, lowercase=False, keep_accents=True)
    cased.save(tmp_path / "cased")
    reloaded = UnigramTokenizer.from_pretrained(tmp_path / "cased")
    assert (reloaded.lowercase, reloaded.keep_accents) == (False, True)


def test_bad_input(tmp_path):
    with pytest.raises(Word2BertError, match="file not found"):
        UnigramTokenizer.train(tmp_path / "missing.txt")
    with pytest.raises(Word2BertError, match="vocab_size"):
        UnigramTokenizer.train(texts=TEXTS, vocab_size=5)
    with pytest.raises(Word2BertError, match="no tokenizer.json"):
        UnigramTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {}}}))
    with pytest.raises(Word2BertError, match="not a Unigram one"):
        UnigramTokenizer.from_pretrained(tmp_path)
    with pytest.raises(Word2BertError, match="lacks the special"):
        UnigramTokenizer([("a", -1.0), ("b", -2.0)])
