"""MLM masking statistics: 15% of non-special tokens, 80/10/10, specials never masked, static vs dynamic."""

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.objectives import IGNORE_INDEX, MaskedLM
from word2bert.objectives.pretraining import PretrainingCollator

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 1000


def make_batch(rng, batch=400, width=64):
    """[CLS] a.. [SEP] b.. [SEP] [PAD].. with random lengths; real tokens drawn from 5..VOCAB-1."""
    lengths = rng.integers(10, width + 1, batch)
    ids = np.full((batch, width), PAD, dtype=np.int64)
    attention = np.zeros((batch, width), dtype=np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(5, VOCAB, length)
        ids[row, 0] = CLS
        ids[row, length // 2] = SEP
        ids[row, length - 1] = SEP
        attention[row, :length] = 1
    return ids, attention


def masking(**kwargs):
    return MaskedLM(VOCAB, MASK, special_ids=(PAD, UNK, CLS, SEP, MASK), pad_id=PAD, **kwargs)


def test_rates_15_percent_and_80_10_10():
    rng = np.random.default_rng(0)
    ids, attention = make_batch(rng)
    mlm = masking(max_predictions_per_seq=64)
    out = mlm.apply(ids, attention, rng)
    positions, labels, corrupted = out["masked_positions"], out["masked_labels"], out["input_ids"]
    valid = labels != IGNORE_INDEX
    candidates = (attention == 1) & (ids > MASK)
    n_candidates = candidates.sum(axis=1)
    # exactly round(0.15 n) per sequence (at least one): BERT's num_to_predict
    expected = np.maximum(1, np.rint(0.15 * n_candidates))
    np.testing.assert_array_equal(valid.sum(axis=1), expected)
    assert abs(valid.sum() / n_candidates.sum() - 0.15) < 0.01
    rows = np.nonzero(valid)[0]
    cols = positions[valid]
    # labels are the original tokens; chosen positions are real, non-special tokens
    np.testing.assert_array_equal(labels[valid], ids[rows, cols])
    assert candidates[rows, cols].all()
    # untouched elsewhere
    chosen = np.zeros_like(ids, dtype=bool)
    chosen[rows, cols] = True
    np.testing.assert_array_equal(corrupted[~chosen], ids[~chosen])
    # 80% [MASK], 10% random, 10% unchanged (binomial tolerance: ~4 sigma on ~3,000 predictions)
    n = chosen.sum()
    replaced = corrupted[rows, cols]
    frac_mask = (replaced == MASK).mean()
    frac_same = (replaced == ids[rows, cols]).mean()
    frac_random = 1 - frac_mask - frac_same
    for frac, p in ((frac_mask, 0.8), (frac_same, 0.1 + 0.1 / VOCAB), (frac_random, 0.1 - 0.1 / VOCAB)):
        assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / n), (frac, p)
    # the random replacements are spread over the vocabulary
    randoms = replaced[(replaced != MASK) & (replaced != ids[rows, cols])]
    assert len(np.unique(randoms)) > 0.8 * len(randoms)


def test_positions_sorted_uniform_and_capped():
    rng = np.random.default_rng(1)
    ids, attention = make_batch(rng, batch=2000, width=32)
    out = masking(max_predictions_per_seq=3).apply(ids, attention, rng)
    valid = out["masked_labels"] != IGNORE_INDEX
    assert valid.sum(axis=1).max() <= 3 and out["masked_positions"].shape[1] == 3
    pos = np.where(valid, out["masked_positions"], 10**6)
    assert (np.diff(np.sort(pos, axis=1), axis=1) > 0)[valid[:, 1:]].all()
    # each candidate position is chosen about equally often (uniform draw without replacement)
    full = (attention.sum(axis=1) == 32)
    counts = np.bincount(out["masked_positions"][full][valid[full]], minlength=32)[1:15]
    assert counts.min() > 0.5 * counts.mean()


def test_special_tokens_never_masked():
    rng = np.random.default_rng(2)
    ids, attention = make_batch(rng, batch=300)
    ids[:, 5] = UNK
    out = masking(max_predictions_per_seq=64, masked_lm_prob=0.5).apply(ids, attention, rng)
    valid = out["masked_labels"] != IGNORE_INDEX
    assert not np.isin(out["masked_labels"][valid], [PAD, UNK, CLS, SEP, MASK]).any()
    assert (out["input_ids"][attention == 0] == PAD).all()
    assert (out["input_ids"][ids == CLS] == CLS).all() and (out["input_ids"][ids == SEP] == SEP).all()


def test_static_masks_repeat_dynamic_masks_change():
    rng = np.random.default_rng(3)
    ids, attention = make_batch(rng, batch=20)
    static = masking(dynamic=False, seed=7)
    a = static.apply(ids, attention, np.random.default_rng(1), instance_ids=range(20))
    b = static.apply(ids, attention, np.random.default_rng(2), instance_ids=range(20))
    # the same sequence in another batch position, padded differently: same mask
    c = static.apply(np.pad(ids[3:4], ((0, 0), (0, 9))), np.pad(attention[3:4], ((0, 0), (0, 9))), None,
                     instance_ids=[3])
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    n3 = int((a["masked_labels"][3] != IGNORE_INDEX).sum())
    np.testing.assert_array_equal(c["masked_positions"][0, :n3], a["masked_positions"][3, :n3])
    other_copy = static.apply(ids, attention, None, instance_ids=range(100, 120))  # a dupe_factor copy
    assert not np.array_equal(other_copy["masked_positions"], a["masked_positions"])
    dynamic = masking(dynamic=True)
    d1 = dynamic.apply(ids, attention, np.random.default_rng(1))
    d2 = dynamic.apply(ids, attention, np.random.default_rng(2))
    assert not np.array_equal(d1["masked_positions"], d2["masked_positions"])


def test_collator_emits_pretraining_kwargs():
    mlm = masking(dynamic=True)
    collate = PretrainingCollator(mlm, pad_id=PAD)
    items = [{"input_ids": np.array([CLS, 10, 11, 12, SEP, 20, 21, SEP]), "token_type_ids": np.array([0] * 5 + [1] * 3),
              "next_sentence_label": 1, "index": 0},
             {"input_ids": np.array([CLS, 30, SEP, 40, SEP]), "token_type_ids": np.array([0, 0, 0, 1, 1]),
              "next_sentence_label": 0, "index": 1}]
    batch = collate(items, np.random.default_rng(0))
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "masked_positions", "masked_labels",
                          "next_sentence_label"}
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].tolist() == [[1] * 8, [1] * 5 + [0] * 3]
    assert batch["token_type_ids"][1].tolist() == [0, 0, 0, 1, 1, 0, 0, 0]
    assert batch["next_sentence_label"].tolist() == [1, 0]
    assert batch["masked_positions"].shape == batch["masked_labels"].shape


def test_bad_parameters():
    with pytest.raises(Word2BertError, match="masked_lm_prob"):
        masking(masked_lm_prob=1.5)
    with pytest.raises(Word2BertError, match="MASK"):
        MaskedLM(VOCAB, None)
