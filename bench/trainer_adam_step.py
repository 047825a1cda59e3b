"""The trainer's Adam step: torch's fused AdamW (word2bert's default since session 15) against torch's
default implementation, on GPT-2 small, in one process.

Training only: a GPT2LMHeadModel of GPT-2 small's shape (12 layers, 768 wide, 12 heads, vocabulary 50,257,
124M parameters), batches of 8 x 128 random tokens; each step is zero_grad, forward, backward, gradient
clipping (1.0) and the optimizer built by ``word2bert.train.trainer.build_optimizer`` (AdamW, lr 3e-4,
weight decay 0.01 on matrices), the default one built the same way with the fused option withheld.
Blocks of ``--steps`` steps alternate between the two optimizers (the model is shared, so the machine's
state is too); the table gives medians of the whole step and of ``optimizer.step()`` alone.

    python bench/trainer_adam_step.py [--blocks 6] [--steps 3] [--threads 2]

What the user waits for end to end is measured with the command itself (see the README: ``word2bert
pretrain gpt`` on 3 MB of enmix, 12 steps, before and after).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import word2bert.train.trainer as trainer_module
from word2bert.models.gpt import GPT2Config, GPT2LMHeadModel
from word2bert.train import TrainingArguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=6, help="alternating blocks (even: fused, odd: default)")
    parser.add_argument("--steps", type=int, default=3, help="steps per block")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=128, n_embd=768, n_layer=12, n_head=12))
    settings = TrainingArguments(learning_rate=3e-4, weight_decay=0.01, progress=False)
    optimizers = {"fused": trainer_module.build_optimizer(model, settings)}
    fused_update = trainer_module.fused_update
    trainer_module.fused_update = lambda groups: {}
    try:
        optimizers["default"] = trainer_module.build_optimizer(model, settings)
    finally:
        trainer_module.fused_update = fused_update
    assert all(group.get("fused") for group in optimizers["fused"].param_groups)
    ids = torch.randint(0, 50257, (8, 128))
    step_times = {name: [] for name in optimizers}
    update_times = {name: [] for name in optimizers}
    for block in range(args.blocks):
        name = "fused" if block % 2 == 0 else "default"
        optimizer = optimizers[name]
        for _ in range(args.steps):
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            model(ids, labels=ids).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            before_update = time.perf_counter()
            optimizer.step()
            end = time.perf_counter()
            step_times[name].append(end - start)
            update_times[name].append(end - before_update)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"GPT-2 small ({parameters / 1e6:.1f}M parameters), batch 8 x 128, {args.threads} threads, "
          f"{args.blocks} alternating blocks of {args.steps} steps\n")
    print("| optimizer | step (s, median) | optimizer.step() (s, median) | steps |")
    print("|---|---:|---:|---:|")
    for name in ("fused", "default"):
        print(f"| {name} | {statistics.median(step_times[name]):.2f} | {statistics.median(update_times[name]):.3f} | "
              f"{len(step_times[name])} |")
    print(f"\nstep ratio default / fused: {statistics.median(step_times['default']) / statistics.median(step_times['fused']):.2f}x")


if __name__ == "__main__":
    main()
