"""Multi-head self- and cross-attention against a plain-matmul softmax reference, under every kind of mask."""

import math

import pytest
import torch

from word2bert.errors import Word2BertError
from word2bert.nn import (
    MultiHeadCrossAttention,
    MultiHeadSelfAttention,
    TransformerEncoder,
    TransformerLayer,
    build_attention_mask,
    build_memory_mask,
    causal_mask,
)
from word2bert.nn.embeddings import sinusoidal_position_table

torch.set_num_threads(2)

BATCH, LENGTH, HIDDEN, HEADS = 3, 7, 16, 4


def reference_attention(module: MultiHeadSelfAttention, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d_h) with disallowed scores at -inf) V, heads concatenated, then W_o.

    Written from separate Q/K/V slices of the fused weight, explicit matmuls and an explicit
    softmax; ``allowed`` is a full (B, T, T) boolean matrix. Rows with nothing allowed give 0.
    """
    d, h = module.hidden_size, module.num_heads
    dh = d // h
    w, b = module.qkv_proj.weight, module.qkv_proj.bias
    q = x @ w[:d].T + b[:d]
    k = x @ w[d : 2 * d].T + b[d : 2 * d]
    v = x @ w[2 * d :].T + b[2 * d :]
    out = torch.zeros_like(x)
    for head in range(h):
        cols = slice(head * dh, (head + 1) * dh)
        scores = q[:, :, cols] @ k[:, :, cols].transpose(1, 2) / math.sqrt(dh)
        scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.exp(scores - scores.amax(-1, keepdim=True).clamp_min(-1e30))
        weights = torch.where(allowed, weights, torch.zeros_like(weights))
        denominator = weights.sum(-1, keepdim=True)
        weights = torch.where(denominator > 0, weights / denominator.clamp_min(1e-30), torch.zeros_like(weights))
        out[:, :, cols] = weights @ v[:, :, cols]
    return out @ module.out_proj.weight.T + module.out_proj.bias


@pytest.fixture
def attention():
    torch.manual_seed(0)
    module = MultiHeadSelfAttention(HIDDEN, HEADS, attention_dropout=0.5).eval()  # eval: dropout off
    for parameter in module.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    return module


def run(module, x, raw_mask, causal=False):
    return module(x, build_attention_mask(raw_mask, x.shape[1], causal), causal)


def test_no_mask_matches_reference(attention):
    x = torch.randn(BATCH, LENGTH, HIDDEN)
    allowed = torch.ones(BATCH, LENGTH, LENGTH, dtype=torch.bool)
    torch.testing.assert_close(run(attention, x, None), reference_attention(attention, x, allowed), atol=1e-5, rtol=1e-4)


def test_padding_mask_matches_reference(attention):
    x = torch.randn(BATCH, LENGTH, HIDDEN)
    lengths = torch.tensor([7, 4, 1])
    padding = (torch.arange(LENGTH)[None, :] < lengths[:, None]).long()
    allowed = padding[:, None, :].bool().expand(BATCH, LENGTH, LENGTH)
    ours = run(attention, x, padding)
    torch.testing.assert_close(ours, reference_attention(attention, x, allowed), atol=1e-5, rtol=1e-4)
    # keys beyond the length have no influence: change the padded inputs, real outputs stay put
    x2 = x.clone()
    x2[1, 4:] = torch.randn(3, HIDDEN) * 10
    ours2 = run(attention, x2, padding)
    torch.testing.assert_close(ours2[1, :4], ours[1, :4], atol=1e-5, rtol=1e-4)


def test_all_ones_padding_mask_is_dropped_for_the_fast_kernel():
    assert build_attention_mask(torch.ones(2, 5, dtype=torch.long), 5) is None


def test_causal_matches_reference(attention):
    x = torch.randn(BATCH, LENGTH, HIDDEN)
    allowed = torch.ones(LENGTH, LENGTH, dtype=torch.bool).tril().expand(BATCH, LENGTH, LENGTH)
    expected = reference_attention(attention, x, allowed)
    torch.testing.assert_close(run(attention, x, None, causal=True), expected, atol=1e-5, rtol=1e-4)
    # the future never leaks: perturbing the last token leaves earlier outputs unchanged
    x2 = x.clone()
    x2[:, -1] += 5.0
    torch.testing.assert_close(run(attention, x2, None, causal=True)[:, :-1], expected[:, :-1], atol=1e-5, rtol=1e-4)


def test_causal_plus_padding_matches_reference(attention):
    x = torch.randn(BATCH, LENGTH, HIDDEN)
    padding = (torch.arange(LENGTH)[None, :] < torch.tensor([[7], [5], [2]])).long()
    allowed = padding[:, None, :].bool() & torch.ones(LENGTH, LENGTH, dtype=torch.bool).tril()
    torch.testing.assert_close(
        run(attention, x, padding, causal=True), reference_attention(attention, x, allowed), atol=1e-5, rtol=1e-4
    )


def test_custom_per_example_masks_match_reference(attention):
    torch.manual_seed(1)
    x = torch.randn(BATCH, LENGTH, HIDDEN)
    allowed = torch.rand(BATCH, LENGTH, LENGTH) < 0.5
    allowed[0, 3] = False  # a query row that may attend to nothing -> zero context
    expected = reference_attention(attention, x, allowed)
    torch.testing.assert_close(run(attention, x, allowed), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(run(attention, x, allowed[:, None]), expected, atol=1e-5, rtol=1e-4)
    # a UniLM-style seq2seq mask: source (first 3) bidirectional, target causal over source + itself
    source = 3
    unilm = torch.ones(LENGTH, LENGTH, dtype=torch.bool).tril()
    unilm[:, :source] = True
    unilm[:source, source:] = False
    unilm = unilm.expand(BATCH, LENGTH, LENGTH)
    torch.testing.assert_close(run(attention, x, unilm), reference_attention(attention, x, unilm), atol=1e-5, rtol=1e-4)


def test_per_head_masks_match_reference(attention):
    x = torch.randn(1, LENGTH, HIDDEN)
    per_head = torch.rand(1, HEADS, LENGTH, LENGTH) < 0.6
    per_head[..., 0] = True
    ours = run(attention, x, per_head)
    # reference head by head: run the single-mask reference once per head and keep that head's columns
    d = HIDDEN // HEADS
    context = []
    for head in range(HEADS):
        out_projection = attention.out_proj
        saved = out_projection.weight.data.clone(), out_projection.bias.data.clone()
        out_projection.weight.data = torch.eye(HIDDEN)
        out_projection.bias.data = torch.zeros(HIDDEN)
        full = reference_attention(attention, x, per_head[:, head])
        out_projection.weight.data, out_projection.bias.data = saved
        context.append(full[:, :, head * d : (head + 1) * d])
    expected = torch.cat(context, -1) @ attention.out_proj.weight.T + attention.out_proj.bias
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def test_dropout_is_active_only_in_training(attention):
    x = torch.randn(BATCH, LENGTH, HIDDEN)
    attention.train()
    torch.manual_seed(3)
    first = attention(x)
    torch.manual_seed(4)
    assert not torch.allclose(first, attention(x))
    attention.eval()
    torch.testing.assert_close(attention(x), attention(x))


def test_bad_masks_and_shapes_raise_clear_errors():
    with pytest.raises(Word2BertError, match="divisible"):
        MultiHeadSelfAttention(10, 3)
    with pytest.raises(Word2BertError, match="positions"):
        build_attention_mask(torch.ones(2, 4), 5)
    with pytest.raises(Word2BertError, match="boolean"):
        build_attention_mask(torch.ones(2, 5, 5), 5)
    with pytest.raises(Word2BertError, match="does not match"):
        build_attention_mask(torch.ones(2, 4, 4, dtype=torch.bool), 5)


def reference_post_ln_layer(layer: TransformerLayer, x: torch.Tensor) -> torch.Tensor:
    """h = LN(x + Attn(x)); out = LN(h + W2 gelu(W1 h)), written with functional ops."""
    allowed = torch.ones(x.shape[0], x.shape[1], x.shape[1], dtype=torch.bool)
    ln1, ln2, ff = layer.attention_norm, layer.feed_forward_norm, layer.feed_forward
    h = torch.nn.functional.layer_norm(x + reference_attention(layer.attention, x, allowed), (x.shape[-1],),
                                       ln1.weight, ln1.bias, ln1.eps)
    inner = h @ ff.dense_in.weight.T + ff.dense_in.bias
    inner = 0.5 * inner * (1 + torch.erf(inner / math.sqrt(2)))
    return torch.nn.functional.layer_norm(h + inner @ ff.dense_out.weight.T + ff.dense_out.bias, (x.shape[-1],),
                                          ln2.weight, ln2.bias, ln2.eps)


def test_post_ln_layer_matches_formula():
    torch.manual_seed(5)
    layer = TransformerLayer(HIDDEN, HEADS, 32, layer_norm_eps=1e-6).eval()
    x = torch.randn(2, LENGTH, HIDDEN)
    torch.testing.assert_close(layer(x), reference_post_ln_layer(layer, x), atol=1e-5, rtol=1e-4)


def test_pre_ln_stack_has_final_norm_and_differs_from_post_ln():
    torch.manual_seed(6)
    post = TransformerEncoder(2, HIDDEN, HEADS, 32, pre_layer_norm=False).eval()
    pre = TransformerEncoder(2, HIDDEN, HEADS, 32, pre_layer_norm=True).eval()
    assert post.final_norm is None and pre.final_norm is not None
    pre.load_state_dict({**post.state_dict(), **{k: v for k, v in pre.state_dict().items() if "final" in k}})
    x = torch.randn(2, LENGTH, HIDDEN)
    last, hidden = pre(x, output_hidden_states=True)
    assert len(hidden) == 3 and torch.equal(hidden[0], x) and torch.equal(hidden[-1], last)
    # pre-LN formula for layer 1: h = x + Attn(LN(x)); out = h + FFN(LN(h))
    layer = pre.layers[0]
    allowed = torch.ones(2, LENGTH, LENGTH, dtype=torch.bool)
    h = x + reference_attention(layer.attention, layer.attention_norm(x), allowed)
    expected = h + layer.feed_forward(layer.feed_forward_norm(h))
    torch.testing.assert_close(hidden[1], expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(post(x)[0], last, atol=1e-3)


def test_sinusoidal_table_matches_formula():
    table = sinusoidal_position_table(50, 8)
    pos, i = 17, 3
    assert table[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 8)), abs=1e-6)
    assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 8)), abs=1e-6)
    odd = sinusoidal_position_table(5, 7)
    assert odd.shape == (5, 7) and odd[3, 6].item() == pytest.approx(math.sin(3 / 10000 ** (6 / 7)), abs=1e-6)


@pytest.mark.parametrize("mask_kind", ["none", "padding", "causal", "custom"])
@pytest.mark.parametrize("pre_layer_norm", [False, True])
def test_last_layer_at_selected_positions_equals_full_rows(mask_kind, pre_layer_norm):
    """Computing the last layer only at some query rows gives exactly those rows of the full result."""
    torch.manual_seed(7)
    encoder = TransformerEncoder(2, HIDDEN, HEADS, 32, pre_layer_norm=pre_layer_norm).eval()
    x = torch.randn(BATCH, LENGTH, HIDDEN)
    raw, causal = None, False
    if mask_kind == "padding":
        raw = (torch.arange(LENGTH)[None, :] < torch.tensor([[7], [5], [3]])).long()
    elif mask_kind == "causal":
        causal = True
    elif mask_kind == "custom":
        raw = torch.rand(BATCH, LENGTH, LENGTH) < 0.6
        raw[..., 0] = True
    positions = torch.tensor([[0, 3, 6], [0, 1, 1], [0, 2, 5]])
    full, _ = encoder(x, raw, causal)
    selected, _ = encoder(x, raw, causal, last_layer_positions=positions)
    expected = torch.stack([full[b, positions[b]] for b in range(BATCH)])
    torch.testing.assert_close(selected, expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(Word2BertError, match="output_hidden_states"):
        encoder(x, raw, causal, output_hidden_states=True, last_layer_positions=positions)


# --- cross-attention ---------------------------------------------------------------------------


def reference_cross_attention(module, x, memory, memory_keep):
    """softmax(Q K^T / sqrt(d_h), padded memory keys at -inf) V per head, then W_o; explicit matmuls.

    Q from ``x`` with ``query_proj``; K and V from ``memory`` with the two halves of ``kv_proj``;
    ``memory_keep`` (B, S) bool marks the real memory positions."""
    d, h = module.hidden_size, module.num_heads
    dh = d // h
    q = x @ module.query_proj.weight.T + module.query_proj.bias
    w, b = module.kv_proj.weight, module.kv_proj.bias
    k = memory @ w[:d].T + b[:d]
    v = memory @ w[d:].T + b[d:]
    out = torch.zeros(x.shape[0], x.shape[1], d)
    for head in range(h):
        cols = slice(head * dh, (head + 1) * dh)
        scores = q[:, :, cols] @ k[:, :, cols].transpose(1, 2) / math.sqrt(dh)
        scores = scores.masked_fill(~memory_keep[:, None, :], float("-inf"))
        out[:, :, cols] = torch.softmax(scores, -1) @ v[:, :, cols]
    return out @ module.out_proj.weight.T + module.out_proj.bias


@pytest.mark.parametrize("memory_size", [None, 12])
def test_cross_attention_with_memory_padding_matches_reference(memory_size):
    torch.manual_seed(11)
    module = MultiHeadCrossAttention(HIDDEN, HEADS, attention_dropout=0.3, memory_size=memory_size).eval()
    for parameter in module.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    x = torch.randn(BATCH, 4, HIDDEN)
    memory = torch.randn(BATCH, LENGTH, memory_size or HIDDEN)
    keep = torch.arange(LENGTH)[None, :] < torch.tensor([[7], [3], [1]])
    ours = module(x, memory, build_memory_mask(keep.long(), LENGTH))
    torch.testing.assert_close(ours, reference_cross_attention(module, x, memory, keep), atol=1e-5, rtol=1e-4)
    # the padded memory positions have no influence
    memory2 = memory.clone()
    memory2[1, 3:] = torch.randn(4, memory.shape[-1]) * 10
    torch.testing.assert_close(module(x, memory2, build_memory_mask(keep, LENGTH)), ours, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(module(x, memory2), ours, atol=1e-3)  # ... which a missing mask would see
    assert build_memory_mask(torch.ones(2, 5), 5) is None
    with pytest.raises(Word2BertError, match="memory"):
        build_memory_mask(torch.ones(2, 4), 5)


# --- masks with cached positions ---------------------------------------------------------------


def test_causal_mask_with_past_is_bottom_right_aligned():
    # 2 new queries after 3 cached positions: they sit at positions 3 and 4
    assert causal_mask(2, 5).tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    assert build_attention_mask(None, 1, causal=True, past_length=4) is None  # one new token sees everything
    assert build_attention_mask(None, 3, causal=True) is None  # SDPA's own causal kernel
    mask = build_attention_mask(torch.tensor([[0, 1, 1, 1, 1]]), 2, causal=True, past_length=3)
    assert mask.shape == (1, 1, 2, 5)
    assert mask[0, 0].tolist() == [[False, True, True, True, False], [False, True, True, True, True]]
    with pytest.raises(Word2BertError, match="3 cached"):
        build_attention_mask(torch.ones(1, 2), 2, past_length=3)


@pytest.mark.parametrize("kind", ["padding", "causal", "nothing_visible"])
def test_short_training_attention_equals_sdpa_with_gradients(kind):
    """Training on short keys takes attend's unfused path: same values and gradients as SDPA's kernel."""
    from word2bert.nn.attention import UNFUSED_MAX_KEYS, attend

    generator = torch.Generator().manual_seed(5)
    shape = (3, 2, 7, 8)
    inputs = [torch.randn(*shape, dtype=torch.float64, generator=generator) for _ in range(3)]
    mask, causal = None, kind == "causal"
    if kind != "causal":
        mask = torch.ones(3, 1, 1, 7, dtype=torch.bool)
        mask[1, :, :, 4:] = False
        if kind == "nothing_visible":
            mask[2] = False  # a row that may attend to nothing gets zeros
    assert shape[2] <= UNFUSED_MAX_KEYS
    ours = [x.clone().requires_grad_(True) for x in inputs]
    theirs = [x.clone().requires_grad_(True) for x in inputs]
    out = attend(*ours, mask, causal=causal)
    expected = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=mask, is_causal=causal)
    if kind == "nothing_visible":  # SDPA gives NaN there; attend's contract is a zero row
        assert torch.equal(out[2].detach(), torch.zeros_like(out[2]))
        out, expected = out[:2], expected[:2]
    torch.testing.assert_close(out, expected)
    weights = torch.randn(out.shape, dtype=torch.float64, generator=generator)
    mine = torch.autograd.grad((out * weights).sum(), ours)
    reference = torch.autograd.grad((expected * weights).sum(), theirs)
    for a, b in zip(mine, reference):
        rows = slice(0, 2) if kind == "nothing_visible" else slice(None)
        torch.testing.assert_close(a[rows], b[rows])
