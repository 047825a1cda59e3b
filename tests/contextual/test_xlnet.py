"""XLNet against transformers' XLNetModel / XLNetLMHeadModel (random weights, two shapes, both ways)."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from word2bert.errors import Word2BertError  # noqa: E402
from word2bert.models.xlnet import XLNetConfig, XLNetLMHeadModel, XLNetModel  # noqa: E402
from word2bert.objectives.permutation_lm import PermutationLanguageModeling  # noqa: E402

torch.set_num_threads(1)

SHAPES = {
    "small": dict(vocab_size=61, d_model=32, n_layer=2, n_head=4, d_inner=48, ff_activation="gelu"),
    "other": dict(vocab_size=45, d_model=24, n_layer=3, n_head=2, d_inner=40, ff_activation="relu",
                  bi_data=True, clamp_len=5, reuse_len=4),
}


def load_from_hf(ours, hf):
    """transformers' weights into ours through the key map, in memory (every one of our tensors set)."""
    state, missing = ours.hf_key_map(ours.config).to_ours(hf.state_dict())
    assert not missing
    result = ours.load_state_dict(state, strict=False)
    assert not result.unexpected_keys and not result.missing_keys
    return ours


def hf_pair(shape, cls=transformers.XLNetLMHeadModel, ours_cls=XLNetLMHeadModel, **extra):
    torch.manual_seed(0)
    hf_config = transformers.XLNetConfig(**SHAPES[shape], mem_len=7, dropout=0.0, **extra)
    hf = cls(hf_config).eval()
    ours = load_from_hf(ours_cls(XLNetConfig.from_dict(hf_config.to_dict())).eval(), hf)
    return hf, ours


def hf_mems(mems):
    """transformers keeps memory as (M, B, d); ours is (B, M, d)."""
    return [m.transpose(0, 1) for m in mems]


def two_stream_batch(batch, length, vocab, seed):
    rng = np.random.default_rng(seed)
    items = {"input_ids": rng.integers(0, vocab, (batch, length))}
    PermutationLanguageModeling(prediction_k=3, target_unit="token").prepare(items, None, rng)
    return {key: torch.as_tensor(value) for key, value in items.items()}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_lm_head_parity_with_and_without_memory(shape):
    hf, ours = hf_pair(shape)
    vocab = SHAPES[shape]["vocab_size"]
    torch.manual_seed(3)
    first = torch.randint(0, vocab, (4, 9))
    segments = torch.randint(0, 2, (4, 9))
    with torch.no_grad():
        theirs = hf(first, token_type_ids=segments, use_mems=True)
        mine = ours(first, token_type_ids=segments)
    torch.testing.assert_close(mine.logits, theirs.logits, atol=1e-5, rtol=1e-5)
    for a, b in zip(mine.state, hf_mems(theirs.mems)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # the next segment, two-stream (permutation masks, predictions at target_mapping), with memory
    batch = two_stream_batch(4, 9, vocab, seed=4)
    batch["perm_mask"] = batch["perm_mask"].float()
    with torch.no_grad():
        theirs2 = hf(batch["input_ids"], perm_mask=batch["perm_mask"], target_mapping=batch["target_mapping"],
                     token_type_ids=segments, mems=theirs.mems, use_mems=True, labels=batch["labels"])
        mine2 = ours(batch["input_ids"], perm_mask=batch["perm_mask"], target_mapping=batch["target_mapping"],
                     token_type_ids=segments, state=mine.state, labels=batch["labels"])
    torch.testing.assert_close(mine2.logits, theirs2.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mine2.loss, theirs2.loss, atol=1e-5, rtol=1e-5)
    for a, b in zip(mine2.state, hf_mems(theirs2.mems)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # padding (attention_mask) with memory
    mask = torch.ones(4, 9, dtype=torch.long)
    mask[1, 6:] = 0
    with torch.no_grad():
        theirs3 = hf(first, attention_mask=mask, mems=theirs.mems, use_mems=True)
        mine3 = ours(first, attention_mask=mask, state=mine.state)
        theirs4 = hf(batch["input_ids"], attention_mask=mask, perm_mask=batch["perm_mask"],
                     target_mapping=batch["target_mapping"], mems=theirs.mems, use_mems=True)
        mine4 = ours(batch["input_ids"], attention_mask=mask, perm_mask=batch["perm_mask"],
                     target_mapping=batch["target_mapping"], state=mine.state)
    torch.testing.assert_close(mine3.logits, theirs3.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mine4.logits, theirs4.logits, atol=1e-5, rtol=1e-5)


def test_causal_attention_parity():
    """attn_type="uni" (Transformer-XL's causal attention) with same_length and clamp_len."""
    hf, ours = hf_pair("small", attn_type="uni", same_length=True, clamp_len=3)
    ids = torch.randint(0, 61, (2, 8))
    with torch.no_grad():
        theirs = hf(ids, use_mems=True)
        theirs = hf(ids.flip(1), mems=theirs.mems, use_mems=True)
        mine = ours(ids)
        mine = ours(ids.flip(1), state=mine.state)
    torch.testing.assert_close(mine.logits, theirs.logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_checkpoints_both_ways(shape, tmp_path):
    hf, ours = hf_pair(shape, cls=transformers.XLNetModel, ours_cls=XLNetModel)
    ids = torch.randint(0, SHAPES[shape]["vocab_size"], (2, 6))
    # transformers -> word2bert
    hf.save_pretrained(tmp_path / "hf")
    loaded = XLNetModel.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        expected = hf(ids, use_mems=True)
        got = loaded(ids)
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state, atol=1e-5, rtol=1e-5)
    # word2bert (LM head) -> transformers
    torch.manual_seed(5)
    mine = XLNetLMHeadModel(XLNetConfig(**SHAPES[shape], mem_len=4, dropout=0.0)).eval()
    with torch.no_grad():
        mine.objectives["plm"].bias.normal_()
    mine.save_pretrained(tmp_path / "ours")
    theirs = transformers.XLNetLMHeadModel.from_pretrained(tmp_path / "ours").eval()
    batch = two_stream_batch(2, 6, SHAPES[shape]["vocab_size"], seed=6)
    with torch.no_grad():
        first_ours = mine(ids)
        first_theirs = theirs(ids, use_mems=True)
        a = mine(batch["input_ids"], perm_mask=batch["perm_mask"], target_mapping=batch["target_mapping"],
                 state=first_ours.state)
        b = theirs(batch["input_ids"], perm_mask=batch["perm_mask"].float(), target_mapping=batch["target_mapping"],
                   mems=first_theirs.mems, use_mems=True)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)
    # and back into word2bert's LM head model
    reloaded = XLNetLMHeadModel.from_pretrained(tmp_path / "ours").eval()
    for key, value in mine.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key


def test_tied_biases_round_trip(tmp_path):
    config = XLNetConfig(**SHAPES["small"], untie_r=False, mem_len=2)
    model = XLNetModel(config)
    model.save_pretrained(tmp_path)
    hf = transformers.XLNetModel.from_pretrained(tmp_path)
    assert torch.equal(hf.layer[0].rel_attn.r_w_bias, hf.layer[1].rel_attn.r_w_bias)
    reloaded = XLNetModel.from_pretrained(tmp_path)
    assert reloaded.encoder.layers[1].attention.content_bias is reloaded.encoder.layers[0].attention.content_bias
    # an untied checkpoint cannot be squeezed into tied biases silently
    untied = XLNetModel(XLNetConfig(**SHAPES["small"], mem_len=2))
    untied.save_pretrained(tmp_path / "untied")
    with pytest.raises(Word2BertError, match="untie_r"):
        XLNetModel.from_pretrained(tmp_path / "untied", untie_r=False)


def test_prediction_never_sees_its_own_content():
    """Change a predicted token: its query-stream logits stay; change a token before it in the order: they move."""
    torch.manual_seed(7)
    model = XLNetLMHeadModel(XLNetConfig(**SHAPES["small"], mem_len=0, dropout=0.0)).eval()
    rng = np.random.default_rng(8)
    batch = {"input_ids": rng.integers(0, 61, (3, 10))}
    PermutationLanguageModeling(prediction_k=2.5, target_unit="token").prepare(batch, None, rng)
    tensors = {key: torch.as_tensor(value) for key, value in batch.items()}
    with torch.no_grad():
        base = model(**{k: v for k, v in tensors.items() if k != "labels"}).logits
    perm_mask = batch["perm_mask"]
    for row in range(3):
        positions = np.flatnonzero(batch["target_mapping"][row].sum(0))
        for slot, position in enumerate(positions):
            changed = tensors["input_ids"].clone()
            changed[row, position] = (changed[row, position] + 1) % 61
            with torch.no_grad():
                logits = model(changed, perm_mask=tensors["perm_mask"], target_mapping=tensors["target_mapping"]).logits
            torch.testing.assert_close(logits[row, slot], base[row, slot], atol=0, rtol=0)
            # the tokens it may see do change it
            seen = np.flatnonzero(~perm_mask[row, position])
            changed = tensors["input_ids"].clone()
            changed[row, seen] = (changed[row, seen] + 1) % 61
            with torch.no_grad():
                logits = model(changed, perm_mask=tensors["perm_mask"], target_mapping=tensors["target_mapping"]).logits
            assert (logits[row, slot] - base[row, slot]).abs().max() > 1e-4


def test_read_positions_and_pooling():
    torch.manual_seed(9)
    model = XLNetModel(XLNetConfig(**SHAPES["small"], mem_len=3, dropout=0.0)).eval()
    ids = torch.randint(0, 61, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    with torch.no_grad():
        full = model(ids, attention_mask=mask)
        rows = model(ids, attention_mask=mask, read_positions=torch.tensor([[6, 1], [4, 0]]))
    torch.testing.assert_close(rows.last_hidden_state[0], full.last_hidden_state[0, [6, 1]], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rows.last_hidden_state[1], full.last_hidden_state[1, [4, 0]], atol=1e-5, rtol=1e-5)
    # pooled: the last real token (XLNet's "last" summary), also with right padding
    torch.testing.assert_close(full.pooler_output[0], full.last_hidden_state[0, 6])
    torch.testing.assert_close(full.pooler_output[1], full.last_hidden_state[1, 4])
    assert len(full.state) == 2 and full.state[0].shape == (2, 3, 32)


@pytest.mark.parametrize("values, message", [
    (dict(mem_len=-1), "mem_len"),
    (dict(clamp_len=0), "clamp_len"),
    (dict(attn_type="causal"), "attn_type"),
    (dict(d_model=30, n_head=4), "divisible"),
    (dict(same_length=True), "same_length"),
])
def test_bad_config_gets_clear_messages(values, message):
    with pytest.raises(Word2BertError, match=message):
        XLNetConfig(**{**SHAPES["small"], **values})


def test_bad_inputs_get_clear_messages():
    model = XLNetModel(XLNetConfig(**SHAPES["small"], mem_len=2)).eval()
    ids = torch.randint(0, 61, (2, 5))
    with pytest.raises(Word2BertError, match="vocab_size"):
        model(ids + 100)
    with pytest.raises(Word2BertError, match="one-hot"):
        model(ids, target_mapping=torch.full((2, 1, 5), 0.5))
    with pytest.raises(Word2BertError, match="perm_mask"):
        model(ids, perm_mask=torch.zeros(2, 4, 4))
    with pytest.raises(Word2BertError, match="batch size"):
        model(ids, state=model(ids[:1]).state)
    with pytest.raises(Word2BertError, match="position_ids"):
        model(ids, position_ids=torch.arange(5))


def test_gradients_match_transformers():
    """One training step's loss and every gradient (through the key map) equal transformers' (memory given)."""
    hf, ours = hf_pair("small")
    hf.train(), ours.train()
    batch = two_stream_batch(4, 9, 61, seed=10)
    memory = [torch.randn(4, 5, 32) for _ in range(2)]
    segments = torch.randint(0, 2, (4, 9))
    theirs = hf(batch["input_ids"], perm_mask=batch["perm_mask"].float(), target_mapping=batch["target_mapping"],
                labels=batch["labels"], mems=[m.transpose(0, 1) for m in memory], use_mems=True,
                token_type_ids=segments)
    mine = ours(batch["input_ids"], perm_mask=batch["perm_mask"], target_mapping=batch["target_mapping"],
                labels=batch["labels"], state=memory, token_type_ids=segments)
    theirs.loss.backward()
    mine.loss.backward()
    torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-6, rtol=1e-5)
    their_grads = {name: p.grad if p.grad is not None else torch.zeros_like(p) for name, p in hf.named_parameters()}
    their_grads["lm_loss.bias"] = hf.lm_loss.bias.grad
    mapped = ours.hf_key_map(ours.config).to_ours(their_grads)[0]
    for name, parameter in ours.named_parameters():
        grad = parameter.grad
        torch.testing.assert_close(grad, mapped[name], atol=1e-6, rtol=1e-4, msg=name)


def planted_stream(length, seed):
    """Four fixed sentences in random order: every word is predictable from either side."""
    sentences = [[0, 1, 2, 3, 4, 5, 0, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15, 16],
                 [17, 18, 19, 20, 21, 22, 23, 24], [25, 26, 27, 28, 29, 0, 30, 31, 32]]
    rng = np.random.default_rng(seed)
    words = []
    while len(words) < length:
        words += sentences[rng.integers(4)]
    return np.array(words[:length])


def test_permutation_lm_learns_a_planted_language():
    """Trained on windows of a stream with memory carried, the query stream learns to predict the
    permuted targets: loss from log(33) = 3.5 to under 1."""
    torch.manual_seed(0)
    model = XLNetLMHeadModel(XLNetConfig(vocab_size=33, d_model=32, n_layer=2, n_head=2, d_inner=64,
                                         dropout=0.0, mem_len=12)).train()
    objective = PermutationLanguageModeling(prediction_k=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=6e-3)
    rows = planted_stream(8 * 3000, 0).reshape(8, 3000)
    rng = np.random.default_rng(1)
    state, losses = None, []
    for step in range(200):
        start = step * 24 % (3000 - 24)
        batch = {"input_ids": rows[:, start:start + 24].copy()}
        objective.prepare(batch, None, rng)
        batch = {key: torch.as_tensor(value) for key, value in batch.items()}
        output = model(**batch, state=state)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        state = output.state
        losses.append(output.loss.item())
    assert np.mean(losses[:10]) > 3.2
    assert np.mean(losses[-20:]) < 1.0
