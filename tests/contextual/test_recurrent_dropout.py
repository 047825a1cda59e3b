"""AWD-LSTM's regularisers: locked dropout, embedding (word) dropout, DropConnect on W_hh."""

import numpy as np
import pytest
import torch

from word2bert.errors import Word2BertError
from word2bert.nn.dropout import MASK_LEVELS
from word2bert.nn.recurrent import EmbeddingDropout, LockedDropout, WeightDropLSTM

torch.set_num_threads(1)


def binomial_ok(successes: int, trials: int, p: float, z: float = 5.0) -> bool:
    """``successes`` is within ``z`` standard deviations of Binomial(trials, p)'s mean."""
    return abs(successes - trials * p) <= z * np.sqrt(trials * p * (1 - p))


# ---------------------------------------------------------------------------------- locked dropout
@pytest.mark.parametrize("batch_first", [True, False])
def test_locked_dropout_shares_its_mask_across_time(batch_first):
    torch.manual_seed(0)
    p, batch, time, dim = 0.3, 40, 9, 50
    x = torch.rand(batch, time, dim) + 0.5
    layer = LockedDropout(p, batch_first=batch_first).train()
    y = layer(x) if batch_first else layer(x.transpose(0, 1)).transpose(0, 1)
    mask = y / x                                        # 0 or 1/(1-p), per (batch, time, feature)
    assert torch.allclose(mask, mask[:, :1].expand_as(mask)), "the mask changed along time"
    values = mask[:, 0]
    dropped = int((values == 0).sum())
    assert torch.allclose(values[values != 0], torch.full_like(values[values != 0], 1 / (1 - p)))
    assert binomial_ok(dropped, batch * dim, p)
    # different sequences of the batch get different masks; a new call draws a new one
    assert not torch.equal(values[0], values[1])
    again = layer(x) if batch_first else layer(x.transpose(0, 1)).transpose(0, 1)
    assert not torch.equal(again / x, mask)


def test_locked_dropout_is_the_identity_in_evaluation_and_checks_p():
    x = torch.randn(3, 4, 5)
    assert torch.equal(LockedDropout(0.5).eval()(x), x)
    assert torch.equal(LockedDropout(0.0).train()(x), x)
    with pytest.raises(Word2BertError, match="p=1.0"):
        LockedDropout(1.0)


# ------------------------------------------------------------------------------- embedding dropout
def test_embedding_dropout_drops_whole_words_with_merity_gradients():
    torch.manual_seed(1)
    p, vocab, dim = 0.4, 500, 6
    weight = torch.nn.Parameter(torch.randn(vocab, dim))
    ids = torch.randint(0, vocab, (30, 40))
    layer = EmbeddingDropout(p).train()
    out = layer(ids, weight)
    # recover each token's scale: 0 or 1/(1-p), the same for every occurrence of a word
    scale = (out / weight.detach()[ids]).mean(-1)
    assert torch.allclose(out, weight.detach()[ids] * scale.unsqueeze(-1), atol=1e-6)
    per_word = {}
    for word, s in zip(ids.reshape(-1).tolist(), scale.reshape(-1).tolist()):
        per_word.setdefault(word, set()).add(round(s, 5))
    assert all(len(values) == 1 for values in per_word.values()), "one word got two masks"
    kept = {w: next(iter(v)) for w, v in per_word.items()}
    kept_p = 1 - round(p * MASK_LEVELS) / MASK_LEVELS   # masks draw p rounded to a multiple of 2^-16
    assert set(kept.values()) <= {0.0, round(1 / kept_p, 5)}
    dropped = sum(1 for v in kept.values() if v == 0.0)
    assert binomial_ok(dropped, len(kept), p)
    # gradient equals that of Merity's embedded_dropout: (m[:, None] * E)[ids] with the same mask
    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()
    mask = torch.zeros(vocab)
    for word, value in kept.items():
        mask[word] = value
    reference = torch.nn.Parameter(weight.detach().clone())
    ((mask[:, None] * reference)[ids] * upstream).sum().backward()
    assert torch.allclose(weight.grad, reference.grad, atol=1e-5)


def test_embedding_dropout_in_evaluation_is_a_plain_lookup():
    weight = torch.randn(20, 3)
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(EmbeddingDropout(0.5).eval()(ids, weight), weight[ids])


# ------------------------------------------------------------------------------ weight-dropped LSTM
def reference_lstm(x, weight_ih, weight_hh, bias_ih, bias_hh, h, c):
    """Step by step from the equations: gates (i, f, g, o) = W_ih x_t + b_ih + W_hh h + b_hh."""
    outputs = []
    for t in range(x.size(1)):
        gates = x[:, t] @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, 1), (h, c)


def test_weight_drop_lstm_without_dropout_is_torch_lstm():
    torch.manual_seed(2)
    layer = WeightDropLSTM(5, 7, weight_dropout=0.5).eval()
    lstm = torch.nn.LSTM(5, 7, batch_first=True)
    lstm.load_state_dict(layer.state_dict())        # the same parameter names
    x = torch.randn(3, 6, 5)
    h0, c0 = torch.randn(3, 7), torch.randn(3, 7)
    ours, (h, c) = layer(x, (h0, c0))
    theirs, (h_ref, c_ref) = lstm(x, (h0[None], c0[None]))
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert torch.allclose(h, h_ref[0], atol=1e-6) and torch.allclose(c, c_ref[0], atol=1e-6)


def test_weight_drop_mask_is_fixed_for_a_batch_and_renewed_between_batches():
    torch.manual_seed(3)
    p = 0.5
    layer = WeightDropLSTM(4, 16, weight_dropout=p).train()
    x = torch.randn(2, 12, 4)
    h0, c0 = torch.zeros(2, 16), torch.zeros(2, 16)
    out, (h, c) = layer(x, (h0, c0))
    mask = layer.weight_hh_mask.clone()
    # every time step used the same dropped matrix: the step-by-step reference with M * W_hh matches
    expected, (h_ref, c_ref) = reference_lstm(x, layer.weight_ih_l0, layer.weight_hh_l0 * mask, layer.bias_ih_l0,
                                              layer.bias_hh_l0, h0, c0)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(h, h_ref, atol=1e-5) and torch.allclose(c, c_ref, atol=1e-5)
    assert set(mask.unique().tolist()) <= {0.0, 1 / (1 - p)}
    assert binomial_ok(int((mask == 0).sum()), mask.numel(), p)
    # the gradient reaches W_hh only where the mask kept it, as the reference's does
    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()
    weight = torch.nn.Parameter(layer.weight_hh_l0.detach().clone())
    expected, _ = reference_lstm(x, layer.weight_ih_l0.detach(), weight * mask, layer.bias_ih_l0.detach(),
                                 layer.bias_hh_l0.detach(), h0, c0)
    (expected * upstream).sum().backward()
    assert torch.allclose(layer.weight_hh_l0.grad, weight.grad, atol=1e-5)
    assert torch.all(layer.weight_hh_l0.grad[mask == 0] == 0)
    # the next batch draws a new mask
    layer(x, (h0, c0))
    assert not torch.equal(layer.weight_hh_mask, mask)


def test_weight_drop_lstm_carries_state_across_calls():
    torch.manual_seed(4)
    layer = WeightDropLSTM(3, 5, weight_dropout=0.3).eval()
    x = torch.randn(2, 10, 3)
    whole, (h, c) = layer(x)
    first, state = layer(x[:, :4])
    second, (h2, c2) = layer(x[:, 4:], state)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-6)
    assert torch.allclose(h2, h, atol=1e-6) and torch.allclose(c2, c, atol=1e-6)


def test_weight_drop_lstm_rejects_bad_input():
    with pytest.raises(Word2BertError, match="weight_dropout"):
        WeightDropLSTM(3, 5, weight_dropout=-0.1)
    with pytest.raises(Word2BertError, match=r"\(batch, time, 3\)"):
        WeightDropLSTM(3, 5)(torch.randn(2, 4, 6))
