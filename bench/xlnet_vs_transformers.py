"""XLNet pre-training steps: word2bert's XLNetLMHeadModel vs transformers' XLNetLMHeadModel.

Same config (4 layers, d_model 256, 4 heads, FFN 1024, vocabulary 8000, dropout 0.1, mem_len 64),
same initial weights (transformers' random init copied into ours), same optimizer (AdamW, lr 1e-4,
weight decay 0.01), the same batches: 16 rows x 128 tokens, each row a contiguous stream read window
after window, so both models carry a 64-token memory from one step to the next (transformers with
``use_mems=True`` and its ``mems`` fed back); the same permutation-LM inputs built once by
``word2bert.objectives.permutation_lm`` (the reference's span targets, 22 predictions per sequence,
random factorisation orders) and given to both as ``perm_mask`` / ``target_mapping`` / ``labels``.

Data with learnable structure: each row is a first-order Markov chain over the vocabulary (4 likely
successors per token, 10% uniform jumps), as in ``bench/bert_vs_transformers.py``.

Where the speed comes from (ours): the query stream is computed only at the 22 predicted positions
(transformers runs it at all 128 and maps back through ``target_mapping``), the content stream of the
last layer is skipped (only the query stream is read), position keys are projected once per step
instead of once per batch row, the relative segment term is one (B, H, Q, 2) product, the relative
shift is a strided view.

Timing: chunks of steps alternate ours / theirs so both see the same machine load; the first 2 steps
of each model are not timed; tokens/s is the median over chunks. "End to end" adds the time to build
the permutation-LM batch (numpy) to every step; "training only" is the model step alone.

    flock /tmp/w2b-bench.lock python bench/xlnet_vs_transformers.py [--steps 200] [--chunk 20] [--max-minutes 13]

``--max-minutes`` does not start a new pair of chunks when the last pair's time would overrun it (a
shared, loaded machine must not be held longer than its lock allows); the report then says how many
steps both models ran.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

VOCAB, BATCH, LENGTH, MEMORY, PREDICTIONS = 8000, 16, 128, 64, 22


class MarkovStreams:
    """``rows`` independent Markov chains, read ``LENGTH`` tokens at a time (vectorised over rows)."""

    def __init__(self, rows: int, seed: int):
        table_rng = np.random.default_rng(12345)  # the same chain for every stream set
        self.successors = table_rng.integers(0, VOCAB, size=(VOCAB, 4))
        self.cdf = np.cumsum([0.5, 0.25, 0.15, 0.1])
        self.rng = np.random.default_rng(seed)
        self.current = self.rng.integers(0, VOCAB, rows)

    def window(self, length: int) -> np.ndarray:
        out = np.empty((len(self.current), length), dtype=np.int64)
        for t in range(length):  # a loop over positions, vectorised over rows
            choice = np.searchsorted(self.cdf, self.rng.random(len(self.current)))
            nxt = self.successors[self.current, choice]
            jump = self.rng.random(len(self.current)) < 0.1
            self.current = np.where(jump, self.rng.integers(0, VOCAB, len(self.current)), nxt)
            out[:, t] = self.current
        return out


def make_batches(count: int, seed: int):
    """``count`` consecutive windows of the same 16 streams, with permutation-LM inputs; returns the
    batches and the seconds spent building the permutation-LM inputs."""
    from word2bert.objectives.permutation_lm import PermutationLanguageModeling

    streams = MarkovStreams(BATCH, seed)
    objective = PermutationLanguageModeling(num_predict=PREDICTIONS, target_unit="span")
    rng = np.random.default_rng(seed + 1)
    batches, prepare_seconds = [], 0.0
    for _ in range(count):
        batch = {"input_ids": streams.window(LENGTH)}
        started = time.perf_counter()
        objective.prepare(batch, None, rng)
        tensors = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in batch.items()}
        prepare_seconds += time.perf_counter() - started
        batches.append(tensors)
    return batches, prepare_seconds / count


def make_optimizer(model):
    try:
        return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True), "fused"
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, foreach=True), "foreach"


class Runner:
    """One model, its optimizer, its carried memory, step times and losses."""

    def __init__(self, name, model, theirs: bool):
        self.name, self.model, self.theirs = name, model, theirs
        self.optimizer, self.optimizer_kind = make_optimizer(model)
        self.memory = None
        self.losses, self.step_seconds, self.chunk_rates = [], [], []

    def loss(self, batch, memory):
        if self.theirs:
            out = self.model(batch["input_ids"], perm_mask=batch["perm_mask"].float(),
                             target_mapping=batch["target_mapping"], labels=batch["labels"], mems=memory,
                             use_mems=True)
        else:
            out = self.model(batch["input_ids"], perm_mask=batch["perm_mask"], target_mapping=batch["target_mapping"],
                             labels=batch["labels"], state=memory)
        return out.loss, out.mems

    def train_steps(self, batches, warmup_steps: int):
        self.model.train()
        timed_seconds, timed_steps = 0.0, 0
        for batch in batches:
            start = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            loss, memory = self.loss(batch, self.memory)
            loss.backward()
            self.optimizer.step()
            self.memory = [m.detach() for m in memory]
            value = loss.item()
            elapsed = time.perf_counter() - start
            self.losses.append(value)
            self.step_seconds.append(elapsed)
            if len(self.losses) > warmup_steps:
                timed_seconds += elapsed
                timed_steps += 1
        if timed_steps:
            self.chunk_rates.append(timed_steps * BATCH * LENGTH / timed_seconds)

    @torch.no_grad()
    def evaluate(self, batches) -> float:
        """Mean loss over consecutive held-out windows, memory carried from the first."""
        self.model.eval()
        losses, memory = [], None
        for batch in batches:
            loss, memory = self.loss(batch, memory)
            losses.append(loss.item())
        return float(np.mean(losses))


def build_models(seed: int):
    import transformers

    from word2bert.models.xlnet import XLNetLMHeadModel

    torch.manual_seed(seed)
    config = transformers.XLNetConfig(vocab_size=VOCAB, d_model=256, n_layer=4, n_head=4, d_inner=1024,
                                      ff_activation="gelu", dropout=0.1, mem_len=MEMORY, attn_type="bi")
    theirs = transformers.XLNetLMHeadModel(config)
    with tempfile.TemporaryDirectory() as directory:  # their weights into ours through the checkpoint files
        theirs.save_pretrained(directory)
        ours = XLNetLMHeadModel.from_pretrained(directory)
    return ours, theirs


def write_report(path, runners, args, steps_done, eval_losses, prepare_seconds, load_before, load_after):
    import transformers

    from word2bert.fileio import atomic_write

    ours, theirs = runners
    medians = {r.name: statistics.median(r.chunk_rates) if r.chunk_rates else float("nan") for r in runners}
    step_medians = {r.name: statistics.median(r.step_seconds[2:] or [float("nan")]) for r in runners}
    end_to_end = {name: BATCH * LENGTH / (seconds + prepare_seconds) for name, seconds in step_medians.items()}
    ratio = medians["word2bert"] / medians["transformers"]
    lines = [
        "# XLNet pre-training: word2bert vs transformers (CPU)",
        "",
        f"Command: `python bench/xlnet_vs_transformers.py --steps {args.steps} --chunk {args.chunk} "
        f"--threads {args.threads}" + (f" --max-minutes {args.max_minutes:g}" if args.max_minutes else "") + "`"
        + ("" if steps_done == args.steps else f" (stopped by the time budget after {steps_done} of {args.steps} steps)"),
        "",
        "Config: 4 layers, d_model 256, 4 heads, FFN 1024, vocabulary 8000, dropout 0.1, attn_type bi; "
        f"batch {BATCH} x {LENGTH} tokens, memory {MEMORY} carried between steps; {PREDICTIONS} predictions per "
        f"sequence (span targets); AdamW lr 1e-4 wd 0.01 ({ours.optimizer_kind}); same initial weights, "
        "batches, permutation masks and targets for both (Markov-chain streams).",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, {args.threads} threads; load average before / after: {load_before} / "
        f"{load_after}. Steps: {steps_done} per model; tokens/s = median over {len(ours.chunk_rates)} "
        f"interleaved chunks of {args.chunk} steps (first 2 steps untimed).",
        "",
        "| model | training-only tokens/s (median) | chunks | min | max | end-to-end tokens/s | "
        "loss at step 1 | train loss, last 20 steps | held-out loss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for runner in runners:
        rates = runner.chunk_rates or [float("nan")]
        last = runner.losses[-20:]
        lines.append(f"| {runner.name} | {medians[runner.name]:,.0f} | {len(runner.chunk_rates)} | {min(rates):,.0f} | "
                     f"{max(rates):,.0f} | {end_to_end[runner.name]:,.0f} | {runner.losses[0]:.4f} | "
                     f"{np.mean(last):.4f} | {eval_losses.get(runner.name, float('nan')):.4f} |")
    lines += [
        "",
        f"**Speed ratio (word2bert / transformers), training only: {ratio:.2f}x**; end to end: "
        f"{end_to_end['word2bert'] / end_to_end['transformers']:.2f}x (target >= 1.5x).",
        "",
        f"End to end adds the permutation-LM batch construction ({prepare_seconds * 1000:.0f} ms per batch, numpy, "
        "the same for both) to the median step. Held-out loss: mean permutation-LM cross-entropy over 8 "
        "consecutive windows of 16 fresh streams (eval mode, memory carried). Median step: word2bert "
        f"{step_medians['word2bert']:.2f} s, transformers {step_medians['transformers']:.2f} s.",
        "",
    ]
    text = "\n".join(lines)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    print(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per model")
    parser.add_argument("--chunk", type=int, default=20, help="steps per timed chunk (chunks alternate models)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="stop starting chunks after this many minutes of training (0: no limit)")
    parser.add_argument("--out", default="bench/results/xlnet_vs_transformers.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    ours_model, theirs_model = build_models(args.seed)
    runners = [Runner("word2bert", ours_model, theirs=False), Runner("transformers", theirs_model, theirs=True)]
    train_batches, prepare_seconds = make_batches(args.steps, args.seed)
    held_out, _ = make_batches(8, args.seed + 1000)
    steps_done, started, last_pair = 0, time.perf_counter(), 0.0
    for start in range(0, args.steps, args.chunk):
        if args.max_minutes and time.perf_counter() - started + last_pair > args.max_minutes * 60:
            print(f"time budget of {args.max_minutes} minutes spent after {steps_done} steps", flush=True)
            break
        chunk = train_batches[start:start + args.chunk]
        order = runners if (start // args.chunk) % 2 == 0 else runners[::-1]
        pair_started = time.perf_counter()
        for runner in order:
            runner.train_steps(chunk, warmup_steps=2)
        last_pair = time.perf_counter() - pair_started
        steps_done = start + len(chunk)
        print(f"{steps_done} steps: " + ", ".join(f"{r.name} {r.chunk_rates[-1]:,.0f} tok/s loss {r.losses[-1]:.3f}"
                                                  for r in runners if r.chunk_rates), flush=True)
    eval_losses = {runner.name: runner.evaluate(held_out) for runner in runners}
    load_after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    write_report(Path(args.out) if args.out else None, runners, args, steps_done, eval_losses, prepare_seconds,
                 load_before, load_after)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
