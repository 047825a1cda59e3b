"""ULMFiT (Howard & Ruder 2018): a language model pre-trained on general text, fine-tuned on the
task's text, then turned into a classifier. Every stage runs on the shared Trainer.

1. **General-domain LM** (:func:`pretrain_language_model`, ``word2bert pretrain awd-lstm``): the
   AWD-LSTM recipe -- SGD (lr 30, gradient norm clipped at 0.25), back-propagation through time over
   windows of about 70 tokens (70 with probability 0.95 else 35, then N(., 5); the rate of a batch
   scaled by its length / 70), NT-ASGD (averaging starts when the validation loss has not improved on
   the best of all but the last ``nonmono`` = 5 checks).
2. **Target-task LM fine-tuning** (:func:`finetune_language_model`): the vocabulary becomes the task's
   (words the general model knows keep their rows; new ones start at the mean row), then
   discriminative rates (``lr / 2.6^(top - layer)``) and slanted triangular rates (cut_frac 0.1,
   ratio 32) with Adam (beta1 0.7, beta2 0.99).
3. **Classifier** (:class:`ULMFiTClassifier`, :func:`train_classifier`): concat pooling
   ``[h_T; maxpool(H); meanpool(H)]`` over the last layer, then two blocks BatchNorm -> dropout ->
   linear (ReLU between them, 50 units), discriminative and slanted triangular rates, and gradual
   unfreezing: the head trains alone for the first epoch, each later epoch unfreezes the next layer
   group down (LSTM layers, then the embeddings).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from word2bert.corpus.lm_corpus import (EOS, UNK, VOCAB_FILE, build_lm_vocabulary, check_lm_vocabulary, encode_lines,
                                        token_stream)
from word2bert.corpus.vocab import Vocabulary
from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save, atomic_write
from word2bert.models.awd_lstm import (AWDLSTMConfig, AWDLSTMForLanguageModeling, AWDLSTMModel,
                                       discriminative_groups, stream_perplexity)
from word2bert.objectives.base import classification_stats
from word2bert.train.samplers import ContiguousStreamSampler, LengthGroupedSampler, TokenStream, stack_collate
from word2bert.train.trainer import Trainer, TrainingArguments

IGNORE_INDEX = -100


# ------------------------------------------------------------------------------- training helpers
class WindowLengthLearningRate:
    """AWD-LSTM's per-batch rate: ``lr_batch = lr * length / bptt`` for a BPTT window of ``length``
    tokens, applied to the optimizer step after gradient clipping (an optimizer pre-step hook sets it,
    a post-step hook restores the scheduled rate)."""

    def __init__(self, model: nn.Module, bptt: int):
        self.model, self.bptt = model, bptt
        self._saved: list[float] | None = None

    def install(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.register_step_pre_hook(self._before)
        optimizer.register_step_post_hook(self._after)

    def scale(self) -> float:
        length = getattr(self.model, "last_window_length", 0) or self.bptt
        return length / self.bptt

    def _before(self, optimizer, args, kwargs):
        scale = self.scale()
        self._saved = [group["lr"] for group in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * scale

    def _after(self, optimizer, args, kwargs):
        if self._saved is not None:
            for group, lr in zip(optimizer.param_groups, self._saved):
                group["lr"] = lr
            self._saved = None


class NTASGD:
    """Non-monotonically triggered averaged SGD (Merity et al. 2018, algorithm 1), as a Trainer callback.

    Every ``check_every`` steps it evaluates the validation loss ``evaluate(model)``; once a loss is
    worse than the best of all checks but the last ``nonmono`` (and there were more than ``nonmono``),
    it averages the weights after every later step: ``avg_k = avg_{k-1} + (w_k - avg_{k-1}) / k``
    (averaged SGD with SGD's own steps: torch's ASGD with ``lambd = 0``, ``t0`` = the switch).
    :meth:`averaged_weights` swaps the average in (for evaluation and saving). The average is not
    part of the Trainer's checkpoint: a run resumed after the switch starts a new average.
    """

    def __init__(self, evaluate, check_every: int, nonmono: int = 5):
        if check_every < 1:
            raise Word2BertError(f"parameter check_every={check_every} must be >= 1")
        self.evaluate, self.check_every, self.nonmono = evaluate, int(check_every), int(nonmono)
        self.losses: list[float] = []
        self.switched_at: int | None = None
        self.average: list[torch.Tensor] | None = None
        self.averaged_steps = 0

    def __call__(self, trainer, state) -> None:
        parameters = list(trainer.model.parameters())
        if self.average is not None:
            self.averaged_steps += 1
            with torch.no_grad():
                for avg, p in zip(self.average, parameters):
                    avg.add_(p.detach() - avg, alpha=1.0 / self.averaged_steps)
        if state.global_step % self.check_every:
            return
        with self.averaged_weights(trainer.model):
            loss = float(self.evaluate(trainer.model))
        state.evaluations.append({"step": state.global_step, "nll": loss, "perplexity": math.exp(min(loss, 50.0)),
                                  "averaged": self.average is not None})
        if self.average is None and len(self.losses) > self.nonmono and loss > min(self.losses[:-self.nonmono]):
            self.switched_at = state.global_step
            self.average = [p.detach().clone() for p in parameters]   # replaced by the next step's weights
            self.averaged_steps = 0
        self.losses.append(loss)

    def averaged_weights(self, model: nn.Module):
        """A context manager with the averaged weights in ``model`` (no-op before the switch)."""
        callback = self

        class _Swap:
            def __enter__(self):
                self.saved = None
                if callback.average is not None:
                    self.saved = [p.detach().clone() for p in model.parameters()]
                    with torch.no_grad():
                        for p, avg in zip(model.parameters(), callback.average):
                            p.copy_(avg)
                return model

            def __exit__(self, *exc):
                if self.saved is not None:
                    with torch.no_grad():
                        for p, value in zip(model.parameters(), self.saved):
                            p.copy_(value)
                return False

        return _Swap()

    def finalize(self, model: nn.Module) -> None:
        """Leave the averaged weights in ``model`` (the model NT-ASGD returns)."""
        if self.average is not None:
            with torch.no_grad():
                for p, avg in zip(model.parameters(), self.average):
                    p.copy_(avg)


class GradualUnfreezing:
    """A Trainer callback: during epoch ``e`` (0-based) only the top ``e + 1`` of ``layer_groups``
    (bottom first) train; the others have ``requires_grad=False`` (they stay in the optimizer, so
    an unfrozen group is trained from then on). Call :meth:`apply` (0) before training starts."""

    def __init__(self, layer_groups: list[list[nn.Parameter]], steps_per_epoch: int):
        self.layer_groups, self.steps_per_epoch = layer_groups, max(1, int(steps_per_epoch))
        self.epoch = -1

    def trainable_groups(self, epoch: int) -> list[bool]:
        count = len(self.layer_groups)
        return [g >= count - 1 - epoch for g in range(count)]

    def apply(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        self.epoch = epoch
        for trainable, group in zip(self.trainable_groups(epoch), self.layer_groups):
            for parameter in group:
                parameter.requires_grad_(trainable)

    def __call__(self, trainer, state) -> None:
        self.apply(state.global_step // self.steps_per_epoch)


# ------------------------------------------------------------------------------- vocabularies
def save_vocab(vocab: Vocabulary, directory) -> None:
    vocab.save(Path(directory) / VOCAB_FILE)


def load_vocab(directory) -> Vocabulary:
    path = Path(directory) / VOCAB_FILE
    if not path.is_file():
        raise Word2BertError(f"{directory}: {VOCAB_FILE} is missing (not a word2bert AWD-LSTM directory)")
    vocab = Vocabulary.load(path)
    check_lm_vocabulary(vocab, str(path))
    return vocab


def transfer_vocabulary(model: AWDLSTMForLanguageModeling, old: Vocabulary,
                        new: Vocabulary) -> AWDLSTMForLanguageModeling:
    """A copy of ``model`` over vocabulary ``new``: a word of ``old`` keeps its embedding row and output
    bias, a new word gets the mean row and mean bias (fastai's ``match_embeds``)."""
    config = model.config.replace(vocab_size=len(new))
    result = AWDLSTMForLanguageModeling(config)
    state = {k: v for k, v in model.state_dict().items()}
    embeddings, bias = state.pop("awd_lstm.embeddings.weight"), state.pop("decoder_bias")
    decoder = state.pop("decoder_weight", None)
    known = np.array([old.index.get(word, -1) for word in new.words])
    rows = torch.as_tensor(np.maximum(known, 0))
    keep = torch.as_tensor(known >= 0)[:, None]

    def remap(table):
        return torch.where(keep if table.dim() == 2 else keep[:, 0], table[rows], table.mean(0))

    state["awd_lstm.embeddings.weight"] = remap(embeddings)
    state["decoder_bias"] = remap(bias)
    if decoder is not None:
        state["decoder_weight"] = remap(decoder)
    result.load_state_dict(state)
    return result


# ------------------------------------------------------------------------------- stage 1 and 2
@dataclass
class LanguageModelResult:
    model: AWDLSTMForLanguageModeling
    vocab: Vocabulary
    train_seconds: float
    history: list
    evaluations: list = field(default_factory=list)
    perplexities: dict = field(default_factory=dict)
    tokens_per_second: float = 0.0


def _language_model_run(model, vocab, train_path, valid_path, output_dir, *, batch_size, bptt, variable_bptt,
                        epochs, max_steps, learning_rate, optimizer, weight_decay, clip, schedule, warmup,
                        adam_betas, seed, progress, num_threads, save_steps, resume, nonmono, check_every,
                        eval_batch_size, extra_callbacks, save_model=True) -> LanguageModelResult:
    from word2bert.train.checkpoint import find_checkpoint

    started = time.perf_counter()
    output_dir = Path(output_dir) if output_dir is not None else None
    if resume and (output_dir is None or find_checkpoint(output_dir) is None):
        raise Word2BertError(f"resume: no checkpoint in {output_dir}")
    eos = vocab.index[EOS]
    train_stream = token_stream(encode_lines(train_path, vocab), eos)
    if len(train_stream) - 1 < batch_size * 2:
        raise Word2BertError(f"{train_path}: {len(train_stream)} tokens are too few for {batch_size} rows")
    if bptt >= (len(train_stream) - 1) // batch_size:
        raise Word2BertError(f"parameter bptt={bptt} is longer than the data: {train_path} gives rows of "
                             f"{(len(train_stream) - 1) // batch_size} tokens at batch size {batch_size}")
    valid_stream = token_stream(encode_lines(valid_path, vocab), eos) if valid_path is not None else None
    sampler = ContiguousStreamSampler(len(train_stream), batch_size, bptt, seed=seed, variable=variable_bptt)
    args = TrainingArguments(output_dir=str(output_dir) if output_dir is not None else None, batch_size=batch_size,
                             epochs=epochs, max_steps=max_steps, learning_rate=learning_rate, optimizer=optimizer,
                             weight_decay=weight_decay, warmup_steps=warmup, schedule=schedule, max_grad_norm=clip,
                             adam_beta1=adam_betas[0], adam_beta2=adam_betas[1], seed=seed, progress=progress,
                             num_threads=num_threads, logging_steps=20, save_steps=save_steps)
    callbacks = list(extra_callbacks or [])
    ntasgd = None
    if valid_stream is not None and nonmono is not None:
        evaluate = lambda m: math.log(stream_perplexity(m, valid_stream, eval_batch_size, bptt))  # noqa: E731
        ntasgd = NTASGD(evaluate, check_every or sampler.num_batches(), nonmono)
        callbacks.append(ntasgd)
    trainer = Trainer(model, args, TokenStream(train_stream), stack_collate, sampler=sampler, callbacks=callbacks)
    if variable_bptt:
        WindowLengthLearningRate(model, bptt).install(trainer.optimizer)
    if output_dir is not None and trainer.rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_vocab(vocab, output_dir)
    train_started = time.perf_counter()
    state = trainer.train(resume_from=output_dir if resume else None)
    train_seconds = time.perf_counter() - train_started
    if ntasgd is not None:
        ntasgd.finalize(model)
    perplexities = {}
    if valid_stream is not None:
        perplexities["valid"] = stream_perplexity(model, valid_stream, eval_batch_size, bptt)
    if output_dir is not None and trainer.rank == 0 and save_model:
        model.save_pretrained(output_dir)
    tokens = state.tokens_seen
    return LanguageModelResult(model, vocab, time.perf_counter() - started, state.history, state.evaluations,
                               perplexities, tokens / train_seconds if train_seconds > 0 else 0.0)


def pretrain_language_model(train_path, config: AWDLSTMConfig | None = None, valid_path=None, output_dir=None, *,
                            batch_size: int = 20, bptt: int = 70, variable_bptt: bool = True, epochs: float = 1.0,
                            max_steps: int | None = None, learning_rate: float = 30.0, weight_decay: float = 1.2e-6,
                            clip: float = 0.25, nonmono: int | None = 5, check_every: int | None = None,
                            eval_batch_size: int = 10, seed: int = 141, progress: bool | None = None,
                            num_threads: int | None = None, save_steps: int = 0, resume: bool = False,
                            vocab: Vocabulary | None = None, min_count: int = 1, max_vocab_size: int | None = None,
                            callbacks=None, save_model: bool = True) -> LanguageModelResult:
    """Stage 1: train an AWD-LSTM language model on a text file with the repository's recipe
    (defaults: its PTB command, ``--batch_size 20 --dropouti 0.4 --dropouth 0.25 --seed 141``).

    ``nonmono=None`` turns NT-ASGD off; checks happen once per epoch unless ``check_every`` (steps).
    ``save_model=False``: the model is not written to ``output_dir`` at the end (the caller saves
    ``result.model``); the vocabulary and checkpoints still are.
    """
    output_dir = Path(output_dir) if output_dir is not None else None
    if resume and output_dir is not None and (output_dir / VOCAB_FILE).is_file():
        vocab = load_vocab(output_dir)
    elif vocab is None:
        vocab = build_lm_vocabulary(train_path, min_count=min_count, max_vocab_size=max_vocab_size)
    check_lm_vocabulary(vocab)
    config = (config or AWDLSTMConfig()).replace(vocab_size=len(vocab))
    torch.manual_seed(seed)
    model = AWDLSTMForLanguageModeling(config)
    return _language_model_run(model, vocab, train_path, valid_path, output_dir, batch_size=batch_size, bptt=bptt,
                               variable_bptt=variable_bptt, epochs=epochs, max_steps=max_steps,
                               learning_rate=learning_rate, optimizer="sgd", weight_decay=weight_decay, clip=clip,
                               schedule="constant", warmup=0, adam_betas=(0.9, 0.999), seed=seed, progress=progress,
                               num_threads=num_threads, save_steps=save_steps, resume=resume, nonmono=nonmono,
                               check_every=check_every, eval_batch_size=eval_batch_size, extra_callbacks=callbacks,
                               save_model=save_model)


def finetune_language_model(model_dir, train_path, valid_path=None, output_dir=None, *, epochs: float = 1.0,
                            max_steps: int | None = None, batch_size: int = 32, bptt: int = 70,
                            learning_rate: float = 4e-3, discriminative_factor: float = 2.6, cut_frac: float = 0.1,
                            weight_decay: float = 0.01, clip: float = 0.4, min_count: int = 2,
                            max_vocab_size: int | None = 60000, seed: int = 0, progress: bool | None = None,
                            num_threads: int | None = None, callbacks=None) -> LanguageModelResult:
    """Stage 2: fine-tune the language model in ``model_dir`` on the task's text (``train_path``, one
    text per line; fastText ``__label__`` prefixes are dropped) over the task's vocabulary, with
    discriminative rates and slanted triangular rates (Adam, beta1 0.7, beta2 0.99)."""
    general = AWDLSTMForLanguageModeling.from_pretrained(model_dir)
    old_vocab = load_vocab(model_dir)
    text_path = _text_only(train_path, output_dir)
    vocab = build_lm_vocabulary(text_path, min_count=min_count, max_vocab_size=max_vocab_size)
    model = transfer_vocabulary(general, old_vocab, vocab)
    model.discriminative_factor = discriminative_factor
    return _language_model_run(model, vocab, text_path, _text_only(valid_path, output_dir, "valid"), output_dir,
                               batch_size=batch_size, bptt=bptt, variable_bptt=True, epochs=epochs,
                               max_steps=max_steps, learning_rate=learning_rate, optimizer="adam",
                               weight_decay=weight_decay, clip=clip, schedule="slanted_triangular", warmup=cut_frac,
                               adam_betas=(0.7, 0.99), seed=seed, progress=progress, num_threads=num_threads,
                               save_steps=0, resume=False, nonmono=None, check_every=None, eval_batch_size=10,
                               extra_callbacks=callbacks)


def _text_only(path, output_dir=None, name="train"):
    """``path`` itself if it is plain text, else (a fastText ``__label__``, TSV or JSONL labelled file)
    a file of its texts, one a line, written in ``output_dir`` (default: beside ``path``)."""
    if path is None:
        return None
    from word2bert.fileio import open_text
    from word2bert.tasks.data import file_format, read_classification

    path = Path(path)
    if not path.is_file():
        raise Word2BertError(f"file not found: {path}")
    labelled = file_format(path) in ("tsv", "jsonl")
    if not labelled:
        with open_text(path) as handle:
            first = next((line for line in handle if line.strip()), "")
        labelled = first.lstrip().startswith("__label__")
    if not labelled:
        return path
    texts = [example["text"] for example in read_classification(path)]
    directory = Path(output_dir) if output_dir is not None else path.parent
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.texts.txt"
    with atomic_write(target, "w", encoding="utf-8") as handle:
        handle.writelines(" ".join(text.split()) + "\n" for text in texts)
    return target


# ------------------------------------------------------------------------------- stage 3
@dataclass
class ClassifierOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor
    stats: dict


def concat_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """``[h_last; max_t h_t; mean_t h_t]`` over each row's real tokens (right padding): (B, T, d) -> (B, 3d)."""
    if attention_mask is None:
        return torch.cat([hidden[:, -1], hidden.max(dim=1).values, hidden.mean(dim=1)], dim=-1)
    mask = attention_mask.bool()
    lengths = mask.sum(dim=1).clamp_min(1)
    last = hidden[torch.arange(hidden.size(0), device=hidden.device), lengths - 1]
    maximum = hidden.masked_fill(~mask[..., None], float("-inf")).max(dim=1).values
    mean = (hidden * mask[..., None]).sum(dim=1) / lengths[:, None]
    return torch.cat([last, maximum, mean], dim=-1)


class ULMFiTClassifier(nn.Module):
    """AWD-LSTM encoder -> concat pooling -> [BatchNorm, dropout, linear(50), ReLU] -> [BatchNorm,
    dropout, linear(labels)] (fastai's ``PoolingLinearClassifier``)."""

    def __init__(self, encoder: AWDLSTMModel, num_labels: int, hidden_units: int = 50,
                 dropouts: tuple[float, float] = (0.4, 0.1), discriminative_factor: float = 2.6):
        super().__init__()
        if num_labels < 2:
            raise Word2BertError(f"a classifier needs at least 2 labels, got {num_labels}")
        self.encoder = encoder
        width = 3 * encoder.config.hidden_size
        self.head = nn.Sequential(
            nn.BatchNorm1d(width), nn.Dropout(dropouts[0]), nn.Linear(width, hidden_units), nn.ReLU(),
            nn.BatchNorm1d(hidden_units), nn.Dropout(dropouts[1]), nn.Linear(hidden_units, num_labels))
        self.num_labels, self.hidden_units, self.dropouts = num_labels, hidden_units, tuple(dropouts)
        self.discriminative_factor = discriminative_factor

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Bottom up: embeddings, each LSTM layer, the head."""
        return ([[self.encoder.embeddings.weight]] + [list(layer.parameters()) for layer in self.encoder.layers]
                + [list(self.head.parameters())])

    def configure_optimizers(self, args) -> list[dict]:
        return discriminative_groups(self.layer_groups(), args.learning_rate, self.discriminative_factor,
                                     args.weight_decay)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, state=None) -> ClassifierOutput:
        hidden = self.encoder(input_ids, attention_mask).last_hidden_state
        logits = self.head(concat_pool(hidden, attention_mask))
        loss, stats = None, {}
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels)
            stats = classification_stats(logits, labels)
        return ClassifierOutput(loss, logits, stats)

    def save_pretrained(self, directory, vocab: Vocabulary, labels: list[str]) -> None:
        """The encoder (config.json + model.safetensors), ``head.safetensors``, ``task.json``, the vocabulary."""
        from safetensors.torch import save_file

        directory = Path(directory)
        self.encoder.save_pretrained(directory)
        head = {k: v.detach().contiguous().clone() for k, v in self.head.state_dict().items()}
        atomic_save(directory / "head.safetensors", lambda name: save_file(head, name))
        with atomic_write(directory / "task.json", "w", encoding="utf-8") as handle:
            json.dump({"task": "ulmfit_classification", "labels": list(labels), "hidden_units": self.hidden_units,
                       "dropouts": list(self.dropouts)}, handle, indent=2)
        save_vocab(vocab, directory)

    @classmethod
    def from_pretrained(cls, directory) -> tuple[ULMFiTClassifier, Vocabulary, list[str]]:
        from safetensors.torch import load_file

        directory = Path(directory)
        task_path = directory / "task.json"
        if not task_path.is_file():
            raise Word2BertError(f"{directory}: task.json is missing (not a ULMFiT classifier directory)")
        task = json.loads(task_path.read_text(encoding="utf-8"))
        model = cls(AWDLSTMModel.from_pretrained(directory), len(task["labels"]), task["hidden_units"],
                    tuple(task["dropouts"]))
        model.head.load_state_dict(load_file(str(directory / "head.safetensors")))
        return model, load_vocab(directory), task["labels"]


def encode_texts(texts: list[str], vocab: Vocabulary, max_length: int | None = None) -> list[np.ndarray]:
    """Whitespace words -> ids (unknown -> ``<unk>``), at most ``max_length`` (the last ones kept)."""
    unk, index = vocab.index[UNK], vocab.index
    encoded = []
    for text in texts:
        ids = [index.get(word, unk) for word in text.split()] or [vocab.index[EOS]]
        if max_length is not None and len(ids) > max_length:
            ids = ids[-max_length:]
        encoded.append(np.asarray(ids, dtype=np.int64))
    return encoded


def collate_classification(items: list[dict], rng=None, pad_id: int = 0) -> dict:
    """Right-pad ``input_ids``; ``attention_mask`` marks real tokens; ``labels`` (B,)."""
    lengths = np.array([len(item["input_ids"]) for item in items])
    width = int(lengths.max())
    mask = np.arange(width)[None, :] < lengths[:, None]
    ids = np.full((len(items), width), pad_id, dtype=np.int64)
    ids[mask] = np.concatenate([item["input_ids"] for item in items])
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}
    if "labels" in items[0]:
        batch["labels"] = torch.tensor([item["labels"] for item in items], dtype=torch.long)
    return batch


@torch.no_grad()
def evaluate_classifier(model: ULMFiTClassifier, items: list[dict], batch_size: int = 128, pad_id: int = 0) -> dict:
    """Accuracy (P@1 for single-label data) over ``items``."""
    was_training = model.training
    model.eval()
    order = np.argsort([len(item["input_ids"]) for item in items], kind="stable")
    correct = 0
    for start in range(0, len(items), batch_size):
        chunk = [items[i] for i in order[start:start + batch_size]]
        batch = collate_classification(chunk, pad_id=pad_id)
        logits = model(batch["input_ids"], batch["attention_mask"]).logits
        correct += int((logits.argmax(-1) == batch["labels"]).sum())
    model.train(was_training)
    return {"accuracy": correct / max(len(items), 1), "examples": len(items)}


@dataclass
class ClassifierResult:
    model: ULMFiTClassifier
    vocab: Vocabulary
    labels: list[str]
    metrics: dict
    train_seconds: float
    history: list


def train_classifier(train_path, dev_path=None, model_dir=None, output_dir=None, *, config: AWDLSTMConfig | None = None,
                     epochs: int | None = None, max_steps: int | None = None, batch_size: int = 64,
                     learning_rate: float = 1e-2, discriminative_factor: float = 2.6, cut_frac: float = 0.1,
                     gradual_unfreezing: bool = True, drop_mult: float = 0.5, weight_decay: float = 0.01,
                     clip: float = 0.4, max_length: int = 400, max_train_examples: int | None = None,
                     max_dev_examples: int | None = None, seed: int = 0, progress: bool | None = None,
                     num_threads: int | None = None, min_count: int = 2, callbacks=None) -> ClassifierResult:
    """Stage 3: the ULMFiT classifier on a labelled file (fastText ``__label__``, TSV or JSONL).

    ``model_dir``: a (fine-tuned) AWD-LSTM language model directory whose encoder and vocabulary the
    classifier starts from; None trains the same classifier from random weights over the training
    file's vocabulary (``config`` gives its sizes). The encoder's dropouts are the paper's classifier
    values (input 0.4, hidden 0.3, embedding 0.05, weights 0.5) times ``drop_mult`` (fastai's 0.5).
    ``epochs`` defaults to one per layer group with gradual unfreezing (so the last epoch trains
    everything), else 1.
    """
    from word2bert.tasks.data import label_list, read_classification

    started = time.perf_counter()
    examples = read_classification(train_path)
    if max_train_examples:
        keep = np.sort(np.random.default_rng(seed).permutation(len(examples))[:max_train_examples])
        examples = [examples[i] for i in keep]
    labels = label_list(examples)
    overrides = {"input_dropout": 0.4 * drop_mult, "hidden_dropout": 0.3 * drop_mult,
                 "embedding_dropout": 0.05 * drop_mult, "weight_dropout": 0.5 * drop_mult}
    torch.manual_seed(seed)
    if model_dir is not None:
        vocab = load_vocab(model_dir)
        encoder = AWDLSTMModel.from_pretrained(model_dir, **overrides)
    else:
        text_path = _text_only(train_path, output_dir or Path(train_path).parent / "ulmfit-texts")
        vocab = build_lm_vocabulary(text_path, min_count=min_count)
        encoder = AWDLSTMModel((config or AWDLSTMConfig()).replace(vocab_size=len(vocab), **overrides))
    model = ULMFiTClassifier(encoder, len(labels), dropouts=(0.4 * drop_mult, 0.1 * drop_mult),
                             discriminative_factor=discriminative_factor)
    index = {label: i for i, label in enumerate(labels)}
    items = [{"input_ids": ids, "labels": index[e["label"]]}
             for ids, e in zip(encode_texts([e["text"] for e in examples], vocab, max_length), examples)]
    groups = model.layer_groups()
    if epochs is None:
        epochs = len(groups) if gradual_unfreezing else 1
    sampler = LengthGroupedSampler([len(item["input_ids"]) for item in items], batch_size, seed=seed)
    args = TrainingArguments(batch_size=batch_size, epochs=epochs, max_steps=max_steps, learning_rate=learning_rate,
                             optimizer="adam", adam_beta1=0.7, adam_beta2=0.99, weight_decay=weight_decay,
                             schedule="slanted_triangular", warmup_steps=cut_frac, max_grad_norm=clip, seed=seed,
                             progress=progress, num_threads=num_threads, logging_steps=20)
    pad = vocab.index[EOS]
    callback_list = list(callbacks or [])
    unfreezing = GradualUnfreezing(groups, sampler.num_batches()) if gradual_unfreezing else None
    if unfreezing is not None:
        unfreezing.apply(0)
        callback_list.insert(0, unfreezing)
    trainer = Trainer(model, args, items, lambda batch, rng=None: collate_classification(batch, rng, pad),
                      sampler=sampler, callbacks=callback_list)
    trainer.train()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    train_seconds = time.perf_counter() - started
    metrics = {}
    if dev_path is not None:
        dev = read_classification(dev_path)
        if max_dev_examples and max_dev_examples < len(dev):
            keep = np.sort(np.random.default_rng(seed + 1).permutation(len(dev))[:max_dev_examples])
            dev = [dev[i] for i in keep]
        dev_items = [{"input_ids": ids, "labels": index.get(e["label"], -1)}
                     for ids, e in zip(encode_texts([e["text"] for e in dev], vocab, max_length), dev)]
        metrics = evaluate_classifier(model, dev_items, pad_id=pad)
    if output_dir is not None:
        model.save_pretrained(output_dir, vocab, labels)
    return ClassifierResult(model, vocab, labels, metrics, train_seconds, trainer.state.history)
