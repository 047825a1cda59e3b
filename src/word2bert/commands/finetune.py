"""``word2bert finetune`` and ``word2bert encode``: any pre-trained contextual model directory.

Both build whatever encoder the directory's config.json names (``model_type``, through
:mod:`word2bert.models.auto`) with the tokenizer saved beside it, so a new model family that
registers its classes needs no change here. ``encode --model NAME`` hands models without a
Hugging Face layout (ELMo's bilm-tf files, CoVe) to ``word2bert.commands.NAME.run_encode``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from word2bert.commands import prepare_output_directory, save_or_rescue
from word2bert.commands._contextual import check_model_directory, format_metrics, require_contextual
from word2bert.commands._options import add_input, input_path
from word2bert.errors import Word2BertError

TASKS = ("classification", "pair", "tagging", "qa", "entailment", "similarity", "multiple-choice")  # last 3: --model gpt

FINETUNE_DESCRIPTION = """\
Fine-tune a pre-trained model directory (Hugging Face layout: config.json, weights and vocabulary,
as `word2bert pretrain` or transformers' save_pretrained write it) on a labelled file, evaluate it
on --dev and save it to OUT (the encoder as a Hugging Face directory plus head.safetensors and
task.json). The format is chosen by the extension (before .gz/.bz2/.xz):

  classification   .tsv    text<TAB>label, or a header row naming the columns text, label
                   .jsonl  {"text": "...", "label": "..."}
                   other   fastText lines: __label__X words ... (the first label is learned)
  pair             .tsv    text<TAB>text_pair<TAB>label (or a header row with text, text_pair, label)
                   .jsonl  {"text": "...", "text_pair": "...", "label": "..."}
  tagging          .tsv    CoNLL: token<TAB>tag per line, a blank line between sentences
                   .jsonl  {"tokens": [...], "tags": [...]}
  qa               .jsonl  {"context": "...", "question": "...", "answer": "...", "answer_start": 12}
                           (answer_start: the answer's character offset in the context)
  entailment, similarity   as pair (--model gpt)
  multiple-choice  .jsonl  {"context": "...", "choices": ["...", "..."], "label": 1} (--model gpt)

Lines with an empty or missing label are refused with their line number. Evaluation: accuracy
(= P@1) for classification and pairs, per-word accuracy for tagging, exact match for qa.
The last line printed is a summary; --json prints the metrics as JSON on stdout instead."""

FINETUNE_EPILOG = """examples:
  word2bert finetune bert-small --train train.tsv --dev dev.tsv -o clf
  word2bert finetune bert-small --train pairs.jsonl --dev dev.jsonl --task pair -o nli --epochs 2
  word2bert finetune bert-small --train ner.tsv --task tagging -o ner --lr 3e-5 --max-length 64
  word2bert finetune bert-small --train train.txt --dev test.txt -o clf --json     # fastText's files
"""

ENCODE_EPILOG = """examples:
  word2bert encode bert-small "a sentence" "another one"
  word2bert encode bert-small - --pooling mean < sentences.txt > vectors.tsv
  word2bert encode bert-small "a sentence" --layer mix --tokens     # every word piece's vector
  word2bert encode --model elmo elmo-dir/ "the cat sat" --layer mix  # bilm-tf files
"""


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter

    finetune = commands.add_parser(
        "finetune", help="fine-tune a pre-trained model (BERT) on labelled data", formatter_class=HelpfulFormatter,
        description=FINETUNE_DESCRIPTION, epilog=FINETUNE_EPILOG)
    add_input(finetune, "model", "MODEL", "pre-trained model directory", options=("--model-name-or-path",))
    finetune.add_argument("--train", "--train-file", required=True, metavar="FILE",
                          help="labelled training file (formats above)")
    finetune.add_argument("--dev", "--validation-file", metavar="FILE", help="labelled evaluation file (same format)")
    finetune.add_argument("--task", default="classification", choices=TASKS, help="the task and head")
    finetune.add_argument("-o", "--output", "--output-dir", required=True, metavar="OUT",
                          help="directory for the fine-tuned model; refused if it holds files, unless --overwrite")
    finetune.add_argument("--overwrite", "--overwrite-output-dir", action="store_true", help="replace what OUT holds")
    finetune.add_argument("--epochs", "--num-train-epochs", type=float, default=None, metavar="E",
                          help="passes over the training data (default 3; ulmfit: one per layer group)")
    finetune.add_argument("--max-steps", type=int, default=None, metavar="N",
                          help="optimizer steps (default: as many as --epochs take)")
    finetune.add_argument("--batch-size", "--per-device-train-batch-size", type=int, default=32, metavar="N",
                          help="examples per step")
    finetune.add_argument("--lr", "--learning-rate", type=float, default=None,
                          help="peak learning rate (default 5e-5, AdamW; ulmfit: 1e-2, Adam)")
    finetune.add_argument("--warmup", "--warmup-steps", "--warmup-ratio", type=float, default=0.1, metavar="W",
                          help="warm-up steps (< 1: a fraction of the run)")
    finetune.add_argument("--weight-decay", type=float, default=0.01, metavar="D", help="AdamW weight decay")
    finetune.add_argument("--dropout", type=float, default=None, metavar="P",
                          help="dropout of the encoder and head (default: the model's config)")
    finetune.add_argument("--max-length", "--max-seq-length", type=int, default=None, metavar="N",
                          help="longest input in tokens (longer ones are truncated; default: 128, or the model's "
                               "positions if it has fewer; more than its positions is refused)")
    finetune.add_argument("--pooling", default="pooler", choices=["pooler", "cls", "mean", "last"],
                          help="sentence vector for classification: BERT's pooler, the [CLS] row, the mean, or "
                               "the last token's row (left-to-right models such as GPT)")
    finetune.add_argument("--max-train-examples", type=int, default=None, metavar="N",
                          help="train on a random subset of N examples")
    finetune.add_argument("--max-dev-examples", type=int, default=None, metavar="N",
                          help="evaluate on a random subset of N examples")
    finetune.add_argument("--bf16", action="store_true", help="bf16 autocast")
    finetune.add_argument("--seed", type=int, default=0, help="random seed (head, dropout, order)")
    finetune.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads (default: torch's)")
    finetune.add_argument("--quiet", action="store_true", help="no progress bar")
    finetune.add_argument("--json", action="store_true", help="print the metrics as JSON on stdout")
    finetune.add_argument("--model", dest="model_kind", default="bert", metavar="KIND",
                          help="bert for any Hugging Face layout encoder directory, or a model with its own "
                               "recipe: ulmfit (MODEL is an AWD-LSTM language model), gpt (GPT-1's input "
                               "transformations and auxiliary LM loss; --task entailment|similarity|multiple-choice)")
    finetune.set_defaults(func=run_finetune, python_names={"learning_rate": "--lr", "warmup_steps": "--warmup"})

    encode = commands.add_parser(
        "encode", help="print sentence or token vectors from a pre-trained model", formatter_class=HelpfulFormatter,
        description="Encode texts with a model directory; prints `text<TAB>v1 v2 ...` per text, or with --tokens "
                    "`piece<TAB>v1 v2 ...` per word piece and a blank line after each text.",
        epilog=ENCODE_EPILOG)
    encode.add_argument("model", metavar="MODEL", help="model directory (Hugging Face layout with its tokenizer files)")
    encode.add_argument("texts", nargs="+", metavar="TEXT", help="texts to encode ('-' reads lines from stdin)")
    encode.add_argument("--layer", default="-1",
                        help="hidden layer: 0 the embeddings, 1..L the layers, -1 the last; or 'mix' (ELMo's "
                             "scalar mix, uniform weights)")
    encode.add_argument("--pooling", default="cls", choices=["cls", "mean", "pooler", "last"],
                        help="sentence vector: the [CLS] row, the mean of the rows, BERT's pooler, or the last "
                             "token's row (left-to-right models)")
    encode.add_argument("--model", dest="model_kind", default="bert", metavar="KIND",
                        help="bert for any Hugging Face layout directory (BERT, RoBERTa, GPT, ...: config.json "
                             "says which), or a model with its own files: elmo, cove")
    encode.add_argument("--tokens", action="store_true", help="print every word piece's vector instead")
    encode.add_argument("--batch-size", type=int, default=32, metavar="N", help="texts per forward pass")
    encode.set_defaults(func=run_encode)


def _check_finetune_arguments(args) -> None:
    for flag, path in (("--train", args.train), ("--dev", args.dev)):
        if path is not None and not Path(path).is_file():
            raise Word2BertError(f"{flag}: file not found: {path}" if not Path(path).is_dir()
                                 else f"{flag}: expected a file but found a directory: {path}")
    for name in ("batch_size", "max_length"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise Word2BertError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    for name in ("max_steps", "max_train_examples", "max_dev_examples", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise Word2BertError(f"--{name.replace('_', '-')} {value}: must be >= 1")
    if args.max_steps is None and not args.epochs > 0:
        raise Word2BertError(f"--epochs {args.epochs}: must be > 0")
    if not args.lr > 0:
        raise Word2BertError(f"--lr {args.lr}: must be > 0")
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        raise Word2BertError(f"--dropout {args.dropout}: must be in [0, 1)")


def _check_task_files(args) -> None:
    """Read the task files once before any model is loaded: a bad line is reported at once, and a
    training file with a single label (nothing to learn) is refused."""
    from word2bert.tasks.data import label_list, read_task_file

    examples = read_task_file(args.task, args.train)
    if args.task in ("classification", "pair"):
        labels = label_list(examples)
        if len(labels) < 2:
            raise Word2BertError(f"--train {args.train}: every example has the label {labels[0]!r}; a classifier "
                                 "needs at least two labels")
    if args.dev is not None:
        read_task_file(args.task, args.dev)


def run_finetune(args) -> int:
    require_contextual("finetune")
    if args.model_kind != "bert":  # e.g. --model ulmfit: word2bert.commands.ulmfit.run_finetune
        return _command_module(args.model_kind, "run_finetune").run_finetune(args)
    if args.task in ("entailment", "similarity", "multiple-choice"):
        raise Word2BertError(f"--task {args.task} is GPT-1's input transformation: give --model gpt")
    args.epochs = 3.0 if args.epochs is None else args.epochs
    args.lr = 5e-5 if args.lr is None else args.lr
    model_dir = check_model_directory(input_path(args, "model", "MODEL"))
    _check_finetune_arguments(args)
    output, _exists = prepare_output_directory(args.output, overwrite=args.overwrite, marker="task.json")
    _check_task_files(args)
    from word2bert.tasks.finetune import finetune, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    result = finetune(model_dir, args.train, args.dev, task=args.task, output_dir=None, epochs=args.epochs,
                      max_steps=args.max_steps, batch_size=args.batch_size, learning_rate=args.lr,
                      max_length=args.max_length, warmup=args.warmup, weight_decay=args.weight_decay,
                      dropout=args.dropout, pooling=args.pooling, seed=args.seed,
                      max_train_examples=args.max_train_examples, max_dev_examples=args.max_dev_examples,
                      bf16=args.bf16, progress=False if args.quiet else None, num_threads=args.threads)

    def save(directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        result.model.save_pretrained(directory)
        tokenizer.save(directory)

    save_or_rescue(save, output, "fine-tuned model")
    metrics = {**result.metrics, "train_seconds": round(result.train_seconds, 2),
               "eval_seconds": round(result.eval_seconds, 2)}
    if args.json:
        print(json.dumps(metrics))
        return 0
    task_config = result.model.task_config() if hasattr(result.model, "task_config") else {}
    labels = task_config.get("labels")
    what = f"{args.task}, {len(labels)} label{'s' if len(labels) != 1 else ''}" if labels else args.task
    dev = ""
    if args.dev is not None:
        evaluation = {k: v for k, v in result.metrics.items() if k not in ("train_loss", "train_steps")}
        dev = f"; dev {format_metrics(evaluation)}"
    print(f"finetune: {what}, {result.metrics.get('train_steps', 0):,} steps in {result.train_seconds:.1f} s, "
          f"train loss {result.metrics.get('train_loss', float('nan')):.4f}{dev} -> {output}")
    return 0


def _command_module(kind: str, function: str):
    """``word2bert.commands.<kind>`` if it defines ``function`` (the --model hook)."""
    import importlib

    module = None
    if kind.isidentifier():
        try:
            module = importlib.import_module(f"word2bert.commands.{kind}")
        except ImportError:
            module = None
    if not hasattr(module, function):
        raise Word2BertError(f"--model {kind!r}: no such model")
    return module


def _layer(value: str):
    if value == "mix":
        return value
    try:
        return int(value)
    except ValueError:
        raise Word2BertError(f"--layer must be an integer or 'mix', got {value!r}") from None


def run_encode(args) -> int:
    require_contextual("encode")
    if args.model_kind != "bert":  # e.g. --model elmo: word2bert.commands.elmo.run_encode
        import importlib

        module = None
        if args.model_kind.isidentifier():
            try:
                module = importlib.import_module(f"word2bert.commands.{args.model_kind}")
            except ImportError:
                module = None
        if not hasattr(module, "run_encode"):
            raise Word2BertError(f"--model {args.model_kind!r}: no such model to encode with")
        return module.run_encode(args)
    from word2bert.models.auto import encoder_from_pretrained
    from word2bert.tasks.encode import encode
    from word2bert.tasks.finetune import load_tokenizer

    model_dir = check_model_directory(args.model)
    layer = _layer(args.layer)
    if args.batch_size < 1:
        raise Word2BertError(f"--batch-size {args.batch_size}: must be >= 1")
    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    if not texts:
        raise Word2BertError("no texts to encode (stdin was empty)")
    tokenizer = load_tokenizer(model_dir)
    model = encoder_from_pretrained(model_dir)
    model.eval()
    if isinstance(layer, int):
        layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
        if layers is not None and not -(layers + 1) <= layer <= layers:
            raise Word2BertError(f"--layer {layer}: the model has layers 0 (embeddings) to {layers}")
    encoded = encode(model, tokenizer, texts, layer=layer, pooling=args.pooling, batch_size=args.batch_size)
    if args.tokens:
        for tokens, vectors in zip(encoded.tokens, encoded.token_vectors):
            for token, vector in zip(tokens, vectors):
                print(token + "\t" + " ".join(f"{x:.6g}" for x in vector))
            print()
    else:
        for text, vector in zip(texts, encoded.sentence_vectors):
            print(text.replace("\t", " ") + "\t" + " ".join(f"{x:.6g}" for x in vector))
    return 0
