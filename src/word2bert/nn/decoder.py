"""The Transformer decoder (Vaswani et al. 2017, section 3.1): masked self-attention over the target
prefix, attention over the encoder output ("memory"), feed-forward; each sub-layer with residual +
LayerNorm, post-LN (the paper) or pre-LN.

:class:`TransformerDecoder` is the stack the encoder-decoder models use (the Transformer, MASS's
decoder). It decodes a whole target at once for training (``causal=True``: position i sees target
positions <= i) or a few tokens at a time with a :class:`~word2bert.nn.cache.KeyValueCache`: each
call appends its tokens' self-attention keys/values, and the memory's keys/values are projected at
the first call only, so later calls may pass ``memory=None``.
"""

from __future__ import annotations

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.nn.attention import (
    MultiHeadCrossAttention,
    MultiHeadSelfAttention,
    build_attention_mask,
    build_memory_mask,
)
from word2bert.nn.cache import KeyValueCache, LayerCache
from word2bert.nn.dropout import Dropout
from word2bert.nn.transformer import FeedForward


class TransformerDecoderLayer(nn.Module):
    """One decoder layer: self-attention, cross-attention to the memory, feed-forward.

    Post-LN (the paper)::

        h   = LayerNorm(x + Dropout(SelfAttention(x)))
        c   = LayerNorm(h + Dropout(CrossAttention(h, memory)))
        out = LayerNorm(c + Dropout(FFN(c)))

    Pre-LN (``pre_layer_norm=True``)::

        h   = x + Dropout(SelfAttention(LayerNorm(x)))
        c   = h + Dropout(CrossAttention(LayerNorm(h), memory))
        out = c + Dropout(FFN(LayerNorm(c)))

    ``memory_size`` is the width of the memory when it differs from ``hidden_size``. The defaults are
    those of :class:`~word2bert.nn.TransformerLayer` (BERT's); the paper's model uses ReLU.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        activation: str = "gelu",
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        layer_norm_eps: float = 1e-12,
        pre_layer_norm: bool = False,
        memory_size: int | None = None,
        activation_dropout: float = 0.0,
    ):
        super().__init__()
        self.pre_layer_norm = pre_layer_norm
        self.self_attention = MultiHeadSelfAttention(hidden_size, num_heads, attention_dropout)
        self.self_attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.cross_attention = MultiHeadCrossAttention(hidden_size, num_heads, attention_dropout, memory_size=memory_size)
        self.cross_attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.feed_forward = FeedForward(hidden_size, intermediate_size, activation, activation_dropout)
        self.feed_forward_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = Dropout(hidden_dropout)

    def forward(
        self,
        hidden: torch.Tensor,
        memory: torch.Tensor | None,
        attention_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        causal: bool = True,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """(B, T, d) -> (B, T, d). Masks are SDPA-ready (:func:`~word2bert.nn.attention.build_attention_mask`,
        :func:`~word2bert.nn.attention.build_memory_mask`); ``cache`` is this depth's
        :class:`~word2bert.nn.cache.LayerCache`."""
        self_cache = None if cache is None else cache.self_attention
        cross_cache = None if cache is None else cache.cross_attention
        if self.pre_layer_norm:
            attended = self.self_attention(self.self_attention_norm(hidden), attention_mask, causal, None, self_cache)
            hidden = self.dropout.add(hidden, attended)
            attended = self.cross_attention(self.cross_attention_norm(hidden), memory, memory_mask, cross_cache)
            hidden = self.dropout.add(hidden, attended)
            return self.dropout.add(hidden, self.feed_forward(self.feed_forward_norm(hidden)))
        attended = self.self_attention(hidden, attention_mask, causal, None, self_cache)
        hidden = self.self_attention_norm(self.dropout.add(hidden, attended))
        attended = self.cross_attention(hidden, memory, memory_mask, cross_cache)
        hidden = self.cross_attention_norm(self.dropout.add(hidden, attended))
        return self.feed_forward_norm(self.dropout.add(hidden, self.feed_forward(hidden)))


class TransformerDecoder(nn.Module):
    """A stack of :class:`TransformerDecoderLayer`; pre-LN stacks end with one more LayerNorm.

    ``forward`` returns ``(last_hidden, all_hidden)`` like :class:`~word2bert.nn.TransformerEncoder`;
    ``all_hidden`` = (input, layer_1, ..., layer_L) when ``output_hidden_states``. The cache, when
    given, is updated in place (the model returns it as its ``state``).
    """

    def __init__(
        self,
        num_layers: int,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        activation: str = "gelu",
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        layer_norm_eps: float = 1e-12,
        pre_layer_norm: bool = False,
        memory_size: int | None = None,
        activation_dropout: float = 0.0,
    ):
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise Word2BertError(f"decoder num_layers={num_layers!r} must be a positive integer")
        self.pre_layer_norm = pre_layer_norm
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(
                hidden_size,
                num_heads,
                intermediate_size,
                activation,
                hidden_dropout,
                attention_dropout,
                layer_norm_eps,
                pre_layer_norm,
                memory_size,
                activation_dropout,
            )
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps) if pre_layer_norm else None

    def forward(
        self,
        hidden: torch.Tensor,
        memory: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        causal: bool = True,
        cache: KeyValueCache | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Decode the target embeddings ``hidden`` (B, T, d) against ``memory`` (B, S, d_m).

        - ``attention_mask``: the target's raw mask, as for the encoder: a (B, T) padding mask (with a
          cache: of the new tokens or of all positions), or a boolean (B, T, past + T) mask.
        - ``memory_mask``: (B, S) padding mask of the memory (1 = real), or a boolean (B, T, S) mask.
          With a cache, a (B, S) mask is remembered at the first call (and reordered with the cache).
        - ``causal``: target position i sees target positions <= i (with a cache: <= past + i).
        - ``cache``: a :class:`~word2bert.nn.cache.KeyValueCache`; ``memory`` may be None once the
          cache holds the memory's keys/values.
        """
        batch, seq_len = hidden.shape[:2]
        past = 0
        if cache is not None:
            attention_mask, past = cache.extend_attention_mask(attention_mask, seq_len, batch)
            if cache.has_memory:
                memory_len = cache.layers[0].cross_attention.length
                if memory_mask is None:
                    memory_mask = cache.memory_padding_mask
            else:
                if memory is None:
                    raise Word2BertError("the decoder needs the memory (encoder output) at its first call")
                if memory_mask is not None and memory_mask.dim() == 2:
                    cache.memory_padding_mask = memory_mask.bool()
        if memory is not None:
            if memory.dim() != 3 or memory.shape[0] != batch:
                raise Word2BertError(
                    f"memory must be (batch={batch}, length, size), got shape {tuple(memory.shape)}"
                )
            memory_len = memory.shape[1]
        elif cache is None:
            raise Word2BertError("the decoder needs the memory (encoder output)")
        self_mask = build_attention_mask(attention_mask, seq_len, causal, past)
        cross_mask = build_memory_mask(memory_mask, memory_len)
        all_hidden = [hidden] if output_hidden_states else None
        last = len(self.layers) - 1
        for depth, layer in enumerate(self.layers):
            layer_cache = None if cache is None else cache.layer(depth)
            hidden = layer(hidden, memory, self_mask, cross_mask, causal, layer_cache)
            if self.final_norm is not None and depth == last:
                hidden = self.final_norm(hidden)
            if all_hidden is not None:
                all_hidden.append(hidden)
        return hidden, (tuple(all_hidden) if all_hidden is not None else None)


__all__ = ["TransformerDecoder", "TransformerDecoderLayer"]
