"""Permutation LM: masks against a hand-written table, orders and targets statistically."""

import collections
import itertools
import math

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.objectives.permutation_lm import (
    PermutationLanguageModeling,
    expected_walk_predictions,
    permutation_mask,
    sample_orders,
    span_targets,
    token_targets,
    two_stream_masks,
)


def test_two_stream_masks_of_a_fixed_order():
    """Five tokens x0..x4, factorisation order x3 -> x1 -> x4 -> x0 -> x2 (ranks below); x0, x2, x4 are
    predicted, x1 and x3 are context (they come first and see each other)."""
    ranks = np.array([[3, 1, 4, 0, 2]])
    is_target = np.array([[True, False, True, False, True]])
    content, query = two_stream_masks(permutation_mask(ranks, is_target))
    # who sees whom (row i attends to column j); predicted order: x4 (rank 2), x0 (rank 3), x2 (rank 4)
    expected_query = np.array([
        # x0 x1 x2 x3 x4
        [0, 1, 0, 1, 1],   # x0: the context and x4, not itself, not x2
        [0, 1, 0, 1, 0],   # x1: context only
        [1, 1, 0, 1, 1],   # x2: everything but itself
        [0, 1, 0, 1, 0],   # x3: context only
        [0, 1, 0, 1, 0],   # x4: the first prediction sees the context only
    ], dtype=bool)
    expected_content = np.array([
        [1, 1, 0, 1, 1],
        [0, 1, 0, 1, 0],
        [1, 1, 1, 1, 1],
        [0, 1, 0, 1, 0],
        [0, 1, 0, 1, 1],
    ], dtype=bool)
    assert np.array_equal(query[0], expected_query)
    assert np.array_equal(content[0], expected_content)


def test_functional_tokens_keep_their_place_and_see_themselves():
    ranks = np.array([[0, 1, 2]])
    is_target = np.array([[True, False, False]])
    functional = np.array([[False, False, True]])  # a [SEP] at the end, rank 2
    content, query = two_stream_masks(permutation_mask(ranks, is_target, functional))
    assert query[0].astype(int).tolist() == [[0, 1, 0], [0, 1, 0], [1, 1, 1]]


def test_every_order_equally_likely():
    """4 positions: 24 orders; chi-square over 24,000 draws (p-value threshold 0.001)."""
    rng = np.random.default_rng(0)
    ranks = sample_orders(24000, 4, rng)
    counts = collections.Counter(map(tuple, ranks))
    assert set(counts) == set(itertools.permutations(range(4)))
    expected = 1000
    chi_square = sum((count - expected) ** 2 / expected for count in counts.values())
    assert chi_square < 49.7  # 23 degrees of freedom, p = 0.001


def test_block_orders_share_one_permutation_per_row():
    rng = np.random.default_rng(1)
    ranks = sample_orders(50, 6, rng, perm_size=3)
    assert np.array_equal(np.sort(ranks[:, :3], axis=1), np.tile([0, 1, 2], (50, 1)))
    assert np.array_equal(ranks[:, 3:] - 3, ranks[:, :3])
    with pytest.raises(Word2BertError, match="perm_size"):
        sample_orders(1, 6, rng, perm_size=4)


@pytest.mark.parametrize("k", [6, 7])
def test_predicted_fraction_is_one_over_k(k):
    rng = np.random.default_rng(2)
    objective = PermutationLanguageModeling(prediction_k=k, target_unit="token")
    batch = {"input_ids": rng.integers(0, 50, (64, 84))}
    objective.prepare(batch, None, rng)
    predicted = batch["target_mapping"].sum(axis=(1, 2))
    assert np.all(predicted == round(84 / k))
    # and every predicted position is the last part of its row's order: it sees no other prediction after it
    query_allowed = ~batch["perm_mask"]
    targets = batch["target_mapping"].sum(axis=1).astype(bool)
    for row in range(4):
        seen_by_targets = query_allowed[row][targets[row]][:, targets[row]].sum(axis=1)
        assert sorted(seen_by_targets.tolist()) == list(range(int(targets[row].sum())))


def test_token_targets_are_uniform():
    rng = np.random.default_rng(3)
    counts = np.zeros(10)
    for _ in range(5000):
        counts += token_targets(10, 2, rng)
    assert np.allclose(counts / 5000, 0.2, atol=0.025)


def test_span_walk_density_and_span_lengths():
    """The reference walk: about length / 7 tokens (alpha 6, beta 1), spans of n with p(n) ∝ 1/n."""
    rng = np.random.default_rng(4)
    lengths, totals = collections.Counter(), []
    for _ in range(300):
        mask = span_targets(512, None, rng)
        totals.append(mask.sum())
        edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
        lengths.update((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist())
    assert abs(np.mean(totals) - expected_walk_predictions(512)) < 2.0
    assert set(lengths) == {1, 2, 3, 4, 5}
    ratios = [lengths[1] / lengths[n] for n in (2, 3, 4)]
    assert ratios == pytest.approx([2, 3, 4], rel=0.12)


def test_span_targets_hit_the_goal_and_respect_words_and_padding():
    rng = np.random.default_rng(5)
    for _ in range(50):
        assert span_targets(512, 85, rng).sum() == 85  # the reference's 85 predictions per 512 tokens
    starts = np.zeros(60, dtype=bool)
    starts[::3] = True  # words of three pieces
    eligible = np.arange(60) < 48
    for _ in range(50):
        mask = span_targets(60, None, rng, word_starts=starts, eligible=eligible)
        edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
        assert np.all(starts[np.flatnonzero(edges == 1)])  # spans begin at a word start
        assert (np.flatnonzero(edges == -1) % 3 == 0).all()  # and end at one: whole words
        assert not mask[48:].any()


def test_prepare_builds_transformers_inputs():
    rng = np.random.default_rng(6)
    objective = PermutationLanguageModeling(num_predict=5, pad_id=0)
    items = [{"input_ids": rng.integers(1, 30, n)} for n in (20, 14, 20, 9)]
    batch = objective.collate(items, rng)
    assert set(batch) == {"input_ids", "attention_mask", "perm_mask", "target_mapping", "labels"}
    mapping = batch["target_mapping"].numpy()
    labels = batch["labels"].numpy()
    assert mapping.shape == (4, 5, 20)
    for row, item in enumerate(items):
        positions = mapping[row].argmax(1)
        assert (positions < len(item["input_ids"])).all()  # never padding
        assert np.array_equal(labels[row], item["input_ids"][positions])  # predict the token itself
    # padding is context for nobody: the model's attention mask hides it, the order does not predict it
    assert not mapping[3][:, 9:].any()


def test_bi_data_reverses_the_second_half():
    rng = np.random.default_rng(7)
    ids = rng.integers(1, 30, (4, 8))
    batch = {"input_ids": ids.copy(), "attention_mask": np.array([[1] * 8, [1] * 8, [1] * 8, [1] * 5 + [0] * 3])}
    PermutationLanguageModeling(prediction_k=4, bi_data=True).prepare(batch, None, rng)
    assert np.array_equal(batch["input_ids"][:2], ids[:2])
    assert np.array_equal(batch["input_ids"][2], ids[2][::-1])
    assert np.array_equal(batch["input_ids"][3, :5], ids[3, :5][::-1])
    with pytest.raises(Word2BertError, match="even"):
        PermutationLanguageModeling(bi_data=True).prepare({"input_ids": ids[:3]}, None, rng)


@pytest.mark.parametrize("settings, message", [
    (dict(prediction_k=0.5), "K"),
    (dict(prediction_k=0), "K"),
    (dict(num_predict=0), "num_predict"),
    (dict(target_unit="word"), "target_unit"),
    (dict(mask_alpha=1, mask_beta=2), "mask_alpha"),
])
def test_bad_parameters_get_clear_messages(settings, message):
    with pytest.raises(Word2BertError, match=message):
        PermutationLanguageModeling(**settings)


def test_expected_predictions_match_the_reference_figure():
    # 85 predictions per 512 tokens is 512 / 6 (K = 6): the default count for that length
    assert PermutationLanguageModeling(prediction_k=6).predictions_for(512) == 85
    assert math.isclose(expected_walk_predictions(512), 512 / 7)
