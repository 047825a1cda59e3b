"""Word-pair similarity evaluation (WordSim353 and files of the same shape).

A file has one pair per line, ``word1<TAB>word2<TAB>score`` (whitespace-separated when the line
has no tab); lines starting with ``#`` are comments. Following gensim's
``evaluate_word_pairs``: words are looked up in the first ``restrict_vocab`` rows (upper-cased
when ``case_insensitive``, the most frequent spelling winning), pairs with a word outside that
vocabulary are skipped and counted in the OOV ratio, and the model's score of a pair is the
cosine similarity of its two vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from word2bert.errors import Word2BertError, check_positive
from word2bert.fileio import open_text

DATA_DIR = Path(__file__).parent / "data"
WORDSIM353 = DATA_DIR / "wordsim353.tsv"


def restricted_vocabulary(kv, restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
    """gensim's ``ok_vocab``: key (upper-cased if case-insensitive) -> row, over the first rows.

    When several spellings map to one key (``Paris``/``paris``), the earliest row (the most
    frequent word) wins.
    """
    check_positive("restrict_vocab", restrict_vocab)
    keys = kv.index_to_key[:int(restrict_vocab)]
    if case_insensitive:
        return {keys[i].upper(): i for i in range(len(keys) - 1, -1, -1)}
    return {keys[i]: i for i in range(len(keys) - 1, -1, -1)}


def read_word_pairs(path) -> tuple[list[tuple[str, str, float]], int]:
    """Pairs ``(word1, word2, gold score)`` of a file, and the number of malformed lines skipped."""
    pairs = []
    skipped = 0
    with open_text(path) as handle:
        for line in handle:
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
            if len(fields) != 3:
                skipped += 1
                continue
            try:
                score = float(fields[2])
            except ValueError:
                skipped += 1
                continue
            pairs.append((fields[0].strip(), fields[1].strip(), score))
    return pairs, skipped


def evaluate_word_pairs(kv, path=None, restrict_vocab: int = 300000, case_insensitive: bool = True) -> dict:
    """Correlation between the model's cosine similarities and human scores of word pairs.

    Returns ``{"spearman", "pearson", "oov_ratio", "pairs_used", "pairs_oov", "lines_skipped",
    "path"}``: Spearman's rho and Pearson's r between gold scores and ``cos(v_a, v_b)`` over the
    pairs whose two words are in the vocabulary, ``oov_ratio = oov pairs / all pairs`` (a
    fraction; gensim reports the same number times 100). Correlations are None with fewer than
    two usable pairs. ``path=None`` uses the bundled WordSim353.
    """
    from scipy import stats

    path = WORDSIM353 if path is None else Path(path)
    pairs, skipped = read_word_pairs(path)
    if not pairs:
        raise Word2BertError(f"{path}: no word pairs found (expected 'word1<TAB>word2<TAB>score' lines)")
    ok_vocab = restricted_vocabulary(kv, restrict_vocab, case_insensitive)
    rows_a, rows_b, gold = [], [], []
    for word_a, word_b, score in pairs:
        if case_insensitive:
            word_a, word_b = word_a.upper(), word_b.upper()
        if word_a in ok_vocab and word_b in ok_vocab:
            rows_a.append(ok_vocab[word_a])
            rows_b.append(ok_vocab[word_b])
            gold.append(score)
    normed = kv.get_normed_vectors()
    model = np.einsum("ij,ij->i", normed[rows_a], normed[rows_b]) if rows_a else np.zeros(0)
    oov = len(pairs) - len(gold)
    spearman = pearson = None
    if len(gold) >= 2 and np.ptp(gold) > 0 and np.ptp(model) > 0:
        spearman = float(stats.spearmanr(gold, model).statistic)
        pearson = float(stats.pearsonr(gold, np.asarray(model, dtype=np.float64)).statistic)
    return {
        "spearman": spearman,
        "pearson": pearson,
        "oov_ratio": oov / len(pairs),
        "pairs_used": len(gold),
        "pairs_oov": oov,
        "lines_skipped": skipped,
        "path": str(path),
    }
