"""GPT-1 fine-tuning as in its paper (Radford et al. 2018, sections 3.2-3.3, figure 1).

Every task is turned into token sequences the pre-trained left-to-right model can read, framed by
three new tokens (added to the vocabulary, their embeddings learned during fine-tuning): a start
token, a delimiter and an extract token. The extract token's last-layer row h^m_l (the model has
seen the whole input when it reads it) feeds a new linear layer W_y:

- **classification**: ``start text extract`` -> softmax(h W_y);
- **entailment**: ``start premise delim hypothesis extract`` -> softmax(h W_y);
- **similarity**: no inherent order, so both ``start A delim B extract`` and ``start B delim A
  extract`` are read and their rows added element-wise: softmax((h_AB + h_BA) W_y);
- **multiple choice** (question answering, commonsense reasoning): ``start context delim answer_k
  extract`` for every answer k, each scored h_k W_y (one output), softmax over the answers.

The language-modelling objective is kept as an auxiliary loss on the same sequences:
L_3 = L_2(task) + lambda L_1(LM) with lambda = 0.5 (the paper; OpenAI's code ``lm_coef``).
The LM head is the input embedding, new tokens included (:class:`~word2bert.objectives.causal_lm.
CausalLanguageModeling`).

``word2bert finetune --model gpt MODEL --task {classification,entailment,similarity,multiple-choice}``
runs :func:`finetune_gpt`; multiple-choice files are JSONL ``{"context": ..., "choices": [...], "label": k}``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.objectives.base import classification_stats
from word2bert.objectives.causal_lm import CausalLanguageModeling
from word2bert.tasks.heads import TaskOutput, _TaskHead, last_token

START, DELIMITER, EXTRACT = "<|start|>", "<|delim|>", "<|extract|>"
GPT_TASKS = ("classification", "entailment", "similarity", "multiple-choice")
LM_WEIGHT = 0.5


# --------------------------------------------------------------------------- input transformations

class InputTransform:
    """Builds GPT-1's task sequences (figure 1) from texts; adds the three framing tokens to
    ``tokenizer`` (ids ``start_id``, ``delimiter_id``, ``extract_id``). Sequences longer than
    ``max_length`` lose tokens from the end of their longest part first."""

    def __init__(self, tokenizer, max_length: int = 128):
        if max_length < 5:
            raise Word2BertError(f"max_length={max_length} leaves no room for the text (needs >= 5)")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.start_id, self.delimiter_id, self.extract_id = tokenizer.add_special_tokens([START, DELIMITER, EXTRACT])

    def ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)["input_ids"]

    def frame(self, *parts: list[int]) -> list[int]:
        """``start part_1 (delim part_2) extract``, parts cut (longest first) to fit max_length."""
        parts = [list(p) for p in parts]
        budget = self.max_length - 2 - (len(parts) - 1)
        while sum(map(len, parts)) > budget:
            longest = max(range(len(parts)), key=lambda i: len(parts[i]))
            parts[longest].pop()
        sequence = [self.start_id]
        for index, part in enumerate(parts):
            if index:
                sequence.append(self.delimiter_id)
            sequence.extend(part)
        return sequence + [self.extract_id]

    def classification(self, text: str) -> list[list[int]]:
        return [self.frame(self.ids(text))]

    def entailment(self, premise: str, hypothesis: str) -> list[list[int]]:
        return [self.frame(self.ids(premise), self.ids(hypothesis))]

    def similarity(self, first: str, second: str) -> list[list[int]]:
        a, b = self.ids(first), self.ids(second)
        return [self.frame(a, b), self.frame(b, a)]

    def multiple_choice(self, context: str, choices: list[str]) -> list[list[int]]:
        context_ids = self.ids(context)
        return [self.frame(context_ids, self.ids(choice)) for choice in choices]

    def sequences(self, task: str, example: dict) -> list[list[int]]:
        if task == "classification":
            return self.classification(example["text"])
        if task == "entailment":
            return self.entailment(example["text"], example["text_pair"])
        if task == "similarity":
            return self.similarity(example["text"], example["text_pair"])
        if task == "multiple-choice":
            return self.multiple_choice(example["context"], example["choices"])
        raise Word2BertError(f"unknown GPT task {task!r}; choose one of {', '.join(GPT_TASKS)}")


def encode_gpt_examples(task: str, examples: list[dict], transform: InputTransform,
                        labels: list[str] | None) -> list[dict]:
    """Items ``{"input_ids": [sequence per choice/order], "labels": class or answer index}``."""
    index = {label: i for i, label in enumerate(labels)} if labels else None
    items = []
    for example in examples:
        label = example.get("label")
        if task == "multiple-choice":
            target = int(label) if label is not None else -100
        else:
            target = index.get(label, -100) if index is not None and label is not None else -100
        items.append({"input_ids": [np.asarray(s, dtype=np.int64) for s in transform.sequences(task, example)],
                      "labels": target})
    return items


class GPTTaskCollator:
    """Items -> ``input_ids`` / ``attention_mask`` (B, K, T) right-padded, ``choice_mask`` (B, K)
    (examples with fewer answers than the batch's most), and ``labels`` (B,)."""

    def __init__(self, pad_id: int = 0, with_labels: bool = True):
        self.pad_id, self.with_labels = pad_id, with_labels

    def __call__(self, items, rng=None) -> dict:
        choices = max(len(item["input_ids"]) for item in items)
        width = max(len(seq) for item in items for seq in item["input_ids"])
        ids = np.full((len(items), choices, width), self.pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        choice_mask = np.zeros((len(items), choices), dtype=bool)
        for row, item in enumerate(items):
            for k, sequence in enumerate(item["input_ids"]):
                ids[row, k, :len(sequence)] = sequence
                mask[row, k, :len(sequence)] = 1
                choice_mask[row, k] = True
        batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if not choice_mask.all():
            batch["choice_mask"] = torch.from_numpy(choice_mask)
        if self.with_labels:
            batch["labels"] = torch.tensor([item["labels"] for item in items], dtype=torch.long)
        return batch


# --------------------------------------------------------------------------- the model

class GPTForTask(_TaskHead):
    """A GPT encoder + the task's linear layer W_y + the auxiliary LM loss (see the module docstring).

    ``forward(input_ids (B, K, T), attention_mask (B, K, T), labels (B,), choice_mask (B, K))``
    with K = 1 (classification, entailment), 2 (similarity) or the number of answers.
    loss = CE(task) + ``lm_weight`` * LM loss over every sequence's tokens after the start token.
    """

    task = "gpt"

    def __init__(self, encoder: nn.Module, gpt_task: str, num_labels: int | None = None,
                 labels: list[str] | None = None, lm_weight: float = LM_WEIGHT, dropout: float | None = None):
        super().__init__(encoder, dropout)
        if gpt_task not in GPT_TASKS:
            raise Word2BertError(f"unknown GPT task {gpt_task!r}; choose one of {', '.join(GPT_TASKS)}")
        if gpt_task != "multiple-choice" and (num_labels is None or num_labels < 2):
            raise Word2BertError(f"the {gpt_task} task needs at least two labels")
        if not lm_weight >= 0:
            raise Word2BertError(f"lm_weight={lm_weight!r} must be >= 0")
        self.gpt_task = gpt_task
        self.labels = list(labels) if labels is not None else None
        self.lm_weight = float(lm_weight)
        self.classifier = self.new_linear(1 if gpt_task == "multiple-choice" else num_labels)
        self.language_model = CausalLanguageModeling()  # tied to the encoder's (resized) embeddings

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def task_config(self) -> dict:
        return {"task": self.task, "gpt_task": self.gpt_task, "labels": self.labels, "lm_weight": self.lm_weight,
                "num_labels": self.classifier.out_features}

    def forward(self, input_ids, attention_mask=None, labels=None, choice_mask=None, token_type_ids=None) -> TaskOutput:
        if input_ids.dim() == 2:  # one sequence per example
            input_ids = input_ids[:, None]
            attention_mask = None if attention_mask is None else attention_mask[:, None]
        batch, choices, length = input_ids.shape
        flat_ids = input_ids.reshape(batch * choices, length)
        flat_mask = None if attention_mask is None else attention_mask.reshape(batch * choices, length)
        hidden = self.encoder(flat_ids, flat_mask).last_hidden_state
        extract = last_token(hidden, flat_mask).view(batch, choices, -1)  # h^m_l at each extract token
        if self.gpt_task == "similarity":
            logits = self.classifier(self.dropout(extract.sum(1)))
        elif self.gpt_task == "multiple-choice":
            logits = self.classifier(self.dropout(extract)).squeeze(-1)  # (B, K): softmax over the answers
            if choice_mask is not None:
                logits = logits.masked_fill(~choice_mask.bool(), float("-inf"))
        else:
            if choices != 1:
                raise Word2BertError(f"the {self.gpt_task} task reads one sequence per example, got {choices}")
            logits = self.classifier(self.dropout(extract[:, 0]))
        output = TaskOutput(logits=logits)
        if labels is None:
            return output
        task_loss = F.cross_entropy(logits.float(), labels.long(), ignore_index=-100)
        output.stats = classification_stats(logits, labels)
        output.loss = task_loss
        if self.lm_weight > 0:
            language = self.language_model(hidden, {"input_ids": flat_ids, "attention_mask": flat_mask}, self)
            output.loss = task_loss + self.lm_weight * language.loss
            output.stats.update({f"lm_{key}": value for key, value in language.stats.items()})
        return output


def load_gpt_finetuned(directory) -> GPTForTask:
    """A model saved by :meth:`GPTForTask.save_pretrained` (encoder + head.safetensors + task.json)."""
    from safetensors.torch import load_file

    from word2bert.models.auto import encoder_from_pretrained

    directory = Path(directory)
    path = directory / "task.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Word2BertError(f"cannot read {path}: {error}") from None
    if config.get("task") != GPTForTask.task:
        raise Word2BertError(f"{path}: not a GPT fine-tuned model (task {config.get('task')!r})")
    encoder = encoder_from_pretrained(directory)
    model = GPTForTask(encoder, config["gpt_task"], num_labels=config.get("num_labels"), labels=config.get("labels"),
                       lm_weight=config.get("lm_weight", LM_WEIGHT))
    head = load_file(str(directory / "head.safetensors"))
    model.load_state_dict({**{f"encoder.{k}": v for k, v in encoder.state_dict().items()}, **head})
    return model


# --------------------------------------------------------------------------- data and the run

def read_multiple_choice(path) -> list[dict]:
    """JSONL ``{"context": "...", "choices": ["...", ...], "label": k}`` (k: index of the right answer)."""
    from word2bert.fileio import open_text

    path = Path(path)
    if not path.is_file():
        raise Word2BertError(f"file not found: {path}")
    examples = []
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise Word2BertError(f"{path}, line {number}: not JSON ({error})") from None
            if not isinstance(record, dict) or not isinstance(record.get("context"), str) \
                    or not isinstance(record.get("choices"), list) or len(record["choices"]) < 2 \
                    or not all(isinstance(c, str) for c in record["choices"]):
                raise Word2BertError(f"{path}, line {number}: expected {{\"context\": text, \"choices\": [two or more "
                                     "texts], \"label\": index}")
            label = record.get("label")
            if label is not None and (isinstance(label, bool) or not isinstance(label, int)
                                      or not 0 <= label < len(record["choices"])):
                raise Word2BertError(f"{path}, line {number}: label {label!r} is not an index into its "
                                     f"{len(record['choices'])} choices")
            examples.append({"context": record["context"], "choices": record["choices"], "label": label})
    if not examples:
        raise Word2BertError(f"{path}: no examples")
    return examples


def read_gpt_task_file(task: str, path) -> list[dict]:
    from word2bert.tasks.data import read_task_file

    if task == "multiple-choice":
        return read_multiple_choice(path)
    return read_task_file("classification" if task == "classification" else "pair", path)


@torch.no_grad()
def evaluate_gpt(model: GPTForTask, items: list[dict], pad_id: int = 0, batch_size: int = 32) -> dict:
    """Accuracy of the argmax over labels (or answers)."""
    was_training = model.training
    model.eval()
    collate = GPTTaskCollator(pad_id, with_labels=False)
    correct = total = 0
    for begin in range(0, len(items), batch_size):
        chunk = items[begin:begin + batch_size]
        predicted = model(**collate(chunk)).logits.argmax(-1).numpy()
        gold = np.array([item["labels"] for item in chunk])
        keep = gold != -100
        correct += int((predicted[keep] == gold[keep]).sum())
        total += int(keep.sum())
    model.train(was_training)
    if total == 0:
        raise Word2BertError("nothing to evaluate (no labelled examples)")
    return {"accuracy": correct / total, "examples": total}


@dataclass
class GPTFinetuneResult:
    model: GPTForTask
    tokenizer: object
    metrics: dict
    train_seconds: float
    eval_seconds: float


def finetune_gpt(model_dir, train_path, dev_path=None, task: str = "classification", epochs: float = 3.0,
                 batch_size: int = 32, learning_rate: float = 6.25e-5, max_length: int | None = None, warmup: float = 0.002,
                 weight_decay: float = 0.01, lm_weight: float = LM_WEIGHT, dropout: float | None = None,
                 seed: int = 0, max_steps: int | None = None, max_train_examples: int | None = None,
                 max_dev_examples: int | None = None, progress: bool | None = None,
                 num_threads: int | None = None) -> GPTFinetuneResult:
    """Fine-tune the GPT in ``model_dir`` on ``train_path`` with the paper's input transformations and
    auxiliary LM loss. The defaults are the paper's (lr 6.25e-5, batch 32 there, 3 epochs, linear
    decay with 0.2% warm-up, lambda 0.5)."""
    from word2bert.models.auto import encoder_from_pretrained
    from word2bert.tasks.data import label_list
    from word2bert.tasks.finetune import load_tokenizer
    from word2bert.train.trainer import Trainer, TrainingArguments

    if num_threads:
        torch.set_num_threads(int(num_threads))
    if task not in GPT_TASKS:
        raise Word2BertError(f"unknown GPT task {task!r}; choose one of {', '.join(GPT_TASKS)}")
    tokenizer = load_tokenizer(model_dir)
    if not hasattr(tokenizer, "add_special_tokens"):
        raise Word2BertError(f"{model_dir}: GPT fine-tuning needs a byte-level BPE tokenizer (vocab.json + merges.txt)")
    encoder = encoder_from_pretrained(model_dir)
    if not hasattr(encoder, "resize_token_embeddings") or getattr(encoder.config, "model_type", "") not in (
            "gpt2", "openai-gpt"):
        raise Word2BertError(f"{model_dir} holds a {type(encoder).__name__}; --model gpt fine-tunes GPT-1 / GPT-2")
    if max_length is None:  # 128, or the model's positions if it has fewer
        max_length = min(128, encoder.config.n_positions)
    if max_length > encoder.config.n_positions:
        raise Word2BertError(f"max_length={max_length} exceeds the model's {encoder.config.n_positions} positions")
    examples = read_gpt_task_file(task, train_path)
    if max_train_examples:
        keep = np.sort(np.random.default_rng(seed).permutation(len(examples))[:max_train_examples])
        examples = [examples[i] for i in keep]
    labels = None if task == "multiple-choice" else label_list(examples)
    transform = InputTransform(tokenizer, max_length)
    encoder.resize_token_embeddings(max(encoder.config.vocab_size, tokenizer.vocab_size))
    torch.manual_seed(seed)
    model = GPTForTask(encoder, task, num_labels=None if labels is None else len(labels), labels=labels,
                       lm_weight=lm_weight, dropout=dropout)
    items = encode_gpt_examples(task, examples, transform, labels)
    args = TrainingArguments(output_dir=None, batch_size=batch_size, epochs=epochs, max_steps=max_steps,
                             learning_rate=learning_rate, weight_decay=weight_decay, warmup_steps=warmup,
                             seed=seed, progress=progress)
    trainer = Trainer(model, args, items, GPTTaskCollator(tokenizer.pad_id))
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    metrics, eval_seconds = {}, 0.0
    if dev_path is not None:
        dev = read_gpt_task_file(task, dev_path)
        if max_dev_examples and max_dev_examples < len(dev):
            keep = np.sort(np.random.default_rng(seed + 1).permutation(len(dev))[:max_dev_examples])
            dev = [dev[i] for i in keep]
        started = time.perf_counter()
        metrics = evaluate_gpt(model, encode_gpt_examples(task, dev, transform, labels), tokenizer.pad_id)
        eval_seconds = time.perf_counter() - started
    history = trainer.state.history[-50:]
    metrics["train_loss"] = float(np.mean([h["loss"] for h in history])) if history else float("nan")
    metrics["train_steps"] = trainer.state.global_step
    return GPTFinetuneResult(model, tokenizer, metrics, train_seconds, eval_seconds)


__all__ = ["DELIMITER", "EXTRACT", "GPTForTask", "GPTTaskCollator", "GPT_TASKS", "InputTransform", "LM_WEIGHT",
           "START", "encode_gpt_examples", "evaluate_gpt", "finetune_gpt", "load_gpt_finetuned",
           "read_multiple_choice"]
