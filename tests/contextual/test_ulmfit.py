"""ULMFiT: slanted triangular and discriminative rates against the formulas, gradual unfreezing trains
exactly the groups it should each epoch, concat pooling, vocabulary transfer, the stages end to end
(API and CLI) on planted data."""

import json
import math

import numpy as np
import pytest
import torch

from word2bert.cli import main
from word2bert.corpus.lm_corpus import EOS, UNK
from word2bert.corpus.vocab import Vocabulary
from word2bert.models.awd_lstm import AWDLSTMConfig, AWDLSTMForLanguageModeling, AWDLSTMModel
from word2bert.tasks.ulmfit import (ULMFiTClassifier, concat_pool, finetune_language_model, pretrain_language_model,
                                    train_classifier, transfer_vocabulary)
from word2bert.train.schedules import make_scheduler, slanted_triangular
from word2bert.train.trainer import Trainer, TrainingArguments

torch.set_num_threads(1)

SMALL = dict(embedding_size=12, lstm_size=16, num_layers=2)


def test_slanted_triangular_rates_follow_the_paper():
    """eta_t = eta_max (1 + p (ratio - 1)) / ratio, p = t / cut up to cut = floor(T cut_frac), then
    1 - (t - cut) / (cut (1 / cut_frac - 1)); T = 1000, cut_frac 0.1, ratio 32 (Howard & Ruder, eq. 3)."""
    total, cut_frac, ratio = 1000, 0.1, 32
    cut = math.floor(total * cut_frac)

    def paper(t):
        p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / cut_frac - 1))
        return (1 + p * (ratio - 1)) / ratio

    for t in (0, 1, 50, 99, 100, 101, 550, 999, 1000):
        assert slanted_triangular(t, cut, total) == pytest.approx(paper(t), abs=1e-12)
    assert slanted_triangular(0, cut, total) == pytest.approx(1 / 32)
    assert slanted_triangular(100, cut, total) == 1.0
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    scheduler = make_scheduler(optimizer, "slanted_triangular", cut, total)
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(rates) == pytest.approx(0.01) and int(np.argmax(rates)) == cut
    assert rates[0] == pytest.approx(0.01 / 32)


def test_discriminative_rates_divide_by_2_6_per_layer_down():
    encoder = AWDLSTMModel(AWDLSTMConfig(vocab_size=20, embedding_size=12, lstm_size=16, num_layers=3))
    classifier = ULMFiTClassifier(encoder, num_labels=3)
    items = [{"input_ids": np.array([1, 2, 3]), "labels": 0}] * 4
    from word2bert.tasks.ulmfit import collate_classification
    trainer = Trainer(classifier, TrainingArguments(learning_rate=0.01, optimizer="adam", progress=False,
                                                    batch_size=2, warmup_steps=0, schedule="constant"),
                      items, collate_classification)
    rates = [group["lr"] for group in trainer.optimizer.param_groups]
    # groups bottom up: embeddings, LSTM 1, 2, 3, head
    assert rates == pytest.approx([0.01 / 2.6 ** 4, 0.01 / 2.6 ** 3, 0.01 / 2.6 ** 2, 0.01 / 2.6, 0.01])
    groups = classifier.layer_groups()
    assert [id(p) for p in trainer.optimizer.param_groups[0]["params"]] == [id(encoder.embeddings.weight)]
    assert {id(p) for p in trainer.optimizer.param_groups[4]["params"]} == {id(p) for p in groups[4]}
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == len(list(classifier.parameters()))


def test_concat_pool_reads_only_the_real_tokens():
    hidden = torch.tensor([[[1.0, -1.0], [3.0, 0.0], [9.0, 9.0]],
                           [[2.0, 5.0], [-4.0, 1.0], [0.0, -2.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    pooled = concat_pool(hidden, mask)
    expected = torch.tensor([[3.0, 0.0, 3.0, 0.0, 2.0, -0.5],         # last, max, mean of the first two rows
                             [0.0, -2.0, 2.0, 5.0, -2 / 3, 4 / 3]])
    assert torch.allclose(pooled, expected)


def test_vocabulary_transfer_keeps_known_rows_and_starts_new_words_at_the_mean():
    torch.manual_seed(0)
    old = Vocabulary(["the", EOS, "cat", UNK], [5, 4, 3, 1])
    new = Vocabulary(["cat", "dog", EOS, UNK, "the"], [4, 3, 3, 1, 1])
    model = AWDLSTMForLanguageModeling(AWDLSTMConfig(vocab_size=4, **SMALL))
    with torch.no_grad():
        model.decoder_bias.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    moved = transfer_vocabulary(model, old, new)
    old_rows, new_rows = model.awd_lstm.embeddings.weight, moved.awd_lstm.embeddings.weight
    for word in ("the", "cat", EOS, UNK):
        assert torch.equal(new_rows[new.index[word]], old_rows[old.index[word]])
        assert moved.decoder_bias[new.index[word]] == model.decoder_bias[old.index[word]]
    assert torch.allclose(new_rows[new.index["dog"]], old_rows.mean(0))
    assert float(moved.decoder_bias[new.index["dog"]]) == pytest.approx(0.25)
    assert torch.equal(moved.awd_lstm.layers[0].weight_hh_l0, model.awd_lstm.layers[0].weight_hh_l0)


def planted_classification(path, n, seed):
    """fastText lines; the label is the cue word (anywhere in the text) among filler words."""
    rng = np.random.default_rng(seed)
    cues = {"animal": ["cat", "dog", "horse"], "plant": ["tree", "grass", "rose"], "tool": ["saw", "drill", "axe"]}
    filler = [f"f{i}" for i in range(15)]
    lines = []
    for _ in range(n):
        label = str(rng.choice(list(cues)))
        words = list(rng.choice(filler, rng.integers(2, 7)))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(cues[label])))
        lines.append(f"__label__{label} " + " ".join(words) + "\n")
    path.write_text("".join(lines))
    return path


def test_gradual_unfreezing_trains_exactly_the_top_groups_each_epoch(tmp_path):
    train = planted_classification(tmp_path / "train.txt", 64, 0)
    snapshots = []

    def snapshot(trainer, state):                      # 64 examples / batch 16 = 4 steps an epoch
        if state.global_step == 1 or state.global_step % 4 == 0:
            snapshots.append([[p.detach().clone() for p in group] for group in trainer.model.layer_groups()])

    result = train_classifier(train, config=AWDLSTMConfig(**SMALL), batch_size=16, learning_rate=0.01, seed=0,
                              progress=False, callbacks=[snapshot], min_count=1)
    groups = result.model.layer_groups()
    assert len(groups) == 4 and len(snapshots) == 5        # embeddings, 2 LSTM layers, head; 4 epochs
    # snapshots: after step 1, then at the end of epochs 0..3; what moved in between:
    for epoch in range(4):
        changed = [any(not torch.equal(a, b) for a, b in zip(before, after))
                   for before, after in zip(snapshots[epoch], snapshots[epoch + 1])]
        assert changed == [g >= 3 - epoch for g in range(4)], (epoch, changed)
    assert all(p.requires_grad for p in result.model.parameters())    # all trainable again afterwards


def test_the_three_stages_on_the_command_line(tmp_path, capsys):
    general = tmp_path / "general.txt"
    rng = np.random.default_rng(1)
    general.write_text("".join(" ".join(rng.choice(["cat", "dog", "tree", "saw", "the", "a", "f1", "f2"], 6)) + "\n"
                               for _ in range(200)))
    train = planted_classification(tmp_path / "train.txt", 120, 2)
    test = planted_classification(tmp_path / "test.txt", 60, 3)
    assert main(["pretrain", "awd-lstm", str(general), "-o", str(tmp_path / "lm"), "--embedding-size", "12",
                 "--lstm-size", "16", "--layers", "2", "--batch-size", "4", "--bptt", "10", "--epochs", "1",
                 "--valid", str(general), "--quiet", "--threads", "1"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["valid_perplexity"] > 1 and summary["tokens_per_second"] > 0
    assert main(["pretrain", "awd-lstm", str(general), "-o", str(tmp_path / "lm"), "--resume", "--lstm-size", "32",
                 "--quiet"]) == 2
    assert "--lstm-size 32 (the checkpoint's: 16)" in capsys.readouterr().err
    assert main(["finetune", str(tmp_path / "lm"), "--model", "ulmfit", "--train", str(train), "--dev", str(test),
                 "-o", str(tmp_path / "clf"), "--lm-finetune-epochs", "1", "--lm-finetune-batch-size", "4",
                 "--lm-finetune-bptt", "10",
                 "--batch-size", "16", "--quiet", "--threads", "1", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["examples"] == 60 and metrics["lm_seconds"] > 0
    for name in ("config.json", "model.safetensors", "head.safetensors", "task.json", "word_vocab.txt",
                 "language_model/model.safetensors"):
        assert (tmp_path / "clf" / name).exists(), name
    model, vocab, labels = ULMFiTClassifier.from_pretrained(tmp_path / "clf")
    assert labels == ["animal", "plant", "tool"] and "dog" in vocab
    from word2bert.tasks.data import read_classification
    from word2bert.tasks.ulmfit import encode_texts, evaluate_classifier
    examples = read_classification(test)
    items = [{"input_ids": ids, "labels": labels.index(e["label"])}
             for ids, e in zip(encode_texts([e["text"] for e in examples], vocab), examples)]
    assert evaluate_classifier(model, items, pad_id=vocab.index[EOS])["accuracy"] == pytest.approx(metrics["accuracy"])


def test_target_task_fine_tuning_lowers_the_perplexity_of_task_text(tmp_path):
    general = tmp_path / "general.txt"
    rng = np.random.default_rng(4)
    general.write_text("".join(" ".join(rng.choice(["cat", "dog", "tree", "saw", "the", "a", "f1", "f2"], 6)) + "\n"
                               for _ in range(200)))
    train = planted_classification(tmp_path / "train.txt", 200, 5)
    test = planted_classification(tmp_path / "test.txt", 60, 6)
    pretrain_language_model(general, AWDLSTMConfig(**SMALL), None, tmp_path / "lm", batch_size=4, bptt=10,
                            epochs=1, progress=False, nonmono=None)
    tuned = finetune_language_model(tmp_path / "lm", train, valid_path=test, output_dir=tmp_path / "tuned",
                                    epochs=3, batch_size=4, bptt=10, learning_rate=3e-2, progress=False, min_count=1)
    from word2bert.corpus.lm_corpus import encode_lines, token_stream
    from word2bert.models.awd_lstm import stream_perplexity
    from word2bert.tasks.ulmfit import load_vocab
    before = transfer_vocabulary(AWDLSTMForLanguageModeling.from_pretrained(tmp_path / "lm"),
                                 load_vocab(tmp_path / "lm"), tuned.vocab)
    stream = token_stream(encode_lines(tmp_path / "tuned" / "valid.texts.txt", tuned.vocab), tuned.vocab.index[EOS])
    assert tuned.perplexities["valid"] < 0.85 * stream_perplexity(before, stream)
    assert (tmp_path / "tuned" / "train.texts.txt").read_text().split("\n")[0].split()[0] != "__label__"


def test_the_classifier_learns_a_planted_task_from_random_weights(tmp_path):
    """The control run of the benchmark: the same classifier without stages 1 and 2, all layers trained."""
    train = planted_classification(tmp_path / "train.txt", 300, 2)
    test = planted_classification(tmp_path / "test.txt", 90, 3)
    config = AWDLSTMConfig(embedding_size=32, lstm_size=32, num_layers=2)
    # Adam at 3e-2 on so small a model is chaotic: two float32 implementations of the same update (torch's
    # fused and default Adam) agree to 1e-7 for 10 steps and part after ~80, ending at 1.0 / 0.89 for seed 0;
    # so the test asks for the mean over four seeds (measured 0.98 with the default Adam, 0.96 fused)
    accuracies = [train_classifier(train, test, config=config, batch_size=16, learning_rate=3e-2, epochs=8,
                                   gradual_unfreezing=False, seed=seed, progress=False,
                                   min_count=1).metrics["accuracy"] for seed in range(4)]
    assert sum(accuracies) / 4 > 0.9 and min(accuracies) > 0.75, accuracies   # chance 1/3


def test_command_line_errors(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("a b c\n" * 10)
    assert main(["pretrain", "awd-lstm", str(text), "-o", str(tmp_path / "lm"), "--quiet"]) == 2
    assert "40 tokens are too few for 20 rows" in capsys.readouterr().err
    text.write_text("a b c\n" * 200)
    assert main(["pretrain", "awd-lstm", str(text), "-o", str(tmp_path / "lm"), "--bptt", "500", "--quiet"]) == 2
    assert "--bptt 500 is longer than the data" in capsys.readouterr().err
    out = str(tmp_path / "out")
    assert main(["finetune", str(tmp_path), "--model", "ulmfit", "--train", str(text), "-o", out, "--quiet"]) == 2
    assert "not an AWD-LSTM language model directory" in capsys.readouterr().err
    assert main(["finetune", str(tmp_path), "--model", "nosuch", "--train", str(text), "-o", out]) == 2
    assert "no such model" in capsys.readouterr().err
    assert main(["pretrain"]) == 2
