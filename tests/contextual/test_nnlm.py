"""Bengio et al.'s NNLM: the formula, its gradients, context windows, a planted pattern learned, files;
the fused output layer + cross-entropy against PyTorch's composition."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from word2bert.corpus.lm_corpus import EOS, build_lm_vocabulary, encode_lines, token_stream
from word2bert.errors import Word2BertError
from word2bert.models.kneser_ney import KneserNeyLM
from word2bert.models.nnlm import NNLM, NgramWindows, NNLMConfig, perplexity, train_nnlm
from word2bert.nn.linear_cross_entropy import linear_cross_entropy

torch.set_num_threads(1)


@pytest.mark.parametrize("direct", [True, False])
def test_logits_follow_bengio_formula(direct):
    torch.manual_seed(0)
    config = NNLMConfig(vocab_size=13, order=4, embedding_size=3, hidden_size=5, direct_connections=direct)
    model = NNLM(config).eval()
    contexts = torch.randint(0, 13, (6, 3))
    C = model.embeddings.weight.detach().numpy().astype(np.float64)
    H, d = model.hidden.weight.detach().numpy(), model.hidden.bias.detach().numpy()
    output, b = model.output.weight.detach().numpy(), model.output.bias.detach().numpy()
    U, W = output[:, :5], output[:, 5:]
    expected = []
    for row in contexts.numpy():
        x = np.concatenate([C[w] for w in row])              # oldest word first
        y = b + U @ np.tanh(d + H @ x) + (W @ x if direct else 0.0)
        expected.append(y)
    assert np.allclose(model(contexts).logits.detach().numpy(), np.array(expected), atol=1e-5)
    assert W.shape[1] == (3 * 3 if direct else 0)


def test_gradients_match_finite_differences():
    """Central differences in float64 on every weight; a fresh forward pass per evaluation (the fused
    output layer reuses its buffer for the gradient, so one backward pass per forward)."""
    torch.manual_seed(1)
    model = NNLM(NNLMConfig(vocab_size=7, order=3, embedding_size=2, hidden_size=3)).double()
    contexts, labels = torch.randint(0, 7, (4, 2)), torch.randint(0, 7, (4,))
    model(contexts, labels).loss.backward()
    step = 1e-6
    for name, parameter in model.named_parameters():
        flat = parameter.data.view(-1)
        for j in range(flat.numel()):
            original = float(flat[j])
            flat[j] = original + step
            with torch.no_grad():
                up = float(model(contexts, labels).loss)
            flat[j] = original - step
            with torch.no_grad():
                down = float(model(contexts, labels).loss)
            flat[j] = original
            assert (up - down) / (2 * step) == pytest.approx(float(parameter.grad.view(-1)[j]), abs=1e-7), (name, j)


def test_contexts_stop_at_the_start_of_a_sentence():
    eos = 0
    stream = np.array([5, 6, 7, eos, 8, 9, eos, 4])
    windows = NgramWindows(stream, order=4, eos_id=eos)
    contexts = windows.contexts(np.arange(len(stream)))
    assert contexts.tolist() == [
        [0, 0, 0], [0, 0, 5], [0, 5, 6], [5, 6, 7],       # the first sentence and its <eos>
        [0, 0, 0], [0, 0, 8], [0, 8, 9],                  # the second starts afresh
        [0, 0, 0]]
    batch = windows.collate([2, 5])
    assert batch["input_ids"].tolist() == [[0, 5, 6], [0, 0, 8]] and batch["labels"].tolist() == [7, 9]


def planted_file(path, n_lines, seed):
    """Word 3 of every sentence repeats word 1; word 2 is random: a bigram model cannot know word 3."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(12)]
    lines = []
    for _ in range(n_lines):
        a, b = rng.choice(words, 2)
        lines.append(f"{a} {b} {a}\n")
    path.write_text("".join(lines))
    return path


def test_nnlm_learns_a_pattern_two_words_back_that_a_bigram_model_cannot(tmp_path):
    train = planted_file(tmp_path / "train.txt", 1500, 0)
    test = planted_file(tmp_path / "test.txt", 200, 1)
    config = NNLMConfig(order=4, embedding_size=16, hidden_size=32, direct_connections=True)
    result = train_nnlm(train, config, test_path=test, epochs=4, batch_size=64, learning_rate=1e-2,
                        progress=False, output_dir=tmp_path / "nnlm")
    # per sentence: 12 choices for word 1, 12 for word 2, word 3 and <eos> certain given 3 words
    # of context (a trigram cannot tell "a b" at the start from "a b" at the end): ppl = 12^(2/4)
    ideal = 12 ** 0.5
    bigram = KneserNeyLM.train(train, order=2).perplexity(test)
    assert result.perplexities["test"] < ideal * 1.1
    assert bigram > ideal * 1.5
    loaded = NNLM.from_pretrained(tmp_path / "nnlm")
    vocab = build_lm_vocabulary(train)
    windows = NgramWindows(token_stream(encode_lines(test, vocab), vocab.index[EOS]), 4, vocab.index[EOS])
    assert perplexity(loaded, windows) == pytest.approx(result.perplexities["test"], rel=1e-6)


def test_bad_configs_and_inputs():
    with pytest.raises(Word2BertError, match="order"):
        NNLMConfig(order=1)
    with pytest.raises(Word2BertError, match="no path to the output"):
        NNLMConfig(hidden_size=0, direct_connections=False)
    model = NNLM(NNLMConfig(vocab_size=10, order=3, embedding_size=2, hidden_size=2))
    with pytest.raises(Word2BertError, match=r"\(batch, 2\)"):
        model(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(Word2BertError, match="config.json is missing"):
        NNLM.from_pretrained("/nonexistent/dir")


@pytest.mark.parametrize("with_bias", [True, False])
def test_fused_linear_cross_entropy_equals_pytorch(with_bias):
    torch.manual_seed(2)
    hidden = torch.randn(2, 7, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(11, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(11, dtype=torch.float64, requires_grad=True) if with_bias else None
    targets = torch.randint(0, 11, (2, 7))
    targets[0, 3] = targets[1, 6] = -100
    nll, correct = linear_cross_entropy(hidden, weight, targets, bias, chunk_rows=5, ignore_index=-100)
    count = (targets != -100).sum()
    (nll / count * 3.0).backward()
    ours = [hidden.grad.clone(), weight.grad.clone()] + ([bias.grad.clone()] if with_bias else [])
    for tensor in [hidden, weight] + ([bias] if with_bias else []):
        tensor.grad = None
    reference = F.cross_entropy(F.linear(hidden, weight, bias).reshape(-1, 11), targets.reshape(-1))
    (reference * 3.0).backward()
    theirs = [hidden.grad, weight.grad] + ([bias.grad] if with_bias else [])
    assert int(count) == 12
    kept = targets.reshape(-1) != -100
    assert int(correct) == int((F.linear(hidden, weight, bias).reshape(-1, 11).argmax(1) == targets.reshape(-1))[kept].sum())
    assert float((nll / count).detach()) == pytest.approx(float(reference.detach()), rel=1e-12)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-12)
    assert not math.isnan(float(nll.detach()))
