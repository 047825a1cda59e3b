"""`word2bert train glove` and `word2bert train lsa`: count-based word vectors."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from word2bert.commands import (check_finite, check_output_file, check_resume_flags, claim_checkpoint,
                                naming_input, plural, resume_from, save_or_rescue, say)
from word2bert.commands._options import add_input, add_option, input_path
from word2bert.errors import Word2BertError
from word2bert.fileio import interrupts_deferred

FORMAT_CHOICES = ("word2vec-binary", "word2vec-text", "glove", "npz")


def _formatter():
    from word2bert.cli import HelpfulFormatter
    return HelpfulFormatter


def _add_counting_options(parser, window: int, distance_weighting: bool):
    add_input(parser, "corpus", "CORPUS",
              "training text (plain/.gz/.bz2/.xz; one document per line, windows stop at line breaks), or a "
              "co-occurrence .npz saved by --save-cooccurrence")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="vector file to write")
    add_option(parser, "--vector-size", type=int, default=100, help="dimensionality of the vectors")
    add_option(parser, "--window", type=int, default=window,
               help="context words on each side (GloVe -window-size; Python's build_cooccurrence(): 10)")
    add_option(parser, "--min-count", type=int, default=5, help="ignore words rarer than this")
    add_option(parser, "--max-vocab-size", type=int, default=None, help="keep at most this many words")
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--symmetric", dest="symmetric", action="store_true", default=argparse.SUPPRESS,
                      help="left and right context (GloVe -symmetric 1; the default)")
    side.add_argument("--left-only", dest="symmetric", action="store_false", default=argparse.SUPPRESS,
                      help="left context only (GloVe -symmetric 0): X[i, j] counts i before j")
    weighting = parser.add_mutually_exclusive_group()
    default_note = {True: "; the default", False: ""}
    weighting.add_argument("--distance-weighting", dest="distance_weighting", action="store_true",
                           default=argparse.SUPPRESS,
                           help=f"weight a pair at distance d by 1/d (GloVe's weighting"
                                f"{default_note[distance_weighting]})")
    weighting.add_argument("--uniform", dest="distance_weighting", action="store_false", default=argparse.SUPPRESS,
                           help=f"weight every pair in the window by 1{default_note[not distance_weighting]}")
    # (the flags' own defaults stay SUPPRESSed so that --help does not print a misleading value)
    parser.set_defaults(distance_weighting_default=distance_weighting)
    add_option(parser, "--memory-limit", type=float, default=4096.0, metavar="MB",
                        help="soft limit for the counting tables of all threads; beyond it sorted runs spill "
                             "to disk and are merged (GloVe -memory)")
    parser.add_argument("--temp-dir", default=None, help="where spilled runs go (default: the system's)")
    parser.add_argument("--save-cooccurrence", metavar="PATH", default=None,
                        help="also save the co-occurrence matrix (.npz) to reuse as CORPUS later")
    add_option(parser, "--workers", type=int, default=2, help="threads")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--lowercase", action="store_true", help="lower-case the corpus")
    parser.add_argument("--format", choices=FORMAT_CHOICES, default=None,
                        help="output format (default from OUT's extension: .bin word2vec binary, .txt/.vec "
                             "word2vec text, .npz native)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def register(commands, train_commands):
    formatter = _formatter()
    glove = train_commands.add_parser(
        "glove", help="GloVe vectors (co-occurrence counts + weighted least squares, AdaGrad)",
        formatter_class=formatter,
        description="Count word-word co-occurrences in CORPUS as Stanford GloVe's cooccur does, then fit "
                    "f(X_ij)(w_i.w~_j + b_i + b~_j - log X_ij)^2 with AdaGrad over the shuffled non-zero "
                    "entries, lock-free over --workers threads. The cost is printed after every iteration. "
                    "Ctrl-C saves a checkpoint (OUT.checkpoint.npz) that --resume continues from.",
        epilog="examples:\n"
               "  word2bert train glove text8 -o glove.txt --format glove --window 10 --x-max 10 --epochs 15\n"
               "  word2bert train glove corpus.txt -o vec.bin --save-cooccurrence cooc.npz\n"
               "  word2bert train glove cooc.npz -o vec.bin --vector-size 300     # reuse the counts")
    _add_counting_options(glove, window=15, distance_weighting=True)
    glove.add_argument("--x-max", type=float, default=100.0, help="cutoff of the weighting function f")
    glove.add_argument("--alpha", type=float, default=0.75, help="exponent of the weighting function f")
    add_option(glove, "--epochs", type=int, default=25, help="training iterations")
    add_option(glove, "--eta", "--lr", type=float, default=0.05, help="initial AdaGrad learning rate")
    glove.add_argument("--output-vectors", choices=("W+Wt", "W"), default="W+Wt",
                       help="W+Wt: word + context vectors (GloVe -model 2); W: word vectors (-model 1)")
    glove.add_argument("--resume", metavar="CHECKPOINT", default=None,
                       help="continue an interrupted run from its checkpoint (same CORPUS and counting options; "
                            "the training settings are the checkpoint's: flags that contradict them are refused)")
    glove.add_argument("--overwrite", action="store_true",
                       help="start afresh even if OUT.checkpoint.npz holds an interrupted run (deletes it)")
    glove.set_defaults(func=run_glove)

    lsa = train_commands.add_parser(
        "lsa", help="LSA / PPMI-SVD vectors (shifted PPMI with smoothing, truncated SVD)",
        formatter_class=formatter,
        description="Count co-occurrences in CORPUS, build the shifted positive PMI matrix with context "
                    "distribution smoothing and keep U S^p of its truncated SVD (Levy, Goldberg & Dagan 2015). "
                    "Counting defaults to window 5 and uniform weights, as in the paper (Python's "
                    "build_cooccurrence(): window 10, 1/d weights).",
        epilog="examples:\n"
               "  word2bert train lsa text8 -o lsa.bin --window 5 --uniform\n"
               "  word2bert train lsa cooc.npz -o lsa.txt --neg 5 --eig 0 --svd arpack")
    _add_counting_options(lsa, window=5, distance_weighting=False)
    lsa.add_argument("--neg", type=float, default=1.0, help="shift: subtract log(neg) from PMI (1: plain PPMI)")
    lsa.add_argument("--cds", type=float, default=0.75, help="context distribution smoothing exponent")
    lsa.add_argument("--eig", type=float, default=0.5, help="eigenvalue weighting p: vectors U S^p")
    lsa.add_argument("--svd", choices=("randomized", "arpack"), default="randomized",
                     help="randomized (scikit-learn) or ARPACK (SciPy) truncated SVD")
    lsa.set_defaults(func=run_lsa)


def _cooccurrence(args):
    """The co-occurrence matrix: loaded from a saved .npz or counted from the corpus."""
    from word2bert.static.cooccurrence import CooccurrenceMatrix, build_cooccurrence, is_cooccurrence_file

    for name in ("vector_size", "window", "min_count", "workers"):
        if getattr(args, name) < 1:
            raise Word2BertError(f"parameter --{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    if args.memory_limit <= 0:
        raise Word2BertError(f"parameter --memory-limit={args.memory_limit} must be > 0")
    if args.save_cooccurrence:
        check_output_file(args.save_cooccurrence, "--save-cooccurrence")
    corpus = input_path(args, "corpus", "CORPUS")
    if not Path(corpus).is_file():
        raise Word2BertError(f"file not found: {corpus}")
    if is_cooccurrence_file(corpus):
        matrix = CooccurrenceMatrix.load(corpus)
        settings = ", ".join(f"{k} {v}" for k, v in sorted(matrix.settings.items()))
        say(f"co-occurrence: {plural(len(matrix.words), 'word')}, {plural(matrix.nnz, 'non-zero entry')} "
            f"read from {corpus} (counted with {settings}; the counting options are not used)")
        return matrix
    timings: dict = {}
    symmetric = getattr(args, "symmetric", True)
    distance_weighting = getattr(args, "distance_weighting", args.distance_weighting_default)
    with naming_input(corpus):
        matrix = build_cooccurrence(
            corpus, window=args.window, min_count=args.min_count, max_vocab_size=args.max_vocab_size,
            symmetric=symmetric, distance_weighting=distance_weighting, workers=args.workers,
            memory_limit_mb=args.memory_limit, lowercase=args.lowercase, temp_dir=args.temp_dir,
            show_progress=False if args.no_progress else None, timings=timings)
    say(f"co-occurrence: {plural(len(matrix.words), 'word')}, {plural(matrix.nnz, 'non-zero entry')} "
        f"(vocabulary {timings['vocabulary']:.1f} s, counting {timings['cooccurrence']:.1f} s)")
    if args.save_cooccurrence:
        save_or_rescue(matrix.save, args.save_cooccurrence, "co-occurrence matrix")
    return matrix


#: The settings a GloVe checkpoint fixes: ``--resume`` refuses these flags with another value.
GLOVE_SETTINGS = {name: name for name in ("vector_size", "x_max", "alpha", "epochs", "eta", "seed", "output_vectors")}


def run_glove(args) -> int:
    from word2bert.static.glove import GloVe

    output = check_output_file(args.output)
    checkpoint = claim_checkpoint(output, args)
    if args.resume:
        model = resume_from(GloVe.load_checkpoint, args.resume, interrupted=lambda model: True)
        check_resume_flags(args, model, GLOVE_SETTINGS, getattr(args, "_leaf_parser", None))
        model.workers = args.workers
    else:
        model = GloVe(vector_size=args.vector_size, x_max=args.x_max, alpha=args.alpha, epochs=args.epochs,
                      eta=args.eta, workers=args.workers, seed=args.seed, output_vectors=args.output_vectors)
    model.prepare()  # the training kernel compiles (first run only) while the co-occurrences are counted
    cooccurrence = _cooccurrence(args)
    start = time.perf_counter()

    def log(iteration, cost):
        print(f"iter: {iteration:03d}, cost: {cost:.6f}", file=sys.stderr)

    try:
        model.fit(cooccurrence, show_progress=False if args.no_progress else None, log=log, checkpoint=checkpoint)
    except KeyboardInterrupt:
        if model.words is not None and hasattr(model, "word_parameters"):
            with interrupts_deferred(raise_after=False):
                model.save_checkpoint(checkpoint)
            print(f"glove: interrupted after {model.iterations_done} of {model.epochs} iterations; checkpoint "
                  f"saved to {checkpoint} (continue with --resume {checkpoint})", file=sys.stderr)
        raise
    vectors = model.keyed_vectors()
    check_finite(vectors.vectors)
    save_or_rescue(lambda path: vectors.save(path, format=args.format), output, "vectors")
    if args.resume and Path(args.resume) == checkpoint and checkpoint.exists():
        checkpoint.unlink()
    say(f"glove: {plural(len(model.words), 'word')} x {model.vector_size} dims ({args.output_vectors}) -> "
        f"{output} in {time.perf_counter() - start:.1f} s of training")
    return 0


def run_lsa(args) -> int:
    from word2bert.static.lsa import LSA

    output = check_output_file(args.output)
    model = LSA(vector_size=args.vector_size, neg=args.neg, cds=args.cds, eig=args.eig, svd=args.svd,
                seed=args.seed)
    cooccurrence = _cooccurrence(args)
    start = time.perf_counter()
    model.fit(cooccurrence)
    vectors = model.keyed_vectors()
    check_finite(vectors.vectors)
    save_or_rescue(lambda path: vectors.save(path, format=args.format), output, "vectors")
    say(f"lsa: {plural(len(model.words), 'word')} x {model.vector_size} dims -> {output} "
        f"in {time.perf_counter() - start:.1f} s of PPMI + SVD")
    return 0
