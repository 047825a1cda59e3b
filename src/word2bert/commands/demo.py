"""`word2bert demo` and `word2bert download`: the built-in default job and corpus downloads."""

from __future__ import annotations

import time

from word2bert import datasets

DEMO_QUERIES = ["file", "thread", "socket", "integer", "dictionary", "error"]
DEMO_ANALOGIES = [("read", "reading", "write"), ("file", "files", "directory"), ("int", "integer", "str")]


def register(commands, train_commands):
    demo = commands.add_parser(
        "demo", help="train word2vec on Python's own documentation and show what it learned",
        description="Builds a corpus from the docstrings and comments of the Python standard library "
                    "(no network, no files needed), trains skip-gram word2vec on it, and prints nearest "
                    "neighbours, analogies and the bundled evaluation scores.")
    demo.add_argument("--epochs", type=int, default=5)
    demo.add_argument("--vector-size", type=int, default=100)
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--output", "-o", help="also save the vectors here (format from extension)")
    demo.set_defaults(func=run_demo)

    download = commands.add_parser("download", help="download a standard corpus (needs the network)")
    download.add_argument("name", choices=sorted(datasets.CORPORA))
    download.add_argument("--dir", help="target directory (default $WORD2BERT_HOME or ~/.cache/word2bert)")
    download.add_argument("--url", help="download from this address instead (a mirror)")
    download.set_defaults(func=run_download)


def run_demo(args) -> int:
    from word2bert.evaluate import evaluate_word_analogies, evaluate_word_pairs
    from word2bert.static.word2vec import Word2Vec

    corpus = datasets.demo_corpus()
    print(f"corpus: {corpus} (Python standard-library docstrings and comments)")
    start = time.perf_counter()
    model = Word2Vec(corpus_file=str(corpus), vector_size=args.vector_size, window=5, min_count=5, sg=1,
                     negative=5, sample=1e-3, epochs=args.epochs, workers=args.workers, seed=1)
    elapsed = time.perf_counter() - start
    wv = model.wv
    print(f"trained skip-gram on {model.corpus_total_words:,} words x {args.epochs} epochs "
          f"in {elapsed:.1f} s; vocabulary {len(wv):,} words\n")
    for word in DEMO_QUERIES:
        if word in wv:
            neighbours = ", ".join(f"{w} {s:.2f}" for w, s in wv.most_similar(word, topn=6))
            print(f"  {word:>10} -> {neighbours}")
    print()
    for a, b, c in DEMO_ANALOGIES:
        if all(w in wv for w in (a, b, c)):
            answer, score = wv.most_similar(positive=[b, c], negative=[a], topn=1)[0]
            print(f"  {a} : {b} :: {c} : {answer}  ({score:.2f})")
    pairs = evaluate_word_pairs(wv)
    analogies = evaluate_word_analogies(wv)
    print(f"\nWordSim353 Spearman rho {pairs['spearman']:.3f} on {pairs['pairs_used']} pairs "
          f"(OOV {pairs['oov_ratio']:.0%}); Google analogies accuracy {analogies['accuracy']:.3f} "
          f"(a programming corpus covers few of these words: train on text8 for real scores, "
          f"`word2bert download text8`)")
    if args.output:
        wv.save(args.output)
        print(f"vectors saved to {args.output}")
    return 0


def run_download(args) -> int:
    path = datasets.download(args.name, directory=args.dir, url=args.url)
    print(path)
    return 0
