"""Padding-free ("packed") forward passes of Transformer encoder and decoder layers, for training.

A batch of B sequences padded to length T holds N <= B * T real tokens (length-grouped translation
batches of ~4,000 positions are ~15% padding). Everything in a layer except attention works token by
token — the projections, the feed-forward network, dropout, the residual sums and LayerNorm — so it
runs here on the (N, d) matrix of the real tokens only; attention alone regroups them into a padded
(B, T) layout (padding rows zero, masked as keys) and gathers the real rows back::

    x (N, d) -> [Q;K;V] = x W_qkv + b (N, 3d) -> scatter to Q, K, V, each (h, B, T, d_h) -> attention -> gather (N, d) -> W_o ...

The scatter and the gather change the layout too: attention runs *head-major*, (h, B, T, d_h) with the
mask's batch axis moved to the second place, so that each of Q, K, V is one contiguous block whose
(h, B) axes merge into the batch of one matrix product. Batch-major (B, h, T, d_h) slices of a (B, T,
3, h, d_h) tensor cannot merge, and every product copied them first (forward and backward), as did the
gradient's way back to (B, T, 3d): one step of the Marian-size model spent ~65 ms in those copies.
Q, K and V are scattered into blocks of their own (:meth:`Packing.unpack_parts`), so that each one's
gradient is gathered straight into its columns of the (N, 3d) gradient: as three views of one
tensor, autograd stacked their gradients first (a copy of all three, ~12 ms a step).

The values are those of the padded layers (:class:`~word2bert.nn.TransformerLayer`,
:class:`~word2bert.nn.decoder.TransformerDecoderLayer`: the functions below take those modules and
use their weights) at every real position, up to float rounding; padding positions are simply not
computed. The layers' own dropout modules are used (:class:`~word2bert.nn.dropout.Dropout`).
"""

from __future__ import annotations

import torch

from word2bert.nn.attention import attend


class Packing:
    """Where the N real tokens of a (B, T) batch sit: ``index`` (N,) into the B * T flattened positions
    (row-major, so packed rows come in the order of ``tensor[keep]``); ``padding`` the other positions."""

    def __init__(self, keep: torch.Tensor):
        self.batch, self.length = keep.shape
        flat = keep.reshape(-1)
        self.index = flat.nonzero().squeeze(1)
        self.padding = (~flat).nonzero().squeeze(1)

    def pack(self, padded: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) -> (N, ...): the real rows."""
        return padded.reshape(self.batch * self.length, *padded.shape[2:]).index_select(0, self.index)

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (B, T, ...), zeros at the padding positions."""
        padded = packed.new_zeros(self.batch * self.length, *packed.shape[1:])
        padded.index_copy_(0, self.index, packed)  # in place: the zeros are not copied once more
        return padded.view(self.batch, self.length, *packed.shape[1:])

    def unpack_heads(self, rows: torch.Tensor, groups: int) -> torch.Tensor:
        """(N, groups * d_h) -> (groups, B, T, d_h): ``out[g, b, t] = rows[n, g * d_h:(g + 1) * d_h]`` where
        packed row n sits at (b, t); zeros at the padding positions."""
        return _UnpackHeads.apply(rows, self, 1, groups)[0]

    def unpack_parts(self, rows: torch.Tensor, parts: int, heads: int) -> tuple[torch.Tensor, ...]:
        """(N, parts * heads * d_h) -> ``parts`` tensors (heads, B, T, d_h), part p holding the columns
        ``[p * heads * d_h, (p + 1) * heads * d_h)`` unpacked as :meth:`unpack_heads` does: Q, K and V
        of a fused projection, each its own block, so that their gradients come back into the (N, 3d)
        rows directly (three views of one tensor would be stacked by autograd first, a copy of all three)."""
        return _UnpackHeads.apply(rows, self, parts, heads)

    def pack_heads(self, heads: torch.Tensor) -> torch.Tensor:
        """(groups, B, T, d_h) -> (N, groups * d_h), the inverse of :meth:`unpack_heads` at the real positions."""
        return _PackHeads.apply(heads, self)


def _scatter_heads(rows: torch.Tensor, packing: Packing, groups: int) -> torch.Tensor:
    """(N, groups * d_h) -> (groups, B * T, d_h), rows scattered to their positions, zeros at the padding:
    one pass writing the real rows, one writing the padding rows (not a zero fill of everything first)."""
    head_size = rows.shape[1] // groups
    out = rows.new_empty(groups, packing.batch * packing.length, head_size)
    by_position = out.permute(1, 0, 2)  # (B * T, groups, d_h) view of the head-major buffer
    by_position.index_copy_(0, packing.index, rows.view(-1, groups, head_size))
    if packing.padding.numel():
        by_position.index_fill_(0, packing.padding, 0.0)
    return out


def _gather_heads(heads: torch.Tensor, packing: Packing, out: torch.Tensor | None = None) -> torch.Tensor:
    """(groups, B, T, d_h) -> (N, groups * d_h): the real positions' rows, one pass; with ``out`` (an
    (N, groups, d_h) view, e.g. one part's columns of a larger gradient) written there instead."""
    groups, head_size = heads.shape[0], heads.shape[-1]
    by_position = heads.reshape(groups, -1, head_size).permute(1, 0, 2)
    if out is not None:
        return torch.index_select(by_position, 0, packing.index, out=out)
    return by_position.index_select(0, packing.index).view(-1, groups * head_size)


class _UnpackHeads(torch.autograd.Function):
    """:meth:`Packing.unpack_parts`; the gradient of each part is the gather of its real positions, written
    into that part's columns of the rows' gradient (zeros for a part that received none)."""

    @staticmethod
    def forward(ctx, rows, packing, parts, heads):
        width = rows.shape[1] // parts
        ctx.packing, ctx.parts, ctx.heads, ctx.head_size = packing, parts, heads, width // heads
        ctx.set_materialize_grads(False)  # an unused part's gradient stays None: zeros, not a gather of zeros
        return tuple(_scatter_heads(rows[:, p * width:(p + 1) * width], packing, heads)
                     .view(heads, packing.batch, packing.length, -1) for p in range(parts))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        count = ctx.packing.index.numel()
        like = next((grad for grad in grads if grad is not None), None)
        if like is None:  # no part received a gradient (autograd's and gradcheck's undefined-gradient case)
            return None, None, None, None
        grad_rows = like.new_empty(count, ctx.parts, ctx.heads, ctx.head_size)
        for p, grad in enumerate(grads):
            if grad is None:
                grad_rows[:, p].zero_()
            else:
                _gather_heads(grad, ctx.packing, out=grad_rows[:, p])
        return grad_rows.view(count, -1), None, None, None


class _PackHeads(torch.autograd.Function):
    """:meth:`Packing.pack_heads`; its gradient is the scatter back, zeros at the padding."""

    @staticmethod
    def forward(ctx, heads, packing):
        ctx.packing, ctx.groups = packing, heads.shape[0]
        return _gather_heads(heads, packing)

    @staticmethod
    def backward(ctx, grad):
        packing = ctx.packing
        return _scatter_heads(grad, packing, ctx.groups).view(ctx.groups, packing.batch, packing.length, -1), None


def _head_major(mask: torch.Tensor | None) -> torch.Tensor | None:
    """An SDPA mask broadcastable to (B, h, T, S) -> the same mask for the head-major (h, B, T, S)."""
    return None if mask is None else mask.transpose(0, 1)


def packed_self_attention(attention, hidden, packing: Packing, mask, causal: bool):
    """Self-attention of the packed tokens ``hidden`` (N, d) of a (B, T) batch: one fused QKV product on
    the real rows, attention head-major in (h, B, T, d_h) under ``mask`` (SDPA-ready, keys' padding
    masked) or causally."""
    heads = attention.num_heads
    query, key, value = packing.unpack_parts(attention.qkv_proj(hidden), 3, heads)
    context = attend(query, key, value, _head_major(mask), causal=causal and mask is None,
                     dropout_p=attention.attention_dropout if attention.training else 0.0)
    return attention.out_proj(packing.pack_heads(context))


def packed_cross_attention(attention, hidden, packing: Packing, memory, memory_packing: Packing, memory_mask):
    """Cross-attention of the packed target tokens ``hidden`` (N_t, d) to the packed memory (N_s, d_m),
    head-major as :func:`packed_self_attention`."""
    heads = attention.num_heads
    query = packing.unpack_heads(attention.query_proj(hidden), heads)
    key, value = memory_packing.unpack_parts(attention.kv_proj(memory), 2, heads)
    context = attend(query, key, value, _head_major(memory_mask),
                     dropout_p=attention.attention_dropout if attention.training else 0.0)
    return attention.out_proj(packing.pack_heads(context))


def packed_encoder_layer(layer, hidden, packing: Packing, mask) -> torch.Tensor:
    """:class:`~word2bert.nn.TransformerLayer`'s forward (post- or pre-LN) on packed tokens (N, d)."""
    if layer.pre_layer_norm:
        attended = packed_self_attention(layer.attention, layer.attention_norm(hidden), packing, mask, False)
        hidden = layer.dropout.add(hidden, attended)
        return layer.dropout.add(hidden, layer.feed_forward(layer.feed_forward_norm(hidden)))
    attended = packed_self_attention(layer.attention, hidden, packing, mask, False)
    hidden = layer.attention_norm(layer.dropout.add(hidden, attended))
    return layer.feed_forward_norm(layer.dropout.add(hidden, layer.feed_forward(hidden)))


def packed_decoder_layer(layer, hidden, packing: Packing, memory, memory_packing: Packing,
                         memory_mask) -> torch.Tensor:
    """:class:`~word2bert.nn.decoder.TransformerDecoderLayer`'s forward on packed target tokens (N_t, d),
    causal self-attention (the packed rows of each sequence must be a prefix of it: right padding)."""
    if layer.pre_layer_norm:
        attended = packed_self_attention(layer.self_attention, layer.self_attention_norm(hidden), packing, None,
                                         True)
        hidden = layer.dropout.add(hidden, attended)
        attended = packed_cross_attention(layer.cross_attention, layer.cross_attention_norm(hidden), packing,
                                          memory, memory_packing, memory_mask)
        hidden = layer.dropout.add(hidden, attended)
        return layer.dropout.add(hidden, layer.feed_forward(layer.feed_forward_norm(hidden)))
    attended = packed_self_attention(layer.self_attention, hidden, packing, None, True)
    hidden = layer.self_attention_norm(layer.dropout.add(hidden, attended))
    attended = packed_cross_attention(layer.cross_attention, hidden, packing, memory, memory_packing, memory_mask)
    hidden = layer.cross_attention_norm(layer.dropout.add(hidden, attended))
    return layer.feed_forward_norm(layer.dropout.add(hidden, layer.feed_forward(hidden)))


__all__ = ["Packing", "packed_cross_attention", "packed_decoder_layer", "packed_encoder_layer",
           "packed_self_attention"]
