"""GPT-1 fine-tuning: the input transformations build the paper's sequences, similarity reads both
orders, multiple choice is a softmax over answers, the loss is task + 0.5 x LM, and a small model
learns a planted classification through finetune_gpt."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from word2bert.models.gpt import GPT2Config, GPT2LMHeadModel, GPT2Model
from word2bert.tasks.gpt_transforms import (
    GPTForTask,
    GPTTaskCollator,
    InputTransform,
    encode_gpt_examples,
    finetune_gpt,
    load_gpt_finetuned,
)
from word2bert.errors import Word2BertError
from word2bert.tokenizers import ByteLevelBPETokenizer

POSITIVE, NEGATIVE, FILLER = "great good fine nice happy".split(), "bad awful sad poor ugly".split(), \
    "the a cat dog sat ran on mat".split()


@pytest.fixture(scope="module")
def trained_bpe(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("bpe") / "corpus.txt"
    rng = np.random.default_rng(0)
    words = POSITIVE + NEGATIVE + FILLER + "is yes no".split()
    corpus.write_text("\n".join(" ".join(rng.choice(words, 8)) for _ in range(200)) + "\n", encoding="utf-8")
    trained = ByteLevelBPETokenizer.train(corpus, vocab_size=300)
    return trained.get_vocab(), trained.merges


@pytest.fixture
def tokenizer(trained_bpe):
    """A fresh tokenizer per test (InputTransform adds its three tokens to the one it is given)."""
    return ByteLevelBPETokenizer(*trained_bpe)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_input_transformations_build_the_papers_sequences(tokenizer):
    transform = InputTransform(tokenizer, max_length=16)
    start, delim, extract = transform.start_id, transform.delimiter_id, transform.extract_id
    assert tokenizer.convert_ids_to_tokens([start, delim, extract]) == ["<|start|>", "<|delim|>", "<|extract|>"]
    a, b = tokenizer.encode("the cat sat")["input_ids"], tokenizer.encode("a dog ran")["input_ids"]
    assert transform.classification("the cat sat") == [[start, *a, extract]]
    assert transform.entailment("the cat sat", "a dog ran") == [[start, *a, delim, *b, extract]]
    assert transform.similarity("the cat sat", "a dog ran") == [[start, *a, delim, *b, extract],
                                                               [start, *b, delim, *a, extract]]
    answers = ["yes", "no", "the mat"]
    assert transform.multiple_choice("the cat sat", answers) == [
        [start, *a, delim, *tokenizer.encode(answer)["input_ids"], extract] for answer in answers]
    long_premise = "the cat sat on the mat " * 10
    (sequence,) = transform.entailment(long_premise, "a dog ran")
    assert len(sequence) == 16 and sequence[-len(b) - 2:] == [delim, *b, extract]  # the longest part is cut
    assert tokenizer.encode("<|start|>the")["input_ids"][0] == start  # read whole, never split


def small_encoder(vocab_size, seed=0):
    torch.manual_seed(seed)
    return GPT2Model(GPT2Config(vocab_size=vocab_size, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))


def test_similarity_reads_both_orders_and_choices_are_a_softmax(tokenizer):
    transform = InputTransform(tokenizer, max_length=32)
    encoder = small_encoder(tokenizer.vocab_size)
    model = GPTForTask(encoder, "similarity", num_labels=3).eval()
    collate = GPTTaskCollator(tokenizer.pad_id, with_labels=False)
    forward = model(**collate([{"input_ids": transform.similarity("the cat sat", "a dog ran on the mat")}]))
    backward = model(**collate([{"input_ids": transform.similarity("a dog ran on the mat", "the cat sat")}]))
    torch.testing.assert_close(forward.logits, backward.logits, atol=1e-5, rtol=0)
    assert forward.logits.shape == (1, 3)

    choice = GPTForTask(encoder, "multiple-choice").eval()
    items = [{"input_ids": transform.multiple_choice("the cat", ["yes", "no", "a dog"]), "labels": 2},
             {"input_ids": transform.multiple_choice("the dog", ["no", "yes"]), "labels": 0}]
    batch = GPTTaskCollator(tokenizer.pad_id)(items)
    assert batch["input_ids"].shape[:2] == (2, 3) and batch["choice_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    out = choice(**batch)
    assert torch.isinf(out.logits[1, 2]) and torch.isfinite(out.logits[0]).all()
    alone = choice(**GPTTaskCollator(tokenizer.pad_id)(items[1:]))
    torch.testing.assert_close(out.logits[1, :2], alone.logits[0], atol=1e-5, rtol=0)  # padding changes nothing


def test_loss_is_task_loss_plus_half_the_language_model_loss(tokenizer):
    transform = InputTransform(tokenizer, max_length=32)
    encoder = small_encoder(tokenizer.vocab_size)
    model = GPTForTask(encoder, "entailment", num_labels=2).eval()
    examples = [{"text": "the cat sat", "text_pair": "a cat", "label": "yes"},
                {"text": "a dog ran on the mat", "text_pair": "the cat is happy", "label": "no"}]
    batch = GPTTaskCollator(tokenizer.pad_id)(encode_gpt_examples("entailment", examples, transform, ["no", "yes"]))
    out = model(**batch)
    task = F.cross_entropy(out.logits, batch["labels"])
    ids, mask = batch["input_ids"][:, 0], batch["attention_mask"][:, 0]
    logits = F.linear(encoder(ids, mask).last_hidden_state, encoder.get_input_embeddings().weight)
    keep = mask[:, 1:].bool()  # every token after the start token predicts, padding does not
    language = F.cross_entropy(logits[:, :-1][keep], ids[:, 1:][keep])
    assert float(out.loss.detach()) == pytest.approx(float((task + 0.5 * language).detach()), rel=1e-5)
    assert out.stats["lm_nll"][1] == int(keep.sum()) and out.stats["accuracy"][1] == 2
    model.lm_weight = 0.0
    assert float(model(**batch).loss.detach()) == pytest.approx(float(task.detach()), rel=1e-5)


def test_finetune_gpt_learns_a_planted_label_and_reloads(tokenizer, tmp_path, one_thread):
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(240):
        positive = bool(rng.random() < 0.5)
        words = list(rng.choice(FILLER, 3)) + [str(rng.choice(POSITIVE if positive else NEGATIVE))]
        rng.shuffle(words)
        rows.append(" ".join(words) + "\t" + ("pos" if positive else "neg"))
    (tmp_path / "train.tsv").write_text("\n".join(rows[:200]) + "\n", encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("\n".join(rows[200:]) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    pretrained = GPT2LMHeadModel(GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=32, n_embd=32, n_layer=2,
                                            n_head=2, eos_token_id=tokenizer.eos_id, bos_token_id=tokenizer.eos_id))
    pretrained.save_pretrained(tmp_path / "gpt")
    tokenizer.save(tmp_path / "gpt")
    result = finetune_gpt(tmp_path / "gpt", tmp_path / "train.tsv", tmp_path / "dev.tsv", task="classification",
                          max_steps=80, batch_size=16, learning_rate=2e-3, max_length=32, warmup=0.1, progress=False)
    assert result.metrics["accuracy"] >= 0.9, result.metrics
    assert result.model.encoder.config.vocab_size == tokenizer.vocab_size + 3  # start, delimiter, extract
    result.model.save_pretrained(tmp_path / "tuned")
    result.tokenizer.save(tmp_path / "tuned")
    loaded = load_gpt_finetuned(tmp_path / "tuned").eval()
    reloaded_tokenizer = ByteLevelBPETokenizer.from_pretrained(tmp_path / "tuned")
    transform = InputTransform(reloaded_tokenizer, 32)
    assert transform.extract_id == tokenizer.vocab_size + 2  # the saved tokenizer keeps the new tokens
    batch = GPTTaskCollator(reloaded_tokenizer.pad_id, with_labels=False)(
        [{"input_ids": transform.classification("the cat is great")}])
    result.model.eval()
    torch.testing.assert_close(loaded(**batch).logits, result.model(**batch).logits)


def test_bad_gpt_tasks_are_reported(tokenizer, tmp_path):
    encoder = small_encoder(tokenizer.vocab_size)
    with pytest.raises(Word2BertError, match="unknown GPT task"):
        GPTForTask(encoder, "tagging", num_labels=2)
    with pytest.raises(Word2BertError, match="at least two labels"):
        GPTForTask(encoder, "classification", num_labels=1)
    path = tmp_path / "mc.jsonl"
    path.write_text(json.dumps({"context": "x", "choices": ["a", "b"], "label": 2}) + "\n", encoding="utf-8")
    from word2bert.tasks.gpt_transforms import read_multiple_choice

    with pytest.raises(Word2BertError, match=r"mc.jsonl, line 1: label 2"):
        read_multiple_choice(path)
