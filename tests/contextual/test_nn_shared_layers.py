"""ALBERT's cross-layer sharing: one layer's weights applied at every depth, stored and counted once."""

import copy

import pytest
import torch

from word2bert.errors import Word2BertError
from word2bert.nn import TransformerEncoder, build_attention_mask

torch.set_num_threads(1)

HIDDEN, HEADS, FFN, LAYERS = 16, 4, 32, 4


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_shared_stack_has_one_layer_and_applies_it_at_every_depth():
    torch.manual_seed(0)
    shared = TransformerEncoder(LAYERS, HIDDEN, HEADS, FFN, num_layer_groups=1, hidden_dropout=0.0,
                                attention_dropout=0.0).eval()
    unshared = TransformerEncoder(LAYERS, HIDDEN, HEADS, FFN)
    assert len(shared.layers) == 1 and all(shared.layer_at(d) is shared.layers[0] for d in range(LAYERS))
    assert count(shared) == count(shared.layers[0]) == count(unshared) // LAYERS
    assert len(shared.state_dict()) == len(unshared.state_dict()) // LAYERS
    x = torch.randn(2, 5, HIDDEN)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    last, states = shared(x, mask, output_hidden_states=True)
    assert len(states) == LAYERS + 1
    hidden = x
    for depth in range(LAYERS):
        hidden = shared.layers[0](hidden, build_attention_mask(mask, 5))
        torch.testing.assert_close(states[depth + 1], hidden)
    torch.testing.assert_close(last, hidden)


def test_shared_gradient_is_the_sum_over_depths():
    """The same stack unrolled into L independent copies: the shared gradient is their sum."""
    torch.manual_seed(1)
    shared = TransformerEncoder(LAYERS, HIDDEN, HEADS, FFN, num_layer_groups=1, hidden_dropout=0.0,
                                attention_dropout=0.0)
    unrolled = TransformerEncoder(LAYERS, HIDDEN, HEADS, FFN, hidden_dropout=0.0, attention_dropout=0.0)
    unrolled.layers = torch.nn.ModuleList(copy.deepcopy(shared.layers[0]) for _ in range(LAYERS))
    x = torch.randn(2, 5, HIDDEN)
    shared(x)[0].pow(2).sum().backward()
    unrolled(x)[0].pow(2).sum().backward()
    for name, parameter in shared.layers[0].named_parameters():
        total = sum(dict(layer.named_parameters())[name].grad for layer in unrolled.layers)
        torch.testing.assert_close(parameter.grad, total, atol=1e-5, rtol=1e-4)


def test_groups_map_depths_like_albert():
    stack = TransformerEncoder(6, HIDDEN, HEADS, FFN, num_layer_groups=2)
    assert len(stack.layers) == 2 and stack.depth_to_group == [0, 0, 0, 1, 1, 1]
    assert TransformerEncoder(3, HIDDEN, HEADS, FFN).depth_to_group == [0, 1, 2]
    with pytest.raises(Word2BertError, match="num_layer_groups"):
        TransformerEncoder(6, HIDDEN, HEADS, FFN, num_layer_groups=4)


def test_last_layer_positions_with_shared_layers():
    torch.manual_seed(2)
    stack = TransformerEncoder(3, HIDDEN, HEADS, FFN, num_layer_groups=1).eval()
    x = torch.randn(2, 6, HIDDEN)
    positions = torch.tensor([[0, 2], [5, 1]])
    full, _ = stack(x)
    rows, _ = stack(x, last_layer_positions=positions)
    torch.testing.assert_close(rows, torch.stack([full[b, positions[b]] for b in range(2)]), atol=1e-5, rtol=1e-4)
