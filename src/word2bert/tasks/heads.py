"""Fine-tuning heads on a BERT encoder (BERT paper, section 4 and figure 4).

* :class:`BertForSequenceClassification` — one text or a sentence pair (``[CLS] A [SEP] B [SEP]``
  with segment ids) -> ``softmax(W dropout(v) + b)`` over labels, where ``v`` is the pooled
  vector: BERT's pooler ``tanh(W_p h_[CLS] + b_p)`` ("pooler"), the raw ``h_[CLS]`` ("cls") or
  the mean of the non-padding token vectors ("mean", as sentence-transformers pools).
* :class:`BertForTokenClassification` — a label per token: ``softmax(W dropout(h_i) + b)``;
  positions labelled -100 (padding, specials, non-first word pieces) are ignored.
* :class:`BertForQuestionAnswering` — extractive QA: ``start_i, end_i = h_i . S, h_i . E`` (one
  linear layer with two outputs), loss = (CE(start) + CE(end)) / 2 over the positions.

Every head returns :class:`TaskOutput`; with labels its ``loss`` is set, so the Trainer runs it.
A fine-tuned model is saved as a Hugging Face encoder directory (``save_pretrained``) plus
``head.safetensors`` and ``task.json`` (task, labels, pooling).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save, atomic_write

IGNORE_INDEX = -100
POOLINGS = ("pooler", "cls", "mean")


@dataclass
class TaskOutput:
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None
    end_logits: torch.Tensor | None = None


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """``v = sum_i m_i h_i / sum_i m_i`` over the non-padding positions (``m`` the attention mask)."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


def pool(encoded, attention_mask, pooling: str) -> torch.Tensor:
    """The sentence vector of an encoder output under ``pooling`` ("pooler", "cls" or "mean")."""
    if pooling == "pooler":
        return encoded.pooler_output
    if pooling == "cls":
        return encoded.last_hidden_state[:, 0]
    if pooling == "mean":
        return mean_pool(encoded.last_hidden_state, attention_mask)
    raise Word2BertError(f"parameter pooling={pooling!r} must be one of {', '.join(POOLINGS)}")


class _TaskHead(nn.Module):
    task = "base"

    def __init__(self, bert: nn.Module, dropout: float | None = None):
        super().__init__()
        self.bert = bert
        config = bert.config
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)

    def head_state_dict(self) -> dict:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("bert.")}

    def task_config(self) -> dict:
        return {"task": self.task}

    def save_pretrained(self, directory) -> None:
        """Encoder as a Hugging Face directory, plus ``head.safetensors`` and ``task.json``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.bert.save_pretrained(directory)
        head = {k: v.detach().contiguous().cpu() for k, v in self.head_state_dict().items()}
        atomic_save(directory / "head.safetensors", lambda tmp: save_file(head, tmp))
        with atomic_write(directory / "task.json", "w", encoding="utf-8") as handle:
            json.dump(self.task_config(), handle, indent=2)


class BertForSequenceClassification(_TaskHead):
    """Single-text or sentence-pair classification: ``logits = W dropout(pool(h)) + b``."""

    task = "classification"

    def __init__(self, bert: nn.Module, num_labels: int, pooling: str = "pooler", dropout: float | None = None,
                 labels: list[str] | None = None):
        super().__init__(bert, dropout)
        if num_labels < 1:
            raise Word2BertError(f"parameter num_labels={num_labels} must be >= 1")
        if pooling not in POOLINGS:
            raise Word2BertError(f"parameter pooling={pooling!r} must be one of {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.labels = list(labels) if labels is not None else [str(i) for i in range(num_labels)]
        self.classifier = nn.Linear(bert.config.hidden_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=bert.config.initializer_range)
        nn.init.zeros_(self.classifier.bias)

    def task_config(self) -> dict:
        return {"task": self.task, "pooling": self.pooling, "labels": self.labels}

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None) -> TaskOutput:
        """Cross-entropy ``-log softmax(logits)[label]`` averaged over the batch when ``labels`` are given."""
        encoded = self.bert(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        logits = self.classifier(self.dropout(pool(encoded, attention_mask, self.pooling)))
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return TaskOutput(loss=loss, logits=logits)


class BertForTokenClassification(_TaskHead):
    """Token tagging: ``logits_i = W dropout(h_i) + b``; -100 labels are ignored."""

    task = "tagging"

    def __init__(self, bert: nn.Module, num_labels: int, dropout: float | None = None,
                 labels: list[str] | None = None):
        super().__init__(bert, dropout)
        if num_labels < 1:
            raise Word2BertError(f"parameter num_labels={num_labels} must be >= 1")
        self.labels = list(labels) if labels is not None else [str(i) for i in range(num_labels)]
        self.classifier = nn.Linear(bert.config.hidden_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=bert.config.initializer_range)
        nn.init.zeros_(self.classifier.bias)

    def task_config(self) -> dict:
        return {"task": self.task, "labels": self.labels}

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None) -> TaskOutput:
        """Mean cross-entropy over the positions whose label is not -100."""
        hidden = self.bert(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.classifier(self.dropout(hidden))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                   ignore_index=IGNORE_INDEX)
        return TaskOutput(loss=loss, logits=logits)


class BertForQuestionAnswering(_TaskHead):
    """Extractive QA (SQuAD): start and end scores per token from one ``Linear(hidden, 2)``."""

    task = "qa"

    def __init__(self, bert: nn.Module, dropout: float | None = None):
        super().__init__(bert, dropout)
        self.qa_outputs = nn.Linear(bert.config.hidden_size, 2)
        nn.init.normal_(self.qa_outputs.weight, std=bert.config.initializer_range)
        nn.init.zeros_(self.qa_outputs.bias)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, start_positions=None,
                end_positions=None) -> TaskOutput:
        """``loss = (CE(start_logits, s) + CE(end_logits, e)) / 2``; padding positions get -inf scores."""
        hidden = self.bert(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask).last_hidden_state
        scores = self.qa_outputs(self.dropout(hidden)).float()
        start_logits, end_logits = scores[..., 0], scores[..., 1]
        if attention_mask is not None and attention_mask.dim() == 2:
            padding = attention_mask == 0
            start_logits = start_logits.masked_fill(padding, -1e4)
            end_logits = end_logits.masked_fill(padding, -1e4)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (F.cross_entropy(start_logits, start_positions) + F.cross_entropy(end_logits, end_positions)) / 2
        return TaskOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)


TASKS = {"classification": BertForSequenceClassification, "pair": BertForSequenceClassification,
         "tagging": BertForTokenClassification, "qa": BertForQuestionAnswering}


def build_head(task: str, bert: nn.Module, labels: list[str] | None = None, pooling: str = "pooler",
               dropout: float | None = None) -> _TaskHead:
    """The head for ``task`` ("classification", "pair", "tagging" or "qa") on ``bert``."""
    if task not in TASKS:
        raise Word2BertError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if task in ("classification", "pair"):
        return BertForSequenceClassification(bert, len(labels), pooling=pooling, dropout=dropout, labels=labels)
    if task == "tagging":
        return BertForTokenClassification(bert, len(labels), dropout=dropout, labels=labels)
    return BertForQuestionAnswering(bert, dropout=dropout)


def load_finetuned(directory) -> _TaskHead:
    """Load a model written by ``save_pretrained`` of a head (encoder + head.safetensors + task.json)."""
    from safetensors.torch import load_file

    from word2bert.models.bert import BertModel

    directory = Path(directory)
    task_path = directory / "task.json"
    if not task_path.exists():
        raise Word2BertError(f"no task.json in {directory}: not a fine-tuned model directory")
    config = json.loads(task_path.read_text(encoding="utf-8"))
    bert = BertModel.from_pretrained(directory)
    model = build_head(config["task"], bert, labels=config.get("labels"), pooling=config.get("pooling", "pooler"))
    head = load_file(str(directory / "head.safetensors"))
    missing = [k for k in model.head_state_dict() if k not in head]
    if missing:
        raise Word2BertError(f"{directory / 'head.safetensors'} lacks {', '.join(missing)}")
    model.load_state_dict({**{f"bert.{k}": v for k, v in bert.state_dict().items()}, **head})
    return model
