"""BERT pre-training data: a corpus file -> packed NSP instances -> MLM-masked batches.

Corpus formats (both plain or .gz/.bz2/.xz):

* BERT's: one sentence per line, documents separated by blank lines.
* One document per line with no blank lines (text8-style, e.g. enmix): each line is a
  document, cut into pseudo-sentences of ``words_per_sentence`` words (such text has no
  sentence boundaries; NSP then predicts whether B continues A's document).

:class:`PretrainingDataset` stores all instances in flat int32 arrays (tokens with [CLS]/[SEP],
offsets, the start of segment B, the NSP label); :class:`PretrainingCollator` is the
:class:`~word2bert.objectives.base.ObjectiveCollator` of BERT's two objectives: it pads a list of
instances, masks them and adds the NSP labels, emitting the keyword arguments of
``BertForPreTraining.forward``.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from word2bert.errors import Word2BertError
from word2bert.fileio import open_text
from word2bert.objectives.base import ObjectiveCollator, pad_batch  # noqa: F401  (pad_batch: earlier home)
from word2bert.objectives.mlm import MaskedLM, MaskedLMObjective
from word2bert.objectives.nsp import NextSentencePrediction, check_documents, create_instances_from_document


def read_documents(path, tokenizer, words_per_sentence: int = 24, chunk_lines: int = 8192) -> list[list[np.ndarray]]:
    """Read ``path`` into documents of sentences of WordPiece ids (int32 arrays).

    Blank lines separate documents (BERT's format); a file without blank lines is read as one
    document per line, each cut into pseudo-sentences of ``words_per_sentence`` words.
    """
    path = Path(path)
    with open_text(path) as handle:
        lines = [line.strip() for line in handle]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    blank_separated = any(not line for line in lines)
    documents_text: list[list[str]] = []
    if blank_separated:
        current: list[str] = []
        for line in lines:
            if line:
                current.append(line)
            elif current:
                documents_text.append(current)
                current = []
        if current:
            documents_text.append(current)
    else:
        for line in lines:
            words = line.split()
            if words:
                documents_text.append([" ".join(words[k:k + words_per_sentence])
                                       for k in range(0, len(words), words_per_sentence)])
    del lines
    flat = [sentence for document in documents_text for sentence in document]
    if not flat:
        raise Word2BertError(f"the corpus {path} is empty: no text to pre-train on")
    sentence_ids: list[np.ndarray] = []
    for start in range(0, len(flat), chunk_lines):
        sentence_ids.extend(np.asarray(ids, dtype=np.int32) for ids in tokenizer.ids_batch(flat[start:start + chunk_lines]))
    documents, k = [], 0
    for document in documents_text:
        sentences = [s for s in sentence_ids[k:k + len(document)] if len(s)]
        k += len(document)
        if sentences:
            documents.append(sentences)
    return documents


class PretrainingDataset:
    """Packed pre-training instances ``[CLS] A [SEP] B [SEP]`` with NSP labels, in flat arrays.

    ``dupe_factor`` copies of the corpus are segmented independently (BERT's static masking
    then masks each copy differently); with dynamic masking one copy is enough (RoBERTa).
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, segment_b_starts: np.ndarray,
                 next_sentence_labels: np.ndarray):
        self.tokens = tokens
        self.offsets = offsets
        self.segment_b_starts = segment_b_starts
        self.next_sentence_labels = next_sentence_labels

    @classmethod
    def from_documents(cls, documents, cls_id: int, sep_id: int, max_seq_length: int = 128,
                       short_seq_prob: float = 0.1, dupe_factor: int = 1, next_sentence: bool = True,
                       seed: int = 12345) -> PretrainingDataset:
        """Build instances with BERT's ``create_instances_from_document`` for every document, ``dupe_factor`` times."""
        check_documents(documents)
        if max_seq_length < 5:
            raise Word2BertError(f"parameter max_seq_length={max_seq_length} must be >= 5")
        if dupe_factor < 1:
            raise Word2BertError(f"parameter dupe_factor={dupe_factor} must be >= 1")
        if not 0 <= short_seq_prob <= 1:
            raise Word2BertError(f"parameter short_seq_prob={short_seq_prob} must be in [0, 1]")
        rng = random.Random(seed)
        np_rng = np.random.default_rng(seed)
        pieces, lengths, b_starts, labels = [], [], [], []
        cls_arr = np.array([cls_id], dtype=np.int32)
        sep_arr = np.array([sep_id], dtype=np.int32)
        for _ in range(dupe_factor):
            for index in range(len(documents)):
                for tokens_a, tokens_b, label in create_instances_from_document(
                        documents, index, max_seq_length, short_seq_prob, rng, np_rng, next_sentence):
                    parts = [cls_arr, tokens_a, sep_arr]
                    if len(tokens_b):
                        parts += [tokens_b, sep_arr]
                    pieces.extend(parts)
                    lengths.append(len(tokens_a) + len(tokens_b) + (3 if len(tokens_b) else 2))
                    b_starts.append(len(tokens_a) + 2)
                    labels.append(label)
        if not lengths:
            raise Word2BertError("the corpus yields no pre-training instances (documents too short?)")
        tokens = np.concatenate(pieces).astype(np.int32)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(tokens, offsets, np.asarray(b_starts, dtype=np.int32), np.asarray(labels, dtype=np.int64))

    @classmethod
    def from_file(cls, path, tokenizer, max_seq_length: int = 128, short_seq_prob: float = 0.1,
                  dupe_factor: int = 1, next_sentence: bool = True, seed: int = 12345,
                  words_per_sentence: int = 24) -> PretrainingDataset:
        documents = read_documents(path, tokenizer, words_per_sentence=words_per_sentence)
        return cls.from_documents(documents, tokenizer.cls_id, tokenizer.sep_id, max_seq_length,
                                  short_seq_prob, dupe_factor, next_sentence, seed)

    def __len__(self) -> int:
        return len(self.segment_b_starts)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        start, end = self.offsets[index], self.offsets[index + 1]
        input_ids = self.tokens[start:end]
        token_type_ids = np.zeros(len(input_ids), dtype=np.int64)
        token_type_ids[self.segment_b_starts[index]:] = 1
        return {"input_ids": input_ids, "token_type_ids": token_type_ids,
                "next_sentence_label": int(self.next_sentence_labels[index]), "index": index}

    def split(self, held_out: float | int, seed: int = 0) -> tuple[PretrainingDataset, PretrainingDataset]:
        """Split off a held-out part (a fraction, or a number of instances) for evaluation."""
        n = len(self)
        n_held = int(round(held_out * n)) if isinstance(held_out, float) and held_out < 1 else int(held_out)
        n_held = max(0, min(n_held, n - 1))
        order = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(order[n_held:])), self.subset(np.sort(order[:n_held]))

    def subset(self, indices) -> PretrainingDataset:
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.offsets[indices + 1] - self.offsets[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if len(indices):
            gather = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in indices])
        else:
            gather = np.zeros(0, dtype=np.int64)
        return PretrainingDataset(self.tokens[gather], offsets, self.segment_b_starts[indices],
                                  self.next_sentence_labels[indices])


class PretrainingCollator(ObjectiveCollator):
    """Pads instances and applies BERT's objectives: MLM (``masking``) and, unless
    ``next_sentence=False``, the next-sentence labels. The output is ``BertForPreTraining``'s kwargs.

    ``collate(items, rng)``: ``rng`` (a numpy Generator the trainer derives from the seed, the
    epoch and the step) drives dynamic masking; static masking uses each item's ``index``.
    The same batches come from ``BertForPreTraining(config, masking).collator(pad_id)``.
    """

    def __init__(self, masking: MaskedLM, pad_id: int = 0, next_sentence: bool = True):
        objectives = [MaskedLMObjective(masking=masking)]
        if next_sentence:
            objectives.append(NextSentencePrediction())
        super().__init__(objectives, pad_id)
        self.masking = masking
        self.next_sentence = next_sentence
