"""The projection LSTM with clipping against a step-by-step reference of TensorFlow's LSTMCell."""

import numpy as np
import pytest
import torch

from word2bert.errors import Word2BertError
from word2bert.interop.bilm import lstm_from_tf, lstm_to_tf
from word2bert.nn.recurrent import BidirectionalLMStack, LSTMStack, LSTMWithProjection, reverse_padded

torch.set_num_threads(1)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def tf_lstm_cell_reference(inputs, kernel, bias, projection, cell_clip, proj_clip, h0, c0):
    """TensorFlow 1.x LSTMCell(num_proj, cell_clip, proj_clip), one step at a time, in float64 numpy:
    [i, j, f, o] = [x, m] W_0 + B;  c = clip(s(f + 1) c + s(i) tanh(j));  m = clip((s(o) tanh(c)) W_P)."""
    m, c = h0.astype(np.float64), c0.astype(np.float64)
    outputs = []
    for t in range(inputs.shape[1]):
        z = np.concatenate([inputs[:, t], m], axis=1) @ kernel + bias
        i, j, f, o = np.split(z, 4, axis=1)
        c = sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(j)
        if cell_clip is not None:
            c = np.clip(c, -cell_clip, cell_clip)
        m = sigmoid(o) * np.tanh(c)
        if projection is not None:
            m = m @ projection
        if proj_clip is not None:
            m = np.clip(m, -proj_clip, proj_clip)
        outputs.append(m)
    return np.stack(outputs, axis=1), m, c


def load_tf_weights(layer, kernel, bias, projection):
    weight_ih, weight_hh, torch_bias = lstm_from_tf(kernel, bias, layer.input_size)
    with torch.no_grad():
        layer.weight_ih.copy_(torch.from_numpy(weight_ih))
        layer.weight_hh.copy_(torch.from_numpy(weight_hh))
        layer.bias.copy_(torch.from_numpy(torch_bias))
        if projection is not None:
            layer.weight_hr.copy_(torch.from_numpy(projection.T.copy()))


@pytest.mark.parametrize("projection_size,cell_clip,proj_clip", [(4, 0.7, 0.3), (None, 0.5, None), (4, None, None)])
def test_projection_lstm_matches_tensorflow_cell_reference(projection_size, cell_clip, proj_clip):
    rng = np.random.default_rng(0)
    D, H, B, T = 5, 8, 3, 7
    P = projection_size or H
    kernel = rng.normal(0, 0.8, (D + P, 4 * H)).astype(np.float32)   # large weights: clipping happens
    bias = rng.normal(0, 0.5, 4 * H).astype(np.float32)
    projection = rng.normal(0, 0.8, (H, P)).astype(np.float32) if projection_size else None
    inputs = rng.normal(0, 1, (B, T, D)).astype(np.float32)
    h0 = rng.normal(0, 0.3, (B, P)).astype(np.float32)
    c0 = rng.normal(0, 0.3, (B, H)).astype(np.float32)
    expected, m_last, c_last = tf_lstm_cell_reference(inputs, kernel, bias, projection, cell_clip, proj_clip, h0, c0)
    if cell_clip is not None:  # the test must exercise the clips
        assert np.isclose(np.abs(c_last).max(), cell_clip)
    if proj_clip is not None:
        assert np.isclose(np.abs(expected).max(), proj_clip)
    layer = LSTMWithProjection(D, H, projection_size, cell_clip, proj_clip)
    load_tf_weights(layer, kernel, bias, projection)
    outputs, (h, c) = layer(torch.from_numpy(inputs), state=(torch.from_numpy(h0), torch.from_numpy(c0)))
    np.testing.assert_allclose(outputs.detach().numpy(), expected, atol=2e-6)
    np.testing.assert_allclose(h.detach().numpy(), m_last, atol=2e-6)
    np.testing.assert_allclose(c.detach().numpy(), c_last, atol=2e-6)


def test_tf_layout_round_trip():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(9, 16)).astype(np.float32)
    bias = rng.normal(size=16).astype(np.float32)
    back_kernel, back_bias = lstm_to_tf(*lstm_from_tf(kernel, bias, 5))
    np.testing.assert_array_equal(back_kernel, kernel)
    np.testing.assert_allclose(back_bias, bias, atol=1e-7)


def test_without_clipping_equals_pytorch_lstm_with_projection():
    torch.manual_seed(0)
    layer = LSTMWithProjection(6, 10, 4)
    reference = torch.nn.LSTM(6, 10, proj_size=4, batch_first=True)
    with torch.no_grad():
        reference.weight_ih_l0.copy_(layer.weight_ih)
        reference.weight_hh_l0.copy_(layer.weight_hh)
        reference.bias_ih_l0.copy_(layer.bias)
        reference.bias_hh_l0.zero_()
        reference.weight_hr_l0.copy_(layer.weight_hr)
    x = torch.randn(2, 9, 6)
    expected, (h_n, c_n) = reference(x)
    fused, _ = layer(x)                                         # PyTorch's kernel
    looped, (h2, c2) = layer(x, mask=torch.ones(2, 9, dtype=torch.bool))   # the step loop
    torch.testing.assert_close(fused, expected)
    torch.testing.assert_close(looped, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h2, h_n[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c2, c_n[0], atol=1e-6, rtol=1e-5)


def test_padding_carries_the_state_of_the_last_real_token():
    torch.manual_seed(0)
    layer = LSTMWithProjection(3, 5, 2, cell_clip=1.0, projection_clip=1.0)
    x = torch.randn(2, 6, 3)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    outputs, (h, c) = layer(x, mask)
    alone, (h_alone, c_alone) = layer(x[1:, :3])
    torch.testing.assert_close(outputs[1, :3], alone[0])
    assert torch.all(outputs[1, 3:] == 0)
    torch.testing.assert_close(h[1], h_alone[0])
    torch.testing.assert_close(c[1], c_alone[0])


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    layer = LSTMWithProjection(3, 4, 2, cell_clip=5.0, projection_clip=5.0).double()
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda inp: layer(inp, mask)[0], (x,))


def test_reverse_padded_reverses_within_each_length():
    x = torch.arange(10.0).reshape(2, 5, 1)
    out = reverse_padded(x, torch.tensor([5, 3]))
    assert out[..., 0].tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    torch.testing.assert_close(reverse_padded(out, torch.tensor([5, 3])), x)


def test_stack_residual_connections_from_the_second_layer():
    torch.manual_seed(0)
    stack = LSTMStack(3, 4, 6, 4, residual=True)
    x = torch.randn(2, 5, 4)
    outputs, (h, c) = stack(x)
    y0, _ = stack.layers[0](x)
    y1, _ = stack.layers[1](y0)
    y2, _ = stack.layers[2](y0 + y1)
    torch.testing.assert_close(outputs[0], y0)                  # no skip from the input
    torch.testing.assert_close(outputs[1], y0 + y1)
    torch.testing.assert_close(outputs[2], y0 + y1 + y2)
    assert h.shape == (3, 2, 4) and c.shape == (3, 2, 6)


def test_bidirectional_stack_backward_half_reads_right_to_left():
    torch.manual_seed(0)
    bilm = BidirectionalLMStack(2, 3, 5, 3, cell_clip=2.0, projection_clip=2.0)
    x = torch.randn(2, 6, 3)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2], dtype=torch.bool)
    forward, backward, (h, c) = bilm(x, mask)
    # row 1 alone, reversed by hand, through the backward stack
    expected, _ = bilm.backward_stack(x[1:, :4].flip(1))
    torch.testing.assert_close(backward[-1][1, :4], expected[-1][0].flip(0))
    assert torch.all(backward[-1][1, 4:] == 0)
    # the forward half of a position never sees later tokens
    x2 = x.clone()
    x2[:, 3:] = torch.randn(2, 3, 3)
    forward2, backward2, _ = bilm(x2, mask)
    torch.testing.assert_close(forward2[-1][:, :3], forward[-1][:, :3])
    assert not torch.allclose(backward2[-1][0, :3], backward[-1][0, :3])
    assert h.shape == (2, 2, 2, 3) and c.shape == (2, 2, 2, 5)


def test_bad_sizes_are_named():
    with pytest.raises(Word2BertError, match="projection_size"):
        LSTMWithProjection(3, 4, 8)
    with pytest.raises(Word2BertError, match="cell_clip"):
        LSTMWithProjection(3, 4, cell_clip=0)
    with pytest.raises(Word2BertError, match="input must be"):
        LSTMWithProjection(3, 4)(torch.zeros(2, 5, 7))
