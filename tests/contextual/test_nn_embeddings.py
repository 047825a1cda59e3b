"""Embedding options (no LayerNorm, RoBERTa's positions, ALBERT's factorised size, sqrt(d) scaling,
explicit positions), and the small nn helpers: ScalarMix's new home, freeze()."""

import math

import pytest
import torch

from word2bert.errors import Word2BertError
from word2bert.nn import (
    ScalarMix,
    TransformerEmbeddings,
    freeze,
    frozen_modules,
    is_frozen,
    position_ids_from_input_ids,
)

torch.set_num_threads(1)

VOCAB, HIDDEN, POSITIONS = 20, 12, 16


def test_roberta_positions_match_transformers():
    transformers_roberta = pytest.importorskip("transformers.models.roberta.modeling_roberta")
    reference = transformers_roberta.RobertaEmbeddings.create_position_ids_from_input_ids
    pad = 1
    ids = torch.tensor([[0, 5, 6, 7, 2, 1, 1], [0, 8, 2, 1, 1, 1, 1], [1, 1, 0, 9, 9, 9, 2]])
    for past in (0, 3):
        ours = position_ids_from_input_ids(ids, pad, past)
        assert torch.equal(ours, reference(ids, pad, past))
    assert position_ids_from_input_ids(ids, pad)[0].tolist() == [2, 3, 4, 5, 6, 1, 1]


def test_embeddings_with_roberta_positions_use_the_table_rows_of_those_positions():
    torch.manual_seed(0)
    pad = 1
    embeddings = TransformerEmbeddings(VOCAB, HIDDEN, POSITIONS, type_vocab_size=1, dropout=0.0, pad_token_id=pad,
                                       padding_position=pad).eval()
    ids = torch.tensor([[0, 5, 6, 2, 1, 1]])
    expected = (embeddings.word_embeddings(ids) + embeddings.position_embeddings(position_ids_from_input_ids(ids, pad))
                + embeddings.token_type_embeddings.weight[0])
    expected = embeddings.layer_norm(expected)
    torch.testing.assert_close(embeddings(ids), expected)
    # the longest sequence that fits: positions 2 .. POSITIONS-1 (RoBERTa's 514 = 512 + 2)
    embeddings(torch.full((1, POSITIONS - 2), 5))
    with pytest.raises(Word2BertError, match="max_position_embeddings"):
        embeddings(torch.full((1, POSITIONS - 1), 5))


def test_no_layer_norm_scaling_offset_and_explicit_positions():
    torch.manual_seed(1)
    embeddings = TransformerEmbeddings(VOCAB, HIDDEN, POSITIONS, type_vocab_size=0, dropout=0.0, layer_norm=False,
                                       scale_embeddings=True, position_offset=2).eval()
    assert embeddings.layer_norm is None and embeddings.token_type_embeddings is None
    ids = torch.tensor([[3, 4, 5]])
    word, position = embeddings.word_embeddings.weight, embeddings.position_embeddings.weight
    torch.testing.assert_close(embeddings(ids), word[ids] * math.sqrt(HIDDEN) + position[2:5])
    torch.testing.assert_close(embeddings(ids, past_length=4), word[ids] * math.sqrt(HIDDEN) + position[6:9])
    explicit = torch.tensor([[0, 7, 7]])  # MASS keeps the original positions of a fragment
    torch.testing.assert_close(embeddings(ids, position_ids=explicit), word[ids] * math.sqrt(HIDDEN) + position[explicit])
    with pytest.raises(Word2BertError, match="max_position_embeddings"):
        embeddings(ids, past_length=POSITIONS - 4)
    with pytest.raises(Word2BertError, match="position_ids"):
        embeddings(ids, position_ids=torch.tensor([[0, 1]]))
    none = TransformerEmbeddings(VOCAB, HIDDEN, POSITIONS, type_vocab_size=0, position_embedding_type="none")
    assert none.position_embeddings is None and none(torch.ones(1, 40, dtype=torch.long)).shape == (1, 40, HIDDEN)


def test_factorised_embeddings_shapes_and_gradients():
    """ALBERT: V x E tables, LayerNorm over E, then a linear E -> H; gradients reach every table."""
    torch.manual_seed(2)
    size = 4
    embeddings = TransformerEmbeddings(VOCAB, HIDDEN, POSITIONS, embedding_size=size, dropout=0.0)
    assert embeddings.word_embeddings.weight.shape == (VOCAB, size)
    assert embeddings.position_embeddings.weight.shape == (POSITIONS, size)
    assert embeddings.token_type_embeddings.weight.shape == (2, size)
    assert embeddings.layer_norm.normalized_shape == (size,)
    assert embeddings.projection.weight.shape == (HIDDEN, size)
    factorised = sum(p.numel() for p in embeddings.word_embeddings.parameters()) + embeddings.projection.weight.numel()
    assert factorised == VOCAB * size + size * HIDDEN  # O(V E + E H) instead of O(V H)
    ids = torch.tensor([[1, 2, 3], [4, 5, 0]])
    types = torch.tensor([[0, 0, 1], [0, 1, 1]])
    out = embeddings(ids, types)
    assert out.shape == (2, 3, HIDDEN)
    small = embeddings.layer_norm(embeddings.word_embeddings(ids) + embeddings.position_embeddings.weight[:3]
                                  + embeddings.token_type_embeddings(types))
    torch.testing.assert_close(out, embeddings.projection(small))
    out.pow(2).sum().backward()
    for name, parameter in embeddings.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # finite differences on one entry of the word table
    entry = (2, 1)
    with torch.no_grad():
        base = embeddings.word_embeddings.weight[entry].item()
        values = []
        for step in (1e-3, -1e-3):
            embeddings.word_embeddings.weight[entry] = base + step
            values.append(embeddings(ids, types).double().pow(2).sum().item())
        embeddings.word_embeddings.weight[entry] = base
    numeric = (values[0] - values[1]) / 2e-3
    assert embeddings.word_embeddings.weight.grad[entry].item() == pytest.approx(numeric, rel=2e-2, abs=1e-3)
    same = TransformerEmbeddings(VOCAB, HIDDEN, POSITIONS, embedding_size=HIDDEN)
    assert same.projection is None


def test_bad_embedding_options_raise():
    with pytest.raises(Word2BertError, match="embedding_size"):
        TransformerEmbeddings(VOCAB, HIDDEN, POSITIONS, embedding_size=0)
    with pytest.raises(Word2BertError, match="position_embedding_type"):
        TransformerEmbeddings(VOCAB, HIDDEN, POSITIONS, position_embedding_type="rotary")
    with pytest.raises(Word2BertError, match="padding_position"):
        TransformerEmbeddings(VOCAB, HIDDEN, POSITIONS, pad_token_id=None, padding_position=1)


def test_scalar_mix_lives_in_nn_and_encode_uses_it():
    from word2bert.tasks import encode

    assert encode.ScalarMix is ScalarMix
    mix = ScalarMix(3)
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.0, math.log(3.0), 0.0]))
        mix.gamma.fill_(2.0)
    layers = [torch.full((2,), float(i)) for i in range(3)]
    torch.testing.assert_close(mix(layers), torch.full((2,), 2.0 * (0 * 0.2 + 1 * 0.6 + 2 * 0.2)))


def test_freeze_marks_a_teacher():
    student = torch.nn.Linear(3, 3)
    teacher = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5))
    model = torch.nn.ModuleDict({"student": student, "teacher": teacher})
    model.train()
    assert freeze(teacher) is teacher
    assert is_frozen(teacher) and not is_frozen(student) and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters()) and student.weight.requires_grad
    assert [name for name, _ in frozen_modules(model)] == ["teacher"]
    freeze(model)
    assert [name for name, _ in frozen_modules(model)] == [""]
    with pytest.raises(Word2BertError, match="Module"):
        freeze("teacher")


def test_freeze_sets_the_flag_the_trainer_reads():
    module = freeze(torch.nn.Linear(2, 2))
    assert getattr(module, "_word2bert_frozen") is True  # train/trainer.py's FROZEN_FLAG
