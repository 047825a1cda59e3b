"""`word2bert train fasttext|classifier|doc2vec`, `word2bert predict` and `word2bert test`."""

from __future__ import annotations

import sys
from pathlib import Path

from word2bert.commands import (check_finite_model, check_output_file, check_resume_flags, claim_checkpoint,
                                naming_input, plural, remove_checkpoint, resume_from, save_or_rescue, say)
from word2bert.commands._options import add_cbow_switch, add_input, add_option, input_path
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
                    "document per line). Writes Facebook's .bin (loadable by the fasttext package) and "
                    "optionally the .vec text vectors. The defaults are fastText's own (skip-gram, -t 1e-4); "
                    "Python's FastText() follows gensim instead (sg=0, sample=1e-3). gensim's, fastText's and "
                    "word2vec.c's option names are all accepted (--vector-size / -dim, --epochs / -epoch, "
                    "--alpha / -lr, --min-n / -minn, --workers / -thread, -input).",
        epilog="examples:\n"
               "  word2bert train fasttext text8 -o model.bin --sg 1 --vec vectors.vec\n"
               "  word2bert train fasttext corpus.txt.xz -o model.bin --min-n 3 --max-n 6 --bucket 2000000\n"
               "  word2bert train fasttext -input data.txt -o model.bin -dim 100 -epoch 5 -lr 0.05 -thread 2\n"
               "  word2bert train fasttext big.txt -o model.bin --resume model.bin.checkpoint.npz\n\n"
               "Ctrl-C saves a checkpoint (MODEL.bin.checkpoint.npz) that --resume continues from.")
    add_input(ft, "corpus", "CORPUS", "training text")
    ft.add_argument("-o", "--output", required=True, metavar="MODEL.bin", help="fastText .bin model to write")
    ft.add_argument("--vec", metavar="OUT.vec", default=None, help="also write the word vectors as .vec text")
    ft.add_argument("--sg", type=int, choices=(0, 1), default=1,
                    help="1: skip-gram, 0: CBOW (Python's FastText(): sg=0, gensim's default)")
    add_cbow_switch(ft)
    ft.add_argument("--hs", type=int, choices=(0, 1), default=0, help="1: hierarchical softmax")
    add_option(ft, "--negative", type=int, default=5, help="negative samples (0 with --hs 0: full softmax)")
    add_option(ft, "--vector-size", type=int, default=100, help="dimensionality")
    add_option(ft, "--window", type=int, default=5, help="maximum context distance")
    add_option(ft, "--min-count", type=int, default=5, help="ignore words rarer than this")
    add_option(ft, "--sample", type=float, default=1e-4,
               help="subsampling threshold (fastText's -t; Python's FastText(): sample=1e-3, gensim's default)")
    add_option(ft, "--min-n", type=int, default=3, help="shortest character n-gram")
    add_option(ft, "--max-n", type=int, default=6, help="longest character n-gram (0: no n-grams)")
    ft.add_argument("--bucket", type=int, default=2_000_000, help="hash buckets for n-grams")
    add_option(ft, "--alpha", type=float, default=0.05, help="initial learning rate (fastText's -lr)")
    add_option(ft, "--epochs", type=int, default=5, help="passes over the corpus")
    add_option(ft, "--workers", type=int, default=3, help="training threads")
    ft.add_argument("--seed", type=int, default=1, help="random seed")
    ft.add_argument("--lowercase", action="store_true", help="lower-case the corpus")
    ft.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_resume_options(ft)
    ft.set_defaults(func=run_fasttext)

    # -- classifier ---------------------------------------------------------------------
    cl = train_commands.add_parser(
        "classifier", help="fastText supervised text classifier (__label__ lines)", formatter_class=formatter,
        description="Train fastText's classifier (Joulin et al. 2017) on TRAIN: lines like "
                    "'__label__sports __label__news some words'. Writes a fastText .bin that "
                    "`word2bert predict/test` and the fasttext package read. Options take fastText's names "
                    "(-lr, -dim, -epoch, -wordNgrams, -minn, -thread) and gensim's (--alpha, --vector-size, "
                    "--epochs, --min-n, --workers).",
        epilog="examples:\n"
               "  word2bert train classifier train.txt -o model.bin --lr 0.5 --epoch 25 --word-ngrams 2\n"
               "  word2bert train classifier train.txt -o model.bin --loss ova --test test.txt -k 3\n"
               "  word2bert train classifier -input train.txt -o model.bin -lr 1.0 -epoch 25 -wordNgrams 2 "
               "# fastText's flags\n\n"
               "Ctrl-C saves a checkpoint (MODEL.bin.checkpoint.npz) that --resume continues from.")
    add_input(cl, "train", "TRAIN", "labelled training file", options=("--input",))
    cl.add_argument("-o", "--output", required=True, metavar="MODEL.bin", help="model to write")
    add_option(cl, "--lr", "--alpha", type=float, default=0.1, help="initial learning rate")
    add_option(cl, "--dim", type=int, default=100, help="dimensionality")
    add_option(cl, "--epoch", type=int, default=5, help="passes over the data")
    add_option(cl, "--word-ngrams", type=int, default=1, help="longest word n-gram feature")
    cl.add_argument("--bucket", type=int, default=2_000_000, help="hash buckets for n-gram features")
    add_option(cl, "--minn", type=int, default=0, help="shortest character n-gram (0: none)")
    add_option(cl, "--maxn", type=int, default=0, help="longest character n-gram (0: none)")
    add_option(cl, "--min-count", type=int, default=1, help="ignore words rarer than this")
    add_option(cl, "--min-count-label", type=int, default=0, help="ignore labels rarer than this")
    cl.add_argument("--loss", choices=("softmax", "hs", "ns", "ova"), default="softmax", help="loss")
    add_option(cl, "--neg", type=int, default=5, help="negatives (loss ns)")
    cl.add_argument("--label", default="__label__", help="label prefix")
    cl.add_argument("--no-shuffle", action="store_true", help="keep the file order (fastText's behaviour)")
    add_option(cl, "--workers", type=int, default=3, help="training threads")
    cl.add_argument("--seed", type=int, default=1, help="random seed")
    cl.add_argument("--test", metavar="TEST", default=None, help="report P@k and R@k on this file")
    cl.add_argument("-k", type=int, default=1, help="k for --test")
    cl.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_resume_options(cl)
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
                    "number (0-based). Writes the model (.npz) and optionally the document vectors. Options "
                    "follow gensim's names (fastText's and word2vec.c's spellings work too).",
        epilog="examples:\n"
               "  word2bert train doc2vec docs.txt -o d2v.npz --dm 0 --epochs 20 --doc-vectors docs.vec\n"
               "  word2bert train doc2vec docs.txt.gz -o d2v.npz --dm 1 --window 8\n\n"
               "Ctrl-C saves a checkpoint (MODEL.npz.checkpoint.npz) that --resume continues from.")
    add_input(d2v, "corpus", "CORPUS", "one document per line")
    d2v.add_argument("-o", "--output", required=True, metavar="MODEL.npz", help="model to write")
    d2v.add_argument("--doc-vectors", metavar="OUT", default=None,
                     help="also write the document vectors (word2vec text format, keys = line numbers)")
    d2v.add_argument("--dm", type=int, choices=(0, 1), default=1, help="1: PV-DM, 0: PV-DBOW")
    d2v.add_argument("--dm-mean", type=int, choices=(0, 1), default=1, help="PV-DM: 1 mean, 0 sum")
    d2v.add_argument("--dbow-words", type=int, choices=(0, 1), default=0, help="PV-DBOW: also train words")
    d2v.add_argument("--hs", type=int, choices=(0, 1), default=0, help="1: hierarchical softmax")
    add_option(d2v, "--negative", type=int, default=5, help="negative samples")
    add_option(d2v, "--vector-size", type=int, default=100, help="dimensionality")
    add_option(d2v, "--window", type=int, default=5, help="maximum context distance")
    add_option(d2v, "--min-count", type=int, default=5, help="ignore words rarer than this")
    add_option(d2v, "--sample", type=float, default=1e-3, help="subsampling threshold")
    add_option(d2v, "--alpha", type=float, default=0.025, help="initial learning rate")
    d2v.add_argument("--min-alpha", type=float, default=0.0001, help="final learning rate")
    add_option(d2v, "--epochs", type=int, default=10, help="passes over the corpus")
    add_option(d2v, "--workers", type=int, default=3, help="training threads")
    d2v.add_argument("--seed", type=int, default=1, help="random seed")
    d2v.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_resume_options(d2v)
    d2v.set_defaults(func=run_doc2vec)


def _add_resume_options(parser) -> None:
    parser.add_argument("--resume", metavar="CHECKPOINT", default=None,
                        help="continue an interrupted run from its checkpoint (same input; the training "
                             "settings are the checkpoint's: flags that contradict them are refused)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh even if MODEL.checkpoint.npz holds an interrupted run (deletes it)")


#: The settings each checkpoint fixes: ``--resume`` refuses these flags with another value.
FASTTEXT_SETTINGS = {name: name for name in (
    "vector_size", "window", "min_count", "sg", "hs", "negative", "sample", "min_n", "max_n", "bucket", "alpha",
    "epochs", "seed", "lowercase")}
CLASSIFIER_SETTINGS = {**{name: name for name in (
    "lr", "dim", "epoch", "word_ngrams", "bucket", "minn", "maxn", "min_count", "min_count_label", "loss", "neg",
    "label", "seed")}, "no_shuffle": lambda model: not model.shuffle}
DOC2VEC_SETTINGS = {name: name for name in (
    "vector_size", "dm", "dm_mean", "dbow_words", "hs", "negative", "window", "min_count", "sample", "alpha",
    "min_alpha", "epochs", "seed")}


def _start_or_resume(args, load_checkpoint, settings, new_model):
    """The model to train: the ``--resume`` checkpoint's (with this run's ``--workers`` and progress
    setting; flags contradicting its settings are refused) or ``new_model(progress)``, a fresh one."""
    progress = False if args.no_progress else None
    if not args.resume:
        return new_model(progress)
    model = resume_from(load_checkpoint, args.resume)
    check_resume_flags(args, model, settings, getattr(args, "_leaf_parser", None))
    model.workers, model.progress = args.workers, progress
    return model


def _existing_file(path) -> str:
    if not Path(path).is_file():
        raise Word2BertError(f"file not found: {path}" if not Path(path).is_dir()
                             else f"expected a file but found a directory: {path}")
    return str(path)


def run_fasttext(args) -> int:
    from word2bert.static.fasttext import FastText

    corpus = _existing_file(input_path(args, "corpus", "CORPUS"))
    output = check_output_file(args.output)
    if args.vec:
        check_output_file(args.vec, "--vec")
    checkpoint = claim_checkpoint(output, args)

    def new_model(progress):
        return FastText(vector_size=args.vector_size, window=args.window, min_count=args.min_count, sg=args.sg,
                        hs=args.hs, negative=args.negative, sample=args.sample, min_n=args.min_n, max_n=args.max_n,
                        bucket=args.bucket, alpha=args.alpha, epochs=args.epochs, workers=args.workers,
                        seed=args.seed, lowercase=args.lowercase, progress=progress).build_vocab(corpus_file=corpus)

    with naming_input(corpus):
        model = _start_or_resume(args, FastText.load_checkpoint, FASTTEXT_SETTINGS, new_model)
        model.train(corpus_file=corpus, checkpoint=checkpoint)
    check_finite_model(model)
    save_or_rescue(model.save, output, "model")
    if args.vec:
        save_or_rescue(lambda path: model.wv.save_word2vec_format(path, binary=False), args.vec, ".vec vectors")
    remove_checkpoint(checkpoint)
    say(f"fasttext: {plural(len(model.wv), 'word')} x {model.vector_size} dims, loss "
        f"{model.training_loss:.4f} -> {output}")
    return 0


def run_classifier(args) -> int:
    from word2bert.static.classifier import FastTextClassifier

    train = _existing_file(input_path(args, "train", "TRAIN"))
    output = check_output_file(args.output)
    if args.test:
        _existing_file(args.test)
    _check_k(args.k)
    checkpoint = claim_checkpoint(output, args)

    def new_model(progress):
        return FastTextClassifier(
            lr=args.lr, dim=args.dim, epoch=args.epoch, word_ngrams=args.word_ngrams, bucket=args.bucket,
            minn=args.minn, maxn=args.maxn, min_count=args.min_count, min_count_label=args.min_count_label,
            loss=args.loss, neg=args.neg, label=args.label, shuffle=not args.no_shuffle, workers=args.workers,
            seed=args.seed, progress=progress)

    model = _start_or_resume(args, FastTextClassifier.load_checkpoint, CLASSIFIER_SETTINGS, new_model)
    with naming_input(train):
        model.train(train, checkpoint=checkpoint)
    check_finite_model(model)
    save_or_rescue(model.save, output, "model")
    remove_checkpoint(checkpoint)
    say(f"classifier: {plural(len(model.words), 'word')}, {plural(len(model.labels), 'label')}, loss "
        f"{model.training_loss:.4f} -> {output}")
    if args.test:
        _print_test(model.test(args.test, k=args.k), args.k)
    return 0


def _check_k(k) -> None:
    if k < 1:
        raise Word2BertError(f"-k {k}: must be >= 1")


def _load_classifier(path):
    from word2bert.static.classifier import FastTextClassifier

    try:
        return FastTextClassifier.load(_existing_file(path))
    except Word2BertError as exc:  # the loader's hints name Python functions
        if "not a classifier" in str(exc):
            raise Word2BertError(f"{path} holds fastText word vectors, not a classifier (`word2bert train "
                                 "classifier` makes one; `word2bert similar` reads these)") from None
        if "not a fastText .bin" in str(exc):
            raise Word2BertError(f"{path}: not a fastText .bin classifier (`word2bert train classifier` makes "
                                 "one)") from None
        raise


def _check_threshold(threshold) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise Word2BertError(f"--threshold {threshold}: a probability, between 0 and 1")


def run_predict(args) -> int:
    _check_k(args.k)
    _check_threshold(args.threshold)
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
    _check_k(args.k)
    _check_threshold(args.threshold)
    model = _load_classifier(args.model)
    _print_test(model.test(_existing_file(args.input), k=args.k, threshold=args.threshold), args.k)
    return 0


def run_doc2vec(args) -> int:
    from word2bert.static.doc2vec import Doc2Vec

    corpus = _existing_file(input_path(args, "corpus", "CORPUS"))
    output = check_output_file(args.output)
    if args.doc_vectors:
        check_output_file(args.doc_vectors, "--doc-vectors")
    checkpoint = claim_checkpoint(output, args)

    def new_model(progress):
        return Doc2Vec(vector_size=args.vector_size, dm=args.dm, dm_mean=args.dm_mean, dbow_words=args.dbow_words,
                       window=args.window, min_count=args.min_count, hs=args.hs, negative=args.negative,
                       sample=args.sample, alpha=args.alpha, min_alpha=args.min_alpha, epochs=args.epochs,
                       workers=args.workers, seed=args.seed, progress=progress).build_vocab(corpus_file=corpus)

    with naming_input(corpus):
        model = _start_or_resume(args, Doc2Vec.load, DOC2VEC_SETTINGS, new_model)
        model.train(corpus_file=corpus, checkpoint=checkpoint)
    check_finite_model(model)
    save_or_rescue(model.save, output, "model")
    if args.doc_vectors:
        from word2bert.vectors import KeyedVectors

        dv = model.dv
        document_vectors = KeyedVectors(dv.vectors, [str(k) for k in dv.index_to_key])
        save_or_rescue(document_vectors.save_word2vec_format, args.doc_vectors, "document vectors")
    remove_checkpoint(checkpoint)
    say(f"doc2vec: {plural(len(model.dv), 'document')}, {plural(len(model.wv), 'word')} x {model.vector_size} "
        f"dims -> {output}")
    return 0
