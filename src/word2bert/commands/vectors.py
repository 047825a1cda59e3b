"""`word2bert similar`, `analogy`, `evaluate` and `convert`: using trained vectors from the shell.

VECTORS is any supported file (word2vec text or binary, GloVe text, word2bert .npz, or a fastText
.bin model, whose n-grams also give vectors to unknown words), detected from its content.
"""

from __future__ import annotations

import json
import sys

from word2bert.commands import check_output_file, save_or_rescue
from word2bert.errors import Word2BertError
from word2bert.interop.word2vec_format import FORMATS, format_from_extension

FORMAT_HELP = ("word2vec-text, word2vec-binary, glove or npz; default from the extension: .bin -> "
               "word2vec-binary, .txt/.vec -> word2vec-text, .npz -> npz (input: detected from the content)")


def _formatter():
    from word2bert.cli import HelpfulFormatter
    return HelpfulFormatter


def register(commands, train_commands):
    formatter = _formatter()

    similar = commands.add_parser(
        "similar", help="nearest neighbours of words (cosine similarity)", formatter_class=formatter,
        description="Print the words nearest to the mean of the given words' unit vectors "
                    "(minus those given with --negative).",
        epilog="examples:\n  word2bert similar vectors.bin king\n"
               "  word2bert similar vectors.bin king woman --negative man --topn 5")
    similar.add_argument("vectors", metavar="VECTORS", help="vector file")
    similar.add_argument("words", metavar="WORD", nargs="+", help="query word(s)")
    similar.add_argument("--negative", metavar="WORD", nargs="+", default=[], help="words to subtract")
    similar.add_argument("--topn", type=int, default=10, help="number of neighbours")
    similar.add_argument("--restrict-vocab", type=int, default=None,
                         help="search only the N most frequent words")
    similar.set_defaults(func=run_similar)

    analogy = commands.add_parser(
        "analogy", help="solve 'A is to B as C is to ?'", formatter_class=formatter,
        description="Answer the analogy A : B :: C : ? with 3CosAdd (argmax cos(d,B) - cos(d,A) + cos(d,C)) "
                    "or 3CosMul (Levy & Goldberg 2014).",
        epilog="examples:\n  word2bert analogy vectors.bin man king woman        # -> queen\n"
               "  word2bert analogy vectors.bin france paris italy --method 3cosmul")
    analogy.add_argument("vectors", metavar="VECTORS", help="vector file")
    analogy.add_argument("a", metavar="A", help="a word (man)")
    analogy.add_argument("b", metavar="B", help="what A relates to (king)")
    analogy.add_argument("c", metavar="C", help="the word to relate the same way (woman)")
    analogy.add_argument("--method", choices=("3cosadd", "3cosmul"), default="3cosadd",
                         help="3CosAdd (word2vec's) or 3CosMul (Levy & Goldberg)")
    analogy.add_argument("--topn", type=int, default=5, help="number of answers")
    analogy.add_argument("--restrict-vocab", type=int, default=None,
                         help="search only the N most frequent words")
    analogy.set_defaults(func=run_analogy)

    evaluate = commands.add_parser(
        "evaluate", help="word-similarity and analogy scores (bundled WordSim353 + Google analogies)",
        formatter_class=formatter,
        description="Spearman's rho on word pairs and analogy accuracy (per section, semantic and "
                    "syntactic). Both sets ship with word2bert; other files of the same shape can be given.",
        epilog="examples:\n  word2bert evaluate vectors.bin\n"
               "  word2bert evaluate vectors.bin --method 3cosmul --json\n"
               "  word2bert evaluate vectors.txt --similarity simlex.tsv --analogies my-questions.txt")
    evaluate.add_argument("vectors", metavar="VECTORS", help="vector file")
    evaluate.add_argument("--similarity", metavar="FILE", default=None,
                          help="word pairs 'w1<TAB>w2<TAB>score' (default: bundled WordSim353)")
    evaluate.add_argument("--analogies", metavar="FILE", default=None,
                          help="': section' + 'a b c d' lines (default: bundled Google analogy set)")
    evaluate.add_argument("--restrict-vocab", type=int, default=30000,
                          help="use only the N most frequent words for analogies")
    evaluate.add_argument("--method", choices=("3cosadd", "3cosmul"), default="3cosadd",
                          help="analogy scoring")
    evaluate.add_argument("--case-sensitive", action="store_true", help="do not upper-case words for lookup")
    evaluate.add_argument("--json", action="store_true", help="print the results as JSON")
    evaluate.set_defaults(func=run_evaluate)

    convert = commands.add_parser(
        "convert", help="convert between word2vec text/binary, GloVe text and .npz", formatter_class=formatter,
        description="Read vectors in one format and write them in another (written atomically).",
        epilog="examples:\n  word2bert convert vectors.bin vectors.txt\n"
               "  word2bert convert glove.6B.100d.txt glove.bin\n"
               "  word2bert convert vectors.bin vectors.txt --to glove")
    convert.add_argument("input", metavar="IN", help="vector file to read")
    convert.add_argument("output", metavar="OUT", help="vector file to write")
    convert.add_argument("--from", dest="from_format", choices=FORMATS, default=None, help=FORMAT_HELP)
    convert.add_argument("--to", dest="to_format", choices=FORMATS, default=None, help=FORMAT_HELP)
    convert.add_argument("--limit", type=int, default=None, help="keep only the first N vectors")
    convert.set_defaults(func=run_convert)


def _is_fasttext_bin(path) -> bool:
    import struct
    from pathlib import Path

    from word2bert.interop.fasttext_format import FASTTEXT_MAGIC

    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return Path(path).is_file() and len(head) == 4 and struct.unpack("<i", head)[0] == FASTTEXT_MAGIC


def _load(path, format=None):
    """Any vector file, or a fastText .bin model (its vectors; unknown words get n-gram vectors)."""
    from word2bert.vectors import KeyedVectors

    if format is None and _is_fasttext_bin(path):
        from word2bert.interop.fasttext_format import read_fasttext_bin
        from word2bert.static.fasttext import FastText

        data = read_fasttext_bin(path)
        if data.model == "sup":
            raise Word2BertError(f"{path} is a fastText classifier: `word2bert predict` and `word2bert test` "
                                 "read it")
        return FastText.from_fasttext_file(data).wv
    return KeyedVectors.load(path, format=format)


def _print_neighbours(neighbours) -> None:
    if not neighbours:
        print("(no neighbours)")
        return
    width = max(len(word) for word, _score in neighbours)
    for word, score in neighbours:
        print(f"{word:<{width}}  {score:8.4f}")


def _check_topn(topn) -> None:
    if topn < 1:
        raise Word2BertError(f"--topn {topn}: must be > 0")


def run_similar(args) -> int:
    _check_topn(args.topn)
    kv = _load(args.vectors)
    neighbours = kv.most_similar(positive=args.words, negative=args.negative, topn=args.topn,
                                 restrict_vocab=args.restrict_vocab)
    _print_neighbours(neighbours)
    return 0


def run_analogy(args) -> int:
    _check_topn(args.topn)
    kv = _load(args.vectors)
    solve = kv.most_similar if args.method == "3cosadd" else kv.most_similar_cosmul
    neighbours = solve(positive=[args.b, args.c], negative=[args.a], topn=args.topn,
                       restrict_vocab=args.restrict_vocab)
    print(f"{args.a} : {args.b} :: {args.c} : ?   ({args.method})")
    _print_neighbours(neighbours)
    return 0


def _fmt(value) -> str:
    return f"{'n/a':>6}" if value is None else f"{value:6.4f}"


def run_evaluate(args) -> int:
    from word2bert.evaluate import evaluate_word_analogies, evaluate_word_pairs

    kv = _load(args.vectors)
    case_insensitive = not args.case_sensitive
    pairs = evaluate_word_pairs(kv, args.similarity, case_insensitive=case_insensitive)
    analogies = evaluate_word_analogies(kv, args.analogies, restrict_vocab=args.restrict_vocab,
                                        method=args.method, case_insensitive=case_insensitive)
    if args.json:
        json.dump({"vectors": args.vectors, "words": len(kv), "dimension": kv.vector_size,
                   "similarity": pairs, "analogies": analogies}, sys.stdout, indent=2)
        print()
        return 0
    print(f"vectors: {args.vectors} ({len(kv):,} words, dimension {kv.vector_size})")
    print(f"word pairs ({pairs['path']}):")
    print(f"  Spearman rho {_fmt(pairs['spearman'])}   Pearson r {_fmt(pairs['pearson'])}   "
          f"pairs used {pairs['pairs_used']}   OOV {100 * pairs['oov_ratio']:.1f}%")
    print(f"analogies ({analogies['path']}, {args.method}, top {args.restrict_vocab:,} words):")
    width = max([len(s["section"]) for s in analogies["sections"]] + [len("syntactic")])
    for section in analogies["sections"]:
        asked = section["correct"] + section["incorrect"]
        accuracy = section["correct"] / asked if asked else None
        print(f"  {section['section']:<{width}}  {_fmt(accuracy)}  ({section['correct']}/{asked})")
    print(f"  {'semantic':<{width}}  {_fmt(analogies['semantic'])}")
    print(f"  {'syntactic':<{width}}  {_fmt(analogies['syntactic'])}")
    print(f"  {'total':<{width}}  {_fmt(analogies['accuracy'])}  ({analogies['correct']}/"
          f"{analogies['questions_used']}; {analogies['oov_questions']} questions skipped as OOV)")
    return 0


def run_convert(args) -> int:
    from word2bert.vectors import KeyedVectors

    check_output_file(args.output, "OUT")
    target = args.to_format or format_from_extension(args.output)
    if target is None:
        raise Word2BertError(f"cannot tell the output format from {args.output!r}; give --to ({', '.join(FORMATS)})")
    if args.limit is not None and args.limit < 1:
        raise Word2BertError(f"--limit {args.limit}: must be > 0")
    if args.limit is not None and args.from_format in (None, "word2vec-text", "word2vec-binary", "glove"):
        from word2bert.interop.word2vec_format import detect_format

        source = args.from_format or detect_format(args.input)
        if source == "glove":
            kv = KeyedVectors.load_glove_format(args.input, limit=args.limit)
        elif source == "npz":
            kv = _load(args.input, "npz")
        else:
            kv = KeyedVectors.load_word2vec_format(args.input, binary=source == "word2vec-binary",
                                                   limit=args.limit)
    else:
        kv = _load(args.input, args.from_format)
    if args.limit is not None and len(kv) > args.limit:
        kv = KeyedVectors(kv.vectors[:args.limit], kv.index_to_key[:args.limit],
                          None if kv.counts is None else kv.counts[:args.limit])
    save_or_rescue(lambda path: kv.save(path, format=target), args.output, "vectors")
    print(f"wrote {len(kv):,} vectors of dimension {kv.vector_size} to {args.output} ({target})",
          file=sys.stderr)
    return 0
