"""word2bert's Doc2Vec against gensim's, same documents, same settings, same run.

    python bench/doc2vec_vs_gensim.py [--data DIR] [--repeats 3] [--workers 2] [--epochs 10] [--modes dbow,dm]

Documents: the glosses of ../shared/data/wn_lexname.train.txt.xz (94k short documents, tag =
line number); the labels are used only for the quality check. Settings for both: vector_size
100, window 5, negative 5, sample 1e-3, min_count 2, alpha 0.025 -> 0.0001, ``--epochs``,
``dm_mean=1`` for PV-DM, ``--workers`` threads. Speed: docs/s = documents x epochs / training
seconds (``train`` only; vocabulary building is timed separately), median of ``--repeats`` runs,
the tools alternating. Quality: vectors are inferred for the test glosses (gensim:
``infer_vector`` per document; word2bert: ``infer_vectors`` on the whole list, same epochs and
alpha), a logistic-regression classifier (scikit-learn, the same for both) is fitted on the
trained vectors of the training documents and its accuracy on the inferred test vectors is
reported. Writes bench/results/doc2vec_vs_gensim.md.
"""

from __future__ import annotations

import argparse
import lzma
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
SETTINGS = dict(vector_size=100, window=5, negative=5, sample=1e-3, min_count=2, alpha=0.025, min_alpha=0.0001)


def read_split(path: Path):
    labels, documents = [], []
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            tokens = line.split()
            labels.append(tokens[0])
            documents.append([t for t in tokens[1:]])
    return labels, documents


def classify(train_vectors, train_labels, test_vectors, test_labels) -> float:
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(max_iter=300)
    classifier.fit(train_vectors, train_labels)
    return float(np.mean(classifier.predict(test_vectors) == np.asarray(test_labels)))


def run_gensim(documents, test_documents, dm, epochs, workers, seed):
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument

    tagged = [TaggedDocument(words, [i]) for i, words in enumerate(documents)]
    model = Doc2Vec(dm=dm, dm_mean=1, epochs=epochs, workers=workers, seed=seed, **SETTINGS)
    t0 = time.perf_counter()
    model.build_vocab(tagged)
    t1 = time.perf_counter()
    model.train(tagged, total_examples=len(tagged), epochs=epochs)
    t2 = time.perf_counter()
    trained = np.vstack([model.dv[i] for i in range(len(documents))])
    inferred = np.vstack([model.infer_vector(words) for words in test_documents])
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, trained, inferred


def run_word2bert(documents, test_documents, dm, epochs, workers, seed):
    from word2bert.static.doc2vec import Doc2Vec, TaggedDocument

    tagged = [TaggedDocument(words, [i]) for i, words in enumerate(documents)]
    model = Doc2Vec(dm=dm, dm_mean=1, epochs=epochs, workers=workers, seed=seed, progress=False, **SETTINGS)
    t0 = time.perf_counter()
    model.build_vocab(tagged)
    t1 = time.perf_counter()
    model.train(tagged)
    t2 = time.perf_counter()
    trained = model.dv.vectors[: len(documents)]
    inferred = model.infer_vectors(test_documents)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, trained, inferred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--modes", default="dbow,dm")
    args = parser.parse_args()
    import logging

    logging.getLogger("gensim").setLevel(logging.WARNING)
    train_labels, documents = read_split(args.data / "wn_lexname.train.txt.xz")
    test_labels, test_documents = read_split(args.data / "wn_lexname.test.txt.xz")
    from word2bert.static.doc2vec import Doc2Vec, TaggedDocument

    for dm in (0, 1):  # numba compiles the kernels per vector size: warm up with the benchmark's, outside the timings
        Doc2Vec([TaggedDocument(["warm", "up"], [0])] * 5, min_count=1, vector_size=SETTINGS["vector_size"], dm=dm,
                epochs=1, workers=1, progress=False).infer_vectors([["warm"]])
    table = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        dm = {"dbow": 0, "dm": 1}[mode]
        runs = {"gensim": [], "word2bert": []}
        for repeat in range(args.repeats):
            for name, runner in (("gensim", run_gensim), ("word2bert", run_word2bert)):
                vocab_s, train_s, infer_s, trained, inferred = runner(documents, test_documents, dm, args.epochs,
                                                                      args.workers, repeat + 1)
                accuracy = classify(trained, train_labels, inferred, test_labels) if repeat == 0 else float("nan")
                runs[name].append((vocab_s, train_s, infer_s, accuracy))
                print(f"{mode} run {repeat}: {name:9s} vocab {vocab_s:.1f}s train {train_s:.1f}s "
                      f"infer {infer_s:.1f}s accuracy {accuracy:.4f}", flush=True)
        table.append((mode, runs))

    lines = [
        "# Doc2Vec: word2bert vs gensim",
        "",
        f"wn_lexname glosses ({len(documents):,} training documents, {len(test_documents):,} test documents), "
        f"vector_size 100, window 5, negative 5, sample 1e-3, min_count 2, {args.epochs} epochs, "
        f"{args.workers} threads; medians of {args.repeats} run(s) (accuracy from the first run); "
        f"{platform.machine()}, {os.cpu_count()} cores.",
        "",
        "| mode | tool | train (s) | docs/s | infer test set (s) | LR accuracy on inferred test vectors |",
        "|---|---|---|---|---|---|",
    ]
    for mode, runs in table:
        rates = {}
        for name in ("gensim", "word2bert"):
            train_s = statistics.median(r[1] for r in runs[name])
            infer_s = statistics.median(r[2] for r in runs[name])
            rates[name] = len(documents) * args.epochs / train_s
            lines.append(f"| {mode} | {name} | {train_s:.1f} | {rates[name]:,.0f} | {infer_s:.1f} | "
                         f"{runs[name][0][3]:.4f} |")
        lines.append(f"| {mode} | ratio | | **{rates['word2bert'] / rates['gensim']:.2f}x** | | "
                     f"{runs['word2bert'][0][3] - runs['gensim'][0][3]:+.4f} |")
    lines += ["", f"Command: `python bench/doc2vec_vs_gensim.py --repeats {args.repeats} --workers {args.workers} "
                  f"--epochs {args.epochs}`"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = HERE / "results" / "doc2vec_vs_gensim.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
