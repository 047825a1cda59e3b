"""Fine-tune a pre-trained encoder on a labelled file with the shared :class:`~word2bert.train.Trainer`.

Evaluation: classification/pair -> accuracy, which is precision at 1 (P@1) for single-label data
such as fastText's; tagging -> accuracy over the first word piece of every word; qa -> exact
match of the predicted span (best ``start <= end`` within ``max_answer_length`` tokens of the
context by ``start_logit + end_logit``) and start/end accuracy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from word2bert.errors import Word2BertError
from word2bert.tasks.data import (IGNORE_INDEX, TaskCollator, encode_classification, encode_qa, encode_tagging,
                                  label_list, read_task_file)
from word2bert.tasks.heads import build_head
from word2bert.train.samplers import LengthGroupedSampler
from word2bert.train.trainer import Trainer, TrainingArguments


@dataclass
class FinetuneResult:
    model: torch.nn.Module
    metrics: dict
    train_seconds: float
    eval_seconds: float


def encode_examples(task: str, examples, tokenizer, labels, max_length: int) -> list[dict]:
    if task in ("classification", "pair"):
        return encode_classification(examples, tokenizer, labels, max_length)
    if task == "tagging":
        return encode_tagging(examples, tokenizer, labels, max_length)
    return encode_qa(examples, tokenizer, max_length)


def load_tokenizer(model_dir):
    """The tokenizer saved beside a model: WordPiece (``vocab.txt``) or byte-level BPE."""
    model_dir = Path(model_dir)
    if (model_dir / "vocab.txt").is_file():
        from word2bert.corpus.wordpiece import WordPieceTokenizer
        return WordPieceTokenizer.from_pretrained(model_dir)
    try:
        from word2bert.tokenizers.auto import tokenizer_from_pretrained
    except ImportError:
        raise Word2BertError(f"no tokenizer files (vocab.txt) in {model_dir}") from None
    return tokenizer_from_pretrained(model_dir)


@torch.no_grad()
def evaluate_task(model, items: list[dict], task: str, batch_size: int = 64, pad_id: int = 0,
                  max_answer_length: int = 30, bf16: bool = False) -> dict:
    """Accuracy (= P@1 for single-label classification), tag accuracy, or QA exact match."""
    was_training = model.training
    model.eval()
    collate = TaskCollator(pad_id, with_labels=False)
    correct = total = start_correct = end_correct = 0
    for begin in range(0, len(items), batch_size):
        chunk = items[begin:begin + batch_size]
        batch = collate(chunk)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            output = model(**batch)
        if task in ("classification", "pair"):
            predicted = output.logits.float().argmax(-1).numpy()
            gold = np.array([item["labels"] for item in chunk])
            correct += int((predicted == gold).sum())
            total += len(chunk)
        elif task == "tagging":
            predicted = output.logits.float().argmax(-1).numpy()
            for row, item in enumerate(chunk):
                keep = item["labels"] != IGNORE_INDEX
                correct += int((predicted[row, :len(item["labels"])][keep] == item["labels"][keep]).sum())
                total += int(keep.sum())
        else:
            start_logits, end_logits = output.start_logits.float().numpy(), output.end_logits.float().numpy()
            for row, item in enumerate(chunk):
                length = len(item["input_ids"])
                allowed = np.zeros(start_logits.shape[1], dtype=bool)
                allowed[:length] = item["context_mask"]
                scores = start_logits[row][:, None] + end_logits[row][None, :]
                span = np.triu(np.ones_like(scores, dtype=bool)) & ~np.triu(np.ones_like(scores, dtype=bool),
                                                                         k=max_answer_length)
                scores = np.where(span & allowed[:, None] & allowed[None, :], scores, -np.inf)
                start, end = np.unravel_index(int(np.argmax(scores)), scores.shape)
                correct += int(start == item["start_positions"] and end == item["end_positions"])
                start_correct += int(start == item["start_positions"])
                end_correct += int(end == item["end_positions"])
                total += 1
    if was_training:
        model.train()
    if total == 0:
        raise Word2BertError("nothing to evaluate")
    if task == "qa":
        return {"exact_match": correct / total, "start_accuracy": start_correct / total,
                "end_accuracy": end_correct / total, "examples": total}
    return {"accuracy": correct / total, "examples": total}


#: Tokens per example when ``max_length`` is not given (fewer if the model has fewer positions).
DEFAULT_MAX_LENGTH = 128


def finetune(model_dir, train_path, dev_path=None, task: str = "classification", output_dir=None,
             epochs: float = 1.0, batch_size: int = 32, learning_rate: float = 5e-5, max_length: int | None = None,
             warmup: float = 0.1, weight_decay: float = 0.01, pooling: str = "pooler", seed: int = 0,
             max_train_examples: int | None = None, max_dev_examples: int | None = None,
             dropout: float | None = None, progress: bool | None = None, num_threads: int | None = None,
             max_steps: int | None = None, bf16: bool = False, group_by_length: bool = True,
             callbacks=None) -> FinetuneResult:
    """Fine-tune the encoder in ``model_dir`` (Hugging Face layout + its tokenizer files) on ``train_path``.

    Any registered encoder works (its config.json's ``model_type`` picks it). ``group_by_length``
    forms batches of similar length (:class:`~word2bert.train.samplers.LengthGroupedSampler`, as
    Hugging Face's ``group_by_length``) so that little time goes to padding. ``max_length`` (default
    :data:`DEFAULT_MAX_LENGTH`, or the model's positions if fewer) truncates the inputs; more than the
    model's positions is refused. Returns the model, the
    dev metrics (when ``dev_path`` is given) and the wall times; with ``output_dir`` the fine-tuned
    model and its tokenizer are saved there.
    """
    from word2bert.models.auto import encoder_from_pretrained

    if num_threads:
        torch.set_num_threads(int(num_threads))
    model_dir = Path(model_dir)
    tokenizer = load_tokenizer(model_dir)
    train_examples = read_task_file(task, train_path)
    if max_train_examples:
        order = np.random.default_rng(seed).permutation(len(train_examples))[:max_train_examples]
        train_examples = [train_examples[i] for i in np.sort(order)]
    labels = None
    if task in ("classification", "pair"):
        labels = label_list(train_examples)
    elif task == "tagging":
        labels = label_list(train_examples, "tags")
    encoder = encoder_from_pretrained(model_dir)
    positions = getattr(encoder.config, "max_position_embeddings", None)
    if max_length is None:
        max_length = min(DEFAULT_MAX_LENGTH, positions or DEFAULT_MAX_LENGTH)
    elif positions and max_length > positions:
        raise Word2BertError(f"max_length={max_length} is longer than the {positions} positions of the model in "
                             f"{model_dir} (config.json max_position_embeddings): give --max-length <= {positions}")
    train_items = encode_examples(task, train_examples, tokenizer, labels, max_length)
    model = build_head(task, encoder, labels=labels, pooling=pooling, dropout=dropout)
    args = TrainingArguments(output_dir=None, batch_size=batch_size, epochs=epochs, max_steps=max_steps,
                             learning_rate=learning_rate, weight_decay=weight_decay, warmup_steps=warmup,
                             seed=seed, progress=progress, bf16=bf16)
    sampler = None
    if group_by_length:
        sampler = LengthGroupedSampler([len(item["input_ids"]) for item in train_items], batch_size, seed)
    trainer = Trainer(model, args, train_items, TaskCollator(tokenizer.pad_id), callbacks=callbacks,
                      sampler=sampler)
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    metrics, eval_seconds = {}, 0.0
    if dev_path is not None:
        dev_examples = read_task_file(task, dev_path)
        if max_dev_examples and max_dev_examples < len(dev_examples):  # a seeded random subset
            keep = np.sort(np.random.default_rng(seed + 1).permutation(len(dev_examples))[:max_dev_examples])
            dev_examples = [dev_examples[i] for i in keep]
        dev_items = encode_examples(task, dev_examples, tokenizer, labels, max_length)
        started = time.perf_counter()
        metrics = evaluate_task(model, dev_items, task, pad_id=tokenizer.pad_id, bf16=bf16)
        eval_seconds = time.perf_counter() - started
    metrics["train_loss"] = float(np.mean([h["loss"] for h in trainer.state.history[-50:]]))
    metrics["train_steps"] = trainer.state.global_step
    if output_dir is not None:
        model.save_pretrained(output_dir)
        tokenizer.save(output_dir)
    return FinetuneResult(model, metrics, train_seconds, eval_seconds)
