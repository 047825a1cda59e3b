"""End to end: a text file in, vectors (or a scored classifier) out, wall clock, against the peers.

    python bench/end_to_end.py [--rows sg-ns,cbow-ns,sg-hs,cbow-hs,fasttext,classifier] [--repeats 3]
                               [--workers 2] [--epochs 5] [--word2vec-c SRC] [--glove SRC] [--first-word]

Every run is a fresh Python process, timed from its start to its exit (imports, reading, vocabulary,
compiling, training, writing the vectors): what a user waits for. Two columns for word2bert:

* **first run**: numba's cache is empty (``NUMBA_CACHE_DIR`` points at a new directory), as after a
  fresh install: the kernels are compiled during the run;
* **warm**: the cache holds the kernels (those the row's first run compiled).

The peers have no compilation step; their runs give both columns. Rows (enmix, 2 threads, the
README's settings):

* ``sg-ns``, ``cbow-ns``, ``sg-hs``, ``cbow-hs``: word2vec vs gensim's ``Word2Vec(corpus_file=...)``: dim 100,
  window 5, negative 5 or HS, sample 1e-3, min_count 5, 5 epochs, vectors written in word2vec's
  binary format; word2vec.c too when ``--word2vec-c`` names its source (``word2vec.c`` or a directory
  holding it) and a C compiler is found: it is built in the temporary directory with the flags of its
  makefile, and runs with the same settings (alpha 0.025 in every mode, as gensim and word2bert; its
  own default for CBOW is 0.05).
* ``fasttext``: skip-gram with subwords (minn 3, maxn 6, bucket 2M, lr 0.05, t 1e-4) vs the
  ``fasttext`` package: the *same script* for both, ``import fasttext`` or
  ``import word2bert.fasttext as fasttext`` (``train_unsupervised``, then the vocabulary's vectors
  written in word2vec's binary format).
* ``classifier``: wn_lexname, ``train_supervised(lr=0.5, epoch=25, wordNgrams=2, dim=100)`` then
  ``test`` on the test file: file in, P@1 out; the same script for both again.
* ``glove`` (only with ``--glove`` naming Stanford GloVe's source directory): its ``demo.sh`` pipeline
  (vocab_count, cooccur, shuffle, glove; window 10, 15 iterations, x_max 10) vs word2bert's
  ``build_cooccurrence`` + ``GloVe``.

Quality: WordSim353 Spearman rho and analogy accuracy (top 30,000 words) by gensim's evaluator for
every tool's vectors, P@1 for the classifiers; each repeat uses another seed (1, 2, 3, ...) on both
sides and the table gives the mean. Times are medians of ``--repeats`` runs; the ratio is peer time /
word2bert time. ``--first-word`` also measures, per model and vector size, the seconds from the call
to the first trained word (``model.timings['first_word']``) on a first run and on the second, for
each seed in ``--seeds`` (default ``--repeats``) a new pair with an empty cache; medians.

The load average is written with the results (``bench/results/end_to_end.md``); numbers taken while
other jobs load the machine are not comparable with a quiet machine's.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
# minutes one (row, seed) takes on a loaded 2-core machine before the store knows better (--max-minutes)
UNIT_MINUTES = {"classifier": 3.0, "cbow-ns": 5.0, "cbow-hs": 5.0, "sg-ns": 9.0, "sg-hs": 8.0, "fasttext": 12.0,
                "glove": 5.0}
ROWS = ["sg-ns", "cbow-ns", "sg-hs", "cbow-hs", "fasttext", "classifier"]
W2V_MODES = {"sg-ns": dict(sg=1, hs=0, negative=5), "cbow-ns": dict(sg=0, hs=0, negative=5),
             "sg-hs": dict(sg=1, hs=1, negative=0), "cbow-hs": dict(sg=0, hs=1, negative=0)}
W2V = dict(vector_size=100, window=5, min_count=5, sample=1e-3)

WRITE_BINARY = '''
def write_binary(path, words, vectors):
    import numpy as np
    vectors = np.asarray(vectors, dtype="<f4")
    with open(path, "wb") as out:
        out.write(f"{len(words)} {vectors.shape[1]}\\n".encode())
        for word, row in zip(words, vectors):
            out.write(word.encode("utf-8") + b" " + row.tobytes())
'''


HOW = ("Wall clock of a fresh Python process from its start to its exit (file in, vectors or P@1 out), 2 threads; "
       "word2bert's first run with an empty numba cache (NUMBA_CACHE_DIR a new directory), warm with the "
       "kernels cached; medians over the seeds, quality averaged over them. Ratio: peer seconds / word2bert "
       "seconds. Training only: word2bert's `model.timings['training']` (the training loop, no reading, "
       "vocabulary, compiling or writing).")


def word2vec_script(tool: str, corpus: Path, out: Path, mode: dict, epochs: int, workers: int, seed: int) -> str:
    options = dict(W2V, **mode, epochs=epochs, workers=workers, seed=seed)
    if tool == "gensim":  # what Word2Vec(corpus_file=..., **options) does, with the two phases timed
        return (f"import json, time\nfrom gensim.models import Word2Vec\n"
                f"m = Word2Vec(**{options!r})\n"
                f"start = time.perf_counter()\n"
                f"m.build_vocab(corpus_file={str(corpus)!r})\n"
                f"vocabulary = time.perf_counter() - start\n"
                f"m.train(corpus_file={str(corpus)!r}, total_examples=m.corpus_count, "
                f"total_words=m.corpus_total_words, epochs=m.epochs)\n"
                f"print('TIMINGS ' + json.dumps(dict(vocabulary=vocabulary, "
                f"training=time.perf_counter() - start - vocabulary)))\n"
                f"m.wv.save_word2vec_format({str(out)!r}, binary=True)\n")
    return (f"import json\nfrom word2bert import Word2Vec\n"
            f"m = Word2Vec(corpus_file={str(corpus)!r}, progress=False, **{options!r})\n"
            f"m.wv.save_word2vec_format({str(out)!r}, binary=True)\n"
            f"print('TIMINGS ' + json.dumps(m.timings))\n")


def seeded(tool: str, seed: int) -> str:
    """The fasttext package (0.9.3) takes no seed: its runs differ by their threads' timing anyway."""
    return "" if tool == "fasttext" else f"seed={seed}, "


def fasttext_script(tool: str, corpus: Path, out: Path, epochs: int, workers: int, seed: int) -> str:
    module = "import fasttext" if tool == "fasttext" else "import word2bert.fasttext as fasttext"
    return (f"{module}\nimport json\n{WRITE_BINARY}\n"
            f"m = fasttext.train_unsupervised({str(corpus)!r}, model='skipgram', dim=100, ws=5, epoch={epochs}, "
            f"minCount=5, minn=3, maxn=6, neg=5, bucket=2000000, lr=0.05, t=1e-4, thread={workers}, "
            f"{seeded(tool, seed)}verbose=0)\n"
            f"words = m.words\n"
            f"write_binary({str(out)!r}, words, [m.get_word_vector(w) for w in words])\n"
            f"if hasattr(m, 'model'): print('TIMINGS ' + json.dumps(m.model.timings))\n")


def classifier_script(tool: str, train: Path, test: Path, epochs: int, workers: int, seed: int) -> str:
    module = "import fasttext" if tool == "fasttext" else "import word2bert.fasttext as fasttext"
    return (f"{module}\nimport json\n"
            f"m = fasttext.train_supervised({str(train)!r}, lr=0.5, epoch={epochs}, wordNgrams=2, dim=100, "
            f"thread={workers}, {seeded(tool, seed)}verbose=0)\n"
            f"n, p, r = m.test({str(test)!r})\n"
            f"print('P@1', p)\n"
            f"if hasattr(m, 'model'): print('TIMINGS ' + json.dumps(m.model.timings))\n")


def run(script: str, env: dict, cwd: Path) -> tuple[float, str]:
    """Wall seconds of ``python -c script`` from start to exit, and its output."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"a benchmark run failed:\n{script}\n{done.stderr[-3000:]}")
    return wall, done.stdout


def parse(output: str) -> dict:
    found = {}
    for line in output.splitlines():
        if line.startswith("TIMINGS "):
            found["timings"] = json.loads(line[8:])
        elif line.startswith("P@1 "):
            found["p1"] = float(line[4:])
    return found


def quality(path: Path, pairs: Path, questions: Path) -> tuple[float, float]:
    import logging

    from gensim.models import KeyedVectors

    logging.getLogger("gensim").setLevel(logging.WARNING)
    kv = KeyedVectors.load_word2vec_format(str(path), binary=True)
    rho = kv.evaluate_word_pairs(str(pairs))[1][0]
    accuracy = kv.evaluate_word_analogies(str(questions), restrict_vocab=30000)[0]
    return float(rho), float(accuracy)


def decompress(source: Path, target: Path, lines: int | None = None) -> Path:
    opener = lzma.open if source.suffix == ".xz" else open
    with opener(source, "rb") as src, open(target, "wb") as dst:
        if lines is None:
            shutil.copyfileobj(src, dst, 1 << 22)
        else:
            for _, line in zip(range(lines), src):
                dst.write(line)
    return target


def build_word2vec_c(source: Path, tmp: Path) -> Path | None:
    """word2vec.c compiled with its makefile's flags, or None without a source or a compiler."""
    source = source / "word2vec.c" if source.is_dir() else source
    compiler = shutil.which("gcc") or shutil.which("cc")
    if not source.is_file() or compiler is None:
        return None
    binary = tmp / "word2vec"
    subprocess.run([compiler, str(source), "-o", str(binary), "-lm", "-pthread", "-O3", "-march=native", "-Wall",
                    "-funroll-loops", "-Wno-unused-result"], check=True, capture_output=True)
    return binary


def word2vec_c_command(binary: Path, corpus: Path, out: Path, mode: dict, epochs: int, workers: int, seed: int):
    del seed  # word2vec.c seeds its threads with their ids
    return [str(binary), "-train", str(corpus), "-output", str(out), "-size", "100", "-window", "5", "-sample", "1e-3",
            "-negative", str(mode["negative"]), "-hs", str(mode["hs"]), "-cbow", str(1 - mode["sg"]),
            "-min-count", "5", "-iter", str(epochs), "-threads", str(workers), "-binary", "1",
            "-alpha", "0.025"]  # gensim's and word2bert's default in every mode (word2vec.c's own CBOW default is 0.05)


def glove_commands(source: Path, tmp: Path, corpus: Path, workers: int):
    """Stanford GloVe's demo pipeline (built from ``source``), or None."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    src = source / "src"
    if compiler is None or not src.is_dir():
        return None
    build = tmp / "glove-build"
    build.mkdir(exist_ok=True)
    for name in ("vocab_count", "cooccur", "shuffle", "glove"):
        extra = [str(src / "common.c")] if (src / "common.c").exists() else []
        subprocess.run([compiler, str(src / f"{name}.c"), *extra, "-o", str(build / name), "-lm", "-pthread", "-O3",
                        "-march=native", "-funroll-loops", "-Wno-unused-result"], check=True, capture_output=True)
    work = tmp / "glove-run"
    return (f"cd {work} && {build}/vocab_count -min-count 5 -verbose 0 < {corpus} > vocab.txt && "
            f"{build}/cooccur -memory 4.0 -vocab-file vocab.txt -verbose 0 -window-size 10 < {corpus} > cooc.bin && "
            f"{build}/shuffle -memory 4.0 -verbose 0 < cooc.bin > cooc.shuf.bin && "
            f"{build}/glove -save-file vectors -threads {workers} -input-file cooc.shuf.bin -x-max 10 -iter 15 "
            f"-vector-size 100 -binary 0 -vocab-file vocab.txt -verbose 0"), work


def glove_script(corpus: Path, out: Path, workers: int, seed: int) -> str:
    return (f"from word2bert.static.cooccurrence import build_cooccurrence\nfrom word2bert.static.glove import GloVe\n"
            f"m = GloVe(vector_size=100, x_max=10, epochs=15, workers={workers}, seed={seed})\n"
            f"m.fit(build_cooccurrence({str(corpus)!r}, window=10, min_count=5, workers={workers}, "
            f"show_progress=False), show_progress=False)\n"
            f"m.wv.save_word2vec_format({str(out)!r}, binary=True)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    parser.add_argument("--repeats", type=int, default=3, help="seeds 1..REPEATS (see --seeds)")
    parser.add_argument("--seeds", help="comma-separated seeds to run now (default 1..REPEATS); the runs are added "
                        "to --store, so seeds and rows can be measured in separate, shorter invocations")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5, help="word vectors (the classifier trains 25)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--word2vec-c", type=Path, help="word2vec.c (or its directory): adds word2vec.c rows")
    parser.add_argument("--glove", type=Path, help="Stanford GloVe's source directory: adds the GloVe row")
    parser.add_argument("--first-word", action="store_true",
                        help="only measure the seconds to the first trained word per model and vector size")
    parser.add_argument("--dims", default="100,300", help="vector sizes of --first-word")
    parser.add_argument("--lines", type=int, help="use only the first LINES lines of each file (to try the script)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "end_to_end.md")
    parser.add_argument("--store", type=Path, default=HERE / "results" / "end_to_end.json",
                        help="JSON file the runs are added to; the table is made of all the runs it holds")
    parser.add_argument("--max-minutes", type=float, default=0,
                        help="start no (row, seed) that would end after this many minutes (0: no limit)")
    parser.add_argument("--again", action="store_true", help="measure (row, seed) pairs already in --store again")
    parser.add_argument("--render", action="store_true", help="only write the table of the runs in --store")
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(range(1, args.repeats + 1))
    if args.render:
        text = "\n".join(["# End to end: file in, vectors out", "", HOW, ""] + render(load_store(args.store))) + "\n"
        print(text)
        args.out.write_text(text)
        return
    rows = [r for r in args.rows.split(",") if r]
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose from {ROWS}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = decompress(args.data / "enmix.txt.xz", tmp / "enmix.txt", args.lines)
        train = decompress(args.data / "wn_lexname.train.txt.xz", tmp / "train.txt", args.lines)
        test = decompress(args.data / "wn_lexname.test.txt.xz", tmp / "test.txt", args.lines)
        small = tmp / "small.txt"
        small.write_text("".join(corpus.open().readlines()[:3000]))
        small_train = tmp / "small_train.txt"
        small_train.write_text("".join(train.open().readlines()[:3000]))
        env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if args.first_word:
            lines = first_word(args, tmp, env, corpus, train)
        else:
            lines = end_to_end(args, rows, tmp, env, corpus, train, test, small, small_train)
    load_after = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    header = [f"# End to end: {'first trained word' if args.first_word else 'file in, vectors out'}", ""]
    header += [] if args.first_word else [HOW, ""]
    header += [f"Last command: `python bench/end_to_end.py {' '.join(sys.argv[1:])}`", "",
              f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average "
              f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (`uptime`: {uptime}); "
              f"{time.strftime('%Y-%m-%d %H:%M')}.", ""]
    text = "\n".join(header + lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


def end_to_end(args, rows, tmp, env, corpus, train, test, small, small_train) -> list[str]:
    """Run the rows' jobs for ``args.seeds`` and add the runs to the store ``args.store`` (JSON: one record
    per tool, column and seed, so rows and seeds can be measured in separate invocations, each short
    enough to share the machine); returns the table of every row in the store."""
    warm_cache = tmp / "numba-warm"
    seeds = args.seeds
    store = load_store(args.store)
    log = []
    w2v_c = build_word2vec_c(args.word2vec_c, tmp) if args.word2vec_c else None
    if args.word2vec_c and w2v_c is None:
        log.append(f"word2vec.c rows skipped: no source at {args.word2vec_c} or no C compiler")
    jobs = []
    for row in rows:
        if row in W2V_MODES:
            mode = W2V_MODES[row]
            peers = {"gensim": lambda seed, out, mode=mode: (word2vec_script("gensim", corpus, out, mode, args.epochs,
                                                                             args.workers, seed), None)}
            if w2v_c is not None:
                peers["word2vec.c"] = lambda seed, out, mode=mode: (None, word2vec_c_command(
                    w2v_c, corpus, out, mode, args.epochs, args.workers, seed))
            jobs.append((row, peers, lambda seed, out, mode=mode: word2vec_script("word2bert", corpus, out, mode,
                                                                                  args.epochs, args.workers, seed),
                         "vectors"))
        elif row == "fasttext":
            jobs.append((row, {"fasttext": lambda seed, out: (fasttext_script("fasttext", corpus, out, args.epochs,
                                                                              args.workers, seed), None)},
                         lambda seed, out: fasttext_script("word2bert", corpus, out, args.epochs, args.workers,
                                                           seed), "vectors"))
        elif row == "classifier":
            jobs.append((row, {"fasttext": lambda seed, out: (classifier_script("fasttext", train, test, 25,
                                                                                args.workers, seed), None)},
                         lambda seed, out: classifier_script("word2bert", train, test, 25, args.workers, seed),
                         "p1"))
    if args.glove:
        made = glove_commands(args.glove, tmp, corpus, args.workers)
        if made is None:
            log.append(f"GloVe row skipped: no source at {args.glove} or no C compiler")
        else:
            command, work = made
            jobs.append(("glove", {"Stanford GloVe": lambda seed, out: (None, ["bash", "-c", command])},
                         lambda seed, out: glove_script(corpus, out, args.workers, seed), "glove"))
    invocation = {"command": "python bench/end_to_end.py " + " ".join(sys.argv[1:]), "started": time.strftime(
        "%Y-%m-%d %H:%M:%S"), "uptime_before": uptime()}
    started = time.perf_counter()
    measured = {(r["row"], r["seed"]) for r in store["runs"] if r["column"] == "warm"}
    minutes = store.setdefault("unit_minutes", {})  # how long the last (row, seed) of each row took
    warmed = set()
    for seed in seeds:  # every row's first seed before any row's second
        for row, peers, ours, kind in jobs:
            if (row, seed) in measured and not args.again:
                continue
            elapsed = (time.perf_counter() - started) / 60
            estimate = minutes.get(row, UNIT_MINUTES.get(row, 5.0))
            if args.max_minutes and elapsed + estimate > args.max_minutes:
                log.append(f"{row}, seed {seed}: not started ({elapsed:.1f} min spent, about {estimate:.1f} more "
                           f"needed, --max-minutes {args.max_minutes})")
                continue
            unit_started = time.perf_counter()
            # one warm cache per row: two rows' first runs write the same index file (one closure, other
            # captured constants), so a shared copy kept only the last row's entry and a warm run recompiled
            warm_env = dict(env, NUMBA_CACHE_DIR=str(warm_cache / row))
            for name, make in peers.items():
                wall, quality_, timings = measure_peer(make, seed, tmp, env, args, kind, row)
                store["runs"].append(dict(row=row, tool=name, column="peer", seed=seed, wall=wall, quality=quality_,
                                          timings=timings))
            out = tmp / f"ours-{row}-{seed}.bin"
            fresh = tmp / f"numba-fresh-{row}-{seed}"
            wall_first, output_first = run(ours(seed, out), dict(env, NUMBA_CACHE_DIR=str(fresh)), tmp)
            if row not in warmed:  # the warm cache: what the first run left (what a user's second run finds)
                shutil.copytree(fresh, warm_cache / row, dirs_exist_ok=True)
                warmed.add(row)
            shutil.rmtree(fresh, ignore_errors=True)
            store["runs"].append(dict(row=row, tool="word2bert", column="first", seed=seed, wall=wall_first,
                                      timings=parse(output_first).get("timings", {}),
                                      quality=score(kind, out, parse(output_first), args)))
            wall_warm, output = run(ours(seed, out), warm_env, tmp)
            store["runs"].append(dict(row=row, tool="word2bert", column="warm", seed=seed, wall=wall_warm,
                                      timings=parse(output).get("timings", {}),
                                      quality=score(kind, out, parse(output), args)))
            minutes[row] = (time.perf_counter() - unit_started) / 60
            save_store(args.store, store)  # a run cut short keeps what it measured
            print(f"measured {row}, seed {seed}: peer {wall:.1f} s, word2bert first run {wall_first:.1f} s, "
                  f"warm {wall_warm:.1f} s ({minutes[row]:.1f} min)", flush=True)
    invocation["uptime_after"] = uptime()
    invocation["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    store["invocations"].append(invocation)
    save_store(args.store, store)
    return render(store) + [f"- {line}" for line in log]


def median_timing(runs, *keys) -> float:
    """Median over runs of the sum of their ``timings[key]`` (nan when a run lacks one)."""
    return statistics.median(sum(r.get("timings", {}).get(k, float("nan")) for k in keys) for r in runs)


def seconds(value: float) -> str:
    return "–" if value != value else f"{value:.1f}"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def load_store(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"runs": [], "invocations": []}


def save_store(path: Path, store: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(store, indent=1) + "\n")


def render(store: dict) -> list[str]:
    """The table of every row in the store: per row and peer, medians of the wall times (the latest run of
    each tool, column and seed), the ratio peer / word2bert, word2bert's training-only seconds (warm),
    and quality averaged over the seeds on each side; then the invocations with their load."""
    latest: dict = {}
    for run_ in store["runs"]:
        latest[(run_["row"], run_["tool"], run_["column"], run_["seed"])] = run_
    table = ["| job | peer | peer (s) | word2bert first run (s) | word2bert warm (s) | ratio first run / warm | "
             "training only: peer / word2bert warm (s) | vocabulary pass: peer / word2bert warm (s) | "
             "quality peer / word2bert (warm) | seeds peer / ours |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    log = []
    order = [r for r in ROWS + ["glove"] if any(key[0] == r for key in latest)]
    for row in order:
        runs = {column: sorted((r for k, r in latest.items() if k[0] == row and k[1] == "word2bert" and
                                k[2] == column), key=lambda r: r["seed"]) for column in ("first", "warm")}
        peers = sorted({k[1] for k in latest if k[0] == row and k[2] == "peer"})
        first, warm = runs["first"], runs["warm"]
        if not first or not warm:
            continue
        ours_first = statistics.median(r["wall"] for r in first)
        ours_warm = statistics.median(r["wall"] for r in warm)
        training = statistics.median(r["timings"].get("training", float("nan")) for r in warm)
        for name in peers:
            peer_runs = sorted((r for k, r in latest.items() if k[0] == row and k[1] == name and k[2] == "peer"),
                               key=lambda r: r["seed"])
            peer = statistics.median(r["wall"] for r in peer_runs)
            peer_training = median_timing(peer_runs, "training")
            table.append(f"| {row} | {name} | {peer:.1f} | {ours_first:.1f} | {ours_warm:.1f} | "
                         f"**{peer / ours_first:.2f}x** / **{peer / ours_warm:.2f}x** | "
                         f"{seconds(peer_training)} / {training:.1f} | "
                         f"{seconds(median_timing(peer_runs, 'vocabulary'))} / "
                         f"{seconds(median_timing(warm, 'vocabulary', 'encode'))} | "
                         f"{mean_quality([r['quality'] for r in peer_runs])} / "
                         f"{mean_quality([r['quality'] for r in warm])} | "
                         f"{len(peer_runs)} / {len(warm)} |")
            log.append(f"{row}: {name} runs {[round(r['wall'], 1) for r in peer_runs]} s, quality "
                       f"{[tuple(round(q, 3) for q in r['quality']) for r in peer_runs]}")
        log.append(f"{row}: word2bert first runs {[round(r['wall'], 1) for r in first]} s (waited for compiling "
                   f"{[round(r['timings'].get('compile_wait', float('nan')), 1) for r in first]} s, first word at "
                   f"{[round(r['timings'].get('first_word', float('nan')), 1) for r in first]} s, training "
                   f"{[round(r['timings'].get('training', float('nan')), 1) for r in first]} s); warm runs "
                   f"{[round(r['wall'], 1) for r in warm]} s (training "
                   f"{[round(r['timings'].get('training', float('nan')), 1) for r in warm]} s), quality "
                   f"{[tuple(round(q, 3) for q in r['quality']) for r in warm]}")
    lines = table + ["", "Per-run log (seeds in order):", ""] + [f"- {line}" for line in log]
    lines += ["", "Invocations (each one held the benchmark lock; load from `uptime`):", ""]
    lines += [f"- `{i['command']}` {i['started']} to {i.get('finished', '?')}: before `{i['uptime_before']}`, "
              f"after `{i.get('uptime_after', '?')}`" for i in store["invocations"]]
    return lines


def measure_peer(make, seed, tmp, env, args, kind, row):
    """Wall seconds and quality of one peer run."""
    out = tmp / f"peer-{row}-{seed}.bin"
    script, command = make(seed, out)
    if script is not None:
        wall, output = run(script, env, tmp)
        parsed = parse(output)
    else:
        if kind == "glove":
            (tmp / "glove-run").mkdir(exist_ok=True)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=tmp)
        wall = time.perf_counter() - start
        parsed = {}
        if kind == "glove":
            out = glove_text_to_binary(tmp / "glove-run" / "vectors.txt", out)
    return wall, score(kind, out, parsed, args), parsed.get("timings", {})


def glove_text_to_binary(text: Path, out: Path) -> Path:
    words, vectors = [], []
    for line in text.open(encoding="utf-8"):
        parts = line.rstrip("\n").split(" ")
        words.append(parts[0])
        vectors.append(np.asarray(parts[1:], np.float32))
    namespace: dict = {}
    exec(WRITE_BINARY, namespace)
    namespace["write_binary"](out, words, np.stack(vectors))
    return out


def score(kind, out, parsed, args):
    if kind == "p1":
        return (parsed["p1"],)
    return quality(out, args.data / "wordsim353.tsv", args.data / "questions-words.txt")


def mean_quality(qualities) -> str:
    means = np.mean(np.asarray(qualities, np.float64), axis=0)
    if len(means) == 1:
        return f"P@1 {means[0]:.3f}"
    return f"rho {means[0]:.3f}, analogy {means[1]:.3f}"


def first_word(args, tmp, env, corpus, train) -> list[str]:
    """Seconds from the call to the first trained word, first run (empty cache) and second run."""
    models = {
        "word2vec sg-ns": lambda dim: f"from word2bert import Word2Vec\nm = Word2Vec(corpus_file={str(corpus)!r}, "
                                      f"vector_size={dim}, sg=1, epochs=1, workers={args.workers}, progress=False)",
        "word2vec cbow-ns": lambda dim: f"from word2bert import Word2Vec\nm = Word2Vec(corpus_file={str(corpus)!r}, "
                                        f"vector_size={dim}, sg=0, epochs=1, workers={args.workers}, progress=False)",
        "fastText sg": lambda dim: f"from word2bert import FastText\nm = FastText(corpus_file={str(corpus)!r}, "
                                   f"vector_size={dim}, sg=1, epochs=1, workers={args.workers}, progress=False)",
        "classifier": lambda dim: f"from word2bert import FastTextClassifier\nm = FastTextClassifier({str(train)!r}, "
                                  f"dim={dim}, epoch=1, word_ngrams=2, workers={args.workers}, progress=False)",
        "Doc2Vec PV-DBOW": lambda dim: f"from word2bert import Doc2Vec\nfrom word2bert.static.doc2vec import "
                                       f"TaggedLineDocument\nm = Doc2Vec(TaggedLineDocument({str(train)!r}), dm=0, "
                                       f"vector_size={dim}, epochs=1, workers={args.workers}, progress=False)",
    }
    repeats = len(args.seeds)
    table = ["| model | vector size | first run: to first word (s) | of which waiting for the helper (s) | "
             "second run: to first word (s) | first minus second (s) | process wall first / second (s) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, make in models.items():
        for dim in [int(d) for d in args.dims.split(",")]:
            script = "import json\n" + make(dim) + "\nprint('TIMINGS ' + json.dumps(m.timings))\n"
            firsts, seconds = [], []  # per repeat: (timings, process wall) of the first and the second run
            for repeat in range(repeats):
                cache = tmp / f"numba-{name.replace(' ', '-')}-{dim}-{repeat}"
                for runs in (firsts, seconds):
                    wall, output = run(script, dict(env, NUMBA_CACHE_DIR=str(cache)), tmp)
                    runs.append((parse(output)["timings"], wall))
                shutil.rmtree(cache, ignore_errors=True)
            to_first_word = statistics.median(timings["first_word"] for timings, _ in firsts)
            helper_wait = statistics.median(timings["compile_wait"] for timings, _ in firsts)
            second_word = statistics.median(timings["first_word"] for timings, _ in seconds)
            extras = sorted(a["first_word"] - b["first_word"] for (a, _), (b, _) in zip(firsts, seconds))
            spread = f" ({extras[0]:.1f}-{extras[-1]:.1f})" if repeats > 1 else ""
            walls = [statistics.median(wall for _, wall in runs) for runs in (firsts, seconds)]
            table.append(f"| {name} | {dim} | {to_first_word:.1f} | {helper_wait:.1f} | {second_word:.1f} | "
                         f"{statistics.median(extras):.1f}{spread} | {walls[0]:.1f} / {walls[1]:.1f} |")
            print(table[-1], flush=True)  # (kept in the log if the run is cut short)
    if repeats > 1:
        table += ["", f"Medians of {repeats} pairs of runs (each pair: a new empty numba cache, then the same cache "
                  "again); in brackets the range of the first-minus-second column."]
    return table


if __name__ == "__main__":
    main()
