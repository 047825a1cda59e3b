"""Input embeddings of Transformer encoders: token + segment + position, then LayerNorm and dropout."""

from __future__ import annotations

import math

import torch
from torch import nn

from word2bert.errors import Word2BertError


def sinusoidal_position_table(num_positions: int, dim: int) -> torch.Tensor:
    """The fixed position encodings of Vaswani et al. (2017), shape (num_positions, dim)::

        PE[pos, 2i]   = sin(pos / 10000^(2i/dim))
        PE[pos, 2i+1] = cos(pos / 10000^(2i/dim))
    """
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    inverse_frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * inverse_frequency)
    table[:, 1::2] = torch.cos(position * inverse_frequency[: dim // 2])
    return table.float()


class SinusoidalPositionEmbedding(nn.Module):
    """Fixed sinusoidal position embeddings (no parameters); call with position ids like nn.Embedding."""

    def __init__(self, num_positions: int, dim: int):
        super().__init__()
        self.num_embeddings = num_positions
        self.register_buffer("table", sinusoidal_position_table(num_positions, dim), persistent=False)

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return self.table[position_ids]


class TransformerEmbeddings(nn.Module):
    """BERT's input representation: E = Dropout(LayerNorm(word[x_t] + segment[s_t] + position[t])).

    ``position_embedding_type`` is "learned" (a trained table, BERT) or "sinusoidal" (fixed,
    the original Transformer). ``type_vocab_size=0`` drops the segment embedding (GPT-style models).
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        max_position_embeddings: int,
        type_vocab_size: int = 2,
        layer_norm_eps: float = 1e-12,
        dropout: float = 0.1,
        pad_token_id: int | None = 0,
        position_embedding_type: str = "learned",
    ):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden_size, padding_idx=pad_token_id)
        if position_embedding_type == "learned":
            self.position_embeddings = nn.Embedding(max_position_embeddings, hidden_size)
        elif position_embedding_type == "sinusoidal":
            self.position_embeddings = SinusoidalPositionEmbedding(max_position_embeddings, hidden_size)
        else:
            raise Word2BertError(
                f"position_embedding_type must be 'learned' or 'sinusoidal', got {position_embedding_type!r}"
            )
        self.token_type_embeddings = nn.Embedding(type_vocab_size, hidden_size) if type_vocab_size > 0 else None
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)
        self.max_position_embeddings = max_position_embeddings
        self.vocab_size = vocab_size
        self.type_vocab_size = type_vocab_size
        self.register_buffer("position_ids", torch.arange(max_position_embeddings), persistent=False)

    def check_inputs(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> None:
        """Raise Word2BertError for inputs the tables cannot embed (too long, id out of range)."""
        if input_ids.dim() != 2:
            raise Word2BertError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        seq_len = input_ids.shape[1]
        if seq_len > self.max_position_embeddings:
            raise Word2BertError(
                f"sequence length {seq_len} exceeds max_position_embeddings={self.max_position_embeddings}; "
                "truncate the input or use a model with more positions"
            )
        if input_ids.numel():
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= self.vocab_size:
                raise Word2BertError(f"input_ids contain id {high if high >= self.vocab_size else low} "
                                     f"outside the vocabulary [0, {self.vocab_size})")
        if token_type_ids is not None and token_type_ids.numel():
            if tuple(token_type_ids.shape) != tuple(input_ids.shape):
                raise Word2BertError(
                    f"token_type_ids shape {tuple(token_type_ids.shape)} != input_ids shape {tuple(input_ids.shape)}"
                )
            high = int(token_type_ids.max())
            if int(token_type_ids.min()) < 0 or high >= max(self.type_vocab_size, 1):
                raise Word2BertError(f"token_type_ids contain {high}; type_vocab_size={self.type_vocab_size}")

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(input_ids, token_type_ids)
        seq_len = input_ids.shape[1]
        embedded = self.word_embeddings(input_ids) + self.position_embeddings(self.position_ids[:seq_len])
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                embedded = embedded + self.token_type_embeddings.weight[0]
            else:
                embedded = embedded + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.layer_norm(embedded))
