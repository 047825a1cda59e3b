"""``word2bert pretrain elmo`` and ``word2bert encode --model elmo``.

Examples::

    word2bert pretrain elmo ptb.train.txt --valid ptb.valid.txt -o elmo-small/ --lstm-dim 256 \
        --projection-dim 64 --filters 1:32,2:32,3:64,4:128 --highway 1 --bptt 20 --batch-size 32 --max-steps 2000
    word2bert encode --model elmo elmo-dir/ "the cat sat" "a dog barked" --layer mix
    word2bert encode --model elmo elmo-dir/ - --tokens < sentences.txt
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from word2bert.commands import add_overwrite_option, prepare_output_directory, save_or_rescue
from word2bert.errors import Word2BertError

PRETRAIN_EPILOG = """examples:
  word2bert pretrain elmo ptb.train.txt --valid ptb.valid.txt -o elmo/ --lstm-dim 256 --projection-dim 64 \
      --filters 1:32,2:32,3:64,4:128 --highway 1 --max-steps 2000          (minutes on a CPU)
  word2bert pretrain elmo corpus.txt -o elmo/ --options options.json --vocab vocab.txt   (bilm-tf's files)
  word2bert pretrain elmo corpus.txt -o elmo/ --resume                      continue after Ctrl-C

The corpus has one sentence per line (longer lines are cut every --max-sentence-length words); the
stream <S> w .. w </S> <S> .. is cut into --batch-size rows read --bptt tokens at a time, each row's
LSTM states carried from batch to batch (the backward LSTM walks each row from its end). The output
directory holds bilm-tf's files: options.json, lm_weights.hdf5 (plus softmax/W and softmax/b) and
vocab.txt; bilm-tf, AllenNLP's Elmo and `word2bert encode --model elmo` read it.
Deviation from bilm-tf: Adam (bilm-tf uses Adagrad, learning rate 0.2).
"""


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter
    from word2bert.commands._contextual import pretrain_group

    elmo = pretrain_group(commands).add_parser("elmo", help="ELMo's bidirectional character language model",
                                               formatter_class=HelpfulFormatter, epilog=PRETRAIN_EPILOG,
                                               description="Pre-train ELMo (character CNN + biLSTM LM, forward and "
                                                           "backward losses, sampled softmax) on a text corpus.")
    elmo.add_argument("corpus", help="text file, one sentence per line (plain/.gz/.bz2/.xz)")
    elmo.add_argument("-o", "--output", required=True, help="output directory (bilm-tf files + checkpoint)")
    elmo.add_argument("--valid", help="held-out text: forward/backward perplexity at the end")
    elmo.add_argument("--options", help="bilm-tf options.json to start from; flags below override it")
    elmo.add_argument("--char-dim", type=int, help="character embedding size (default 16)")
    elmo.add_argument("--filters", help="width:count,... of the character CNN (default ELMo's 7 filters, 2048)")
    elmo.add_argument("--highway", type=int, help="highway layers (default 2)")
    elmo.add_argument("--lstm-dim", type=int, help="LSTM cell size (default 4096)")
    elmo.add_argument("--projection-dim", type=int, help="LSTM projection and token vector size (default 512)")
    elmo.add_argument("--layers", type=int, help="biLSTM layers (default 2)")
    elmo.add_argument("--cell-clip", type=float, help="cell clip (default 3; 0: none)")
    elmo.add_argument("--proj-clip", type=float, help="projection clip (default 3; 0: none)")
    elmo.add_argument("--no-skip", action="store_true", help="no residual connections between LSTM layers")
    elmo.add_argument("--dropout", type=float, help="dropout on LSTM inputs and on the softmax input (default 0.1)")
    elmo.add_argument("--vocab", help="bilm-tf vocabulary file (with <S>, </S>, <UNK>); default: built from the corpus")
    elmo.add_argument("--vocab-size", type=int, default=50000, help="softmax size when building the vocabulary")
    elmo.add_argument("--min-count", type=int, default=1, help="minimum count of a softmax word")
    elmo.add_argument("--negative-samples", type=int, default=8192,
                      help="sampled-softmax candidates per batch (0: full softmax)")
    elmo.add_argument("--max-sentence-length", type=int, default=50)
    elmo.add_argument("--bptt", type=int, default=20, help="tokens per window (bilm-tf's unroll_steps)")
    elmo.add_argument("--batch-size", type=int, default=32, help="rows of the stream")
    elmo.add_argument("--epochs", type=float, default=1.0)
    elmo.add_argument("--max-steps", type=int, default=None)
    elmo.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (linear decay)")
    elmo.add_argument("--warmup", type=float, default=0.0, help="warm-up steps (< 1: fraction of the run)")
    elmo.add_argument("--clip", type=float, default=10.0, help="max gradient norm (bilm-tf: 10)")
    elmo.add_argument("--save-steps", type=int, default=500)
    elmo.add_argument("--seed", type=int, default=0)
    elmo.add_argument("--threads", type=int, default=None)
    elmo.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output directory")
    add_overwrite_option(elmo)
    elmo.add_argument("--quiet", action="store_true")
    elmo.set_defaults(func=run_pretrain)


def parse_filters(text: str) -> list[list[int]]:
    try:
        filters = [[int(v) for v in item.split(":")] for item in text.split(",") if item.strip()]
    except ValueError:
        filters = []
    if not filters or any(len(f) != 2 or min(f) < 1 for f in filters):
        raise Word2BertError(f"--filters {text!r}: expected width:count pairs such as 1:32,2:64,3:128")
    return filters


def build_config(args, vocab_size: int):
    from word2bert.interop import bilm as bilm_format
    from word2bert.models.elmo import ElmoConfig

    overrides = {"vocab_size": vocab_size}
    for flag, name in (("char_dim", "char_embedding_dim"), ("highway", "n_highway"), ("lstm_dim", "lstm_dim"),
                       ("projection_dim", "projection_dim"), ("layers", "n_layers"), ("dropout", "dropout")):
        if getattr(args, flag) is not None:
            overrides[name] = getattr(args, flag)
    for flag, name in (("cell_clip", "cell_clip"), ("proj_clip", "proj_clip")):
        value = getattr(args, flag)
        if value is not None:
            overrides[name] = value or None
    if args.filters:
        overrides["filters"] = parse_filters(args.filters)
    if args.no_skip:
        overrides["use_skip_connections"] = False
    overrides["n_negative_samples"] = args.negative_samples
    if args.options:
        return ElmoConfig.from_bilm_options(bilm_format.read_options(args.options), **overrides)
    return ElmoConfig(**overrides)


#: Flags of ``pretrain elmo`` that may change when a run is resumed; every other one must match the
#: run's training_args.json (flags not given take its values).
ELMO_RESUMABLE = {"corpus", "output", "valid", "epochs", "max_steps", "save_steps", "resume", "overwrite", "threads",
                  "quiet"}


def run_pretrain(args) -> int:
    from word2bert.commands._contextual import require_contextual, training_run_directory

    require_contextual("pretrain elmo")
    import torch

    from word2bert.train.checkpoint import find_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    corpus, output = Path(args.corpus), Path(args.output)
    prepare_output_directory(args.output, overwrite=args.overwrite, resume=args.resume)
    if not corpus.exists():
        raise Word2BertError(f"corpus not found: {corpus}")
    if args.resume and find_checkpoint(output) is None:
        raise Word2BertError(f"--resume: no checkpoint in {output}")
    with training_run_directory(args, output, ELMO_RESUMABLE):
        outcome = _pretrain(args, corpus, output)
    if outcome is None:
        return 130
    model, trainer, state = outcome
    if trainer.rank == 0:
        save_or_rescue(model.save_pretrained, output, "model")
        summary = {"steps": state.global_step, "tokens": state.tokens_seen, "seconds": round(state.elapsed, 1),
                   "final_loss": state.history[-1]["loss"] if state.history else None,
                   "evaluation": state.evaluations[-1] if state.evaluations else None}
        print(json.dumps(summary))
    return 0


def _pretrain(args, corpus: Path, output: Path):
    """Read the corpus, build the model and train it: ``(model, trainer, state)``, or None when interrupted."""
    import torch

    from word2bert.interop import bilm as bilm_format
    from word2bert.models.elmo import ElmoCorpus, ElmoForPreTraining
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.samplers import ContiguousStreamSampler

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    if args.resume and (output / bilm_format.VOCAB_NAME).exists():
        vocabulary = bilm_format.read_vocabulary(output / bilm_format.VOCAB_NAME)
    elif args.vocab:
        vocabulary = bilm_format.read_vocabulary(args.vocab)
    else:
        vocabulary = None
    say(f"reading {corpus}")
    train = ElmoCorpus.from_file(corpus, vocabulary, args.vocab_size, args.min_count, args.max_sentence_length)
    config = build_config(args, len(train.vocabulary))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    sampler = ContiguousStreamSampler(len(train.stream), args.batch_size, args.bptt, seed=args.seed)
    if sampler.row_length(world_size) < args.bptt:
        raise Word2BertError(f"--bptt {args.bptt} is longer than the rows: {len(train.stream)} tokens make "
                             f"{args.batch_size * world_size} rows of {sampler.row_length(world_size)}; "
                             "lower --bptt or --batch-size")
    valid = eval_sampler = None
    if args.valid:
        held_out = ElmoCorpus.from_file(args.valid, train.vocabulary, max_sentence_length=args.max_sentence_length,
                                        types=train.types)
        eval_sampler = ContiguousStreamSampler(len(held_out.stream), args.batch_size, args.bptt)
        valid = held_out.windows(eval_sampler.row_length(1))
    torch.manual_seed(args.seed)
    model = ElmoForPreTraining(config, train.vocabulary)
    output.mkdir(parents=True, exist_ok=True)
    training = TrainingArguments(
        output_dir=str(output), batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
        learning_rate=args.lr, optimizer="adam", weight_decay=0.0, warmup_steps=args.warmup,
        max_grad_norm=args.clip, seed=args.seed, save_steps=args.save_steps, progress=False if args.quiet else None)
    data = train.windows(sampler.row_length(world_size))
    trainer = Trainer(model, training, data, data.collate, eval_data=valid,
                      eval_collate_fn=valid.collate if valid is not None else None, sampler=sampler,
                      eval_sampler=eval_sampler)
    if trainer.rank == 0:
        bilm_format.write_vocabulary(output / bilm_format.VOCAB_NAME, train.vocabulary)
    say(f"{len(train.stream)} tokens, {len(train.types)} word types, softmax of {len(train.vocabulary)} words; "
        f"{trainer.state.total_steps} steps of {args.batch_size} rows x {args.bptt} tokens")
    try:
        state = trainer.train(resume_from=output if args.resume else None)
    except KeyboardInterrupt:
        if trainer.rank == 0:
            print(f"word2bert: interrupted; checkpoint saved in {output} (continue with --resume)", file=sys.stderr)
        return None
    return model, trainer, state


def run_encode(args) -> int:
    """Print ELMo vectors (a bilm-tf directory: options.json + lm_weights.hdf5) of whitespace-tokenised texts.

    ``--layer`` 0 (character layer), 1..L, -1 (top) or ``mix``; sentence vectors are the mean of the
    token vectors (``--pooling`` does not apply). Texts run in order with each row's LSTM state
    carried on, as bilm-tf's ``dump_bilm_embeddings`` does.
    """
    from pathlib import Path

    from word2bert.models.elmo import ElmoModel, encode

    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    layer = args.layer if args.layer == "mix" else _int(args.layer, "--layer")
    model = ElmoModel.from_pretrained(Path(args.model))
    model.enable_character_cache()
    encoded = encode(model, texts, layer=layer)
    if args.tokens:
        for tokens, vectors in zip(encoded.tokens, encoded.token_vectors):
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
