"""ERNIE 2.0 task instances on numbered sentences, the dialogue LM's instances, and the stage schedule."""

import json

import numpy as np
import pytest
from scipy import stats

from word2bert.corpus.wordpiece import WordPieceTokenizer
from word2bert.errors import Word2BertError
from word2bert.objectives.ernie import (ErnieDocuments, ErnieSchedule, MultiTaskData, ScheduleSampler,
                                        block_instances, dialogue_instances, discourse_instances,
                                        reordering_classes, sentence_distance_instances,
                                        sentence_reordering_instances)

CLS, SEP = 2, 3


def numbered(n_documents=50, seed=0):
    """Sentence s of document d is [1000 (d + 1) + 20 s + k]: tokens name their place and order."""
    rng = np.random.default_rng(seed)
    return ErnieDocuments([[1000 * (d + 1) + 20 * s + np.arange(rng.integers(2, 12)) for s in range(rng.integers(1, 9))]
                           for d in range(n_documents)])


def uniform_p(labels, n):
    counts = np.bincount(labels, minlength=n)
    expected = len(labels) / n
    return stats.chi2.sf(((counts - expected) ** 2 / expected).sum(), df=n - 1)


def split_segments(item):
    ids = item["input_ids"]
    assert ids[0] == CLS and ids[-1] == SEP
    cuts = np.flatnonzero(ids == SEP)
    return [ids[a + 1:b] for a, b in zip(np.r_[0, cuts[:-1]], cuts)]


def test_sentence_reordering_restores_the_order_and_classes_are_uniform():
    classes = reordering_classes(3)
    assert len(classes) == 1 + 2 + 6
    corpus = numbered(200)
    rng = np.random.default_rng(1)
    items = sentence_reordering_instances(corpus, 40, CLS, SEP, rng)
    labels = np.array([item["reordering_label"] for item in items])
    assert len(items) > 250 and uniform_p(labels, 9) > 1e-3
    for item in items:
        segments = split_segments(item)
        permutation = classes[item["reordering_label"]]
        assert len(segments) == len(permutation)
        restored = [None] * len(segments)
        for position, original in enumerate(permutation):
            restored[original] = segments[position]
        text = np.concatenate(restored)
        assert (np.diff(text) > 0).all() and len(set(text // 1000)) == 1   # one block, in order
        types = item["token_type_ids"]
        assert types[0] == 0 and set(types) <= {0, 1} and len(types) == len(item["input_ids"]) <= 40


def test_sentence_distance_labels_mean_what_they_say_and_are_balanced():
    corpus = numbered(100)
    items = sentence_distance_instances(corpus, 64, CLS, SEP, np.random.default_rng(2))
    labels = np.array([item["distance_label"] for item in items])
    assert len(items) > 300 and uniform_p(labels, 3) > 1e-3
    for item in items:
        a, b = split_segments(item)
        assert (item["token_type_ids"] == np.r_[np.zeros(len(a) + 2), np.ones(len(b) + 1)]).all()
        same_document = a[0] // 1000 == b[0] // 1000
        gap = (b[0] % 1000) // 20 - (a[0] % 1000) // 20
        if item["distance_label"] == 0:
            assert same_document and gap == 1
        elif item["distance_label"] == 1:
            assert same_document and abs(gap) >= 2
        else:
            assert not same_document


def test_token_document_relation_against_brute_force():
    rng = np.random.default_rng(3)
    corpus = ErnieDocuments([[rng.integers(5, 40, rng.integers(3, 9)) for _ in range(6)] for _ in range(10)])
    items = block_instances(corpus, "token_document_relation", 16, CLS, SEP)
    index = 0
    for document in corpus.documents:
        flat = np.concatenate(document)
        position = 0
        while position < len(flat):
            item = items[index]
            block = item["input_ids"][1:-1]
            np.testing.assert_array_equal(flat[position:position + len(block)], block)
            outside = set(np.r_[flat[:position], flat[position + len(block):]].tolist())
            expected = [int(t in outside) for t in block.tolist()]
            assert item["relation_labels"][1:-1].tolist() == expected
            assert item["relation_labels"][0] == item["relation_labels"][-1] == -100
            position += len(block)
            index += 1
    assert index == len(items)
    assert 0 < np.mean([l for item in items for l in item["relation_labels"] if l >= 0]) < 1


def tiny_tokenizer():
    words = "paris is in france and the city of london but because it rains , we stay home however".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "##s"]
    return WordPieceTokenizer({t: i for i, t in enumerate(dict.fromkeys(vocab))})


def test_capitalization_labels_come_from_the_original_case():
    tokenizer = tiny_tokenizer()
    corpus = ErnieDocuments.from_texts([["Paris is in France", "the city of London"], ["it rains"]], tokenizer)
    items = block_instances(corpus, "capitalization", 32, tokenizer.cls_id, tokenizer.sep_id)
    assert items[0]["capitalization_labels"].tolist() == [-100, 1, 0, 0, 1, 0, 0, 0, 1, -100]
    lower = ErnieDocuments.from_texts([["paris is in france"], ["it rains"]], tokenizer)
    with pytest.raises(Word2BertError, match="no capitalised word"):
        block_instances(lower, "capitalization", 32, tokenizer.cls_id, tokenizer.sep_id)


def test_discourse_markers_become_labels_and_leave_the_sentence():
    tokenizer = tiny_tokenizer()
    texts = [["it rains", "because it rains , we stay home", "but paris is in france", "the city of london"],
             ["we stay home", "however , it rains"]]
    corpus = ErnieDocuments.from_texts(texts, tokenizer)
    items, names = discourse_instances(corpus, tokenizer, 32, tokenizer.cls_id, tokenizer.sep_id)
    assert names == ["but", "because", "however"]
    decoded = [(tokenizer.decode(split_segments(i)[0]), tokenizer.decode(split_segments(i)[1]),
                names[i["discourse_label"]]) for i in items]
    assert decoded == [("it rains", "it rains, we stay home", "because"),
                       ("because it rains, we stay home", "paris is in france", "but"),  # A keeps its own
                       ("we stay home", "it rains", "however")]


def test_dialogue_instances_have_roles_and_balanced_fake_turns():
    rng = np.random.default_rng(4)
    dialogues = [[(t % 2, 1000 * (d + 1) + 20 * t + np.arange(3)) for t in range(5)] for d in range(100)]
    items = dialogue_instances(dialogues, 32, CLS, SEP, rng)
    labels = np.array([item["dialogue_label"] for item in items])
    assert abs(labels.mean() - 0.5) < 4 * np.sqrt(0.25 / len(labels))
    for item in items:
        turns = split_segments(item)
        documents = {int(t[0] // 1000) for t in turns}
        assert (len(documents) == 1) == (item["dialogue_label"] == 0)
        roles = item["token_type_ids"][np.flatnonzero(item["input_ids"] == SEP)]
        assert (np.diff(roles) != 0).all()                      # turns alternate query / response
        if item["dialogue_label"] == 0:                          # and are those of the dialogue
            assert roles.tolist() == [(int(t[0]) % 1000 // 20) % 2 for t in turns]


def test_schedule_stages_keep_earlier_tasks_and_sampler_serves_one_task_per_batch(tmp_path):
    config = {"stages": [{"steps": 200, "tasks": {"knowledge_masking": 1.0}},
                         {"steps": 300, "tasks": {"knowledge_masking": 1.0, "sentence_distance": 3.0}}]}
    path = tmp_path / "ernie.json"
    path.write_text(json.dumps(config))
    schedule = ErnieSchedule.from_file(path)
    sequence = schedule.task_sequence(seed=0)
    assert sequence[:200] == ["knowledge_masking"] * 200
    share = np.mean([t == "sentence_distance" for t in sequence[200:]])
    assert abs(share - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 300)
    data = MultiTaskData({"knowledge_masking": [{"input_ids": np.arange(3)}] * 7,
                          "sentence_distance": [{"input_ids": np.arange(4)}] * 5}, schedule.task_types)
    batches = ScheduleSampler(schedule, data, batch_size=4).batches(epoch=0)
    assert len(batches) == 500
    for batch, task in zip(batches, sequence):
        assert {t for t, _ in batch} == {task} and len(batch) == 4
    assert data[batches[0][0]]["task"] == "knowledge_masking"
    bad = {"stages": [{"steps": 10, "tasks": ["knowledge_masking", "sentence_distance"]},
                      {"steps": 10, "tasks": ["sentence_distance"]}]}
    with pytest.raises(Word2BertError, match="stage 2 drops knowledge_masking"):
        ErnieSchedule.from_dict(bad)
    ernie1 = ErnieSchedule.default(9, ["basic_masking", "phrase_masking", "entity_masking"], continual=False)
    assert [list(stage.tasks) for stage in ernie1.stages] == [["basic_masking"], ["phrase_masking"],
                                                              ["entity_masking"]]
    assert ErnieSchedule.from_dict({**bad, "continual": False}).stages[1].tasks == {"sentence_distance": 1.0}
    with pytest.raises(Word2BertError, match="unknown task 'nsp'"):
        ErnieSchedule.from_dict({"stages": [{"steps": 5, "tasks": ["nsp"]}]})
    with pytest.raises(Word2BertError, match="not found"):
        ErnieSchedule.from_file(tmp_path / "missing.json")
