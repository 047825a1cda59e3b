"""Transformer-XL on Penn Treebank (word level): does segment memory help? Test perplexity by mem_len.

Two models of the same size are trained through the shared Trainer on BPTT windows of the training
stream (``ContiguousStreamSampler``, the trainer carrying the memory as ``state``), with the same
seed, segment length, steps and optimizer:

* **no memory**: ``mem_len = 0`` -- a vanilla Transformer LM on fixed segments (every segment starts
  from nothing);
* **memory**: ``mem_len = --train-mem`` (Transformer-XL).

Each is then evaluated on the validation and test streams in segments of the same length with
several memory lengths (``evaluate_stream``: every token predicted once, the memory of a segment
feeding the next), which is the paper's claim measured here: the memory model reads further back
at the same segment length. A second table checks that the memory of a step is bounded: peak
resident memory and time per segment when evaluating on 1x and 4x the test stream.

PTB: Mikolov's version from ``../shared/data`` (10,000 words with ``<unk>``), ``<eos>`` at the end of
every line, as is standard for word-level PTB.

    flock /tmp/w2b-bench.lock python bench/transfo_xl_ptb.py [--max-steps 1500] [--epochs 1]
"""

from __future__ import annotations

import argparse
import lzma
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)


def read_ptb(data_dir: Path):
    """(train, valid, test) int64 streams and the vocabulary (words of train plus <eos>)."""
    splits = {}
    for name in ("train", "valid", "test"):
        path = data_dir / f"ptb.{name}.txt.xz"
        with lzma.open(path, "rt", encoding="utf-8") as handle:
            splits[name] = [line.split() + ["<eos>"] for line in handle if line.strip()]
    vocabulary = sorted({word for line in splits["train"] for word in line})
    index = {word: i for i, word in enumerate(vocabulary)}
    streams = {name: np.array([index[w] for line in lines for w in line], dtype=np.int64)
               for name, lines in splits.items()}
    return streams["train"], streams["valid"], streams["test"], vocabulary


def train_model(mem_len: int, train, args, vocab_size: int):
    from word2bert.models.transfo_xl import TransfoXLConfig, TransfoXLLMHeadModel
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.samplers import ContiguousStreamSampler, TokenStream, stack_collate

    torch.manual_seed(args.seed)
    config = TransfoXLConfig(vocab_size=vocab_size, d_model=args.d_model, n_layer=args.layers, n_head=args.heads,
                             d_inner=args.ffn, dropout=args.dropout, dropatt=0.0, mem_len=mem_len)
    model = TransfoXLLMHeadModel(config)
    sampler = ContiguousStreamSampler(len(train), args.batch_size, args.seq_len, seed=args.seed)
    training = TrainingArguments(batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
                                 learning_rate=args.lr, weight_decay=0.0, warmup_steps=args.warmup,
                                 max_grad_norm=0.25, seed=args.seed, progress=False, logging_steps=100,
                                 schedule="cosine" if args.cosine else "linear")
    trainer = Trainer(model, training, TokenStream(train), stack_collate, sampler=sampler)
    started = time.perf_counter()
    state = trainer.train()
    seconds = time.perf_counter() - started
    return model, seconds, state.global_step, float(np.mean([h["loss"] for h in state.history[-50:]]))


def memory_probe(args) -> None:
    """Evaluate a fresh model on ``--probe-repeat`` copies of the test stream; print peak RSS and s/segment."""
    from word2bert.models.transfo_xl import TransfoXLConfig, TransfoXLLMHeadModel, evaluate_stream

    _, _, test, vocabulary = read_ptb(Path(args.data))
    stream = np.tile(test[:20000], args.probe_repeat)
    torch.manual_seed(0)
    model = TransfoXLLMHeadModel(TransfoXLConfig(vocab_size=len(vocabulary), d_model=args.d_model,
                                                 n_layer=args.layers, n_head=args.heads, d_inner=args.ffn,
                                                 mem_len=args.probe_mem))
    started = time.perf_counter()
    result = evaluate_stream(model, stream, args.seq_len, batch_size=1)
    seconds = time.perf_counter() - started
    segments = math.ceil(result["tokens"] / args.seq_len)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"PROBE {len(stream)} {peak:.1f} {1000 * seconds / segments:.2f}")


def run_probe(args, repeat: int) -> tuple[int, float, float]:
    command = [sys.executable, __file__, "--probe", "--probe-repeat", str(repeat), "--data", args.data,
               "--d-model", str(args.d_model), "--layers", str(args.layers), "--heads", str(args.heads),
               "--ffn", str(args.ffn), "--seq-len", str(args.seq_len), "--probe-mem", str(args.probe_mem_len),
               "--threads", str(args.threads)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = [l for l in output.splitlines() if l.startswith("PROBE")][-1].split()
    return int(line[1]), float(line[2]), float(line[3])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=512)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--seq-len", type=int, default=32, help="segment length (training and evaluation)")
    parser.add_argument("--train-mem", type=int, default=32, help="mem_len of the memory model in training")
    parser.add_argument("--eval-mems", default="0,32,64,128", help="memory lengths to evaluate with")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=float, default=0.05)
    parser.add_argument("--cosine", action="store_true", help="cosine decay instead of linear")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-batch", type=int, default=10, help="rows of the evaluation streams")
    parser.add_argument("--probe-mem-len", type=int, default=64, help="mem_len of the memory-bound probe")
    parser.add_argument("--no-probe", action="store_true")
    parser.add_argument("--out", default="bench/results/transfo_xl_ptb.md")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe-repeat", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--probe-mem", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.probe:
        memory_probe(args)
        return 0
    from word2bert.fileio import atomic_write
    from word2bert.models.transfo_xl import evaluate_stream

    load_before = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    train, valid, test, vocabulary = read_ptb(Path(args.data))
    eval_mems = [int(m) for m in args.eval_mems.split(",")]
    rows, trained = [], {}
    for label, mem_len in (("no memory", 0), ("memory", args.train_mem)):
        model, seconds, steps, train_loss = train_model(mem_len, train, args, len(vocabulary))
        trained[label] = (seconds, steps, train_loss)
        print(f"{label}: {steps} steps in {seconds:.0f} s, train loss {train_loss:.3f}", flush=True)
        for eval_mem in eval_mems if mem_len else [0] + [m for m in eval_mems if m]:
            started = time.perf_counter()
            valid_ppl = evaluate_stream(model, valid, args.seq_len, mem_len=eval_mem,
                                        batch_size=args.eval_batch)["perplexity"]
            test_ppl = evaluate_stream(model, test, args.seq_len, mem_len=eval_mem,
                                       batch_size=args.eval_batch)["perplexity"]
            rows.append((label, mem_len, eval_mem, valid_ppl, test_ppl, time.perf_counter() - started))
            print(rows[-1], flush=True)
    probes = [] if args.no_probe else [run_probe(args, repeat) for repeat in (1, 4)]
    load_after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    command = "python bench/transfo_xl_ptb.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Transformer-XL on Penn Treebank: test perplexity by memory length",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Model: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, FFN {args.ffn}, dropout "
        f"{args.dropout}, tied softmax over {len(vocabulary):,} words; segments of {args.seq_len} tokens, batch "
        f"{args.batch_size}, Adam lr {args.lr} (warm-up {args.warmup}, {'cosine' if args.cosine else 'linear'} "
        f"decay), clip 0.25, seed {args.seed}; {len(train):,} training tokens. Machine: "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads; load "
        f"average before / after: {load_before} / {load_after}.",
        "",
        "| model (trained with mem_len) | steps | training time | train loss (last 50 steps) |",
        "|---|---:|---:|---:|",
    ]
    for label, mem_len in (("no memory", 0), ("memory", args.train_mem)):
        seconds, steps, loss = trained[label]
        lines.append(f"| {label} ({mem_len}) | {steps} | {seconds:.0f} s | {loss:.3f} |")
    lines += ["", f"Evaluation in segments of {args.seq_len} tokens, {args.eval_batch} rows per stream:", "",
              "| model (trained with mem_len) | evaluated with mem_len | valid perplexity | test perplexity |",
              "|---|---:|---:|---:|"]
    for label, mem_len, eval_mem, valid_ppl, test_ppl, _ in rows:
        lines.append(f"| {label} ({mem_len}) | {eval_mem} | {valid_ppl:.1f} | {test_ppl:.1f} |")
    if probes:
        lines += ["", f"Memory of a step (a fresh model, mem_len {args.probe_mem_len}, segments of {args.seq_len}, "
                  "one row; separate processes):", "",
                  "| stream read | peak resident memory | ms per segment |", "|---:|---:|---:|"]
        for tokens, peak, per_segment in probes:
            lines.append(f"| {tokens:,} tokens | {peak:.0f} MiB | {per_segment:.1f} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
