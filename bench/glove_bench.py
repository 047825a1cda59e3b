"""GloVe and LSA on enmix, end to end, next to Stanford GloVe's figures.

Settings of GloVe's demo script as the issue fixes them: window 10 (symmetric, 1/d), 15
iterations, x_max 10, alpha 0.75, eta 0.05, dim 100, min_count 5, 2 threads. Each run times
vocabulary (+ encoding), co-occurrence counting and training separately, then scores the
W + W~ vectors on WordSim353 (Spearman rho) and the Google analogies (top 30k, 3CosAdd) with
word2bert.evaluate (gensim's evaluators as a cross-check on the first run). Stanford's tools
are not in any registry, so their figures (394 s, 0.456, 0.092 on one 2-core machine) come
from ../shared/data/README.md and the ratio is only indicative: it is not measured in the same
run. LSA (PPMI-SVD, cds 0.75, p 0.5, randomized SVD) is run with its CLI defaults (window 5,
uniform weights) and on GloVe's counts. Example::

    python bench/glove_bench.py --runs 3 --markdown bench/results/glove.md
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
STANFORD = {"wall": 394.0, "wordsim": 0.456, "analogy": 0.092}


def corpus_path(cache: Path) -> Path:
    """enmix decompressed once into the cache (the co-occurrence counter reads it twice)."""
    target = cache / "enmix.txt"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with lzma.open(DATA / "enmix.txt.xz", "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        os.replace(partial, target)
    return target


def scores(kv, cross_check=False) -> dict:
    from word2bert.evaluate import evaluate_word_analogies, evaluate_word_pairs

    pairs = evaluate_word_pairs(kv, DATA / "wordsim353.tsv")
    analogies = evaluate_word_analogies(kv, DATA / "questions-words.txt", restrict_vocab=30000)
    result = {"wordsim": pairs["spearman"], "analogy": analogies["accuracy"]}
    if cross_check:
        from gensim.models import KeyedVectors as GensimKeyedVectors

        gensim_kv = GensimKeyedVectors(kv.vectors.shape[1])
        gensim_kv.add_vectors(kv.index_to_key, kv.vectors)
        result["gensim_wordsim"] = gensim_kv.evaluate_word_pairs(str(DATA / "wordsim353.tsv"))[1][0]
        result["gensim_analogy"] = gensim_kv.evaluate_word_analogies(str(DATA / "questions-words.txt"),
                                                                     restrict_vocab=30000)[0]
    return result


def glove_run(corpus: Path, args, cross_check: bool) -> tuple[dict, object]:
    from word2bert.static.cooccurrence import build_cooccurrence
    from word2bert.static.glove import GloVe

    timings: dict = {}
    start, cpu_start = time.perf_counter(), time.process_time()
    counts = build_cooccurrence(corpus, window=args.window, min_count=args.min_count, workers=args.workers,
                                memory_limit_mb=args.memory_limit, show_progress=False, timings=timings)
    model = GloVe(vector_size=args.dim, x_max=args.x_max, epochs=args.iterations, workers=args.workers, seed=1)
    trained, cpu_trained = time.perf_counter(), time.process_time()
    model.fit(counts, show_progress=False)
    end, cpu_end = time.perf_counter(), time.process_time()
    row = {"model": "glove", "vocabulary_s": timings["vocabulary"], "cooccurrence_s": timings["cooccurrence"],
           "training_s": end - trained, "wall_s": end - start, "cpu_counting_s": cpu_trained - cpu_start,
           "cpu_training_s": cpu_end - cpu_trained, "cpu_s": cpu_end - cpu_start, "nnz": counts.nnz,
           "words": len(counts.words), "final_cost": model.loss_history[-1]}
    row.update(scores(model.keyed_vectors(), cross_check))
    return row, counts


def lsa_run(corpus: Path, args, counts=None) -> dict:
    from word2bert.static.cooccurrence import build_cooccurrence
    from word2bert.static.lsa import LSA

    from threadpoolctl import threadpool_limits

    timings = {"vocabulary": 0.0, "cooccurrence": 0.0}
    start, cpu_start = time.perf_counter(), time.process_time()
    label = "lsa (on GloVe's counts: window 10, 1/d)"
    if counts is None:
        label = "lsa (CLI defaults: window 5, uniform)"
        counts = build_cooccurrence(corpus, window=5, distance_weighting=False, min_count=args.min_count,
                                    workers=args.workers, memory_limit_mb=args.memory_limit, show_progress=False,
                                    timings=timings)
    fitted = time.perf_counter()
    with threadpool_limits(args.workers):  # BLAS inside the SVD: the same 2 threads as everything else
        model = LSA(vector_size=args.dim, neg=1.0, cds=0.75, eig=0.5, svd="randomized").fit(counts)
    end, cpu_end = time.perf_counter(), time.process_time()
    row = {"model": label, "vocabulary_s": timings["vocabulary"], "cooccurrence_s": timings["cooccurrence"],
           "training_s": end - fitted, "wall_s": end - start, "cpu_s": cpu_end - cpu_start, "nnz": counts.nnz,
           "words": len(counts.words)}
    row.update(scores(model.keyed_vectors()))
    return row


def markdown(rows: list[dict], args, load: str) -> str:
    glove = [r for r in rows if r["model"] == "glove"]
    lines = [
        "# GloVe and LSA on enmix (bench/glove_bench.py)",
        "",
        f"Settings: window {args.window} symmetric 1/d, {args.iterations} iterations, x_max {args.x_max}, "
        f"dim {args.dim}, min_count {args.min_count}, {args.workers} threads; {len(glove)} GloVe run(s). "
        f"Load average during the runs: {load}.",
        "Stanford's row is the figure from ../shared/data/README.md (another run, same kind of machine), "
        "so the ratio is indicative, not measured side by side.",
        "",
        "CPU s is the process's CPU time over all its threads (user + system): under a shared, "
        "overloaded machine it is the steadier figure, and wall time on 2 free cores is at least CPU / 2.",
        "",
        "| run | vocab+encode s | cooccur s | train s | wall s | CPU s | WordSim353 rho | analogy (top 30k) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['vocabulary_s']:.1f} | {r['cooccurrence_s']:.1f} | {r['training_s']:.1f} "
                     f"| {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['wordsim']:.3f} | {r['analogy']:.3f} |")
    if glove:
        med = statistics.median(r["wall_s"] for r in glove)
        lines.append(f"| **glove median** | {statistics.median(r['vocabulary_s'] for r in glove):.1f} "
                     f"| {statistics.median(r['cooccurrence_s'] for r in glove):.1f} "
                     f"| {statistics.median(r['training_s'] for r in glove):.1f} | **{med:.1f}** "
                     f"| {statistics.median(r['cpu_s'] for r in glove):.1f} "
                     f"| {statistics.median(r['wordsim'] for r in glove):.3f} "
                     f"| {statistics.median(r['analogy'] for r in glove):.3f} |")
        lines.append(f"| Stanford GloVe (README) | | | | {STANFORD['wall']:.0f} | | {STANFORD['wordsim']:.3f} "
                     f"| {STANFORD['analogy']:.3f} |")
        lines += ["", f"Indicative speed ratio Stanford / word2bert: {STANFORD['wall'] / med:.2f}x "
                      f"(median wall {med:.1f} s)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--x-max", type=float, default=10.0)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", type=float, default=4096.0)
    parser.add_argument("--no-lsa", action="store_true")
    parser.add_argument("--cache", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "word2bert-bench"))
    parser.add_argument("--markdown", help="also write the table here")
    args = parser.parse_args(argv)
    corpus = corpus_path(Path(args.cache))
    rows = []
    loads = []
    counts = None
    for run in range(args.runs):
        row, counts = glove_run(corpus, args, cross_check=run == 0)
        loads.append(os.getloadavg()[0])
        rows.append(row)
        print(json.dumps(row), flush=True)
    if not args.no_lsa:
        for row in (lsa_run(corpus, args), lsa_run(corpus, args, counts)):
            loads.append(os.getloadavg()[0])
            rows.append(row)
            print(json.dumps(row), flush=True)
    load = ", ".join(f"{x:.1f}" for x in loads) + f" (on {os.cpu_count()} cores)"
    table = markdown(rows, args, load)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
