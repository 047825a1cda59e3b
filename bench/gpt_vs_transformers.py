"""GPT-2 language-model training steps: word2bert's GPT2LMHeadModel vs transformers' GPT2LMHeadModel.

Same config (GPT-2 shape: 6 layers, hidden 384, 6 heads, context 256, GPT-2's byte-level BPE
vocabulary of 50,257 tokens, dropout 0.1 everywhere as transformers' default), same initial weights
(transformers' random init copied into ours through the key map), same optimizer (AdamW, lr 3e-4,
weight decay 0.01, fused kernel), the same batches (16 x 256 tokens), on the CPU.

Data: the start of ../shared/data/enmix.txt.xz encoded with GPT-2's own BPE files
(../shared/data/gpt2_bpe) by word2bert's ByteLevelBPETokenizer, documents joined by <|endoftext|>,
cut into consecutive 256-token windows; batch i is windows 16i .. 16i+15; the held-out batches come
from text after all training windows.

Timing: the training steps run in chunks, alternating ours / theirs chunk by chunk so both see the same
machine load; each model's first 2 steps are warm-up and not timed; tokens/s is the median over the
chunks (>= 3). Quality: training loss over the last 20 steps and held-out loss (eval mode) after all steps.

    flock /tmp/w2b-bench.lock python bench/gpt_vs_transformers.py [--steps 200] [--chunk 10] [--max-minutes M] [--seed N] [--masks numpy|torch]

--max-minutes stops training after the chunk that passes M wall minutes (a fair share of a shared
machine); both models have then taken the same steps, and their held-out loss is still compared.
"""

from __future__ import annotations

import argparse
import lzma
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
LAYERS, HIDDEN, HEADS, CONTEXT, VOCAB = 6, 384, 6, 256, 50257


def encoded_windows(data_dir: Path, count: int, batch: int) -> np.ndarray:
    """``count`` consecutive (CONTEXT,) windows of GPT-2 BPE ids from the start of enmix."""
    from word2bert.tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer.from_pretrained(data_dir / "gpt2_bpe")
    needed = count * CONTEXT
    ids: list[int] = []
    with lzma.open(data_dir / "enmix.txt.xz", "rt", encoding="utf-8") as handle:
        lines = []
        for line in handle:
            lines.append(line.strip())
            if len(lines) == 256:
                for encoded in tokenizer.ids_batch(lines):
                    ids.extend(encoded + [tokenizer.eos_id])
                lines = []
                if len(ids) >= needed:
                    break
    if len(ids) < needed:
        raise SystemExit(f"enmix gave only {len(ids)} tokens, {needed} needed")
    return np.asarray(ids[:needed], dtype=np.int64).reshape(count, CONTEXT)


def make_optimizer(model):
    try:
        return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, fused=True), "fused"
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, foreach=True), "foreach"


def ours_loss(model, ids):
    return model(ids).loss


def theirs_loss(model, ids):
    return model(input_ids=ids, labels=ids).loss


class Runner:
    """One model, its optimizer, its step times and losses, and its own state of torch's generator (every
    runner starts from ``rng_state``; its dropout draws then do not depend on how the chunks interleave, and
    two models that draw the same masks in the same order draw the same values)."""

    def __init__(self, name, model, loss_fn, batch, rng_state):
        self.name, self.model, self.loss_fn, self.batch = name, model, loss_fn, batch
        self.optimizer, self.optimizer_kind = make_optimizer(model)
        self.losses, self.step_seconds, self.chunk_rates = [], [], []
        self.rng_state = rng_state.clone()

    def train_steps(self, batches, warmup_steps: int):
        self.model.train()
        torch.set_rng_state(self.rng_state)
        timed_seconds, timed_steps = 0.0, 0
        for ids in batches:
            start = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model, ids)
            loss.backward()
            self.optimizer.step()
            value = loss.item()
            elapsed = time.perf_counter() - start
            self.losses.append(value)
            self.step_seconds.append(elapsed)
            if len(self.losses) > warmup_steps:
                timed_seconds += elapsed
                timed_steps += 1
        if timed_steps:
            self.chunk_rates.append(timed_steps * self.batch * CONTEXT / timed_seconds)
        self.rng_state = torch.get_rng_state()

    @torch.no_grad()
    def evaluate(self, batches) -> float:
        self.model.eval()
        return float(np.mean([self.loss_fn(self.model, ids).item() for ids in batches]))


def paired_models(config):
    """(ours, theirs) for a word2bert ``GPT2Config``: transformers' ``GPT2LMHeadModel`` (SDPA attention) with its
    random initialisation (drawn from torch's generator, so ``torch.manual_seed`` fixes it), and ours with the
    same weights copied in through the key map."""
    import transformers

    from word2bert.models.gpt import GPT2LMHeadModel

    hf_config = transformers.GPT2Config(**{k: v for k, v in config.to_hf_dict().items() if k != "model_type"})
    hf_config._attn_implementation = "sdpa"
    theirs = transformers.GPT2LMHeadModel(hf_config)
    ours = GPT2LMHeadModel(config)
    state, _ = GPT2LMHeadModel.hf_key_map(config).to_ours(theirs.state_dict())
    ours.load_state_dict(state)  # identical starting point
    return ours, theirs


def load_average() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uptime unavailable"


def write_report(path: Path, runners, args, steps_done, eval_losses, loads):
    import transformers

    from word2bert.fileio import atomic_write

    ours, theirs = runners
    medians = {r.name: statistics.median(r.chunk_rates) if r.chunk_rates else float("nan") for r in runners}
    ratio = medians["word2bert"] / medians["transformers"]
    per_chunk = [a / b for a, b in zip(ours.chunk_rates, theirs.chunk_rates)]
    command = f"python bench/gpt_vs_transformers.py --steps {args.steps} --chunk {args.chunk} --batch {args.batch}"
    if args.seed:
        command += f" --seed {args.seed}"
    if args.masks != "numpy":
        command += f" --masks {args.masks}"
    if args.max_minutes is not None:
        command += f" --max-minutes {args.max_minutes:g}"
    lines = [
        "# GPT-2 language-model training: word2bert vs transformers (CPU)",
        "",
        f"Command: `{command}`" + ("" if steps_done == args.steps else f" (stopped after {steps_done}/{args.steps} steps"
                                   + (", held-out loss after those steps)" if eval_losses else ", still running)")),
        "",
        f"Config: GPT-2 shape, {LAYERS} layers, hidden {HIDDEN}, {HEADS} heads, context {CONTEXT}, vocabulary "
        f"{VOCAB} (GPT-2's BPE), dropout 0.1; batch {args.batch} x {CONTEXT} tokens of enmix; AdamW lr 3e-4 "
        f"wd 0.01 ({ours.optimizer_kind}); same initial weights and batches. Dropout masks: "
        + ("word2bert's own (numpy 16-bit draws), transformers' by `bernoulli_`" if args.masks == "numpy" else
           "both sides by `bernoulli_` from the same generator state, each side its own stream: the same masks")
        + ".",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__} (attn_implementation={theirs.model.config._attn_implementation}), "
        f"{torch.get_num_threads()} threads. Load: before `{loads[0]}`; after `{loads[-1]}`.",
        f"tokens/s: median over {len(ours.chunk_rates)} interleaved chunks of {args.chunk} steps "
        "(first 2 steps of each model untimed); the ratio column is per chunk.",
        "",
        "| model | tokens/s (median) | chunks | min | max | loss at step 1 | train loss, last 20 steps | held-out loss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for runner in runners:
        rates = runner.chunk_rates or [float("nan")]
        last = runner.losses[-20:] or [float("nan")]
        lines.append(f"| {runner.name} | {medians[runner.name]:,.0f} | {len(runner.chunk_rates)} | {min(rates):,.0f} | "
                     f"{max(rates):,.0f} | {runner.losses[0] if runner.losses else float('nan'):.4f} | "
                     f"{np.mean(last):.4f} | {eval_losses.get(runner.name, float('nan')):.4f} |")
    lines += [
        "",
        f"**Speed ratio (word2bert / transformers): {ratio:.2f}x** (per-chunk ratios: "
        + ", ".join(f"{r:.2f}" for r in per_chunk) + "; target >= 1.5x).",
        "",
        f"Wall time of one step, median: word2bert {statistics.median(ours.step_seconds[2:] or [float('nan')]):.2f} s, "
        f"transformers {statistics.median(theirs.step_seconds[2:] or [float('nan')]):.2f} s.",
        "",
    ]
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop training after the chunk that passes this many wall minutes (then evaluate)")
    parser.add_argument("--masks", choices=("numpy", "torch"), default="numpy",
                        help="word2bert's dropout masks: its own numpy draws (default) or drawn as F.dropout draws them; "
                             "each side keeps its own generator state from the same start, so with 'torch' both sides "
                             "draw the same masks")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpt_vs_transformers.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from word2bert.models.gpt import GPT2Config
    from word2bert.nn.dropout import set_mask_source

    set_mask_source(args.masks)

    loads = [load_average()]
    config = GPT2Config(vocab_size=VOCAB, n_positions=CONTEXT, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS)
    torch.manual_seed(args.seed)
    ours, theirs = paired_models(config)

    held_out_batches = 4
    windows = torch.from_numpy(encoded_windows(Path(args.data), (args.steps + held_out_batches) * args.batch,
                                               args.batch))
    batches = list(windows.split(args.batch))
    train_batches, held_out = batches[: args.steps], batches[args.steps:]

    start_state = torch.get_rng_state()  # both sides draw their dropout masks from here on, each its own stream
    runners = [Runner("word2bert", ours, ours_loss, args.batch, start_state),
               Runner("transformers", theirs, theirs_loss, args.batch, start_state)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    steps_done = 0
    for chunk_start in range(0, args.steps, args.chunk):
        if args.max_minutes is not None and time.perf_counter() - started > 60 * args.max_minutes:
            print(f"--max-minutes {args.max_minutes:g} reached after {steps_done} steps", flush=True)
            break
        chunk = train_batches[chunk_start:chunk_start + args.chunk]
        order = runners if (chunk_start // args.chunk) % 2 == 0 else runners[::-1]
        for runner in order:
            runner.train_steps(chunk, warmup_steps=2)
        done = steps_done = chunk_start + len(chunk)
        print(f"step {done}/{args.steps}: " + ", ".join(
            f"{r.name} loss {np.mean(r.losses[-len(chunk):]):.4f} {(r.chunk_rates or [float('nan')])[-1]:,.0f} tok/s"
            for r in runners), flush=True)
        if done < args.steps:
            write_report(out, runners, args, done, {}, loads + [load_average()])
    eval_losses = {runner.name: runner.evaluate(held_out) for runner in runners}
    write_report(out, runners, args, steps_done, eval_losses, loads + [load_average()])
    print(out.read_text())


if __name__ == "__main__":
    main()
