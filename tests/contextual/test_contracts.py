"""The contracts that keep contextual models apart: objectives, pre-training model, trainer, samplers, key maps.

A new objective and a recurrent model are defined here, in the test, and run through the unchanged
trainer: their statistics, carried state, optimizer groups, frozen teachers and unfrozen layers
work without any edit to ``train/trainer.py``.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import KeyMap, concat, rename, transpose
from word2bert.models import auto
from word2bert.models.base import EncoderOutput
from word2bert.models.bert import BertConfig, BertForPreTraining, BertModel
from word2bert.models.pretraining import PreTrainingModel
from word2bert.objectives.base import Objective, ObjectiveCollator, ObjectiveOutput
from word2bert.objectives.mlm import MaskedLM
from word2bert.train import (ContiguousStreamSampler, LengthGroupedSampler, ShuffledSampler, TokenStream, Trainer,
                             TrainingArguments, stack_collate)
from word2bert.nn import freeze

torch.set_num_threads(1)


def tiny_bert(**overrides):
    return BertConfig(**{"vocab_size": 30, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                         "intermediate_size": 32, "max_position_embeddings": 24, "hidden_dropout_prob": 0.0,
                         "attention_probs_dropout_prob": 0.0, **overrides})


# --------------------------------------------------------------------------- a new objective

class FirstTokenParity(Objective):
    """A made-up objective: predict whether the first real token's id (after [CLS]) is even, from
    position 1; statistics under names the trainer has never heard of."""

    def __init__(self, hidden_size):
        super().__init__()
        self.head = nn.Linear(hidden_size, 2)

    def prepare(self, batch, items, rng):
        batch["parity_label"] = (batch["input_ids"][:, 1] % 2).astype(np.int64)

    def read_positions(self, batch):
        return torch.ones(batch["input_ids"].shape[0], 1, dtype=torch.long)

    def forward(self, hidden, batch, model):
        logits = self.head(hidden[:, 0])
        labels = batch["parity_label"]
        correct = int((logits.argmax(-1) == labels).sum())
        return ObjectiveOutput(loss=F.cross_entropy(logits, labels),
                               stats={"hits": (correct, len(labels)), "twice": (2 * len(labels), len(labels))},
                               logits=logits)


def parity_items(n=160, seed=0):
    rng = np.random.default_rng(seed)
    return [{"input_ids": np.concatenate([[2], rng.integers(5, 30, rng.integers(3, 10))]).astype(np.int64)}
            for _ in range(n)]


def test_trainer_reports_a_new_objectives_statistics_and_it_learns():
    torch.manual_seed(0)
    config = tiny_bert(num_hidden_layers=1)
    model = PreTrainingModel(config, BertModel(config), {"parity": FirstTokenParity(16)})
    collate = model.collator(pad_id=0, keys=("input_ids",))
    train, held_out = parity_items(320), parity_items(200, seed=1)
    trainer = Trainer(model, TrainingArguments(batch_size=32, max_steps=60, learning_rate=1e-2, progress=False,
                                               warmup_steps=0), train, collate, eval_data=held_out)
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert set(after) >= {"loss", "parity_hits", "parity_twice"}
    assert after["parity_twice"] == 2.0  # summed pairs, reported as sum / count
    assert before["parity_hits"] < 0.75 and after["parity_hits"] > 0.9
    # the pooler no objective reads is frozen (so DDP needs no find_unused_parameters)
    assert not any(p.requires_grad for p in model.encoder.pooler.parameters())


def test_pretraining_model_runs_the_encoder_once_over_the_union_of_rows():
    torch.manual_seed(1)
    config = tiny_bert()
    model = BertForPreTraining(config).eval()
    ids = torch.randint(5, 30, (3, 12))
    positions = torch.tensor([[1, 4, 7], [2, 3, 9], [5, 6, 11]])
    calls = []
    hook = model.bert.register_forward_hook(lambda module, args, kwargs_out: calls.append(1))
    out = model(ids, masked_positions=positions)
    hook.remove()
    assert len(calls) == 1
    full = model.bert(ids)
    expected_nsp = model.nsp_head(full.pooled)
    torch.testing.assert_close(out.nsp_logits, expected_nsp, atol=1e-5, rtol=1e-5)
    # the last layer at the masked rows equals the full pass's rows
    rows = model.bert(ids, read_positions=positions).last_hidden_state
    torch.testing.assert_close(rows, torch.stack([full.last_hidden_state[b, positions[b]] for b in range(3)]),
                               atol=1e-5, rtol=1e-5)


def test_extra_encoder_inputs_reach_the_encoder():
    class TaggedBert(BertModel):
        extra_input_keys = ("task_type_ids",)

        def forward(self, input_ids, attention_mask=None, token_type_ids=None, *, task_type_ids=None, **kwargs):
            self.seen = task_type_ids
            return super().forward(input_ids, attention_mask, token_type_ids, **kwargs)

    config = tiny_bert()
    encoder = TaggedBert(config)
    model = PreTrainingModel(config, encoder, {"parity": FirstTokenParity(16)})
    batch = model.collator(0, keys=("input_ids",))(parity_items(4))
    model(**batch, task_type_ids=torch.full((4, 1), 3))
    assert encoder.seen is not None and int(encoder.seen[0, 0]) == 3


def test_unit_selector_masks_whole_units_with_one_decision_each():
    class Pairs:
        """Units are aligned token pairs (1,2), (3,4), ...; choose pairs while they fit the budget."""

        def select(self, input_ids, candidates, n_predict, rng):
            out = np.full(input_ids.shape, -1, dtype=np.int64)
            for row in range(len(input_ids)):
                starts = [s for s in range(1, input_ids.shape[1] - 1, 2) if candidates[row, s:s + 2].all()]
                taken = 0
                for s in rng.permutation(starts):
                    if taken + 2 <= n_predict[row]:
                        out[row, s:s + 2] = s
                        taken += 2
            return out

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 1000, (400, 41))
    ids[:, 0] = 2
    mask = np.ones_like(ids)
    masking = MaskedLM(1000, 4, special_ids=(0, 1, 2, 3, 4), max_predictions_per_seq=40, units=Pairs(),
                       masked_lm_prob=0.2)
    out = masking.apply(ids, mask, rng)
    corrupted = out["input_ids"]
    changed_or_chosen = np.zeros_like(ids, dtype=bool)
    rows = np.repeat(np.arange(len(ids)), out["masked_positions"].shape[1])
    valid = out["masked_labels"].reshape(-1) != -100
    changed_or_chosen[rows[valid], out["masked_positions"].reshape(-1)[valid]] = True
    first, second = changed_or_chosen[:, 1:-1:2], changed_or_chosen[:, 2::2]
    assert np.array_equal(first, second)  # a unit is never split
    a, b = corrupted[:, 1:-1:2][first], corrupted[:, 2::2][first]
    assert np.array_equal(a == 4, b == 4)  # one [MASK] decision per unit
    assert abs((a == 4).mean() - 0.8) < 0.03
    assert changed_or_chosen.sum(axis=1).max() <= 8  # round(0.2 * 40)


# --------------------------------------------------------------------------- a recurrent model

class RunningSum(nn.Module):
    """A 'recurrent' model whose state is the running sum of its inputs; it predicts nothing useful
    but its loss reveals the state it was given: loss = mean((w * (state + cumsum(x)) - y)^2)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, input_ids, labels, state=None):
        x = input_ids.float()
        start = torch.zeros(x.shape[0]) if state is None else state
        self.seen.append(start.clone())
        running = start[:, None] + x.cumsum(1)
        loss = ((self.w * running - labels.float()) ** 2).mean()
        return type("Out", (), {"loss": loss, "state": running[:, -1] + 0 * self.w, "stats": {}})()


def test_contiguous_stream_carries_detached_state_and_resets_each_epoch():
    tokens = np.arange(1, 42)  # 41 tokens: 40 with a next token; 4 rows of 10
    sampler = ContiguousStreamSampler(len(tokens), batch_size=4, bptt=3)
    model = RunningSum()
    trainer = Trainer(model, TrainingArguments(max_steps=8, learning_rate=1e-6, progress=False, max_grad_norm=0,
                                               warmup_steps=0), TokenStream(tokens), stack_collate, sampler=sampler)
    trainer.train()
    rows = tokens[:40].reshape(4, 10)
    # batch 0 of each epoch starts from nothing; batch k from the sum of the row so far
    expected_starts = [np.zeros(4), rows[:, :3].sum(1), rows[:, :6].sum(1), rows[:, :9].sum(1)] * 2
    assert len(model.seen) == 8
    for seen, expected in zip(model.seen, expected_starts):
        np.testing.assert_allclose(seen.numpy(), expected)
        assert not seen.requires_grad


def test_stream_sampler_splits_rows_across_ranks_and_varies_lengths():
    sampler = ContiguousStreamSampler(1001, batch_size=2, bptt=70, seed=3, variable=True)
    rank0, rank1 = sampler.batches(0, 0, 2), sampler.batches(0, 1, 2)
    assert len(rank0) == len(rank1) == sampler.num_batches(2)
    # the four rows of 250 tokens are covered exactly once, in order, rows 0-1 by rank 0
    for rank, batches in ((0, rank0), (1, rank1)):
        for slot in range(2):
            starts = [b[slot][0] for b in batches]
            lengths = [b[slot][1] for b in batches]
            row = rank * 2 + slot
            assert starts[0] == row * 250 and sum(lengths) == 250
            assert all(s + n == t for s, n, t in zip(starts, lengths, starts[1:]))
    # every window but each epoch's last (the rest of the row) is drawn around bptt, sometimes bptt / 2
    lengths = [n for epoch in range(20) for n in [b[0][1] for b in sampler.batches(epoch)][:-1]]
    assert min(lengths) >= 5 and 60 < np.median(lengths) < 80 and sum(n < 50 for n in lengths) > 0
    with pytest.raises(Word2BertError, match="too short"):
        ContiguousStreamSampler(5, batch_size=8, bptt=70)


def test_shuffled_and_length_grouped_samplers_cover_every_item_once():
    for sampler in (ShuffledSampler(53, 8, seed=1), LengthGroupedSampler(np.arange(53) % 11, 8, seed=1, mega=2)):
        keys = sorted(k for batch in sampler.batches(4) for k in batch)
        assert keys == list(range(53))
        assert sampler.batches(4) == sampler.batches(4) and sampler.batches(4) != sampler.batches(5)
    # a batch is 8 neighbours of a sorted mega-batch of 32: far less spread in length than a random batch
    grouped = LengthGroupedSampler(np.arange(160), 8, seed=0, mega=4).batches(0)
    shuffled = ShuffledSampler(160, 8, seed=0).batches(0)
    assert np.mean([max(b) - min(b) for b in grouped]) < 0.5 * np.mean([max(b) - min(b) for b in shuffled])
    two = ShuffledSampler(53, 8, seed=1)
    assert sorted(two.batches(0, 0, 2)[0] + two.batches(0, 1, 2)[0]) == sorted(two.batches(0)[0] + two.batches(0)[1])


# --------------------------------------------------------------------------- optimizer groups, freezing

class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 3)
        self.second = nn.Linear(3, 1)

    def forward(self, x, y):
        return type("Out", (), {"loss": ((self.second(torch.tanh(self.first(x))).squeeze(-1) - y) ** 2).mean()})()


def regression_data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return [{"x": x[i], "y": np.float32(x[i].sum())} for i in range(n)]


def regression_collate(items, rng=None):
    return {"x": torch.tensor(np.stack([i["x"] for i in items])), "y": torch.tensor([i["y"] for i in items])}


def test_configure_optimizers_groups_and_unfrozen_layers_are_trained():
    torch.manual_seed(0)
    model = TwoLayers()
    model.configure_optimizers = lambda args: [{"params": list(model.second.parameters()),
                                                "lr": args.learning_rate / 2.6, "weight_decay": 0.0}]
    model.first.requires_grad_(False)
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    def unfreeze(trainer, state):
        if state.global_step == 3:
            trainer.model.first.requires_grad_(True)

    args = TrainingArguments(batch_size=16, max_steps=6, learning_rate=0.1, optimizer="sgd", warmup_steps=0,
                             schedule="constant", progress=False)
    trainer = Trainer(model, args, regression_data(), regression_collate, callbacks=[unfreeze])
    rates = sorted(group["lr"] for group in trainer.optimizer.param_groups)
    assert isinstance(trainer.optimizer, torch.optim.SGD)
    assert math.isclose(rates[0], 0.1 / 2.6) and math.isclose(rates[-1], 0.1)  # the first layer joined a default group
    seen_first = []
    trainer.callbacks.append(lambda t, s: seen_first.append(t.model.first.weight.detach().clone()))
    trainer.train()
    assert torch.equal(seen_first[0], initial["first.weight"]) and torch.equal(seen_first[2], initial["first.weight"])
    assert not torch.equal(seen_first[-1], initial["first.weight"])  # trained after it was unfrozen
    with pytest.raises(Word2BertError, match="optimizer"):
        TrainingArguments(optimizer="lamb").validate()


def test_asgd_averages_weights_from_the_step_a_callback_chooses():
    torch.manual_seed(0)
    model = TwoLayers()
    weights = []

    def trigger(trainer, state):
        weights.append(trainer.model.second.weight.detach().clone())
        if state.global_step == 3:  # NT-ASGD's trigger fired: average from the next step on
            for group in trainer.optimizer.param_groups:
                group["t0"] = state.global_step

    args = TrainingArguments(batch_size=16, max_steps=7, learning_rate=0.05, optimizer="asgd", warmup_steps=0,
                             schedule="constant", weight_decay=0.0, max_grad_norm=0, progress=False)
    trainer = Trainer(model, args, regression_data(), regression_collate, callbacks=[trigger])
    trainer.train()
    average = trainer.optimizer.state[model.second.weight]["ax"]
    # torch's ASGD (mu_t = 1 / max(1, t - t0)) averages the weights after steps t0+2 .. T; weights[k] is
    # the weight after step k+1
    torch.testing.assert_close(average, torch.stack(weights[4:]).mean(0))
    assert not torch.allclose(average, weights[-1])


class Student(nn.Module):
    """Distillation-shaped: a trainable student and a frozen teacher inside one module."""

    def __init__(self):
        super().__init__()
        self.student = nn.Sequential(nn.Linear(3, 1))
        self.teacher = nn.Sequential(nn.Linear(3, 1), nn.Dropout(0.5))
        freeze(self.teacher)
        self.teacher_modes = []

    def forward(self, x, y):
        self.teacher_modes.append(self.teacher.training)
        target = self.teacher(x).squeeze(-1)
        return type("Out", (), {"loss": ((self.student(x).squeeze(-1) - target) ** 2).mean()})()


def test_frozen_teacher_stays_in_eval_mode_and_out_of_checkpoints(tmp_path):
    torch.manual_seed(0)
    model = Student()
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    args = TrainingArguments(batch_size=16, max_steps=4, learning_rate=0.1, progress=False, output_dir=str(tmp_path))
    trainer = Trainer(model, args, regression_data(), regression_collate)
    trainer.train()
    assert model.training and model.teacher_modes and not any(model.teacher_modes)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    assert saved and not any(key.startswith("teacher.") for key in saved)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key])
    # resuming restores the student; the teacher comes from the model as built
    fresh = Student()
    fresh.teacher.load_state_dict(model.teacher.state_dict())
    Trainer(fresh, args, regression_data(), regression_collate).load_checkpoint(tmp_path)
    assert torch.equal(fresh.student[0].weight, model.student[0].weight)


# --------------------------------------------------------------------------- key maps and auto loading

def test_key_map_rules_round_trip_with_transforms():
    q, k, v = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    conv = torch.randn(3, 12)
    key_map = KeyMap([concat("qkv.weight", ["q.weight", "k.weight", "v.weight"]),
                      transpose("proj.weight", "c_proj.weight"),
                      rename("norm.bias", "ln.bias", required=False, aliases=["ln.beta_alt"])], prefix="m.")
    ours, missing = key_map.to_ours({"q.weight": q, "k.weight": k, "v.weight": v, "c_proj.weight": conv})
    assert torch.equal(ours["qkv.weight"], torch.cat([q, k, v])) and torch.equal(ours["proj.weight"], conv.t())
    assert missing == ["ln.bias"]
    theirs = key_map.to_theirs(ours)
    assert torch.equal(theirs["k.weight"], k) and torch.equal(theirs["c_proj.weight"], conv)
    alias, _ = key_map.to_ours({"q.weight": q, "k.weight": k, "v.weight": v, "c_proj.weight": conv,
                                "ln.beta_alt": torch.ones(2)})
    assert torch.equal(alias["norm.bias"], torch.ones(2))
    with pytest.raises(Word2BertError, match="missing"):
        key_map.to_ours({"q.weight": q})


def test_auto_loads_the_class_config_json_names(tmp_path):
    torch.manual_seed(0)
    BertForPreTraining(tiny_bert()).save_pretrained(tmp_path / "pt")
    assert type(auto.from_pretrained(tmp_path / "pt")) is BertForPreTraining
    encoder = auto.encoder_from_pretrained(tmp_path / "pt")
    assert type(encoder) is BertModel and isinstance(encoder(torch.tensor([[2, 7, 3]])), EncoderOutput)
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text('{"model_type": "nonesuch"}')
    with pytest.raises(Word2BertError, match="nonesuch"):
        auto.from_pretrained(tmp_path / "odd")


def test_objective_collator_runs_prepare_in_order():
    calls = []

    class Record(Objective):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def prepare(self, batch, items, rng):
            calls.append(self.tag)
            batch[f"seen_{self.tag}"] = batch["input_ids"].copy()

    batch = ObjectiveCollator([Record("a"), Record("b")], pad_id=0, keys=("input_ids",))(
        [{"input_ids": [5, 6, 7]}, {"input_ids": [8]}])
    assert calls == ["a", "b"]
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]] and batch["attention_mask"].tolist() == [[1, 1, 1],
                                                                                                          [1, 0, 0]]
    assert batch["seen_b"].dtype == torch.long


def test_a_callback_stops_the_run_early_and_resume_goes_on_to_the_end(tmp_path):
    """``state.stop_requested`` ends training after the step (checkpoint written); the schedule's
    ``total_steps`` is kept, so a resumed run trains the remaining steps (not zero more)."""
    def make_trainer(callbacks=None):
        torch.manual_seed(0)
        config = tiny_bert(num_hidden_layers=1)
        model = PreTrainingModel(config, BertModel(config), {"parity": FirstTokenParity(16)})
        arguments = TrainingArguments(output_dir=str(tmp_path), batch_size=16, epochs=1, progress=False,
                                      warmup_steps=0)
        return Trainer(model, arguments, parity_items(96), model.collator(pad_id=0, keys=("input_ids",)),
                       callbacks=callbacks)

    def stop_after_two(trainer, state):
        if state.global_step == 2:
            state.stop_requested = True

    first = make_trainer([stop_after_two])
    assert first.state.total_steps == 6
    assert first.train().global_step == 2
    resumed = make_trainer()
    state = resumed.train(resume_from=tmp_path)
    assert state.global_step == 6 and state.total_steps == 6


def test_classification_stats_sum_the_nll_and_count_correct_rows_over_real_labels():
    """A worked example: rows (log-probabilities known by hand) and an ignored row; the caller's mean
    loss gives the same sum as the statistics' own pass."""
    from word2bert.objectives.base import classification_stats

    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]))
    labels = torch.tensor([0, 1, -100, 2])
    expected_nll = -(math.log(0.5) + math.log(0.2) + math.log(0.6))
    stats = classification_stats(logits, labels)
    assert stats["nll"][1] == 3 and stats["nll"][0] == pytest.approx(expected_nll, rel=1e-6)
    assert stats["accuracy"] == (2, 3)          # rows 0 and 3 right, row 1 wrong, row 2 ignored
    mean = F.cross_entropy(logits, labels, ignore_index=-100)
    assert classification_stats(logits, labels, mean)["nll"][0] == pytest.approx(expected_nll, rel=1e-6)
    assert classification_stats(logits, torch.full((4,), -100)) == {"nll": (0.0, 0), "accuracy": (0, 0)}
