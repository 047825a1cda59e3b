"""How much of word2vec's quality gap to gensim's ``corpus_file`` mode is that mode's learning-rate schedule?

    python bench/word2vec_lr_schedule.py [--modes cbow-ns,sg-ns] [--seeds 1,2,3] [--workers 2] [--no-gensim]

word2vec.c, gensim from an iterable and word2bert decay the learning rate linearly over the whole run,
``alpha(p) = alpha - (alpha - min_alpha) * p`` with ``p`` the fraction of all epochs' words trained.
gensim's ``corpus_file`` mode with ``w`` workers gives each worker ``1/w`` of the file but measures its
progress against the whole corpus (``word2vec_corpusfile.pyx``: ``get_next_alpha`` divides the worker's
own word count by all the corpus's words), so epoch ``e`` of ``E`` runs ``p`` from ``e / E`` to only
``(e + 1/w) / E``: a sawtooth that keeps the rate higher and ends at ``alpha / E`` for ``w = 2``.

For each mode and seed this trains, on enmix with the end-to-end benchmark's settings (dim 100,
window 5, sample 1e-3, min_count 5, 5 epochs):

* word2bert with its linear schedule (``Word2Vec(corpus_file=...)``);
* word2bert with the ``corpus_file`` sawtooth, epoch by epoch through
  ``train(epochs=1, start_alpha=alpha(e / E), end_alpha=alpha((e + 1/w) / E))``;
* gensim's ``Word2Vec(corpus_file=...)`` (unless ``--no-gensim``),

and scores all of them with the same evaluator as ``bench/end_to_end.py`` (gensim's: WordSim353
Spearman rho, Google analogies over the 30,000 most frequent words). Results:
``bench/results/word2vec_lr_schedule.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from end_to_end import DATA, REPO, W2V, W2V_MODES, decompress, quality, uptime  # noqa: E402

EPOCHS = 5


def word2bert_script(corpus: Path, out: Path, mode: dict, seed: int, workers: int, schedule: str) -> str:
    options = dict(W2V, **mode, workers=workers, seed=seed, epochs=EPOCHS, progress=False)
    lines = ["from word2bert import Word2Vec"]
    if schedule == "linear":
        lines.append(f"m = Word2Vec(corpus_file={str(corpus)!r}, **{options!r})")
    else:
        lines += [f"m = Word2Vec(**{options!r})",
                  f"m.build_vocab(corpus_file={str(corpus)!r})",
                  "rate = lambda p: m.alpha - (m.alpha - m.min_alpha) * p",
                  f"for e in range({EPOCHS}):",
                  f"    m.train(corpus_file={str(corpus)!r}, epochs=1, total_words=m.corpus_total_words,",
                  f"            start_alpha=rate(e / {EPOCHS}), end_alpha=rate((e + 1 / {workers}) / {EPOCHS}))"]
    lines.append(f"m.wv.save_word2vec_format({str(out)!r}, binary=True)")
    return "\n".join(lines) + "\n"


def gensim_script(corpus: Path, out: Path, mode: dict, seed: int, workers: int) -> str:
    options = dict(W2V, **mode, workers=workers, seed=seed, epochs=EPOCHS)
    return (f"from gensim.models import Word2Vec\n"
            f"m = Word2Vec(corpus_file={str(corpus)!r}, **{options!r})\n"
            f"m.wv.save_word2vec_format({str(out)!r}, binary=True)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--modes", default="cbow-ns,sg-ns")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-gensim", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "word2vec_lr_schedule.md")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in W2V_MODES]
    if unknown:
        raise SystemExit(f"unknown mode(s) {unknown}: choose from {sorted(W2V_MODES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    pairs, questions = args.data / "wordsim353.tsv", args.data / "questions-words.txt"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    before = uptime()
    # (label, how the vectors are trained): "linear" / "sawtooth" are word2bert's schedules, "gensim" the peer
    kinds = [("word2bert, linear", "linear"),
             (f"word2bert, corpus_file sawtooth ({args.workers} workers)", "sawtooth")]
    if not args.no_gensim:
        kinds.append(("gensim corpus_file", "gensim"))
    scores: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = decompress(args.data / "enmix.txt.xz", tmp / "enmix.txt")
        for mode in modes:
            for seed in seeds:
                for kind, training in kinds:
                    out = tmp / "vectors.bin"
                    if training == "gensim":
                        script = gensim_script(corpus, out, W2V_MODES[mode], seed, args.workers)
                    else:
                        script = word2bert_script(corpus, out, W2V_MODES[mode], seed, args.workers, training)
                    start = time.perf_counter()
                    subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp, check=True)
                    rho, analogy = quality(out, pairs, questions)
                    scores.setdefault((mode, kind), []).append((rho, analogy))
                    print(f"{mode} seed {seed} {kind}: rho {rho:.4f} analogy {analogy:.4f} "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
    lines = ["# word2vec: the learning-rate schedule of gensim's corpus_file mode\n",
             f"Command: `python bench/word2vec_lr_schedule.py --modes {args.modes} --seeds {args.seeds} "
             f"--workers {args.workers}{' --no-gensim' if args.no_gensim else ''}`; enmix, dim 100, window 5, "
             f"sample 1e-3, min_count 5, {EPOCHS} epochs; quality as in end_to_end.py, mean over seeds "
             f"{args.seeds} (per seed in brackets).\n",
             f"Load before: `{before}`; after: `{uptime()}`.\n",
             "| mode | training | WordSim353 rho | analogy |", "|---|---|---|---|"]
    for mode in modes:
        for kind, _ in kinds:
            runs = scores[(mode, kind)]
            rho = statistics.mean(r for r, _ in runs)
            analogy = statistics.mean(a for _, a in runs)
            lines.append(f"| {mode} | {kind} | {rho:.3f} ({', '.join(f'{r:.3f}' for r, _ in runs)}) | "
                         f"{analogy:.3f} ({', '.join(f'{a:.3f}' for _, a in runs)}) |")
    text = "\n".join(lines) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
