"""Transformer encoder blocks: feed-forward, residual + LayerNorm (post-LN or pre-LN), one encoder stack.

:class:`TransformerEncoder` is the single stack every encoder model in word2bert uses (BERT and its
masking family, UniLM, the encoder half of MASS, ALBERT with shared layers, GPT run causally with a
key/value cache); what differs between those models is the mask passed in and the heads on top.
The decoder of an encoder-decoder (self + cross attention) is in :mod:`word2bert.nn.decoder`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.nn.attention import MultiHeadSelfAttention, build_attention_mask, gather_positions
from word2bert.nn.cache import KeyValueCache, KeyValues
from word2bert.nn.dropout import Dropout
from word2bert.nn.linear import Linear


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT, "gelu_new")."""
    return F.gelu(x, approximate="tanh")


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """Sigmoid approximation of GELU: x * sigmoid(1.702 x)."""
    return x * torch.sigmoid(1.702 * x)


#: Activation names as in Hugging Face configs. "gelu" is the exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "quick_gelu": quick_gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}


def get_activation(name: str):
    """Look up an activation function by its Hugging Face name; unknown names -> Word2BertError."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise Word2BertError(
            f"unknown hidden_act {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}"
        ) from None


class FeedForward(nn.Module):
    """Position-wise feed-forward network: FFN(x) = Dropout_act(act(x W_in + b_in)) W_out + b_out.

    ``dropout`` on the activations is fairseq's ``relu_dropout`` / Marian's ``activation_dropout``
    (0 by default: BERT and GPT have none)."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.dense_in = Linear(hidden_size, intermediate_size)
        self.dense_out = Linear(intermediate_size, hidden_size)
        self.activation = get_activation(activation)
        self.dropout = Dropout(dropout) if dropout > 0 else None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        inner = self.activation(self.dense_in(hidden))
        if self.dropout is not None:
            inner = self.dropout(inner)
        return self.dense_out(inner)


class TransformerLayer(nn.Module):
    """One encoder layer: self-attention and feed-forward sub-layers, each with residual + LayerNorm.

    Post-LN (BERT, the original Transformer)::

        h   = LayerNorm(x + Dropout(Attention(x)))
        out = LayerNorm(h + Dropout(FFN(h)))

    Pre-LN (``pre_layer_norm=True``, GPT-2 style; trains more stably without warm-up)::

        h   = x + Dropout(Attention(LayerNorm(x)))
        out = h + Dropout(FFN(LayerNorm(h)))
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
        activation_dropout: float = 0.0,
    ):
        super().__init__()
        self.pre_layer_norm = pre_layer_norm
        self.attention = MultiHeadSelfAttention(hidden_size, num_heads, attention_dropout)
        self.attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.feed_forward = FeedForward(hidden_size, intermediate_size, activation, activation_dropout)
        self.feed_forward_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = Dropout(hidden_dropout)

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        causal: bool = False,
        query_positions: torch.Tensor | None = None,
        cache: KeyValues | None = None,
    ) -> torch.Tensor:
        """(B, T, d) -> (B, T, d); with ``query_positions`` (B, Q) only those rows are computed -> (B, Q, d).

        ``cache``: this layer's self-attention :class:`~word2bert.nn.cache.KeyValues` (appended to)."""
        residual = hidden if query_positions is None else gather_positions(hidden, query_positions)
        if self.pre_layer_norm:
            attended = self.attention(self.attention_norm(hidden), attention_mask, causal, query_positions, cache)
            hidden = self.dropout.add(residual, attended)
            return self.dropout.add(hidden, self.feed_forward(self.feed_forward_norm(hidden)))
        attended = self.attention(hidden, attention_mask, causal, query_positions, cache)
        hidden = self.attention_norm(self.dropout.add(residual, attended))
        return self.feed_forward_norm(self.dropout.add(hidden, self.feed_forward(hidden)))


def depth_to_group(num_layers: int, num_layer_groups: int | None) -> list[int]:
    """Which weight group each depth uses: depth i -> floor(i / (L / G)) (ALBERT's ``num_hidden_groups``).

    ``num_layer_groups`` None or L: every depth has its own layer; 1: one layer applied L times."""
    groups = num_layers if num_layer_groups is None else num_layer_groups
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or num_layers % groups != 0:
        raise Word2BertError(
            f"num_layer_groups={num_layer_groups!r} must be a positive divisor of num_layers={num_layers}"
        )
    per_group = num_layers // groups
    return [depth // per_group for depth in range(num_layers)]


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerLayer`; pre-LN stacks end with one more LayerNorm.

    ``forward(hidden, attention_mask, causal, output_hidden_states)`` takes the *raw* mask (a (B,T)
    padding mask or a boolean (B,T,T)/(B,H,T,T) custom mask, see
    :func:`word2bert.nn.attention.build_attention_mask`) and returns ``(last_hidden, all_hidden)``
    where ``all_hidden`` is ``(input, layer_1, ..., layer_L)`` when asked for, else None. For a
    pre-LN stack the final LayerNorm is applied to ``layer_L`` in both.

    Cross-layer parameter sharing (ALBERT, Lan et al. 2020): with ``num_layer_groups=G`` the stack
    holds G layers and depth i applies layer ``floor(i / (L / G))``; G=1 applies one layer L times.
    ``layers`` holds the G distinct layers (each parameter is stored and counted once);
    ``hidden_states`` still has L + 1 entries.

    Causal decoding with a cache (GPT): pass ``causal=True`` and a
    :class:`~word2bert.nn.cache.KeyValueCache`; each call appends its tokens' keys/values, its new
    queries sit at positions ``cache.length ..`` and ``attention_mask`` may be a padding mask of the
    new tokens or of all (cached + new) positions (left-padded prompts).
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
        num_layer_groups: int | None = None,
        activation_dropout: float = 0.0,
    ):
        super().__init__()
        self.pre_layer_norm = pre_layer_norm
        self.num_layers = num_layers
        self.depth_to_group = depth_to_group(num_layers, num_layer_groups)
        self.layers = nn.ModuleList(
            TransformerLayer(
                hidden_size,
                num_heads,
                intermediate_size,
                activation,
                hidden_dropout,
                attention_dropout,
                layer_norm_eps,
                pre_layer_norm,
                activation_dropout,
            )
            for _ in range(self.depth_to_group[-1] + 1)
        )
        self.final_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps) if pre_layer_norm else None

    def layer_at(self, depth: int) -> TransformerLayer:
        """The layer applied at depth ``depth`` (0-based; shared layers repeat)."""
        return self.layers[self.depth_to_group[depth]]

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        causal: bool = False,
        output_hidden_states: bool = False,
        last_layer_positions: torch.Tensor | None = None,
        cache: KeyValueCache | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Run the stack. ``last_layer_positions`` (B, Q) computes the last layer only at those positions
        (the result is then (B, Q, d)): a model whose heads read a few positions (BERT's masked tokens
        and [CLS]) skips the rest of the last layer's work, with identical values at those positions.

        ``cache``: a :class:`~word2bert.nn.cache.KeyValueCache`, updated in place (see the class docstring)."""
        if last_layer_positions is not None and output_hidden_states:
            raise Word2BertError("output_hidden_states cannot be combined with last_layer_positions")
        if last_layer_positions is not None and cache is not None:
            raise Word2BertError("last_layer_positions cannot be combined with a key/value cache")
        batch, seq_len = hidden.shape[:2]
        past = 0
        if cache is not None:
            attention_mask, past = cache.extend_attention_mask(attention_mask, seq_len, batch)
        sdpa_mask = build_attention_mask(attention_mask, seq_len, causal, past)
        all_hidden = [hidden] if output_hidden_states else None
        last = self.num_layers - 1
        for depth in range(self.num_layers):
            layer = self.layer_at(depth)
            layer_cache = None if cache is None else cache.layer(depth).self_attention
            hidden = layer(hidden, sdpa_mask, causal, last_layer_positions if depth == last else None, layer_cache)
            if self.final_norm is not None and depth == last:
                hidden = self.final_norm(hidden)
            if all_hidden is not None:
                all_hidden.append(hidden)
        return hidden, (tuple(all_hidden) if all_hidden is not None else None)


def init_transformer_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: Linear/Embedding weights ~ N(0, std^2) (truncation-free, as in Hugging Face),
    biases 0, LayerNorm gain 1 and bias 0, the padding row of an embedding 0."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


__all__ = [
    "ACTIVATIONS",
    "FeedForward",
    "TransformerEncoder",
    "TransformerLayer",
    "depth_to_group",
    "get_activation",
    "init_transformer_weights",
    "gelu_tanh",
    "quick_gelu",
]
