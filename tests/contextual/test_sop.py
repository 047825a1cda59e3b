"""Sentence-order prediction instances on a corpus of numbered sentences."""

import random

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.objectives.sop import (
    IN_ORDER,
    SWAPPED,
    create_sop_instances_from_document,
    sentence_order_instances,
)

CLS, SEP = 2, 3


def numbered_corpus(n_documents=60, seed=0):
    """Document d, sentence s is [1000 d + 10 s + k for k < length]: every token names its place."""
    rng = np.random.default_rng(seed)
    return [[1000 * d + 10 * s + np.arange(rng.integers(3, 10)) for s in range(rng.integers(2, 12))]
            for d in range(n_documents)]


def test_segments_are_consecutive_text_of_one_document_and_labels_balanced():
    documents = numbered_corpus()
    rng, np_rng = random.Random(1), np.random.default_rng(1)
    labels = []
    for _ in range(10):
        for index in range(len(documents)):
            for a, b, label in create_sop_instances_from_document(documents, index, 48, 0.1, rng, np_rng):
                first, second = (a, b) if label == IN_ORDER else (b, a)
                both = np.concatenate([first, second])
                assert len(set(both // 1000)) == 1                                # one document
                assert (np.diff(both) > 0).all()                                  # in reading order
                # consecutive: the last token of the first segment is followed by the next token in the
                # document (when the pair was not trimmed between them)
                flat = np.concatenate(documents[int(both[0] // 1000)])
                at = np.searchsorted(flat, first[-1])
                assert flat[at + 1] == second[0] or len(a) + len(b) >= 45
                labels.append(label)
    labels = np.array(labels)
    n = len(labels)
    assert n > 800 and abs(labels.mean() - 0.5) < 4 * np.sqrt(0.25 / n)         # swapped half of the time
    assert set(labels) == {IN_ORDER, SWAPPED}


def test_flat_arrays_and_single_sentence_documents_are_refused():
    documents = numbered_corpus(20)
    tokens, offsets, b_starts, labels = sentence_order_instances(documents, CLS, SEP, max_seq_length=32)
    for k in range(len(labels)):
        row = tokens[offsets[k]:offsets[k + 1]]
        assert row[0] == CLS and row[b_starts[k] - 1] == SEP and row[-1] == SEP and len(row) <= 32
    with pytest.raises(Word2BertError, match="at least two sentences"):
        sentence_order_instances([[np.arange(5)], [np.arange(7)]], CLS, SEP)
