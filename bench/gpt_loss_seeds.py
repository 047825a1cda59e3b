"""Is word2bert's GPT-2 loss after 200 steps the same as transformers' up to dropout noise? Several seeds.

A small GPT-2 (by default 2 layers, hidden 128, 4 heads, context 256) on the start of enmix, GPT-2's BPE
ids mapped to a vocabulary of the 7,999 most frequent ids plus one id for the rest (``--vocab 8000``;
``--vocab 50257`` keeps GPT-2's), batch 8, AdamW lr 3e-4
wd 0.01 as in ``bench/gpt_vs_transformers.py``. For each seed both models start from transformers'
random initialisation (copied into ours through the key map) and train 200 steps on the same batches;
the seed also seeds the dropout masks (ours draw theirs from numpy, seeded from torch's generator;
transformers' from torch's ``bernoulli_``), so the two runs of a seed differ only in the masks and in
float rounding. With ``--dropout 0`` the two compute the same function: their losses should follow each
other closely (the check that the models, gradients and optimizers agree); with dropout 0.1 the gap
between the two sides of one seed is compared with the spread across seeds.

    python bench/gpt_loss_seeds.py --seeds 0,1,2,3 [--dropout 0.1] [--steps 200] [--layers 2] [--hidden 128]
                                   [--vocab 8000] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpt_vs_transformers import (CONTEXT, DATA, Runner, encoded_windows, load_average, ours_loss,  # noqa: E402
                                 paired_models, theirs_loss)

HEADS, BATCH, GPT2_VOCAB = 4, 8, 50257
HELD_OUT_BATCHES = 4


def remapped_windows(data_dir: Path, steps: int, vocab: int) -> torch.Tensor:
    """(steps + held-out) * BATCH windows of ids in [0, vocab): the vocab - 1 most frequent BPE ids keep
    a rank each (by frequency), every other id becomes vocab - 1 (GPT-2's ids as they are for 50,257)."""
    windows = encoded_windows(data_dir, (steps + HELD_OUT_BATCHES) * BATCH, BATCH)
    if vocab >= GPT2_VOCAB:
        return torch.from_numpy(windows)
    ids, counts = np.unique(windows, return_counts=True)
    kept = ids[np.argsort(-counts, kind="stable")[: vocab - 1]]
    mapping = np.full(windows.max() + 1, vocab - 1, dtype=np.int64)
    mapping[kept] = np.arange(len(kept))
    return torch.from_numpy(mapping[windows])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=8000, help="50257: GPT-2's BPE ids unchanged")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", help="append the results table to this Markdown file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import transformers

    from word2bert.models.gpt import GPT2Config

    windows = remapped_windows(Path(args.data), args.steps, args.vocab)
    batches = list(windows.split(BATCH))
    train_batches, held_out_batches = batches[: args.steps], batches[args.steps:]
    config = GPT2Config(vocab_size=args.vocab, n_positions=CONTEXT, n_embd=args.hidden, n_layer=args.layers, n_head=HEADS,
                        resid_pdrop=args.dropout, embd_pdrop=args.dropout, attn_pdrop=args.dropout)
    rows, load_before, started = [], load_average(), time.perf_counter()
    for seed in [int(s) for s in args.seeds.split(",")]:
        torch.manual_seed(seed)
        ours, theirs = paired_models(config)
        result = {"seed": seed}
        for runner in (Runner("word2bert", ours, ours_loss, BATCH), Runner("transformers", theirs, theirs_loss, BATCH)):
            torch.manual_seed(1000 + seed)  # each side's dropout stream starts from the same seed
            runner.train_steps(train_batches, warmup_steps=len(train_batches))  # (untimed)
            result[runner.name] = (runner.losses, runner.evaluate(held_out_batches))
        rows.append(result)
        ours_losses, ours_eval = result["word2bert"]
        theirs_losses, theirs_eval = result["transformers"]
        print(f"seed {seed}: last 20 steps {np.mean(ours_losses[-20:]):.4f} / {np.mean(theirs_losses[-20:]):.4f}, "
              f"held-out {ours_eval:.4f} / {theirs_eval:.4f} (word2bert / transformers)", flush=True)

    checkpoints = [s for s in (10, 50, 100, 150, 200) if s <= args.steps]
    lines = [
        f"### GPT-2 loss parity over seeds, dropout {args.dropout:g}",
        "",
        f"Command: `python bench/gpt_loss_seeds.py --seeds {args.seeds} --dropout {args.dropout:g} --steps {args.steps} "
        f"--layers {args.layers} --hidden {args.hidden} --vocab {args.vocab}`"
        f" ({time.perf_counter() - started:.0f} s; load before `{load_before}`, after `{load_average()}`); torch "
        f"{torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads.",
        f"Model: {args.layers} layers, hidden {args.hidden}, {HEADS} heads, context {CONTEXT}, vocabulary {args.vocab} "
        f"({'GPT-2 BPE' if args.vocab >= GPT2_VOCAB else 'GPT-2 BPE ids remapped by frequency'}), batch {BATCH}; loss at step s = mean training loss of steps s-9..s "
        "(word2bert / transformers).",
        "",
        "| seed | " + " | ".join(f"step {s}" for s in checkpoints) + " | last 20 steps | held-out | held-out gap |",
        "|---:|" + "---|" * len(checkpoints) + "---|---|---:|",
    ]
    gaps = []
    for result in rows:
        ours_losses, ours_eval = result["word2bert"]
        theirs_losses, theirs_eval = result["transformers"]
        cells = [f"{np.mean(ours_losses[s - 10:s]):.4f} / {np.mean(theirs_losses[s - 10:s]):.4f}" for s in checkpoints]
        gaps.append(ours_eval - theirs_eval)
        lines.append(f"| {result['seed']} | " + " | ".join(cells)
                     + f" | {np.mean(ours_losses[-20:]):.4f} / {np.mean(theirs_losses[-20:]):.4f} | "
                     f"{ours_eval:.4f} / {theirs_eval:.4f} | {gaps[-1]:+.4f} |")
    ours_mean = statistics.mean(r["word2bert"][1] for r in rows)
    theirs_mean = statistics.mean(r["transformers"][1] for r in rows)
    spread = statistics.pstdev([r["transformers"][1] for r in rows]) if len(rows) > 1 else float("nan")
    lines += ["", f"Held-out mean: word2bert {ours_mean:.4f}, transformers {theirs_mean:.4f} (difference "
              f"{ours_mean - theirs_mean:+.4f}; word2bert lower in {sum(g < 0 for g in gaps)} of {len(gaps)} seeds; "
              f"standard deviation of transformers' held-out loss across seeds {spread:.4f}).", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
