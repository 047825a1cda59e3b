"""ELMo's scalar mix of layers (Peters et al. 2018, eq. 1), usable on any stack's hidden states."""

from __future__ import annotations

import torch
from torch import nn

from word2bert.errors import Word2BertError


class ScalarMix(nn.Module):
    """``mix(h^(0..L)) = gamma * sum_l softmax(w)_l h^(l)`` with learnable ``w`` (L+1) and ``gamma``.

    ``num_layers`` is the number of hidden states mixed (L+1 for an L-layer stack with its
    embedding output); ``trainable=False`` keeps the uniform average (w = 0, gamma = 1).
    """

    def __init__(self, num_layers: int, trainable: bool = True):
        super().__init__()
        if num_layers < 1:
            raise Word2BertError(f"parameter num_layers={num_layers} must be >= 1")
        self.weights = nn.Parameter(torch.zeros(num_layers), requires_grad=trainable)
        self.gamma = nn.Parameter(torch.ones(()), requires_grad=trainable)

    def forward(self, hidden_states) -> torch.Tensor:
        if len(hidden_states) != len(self.weights):
            raise Word2BertError(f"the scalar mix has {len(self.weights)} weights but got {len(hidden_states)} layers")
        weights = torch.softmax(self.weights, dim=0)
        return self.gamma * sum(w * h for w, h in zip(weights, hidden_states))


__all__ = ["ScalarMix"]
