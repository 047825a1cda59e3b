"""Peak memory of Word2Vec training against corpus size: it must not grow beyond the encoded corpus.

    python bench/word2vec_memory.py [--corpus PATH] [--copies 1,2,4] [--mode sg-ns]

The corpus (default ../shared/data/enmix.txt.xz) is written 1, 2 and 4 times over into one
file, with ``min_count`` 5 times the number of copies, so the vocabulary stays the same and
only the corpus length grows. Each size is
trained in a fresh process (vocabulary, encoding into a memory-mapped cache with
``cache_dir``, one epoch on 2 threads) and the process's peak resident set (``ru_maxrss``) is
read at the end. Mapped pages of the encoded corpus count in the resident set, so the figure
to watch is the peak minus the encoded corpus (``tokens.int32`` + ``offsets``): it must stay
flat. Writes bench/results/word2vec_memory.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
MODES = {"sg-ns": dict(sg=1, hs=0, negative=5), "cbow-ns": dict(sg=0, hs=0, negative=5),
         "sg-hs": dict(sg=1, hs=1, negative=0), "cbow-hs": dict(sg=0, hs=1, negative=0)}


def child(corpus: str, cache: str, mode: str, min_count: str) -> None:
    """Train once and print one JSON line of measurements (runs in a fresh process)."""
    from word2bert.static.word2vec import Word2Vec

    model = Word2Vec(vector_size=100, window=5, min_count=int(min_count), sample=1e-3, epochs=1, workers=2, progress=False,
                     cache_dir=cache, **MODES[mode])
    model.build_vocab(corpus_file=corpus)
    encoded = model.encode(corpus_file=corpus)
    model.train(encoded)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB
    matrices = held_bytes(model)
    encoded_bytes = os.path.getsize(Path(cache) / "tokens.int32") + encoded.offsets.nbytes
    print(json.dumps({"tokens": len(encoded), "peak": peak, "encoded": encoded_bytes, "matrices": matrices,
                      "words": len(model.vocab)}))


def held_bytes(model) -> int:
    """Bytes of the weight matrices as held, padding included: the word vectors' rows on whole cache
    lines (``native.whole_lines``) and the output matrix with the threads' private rows."""
    from word2bert.static.native import whole_lines

    inputs = whole_lines(model.input_vectors)
    held = (inputs if inputs is not None else model.input_vectors).nbytes
    hot_rows = getattr(model, "_hot_rows", None)
    for output in (model.output_vectors_ns, model.output_vectors_hs):
        if output is None:
            continue
        held += hot_rows.matrix.nbytes if hot_rows is not None and output is hot_rows.shared else output.nbytes
    return held


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DATA / "enmix.txt.xz")
    parser.add_argument("--copies", default="1,2,4")
    parser.add_argument("--mode", choices=sorted(MODES), default="sg-ns")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "word2vec_memory.md")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if not args.corpus.exists():
        parser.error(f"corpus not found: {args.corpus}")
    from word2bert.fileio import atomic_write, open_binary

    with open_binary(args.corpus) as source:
        text = source.read()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for copies in (int(c) for c in args.copies.split(",")):
            corpus = Path(tmp) / f"corpus{copies}.txt"
            with open(corpus, "wb") as out:
                for _ in range(copies):
                    out.write(text)
            cache = Path(tmp) / f"cache{copies}"
            result = subprocess.run([sys.executable, __file__, "--mode", args.mode, "--child", str(corpus),
                                     str(cache), args.mode, str(5 * copies)], capture_output=True, text=True,
                                    check=True)
            row = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append((copies, row))
            print(f"{copies}x: {row['tokens']:,} tokens, {row['words']:,} words, peak {row['peak'] / 2**20:.0f} MiB, "
                  f"encoded {row['encoded'] / 2**20:.0f} MiB", file=sys.stderr, flush=True)
            corpus.unlink()
    table = ("| corpus | min_count | tokens | words | peak RSS | encoded corpus (mapped) | weight matrices "
             "| peak - encoded corpus |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
    table += "\n".join(f"| {copies}x {args.corpus.name} | {5 * copies} | {r['tokens']:,} | {r['words']:,} | "
                       f"{r['peak'] / 2**20:.0f} MiB | {r['encoded'] / 2**20:.0f} MiB | {r['matrices'] / 2**20:.0f} MiB | "
                       f"**{(r['peak'] - r['encoded']) / 2**20:.0f} MiB** |" for copies, r in rows) + "\n"
    notes = (f"\nWord2Vec {args.mode}, dim 100, 1 epoch, 2 threads, encoded into a memory-mapped "
             f"cache (`cache_dir`); a fresh process per size. Python {platform.python_version()}, "
             f"{platform.machine()}. Command: `python bench/word2vec_memory.py --copies {args.copies} "
             f"--mode {args.mode}`\n")
    print(table + notes)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.output, "w", encoding="utf-8") as out:
        out.write("# Word2Vec training memory against corpus size\n\n" + table + notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
