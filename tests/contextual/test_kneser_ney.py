"""Interpolated Kneser-Ney: against a dictionary-based implementation of the formulas, sums to one."""

import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from word2bert.corpus.lm_corpus import EOS, UNK, build_lm_vocabulary, encode_lines
from word2bert.errors import Word2BertError
from word2bert.models.kneser_ney import KneserNeyLM, estimate_discounts

BOS = "<s>"


def planted_sentences(n_sentences, seed):
    """Zipf-ish words with a planted bigram habit ("the" -> cat/dog) and sentence-initial words."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(40)]
    weights = 1.0 / np.arange(1, 41)
    weights /= weights.sum()
    sentences = []
    for _ in range(n_sentences):
        sentence = [rng.choice(["a", "b", "c"])]
        for _ in range(rng.integers(2, 12)):
            if rng.random() < 0.2:
                sentence += ["the", str(rng.choice(["cat", "dog"]))]
            else:
                sentence.append(str(rng.choice(words, p=weights)))
        sentences.append(sentence)
    return sentences


def write(path, sentences):
    path.write_text("".join(" ".join(s) + "\n" for s in sentences))
    return path


class ReferenceKN:
    """The formulas of the module docstring with Python dictionaries, one query at a time."""

    def __init__(self, sentences, order, vocabulary, modified=True):
        self.n, self.vocabulary = order, vocabulary
        padded = [[BOS] * (order - 1) + s + [EOS] for s in sentences]
        grams = {k: Counter() for k in range(1, order + 1)}
        for sentence in padded:
            for i in range(order - 1, len(sentence)):
                for k in range(1, order + 1):
                    grams[k][tuple(sentence[i - k + 1:i + 1])] += 1
        self.counts = {order: Counter(grams[order])}
        for k in range(1, order):
            continuation = Counter()
            for gram in grams[k + 1]:
                continuation[gram[1:]] += 1
            self.counts[k] = continuation
        self.discounts = {k: self.estimate(list(self.counts[k].values()), modified) for k in self.counts}
        self.total, self.mass = {}, {}
        for k, table in self.counts.items():
            total, mass = defaultdict(float), defaultdict(float)
            for gram, c in table.items():
                total[gram[:-1]] += c
                mass[gram[:-1]] += self.discount(k, c)
            self.total[k], self.mass[k] = total, mass

    @staticmethod
    def estimate(counts, modified):
        n = [sum(1 for c in counts if c == r) for r in range(1, 5)]
        y = n[0] / (n[0] + 2 * n[1]) if n[0] > 0 else 0.5
        y = y if 0 < y < 1 else 0.5
        if not modified:
            return [y, y, y]
        result = []
        for r in (1, 2, 3):
            d = r - (r + 1) * y * n[r] / n[r - 1] if n[r - 1] > 0 else float("nan")
            result.append(d if 0 < d <= r else y)
        return result

    def discount(self, k, c):
        return 0.0 if c == 0 else self.discounts[k][min(c, 3) - 1]

    def prob(self, word, history):
        """P_n(word | history) where history holds the n - 1 previous tokens (padded with <s>)."""
        p = 1.0 / len(self.vocabulary)
        for k in range(1, self.n + 1):
            context = tuple(history[len(history) - (k - 1):]) if k > 1 else ()
            total = self.total[k].get(context, 0.0)
            if total > 0:
                c = self.counts[k].get(context + (word,), 0)
                p = max(c - self.discount(k, c), 0.0) / total + self.mass[k][context] / total * p
        return p


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kn")
    train = planted_sentences(300, seed=0)
    test = planted_sentences(40, seed=1) + [["zzz", "unseen", "the", "cat"]]
    return write(directory / "train.txt", train), write(directory / "test.txt", test), train, test


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("discount", ["modified", "single"])
def test_probabilities_equal_the_reference_formulas(corpus, order, discount):
    train_path, test_path, train, test = corpus
    model = KneserNeyLM.train(train_path, order=order, discount=discount)
    vocabulary = model.vocab.words
    reference = ReferenceKN(train, order, vocabulary, modified=discount == "modified")
    for k in range(1, order + 1):
        assert np.allclose(model.orders[k - 1].discounts, reference.discounts[k])
    expected = []
    for sentence in test:
        tokens = [w if w in model.vocab else UNK for w in sentence] + [EOS]
        history = [BOS] * (order - 1)
        for token in tokens:
            expected.append(math.log(reference.prob(token, history)))
            history = (history + [token])[1:]
    ours = model.log_probabilities(encode_lines(test_path, model.vocab))
    assert len(ours) == len(expected) == sum(len(s) + 1 for s in test)
    assert np.allclose(ours, expected, rtol=1e-10, atol=1e-12)
    assert model.perplexity(test_path) == pytest.approx(math.exp(-np.mean(expected)), rel=1e-10)


@pytest.mark.parametrize("order", [2, 3, 5])
def test_probabilities_sum_to_one_over_the_vocabulary(corpus, order):
    train_path, _, train, _ = corpus
    model = KneserNeyLM.train(train_path, order=order)
    reference = ReferenceKN(train, order, model.vocab.words)
    contexts = [[], ["a"], ["the"], ["a", "the"], train[0][:4], train[5], ["zzz", "qqq"], ["the", "cat", "the"]]
    for context in contexts:
        distribution = model.probabilities(context)
        assert distribution.shape == (len(model.vocab),)
        assert np.all(distribution > 0)
        assert distribution.sum() == pytest.approx(1.0, abs=1e-12)
        history = ([BOS] * (order - 1) + [w if w in model.vocab else UNK for w in context])[-(order - 1):]
        for word in ("cat", "dog", "w0", EOS, UNK):
            assert distribution[model.vocab.index[word]] == pytest.approx(reference.prob(word, history), rel=1e-10)
    # the planted habit: after "the", cat and dog take most of the mass
    after_the = model.probabilities(["a", "the"])
    assert after_the[model.vocab.index["cat"]] + after_the[model.vocab.index["dog"]] > 0.8


def test_each_order_captures_its_planted_structure(tmp_path):
    """After "q", "p q" is followed by r and "s q" by t: only a trigram model can know which."""
    def sentences(n, seed):
        rng = np.random.default_rng(seed)
        result = []
        for _ in range(n):
            sentence = []
            for _ in range(rng.integers(1, 6)):
                sentence += ["p", "q", "r"] if rng.random() < 0.5 else ["s", "q", "t"]
                sentence += [f"w{rng.integers(10)}"]
            result.append(sentence)
        return result
    train = write(tmp_path / "train.txt", sentences(400, 0))
    test = write(tmp_path / "test.txt", sentences(50, 1))
    perplexities = [KneserNeyLM.train(train, order=n).perplexity(test) for n in (1, 2, 3)]
    assert perplexities[0] > perplexities[1] > perplexities[2]
    trigram = KneserNeyLM.train(train, order=3)
    assert trigram.probabilities(["p", "q"])[trigram.vocab.index["r"]] > 0.9
    assert trigram.probabilities(["s", "q"])[trigram.vocab.index["t"]] > 0.9


def test_discount_estimates_follow_chen_and_goodman():
    counts = np.array([1] * 50 + [2] * 20 + [3] * 10 + [4] * 5 + [9] * 3)
    y = 50 / (50 + 2 * 20)
    expected = [1 - 2 * y * 20 / 50, 2 - 3 * y * 10 / 20, 3 - 4 * y * 5 / 10]
    assert np.allclose(estimate_discounts(counts), expected)
    assert np.allclose(estimate_discounts(counts, modified=False), [y, y, y])


def test_save_load_and_bad_input(corpus, tmp_path):
    train_path, test_path, _, _ = corpus
    model = KneserNeyLM.train(train_path, order=3)
    model.save(tmp_path / "kn.npz")
    loaded = KneserNeyLM.load(tmp_path / "kn.npz")
    assert loaded.perplexity(test_path) == model.perplexity(test_path)
    with pytest.raises(Word2BertError, match="order"):
        KneserNeyLM(order=6)
    with pytest.raises(Word2BertError, match="not trained"):
        KneserNeyLM(order=2).perplexity(test_path)
    with pytest.raises(Word2BertError, match="file not found"):
        KneserNeyLM.train(tmp_path / "missing.txt")
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(Word2BertError, match="not a word2bert Kneser-Ney model"):
        KneserNeyLM.load(tmp_path / "junk.npz")


def test_vocabulary_always_holds_unk_and_eos(tmp_path):
    path = write(tmp_path / "t.txt", [["x", "y", "x"], ["x", "<unk>"]])
    vocab = build_lm_vocabulary(path, min_count=2)
    assert set(vocab.words) == {"x", EOS, UNK}
    assert vocab.counts[vocab.index[UNK]] == 2 and vocab.counts[vocab.index[EOS]] == 2
