"""A token's vector from its characters: character embeddings, convolutions of several widths with
max-pooling over the characters, highway layers and a linear projection (Kim et al. 2016,
"Character-Aware Neural Language Models"; ELMo's token layer, Peters et al. 2018).

Character id 0 is padding (no character; a token of only padding is no token) and its embedding
is fixed at zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError

CNN_ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh}


class Highway(nn.Module):
    """``y = g * relu(W_t x + b_t) + (1 - g) * x`` with the gate ``g = sigmoid(W_g x + b_g)``
    (Srivastava et al. 2015). The gate bias starts at -2, so a fresh layer mostly carries ``x``
    through (bilm-tf's initialisation; it names ``W_g`` ``W_carry``)."""

    def __init__(self, size: int):
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)
        nn.init.normal_(self.transform.weight, std=(1.0 / size) ** 0.5)
        nn.init.zeros_(self.transform.bias)
        nn.init.normal_(self.gate.weight, std=(1.0 / size) ** 0.5)
        nn.init.constant_(self.gate.bias, -2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.gate(x))
        return gate * F.relu(self.transform(x)) + (1.0 - gate) * x


class CharacterCNN(nn.Module):
    """Character ids (..., max_characters) -> token vectors (..., output_dim).

    For each filter ``(width, count)``: ``count`` convolutions of ``width`` characters over the
    character embeddings, the maximum over positions, then the activation; the concatenation of
    all filters (``sum(count)`` numbers) goes through ``num_highway`` :class:`Highway` layers and,
    when ``output_dim`` differs from ``sum(count)``, a linear projection to ``output_dim``.
    """

    def __init__(self, num_characters: int = 262, embedding_dim: int = 16,
                 filters=((1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512), (7, 1024)),
                 num_highway: int = 2, output_dim: int = 512, max_characters: int = 50, activation: str = "relu"):
        super().__init__()
        filters = [tuple(int(v) for v in f) for f in filters]
        if not filters or any(len(f) != 2 or f[0] < 1 or f[1] < 1 for f in filters):
            raise Word2BertError(f"parameter filters={filters} must be a non-empty list of [width, count] pairs >= 1")
        if max(width for width, _ in filters) > max_characters:
            raise Word2BertError(f"a filter is wider than max_characters={max_characters}")
        if activation not in CNN_ACTIVATIONS:
            raise Word2BertError(f"parameter activation={activation!r} must be one of {sorted(CNN_ACTIVATIONS)}")
        if num_highway < 0:
            raise Word2BertError(f"parameter num_highway={num_highway} must be >= 0")
        self.filters = filters
        self.max_characters = max_characters
        self.activation_name = activation
        self.activation = CNN_ACTIVATIONS[activation]
        self.num_filters = sum(count for _, count in filters)
        self.output_dim = output_dim
        self.char_embedding = nn.Embedding(num_characters, embedding_dim, padding_idx=0)
        nn.init.uniform_(self.char_embedding.weight, -1.0, 1.0)
        with torch.no_grad():
            self.char_embedding.weight[0].zero_()
        self.convolutions = nn.ModuleList(nn.Conv1d(embedding_dim, count, width) for width, count in filters)
        for conv, (width, _) in zip(self.convolutions, filters):
            if activation == "relu":  # Kim et al.: uniform +-0.05
                nn.init.uniform_(conv.weight, -0.05, 0.05)
            else:
                nn.init.normal_(conv.weight, std=(1.0 / (width * embedding_dim)) ** 0.5)
            nn.init.zeros_(conv.bias)
        self.highways = nn.ModuleList(Highway(self.num_filters) for _ in range(num_highway))
        if output_dim != self.num_filters:
            self.projection = nn.Linear(self.num_filters, output_dim)
            nn.init.normal_(self.projection.weight, std=(1.0 / self.num_filters) ** 0.5)
            nn.init.zeros_(self.projection.bias)
        else:
            self.projection = None

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        if char_ids.shape[-1] != self.max_characters:
            raise Word2BertError(f"character ids must have {self.max_characters} characters per token "
                                 f"(last dimension), got shape {tuple(char_ids.shape)}")
        leading = char_ids.shape[:-1]
        flat = char_ids.reshape(-1, self.max_characters)
        embedded = self.char_embedding(flat).transpose(1, 2)  # (N, embedding_dim, max_characters)
        pooled = [self.activation(conv(embedded).max(dim=2).values) for conv in self.convolutions]
        x = torch.cat(pooled, dim=1)
        for highway in self.highways:
            x = highway(x)
        if self.projection is not None:
            x = self.projection(x)
        return x.reshape(*leading, x.shape[-1])
