"""word2bert's Word2Vec against gensim's, same corpus, same settings, same run.

    python bench/word2vec_vs_gensim.py [--corpus PATH] [--modes sg-ns,cbow-ns,sg-hs,cbow-hs]
                                       [--repeats 3] [--epochs 5] [--workers 2]

Settings (the issue's): vector_size 100, window 5, negative 5 (NS modes) or hs=1 negative=0
(HS modes), sample 1e-3, min_count 5, ``--epochs`` epochs, ``--workers`` threads. The
default corpus ../shared/data/enmix.txt.xz is decompressed once into a cache file. gensim
reads it with ``corpus_file=`` (its fastest multi-threaded input path); word2bert trains from
its encoded corpus. Training time is measured separately from vocabulary building (and, for
word2bert, encoding); words/s = raw corpus words x epochs / training seconds, the median of
``--repeats`` runs, gensim and word2bert alternating so both see the same machine load.
Both models' vectors are scored by the *same* evaluator, gensim's
``KeyedVectors.evaluate_word_pairs`` (WordSim353, Spearman rho) and
``evaluate_word_analogies`` (Google analogies, restrict_vocab 30000); the median over repeats
is reported. Repeat ``r`` uses seed ``--seed + r`` on both sides.

A second gensim reference: with ``corpus_file=`` and ``w`` workers, gensim 4.4 decays the
learning rate over only ``1/w`` of each epoch (every worker compares its own word count with
the whole corpus's, ``word2vec_corpusfile.pyx: get_next_alpha``), so with 2 workers its rate
runs a saw-tooth from ``alpha`` down to ``alpha * (1 - 4.5 / 5)`` instead of a line to
``min_alpha``. That higher effective rate changes its scores on this small corpus. Each repeat
therefore also trains gensim from an iterable (``LineSentence``, its exact linear schedule,
the one word2bert and word2vec.c follow) for the quality columns; its speed is not compared
(``--no-iterable`` skips it). Prints a markdown table and writes it to
bench/results/word2vec_vs_gensim.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
MODES = {"sg-ns": dict(sg=1, hs=0, negative=5), "cbow-ns": dict(sg=0, hs=0, negative=5),
         "sg-hs": dict(sg=1, hs=1, negative=0), "cbow-hs": dict(sg=0, hs=1, negative=0)}
SETTINGS = dict(vector_size=100, window=5, sample=1e-3, min_count=5, alpha=0.025, min_alpha=0.0001)


def plain_corpus(path: Path, cache: Path) -> Path:
    """Decompress an .xz/.gz/.bz2 corpus once into ``cache`` (reused while the source is unchanged)."""
    if path.suffix not in (".xz", ".gz", ".bz2"):
        return path
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache / f"{path.stem}.{key}"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        from word2bert.fileio import open_binary

        tmp = target.with_suffix(".partial")
        with open_binary(path) as source, open(tmp, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 22)
        os.replace(tmp, target)
    return target


def gensim_kv(words, vectors):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(list(words), np.asarray(vectors, dtype=np.float32))
    return kv


def evaluate(kv, pairs: Path, questions: Path) -> tuple[float, float]:
    """(WordSim353 Spearman rho, analogy accuracy over the top 30000 words), gensim's evaluator."""
    import logging

    logging.getLogger("gensim").setLevel(logging.WARNING)
    rho = kv.evaluate_word_pairs(str(pairs))[1][0]
    accuracy = kv.evaluate_word_analogies(str(questions), restrict_vocab=30000)[0]
    return float(rho), float(accuracy)


def run_gensim(corpus: Path, mode: dict, epochs: int, workers: int, seed: int):
    from gensim.models import Word2Vec

    model = Word2Vec(workers=workers, epochs=epochs, seed=seed, **SETTINGS, **mode)
    t0 = time.perf_counter()
    model.build_vocab(corpus_file=str(corpus))
    t1 = time.perf_counter()
    model.train(corpus_file=str(corpus), total_words=model.corpus_total_words, epochs=epochs)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, model.corpus_total_words, gensim_kv(model.wv.index_to_key, model.wv.vectors)


def run_gensim_iterable(corpus: Path, mode: dict, epochs: int, workers: int, seed: int):
    """gensim trained from an iterable corpus: its exact linear learning-rate schedule."""
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    model = Word2Vec(workers=workers, epochs=epochs, seed=seed, **SETTINGS, **mode)
    t0 = time.perf_counter()
    model.build_vocab(LineSentence(str(corpus)))
    t1 = time.perf_counter()
    model.train(LineSentence(str(corpus)), total_examples=model.corpus_count, epochs=epochs)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, model.corpus_total_words, gensim_kv(model.wv.index_to_key, model.wv.vectors)


def run_word2bert(corpus: Path, mode: dict, epochs: int, workers: int, seed: int):
    from word2bert.corpus import LineSentence
    from word2bert.static.word2vec import Word2Vec

    model = Word2Vec(workers=workers, epochs=epochs, seed=seed, progress=False, **SETTINGS, **mode)
    t0 = time.perf_counter()
    model.build_vocab(LineSentence(corpus))
    encoded = model.encode(LineSentence(corpus))
    t1 = time.perf_counter()
    model.train(encoded, epochs=epochs)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, encoded.raw_word_count, gensim_kv(model.vocab.words, model.input_vectors)


def warm_up(mode: dict):
    """Compile (or load from numba's cache) the kernels outside the timed region."""
    from word2bert.static.word2vec import Word2Vec

    sentences = [["a", "b", "c", "d", "e"]] * 20
    # the benchmark's vector size: the kernels are compiled per size (word2bert.static.native)
    Word2Vec(sentences, min_count=1, vector_size=SETTINGS["vector_size"], epochs=1, workers=1, progress=False, **mode)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DATA / "enmix.txt.xz")
    parser.add_argument("--modes", default="sg-ns,cbow-ns,sg-hs,cbow-hs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-iterable", action="store_true",
                        help="skip the quality reference of gensim trained from an iterable")
    parser.add_argument("--pairs", type=Path, default=DATA / "wordsim353.tsv")
    parser.add_argument("--questions", type=Path, default=DATA / "questions-words.txt")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "word2bert-bench")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "word2vec_vs_gensim.md")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {sorted(MODES)}")
    if not args.corpus.exists():
        parser.error(f"corpus not found: {args.corpus}")
    corpus = plain_corpus(args.corpus, args.cache)
    import gensim

    rows = []
    log = []
    for name in modes:
        mode = MODES[name]
        warm_up(mode)
        peers = [("gensim", run_gensim), ("word2bert", run_word2bert)]
        if not args.no_iterable:
            peers.append(("gensim-iterable", run_gensim_iterable))
        runs = {peer: [] for peer, _ in peers}
        for repeat in range(args.repeats):
            for peer, runner in peers:
                vocab_s, train_s, raw_words, kv = runner(corpus, mode, args.epochs, args.workers, args.seed + repeat)
                rho, accuracy = evaluate(kv, args.pairs, args.questions)
                speed = raw_words * args.epochs / train_s
                runs[peer].append((speed, rho, accuracy, vocab_s, train_s))
                log.append(f"{name} run {repeat + 1}/{args.repeats} {peer:15s}: vocab {vocab_s:6.1f} s, train "
                           f"{train_s:6.1f} s, {speed / 1e3:7.0f}k words/s, rho {rho:.3f}, analogy {accuracy:.3f}")
                print(log[-1], file=sys.stderr, flush=True)
        med = {peer: [statistics.median(r[i] for r in runs[peer]) for i in range(5)] for peer in runs}
        ratios = [w[0] / g[0] for g, w in zip(runs["gensim"], runs["word2bert"])]
        rows.append((name, med, statistics.median(ratios)))

    iterable = not args.no_iterable

    def scores(m, i):
        cells = [m["gensim"][i], m["word2bert"][i]] + ([m["gensim-iterable"][i]] if iterable else [])
        return " / ".join(f"{v:.3f}" for v in cells)

    order = "gensim / word2bert" + (" / gensim-iterable" if iterable else "")
    header = (f"| mode | gensim words/s | word2bert words/s | ratio | WS353 rho {order} "
              f"| analogy {order} | vocab+encode s gensim / word2bert |\n"
              "|---|---|---|---|---|---|---|\n")
    lines = [f"| {name} | {m['gensim'][0] / 1e3:,.0f}k | {m['word2bert'][0] / 1e3:,.0f}k | {ratio:.2f}x | "
             f"{scores(m, 1)} | {scores(m, 2)} | {m['gensim'][3]:.1f} / {m['word2bert'][3]:.1f} |"
             for name, m, ratio in rows]
    command = "python bench/word2vec_vs_gensim.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table = header + "\n".join(lines) + "\n"
    notes = (f"\nCorpus {args.corpus.name}; dim 100, window 5, sample 1e-3, min_count 5, {args.epochs} epochs, "
             f"{args.workers} threads; median of {args.repeats} runs (ratio: median of per-run ratios). "
             f"gensim {gensim.__version__}, Python {platform.python_version()}, {platform.machine()}, "
             f"{os.cpu_count()} CPUs. Command: `{command.strip()}`\n")
    print(table + notes)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    from word2bert.fileio import atomic_write

    with atomic_write(args.output, "w", encoding="utf-8") as out:
        out.write("# word2bert Word2Vec vs gensim\n\n" + table + notes + "\nPer run:\n\n```\n" + "\n".join(log) + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
