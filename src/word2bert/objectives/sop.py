"""ALBERT's sentence-order prediction (Lan et al. 2020, section 3.1; google-research/albert).

An instance is two *consecutive* segments A, B of one document, ``[CLS] A [SEP] B [SEP]``; half
of the time they are swapped (``[CLS] B [SEP] A [SEP]``). Label 0: original order, 1: swapped
(transformers' ``sentence_order_label``). Unlike next-sentence prediction, the negative comes
from the same document, so topic cues do not solve the task: the model has to learn coherence.

Segments are built as BERT and ALBERT build them (``create_instances_from_document``): sentences
are gathered into a chunk until it reaches the target length, a random number of them form A
and the rest B, then the longer segment is trimmed until the pair fits. Where ALBERT's script
has only one sentence in a chunk it takes B from a *random document* (next-sentence
prediction's negative); we cut that sentence in two at a random token instead, so that every
instance is a sentence-order instance. Documents of one sentence give no instance.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.objectives.nsp import NextSentencePrediction, truncate_seq_pair
from word2bert.objectives.pretraining import PretrainingDataset

IN_ORDER, SWAPPED = 0, 1


def check_sop_documents(documents: Sequence[Sequence[np.ndarray]]) -> None:
    """Raise a clear error when no document has two sentences (nothing to order)."""
    if not documents or not any(len(d) for d in documents):
        raise Word2BertError("the corpus is empty: no sentences to make pre-training instances from")
    if not any(sum(len(s) > 0 for s in d) >= 2 for d in documents):
        raise Word2BertError("sentence-order prediction needs documents of at least two sentences; every "
                             "document here has one (separate documents by blank lines and put one sentence "
                             "per line, or cut long lines with --words-per-sentence)")


def create_sop_instances_from_document(documents: Sequence[Sequence[np.ndarray]], document_index: int,
                                       max_seq_length: int, short_seq_prob: float, rng: random.Random,
                                       np_rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """``(tokens_a, tokens_b, label)`` pairs from one document (see the module docstring).

    ``documents`` holds documents as lists of sentences (int arrays of token ids, no specials).
    """
    document = [s for s in documents[document_index] if len(s)]
    if len(document) < 2:
        return []
    max_num_tokens = max_seq_length - 3
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    instances = []
    chunk: list[np.ndarray] = []
    length = 0
    for i, sentence in enumerate(document):
        chunk.append(sentence)
        length += len(sentence)
        if i < len(document) - 1 and length < target_seq_length:
            continue
        if len(chunk) >= 2:
            a_end = rng.randint(1, len(chunk) - 1)
            tokens_a, tokens_b = np.concatenate(chunk[:a_end]), np.concatenate(chunk[a_end:])
        else:  # one long sentence: its two halves are consecutive segments too
            tokens = chunk[0]
            if len(tokens) < 2:
                chunk, length = [], 0
                continue
            cut = rng.randint(1, len(tokens) - 1)
            tokens_a, tokens_b = tokens[:cut], tokens[cut:]
        label = SWAPPED if rng.random() < 0.5 else IN_ORDER
        if label == SWAPPED:
            tokens_a, tokens_b = tokens_b, tokens_a
        tokens_a, tokens_b = truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, np_rng)
        if len(tokens_a) >= 1 and len(tokens_b) >= 1:
            instances.append((tokens_a, tokens_b, label))
        chunk, length = [], 0
    return instances


def build_pair_arrays(documents, builder, cls_id: int, sep_id: int, dupe_factor: int = 1, seed: int = 12345,
                      **builder_options) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run ``builder(documents, index, rng=, np_rng=, **options)`` over every document ``dupe_factor``
    times; returns flat ``[CLS] A [SEP] B [SEP]`` tokens, offsets, the start of B and the labels."""
    if dupe_factor < 1:
        raise Word2BertError(f"parameter dupe_factor={dupe_factor} must be >= 1")
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    cls_arr = np.array([cls_id], dtype=np.int32)
    sep_arr = np.array([sep_id], dtype=np.int32)
    pieces, lengths, b_starts, labels = [], [], [], []
    for _ in range(dupe_factor):
        for index in range(len(documents)):
            for tokens_a, tokens_b, label in builder(documents, index, rng=rng, np_rng=np_rng, **builder_options):
                pieces += [cls_arr, np.asarray(tokens_a, dtype=np.int32), sep_arr,
                           np.asarray(tokens_b, dtype=np.int32), sep_arr]
                lengths.append(len(tokens_a) + len(tokens_b) + 3)
                b_starts.append(len(tokens_a) + 2)
                labels.append(label)
    if not lengths:
        raise Word2BertError("the corpus yields no pre-training instances (documents too short?)")
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return (np.concatenate(pieces), offsets, np.asarray(b_starts, dtype=np.int32),
            np.asarray(labels, dtype=np.int64))


def sentence_order_instances(documents, cls_id: int, sep_id: int, max_seq_length: int = 128,
                             short_seq_prob: float = 0.1, dupe_factor: int = 1, seed: int = 12345):
    """All sentence-order instances of a corpus as flat arrays (see :func:`build_pair_arrays`)."""
    check_sop_documents(documents)
    if max_seq_length < 5:
        raise Word2BertError(f"parameter max_seq_length={max_seq_length} must be >= 5")
    return build_pair_arrays(documents, _sop_builder, cls_id, sep_id, dupe_factor, seed,
                             max_seq_length=max_seq_length, short_seq_prob=short_seq_prob)


class SentenceOrderDataset(PretrainingDataset):
    """Sentence-order instances in flat arrays; items carry ``sentence_order_label``."""

    @classmethod
    def from_documents(cls, documents, cls_id: int, sep_id: int, max_seq_length: int = 128,
                       short_seq_prob: float = 0.1, dupe_factor: int = 1, seed: int = 12345) -> SentenceOrderDataset:
        return cls(*sentence_order_instances(documents, cls_id, sep_id, max_seq_length, short_seq_prob,
                                             dupe_factor, seed))

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item["sentence_order_label"] = item.pop("next_sentence_label")
        return item

    def subset(self, indices) -> SentenceOrderDataset:
        part = super().subset(indices)
        return SentenceOrderDataset(part.tokens, part.offsets, part.segment_b_starts, part.next_sentence_labels)


def _sop_builder(documents, index, rng, np_rng, max_seq_length, short_seq_prob):
    return create_sop_instances_from_document(documents, index, max_seq_length, short_seq_prob, rng, np_rng)


# ---------------------------------------------------------------------------------- the objective
class SOPHead(nn.Module):
    """ALBERT's ``AlbertSOPHead``: ``logits = W dropout(pooled) + b`` over {in order, swapped}."""

    def __init__(self, hidden_size: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))


class SentenceOrderPrediction(NextSentencePrediction):
    """Sentence-order prediction: next-sentence prediction's classifier on the pooled ``[CLS]``, read
    on the items' ``sentence_order_label`` (0 in order, 1 swapped). ``head`` defaults to a
    :class:`SOPHead` when ``hidden_size`` is given (None: an objective that only builds batches)."""

    def __init__(self, head: nn.Module | None = None, hidden_size: int | None = None, dropout: float = 0.1):
        if head is None and hidden_size is not None:
            head = SOPHead(hidden_size, dropout)
        super().__init__(head, label_key="sentence_order_label")
