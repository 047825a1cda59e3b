"""BERT model: config validation, masks, the MLM head at gathered positions, losses, training, save/load."""

import json
import warnings

import pytest
import torch
import torch.nn.functional as F

from word2bert.errors import Word2BertError
from word2bert.models import BertConfig, BertForPreTraining, BertModel

torch.set_num_threads(2)


def tiny_config(**overrides):
    values = dict(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=24, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)
    values.update(overrides)
    return BertConfig(**values)


def test_config_validation_names_the_parameter():
    with pytest.raises(Word2BertError, match="hidden_size=30 is not divisible by num_attention_heads=4"):
        tiny_config(hidden_size=30)
    with pytest.raises(Word2BertError, match="num_hidden_layers"):
        tiny_config(num_hidden_layers=0)
    with pytest.raises(Word2BertError, match="hidden_dropout_prob"):
        tiny_config(hidden_dropout_prob=1.5)
    with pytest.raises(Word2BertError, match="hidden_act"):
        tiny_config(hidden_act="nope")
    with pytest.raises(Word2BertError, match="position_embedding_type"):
        tiny_config(position_embedding_type="relative_key")


def test_config_dict_and_json_round_trip(tmp_path):
    config = tiny_config(pre_layer_norm=True, position_embedding_type="sinusoidal")
    assert BertConfig.from_dict(config.to_dict()) == config
    hf_style = {**tiny_config().to_dict(), "position_embedding_type": "absolute", "model_type": "bert",
                "architectures": ["BertModel"], "transformers_version": "4.8.2", "use_cache": True}
    assert BertConfig.from_dict(hf_style) == tiny_config()
    path = tmp_path / "config.json"
    config.save(path)
    assert BertConfig.from_json_file(path) == config
    path.write_text("{not json")
    with pytest.raises(Word2BertError, match="config.json"):
        BertConfig.from_json_file(path)
    with pytest.raises(Word2BertError, match="not found"):
        BertConfig.from_json_file(tmp_path / "missing.json")
    with pytest.raises(Word2BertError, match="model_type"):
        BertConfig.from_dict({"model_type": "gpt2"})


def test_sequence_longer_than_positions_and_bad_ids_raise():
    model = BertModel(tiny_config())
    with pytest.raises(Word2BertError, match="max_position_embeddings=24"):
        model(torch.ones(1, 25, dtype=torch.long))
    with pytest.raises(Word2BertError, match="vocabulary"):
        model(torch.full((1, 5), 50))
    with pytest.raises(Word2BertError, match="token_type_ids"):
        model(torch.ones(1, 5, dtype=torch.long), token_type_ids=torch.full((1, 5), 2))


@pytest.mark.parametrize("pre_layer_norm,position", [(False, "learned"), (True, "sinusoidal")])
def test_outputs_shapes_and_padding_invariance(pre_layer_norm, position):
    torch.manual_seed(0)
    model = BertModel(tiny_config(pre_layer_norm=pre_layer_norm, position_embedding_type=position)).eval()
    ids = torch.randint(1, 50, (3, 10))
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[1, 6:] = 0
    ids[1, 6:] = 0
    out = model(ids, attention_mask=mask, output_hidden_states=True)
    assert out.last_hidden_state.shape == (3, 10, 32) and out.pooler_output.shape == (3, 32)
    assert len(out.hidden_states) == 3 and torch.equal(out.hidden_states[-1], out.last_hidden_state)
    # the padded example alone, unpadded, gives the same vectors for its real tokens
    alone = model(ids[1:2, :6]).last_hidden_state
    torch.testing.assert_close(out.last_hidden_state[1:2, :6], alone, atol=1e-5, rtol=1e-4)
    # the same padding expressed as a (B,T,T) custom boolean mask gives the same result
    custom = mask.bool()[:, None, :].expand(3, 10, 10)
    torch.testing.assert_close(model(ids, attention_mask=custom).last_hidden_state, out.last_hidden_state)


def test_token_type_default_is_segment_zero():
    torch.manual_seed(1)
    model = BertModel(tiny_config()).eval()
    ids = torch.randint(1, 50, (2, 8))
    torch.testing.assert_close(model(ids).last_hidden_state,
                               model(ids, token_type_ids=torch.zeros_like(ids)).last_hidden_state)
    assert not torch.allclose(model(ids).last_hidden_state,
                              model(ids, token_type_ids=torch.ones_like(ids)).last_hidden_state)


def test_mlm_head_at_gathered_positions_equals_full_head_and_losses():
    torch.manual_seed(2)
    model = BertForPreTraining(tiny_config()).eval()
    ids = torch.randint(1, 50, (2, 12))
    positions = torch.tensor([[1, 4, 7], [2, 3, 0]])
    labels = torch.tensor([[5, 6, 7], [8, 9, -100]])
    nsp = torch.tensor([0, 1])
    out = model(ids, masked_positions=positions, masked_labels=labels, next_sentence_label=nsp)
    # independent reference: head on every position, written out, then pick the rows
    hidden = model.bert(ids).last_hidden_state
    head = model.mlm_head
    transformed = F.layer_norm(F.gelu(hidden @ head.dense.weight.T + head.dense.bias), (32,),
                               head.layer_norm.weight, head.layer_norm.bias, head.layer_norm.eps)
    all_logits = transformed @ model.bert.embeddings.word_embeddings.weight.T + head.bias
    expected = torch.stack([all_logits[b, positions[b]] for b in range(2)])
    torch.testing.assert_close(out.mlm_logits, expected, atol=1e-5, rtol=1e-4)
    log_probs = expected.log_softmax(-1)
    picked = [log_probs[0, 0, 5], log_probs[0, 1, 6], log_probs[0, 2, 7], log_probs[1, 0, 8], log_probs[1, 1, 9]]
    torch.testing.assert_close(out.mlm_loss, -torch.stack(picked).mean(), atol=1e-5, rtol=1e-4)
    nsp_log_probs = out.nsp_logits.log_softmax(-1)
    torch.testing.assert_close(out.nsp_loss, -(nsp_log_probs[0, 0] + nsp_log_probs[1, 1]) / 2)
    torch.testing.assert_close(out.loss, out.mlm_loss + out.nsp_loss)
    only_nsp = model(ids, next_sentence_label=nsp)
    assert only_nsp.mlm_logits is None and torch.equal(only_nsp.loss, only_nsp.nsp_loss)
    # the decoder is tied to the input embeddings: a gradient on the loss reaches the word embedding rows
    out.mlm_loss.backward()
    assert model.bert.embeddings.word_embeddings.weight.grad[5].abs().sum() > 0
    with pytest.raises(Word2BertError, match="masked_positions"):
        model(ids, masked_positions=torch.tensor([[12, 0], [0, 0]]))
    with pytest.raises(Word2BertError, match="without masked_positions"):
        model(ids, masked_labels=labels)


def test_tiny_bert_overfits_a_tiny_batch():
    torch.manual_seed(3)
    model = BertForPreTraining(tiny_config())
    ids = torch.randint(5, 50, (4, 16))
    positions = torch.randint(0, 16, (4, 3))
    labels = ids.gather(1, positions)
    masked_ids = ids.scatter(1, positions, torch.full_like(positions, 4))
    batch = dict(input_ids=masked_ids, token_type_ids=(torch.arange(16) >= 8).long().expand(4, 16),
                 attention_mask=torch.ones(4, 16, dtype=torch.long), masked_positions=positions,
                 masked_labels=labels, next_sentence_label=torch.tensor([0, 1, 1, 0]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = model(**batch).loss.item()
    for _ in range(60):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
    assert first > 3.0  # ~ log(50) + log(2) at the start
    assert loss.item() < 0.1 * first


@pytest.mark.parametrize("cls", [BertModel, BertForPreTraining])
@pytest.mark.parametrize("pre_layer_norm,position", [(False, "learned"), (True, "sinusoidal")])
def test_save_pretrained_round_trip(tmp_path, cls, pre_layer_norm, position):
    torch.manual_seed(4)
    model = cls(tiny_config(pre_layer_norm=pre_layer_norm, position_embedding_type=position)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    loaded = cls.from_pretrained(tmp_path / "ckpt").eval()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["architectures"] == [cls.hf_architecture] and config["model_type"] == "bert"
    overridden = cls.from_pretrained(tmp_path / "ckpt", hidden_dropout_prob=0.3)
    assert overridden.config.hidden_dropout_prob == 0.3


def test_encoder_loads_from_pretraining_checkpoint_and_heads_warn_when_missing(tmp_path):
    torch.manual_seed(5)
    full = BertForPreTraining(tiny_config()).eval()
    full.save_pretrained(tmp_path / "pt")
    encoder = BertModel.from_pretrained(tmp_path / "pt").eval()
    ids = torch.randint(1, 50, (2, 6))
    torch.testing.assert_close(encoder(ids).last_hidden_state, full.bert(ids).last_hidden_state)
    full.bert.save_pretrained(tmp_path / "enc")
    with pytest.warns(UserWarning, match="cls.predictions"):
        BertForPreTraining.from_pretrained(tmp_path / "enc")


def test_missing_and_corrupt_checkpoint_files(tmp_path):
    with pytest.raises(Word2BertError, match="not found"):
        BertModel.from_pretrained(tmp_path / "nowhere")
    BertModel(tiny_config()).save_pretrained(tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(Word2BertError, match="model.safetensors"):
        BertModel.from_pretrained(tmp_path / "ckpt")
    weights.unlink()
    with pytest.raises(Word2BertError, match="no model.safetensors or pytorch_model.bin"):
        BertModel.from_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "pytorch_model.bin").write_bytes(b"garbage")
    with pytest.raises(Word2BertError, match="pytorch_model.bin"):
        BertModel.from_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").unlink()
    with pytest.raises(Word2BertError, match="config.json"):
        BertModel.from_pretrained(tmp_path / "ckpt")
    # a checkpoint whose config promises more layers than its weights hold
    BertModel(tiny_config()).save_pretrained(tmp_path / "short")
    BertConfig(**{**tiny_config().to_dict(), "num_hidden_layers": 3}).save(tmp_path / "short" / "config.json")
    with pytest.raises(Word2BertError, match="encoder.layer.2"):
        BertModel.from_pretrained(tmp_path / "short")
