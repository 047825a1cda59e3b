"""nn/dropout.py and the dropout path of nn/attention.attend: the distribution of the mask, the
gradients, and attention with dropout against a step-by-step reference drawing the same mask."""

import math

import pytest
import torch
import torch.nn.functional as F

from word2bert.errors import Word2BertError
from word2bert.nn.attention import attend, causal_mask
from word2bert.nn.dropout import Dropout, dropout, dropout_add, dropout_mask, mask_source, set_mask_source


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_mask_keeps_each_element_with_probability_one_minus_p_and_preserves_the_mean(p):
    torch.manual_seed(0)
    n = 400_000
    mask = dropout_mask(torch.empty(n), p)
    kept = (mask != 0)
    values = torch.unique(mask).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / (1 - p), rel=1e-4)
    # binomial: the kept fraction within 5 standard deviations of 1 - p
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)
    assert abs(mask.mean().item() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)
    # neighbours independent: P(both kept) = (1 - p)^2
    both = (kept[:-1] & kept[1:]).float().mean().item()
    assert abs(both - (1 - p) ** 2) < 5 * math.sqrt((1 - p) ** 2 * (1 - (1 - p) ** 2) / n)


def test_dropout_and_dropout_add_gradients_use_the_same_mask():
    x = torch.randn(64, 32, dtype=torch.float64, requires_grad=True)
    residual = torch.randn(64, 32, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(3)
    out = dropout_add(residual, x, 0.3)
    torch.manual_seed(3)
    mask = dropout_mask(x, 0.3)
    assert torch.allclose(out, residual + x * mask, rtol=0, atol=1e-12)
    g = torch.randn_like(out)
    out.backward(g)
    assert torch.equal(residual.grad, g)
    assert torch.allclose(x.grad, g * mask)
    x.grad = None
    torch.manual_seed(5)
    dropped = dropout(x, 0.3)
    torch.manual_seed(5)
    assert torch.equal(dropped, x * dropout_mask(x, 0.3))
    dropped.backward(g)
    torch.manual_seed(5)
    assert torch.allclose(x.grad, g * dropout_mask(x, 0.3))


def test_module_is_identity_in_eval_and_at_p_zero_and_checks_p():
    x = torch.randn(5, 7)
    module = Dropout(0.4).eval()
    assert module(x) is x
    assert torch.equal(module.add(x, x), 2 * x)
    assert Dropout(0.0).train()(x) is x
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    assert Dropout(0.25).state_dict() == {} and "p=0.25" in repr(Dropout(0.25))
    for bad in (-0.1, 1.5, "0.1", True):
        with pytest.raises(Word2BertError, match="dropout probability"):
            Dropout(bad)


def reference_attention(q, k, v, keep, mask_values):
    """softmax(QK^T/sqrt(d) + M) * mask_values, then V — written out; rows seeing nothing are 0."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~keep, float("-inf"))
    probabilities = torch.softmax(scores, -1).nan_to_num(0.0)
    return (probabilities * mask_values) @ v


def test_attend_without_dropout_is_sdpa_and_with_dropout_equals_the_reference_with_the_same_mask():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, dtype=torch.float64) for _ in range(3))
    causal = causal_mask(5, 5)
    assert torch.allclose(attend(q, k, v, causal=True),
                          F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-12)
    padding = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, None, :]
    for keep, kwargs in ((causal, dict(causal=True)), (padding, dict(mask=padding))):
        torch.manual_seed(7)
        out = attend(q, k, v, dropout_p=0.25, **kwargs)
        torch.manual_seed(7)
        mask_values = dropout_mask(torch.empty(2, 3, 5, 5, dtype=torch.float64), 0.25)
        assert torch.allclose(out, reference_attention(q, k, v, keep, mask_values), atol=1e-12)


def test_attend_with_dropout_gives_zero_rows_where_nothing_is_visible_and_is_unbiased():
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 1, 3, 4) for _ in range(3))
    keep = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])[None, None]
    out = attend(q, k, v, keep, dropout_p=0.5)
    assert torch.equal(out[0, 0, 1], torch.zeros(4))
    # the mean over many masks is the attention without dropout (E[mask] = 1)
    q, k, v = (torch.randn(1, 2, 4, 8, dtype=torch.float64).expand(4000, 2, 4, 8) for _ in range(3))
    mean = attend(q, k, v, causal=True, dropout_p=0.2).mean(0)
    exact = attend(q[:1], k[:1], v[:1], causal=True)[0]
    assert (mean - exact).abs().max().item() < 0.05


def test_attention_gradients_through_dropout_match_the_reference():
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 2, 6, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    torch.manual_seed(11)
    ours = attend(q, k, v, causal=True, dropout_p=0.3)
    grads = torch.autograd.grad(ours.sum(), (q, k, v))
    torch.manual_seed(11)
    mask_values = dropout_mask(torch.empty(2, 2, 6, 6, dtype=torch.float64), 0.3)
    reference = reference_attention(q, k, v, causal_mask(6, 6), mask_values)
    for ours_grad, reference_grad in zip(grads, torch.autograd.grad(reference.sum(), (q, k, v))):
        assert torch.allclose(ours_grad, reference_grad, atol=1e-10)


def test_torch_mask_source_draws_the_masks_of_f_dropout_and_of_sdpa_bit_for_bit():
    previous = set_mask_source("torch")
    try:
        assert mask_source() == "torch"
        x = torch.randn(6, 40, 16)
        for tensor in (x, x.transpose(0, 2)):  # contiguous and strided
            torch.manual_seed(5)
            expected = F.dropout(tensor, 0.3)
            torch.manual_seed(5)
            assert torch.equal(dropout(tensor, 0.3), expected)
            torch.manual_seed(5)
            assert torch.equal(dropout_add(torch.zeros_like(tensor), tensor, 0.3), expected)
        query, key, value = (torch.randn(2, 3, 12, 8) for _ in range(3))
        torch.manual_seed(6)
        expected = F.scaled_dot_product_attention(query, key, value, is_causal=True, dropout_p=0.2)
        torch.manual_seed(6)
        torch.testing.assert_close(attend(query, key, value, causal=True, dropout_p=0.2), expected,
                                   atol=1e-6, rtol=0)
        assert torch.equal(dropout(x, 0.3, training=False), x)
    finally:
        set_mask_source(previous)
    assert mask_source() == previous == "numpy"
    torch.manual_seed(5)  # the default source draws other masks
    assert not torch.equal(dropout(x, 0.3), (torch.manual_seed(5), F.dropout(x, 0.3))[1])
    with pytest.raises(Word2BertError, match="mask source must be one of numpy, torch, got 'mkl'"):
        set_mask_source("mkl")
