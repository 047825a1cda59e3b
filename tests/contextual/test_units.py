"""Masking units: the 15% budget, units never split, span and n-gram length laws (chi-square),
the compiled loops against plain-Python versions of Google's and ALBERT's selection loops,
Chinese words from a segmenter, phrases and gazetteer entities."""

import numpy as np
import pytest
from scipy import stats

from word2bert.corpus.wordpiece import WordPieceTokenizer
from word2bert.errors import Word2BertError
from word2bert.objectives.units import (
    EntityUnits,
    NgramUnits,
    PhraseUnits,
    SpanUnits,
    TokenUnits,
    WholeWordUnits,
    make_selector,
    masking_budget,
    word_start_table,
    word_starts,
)

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 1000
CONTINUATION = 700  # ids >= 700 play '##' pieces
TABLE = np.arange(VOCAB) < CONTINUATION


def make_batch(rng, batch=300, width=128, continuation_rate=0.3):
    """[CLS] A [SEP] B [SEP] [PAD]..: words of 1-3 pieces, random lengths, two segments."""
    lengths = rng.integers(width // 2, width + 1, batch)
    ids = np.full((batch, width), PAD, dtype=np.int64)
    for row, length in enumerate(lengths):
        pieces = np.where(rng.random(length) < continuation_rate, rng.integers(CONTINUATION, VOCAB, length),
                          rng.integers(5, CONTINUATION, length))
        ids[row, :length] = pieces
        ids[row, 0] = CLS
        ids[row, length // 2] = SEP
        ids[row, length - 1] = SEP
    candidates = ids > MASK
    return ids, candidates


def words_of(row_ids, row_candidates, table=TABLE):
    """[(first, end)] token ranges of the words of one row."""
    starts = word_starts(row_ids[None], row_candidates[None], table)[0]
    words, t = [], 0
    while t < len(row_ids):
        if starts[t]:
            end = t + 1
            while end < len(row_ids) and row_candidates[end] and not starts[end]:
                end += 1
            words.append((t, end))
            t = end
        else:
            t += 1
    return words


def unit_ranges(unit_ids_row):
    """{first: [positions]} of the chosen units of one row."""
    units = {}
    for position in np.flatnonzero(unit_ids_row >= 0):
        units.setdefault(int(unit_ids_row[position]), []).append(int(position))
    return units


def check_units_whole(ids, candidates, unit_ids, table=TABLE):
    """Every chosen unit: contiguous, starts at its id, made of whole words, no special token."""
    for row in range(len(ids)):
        chosen = unit_ids[row] >= 0
        assert candidates[row][chosen].all()
        word_of = np.full(ids.shape[1], -1)
        for k, (first, end) in enumerate(words_of(ids[row], candidates[row], table)):
            word_of[first:end] = k
            assert chosen[first:end].all() or not chosen[first:end].any(), "a word was split"
        for first, positions in unit_ranges(unit_ids[row]).items():
            assert positions[0] == first and positions == list(range(first, first + len(positions)))
            assert len(set(word_of[positions])) >= 1 and (word_of[positions] >= 0).all()


SELECTORS = {
    "token": lambda: TokenUnits(),
    "whole-word": lambda: WholeWordUnits(TABLE),
    "span": lambda: SpanUnits(TABLE),
    "span-0.3": lambda: SpanUnits(TABLE, geometric_p=0.3),
    "ngram": lambda: NgramUnits(TABLE),
}


@pytest.mark.parametrize("name", list(SELECTORS))
def test_budget_is_15_percent_and_units_are_never_split(name):
    rng = np.random.default_rng(0)
    ids, candidates = make_batch(rng)
    budget = masking_budget(candidates, 0.15, max_predictions=None)
    unit_ids = SELECTORS[name]().select(ids, candidates, budget, rng)
    chosen = unit_ids >= 0
    assert (chosen.sum(axis=1) <= budget).all()
    rate = chosen.sum() / candidates.sum()
    assert abs(rate - 0.15) < 0.01, rate
    assert (chosen.sum(axis=1) == budget).mean() > 0.9  # small units fill the budget exactly
    check_units_whole(ids, candidates, unit_ids, table=None if name == "token" else TABLE)
    # never across [SEP]: a unit lies in one segment
    for row in range(len(ids)):
        segment = np.cumsum(ids[row] == SEP)
        for first, positions in unit_ranges(unit_ids[row]).items():
            assert len(set(segment[positions])) == 1


def test_whole_word_selection_equals_googles_loop():
    """The compiled filling equals create_pretraining_data.py's loop on the same random order."""
    rng = np.random.default_rng(1)
    ids, candidates = make_batch(rng, batch=50)
    budget = masking_budget(candidates, 0.15, max_predictions=20)
    priority = rng.random(ids.shape)
    selector = WholeWordUnits(TABLE)
    got = selector.select(ids, candidates, budget, _FixedRandom(priority))
    for row in range(len(ids)):
        words = words_of(ids[row], candidates[row])
        order = sorted(words, key=lambda w: priority[row, w[0]])      # rng.shuffle(cand_indexes)
        masked = []
        for first, end in order:
            if len(masked) >= budget[row]:
                break
            if len(masked) + (end - first) > budget[row]:
                continue
            masked.extend(range(first, end))
        assert sorted(masked) == list(np.flatnonzero(got[row] >= 0))


class _FixedRandom:
    """A stand-in generator whose first ``random`` call returns given numbers."""

    def __init__(self, *arrays):
        self.arrays = list(arrays)

    def random(self, shape):
        value = self.arrays.pop(0)
        assert value.shape == tuple(shape)
        return value


def albert_ngrams_reference(words, budget, priority, uniforms, probs):
    """google-research/albert create_masked_lm_predictions (whole words, n <= len(probs)), one row,
    with n-grams kept inside a segment (``words`` carry their segment)."""
    order = sorted(range(len(words)), key=lambda i: priority[words[i][0]])
    covered, masked = set(), []
    for i in order:
        if len(masked) >= budget:
            break
        options = [words[i:i + n] for n in range(1, len(probs) + 1)
                   if i + n <= len(words) and words[i + n - 1][2] == words[i][2]]
        p = np.asarray(probs[:len(options)]) / np.sum(probs[:len(options)])
        n = len(options)
        cumulative = np.cumsum(p)
        for m in range(len(options)):
            if uniforms[words[i][0]] < cumulative[m]:
                n = m + 1
                break
        index_set = [t for w in options[n - 1] for t in range(w[0], w[1])]
        while len(masked) + len(index_set) > budget and n > 1:
            n -= 1
            index_set = [t for w in options[n - 1] for t in range(w[0], w[1])]
        if len(masked) + len(index_set) > budget:
            continue
        if any(t in covered for t in index_set):
            continue
        covered.update(index_set)
        masked.extend(index_set)
    return sorted(masked)


def test_ngram_selection_equals_albert_loop():
    rng = np.random.default_rng(2)
    ids, candidates = make_batch(rng, batch=60)
    budget = masking_budget(candidates, 0.15, max_predictions=20)
    priority, uniforms = rng.random(ids.shape), rng.random(ids.shape)
    selector = NgramUnits(TABLE)
    got = selector.select(ids, candidates, budget, _FixedRandom(priority, uniforms))
    for row in range(len(ids)):
        segment = np.cumsum(ids[row] == SEP)
        words = [(f, e, segment[f]) for f, e in words_of(ids[row], candidates[row])]
        expected = albert_ngrams_reference(words, budget[row], priority[row], uniforms[row],
                                           1 / np.arange(1, 4))
        assert expected == list(np.flatnonzero(got[row] >= 0))


def span_lengths_in_words(ids, candidates, unit_ids, table):
    lengths = []
    for row in range(len(ids)):
        word_first = {f for f, _ in words_of(ids[row], candidates[row], table)}
        for first, positions in unit_ranges(unit_ids[row]).items():
            lengths.append(sum(p in word_first for p in positions))
    return np.array(lengths)


@pytest.mark.parametrize("p,words", [(0.2, "single-token"), (0.3, "single-token"), (0.2, "multi-token")])
def test_span_lengths_follow_the_clipped_geometric(p, words):
    """Long rows, so that the few spans placed when the budget is nearly spent (which must be
    short to fit) are ~1% of the sample; chi-square against p(l) ∝ p (1-p)^(l-1), l = 1..10."""
    rng = np.random.default_rng(3)
    width = 8192
    ids = rng.integers(5, CONTINUATION, (20, width))
    if words == "multi-token":
        ids = np.where(rng.random(ids.shape) < 0.3, rng.integers(CONTINUATION, VOCAB, ids.shape), ids)
    ids[:, 0] = CLS
    ids[:, -1] = SEP
    candidates = ids > MASK
    table = None if words == "single-token" else TABLE
    selector = SpanUnits(table, geometric_p=p)
    unit_ids = selector.select(ids, candidates, masking_budget(candidates, 0.15), rng)
    check_units_whole(ids, candidates, unit_ids, table=table)
    lengths = span_lengths_in_words(ids, candidates, unit_ids, table)
    observed = np.bincount(lengths, minlength=11)[1:]
    expected = selector.length_probs * len(lengths)
    assert len(lengths) > 4000 and observed.sum() == len(lengths)
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, df=9) > 1e-3, (observed, expected.round())
    if p == 0.2:  # and a wrong law is rejected by the same test
        wrong = SpanUnits(None, geometric_p=0.25).length_probs * len(lengths)
        assert stats.chi2.sf(((observed - wrong) ** 2 / wrong).sum(), df=9) < 1e-6


def test_ngram_sizes_follow_one_over_n_when_overlaps_are_rare():
    rng = np.random.default_rng(4)
    ids = rng.integers(5, CONTINUATION, (40, 4096))
    ids[:, 0], ids[:, -1] = CLS, SEP
    candidates = ids > MASK
    unit_ids = NgramUnits(None).select(ids, candidates, masking_budget(candidates, 0.02), rng)
    sizes = np.array([len(p) for row in unit_ids for p in unit_ranges(row).values()])
    observed = np.bincount(sizes, minlength=4)[1:]
    expected = np.array([1, 1 / 2, 1 / 3]) / (11 / 6) * len(sizes)
    assert len(sizes) > 2000
    assert stats.chi2.sf(((observed - expected) ** 2 / expected).sum(), df=2) > 1e-3, (observed, expected)


# ------------------------------------------------------------------ with a real tokenizer

def tiny_tokenizer():
    words = ["the", "new", "york", "city", "times", "bank", "of", "america", "is", "a", "big", "and", "small", "place", "where", "people", "live", "work", "un", "believ", "able", "lord", "rings", "hong", "kong", "in", "on", "at"]
    pieces = ["##believ", "##able", "##s", "##ing"]
    chinese = list("我来到北京清华大学使用中文分词工具")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + pieces + chinese + ["，", "。"]
    return WordPieceTokenizer({token: i for i, token in enumerate(dict.fromkeys(vocab))})


def encode(tokenizer, texts):
    batch = tokenizer.encode_batch(texts, padding=True)
    ids = np.asarray(batch["input_ids"])
    return ids, (np.asarray(batch["attention_mask"]) == 1) & ~np.isin(ids, tokenizer.special_ids)


def test_word_start_table_reads_wordpiece_pieces():
    tokenizer = tiny_tokenizer()
    table = word_start_table(tokenizer)
    assert not table[tokenizer.token_to_id("##able")] and table[tokenizer.token_to_id("bank")]
    assert table[tokenizer.special_ids].all()


def test_phrases_and_entities_are_masked_whole(tmp_path):
    tokenizer = tiny_tokenizer()
    texts = ["the new york times is a big place where people live and work in new york city"] * 200
    ids, candidates = encode(tokenizer, texts)
    gazetteer = tmp_path / "entities.txt"
    gazetteer.write_text("# names\nnew york city\tLOC\nbank of america\tORG\nnew york times\n")
    rng = np.random.default_rng(5)
    for selector, units in ((EntityUnits.from_gazetteer(tokenizer, gazetteer), ["new york times", "new york city"]),
                            (PhraseUnits.from_phrases(tokenizer, ["new_york", "people_live"]),
                             ["new york", "people live"])):
        budget = masking_budget(candidates, 0.15)  # 3 of these 17 words
        unit_ids = selector.select(ids, candidates, budget, rng)
        np.testing.assert_array_equal((unit_ids >= 0).sum(axis=1), budget)
        for unit in units:
            pattern = tokenizer.ids_batch([unit])[0]
            times_chosen = 0
            for row_units, row_ids in zip(unit_ids, ids):
                for first in _find(row_ids.tolist(), pattern):
                    part = row_units[first:first + len(pattern)]
                    assert (part == first).all() or (part == -1).all(), f"{unit!r} was split"
                    times_chosen += bool(part[0] >= 0)
            assert times_chosen > 10, unit


def _find(sequence, pattern):
    return [i for i in range(len(sequence) - len(pattern) + 1) if sequence[i:i + len(pattern)] == pattern]


def test_chinese_whole_words_from_a_segmenter():
    tokenizer = tiny_tokenizer()
    text = "我来到北京清华大学，使用中文分词工具"
    words = ["我", "来到", "北京", "清华大学", "，", "使用", "中文", "分词", "工具"]
    selector = WholeWordUnits.from_tokenizer(tokenizer, segmenter=_segmenter_from(words))
    ids, candidates = encode(tokenizer, [text] * 400)
    starts = selector.unit_starts(ids, candidates)
    tokens = tokenizer.convert_ids_to_tokens(ids[0])
    unit_text = []
    for t, token in enumerate(tokens):
        if starts[0, t]:
            unit_text.append(token)
        elif candidates[0, t]:
            unit_text[-1] += token
    assert unit_text == words
    rng = np.random.default_rng(6)
    unit_ids = selector.select(ids, candidates, masking_budget(candidates, 0.15), rng)
    for row in unit_ids:
        for first, positions in unit_ranges(row).items():
            assert "".join(tokens[p] for p in positions) in words  # never part of a word


def _segmenter_from(words):
    def segment(text):
        out, position = [], 0
        while position < len(text):
            match = next((w for w in sorted(words, key=len, reverse=True) if text.startswith(w, position)),
                         text[position])
            out.append(match)
            position += len(match)
        return out
    return segment


def test_chinese_whole_words_with_jieba():
    pytest.importorskip("jieba")
    from word2bert.tokenizers.chinese import encode_whole_words, jieba_segmenter

    tokenizer = tiny_tokenizer()
    text = "我来到北京清华大学"
    (ids, starts), = encode_whole_words(tokenizer, [text], jieba_segmenter())
    units = []
    for token, start in zip(tokenizer.convert_ids_to_tokens(ids), starts):
        units.append(token) if start else units.__setitem__(-1, units[-1] + token)
    assert units == ["我", "来到", "北京", "清华大学"]
    selector = make_selector("whole-word", tokenizer, chinese=True)
    batch, candidates = encode(tokenizer, [text])
    np.testing.assert_array_equal(selector.unit_starts(batch, candidates)[0, 1:-1], starts)


def test_bad_input_gets_a_clear_message(tmp_path):
    tokenizer = tiny_tokenizer()
    with pytest.raises(Word2BertError, match="unknown masking 'spans'.*token, whole-word, span"):
        make_selector("spans", tokenizer)
    with pytest.raises(Word2BertError, match="cannot read the gazetteer .*missing.txt"):
        make_selector("entity", tokenizer, gazetteer=tmp_path / "missing.txt")
    with pytest.raises(Word2BertError, match="cannot read the gazetteer .*directory"):
        make_selector("entity", tokenizer, gazetteer=tmp_path)
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(Word2BertError, match="empty.txt has no entity names"):
        make_selector("entity", tokenizer, gazetteer=tmp_path / "empty.txt")
    with pytest.raises(Word2BertError, match="phrase masking needs phrases"):
        make_selector("phrase", tokenizer)
    with pytest.raises(Word2BertError, match="entity masking needs a gazetteer"):
        make_selector("entity", tokenizer)
    try:
        import spacy  # noqa: F401
    except ImportError:   # spaCy is optional: without it the message says what to install
        with pytest.raises(Word2BertError, match="pip install spacy"):
            make_selector("entity", tokenizer, spacy_model="en_core_web_sm", spacy_texts=["New York"])
    with pytest.raises(Word2BertError, match="geometric_p"):
        SpanUnits(None, geometric_p=0)
    with pytest.raises(Word2BertError, match="shape"):
        TokenUnits().select(np.zeros((2, 5)), np.ones((2, 4), bool), [1, 1])


class Recording:
    """A selector that remembers what the selector it wraps returned."""

    def __init__(self, selector):
        self.selector, self.unit_ids = selector, None

    def select(self, input_ids, candidates, n_predict, rng):
        self.unit_ids = self.selector.select(input_ids, candidates, n_predict, rng)
        return self.unit_ids


@pytest.mark.parametrize("name", ["whole-word", "span", "ngram"])
def test_masked_lm_decides_80_10_10_per_unit(name):
    """Through MaskedLM: each unit is all [MASK] (80%), all random (10%) or all kept (10%), never mixed."""
    from word2bert.objectives.mlm import MaskedLM

    rng = np.random.default_rng(7)
    ids, candidates = make_batch(rng, batch=400)
    recording = Recording(SELECTORS[name]())
    masking = MaskedLM(VOCAB, MASK, special_ids=(PAD, UNK, CLS, SEP, MASK), pad_id=PAD, units=recording,
                       max_predictions_per_seq=128)
    corrupted = masking.apply(ids, (ids != PAD).astype(np.int64), np.random.default_rng(8))["input_ids"]
    kinds = {"mask": 0, "random": 0, "kept": 0}
    random_tokens = unchanged = 0
    for row in range(len(ids)):
        for first, positions in unit_ranges(recording.unit_ids[row]).items():
            new, old = corrupted[row, positions], ids[row, positions]
            if (new == MASK).all():
                kinds["mask"] += 1
            elif (new == old).all():
                kinds["kept"] += 1
            else:  # random ids (a few equal the original by chance: 1 in VOCAB)
                assert not (new == MASK).any(), (new, old)
                kinds["random"] += 1
                random_tokens += len(new)
                unchanged += int((new == old).sum())
    n = sum(kinds.values())
    assert n > 1000 and unchanged <= 5 + 3 * random_tokens / VOCAB
    for kind, p in (("mask", 0.8), ("random", 0.1), ("kept", 0.1)):
        assert abs(kinds[kind] / n - p) < 4 * np.sqrt(p * (1 - p) / n), (kind, kinds)


def test_entities_from_spacy_ner(monkeypatch):
    """The optional spaCy path, with a stand-in for spaCy's API (spacy.load -> nlp.pipe -> doc.ents with
    .text / .label_): the entity names it reports become units, filtered by label; an unknown model is
    named. (spaCy and its models are not test dependencies.)"""
    import sys
    import types

    found = {"the bank of america is in new york city where people live and work and the big times are": [("bank of america", "ORG"), ("new york city", "GPE")]}

    def load(model, disable=()):
        if model != "en_core_web_sm":
            raise OSError(f"[E050] Can't find model '{model}'")
        entity = types.SimpleNamespace
        return types.SimpleNamespace(pipe=lambda texts: [types.SimpleNamespace(
            ents=[entity(text=t, label_=label) for t, label in found.get(text, [])]) for text in texts])

    monkeypatch.setitem(sys.modules, "spacy", types.SimpleNamespace(load=load))
    tokenizer = tiny_tokenizer()
    texts = list(found) * 100
    selector = make_selector("entity", tokenizer, spacy_model="en_core_web_sm", spacy_texts=texts)
    ids, candidates = encode(tokenizer, texts)
    unit_ids = selector.select(ids, candidates, masking_budget(candidates, 0.15), np.random.default_rng(1))
    tokens = tokenizer.convert_ids_to_tokens(ids[0])
    chosen = {" ".join(tokens[p] for p in positions) for row in unit_ids for positions in unit_ranges(row).values()}
    assert {"bank of america", "new york city"} <= chosen
    only_places = EntityUnits.from_spacy(tokenizer, texts[:1], labels=["GPE"])
    unit_ids = only_places.select(ids, candidates, masking_budget(candidates, 0.15), np.random.default_rng(2))
    chosen = {" ".join(tokens[p] for p in positions) for row in unit_ids for positions in unit_ranges(row).values()}
    assert "new york city" in chosen and "bank of america" not in chosen
    with pytest.raises(Word2BertError, match="spaCy model 'xx_missing' is not installed"):
        EntityUnits.from_spacy(tokenizer, texts, model="xx_missing")
