"""ALBERT against transformers: random checkpoints of two shapes both ways (MLM and SOP logits to
1e-5), parameter sharing and the factorised embedding, sentence-order batches, a training step."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from word2bert.errors import Word2BertError  # noqa: E402
from word2bert.models.albert import AlbertConfig, AlbertForPreTraining, AlbertModel  # noqa: E402
from word2bert.objectives.mlm import MaskedLM  # noqa: E402
from word2bert.models.pretraining import PreTrainingModel  # noqa: E402
from word2bert.objectives.sop import SentenceOrderDataset, SentenceOrderPrediction  # noqa: E402
from word2bert.objectives.units import NgramUnits  # noqa: E402

torch.set_num_threads(1)

SHAPES = [dict(embedding_size=8, hidden_size=32, num_hidden_layers=4, num_hidden_groups=1, num_attention_heads=4,
               intermediate_size=64),
          dict(embedding_size=12, hidden_size=24, num_hidden_layers=4, num_hidden_groups=2, num_attention_heads=2,
               intermediate_size=40, hidden_act="gelu", type_vocab_size=3)]


def hf_config(shape):
    return transformers.AlbertConfig(vocab_size=89, max_position_embeddings=32, classifier_dropout_prob=0.0,
                                     **shape)


def batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 89, (3, 11), generator=generator)
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    ids[1, 7:] = 0
    return ids, types, mask


@pytest.mark.parametrize("shape", SHAPES, ids=["shared-1", "groups-2"])
def test_pretraining_checkpoints_both_ways(tmp_path, shape):
    torch.manual_seed(0)
    theirs = transformers.AlbertForPreTraining(hf_config(shape)).eval()
    theirs.save_pretrained(tmp_path / "hf")
    ours = AlbertForPreTraining.from_pretrained(tmp_path / "hf").eval()
    ids, types, mask = batch()
    real = mask.bool()
    positions = torch.arange(ids.shape[1]).expand(ids.shape[0], -1).contiguous()
    with torch.no_grad():
        expected = theirs(input_ids=ids, token_type_ids=types, attention_mask=mask)
        got = ours(ids, mask, types, masked_positions=positions, sentence_order_label=torch.zeros(3, dtype=torch.long))
    assert (got.mlm_logits - expected.prediction_logits)[real].abs().max() < 1e-5
    assert (got.sop_logits - expected.sop_logits).abs().max() < 1e-5
    ours.save_pretrained(tmp_path / "ours")
    again = transformers.AlbertForPreTraining.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        back = again(input_ids=ids, token_type_ids=types, attention_mask=mask)
    assert (back.prediction_logits - expected.prediction_logits)[real].abs().max() < 1e-5
    assert (back.sop_logits - expected.sop_logits).abs().max() < 1e-5
    assert expected.prediction_logits[real].std() > 0.01


@pytest.mark.parametrize("shape", SHAPES, ids=["shared-1", "groups-2"])
def test_encoder_checkpoints_both_ways_and_sharing(tmp_path, shape):
    torch.manual_seed(1)
    theirs = transformers.AlbertModel(hf_config(shape)).eval()
    theirs.save_pretrained(tmp_path / "hf")
    ours = AlbertModel.from_pretrained(tmp_path / "hf").eval()
    ids, types, mask = batch(1)
    real = mask.bool()
    with torch.no_grad():
        expected = theirs(input_ids=ids, token_type_ids=types, attention_mask=mask, output_hidden_states=True)
        got = ours(ids, mask, types, output_hidden_states=True)
    assert len(got.hidden_states) == len(expected.hidden_states) == 5
    for a, b in zip(got.hidden_states, expected.hidden_states):
        assert (a - b)[real].abs().max() < 1e-5
    assert (got.pooled - expected.pooler_output).abs().max() < 1e-5
    # the parameters: G distinct layers, embeddings of width E projected to H
    assert len(ours.encoder.layers) == shape["num_hidden_groups"]
    assert ours.embeddings.word_embeddings.weight.shape == (89, shape["embedding_size"])
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    ours.save_pretrained(tmp_path / "ours")
    again = transformers.AlbertModel.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        assert (again(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
                - expected.last_hidden_state)[real].abs().max() < 1e-5


def test_bad_configs_are_named():
    with pytest.raises(Word2BertError, match="num_hidden_groups=3 must divide"):
        AlbertConfig(num_hidden_layers=4, num_hidden_groups=3)
    with pytest.raises(Word2BertError, match="inner_group_num"):
        AlbertConfig(inner_group_num=2)


def test_sentence_order_training_learns_planted_order():
    """Two-sentence documents whose first sentence uses words 5-19 and whose second uses 20-39: the
    order is visible to a model that reads which words sit in which segment."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    documents = [[rng.integers(5, 20, rng.integers(2, 6)), rng.integers(20, 40, rng.integers(2, 6))]
                 for _ in range(300)]
    data = SentenceOrderDataset.from_documents(documents, cls_id=2, sep_id=3, max_seq_length=16, seed=1)
    config = AlbertConfig(vocab_size=48, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64, max_position_embeddings=16,
                          classifier_dropout_prob=0.0)
    labels = [data[i]["sentence_order_label"] for i in range(len(data))]
    assert len(data) >= 300 and 0.4 < np.mean(labels) < 0.6
    # the objective alone learns the order
    model = PreTrainingModel(config, AlbertModel(config), {"sop": SentenceOrderPrediction(hidden_size=32)})
    collate = model.collator(pad_id=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    accuracy = []
    for _ in range(60):
        out = model(**collate([data[int(i)] for i in rng.integers(0, len(data), 32)], rng))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        correct, count = out.stats["sop_accuracy"]
        accuracy.append(correct / count)
    assert np.mean(accuracy[-10:]) > 0.9, accuracy
    # ALBERT's pre-training model builds MLM + SOP batches (n-gram masking) and trains on both
    masking = MaskedLM(48, mask_id=4, special_ids=(0, 1, 2, 3, 4), pad_id=0, units=NgramUnits(None))
    albert = AlbertForPreTraining(config, masking)
    batch = albert.collator(pad_id=0)([data[i] for i in range(8)], rng)
    assert set(batch) >= {"masked_positions", "masked_labels", "sentence_order_label"}
    out = albert(**batch)
    out.loss.backward()
    assert set(out.losses) == {"mlm", "sop"} and torch.isfinite(out.loss)
    assert albert.albert.embeddings.word_embeddings.weight.grad.abs().sum() > 0
