"""Input embeddings of Transformers: token + segment + position, optional LayerNorm, dropout, optional projection."""

from __future__ import annotations

import math

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.nn.dropout import Dropout


def sinusoidal_position_table(num_positions: int, dim: int, layout: str = "interleaved") -> torch.Tensor:
    """The fixed position encodings of Vaswani et al. (2017), shape (num_positions, dim)::

        PE[pos, 2i]   = sin(pos / 10000^(2i/dim))
        PE[pos, 2i+1] = cos(pos / 10000^(2i/dim))

    ``layout="halves"`` puts the same values in another order, all sines first, then all cosines
    (Marian's and tensor2tensor's layout; transformers' ``MarianSinusoidalPositionalEmbedding``).
    """
    if layout not in ("interleaved", "halves"):
        raise Word2BertError(f"sinusoidal layout must be 'interleaved' or 'halves', got {layout!r}")
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    inverse_frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * inverse_frequency)
    table[:, 1::2] = torch.cos(position * inverse_frequency[: dim // 2])
    if layout == "halves":
        table = torch.cat([table[:, 0::2], table[:, 1::2]], 1)
    return table.float()


class SinusoidalPositionEmbedding(nn.Module):
    """Fixed sinusoidal position embeddings (no parameters); call with position ids like nn.Embedding."""

    def __init__(self, num_positions: int, dim: int, layout: str = "interleaved"):
        super().__init__()
        self.num_embeddings = num_positions
        self.register_buffer("table", sinusoidal_position_table(num_positions, dim, layout), persistent=False)

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return self.table[position_ids]


def position_ids_from_input_ids(input_ids: torch.Tensor, padding_idx: int, past_length: int = 0) -> torch.Tensor:
    """RoBERTa's (fairseq's ``make_positions``) positions: real tokens count from ``padding_idx + 1``,
    padding tokens get ``padding_idx``::

        real_t   = [input_ids_t != padding_idx]
        position = (past_length + sum_{s <= t} real_s) * real_t + padding_idx
    """
    real = input_ids.ne(padding_idx).long()
    return (torch.cumsum(real, dim=1) + past_length) * real + padding_idx


def position_ids_from_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip padding (left-padded prompts in batched generation): real token t gets the
    number of real tokens before it; padding gets 0 (it is masked anyway)::

        position_t = max(0, sum_{s <= t} mask_s - 1)

    Pass the mask of every position (cached + new) and keep the last ``t`` columns for the new tokens.
    """
    return (attention_mask.long().cumsum(1) - 1).clamp_min(0)


class TransformerEmbeddings(nn.Module):
    """The input representation of a Transformer::

        e = word[x_t] * scale + position[p_t] + segment[s_t]
        E = Projection(Dropout(LayerNorm(e)))

    - ``position_embedding_type``: "learned" (a trained table, BERT/GPT), "sinusoidal" (fixed, the
      original Transformer; ``sinusoidal_layout`` "interleaved" or Marian's "halves", see
      :func:`sinusoidal_position_table`) or "none" (no absolute positions: relative-attention models).
    - ``type_vocab_size=0`` drops the segment embedding (GPT-style models).
    - ``layer_norm=False`` drops the LayerNorm (GPT-1/GPT-2, the Transformer).
    - ``scale_embeddings=True`` multiplies the word vectors by sqrt(embedding size) (Vaswani et al. 2017,
      section 3.4; Marian's ``scale_embedding``).
    - ``embedding_size=E`` (ALBERT's factorised embedding parameterisation): the tables and the
      LayerNorm have width E and a linear map ``projection`` (E -> ``hidden_size``) follows; None or
      ``hidden_size`` means no projection.
    - Positions: ``p_t = position_offset + past_length + t`` by default. With ``padding_position`` set
      (RoBERTa: ``padding_position = pad_token_id``, see :func:`position_ids_from_input_ids`) real
      tokens count from ``padding_position + 1`` and padding tokens (``pad_token_id``) take
      ``padding_position``. Explicit ``position_ids`` override both (MASS keeps original positions in
      the decoder; GPT left-pads prompts: :func:`position_ids_from_attention_mask`).
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
        *,
        layer_norm: bool = True,
        embedding_size: int | None = None,
        scale_embeddings: bool = False,
        position_offset: int = 0,
        padding_position: int | None = None,
        sinusoidal_layout: str = "interleaved",
    ):
        super().__init__()
        size = hidden_size if embedding_size is None else embedding_size
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise Word2BertError(f"embedding_size={embedding_size!r} must be a positive integer")
        if padding_position is not None and (pad_token_id is None or position_offset):
            raise Word2BertError(
                "padding_position needs a pad_token_id (padding is found by it) and no position_offset"
            )
        self.word_embeddings = nn.Embedding(vocab_size, size, padding_idx=pad_token_id)
        if position_embedding_type == "learned":
            self.position_embeddings = nn.Embedding(max_position_embeddings, size)
        elif position_embedding_type == "sinusoidal":
            self.position_embeddings = SinusoidalPositionEmbedding(max_position_embeddings, size, sinusoidal_layout)
        elif position_embedding_type == "none":
            self.position_embeddings = None
        else:
            raise Word2BertError(
                f"position_embedding_type must be 'learned', 'sinusoidal' or 'none', got {position_embedding_type!r}"
            )
        self.token_type_embeddings = nn.Embedding(type_vocab_size, size) if type_vocab_size > 0 else None
        self.layer_norm = nn.LayerNorm(size, eps=layer_norm_eps) if layer_norm else None
        self.dropout = Dropout(dropout)
        self.projection = nn.Linear(size, hidden_size) if size != hidden_size else None
        self.embedding_size = size
        self.hidden_size = hidden_size
        self.scale = math.sqrt(size) if scale_embeddings else None
        self.max_position_embeddings = max_position_embeddings
        self.vocab_size = vocab_size
        self.type_vocab_size = type_vocab_size
        self.pad_token_id = pad_token_id
        self.position_offset = position_offset
        self.padding_position = padding_position
        self.register_buffer("position_ids", torch.arange(max_position_embeddings), persistent=False)

    def check_inputs(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> None:
        """Raise Word2BertError for inputs the tables cannot embed (bad shape, id out of range)."""
        if input_ids.dim() != 2:
            raise Word2BertError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
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

    def make_position_ids(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor | None = None, past_length: int = 0
    ) -> torch.Tensor:
        """The position of every input token ((T,) or (B, T)), checked against the table size."""
        seq_len = input_ids.shape[1]
        if position_ids is not None:
            position_ids = torch.as_tensor(position_ids, dtype=torch.long, device=input_ids.device)
            if position_ids.shape[-1] != seq_len or position_ids.dim() not in (1, 2):
                raise Word2BertError(
                    f"position_ids shape {tuple(position_ids.shape)} does not match input_ids shape {tuple(input_ids.shape)}"
                )
            if position_ids.numel() and int(position_ids.min()) < 0:
                raise Word2BertError(f"position_ids contain {int(position_ids.min())} < 0")
            highest = int(position_ids.max()) if position_ids.numel() else -1
        elif self.padding_position is not None:
            position_ids = position_ids_from_input_ids(input_ids, self.pad_token_id, past_length)
            if self.padding_position != self.pad_token_id:
                position_ids = position_ids + (self.padding_position - self.pad_token_id)
            highest = self.padding_position + past_length + seq_len
        else:
            start = self.position_offset + past_length
            highest = start + seq_len - 1
            if 0 <= start and highest < self.max_position_embeddings:
                position_ids = self.position_ids[start : start + seq_len]
            else:
                position_ids = torch.arange(start, start + seq_len, device=input_ids.device)
        if self.position_embeddings is not None and highest >= self.max_position_embeddings:
            raise Word2BertError(
                f"sequence length {seq_len}"
                + (f" after {past_length} cached positions" if past_length else "")
                + (f" with position offset {self.position_offset}" if self.position_offset else "")
                + (f" with positions counted from {self.padding_position + 1}" if self.padding_position is not None else "")
                + f" exceeds max_position_embeddings={self.max_position_embeddings}; "
                "truncate the input or use a model with more positions"
            )
        return position_ids

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_length: int = 0,
    ) -> torch.Tensor:
        """(B, T) ids -> (B, T, hidden_size). ``past_length``: positions already processed (a decoder's
        cache length), so the new tokens sit at positions past_length, past_length + 1, ..."""
        self.check_inputs(input_ids, token_type_ids)
        embedded = self.word_embeddings(input_ids)
        if self.scale is not None:
            embedded = embedded * self.scale
        if self.position_embeddings is not None:
            embedded = embedded + self.position_embeddings(self.make_position_ids(input_ids, position_ids, past_length))
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                embedded = embedded + self.token_type_embeddings.weight[0]
            else:
                embedded = embedded + self.token_type_embeddings(token_type_ids)
        if self.layer_norm is not None:
            embedded = self.layer_norm(embedded)
        embedded = self.dropout(embedded)
        return embedded if self.projection is None else self.projection(embedded)


__all__ = [
    "SinusoidalPositionEmbedding",
    "TransformerEmbeddings",
    "position_ids_from_attention_mask",
    "position_ids_from_input_ids",
    "sinusoidal_position_table",
]
