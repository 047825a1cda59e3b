"""Word analogies "a is to b as c is to d" (the Google analogy set and files of the same shape).

A file has ``: section`` header lines followed by ``a b c d`` lines. Following gensim's
``evaluate_word_analogies``: only the first ``restrict_vocab`` rows are searched and used
(upper-cased keys when ``case_insensitive``, the most frequent spelling winning); a question
with any of its four words outside that vocabulary is skipped and counted as OOV; the answer is
the best-scoring word other than a, b and c; sections whose name starts with ``gram`` are
syntactic, the others semantic.

Scoring, with unit vectors ``x`` and ``cos`` the dot product of unit vectors:

* 3CosAdd (Mikolov et al. 2013): ``argmax_d cos(d, b) - cos(d, a) + cos(d, c)``, which ranks
  like gensim's ``most_similar(positive=[b, c], negative=[a])``;
* 3CosMul (Levy & Goldberg 2014): ``argmax_d s(d, b) s(d, c) / (s(d, a) + 1e-6)`` with
  ``s = (1 + cos) / 2``, as gensim's ``most_similar_cosmul``.

Vectorised: the cosines of all distinct a/b/c words against a chunk of the restricted
vocabulary come from one matrix product; a compiled kernel then combines three of those rows per
question and keeps the best candidate, chunk after chunk (no per-question Python). (gensim inspects only the top
5 candidates when skipping case variants of a, b, c; here every variant is skipped, which
differs only when five variants outrank the answer.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit, prange

from word2bert.errors import Word2BertError
from word2bert.evaluate.similarity import DATA_DIR, restricted_vocabulary
from word2bert.fileio import open_text

GOOGLE_ANALOGIES = DATA_DIR / "questions-words.txt"
METHODS = ("3cosadd", "3cosmul")
_CHUNK_ELEMENTS = 1 << 24  # cosines per vocabulary chunk (distinct words x chunk): 64 MB of float32


def read_analogies(path) -> tuple[list[tuple[str, list[tuple[str, str, str, str]]]], int]:
    """Sections ``[(name, [(a, b, c, d), ...]), ...]`` of an analogy file and the malformed lines skipped."""
    sections: list[tuple[str, list]] = []
    skipped = 0
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.startswith(":"):
                sections.append((line[1:].strip(), []))
                continue
            fields = line.split()
            if not fields:
                continue
            if not sections:
                raise Word2BertError(f"{path}: line {line_no}: a question before the first ': section' header")
            if len(fields) != 4:
                skipped += 1
                continue
            sections[-1][1].append(tuple(fields))
    return sections, skipped


@njit(nogil=True, cache=True, fastmath=True, parallel=True)
def _best_answers(cosines, positions, question_rows, canonical, offset, multiplicative,
                  best_score, best_row):  # pragma: no cover - numba
    """Update each question's best answer with the candidates of one vocabulary chunk.

    ``cosines[u, j]`` = cos(word u, candidate ``offset + j``) for the distinct question words;
    ``positions[q]`` = rows of a, b, c in ``cosines``; ``question_rows[q]`` = their canonical rows.
    A candidate whose canonical row is a, b or c is skipped. The score is
    ``cos_b - cos_a + cos_c`` (3CosAdd) or ``s_b s_c / (s_a + 1e-6)`` with ``s = (1 + cos) / 2``
    (3CosMul). Strict ``>`` keeps the first of equal scores, as ``argmax`` does.
    """
    for q in prange(positions.shape[0]):
        pa, pb, pc = positions[q, 0], positions[q, 1], positions[q, 2]
        ra, rb, rc = question_rows[q, 0], question_rows[q, 1], question_rows[q, 2]
        best = best_score[q]
        arg = best_row[q]
        for j in range(cosines.shape[1]):
            row = canonical[j]
            if row == ra or row == rb or row == rc:
                continue
            cos_a = np.float64(cosines[pa, j])
            cos_b = np.float64(cosines[pb, j])
            cos_c = np.float64(cosines[pc, j])
            if multiplicative:
                score = (1.0 + cos_b) * (1.0 + cos_c) * 0.25 / ((1.0 + cos_a) * 0.5 + 1e-6)
            else:
                score = cos_b - cos_a + cos_c
            if score > best:
                best = score
                arg = offset + j
        best_score[q] = best
        best_row[q] = arg


def predict_answers(normed, questions, canonical, method="3cosadd"):
    """Best answer row for each question row ``(a, b, c)`` over the candidate rows of ``normed``.

    The cosines of the distinct question words against a chunk of the vocabulary come from one
    matrix product; a compiled kernel then scores every question against the chunk.
    """
    questions = np.ascontiguousarray(questions[:, :3], dtype=np.int64)
    best_score = np.full(questions.shape[0], -1e30, dtype=np.float64)
    best_row = np.full(questions.shape[0], -1, dtype=np.int64)
    if questions.shape[0] == 0:
        return best_row
    distinct, positions = np.unique(questions, return_inverse=True)
    positions = np.ascontiguousarray(positions.reshape(-1, 3), dtype=np.int64)
    query_vectors = normed[distinct]
    chunk = max(1024, _CHUNK_ELEMENTS // len(distinct))
    for start in range(0, normed.shape[0], chunk):
        cosines = np.ascontiguousarray(query_vectors @ normed[start:start + chunk].T)
        _best_answers(cosines, positions, questions, canonical[start:start + chunk], start,
                      method == "3cosmul", best_score, best_row)
    return best_row


def _accuracy(correct: int, incorrect: int):
    total = correct + incorrect
    return correct / total if total else None


def evaluate_word_analogies(kv, path=None, restrict_vocab: int = 30000, method: str = "3cosadd",
                            case_insensitive: bool = True) -> dict:
    """Analogy accuracy overall, semantic vs syntactic, and per section.

    Returns ``{"accuracy", "semantic", "syntactic", "sections": [{"section", "correct",
    "incorrect"}], "correct", "questions_used", "oov_questions", "oov_ratio", "lines_skipped",
    "method", "path"}``; an accuracy is None when no question of its kind was answerable.
    ``path=None`` uses the bundled Google analogy set.
    """
    if method not in METHODS:
        raise Word2BertError(f"unknown analogy method {method!r}; choose from {', '.join(METHODS)}")
    path = GOOGLE_ANALOGIES if path is None else Path(path)
    sections, skipped = read_analogies(path)
    total_questions = sum(len(questions) for _name, questions in sections)
    if not total_questions:
        raise Word2BertError(f"{path}: no analogy questions found (expected ': section' then 'a b c d' lines)")
    ok_vocab = restricted_vocabulary(kv, restrict_vocab, case_insensitive)
    limit = min(int(restrict_vocab), len(kv))
    keys = kv.index_to_key[:limit]
    # canonical row of every searchable row: the row its (upper-cased) spelling maps to
    canonical = np.array([ok_vocab[k.upper() if case_insensitive else k] for k in keys], dtype=np.int64)
    normed = kv.get_normed_vectors()[:limit]

    question_rows, section_of, oov = [], [], 0
    for number, (_name, questions) in enumerate(sections):
        for question in questions:
            words = [w.upper() for w in question] if case_insensitive else list(question)
            if all(w in ok_vocab for w in words):
                question_rows.append([ok_vocab[w] for w in words])
                section_of.append(number)
            else:
                oov += 1
    question_rows = np.asarray(question_rows, dtype=np.int64).reshape(-1, 4)
    predicted = predict_answers(normed, question_rows, canonical, method)
    hits = (predicted >= 0) & (canonical[np.maximum(predicted, 0)] == question_rows[:, 3])
    asked = np.bincount(np.asarray(section_of, dtype=np.int64), minlength=len(sections))
    right = np.bincount(np.asarray(section_of, dtype=np.int64), weights=hits, minlength=len(sections))
    results = [{"section": name, "correct": int(right[i]), "incorrect": int(asked[i] - right[i])}
               for i, (name, _questions) in enumerate(sections)]

    def summed(selected):
        good = sum(s["correct"] for s in selected)
        bad = sum(s["incorrect"] for s in selected)
        return good, bad

    semantic = summed([s for s in results if not s["section"].startswith("gram")])
    syntactic = summed([s for s in results if s["section"].startswith("gram")])
    overall = summed(results)
    return {
        "accuracy": _accuracy(*overall),
        "semantic": _accuracy(*semantic),
        "syntactic": _accuracy(*syntactic),
        "sections": results,
        "correct": overall[0],
        "questions_used": overall[0] + overall[1],
        "oov_questions": oov,
        "oov_ratio": oov / total_questions,
        "lines_skipped": skipped,
        "method": method,
        "path": str(path),
    }
