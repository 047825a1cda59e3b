"""Next-sentence prediction data: documents -> sentences -> segment pairs (BERT section 3.1).

Follows google-research/bert ``create_pretraining_data.py`` (``create_instances_from_document``):
sentences of a document are accumulated into a chunk until it reaches ``target_seq_length``
tokens (``max_seq_length - 3`` for [CLS], [SEP], [SEP]; with probability ``short_seq_prob`` a
shorter target drawn from [2, max]); a random number of the chunk's sentences form segment A;
with probability 0.5 segment B is the rest of the chunk (label 0, "is next"), otherwise B is a
run of sentences from a random other document (label 1, "random next") and the unused
sentences of the chunk are put back. ``truncate_seq_pair`` then cuts the longer segment, from
the front or the back at random, until the pair fits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.objectives.base import Objective, ObjectiveOutput, classification_stats

IS_NEXT, RANDOM_NEXT = 0, 1


def truncate_seq_pair(tokens_a: np.ndarray, tokens_b: np.ndarray, max_num_tokens: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cut the pair to ``len(a) + len(b) <= max_num_tokens``.

    BERT removes one token at a time from the longer segment, each time from its front or
    back with probability 1/2. The number removed from each segment is fixed by the
    "longer first" rule; the split of those ``r`` removals between front and back is then
    Binomial(r, 1/2), which we draw directly (same distribution, no per-token loop).
    """
    len_a, len_b = len(tokens_a), len(tokens_b)
    excess = len_a + len_b - max_num_tokens
    if excess <= 0:
        return tokens_a, tokens_b
    # longest-first: remove from the longer until equal, then alternate, b first on ties (as BERT)
    gap = abs(len_a - len_b)
    first = min(excess, gap)
    rest = excess - first
    remove_a = (first if len_a > len_b else 0) + rest // 2
    remove_b = (first if len_b > len_a else 0) + (rest + 1) // 2

    def cut(tokens, remove):
        if remove <= 0:
            return tokens
        front = int(rng.binomial(remove, 0.5))
        return tokens[front: len(tokens) - (remove - front)]

    return cut(tokens_a, remove_a), cut(tokens_b, remove_b)


def create_instances_from_document(documents: Sequence[Sequence[np.ndarray]], document_index: int,
                                   max_seq_length: int, short_seq_prob: float, rng: random.Random,
                                   np_rng: np.random.Generator, next_sentence: bool = True):
    """Segment pairs ``(tokens_a, tokens_b, label)`` from one document (BERT's algorithm).

    ``documents`` is a list of documents, each a list of sentences (int arrays of WordPiece
    ids, no special tokens). With ``next_sentence=False`` every instance is one segment
    (``tokens_b`` empty, label -100), e.g. for RoBERTa-style full sentences.
    """
    document = documents[document_index]
    max_num_tokens = max_seq_length - (3 if next_sentence else 2)
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    instances = []
    current_chunk: list[np.ndarray] = []
    current_length = 0
    i = 0
    empty = np.zeros(0, dtype=np.int32)
    while i < len(document):
        segment = document[i]
        current_chunk.append(segment)
        current_length += len(segment)
        if i == len(document) - 1 or current_length >= target_seq_length:
            if current_chunk:
                if not next_sentence:
                    tokens_a = np.concatenate(current_chunk)[:max_num_tokens]
                    instances.append((tokens_a, empty, -100))
                    current_chunk, current_length = [], 0
                    i += 1
                    continue
                a_end = 1
                if len(current_chunk) >= 2:
                    a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a = np.concatenate(current_chunk[:a_end])
                if len(current_chunk) == 1 or rng.random() < 0.5:
                    is_random_next = True
                    target_b_length = target_seq_length - len(tokens_a)
                    random_document_index = document_index
                    for _ in range(10):
                        random_document_index = rng.randint(0, len(documents) - 1)
                        if random_document_index != document_index:
                            break
                    random_document = documents[random_document_index]
                    random_start = rng.randint(0, len(random_document) - 1)
                    pieces, length = [], 0
                    for j in range(random_start, len(random_document)):
                        pieces.append(random_document[j])
                        length += len(random_document[j])
                        if length >= target_b_length:
                            break
                    tokens_b = np.concatenate(pieces) if pieces else empty
                    # put the unused segments back so they are not wasted
                    i -= len(current_chunk) - a_end
                else:
                    is_random_next = False
                    tokens_b = np.concatenate(current_chunk[a_end:])
                tokens_a, tokens_b = truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, np_rng)
                if len(tokens_a) >= 1 and len(tokens_b) >= 1:
                    instances.append((tokens_a, tokens_b, RANDOM_NEXT if is_random_next else IS_NEXT))
            current_chunk, current_length = [], 0
        i += 1
    return instances


def check_documents(documents) -> None:
    """Raise a clear error for a corpus NSP cannot use."""
    if not documents or not any(len(d) for d in documents):
        raise Word2BertError("the corpus is empty: no sentences to make pre-training instances from")


class NextSentencePrediction(Objective):
    """BERT's next-sentence prediction: a 2-way classifier on the pooled [CLS] vector.

    ``logits = W pooled + b`` with ``pooled = tanh(W_p h_[CLS] + b_p)`` (the encoder's pooler);
    label 0 = B follows A, 1 = B is random (BERT's and Hugging Face's convention);
    ``loss = mean -log softmax(logits)[label]``. The items carry ``next_sentence_label``. ALBERT's
    sentence-order prediction is the same head on other pairs. ``head`` may be None for an
    objective that only builds batches.
    """

    reads_pooled = True

    def __init__(self, head: nn.Linear | None = None, label_key: str = "next_sentence_label"):
        super().__init__()
        self.head = head
        self.label_key = label_key

    def prepare(self, batch, items, rng) -> None:
        batch[self.label_key] = np.array([item[self.label_key] for item in items], dtype=np.int64)

    def read_positions(self, batch) -> torch.Tensor:
        return torch.zeros(batch["input_ids"].shape[0], 1, dtype=torch.long, device=batch["input_ids"].device)

    def forward(self, hidden, batch, model) -> ObjectiveOutput:
        logits = self.head(model.encoder.pooler(hidden))
        labels = batch.get(self.label_key)
        if labels is None:
            return ObjectiveOutput(logits=logits)
        labels = labels.reshape(-1).long()
        return ObjectiveOutput(loss=F.cross_entropy(logits, labels), stats=classification_stats(logits, labels),
                               logits=logits)
