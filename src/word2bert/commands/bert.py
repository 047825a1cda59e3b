"""``word2bert pretrain bert`` (``finetune`` and ``encode`` take any model: commands/finetune.py).

The output directory is checked before any work and created only when training starts; a
non-empty one is refused unless ``--overwrite`` (start afresh) or ``--resume`` (continue the run
whose checkpoint is there, with the settings it was started with: ``training_args.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from word2bert.commands import (
    check_resume_flags,
    prepare_output_directory,
    save_or_rescue,
    say,
)
from word2bert.commands._contextual import (
    format_metrics,
    pretrain_group,
    read_config_file,
    require_contextual,
)
from word2bert.errors import Word2BertError

PRETRAIN_EPILOG = """examples:
  word2bert pretrain bert corpus.txt -o bert-small --layers 4 --hidden 256 --heads 4 --ffn 1024 --vocab-size 8000
  word2bert pretrain bert corpus.txt -o bert-small --config config.json --vocab vocab.txt
  word2bert pretrain bert corpus.txt -o bert-small --resume       # continue an interrupted run
  word2bert pretrain bert corpus.txt -o bert-small --overwrite    # start afresh in a used directory
  word2bert pretrain bert corpus.txt -o bert-wwm --masking whole-word    (or span, ngram, phrase, entity)
  torchrun --nproc_per_node 2 -m word2bert pretrain bert corpus.txt -o bert-small   (data parallel)

CORPUS is BERT's format (one sentence per line, a blank line between documents) or one document per
line (text8-style; cut into pseudo-sentences of --words-per-sentence words); plain, .gz, .bz2 or .xz.
OUT receives config.json, model.safetensors and vocab.txt (Hugging Face's layout: transformers'
BertForPreTraining loads it), checkpoint.pt (what --resume reads; Ctrl-C writes it too) and
training_args.json. The last line printed is a summary; --json prints it as JSON on stdout.
"""

#: Flags that may change when a run is resumed; every other flag must match training_args.json.
RESUMABLE = {"max_steps", "epochs", "save_steps", "eval_steps", "threads", "quiet", "json", "resume", "overwrite",
             "output", "corpus"}

#: --flag -> BertConfig field, for runs that left no training_args.json.
ARCHITECTURE = {"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads",
                "ffn": "intermediate_size", "dropout": "hidden_dropout_prob", "pre_layer_norm": "pre_layer_norm"}


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter

    bert = pretrain_group(commands).add_parser(
        "bert", help="BERT: masked LM + next-sentence prediction", formatter_class=HelpfulFormatter,
        epilog=PRETRAIN_EPILOG,
        description="Pre-train BERT (Devlin et al. 2019): masked language model (15% of the tokens, "
                    "80/10/10) and next-sentence prediction, with AdamW, linear warm-up and decay. Trains a "
                    "WordPiece vocabulary on CORPUS unless --vocab is given. Ctrl-C leaves a checkpoint.")
    bert.add_argument("corpus", metavar="CORPUS", help="text file (plain/.gz/.bz2/.xz)")
    bert.add_argument("-o", "--output", "--output-dir", required=True, metavar="OUT",
                      help="output directory (Hugging Face layout + checkpoint); refused if it holds files, "
                           "unless --overwrite or --resume")
    bert.add_argument("--overwrite", "--overwrite-output-dir", action="store_true",
                      help="train from scratch into a non-empty OUT, replacing its model and checkpoint")
    bert.add_argument("--resume", action="store_true",
                      help="continue from OUT's checkpoint with the settings it was started with (only "
                           "--max-steps/--epochs, --save-steps, --eval-steps, --threads may change)")
    model = bert.add_argument_group("model (defaults: 4 layers, hidden 256, 4 heads, FFN 4 x hidden)")
    model.add_argument("--config", metavar="JSON",
                       help="a BertConfig JSON (Hugging Face field names); the flags below override it")
    model.add_argument("--layers", type=int, metavar="N", help="num_hidden_layers (default 4)")
    model.add_argument("--hidden", type=int, metavar="N", help="hidden_size (default 256)")
    model.add_argument("--heads", type=int, metavar="N", help="num_attention_heads (default 4)")
    model.add_argument("--ffn", type=int, metavar="N", help="intermediate_size (default 4 x hidden)")
    model.add_argument("--dropout", type=float, metavar="P", help="hidden and attention dropout (default 0.1)")
    model.add_argument("--pre-layer-norm", action="store_true", help="pre-LN blocks instead of BERT's post-LN")
    vocab = bert.add_argument_group("vocabulary")
    vocab.add_argument("--vocab", metavar="VOCAB.txt", help="an existing vocab.txt (default: train one on CORPUS)")
    vocab.add_argument("--vocab-size", type=int, default=8000, metavar="N",
                       help="WordPiece vocabulary size when training one")
    vocab.add_argument("--cased", action="store_true", help="keep case and accents (default: lower-case, strip)")
    data = bert.add_argument_group("pre-training data (BERT's create_pretraining_data.py)")
    data.add_argument("--max-seq-length", type=int, default=128, metavar="N", help="tokens per instance")
    data.add_argument("--short-seq-prob", type=float, default=0.1, metavar="P",
                      help="share of instances made shorter than --max-seq-length")
    data.add_argument("--words-per-sentence", type=int, default=24, metavar="N",
                      help="pseudo-sentence length for one-document-per-line corpora")
    data.add_argument("--masked-lm-prob", type=float, default=0.15, metavar="P", help="share of tokens masked")
    data.add_argument("--max-predictions", type=int, default=20, metavar="N",
                      help="most masked tokens per instance (max_predictions_per_seq)")
    data.add_argument("--dynamic-masking", action="store_true",
                      help="new masks every use (RoBERTa); default: BERT's fixed masks per copy")
    data.add_argument("--dupe-factor", type=int, default=None, metavar="N",
                      help="copies of the data with different masks (default 5, or 1 with --dynamic-masking)")
    data.add_argument("--no-nsp", action="store_true", help="masked LM only (single segments, no NSP)")
    data.add_argument("--eval-fraction", type=float, default=0.01, metavar="F",
                      help="held-out share of the instances (MLM perplexity and NSP accuracy)")
    from word2bert.commands.pretrain_family import add_masking_arguments

    add_masking_arguments(bert)  # --masking {token,whole-word,span,ngram,phrase,entity} and its options
    optim = bert.add_argument_group("optimisation")
    optim.add_argument("--batch-size", "--per-device-train-batch-size", type=int, default=32, metavar="N",
                       help="instances per step, per process")
    optim.add_argument("--max-steps", type=int, default=None, metavar="N",
                       help="optimizer steps (default: as many as --epochs take)")
    optim.add_argument("--epochs", "--num-train-epochs", type=float, default=1.0, metavar="E",
                       help="passes over the instances")
    optim.add_argument("--lr", "--learning-rate", type=float, default=1e-4, help="peak learning rate (AdamW)")
    optim.add_argument("--warmup", "--warmup-steps", "--warmup-ratio", type=float, default=0.01, metavar="W",
                       help="warm-up steps (< 1: a fraction of the run)")
    optim.add_argument("--weight-decay", type=float, default=0.01, metavar="D", help="AdamW weight decay")
    optim.add_argument("--clip", "--max-grad-norm", type=float, default=1.0, metavar="NORM",
                       help="max gradient norm (0: off)")
    optim.add_argument("--grad-accum", "--gradient-accumulation-steps", type=int, default=1, metavar="N",
                       help="gradient accumulation steps")
    optim.add_argument("--bf16", action="store_true", help="bf16 autocast")
    optim.add_argument("--seed", type=int, default=12345, help="random seed (data, masks, weights)")
    run = bert.add_argument_group("running")
    run.add_argument("--save-steps", type=int, default=500, metavar="N",
                     help="checkpoint every N steps (0: only at the end and on Ctrl-C)")
    run.add_argument("--eval-steps", type=int, default=0, metavar="N",
                     help="evaluate on the held-out instances every N steps (0: at the end)")
    run.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads (default: torch's)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or status lines")
    run.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    bert.set_defaults(func=run_pretrain, python_names={"learning_rate": "--lr", "warmup_steps": "--warmup",
                                                       "max_grad_norm": "--clip",
                                                       "gradient_accumulation_steps": "--grad-accum"})


def build_config(args, vocab_size: int):
    """A BertConfig from --config plus the size flags (flags win)."""
    from word2bert.models.bert import BertConfig

    values = read_config_file(args.config) if args.config else {}
    defaults = {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4}
    for key, value in defaults.items():
        values.setdefault(key, value)
    overrides = {"num_hidden_layers": args.layers, "hidden_size": args.hidden, "num_attention_heads": args.heads,
                 "intermediate_size": args.ffn}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if args.ffn is None and "intermediate_size" not in values:
        values["intermediate_size"] = 4 * values["hidden_size"]
    if args.dropout is not None:
        values["hidden_dropout_prob"] = values["attention_probs_dropout_prob"] = args.dropout
    if args.pre_layer_norm:
        values["pre_layer_norm"] = True
    values["vocab_size"] = vocab_size
    values["max_position_embeddings"] = max(int(values.get("max_position_embeddings", 0)), args.max_seq_length)
    return BertConfig.from_dict(values)


def _check_arguments(args) -> None:
    """Every flag that can be checked without reading the corpus, with the flag's own name."""
    for name in ("batch_size", "grad_accum", "max_seq_length", "max_predictions", "words_per_sentence",
                 "vocab_size"):
        if getattr(args, name) < 1:
            raise Word2BertError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    for name in ("layers", "hidden", "heads", "ffn", "max_steps", "dupe_factor", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise Word2BertError(f"--{name.replace('_', '-')} {value}: must be >= 1")
    for name in ("save_steps", "eval_steps"):
        if getattr(args, name) < 0:
            raise Word2BertError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 0")
    for name in ("masked_lm_prob", "short_seq_prob", "dropout"):
        value = getattr(args, name)
        if value is not None and not 0.0 <= value < 1.0:
            raise Word2BertError(f"--{name.replace('_', '-')} {value}: must be in [0, 1)")
    if not 0.0 <= args.eval_fraction < 1.0:
        raise Word2BertError(f"--eval-fraction {args.eval_fraction}: must be in [0, 1)")
    if not args.lr > 0:
        raise Word2BertError(f"--lr {args.lr}: must be > 0")
    if args.max_steps is None and not args.epochs > 0:
        raise Word2BertError(f"--epochs {args.epochs}: must be > 0")
    if args.warmup < 0 or args.weight_decay < 0 or args.clip < 0:
        raise Word2BertError("--warmup, --weight-decay and --clip must be >= 0")
    if args.hidden is not None and args.heads is not None and args.hidden % args.heads:
        raise Word2BertError(f"--hidden {args.hidden} is not a multiple of --heads {args.heads}")
    corpus = Path(args.corpus)
    if not corpus.is_file():
        raise Word2BertError(f"corpus not found: {corpus}" if not corpus.is_dir()
                             else f"expected a corpus file but found a directory: {corpus}")
    if args.vocab and not Path(args.vocab).is_file():
        raise Word2BertError(f"--vocab: file not found: {args.vocab}")
    if args.config and not Path(args.config).is_file():
        raise Word2BertError(f"--config: file not found: {args.config}")


def _saved_arguments(output: Path) -> dict | None:
    path = output / "training_args.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _check_resume(args, output: Path) -> None:
    """``--resume`` needs OUT's checkpoint and refuses flags that contradict the run's settings."""
    from word2bert.train.checkpoint import find_checkpoint

    if find_checkpoint(output) is None:
        raise Word2BertError(f"--resume: no checkpoint in {output} (it is written every --save-steps steps, at "
                             "the end and on Ctrl-C)")
    saved = _saved_arguments(output)
    parser = getattr(args, "_leaf_parser", None)
    if saved is not None:
        settings = {dest: (lambda _m, d=dest: saved.get(d)) for dest in saved if dest not in RESUMABLE}
        check_resume_flags(args, saved, settings, parser)
        return
    try:
        config = json.loads((output / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    check_resume_flags(args, config, {dest: (lambda c, f=field: c.get(f)) for dest, field in ARCHITECTURE.items()},
                       parser)


def _arguments_to_save(args) -> dict:
    return {k: v for k, v in vars(args).items()
            if not k.startswith("_") and not callable(v) and k not in ("python_names", "pretrain_model", "command")}


def run_pretrain(args) -> int:
    require_contextual("pretrain bert")
    rank = int(os.environ.get("RANK", "0"))
    _check_arguments(args)
    output = Path(args.output)
    if args.resume and args.overwrite:
        raise Word2BertError("--resume continues the run in OUT and --overwrite replaces it: give one of them")
    prepare_output_directory(output, overwrite=args.overwrite, resume=args.resume)
    if args.resume:
        _check_resume(args, output)
        if args.config is None and (output / "config.json").is_file():
            args.config = str(output / "config.json")
        saved = _saved_arguments(output)
        if saved:  # settings the flags did not give come from the run being continued
            for dest, value in saved.items():
                if dest not in RESUMABLE and dest not in getattr(args, "_given", set()) and hasattr(args, dest):
                    setattr(args, dest, value)

    import torch

    from word2bert.commands.pretrain_family import masking_units
    from word2bert.corpus.wordpiece import WordPieceTokenizer
    from word2bert.models.bert import BertForPreTraining
    from word2bert.objectives import MaskedLM
    from word2bert.objectives.pretraining import PretrainingCollator, PretrainingDataset
    from word2bert.train import Trainer, TrainingArguments

    quiet = args.quiet or rank != 0

    def status(*parts):
        say(*parts, quiet=quiet)

    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = Path(args.corpus)
    if args.resume and (output / "vocab.txt").exists():
        tokenizer = WordPieceTokenizer.from_pretrained(output)
    elif args.vocab:
        tokenizer = WordPieceTokenizer.from_file(args.vocab, lowercase=not args.cased)
    else:
        say(f"training a WordPiece vocabulary of {args.vocab_size:,} on {corpus}", quiet=quiet)
        tokenizer = WordPieceTokenizer.train(corpus, vocab_size=args.vocab_size, lowercase=not args.cased)
    config = build_config(args, tokenizer.vocab_size)
    dynamic = args.dynamic_masking
    dupe_factor = args.dupe_factor or (1 if dynamic else 5)
    say(f"building pre-training instances (dupe factor {dupe_factor}, max sequence length {args.max_seq_length})",
        quiet=quiet)
    dataset = PretrainingDataset.from_file(corpus, tokenizer, max_seq_length=args.max_seq_length,
                                           short_seq_prob=args.short_seq_prob, dupe_factor=dupe_factor,
                                           next_sentence=not args.no_nsp, seed=args.seed,
                                           words_per_sentence=args.words_per_sentence)
    held_out_count = int(len(dataset) * args.eval_fraction) if args.eval_fraction > 0 else 0
    train, held_out = dataset.split(held_out_count, seed=args.seed) if held_out_count else (dataset, None)
    masking = MaskedLM(tokenizer.vocab_size, tokenizer.mask_id, tokenizer.special_ids, tokenizer.pad_id,
                       masked_lm_prob=args.masked_lm_prob, max_predictions_per_seq=args.max_predictions,
                       dynamic=dynamic, seed=args.seed,
                       units=None if args.masking == "token" else masking_units(args, tokenizer, corpus, status))
    collate = PretrainingCollator(masking, tokenizer.pad_id, next_sentence=not args.no_nsp)
    torch.manual_seed(args.seed)
    model = BertForPreTraining(config, next_sentence=not args.no_nsp)
    training = TrainingArguments(
        output_dir=str(output), batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
        learning_rate=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup,
        max_grad_norm=args.clip, gradient_accumulation_steps=args.grad_accum, bf16=args.bf16, seed=args.seed,
        save_steps=args.save_steps, eval_steps=args.eval_steps, progress=False if args.quiet else None)
    trainer = Trainer(model, training, train, collate, eval_data=held_out)

    created = not output.exists()
    try:
        if trainer.rank == 0:
            output.mkdir(parents=True, exist_ok=True)
            tokenizer.save(output)
            config.save(output / "config.json")
            if not args.resume:
                (output / "training_args.json").write_text(json.dumps(_arguments_to_save(args), indent=2) + "\n",
                                                           encoding="utf-8")
    except BaseException:
        if created:
            shutil.rmtree(output, ignore_errors=True)
        raise
    say(f"{len(train):,} training instances, {trainer.state.total_steps:,} steps of {args.batch_size} x "
        f"{trainer.world_size} process(es)", quiet=quiet)
    started = time.perf_counter()
    try:
        state = trainer.train(resume_from=output if args.resume else None)
    except KeyboardInterrupt:
        if trainer.rank == 0:
            say(f"word2bert: interrupted; checkpoint saved in {output} (continue with --resume)")
        return 130
    if trainer.rank != 0:
        return 0

    def save(directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(directory)
        tokenizer.save(directory)

    save_or_rescue(save, output, "model")
    summary = {"steps": state.global_step, "tokens": state.tokens_seen,
               "final_loss": state.history[-1]["loss"] if state.history else None,
               "evaluation": state.evaluations[-1] if state.evaluations else None,
               "seconds": round(time.perf_counter() - started, 2), "output": str(output)}
    if args.json:
        print(json.dumps(summary))
    else:
        evaluation = f"; held-out {format_metrics(summary['evaluation'])}" if summary["evaluation"] else ""
        loss = f", final loss {summary['final_loss']:.4f}" if summary["final_loss"] is not None else ""
        print(f"pretrain bert: {summary['steps']:,} steps, {summary['tokens']:,} tokens in "
              f"{summary['seconds']:.1f} s{loss}{evaluation} -> {output}")
    return 0
