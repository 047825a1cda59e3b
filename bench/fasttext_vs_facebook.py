"""word2bert's FastText (skip-gram with subwords) against Facebook's fasttext package, same run.

    python bench/fasttext_vs_facebook.py [--corpus PATH] [--repeats 3] [--workers 2] [--epochs 5] [--model sg]

Settings (the issue's): dim 100, window 5, negative 5, minn 3, maxn 6, 5 epochs, bucket
2,000,000, minCount 5, and fastText's own defaults for the rest, given to both: learning rate
0.05 decaying linearly to 0, subsampling t = 1e-4, negatives from count^0.5. The corpus
../shared/data/enmix.txt.xz is decompressed once. Time is the wall time from the text file
to a trained model for both (reading, vocabulary, n-gram tables, initialisation, training;
fastText's ``train_unsupervised`` does all of it in one call); words/s = corpus tokens x
epochs / that time, the median of ``--repeats`` runs, the tools alternating. word2bert's
training-only time is shown too. Both models' in-vocabulary vectors are scored by the same
evaluator (gensim's ``evaluate_word_pairs`` on WordSim353, Spearman rho, and
``evaluate_word_analogies`` on the Google set, restrict_vocab 30000).
Writes bench/results/fasttext_vs_facebook.md.
"""

from __future__ import annotations

import argparse
import lzma
import os
import platform
import shutil
import statistics
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)

# the same gensim evaluator as the word2vec benchmark, so both sides are scored alike
from word2vec_vs_gensim import evaluate, gensim_kv  # noqa: E402  (bench/ is the script directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DATA / "enmix.txt.xz")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--model", choices=["sg", "cbow"], default="sg")
    parser.add_argument("--pairs", type=Path, default=DATA / "wordsim353.tsv")
    parser.add_argument("--questions", type=Path, default=DATA / "questions-words.txt")
    args = parser.parse_args()

    import fasttext

    from word2bert.corpus import LineSentence
    from word2bert.corpus.encoded import EncodedCorpus
    from word2bert.static.fasttext import FastText

    settings = dict(vector_size=100, window=5, negative=5, min_n=3, max_n=6, bucket=2_000_000, min_count=5,
                    alpha=0.05, min_alpha=0.0, sample=1e-4, ns_exponent=0.5)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        with lzma.open(args.corpus) if args.corpus.suffix == ".xz" else open(args.corpus, "rb") as source, \
                open(corpus, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 22)
        # numba compiles the kernels per vector size: warm up with the benchmark's, outside the timings
        FastText([["warm", "up", "the", "kernels"]] * 10, min_count=1, vector_size=settings["vector_size"], bucket=100,
                 epochs=1, workers=1, sg=int(args.model == "sg"), progress=False)
        results = {"fasttext": [], "word2bert": []}
        n_tokens = 0
        for run in range(args.repeats):
            start = time.perf_counter()
            ours = FastText(sg=int(args.model == "sg"), epochs=args.epochs, workers=args.workers, seed=run + 1,
                            progress=False, **settings)
            ours.build_vocab(corpus_file=corpus)
            encoded = EncodedCorpus.encode(LineSentence(corpus), ours.vocab)
            prepared = time.perf_counter()
            ours_train_start = time.perf_counter()
            ours.train(encoded=encoded, epochs=args.epochs)
            end = time.perf_counter()
            n_tokens = encoded.raw_word_count
            quality = evaluate(gensim_kv(ours.wv.index_to_key, ours.wv.vectors), args.pairs, args.questions)
            results["word2bert"].append((end - start, end - ours_train_start, *quality))
            print(f"run {run}: word2bert {end - start:.1f}s (training {end - ours_train_start:.1f}s, "
                  f"preparing {prepared - start:.1f}s) rho {quality[0]:.4f} analogy {quality[1]:.4f}", flush=True)
            del ours, encoded
            start = time.perf_counter()
            theirs = fasttext.train_unsupervised(
                str(corpus), model="skipgram" if args.model == "sg" else "cbow", dim=100, ws=5, neg=5, minn=3, maxn=6,
                epoch=args.epochs, bucket=2_000_000, minCount=5, lr=0.05, t=1e-4, thread=args.workers, verbose=0)
            end = time.perf_counter()
            words = theirs.words
            vectors = np.vstack([theirs.get_word_vector(w) for w in words])
            quality = evaluate(gensim_kv(words, vectors), args.pairs, args.questions)
            results["fasttext"].append((end - start, end - start, *quality))
            print(f"run {run}: fasttext  {end - start:.1f}s rho {quality[0]:.4f} analogy {quality[1]:.4f}", flush=True)
            del theirs

    def med(name, i):
        return statistics.median(r[i] for r in results[name])

    rate = {name: n_tokens * args.epochs / med(name, 0) for name in results}
    version = metadata.version("fasttext") if _installed("fasttext") else "?"
    lines = [
        f"# fastText {args.model} with subwords: word2bert vs the fasttext package ({version})",
        "",
        f"enmix ({n_tokens:,} tokens), dim 100, window 5, negative 5, minn 3, maxn 6, bucket 2M, minCount 5, "
        f"lr 0.05, t 1e-4, {args.epochs} epochs, {args.workers} threads; medians of {args.repeats} run(s); "
        f"{platform.machine()}, {os.cpu_count()} cores.",
        "",
        "| tool | wall, file to model (s) | words/s | WordSim353 rho | analogy acc (30k) |",
        "|---|---|---|---|---|",
    ]
    for name in ("fasttext", "word2bert"):
        lines.append(f"| {name} | {med(name, 0):.1f} | {rate[name]:,.0f} | {med(name, 2):.4f} | {med(name, 3):.4f} |")
    lines += [
        "",
        f"speed ratio word2bert / fasttext: **{rate['word2bert'] / rate['fasttext']:.2f}x** "
        f"(word2bert training alone: {med('word2bert', 1):.1f}s); "
        f"rho difference {med('word2bert', 2) - med('fasttext', 2):+.4f}, "
        f"analogy difference {med('word2bert', 3) - med('fasttext', 3):+.4f}",
        "",
        "Per run (wall s, rho, analogy): " + "; ".join(
            f"{name}: " + ", ".join(f"({r[0]:.1f}, {r[2]:.4f}, {r[3]:.4f})" for r in results[name])
            for name in results),
        "",
        f"Command: `python bench/fasttext_vs_facebook.py --repeats {args.repeats} --workers {args.workers} "
        f"--model {args.model}`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = HERE / "results" / f"fasttext_vs_facebook{'' if args.model == 'sg' else '_cbow'}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


def _installed(name):
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
