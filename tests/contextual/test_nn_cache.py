"""Incremental decoding with a key/value cache gives the uncached full pass, under padding and beams."""

import pytest
import torch

from word2bert.errors import Word2BertError
from word2bert.nn import (
    KeyValueCache,
    TransformerDecoder,
    TransformerEmbeddings,
    TransformerEncoder,
    position_ids_from_attention_mask,
)

torch.set_num_threads(1)

HIDDEN, HEADS, FFN = 16, 4, 32
CHUNKS = [3, 1, 2, 1, 1]  # the prompt, then tokens one at a time and a chunk of two (queries past+0, past+1)


def encoder(pre_layer_norm, num_layer_groups=None):
    torch.manual_seed(0)
    return TransformerEncoder(3, HIDDEN, HEADS, FFN, pre_layer_norm=pre_layer_norm,
                              num_layer_groups=num_layer_groups).eval()


def decoder(pre_layer_norm):
    torch.manual_seed(1)
    return TransformerDecoder(2, HIDDEN, HEADS, FFN, pre_layer_norm=pre_layer_norm).eval()


def left_padding(lengths, total):
    """(B, total) mask with the last lengths[b] positions real (left-padded prompts)."""
    return (torch.arange(total)[None, :] >= total - torch.tensor(lengths)[:, None]).long()


@pytest.mark.parametrize("pre_layer_norm", [False, True])
@pytest.mark.parametrize("num_layer_groups", [None, 1])
def test_cached_causal_encoder_equals_full_pass_with_left_padding(pre_layer_norm, num_layer_groups):
    stack = encoder(pre_layer_norm, num_layer_groups)
    total = sum(CHUNKS)
    x = torch.randn(3, total, HIDDEN)
    mask = left_padding([8, 6, 4], total)  # row 2: 4 pads, the first chunk is mostly padding
    real = mask.bool()
    full, _ = stack(x, mask, causal=True)
    cache, start, pieces = KeyValueCache(), 0, []
    for step, size in enumerate(CHUNKS):
        # alternate the two mask conventions: the new tokens' columns, or every position so far
        step_mask = mask[:, start:start + size] if step % 2 else mask[:, :start + size]
        assert cache.length == start
        out, _ = stack(x[:, start:start + size], step_mask, causal=True, cache=cache)
        pieces.append(out)
        start += size
    assert len(cache) == total and len(cache.layers) == 3
    cached = torch.cat(pieces, 1)
    torch.testing.assert_close(cached[real], full[real], atol=1e-5, rtol=1e-4)


def test_cached_encoder_without_padding_and_all_hidden_states():
    stack = encoder(False)
    x = torch.randn(2, 6, HIDDEN)
    full, full_states = stack(x, causal=True, output_hidden_states=True)
    cache = KeyValueCache()
    first, first_states = stack(x[:, :4], causal=True, cache=cache, output_hidden_states=True)
    second, second_states = stack(x[:, 4:], causal=True, cache=cache, output_hidden_states=True)
    torch.testing.assert_close(torch.cat([first, second], 1), full, atol=1e-5, rtol=1e-4)
    for layer in range(4):
        torch.testing.assert_close(torch.cat([first_states[layer], second_states[layer]], 1), full_states[layer],
                                   atol=1e-5, rtol=1e-4)
    assert cache.key_padding_mask is None  # never padded: SDPA needs no mask at all


@pytest.mark.parametrize("pre_layer_norm", [False, True])
def test_cached_decoder_equals_full_pass_with_padding(pre_layer_norm):
    stack = decoder(pre_layer_norm)
    memory = torch.randn(3, 5, HIDDEN)
    memory_mask = (torch.arange(5)[None, :] < torch.tensor([[5], [2], [4]])).long()
    total = sum(CHUNKS)
    target = torch.randn(3, total, HIDDEN)
    target_mask = left_padding([8, 7, 5], total)
    full, _ = stack(target, memory, target_mask, memory_mask)
    cache, start, pieces = KeyValueCache(), 0, []
    kv_calls = []
    hook = stack.layers[0].cross_attention.kv_proj.register_forward_hook(lambda *args: kv_calls.append(1))
    for step, size in enumerate(CHUNKS):
        # the memory and its mask are given at the first step only: the cache keeps their keys/values
        out, _ = stack(target[:, start:start + size], memory if step == 0 else None,
                       target_mask[:, start:start + size], memory_mask if step == 0 else None, cache=cache)
        pieces.append(out)
        start += size
    hook.remove()
    assert len(kv_calls) == 1  # the memory is projected once
    real = target_mask.bool()
    torch.testing.assert_close(torch.cat(pieces, 1)[real], full[real], atol=1e-5, rtol=1e-4)


def test_reorder_follows_beams_and_expands_the_batch():
    """Reordering the cache between steps equals decoding the reordered rows from scratch."""
    stack = decoder(False)
    memory = torch.randn(2, 5, HIDDEN)
    memory_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    target = torch.randn(2, 3, HIDDEN)
    cache = KeyValueCache()
    stack(target[:, :2], memory, None, memory_mask, cache=cache)
    expand = torch.tensor([0, 0, 1, 1, 1])  # 2 sources -> 5 beams
    cache.reorder(expand)
    assert cache.batch_size == 5 and cache.memory_padding_mask.shape == (5, 5)
    beams = torch.randn(5, 1, HIDDEN)  # each beam continues with its own token
    step, _ = stack(beams, cache=cache)
    choose = torch.tensor([4, 4, 0, 2])  # keep beams 4, 4, 0, 2
    cache.reorder(choose)
    last = torch.randn(4, 1, HIDDEN)
    out, _ = stack(last, cache=cache)
    rows = expand[choose]
    history = torch.cat([target[rows, :2], beams[choose], last], 1)
    expected, _ = stack(history, memory[rows], None, memory_mask[rows])
    torch.testing.assert_close(out, expected[:, -1:], atol=1e-5, rtol=1e-4)
    assert cache.length == 4


def test_reorder_keeps_left_padding_of_prompts():
    stack = encoder(True)
    x = torch.randn(2, 5, HIDDEN)
    mask = left_padding([5, 2], 5)
    cache = KeyValueCache()
    stack(x[:, :4], mask[:, :4], causal=True, cache=cache)
    cache.reorder(torch.tensor([1, 0]))
    out, _ = stack(x[[1, 0], 4:], causal=True, cache=cache)  # no mask: the new token is real
    full, _ = stack(x[[1, 0]], mask[[1, 0]], causal=True)
    torch.testing.assert_close(out[:, -1], full[:, -1], atol=1e-5, rtol=1e-4)


def test_cache_with_custom_mask_folds_in_the_recorded_padding():
    stack = encoder(False)
    x = torch.randn(2, 5, HIDDEN)
    mask = left_padding([5, 3], 5)
    cache = KeyValueCache()
    stack(x[:, :3], mask[:, :3], causal=True, cache=cache)
    # a boolean (B, t, past + t) mask for the two new tokens: plain causal; the cache adds the padding
    custom = torch.ones(2, 2, 5, dtype=torch.bool).tril(3)
    out, _ = stack(x[:, 3:], custom, cache=cache)
    full, _ = stack(x, mask, causal=True)
    torch.testing.assert_close(out, full[:, 3:], atol=1e-5, rtol=1e-4)


def test_left_padded_positions_from_the_mask_match_unpadded_rows():
    """GPT-style batched prompts: left padding + positions counted over real tokens = each prompt alone."""
    torch.manual_seed(2)
    embeddings = TransformerEmbeddings(11, HIDDEN, 16, type_vocab_size=0, dropout=0.0, layer_norm=False).eval()
    stack = encoder(True)
    prompt = torch.tensor([[3, 4, 5, 6], [0, 0, 7, 8]])  # row 1 is the prompt [7, 8], left-padded
    mask = (prompt != 0).long()
    cache = KeyValueCache()
    hidden = embeddings(prompt, position_ids=position_ids_from_attention_mask(mask))
    stack(hidden, mask, causal=True, cache=cache)
    new = torch.tensor([[9], [10]])
    mask = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1)
    positions = position_ids_from_attention_mask(mask)[:, -1:]
    out, _ = stack(embeddings(new, position_ids=positions), mask, causal=True, cache=cache)
    alone, _ = stack(embeddings(torch.tensor([[7, 8, 10]])), causal=True)
    torch.testing.assert_close(out[1], alone[0, -1:], atol=1e-5, rtol=1e-4)
    assert positions.tolist() == [[4], [2]]


def test_training_through_a_cache_keeps_gradients():
    stack = encoder(False)
    stack.train()
    x = torch.randn(2, 4, HIDDEN, requires_grad=True)
    cache = KeyValueCache()
    first, _ = stack(x[:, :2], causal=True, cache=cache)
    second, _ = stack(x[:, 2:], causal=True, cache=cache)
    second.sum().backward()
    assert x.grad is not None and x.grad[:, :2].abs().sum() > 0  # the cached keys carry gradient


def test_cache_errors_are_clear():
    stack = encoder(False)
    cache = KeyValueCache()
    stack(torch.randn(2, 3, HIDDEN), causal=True, cache=cache)
    with pytest.raises(Word2BertError, match="reorder"):
        stack(torch.randn(3, 1, HIDDEN), causal=True, cache=cache)
    with pytest.raises(Word2BertError, match="cache of 3 positions"):
        stack(torch.randn(2, 1, HIDDEN), torch.ones(2, 2), causal=True, cache=cache)
    with pytest.raises(Word2BertError, match="out of range"):
        cache.reorder(torch.tensor([0, 2]))
    with pytest.raises(Word2BertError, match="last_layer_positions"):
        stack(torch.randn(2, 1, HIDDEN), cache=cache, last_layer_positions=torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(Word2BertError, match="memory"):
        decoder(False)(torch.randn(2, 1, HIDDEN), None, cache=KeyValueCache())


def test_truncate_forgets_the_last_positions():
    """Feeding [x_3, extra] then truncating the extra equals having fed x_3 alone."""
    stack = encoder(False)
    x = torch.randn(2, 5, HIDDEN)
    mask = left_padding([5, 4], 5)
    cache = KeyValueCache()
    stack(x[:, :3], mask[:, :3], causal=True, cache=cache)
    stack(torch.cat([x[:, 3:4], torch.randn(2, 1, HIDDEN)], 1), causal=True, cache=cache)
    cache.truncate(4)
    assert cache.length == 4 and cache.key_padding_mask.shape == (2, 4)
    out, _ = stack(x[:, 4:], causal=True, cache=cache)
    full, _ = stack(x, mask, causal=True)
    torch.testing.assert_close(out, full[:, 4:], atol=1e-5, rtol=1e-4)
    with pytest.raises(Word2BertError, match="truncate"):
        cache.truncate(9)


def test_reorder_within_each_source_keeps_the_memory_without_copying_it():
    """Beam search moves rows only among the beams of one source: the memory keys/values stay put."""
    stack = decoder(True)
    memory = torch.randn(2, 4, HIDDEN)
    memory_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    cache = KeyValueCache()
    first = torch.randn(2, 1, HIDDEN)
    stack(first, memory, None, memory_mask, cache=cache)
    cache.reorder(torch.tensor([0, 0, 1, 1]))  # expand to 2 beams per source
    kept = cache.layers[0].cross_attention._keys
    beams = torch.randn(4, 1, HIDDEN)
    stack(beams, cache=cache)
    swap = torch.tensor([1, 1, 3, 2])  # beam 1 of source 0 twice, the beams of source 1 swapped
    cache.reorder(swap)
    assert cache.layers[0].cross_attention._keys is kept  # not copied
    last = torch.randn(4, 1, HIDDEN)
    out, _ = stack(last, cache=cache)
    rows = torch.tensor([0, 0, 1, 1])[swap]
    history = torch.cat([first[rows], beams[swap], last], 1)
    expected, _ = stack(history, memory[rows], None, memory_mask[rows])
    torch.testing.assert_close(out, expected[:, -1:], atol=1e-5, rtol=1e-4)
