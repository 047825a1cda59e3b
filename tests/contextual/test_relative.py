"""Transformer-XL relative attention and segment memory against direct, loop-by-loop computations."""

import math

import pytest
import torch

from word2bert.errors import Word2BertError
from word2bert.nn.relative import (
    RelativeMultiHeadAttention,
    RelativeTransformer,
    StreamRows,
    relative_distances,
    relative_gather,
    relative_shift,
    relative_sinusoid,
    update_memory,
)

torch.set_num_threads(1)


def test_sinusoid_formula():
    distances = torch.tensor([0, 3, -2])
    table = relative_sinusoid(distances, 6)
    for row, d in enumerate([0, 3, -2]):
        for k in range(3):
            frequency = 1.0 / 10000 ** (2 * k / 6)
            assert table[row, k].item() == pytest.approx(math.sin(d * frequency), abs=1e-6)
            assert table[row, 3 + k].item() == pytest.approx(math.cos(d * frequency), abs=1e-6)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("memory_len", [0, 3])
def test_relative_shift_against_every_pair(causal, memory_len):
    """out[i, j] must be the score of query row i against the distance (M + i) - j, for every pair."""
    query_len = 5
    key_len = memory_len + query_len
    distances = relative_distances(query_len, key_len, causal)
    scores = torch.randn(2, 3, query_len, len(distances))
    shifted = relative_shift(scores, key_len)
    assert shifted.shape == (2, 3, query_len, key_len)
    position = {int(d): r for r, d in enumerate(distances)}
    for i in range(query_len):
        for j in range(key_len):
            distance = memory_len + i - j
            if causal and distance < 0:
                continue  # a later key: masked, the table does not cover it
            assert torch.equal(shifted[:, :, i, j], scores[:, :, i, position[distance]])


def test_relative_gather_for_chosen_rows():
    query_len, memory_len = 6, 2
    key_len = memory_len + query_len
    distances = relative_distances(query_len, key_len, causal=False)
    rows = torch.tensor([[4, 0, 5], [1, 1, 3]])  # segment positions of three query rows per example
    scores = torch.randn(2, 2, 3, len(distances))
    gathered = relative_gather(scores, rows + memory_len, key_len)
    position = {int(d): r for r, d in enumerate(distances)}
    for b in range(2):
        for q in range(3):
            for j in range(key_len):
                r = position[memory_len + int(rows[b, q]) - j]
                assert torch.equal(gathered[b, :, q, j], scores[b, :, q, r])


def test_clamp_len_clamps_distances():
    distances = relative_distances(4, 10, causal=False, clamp_len=3)
    assert distances.max().item() == 3 and distances.min().item() == -3
    assert relative_distances(4, 10, causal=True).tolist() == list(range(9, -1, -1))


def naive_attention(attention, content, memory, position_keys_fn, allowed, segments):
    """Every score written out as the paper's sum of terms, one (i, j) pair at a time."""
    heads, head_size, d = attention.num_heads, attention.head_size, attention.hidden_size
    w = attention.qkv_proj.weight
    w_q, w_k, w_v = w[:d], w[d:2 * d], w[2 * d:]
    keys_in = torch.cat([memory, content], 1) if memory is not None else content
    memory_len = keys_in.shape[1] - content.shape[1]
    batch, query_len, _ = content.shape
    key_len = keys_in.shape[1]
    out = torch.zeros(batch, query_len, d)
    for b in range(batch):
        for h in range(heads):
            part = slice(h * head_size, (h + 1) * head_size)
            for i in range(query_len):
                q = content[b, i] @ w_q[part].T
                scores = torch.empty(key_len)
                for j in range(key_len):
                    k = keys_in[b, j] @ w_k[part].T
                    r = position_keys_fn(memory_len + i - j) @ attention.position_proj.weight[part].T
                    score = (q + attention.content_bias[h]) @ k + (q + attention.position_bias[h]) @ r
                    if segments is not None:
                        key_segment = 0 if j < memory_len else int(segments[b, j - memory_len])
                        different = int(int(segments[b, i]) != key_segment)
                        score = score + (q + attention.segment_bias[h]) @ attention.segment_embed[different, h]
                    scores[j] = score * attention.scale
                    if not allowed[b, i, j]:
                        scores[j] = -1e30
                probabilities = torch.softmax(scores, 0)
                for j in range(key_len):
                    out[b, i, part] += probabilities[j] * (keys_in[b, j] @ w_v[part].T)
    return attention.layer_norm(content + out @ attention.out_proj.weight.T)


@pytest.mark.parametrize("with_segments", [False, True])
def test_attention_matches_naive_loops(with_segments):
    torch.manual_seed(0)
    d, heads, batch, query_len, memory_len = 8, 2, 2, 4, 3
    attention = RelativeMultiHeadAttention(d, heads, use_segments=with_segments).eval()
    with torch.no_grad():
        for parameter in attention.parameters():
            parameter.normal_(0, 0.5)
    content = torch.randn(batch, query_len, d)
    memory = torch.randn(batch, memory_len, d)
    key_len = memory_len + query_len
    allowed = torch.rand(batch, query_len, key_len) > 0.3
    allowed[:, :, 0] = True
    segments = torch.randint(0, 2, (batch, query_len)) if with_segments else None
    distances = relative_distances(query_len, key_len, causal=False)
    positions = relative_sinusoid(distances, d)[None]
    differs = None
    if with_segments:
        key_segments = torch.cat([torch.zeros(batch, memory_len, dtype=torch.long), segments], 1)
        differs = (segments[:, :, None] != key_segments[:, None, :])[:, None]
    rows = StreamRows(blocked=~allowed[:, None], segment_differs=differs)
    with torch.no_grad():
        ours, _ = attention(content, positions, memory=memory, content_rows=rows)
        expected = naive_attention(attention, content, memory,
                                   lambda distance: relative_sinusoid(torch.tensor([distance]), d)[0],
                                   allowed, segments)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def causal_stack(mem_len, **overrides):
    torch.manual_seed(1)
    settings = dict(num_layers=3, hidden_size=16, num_heads=2, intermediate_size=32, dropout=0.0,
                    untie_biases=False, mem_len=mem_len, causal=True)
    settings.update(overrides)
    stack = RelativeTransformer(**settings).eval()
    with torch.no_grad():
        for name, parameter in stack.named_parameters():
            if name.endswith("_bias") or "segment" in name:
                parameter.normal_(0, 0.3)
    return stack


def test_two_segments_with_memory_equal_one_pass_over_their_concatenation():
    stack = causal_stack(mem_len=6)
    torch.manual_seed(2)
    both = torch.randn(2, 12, 16)
    first, second = both[:, :6], both[:, 6:]
    with torch.no_grad():
        whole = stack(both).content
        out_first = stack(first)
        out_second = stack(second, memory=out_first.memory)
    torch.testing.assert_close(out_first.content, whole[:, :6], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_second.content, whole[:, 6:], atol=1e-5, rtol=1e-5)
    # without memory the second segment's outputs are different: the memory test can fail
    with torch.no_grad():
        alone = stack(second).content
    assert (alone - whole[:, 6:]).abs().max() > 1e-2


def test_memory_is_bounded_and_carries_no_gradient():
    """The memory of a step has mem_len rows per layer however long the stream read so far."""
    stack = causal_stack(mem_len=5).train()
    memory = None
    for _ in range(8):
        segment = torch.randn(2, 4, 16, requires_grad=True)
        out = stack(segment, memory=memory)
        out.content.sum().backward()
        memory = out.memory
        assert all(m.shape == (2, min(5, 4 * (_ + 1)), 16) for m in memory)
        assert not any(m.requires_grad for m in memory)
    assert len(memory) == 3 and memory[0].shape[1] == 5


def test_update_memory_keeps_the_last_tokens():
    hidden = torch.arange(12.0).view(1, 6, 2)
    previous = torch.full((1, 3, 2), -1.0)
    assert update_memory(hidden, previous, 4)[0, :, 0].tolist() == [4.0, 6.0, 8.0, 10.0]
    assert update_memory(hidden[:, :2], previous, 4)[0, :, 0].tolist() == [-1.0, -1.0, 0.0, 2.0]
    assert update_memory(hidden, None, 0) is None
    reuse = update_memory(hidden, None, 4, reuse_len=2)
    assert reuse[0, :, 0].tolist() == [0.0, 2.0]


def test_same_length_limits_every_query_to_the_same_number_of_keys():
    stack = causal_stack(mem_len=3, same_length=True)
    allowed = stack.allowed_keys(1, 4, 3, "cpu")[0]
    assert allowed.sum(1).tolist() == [4, 4, 4, 4]
    assert allowed[2].tolist() == [False, False, True, True, True, True, False]


def test_tied_biases_are_one_parameter():
    tied = causal_stack(mem_len=2, untie_biases=False)
    untied = causal_stack(mem_len=2, untie_biases=True)
    assert tied.layers[0].attention.content_bias is tied.layers[2].attention.content_bias
    assert untied.layers[0].attention.content_bias is not untied.layers[2].attention.content_bias
    count = sum(p.numel() for p in tied.parameters())
    assert sum(p.numel() for p in untied.parameters()) - count == 2 * 2 * 8 * 2


@pytest.mark.parametrize("settings, message", [
    (dict(mem_len=-1), "mem_len"),
    (dict(mem_len=2.5), "mem_len"),
    (dict(clamp_len=0), "clamp_len"),
    (dict(clamp_len=-3), "clamp_len"),
    (dict(same_length=True, causal=False), "same_length"),
])
def test_bad_parameters_get_clear_messages(settings, message):
    base = dict(num_layers=1, hidden_size=8, num_heads=2, intermediate_size=8)
    with pytest.raises(Word2BertError, match=message):
        RelativeTransformer(**{**base, **settings})


def test_bad_memory_gets_clear_messages():
    stack = causal_stack(mem_len=2)
    with pytest.raises(Word2BertError, match="layers"):
        stack(torch.randn(1, 3, 16), memory=[torch.zeros(1, 2, 16)])


def test_bi_data_backward_half_reads_the_segment_right_to_left():
    """With negated distances for the second half of the batch, a reversed segment gives the reversed
    outputs of the forward one: the backward half sees the same relative geometry, mirrored."""
    torch.manual_seed(3)
    stack = RelativeTransformer(num_layers=2, hidden_size=16, num_heads=2, intermediate_size=32, dropout=0.0,
                                bi_data=True).eval()
    with torch.no_grad():
        for name, parameter in stack.named_parameters():
            if name.endswith("_bias"):
                parameter.normal_(0, 0.3)
    segment = torch.randn(2, 7, 16)
    with torch.no_grad():
        out = stack(torch.cat([segment, segment.flip(1)])).content
    torch.testing.assert_close(out[2:], out[:2].flip(1), atol=1e-5, rtol=1e-5)
    stack.bi_data = False  # forward distances for every row: the mirror image is not reproduced
    with torch.no_grad():
        out = stack(torch.cat([segment, segment.flip(1)])).content
    assert (out[2:] - out[:2].flip(1)).abs().max() > 1e-3
    stack.bi_data = True
    with pytest.raises(Word2BertError, match="even"):
        stack(torch.randn(3, 7, 16))
