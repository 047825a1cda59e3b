"""XLNet pre-training: the memory of a step grows with seq_len + mem_len, not with the stream read so far.

For each (seq_len, mem_len), a fresh process builds the issue's model (4 layers, d_model 256, 4
heads, FFN 1024, vocabulary 8000) and trains it step after step on one long stream per batch row
(the 64-token memory, or whatever ``mem_len`` is, carried from step to step as the trainer does),
with permutation-LM batches (about 1/6 of every window predicted: 22 of 128). After chosen steps it
records:

* **activations saved for backward** in that step: the bytes of every distinct tensor storage that
  autograd keeps for the backward pass (``torch.autograd.graph.saved_tensors_hooks``), parameters
  excluded -- exact and independent of machine load;
* **the carried memory**: bytes of the ``state`` tensors handed to the next step;
* **peak resident memory** of the process so far (``ru_maxrss``; it includes the model, AdamW's
  state and the Python/torch runtime, and can only grow).

If anything were kept from earlier segments (a memory that is not cut to ``mem_len``, a graph that
is not detached), the first two columns would grow with the step and the third would keep rising.

    python bench/xlnet_step_memory.py [--configs 128:0,128:64,128:128,256:64] [--steps 1,2,8,32] [--batch 4]

This is not a speed comparison (no peer): run it with one thread (``--threads 1``), outside the
speed lock.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

VOCAB = 8000


def saved_activation_bytes(parameters) -> tuple[object, dict]:
    """A ``saved_tensors_hooks`` context that records every distinct storage autograd saves (parameters
    excluded) into the returned dict: data pointer -> bytes."""
    parameter_storages = {p.untyped_storage().data_ptr() for p in parameters}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in parameter_storages:
            seen[pointer] = storage.nbytes()
        return tensor

    return torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), seen


def probe(args) -> None:
    """One (seq_len, mem_len): train, print a PROBE line per recorded step."""
    from word2bert.models.xlnet import XLNetConfig, XLNetLMHeadModel
    from word2bert.objectives.permutation_lm import PermutationLanguageModeling

    seq_len, mem_len = args.seq_len, args.mem_len
    torch.manual_seed(0)
    config = XLNetConfig(vocab_size=VOCAB, d_model=256, n_layer=4, n_head=4, d_inner=1024, mem_len=mem_len,
                         dropout=0.1)
    model = XLNetLMHeadModel(config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    objective = PermutationLanguageModeling(prediction_k=6.0, target_unit="span")
    rng = np.random.default_rng(0)
    record = set(args.record)
    state = None
    for step in range(1, max(record) + 1):
        batch = {"input_ids": rng.integers(0, VOCAB, size=(args.batch, seq_len))}
        objective.prepare(batch, None, rng)
        tensors = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in batch.items()}
        started = time.perf_counter()
        hooks, saved = saved_activation_bytes(model.parameters())
        optimizer.zero_grad(set_to_none=True)
        with hooks:
            output = model(tensors["input_ids"], perm_mask=tensors["perm_mask"],
                           target_mapping=tensors["target_mapping"], labels=tensors["labels"], state=state)
        output.loss.backward()
        optimizer.step()
        state = [m.detach() for m in output.state] if output.state is not None else None
        seconds = time.perf_counter() - started
        if step in record:
            memory_bytes = sum(m.numel() * m.element_size() for m in state or [] if m is not None)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"PROBE {step} {step * seq_len} {sum(saved.values())} {memory_bytes} {peak:.1f} {seconds:.3f} "
                  f"{output.loss.item():.4f}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="128:0,128:64,128:128,256:64",
                        help="comma-separated seq_len:mem_len pairs")
    parser.add_argument("--steps", default="1,2,8,32", help="steps after which to record (the last is the run length)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench/results/xlnet_step_memory.md")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seq-len", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--mem-len", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.record = sorted({int(s) for s in args.steps.split(",")})
    torch.set_num_threads(args.threads)
    if args.probe:
        probe(args)
        return 0
    from word2bert.fileio import atomic_write

    load_before = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = []
    for pair in args.configs.split(","):
        seq_len, mem_len = (int(x) for x in pair.split(":"))
        command = [sys.executable, __file__, "--probe", "--seq-len", str(seq_len), "--mem-len", str(mem_len),
                   "--steps", args.steps, "--batch", str(args.batch), "--threads", str(args.threads)]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        output = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
        for line in output.splitlines():
            if line.startswith("PROBE"):
                step, tokens, saved, memory, peak, seconds, _loss = line.split()[1:]
                rows.append((seq_len, mem_len, int(step), int(tokens), int(saved), int(memory), float(peak),
                             float(seconds)))
                print(rows[-1], flush=True)
    load_after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    shown = " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# XLNet pre-training: memory of a step vs seq_len + mem_len and vs the stream read",
        "",
        f"Command: `{('python bench/xlnet_step_memory.py ' + shown).strip()}`",
        "",
        (f"Model: 4 layers, d_model 256, 4 heads, FFN 1024, vocabulary {VOCAB}, dropout 0.1; batch {args.batch} "
         "rows, each reading its own stream window after window with the memory carried (detached) from step "
         "to step; permutation-LM batches (span targets, 1/6 of each window predicted), AdamW. One fresh "
         f"process per (seq_len, mem_len). Machine: {platform.processor() or platform.machine()}, torch "
         f"{torch.__version__}, {args.threads} thread(s); load average before / after: {load_before} / "
         f"{load_after}."),
        "",
        ("| seq_len | mem_len | seq_len + mem_len | step | stream read per row | activations saved for backward | "
         "carried memory | peak resident memory so far | step time |"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for seq_len, mem_len, step, tokens, saved, memory, peak, seconds in rows:
        lines.append(f"| {seq_len} | {mem_len} | {seq_len + mem_len} | {step} | {tokens:,} tokens | "
                     f"{saved / 2**20:.1f} MiB | {memory / 2**20:.2f} MiB | {peak:.0f} MiB | {seconds:.2f} s |")
    lines += ["", ("Activations and carried memory are exact byte counts (load-independent); the step time is "
                   "wall clock on the machine as it was.")]
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
