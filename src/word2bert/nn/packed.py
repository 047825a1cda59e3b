"""Padding-free ("packed") forward passes of Transformer encoder and decoder layers, for training.

A batch of B sequences padded to length T holds N <= B * T real tokens (length-grouped translation
batches of ~4,000 positions are ~15% padding). Everything in a layer except attention works token by
token — the projections, the feed-forward network, dropout, the residual sums and LayerNorm — so it
runs here on the (N, d) matrix of the real tokens only; attention alone regroups them into the
(B, T) layout SDPA needs (padding rows zero, masked as keys) and gathers the real rows back::

    x (N, d) -> [Q;K;V] = x W_qkv + b (N, 3d) -> scatter to (B, T, 3d) -> SDPA -> gather (N, d) -> W_o ...

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
    (row-major, so packed rows come in the order of ``tensor[keep]``)."""

    def __init__(self, keep: torch.Tensor):
        self.batch, self.length = keep.shape
        self.index = keep.reshape(-1).nonzero().squeeze(1)

    @property
    def count(self) -> int:
        return self.index.numel()

    def pack(self, padded: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) -> (N, ...): the real rows."""
        return padded.reshape(self.batch * self.length, *padded.shape[2:]).index_select(0, self.index)

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (B, T, ...), zeros at the padding positions."""
        padded = packed.new_zeros(self.batch * self.length, *packed.shape[1:])
        padded.index_copy_(0, self.index, packed)  # in place: the zeros are not copied once more
        return padded.view(self.batch, self.length, *packed.shape[1:])


def packed_self_attention(attention, hidden, packing: Packing, mask, causal: bool):
    """Self-attention of the packed tokens ``hidden`` (N, d) of a (B, T) batch: one fused QKV product on
    the real rows, SDPA in (B, H, T, d_h) under ``mask`` (SDPA-ready, keys' padding masked) or causally."""
    heads, head_size = attention.num_heads, attention.head_size
    qkv = packing.unpack(attention.qkv_proj(hidden)).view(packing.batch, packing.length, 3, heads, head_size)
    query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    context = attend(query, key, value, mask, causal=causal and mask is None,
                     dropout_p=attention.attention_dropout if attention.training else 0.0)
    return attention.out_proj(packing.pack(context.transpose(1, 2)).reshape(-1, attention.hidden_size))


def packed_cross_attention(attention, hidden, packing: Packing, memory, memory_packing: Packing, memory_mask):
    """Cross-attention of the packed target tokens ``hidden`` (N_t, d) to the packed memory (N_s, d_m)."""
    heads, head_size = attention.num_heads, attention.head_size
    query = packing.unpack(attention.query_proj(hidden)).view(packing.batch, packing.length, heads, head_size)
    kv = memory_packing.unpack(attention.kv_proj(memory))
    kv = kv.view(memory_packing.batch, memory_packing.length, 2, heads, head_size)
    key, value = kv.permute(2, 0, 3, 1, 4).unbind(0)
    context = attend(query.transpose(1, 2), key, value, memory_mask,
                     dropout_p=attention.attention_dropout if attention.training else 0.0)
    return attention.out_proj(packing.pack(context.transpose(1, 2)).reshape(-1, attention.hidden_size))


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
