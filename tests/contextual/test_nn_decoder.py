"""The decoder layer and stack against PyTorch's own nn.TransformerDecoder with the same weights."""

import pytest
import torch

from word2bert.nn import TransformerDecoder

torch.set_num_threads(1)

HIDDEN, HEADS, FFN, LAYERS = 16, 4, 24, 2


def torch_decoder_with_our_weights(ours: TransformerDecoder, pre_layer_norm: bool) -> torch.nn.TransformerDecoder:
    """PyTorch's decoder (fused in_proj [q; k; v] for both attentions) loaded with our parameters."""
    layer = torch.nn.TransformerDecoderLayer(HIDDEN, HEADS, FFN, dropout=0.0, activation="relu",
                                             batch_first=True, norm_first=pre_layer_norm, layer_norm_eps=1e-5)
    theirs = torch.nn.TransformerDecoder(layer, LAYERS, norm=torch.nn.LayerNorm(HIDDEN) if pre_layer_norm else None)
    with torch.no_grad():
        for mine, their in zip(ours.layers, theirs.layers):
            their.self_attn.in_proj_weight.copy_(mine.self_attention.qkv_proj.weight)
            their.self_attn.in_proj_bias.copy_(mine.self_attention.qkv_proj.bias)
            their.self_attn.out_proj.weight.copy_(mine.self_attention.out_proj.weight)
            their.self_attn.out_proj.bias.copy_(mine.self_attention.out_proj.bias)
            cross = mine.cross_attention
            their.multihead_attn.in_proj_weight.copy_(torch.cat([cross.query_proj.weight, cross.kv_proj.weight]))
            their.multihead_attn.in_proj_bias.copy_(torch.cat([cross.query_proj.bias, cross.kv_proj.bias]))
            their.multihead_attn.out_proj.weight.copy_(cross.out_proj.weight)
            their.multihead_attn.out_proj.bias.copy_(cross.out_proj.bias)
            their.linear1.load_state_dict(mine.feed_forward.dense_in.state_dict())
            their.linear2.load_state_dict(mine.feed_forward.dense_out.state_dict())
            their.norm1.load_state_dict(mine.self_attention_norm.state_dict())
            their.norm2.load_state_dict(mine.cross_attention_norm.state_dict())
            their.norm3.load_state_dict(mine.feed_forward_norm.state_dict())
        if pre_layer_norm:
            theirs.norm.load_state_dict(ours.final_norm.state_dict())
    return theirs.eval()


@pytest.mark.parametrize("pre_layer_norm", [False, True])
def test_decoder_matches_pytorch_transformer_decoder(pre_layer_norm):
    torch.manual_seed(0)
    ours = TransformerDecoder(LAYERS, HIDDEN, HEADS, FFN, activation="relu", layer_norm_eps=1e-5,
                              pre_layer_norm=pre_layer_norm).eval()
    for parameter in ours.parameters():  # away from the identity-like initialisation
        torch.nn.init.normal_(parameter, std=0.3)
    theirs = torch_decoder_with_our_weights(ours, pre_layer_norm)
    target = torch.randn(3, 6, HIDDEN)
    memory = torch.randn(3, 5, HIDDEN)
    target_mask = (torch.arange(6)[None, :] < torch.tensor([[6], [4], [2]])).long()  # right padding
    memory_mask = (torch.arange(5)[None, :] < torch.tensor([[5], [3], [1]])).long()
    mine, states = ours(target, memory, target_mask, memory_mask, output_hidden_states=True)
    expected = theirs(target, memory, tgt_mask=~torch.ones(6, 6, dtype=torch.bool).tril(), tgt_key_padding_mask=target_mask == 0,
                      memory_key_padding_mask=memory_mask == 0)
    real = target_mask.bool()
    torch.testing.assert_close(mine[real], expected[real], atol=1e-5, rtol=1e-4)
    assert len(states) == LAYERS + 1 and torch.equal(states[-1], mine)
    # the memory's padding is invisible: change it, real target rows stay put
    memory2 = memory.clone()
    memory2[1, 3:] += 10.0
    torch.testing.assert_close(ours(target, memory2, target_mask, memory_mask)[0][real], mine[real],
                               atol=1e-5, rtol=1e-4)
    # and the future of the target too
    target2 = target.clone()
    target2[:, 3:] += 10.0
    torch.testing.assert_close(ours(target2, memory, target_mask, memory_mask)[0][:, :3], mine[:, :3],
                               atol=1e-5, rtol=1e-4)


def test_decoder_memory_of_another_width_and_non_causal():
    torch.manual_seed(1)
    ours = TransformerDecoder(1, HIDDEN, HEADS, FFN, memory_size=10).eval()
    out, _ = ours(torch.randn(2, 3, HIDDEN), torch.randn(2, 4, 10), causal=False)
    assert out.shape == (2, 3, HIDDEN)
    assert ours.layers[0].cross_attention.kv_proj.weight.shape == (2 * HIDDEN, 10)
