"""``word2bert phrases``: learn word2phrase / gensim-style phrases and join them in a corpus.

Examples::

    word2bert phrases corpus.txt -o corpus.phrased.txt                        # one pass, gensim defaults
    word2bert phrases corpus.txt -o out.txt --passes 2 --scoring word2phrase --threshold 200 100
    word2bert phrases corpus.txt -o out.txt --connector-words english --save-model phrases.json
    word2bert phrases more.txt -o more.phrased.txt --model phrases.json          # apply a saved model
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from word2bert.commands import check_output_file
from word2bert.errors import Word2BertError

EPILOG = """examples:
  word2bert phrases corpus.txt -o corpus.phrased.txt
  word2bert phrases corpus.txt -o out.txt --passes 2 --scoring word2phrase --threshold 200 100
  word2bert phrases corpus.txt -o out.txt --connector-words english --export phrases.tsv
  word2bert phrases more.txt -o more.phrased.txt --model phrases.json

Scores (a candidate is joined when its score is strictly above --threshold):
  default      (count(ab) - min_count) / (count(a) count(b)) * len_vocab      (gensim)
  word2phrase  (count(ab) - min_count) / (count(a) count(b)) * train_words    (word2vec.c)
  npmi         ln(p(ab) / (p(a) p(b))) / -ln(p(ab)), threshold in [-1, 1]    (gensim)
"""


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter

    parser = commands.add_parser(
        "phrases", help="detect phrases (word2phrase / gensim Phrases) and join them in a corpus",
        formatter_class=HelpfulFormatter, epilog=EPILOG,
        description="Learn which adjacent words form phrases (e.g. new_york) and write the corpus with "
                    "them joined by the delimiter; several passes make longer phrases.")
    parser.add_argument("corpus", help="text file, one sentence per line (plain/.gz/.bz2/.xz)")
    parser.add_argument("-o", "--output", required=True, help="phrased corpus to write")
    parser.add_argument("--model", help="apply this saved phrase model instead of learning one")
    parser.add_argument("--min-count", type=float, default=5, help="discount delta; see the scores below")
    parser.add_argument("--threshold", type=float, nargs="+", default=None,
                        help="score threshold, one per pass (the last repeats); default 10 (npmi: 0.5)")
    parser.add_argument("--scoring", choices=["default", "word2phrase", "npmi"], default="default",
                        help="phrase score: gensim's default, word2phrase's, or normalised PMI")
    parser.add_argument("--passes", type=int, default=1, help="passes (2: phrases of up to four words)")
    parser.add_argument("--delimiter", default="_", help="glue between the words of a phrase")
    parser.add_argument("--connector-words", default="none", metavar="{none,english,FILE}",
                        help="words allowed inside a phrase (bank_of_america): none, gensim's English "
                             "set, or a file with one word per line")
    parser.add_argument("--max-vocab-size", type=int, default=40_000_000,
                        help="prune the count table beyond this many entries (gensim's default)")
    parser.add_argument("--lowercase", action="store_true", help="lower-case the corpus first")
    parser.add_argument("--save-model", help="save the learned phrases (JSON) for --model")
    parser.add_argument("--export", help="also write the phrases with their scores (TSV, best first)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=run)


def _connector_words(spec: str) -> frozenset:
    from word2bert.static.phrases import ENGLISH_CONNECTOR_WORDS

    if spec == "none":
        return frozenset()
    if spec == "english":
        return ENGLISH_CONNECTOR_WORDS
    path = Path(spec)
    if not path.is_file():
        raise Word2BertError(f"--connector-words: file not found: {spec} (or give none / english)")
    from word2bert.fileio import open_text

    with open_text(path) as handle:
        return frozenset(word for line in handle for word in line.split())


class _LowercasedFile:
    def __init__(self, path):
        self.path = path

    def __iter__(self):
        from word2bert.corpus.reader import iter_sentences
        return iter_sentences(self.path, lowercase=True)


def run(args) -> int:
    from word2bert.fileio import atomic_write
    from word2bert.progress import progress_bar
    from word2bert.static.phrases import learn_phrases, load_phrases

    corpus = Path(args.corpus)
    if not corpus.is_file():
        raise Word2BertError(f"corpus not found: {corpus}")
    if args.passes < 1:
        raise Word2BertError(f"--passes {args.passes} must be >= 1")
    check_output_file(args.output)
    for flag, path in (("--save-model", args.save_model), ("--export", args.export)):
        if path:
            check_output_file(path, flag)
    disable = True if args.quiet else None
    started = time.perf_counter()
    if args.model:
        if args.save_model:
            raise Word2BertError("--save-model goes with learning a model, not with --model")
        model = load_phrases(args.model)
    else:
        threshold = args.threshold if args.threshold else [0.5 if args.scoring == "npmi" else 10.0]
        sentences = _LowercasedFile(corpus) if args.lowercase else None
        model = learn_phrases(
            sentences=sentences, corpus_file=None if args.lowercase else corpus, passes=args.passes,
            threshold=threshold, min_count=args.min_count, scoring=args.scoring, delimiter=args.delimiter,
            connector_words=_connector_words(args.connector_words), max_vocab_size=args.max_vocab_size,
            progress_factory=lambda k: progress_bar(desc=f"counting, pass {k + 1}/{args.passes}", disable=disable))
        if args.save_model:
            model.save(args.save_model)
    with progress_bar(desc="joining phrases", disable=disable) as bar:
        read, written = model.transform_file(corpus, args.output, progress=bar, lowercase=args.lowercase)
    phrases = model.export_phrases()
    if args.export:
        with atomic_write(args.export, "w", encoding="utf-8") as handle:
            for phrase, score in sorted(phrases.items(), key=lambda item: -item[1]):
                handle.write(f"{phrase}\t{score:.6g}\n")
    if not args.quiet:
        print(f"{len(phrases)} phrases; {read} tokens in, {written} out; wrote {args.output} "
              f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0
