"""Phrases against gensim's Phrases (same corpus, same settings) and word2vec.c's formula."""

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.static.phrases import (
    ENGLISH_CONNECTOR_WORDS,
    FrozenPhrases,
    PhrasePipeline,
    Phrases,
    learn_phrases,
    load_phrases,
)

gensim_phrases = pytest.importorskip("gensim.models.phrases")


def planted_corpus(n_sentences=1500, seed=0):
    """Zipfian filler words with planted collocations (two with connector words inside)."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(200)] + sorted(ENGLISH_CONNECTOR_WORDS)
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    planted = [["new", "york"], ["hong", "kong"], ["bank", "of", "america"],
               ["lord", "of", "the", "rings"], ["new", "york", "city"], ["san", "francisco"]]
    sentences = []
    for _ in range(n_sentences):
        sentence = [str(w) for w in rng.choice(words, rng.integers(2, 25), p=weights)]
        for phrase in planted:
            if rng.random() < 0.15:
                at = int(rng.integers(0, len(sentence) + 1))
                sentence[at:at] = phrase
        sentences.append(sentence)
    return sentences


CORPUS = planted_corpus()


@pytest.mark.parametrize("scoring,threshold", [("default", 10.0), ("default", 1.0), ("npmi", 0.3)])
@pytest.mark.parametrize("connectors", [frozenset(), ENGLISH_CONNECTOR_WORDS], ids=["plain", "connectors"])
def test_same_phrases_scores_and_output_as_gensim(scoring, threshold, connectors):
    theirs = gensim_phrases.Phrases(CORPUS, min_count=3, threshold=threshold, scoring=scoring,
                                    connector_words=connectors)
    ours = Phrases(CORPUS, min_count=3, threshold=threshold, scoring=scoring, connector_words=connectors)
    assert ours.vocab_size == len(theirs.vocab)
    assert ours.corpus_word_count == theirs.corpus_word_count
    expected, got = theirs.export_phrases(), ours.export_phrases()
    assert set(got) == set(expected) and len(got) >= 3
    for phrase, score in expected.items():
        assert got[phrase] == pytest.approx(score, rel=1e-12)
    expected_corpus = [theirs[s] for s in CORPUS]
    assert [ours[s] for s in CORPUS] == expected_corpus           # per sentence (Python)
    assert list(ours[CORPUS]) == expected_corpus                  # whole corpus (compiled kernel)
    assert list(ours.freeze()[CORPUS]) == expected_corpus
    assert ours.find_phrases(CORPUS) == pytest.approx(theirs.find_phrases(CORPUS), rel=1e-12)
    if connectors:
        assert "bank_of_america" in got and "lord_of_the_rings" in got


def test_second_pass_matches_gensim_also_when_tokens_contain_the_delimiter():
    """Pass 2 sees 'new_york' tokens and leftover 'new york' pairs: gensim adds up their counts
    in one string table ('new_york' the word and 'new_york' the bigram); so do we."""
    first = gensim_phrases.Phrases(CORPUS, min_count=3, threshold=1.0)
    corpus2 = [first[s] for s in CORPUS] + [["big", "new", "york"]] * 5 + [["new_york", "city"]] * 3
    theirs = gensim_phrases.Phrases(corpus2, min_count=2, threshold=1.0)
    ours = Phrases(corpus2, min_count=2, threshold=1.0)
    assert ours.vocab_size == len(theirs.vocab)
    expected = [theirs[s] for s in corpus2]
    assert list(ours[corpus2]) == expected
    assert [ours.freeze()[s] for s in corpus2] == expected
    assert any("new_york_city" in s for s in expected)


def test_long_connector_runs_take_the_exact_path():
    """A run of connectors too long for a 64-bit code is counted and joined exactly."""
    connectors = frozenset(f"c{i}" for i in range(15))  # base 16: at most 15 connectors per code
    run = ["c3"] * 16
    corpus = [["x", "alpha", *run, "omega", "y"], ["alpha", *run, "omega"]] * 6 + [["x", "y", "alpha"]] * 3
    theirs = gensim_phrases.Phrases(corpus, min_count=1, threshold=0.5, connector_words=connectors)
    ours = Phrases(corpus, min_count=1, threshold=0.5, connector_words=connectors)
    assert ours.vocab_size == len(theirs.vocab)
    assert ours.export_phrases() == pytest.approx(theirs.export_phrases())
    expected = [theirs[s] for s in corpus]
    assert list(ours[corpus]) == expected and "_".join(["alpha", *run, "omega"]) in expected[0]


def test_word2phrase_formula_worked_example():
    # counts: a=4, b=4, ab=3 among 12 tokens; min_count 2: (3 - 2) / 4 / 4 * 12 = 0.75
    corpus = [["a", "b"], ["a", "b"], ["a", "b"], ["a", "c"], ["c", "b"], ["d", "e"]]
    model = Phrases(corpus, min_count=2, threshold=0.7, scoring="word2phrase")
    assert model.export_phrases() == {"a_b": pytest.approx(0.75)}
    assert model[["a", "b", "a", "b", "b"]] == ["a_b", "a_b", "b"]
    strict = Phrases(corpus, min_count=2, threshold=0.75, scoring="word2phrase")  # strictly above
    assert strict.export_phrases() == {}
    rare = Phrases(corpus, min_count=4, threshold=1e-9, scoring="word2phrase")    # count(ab)=3 < 4
    assert rare.export_phrases() == {}


def test_add_vocab_equals_one_pass_and_custom_scorer():
    half = len(CORPUS) // 2
    once = Phrases(CORPUS, min_count=3, threshold=5.0)
    twice = Phrases(CORPUS[:half], min_count=3, threshold=5.0)
    twice.add_vocab(CORPUS[half:])
    assert once.export_phrases() == twice.export_phrases()

    def count_only(worda_count, wordb_count, bigram_count, len_vocab, min_count, corpus_word_count):
        return bigram_count.astype(float)
    frequent = Phrases(CORPUS, min_count=1, threshold=200, scoring=count_only)
    assert set(frequent.export_phrases()) >= {"new_york"}


def test_save_load_and_pipeline(tmp_path):
    model = Phrases(CORPUS, min_count=3, threshold=2.0, connector_words=ENGLISH_CONNECTOR_WORDS)
    model.save(tmp_path / "counts.npz")
    loaded = load_phrases(tmp_path / "counts.npz")
    assert isinstance(loaded, Phrases) and loaded.export_phrases() == model.export_phrases()
    loaded.add_vocab(CORPUS[:10])
    frozen = model.freeze()
    frozen.save(tmp_path / "frozen.json")
    again = load_phrases(tmp_path / "frozen.json")
    assert isinstance(again, FrozenPhrases) and list(again[CORPUS[:50]]) == list(model[CORPUS[:50]])

    pipeline = learn_phrases(CORPUS, passes=2, threshold=[2.0, 1.0], min_count=3)
    first = Phrases(CORPUS, min_count=3, threshold=2.0)
    second = Phrases(list(first[CORPUS]), min_count=3, threshold=1.0)
    assert list(pipeline[CORPUS]) == [second[s] for s in first[CORPUS]]
    sentence = ["x", "new", "york", "city", "is", "big"]
    phrased = pipeline[sentence]
    spans = pipeline.phrase_spans(sentence)
    assert ["_".join(sentence[s:e]) for s, e in spans] == phrased
    pipeline.save(tmp_path / "pipeline.json")
    assert isinstance(load_phrases(tmp_path / "pipeline.json"), PhrasePipeline)

    source = tmp_path / "corpus.txt"
    source.write_text("\n".join(" ".join(s) for s in CORPUS[:100]) + "\n")
    read, written = pipeline.transform_file(source, tmp_path / "out.txt")
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert [line.split() for line in lines] == list(pipeline[CORPUS[:100]])
    assert read == sum(map(len, CORPUS[:100])) and written == sum(len(line.split()) for line in lines)


def test_bad_input_is_refused_clearly(tmp_path):
    with pytest.raises(Word2BertError, match="threshold"):
        Phrases(CORPUS, threshold=0)
    with pytest.raises(Word2BertError, match="threshold"):
        Phrases(CORPUS, threshold=2.0, scoring="npmi")
    with pytest.raises(Word2BertError, match="scoring"):
        Phrases(CORPUS, scoring="pmi")
    with pytest.raises(Word2BertError, match="not strings"):
        Phrases(["a b c", "d e"])
    with pytest.raises(Word2BertError, match="not found"):
        Phrases(corpus_file=tmp_path / "missing.txt")
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(Word2BertError, match="junk.json"):
        load_phrases(tmp_path / "junk.json")


def test_cli_learns_saves_applies_and_exports(tmp_path, capsys):
    from word2bert.cli import main

    source = tmp_path / "corpus.txt"
    source.write_text("\n".join(" ".join(s) for s in CORPUS) + "\n")
    out, model_path, tsv = tmp_path / "out.txt", tmp_path / "phrases.json", tmp_path / "phrases.tsv"
    assert main(["phrases", str(source), "-o", str(out), "--min-count", "3", "--threshold", "2", "1",
                 "--passes", "2", "--connector-words", "english", "--save-model", str(model_path),
                 "--export", str(tsv), "--quiet"]) == 0
    expected = learn_phrases(CORPUS, passes=2, threshold=[2.0, 1.0], min_count=3,
                             connector_words=ENGLISH_CONNECTOR_WORDS)
    assert [line.split() for line in out.read_text().splitlines()] == list(expected[CORPUS])
    assert "bank_of_america" in tsv.read_text()
    again = tmp_path / "again.txt"
    assert main(["phrases", str(source), "-o", str(again), "--model", str(model_path), "--quiet"]) == 0
    assert again.read_text() == out.read_text()
    assert main(["phrases", str(tmp_path / "missing.txt"), "-o", str(out)]) == 2
    assert main(["phrases", str(source), "-o", str(out), "--scoring", "npmi", "--threshold", "3"]) == 2
    assert "threshold" in capsys.readouterr().err
