"""DistilBERT against transformers: random checkpoints of two shapes both ways (outputs to 1e-5), the
sinusoidal position table, loading by model_type, and students made from a BERT teacher."""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from word2bert.errors import Word2BertError  # noqa: E402
from word2bert.models import auto  # noqa: E402
from word2bert.models.bert import BertConfig, BertForPreTraining, BertModel  # noqa: E402
from word2bert.models.distilbert import (DistilBertConfig, DistilBertForMaskedLM, DistilBertModel,  # noqa: E402
                                         distilbert_from_bert, spread_layers, student_from_teacher)
from word2bert.tasks.heads import SequenceClassification  # noqa: E402

torch.set_num_threads(1)

SHAPES = [dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64),
          dict(dim=48, n_layers=3, n_heads=3, hidden_dim=40, activation="relu", sinusoidal_pos_embds=True,
               max_position_embeddings=30)]


def hf_config(shape):
    settings = dict(vocab_size=97, max_position_embeddings=20, dropout=0.0, attention_dropout=0.0, pad_token_id=0)
    settings.update(shape)
    return transformers.DistilBertConfig(**settings)


def batch(seed=0, vocab=97):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (3, 12), generator=generator)
    mask = torch.ones_like(ids)
    ids[1, 8:], mask[1, 8:] = 0, 0
    ids[2, 5:], mask[2, 5:] = 0, 0
    return ids, mask


def all_positions(ids):
    return torch.arange(ids.shape[1]).expand(ids.shape[0], -1).contiguous()


@pytest.mark.parametrize("shape", SHAPES, ids=["2x32", "3x48-sinusoidal"])
def test_masked_lm_checkpoints_both_ways(tmp_path, shape):
    torch.manual_seed(0)
    theirs = transformers.DistilBertForMaskedLM(hf_config(shape)).eval()
    theirs.save_pretrained(tmp_path / "hf")
    ours = DistilBertForMaskedLM.from_pretrained(tmp_path / "hf").eval()
    ids, mask = batch()
    real = mask.bool()
    with torch.no_grad():
        expected = theirs(input_ids=ids, attention_mask=mask).logits
        got = ours(ids, mask, masked_positions=all_positions(ids)).mlm_logits
    assert expected[real].std() > 0.01  # not a degenerate comparison
    assert (got - expected)[real].abs().max() < 1e-5
    ours.save_pretrained(tmp_path / "ours")
    again = transformers.DistilBertForMaskedLM.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        back = again(input_ids=ids, attention_mask=mask).logits
    assert (back - expected)[real].abs().max() < 1e-5


@pytest.mark.parametrize("shape", SHAPES, ids=["2x32", "3x48-sinusoidal"])
def test_encoder_checkpoints_both_ways(tmp_path, shape):
    torch.manual_seed(1)
    config = DistilBertConfig(vocab_size=97, max_position_embeddings=shape.get("max_position_embeddings", 20),
                              dropout=0.0, attention_dropout=0.0,
                              **{k: v for k, v in shape.items() if k != "max_position_embeddings"})
    ours = DistilBertModel(config).eval()  # our own random weights (and our sinusoids) to transformers
    ours.save_pretrained(tmp_path / "ours")
    theirs = transformers.DistilBertModel.from_pretrained(tmp_path / "ours").eval()
    ids, mask = batch(1)
    real = mask.bool()
    with torch.no_grad():
        expected = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask, token_type_ids=torch.ones_like(ids))  # segments are ignored
    assert (got.last_hidden_state - expected)[real].abs().max() < 1e-5
    assert torch.equal(got.pooled, got.last_hidden_state[:, 0])  # no pooler: the [CLS] row
    theirs.save_pretrained(tmp_path / "hf")
    again = DistilBertModel.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        assert (again(ids, mask).last_hidden_state - expected)[real].abs().max() < 1e-5
    assert type(auto.encoder_from_pretrained(tmp_path / "hf")) is DistilBertModel


def test_sinusoidal_positions_are_transformers_table_and_stay_fixed():
    from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings

    config = DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=24,
                              sinusoidal_pos_embds=True)
    model = DistilBertForMaskedLM(config)
    table = model.encoder.embeddings.position_embeddings.weight
    expected = create_sinusoidal_embeddings(24, 16, torch.empty(24, 16))
    torch.testing.assert_close(table, expected, atol=1e-6, rtol=0)
    assert not table.requires_grad
    student = distilbert_from_bert(BertForPreTraining(tiny_bert()), 1, sinusoidal_pos_embds=True)
    assert not student.encoder.embeddings.position_embeddings.weight.requires_grad
    with pytest.raises(Word2BertError, match="tie_word_embeddings"):
        DistilBertConfig(tie_word_embeddings=False)


def tiny_bert(**overrides):
    return BertConfig(**{"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 4, "num_attention_heads": 2,
                         "intermediate_size": 32, "max_position_embeddings": 24, "hidden_dropout_prob": 0.0,
                         "attention_probs_dropout_prob": 0.0, **overrides})


def test_layers_are_spread_from_the_first_to_the_last():
    assert spread_layers(12, 6) == [0, 2, 4, 7, 9, 11]  # DistilBERT's extraction script
    assert spread_layers(6, 3) == [0, 3, 5] and spread_layers(6, 2) == [0, 5] and spread_layers(4, 1) == [0]
    assert spread_layers(4, 4) == [0, 1, 2, 3]
    with pytest.raises(Word2BertError, match="cannot take"):
        spread_layers(2, 3)


def test_distilbert_student_copies_the_chosen_layers_and_embeds_as_the_teacher():
    torch.manual_seed(0)
    teacher = BertForPreTraining(tiny_bert()).eval()
    with torch.no_grad():  # a segment embedding that matters
        teacher.bert.embeddings.token_type_embeddings.weight.normal_()
    student = distilbert_from_bert(teacher, layers=[0, 2, 3])
    assert isinstance(student, DistilBertForMaskedLM) and student.config.n_layers == 3 and student.training
    for j, i in enumerate([0, 2, 3]):
        ours, theirs = student.encoder.encoder.layers[j].state_dict(), teacher.bert.encoder.layers[i].state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    for key, value in teacher.mlm_head.state_dict().items():
        assert torch.equal(student.mlm_head.state_dict()[key], value)
    assert student.encoder.embeddings.word_embeddings.weight.data_ptr() != \
        teacher.bert.embeddings.word_embeddings.weight.data_ptr()  # copies, not shared tensors
    ids, mask = batch(2, vocab=40)
    positions = all_positions(ids)
    real = mask.bool()
    student.eval()
    with torch.no_grad():
        torch.testing.assert_close(student.encoder.embeddings(ids)[real], teacher.bert.embeddings(ids)[real],
                                   atol=1e-6, rtol=0)
        # with every layer, the DistilBERT student computes exactly what the teacher computes
        whole = distilbert_from_bert(teacher, 4).eval()
        expected = teacher(ids, mask, masked_positions=positions).mlm_logits
        got = whole(ids, mask, masked_positions=positions).mlm_logits
    assert (got - expected)[real].abs().max() < 1e-5 and expected[real].std() > 0.01
    encoder_only = distilbert_from_bert(BertModel(tiny_bert()), 2)
    assert type(encoder_only) is DistilBertModel
    with pytest.raises(Word2BertError, match="layer 7 does not exist"):
        distilbert_from_bert(teacher, layers=[0, 7])


def test_student_of_the_teachers_own_class_keeps_heads_and_chosen_layers():
    torch.manual_seed(0)
    bert = BertModel(tiny_bert())
    head = SequenceClassification(bert, 3, pooling="pooler")
    student = student_from_teacher(head, 2)
    assert type(student) is SequenceClassification and type(student.encoder) is BertModel
    assert student.encoder.config.num_hidden_layers == 2 and len(student.encoder.encoder.layers) == 2
    assert bert.config.num_hidden_layers == 4  # the teacher is untouched
    for j, i in enumerate(spread_layers(4, 2)):
        for key, value in bert.encoder.layers[i].state_dict().items():
            assert torch.equal(student.encoder.encoder.layers[j].state_dict()[key], value)
    assert torch.equal(student.classifier.weight, head.classifier.weight)
    assert torch.equal(student.encoder.pooler.dense.weight, bert.pooler.dense.weight)
    student.classifier.weight.data.add_(1.0)
    assert not torch.equal(student.classifier.weight, head.classifier.weight)
    pretraining = student_from_teacher(BertForPreTraining(tiny_bert()), layers=[1])
    assert pretraining.config.num_hidden_layers == 1 and pretraining.bert.config is pretraining.config
    ids, mask = batch(3, vocab=40)
    assert pretraining(ids, mask, masked_positions=all_positions(ids)).mlm_logits.shape == (3, 12, 40)


def test_students_of_other_bert_like_teachers():
    from word2bert.models.albert import AlbertConfig, AlbertModel
    from word2bert.models.roberta import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    teacher = RobertaForMaskedLM(RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3,
                                               num_attention_heads=2, intermediate_size=32, max_position_embeddings=20))
    student = student_from_teacher(teacher, 2)
    assert type(student) is RobertaForMaskedLM and student.roberta.config is student.config
    assert torch.equal(student.roberta.encoder.layers[1].feed_forward.dense_in.weight,
                       teacher.roberta.encoder.layers[2].feed_forward.dense_in.weight)
    assert torch.equal(student.objectives["mlm"].head.dense.weight, teacher.objectives["mlm"].head.dense.weight)
    with pytest.raises(Word2BertError, match="DistilBERT student is made from a BERT teacher"):
        distilbert_from_bert(teacher, 2)
    albert = AlbertModel(AlbertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                      intermediate_size=32, embedding_size=8))
    with pytest.raises(Word2BertError, match="shares its layers"):
        student_from_teacher(albert, 2)
