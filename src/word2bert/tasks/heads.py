"""Fine-tuning heads on any encoder that follows the encoder contract (BERT paper, section 4, figure 4).

* :class:`BertForSequenceClassification` — one text or a sentence pair (``[CLS] A [SEP] B [SEP]``
  with segment ids) -> ``softmax(W dropout(v) + b)`` over labels, where ``v`` is the pooled
  vector: BERT's pooler ``tanh(W_p h_[CLS] + b_p)`` ("pooler"), the raw ``h_[CLS]`` ("cls"),
  the mean of the non-padding token vectors ("mean", as sentence-transformers pools) or the last
  non-padding token's vector ("last", for left-to-right encoders: GPT, XLNet).
* :class:`BertForTokenClassification` — a label per token: ``softmax(W dropout(h_i) + b)``;
  positions labelled -100 (padding, specials, non-first word pieces) are ignored.
* :class:`BertForQuestionAnswering` — extractive QA: ``start_i, end_i = h_i . S, h_i . E`` (one
  linear layer with two outputs), loss = (CE(start) + CE(end)) / 2 over the positions.

The encoder is any :class:`~word2bert.models.base.PretrainedModel` encoder (its width is
``encoder.config.hidden_size``). Every head returns :class:`TaskOutput`; with labels its ``loss``
and summable ``stats`` are set, so the Trainer runs and evaluates it. A fine-tuned model is saved as
a Hugging Face encoder directory (``save_pretrained``) plus ``head.safetensors`` and ``task.json``
(task, labels, pooling), and :func:`load_finetuned` rebuilds it whatever the encoder's type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save, atomic_write

from word2bert.objectives.base import classification_stats

IGNORE_INDEX = -100
POOLINGS = ("pooler", "cls", "mean", "last")


@dataclass
class TaskOutput:
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None
    end_logits: torch.Tensor | None = None
    stats: dict = field(default_factory=dict)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """``v = sum_i m_i h_i / sum_i m_i`` over the non-padding positions (``m`` the attention mask)."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


def last_token(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The vector of each row's last non-padding token (right padding): ``h[b, n_b - 1]``."""
    if attention_mask is None or attention_mask.dim() != 2:
        return hidden[:, -1]
    last = attention_mask.long().sum(dim=1).clamp_min(1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def pool(encoded, attention_mask, pooling: str) -> torch.Tensor:
    """The sentence vector of an encoder output under ``pooling`` ("pooler", "cls", "mean" or "last")."""
    if pooling == "pooler":
        if encoded.pooled is None:
            raise Word2BertError("this encoder has no pooler: use pooling 'cls', 'mean' or 'last'")
        return encoded.pooled
    if pooling == "cls":
        return encoded.last_hidden_state[:, 0]
    if pooling == "mean":
        return mean_pool(encoded.last_hidden_state, attention_mask)
    if pooling == "last":
        return last_token(encoded.last_hidden_state, attention_mask)
    raise Word2BertError(f"parameter pooling={pooling!r} must be one of {', '.join(POOLINGS)}")


def encoder_width(encoder: nn.Module) -> int:
    """The hidden size of an encoder (``encoder.config.hidden_size``)."""
    width = getattr(getattr(encoder, "config", None), "hidden_size", None)
    if not isinstance(width, int):
        raise Word2BertError(f"{type(encoder).__name__} does not say its hidden size (config.hidden_size)")
    return width


def as_encoder(model: nn.Module) -> nn.Module:
    """``model`` if it is an encoder, else the encoder inside it (a fine-tuned head, a pre-training model)."""
    if getattr(model, "is_encoder", False):
        return model
    inner = getattr(model, "encoder", None)
    if isinstance(inner, nn.Module) and getattr(inner, "is_encoder", False):
        return inner
    raise Word2BertError(f"{type(model).__name__} is not an encoder and holds none")


class _TaskHead(nn.Module):
    """A head on ``encoder``; ``task`` names it in task.json."""

    task = "base"

    def __init__(self, encoder: nn.Module, dropout: float | None = None):
        super().__init__()
        self.encoder = encoder
        config = encoder.config
        self.hidden_size = encoder_width(encoder)
        self.initializer_range = getattr(config, "initializer_range", 0.02)
        default_dropout = getattr(config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(default_dropout if dropout is None else dropout)

    @property
    def bert(self) -> nn.Module:
        """The encoder (its name in earlier releases)."""
        return self.encoder

    def new_linear(self, outputs: int) -> nn.Linear:
        layer = nn.Linear(self.hidden_size, outputs)
        nn.init.normal_(layer.weight, std=self.initializer_range)
        nn.init.zeros_(layer.bias)
        return layer

    def encode(self, input_ids, token_type_ids=None, attention_mask=None):
        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.encoder(input_ids, **kwargs)

    def head_state_dict(self) -> dict:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def task_config(self) -> dict:
        return {"task": self.task}

    def save_pretrained(self, directory) -> None:
        """Encoder as a Hugging Face directory, plus ``head.safetensors`` and ``task.json``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(directory)
        head = {k: v.detach().contiguous().cpu() for k, v in self.head_state_dict().items()}
        atomic_save(directory / "head.safetensors", lambda tmp: save_file(head, tmp))
        with atomic_write(directory / "task.json", "w", encoding="utf-8") as handle:
            json.dump(self.task_config(), handle, indent=2)


class SequenceClassification(_TaskHead):
    """Single-text or sentence-pair classification: ``logits = W dropout(pool(h)) + b``."""

    task = "classification"

    def __init__(self, encoder: nn.Module, num_labels: int, pooling: str = "pooler", dropout: float | None = None,
                 labels: list[str] | None = None):
        super().__init__(encoder, dropout)
        if num_labels < 1:
            raise Word2BertError(f"parameter num_labels={num_labels} must be >= 1")
        if pooling not in POOLINGS:
            raise Word2BertError(f"parameter pooling={pooling!r} must be one of {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.labels = list(labels) if labels is not None else [str(i) for i in range(num_labels)]
        self.classifier = self.new_linear(num_labels)

    def task_config(self) -> dict:
        return {"task": self.task, "pooling": self.pooling, "labels": self.labels}

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None) -> TaskOutput:
        """Cross-entropy ``-log softmax(logits)[label]`` averaged over the batch when ``labels`` are given."""
        encoded = self.encode(input_ids, token_type_ids, attention_mask)
        logits = self.classifier(self.dropout(pool(encoded, attention_mask, self.pooling)))
        if labels is None:
            return TaskOutput(logits=logits)
        return TaskOutput(loss=F.cross_entropy(logits.float(), labels), logits=logits,
                          stats=classification_stats(logits, labels))


class TokenClassification(_TaskHead):
    """Token tagging: ``logits_i = W dropout(h_i) + b``; -100 labels are ignored."""

    task = "tagging"

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float | None = None,
                 labels: list[str] | None = None):
        super().__init__(encoder, dropout)
        if num_labels < 1:
            raise Word2BertError(f"parameter num_labels={num_labels} must be >= 1")
        self.labels = list(labels) if labels is not None else [str(i) for i in range(num_labels)]
        self.classifier = self.new_linear(num_labels)

    def task_config(self) -> dict:
        return {"task": self.task, "labels": self.labels}

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None) -> TaskOutput:
        """Mean cross-entropy over the positions whose label is not -100."""
        hidden = self.encode(input_ids, token_type_ids, attention_mask).last_hidden_state
        logits = self.classifier(self.dropout(hidden))
        if labels is None:
            return TaskOutput(logits=logits)
        flat_logits, flat_labels = logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1)
        return TaskOutput(loss=F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX), logits=logits,
                          stats=classification_stats(flat_logits, flat_labels))


class QuestionAnswering(_TaskHead):
    """Extractive QA (SQuAD): start and end scores per token from one ``Linear(hidden, 2)``."""

    task = "qa"

    def __init__(self, encoder: nn.Module, dropout: float | None = None):
        super().__init__(encoder, dropout)
        self.qa_outputs = self.new_linear(2)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, start_positions=None,
                end_positions=None) -> TaskOutput:
        """``loss = (CE(start_logits, s) + CE(end_logits, e)) / 2``; padding positions get -1e4 scores."""
        hidden = self.encode(input_ids, token_type_ids, attention_mask).last_hidden_state
        scores = self.qa_outputs(self.dropout(hidden)).float()
        start_logits, end_logits = scores[..., 0], scores[..., 1]
        if attention_mask is not None and attention_mask.dim() == 2:
            padding = attention_mask == 0
            start_logits = start_logits.masked_fill(padding, -1e4)
            end_logits = end_logits.masked_fill(padding, -1e4)
        loss, stats = None, {}
        if start_positions is not None and end_positions is not None:
            loss = (F.cross_entropy(start_logits, start_positions) + F.cross_entropy(end_logits, end_positions)) / 2
            stats = {f"start_{k}": v for k, v in classification_stats(start_logits, start_positions).items()}
            stats.update({f"end_{k}": v for k, v in classification_stats(end_logits, end_positions).items()})
        return TaskOutput(loss=loss, start_logits=start_logits, end_logits=end_logits, stats=stats)


# The names of earlier releases (the heads take any encoder now).
BertForSequenceClassification = SequenceClassification
BertForTokenClassification = TokenClassification
BertForQuestionAnswering = QuestionAnswering

TASKS = {"classification": SequenceClassification, "pair": SequenceClassification,
         "tagging": TokenClassification, "qa": QuestionAnswering}


def build_head(task: str, encoder: nn.Module, labels: list[str] | None = None, pooling: str = "pooler",
               dropout: float | None = None) -> _TaskHead:
    """The head for ``task`` ("classification", "pair", "tagging" or "qa") on ``encoder``."""
    if task not in TASKS:
        raise Word2BertError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if task in ("classification", "pair"):
        return SequenceClassification(encoder, len(labels), pooling=pooling, dropout=dropout, labels=labels)
    if task == "tagging":
        return TokenClassification(encoder, len(labels), dropout=dropout, labels=labels)
    return QuestionAnswering(encoder, dropout=dropout)


def load_finetuned(directory) -> _TaskHead:
    """Load a model written by ``save_pretrained`` of a head (encoder + head.safetensors + task.json)."""
    from safetensors.torch import load_file

    from word2bert.models.auto import encoder_from_pretrained

    directory = Path(directory)
    task_path = directory / "task.json"
    if not task_path.exists():
        raise Word2BertError(f"no task.json in {directory}: not a fine-tuned model directory")
    try:
        config = json.loads(task_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Word2BertError(f"cannot read {task_path}: {error}") from None
    encoder = encoder_from_pretrained(directory)
    model = build_head(config["task"], encoder, labels=config.get("labels"), pooling=config.get("pooling", "pooler"))
    head = load_file(str(directory / "head.safetensors"))
    missing = [k for k in model.head_state_dict() if k not in head]
    if missing:
        raise Word2BertError(f"{directory / 'head.safetensors'} lacks {', '.join(missing)}")
    model.load_state_dict({**{f"encoder.{k}": v for k, v in encoder.state_dict().items()}, **head})
    return model
