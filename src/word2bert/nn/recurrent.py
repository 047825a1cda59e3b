"""Recurrent blocks: LSTMs for ELMo, CoVe and ULMFiT.

The projection LSTM (Sak et al. 2014, "Long Short-Term Memory Based Recurrent Neural Network
Architectures for Large Vocabulary Speech Recognition"), with TensorFlow's cell and projection
clipping as bilm-tf uses it, and the stack of ELMo's bidirectional language model: a forward and
a backward stack that never see each other's hidden states, residual connections from the second
layer up.

Padding convention: ``mask`` (B, T) is True at real tokens, which come first in every row. At a
padded step the state is carried unchanged and the output is zero, so the final state of a row
is its state after its last real token (what TensorFlow's ``dynamic_rnn(sequence_length=...)``
returns, and what a stateful model carries to the next batch).

Dropout for recurrent networks (AWD-LSTM, Merity et al. 2018; used by ULMFiT, ``models/awd_lstm.py``):

* :class:`LockedDropout` -- variational dropout (Gal & Ghahramani 2016): one Bernoulli mask per
  sequence and feature, shared by every time step.
* :class:`EmbeddingDropout` -- drops whole words: row ``v`` of the embedding matrix is zeroed with
  probability ``p`` for the whole batch, the kept rows scaled by ``1 / (1 - p)``.
* :class:`WeightDropLSTM` -- an LSTM layer with DropConnect (Wan et al. 2013) on its
  hidden-to-hidden matrix: one mask per forward call (per batch), the same at every time step,
  a new one at the next call.

Masks scale the kept units by ``1 / (1 - p)`` so that nothing changes at evaluation time. They are
:func:`word2bert.nn.dropout.dropout_mask`'s (16-bit draws from numpy's PCG64, p rounded to a multiple of
2^-16; ``set_mask_source("torch")`` draws them with ``bernoulli_`` instead).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.nn.dropout import dropout_mask

LSTMState = tuple[torch.Tensor, torch.Tensor]


def reverse_padded(inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` steps of every row ``b`` of ``inputs`` (B, T, ...); padding stays put.

    ``out[b, t] = inputs[b, lengths[b] - 1 - t]`` for ``t < lengths[b]``, else ``inputs[b, t]``
    (TensorFlow's ``reverse_sequence``). It is its own inverse.
    """
    steps = torch.arange(inputs.shape[1], device=inputs.device)
    lengths = lengths.to(inputs.device).unsqueeze(1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (B, T)
    index = index.reshape(*index.shape, *([1] * (inputs.dim() - 2))).expand_as(inputs)
    return inputs.gather(1, index)


class LSTMWithProjection(nn.Module):
    """One LSTM layer with an optional output projection and optional clipping.

    With gates in PyTorch's order (input i, forget f, cell g, output o)::

        [i, f, g, o] = W_ih x_t + b + W_hh h_{t-1}
        c_t = clip(sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g), cell_clip)
        h_t = clip(W_hr (sigmoid(o) * tanh(c_t)), projection_clip)

    ``W_hr`` (projection_size x hidden_size) exists only with a projection; without one
    ``h_t = sigmoid(o) * tanh(c_t)``. This is TensorFlow's ``LSTMCell(num_proj, cell_clip,
    proj_clip)`` (bilm-tf) with its ``forget_bias`` folded into ``b``, and PyTorch's
    ``nn.LSTM(proj_size=...)`` when nothing is clipped (then that fused kernel runs it).
    The state is ``(h, c)`` of shapes (B, projection_size or hidden_size) and (B, hidden_size).
    """

    def __init__(self, input_size: int, hidden_size: int, projection_size: int | None = None,
                 cell_clip: float | None = None, projection_clip: float | None = None):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if value < 1:
                raise Word2BertError(f"parameter {name}={value} must be >= 1")
        if projection_size is not None and not 0 < projection_size < hidden_size:
            raise Word2BertError(f"parameter projection_size={projection_size} must be in [1, hidden_size="
                                 f"{hidden_size}) (None: no projection)")
        for name, value in (("cell_clip", cell_clip), ("projection_clip", projection_clip)):
            if value is not None and not value > 0:
                raise Word2BertError(f"parameter {name}={value} must be > 0 (None: no clipping)")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.projection_size = projection_size
        self.output_size = projection_size or hidden_size
        self.cell_clip = cell_clip
        self.projection_clip = projection_clip
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, self.output_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        if projection_size is not None:
            self.weight_hr = nn.Parameter(torch.empty(projection_size, hidden_size))
        else:
            self.register_parameter("weight_hr", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform matrices (TensorFlow's default for LSTMCell), zero bias but 1 on the forget gate."""
        nn.init.xavier_uniform_(self.weight_ih)
        nn.init.xavier_uniform_(self.weight_hh)
        if self.weight_hr is not None:
            nn.init.xavier_uniform_(self.weight_hr)
        with torch.no_grad():
            self.bias.zero_()
            self.bias[self.hidden_size:2 * self.hidden_size] = 1.0

    def zero_state(self, batch_size: int, device=None, dtype=None) -> LSTMState:
        device = device or self.weight_ih.device
        dtype = dtype or self.weight_ih.dtype
        return (torch.zeros(batch_size, self.output_size, device=device, dtype=dtype),
                torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype))

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None,
                state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        """Run over ``inputs`` (B, T, input_size); return outputs (B, T, output_size) and the final ``(h, c)``."""
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise Word2BertError(f"LSTM input must be (batch, time, {self.input_size}), got {tuple(inputs.shape)}")
        batch, steps = inputs.shape[:2]
        h, c = state if state is not None else self.zero_state(batch, inputs.device, inputs.dtype)
        if self.cell_clip is None and self.projection_clip is None and mask is None:
            return self._fused(inputs, h, c)
        input_gates = F.linear(inputs, self.weight_ih, self.bias)  # all steps at once: (B, T, 4H)
        weight_hh_t = self.weight_hh.t()
        weight_hr_t = self.weight_hr.t() if self.weight_hr is not None else None
        H = self.hidden_size
        outputs = []
        for t in range(steps):
            gates = torch.addmm(input_gates[:, t], h, weight_hh_t)
            sig = torch.sigmoid(gates)
            c_new = sig[:, H:2 * H] * c + sig[:, :H] * torch.tanh(gates[:, 2 * H:3 * H])
            if self.cell_clip is not None:
                c_new = c_new.clamp(-self.cell_clip, self.cell_clip)
            h_new = sig[:, 3 * H:] * torch.tanh(c_new)
            if weight_hr_t is not None:
                h_new = h_new @ weight_hr_t
            if self.projection_clip is not None:
                h_new = h_new.clamp(-self.projection_clip, self.projection_clip)
            if mask is not None:
                keep = mask[:, t].unsqueeze(1)
                c = torch.where(keep, c_new, c)
                h = torch.where(keep, h_new, h)
                outputs.append(h_new * keep)
            else:
                c, h = c_new, h_new
                outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)

    def _fused(self, inputs, h, c):
        """No clipping and no padding: PyTorch's LSTM kernel (``nn.LSTM`` with ``proj_size``)."""
        weights = [self.weight_ih, self.weight_hh, self.bias, torch.zeros_like(self.bias)]
        if self.weight_hr is not None:
            weights.append(self.weight_hr)
        with warnings.catch_warnings():  # "LSTM with projections is not supported with oneDNN": it falls back
            warnings.filterwarnings("ignore", message="LSTM with projections")
            outputs, h_n, c_n = torch.lstm(inputs, (h.unsqueeze(0), c.unsqueeze(0)), weights, True, 1, 0.0,
                                           self.training, False, True)
        return outputs, (h_n.squeeze(0), c_n.squeeze(0))

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, projection_size={self.projection_size}, "
                f"cell_clip={self.cell_clip}, projection_clip={self.projection_clip}")


class LSTMStack(nn.Module):
    """Layers of :class:`LSTMWithProjection` in one direction, with optional residual connections.

    ``x_0`` is the input; layer ``l`` computes ``y_l = LSTM_l(d_l)`` with ``d_l = dropout(x_{l-1})`` and
    passes on ``x_l = y_l + d_l`` when ``residual`` and ``l >= 2`` (bilm-tf's ``use_skip_connections``:
    never from the token embedding to the first layer), else ``x_l = y_l``. ``dropout`` is applied
    to every layer's input while training (bilm-tf's ``DropoutWrapper(input_keep_prob)``).
    The state is ``(h, c)`` stacked over layers: (L, B, output_size) and (L, B, hidden_size).
    """

    def __init__(self, num_layers: int, input_size: int, hidden_size: int, projection_size: int | None = None,
                 cell_clip: float | None = None, projection_clip: float | None = None,
                 residual: bool = False, dropout: float = 0.0):
        super().__init__()
        if num_layers < 1:
            raise Word2BertError(f"parameter num_layers={num_layers} must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise Word2BertError(f"parameter dropout={dropout} must be in [0, 1)")
        output_size = projection_size or hidden_size
        self.layers = nn.ModuleList(
            LSTMWithProjection(input_size if i == 0 else output_size, hidden_size, projection_size,
                               cell_clip, projection_clip)
            for i in range(num_layers))
        self.residual = residual
        self.dropout = nn.Dropout(dropout)
        self.output_size = output_size
        self.hidden_size = hidden_size

    def zero_state(self, batch_size: int, device=None, dtype=None) -> LSTMState:
        h, c = self.layers[0].zero_state(batch_size, device, dtype)
        return (h.unsqueeze(0).repeat(len(self.layers), 1, 1), c.unsqueeze(0).repeat(len(self.layers), 1, 1))

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None,
                state: LSTMState | None = None) -> tuple[list[torch.Tensor], LSTMState]:
        """Return every layer's output (a list of L tensors (B, T, output_size)) and the final state."""
        hs, cs, outputs = [], [], []
        x = inputs
        for i, layer in enumerate(self.layers):
            layer_state = (state[0][i], state[1][i]) if state is not None else None
            dropped = self.dropout(x)
            y, (h, c) = layer(dropped, mask, layer_state)
            if self.residual and i > 0:  # bilm-tf: DropoutWrapper(ResidualWrapper(cell)) adds the dropped input
                y = y + dropped
            outputs.append(y)
            hs.append(h)
            cs.append(c)
            x = y
        return outputs, (torch.stack(hs), torch.stack(cs))


class BidirectionalLMStack(nn.Module):
    """ELMo's biLM body: a forward :class:`LSTMStack` and a separate backward one.

    The forward stack reads ``x_1 .. x_n``; the backward stack reads ``x_n .. x_1`` (each row reversed
    within its length) and its outputs are turned back into forward order, so position ``t`` of
    both halves describes token ``t``. Training on a token stream, the backward stack may read a
    different window (``backward_inputs``: the window its state continues from, in forward order).
    The state is ``(h, c)`` of shapes (2, L, B, output_size) and (2, L, B, hidden_size), direction
    0 forward and 1 backward.
    """

    def __init__(self, num_layers: int, input_size: int, hidden_size: int, projection_size: int | None = None,
                 cell_clip: float | None = None, projection_clip: float | None = None,
                 residual: bool = False, dropout: float = 0.0):
        super().__init__()
        arguments = (num_layers, input_size, hidden_size, projection_size, cell_clip, projection_clip, residual,
                     dropout)
        self.forward_stack = LSTMStack(*arguments)
        self.backward_stack = LSTMStack(*arguments)
        self.output_size = self.forward_stack.output_size

    def zero_state(self, batch_size: int, device=None, dtype=None) -> LSTMState:
        h, c = self.forward_stack.zero_state(batch_size, device, dtype)
        return torch.stack([h, h]), torch.stack([c, c])

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None, state: LSTMState | None = None,
                backward_inputs: torch.Tensor | None = None, backward_mask: torch.Tensor | None = None,
                ) -> tuple[list[torch.Tensor], list[torch.Tensor], LSTMState]:
        """Return (forward layer outputs, backward layer outputs in forward order, new state)."""
        if backward_inputs is None:
            backward_inputs, backward_mask = inputs, mask
        forward_state = (state[0][0], state[1][0]) if state is not None else None
        backward_state = (state[0][1], state[1][1]) if state is not None else None
        forward_outputs, (h_f, c_f) = self.forward_stack(inputs, mask, forward_state)
        if backward_mask is None:
            reversed_inputs = backward_inputs.flip(1)
            backward_outputs, (h_b, c_b) = self.backward_stack(reversed_inputs, None, backward_state)
            backward_outputs = [y.flip(1) for y in backward_outputs]
        else:
            lengths = backward_mask.sum(dim=1)
            reversed_inputs = reverse_padded(backward_inputs, lengths)
            backward_outputs, (h_b, c_b) = self.backward_stack(reversed_inputs, backward_mask, backward_state)
            backward_outputs = [reverse_padded(y, lengths) for y in backward_outputs]
        return forward_outputs, backward_outputs, (torch.stack([h_f, h_b]), torch.stack([c_f, c_b]))


# ----------------------------------------------------------------- AWD-LSTM regularisers
def _check_probability(name: str, p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise Word2BertError(f"parameter {name}={p!r} must be in [0, 1)")
    return float(p)


class LockedDropout(nn.Module):
    """Variational ("locked") dropout: ``y[b, t, :] = x[b, t, :] * m[b, :]`` with one mask ``m`` per
    sequence ``b`` for all time steps ``t`` (``x`` is (batch, time, features) if ``batch_first``)."""

    def __init__(self, p: float = 0.5, batch_first: bool = True):
        super().__init__()
        self.p = _check_probability("p", p)
        self.batch_first = batch_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.batch_first:
            mask = dropout_mask(x, self.p, (x.size(0), 1, *x.shape[2:]))
        else:
            mask = dropout_mask(x, self.p, (1, *x.shape[1:]))
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class EmbeddingDropout(nn.Module):
    """Word-level dropout on an embedding matrix ``E`` (V x d): ``e_t = m[w_t] E[w_t]`` with
    ``m[v] = 1 / (1 - p)`` with probability ``1 - p``, else 0, one draw per word type per batch.

    Same values and gradients as masking the whole matrix (``(m[:, None] * E)[w]``, Merity's
    ``embedded_dropout``), but only the looked-up rows are scaled.
    """

    def __init__(self, p: float = 0.1):
        super().__init__()
        self.p = _check_probability("p", p)

    def forward(self, input_ids: torch.Tensor, weight: torch.Tensor, padding_idx: int | None = None) -> torch.Tensor:
        embedded = F.embedding(input_ids, weight, padding_idx)
        if not self.training or self.p == 0.0:
            return embedded
        mask = dropout_mask(weight, self.p, (weight.size(0),))
        return embedded * mask[input_ids].unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class WeightDropLSTM(nn.Module):
    """One LSTM layer with DropConnect on the hidden-to-hidden matrix ``W_hh``::

        i, f, g, o = split(W_ih x_t + b_ih + (M * W_hh) h_{t-1} + b_hh)
        c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g),   h_t = sigmoid(o) tanh(c_t)

    ``M`` (entries ``1 / (1 - p)`` or 0) is drawn once per call in training and kept for all
    time steps; the mask of the latest call is ``weight_hh_mask``. Parameter names and gate
    order (i, f, g, o) are those of ``torch.nn.LSTM``; the whole sequence runs in PyTorch's
    fused LSTM kernel (oneDNN on CPU, cuDNN on GPU). Inputs are (batch, time, features), or
    (time, batch, features) with ``batch_first=False`` (which saves the kernel two transposing copies).
    """

    def __init__(self, input_size: int, hidden_size: int, weight_dropout: float = 0.0, batch_first: bool = True):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise Word2BertError(f"WeightDropLSTM sizes must be >= 1, got input_size={input_size}, "
                                 f"hidden_size={hidden_size}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_dropout = _check_probability("weight_dropout", weight_dropout)
        self.batch_first = batch_first
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        self.weight_hh_mask: torch.Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``torch.nn.LSTM``'s initialisation: every weight uniform in ``[-1/sqrt(H), 1/sqrt(H)]``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def dropped_weight_hh(self) -> torch.Tensor:
        """``M * W_hh`` with a new mask ``M`` in training, ``W_hh`` in evaluation."""
        if not self.training or self.weight_dropout == 0.0:
            self.weight_hh_mask = None
            return self.weight_hh_l0
        self.weight_hh_mask = dropout_mask(self.weight_hh_l0.detach(), self.weight_dropout)
        return self.weight_hh_l0 * self.weight_hh_mask

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """``x`` (batch, time, input_size) (time first without ``batch_first``), ``state`` ``(h, c)`` each
        (batch, hidden_size) or None (zeros). Returns ``(output, (h_T, c_T))``, the output laid out as ``x``.
        """
        if x.dim() != 3 or x.size(-1) != self.input_size:
            layout = "batch, time" if self.batch_first else "time, batch"
            raise Word2BertError(f"WeightDropLSTM expects ({layout}, {self.input_size}) inputs, "
                                 f"got {tuple(x.shape)}")
        batch = x.size(0 if self.batch_first else 1)
        if state is None:
            h0 = x.new_zeros(1, batch, self.hidden_size)
            c0 = x.new_zeros(1, batch, self.hidden_size)
        else:
            h0, c0 = state[0].unsqueeze(0), state[1].unsqueeze(0)
        weights = [self.weight_ih_l0, self.dropped_weight_hh(), self.bias_ih_l0, self.bias_hh_l0]
        output, h_n, c_n = torch.lstm(x, (h0, c0), weights, True, 1, 0.0, self.training, False, self.batch_first)
        return output, (h_n.squeeze(0), c_n.squeeze(0))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, weight_dropout={self.weight_dropout}, batch_first={self.batch_first}"
