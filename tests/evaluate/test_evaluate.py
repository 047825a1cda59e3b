"""Evaluation against gensim's own evaluate_word_pairs / evaluate_word_analogies on planted vectors."""

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.evaluate import (
    GOOGLE_ANALOGIES,
    WORDSIM353,
    evaluate_word_analogies,
    evaluate_word_pairs,
    read_analogies,
)
from word2bert.vectors import KeyedVectors

gensim_models = pytest.importorskip("gensim.models")

SECTIONS = {
    "capital-country": [("athens", "greece"), ("paris", "france"), ("rome", "italy"), ("berlin", "germany"),
                        ("madrid", "spain"), ("oslo", "norway"), ("tokyo", "japan"), ("cairo", "egypt")],
    "gram-plural": [("cat", "cats"), ("dog", "dogs"), ("car", "cars"), ("tree", "trees"), ("bird", "birds"),
                    ("hand", "hands"), ("eye", "eyes")],
    "gram-past": [("walk", "walked"), ("jump", "jumped"), ("play", "played"), ("look", "looked"),
                  ("talk", "talked"), ("call", "called")],
}


@pytest.fixture(scope="module")
def planted():
    """Vectors where b = a + offset(section) + noise, plus filler words and case variants."""
    rng = np.random.default_rng(11)
    dim = 24
    table = {}
    for pairs in SECTIONS.values():
        offset = rng.standard_normal(dim) * 1.5
        for a, b in pairs:
            table.setdefault(a, rng.standard_normal(dim))
            table[b] = table[a] + offset + 0.8 * rng.standard_normal(dim)
    words = list(table) + [f"filler{i}" for i in range(150)]
    vectors = np.array([table.get(w, rng.standard_normal(dim)) for w in words])
    order = rng.permutation(len(words))
    words = [words[i] for i in order]
    vectors = vectors[order]
    # case variants placed after their lower-case word (less frequent): must be mapped, not answered
    for word in ("Paris", "FRANCE", "Cats"):
        words.append(word)
        vectors = np.vstack([vectors, table[word.lower()] + 0.05 * rng.standard_normal(dim)])
    vectors = vectors.astype(np.float32)
    ours = KeyedVectors(vectors, words)
    reference = gensim_models.KeyedVectors(dim)
    reference.add_vectors(words, vectors.copy())
    return ours, reference


@pytest.fixture(scope="module")
def analogy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("analogy") / "questions.txt"
    lines = []
    for name, pairs in SECTIONS.items():
        lines.append(f": {name}")
        for a, b in pairs:
            for c, d in pairs:
                if a != c:
                    lines.append(f"{a.capitalize()} {b} {c} {d.upper()}")
    lines.append("Athens Greece unknownword Norway")  # OOV: skipped
    lines.append("too few words")  # malformed: skipped
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    rng = np.random.default_rng(5)
    words = [w for pairs in SECTIONS.values() for pair in pairs for w in pair]
    path = tmp_path_factory.mktemp("pairs") / "pairs.tsv"
    lines = ["# word1\tword2\tscore"]
    for _ in range(60):
        a, b = rng.choice(words, 2, replace=False)
        lines.append(f"{a.upper()}\t{b}\t{rng.uniform(0, 10):.2f}")
    lines += ["paris\tnotaword\t5.0", "notaword\tcats\t1.0"]
    path.write_text("\n".join(lines) + "\n")
    return path


def as_counts(gensim_sections):
    return [(s["section"], len(s["correct"]), len(s["incorrect"])) for s in gensim_sections]


@pytest.mark.parametrize("restrict_vocab", [100, 160, 10_000])
def test_3cosadd_equals_gensim(planted, analogy_file, restrict_vocab):
    ours, reference = planted
    result = evaluate_word_analogies(ours, analogy_file, restrict_vocab=restrict_vocab, method="3cosadd")
    score, sections = reference.evaluate_word_analogies(str(analogy_file), restrict_vocab=restrict_vocab)
    assert [(s["section"], s["correct"], s["incorrect"]) for s in result["sections"]] == as_counts(sections[:-1])
    assert result["questions_used"] > 0
    assert result["accuracy"] == pytest.approx(score)
    assert result["lines_skipped"] == 1
    if restrict_vocab == 10_000:
        assert result["oov_questions"] == 1
        assert 0.2 < result["accuracy"] < 1.0  # the planted structure is found, not trivially


def test_3cosmul_equals_gensim_most_similar_cosmul(planted, analogy_file):
    """gensim's evaluate_word_analogies with its most_similar swapped for most_similar_cosmul."""
    ours, reference = planted
    reference.most_similar = lambda positive, negative, topn, restrict_vocab: reference.most_similar_cosmul(
        positive=positive, negative=negative, topn=topn)
    try:
        score, sections = reference.evaluate_word_analogies(str(analogy_file), restrict_vocab=len(ours))
    finally:
        del reference.most_similar
    result = evaluate_word_analogies(ours, analogy_file, restrict_vocab=len(ours), method="3cosmul")
    assert [(s["section"], s["correct"], s["incorrect"]) for s in result["sections"]] == as_counts(sections[:-1])
    assert result["accuracy"] == pytest.approx(score)


def test_semantic_and_syntactic_split(planted, analogy_file):
    ours, _ = planted
    result = evaluate_word_analogies(ours, analogy_file, restrict_vocab=10_000)
    by_name = {s["section"]: s for s in result["sections"]}
    semantic = by_name["capital-country"]
    syntactic_correct = by_name["gram-plural"]["correct"] + by_name["gram-past"]["correct"]
    syntactic_total = syntactic_correct + by_name["gram-plural"]["incorrect"] + by_name["gram-past"]["incorrect"]
    assert result["semantic"] == pytest.approx(semantic["correct"] / (semantic["correct"] + semantic["incorrect"]))
    assert result["syntactic"] == pytest.approx(syntactic_correct / syntactic_total)
    assert result["questions_used"] == sum(s["correct"] + s["incorrect"] for s in result["sections"])


def test_case_sensitive_lookup_misses_capitalised_questions(planted, analogy_file):
    ours, _ = planted
    result = evaluate_word_analogies(ours, analogy_file, restrict_vocab=10_000, case_insensitive=False)
    # every question has a capitalised a and an upper-case d; only 'Paris ... FRANCE'-like rows could match
    assert result["questions_used"] < 5


def test_word_pairs_equal_gensim(planted, pairs_file):
    ours, reference = planted
    result = evaluate_word_pairs(ours, pairs_file)
    pearson, spearman, oov_percent = reference.evaluate_word_pairs(str(pairs_file))
    assert result["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
    assert result["pearson"] == pytest.approx(pearson.statistic, abs=1e-6)
    assert 100 * result["oov_ratio"] == pytest.approx(oov_percent)
    assert result["pairs_used"] == 60 and result["pairs_oov"] == 2


def test_word_pairs_restricted_vocabulary_equals_gensim(planted, pairs_file):
    ours, reference = planted
    result = evaluate_word_pairs(ours, pairs_file, restrict_vocab=80)
    pearson, spearman, oov_percent = reference.evaluate_word_pairs(str(pairs_file), restrict_vocab=80)
    assert result["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
    assert 100 * result["oov_ratio"] == pytest.approx(oov_percent)


def test_bundled_sets_load_by_default():
    assert WORDSIM353.exists() and GOOGLE_ANALOGIES.exists()
    sections, skipped = read_analogies(GOOGLE_ANALOGIES)
    assert len(sections) == 14 and skipped == 0
    assert sum(len(q) for _n, q in sections) == 19544
    assert sum(name.startswith("gram") for name, _q in sections) == 9
    words = ["tiger", "cat", "king", "queen", "man", "woman", "athens", "greece", "baghdad", "iraq"]
    kv = KeyedVectors(np.random.default_rng(0).standard_normal((len(words), 8)), words)
    pairs = evaluate_word_pairs(kv)
    assert pairs["pairs_used"] > 0 and pairs["pairs_used"] + pairs["pairs_oov"] == 353
    analogies = evaluate_word_analogies(kv)
    assert analogies["questions_used"] >= 1
    assert analogies["questions_used"] + analogies["oov_questions"] == 19544


def test_case_variants_of_the_question_words_are_not_answers(tmp_path):
    """'King' (a variant of c = king) would win 3CosAdd; like gensim it must be skipped."""
    words = ["man", "woman", "king", "queen", "King"]
    vectors = np.array([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0.2, 1, 0], [0, 1, 0.001]], dtype=np.float32)
    ours = KeyedVectors(vectors, words)
    reference = gensim_models.KeyedVectors(3)
    reference.add_vectors(words, vectors.copy())
    assert ours.most_similar(["woman", "king"], ["man"], topn=1)[0][0] == "King"
    path = tmp_path / "q.txt"
    path.write_text(": royal\nman woman king queen\n")
    result = evaluate_word_analogies(ours, path)
    score, _sections = reference.evaluate_word_analogies(str(path))
    assert result["accuracy"] == score == 1.0


def test_nothing_answerable_gives_none_not_zero(planted, analogy_file):
    ours, _ = planted
    result = evaluate_word_analogies(ours, analogy_file, restrict_vocab=3)
    assert result["questions_used"] == 0 and result["accuracy"] is None


def test_bad_input(planted, tmp_path):
    ours, _ = planted
    with pytest.raises(Word2BertError, match="unknown analogy method"):
        evaluate_word_analogies(ours, method="3coswhat")
    headless = tmp_path / "headless.txt"
    headless.write_text("a b c d\n")
    with pytest.raises(Word2BertError, match=r"headless\.txt: line 1: a question before"):
        evaluate_word_analogies(ours, headless)
    empty = tmp_path / "empty.tsv"
    empty.write_text("# nothing\n")
    with pytest.raises(Word2BertError, match="no word pairs"):
        evaluate_word_pairs(ours, empty)
    with pytest.raises(Word2BertError, match="file not found"):
        evaluate_word_pairs(ours, tmp_path / "missing.tsv")
