"""word2bert's Phrases vs gensim's Phrases on enmix: learning (counting + scoring) and applying.

Same corpus (the sentences of ../shared/data/enmix.txt.xz, read once into memory, one document per
line), same settings (min_count 5, threshold 10, gensim's default scoring; with and without gensim's
English connector words), one pass. Timed: learning the model (``Phrases(sentences, ...)`` and
``export_phrases()``) and phrasing the whole corpus (``list(model[sentences])`` for both; gensim's
``FrozenPhrases``, which is its faster way to apply). The outputs are compared token by token.
Median of ``--repeats`` runs; single-threaded on both sides (neither parallelises this).

    flock /tmp/w2b-bench.lock python bench/phrases_vs_gensim.py [--repeats 3] [--max-words 0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-words", type=int, default=0, help="use only this many words (0: all)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "phrases_vs_gensim.md"))
    args = parser.parse_args(argv)
    from gensim.models.phrases import ENGLISH_CONNECTOR_WORDS
    from gensim.models.phrases import Phrases as GensimPhrases

    from word2bert.corpus.reader import iter_sentences
    from word2bert.fileio import atomic_write
    from word2bert.static.phrases import Phrases

    load_before = os.getloadavg()
    sentences, words = [], 0
    for sentence in iter_sentences(Path(args.data) / "enmix.txt.xz"):
        sentences.append(sentence)
        words += len(sentence)
        if args.max_words and words >= args.max_words:
            break
    list(Phrases(sentences[:200], min_count=1, threshold=1.0)[sentences[:200]])  # load the compiled kernel once
    rows = []
    for label, connectors in (("plain", frozenset()), ("English connector words", ENGLISH_CONNECTOR_WORDS)):
        times = {"w2b learn": [], "w2b apply": [], "gensim learn": [], "gensim apply": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            ours = Phrases(sentences, min_count=5, threshold=10.0, connector_words=connectors)
            exported = ours.export_phrases()
            times["w2b learn"].append(time.perf_counter() - start)
            start = time.perf_counter()
            our_corpus = list(ours[sentences])
            times["w2b apply"].append(time.perf_counter() - start)
            start = time.perf_counter()
            theirs = GensimPhrases(sentences, min_count=5, threshold=10.0, connector_words=connectors)
            frozen = theirs.freeze()
            times["gensim learn"].append(time.perf_counter() - start)
            start = time.perf_counter()
            their_corpus = list(frozen[sentences])
            times["gensim apply"].append(time.perf_counter() - start)
        same = our_corpus == their_corpus and set(exported) == set(frozen.phrasegrams)
        medians = {k: statistics.median(v) for k, v in times.items()}
        rows.append((label, medians, len(exported), same))
        print(label, medians, len(exported), same, flush=True)
    load_after = os.getloadavg()
    lines = ["# Phrases: word2bert vs gensim 4.4 on enmix", "",
             f"Command: `python bench/phrases_vs_gensim.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             f"{words:,} words in {len(sentences):,} sentences; min_count 5, threshold 10, default scoring, one pass; "
             f"median of {args.repeats} runs; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
             f"`uptime`: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", "",
             "| connector words | gensim learn (s) | word2bert learn (s) | ratio | gensim apply (s) | "
             "word2bert apply (s) | ratio | phrases | identical output |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for label, m, count, same in rows:
        lines.append(f"| {label} | {m['gensim learn']:.1f} | {m['w2b learn']:.1f} | "
                     f"**{m['gensim learn'] / m['w2b learn']:.1f}x** | {m['gensim apply']:.1f} | {m['w2b apply']:.1f} | "
                     f"**{m['gensim apply'] / m['w2b apply']:.1f}x** | {count:,} | {'yes' if same else 'NO'} |")
    lines += ["", "Learn: counting unigrams and bigram candidates and scoring them (gensim: `Phrases(...)` + "
              "`freeze()`; word2bert: `Phrases(...)` + `export_phrases()`). Apply: phrasing every sentence of "
              "the corpus (gensim's `FrozenPhrases`; word2bert's compiled kernel).", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
