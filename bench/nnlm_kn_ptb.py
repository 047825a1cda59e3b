"""Penn Treebank perplexities and training times: interpolated Kneser-Ney n-grams and Bengio's NNLM.

Both predict every word and every end of sentence of the test file from the sentence so far
(contexts never cross a sentence end), over the same 10,000-word vocabulary, so their perplexities
compare directly. Kneser-Ney: orders 2 to 5, modified (three discounts per order) and single
discount; time = vocabulary + counting (file to model). NNLM: ``train_nnlm`` (the code
``word2bert train nnlm`` runs), time = file to trained model, and the training loop alone.

    flock /tmp/w2b-bench.lock python bench/nnlm_kn_ptb.py --order 6 --embedding-size 128 --hidden-size 384 \\
        --dropout 0.3 --epochs 3 --batch-size 512 --lr 3e-3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from word2bert.corpus.lm_corpus import build_lm_vocabulary  # noqa: E402
from word2bert.fileio import open_text  # noqa: E402
from word2bert.models.kneser_ney import KneserNeyLM  # noqa: E402
from word2bert.models.nnlm import NNLMConfig, train_nnlm  # noqa: E402

from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--order", type=int, default=6, help="NNLM n (reads n-1 words)")
    parser.add_argument("--embedding-size", type=int, default=128)
    parser.add_argument("--hidden-size", type=int, default=384)
    parser.add_argument("--direct", action="store_true", help="with the direct connections W")
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps instead of --epochs")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-nnlm", action="store_true")
    parser.add_argument("--skip-kn", action="store_true", help="only the NNLM")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "nnlm_kn_ptb.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, valid, test = (DATA / f"ptb.{name}.txt.xz" for name in ("train", "valid", "test"))
    load_before = os.getloadavg()[0]
    rows = []
    for discount in () if args.skip_kn else ("modified", "single"):
        for order in (2, 3, 4, 5):
            started, cpu_started = time.perf_counter(), time.process_time()
            model = KneserNeyLM.train(train, order=order, discount=discount)
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            rows.append((f"Kneser-Ney {order}-gram, {discount} discount{'s' if discount == 'modified' else ''}",
                         model.perplexity(valid), model.perplexity(test), f"{seconds:.1f} s ({cpu_seconds:.1f} CPU s)",
                         "", "1 core"))
            print(rows[-1], flush=True)
    if not args.skip_nnlm:
        config = NNLMConfig(order=args.order, embedding_size=args.embedding_size, hidden_size=args.hidden_size,
                            direct_connections=args.direct, dropout=args.dropout)
        started, cpu_started = time.perf_counter(), time.process_time()
        vocab = build_lm_vocabulary(train)
        train_tokens = sum(len(line.split()) + 1 for line in open_text(train))   # words + <eos>
        result = train_nnlm(train, config, valid_path=valid, test_path=test, epochs=args.epochs, max_steps=args.max_steps,
                            batch_size=args.batch_size, learning_rate=args.lr, num_threads=args.threads,
                            progress=False, vocab=vocab)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        steps = len(result.history)
        tokens = steps * args.batch_size
        loop = result.train_seconds
        description = (f"NNLM n={args.order}, m={args.embedding_size}, h={args.hidden_size}, "
                       f"{'with' if args.direct else 'no'} direct connections, dropout {args.dropout}, "
                       f"Adam {args.lr} linear decay, batch {args.batch_size}, {steps} steps "
                       f"({tokens:,} examples, {tokens / train_tokens:.2f} "
                       "epochs)")
        rows.append((description, result.perplexities["valid"], result.perplexities["test"],
                     f"{seconds:.0f} s ({cpu_seconds / 60:.1f} CPU-min, evaluation included)",
                     f"{tokens / loop:,.0f} examples/s", f"{args.threads} threads"))
        print(rows[-1], flush=True)
    lines = ["| model | PTB valid ppl | PTB test ppl | time (file to model) | training rate | CPU |",
             "|---|---:|---:|---:|---:|---|"]
    lines += [f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]} | {r[4]} | {r[5]} |" for r in rows]
    text = "\n".join(lines)
    print(text)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with open(args.out, "a", encoding="utf-8") as handle:
        handle.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')} `python bench/nnlm_kn_ptb.py {' '.join(sys.argv[1:])}`\n\n"
                     f"load average {load_before:.2f} before; `uptime` after: {uptime}\n\n{text}\n")


if __name__ == "__main__":
    main()
