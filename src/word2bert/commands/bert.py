"""``word2bert pretrain bert``, ``word2bert finetune`` and ``word2bert encode``.

Examples::

    word2bert pretrain bert corpus.txt -o bert-small --layers 4 --hidden 256 --heads 4 --ffn 1024 \\
        --vocab-size 8000 --max-seq-length 128 --batch-size 32 --max-steps 10000
    word2bert pretrain bert corpus.txt -o bert-small --resume          # continue after Ctrl-C
    word2bert finetune bert-small --train train.tsv --dev dev.tsv --task classification -o clf
    word2bert encode bert-small "a sentence" "another one" --layer -1 --pooling mean
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from word2bert.errors import Word2BertError

PRETRAIN_EPILOG = """examples:
  word2bert pretrain bert corpus.txt -o bert-small --layers 4 --hidden 256 --heads 4 --ffn 1024 --vocab-size 8000
  word2bert pretrain bert corpus.txt -o bert-small --config config.json --vocab vocab.txt
  word2bert pretrain bert corpus.txt -o bert-small --resume      # continue an interrupted run
  word2bert pretrain bert corpus.txt -o bert-wwm --masking whole-word    (or span, ngram, phrase, entity)
  torchrun --nproc_per_node 2 -m word2bert pretrain bert corpus.txt -o bert-small   (data parallel)

The corpus is BERT's format (one sentence per line, blank line between documents) or one
document per line (text8-style; cut into pseudo-sentences of --words-per-sentence words).
"""


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter

    pretrain = commands.add_parser("pretrain", help="pre-train a contextual model (BERT)",
                                   formatter_class=HelpfulFormatter,
                                   description="Pre-train a contextual model; `word2bert pretrain bert --help`.")
    models = pretrain.add_subparsers(title="models", dest="pretrain_model", metavar="MODEL")
    pretrain.set_defaults(func=lambda args: _missing(pretrain))
    bert = models.add_parser("bert", help="BERT with masked LM + next-sentence prediction",
                             formatter_class=HelpfulFormatter, epilog=PRETRAIN_EPILOG,
                             description="Pre-train BERT (MLM + NSP) on a text corpus.")
    bert.add_argument("corpus", help="text file (plain/.gz/.bz2/.xz)")
    bert.add_argument("-o", "--output", required=True, help="output directory (Hugging Face layout + checkpoint)")
    bert.add_argument("--config", help="BertConfig JSON (Hugging Face field names); flags below override it")
    bert.add_argument("--layers", type=int, help="num_hidden_layers (default 4)")
    bert.add_argument("--hidden", type=int, help="hidden_size (default 256)")
    bert.add_argument("--heads", type=int, help="num_attention_heads (default 4)")
    bert.add_argument("--ffn", type=int, help="intermediate_size (default 4 x hidden)")
    bert.add_argument("--dropout", type=float, help="hidden and attention dropout (default 0.1)")
    bert.add_argument("--pre-layer-norm", action="store_true", help="pre-LN blocks instead of BERT's post-LN")
    bert.add_argument("--vocab", help="an existing vocab.txt (default: train one on the corpus)")
    bert.add_argument("--vocab-size", type=int, default=8000, help="WordPiece vocabulary size when training one")
    bert.add_argument("--cased", action="store_true", help="keep case and accents")
    bert.add_argument("--max-seq-length", type=int, default=128)
    bert.add_argument("--short-seq-prob", type=float, default=0.1)
    bert.add_argument("--words-per-sentence", type=int, default=24)
    bert.add_argument("--masked-lm-prob", type=float, default=0.15)
    bert.add_argument("--max-predictions", type=int, default=20, help="max_predictions_per_seq")
    from word2bert.commands.pretrain_family import add_masking_arguments

    add_masking_arguments(bert)  # --masking {token,whole-word,span,ngram,phrase,entity} and its options
    bert.add_argument("--dynamic-masking", action="store_true",
                      help="new masks every use (RoBERTa); default: BERT's fixed masks per copy")
    bert.add_argument("--dupe-factor", type=int, default=None, help="copies of the data (default 5 static, 1 dynamic)")
    bert.add_argument("--no-nsp", action="store_true", help="masked LM only (single segments)")
    bert.add_argument("--batch-size", type=int, default=32, help="per process")
    bert.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: --epochs)")
    bert.add_argument("--epochs", type=float, default=1.0)
    bert.add_argument("--lr", type=float, default=1e-4)
    bert.add_argument("--warmup", type=float, default=0.01, help="warm-up steps (< 1: fraction of the run)")
    bert.add_argument("--weight-decay", type=float, default=0.01)
    bert.add_argument("--clip", type=float, default=1.0, help="max gradient norm (0: off)")
    bert.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    bert.add_argument("--bf16", action="store_true", help="bf16 autocast")
    bert.add_argument("--eval-fraction", type=float, default=0.01, help="held-out share of the instances")
    bert.add_argument("--eval-steps", type=int, default=0, help="evaluate every N steps (0: at the end)")
    bert.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps (0: end/interrupt)")
    bert.add_argument("--seed", type=int, default=12345)
    bert.add_argument("--threads", type=int, default=None, help="torch threads")
    bert.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output directory")
    bert.add_argument("--quiet", action="store_true", help="no progress bar")
    bert.set_defaults(func=run_pretrain)

    finetune = commands.add_parser("finetune", help="fine-tune a pre-trained BERT on labelled data",
                                   formatter_class=HelpfulFormatter,
                                   description="Fine-tune a BERT directory (config.json + weights + vocab.txt). "
                                               "Files: TSV, JSONL or fastText format (see word2bert.tasks.data).")
    finetune.add_argument("model", help="model directory (Hugging Face layout with vocab.txt)")
    finetune.add_argument("--train", required=True, help="training file")
    finetune.add_argument("--dev", help="evaluation file (accuracy / P@1 / exact match)")
    finetune.add_argument("--task", default="classification", choices=["classification", "pair", "tagging", "qa"])
    finetune.add_argument("-o", "--output", help="directory for the fine-tuned model")
    finetune.add_argument("--epochs", type=float, default=3.0)
    finetune.add_argument("--batch-size", type=int, default=32)
    finetune.add_argument("--lr", type=float, default=5e-5)
    finetune.add_argument("--max-length", type=int, default=128)
    finetune.add_argument("--warmup", type=float, default=0.1)
    finetune.add_argument("--pooling", default="pooler", choices=["pooler", "cls", "mean"])
    finetune.add_argument("--max-train-examples", type=int, default=None)
    finetune.add_argument("--bf16", action="store_true")
    finetune.add_argument("--seed", type=int, default=0)
    finetune.add_argument("--threads", type=int, default=None)
    finetune.add_argument("--quiet", action="store_true")
    finetune.set_defaults(func=run_finetune)

    encode = commands.add_parser("encode", help="print sentence vectors from a BERT directory",
                                 formatter_class=HelpfulFormatter,
                                 description="Encode texts; prints `text<TAB>v1 v2 ...` per text.")
    encode.add_argument("model", help="model directory (Hugging Face layout with vocab.txt)")
    encode.add_argument("texts", nargs="+", help="texts to encode ('-' reads lines from stdin)")
    encode.add_argument("--layer", default="-1", help="hidden layer (0 = embeddings, -1 = last) or 'mix'")
    encode.add_argument("--pooling", default="cls", choices=["cls", "mean", "pooler"])
    encode.add_argument("--tokens", action="store_true", help="print every token's vector instead")
    encode.add_argument("--model", dest="model_kind", default="bert",
                        help="the kind of model: bert, or another whose command module has run_encode (elmo, cove)")
    encode.set_defaults(func=run_encode)


def _missing(parser) -> int:
    parser.print_help(sys.stderr)
    print(f"\n{parser.prog}: error: give a model to pre-train", file=sys.stderr)
    return 2


def build_config(args, vocab_size: int):
    """A BertConfig from --config plus the size flags (flags win)."""
    from word2bert.models.bert import BertConfig

    values = {}
    if args.config:
        path = Path(args.config)
        if not path.exists():
            raise Word2BertError(f"config file not found: {path}")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise Word2BertError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(values, dict):
            raise Word2BertError(f"{path}: expected a JSON object of BertConfig fields")
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


def run_pretrain(args) -> int:
    import torch

    from word2bert.commands.pretrain_family import masking_units
    from word2bert.corpus.wordpiece import WordPieceTokenizer
    from word2bert.models.bert import BertForPreTraining
    from word2bert.objectives import MaskedLM
    from word2bert.objectives.pretraining import PretrainingCollator, PretrainingDataset
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.checkpoint import find_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    corpus, output = Path(args.corpus), Path(args.output)
    if not corpus.exists():
        raise Word2BertError(f"corpus not found: {corpus}")
    if args.resume and find_checkpoint(output) is None:
        raise Word2BertError(f"--resume: no checkpoint in {output}")
    output.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    if args.resume and (output / "vocab.txt").exists():
        tokenizer = WordPieceTokenizer.from_pretrained(output)
    elif args.vocab:
        tokenizer = WordPieceTokenizer.from_file(args.vocab, lowercase=not args.cased)
    else:
        say(f"training a WordPiece vocabulary of {args.vocab_size} on {corpus}")
        tokenizer = WordPieceTokenizer.train(corpus, vocab_size=args.vocab_size, lowercase=not args.cased)
    config = build_config(args, tokenizer.vocab_size)
    dynamic = args.dynamic_masking
    dupe_factor = args.dupe_factor or (1 if dynamic else 5)
    say(f"building pre-training instances (dupe_factor={dupe_factor}, max_seq_length={args.max_seq_length})")
    dataset = PretrainingDataset.from_file(corpus, tokenizer, max_seq_length=args.max_seq_length,
                                           short_seq_prob=args.short_seq_prob, dupe_factor=dupe_factor,
                                           next_sentence=not args.no_nsp, seed=args.seed,
                                           words_per_sentence=args.words_per_sentence)
    held_out_count = int(len(dataset) * args.eval_fraction) if args.eval_fraction > 0 else 0
    train, held_out = dataset.split(held_out_count, seed=args.seed) if held_out_count else (dataset, None)
    masking = MaskedLM(tokenizer.vocab_size, tokenizer.mask_id, tokenizer.special_ids, tokenizer.pad_id,
                       masked_lm_prob=args.masked_lm_prob, max_predictions_per_seq=args.max_predictions,
                       dynamic=dynamic, seed=args.seed,
                       units=None if args.masking == "token" else masking_units(args, tokenizer, corpus, say))
    collate = PretrainingCollator(masking, tokenizer.pad_id, next_sentence=not args.no_nsp)
    torch.manual_seed(args.seed)
    model = BertForPreTraining(config, next_sentence=not args.no_nsp)
    training = TrainingArguments(
        output_dir=str(output), batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
        learning_rate=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup,
        max_grad_norm=args.clip, gradient_accumulation_steps=args.grad_accum, bf16=args.bf16, seed=args.seed,
        save_steps=args.save_steps, eval_steps=args.eval_steps, progress=False if args.quiet else None)
    trainer = Trainer(model, training, train, collate, eval_data=held_out)
    if trainer.rank == 0:
        tokenizer.save(output)
        config.save(output / "config.json")
    say(f"{len(train)} training instances, {trainer.state.total_steps} steps of {args.batch_size} x "
        f"{trainer.world_size} process(es)")
    try:
        state = trainer.train(resume_from=output if args.resume else None)
    except KeyboardInterrupt:
        if trainer.rank == 0:
            print(f"word2bert: interrupted; checkpoint saved in {output} (continue with --resume)", file=sys.stderr)
        return 130
    if trainer.rank == 0:
        model.save_pretrained(output)
        tokenizer.save(output)
        summary = {"steps": state.global_step, "tokens": state.tokens_seen,
                   "final_loss": state.history[-1]["loss"] if state.history else None,
                   "evaluation": state.evaluations[-1] if state.evaluations else None}
        print(json.dumps(summary))
    return 0


def run_finetune(args) -> int:
    from word2bert.tasks.finetune import finetune

    result = finetune(args.model, args.train, args.dev, task=args.task, output_dir=args.output, epochs=args.epochs,
                      batch_size=args.batch_size, learning_rate=args.lr, max_length=args.max_length,
                      warmup=args.warmup, pooling=args.pooling, seed=args.seed,
                      max_train_examples=args.max_train_examples, bf16=args.bf16,
                      progress=False if args.quiet else None, num_threads=args.threads)
    print(json.dumps({**result.metrics, "train_seconds": round(result.train_seconds, 2),
                      "eval_seconds": round(result.eval_seconds, 2)}))
    return 0


def run_encode(args) -> int:
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

    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    layer = args.layer if args.layer == "mix" else _int(args.layer, "--layer")
    tokenizer = load_tokenizer(args.model)
    model = encoder_from_pretrained(args.model)
    encoded = encode(model, tokenizer, texts, layer=layer, pooling=args.pooling)
    if args.tokens:
        for text, tokens, vectors in zip(texts, encoded.tokens, encoded.token_vectors):
            for token, vector in zip(tokens, vectors):
                print(token + "\t" + " ".join(f"{x:.6g}" for x in vector))
            print()
    else:
        for text, vector in zip(texts, encoded.sentence_vectors):
            print(text.replace("\t", " ") + "\t" + " ".join(f"{x:.6g}" for x in vector))
    return 0


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Word2BertError(f"{name} must be an integer or 'mix', got {value!r}") from None
