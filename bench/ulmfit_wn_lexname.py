"""ULMFiT on wn_lexname (45-class gloss classification): P@1 of the three stages against the same
classifier trained from random weights, and against fastText's 0.617 (../shared/data/README.md).

Three runs, each its own command (the CPU budget is shared), each appending one row to
``bench/results/ulmfit_wn_lexname.md``:

* ``pretrain``: stage 1, an AWD-LSTM language model trained on PTB for ``--budget`` CPU seconds (PTB, not
  enmix: enmix holds WordNet's glosses, the test texts). Saved in ``--workdir``/general.
* ``ulmfit``: stage 2 (the general model fine-tuned on the training glosses, ``--lm-epochs``) and
  stage 3 (the classifier: concat pooling, gradual unfreezing one group per epoch, discriminative and
  slanted triangular rates), evaluated on the test file.
* ``scratch``: the same classifier (same sizes, vocabulary from the training glosses) from random
  weights, every layer trained from the first epoch at one rate, the same epochs.

    flock /tmp/w2b-bench.lock python bench/ulmfit_wn_lexname.py pretrain --budget 900
    flock /tmp/w2b-bench.lock python bench/ulmfit_wn_lexname.py ulmfit --train-examples 20000
    flock /tmp/w2b-bench.lock python bench/ulmfit_wn_lexname.py scratch --train-examples 20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from word2bert.models.awd_lstm import AWDLSTMConfig  # noqa: E402

from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
SIZES = {"embedding_size": 200, "lstm_size": 600, "num_layers": 3}   # the default of --sizes


def parse_sizes(text: str) -> dict:
    """``--sizes 200,600,3``: embedding size, LSTM size, layers."""
    embedding, lstm, layers = (int(x) for x in text.split(","))
    return {"embedding_size": embedding, "lstm_size": lstm, "num_layers": layers}


def subset_file(path: Path, n: int | None, seed: int, workdir: Path) -> Path:
    """A random subset of ``n`` lines of a labelled file (all of it when ``n`` is None)."""
    from word2bert.fileio import open_text

    with open_text(path) as handle:
        lines = [line for line in handle if line.strip()]
    if n is not None and n < len(lines):
        keep = np.sort(np.random.default_rng(seed).permutation(len(lines))[:n])
        lines = [lines[i] for i in keep]
    target = workdir / f"{path.name.split('.')[0]}.{n or 'all'}.{seed}.txt"
    target.write_text("".join(lines), encoding="utf-8")
    return target


def run_pretrain(args) -> dict:
    from word2bert.tasks.ulmfit import pretrain_language_model

    started = [None]

    def stop(trainer, state):     # --budget CPU seconds of training, from the end of the first step
        if started[0] is None:      # (CPU time: a run paused by another job's measurement keeps its budget)
            started[0] = time.process_time()
        elif time.process_time() - started[0] >= args.budget:
            state.total_steps = state.global_step

    config = AWDLSTMConfig(**args.sizes)
    result = pretrain_language_model(DATA / "ptb.train.txt.xz", config, DATA / "ptb.valid.txt.xz",
                                     Path(args.workdir) / "general", batch_size=20, bptt=70,
                                     epochs=1000.0 if args.steps is None else 1.0, max_steps=args.steps,
                                     nonmono=5, seed=141, progress=False, num_threads=args.threads,
                                     callbacks=[stop])
    return {"run": "pretrain", "steps": len(result.history), "seconds": round(result.train_seconds, 1),
            "tokens_per_second": round(result.tokens_per_second), "ptb_valid_perplexity":
                round(result.perplexities["valid"], 1)}


def run_classifier(args, kind: str) -> dict:
    from word2bert.tasks.ulmfit import finetune_language_model, train_classifier

    workdir = Path(args.workdir)
    train = subset_file(DATA / "wn_lexname.train.txt.xz", args.train_examples, args.seed, workdir)
    test = subset_file(DATA / "wn_lexname.test.txt.xz", args.test_examples, args.seed + 1, workdir)
    lm_seconds, lm_perplexity = 0.0, None
    started = time.perf_counter()
    if kind == "ulmfit":
        general = workdir / "general"
        if not (general / "config.json").is_file():
            raise SystemExit(f"no general-domain model in {general}: run the 'pretrain' command first")
        tuned = finetune_language_model(general, train, valid_path=test, output_dir=workdir / "tuned",
                                        epochs=args.lm_epochs, batch_size=32, bptt=70, learning_rate=args.lm_lr,
                                        seed=args.seed, progress=False, num_threads=args.threads)
        lm_seconds = tuned.train_seconds
        lm_perplexity = round(tuned.perplexities["valid"], 1)
        result = train_classifier(train, test, model_dir=workdir / "tuned", epochs=args.epochs,
                                  batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed, progress=False,
                                  num_threads=args.threads)
    else:
        result = train_classifier(train, test, config=AWDLSTMConfig(**args.sizes), epochs=args.epochs,
                                  batch_size=args.batch_size, learning_rate=args.lr, gradual_unfreezing=False,
                                  discriminative_factor=1.0, seed=args.seed, progress=False,
                                  num_threads=args.threads)
    total = time.perf_counter() - started
    return {"run": kind, "train_examples": args.train_examples or "all", "test_examples": result.metrics["examples"],
            "epochs": args.epochs, "p_at_1": round(result.metrics["accuracy"], 4),
            "lm_finetune_seconds": round(lm_seconds, 1), "lm_finetune_test_perplexity": lm_perplexity,
            "classifier_seconds": round(result.train_seconds, 1), "total_seconds": round(total, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", choices=["pretrain", "ulmfit", "scratch"])
    parser.add_argument("--workdir", default="/tmp/w2b-ulmfit")
    parser.add_argument("--budget", type=float, default=900.0, help="CPU seconds of stage-1 training (pretrain)")
    parser.add_argument("--steps", type=int, default=None, help="stage-1 optimizer steps instead of --budget")
    parser.add_argument("--train-examples", type=int, default=None, help="a random subset of the training file")
    parser.add_argument("--test-examples", type=int, default=None, help="a random subset of the test file")
    parser.add_argument("--epochs", type=int, default=5, help="classifier epochs (ulmfit: one per group = 5)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--lm-epochs", type=float, default=1.0, help="stage 2 epochs over the training glosses")
    parser.add_argument("--lm-lr", type=float, default=4e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=parse_sizes, default=SIZES, help="embedding,lstm,layers of the AWD-LSTM "
                        "(pretrain and scratch; ulmfit reads them from the pre-trained model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ulmfit_wn_lexname.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    row = run_pretrain(args) if args.run == "pretrain" else run_classifier(args, args.run)
    row["load_average"] = f"{load_before:.2f} -> {os.getloadavg()[0]:.2f}"
    print(json.dumps(row))
    with open(args.out, "a", encoding="utf-8") as handle:
        handle.write(f"\n- {time.strftime('%Y-%m-%d %H:%M')} `python bench/ulmfit_wn_lexname.py {' '.join(sys.argv[1:])}` "
                     f"(sizes {args.sizes}; `uptime`: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()})"
                     f"\n  `{json.dumps(row)}`\n")


if __name__ == "__main__":
    main()
