"""CoVe: encoder shapes, the frozen GloVe input, the attentional decoder on a planted translation task,
files, the CLI, and the BiLSTM-max-pool classifier."""

import json

import numpy as np
import pytest
import torch

from word2bert.cli import main
from word2bert.errors import Word2BertError
from word2bert.models.cove import (
    BiLSTMMaxPoolClassifier,
    CoveConfig,
    CoveFeatures,
    CoveForTranslation,
    GloveFeatures,
    TranslationPairs,
    build_target_vocabulary,
    collate_pairs,
    load_cove,
    read_pairs,
    tokenize,
)
from word2bert.train import Trainer, TrainingArguments

torch.set_num_threads(1)


def small_model(seed=0, vocab=12, dim=6, hidden=5, target=10):
    torch.manual_seed(seed)
    table = np.random.default_rng(seed).normal(size=(vocab, dim)).astype(np.float32)
    table[:2] = 0.0  # <pad>, <unk>
    config = CoveConfig(source_vocab_size=vocab, embedding_dim=dim, hidden_size=hidden, num_layers=2, dropout=0.0,
                        target_vocab_size=target, target_embedding_dim=4)
    return CoveForTranslation(config, table), table


def test_tokenize_splits_words_numbers_and_marks():
    assert tokenize("Can't open 'x2.txt': %s") == ["can", "'", "t", "open", "'", "x", "2", ".", "txt", "'", ":",
                                                   "%", "s"]
    assert tokenize("Élément d’accès") == ["élément", "d", "’", "accès"]


def test_encoder_shapes_features_and_padding():
    model, table = small_model()
    encoder = model.encoder.eval()
    ids = torch.tensor([[2, 3, 4, 5], [6, 1, 0, 0]])
    mask = ids != 0
    out = encoder(ids, mask, output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 4, 10)                      # CoVe: 2 x hidden
    assert [h.shape[-1] for h in out.hidden_states] == [6, 10, 10]        # GloVe, layer 1, layer 2
    features = encoder.features(ids, mask)
    assert features.shape == (2, 4, 16)                                   # [GloVe; CoVe]
    np.testing.assert_array_equal(features[0, :, :6].detach().numpy(), table[[2, 3, 4, 5]])
    assert features[1, 2:].abs().sum() == 0
    alone = encoder(ids[1:, :2], mask[1:, :2]).last_hidden_state          # padding and batch-mates change nothing
    torch.testing.assert_close(out.last_hidden_state[1, :2], alone[0])
    # layer 1: the backward half of the first token reads the second, the forward half does not
    changed = ids.clone()
    changed[1, 1] = 7
    again = encoder(changed, mask, output_hidden_states=True).hidden_states[1]
    assert not torch.allclose(again[1, 0, 5:], out.hidden_states[1][1, 0, 5:])
    torch.testing.assert_close(again[1, 0, :5], out.hidden_states[1][1, 0, :5])


def planted_pairs(n, rng):
    """Source words wa..wh translate word by word to tc..tj (target letter = source letter + 2), same order."""
    pairs = []
    for _ in range(n):
        words = rng.integers(0, 8, size=rng.integers(2, 6))
        pairs.append((" ".join(SOURCE[w] for w in words), " ".join(TARGET[w] for w in words)))
    return pairs


SOURCE = ["w" + "abcdefgh"[i] for i in range(8)]
TARGET = ["t" + "cdefghij"[i] for i in range(8)]


def test_translation_model_learns_a_planted_dictionary_and_glove_stays_frozen():
    rng = np.random.default_rng(0)
    source_words = ["<pad>", "<unk>"] + SOURCE
    pairs = planted_pairs(1200, rng)
    target_words = build_target_vocabulary((tokenize(t) for _, t in pairs), 20, min_count=1)
    model, table = small_model(vocab=len(source_words), hidden=16, target=len(target_words))
    data = TranslationPairs(pairs, {w: i for i, w in enumerate(source_words)},
                            {w: i for i, w in enumerate(target_words)})
    held_out = TranslationPairs(planted_pairs(100, rng), {w: i for i, w in enumerate(source_words)},
                                {w: i for i, w in enumerate(target_words)})
    args = TrainingArguments(batch_size=16, max_steps=100, learning_rate=2e-2, weight_decay=0.0, warmup_steps=0.0,
                             max_grad_norm=5.0, progress=False)
    trainer = Trainer(model, args, data, collate_pairs, eval_data=held_out)
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["loss"] < 0.2 * before["loss"]
    assert after["accuracy"] > 0.95
    np.testing.assert_array_equal(model.encoder.embeddings.weight.detach().numpy(), table)   # GloVe untouched
    assert model.encoder.embeddings.weight.grad is None


def test_save_and_load_round_trip(tmp_path):
    model, _ = small_model()
    model.source_words = ["<pad>", "<unk>"] + [f"w{i}" for i in range(2, 12)]
    model.target_words = ["<pad>", "<unk>", "<s>", "</s>"] + [f"t{i}" for i in range(6)]
    model.save_pretrained(tmp_path)
    again = load_cove(tmp_path)
    encoder = load_cove(tmp_path, encoder_only=True).eval()
    batch = collate_pairs([{"input_ids": np.array([2, 3]), "decoder_input_ids": np.array([2, 5]),
                            "labels": np.array([5, 3])}])
    model.eval(), again.eval()
    torch.testing.assert_close(again(**batch).logits, model(**batch).logits)
    torch.testing.assert_close(encoder.features(batch["input_ids"]), model.encoder.features(batch["input_ids"]))
    assert not encoder.embeddings.weight.requires_grad
    config = json.loads((tmp_path / "config.json").read_text())
    config["hidden_size"] = 7
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(Word2BertError, match="does not fit"):
        load_cove(tmp_path)


def test_classifier_trains_the_lstm_not_the_features():
    model, _ = small_model()
    encoder = model.encoder
    classifier = BiLSTMMaxPoolClassifier(CoveFeatures(encoder), 16, num_labels=3, hidden_size=8)
    ids = torch.tensor([[2, 3, 4], [5, 6, 0]])
    out = classifier(ids, ids != 0, labels=torch.tensor([0, 2]))
    out.loss.backward()
    assert all(p.grad is None for p in encoder.parameters())
    assert classifier.lstm.weight_ih_l0.grad is not None
    glove_only = BiLSTMMaxPoolClassifier(GloveFeatures(encoder), 6, num_labels=3, hidden_size=8)
    assert glove_only(ids, ids != 0).logits.shape == (2, 3)


def test_cli_train_then_encode(tmp_path, capsys):
    rng = np.random.default_rng(1)
    words = SOURCE
    glove = tmp_path / "glove.txt"
    glove.write_text("".join(f"{w} " + " ".join(f"{x:.4f}" for x in rng.normal(size=4)) + "\n" for w in words))
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{s}\t{t}\n" for s, t in planted_pairs(40, rng)))
    out = tmp_path / "cove"
    assert main(["train", "cove", str(pairs), "--glove", str(glove), "-o", str(out), "--valid", str(pairs),
                 "--hidden", "4", "--target-embedding", "4", "--batch-size", "8", "--max-steps", "3", "--quiet",
                 "--threads", "1"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 3 and summary["evaluation"]["loss"] > 0
    assert main(["train", "cove", str(pairs), "--glove", str(glove), "-o", str(out), "--resume", "--hidden", "6",
                 "--quiet"]) == 2
    assert "--hidden 6 (the checkpoint's: 4)" in capsys.readouterr().err
    assert main(["encode", "--model", "cove", str(out), "wa wb zz", "--tokens"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert [r.split("\t")[0] for r in rows] == ["wa", "wb", "zz"]
    vectors = np.array([[float(x) for x in r.split("\t")[1].split()] for r in rows])
    assert vectors.shape == (3, 4 + 8)
    assert np.all(vectors[2, :4] == 0)                         # unknown word: a zero GloVe vector
    bad = tmp_path / "bad.tsv"
    bad.write_text("only one field\n")
    assert main(["train", "cove", str(bad), "--glove", str(glove), "-o", str(tmp_path / "bad-out"), "--quiet"]) == 2
    assert "bad.tsv, line 1" in capsys.readouterr().err
    assert not (tmp_path / "bad-out").exists()                 # nothing half-written


def test_read_pairs_names_the_line(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("a\tb\nno tab here\n")
    with pytest.raises(Word2BertError, match="p.tsv, line 2"):
        read_pairs(path)
