"""``word2bert train cove`` and ``word2bert encode --model cove``.

Examples::

    word2bert train glove enmix.txt -o glove.txt --format glove --vector-size 300
    word2bert train cove po_en_fr.train.tsv.xz --glove glove.txt --valid po_en_fr.valid.tsv.xz -o cove/
    word2bert encode --model cove cove/ "a sentence to encode" --tokens
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from word2bert.commands import add_overwrite_option, prepare_output_directory, save_or_rescue
from word2bert.errors import Word2BertError

TRAIN_EPILOG = """examples:
  word2bert train cove pairs.tsv --glove glove.txt -o cove/ --hidden 300 --epochs 5
  word2bert train cove pairs.tsv --glove glove.txt -o cove/ --resume     # continue after Ctrl-C

PAIRS is `english<TAB>french` per line (plain/.gz/.bz2/.xz). Both sides are lowercased and split into
words, numbers and punctuation marks; English words outside the GloVe vocabulary read a zero vector.
The GloVe vectors are never trained; the encoder alone is then CoVe (`encode --model cove`).
"""


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter

    cove = train_commands.add_parser(
        "cove", help="CoVe: an attentional translation model whose encoder gives context vectors",
        formatter_class=HelpfulFormatter, epilog=TRAIN_EPILOG,
        description="Train CoVe's MT-LSTM (2-layer biLSTM over frozen GloVe + attentional LSTM decoder) "
                    "on sentence pairs.")
    cove.add_argument("pairs", help="training pairs: source<TAB>target per line")
    cove.add_argument("--glove", required=True, help="GloVe vectors (any format KeyedVectors reads)")
    cove.add_argument("-o", "--output", required=True, help="output directory")
    cove.add_argument("--valid", help="held-out pairs (perplexity and word accuracy at the end)")
    cove.add_argument("--hidden", type=int, default=300, help="LSTM size per direction (CoVe is twice this)")
    cove.add_argument("--layers", type=int, default=2, help="encoder (and decoder) layers")
    cove.add_argument("--target-embedding", type=int, default=300, help="target word embedding size")
    cove.add_argument("--target-vocab", type=int, default=10000, help="target vocabulary size (with 4 specials)")
    cove.add_argument("--dropout", type=float, default=0.2, help="dropout between the LSTM layers")
    cove.add_argument("--max-length", type=int, default=60, help="tokens kept per side")
    cove.add_argument("--max-pairs", type=int, default=None, help="read at most this many training pairs")
    cove.add_argument("--batch-size", type=int, default=64, help="sentence pairs per step")
    cove.add_argument("--epochs", type=float, default=5.0, help="passes over the pairs")
    cove.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: as many as --epochs take)")
    cove.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (linear decay)")
    cove.add_argument("--clip", type=float, default=5.0, help="max gradient norm")
    cove.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps (0: end/interrupt)")
    cove.add_argument("--seed", type=int, default=0, help="random seed")
    cove.add_argument("--threads", type=int, default=None, help="torch threads")
    cove.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output directory")
    add_overwrite_option(cove)
    cove.add_argument("--quiet", action="store_true", help="no progress bar")
    cove.set_defaults(func=run_train)


#: Flags of ``train cove`` that may change when a run is resumed; every other one must match the run's
#: training_args.json (flags not given take its values).
COVE_RESUMABLE = {"pairs", "glove", "output", "valid", "epochs", "max_steps", "save_steps", "resume", "overwrite",
                  "threads", "quiet"}


def run_train(args) -> int:
    from word2bert.commands._contextual import require_contextual, training_run_directory

    require_contextual("train cove")
    import torch

    from word2bert.train.checkpoint import find_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    output = Path(args.output)
    prepare_output_directory(args.output, overwrite=args.overwrite, resume=args.resume)
    if args.resume and find_checkpoint(output) is None:
        raise Word2BertError(f"--resume: no checkpoint in {output}")
    if not Path(args.glove).exists():
        raise Word2BertError(f"GloVe vectors not found: {args.glove}")
    with training_run_directory(args, output, COVE_RESUMABLE):
        outcome = _train(args, output)
    if outcome is None:
        return 130
    model, state = outcome
    save_or_rescue(model.save_pretrained, output, "model")
    summary = {"steps": state.global_step, "seconds": round(state.elapsed, 1),
               "final_loss": state.history[-1]["loss"] if state.history else None,
               "evaluation": state.evaluations[-1] if state.evaluations else None}
    print(json.dumps(summary))
    return 0


def _train(args, output: Path):
    """Read the pairs and GloVe, build the model and train it: ``(model, state)``, or None when interrupted."""
    import torch

    from word2bert.models.cove import (
        BOS,
        EOS,
        CoveConfig,
        CoveForTranslation,
        TranslationPairs,
        build_target_vocabulary,
        collate_pairs,
        glove_table,
        read_pairs,
        tokenize,
    )
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.samplers import LengthGroupedSampler
    from word2bert.vectors import KeyedVectors

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    vectors = KeyedVectors.load(args.glove)
    source_words, table = glove_table(vectors)
    pairs = read_pairs(args.pairs, args.max_pairs)
    target_words = build_target_vocabulary((tokenize(t)[:args.max_length] for _, t in pairs), args.target_vocab)
    source_index = {w: i for i, w in enumerate(source_words)}
    target_index = {w: i for i, w in enumerate(target_words)}
    train = TranslationPairs(pairs, source_index, target_index, args.max_length)
    valid = None
    if args.valid:
        valid = TranslationPairs(read_pairs(args.valid), source_index, target_index, args.max_length)
    covered = sum(t in source_index for s, _ in pairs[:5000] for t in tokenize(s))
    total = sum(len(tokenize(s)) for s, _ in pairs[:5000])
    say(f"{len(train)} pairs; GloVe covers {covered / max(total, 1):.1%} of source tokens; "
        f"target vocabulary {len(target_words)} ({BOS}, {EOS} included)")
    config = CoveConfig(source_vocab_size=len(source_words), embedding_dim=vectors.vector_size,
                        hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout,
                        target_vocab_size=len(target_words), target_embedding_dim=args.target_embedding)
    torch.manual_seed(args.seed)
    model = CoveForTranslation(config, table, source_words, target_words)
    output.mkdir(parents=True, exist_ok=True)
    training = TrainingArguments(
        output_dir=str(output), batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
        learning_rate=args.lr, optimizer="adam", weight_decay=0.0, warmup_steps=0.0, max_grad_norm=args.clip, seed=args.seed,
        save_steps=args.save_steps, progress=False if args.quiet else None)
    sampler = LengthGroupedSampler(train.lengths(), args.batch_size, seed=args.seed)  # little padding
    trainer = Trainer(model, training, train, collate_pairs, eval_data=valid, sampler=sampler)
    try:
        state = trainer.train(resume_from=output if args.resume else None)
    except KeyboardInterrupt:
        print(f"word2bert: interrupted; checkpoint saved in {output} (continue with --resume)", file=sys.stderr)
        return None
    return model, state


def run_encode(args) -> int:
    """Print ``[GloVe(w); CoVe(w)]`` (``--layer -1``, the default) or ``GloVe(w)`` alone (``--layer 0``)
    per token, or their mean per text."""
    from word2bert.models.cove import encode, load_cove

    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    if args.layer not in ("-1", "0"):
        raise Word2BertError("--layer for CoVe: -1 ([GloVe; CoVe], the default) or 0 (GloVe alone)")
    encoder = load_cove(args.model, encoder_only=True)
    token_vectors, sentence_vectors, tokens = encode(encoder, texts)
    if args.layer == "0":
        dim = encoder.config.embedding_dim
        token_vectors = [v[:, :dim] for v in token_vectors]
        sentence_vectors = sentence_vectors[:, :dim]
    if args.tokens:
        for words, vectors in zip(tokens, token_vectors):
            for word, vector in zip(words, vectors):
                print(word + "\t" + " ".join(f"{x:.6g}" for x in vector))
            print()
    else:
        for text, vector in zip(texts, sentence_vectors):
            print(text.replace("\t", " ") + "\t" + " ".join(f"{x:.6g}" for x in vector))
    return 0
