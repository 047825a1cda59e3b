"""MASS: fragment statistics, 80/10/10 corruption, decoder inputs and positions, the k = 1 and k = m
extremes, and a tiny encoder-decoder that learns to fill fragments of a planted language."""

import numpy as np
import pytest
import torch

from word2bert.models.transformer import TransformerConfig, TransformerForTranslation
from word2bert.objectives.mass import MassCollator, MassMasking, MonolingualDataset
from word2bert.train import Trainer, TrainingArguments

torch.set_num_threads(1)

EOS, PAD, BOS, MASK = 0, 1, 2, 3
VOCAB = 40


def masking(**options):
    return MassMasking(VOCAB, MASK, BOS, special_ids=(EOS, PAD), **options)


def test_fragment_start_is_20_percent_first_20_percent_last_60_percent_uniform():
    rng = np.random.default_rng(0)
    mass = masking()
    length, draws = 10, 30000
    k = mass.fragment_length(length)
    assert k == 5
    starts = np.array([mass.fragment(length, rng)[0] for _ in range(draws)])
    frequencies = np.bincount(starts, minlength=length - k + 1) / draws
    expected = np.full(length - k + 1, 0.6 / (length - k + 1))
    expected[0] += 0.2
    expected[-1] += 0.2
    assert np.abs(frequencies - expected).max() < 0.012  # ~4 standard errors
    spans = [mass.fragment(length, rng) for _ in range(50)]
    assert all(end - start == k for start, end in spans)
    assert masking(ratio=0.5).fragment_length(3) == 2 and masking(ratio=0.01).fragment_length(7) == 1


def test_fragment_corruption_is_80_10_10_and_the_rest_is_untouched():
    rng = np.random.default_rng(1)
    mass = masking()
    sentence = np.arange(10, 30)  # 20 distinct ordinary tokens
    counts = np.zeros(3)
    for _ in range(3000):
        item = mass(sentence, rng)
        start = int(item["decoder_position_ids"][0])
        end = start + len(item["labels"])
        outside = np.r_[0:start, end:len(sentence)]
        assert np.array_equal(item["input_ids"][outside], sentence[outside])
        corrupted = item["input_ids"][start:end]
        counts += [(corrupted == MASK).sum(), (corrupted == sentence[start:end]).sum(),
                   ((corrupted != MASK) & (corrupted != sentence[start:end])).sum()]
        assert not np.isin(corrupted, [EOS, PAD, BOS]).any()  # random replacements are ordinary tokens
    shares = counts / counts.sum()
    # unchanged: 10% kept plus random draws that hit the original token (1/36 of 10%)
    assert shares[0] == pytest.approx(0.8, abs=0.01)
    assert shares[1] == pytest.approx(0.1 + 0.1 / 36, abs=0.01)
    assert shares[2] == pytest.approx(0.1 - 0.1 / 36, abs=0.01)


def test_decoder_inputs_are_the_fragment_shifted_by_one_at_original_positions():
    rng = np.random.default_rng(2)
    mass = masking(start_prob=0.0, end_prob=0.0)
    sentence = np.array([11, 12, 13, 14, 15, 16, 17, EOS])
    for _ in range(50):
        item = mass(sentence, rng, language=1)
        positions = item["decoder_position_ids"]
        start = int(positions[0])
        assert np.array_equal(positions, np.arange(start, start + 4))
        assert np.array_equal(item["labels"], sentence[positions])
        previous = np.concatenate([[BOS], sentence[:-1]])
        assert np.array_equal(item["decoder_input_ids"], previous[positions])
        assert np.array_equal(item["memory_attention_mask"], (item["input_ids"] != MASK).astype(int))
        assert (item["token_type_ids"] == 1).all() and (item["decoder_token_type_ids"] == 1).all()


def test_k_equals_1_is_bert_like_and_k_equals_m_is_gpt_like():
    rng = np.random.default_rng(3)
    sentence = np.array([11, 12, 13, 14, 15, EOS])
    bert_like = masking(ratio=0.01, mask_prob=1.0, random_prob=0.0)(sentence, rng)
    assert (bert_like["input_ids"] == MASK).sum() == 1 and len(bert_like["labels"]) == 1
    position = int(bert_like["decoder_position_ids"][0])
    assert bert_like["input_ids"][position] == MASK and bert_like["labels"][0] == sentence[position]
    # the one decoder input is the previous token, which the encoder sees anyway: nothing new
    assert position == 0 or bert_like["decoder_input_ids"][0] in bert_like["input_ids"]
    gpt_like = masking(ratio=1.0, mask_prob=1.0, random_prob=0.0)(sentence, rng)
    assert (gpt_like["input_ids"] == MASK).all() and not gpt_like["memory_attention_mask"].any()
    assert np.array_equal(gpt_like["decoder_input_ids"], [BOS, 11, 12, 13, 14, 15])
    assert np.array_equal(gpt_like["labels"], sentence)
    assert np.array_equal(gpt_like["decoder_position_ids"], np.arange(6))
    # ... a left-to-right language model: the encoder's input no longer matters
    config = TransformerConfig(vocab_size=VOCAB, d_model=16, encoder_layers=1, decoder_layers=1,
                               encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                               decoder_ffn_dim=32, max_position_embeddings=16, dropout=0.0, pad_token_id=PAD,
                               eos_token_id=EOS, decoder_start_token_id=BOS)
    torch.manual_seed(0)
    model = TransformerForTranslation(config).eval()
    batch = MassCollator(masking(ratio=1.0, mask_prob=1.0, random_prob=0.0), PAD)(
        [{"input_ids": sentence}], rng)
    loss = model(**batch).loss
    batch["input_ids"] = torch.randint(4, VOCAB, batch["input_ids"].shape)
    torch.testing.assert_close(model(**batch).loss, loss)


def test_tiny_model_learns_to_fill_fragments_of_a_planted_language():
    """Sentences count up from a random start (a, a+1, a+2, ...): a masked fragment is predictable."""
    rng = np.random.default_rng(4)
    sentences = []
    for _ in range(1200):
        length = int(rng.integers(6, 11))
        start = int(rng.integers(4, VOCAB - length))
        sentences.append(np.append(np.arange(start, start + length), EOS))
    data = MonolingualDataset(sentences, np.zeros(len(sentences), dtype=int))
    config = TransformerConfig(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2,
                               encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                               decoder_ffn_dim=64, max_position_embeddings=16, dropout=0.0, pad_token_id=PAD,
                               eos_token_id=EOS, decoder_start_token_id=BOS, type_vocab_size=1)
    torch.manual_seed(0)
    model = TransformerForTranslation(config, label_smoothing=0.0)
    collate = MassCollator(masking(), PAD)
    args = TrainingArguments(batch_size=32, max_steps=250, learning_rate=3e-3, optimizer="adam", adam_beta2=0.98,
                             weight_decay=0.0, warmup_steps=20, schedule="inverse_sqrt", progress=False, seed=0)
    trainer = Trainer(model, args, data, collate, eval_data=MonolingualDataset(sentences[:200], np.zeros(200, int)))
    state = trainer.train()
    accuracy = state.evaluations[-1]["accuracy"]
    assert accuracy > 0.8, state.evaluations[-1]  # chance is ~1/36 per token
