"""Neural-network building blocks shared by every contextual model (attention, Transformer layers, embeddings)."""

from word2bert.nn.attention import MultiHeadSelfAttention, build_attention_mask
from word2bert.nn.embeddings import SinusoidalPositionEmbedding, TransformerEmbeddings, sinusoidal_position_table
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
    "FeedForward",
    "MultiHeadSelfAttention",
    "SinusoidalPositionEmbedding",
    "TransformerEmbeddings",
    "TransformerEncoder",
    "TransformerLayer",
    "build_attention_mask",
    "get_activation",
    "init_transformer_weights",
    "sinusoidal_position_table",
]
