"""``word2bert pretrain awd-lstm`` and ``word2bert finetune --model ulmfit``.

Examples::

    word2bert pretrain awd-lstm ptb.train.txt -o awd/ --valid ptb.valid.txt --epochs 10
    word2bert pretrain awd-lstm ptb.train.txt -o awd/ --resume                  # after Ctrl-C
    word2bert finetune awd/ --model ulmfit --train train.txt --dev test.txt -o clf/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from word2bert.commands import add_overwrite_option, prepare_output_directory, save_or_rescue
from word2bert.errors import Word2BertError

PRETRAIN_EPILOG = """The corpus holds one sentence per line; every line ends with an <eos> the model predicts.
Defaults are the AWD-LSTM repository's PTB command: 400/1150/3, dropouts 0.1/0.4/0.25/0.4/0.5,
batch 20, BPTT about 70, SGD at lr 30 with gradients clipped at 0.25, NT-ASGD (nonmono 5)."""


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter
    from word2bert.commands import subcommand_group

    models = subcommand_group(commands, "pretrain", help="pre-train a contextual model",
                              description="Pre-train a contextual model; `word2bert pretrain MODEL --help`.")
    awd = models.add_parser("awd-lstm", help="AWD-LSTM language model (ULMFiT's first stage)",
                            formatter_class=HelpfulFormatter, epilog=PRETRAIN_EPILOG,
                            description="Train an AWD-LSTM language model on a text corpus.")
    awd.add_argument("corpus", help="text file, one sentence per line (plain/.gz/.bz2/.xz)")
    awd.add_argument("-o", "--output", required=True, help="output directory (config.json, model.safetensors, "
                                                           "word_vocab.txt; checkpoint.pt while training)")
    awd.add_argument("--valid", help="held-out text: NT-ASGD's checks and the final perplexity")
    awd.add_argument("--embedding-size", type=int, default=400)
    awd.add_argument("--lstm-size", type=int, default=1150)
    awd.add_argument("--layers", type=int, default=3)
    awd.add_argument("--embedding-dropout", type=float, default=0.1)
    awd.add_argument("--input-dropout", type=float, default=0.4)
    awd.add_argument("--hidden-dropout", type=float, default=0.25)
    awd.add_argument("--output-dropout", type=float, default=0.4)
    awd.add_argument("--weight-dropout", type=float, default=0.5)
    awd.add_argument("--no-tie", action="store_true", help="a separate output matrix")
    awd.add_argument("--alpha", type=float, default=2.0, help="activation regularisation")
    awd.add_argument("--beta", type=float, default=1.0, help="temporal activation regularisation")
    awd.add_argument("--batch-size", type=int, default=20)
    awd.add_argument("--bptt", type=int, default=70)
    awd.add_argument("--fixed-bptt", action="store_true", help="windows of exactly --bptt tokens")
    awd.add_argument("--epochs", type=float, default=1.0)
    awd.add_argument("--max-steps", type=int, default=None)
    awd.add_argument("--lr", type=float, default=30.0, help="SGD learning rate")
    awd.add_argument("--clip", type=float, default=0.25, help="max gradient norm (0: off)")
    awd.add_argument("--weight-decay", type=float, default=1.2e-6)
    awd.add_argument("--nonmono", type=int, default=5, help="NT-ASGD's non-monotone interval (0: plain SGD)")
    awd.add_argument("--check-every", type=int, default=None, help="steps between NT-ASGD checks (default: an epoch)")
    awd.add_argument("--min-count", type=int, default=1, help="rarer words read as <unk>")
    awd.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps (0: end/interrupt)")
    awd.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output directory")
    add_overwrite_option(awd)
    awd.add_argument("--seed", type=int, default=141)
    awd.add_argument("--threads", type=int, default=None, help="torch threads")
    awd.add_argument("--quiet", action="store_true", help="no progress bar")
    awd.set_defaults(func=run_pretrain)

    finetune = commands.choices.get("finetune")
    if finetune is not None:  # ULMFiT's options of `word2bert finetune --model ulmfit`
        group = finetune.add_argument_group("ULMFiT (--model ulmfit; MODEL is an AWD-LSTM language model directory)")
        group.add_argument("--lm-finetune-epochs", type=float, default=1.0,
                           help="target-task LM fine-tuning epochs on the training texts (0: skip that stage)")
        group.add_argument("--lm-finetune-lr", type=float, default=4e-3, help="its peak learning rate")
        group.add_argument("--lm-finetune-batch-size", type=int, default=32, help="its rows per batch")
        group.add_argument("--lm-finetune-bptt", type=int, default=70, help="its BPTT window")
        group.add_argument("--no-unfreezing", action="store_true", help="train every layer from the first epoch")
        group.add_argument("--drop-mult", type=float, default=0.5, help="scales the classifier's dropouts")


#: Flags of ``pretrain awd-lstm`` that may change when a run is resumed; every other one must match
#: the run's training_args.json (flags not given take its values).
AWD_RESUMABLE = {"corpus", "output", "valid", "epochs", "max_steps", "save_steps", "check_every", "resume",
                 "overwrite", "threads", "quiet"}


def run_pretrain(args) -> int:
    from word2bert.commands._contextual import training_run_directory

    for path in (args.corpus, args.valid):
        if path is not None and not Path(path).is_file():
            raise Word2BertError(f"file not found: {path}")
    prepare_output_directory(args.output, overwrite=args.overwrite, resume=args.resume)
    with training_run_directory(args, args.output, AWD_RESUMABLE):
        try:
            result = _pretrain(args)
        except KeyboardInterrupt:
            print(f"word2bert: interrupted; checkpoint saved in {args.output} (continue with --resume)",
                  file=sys.stderr)
            return 130

    def save(directory):
        from word2bert.tasks.ulmfit import save_vocab

        Path(directory).mkdir(parents=True, exist_ok=True)
        save_vocab(result.vocab, directory)
        result.model.save_pretrained(directory)

    save_or_rescue(save, args.output, "language model")
    summary = {"steps": len(result.history), "seconds": round(result.train_seconds, 2),
               "tokens_per_second": round(result.tokens_per_second, 1),
               "final_loss": round(result.history[-1]["loss"], 4) if result.history else None}
    summary.update({f"{name}_perplexity": round(value, 3) for name, value in result.perplexities.items()})
    print(json.dumps(summary))
    return 0


def _pretrain(args):
    from word2bert.models.awd_lstm import AWDLSTMConfig
    from word2bert.tasks.ulmfit import pretrain_language_model

    config = AWDLSTMConfig(embedding_size=args.embedding_size, lstm_size=args.lstm_size, num_layers=args.layers,
                           embedding_dropout=args.embedding_dropout, input_dropout=args.input_dropout,
                           hidden_dropout=args.hidden_dropout, output_dropout=args.output_dropout,
                           weight_dropout=args.weight_dropout, tie_weights=not args.no_tie, ar_alpha=args.alpha,
                           tar_beta=args.beta)
    return pretrain_language_model(
        args.corpus, config, args.valid, args.output, batch_size=args.batch_size, bptt=args.bptt,
        variable_bptt=not args.fixed_bptt, epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.lr,
        weight_decay=args.weight_decay, clip=args.clip, nonmono=args.nonmono or None,
        check_every=args.check_every, seed=args.seed, progress=False if args.quiet else None,
        num_threads=args.threads, save_steps=args.save_steps, resume=args.resume, min_count=args.min_count,
        save_model=False)


def run_finetune(args) -> int:
    """ULMFiT's stages 2 and 3 from a general-domain AWD-LSTM language model directory (``MODEL``)."""
    from word2bert.commands._options import input_path
    from word2bert.tasks.ulmfit import finetune_language_model, train_classifier

    model_dir = Path(input_path(args, "model", "MODEL"))
    if args.task != "classification":
        raise Word2BertError(f"--model ulmfit fine-tunes text classifiers, not --task {args.task}")
    for flag, path in (("--train", args.train), ("--dev", args.dev)):
        if path is not None and not Path(path).is_file():
            raise Word2BertError(f"{flag}: file not found: {path}")
    if not (model_dir / "config.json").is_file():
        raise Word2BertError(f"{model_dir}: not an AWD-LSTM language model directory (config.json is missing)")
    output, _exists = prepare_output_directory(args.output, overwrite=args.overwrite, marker="task.json")
    progress = False if args.quiet else None
    language_model, lm_seconds = model_dir, 0.0
    if args.lm_finetune_epochs > 0:
        language_model = output / "language_model"
        tuned = finetune_language_model(model_dir, args.train, output_dir=language_model,
                                        epochs=args.lm_finetune_epochs, learning_rate=args.lm_finetune_lr,
                                        batch_size=args.lm_finetune_batch_size, bptt=args.lm_finetune_bptt,
                                        seed=args.seed, progress=progress, num_threads=args.threads)
        lm_seconds = tuned.train_seconds
    result = train_classifier(args.train, args.dev, model_dir=language_model, output_dir=None,
                              epochs=None if args.epochs is None else int(args.epochs), max_steps=args.max_steps,
                              batch_size=args.batch_size, learning_rate=1e-2 if args.lr is None else args.lr,
                              gradual_unfreezing=not args.no_unfreezing, drop_mult=args.drop_mult,
                              max_length=128 if args.max_length is None else args.max_length,
                              max_train_examples=args.max_train_examples,
                              max_dev_examples=args.max_dev_examples, seed=args.seed, progress=progress,
                              num_threads=args.threads)
    save_or_rescue(lambda directory: result.model.save_pretrained(directory, result.vocab, result.labels), output,
                   "fine-tuned classifier")
    metrics = {**result.metrics, "lm_seconds": round(lm_seconds, 2), "train_seconds": round(result.train_seconds, 2)}
    if args.json:
        print(json.dumps(metrics))
    else:
        dev = f"; dev accuracy {result.metrics['accuracy']:.4f}" if "accuracy" in result.metrics else ""
        print(f"finetune ulmfit: {len(result.labels)} labels, LM fine-tuning {lm_seconds:.1f} s, classifier "
              f"{result.train_seconds:.1f} s{dev} -> {output}")
    return 0
