"""CoVe's downstream comparison on wn_lexname: a BiLSTM-max-pool classifier over GloVe vs GloVe + CoVe.

McCann et al. (2017) compare a classifier fed ``GloVe(w)`` with the same classifier fed
``[GloVe(w); CoVe(w)]``. Here both variants share everything but the features: the classifier
(:class:`word2bert.models.cove.BiLSTMMaxPoolClassifier`: a bidirectional LSTM over the frozen features,
max-pooled over time, a linear layer), the training lines, the order of batches, the seed, the
optimizer (Adam) and the number of steps. The features come from a CoVe directory written by
``word2bert train cove`` (its GloVe table is the GloVe side). A third, optional row (``--control``)
feeds ``[GloVe; MT-LSTM with random weights]``: the same width and architecture without the
translation training, to tell the gain from translation apart from the gain of a wider random input.

P@1 is the accuracy on the test file (fastText's P@1 with one label per line). Example::

    flock /tmp/w2b-bench.lock python bench/cove_wn_lexname.py --cove bench/work/cove --train-lines 40000 \\
        --epochs 2 --markdown bench/results/cove_wn_lexname.md
"""

from __future__ import annotations

import argparse
import lzma
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)


def read_labelled(path: Path, limit: int | None, seed: int) -> tuple[list[str], list[str]]:
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        lines = [line.split(None, 1) for line in handle if line.strip()]
    if limit and limit < len(lines):
        keep = np.random.default_rng(seed).choice(len(lines), limit, replace=False)
        lines = [lines[i] for i in sorted(keep)]
    labels = [parts[0].replace("__label__", "") for parts in lines]
    texts = [parts[1] if len(parts) > 1 else "" for parts in lines]
    return texts, labels


class Labelled:
    def __init__(self, texts, labels, word_index, label_index):
        from word2bert.models.cove import ids_of, tokenize

        self.items = []
        for text, label in zip(texts, labels):
            ids = ids_of(tokenize(text)[:60], word_index)
            if len(ids) == 0:
                ids = np.array([1])
            self.items.append({"input_ids": ids, "labels": label_index[label]})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def lengths(self):
        return [len(item["input_ids"]) for item in self.items]


def collate(items, rng=None):
    from word2bert.models.cove import pad_to_tensor

    input_ids = pad_to_tensor([item["input_ids"] for item in items], 0)
    lengths = torch.tensor([len(item["input_ids"]) for item in items])
    mask = torch.arange(input_ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return {"input_ids": input_ids, "attention_mask": mask.long(),
            "labels": torch.tensor([item["labels"] for item in items])}


def run_variant(name, featurizer, feature_dim, train, test, labels, args):
    from word2bert.models.cove import BiLSTMMaxPoolClassifier
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.samplers import LengthGroupedSampler

    torch.manual_seed(args.seed)
    model = BiLSTMMaxPoolClassifier(featurizer, feature_dim, len(labels), hidden_size=args.hidden, dropout=0.2)
    training = TrainingArguments(batch_size=args.batch_size, epochs=args.epochs, learning_rate=args.lr,
                                 optimizer="adam", weight_decay=0.0, warmup_steps=0.0, max_grad_norm=5.0,
                                 seed=args.seed, progress=False, eval_batch_size=256)
    sampler = LengthGroupedSampler(train.lengths(), args.batch_size, seed=args.seed)
    trainer = Trainer(model, training, train, collate, eval_data=test, sampler=sampler)
    wall, cpu = time.perf_counter(), time.process_time()
    state = trainer.train()
    train_wall, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    metrics = trainer.evaluate()
    return {"name": name, "features": feature_dim, "steps": state.global_step, "train_wall": train_wall,
            "train_cpu": train_cpu, "test_wall": time.perf_counter() - wall, "test_cpu": time.process_time() - cpu,
            "p_at_1": metrics["accuracy"], "test_loss": metrics["loss"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cove", required=True, help="a directory written by `word2bert train cove`")
    parser.add_argument("--train-lines", type=int, default=40000, help="random training lines (0: all 94,196)")
    parser.add_argument("--test-lines", type=int, default=0, help="random test lines (0: all 23,463)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--control", action="store_true", help="add the [GloVe; random MT-LSTM] row")
    parser.add_argument("--markdown", help="append the table to this file")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from word2bert.models.cove import CoveEncoder, CoveFeatures, GloveFeatures, load_cove

    torch.set_num_threads(args.threads)
    encoder = load_cove(args.cove, encoder_only=True).eval()
    word_index = {w: i for i, w in enumerate(encoder.source_words)}
    train_texts, train_labels = read_labelled(DATA / "wn_lexname.train.txt.xz", args.train_lines, args.seed)
    test_texts, test_labels = read_labelled(DATA / "wn_lexname.test.txt.xz", args.test_lines, args.seed + 1)
    labels = sorted(set(train_labels) | set(test_labels))
    label_index = {label: i for i, label in enumerate(labels)}
    train = Labelled(train_texts, train_labels, word_index, label_index)
    test = Labelled(test_texts, test_labels, word_index, label_index)
    tokens = [len(item["input_ids"]) for item in test.items]
    unknown = sum(int((item["input_ids"] == 1).sum()) for item in test.items) / sum(tokens)
    config = encoder.config
    variants = [("GloVe", GloveFeatures(encoder), config.embedding_dim),
                ("GloVe + CoVe", CoveFeatures(encoder), config.feature_dim)]
    if args.control:
        torch.manual_seed(args.seed + 100)
        random_encoder = CoveEncoder(config, encoder.embeddings.weight.detach().numpy()).eval()
        variants.append(("GloVe + random MT-LSTM (control)", CoveFeatures(random_encoder), config.feature_dim))
    load = [os.getloadavg()[0]]
    rows = []
    for name, featurizer, dim in variants:
        rows.append(run_variant(name, featurizer, dim, train, test, labels, args))
        load.append(os.getloadavg()[0])
        print(rows[-1], file=sys.stderr)
    lines = [
        f"## wn_lexname, BiLSTM-max-pool (hidden {args.hidden} per direction), CoVe from `{args.cove}`",
        "",
        f"CoVe: GloVe {config.embedding_dim}d + MT-LSTM {config.num_layers} x {config.hidden_size} per direction "
        f"(CoVe {config.cove_dim}d). Training: {len(train)} random lines of 94,196, {args.epochs:g} epoch(s), batch "
        f"{args.batch_size} (length-grouped), Adam lr {args.lr}, seed {args.seed}, {args.threads} thread(s); "
        f"test: {len(test)} lines ({unknown:.1%} of their tokens outside GloVe). Load average (1 min) before and "
        f"after each row: {', '.join(f'{x:.1f}' for x in load)} (2 cores).",
        "",
        "| features | dims | steps | train wall s | train CPU s | P@1 (test) | test loss |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['name']} | {row['features']} | {row['steps']} | {row['train_wall']:.0f} | "
                     f"{row['train_cpu']:.0f} | {row['p_at_1']:.4f} | {row['test_loss']:.4f} |")
    lines += ["", "fastText supervised on all the training data (data README): P@1 0.617.",
              "", f"Command: `python bench/cove_wn_lexname.py --cove {args.cove} --train-lines {args.train_lines} "
                  f"--epochs {args.epochs:g} --hidden {args.hidden} --batch-size {args.batch_size} --lr {args.lr} "
                  f"--threads {args.threads}{' --control' if args.control else ''}`", ""]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
