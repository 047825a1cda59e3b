"""`word2bert train fasttext|classifier|doc2vec`, `word2bert predict` and `word2bert test`."""

from __future__ import annotations

import sys
from pathlib import Path

from word2bert.commands import checkpoint_path, remove_checkpoint, resume_from
from word2bert.errors import Word2BertError


def _formatter():
    from word2bert.cli import HelpfulFormatter

    return HelpfulFormatter


def register(commands, train_commands):
    formatter = _formatter()

    # -- fastText word vectors ----------------------------------------------------------
    ft = train_commands.add_parser(
        "fasttext", help="fastText word vectors with character n-grams (OOV words get vectors)",
        formatter_class=formatter,
        description="Train fastText (Bojanowski et al. 2017) skip-gram or CBOW on CORPUS (one sentence or "
                    "document per line). Writes Facebook's .bin (loadable by the fasttext package, and by "
                    "`word2bert similar`-style tools through .vec) and optionally the .vec text vectors.",
        epilog="examples:\n"
               "  word2bert train fasttext text8 -o model.bin --sg 1 --vec vectors.vec\n"
               "  word2bert train fasttext corpus.txt.xz -o model.bin --min-n 3 --max-n 6 --bucket 2000000\n"
               "  word2bert train fasttext big.txt -o model.bin --resume model.bin.checkpoint.npz\n\n"
               "Ctrl-C saves a checkpoint (MODEL.bin.checkpoint.npz) that --resume continues from.")
    ft.add_argument("corpus", metavar="CORPUS", help="training text")
    ft.add_argument("-o", "--output", required=True, metavar="MODEL.bin", help="fastText .bin model to write")
    ft.add_argument("--vec", metavar="OUT.vec", default=None, help="also write the word vectors as .vec text")
    ft.add_argument("--sg", type=int, choices=(0, 1), default=1, help="1: skip-gram, 0: CBOW")
    ft.add_argument("--hs", type=int, choices=(0, 1), default=0, help="1: hierarchical softmax")
    ft.add_argument("--negative", type=int, default=5, help="negative samples (0 with --hs 0: full softmax)")
    ft.add_argument("--vector-size", type=int, default=100, help="dimensionality")
    ft.add_argument("--window", type=int, default=5, help="maximum context distance")
    ft.add_argument("--min-count", type=int, default=5, help="ignore words rarer than this")
    ft.add_argument("--sample", type=float, default=1e-4, help="subsampling threshold (fastText's -t)")
    ft.add_argument("--min-n", type=int, default=3, help="shortest character n-gram")
    ft.add_argument("--max-n", type=int, default=6, help="longest character n-gram (0: no n-grams)")
    ft.add_argument("--bucket", type=int, default=2_000_000, help="hash buckets for n-grams")
    ft.add_argument("--alpha", type=float, default=0.05, help="initial learning rate (fastText's -lr)")
    ft.add_argument("--epochs", type=int, default=5, help="passes over the corpus")
    ft.add_argument("--workers", type=int, default=3, help="training threads")
    ft.add_argument("--seed", type=int, default=1, help="random seed")
    ft.add_argument("--lowercase", action="store_true", help="lower-case the corpus")
    ft.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ft.add_argument("--resume", metavar="CHECKPOINT", default=None,
                     help="continue an interrupted run from its checkpoint (same input; the training "
                          "settings are the checkpoint's)")
    ft.set_defaults(func=run_fasttext)

    # -- classifier ---------------------------------------------------------------------
    cl = train_commands.add_parser(
        "classifier", help="fastText supervised text classifier (__label__ lines)", formatter_class=formatter,
        description="Train fastText's classifier (Joulin et al. 2017) on TRAIN: lines like "
                    "'__label__sports __label__news some words'. Writes a fastText .bin that "
                    "`word2bert predict/test` and the fasttext package read.",
        epilog="examples:\n"
               "  word2bert train classifier train.txt -o model.bin --lr 0.5 --epoch 25 --word-ngrams 2\n"
               "  word2bert train classifier train.txt -o model.bin --loss ova --test test.txt -k 3\n\n"
               "Ctrl-C saves a checkpoint (MODEL.bin.checkpoint.npz) that --resume continues from.")
    cl.add_argument("train", metavar="TRAIN", help="labelled training file")
    cl.add_argument("-o", "--output", required=True, metavar="MODEL.bin", help="model to write")
    cl.add_argument("--lr", type=float, default=0.1, help="initial learning rate")
    cl.add_argument("--dim", type=int, default=100, help="dimensionality")
    cl.add_argument("--epoch", type=int, default=5, help="passes over the data")
    cl.add_argument("--word-ngrams", type=int, default=1, help="longest word n-gram feature")
    cl.add_argument("--bucket", type=int, default=2_000_000, help="hash buckets for n-gram features")
    cl.add_argument("--minn", type=int, default=0, help="shortest character n-gram (0: none)")
    cl.add_argument("--maxn", type=int, default=0, help="longest character n-gram (0: none)")
    cl.add_argument("--min-count", type=int, default=1, help="ignore words rarer than this")
    cl.add_argument("--loss", choices=("softmax", "hs", "ns", "ova"), default="softmax", help="loss")
    cl.add_argument("--neg", type=int, default=5, help="negatives (loss ns)")
    cl.add_argument("--label", default="__label__", help="label prefix")
    cl.add_argument("--no-shuffle", action="store_true", help="keep the file order (fastText's behaviour)")
    cl.add_argument("--workers", type=int, default=3, help="training threads")
    cl.add_argument("--seed", type=int, default=1, help="random seed")
    cl.add_argument("--test", metavar="TEST", default=None, help="report P@k and R@k on this file")
    cl.add_argument("-k", type=int, default=1, help="k for --test")
    cl.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    cl.add_argument("--resume", metavar="CHECKPOINT", default=None,
                     help="continue an interrupted run from its checkpoint (same input; the training "
                          "settings are the checkpoint's)")
    cl.set_defaults(func=run_classifier)

    predict = commands.add_parser(
        "predict", help="labels of each line of a text with a classifier", formatter_class=formatter,
        description="Print the k most probable labels of every line of FILE ('-' reads stdin), one line of "
                    "output per input line, as fastText's predict / predict-prob.",
        epilog="examples:\n  word2bert predict model.bin test.txt -k 3\n"
               "  echo 'a tasty apple' | word2bert predict model.bin - --probabilities")
    predict.add_argument("model", metavar="MODEL", help="classifier .bin")
    predict.add_argument("input", metavar="FILE", help="text, one example per line ('-': stdin)")
    predict.add_argument("-k", type=int, default=1, help="labels per line")
    predict.add_argument("--threshold", type=float, default=0.0, help="minimum probability")
    predict.add_argument("--probabilities", action="store_true", help="print each label's probability")
    predict.set_defaults(func=run_predict)

    test = commands.add_parser(
        "test", help="precision and recall at k of a classifier on a labelled file", formatter_class=formatter,
        description="Print N, P@k and R@k of MODEL on FILE, as fastText's test.",
        epilog="example:\n  word2bert test model.bin test.txt -k 1")
    test.add_argument("model", metavar="MODEL", help="classifier .bin")
    test.add_argument("input", metavar="FILE", help="labelled file")
    test.add_argument("-k", type=int, default=1, help="k")
    test.add_argument("--threshold", type=float, default=0.0, help="minimum probability")
    test.set_defaults(func=run_test)

    # -- doc2vec ------------------------------------------------------------------------
    d2v = train_commands.add_parser(
        "doc2vec", help="paragraph vectors (PV-DM / PV-DBOW); each line is a document",
        formatter_class=formatter,
        description="Train Doc2Vec (Le & Mikolov 2014) on CORPUS, one document per line tagged by its line "
                    "number (0-based). Writes the model (.npz) and optionally the document vectors.",
        epilog="examples:\n"
               "  word2bert train doc2vec docs.txt -o d2v.npz --dm 0 --epochs 20 --doc-vectors docs.vec\n"
               "  word2bert train doc2vec docs.txt.gz -o d2v.npz --dm 1 --window 8\n\n"
               "Ctrl-C saves a checkpoint (MODEL.npz.checkpoint.npz) that --resume continues from.")
    d2v.add_argument("corpus", metavar="CORPUS", help="one document per line")
    d2v.add_argument("-o", "--output", required=True, metavar="MODEL.npz", help="model to write")
    d2v.add_argument("--doc-vectors", metavar="OUT", default=None,
                     help="also write the document vectors (word2vec text format, keys = line numbers)")
    d2v.add_argument("--dm", type=int, choices=(0, 1), default=1, help="1: PV-DM, 0: PV-DBOW")
    d2v.add_argument("--dm-mean", type=int, choices=(0, 1), default=1, help="PV-DM: 1 mean, 0 sum")
    d2v.add_argument("--dbow-words", type=int, choices=(0, 1), default=0, help="PV-DBOW: also train words")
    d2v.add_argument("--hs", type=int, choices=(0, 1), default=0, help="1: hierarchical softmax")
    d2v.add_argument("--negative", type=int, default=5, help="negative samples")
    d2v.add_argument("--vector-size", type=int, default=100, help="dimensionality")
    d2v.add_argument("--window", type=int, default=5, help="maximum context distance")
    d2v.add_argument("--min-count", type=int, default=5, help="ignore words rarer than this")
    d2v.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold")
    d2v.add_argument("--alpha", type=float, default=0.025, help="initial learning rate")
    d2v.add_argument("--min-alpha", type=float, default=0.0001, help="final learning rate")
    d2v.add_argument("--epochs", type=int, default=10, help="passes over the corpus")
    d2v.add_argument("--workers", type=int, default=3, help="training threads")
    d2v.add_argument("--seed", type=int, default=1, help="random seed")
    d2v.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    d2v.add_argument("--resume", metavar="CHECKPOINT", default=None,
                     help="continue an interrupted run from its checkpoint (same input; the training "
                          "settings are the checkpoint's)")
    d2v.set_defaults(func=run_doc2vec)


def _check_output_dir(path):
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise Word2BertError(f"directory does not exist: {parent}")


def _start_or_resume(args, load_checkpoint, new_model):
    """The model to train: the ``--resume`` checkpoint's (with this run's ``--workers`` and progress
    setting) or ``new_model(progress)``, a fresh one."""
    progress = False if args.no_progress else None
    if not args.resume:
        return new_model(progress)
    model = resume_from(load_checkpoint, args.resume)
    model.workers, model.progress = args.workers, progress
    return model


def run_fasttext(args) -> int:
    from word2bert.static.fasttext import FastText

    _check_output_dir(args.output)
    if not Path(args.corpus).is_file():
        raise Word2BertError(f"file not found: {args.corpus}")
    model = _start_or_resume(args, FastText.load_checkpoint, lambda progress: FastText(
        vector_size=args.vector_size, window=args.window, min_count=args.min_count, sg=args.sg, hs=args.hs,
        negative=args.negative, sample=args.sample, min_n=args.min_n, max_n=args.max_n, bucket=args.bucket,
        alpha=args.alpha, epochs=args.epochs, workers=args.workers, seed=args.seed, lowercase=args.lowercase,
        progress=progress).build_vocab(corpus_file=args.corpus))
    checkpoint = checkpoint_path(args.output)
    model.train(corpus_file=args.corpus, checkpoint=checkpoint)
    model.save(args.output)
    if args.vec:
        model.wv.save_word2vec_format(args.vec, binary=False)
    remove_checkpoint(checkpoint)
    print(f"{len(model.wv)} words x {model.vector_size} dims, loss {model.training_loss:.4f} -> {args.output}",
          file=sys.stderr)
    return 0


def run_classifier(args) -> int:
    from word2bert.static.classifier import FastTextClassifier

    _check_output_dir(args.output)
    model = _start_or_resume(args, FastTextClassifier.load_checkpoint, lambda progress: FastTextClassifier(
        lr=args.lr, dim=args.dim, epoch=args.epoch, word_ngrams=args.word_ngrams, bucket=args.bucket, minn=args.minn,
        maxn=args.maxn, min_count=args.min_count, loss=args.loss, neg=args.neg, label=args.label,
        shuffle=not args.no_shuffle, workers=args.workers, seed=args.seed, progress=progress))
    checkpoint = checkpoint_path(args.output)
    model.train(args.train, checkpoint=checkpoint)
    model.save(args.output)
    remove_checkpoint(checkpoint)
    print(f"{len(model.words)} words, {len(model.labels)} labels, loss {model.training_loss:.4f} -> {args.output}",
          file=sys.stderr)
    if args.test:
        _print_test(model.test(args.test, k=args.k), args.k)
    return 0


def _load_classifier(path):
    from word2bert.static.classifier import FastTextClassifier

    return FastTextClassifier.load(path)


def run_predict(args) -> int:
    model = _load_classifier(args.model)
    if args.input == "-":
        lines = [line.rstrip("\n") for line in sys.stdin]
    else:
        from word2bert.fileio import open_text

        with open_text(args.input) as handle:
            lines = [line.rstrip("\n") for line in handle]
    out = sys.stdout
    batch = 10_000
    for start in range(0, len(lines), batch):
        labels, probabilities = model.predict(lines[start:start + batch], k=args.k, threshold=args.threshold)
        for names, probs in zip(labels, probabilities):
            if args.probabilities:
                out.write(" ".join(f"{n} {p:.5g}" for n, p in zip(names, probs)) + "\n")
            else:
                out.write(" ".join(names) + "\n")
    return 0


def _print_test(result, k):
    n, precision, recall = result
    print(f"N\t{n}\nP@{k}\t{precision:.3f}\nR@{k}\t{recall:.3f}")


def run_test(args) -> int:
    model = _load_classifier(args.model)
    _print_test(model.test(args.input, k=args.k, threshold=args.threshold), args.k)
    return 0


def run_doc2vec(args) -> int:
    from word2bert.static.doc2vec import Doc2Vec

    _check_output_dir(args.output)
    if not Path(args.corpus).is_file():
        raise Word2BertError(f"file not found: {args.corpus}")
    model = _start_or_resume(args, Doc2Vec.load, lambda progress: Doc2Vec(
        vector_size=args.vector_size, dm=args.dm, dm_mean=args.dm_mean, dbow_words=args.dbow_words,
        window=args.window, min_count=args.min_count, hs=args.hs, negative=args.negative, sample=args.sample,
        alpha=args.alpha, min_alpha=args.min_alpha, epochs=args.epochs, workers=args.workers, seed=args.seed,
        progress=progress).build_vocab(corpus_file=args.corpus))
    checkpoint = checkpoint_path(args.output)
    model.train(corpus_file=args.corpus, checkpoint=checkpoint)
    model.save(args.output)
    if args.doc_vectors:
        from word2bert.vectors import KeyedVectors

        dv = model.dv
        KeyedVectors(dv.vectors, [str(k) for k in dv.index_to_key]).save_word2vec_format(args.doc_vectors)
    remove_checkpoint(checkpoint)
    print(f"{len(model.dv)} documents, {len(model.wv)} words x {model.vector_size} dims -> {args.output}",
          file=sys.stderr)
    return 0
