"""Distillation: the soft-target loss against a hand computation, its gradient by finite differences,
the T^2 scaling, DistilBERT's three terms against its reference formulas, the frozen teacher in the
trainer, DistilBERT's masking weights, and a student that learns a planted task from its teacher alone."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.models.bert import BertConfig, BertForPreTraining, BertModel
from word2bert.models.distilbert import DistilBertConfig, DistilBertModel, distilbert_from_bert
from word2bert.objectives.distillation import (FrequencySmoothedTokens, MaskedLMDistillation, SequenceDataset,
                                               TaskDistillation, cosine_loss, soft_target_divergence,
                                               soft_target_loss)
from word2bert.objectives.mlm import MaskedLM
from word2bert.tasks.data import TaskCollator
from word2bert.tasks.finetune import evaluate_task
from word2bert.tasks.heads import SequenceClassification
from word2bert.train import Trainer, TrainingArguments

torch.set_num_threads(1)


def tiny_bert(**overrides):
    return BertConfig(**{"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 4, "num_attention_heads": 2,
                         "intermediate_size": 32, "max_position_embeddings": 24, "hidden_dropout_prob": 0.0,
                         "attention_probs_dropout_prob": 0.0, **overrides})


# --------------------------------------------------------------------------- the soft-target loss

def test_soft_target_loss_is_t_squared_kl_of_a_worked_example():
    # T = 2: p_t = softmax(1.5, 0.5, 0) = (0.62853, 0.23122, 0.14024), p_s = softmax(0.5, 1, 1.5) =
    # (0.18632, 0.30720, 0.50648); KL(p_t || p_s) = sum p_t log(p_t / p_s) = 0.51845; times T^2 = 2.07382
    student, teacher = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 1.0, 0.0]])
    assert soft_target_loss(student, teacher, 2.0).item() == pytest.approx(2.0738163, abs=1e-6)

    def softmax(z):
        e = [math.exp(x) for x in z]
        return [x / sum(e) for x in e]

    # a batch: the mean over rows of T^2 KL, computed in plain Python
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(5, 7)) * 3, rng.normal(size=(5, 7)) * 3
    for temperature in (0.5, 1.0, 4.0):
        expected = 0.0
        for row in range(5):
            p_t, p_s = softmax(t[row] / temperature), softmax(s[row] / temperature)
            expected += temperature ** 2 * sum(a * math.log(a / b) for a, b in zip(p_t, p_s)) / 5
        got = soft_target_loss(torch.tensor(s), torch.tensor(t), temperature)
        assert got.dtype == torch.float64 and got.item() == pytest.approx(expected, rel=1e-10)
        # DistilBERT's formulation: KLDivLoss(batchmean) on log_softmax(s/T), softmax(t/T), times T^2
        reference = nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(torch.tensor(s) / temperature, -1),
                                                        torch.softmax(torch.tensor(t) / temperature, -1))
        assert got.item() == pytest.approx(temperature ** 2 * reference.item(), rel=1e-10)
    assert soft_target_loss(torch.tensor(s), torch.tensor(s), 3.0).item() == pytest.approx(0.0, abs=1e-12)


def test_soft_target_gradient_matches_finite_differences_and_its_formula():
    rng = np.random.default_rng(1)
    teacher = torch.tensor(rng.normal(size=(4, 6)) * 2)
    student = torch.tensor(rng.normal(size=(4, 6)) * 2, requires_grad=True)
    temperature = 1.7
    loss = soft_target_loss(student, teacher, temperature)
    (gradient,) = torch.autograd.grad(loss, student)
    numeric = torch.zeros_like(gradient)
    step = 1e-6
    for index in np.ndindex(*student.shape):
        plus, minus = student.detach().clone(), student.detach().clone()
        plus[index] += step
        minus[index] -= step
        numeric[index] = (soft_target_loss(plus, teacher, temperature) - soft_target_loss(minus, teacher, temperature)
                          ) / (2 * step)
    torch.testing.assert_close(gradient, numeric, atol=1e-8, rtol=1e-6)
    # d/dz_s [T^2 mean KL] = (T / N) (softmax(z_s / T) - softmax(z_t / T))
    formula = temperature / 4 * (torch.softmax(student / temperature, -1) - torch.softmax(teacher / temperature, -1))
    torch.testing.assert_close(gradient, formula.detach(), atol=1e-12, rtol=1e-9)


def test_t_squared_keeps_the_gradient_scale_whatever_the_temperature():
    rng = np.random.default_rng(2)
    classes = 10
    student = torch.tensor(rng.normal(size=(1, classes)))
    teacher = torch.tensor(rng.normal(size=(1, classes)))
    student, teacher = student - student.mean(), teacher - teacher.mean()  # zero-mean logits
    gradients = {}
    for temperature in (10.0, 100.0, 1000.0):
        z = student.clone().requires_grad_(True)
        plain = soft_target_divergence(z, teacher, temperature).sum() / temperature ** 2  # KL alone
        scaled = soft_target_loss(z, teacher, temperature)
        assert scaled.item() == pytest.approx(temperature ** 2 * plain.item(), rel=1e-12)
        (gradients[temperature],) = torch.autograd.grad(scaled, z)
    # Hinton et al. 2.1: for large T the scaled gradient tends to (z_s - z_t) / K, independent of T
    limit = (student - teacher) / classes
    for temperature, gradient in gradients.items():
        torch.testing.assert_close(gradient, limit, atol=2.0 / temperature * limit.abs().max().item(), rtol=0)
    # without T^2 the gradient would shrink as 1 / T^2
    assert gradients[1000.0].norm() / gradients[10.0].norm() == pytest.approx(1.0, abs=0.05)


def test_cosine_loss_is_one_minus_cosine():
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0]])
    t = torch.tensor([[0.0, 2.0], [2.0, 2.0], [-3.0, -4.0]])
    torch.testing.assert_close(cosine_loss(s, t), torch.tensor([1.0, 0.0, 2.0]))
    reference = nn.CosineEmbeddingLoss()(s, t, torch.ones(3))
    assert cosine_loss(s, t).mean().item() == pytest.approx(reference.item(), abs=1e-7)
    with pytest.raises(Word2BertError, match="width"):
        cosine_loss(s, torch.ones(3, 3))


# --------------------------------------------------------------------------- masked-LM distillation

def masked_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 40, (3, 10), generator=generator)
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    ids[2, 6:] = 0
    positions = torch.tensor([[1, 4, 7], [2, 3, 0], [5, 0, 0]])
    labels = torch.tensor([[ids[0, 1], ids[0, 4], ids[0, 7]], [ids[1, 2], ids[1, 3], -100], [ids[2, 5], -100, -100]])
    return ids, mask, positions, labels


@pytest.mark.parametrize("ce_rows", ["masked", "all"])
def test_masked_lm_distillation_is_distilberts_three_terms(ce_rows):
    torch.manual_seed(0)
    teacher = BertForPreTraining(tiny_bert(hidden_dropout_prob=0.3))
    with torch.no_grad():  # larger weights than BERT's initialisation: distributions that depend on the input
        for name, parameter in teacher.named_parameters():
            if parameter.dim() == 2:
                parameter.normal_(0, 0.4)
    student = distilbert_from_bert(teacher, 2)
    student.eval()
    distillation = MaskedLMDistillation(student, teacher, temperature=3.0, alpha_ce=5.0, alpha_mlm=2.0,
                                        alpha_cos=1.0, ce_rows=ce_rows)
    ids, mask, positions, labels = masked_batch()
    out = distillation(ids, mask, masked_positions=positions, masked_labels=labels)
    # the reference computation: full passes, selected rows, transformers' distiller.py formulas
    every = torch.arange(10).expand(3, -1)
    with torch.no_grad():
        t_hidden = teacher.bert(ids, mask).last_hidden_state
        t_logits = teacher(ids, mask, masked_positions=every).mlm_logits
    s_hidden = student.encoder(ids, mask).last_hidden_state
    s_logits = student(ids, mask, masked_positions=every).mlm_logits
    select = torch.zeros(3, 10, dtype=torch.bool)
    for row in range(3):
        for slot in range(3):
            if labels[row, slot] != -100:
                select[row, positions[row, slot]] = True
    ce_mask = select if ce_rows == "masked" else mask.bool()
    kl = nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(s_logits[ce_mask] / 3.0, -1),
                                             torch.softmax(t_logits[ce_mask] / 3.0, -1)) * 9.0
    mlm_labels = torch.full((3, 10), -100)
    mlm_labels[select] = ids[select]
    mlm = nn.CrossEntropyLoss()(s_logits.reshape(-1, 40), mlm_labels.reshape(-1))
    real = mask.bool()
    cos = nn.CosineEmbeddingLoss()(s_hidden[real], t_hidden[real], torch.ones(int(real.sum())))
    torch.testing.assert_close(out.losses["ce"], kl, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.losses["mlm"], mlm, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.losses["cos"], cos, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.loss, 5 * kl + 2 * mlm + cos, atol=1e-5, rtol=1e-5)
    assert kl.item() > 0.01 and cos.item() > 1e-4
    rows = 6 if ce_rows == "masked" else int(real.sum())
    assert out.stats["ce"][1] == rows and out.stats["ce"][0] == pytest.approx(kl.item() * rows, rel=1e-4)
    assert out.stats["accuracy"][1] == out.stats["nll"][1] == out.stats["teacher_accuracy"][1] == 6
    # the teacher runs without gradient and in eval mode (its dropout would change its logits)
    out.loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert not distillation.teacher.training and not out.teacher_logits.requires_grad


def test_masked_lm_distillation_refuses_what_it_cannot_compare():
    teacher = BertForPreTraining(tiny_bert())
    with pytest.raises(Word2BertError, match="no masked-LM objective"):
        MaskedLMDistillation(BertForPreTraining(tiny_bert()), BertModel(tiny_bert()))
    narrow = BertForPreTraining(tiny_bert(hidden_size=8))
    with pytest.raises(Word2BertError, match="alpha_cos"):
        MaskedLMDistillation(narrow, teacher)
    MaskedLMDistillation(narrow, teacher, alpha_cos=0.0)  # soft targets need one vocabulary only
    with pytest.raises(Word2BertError, match="vocabulary"):
        MaskedLMDistillation(BertForPreTraining(tiny_bert(vocab_size=41)), teacher)
    with pytest.raises(Word2BertError, match="temperature"):
        MaskedLMDistillation(narrow, teacher, alpha_cos=0.0, temperature=0)


def test_frozen_teacher_stays_in_eval_mode_gets_no_gradient_and_is_not_checkpointed(tmp_path):
    torch.manual_seed(0)
    teacher = BertForPreTraining(tiny_bert(hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5))
    before = {key: value.clone() for key, value in teacher.state_dict().items()}
    student = distilbert_from_bert(teacher, 1)
    masking = MaskedLM(40, 4, special_ids=(0, 1, 2, 3, 4), dynamic=True)
    distillation = MaskedLMDistillation(student, teacher, masking=masking)
    modes = []
    teacher.bert.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    rng = np.random.default_rng(0)
    items = [{"input_ids": np.r_[2, rng.integers(5, 40, 12), 3]} for _ in range(48)]
    args = TrainingArguments(batch_size=16, max_steps=3, learning_rate=1e-2, progress=False, output_dir=str(tmp_path))
    trainer = Trainer(distillation, args, items, distillation.collator(0))
    trainer.train()
    assert modes and not any(modes) and distillation.student.training
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    assert saved and all(key.startswith("student.") for key in saved)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key])
    assert not torch.equal(student.encoder.encoder.layers[0].feed_forward.dense_in.weight,
                           before["bert.encoder.layers.0.feed_forward.dense_in.weight"])  # the student learned
    # resume: the student comes back from the checkpoint, the teacher from the model as built
    fresh = MaskedLMDistillation(distilbert_from_bert(teacher, 1), teacher, masking=masking)
    Trainer(fresh, args, items, fresh.collator(0)).load_checkpoint(tmp_path)
    for key, value in student.state_dict().items():
        assert torch.equal(fresh.student.state_dict()[key], value)


def test_frequency_smoothed_masking_weights_rare_tokens_and_skips_specials():
    counts = np.zeros(10)
    counts[5], counts[6] = 1, 1000  # a rare and a frequent token
    selector = FrequencySmoothedTokens(counts, smoothing=0.7)
    rows = 20000
    ids = np.tile([2, 5, 6, 3], (rows, 1))
    candidates = np.tile([False, True, True, False], (rows, 1))
    chosen = selector.select(ids, candidates, np.ones(rows, dtype=np.int64), np.random.default_rng(0))
    assert ((chosen >= 0).sum(axis=1) == 1).all() and not (chosen[:, [0, 3]] >= 0).any()
    rare = (chosen[:, 1] >= 0).mean()
    expected = 1.0 / (1.0 + 1000 ** -0.7)  # w = count^-0.7: 1 against 0.0079
    assert abs(rare - expected) < 4 * math.sqrt(expected * (1 - expected) / rows)
    # two draws without replacement from three equal weights: every pair equally often
    ids = np.tile([5, 5, 5], (rows, 1))
    pairs = selector.select(ids, np.ones_like(ids, dtype=bool), np.full(rows, 2), np.random.default_rng(1)) >= 0
    assert (pairs.sum(axis=1) == 2).all() and np.allclose(pairs.mean(axis=0), 2 / 3, atol=0.02)
    masking = MaskedLM(10, 4, special_ids=(0, 1, 2, 3, 4), units=selector, masked_lm_prob=0.5)
    out = masking.apply(np.tile([2, 5, 6, 6, 6, 3], (4, 1)), np.ones((4, 6), dtype=np.int64), np.random.default_rng(2))
    assert (out["masked_labels"] >= 5).all()


def test_sequences_are_lines_cut_into_chunks(tmp_path):
    from word2bert.corpus.wordpiece import WordPieceTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(20)]
    tokenizer = WordPieceTokenizer({token: i for i, token in enumerate(vocab)})
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("w1 w2 w3 w4 w5 w6 w7\n\nw8 w9\nzz zz zz w1\n" + " ".join(f"w{i % 20}" for i in range(13)) + "\n")
    data = SequenceDataset.from_file(corpus, tokenizer, max_seq_length=6, min_seq_length=5)
    sequences = [data[i]["input_ids"].tolist() for i in range(len(data))]
    # 7 words -> chunks of 4 + 3; "w8 w9" (4 tokens) is too short; the line of 3 unknowns in 6 tokens goes;
    # 13 words -> 4 + 4 + 4 + 1 (too short)
    assert sequences[:2] == [[2, 6, 7, 8, 9, 3], [2, 10, 11, 12, 3]]
    assert len(sequences) == 5 and all(len(s) <= 6 for s in sequences)
    assert data.token_counts(25)[2] == 5 and data.split(2)[1] is not None and len(data.split(2)[0]) == 3


# --------------------------------------------------------------------------- task distillation

def planted_examples(n, seed):
    """Label 1 when token 7 occurs in the sequence, else 0; the rest is noise."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        ids = rng.integers(8, 40, rng.integers(4, 9))
        label = int(rng.random() < 0.5)
        if label:
            ids[rng.integers(len(ids))] = 7
        items.append({"input_ids": np.r_[2, ids, 3], "token_type_ids": np.zeros(len(ids) + 2, dtype=np.int64),
                      "labels": label})
    return items


def train(model, items, steps, lr):
    args = TrainingArguments(batch_size=16, max_steps=steps, learning_rate=lr, warmup_steps=0, progress=False)
    trainer = Trainer(model, args, items, TaskCollator(0))
    trainer.train()
    return trainer


def test_a_student_learns_a_planted_task_from_its_teacher_alone():
    torch.manual_seed(0)
    items, held_out = planted_examples(320, 0), planted_examples(200, 1)
    teacher = SequenceClassification(BertModel(tiny_bert(num_hidden_layers=2)), 2, pooling="mean", labels=["0", "1"])
    train(teacher, items, 80, 3e-3)
    teacher_accuracy = evaluate_task(teacher, held_out, "classification")["accuracy"]
    assert teacher_accuracy > 0.9
    # a randomly initialised one-layer DistilBERT that never sees a label (alpha_task = 0)
    student = SequenceClassification(DistilBertModel(DistilBertConfig(
        vocab_size=40, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=24, dropout=0.0,
        attention_dropout=0.0)), 2, pooling="mean", labels=["0", "1"])
    distillation = TaskDistillation(student, teacher, temperature=2.0, alpha_ce=1.0, alpha_task=0.0)
    before = agreement(distillation, held_out)
    teacher_weights = {key: value.clone() for key, value in teacher.state_dict().items()}
    trainer = train(distillation, items, 80, 3e-3)
    assert all(torch.equal(value, teacher_weights[key]) for key, value in teacher.state_dict().items())
    checkpointed = trainer.trainable_state_dict()
    assert checkpointed and all(key.startswith("student.") for key in checkpointed)
    student_accuracy = evaluate_task(student, held_out, "classification")["accuracy"]
    after = agreement(distillation, held_out)
    assert before < 0.8 and after > 0.9
    assert student_accuracy > teacher_accuracy - 0.06
    out = distillation(**TaskCollator(0)(held_out[:8]))
    assert set(out.stats) >= {"ce", "agreement", "nll", "accuracy", "teacher_accuracy"} and "task" not in out.losses
    with pytest.raises(Word2BertError, match="labels"):
        TaskDistillation(SequenceClassification(BertModel(tiny_bert()), 3), teacher)


def agreement(distillation, items):
    with torch.no_grad():
        out = distillation.eval()(**TaskCollator(0)(items))
    distillation.train()
    return (out.logits.argmax(-1) == out.teacher_logits.argmax(-1)).float().mean().item()
