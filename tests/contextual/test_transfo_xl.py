"""Transformer-XL language model: memory equals a longer pass, memory learns what a segment cannot see."""

import math

import numpy as np
import pytest
import torch

from word2bert.errors import Word2BertError
from word2bert.models.transfo_xl import TransfoXLConfig, TransfoXLLMHeadModel, evaluate_stream

torch.set_num_threads(1)


def small_model(mem_len, **overrides):
    torch.manual_seed(0)
    settings = dict(vocab_size=16, d_model=32, n_layer=2, n_head=2, d_inner=64, dropout=0.0, mem_len=mem_len)
    settings.update(overrides)
    return TransfoXLLMHeadModel(TransfoXLConfig(**settings)).eval()


def test_segments_with_memory_give_the_logits_of_one_pass():
    model = small_model(mem_len=10)
    ids = torch.randint(0, 16, (3, 15))
    with torch.no_grad():
        whole = model(ids).logits
        first = model(ids[:, :5])
        second = model(ids[:, 5:10], state=first.state)
        third = model(ids[:, 10:], state=second.state)
    torch.testing.assert_close(torch.cat([first.logits, second.logits, third.logits], 1), whole,
                               atol=1e-5, rtol=1e-5)


def test_evaluate_stream_predicts_every_token_once_and_memory_is_bounded():
    model = small_model(mem_len=4)
    tokens = np.random.default_rng(0).integers(0, 16, 301)
    result = evaluate_stream(model, tokens, seq_len=7, batch_size=3)
    assert result["tokens"] == 300
    with torch.no_grad():
        state = None
        for start in range(0, 100, 5):
            state = model(torch.as_tensor(tokens[None, start:start + 5]), state=state).state
            assert all(m.shape == (1, 4, 32) for m in state)
    # the evaluation's mem_len overrides the model's for that call only
    assert evaluate_stream(model, tokens, 7, mem_len=0, batch_size=3)["nll"] != result["nll"]
    assert model.transformer.encoder.mem_len == 4


def copy_stream(blocks, period, vocab, seed):
    """Random blocks of ``period`` tokens, each followed by its copy: half the tokens are predictable,
    but only from ``period`` tokens back."""
    rng = np.random.default_rng(seed)
    return np.repeat(rng.integers(0, vocab, (blocks, period)), 2, axis=0).reshape(-1)


def train_on(model, stream, seq_len, steps, batch=16, lr=1e-2):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    row = (len(stream) - 1) // batch
    inputs = torch.as_tensor(stream[:row * batch]).view(batch, row)
    targets = torch.as_tensor(stream[1:row * batch + 1]).view(batch, row)
    model.train()
    state = None
    for step in range(steps):
        start = (step * seq_len) % (row - seq_len)
        if start < seq_len:
            state = None
        output = model(inputs[:, start:start + seq_len], targets[:, start:start + seq_len], state=state)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        state = output.state
    return model.eval()


def test_memory_reaches_context_beyond_the_segment():
    """Segments of 8 tokens, copies 10 tokens back: without memory the copy is never visible (chance,
    log 16); with mem_len 8 the model learns to copy."""
    period, vocab, seq_len = 10, 16, 8
    train, test = copy_stream(4000, period, vocab, 0), copy_stream(150, period, vocab, 1)
    results = {}
    for mem_len, steps in ((0, 100), (8, 250)):  # without memory the copy is out of reach: fewer steps do
        model = train_on(small_model(mem_len, n_layer=1), train, seq_len, steps=steps)
        results[mem_len] = evaluate_stream(model, test, seq_len, batch_size=4)["nll"]
    assert results[0] > math.log(vocab) - 0.05
    assert results[8] < 0.85 * results[0]


@pytest.mark.parametrize("values, message", [
    (dict(mem_len=-1), "mem_len"),
    (dict(clamp_len=0), "clamp_len"),
    (dict(d_model=30, n_head=4), "divisible"),
    (dict(dropout=1.0), "dropout"),
])
def test_bad_config_gets_clear_messages(values, message):
    with pytest.raises(Word2BertError, match=message):
        TransfoXLConfig(**values)


def test_bad_inputs_get_clear_messages(tmp_path):
    model = small_model(mem_len=2)
    with pytest.raises(Word2BertError, match="vocab_size"):
        model(torch.tensor([[16]]))
    with pytest.raises(Word2BertError, match="state"):
        model(torch.tensor([[1, 2]]), state=model(torch.tensor([[1], [2]])).state)
    with pytest.raises(Word2BertError, match="seq_len"):
        evaluate_stream(model, np.arange(10) % 16, seq_len=0)
    model.save_pretrained(tmp_path)
    again = TransfoXLLMHeadModel.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key])
