"""`word2bert train word2vec` and `word2bert vocab`."""

from __future__ import annotations

from pathlib import Path

from word2bert.commands import (check_finite, check_output_file, check_resume_flags, claim_checkpoint, naming_input,
                                plural, remove_checkpoint, resume_from, save_or_rescue, say)
from word2bert.commands._options import add_cbow_switch, add_input, add_option, input_path
from word2bert.errors import Word2BertError

FORMAT_CHOICES = ("word2vec-binary", "word2vec-text", "glove", "npz")


def _formatter():
    from word2bert.cli import HelpfulFormatter
    return HelpfulFormatter


def register(commands, train_commands):
    formatter = _formatter()
    train = train_commands.add_parser(
        "word2vec", help="skip-gram / CBOW word vectors (negative sampling, hierarchical softmax)",
        formatter_class=formatter,
        description="Train word2vec (Mikolov et al. 2013) on CORPUS (plain, .gz, .bz2 or .xz text; one sentence "
                    "or document per line; whitespace tokens) and write the word vectors to OUT. Options "
                    "follow gensim's names; word2vec.c's and fastText's spellings work too (-size, -iter, -threads, "
                    "-cbow, -train, -output). Ctrl-C saves a checkpoint (OUT.checkpoint.npz) that --resume "
                    "continues from.",
        epilog="examples:\n"
               "  word2bert train word2vec text8 -o vectors.bin --sg 1              # skip-gram, negative 5\n"
               "  word2bert train word2vec corpus.txt.xz -o vec.txt --hs 1 --negative 0 --epochs 10\n"
               "  word2bert train word2vec big.txt -o vec.bin --cache-dir big.cache --save-model big.w2v\n"
               "  word2bert train word2vec big.txt -o vec.bin --resume vec.bin.checkpoint.npz\n"
               "  word2bert train word2vec -train text8 -output vec.bin -cbow 0 -size 200 -window 10 -negative 25 "
               "-hs 0 -sample 1e-4 -threads 2 -binary 1 -iter 15   # word2vec.c's command line")
    add_input(train, "corpus", "CORPUS", "training text")
    train.add_argument("-o", "--output", required=True, metavar="OUT", help="vector file to write")
    train.add_argument("--sg", type=int, choices=(0, 1), default=0, help="1: skip-gram, 0: CBOW")
    add_cbow_switch(train)
    train.add_argument("--hs", type=int, choices=(0, 1), default=0, help="1: hierarchical softmax")
    add_option(train, "--negative", type=int, default=5, help="negative samples per word (0: none)")
    train.add_argument("--softmax", action="store_true",
                       help="full softmax (with --negative 0 --hs 0; small vocabularies only)")
    train.add_argument("--ns-exponent", type=float, default=0.75, help="exponent of the negative-sampling "
                       "distribution (unigram^x)")
    add_option(train, "--vector-size", type=int, default=100, help="dimensionality of the vectors")
    add_option(train, "--window", type=int, default=5, help="maximum context distance")
    add_option(train, "--min-count", type=int, default=5, help="ignore words rarer than this")
    add_option(train, "--max-vocab-size", type=int, default=None, help="prune the vocabulary while counting "
               "to at most this many words")
    add_option(train, "--sample", type=float, default=1e-3, help="subsampling threshold of frequent words")
    add_option(train, "--alpha", type=float, default=0.025, help="initial learning rate")
    train.add_argument("--min-alpha", type=float, default=0.0001, help="final learning rate")
    add_option(train, "--epochs", type=int, default=5, help="passes over the corpus")
    add_option(train, "--workers", type=int, default=3, help="training threads")
    train.add_argument("--seed", type=int, default=1, help="random seed")
    train.add_argument("--cbow-mean", type=int, choices=(0, 1), default=1, help="CBOW: 1 mean, 0 sum")
    train.add_argument("--lowercase", action="store_true", help="lower-case the corpus")
    train.add_argument("--format", choices=FORMAT_CHOICES, default=None,
                       help="output format (default from OUT's extension: .bin word2vec binary, .txt/.vec "
                            "word2vec text, .npz native)")
    train.add_argument("--binary", type=int, choices=(0, 1), default=None,
                       help="word2vec.c's switch: 1 word2vec binary, 0 word2vec text (overrides the extension)")
    train.add_argument("--save-model", metavar="PATH", default=None,
                       help="also save the full model (to continue training later)")
    train.add_argument("--cache-dir", metavar="DIR", default=None,
                       help="keep the encoded corpus here as a memory-mapped file (reused by later runs)")
    train.add_argument("--resume", metavar="CHECKPOINT", default=None,
                       help="continue an interrupted run from its checkpoint (same CORPUS; the training settings "
                            "are the checkpoint's: flags that contradict them are refused)")
    train.add_argument("--overwrite", action="store_true",
                       help="start afresh even if OUT.checkpoint.npz holds an interrupted run (deletes it)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(func=run_train)

    vocab = commands.add_parser(
        "vocab", help="count a corpus's vocabulary into 'word count' lines", formatter_class=formatter,
        description="One counting pass over CORPUS; words with at least --min-count occurrences, most "
                    "frequent first, written as word2vec.c's -save-vocab file.",
        epilog="examples:\n  word2bert vocab text8 -o vocab.txt --min-count 5\n"
               "  word2bert vocab corpus.txt.gz -o vocab.txt --lowercase --max-vocab-size 100000")
    add_input(vocab, "corpus", "CORPUS", "training text")
    vocab.add_argument("-o", "--output", required=True, metavar="OUT", help="vocabulary file to write")
    add_option(vocab, "--min-count", type=int, default=5, help="ignore words rarer than this")
    add_option(vocab, "--max-vocab-size", type=int, default=None, help="keep at most this many words")
    vocab.add_argument("--lowercase", action="store_true", help="lower-case the corpus")
    vocab.set_defaults(func=run_vocab)


def _output_format(args) -> str | None:
    if args.binary is not None:
        return "word2vec-binary" if args.binary else "word2vec-text"
    return args.format


#: The settings a checkpoint fixes: ``--resume`` refuses these flags with another value.
RESUME_SETTINGS = {name: name for name in (
    "vector_size", "window", "min_count", "max_vocab_size", "sample", "alpha", "min_alpha", "epochs", "seed", "sg",
    "hs", "negative", "softmax", "ns_exponent", "cbow_mean", "lowercase")}


def run_train(args) -> int:
    from word2bert.corpus import LineSentence
    from word2bert.static.word2vec import Word2Vec

    corpus_path = input_path(args, "corpus", "CORPUS")
    output = check_output_file(args.output)
    if args.save_model:
        check_output_file(args.save_model, "--save-model")
    if not Path(corpus_path).is_file():
        raise Word2BertError(f"file not found: {corpus_path}")
    checkpoint = claim_checkpoint(output, args)
    progress = False if args.no_progress else None
    if args.resume:
        model = resume_from(Word2Vec.load, args.resume)
        check_resume_flags(args, model, RESUME_SETTINGS, getattr(args, "_leaf_parser", None))
        model.workers = args.workers
        model.progress = progress
        model.cache_dir = args.cache_dir
    else:
        model = Word2Vec(vector_size=args.vector_size, window=args.window, min_count=args.min_count,
                         max_vocab_size=args.max_vocab_size, sample=args.sample, seed=args.seed,
                         workers=args.workers, min_alpha=args.min_alpha, sg=args.sg, hs=args.hs,
                         negative=args.negative, ns_exponent=args.ns_exponent, cbow_mean=args.cbow_mean,
                         alpha=args.alpha, epochs=args.epochs, softmax=args.softmax, cache_dir=args.cache_dir,
                         lowercase=args.lowercase, progress=progress)
    corpus = LineSentence(corpus_path, lowercase=model.lowercase)
    with naming_input(corpus_path):
        if not args.resume:
            model.build_vocab(corpus)
        model.train(corpus, checkpoint=checkpoint)
    check_finite(model.wv.vectors)
    save_or_rescue(lambda path: model.wv.save(path, format=_output_format(args)), output, "vectors")
    if args.save_model:
        save_or_rescue(model.save, args.save_model, "model")
    remove_checkpoint(checkpoint)
    losses = ", ".join(f"{x:.4f}" for x in model.epoch_losses)
    say(f"word2vec: {plural(len(model.vocab), 'word')} x {model.vector_size} dims -> {output}; "
        f"loss per epoch {losses}")
    return 0


def run_vocab(args) -> int:
    from word2bert.corpus import LineSentence, Vocabulary
    from word2bert.progress import progress_bar

    corpus_path = input_path(args, "corpus", "CORPUS")
    output = check_output_file(args.output)
    bar = progress_bar(desc="vocab", unit="word")
    try:
        with naming_input(corpus_path):
            vocab = Vocabulary.build(LineSentence(corpus_path, lowercase=args.lowercase),
                                     min_count=args.min_count, max_vocab_size=args.max_vocab_size, progress=bar)
    finally:
        bar.close()
    save_or_rescue(vocab.save, output, "vocabulary")
    say(f"vocab: {plural(len(vocab), 'word')} (min_count {args.min_count}) -> {output}")
    return 0
