"""`word2bert demo` and `word2bert download`: the built-in default job and corpus downloads."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from word2bert import datasets
from word2bert.commands import check_output_file, save_or_rescue

DEMO_QUERIES = ["file", "thread", "socket", "integer", "dictionary", "error"]
DEMO_ANALOGIES = [("read", "reading", "write"), ("file", "files", "directory"), ("int", "integer", "str")]

#: Word forms the demo's own analogy questions pair up: ``file : files :: thread : threads``.
FORMS = (("gram-s (file : files)", "s"), ("gram-ing (read : reading)", "ing"), ("gram-ed (open : opened)", "ed"))


def register(commands, train_commands):
    from word2bert.cli import HelpfulFormatter

    cache = "$WORD2BERT_HOME or ~/.cache/word2bert"
    demo = commands.add_parser(
        "demo", help="train word2vec on Python's own documentation and show what it learned",
        formatter_class=HelpfulFormatter,
        description="Builds a corpus from the docstrings and comments of the Python standard library (no "
                    f"network, no files needed; written once to {cache}/python-docs.txt), trains skip-gram "
                    "word2vec on it, and prints nearest neighbours, analogies and two scores on the corpus's "
                    "own word forms (is 'files' among the neighbours of 'file'? file : files :: thread : "
                    "threads?) beside those of random vectors. With one worker (the default) every run "
                    "prints the same numbers.")
    demo.add_argument("--epochs", type=int, default=5, help="passes over the corpus")
    demo.add_argument("--vector-size", type=int, default=100, help="dimensionality of the vectors")
    demo.add_argument("--workers", type=int, default=1,
                      help="training threads (more are faster, but the results then vary a little from run to run)")
    demo.add_argument("--seed", type=int, default=1, help="random seed")
    demo.add_argument("--output", "-o", metavar="OUT", help="also save the vectors here (format from the extension)")
    demo.set_defaults(func=run_demo)

    download = commands.add_parser(
        "download", help="download a standard corpus (needs the network)", formatter_class=HelpfulFormatter,
        description=f"Download a corpus into {cache} (or --dir) and print its path; a complete file already "
                    "there is reused.",
        epilog="example:\n  word2bert download text8 && word2bert train word2vec ~/.cache/word2bert/text8 -o text8.bin")
    download.add_argument("name", choices=sorted(datasets.CORPORA), help="the corpus")
    download.add_argument("--dir", help=f"target directory (default {cache})")
    download.add_argument("--url", help="download from this address instead (a mirror)")
    download.set_defaults(func=run_download)


def word_form_pairs(wv, top: int) -> dict[str, list[tuple[str, str]]]:
    """For each suffix in :data:`FORMS`, the pairs ``(w, w + suffix)`` with both words among the
    ``top`` most frequent and ``len(w) >= 4`` (``file``/``files``, ``read``/``reading``, ``open``/``opened``)."""
    words = wv.index_to_key[:top]
    known = set(words)
    return {section: [(w, w + suffix) for w in words if len(w) >= 4 and w + suffix in known]
            for section, suffix in FORMS}


def form_neighbour_recall(wv, pairs, top: int, k: int = 10) -> float:
    """Share of pairs ``(a, b)`` (both ways) whose other word is among the ``k`` nearest
    neighbours (cosine, among the ``top`` most frequent words) of the one."""
    normed = wv.get_normed_vectors()[:top]
    left = np.array([wv.key_to_index[a] for a, b in pairs] + [wv.key_to_index[b] for a, b in pairs])
    right = np.concatenate([left[len(pairs):], left[:len(pairs)]])
    similarity = normed[left] @ normed.T
    similarity[np.arange(len(left)), left] = -np.inf
    rank = (similarity > similarity[np.arange(len(left)), right][:, None]).sum(axis=1)
    return float(np.mean(rank < k)) if len(left) else 0.0


def corpus_analogies(wv, path, top: int = 3000, per_form: int = 300, seed: int = 0) -> Path:
    """Write analogy questions ``a : a' :: b : b'`` made of :func:`word_form_pairs` to ``path``:
    ``per_form`` per suffix, drawn at random (``seed``) from the ordered pairs of two different
    pairs, in the Google analogy set's layout."""
    from word2bert.fileio import atomic_write

    rng = np.random.default_rng(seed)
    with atomic_write(path, "w", encoding="utf-8") as out:
        for section, pairs in word_form_pairs(wv, top).items():
            questions = [(a, a2, b, b2) for a, a2 in pairs for b, b2 in pairs if a != b]
            if not questions:
                continue
            chosen = np.sort(rng.choice(len(questions), size=min(per_form, len(questions)), replace=False))
            out.write(f": {section}\n")
            out.writelines(" ".join(questions[i]) + "\n" for i in chosen)
    return Path(path)


def run_demo(args) -> int:
    from word2bert.evaluate import evaluate_word_analogies
    from word2bert.static.word2vec import Word2Vec
    from word2bert.vectors import KeyedVectors

    if args.output:
        check_output_file(args.output)
    corpus = datasets.demo_corpus()
    print(f"corpus: {corpus} (Python standard-library docstrings and comments; built once, kept in the cache)")
    start = time.perf_counter()
    model = Word2Vec(corpus_file=str(corpus), vector_size=args.vector_size, window=5, min_count=5, sg=1,
                     negative=5, sample=1e-3, epochs=args.epochs, workers=args.workers, seed=args.seed)
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

    top = min(3000, len(wv))
    rng = np.random.default_rng(args.seed)
    random_vectors = KeyedVectors(rng.standard_normal(wv.vectors.shape).astype(np.float32), wv.index_to_key)
    pairs = [pair for section in word_form_pairs(wv, top).values() for pair in section]
    recall = form_neighbour_recall(wv, pairs, top)
    recall_control = form_neighbour_recall(random_vectors, pairs, top)
    questions = corpus_analogies(wv, corpus.with_name(corpus.stem + "-analogies.txt"), top=top)
    scored = evaluate_word_analogies(wv, questions, restrict_vocab=top, case_insensitive=False)
    control = evaluate_word_analogies(random_vectors, questions, restrict_vocab=top, case_insensitive=False)
    print(f"\nword forms among the {top:,} most frequent words (file/files, read/reading, open/opened; "
          f"{len(pairs)} pairs):")
    print(f"  the other form is among a word's 10 nearest neighbours: {recall:.1%}   (random vectors: "
          f"{recall_control:.1%})")
    print(f"  analogies between two pairs (file : files :: thread : threads), {scored['questions_used']} questions: "
          f"{scored['accuracy']:.1%}   (random vectors: {control['accuracy']:.1%})")
    print("  (WordSim353 and the Google analogies need general English: `word2bert download text8`, train on it, "
          "then `word2bert evaluate`)")
    if args.output:
        save_or_rescue(wv.save, args.output, "vectors")
        print(f"vectors saved to {args.output}")
    return 0


def run_download(args) -> int:
    path = datasets.download(args.name, directory=args.dir, url=args.url)
    print(path)
    return 0
