"""The Trainer: a tiny BERT learns a planted pattern; resume reproduces the run; schedule; errors."""

import math

import numpy as np
import pytest
import torch

from word2bert.errors import Word2BertError
from word2bert.models.bert import BertConfig, BertForPreTraining
from word2bert.objectives import IGNORE_INDEX, MaskedLM
from word2bert.objectives.pretraining import PretrainingCollator, PretrainingDataset
from word2bert.train import Trainer, TrainingArguments
from word2bert.train.checkpoint import load_checkpoint
from word2bert.train.schedules import linear_warmup_decay
from word2bert.train.trainer import parameter_groups

torch.set_num_threads(1)  # tiny models: one thread is faster than two and never oversubscribes

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
N_FILLER = 12
FILLER = np.arange(5, 5 + N_FILLER)
PAIRS = [(5 + N_FILLER + 2 * k, 5 + N_FILLER + 2 * k + 1) for k in range(4)]  # a_k is always followed by b_k
VOCAB = 5 + N_FILLER + 2 * len(PAIRS)


def planted_documents(n_documents=150, seed=0):
    """Random filler words; 40% of the time a pair (a_k, b_k) instead: b_k is predictable from a_k."""
    rng = np.random.default_rng(seed)
    documents = []
    for _ in range(n_documents):
        sentences = []
        for _ in range(6):
            words = []
            while len(words) < 6:
                if rng.random() < 0.4:
                    words.extend(PAIRS[rng.integers(len(PAIRS))])
                else:
                    words.append(int(rng.choice(FILLER)))
            sentences.append(np.array(words, dtype=np.int32))
        documents.append(sentences)
    return documents


def tiny_setup(dropout=0.0, dynamic=True, seed=0, max_seq_length=24):
    dataset = PretrainingDataset.from_documents(planted_documents(), CLS, SEP, max_seq_length=max_seq_length,
                                                dupe_factor=2, seed=1)
    train, held_out = dataset.split(200, seed=0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=max_seq_length,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    model = BertForPreTraining(config)
    masking = MaskedLM(VOCAB, MASK, special_ids=(PAD, UNK, CLS, SEP, MASK), pad_id=PAD, dynamic=dynamic, seed=3)
    return model, train, held_out, PretrainingCollator(masking, PAD)


def test_tiny_bert_loss_falls_and_learns_planted_pattern():
    model, train, held_out, collate = tiny_setup()
    args = TrainingArguments(batch_size=32, max_steps=500, learning_rate=3e-3, warmup_steps=0.05, seed=0,
                             progress=False)
    trainer = Trainer(model, args, train, collate, eval_data=held_out)
    before = trainer.evaluate()
    state = trainer.train()
    after = state.evaluations[-1]
    losses = [h["loss"] for h in state.history]
    # the filler words are unpredictable (uniform over 12: perplexity >= ~12 on them), so the
    # loss falls from ~ln(VOCAB) + ln 2 towards that floor
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.3
    assert after["mlm_perplexity"] < 0.8 * before["mlm_perplexity"]
    # perplexity is exp(mean NLL over the masked tokens); a random guess is ~VOCAB
    assert before["mlm_perplexity"] > 0.5 * VOCAB
    # the planted pattern: a masked b_k right after a visible a_k is predicted (almost) always
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for start in range(0, len(held_out), 32):
            items = [held_out[i] for i in range(start, min(start + 32, len(held_out)))]
            batch = collate(items, np.random.default_rng(start))
            out = model(**batch)
            predicted = out.mlm_logits.argmax(-1)
            labels, positions, inputs = batch["masked_labels"], batch["masked_positions"], batch["input_ids"]
            previous = inputs.gather(1, (positions - 1).clamp_min(0))
            for a, b in PAIRS:
                planted = (labels == b) & (previous == a) & (labels != IGNORE_INDEX)
                hits += int((predicted[planted] == b).sum())
                total += int(planted.sum())
    assert total > 30
    assert hits / total > 0.9, hits / total


def run(steps, tmp_path=None, interrupt_at=None, resume=False, accumulation=2):
    model, train, _, collate = tiny_setup(dropout=0.1, seed=5 if resume else 0)
    args = TrainingArguments(batch_size=8, max_steps=steps, learning_rate=1e-3, warmup_steps=2, seed=0,
                             gradient_accumulation_steps=accumulation, progress=False,
                             output_dir=str(tmp_path) if tmp_path else None)

    def interrupt(trainer, state):
        if state.global_step == interrupt_at:
            raise KeyboardInterrupt

    trainer = Trainer(model, args, train, collate, callbacks=[interrupt] if interrupt_at else [])
    state = trainer.train(resume_from=tmp_path if resume else None)
    return state, model


def test_resume_reproduces_uninterrupted_run(tmp_path):
    full, full_model = run(7)
    with pytest.raises(KeyboardInterrupt):
        run(7, tmp_path, interrupt_at=3)
    saved = load_checkpoint(tmp_path)
    assert saved["trainer"]["global_step"] == 3
    resumed, resumed_model = run(7, tmp_path, resume=True)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in full.history]
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically, no leftovers


def test_schedule_and_weight_decay_groups():
    warmup, total = 10, 110
    assert linear_warmup_decay(0, warmup, total) == 0.0
    assert linear_warmup_decay(5, warmup, total) == 0.5
    assert linear_warmup_decay(10, warmup, total) == 1.0
    assert linear_warmup_decay(60, warmup, total) == 0.5
    assert linear_warmup_decay(110, warmup, total) == 0.0
    model, train, _, collate = tiny_setup()
    args = TrainingArguments(batch_size=16, max_steps=20, learning_rate=1e-3, warmup_steps=0.25, progress=False)
    trainer = Trainer(model, args, train, collate)
    state = trainer.train()
    lrs = [h["lr"] for h in state.history]  # the rate after each step
    expected = [1e-3 * linear_warmup_decay(t, 5, 20) for t in range(1, 21)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-9, atol=1e-15)
    groups = parameter_groups(model, 0.01)
    no_decay = {id(p) for p in groups[1]["params"]}
    for name, parameter in model.named_parameters():
        is_bias_or_norm = name.endswith("bias") or "norm" in name.lower()
        assert (id(parameter) in no_decay) == is_bias_or_norm, name


def test_bad_input_clear_messages(tmp_path):
    with pytest.raises(Word2BertError):
        BertConfig(vocab_size=50, hidden_size=30, num_attention_heads=4)
    model, train, _, collate = tiny_setup()
    with pytest.raises(Word2BertError, match="empty"):
        Trainer(model, TrainingArguments(progress=False), [], collate)
    with pytest.raises(Word2BertError, match="batch_size"):
        Trainer(model, TrainingArguments(batch_size=0, progress=False), train, collate)
    trainer = Trainer(model, TrainingArguments(max_steps=2, progress=False), train, collate)
    with pytest.raises(Word2BertError, match="no checkpoint"):
        trainer.train(resume_from=tmp_path / "nothing")
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Word2BertError, match="checkpoint"):
        trainer.train(resume_from=tmp_path)


def test_evaluate_perplexity_is_exp_of_mean_nll():
    model, train, held_out, collate = tiny_setup()
    trainer = Trainer(model, TrainingArguments(batch_size=1000, max_steps=1, progress=False), train, collate)
    metrics = trainer.evaluate(held_out)
    batch = collate([held_out[i] for i in range(len(held_out))], np.random.default_rng([0, 7919, 0]))
    model.eval()
    with torch.no_grad():
        out = model(**batch)
    assert math.isclose(metrics["mlm_perplexity"], math.exp(float(out.mlm_loss)), rel_tol=1e-4)
    assert 0 <= metrics["mlm_accuracy"] <= 1 and 0 <= metrics["nsp_accuracy"] <= 1


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_adam_steps_are_fused_and_follow_the_formula(name):
    """build_optimizer asks torch for its fused Adam/AdamW on CPU parameters; two steps equal the update
    written out (bias-corrected moments; AdamW's decoupled decay), and torch's default implementation."""
    from word2bert.train.trainer import build_optimizer, fused_update

    generator = torch.Generator().manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(4, 3, generator=generator))
    model = torch.nn.Module()
    model.weight = weight
    args = TrainingArguments(optimizer=name, learning_rate=0.1, weight_decay=0.5, adam_beta1=0.8, adam_beta2=0.9,
                             adam_epsilon=1e-3, progress=False)
    optimizer = build_optimizer(model, args)
    assert all(group["fused"] for group in optimizer.param_groups)
    reference = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    twin = torch.nn.Parameter(weight.detach().clone())
    plain = reference([twin], lr=0.1, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.5, foreach=False)
    expected = weight.detach().double().clone()
    m = torch.zeros_like(expected)
    v = torch.zeros_like(expected)
    decay = optimizer.param_groups[0]["weight_decay"]  # parameter_groups: a matrix decays
    assert decay == 0.5
    for t in (1, 2):
        grad = torch.randn(4, 3, generator=generator)
        weight.grad, twin.grad = grad.clone(), grad.clone()
        optimizer.step()
        plain.step()
        g = grad.double()
        if name == "adamw":
            expected -= 0.1 * decay * expected
        else:
            g = g + decay * expected
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * g * g
        expected -= 0.1 * (m / (1 - 0.8 ** t)) / ((v / (1 - 0.9 ** t)).sqrt() + 1e-3)
    torch.testing.assert_close(weight.detach().double(), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(weight.detach(), twin.detach(), rtol=1e-6, atol=1e-7)
    meta = torch.nn.Parameter(torch.zeros(2, device="meta"))
    assert fused_update([{"params": [meta]}]) == {} and fused_update([{"params": []}]) == {}
