"""ERNIE against transformers (task-type embeddings, random checkpoints of two shapes both ways) and
ERNIE 2.0's multi-task model trained on a schedule of one-task batches."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from word2bert.models.ernie import (ErnieConfig, ErnieForMultiTaskPreTraining, ErnieForPreTraining,  # noqa: E402
                                    ErnieModel)
from word2bert.objectives.ernie import (DEFAULT_TASK_TYPES, ErnieDocuments, ErnieSchedule,  # noqa: E402
                                        MultiTaskCollator, MultiTaskData, ScheduleSampler, block_instances,
                                        sentence_distance_instances, sentence_reordering_instances)
from word2bert.objectives.mlm import MaskedLM, MaskedLMObjective  # noqa: E402
from word2bert.objectives.units import TokenUnits  # noqa: E402

torch.set_num_threads(1)

SHAPES = [dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, use_task_id=True),
          dict(hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48, use_task_id=False,
               type_vocab_size=4)]


def hf_config(shape):
    return transformers.ErnieConfig(vocab_size=71, max_position_embeddings=32, hidden_dropout_prob=0.0,
                                    attention_probs_dropout_prob=0.0, task_type_vocab_size=3, **shape)


def batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 71, (3, 10), generator=generator)
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    tasks = torch.tensor([[0] * 10, [1] * 10, [2] * 10])
    return ids, mask, types, tasks


@pytest.mark.parametrize("shape", SHAPES, ids=["task-ids", "no-task-ids"])
def test_encoder_and_pretraining_checkpoints_both_ways(tmp_path, shape):
    torch.manual_seed(0)
    theirs = transformers.ErnieForPreTraining(hf_config(shape)).eval()
    theirs.save_pretrained(tmp_path / "hf")
    ours = ErnieForPreTraining.from_pretrained(tmp_path / "hf").eval()
    encoder = ErnieModel.from_pretrained(tmp_path / "hf").eval()
    ids, mask, types, tasks = batch()
    real = mask.bool()
    extra = {"task_type_ids": tasks} if shape["use_task_id"] else {}
    positions = torch.arange(10).expand(3, -1).contiguous()
    with torch.no_grad():
        expected = theirs(input_ids=ids, attention_mask=mask, token_type_ids=types, **extra)
        hidden = theirs.ernie(input_ids=ids, attention_mask=mask, token_type_ids=types, **extra)
        got = ours(ids, mask, types, masked_positions=positions, next_sentence_label=torch.zeros(3, dtype=torch.long),
                   **extra)
        encoded = encoder(ids, mask, types, **extra)
    assert (got.mlm_logits - expected.prediction_logits)[real].abs().max() < 1e-5
    assert (got.nsp_logits - expected.seq_relationship_logits).abs().max() < 1e-5
    assert (encoded.last_hidden_state - hidden.last_hidden_state)[real].abs().max() < 1e-5
    if shape["use_task_id"]:   # the task embedding matters
        with torch.no_grad():
            other = encoder(ids, mask, types, task_type_ids=torch.zeros_like(tasks))
        assert (other.last_hidden_state - encoded.last_hidden_state)[1:].abs().max() > 1e-3
    ours.save_pretrained(tmp_path / "ours")
    again = transformers.ErnieForPreTraining.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        back = again(input_ids=ids, attention_mask=mask, token_type_ids=types, **extra)
    assert (back.prediction_logits - expected.prediction_logits)[real].abs().max() < 1e-5
    encoder.save_pretrained(tmp_path / "encoder")
    bare = transformers.ErnieModel.from_pretrained(tmp_path / "encoder").eval()
    with torch.no_grad():
        assert (bare(input_ids=ids, attention_mask=mask, token_type_ids=types, **extra).last_hidden_state
                - hidden.last_hidden_state)[real].abs().max() < 1e-5


def numbered(n_documents=80, seed=0):
    rng = np.random.default_rng(seed)
    return ErnieDocuments([[(20 * s + np.arange(rng.integers(2, 6))) % 60 + 5 for s in range(rng.integers(2, 6))]
                           for _ in range(n_documents)])


def test_multitask_model_trains_on_a_schedule_and_keeps_its_heads(tmp_path):
    corpus = numbered()
    rng = np.random.default_rng(1)
    items = {"knowledge_masking": block_instances(corpus, "knowledge_masking", 24, 2, 3),
             "token_document_relation": block_instances(corpus, "token_document_relation", 24, 2, 3),
             "sentence_reordering": sentence_reordering_instances(corpus, 24, 2, 3, rng),
             "sentence_distance": sentence_distance_instances(corpus, 24, 2, 3, rng)}
    schedule = ErnieSchedule.default(steps=80, tasks=list(items))
    assert [set(stage.tasks) for stage in schedule.stages][-1] == set(items)
    config = ErnieConfig(vocab_size=66, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=24, use_task_id=True,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = ErnieForMultiTaskPreTraining(config, {"knowledge_masking": None, "token_document_relation": None,
                                                  "sentence_reordering": 9, "sentence_distance": None})
    masking = MaskedLM(66, mask_id=4, special_ids=(0, 1, 2, 3, 4), pad_id=0, units=TokenUnits())
    preparers = {"knowledge_masking": [MaskedLMObjective(masking=masking)],
                 **{task: [model.objectives[task]] for task in items if task != "knowledge_masking"}}
    collate = MultiTaskCollator(preparers, DEFAULT_TASK_TYPES)
    data = MultiTaskData(items, DEFAULT_TASK_TYPES)
    sampler = ScheduleSampler(schedule, data, batch_size=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    seen = {}
    for step, keys in enumerate(sampler.batches(epoch=0)):
        batch = collate([data[key] for key in keys], np.random.default_rng(step))
        assert int(batch["task_type_ids"].max()) == DEFAULT_TASK_TYPES[keys[0][0]]
        out = model(**batch)
        assert len(out.losses) == 1                         # only the batch's task runs
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        seen.setdefault(keys[0][0], []).append(out.loss.item())
    assert set(seen) == set(items) and all(np.isfinite(v).all() for v in seen.values())
    for task in ("knowledge_masking", "token_document_relation"):   # the tasks trained longest learn
        assert np.mean(seen[task][-5:]) < 0.9 * np.mean(seen[task][:5]), (task, seen[task])
    model.save_pretrained(tmp_path)
    again = ErnieForMultiTaskPreTraining.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert transformers.ErnieModel.from_pretrained(tmp_path).config.use_task_id


def test_dialogue_language_model_learns_real_from_fake_dialogues(tmp_path):
    """ERNIE 1.0's DLM: dialogues whose turns share a topic word; a replaced turn breaks it."""
    from word2bert.corpus.wordpiece import WordPieceTokenizer
    from word2bert.objectives.ernie import dialogue_instances, read_dialogues

    topics = [f"t{k}" for k in range(8)]
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "about", "yes", "no", "more", *topics]
    tokenizer = WordPieceTokenizer({w: i for i, w in enumerate(words)})
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(120):
        topic = topics[int(rng.integers(8))]
        lines += [f"Q\twhat about {topic}", f"R\t{rng.choice(['yes', 'no'])} {topic}", f"Q\tmore {topic}", ""]
    path = tmp_path / "dialogues.txt"
    path.write_text("\n".join(lines))
    dialogues = read_dialogues(path, tokenizer)
    assert len(dialogues) == 120 and [role for role, _ in dialogues[0]] == [0, 1, 0]
    items = dialogue_instances(dialogues, 16, tokenizer.cls_id, tokenizer.sep_id, rng)
    config = ErnieConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=16, use_task_id=True,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = ErnieForMultiTaskPreTraining(config, {"dialogue": None})
    masking = MaskedLM(len(words), 4, (0, 1, 2, 3, 4), 0, units=TokenUnits())
    full = MultiTaskCollator({"dialogue": [MaskedLMObjective(masking=masking), model.objectives["dialogue"]]},
                             {"dialogue": 0})
    out = model(**full([{**item, "task": "dialogue"} for item in items[:8]], rng))
    assert set(out.losses) == {"mlm", "dialogue"}          # the DLM: masked LM + real/fake head
    labels_only = MultiTaskCollator({"dialogue": [model.objectives["dialogue"]]}, {"dialogue": 0})
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    accuracy = []
    for _ in range(80):                                     # the real/fake head learns the planted topics
        out = model(**labels_only([{**items[int(i)], "task": "dialogue"} for i in rng.integers(0, len(items), 32)],
                                  rng))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        correct, count = out.stats["dialogue_accuracy"]
        accuracy.append(correct / count)
    assert np.mean(accuracy[-10:]) > 0.75, accuracy[-10:]
