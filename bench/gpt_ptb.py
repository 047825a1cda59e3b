"""A small GPT-2 on Penn Treebank (word level) for a fixed CPU budget: test perplexity.

PTB: Mikolov's version from ../shared/data (10,000 words with <unk>), <eos> at the end of every
line, as is standard. The training stream is read as batch rows that each own a contiguous part,
one --context window after another (every token predicted from the ones before it in its window);
windows are visited in a random order each epoch. Training stops when the process has used
--cpu-minutes of CPU time (time.process_time: its own work, whatever else loads the machine); the
learning rate warms up over the first 2% of that budget and then decays linearly to zero at its end.
Validation and test perplexity, exp(mean -ln p) over every word and <eos> of the file, are computed
with overlapping windows (stride context/2: each token is scored once, after at least context/2
tokens of left context, except at the start).

    OMP_NUM_THREADS=1 flock /tmp/w2b-quality-<SLOT>.lock python bench/gpt_ptb.py [--cpu-minutes 30] [--threads 1]

SIGINT or SIGTERM stops training early; the model trained so far is still evaluated and reported
(marked as stopped early).
"""

from __future__ import annotations

import argparse
import lzma
import math
import platform
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)


def read_ptb(data_dir: Path):
    """(train, valid, test) int64 streams and the vocabulary (words of train plus <eos>)."""
    splits = {}
    for name in ("train", "valid", "test"):
        with lzma.open(data_dir / f"ptb.{name}.txt.xz", "rt", encoding="utf-8") as handle:
            splits[name] = [line.split() + ["<eos>"] for line in handle if line.strip()]
    vocabulary = sorted({word for line in splits["train"] for word in line})
    index = {word: i for i, word in enumerate(vocabulary)}
    streams = {name: np.array([index[w] for line in lines for w in line], dtype=np.int64)
               for name, lines in splits.items()}
    return streams["train"], streams["valid"], streams["test"], vocabulary


@torch.no_grad()
def perplexity(model, stream: np.ndarray, context: int, batch: int = 32) -> float:
    """exp(mean -ln p) with windows of ``context`` tokens advancing by context/2."""
    model.eval()
    tokens = torch.from_numpy(stream)
    stride = context // 2
    starts = list(range(0, max(1, len(tokens) - context), stride))
    if starts[-1] + context < len(tokens) - 1:
        starts.append(len(tokens) - 1 - context)
    nll, count, scored_until = 0.0, 0, 0
    for begin in range(0, len(starts), batch):
        chunk = starts[begin:begin + batch]
        inputs = torch.stack([tokens[s:s + context] for s in chunk])
        targets = torch.stack([tokens[s + 1:s + context + 1] for s in chunk])
        logits = model.logits(inputs)
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                 reduction="none").view(len(chunk), context)
        for row, start in enumerate(chunk):
            first_new = max(scored_until, start + 1) - (start + 1)  # target positions not scored before
            nll += float(losses[row, first_new:].sum())
            count += context - first_new
            scored_until = start + 1 + context
    model.train()
    assert count == len(tokens) - 1, (count, len(tokens))
    return math.exp(nll / count)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-minutes", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpt_ptb.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    from word2bert.fileio import atomic_write
    from word2bert.models.gpt import GPT2Config, GPT2LMHeadModel

    load_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    train, valid, test, vocabulary = read_ptb(Path(args.data))
    config = GPT2Config(vocab_size=len(vocabulary), n_positions=args.context, n_embd=args.hidden, n_layer=args.layers,
                        n_head=args.heads, resid_pdrop=args.dropout, embd_pdrop=args.dropout, attn_pdrop=args.dropout,
                        bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(config)
    parameters = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))

    rows = args.batch_size
    row_length = (len(train) - 1) // rows
    windows = row_length // args.context
    budget = args.cpu_minutes * 60.0
    rng = np.random.default_rng(args.seed)
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    steps, epochs, tokens_seen, recent = 0, 0, 0, []
    log = []
    done = False
    stopped_early = False

    def stop_early(signum, frame):  # SIGINT / SIGTERM: finish the step, then evaluate what was trained
        nonlocal stopped_early
        stopped_early = True

    signal.signal(signal.SIGINT, stop_early)
    signal.signal(signal.SIGTERM, stop_early)
    while not done:
        epochs += 1
        for window in rng.permutation(windows):
            used = time.process_time() - started_cpu
            if used >= budget or stopped_early:
                done = True
                break
            fraction = used / budget
            lr = args.lr * min(1.0, fraction / 0.02) * (1.0 - fraction)
            for group in optimizer.param_groups:
                group["lr"] = lr
            offsets = np.arange(rows) * row_length + window * args.context
            index = offsets[:, None] + np.arange(args.context + 1)[None, :]
            chunk = torch.from_numpy(train[index])
            loss = model(chunk[:, :-1], target_ids=chunk[:, 1:]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            steps += 1
            tokens_seen += rows * args.context
            recent.append(float(loss.detach()))
            if steps % 100 == 0:
                line = (f"step {steps} epoch {epochs} cpu {used / 60:.1f} min, wall "
                        f"{(time.perf_counter() - started_wall) / 60:.1f} min, lr {lr:.2e}, train ppl "
                        f"{math.exp(np.mean(recent)):.1f}")
                print(line, flush=True)
                log.append(line)
                recent = []
    cpu_minutes = (time.process_time() - started_cpu) / 60
    wall_minutes = (time.perf_counter() - started_wall) / 60
    valid_ppl = perplexity(model, valid, args.context)
    test_ppl = perplexity(model, test, args.context)
    load_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    command = (f"python bench/gpt_ptb.py --cpu-minutes {args.cpu_minutes:g} --threads {args.threads} --layers "
               f"{args.layers} --hidden {args.hidden} --heads {args.heads} --context {args.context} --batch-size "
               f"{args.batch_size} --dropout {args.dropout:g} --lr {args.lr:g} --weight-decay {args.weight_decay:g} "
               f"--seed {args.seed}")
    lines = [
        "# GPT-2 on Penn Treebank (word level) for a fixed CPU budget",
        "",
        f"Command: `{command}`",
        "",
        f"Model: GPT-2 blocks (pre-LN, tied output embedding), {args.layers} layers, hidden {args.hidden}, {args.heads} "
        f"heads, context {args.context}, vocabulary {len(vocabulary):,} (the words of PTB train with <unk>, and <eos>), dropout "
        f"{args.dropout:g}; {parameters / 1e6:.2f}M parameters. AdamW (0.9, 0.95), peak lr {args.lr:g}, weight decay "
        f"{args.weight_decay:g} on matrices, clipping 1.0, warm-up 2% then linear decay over the CPU budget; batch "
        f"{rows} x {args.context}.",
        *([f"**Stopped early** (signal) after {cpu_minutes:.1f} of {args.cpu_minutes:g} budgeted CPU minutes; the "
           "learning rate had not decayed to zero.", ""] if stopped_early else []),
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s). "
        f"Load before: `{load_before}`; after: `{load_after}`.",
        "",
        "| CPU minutes (training) | wall minutes | steps | epochs | tokens seen | valid perplexity | test perplexity |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {cpu_minutes:.1f} | {wall_minutes:.1f} | {steps:,} | {tokens_seen / len(train):.2f} | {tokens_seen:,} | "
        f"{valid_ppl:.1f} | **{test_ppl:.1f}** |",
        "",
        "For comparison (../shared/data/README.md and the papers): AWD-LSTM 60.0 / 57.3 valid / test (its paper), "
        "61.2 / 58.8 without fine-tuning (its README); Kneser-Ney 5-gram 141.2 (Mikolov 2011).",
        "",
        "Training log (every 100 steps):",
        "",
        "```",
        *log,
        "```",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    print("\n".join(lines[:12]))


if __name__ == "__main__":
    main()
