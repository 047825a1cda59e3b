"""One trainer for every network + objective: ``model(**batch)`` returns an output with ``.loss``.

* AdamW with decoupled weight decay on matrices only (biases and LayerNorm gains, the 1-D
  parameters, are not decayed, as in BERT's ``AdamWeightDecayOptimizer``), BERT's linear
  warm-up then linear decay, gradient clipping by global norm, gradient accumulation, optional
  bf16 autocast.
* Data order is a function of (seed, epoch): a permutation of the instances per epoch; the
  collator's random stream (dynamic masking) is seeded by (seed, epoch, micro-batch, rank).
  So the position in the data is two integers, and a checkpoint (written atomically, also on
  Ctrl-C) holding them plus the model/optimizer/scheduler and the Python/NumPy/torch RNG
  states resumes the run exactly.
* Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) it joins the process group (gloo on
  CPU, nccl on GPU), wraps the model in ``DistributedDataParallel`` and gives rank ``r`` the
  items ``r, r + W, r + 2W, ...`` of each global batch of ``W * batch_size`` items: the same
  examples per step as one process with the combined batch. Only rank 0 writes files and
  shows progress.
* Held-out evaluation: mean loss, and when the output has ``mlm_logits`` the masked-LM accuracy
  and perplexity ``exp(sum NLL / number of masked tokens)``; ``nsp_logits`` give NSP accuracy;
  ``logits`` with a ``labels`` batch key give accuracy.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from word2bert.errors import Word2BertError
from word2bert.progress import progress_bar
from word2bert.train.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states
from word2bert.train.schedules import make_scheduler

IGNORE_INDEX = -100


@dataclass
class TrainingArguments:
    """Hyper-parameters of a run (names follow Hugging Face's ``TrainingArguments``)."""

    output_dir: str | None = None
    batch_size: int = 32                  # per process, per micro-batch
    epochs: float = 1.0
    max_steps: int | None = None          # optimizer steps; overrides epochs
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6
    warmup_steps: float = 0.1             # < 1: a fraction of the total steps
    schedule: str = "linear"
    max_grad_norm: float = 1.0            # 0 disables clipping
    gradient_accumulation_steps: int = 1
    bf16: bool = False
    seed: int = 0
    shuffle: bool = True
    save_steps: int = 0                   # 0: only at the end and on interrupt
    eval_steps: int = 0                   # 0: only at the end (when eval data is given)
    eval_batch_size: int | None = None
    logging_steps: int = 10
    progress: bool | None = None          # None: when stderr is a terminal
    device: str = "cpu"
    num_threads: int | None = None
    find_unused_parameters: bool = False   # True for models with parameters outside the loss (no accumulation then)

    def validate(self) -> None:
        for name in ("batch_size", "gradient_accumulation_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise Word2BertError(f"parameter {name}={getattr(self, name)} must be >= 1")
        if self.max_steps is None and not self.epochs > 0:
            raise Word2BertError(f"parameter epochs={self.epochs} must be > 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise Word2BertError(f"parameter max_steps={self.max_steps} must be >= 1")
        if not self.learning_rate > 0:
            raise Word2BertError(f"parameter learning_rate={self.learning_rate} must be > 0")
        if self.warmup_steps < 0:
            raise Word2BertError(f"parameter warmup_steps={self.warmup_steps} must be >= 0")


@dataclass
class TrainState:
    global_step: int = 0        # optimizer steps taken
    epoch: int = 0
    micro_batch: int = 0        # position in the epoch, in micro-batches
    total_steps: int = 0
    tokens_seen: int = 0
    history: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)
    elapsed: float = 0.0


def distributed_context(device: str = "cpu") -> tuple[int, int]:
    """Join the process group when launched by torchrun; return ``(rank, world_size)``."""
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if str(device).startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay ``theta <- theta - lr * wd * theta`` on matrices, none on 1-D parameters."""
    decay, no_decay = [], []
    for _name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _to_device(batch: dict, device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


class Trainer:
    """Train ``model`` on a map-style ``train_data`` (``len`` and ``[i]``) batched by ``collate_fn``.

    ``collate_fn(items, rng)`` turns a list of items into a dict of tensors (the model's keyword
    arguments); ``rng`` is a ``numpy.random.Generator`` for random corruption (masking).
    ``callbacks`` are called as ``callback(trainer, state)`` after every optimizer step.
    """

    def __init__(self, model: torch.nn.Module, args: TrainingArguments, train_data, collate_fn: Callable,
                 eval_data=None, eval_collate_fn: Callable | None = None,
                 compute_metrics: Callable | None = None, callbacks: list[Callable] | None = None):
        args.validate()
        if train_data is None or len(train_data) == 0:
            raise Word2BertError("the training data is empty")
        if args.num_threads:
            torch.set_num_threads(int(args.num_threads))
        self.args = args
        self.device = torch.device(args.device)
        self.rank, self.world_size = distributed_context(args.device)
        self.model = model.to(self.device)
        self.train_data = train_data
        self.collate_fn = collate_fn
        self.eval_data = eval_data
        self.eval_collate_fn = eval_collate_fn or collate_fn
        self.compute_metrics = compute_metrics
        self.callbacks = list(callbacks or [])
        self.state = TrainState()
        global_batch = args.batch_size * self.world_size
        n = len(train_data)
        if self.world_size > 1:  # every rank must get a full micro-batch
            self.micro_batches_per_epoch = n // global_batch
        else:
            self.micro_batches_per_epoch = math.ceil(n / global_batch)
        if self.micro_batches_per_epoch == 0:
            raise Word2BertError(f"{n} training examples are fewer than one batch of {global_batch}")
        if args.max_steps is not None:
            self.state.total_steps = int(args.max_steps)
        else:
            self.state.total_steps = max(1, math.ceil(args.epochs * self.micro_batches_per_epoch
                                                      / args.gradient_accumulation_steps))
        warmup = args.warmup_steps
        self.warmup_steps = int(round(warmup * self.state.total_steps)) if warmup < 1 else int(warmup)
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, args.weight_decay), lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
        self.scheduler = make_scheduler(self.optimizer, args.schedule, self.warmup_steps, self.state.total_steps)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel
            self.wrapped = DistributedDataParallel(
                self.model, find_unused_parameters=args.find_unused_parameters)
        else:
            self.wrapped = self.model

    # ------------------------------------------------------------------ data order
    def epoch_order(self, epoch: int) -> np.ndarray:
        """The permutation of the training items for ``epoch`` (a function of seed and epoch only)."""
        n = len(self.train_data)
        if not self.args.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.args.seed, epoch]).permutation(n)

    def micro_batch_items(self, order: np.ndarray, micro_batch: int) -> np.ndarray:
        """Indices of this rank's share of global micro-batch ``micro_batch``."""
        size = self.args.batch_size * self.world_size
        global_indices = order[micro_batch * size:(micro_batch + 1) * size]
        return global_indices[self.rank::self.world_size]

    def _micro_batches(self):
        """Yield ``(epoch, micro_batch, batch)`` from the current position onwards, forever."""
        epoch, micro = self.state.epoch, self.state.micro_batch
        order = self.epoch_order(epoch)
        while True:
            if micro >= self.micro_batches_per_epoch:
                epoch, micro = epoch + 1, 0
                order = self.epoch_order(epoch)
            indices = self.micro_batch_items(order, micro)
            items = [self.train_data[int(i)] for i in indices]
            rng = np.random.default_rng([self.args.seed, epoch, micro, self.rank])
            yield epoch, micro, self.collate_fn(items, rng)
            micro += 1

    # ------------------------------------------------------------------ checkpoints
    def trainer_state(self) -> dict:
        state = asdict(self.state)
        state["args"] = asdict(self.args)
        state["world_size"] = self.world_size
        return state

    def save_checkpoint(self, path=None) -> Path | None:
        """Write the checkpoint (rank 0 only) to ``path`` or ``output_dir``."""
        path = path or self.args.output_dir
        if path is None or self.rank != 0:
            return None
        return save_checkpoint(path, self.model, self.optimizer, self.scheduler, self.trainer_state(),
                               rng=getattr(self, "_step_rng", None))

    def load_checkpoint(self, path) -> None:
        """Restore model, optimizer, scheduler, data position and RNG states from ``path``."""
        payload = load_checkpoint(path)
        try:
            self.model.load_state_dict(payload["model"])
        except RuntimeError as exc:
            raise Word2BertError(f"the checkpoint at {path} does not fit this model: {exc}") from None
        self.optimizer.load_state_dict(payload["optimizer"])
        if payload.get("scheduler") is not None:
            self.scheduler.load_state_dict(payload["scheduler"])
        saved = payload["trainer"]
        for key in ("global_step", "epoch", "micro_batch", "tokens_seen", "history", "evaluations"):
            setattr(self.state, key, saved[key])
        if saved.get("total_steps") and self.args.max_steps is None:
            self.state.total_steps = saved["total_steps"]
        set_rng_states(payload["rng"])

    # ------------------------------------------------------------------ training
    def _forward(self, model, batch):
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.args.bf16):
            return model(**batch)

    def train(self, resume_from=None) -> TrainState:
        """Run until ``total_steps`` optimizer steps; return the state (with loss history).

        ``resume_from``: a checkpoint file or directory to continue from. Ctrl-C (or any
        exception) writes a checkpoint at the last completed step before it propagates.
        """
        args = self.args
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        else:
            torch.manual_seed(args.seed)
        self.model.train()
        accumulation = args.gradient_accumulation_steps
        bar = progress_bar(total=self.state.total_steps, desc="train", unit="step",
                           disable=(not args.progress) if args.progress is not None else None)
        if self.rank != 0:
            bar.disable = True
        bar.update(self.state.global_step)
        batches = self._micro_batches()
        started, tokens_at_start = time.perf_counter(), self.state.tokens_seen
        # the position to save on interrupt: the last completed optimizer step
        saved_position = (self.state.epoch, self.state.micro_batch)
        self._step_rng = rng_states()
        try:
            while self.state.global_step < self.state.total_steps:
                step_loss, step_tokens = 0.0, 0
                self.optimizer.zero_grad(set_to_none=True)
                for k in range(accumulation):
                    epoch, micro, batch = next(batches)
                    batch = _to_device(batch, self.device)
                    sync = k == accumulation - 1 or self.world_size == 1
                    context = self.wrapped.no_sync() if not sync else _nullcontext()
                    with context:
                        output = self._forward(self.wrapped, batch)
                        loss = output.loss
                        if loss is None:
                            raise Word2BertError("the model returned no loss: the batch lacks labels")
                        (loss / accumulation).backward()
                    step_loss += float(loss.detach()) / accumulation
                    if "attention_mask" in batch:
                        step_tokens += int(batch["attention_mask"].sum())
                    elif "input_ids" in batch:
                        step_tokens += batch["input_ids"].numel()
                if args.max_grad_norm and args.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.state.global_step += 1
                self.state.tokens_seen += step_tokens * self.world_size
                self.state.epoch, self.state.micro_batch = epoch, micro + 1
                saved_position = (self.state.epoch, self.state.micro_batch)
                self._step_rng = rng_states()
                lr = self.scheduler.get_last_lr()[0]
                self.state.history.append({"step": self.state.global_step, "loss": step_loss, "lr": lr})
                bar.update(1)
                if self.state.global_step % args.logging_steps == 0 or self.state.global_step == 1:
                    elapsed = max(time.perf_counter() - started, 1e-9)
                    bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}",
                                    tok_s=f"{(self.state.tokens_seen - tokens_at_start) / elapsed:.0f}")
                if args.eval_steps and self.eval_data is not None and self.state.global_step % args.eval_steps == 0:
                    self._log_evaluation()
                if args.save_steps and self.state.global_step % args.save_steps == 0:
                    self.save_checkpoint()
                for callback in self.callbacks:
                    callback(self, self.state)
        except BaseException:
            # keep what was completed: the position of the last finished optimizer step
            self.state.epoch, self.state.micro_batch = saved_position
            if args.output_dir is not None:
                self.save_checkpoint()
            bar.close()
            raise
        bar.close()
        if self.eval_data is not None:
            self._log_evaluation()
        self._step_rng = rng_states()
        if args.output_dir is not None:
            self.save_checkpoint()
        self.state.elapsed = time.perf_counter() - started
        return self.state

    def _log_evaluation(self) -> None:
        if self.rank != 0:
            return
        metrics = self.evaluate()
        metrics["step"] = self.state.global_step
        self.state.evaluations.append(metrics)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, eval_data=None, collate_fn: Callable | None = None) -> dict:
        """Held-out metrics with a fixed random stream (the same masks every evaluation)."""
        data = eval_data if eval_data is not None else self.eval_data
        collate_fn = collate_fn or self.eval_collate_fn
        if data is None or len(data) == 0:
            raise Word2BertError("no evaluation data")
        was_training = self.model.training
        self.model.eval()
        batch_size = self.args.eval_batch_size or self.args.batch_size
        totals = {"loss": 0.0, "batches": 0, "mlm_nll": 0.0, "mlm_correct": 0, "mlm_count": 0,
                  "nsp_correct": 0, "nsp_count": 0, "correct": 0, "count": 0}
        collected = []
        cpu_state = torch.get_rng_state()
        for micro, start in enumerate(range(0, len(data), batch_size)):
            items = [data[i] for i in range(start, min(start + batch_size, len(data)))]
            batch = _to_device(collate_fn(items, np.random.default_rng([self.args.seed, 7919, micro])), self.device)
            output = self._forward(self.model, batch)
            if getattr(output, "loss", None) is not None:
                totals["loss"] += float(output.loss)
                totals["batches"] += 1
            mlm_logits = getattr(output, "mlm_logits", None)
            if mlm_logits is not None and "masked_labels" in batch:
                labels = batch["masked_labels"].reshape(-1)
                logits = mlm_logits.float().reshape(labels.numel(), -1)
                keep = labels != IGNORE_INDEX
                totals["mlm_nll"] += float(F.cross_entropy(logits[keep], labels[keep], reduction="sum"))
                totals["mlm_correct"] += int((logits[keep].argmax(-1) == labels[keep]).sum())
                totals["mlm_count"] += int(keep.sum())
            nsp_logits = getattr(output, "nsp_logits", None)
            if nsp_logits is not None and "next_sentence_label" in batch:
                totals["nsp_correct"] += int((nsp_logits.argmax(-1) == batch["next_sentence_label"]).sum())
                totals["nsp_count"] += len(batch["next_sentence_label"])
            logits = getattr(output, "logits", None)
            if logits is not None and "labels" in batch:
                labels = batch["labels"]
                keep = labels != IGNORE_INDEX
                totals["correct"] += int((logits.argmax(-1)[keep] == labels[keep]).sum())
                totals["count"] += int(keep.sum())
            if self.compute_metrics is not None:
                collected.append((output, batch))
        torch.set_rng_state(cpu_state)
        metrics = {}
        if totals["batches"]:
            metrics["loss"] = totals["loss"] / totals["batches"]
        if totals["mlm_count"]:
            metrics["mlm_accuracy"] = totals["mlm_correct"] / totals["mlm_count"]
            metrics["mlm_perplexity"] = math.exp(min(totals["mlm_nll"] / totals["mlm_count"], 50.0))
        if totals["nsp_count"]:
            metrics["nsp_accuracy"] = totals["nsp_correct"] / totals["nsp_count"]
        if totals["count"]:
            metrics["accuracy"] = totals["correct"] / totals["count"]
        if self.compute_metrics is not None:
            metrics.update(self.compute_metrics(collected))
        if was_training:
            self.model.train()
        return metrics


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
