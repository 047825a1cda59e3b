"""Neural-network building blocks shared by every contextual model.

attention (self, cross, cached) · cache (key/value cache for incremental decoding) · transformer
(feed-forward, encoder layer and stack, shared layers) · decoder (decoder layer and stack) ·
embeddings (token/segment/position, optional LayerNorm, offsets, factorised size) · scalar_mix ·
frozen (freeze(): frozen teacher modules) · recurrent (AWD-LSTM's
locked, embedding and weight dropout).
"""

from word2bert.nn.attention import (
    MultiHeadCrossAttention,
    MultiHeadSelfAttention,
    build_attention_mask,
    build_memory_mask,
    causal_mask,
)
from word2bert.nn.cache import KeyValueCache, KeyValues, LayerCache
from word2bert.nn.decoder import TransformerDecoder, TransformerDecoderLayer
from word2bert.nn.embeddings import (
    SinusoidalPositionEmbedding,
    TransformerEmbeddings,
    position_ids_from_attention_mask,
    position_ids_from_input_ids,
    sinusoidal_position_table,
)
from word2bert.nn.frozen import freeze, frozen_modules, is_frozen
from word2bert.nn.recurrent import EmbeddingDropout, LockedDropout, WeightDropLSTM
from word2bert.nn.scalar_mix import ScalarMix
from word2bert.nn.transformer import (
    ACTIVATIONS,
    FeedForward,
    TransformerEncoder,
    TransformerLayer,
    get_activation,
    init_transformer_weights,
)

__all__ = [
    "ACTIVATIONS",
    "EmbeddingDropout",
    "FeedForward",
    "KeyValueCache",
    "KeyValues",
    "LayerCache",
    "LockedDropout",
    "MultiHeadCrossAttention",
    "MultiHeadSelfAttention",
    "ScalarMix",
    "SinusoidalPositionEmbedding",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEmbeddings",
    "TransformerEncoder",
    "TransformerLayer",
    "WeightDropLSTM",
    "build_attention_mask",
    "build_memory_mask",
    "causal_mask",
    "freeze",
    "frozen_modules",
    "get_activation",
    "init_transformer_weights",
    "is_frozen",
    "position_ids_from_attention_mask",
    "position_ids_from_input_ids",
    "sinusoidal_position_table",
]
