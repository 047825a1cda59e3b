"""word2bert's fastText classifier against Facebook's fasttext package, same data, same settings, same run.

    python bench/classifier_vs_facebook.py [--data DIR] [--repeats 3] [--workers 2] [--loss softmax]

Data: ../shared/data/wn_lexname.{train,test}.txt.xz (45 WordNet lexicographer classes),
decompressed once into a temporary directory. Settings (the issue's): lr 0.5, 25 epochs,
wordNgrams 2, dim 100, bucket 2,000,000, ``--workers`` threads, everything else at each
tool's default. Time is the wall time of the whole training call for both (reading the file,
dictionary, initialisation, training), the median of ``--repeats`` runs alternating the two
tools; lines/s = training lines x epochs / seconds. P@1 and R@1 come from each tool's own
``test`` on the test file. word2bert is also run with ``shuffle=False`` (fastText's reading
order: each thread reads on from its own part of the file) once, to show what the per-epoch
shuffle contributes. Writes bench/results/classifier_vs_facebook.md.
"""

from __future__ import annotations

import argparse
import lzma
import platform
import statistics
from importlib import metadata
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
SETTINGS = dict(lr=0.5, epoch=25, word_ngrams=2, dim=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loss", default="softmax")
    parser.add_argument("--epoch", type=int, default=SETTINGS["epoch"])
    args = parser.parse_args()

    import fasttext

    from word2bert.static.classifier import FastTextClassifier

    settings = dict(SETTINGS, epoch=args.epoch)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for split in ("train", "test"):
            paths[split] = Path(tmp) / f"wn_lexname.{split}.txt"
            paths[split].write_bytes(lzma.open(args.data / f"wn_lexname.{split}.txt.xz").read())
        n_lines = sum(1 for _ in open(paths["train"], encoding="utf-8"))
        # numba compiles the kernels per vector size: warm up with the benchmark's, outside the timings
        FastTextClassifier(str(paths["test"]), epoch=1, dim=settings["dim"], word_ngrams=2, workers=1, progress=False)

        results = {"word2bert": [], "fasttext": []}
        for run in range(args.repeats):
            start = time.perf_counter()
            ours = FastTextClassifier(str(paths["train"]), loss=args.loss, workers=args.workers, seed=run + 1,
                                      progress=False, **settings)
            seconds = time.perf_counter() - start
            _, precision, recall = ours.test(str(paths["test"]))
            results["word2bert"].append((seconds, precision, recall))
            print(f"run {run}: word2bert {seconds:.1f}s P@1 {precision:.4f}", flush=True)
            del ours
            start = time.perf_counter()
            theirs = fasttext.train_supervised(str(paths["train"]), lr=settings["lr"], epoch=settings["epoch"],
                                               wordNgrams=settings["word_ngrams"], dim=settings["dim"],
                                               loss=args.loss, thread=args.workers, verbose=0, seed=run + 1)
            seconds = time.perf_counter() - start
            _, precision, recall = theirs.test(str(paths["test"]))
            results["fasttext"].append((seconds, precision, recall))
            print(f"run {run}: fasttext  {seconds:.1f}s P@1 {precision:.4f}", flush=True)
            del theirs
        start = time.perf_counter()
        ordered = FastTextClassifier(str(paths["train"]), loss=args.loss, workers=args.workers, shuffle=False,
                                     progress=False, **settings)
        ordered_seconds = time.perf_counter() - start
        _, ordered_precision, _ = ordered.test(str(paths["test"]))

    def med(name, i):
        return statistics.median(r[i] for r in results[name])

    rate = {name: n_lines * settings["epoch"] / med(name, 0) for name in results}
    lines = [
        f"# fastText classifier: word2bert vs the fasttext package ({metadata.version('fasttext')})",
        "",
        f"wn_lexname (train {n_lines} lines, 45 labels), lr {settings['lr']}, {settings['epoch']} epochs, "
        f"wordNgrams {settings['word_ngrams']}, dim {settings['dim']}, loss {args.loss}, {args.workers} threads; "
        f"medians of {args.repeats} runs; machine: {platform.machine()} {platform.processor() or ''}, "
        f"{__import__('os').cpu_count()} cores.",
        "",
        "| tool | train wall (s) | lines/s | P@1 | R@1 |",
        "|---|---|---|---|---|",
    ]
    for name in ("fasttext", "word2bert"):
        lines.append(f"| {name} | {med(name, 0):.1f} | {rate[name]:,.0f} | {med(name, 1):.4f} | {med(name, 2):.4f} |")
    lines += [
        "",
        f"speed ratio word2bert / fasttext: **{rate['word2bert'] / rate['fasttext']:.2f}x**; "
        f"P@1 difference: {med('word2bert', 1) - med('fasttext', 1):+.4f}",
        "",
        f"word2bert with shuffle=False (fastText's reading order, {args.workers} threads each on its own "
        f"part of the file, 1 run): {ordered_seconds:.1f}s, P@1 {ordered_precision:.4f}. The training "
        "file is sorted by label, so file-order SGD keeps forgetting earlier labels; word2bert shuffles "
        "the lines every epoch by default.",
        "",
        "Per-run (seconds, P@1): " + "; ".join(
            f"{name}: " + ", ".join(f"({s:.1f}, {p:.4f})" for s, p, _ in results[name]) for name in results),
        "",
        "Command: `python bench/classifier_vs_facebook.py " + f"--repeats {args.repeats} --workers {args.workers}`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = HERE / "results" / "classifier_vs_facebook.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
