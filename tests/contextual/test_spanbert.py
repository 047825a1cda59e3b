"""SpanBERT: span bounds, the SBO head against its formula, its loss falling on planted spans, and
checkpoints that keep both heads (transformers reads the encoder and MLM head)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from word2bert.models.spanbert import SpanBertConfig, SpanBertForPreTraining
from word2bert.objectives.mlm import MaskedLM
from word2bert.objectives.span import SpanBoundaryHead, span_bounds
from word2bert.objectives.units import SpanUnits

torch.set_num_threads(1)


def test_span_bounds_from_units_and_from_runs():
    positions = np.array([[2, 3, 4, 5, 9, 0], [1, 7, 8, 0, 0, 0]])
    valid = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], bool)
    units = np.array([[2, 2, 4, 4, 9, -1], [1, 7, 7, -1, -1, -1]])   # two spans touch at 3|4
    first, last = span_bounds(positions, valid, units)
    assert first.tolist() == [[2, 2, 4, 4, 9, -1], [1, 7, 7, -1, -1, -1]]
    assert last.tolist() == [[3, 3, 5, 5, 9, -1], [1, 8, 8, -1, -1, -1]]
    first, last = span_bounds(positions, valid)                       # runs join them
    assert first[0].tolist() == [2, 2, 2, 2, 9, -1] and last[0].tolist() == [5, 5, 5, 5, 9, -1]


def test_head_is_the_papers_formula():
    torch.manual_seed(0)
    head = SpanBoundaryHead(hidden_size=8, vocab_size=11, max_targets=5, position_size=3)
    embeddings = torch.randn(11, 8)
    left, right = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    relative = torch.tensor([[0, 1, 2, 9], [0, 0, 1, 4]])
    logits = head(left, right, relative, embeddings)
    assert logits.shape == (2, 4, 11)
    p = head.position_embeddings.weight[relative.clamp(max=4)]
    h0 = torch.cat([left, right, p], -1)
    h1 = F.layer_norm(F.gelu(h0 @ head.dense1.weight.T + head.dense1.bias), (8,),
                      head.layer_norm1.weight, head.layer_norm1.bias, 1e-12)
    y = F.layer_norm(F.gelu(h1 @ head.dense2.weight.T + head.dense2.bias), (8,),
                     head.layer_norm2.weight, head.layer_norm2.bias, 1e-12)
    torch.testing.assert_close(logits, y @ embeddings.T + head.bias)


def test_sbo_objective_loss_gradients_and_stats_equal_the_unfused_head():
    """The objective's fused output layer + cross-entropy against head(...) logits and F.cross_entropy:
    the same loss, gradients (hidden rows, head, embeddings, bias) and statistics; padding slots ignored."""
    from types import SimpleNamespace

    from word2bert.objectives.span import SpanBoundaryObjective

    torch.manual_seed(1)
    head = SpanBoundaryHead(hidden_size=8, vocab_size=13, max_targets=5, position_size=3)
    with torch.no_grad():
        head.bias.normal_()
    embedding = torch.nn.Embedding(13, 8)
    model = SimpleNamespace(get_input_embeddings=lambda: embedding)
    objective = SpanBoundaryObjective(head)
    labels = torch.tensor([[3, 7, -100], [12, 0, 5]])
    batch = {"sbo_left": torch.zeros(2, 3, dtype=torch.long), "sbo_right": torch.zeros(2, 3, dtype=torch.long),
             "sbo_relative": torch.tensor([[0, 1, 0], [0, 1, 7]]), "masked_labels": labels}
    hidden = torch.randn(2, 6, 8, requires_grad=True)
    parameters = [hidden, *head.parameters(), embedding.weight]

    out = objective(hidden, batch, model)
    fused = torch.autograd.grad(out.loss, parameters)
    logits = head(hidden[:, :3], hidden[:, 3:], batch["sbo_relative"], embedding.weight).reshape(6, 13)
    reference = F.cross_entropy(logits, labels.reshape(-1), ignore_index=-100)
    expected = torch.autograd.grad(reference, parameters)
    torch.testing.assert_close(out.loss, reference)
    for got, want in zip(fused, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    keep = labels.reshape(-1) != -100
    nll, count = out.stats["nll"]
    assert count == 5 and nll == pytest.approx(float(reference.detach()) * 5, rel=1e-6)
    correct = int((logits[keep].argmax(-1) == labels.reshape(-1)[keep]).sum())
    assert out.stats["accuracy"] == (correct, 5)


def small_model(vocab=48, span_boundary=True, seed=0):
    torch.manual_seed(seed)
    config = SpanBertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=40, hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0, sbo_max_targets=12, sbo_position_size=16)
    masking = MaskedLM(vocab, mask_id=4, special_ids=(0, 1, 2, 3, 4), pad_id=0,
                       units=SpanUnits(None, geometric_p=0.3, max_span=5), max_predictions_per_seq=8)
    return SpanBertForPreTraining(config, masking, span_boundary=span_boundary)


def test_sbo_loss_falls_on_planted_spans():
    """Rows count upwards (token t = (start + t) mod 40 + 5): a masked token is its left boundary
    plus its offset in the span, which the SBO head can read off the boundaries and positions."""
    model = small_model()
    rng = np.random.default_rng(0)
    collate = model.collator(pad_id=0, keys=("input_ids",))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    sbo = []
    for _ in range(100):
        starts = rng.integers(0, 40, 16)
        items = [{"input_ids": np.r_[2, (s + np.arange(30)) % 40 + 5, 3]} for s in starts]
        out = model(**collate(items, rng))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        correct, count = out.stats["sbo_accuracy"]
        sbo.append((out.losses["sbo"].item(), correct / count))
    first, last = np.mean(sbo[:10], axis=0), np.mean(sbo[-10:], axis=0)
    # chance is 1/40; a span touching another has a masked boundary (its own unit's, as in SpanBERT),
    # so not every slot can be read off its boundaries
    assert last[0] < 0.35 * first[0] and last[1] > 0.5, (first, last)


def test_last_layer_once_per_distinct_position_gives_the_same_losses_and_gradients(monkeypatch):
    """The pre-training model computes the last layer once per distinct read position (the SBO's
    boundaries are read by every token of their span); reading the concatenated positions in place
    instead gives the same losses and gradients."""
    import word2bert.models.pretraining as pretraining

    model = small_model()
    rng = np.random.default_rng(7)
    items = [{"input_ids": np.r_[2, rng.integers(5, 48, 36), 3]} for _ in range(6)]
    batch = model.collator(pad_id=0, keys=("input_ids",))(items, rng)
    union = torch.cat([model.objectives[name].read_positions(batch).long() for name in ("mlm", "sbo")], dim=1)
    distinct, slots = pretraining.distinct_positions(union)
    assert slots is not None and distinct.shape[1] <= 0.9 * union.shape[1]
    assert torch.equal(distinct.gather(1, slots), union)

    def losses_and_gradients():
        model.zero_grad()
        out = model(**batch)
        out.loss.backward()
        return out.losses, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    losses, gradients = losses_and_gradients()
    monkeypatch.setattr(pretraining, "distinct_positions", lambda positions: (positions, None))
    in_place_losses, in_place_gradients = losses_and_gradients()
    for name in ("mlm", "sbo"):
        torch.testing.assert_close(losses[name], in_place_losses[name])
    assert gradients.keys() == in_place_gradients.keys()
    for key, value in gradients.items():
        torch.testing.assert_close(value, in_place_gradients[key], rtol=1e-5, atol=1e-6, msg=key)


def test_checkpoint_keeps_both_heads(tmp_path):
    transformers = pytest.importorskip("transformers")
    model = small_model().eval()
    model.save_pretrained(tmp_path)
    again = SpanBertForPreTraining.from_pretrained(tmp_path).eval()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert any(k.startswith("objectives.sbo.head.") for k in again.state_dict())
    theirs = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()   # ignores the SBO head
    ids = torch.tensor([[2, 7, 8, 9, 10, 3, 0], [2, 11, 12, 13, 14, 15, 3]])
    mask = (ids != 0).long()
    positions = torch.arange(7).expand(2, -1).contiguous()
    with torch.no_grad():
        expected = theirs(input_ids=ids, attention_mask=mask).logits
        got = model(ids, mask, masked_positions=positions).mlm_logits
    assert (got - expected)[mask.bool()].abs().max() < 1e-5


def test_masked_unit_ids_keep_touching_spans_apart():
    """MaskedLM(return_unit_ids=True) emits each slot's unit (the selector's), which the SBO reads;
    a SpanBERT model switches it on, so two spans that touch get their own boundaries."""
    rng = np.random.default_rng(3)
    ids = np.tile(np.r_[2, np.arange(5, 65), 3], (64, 1))
    masking = MaskedLM(70, 4, special_ids=(0, 1, 2, 3, 4), max_predictions_per_seq=30, masked_lm_prob=0.4,
                       units=SpanUnits(None, geometric_p=0.2, max_span=10))
    collate = small_model_with(masking).collator(pad_id=0, keys=("input_ids",))
    assert masking.return_unit_ids
    batch = {k: v.numpy() for k, v in collate([{"input_ids": row} for row in ids], rng).items()}
    positions, valid, units = batch["masked_positions"], batch["masked_labels"] != -100, batch["masked_unit_ids"]
    assert ((units >= 0) == valid).all() and (units[valid] <= positions[valid]).all()
    touching = 0
    for row in range(len(ids)):
        spans = unit_spans(positions[row][valid[row]], units[row][valid[row]])
        touching += sum(a[-1] + 1 == b[0] for a, b in zip(spans, spans[1:]))
        for k, slot in enumerate(np.flatnonzero(valid[row])):   # boundaries of the slot's own unit
            span = next(s for s in spans if positions[row, slot] in s)
            assert batch["sbo_left"][row, slot] == span[0] - 1 and batch["sbo_right"][row, slot] == span[-1] + 1
            assert batch["sbo_relative"][row, slot] == positions[row, slot] - span[0]
    assert touching > 0   # the case that runs of masked positions would get wrong did occur
    token = MaskedLM(70, 4, special_ids=(0, 1, 2, 3, 4), return_unit_ids=True).apply(ids[:2], ids[:2] > 0, rng)
    valid = token["masked_labels"] != -100
    assert (token["masked_unit_ids"][valid] == token["masked_positions"][valid]).all()   # a token is its unit


def unit_spans(positions, units):
    spans = {}
    for position, unit in zip(positions, units):
        spans.setdefault(int(unit), []).append(int(position))
    for unit, members in spans.items():
        assert members[0] == unit and members == list(range(unit, unit + len(members)))
    return [spans[k] for k in sorted(spans)]


def small_model_with(masking):
    config = SpanBertConfig(vocab_size=70, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                            intermediate_size=8, max_position_embeddings=64)
    return SpanBertForPreTraining(config, masking)
