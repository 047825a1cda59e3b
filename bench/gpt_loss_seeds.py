"""Is word2bert's GPT-2 loss after 200 steps the same as transformers' up to dropout noise? Several seeds.

A small GPT-2 (by default 2 layers, hidden 128, 4 heads, context 256) on the start of enmix, GPT-2's BPE
ids mapped to a vocabulary of the 7,999 most frequent ids plus one id for the rest (``--vocab 8000``;
``--vocab 50257`` keeps GPT-2's), batch 8 (``--heads``, ``--batch`` change those), AdamW lr 3e-4
wd 0.01 as in ``bench/gpt_vs_transformers.py``. For each seed both models start from transformers'
random initialisation (copied into ours through the key map) and train 200 steps on the same batches;
the seed also seeds the dropout masks (ours draw theirs from numpy, seeded from torch's generator;
transformers' from torch's ``bernoulli_``), so the two runs of a seed differ only in the masks and in
float rounding. With ``--dropout 0`` the two compute the same function: their losses should follow each
other closely (the check that the models, gradients and optimizers agree); with dropout 0.1 the gap
between the two sides of one seed is compared with the spread across seeds.

``--masks torch`` has word2bert draw its masks as ``F.dropout`` does (``nn.dropout.set_mask_source``):
then both sides drop the same elements and a seed's two runs differ only in float rounding.
``--compare-masks`` trains word2bert twice per seed instead, with numpy's masks and with torch's, and
``--init-seed N`` starts every run from seed N's weights so that the seeds vary only the masks: the
spread that the dropout draws alone give, and whether the way the masks are drawn moves the loss.

    python bench/gpt_loss_seeds.py --seeds 0,1,2,3 [--dropout 0.1] [--steps 200] [--layers 2] [--hidden 128]
                                   [--heads 4] [--batch 8] [--vocab 8000] [--masks numpy|torch]
                                   [--compare-masks] [--init-seed N] [--threads 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
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

GPT2_VOCAB = 50257
HELD_OUT_BATCHES = 4


def remapped_windows(data_dir: Path, steps: int, vocab: int, batch: int) -> torch.Tensor:
    """(steps + held-out) * batch windows of ids in [0, vocab): the vocab - 1 most frequent BPE ids keep
    a rank each (by frequency), every other id becomes vocab - 1 (GPT-2's ids as they are for 50,257)."""
    windows = encoded_windows(data_dir, (steps + HELD_OUT_BATCHES) * batch, batch)
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
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=8000, help="50257: GPT-2's BPE ids unchanged")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--masks", choices=("numpy", "torch"), default="numpy",
                        help="word2bert's dropout masks: its own numpy draws (default) or torch's, as F.dropout")
    parser.add_argument("--compare-masks", action="store_true",
                        help="train word2bert twice per seed, numpy masks against torch's, instead of against transformers")
    parser.add_argument("--init-seed", type=int,
                        help="start every run from this seed's weights; the seeds then seed only the dropout masks")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", help="append the results table to this Markdown file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import transformers

    from word2bert.models.gpt import GPT2Config
    from word2bert.nn.dropout import set_mask_source

    windows = remapped_windows(Path(args.data), args.steps, args.vocab, args.batch)
    batches = list(windows.split(args.batch))
    train_batches, held_out_batches = batches[: args.steps], batches[args.steps:]
    config = GPT2Config(vocab_size=args.vocab, n_positions=CONTEXT, n_embd=args.hidden, n_layer=args.layers, n_head=args.heads,
                        resid_pdrop=args.dropout, embd_pdrop=args.dropout, attn_pdrop=args.dropout)
    first, second = ("word2bert, numpy masks", "word2bert, torch masks") if args.compare_masks else ("word2bert", "transformers")
    rows, load_before, started = [], load_average(), time.perf_counter()
    for seed in [int(s) for s in args.seeds.split(",")]:
        torch.manual_seed(seed if args.init_seed is None else args.init_seed)
        ours, theirs = paired_models(config)
        if args.compare_masks:  # the same model twice, differing only in how its dropout masks are drawn
            sides = [(first, ours, ours_loss, "numpy"), (second, copy.deepcopy(ours), ours_loss, "torch")]
        else:
            sides = [(first, ours, ours_loss, args.masks), (second, theirs, theirs_loss, args.masks)]
        result = {"seed": seed}
        for name, model, loss_fn, masks in sides:
            set_mask_source(masks)
            runner = Runner(name, model, loss_fn, args.batch)
            # each side's dropout stream starts from the same seed
            torch.manual_seed(1000 + seed if args.init_seed is None else seed)
            runner.train_steps(train_batches, warmup_steps=len(train_batches))  # (untimed)
            result[name] = (runner.losses, runner.evaluate(held_out_batches))
        rows.append(result)
        first_losses, first_eval = result[first]
        second_losses, second_eval = result[second]
        print(f"seed {seed}: last 20 steps {np.mean(first_losses[-20:]):.4f} / {np.mean(second_losses[-20:]):.4f}, "
              f"held-out {first_eval:.4f} / {second_eval:.4f} ({first} / {second})", flush=True)

    checkpoints = [s for s in (10, 50, 100, 150, 200) if s <= args.steps]
    lines = [
        f"### GPT-2 loss parity over seeds, dropout {args.dropout:g}",
        "",
        f"Command: `python bench/gpt_loss_seeds.py --seeds {args.seeds} --dropout {args.dropout:g} --steps {args.steps} "
        f"--layers {args.layers} --hidden {args.hidden} --heads {args.heads} --batch {args.batch} --vocab {args.vocab}"
        f"{' --masks torch' if args.masks == 'torch' else ''}{' --compare-masks' if args.compare_masks else ''}"
        f"{'' if args.init_seed is None else f' --init-seed {args.init_seed}'} --threads {args.threads}`"
        f" ({time.perf_counter() - started:.0f} s; load before `{load_before}`, after `{load_average()}`); torch "
        f"{torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads.",
        f"Model: {args.layers} layers, hidden {args.hidden}, {args.heads} heads, context {CONTEXT}, vocabulary {args.vocab} "
        f"({'GPT-2 BPE' if args.vocab >= GPT2_VOCAB else 'GPT-2 BPE ids remapped by frequency'}), batch {args.batch}; "
        + (f"weights of seed {args.init_seed} in every row (the seed seeds the dropout masks only); "
           if args.init_seed is not None else "")
        + (f"word2bert's dropout masks drawn by {'torch, as F.dropout' if args.masks == 'torch' else 'numpy'}; "
           if not args.compare_masks else "")
        + f"loss at step s = mean training loss of steps s-9..s ({first} / {second}).",
        "",
        "| seed | " + " | ".join(f"step {s}" for s in checkpoints) + " | last 20 steps | held-out | held-out gap |",
        "|---:|" + "---|" * len(checkpoints) + "---|---|---:|",
    ]
    gaps = []
    for result in rows:
        first_losses, first_eval = result[first]
        second_losses, second_eval = result[second]
        cells = [f"{np.mean(first_losses[s - 10:s]):.4f} / {np.mean(second_losses[s - 10:s]):.4f}" for s in checkpoints]
        gaps.append(first_eval - second_eval)
        lines.append(f"| {result['seed']} | " + " | ".join(cells)
                     + f" | {np.mean(first_losses[-20:]):.4f} / {np.mean(second_losses[-20:]):.4f} | "
                     f"{first_eval:.4f} / {second_eval:.4f} | {gaps[-1]:+.4f} |")
    first_mean = statistics.mean(r[first][1] for r in rows)
    second_mean = statistics.mean(r[second][1] for r in rows)
    first_spread = statistics.pstdev([r[first][1] for r in rows]) if len(rows) > 1 else float("nan")
    second_spread = statistics.pstdev([r[second][1] for r in rows]) if len(rows) > 1 else float("nan")
    standard_error = statistics.stdev(gaps) / len(gaps) ** 0.5 if len(gaps) > 1 else float("nan")
    lines += ["", f"Held-out mean: {first} {first_mean:.4f}, {second} {second_mean:.4f} (difference "
              f"{first_mean - second_mean:+.4f}, standard error {standard_error:.4f}; {first} lower in "
              f"{sum(g < 0 for g in gaps)} of {len(gaps)} seeds; standard deviation of the held-out loss across seeds "
              f"{first_spread:.4f} / {second_spread:.4f}).", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
