"""Fine-tuning data: readers for TSV, JSONL and fastText files, and their encoding for BERT.

Formats (plain or .gz/.bz2/.xz; the format is chosen by the extension before compression):

* classification / pair — ``.jsonl``: ``{"text": ..., "text_pair": ... (optional), "label": ...}``;
  ``.tsv``: ``text<TAB>label`` or ``text<TAB>text_pair<TAB>label``, or any columns with a header
  row naming ``text``, ``text_pair`` and ``label``; fastText (any other extension):
  ``__label__X words ...`` (the first label is the one learned).
* tagging — ``.jsonl``: ``{"tokens": [...], "tags": [...]}``; ``.tsv``/other: CoNLL style,
  ``token<TAB>tag`` per line, a blank line between sentences.
* qa — ``.jsonl``: ``{"context", "question", "answer_start" (character offset), "answer" or
  "answer_text"}``.

Encoding keeps the items as small int arrays; :class:`TaskCollator` pads a list of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from word2bert.errors import Word2BertError
from word2bert.fileio import open_text

IGNORE_INDEX = -100
_COMPRESSED = {".gz", ".bz2", ".xz"}


def file_format(path) -> str:
    """``jsonl``, ``tsv`` or ``text`` from the file name (compression suffix ignored)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    last = suffixes[-1] if suffixes else ""
    if last in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if last == ".tsv":
        return "tsv"
    return "text"


def _read_jsonl(path):
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise Word2BertError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise Word2BertError(f"{path}:{number}: expected a JSON object per line")
            yield number, record


def _require(record, keys, path, number):
    for key in keys:
        if key not in record:
            raise Word2BertError(f"{path}:{number}: missing field {key!r}")


def _label(value, path, number, what: str = "label") -> str:
    """A label as text; empty or null labels are refused (they would train a class named "")."""
    label = "" if value is None else str(value).strip()
    if not label:
        raise Word2BertError(f"{path}:{number}: empty {what}")
    return label


def read_classification(path) -> list[dict]:
    """Examples ``{"text", "text_pair" (or None), "label"}`` from a JSONL, TSV or fastText file.

    Every line must carry a non-empty label; a fastText-format file with unlabelled lines is
    refused with their count and the first line number.
    """
    path = Path(path)
    examples = []
    fmt = file_format(path)
    if fmt == "jsonl":
        for number, record in _read_jsonl(path):
            _require(record, ("text", "label"), path, number)
            examples.append({"text": str(record["text"]), "text_pair": record.get("text_pair"),
                             "label": _label(record["label"], path, number)})
    elif fmt == "tsv":
        with open_text(path) as handle:
            columns = None
            for number, line in enumerate(handle, 1):
                line = line.rstrip("\n").rstrip("\r")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if number == 1 and "label" in fields and "text" in fields:
                    columns = {name: i for i, name in enumerate(fields)}
                    continue
                if columns is not None:
                    if len(fields) < len(columns):
                        raise Word2BertError(f"{path}:{number}: expected {len(columns)} tab-separated fields, "
                                             f"got {len(fields)}")
                    text_pair = fields[columns["text_pair"]] if "text_pair" in columns else None
                    examples.append({"text": fields[columns["text"]], "text_pair": text_pair,
                                     "label": _label(fields[columns["label"]], path, number)})
                elif len(fields) == 2:
                    examples.append({"text": fields[0], "text_pair": None, "label": _label(fields[1], path, number)})
                elif len(fields) == 3:
                    examples.append({"text": fields[0], "text_pair": fields[1],
                                     "label": _label(fields[2], path, number)})
                else:
                    raise Word2BertError(f"{path}:{number}: expected text<TAB>label or "
                                         f"text<TAB>text_pair<TAB>label, got {len(fields)} field"
                                         f"{'s' if len(fields) != 1 else ''}")
    else:
        unlabelled, first_unlabelled, lines = 0, None, 0
        with open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                words = line.split()
                if not words:
                    continue
                lines += 1
                labels = [w for w in words if w.startswith("__label__")]
                if not labels:
                    unlabelled += 1
                    first_unlabelled = first_unlabelled or number
                    continue
                text = " ".join(w for w in words if not w.startswith("__label__"))
                examples.append({"text": text, "text_pair": None,
                                 "label": _label(labels[0][len("__label__"):], path, number)})
        if unlabelled:
            raise Word2BertError(f"{path}:{first_unlabelled}: no __label__ ({unlabelled:,} of {lines:,} lines have "
                                 "none; a fastText-format file needs a label on every line)")
    if not examples:
        raise Word2BertError(f"no examples in {path}")
    return examples


def read_tagging(path) -> list[dict]:
    """Examples ``{"tokens": [...], "tags": [...]}`` from JSONL or CoNLL-style ``token<TAB>tag`` lines."""
    path = Path(path)
    examples = []
    if file_format(path) == "jsonl":
        for number, record in _read_jsonl(path):
            _require(record, ("tokens", "tags"), path, number)
            if len(record["tokens"]) != len(record["tags"]):
                raise Word2BertError(f"{path}:{number}: {len(record['tokens'])} tokens but {len(record['tags'])} tags")
            examples.append({"tokens": [str(t) for t in record["tokens"]],
                             "tags": [_label(t, path, number, "tag") for t in record["tags"]]})
    else:
        tokens, tags = [], []
        with open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                line = line.rstrip("\n").rstrip("\r")
                if not line.strip():
                    if tokens:
                        examples.append({"tokens": tokens, "tags": tags})
                        tokens, tags = [], []
                    continue
                fields = line.split("\t") if "\t" in line else line.split()
                if len(fields) < 2:
                    raise Word2BertError(f"{path}:{number}: expected token<TAB>tag")
                tokens.append(fields[0])
                tags.append(_label(fields[-1], path, number, "tag"))
        if tokens:
            examples.append({"tokens": tokens, "tags": tags})
    if not examples:
        raise Word2BertError(f"no examples in {path}")
    return examples


def read_qa(path) -> list[dict]:
    """Examples ``{"context", "question", "answer_start", "answer"}`` from JSONL."""
    path = Path(path)
    if file_format(path) != "jsonl":
        raise Word2BertError(f"{path}: question answering data must be JSONL (context, question, answer_start, answer)")
    examples = []
    for number, record in _read_jsonl(path):
        _require(record, ("context", "question", "answer_start"), path, number)
        answer = record.get("answer", record.get("answer_text"))
        if answer is None:
            raise Word2BertError(f"{path}:{number}: missing field 'answer'")
        start = int(record["answer_start"])
        context = str(record["context"])
        if context[start:start + len(answer)] != answer:
            raise Word2BertError(f"{path}:{number}: the answer {answer!r} is not at character {start} of the context")
        examples.append({"context": context, "question": str(record["question"]), "answer_start": start,
                         "answer": str(answer)})
    if not examples:
        raise Word2BertError(f"no examples in {path}")
    return examples


READERS = {"classification": read_classification, "pair": read_classification, "tagging": read_tagging,
           "qa": read_qa}


def read_task_file(task: str, path) -> list[dict]:
    if task not in READERS:
        raise Word2BertError(f"unknown task {task!r}; choose one of {', '.join(READERS)}")
    return READERS[task](path)


def label_list(examples, key: str = "label") -> list[str]:
    """Sorted distinct labels (for tagging, of every tag)."""
    if key == "tags":
        return sorted({tag for example in examples for tag in example["tags"]})
    return sorted({example[key] for example in examples})


# ---------------------------------------------------------------------- encoding
def encode_classification(examples, tokenizer, labels: list[str], max_length: int) -> list[dict]:
    """Token ids (pairs as ``[CLS] A [SEP] B [SEP]``) and the label index (-1 for a label not in ``labels``)."""
    index = {label: i for i, label in enumerate(labels)}
    texts = [e["text"] for e in examples]
    pairs = [e["text_pair"] for e in examples]
    has_pairs = any(p is not None for p in pairs)
    encoded = tokenizer.encode_batch(texts, [p or "" for p in pairs] if has_pairs else None,
                                     max_length=max_length, truncation=True)
    return [{"input_ids": np.asarray(ids, dtype=np.int64), "token_type_ids": np.asarray(types, dtype=np.int64),
             "labels": index.get(e["label"], -1)}
            for ids, types, e in zip(encoded["input_ids"], encoded["token_type_ids"], examples)]


def encode_tagging(examples, tokenizer, labels: list[str], max_length: int) -> list[dict]:
    """Word pieces of the pre-split words; the tag goes on each word's first piece, -100 elsewhere."""
    index = {label: i for i, label in enumerate(labels)}
    items = []
    for example in examples:
        encoded = tokenizer.encode_words(example["tokens"], max_length=max_length)
        tags = np.full(len(encoded["input_ids"]), IGNORE_INDEX, dtype=np.int64)
        previous = None
        for position, word in enumerate(encoded["word_ids"]):  # per token of one short sentence
            if word is not None and word != previous:
                tags[position] = index.get(example["tags"][word], -1)
            previous = word
        items.append({"input_ids": np.asarray(encoded["input_ids"], dtype=np.int64),
                      "token_type_ids": np.asarray(encoded["token_type_ids"], dtype=np.int64), "labels": tags})
    return items


def encode_qa(examples, tokenizer, max_length: int) -> list[dict]:
    """``[CLS] question [SEP] context [SEP]`` with the answer's first and last token positions.

    An answer cut off by truncation points at [CLS] (position 0), as in BERT's SQuAD code.
    """
    encoded = tokenizer.encode_batch([e["question"] for e in examples], [e["context"] for e in examples],
                                     max_length=max_length, truncation=True, return_offsets=True)
    items = []
    for k, example in enumerate(examples):
        offsets = np.asarray(encoded["offset_mapping"][k], dtype=np.int64).reshape(-1, 2)
        in_context = np.array([s == 1 for s in encoded["sequence_ids"][k]])
        answer_start = example["answer_start"]
        answer_end = answer_start + len(example["answer"])
        starts = np.flatnonzero(in_context & (offsets[:, 0] <= answer_start) & (offsets[:, 1] > answer_start))
        ends = np.flatnonzero(in_context & (offsets[:, 0] < answer_end) & (offsets[:, 1] >= answer_end))
        start, end = (int(starts[0]), int(ends[-1])) if len(starts) and len(ends) else (0, 0)
        items.append({"input_ids": np.asarray(encoded["input_ids"][k], dtype=np.int64),
                      "token_type_ids": np.asarray(encoded["token_type_ids"][k], dtype=np.int64),
                      "start_positions": start, "end_positions": end,
                      "context_mask": in_context})
    return items


class TaskCollator:
    """Pads encoded task items into tensors; per-token ``labels`` are padded with -100."""

    def __init__(self, pad_id: int = 0, with_labels: bool = True):
        self.pad_id = pad_id
        self.with_labels = with_labels

    def __call__(self, items: list[dict], rng=None) -> dict[str, torch.Tensor]:
        lengths = np.array([len(item["input_ids"]) for item in items])
        width = int(lengths.max())
        mask = np.arange(width)[None, :] < lengths[:, None]
        out = {}
        for key, fill in (("input_ids", self.pad_id), ("token_type_ids", 0)):
            array = np.full((len(items), width), fill, dtype=np.int64)
            array[mask] = np.concatenate([item[key] for item in items])
            out[key] = torch.from_numpy(array)
        out["attention_mask"] = torch.from_numpy(mask.astype(np.int64))
        if self.with_labels:
            first = items[0]
            if "labels" in first and np.ndim(first["labels"]) == 1:
                array = np.full((len(items), width), IGNORE_INDEX, dtype=np.int64)
                array[mask] = np.concatenate([item["labels"] for item in items])
                out["labels"] = torch.from_numpy(array)
            elif "labels" in first:
                out["labels"] = torch.tensor([item["labels"] for item in items], dtype=torch.long)
            if "start_positions" in first:
                out["start_positions"] = torch.tensor([item["start_positions"] for item in items], dtype=torch.long)
                out["end_positions"] = torch.tensor([item["end_positions"] for item in items], dtype=torch.long)
        return out
