"""ELMo pre-training: the sampled softmax, the two-direction stream windows, files with the softmax."""

import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("h5py")

from word2bert.errors import Word2BertError  # noqa: E402
from word2bert.models.elmo import (  # noqa: E402
    ElmoConfig,
    ElmoCorpus,
    ElmoForPreTraining,
    ElmoModel,
    expected_counts,
    log_uniform_candidates,
    log_uniform_probabilities,
    sampled_softmax_loss,
)

torch.set_num_threads(1)


def test_log_uniform_sampler_follows_zipf():
    V, runs = 10, 20000
    rng = np.random.default_rng(0)
    first = np.array([log_uniform_candidates(1, V, rng)[0][0] for _ in range(runs)])
    p = log_uniform_probabilities(torch.arange(V), V).numpy()
    assert abs(p.sum() - 1.0) < 1e-12
    counts = np.bincount(first, minlength=V)
    chi2 = ((counts - runs * p) ** 2 / (runs * p)).sum()
    assert chi2 < 27.9   # 9 degrees of freedom, p = 0.001


def test_unique_candidates_and_their_expected_counts():
    V, S, runs = 12, 4, 6000
    rng = np.random.default_rng(1)
    included = np.zeros(V)
    predicted = np.zeros(V)
    for _ in range(runs):
        ids, tries = log_uniform_candidates(S, V, rng)
        assert len(set(ids.tolist())) == S and tries >= S
        included[ids] += 1
        predicted += expected_counts(torch.arange(V), tries, V).numpy()
    # Q(k) = 1 - (1 - P(k))^tries given the number of draws: the inclusion rates agree on average
    np.testing.assert_allclose(included / runs, predicted / runs, atol=0.03)
    with pytest.raises(Word2BertError):
        log_uniform_candidates(13, 12, rng)


def test_sampled_softmax_against_a_numpy_reference():
    torch.manual_seed(0)
    V, d, N, S = 30, 5, 7, 10
    hidden, weight, bias = torch.randn(N, d, dtype=torch.float64), torch.randn(V, d, dtype=torch.float64), \
        torch.randn(V, dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 3, 0, 5, 29])
    loss = sampled_softmax_loss(hidden, targets, weight, bias, S, np.random.default_rng(5))
    sampled, tries = log_uniform_candidates(S, V, np.random.default_rng(5))       # the same candidates
    p = (np.log(np.arange(V) + 2.0) - np.log(np.arange(V) + 1.0)) / np.log(V + 1.0)
    log_q = np.log(1.0 - (1.0 - p) ** tries)
    h, w, b = hidden.numpy(), weight.numpy(), bias.numpy()
    for n, y in enumerate(targets.tolist()):
        logits = [h[n] @ w[y] + b[y] - log_q[y]] + [h[n] @ w[s] + b[s] - log_q[s] for s in sampled if s != y]
        expected = np.log(np.exp(logits).sum()) - logits[0]
        assert loss[n].item() == pytest.approx(expected, rel=1e-10)
    assert any(y in sampled for y in targets.tolist())   # the case of an accidental hit is exercised


def planted_corpus(tmp_path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    letters = "abcdefghijklmnop"
    lines = []
    for _ in range(n):
        start, length = rng.integers(0, 10), rng.integers(3, 7)
        lines.append(" ".join(letters[start:start + length]))
    path = tmp_path / "planted.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_stream_windows_walk_each_row_forwards_and_backwards(tmp_path):
    corpus = ElmoCorpus.from_file(planted_corpus(tmp_path), vocab_size=30)
    assert corpus.types[:2] == ["<S>", "</S>"] and corpus.vocabulary[:3] == ["<S>", "</S>", "<UNK>"]
    assert corpus.stream[0] == 0 and corpus.stream[-1] == 1
    rows, bptt = 3, 7
    row_length = (len(corpus.stream) - 1) // rows
    data = corpus.windows(row_length)
    for row in range(rows):
        start = row * row_length
        forward, backward = [], []
        for position in range(0, row_length, bptt):
            item = data[(start + position, min(bptt, row_length - position))]
            np.testing.assert_array_equal(corpus.softmax_ids[item["input_ids"][1:]], item["labels"][:-1])
            np.testing.assert_array_equal(corpus.softmax_ids[item["backward_input_ids"][:-1]],
                                          item["backward_labels"][1:])
            forward.append(item["input_ids"])
            backward.append(item["backward_input_ids"])
        # forward windows tile the row left to right; backward windows tile it (shifted by one) right to left
        np.testing.assert_array_equal(np.concatenate(forward), corpus.stream[start:start + row_length])
        np.testing.assert_array_equal(np.concatenate(backward[::-1]), corpus.stream[start + 1:start + row_length + 1])
    batch = data.collate([data[(0, 5)], data[(row_length, 5)]])
    assert batch["input_ids"].shape == (2, 5, 50) and batch["labels"].shape == (2, 5)


def tiny_config(vocab_size, **overrides):
    values = dict(char_embedding_dim=4, filters=[[1, 8], [2, 8]], n_highway=1, lstm_dim=24, projection_dim=8,
                  n_layers=2, vocab_size=vocab_size, dropout=0.0, n_negative_samples=6, use_skip_connections=True)
    values.update(overrides)
    return ElmoConfig(**values)


def test_pretraining_files_round_trip_with_the_softmax(tmp_path):
    corpus = ElmoCorpus.from_file(planted_corpus(tmp_path), vocab_size=30)
    torch.manual_seed(0)
    model = ElmoForPreTraining(tiny_config(len(corpus.vocabulary)), corpus.vocabulary).eval()
    data = corpus.windows((len(corpus.stream) - 1) // 2)
    batch = data.collate([data[(0, 6)], data[(data.row_length, 6)]])
    model.save_pretrained(tmp_path / "elmo")
    again = ElmoForPreTraining.from_pretrained(tmp_path / "elmo").eval()
    assert again.vocabulary == corpus.vocabulary
    with torch.no_grad():
        a, b = model(**batch), again(**batch)
    torch.testing.assert_close(a.loss, b.loss)
    assert a.stats["nll"][1] == 24 and math.isfinite(a.stats["nll"][0])
    features = ElmoModel.from_pretrained(tmp_path / "elmo").eval()   # the encoder ignores the softmax
    with torch.no_grad():
        torch.testing.assert_close(features(batch["input_ids"]).last_hidden_state,
                                   model.elmo(batch["input_ids"]).last_hidden_state)


def test_training_mode_uses_the_sampled_softmax(tmp_path):
    corpus = ElmoCorpus.from_file(planted_corpus(tmp_path), vocab_size=30)
    model = ElmoForPreTraining(tiny_config(len(corpus.vocabulary)))
    data = corpus.windows((len(corpus.stream) - 1) // 2)
    batch = data.collate([data[(0, 6)], data[(data.row_length, 6)]])
    out = model(**batch)
    assert set(out.stats) == {"forward_sampled_nll", "backward_sampled_nll", "sampled_nll"}
    out.loss.backward()
    assert model.softmax_weight.grad is not None
    model.eval()
    assert set(model(**batch).stats) == {"forward_nll", "backward_nll", "nll"}
    with pytest.raises(Word2BertError, match="vocab_size"):
        ElmoForPreTraining(tiny_config(0))


def test_trainer_learns_the_planted_language_in_both_directions(tmp_path):
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.samplers import ContiguousStreamSampler

    corpus = ElmoCorpus.from_file(planted_corpus(tmp_path), vocab_size=30)
    (tmp_path / "held_out").mkdir()
    held_out = ElmoCorpus.from_file(planted_corpus(tmp_path / "held_out", n=60, seed=1), corpus.vocabulary,
                                    types=corpus.types)
    sampler = ContiguousStreamSampler(len(corpus.stream), 8, 10)
    eval_sampler = ContiguousStreamSampler(len(held_out.stream), 4, 10)
    data, valid = corpus.windows(sampler.row_length(1)), held_out.windows(eval_sampler.row_length(1))
    torch.manual_seed(0)
    # no clipping here: PyTorch's fused LSTM kernel keeps the test fast (the clipped loop is tested elsewhere)
    model = ElmoForPreTraining(tiny_config(len(corpus.vocabulary), cell_clip=None, proj_clip=None))
    args = TrainingArguments(batch_size=8, max_steps=150, learning_rate=2e-2, optimizer="adam", weight_decay=0.0,
                             warmup_steps=0.0, max_grad_norm=10.0, progress=False)
    trainer = Trainer(model, args, data, data.collate, eval_data=valid, sampler=sampler, eval_sampler=eval_sampler)
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    # a sentence is a run of 3-6 consecutive letters from a random start: the best perplexity is about 1.8
    assert before["perplexity"] > 12
    assert after["forward_perplexity"] < 4.0 and after["backward_perplexity"] < 4.0
    assert all(step["loss"] > 0 for step in trainer.state.history)


def test_cli_pretrain_resume_and_encode(tmp_path, capsys):
    from word2bert.cli import main

    corpus = planted_corpus(tmp_path)
    out = tmp_path / "elmo"
    sizes = ["--char-dim", "4", "--filters", "1:8,2:8", "--highway", "1", "--lstm-dim", "24", "--projection-dim", "8",
             "--bptt", "5", "--batch-size", "4", "--negative-samples", "6", "--quiet", "--threads", "1"]
    assert main(["pretrain", "elmo", str(corpus), "--valid", str(corpus), "-o", str(out), "--max-steps", "3",
                 "--save-steps", "2", *sizes]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 3 and summary["evaluation"]["forward_perplexity"] > 1
    for name in ("options.json", "lm_weights.hdf5", "vocab.txt"):
        assert (out / name).exists(), name
    assert main(["pretrain", "elmo", str(corpus), "-o", str(out), "--max-steps", "5", "--resume", "--lstm-dim",
                 "32", "--quiet"]) == 2
    assert "--lstm-dim 32 (the checkpoint's: 24)" in capsys.readouterr().err
    # the sizes need not be repeated: the run continues with those in its training_args.json
    assert main(["pretrain", "elmo", str(corpus), "-o", str(out), "--max-steps", "5", "--resume", "--quiet",
                 "--threads", "1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 5
    assert main(["encode", "--model", "elmo", str(out), "a b c"]) == 0
    assert len(capsys.readouterr().out.split("\t")[1].split()) == 16
    assert main(["pretrain", "elmo", str(corpus), "-o", str(tmp_path / "x"), "--max-steps", "1", *sizes,
                 "--bptt", "100000"]) == 2
    assert "--bptt 100000 is longer than the rows" in capsys.readouterr().err
    bad_vocab = tmp_path / "vocab.txt"
    bad_vocab.write_text("<S>\n</S>\na\n")
    assert main(["pretrain", "elmo", str(corpus), "-o", str(tmp_path / "y"), "--vocab", str(bad_vocab), *sizes]) == 2
    assert "lacks <UNK>" in capsys.readouterr().err
