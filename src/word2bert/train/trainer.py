"""One trainer for every network + objective; it knows nothing about any particular model.

What it knows (the contract in ``../shared/DESIGN.md``):

* ``model(**batch)`` returns an output with ``.loss``; optionally ``.stats``, a dict of summable
  pairs ``{name: (numerator, count)}`` (held-out metrics are ``sum numerator / sum count``, and for
  a name ending in ``nll`` also ``exp`` of it, named ``...perplexity``), and ``.state``, which a
  recurrent or memory model carries to its next batch (the trainer detaches it and passes it back
  as ``state=`` when the sampler is ``stateful``, and drops it at each epoch's start).
* ``model.configure_optimizers(args)`` may return the optimizer's parameter groups (e.g. ULMFiT's
  discriminative rates); by default AdamW-style groups decay matrices only (biases and LayerNorm
  gains, the 1-D parameters, are not decayed, as in BERT's ``AdamWeightDecayOptimizer``). Every
  parameter is in the optimizer, trainable or not, so parameters unfrozen later are trained
  (gradual unfreezing; under DDP the model is re-wrapped when the trainable set changes).
  ``args.optimizer`` chooses AdamW, Adam, SGD or averaged SGD (ASGD, from step ``asgd_start``).
* Data order comes from a sampler (:mod:`word2bert.train.samplers`): shuffled (default),
  length-grouped, or contiguous BPTT windows of a stream; a function of (seed, epoch), so the
  position in the data is two integers. The collator's random stream (dynamic masking) is seeded
  by (seed, epoch, micro-batch, rank). A checkpoint (written atomically, also on Ctrl-C) holding
  them, the carried state, the model/optimizer/scheduler and the Python/NumPy/torch RNG states
  resumes the run exactly.
* Modules marked with ``word2bert.nn.freeze`` (a distillation teacher) stay in eval mode and are
  left out of checkpoints.
* Schedules: BERT's linear warm-up then decay, or others from :mod:`word2bert.train.schedules`;
  gradient clipping by global norm, gradient accumulation, optional bf16 autocast.
* Under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the process group (gloo on CPU, nccl on GPU),
  wraps the model in ``DistributedDataParallel`` and gives each rank its share of every global
  batch. Only rank 0 writes files and shows progress.
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

from word2bert.errors import Word2BertError
from word2bert.nn.frozen import frozen_modules
from word2bert.progress import progress_bar
from word2bert.train.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states
from word2bert.train.samplers import Sampler, ShuffledSampler
from word2bert.train.schedules import make_scheduler

OPTIMIZERS = ("adamw", "adam", "sgd", "asgd")


@dataclass
class TrainingArguments:
    """Hyper-parameters of a run (names follow Hugging Face's ``TrainingArguments``)."""

    output_dir: str | None = None
    batch_size: int = 32                  # per process, per micro-batch
    epochs: float = 1.0
    max_steps: int | None = None          # optimizer steps; overrides epochs
    learning_rate: float = 1e-4
    optimizer: str = "adamw"              # adamw | adam | sgd | asgd
    momentum: float = 0.0                 # sgd only
    asgd_start: float = float("inf")      # asgd: the step from which weights are averaged (NT-ASGD sets it)
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
        if self.optimizer not in OPTIMIZERS:
            raise Word2BertError(f"parameter optimizer={self.optimizer!r} must be one of {', '.join(OPTIMIZERS)}")


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
    stop_requested: bool = False  # a callback ends the run after this step (total_steps is kept)


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
    """AdamW groups: decay ``theta <- theta - lr * wd * theta`` on matrices, none on 1-D parameters.

    Frozen parameters are included: the optimizer skips a parameter without a gradient, and one
    unfrozen later is then trained like the others.
    """
    decay, no_decay = [], []
    for _name, parameter in model.named_parameters():
        (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: torch.nn.Module, args: TrainingArguments) -> torch.optim.Optimizer:
    """The optimizer ``args.optimizer`` over ``model.configure_optimizers(args)`` (if the model has it)
    or :func:`parameter_groups`; parameters the model's groups leave out join the default groups."""
    configure = getattr(model, "configure_optimizers", None)
    groups = list(configure(args)) if callable(configure) else parameter_groups(model, args.weight_decay)
    covered = {id(p) for group in groups for p in group["params"]}
    missing = [p for p in model.parameters() if id(p) not in covered]
    if missing:
        shell = torch.nn.ParameterList(missing)
        groups += parameter_groups(shell, args.weight_decay)
    if args.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=args.learning_rate, momentum=args.momentum)
    if args.optimizer == "asgd":
        # plain SGD steps; from step t0 on the optimizer also keeps the running average of the weights
        # (its state "ax"), which AWD-LSTM's NT-ASGD evaluates and keeps. A callback may set each
        # group's "t0" when the non-monotone trigger fires; the average is checkpointed with the optimizer.
        return torch.optim.ASGD(groups, lr=args.learning_rate, lambd=0.0, alpha=0.75, t0=args.asgd_start)
    optimizer = torch.optim.AdamW if args.optimizer == "adamw" else torch.optim.Adam
    return optimizer(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon,
                     **fused_update(groups))


#: Devices whose Adam/AdamW update torch runs as one fused kernel per step (``fused=True``).
FUSED_DEVICES = ("cpu", "cuda")


def fused_update(groups) -> dict:
    """``{"fused": True}`` when every parameter is a dense floating-point tensor on one of FUSED_DEVICES,
    else ``{}`` (torch's default implementation).

    The fused Adam/AdamW computes the same update (``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``, AdamW's ``p -= lr wd p`` first) in one
    pass over each parameter instead of one operator per term and parameter: on the CPU, GPT-2's 124M
    parameters took 60-80 ms per step against 500-600 with torch's default (a Python loop of operators;
    its ``foreach`` variant 420-500). transformers' Trainer makes the same choice (``adamw_torch_fused``
    by default with torch >= 2.8). It does not bump the parameters' version counters, which
    :mod:`word2bert.nn.weight_cache` does not rely on alone."""
    params = [p for group in groups for p in group["params"]]
    supported = all(p.is_floating_point() and not p.is_sparse and p.device.type in FUSED_DEVICES for p in params)
    return {"fused": True} if params and supported else {}


def detach_state(state):
    """The carried state with every tensor detached (truncated back-propagation through time)."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(s) for s in state)
    if isinstance(state, dict):
        return {key: detach_state(value) for key, value in state.items()}
    detach = getattr(state, "detach", None)
    return detach() if callable(detach) else state


def add_stats(totals: dict, stats) -> None:
    """Sum ``{name: (numerator, count)}`` pairs into ``totals``."""
    for name, (numerator, count) in (stats or {}).items():
        sums = totals.setdefault(name, [0.0, 0])
        sums[0] += float(numerator)
        sums[1] += int(count) if not isinstance(count, torch.Tensor) else int(count.item())


def stats_to_metrics(totals: dict) -> dict:
    """``{name: numerator / count}``, plus ``exp`` of it as ``...perplexity`` for names ending in ``nll``."""
    metrics = {}
    for name, (numerator, count) in totals.items():
        if count:
            metrics[name] = numerator / count
            if name.endswith("nll"):
                metrics[name[: -len("nll")] + "perplexity"] = math.exp(min(numerator / count, 50.0))
    return metrics


def _to_device(batch: dict, device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


class Trainer:
    """Train ``model`` on ``train_data`` (``train_data[key]`` for the sampler's keys) batched by ``collate_fn``.

    ``collate_fn(items, rng)`` turns a list of items into a dict of tensors (the model's keyword
    arguments); ``rng`` is a ``numpy.random.Generator`` for random corruption (masking).
    ``sampler`` decides the batches (default: :class:`ShuffledSampler` over ``len(train_data)``);
    ``eval_sampler`` those of ``eval_data`` (default: in order, ``eval_batch_size`` at a time).
    ``callbacks`` are called as ``callback(trainer, state)`` after every optimizer step; one ends the run
    early with ``state.stop_requested = True`` (the schedule's ``total_steps`` stays, so ``--resume`` goes on).
    """

    def __init__(self, model: torch.nn.Module, args: TrainingArguments, train_data, collate_fn: Callable,
                 eval_data=None, eval_collate_fn: Callable | None = None,
                 compute_metrics: Callable | None = None, callbacks: list[Callable] | None = None,
                 sampler: Sampler | None = None, eval_sampler: Sampler | None = None):
        args.validate()
        if train_data is None or (sampler is None and len(train_data) == 0):
            raise Word2BertError("the training data is empty")
        if args.num_threads:
            torch.set_num_threads(int(args.num_threads))
        self.args = args
        self.device = torch.device(args.device)
        self.rank, self.world_size = distributed_context(args.device)
        self.model = model.to(self.device)
        self.train_data = train_data
        self.collate_fn = collate_fn
        self.sampler = sampler or ShuffledSampler(len(train_data), args.batch_size, args.seed, args.shuffle)
        self.eval_data = eval_data
        self.eval_collate_fn = eval_collate_fn or collate_fn
        self.eval_sampler = eval_sampler
        self.compute_metrics = compute_metrics
        self.callbacks = list(callbacks or [])
        self.state = TrainState()
        self.carried_state = None
        self.micro_batches_per_epoch = self.sampler.num_batches(self.world_size)
        if self.micro_batches_per_epoch == 0:
            raise Word2BertError(f"the training data is smaller than one batch of "
                                 f"{args.batch_size} x {self.world_size} process(es)")
        if args.max_steps is not None:
            self.state.total_steps = int(args.max_steps)
        else:
            self.state.total_steps = max(1, math.ceil(args.epochs * self.micro_batches_per_epoch
                                                      / args.gradient_accumulation_steps))
        warmup = args.warmup_steps
        self.warmup_steps = int(round(warmup * self.state.total_steps)) if warmup < 1 else int(warmup)
        self.optimizer = build_optimizer(self.model, args)
        self.scheduler = make_scheduler(self.optimizer, args.schedule, self.warmup_steps, self.state.total_steps)
        self.frozen_modules = [name for name, _ in frozen_modules(self.model)]
        self._trainable = None
        self.wrapped = self.model
        self.refresh_trainable()

    # ------------------------------------------------------------------ model state
    def trainable_signature(self) -> tuple[bool, ...]:
        return tuple(p.requires_grad for p in self.model.parameters())

    def refresh_trainable(self) -> None:
        """(Re-)wrap the model for data parallelism when the set of trainable parameters changed
        (DistributedDataParallel fixes that set when it is built). Cheap to call every step."""
        signature = self.trainable_signature()
        if signature == self._trainable:
            return
        self._trainable = signature
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel
            self.wrapped = DistributedDataParallel(
                self.model, find_unused_parameters=self.args.find_unused_parameters)

    def set_train_mode(self, training: bool = True) -> None:
        """``model.train(training)``, with frozen (teacher) modules kept in eval mode."""
        self.model.train(training)
        for name in self.frozen_modules:
            self.model.get_submodule(name).eval()

    def trainable_state_dict(self) -> dict:
        """The model's state dict without the frozen modules (a teacher is not checkpointed)."""
        prefixes = tuple(name + "." for name in self.frozen_modules)
        return {key: value for key, value in self.model.state_dict().items() if not key.startswith(prefixes)}

    # ------------------------------------------------------------------ data order
    def epoch_batches(self, epoch: int) -> list[list]:
        """This rank's micro-batches of ``epoch`` (keys into the training data)."""
        return self.sampler.batches(epoch, self.rank, self.world_size)

    def _micro_batches(self):
        """Yield ``(epoch, micro_batch, batch)`` from the current position onwards, forever."""
        epoch, micro = self.state.epoch, self.state.micro_batch
        batches = self.epoch_batches(epoch)
        while True:
            if micro >= len(batches):
                epoch, micro = epoch + 1, 0
                batches = self.epoch_batches(epoch)
                self.carried_state = None  # a new pass over the stream starts from a fresh state
            items = [self.train_data[key] for key in batches[micro]]
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
        return save_checkpoint(path, self.trainable_state_dict(), self.optimizer, self.scheduler,
                               self.trainer_state(), rng=getattr(self, "_step_rng", None),
                               carried_state=getattr(self, "_step_carried_state", None))

    def load_checkpoint(self, path) -> None:
        """Restore model, optimizer, scheduler, data position, carried state and RNG states from ``path``."""
        payload = load_checkpoint(path)
        try:
            missing, unexpected = self.model.load_state_dict(payload["model"], strict=False)
        except RuntimeError as exc:
            raise Word2BertError(f"the checkpoint at {path} does not fit this model: {exc}") from None
        prefixes = tuple(name + "." for name in self.frozen_modules)
        missing = [key for key in missing if not key.startswith(prefixes)]
        if missing or unexpected:
            shown = ", ".join((missing + unexpected)[:4])
            raise Word2BertError(f"the checkpoint at {path} does not fit this model ({shown} ...)")
        self.optimizer.load_state_dict(payload["optimizer"])
        if payload.get("scheduler") is not None:
            self.scheduler.load_state_dict(payload["scheduler"])
        saved = payload["trainer"]
        for key in ("global_step", "epoch", "micro_batch", "tokens_seen", "history", "evaluations"):
            setattr(self.state, key, saved[key])
        if saved.get("total_steps") and self.args.max_steps is None:
            self.state.total_steps = saved["total_steps"]
        self.carried_state = payload.get("carried_state")
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
        self.set_train_mode(True)
        accumulation = args.gradient_accumulation_steps
        bar = progress_bar(total=self.state.total_steps, desc="train", unit="step",
                           disable=(not args.progress) if args.progress is not None else None)
        if self.rank != 0:
            bar.disable = True
        bar.update(self.state.global_step)
        batches = self._micro_batches()
        started, tokens_at_start = time.perf_counter(), self.state.tokens_seen
        # what to save on interrupt: the position, carried state and RNG after the last completed step
        saved_position = (self.state.epoch, self.state.micro_batch)
        self._step_rng, self._step_carried_state = rng_states(), self.carried_state
        stateful = self.sampler.stateful
        try:
            self.state.stop_requested = False
            while self.state.global_step < self.state.total_steps and not self.state.stop_requested:
                self.refresh_trainable()
                step_loss, step_tokens, step_losses = 0.0, 0, {}
                self.optimizer.zero_grad(set_to_none=True)
                for k in range(accumulation):
                    epoch, micro, batch = next(batches)
                    batch = _to_device(batch, self.device)
                    if stateful and self.carried_state is not None:
                        batch["state"] = self.carried_state
                    sync = k == accumulation - 1 or self.world_size == 1
                    context = self.wrapped.no_sync() if not sync else _nullcontext()
                    with context:
                        output = self._forward(self.wrapped, batch)
                        loss = output.loss
                        if loss is None:
                            raise Word2BertError("the model returned no loss: the batch lacks labels")
                        (loss / accumulation).backward()
                    if stateful:
                        self.carried_state = detach_state(getattr(output, "state", None))
                    step_loss += float(loss.detach()) / accumulation
                    for name, value in (getattr(output, "losses", None) or {}).items():
                        step_losses[f"{name}_loss"] = step_losses.get(f"{name}_loss", 0.0) + float(value.detach()) / accumulation
                    step_tokens += _count_tokens(batch)
                if args.max_grad_norm and args.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.state.global_step += 1
                self.state.tokens_seen += step_tokens * self.world_size
                self.state.epoch, self.state.micro_batch = epoch, micro + 1
                saved_position = (self.state.epoch, self.state.micro_batch)
                self._step_rng, self._step_carried_state = rng_states(), self.carried_state
                lr = self.scheduler.get_last_lr()[0]
                self.state.history.append({"step": self.state.global_step, "loss": step_loss, "lr": lr,
                                           **step_losses})
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
        self._step_rng, self._step_carried_state = rng_states(), self.carried_state
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
    def evaluate(self, eval_data=None, collate_fn: Callable | None = None, sampler: Sampler | None = None) -> dict:
        """Held-out metrics with a fixed random stream (the same masks every evaluation).

        ``loss`` is the mean of the batch losses; every statistic the model reports
        (``output.stats``) is summed over the batches and reported as ``sum / count``, plus the
        perplexity of each ``...nll``; ``compute_metrics(collected)`` adds its own.
        """
        data = eval_data if eval_data is not None else self.eval_data
        collate_fn = collate_fn or self.eval_collate_fn
        if sampler is None and eval_data is None:
            sampler = self.eval_sampler
        if data is None or (sampler is None and len(data) == 0):
            raise Word2BertError("no evaluation data")
        if sampler is None:
            sampler = ShuffledSampler(len(data), self.args.eval_batch_size or self.args.batch_size, shuffle=False)
        was_training = self.model.training
        self.set_train_mode(False)
        loss_sum, loss_batches, totals, collected = 0.0, 0, {}, []
        carried = None
        cpu_state = torch.get_rng_state()
        for micro, keys in enumerate(sampler.batches(0)):
            items = [data[key] for key in keys]
            batch = _to_device(collate_fn(items, np.random.default_rng([self.args.seed, 7919, micro])), self.device)
            if sampler.stateful and carried is not None:
                batch["state"] = carried
            output = self._forward(self.model, batch)
            if sampler.stateful:
                carried = getattr(output, "state", None)
            if getattr(output, "loss", None) is not None:
                loss_sum += float(output.loss)
                loss_batches += 1
            add_stats(totals, getattr(output, "stats", None))
            if self.compute_metrics is not None:
                collected.append((output, batch))
        torch.set_rng_state(cpu_state)
        metrics = {"loss": loss_sum / loss_batches} if loss_batches else {}
        metrics.update(stats_to_metrics(totals))
        if self.compute_metrics is not None:
            metrics.update(self.compute_metrics(collected))
        if was_training:
            self.set_train_mode(True)
        return metrics


def _count_tokens(batch: dict) -> int:
    """Real tokens in a batch: the padding mask's ones, or every input id."""
    mask = batch.get("attention_mask")
    if isinstance(mask, torch.Tensor) and mask.dim() == 2:
        return int(mask.sum())
    ids = batch.get("input_ids")
    return ids.numel() if isinstance(ids, torch.Tensor) else 0


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
