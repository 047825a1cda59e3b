"""``word2bert pretrain xlnet``: XLNet's permutation language model on a text corpus.

Examples::

    word2bert pretrain xlnet corpus.txt -o xlnet-small --layers 4 --hidden 256 --heads 4 --ffn 1024 \\
        --seq-len 128 --mem-len 64 --batch-size 16 --max-steps 10000
    word2bert pretrain xlnet corpus.txt -o xlnet-small --resume        # continue after Ctrl-C
    word2bert finetune xlnet-small --train train.tsv --dev dev.tsv --pooling last -o clf
    word2bert encode xlnet-small "a sentence" --pooling last
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from word2bert.commands import (
    add_overwrite_option,
    check_resume_flags,
    prepare_output_directory,
)
from word2bert.commands._contextual import (
    read_config_file,
    save_pretrained_with,
    tokenizer_stream,
    train_and_save,
)
from word2bert.errors import Word2BertError

#: Flags a ``--resume`` may change: how long to go on and how to report, not what is trained.
RESUMABLE = {"max_steps", "epochs", "save_steps", "eval_steps", "threads", "quiet", "resume", "overwrite",
             "output", "corpus"}

#: --flag -> XLNetConfig field, to check a run that left no training_args.json.
ARCHITECTURE = {"layers": "n_layer", "hidden": "d_model", "heads": "n_head", "ffn": "d_inner", "dropout": "dropout",
                "mem_len": "mem_len", "clamp_len": "clamp_len", "bi_data": "bi_data"}

EPILOG = """examples:
  word2bert pretrain xlnet corpus.txt -o xlnet-small --layers 4 --hidden 256 --heads 4 --ffn 1024
  word2bert pretrain xlnet corpus.txt -o xlnet-small --seq-len 128 --mem-len 64 --num-predict 22
  word2bert pretrain xlnet corpus.txt -o xlnet-small --tokenizer spm-dir/ --bi-data
  word2bert pretrain xlnet corpus.txt -o xlnet-small --resume      # continue an interrupted run

The corpus (plain/.gz/.bz2/.xz) is read as one token stream, one document per line ([SEP] between
documents), tokenised with a unigram (SentencePiece-style) vocabulary trained on it unless --tokenizer
gives one. Every batch row reads its own part of the stream window after window, and the memory of
the previous window (--mem-len tokens per layer) is carried from step to step. About 1/K of each
window is predicted (--prediction-k, or exactly --num-predict per window), in spans as the reference
data pipeline builds them (--target-unit span) or single tokens; the factorisation order is random.
"""


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter
    from word2bert.commands import subcommand_group

    models = subcommand_group(commands, "pretrain", help="pre-train a contextual model")
    xlnet = models.add_parser("xlnet", help="XLNet: permutation language modelling with memory",
                              formatter_class=HelpfulFormatter, epilog=EPILOG,
                              description="Pre-train XLNet (two-stream permutation LM, Transformer-XL memory).")
    xlnet.add_argument("corpus", help="text file (plain/.gz/.bz2/.xz), one document per line")
    xlnet.add_argument("-o", "--output", required=True, help="output directory (Hugging Face layout + checkpoint)")
    xlnet.add_argument("--config", help="XLNetConfig JSON (transformers' field names); flags below override it")
    xlnet.add_argument("--layers", type=int, help="n_layer (default 4)")
    xlnet.add_argument("--hidden", type=int, help="d_model (default 256)")
    xlnet.add_argument("--heads", type=int, help="n_head (default 4)")
    xlnet.add_argument("--ffn", type=int, help="d_inner (default 4 x hidden)")
    xlnet.add_argument("--dropout", type=float, help="dropout (default 0.1)")
    xlnet.add_argument("--tokenizer", help="a directory with a saved unigram tokenizer (default: train one)")
    xlnet.add_argument("--vocab-size", type=int, default=8000, help="unigram vocabulary size when training one")
    xlnet.add_argument("--cased", action="store_true", help="keep case and accents")
    xlnet.add_argument("--seq-len", type=int, default=128, help="tokens per window")
    xlnet.add_argument("--mem-len", type=int, default=64, help="memory: hidden states kept per layer (0: none)")
    xlnet.add_argument("--clamp-len", type=int, default=-1, help="relative distances clamped to this (-1: none)")
    xlnet.add_argument("--prediction-k", type=float, default=6.0,
                       help="K: about 1/K of the tokens of a window are predicted")
    xlnet.add_argument("--num-predict", type=int, default=None, help="exactly this many predictions per window")
    xlnet.add_argument("--target-unit", choices=["span", "token"], default="span")
    xlnet.add_argument("--mask-alpha", type=float, default=6, help="span context size per predicted token")
    xlnet.add_argument("--mask-beta", type=float, default=1)
    xlnet.add_argument("--perm-size", type=int, default=None, help="orders over blocks of this many tokens")
    xlnet.add_argument("--bi-data", action="store_true",
                       help="half of every batch reads the stream backwards (distances negated)")
    xlnet.add_argument("--batch-size", type=int, default=16, help="rows per batch (per process)")
    xlnet.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: --epochs)")
    xlnet.add_argument("--epochs", type=float, default=1.0)
    xlnet.add_argument("--lr", type=float, default=1e-4)
    xlnet.add_argument("--warmup", type=float, default=0.01, help="warm-up steps (< 1: fraction of the run)")
    xlnet.add_argument("--weight-decay", type=float, default=0.01)
    xlnet.add_argument("--clip", type=float, default=1.0, help="max gradient norm (0: off)")
    xlnet.add_argument("--eval-fraction", type=float, default=0.01, help="held-out share of the stream (its end)")
    xlnet.add_argument("--eval-steps", type=int, default=0, help="evaluate every N steps (0: at the end)")
    xlnet.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps (0: end/interrupt)")
    xlnet.add_argument("--seed", type=int, default=12345)
    xlnet.add_argument("--threads", type=int, default=None, help="torch threads")
    xlnet.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output directory")
    add_overwrite_option(xlnet)
    xlnet.add_argument("--quiet", action="store_true", help="no progress bar")
    xlnet.set_defaults(func=run_pretrain)


def build_config(args, vocab_size: int, pad_id: int):
    """An XLNetConfig from --config plus the flags (flags win)."""
    from word2bert.models.xlnet import XLNetConfig

    values = read_config_file(args.config) if args.config else {}
    for key, value in {"n_layer": 4, "d_model": 256, "n_head": 4}.items():
        values.setdefault(key, value)
    flags = {"n_layer": args.layers, "d_model": args.hidden, "n_head": args.heads, "d_inner": args.ffn,
             "dropout": args.dropout}
    values.update({key: value for key, value in flags.items() if value is not None})
    values.setdefault("d_inner", 4 * values["d_model"])
    values.update(vocab_size=vocab_size, mem_len=args.mem_len, clamp_len=args.clamp_len, bi_data=args.bi_data,
                  attn_type="bi", pad_token_id=pad_id)
    values.pop("d_head", None)
    return XLNetConfig.from_dict(values)


def bidirectional_stream(tokens: np.ndarray, rows: int) -> np.ndarray:
    """``tokens`` then ``tokens`` reversed, trimmed so that ``rows`` equal BPTT rows split it in the middle:
    the first half of every batch reads forwards, the second half backwards (XLNet's ``bi_data``)."""
    if rows % 2:
        raise Word2BertError(f"--bi-data needs an even --batch-size, got {rows}")
    row_length = (len(tokens) - 1) // (rows // 2)
    if row_length < 2:
        raise Word2BertError(f"a stream of {len(tokens)} tokens is too short for {rows} rows")
    forward = tokens[:row_length * (rows // 2) + 1]
    return np.concatenate([forward, forward[::-1]])


class PermutationCollator:
    """Stacks equal-length stream windows and adds the permutation-LM inputs (``perm_mask``,
    ``target_mapping``, ``labels``): the keyword arguments of XLNetLMHeadModel."""

    def __init__(self, objective):
        self.objective = objective

    def __call__(self, items, rng=None):
        import torch

        batch = {"input_ids": np.stack([np.asarray(item["input_ids"], dtype=np.int64) for item in items])}
        self.objective.prepare(batch, items, rng if rng is not None else np.random.default_rng())
        return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in batch.items()}


def _arguments_to_save(args) -> dict:
    """The run's settings as given (or defaulted), for ``--resume`` to check and restore."""
    return {key: value for key, value in vars(args).items()
            if not key.startswith("_") and not callable(value) and key not in ("python_names", "pretrain_model",
                                                                              "command")}


def resume_settings(args, output: Path) -> None:
    """``--resume``: refuse flags that contradict the interrupted run's settings, and take the settings
    the command line does not give from that run (``training_args.json``), so that ``--resume`` alone
    rebuilds the same model, data and objective. A run without that file is checked against its
    config.json."""
    from word2bert.train.checkpoint import find_checkpoint

    if args.overwrite:
        raise Word2BertError("--resume continues the run in OUT and --overwrite replaces it: give one of them")
    if find_checkpoint(output) is None:
        raise Word2BertError(f"--resume: no checkpoint in {output} (it is written every --save-steps steps, at "
                             "the end and on Ctrl-C)")
    parser = getattr(args, "_leaf_parser", None)
    given = getattr(args, "_given", set())
    try:
        saved = json.loads((output / "training_args.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = None
    if isinstance(saved, dict):
        settings = {dest: (lambda _s, d=dest: saved.get(d)) for dest in saved if dest not in RESUMABLE}
        check_resume_flags(args, saved, settings, parser)
        for dest, value in saved.items():
            if dest not in RESUMABLE and dest not in given and hasattr(args, dest):
                setattr(args, dest, value)
        return
    try:
        config = json.loads((output / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    check_resume_flags(args, config, {dest: (lambda c, f=field: c.get(f)) for dest, field in ARCHITECTURE.items()},
                       parser)


def run_pretrain(args) -> int:
    import torch

    from word2bert.models.xlnet import XLNetLMHeadModel
    from word2bert.objectives.permutation_lm import PermutationLanguageModeling
    from word2bert.tokenizers.unigram import UnigramTokenizer
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.samplers import ContiguousStreamSampler, TokenStream

    if args.threads:
        torch.set_num_threads(args.threads)
    corpus, output = Path(args.corpus), Path(args.output)
    prepare_output_directory(args.output, overwrite=args.overwrite, resume=args.resume)
    if not corpus.exists():
        raise Word2BertError(f"corpus not found: {corpus}")
    for name in ("seq_len", "batch_size"):
        if getattr(args, name) < 1:
            raise Word2BertError(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    if args.mem_len < 0:
        raise Word2BertError(f"--mem-len={args.mem_len} must be >= 0 (0: no memory)")
    if not 0 <= args.eval_fraction < 1:
        raise Word2BertError(f"--eval-fraction={args.eval_fraction} must be in [0, 1)")
    if args.resume:
        resume_settings(args, output)
        if (output / "config.json").is_file():  # the run's own config, even if its --config file is gone
            args.config = str(output / "config.json")
    objective = PermutationLanguageModeling(
        prediction_k=args.prediction_k, num_predict=args.num_predict, target_unit=args.target_unit,
        mask_alpha=args.mask_alpha, mask_beta=args.mask_beta, perm_size=args.perm_size)
    output.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    if args.resume and (output / "tokenizer.json").exists():
        tokenizer = UnigramTokenizer.from_pretrained(output)
    elif args.tokenizer:
        tokenizer = UnigramTokenizer.from_pretrained(args.tokenizer)
    else:
        say(f"training a unigram vocabulary of {args.vocab_size} on {corpus}")
        tokenizer = UnigramTokenizer.train([str(corpus)], vocab_size=args.vocab_size, lowercase=not args.cased,
                                           keep_accents=args.cased)
    objective.word_start = tokenizer.word_start_table()
    objective.functional_ids = np.asarray(sorted({tokenizer.sep_id, tokenizer.cls_id}), dtype=np.int64)
    config = build_config(args, tokenizer.vocab_size, tokenizer.pad_id)
    say(f"reading {corpus} as one token stream")
    tokens = tokenizer_stream(corpus, tokenizer, tokenizer.sep_id)
    held_out_count = int(len(tokens) * args.eval_fraction)
    train_tokens, held_out = (tokens[:-held_out_count], tokens[-held_out_count:]) if held_out_count > 1 \
        else (tokens, None)
    if args.bi_data:
        train_tokens = bidirectional_stream(train_tokens, args.batch_size)
    sampler = ContiguousStreamSampler(len(train_tokens), args.batch_size, args.seq_len, seed=args.seed)
    eval_data = eval_sampler = None
    if held_out is not None:
        eval_rows = max(2 if args.bi_data else 1, min(args.batch_size, (len(held_out) - 1) // args.seq_len))
        eval_rows -= eval_rows % 2 if args.bi_data else 0
        if (len(held_out) - 1) // eval_rows >= 1:
            if args.bi_data:
                held_out = bidirectional_stream(held_out, eval_rows)
            eval_data = TokenStream(held_out)
            eval_sampler = ContiguousStreamSampler(len(held_out), eval_rows, args.seq_len, seed=args.seed)
    collate = PermutationCollator(objective)
    torch.manual_seed(args.seed)
    model = XLNetLMHeadModel(config)
    training = TrainingArguments(
        output_dir=str(output), batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
        learning_rate=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup, max_grad_norm=args.clip,
        seed=args.seed, save_steps=args.save_steps, eval_steps=args.eval_steps,
        progress=False if args.quiet else None)
    trainer = Trainer(model, training, TokenStream(train_tokens), collate, eval_data=eval_data, sampler=sampler,
                      eval_sampler=eval_sampler)
    if args.bi_data and trainer.world_size > 1:
        raise Word2BertError("--bi-data splits each process's batch into forward and backward halves of one "
                             "stream; run it in a single process")
    if trainer.rank == 0:
        tokenizer.save(output)
        config.save(output / "config.json", architecture=model.hf_architecture)
        if not args.resume:
            (output / "training_args.json").write_text(json.dumps(_arguments_to_save(args), indent=2) + "\n",
                                                       encoding="utf-8")
    say(f"{len(train_tokens):,} training tokens in {args.batch_size} rows, windows of {args.seq_len}, memory "
        f"{args.mem_len}; {trainer.state.total_steps} steps")
    return train_and_save(trainer, output, args.resume, save_pretrained_with(model, tokenizer))
