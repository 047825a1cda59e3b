"""GPT-2 pre-training end to end, as the user waits for it: `word2bert pretrain gpt` against the same job
written with transformers' Trainer, each a fresh process from its start to its exit.

The job: a text file in (the first ``--megabytes`` MB of ../shared/data/enmix.txt.xz, one document per
line), GPT-2's own byte-level BPE (../shared/data/gpt2_bpe), documents joined by <|endoftext|>, the last 1%
of the token stream held out; a GPT-2 of ``--layers`` x ``--hidden`` (``--heads`` heads, context
``--context``, dropout 0.1, random initialisation), ``--steps`` AdamW steps (lr 3e-4, weight decay 0.01,
warm-up 2% then linear decay, gradient clipping 1.0) on batches of ``--batch`` windows, then the held-out
loss, then the model saved. Each side also leaves what resumes training, as it does by default: word2bert its
checkpoint, transformers' Trainer (save_strategy "steps") its last checkpoint-N (model, optimizer, scheduler).
Both sides: 2 threads, their defaults otherwise (word2bert's BPE tokenizer and
contiguous-stream sampler; transformers' GPT2TokenizerFast, consecutive windows, Trainer with its default
fused AdamW, SDPA attention). What differs besides the implementations: word2bert's rows read the stream in
``--batch`` contiguous lanes, transformers' batches take consecutive windows; both see the same number of
training tokens.

    python bench/gpt_pretrain_end_to_end.py [--rounds 3] [--megabytes 3] [--steps 12] [--layers 12] [--hidden 768]

Rounds alternate the two sides (word2bert first in odd rounds). Needs ``accelerate`` for transformers' Trainer.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)


def write_corpus(path: Path, megabytes: float) -> None:
    """The first ``megabytes`` MB of enmix (whole lines), uncompressed."""
    limit = int(megabytes * 1_000_000)
    written = 0
    with lzma.open(DATA / "enmix.txt.xz", "rt", encoding="utf-8") as source, open(path, "w", encoding="utf-8") as out:
        for line in source:
            if written + len(line) > limit:
                break
            out.write(line)
            written += len(line)


def transformers_side(args) -> None:
    """The transformers job (run in its own process by :func:`main`); prints a JSON line of results."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast, Trainer, TrainingArguments

    torch.set_num_threads(args.threads)
    tokenizer = GPT2TokenizerFast(vocab=str(DATA / "gpt2_bpe" / "encoder.json"),
                                  merges=str(DATA / "gpt2_bpe" / "vocab.bpe"))
    with open(args.corpus, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    ids: list[int] = []
    for encoded in tokenizer(lines)["input_ids"]:
        ids.extend(encoded + [tokenizer.eos_token_id])
    held_out_start = len(ids) - int(len(ids) * 0.01)
    stream = torch.tensor(ids, dtype=torch.long)

    def windows(tokens):
        count = len(tokens) // args.context
        return [{"input_ids": w, "labels": w} for w in tokens[:count * args.context].view(count, args.context)]

    train, held_out = windows(stream[:held_out_start]), windows(stream[held_out_start:])
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=args.context, n_embd=args.hidden,
                        n_layer=args.layers, n_head=args.heads)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    settings = TrainingArguments(output_dir=args.output, per_device_train_batch_size=args.batch,
                                 per_device_eval_batch_size=args.batch, max_steps=args.steps, learning_rate=3e-4,
                                 weight_decay=0.01, warmup_steps=0.02, lr_scheduler_type="linear", max_grad_norm=1.0,
                                 use_cpu=True, report_to=[], eval_strategy="no",
                                 logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0, seed=0)
    trainer = Trainer(model=model, args=settings, train_dataset=train)
    state = trainer.train()
    evaluation = trainer.evaluate(held_out)
    trainer.save_model(args.output)
    print(json.dumps({"optimizer": settings.optim, "train_loss": state.training_loss,
                      "held_out_loss": evaluation["eval_loss"], "steps": state.global_step}))


def run(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--megabytes", type=float, default=3.0)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--side", choices=["transformers"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "transformers":
        transformers_side(args)
        return
    shape = ["--layers", str(args.layers), "--heads", str(args.heads), "--context", str(args.context)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    times: dict[str, list[float]] = {"word2bert": [], "transformers": []}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        write_corpus(corpus, args.megabytes)
        commands = {
            "word2bert": [sys.executable, "-m", "word2bert", "pretrain", "gpt", str(corpus), "-o", f"{tmp}/ours",
                          *shape, "--hidden", str(args.hidden), "--batch-size", str(args.batch),
                          "--max-steps", str(args.steps), "--tokenizer", str(DATA / "gpt2_bpe"), "--lr", "3e-4",
                          "--weight-decay", "0.01", "--warmup", "0.02", "--clip", "1.0", "--eval-fraction", "0.01",
                          "--threads", str(args.threads), "--seed", "0", "--overwrite", "--quiet"],
            "transformers": [sys.executable, __file__, "--side", "transformers", "--corpus", str(corpus), "--output",
                             f"{tmp}/theirs", *shape, "--hidden", str(args.hidden), "--batch", str(args.batch),
                             "--steps", str(args.steps), "--threads", str(args.threads)],
        }
        for round_ in range(args.rounds):
            order = ("word2bert", "transformers") if round_ % 2 == 0 else ("transformers", "word2bert")
            for side in order:
                seconds, out = run(commands[side], env)
                times[side].append(seconds)
                last = [line for line in out.splitlines() if line.startswith("{")]
                print(f"round {round_ + 1} {side}: {seconds:.1f} s {last[-1] if last else ''}", flush=True)
    ours, theirs = statistics.median(times["word2bert"]), statistics.median(times["transformers"])
    print(f"\nGPT-2 {args.layers} x {args.hidden}, context {args.context}, batch {args.batch}, {args.steps} steps, "
          f"{args.megabytes:g} MB of enmix, {args.threads} threads, {args.rounds} alternating rounds\n")
    print("| side | wall seconds per run | median |")
    print("|---|---|---:|")
    for side in ("word2bert", "transformers"):
        print(f"| {side} | {' / '.join(f'{t:.1f}' for t in times[side])} | {statistics.median(times[side]):.1f} |")
    print(f"\nword2bert end to end: {theirs / ours:.2f}x transformers")


if __name__ == "__main__":
    main()
