"""``word2bert train nnlm``, ``word2bert train kneser-ney`` and ``word2bert perplexity``.

Examples::

    word2bert train kneser-ney ptb.train.txt -o kn5.npz --order 5 --test ptb.test.txt
    word2bert train nnlm ptb.train.txt -o nnlm/ --order 5 --valid ptb.valid.txt --test ptb.test.txt
    word2bert perplexity nnlm/ ptb.test.txt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from word2bert.commands import add_overwrite_option, check_output_file, prepare_output_directory, save_or_rescue
from word2bert.errors import Word2BertError

LM_EPILOG = """Text files hold one sentence per line (Penn Treebank layout); every line ends with an
<eos> that the model predicts, and words outside the vocabulary read as <unk>. Perplexity is
exp(-mean ln P) over the words and <eos> marks of the file."""


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter

    kn = train_commands.add_parser(
        "kneser-ney", help="interpolated Kneser-Ney n-gram language model", formatter_class=HelpfulFormatter,
        epilog=LM_EPILOG, description="Count an interpolated (modified) Kneser-Ney n-gram model (n <= 5).")
    kn.add_argument("corpus", help="training text (plain/.gz/.bz2/.xz)")
    kn.add_argument("-o", "--output", required=True, help="model file (.npz)")
    kn.add_argument("--order", type=int, default=3, help="n (1 to 5)")
    kn.add_argument("--discount", choices=["modified", "single"], default="modified",
                    help="three discounts per order (Chen & Goodman) or one")
    kn.add_argument("--min-count", type=int, default=1, help="rarer words read as <unk>")
    kn.add_argument("--valid", help="held-out file: print its perplexity")
    kn.add_argument("--test", help="test file: print its perplexity")
    kn.set_defaults(func=run_kneser_ney)

    nnlm = train_commands.add_parser(
        "nnlm", help="Bengio et al. (2003) neural probabilistic language model", formatter_class=HelpfulFormatter,
        epilog=LM_EPILOG, description="Train y = b + Wx + U tanh(d + Hx) over the previous n-1 words' embeddings.")
    nnlm.add_argument("corpus", help="training text (plain/.gz/.bz2/.xz)")
    nnlm.add_argument("-o", "--output", required=True, help="output directory (config.json, model.safetensors, "
                                                            "word_vocab.txt; checkpoint.pt while training)")
    nnlm.add_argument("--order", type=int, default=5, help="n: the model reads n-1 previous words")
    nnlm.add_argument("--embedding-size", type=int, default=100, help="m")
    nnlm.add_argument("--hidden-size", type=int, default=200, help="h (0: no hidden layer)")
    nnlm.add_argument("--no-direct", action="store_true", help="without the direct connections W")
    nnlm.add_argument("--dropout", type=float, default=0.0, help="dropout on x and the hidden layer")
    nnlm.add_argument("--epochs", type=float, default=1.0, help="passes over the corpus")
    nnlm.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: as many as --epochs take)")
    nnlm.add_argument("--batch-size", type=int, default=256, help="contexts per step")
    nnlm.add_argument("--lr", type=float, default=1e-3, help="peak Adam learning rate (linear decay to 0)")
    nnlm.add_argument("--weight-decay", type=float, default=0.0, help="weight decay")
    nnlm.add_argument("--min-count", type=int, default=1, help="rarer words read as <unk>")
    nnlm.add_argument("--valid", help="held-out file: print its perplexity")
    nnlm.add_argument("--test", help="test file: print its perplexity")
    nnlm.add_argument("--save-steps", type=int, default=1000, help="checkpoint every N steps (0: end/interrupt)")
    nnlm.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output directory")
    add_overwrite_option(nnlm)
    nnlm.add_argument("--seed", type=int, default=0, help="random seed")
    nnlm.add_argument("--threads", type=int, default=None, help="torch threads")
    nnlm.add_argument("--quiet", action="store_true", help="no progress bar")
    nnlm.set_defaults(func=run_nnlm)

    perplexity = commands.add_parser(
        "perplexity", help="perplexity of a language model on a text file", formatter_class=HelpfulFormatter,
        epilog=LM_EPILOG, description="Perplexity of a Kneser-Ney (.npz), NNLM or AWD-LSTM (directory) model.")
    perplexity.add_argument("model", help="a kneser-ney .npz file or an nnlm / awd-lstm directory")
    perplexity.add_argument("text", nargs="+", help="text file(s)")
    perplexity.add_argument("--batch-size", type=int, default=10, help="rows of an AWD-LSTM evaluation")
    perplexity.add_argument("--bptt", type=int, default=70, help="window of an AWD-LSTM evaluation")
    perplexity.set_defaults(func=run_perplexity)


def _check_files(*paths) -> None:
    for path in paths:
        if path is not None and not Path(path).is_file():
            raise Word2BertError(f"file not found: {path}")


def run_kneser_ney(args) -> int:
    import time

    from word2bert.models.kneser_ney import KneserNeyLM

    _check_files(args.corpus, args.valid, args.test)
    check_output_file(args.output)
    started = time.perf_counter()
    model = KneserNeyLM.train(args.corpus, order=args.order, discount=args.discount, min_count=args.min_count)
    save_or_rescue(model.save, args.output, "model")
    summary = {"order": args.order, "vocabulary": model.vocab_size, "seconds": round(time.perf_counter() - started, 2)}
    for name, path in (("valid", args.valid), ("test", args.test)):
        if path is not None:
            summary[f"{name}_perplexity"] = round(model.perplexity(path), 3)
    print(json.dumps(summary))
    return 0


#: Flags of ``train nnlm`` that may change when a run is resumed; every other one must match the
#: run's training_args.json (flags not given take its values).
NNLM_RESUMABLE = {"corpus", "output", "valid", "test", "epochs", "max_steps", "save_steps", "resume", "overwrite",
                  "threads", "quiet"}


def run_nnlm(args) -> int:
    from word2bert.commands._contextual import training_run_directory
    from word2bert.models.nnlm import NNLMConfig, train_nnlm

    _check_files(args.corpus, args.valid, args.test)
    prepare_output_directory(args.output, overwrite=args.overwrite, resume=args.resume)
    with training_run_directory(args, args.output, NNLM_RESUMABLE):
        config = NNLMConfig(order=args.order, embedding_size=args.embedding_size, hidden_size=args.hidden_size,
                            direct_connections=not args.no_direct, dropout=args.dropout)
        try:
            result = train_nnlm(args.corpus, config, valid_path=args.valid, test_path=args.test,
                                output_dir=args.output, epochs=args.epochs, max_steps=args.max_steps,
                                batch_size=args.batch_size, learning_rate=args.lr, weight_decay=args.weight_decay,
                                seed=args.seed, progress=False if args.quiet else None, num_threads=args.threads,
                                min_count=args.min_count, save_steps=args.save_steps, resume=args.resume,
                                save_model=False)
        except KeyboardInterrupt:
            print(f"word2bert: interrupted; checkpoint saved in {args.output} (continue with --resume)",
                  file=sys.stderr)
            return 130
    save_or_rescue(lambda directory: result.model.save_pretrained(directory, result.vocab), args.output, "model")
    summary = {"steps": len(result.history), "seconds": round(result.train_seconds, 2),
               "final_loss": round(result.history[-1]["loss"], 4) if result.history else None}
    summary.update({f"{name}_perplexity": round(value, 3) for name, value in result.perplexities.items()})
    print(json.dumps(summary))
    return 0


def language_model_perplexity(model_path, text_path, batch_size: int = 10, bptt: int = 70) -> float:
    """Perplexity of the model at ``model_path`` (Kneser-Ney .npz, NNLM or AWD-LSTM directory) on a text file."""
    from word2bert.corpus.lm_corpus import EOS, VOCAB_FILE, encode_lines, token_stream
    from word2bert.corpus.vocab import Vocabulary

    model_path = Path(model_path)
    _check_files(text_path)
    if model_path.is_file():
        from word2bert.models.kneser_ney import KneserNeyLM

        return KneserNeyLM.load(model_path).perplexity(text_path)
    config_path = model_path / "config.json"
    if not config_path.is_file():
        raise Word2BertError(f"{model_path} is neither a Kneser-Ney .npz file nor a model directory with config.json")
    from word2bert.interop.huggingface import read_json_object  # imports torch: only for a model directory

    model_type = read_json_object(config_path).get("model_type")
    if not (model_path / VOCAB_FILE).is_file():
        raise Word2BertError(f"{model_path}: {VOCAB_FILE} is missing")
    vocab = Vocabulary.load(model_path / VOCAB_FILE)
    stream = token_stream(encode_lines(text_path, vocab), vocab.index[EOS])
    if model_type == "nnlm":
        from word2bert.models.nnlm import NNLM, NgramWindows, perplexity

        model = NNLM.from_pretrained(model_path)
        return perplexity(model, NgramWindows(stream, model.config.order, vocab.index[EOS]))
    if model_type == "awd_lstm":
        from word2bert.models.awd_lstm import AWDLSTMForLanguageModeling, stream_perplexity

        model = AWDLSTMForLanguageModeling.from_pretrained(model_path)
        return stream_perplexity(model, stream, batch_size=batch_size, bptt=bptt)
    raise Word2BertError(f"{config_path}: model_type {model_type!r} is not a language model this command reads "
                         "(nnlm, awd_lstm)")


def run_perplexity(args) -> int:
    for text in args.text:
        value = language_model_perplexity(args.model, text, batch_size=args.batch_size, bptt=args.bptt)
        print(json.dumps({"file": text, "perplexity": round(value, 3)}))
    return 0
