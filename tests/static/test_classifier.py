"""fastText supervised: gradient of one step, planted labels, fastText parity of features and files."""

import numpy as np
import pytest
from fasttext_reference import facebook_train

from word2bert.errors import Word2BertError
from word2bert.static import kernels as bag_kernels
from word2bert.static.classifier import FastTextClassifier


def log_likelihood(input_vectors, output_vectors, bag, targets, kind):
    hidden = input_vectors[bag].mean(axis=0)
    scores = output_vectors @ hidden
    if kind == bag_kernels.LOSS_SOFTMAX:
        return scores[targets[0]] - np.log(np.exp(scores).sum())
    y = np.isin(np.arange(len(scores)), targets)
    return np.sum(np.where(y, -np.log1p(np.exp(-scores)), -np.log1p(np.exp(scores))))


@pytest.mark.parametrize("kind,targets", [(bag_kernels.LOSS_SOFTMAX, [1]), (bag_kernels.LOSS_OVA, [0, 2])])
def test_one_step_follows_the_finite_difference_gradient(kind, targets):
    rng = np.random.default_rng(0)
    input_vectors = rng.normal(0, 0.5, (6, 4)).astype(np.float32)
    output_vectors = rng.normal(0, 0.5, (3, 4)).astype(np.float32)
    bag = np.array([0, 2, 2, 5], np.int32)  # row 2 twice: it gets twice the gradient of the mean
    targets = np.array(targets, np.int32)
    eps = 1e-4
    expected_in = np.zeros_like(input_vectors, dtype=np.float64)
    expected_out = np.zeros_like(output_vectors, dtype=np.float64)
    base_in = input_vectors.astype(np.float64)
    base_out = output_vectors.astype(np.float64)
    for r in range(input_vectors.shape[0]):
        for i in range(4):
            plus, minus = base_in.copy(), base_in.copy()
            plus[r, i] += eps
            minus[r, i] -= eps
            expected_in[r, i] = (log_likelihood(plus, base_out, bag, targets, kind)
                                 - log_likelihood(minus, base_out, bag, targets, kind)) / (2 * eps)
    for r in range(output_vectors.shape[0]):
        for i in range(4):
            plus, minus = base_out.copy(), base_out.copy()
            plus[r, i] += eps
            minus[r, i] -= eps
            expected_out[r, i] = (log_likelihood(base_in, plus, bag, targets, kind)
                                  - log_likelihood(base_in, minus, bag, targets, kind)) / (2 * eps)
    alpha = np.float32(1e-3)
    new_in, new_out = input_vectors.copy(), output_vectors.copy()
    codes, points, lengths = bag_kernels.dummy_tree()
    loss, _ = bag_kernels.train_bag(new_in, new_out, bag, targets, kind, 0, bag_kernels.dummy_table(), codes, points,
                                    lengths, np.uint64(1), alpha, np.float32(1 / len(bag)), np.zeros(4, np.float32),
                                    np.zeros(4, np.float32), True, 0)
    # one-vs-all decisions use the tabulated sigma and -log sigma (errors < 8e-4 and < 0.0025 per decision)
    loss_tolerance = dict(abs=2.5e-3 * output_vectors.shape[0]) if kind == bag_kernels.LOSS_OVA else dict(rel=1e-4)
    assert loss == pytest.approx(-log_likelihood(base_in, base_out, bag, targets, kind), **loss_tolerance)
    np.testing.assert_allclose((new_in - input_vectors) / alpha, expected_in, atol=2e-3)
    np.testing.assert_allclose((new_out - output_vectors) / alpha, expected_out, atol=2e-3)


def planted_lines(n, rng, n_labels=4, multi=False):
    """Each label owns 10 signal words; every line mixes 3 signal words with 5 shared noise words."""
    noise = [f"noise{i}" for i in range(40)]
    lines, truth = [], []
    for _ in range(n):
        labels = sorted(set(rng.integers(n_labels, size=2 if multi else 1).tolist()))
        words = [f"sig{c}_{rng.integers(10)}" for c in labels for _ in range(3)] + list(rng.choice(noise, 5))
        rng.shuffle(words)
        lines.append(" ".join(f"__label__c{c}" for c in labels) + " " + " ".join(words))
        truth.append({f"__label__c{c}" for c in labels})
    return lines, truth


@pytest.mark.parametrize("loss", ["softmax", "ns", "hs", "ova"])
def test_planted_labels_are_recovered(tmp_path, loss):
    rng = np.random.default_rng(1)
    train, _ = planted_lines(1500, rng)
    test, truth = planted_lines(300, rng)
    path = tmp_path / "train.txt"
    path.write_text("\n".join(train) + "\n")
    model = FastTextClassifier(str(path), dim=16, epoch=5, lr=0.5, word_ngrams=2, bucket=10_000, loss=loss,
                               workers=2, progress=False)
    predicted, probabilities = model.predict([t.split(" ", 1)[1] for t in test])
    accuracy = np.mean([p[0] in t for p, t in zip(predicted, truth)])
    assert accuracy > 0.95
    assert all(0.0 <= p[0] <= 1.0 for p in probabilities)


def test_predictions_from_the_trained_rows_equal_those_from_the_full_input_matrix(tmp_path):
    """A model trained from scratch predicts from the rows training touched (its full input matrix is
    built only when asked for): the same probabilities before and after the matrix is built, whose
    other rows are zero."""
    rng = np.random.default_rng(5)
    train, _ = planted_lines(400, rng)
    test, _ = planted_lines(50, rng)
    path = tmp_path / "train.txt"
    path.write_text("\n".join(train) + "\n")
    model = FastTextClassifier(str(path), dim=12, epoch=2, lr=0.5, word_ngrams=2, bucket=5_000, workers=1,
                               progress=False)
    lines = [t.split(" ", 1)[1].split() + ["unseen_word"] for t in test]
    assert model._trained_rows is not None and model._input_vectors is None
    before = model.label_probabilities(lines)
    some_rows = np.arange(0, len(model.words) + 5_000, 7)
    rows_before = model.input_rows(some_rows)
    assert model._input_vectors is None
    matrix = model.input_vectors  # built now
    assert model._trained_rows is None and matrix.shape == (len(model.words) + 5_000, 12)
    _, rows, _, _ = model.encode(None, model._tokenized(str(path)))
    untouched = np.setdiff1d(np.arange(matrix.shape[0]), rows)
    assert len(untouched) > 1_000 and not matrix[untouched].any() and matrix[np.unique(rows)].any(axis=1).all()
    np.testing.assert_allclose(model.label_probabilities(lines), before, rtol=1e-5, atol=1e-7)
    assert np.array_equal(rows_before, matrix[some_rows]) and np.array_equal(model.input_rows(some_rows), rows_before)


def test_multilabel_precision_recall_at_k(tmp_path):
    rng = np.random.default_rng(2)
    train, _ = planted_lines(2000, rng, multi=True)
    test, truth = planted_lines(300, rng, multi=True)
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(test) + "\n")
    model = FastTextClassifier(str(tmp_path / "train.txt"), dim=16, epoch=5, lr=0.5, loss="ova", workers=1,
                               progress=False)
    n, precision, recall = model.test(str(tmp_path / "test.txt"), k=2)
    predicted, _ = model.predict([t.split(" ", 2)[-1] if False else " ".join(w for w in t.split() if not w.startswith("__label__"))
                                  for t in test], k=2)
    correct = sum(len(set(p) & t) for p, t in zip(predicted, truth))
    assert n == 300
    assert precision == pytest.approx(correct / sum(len(p) for p in predicted))
    assert recall == pytest.approx(correct / sum(len(t) for t in truth))
    assert recall > 0.9
    labels, probs = model.predict("sig0_1 sig0_2 sig0_3", k=-1, threshold=0.5)
    assert "__label__c0" in labels and all(p >= 0.5 for p in probs)


@pytest.fixture(scope="module")
def facebook_classifier(tmp_path_factory):
    fasttext = pytest.importorskip("fasttext")
    directory = tmp_path_factory.mktemp("sup")
    rng = np.random.default_rng(3)
    train, _ = planted_lines(3000, rng, multi=True)
    test, _ = planted_lines(200, rng)
    test.append("__label__c1 unseen_word sig1_1 ünïcödé")
    (directory / "train.txt").write_text("\n".join(train) + "\n")
    (directory / "test.txt").write_text("\n".join(test) + "\n")
    models = {}
    for loss in ("softmax", "ova"):
        path = facebook_train(directory, "train_supervised", directory / "train.txt", dim=8, epoch=5, lr=0.1,
                              wordNgrams=3, bucket=5000, loss=loss, thread=1)
        models[loss] = (fasttext.load_model(str(path)), path)
    return models, directory, test


@pytest.mark.parametrize("loss", ["softmax", "ova"])
def test_facebook_model_predicts_the_same_here(facebook_classifier, loss):
    models, directory, test = facebook_classifier
    theirs, path = models[loss]
    ours = FastTextClassifier.load(path)
    assert ours.labels == list(theirs.labels) and ours.word_ngrams == 3 and ours.loss == loss
    texts = [" ".join(w for w in line.split() if not w.startswith("__label__")) for line in test]
    our_labels, our_probs = ours.predict(texts, k=3)
    their_labels, their_probs = theirs.predict(texts, k=3)
    # fastText's one-vs-all predict uses its 512-entry sigmoid table on [-8, 8] (error < 0.01)
    tolerance = 1e-4 if loss == "softmax" else 1e-2
    for a, b, pa, pb in zip(our_labels, their_labels, our_probs, their_probs):
        np.testing.assert_allclose(pa, pb, atol=tolerance)
        assert a[0] == b[0] or pa[0] == pytest.approx(pa[1], abs=tolerance)
    n, precision, recall = ours.test(directory / "test.txt")
    n2, precision2, recall2 = theirs.test(str(directory / "test.txt"))
    assert (n, precision, recall) == pytest.approx((n2, precision2, recall2), abs=1e-3)


def test_our_classifier_loads_in_fasttext(tmp_path, facebook_classifier):
    _, directory, test = facebook_classifier
    ours = FastTextClassifier(str(directory / "train.txt"), dim=8, epoch=2, lr=0.3, word_ngrams=2, bucket=3000,
                              workers=1, progress=False)
    ours.save(tmp_path / "ours.bin")
    fasttext = pytest.importorskip("fasttext")
    theirs = fasttext.load_model(str(tmp_path / "ours.bin"))
    texts = [" ".join(w for w in line.split() if not w.startswith("__label__")) for line in test]
    our_labels, our_probs = ours.predict(texts, k=2)
    their_labels, their_probs = theirs.predict(texts, k=2)
    for pa, pb in zip(our_probs, their_probs):
        np.testing.assert_allclose(pa, pb, atol=1e-4)
    assert [a[0] for a in our_labels] == [b[0] for b in their_labels]


def test_bad_input_gets_clear_errors(tmp_path):
    path = tmp_path / "nolabels.txt"
    path.write_text("just some words\nand more words\n")
    with pytest.raises(Word2BertError, match="no label found"):
        FastTextClassifier(str(path), progress=False)
    with pytest.raises(Word2BertError, match="not found"):
        FastTextClassifier(str(tmp_path / "missing.txt"))
    with pytest.raises(Word2BertError, match="loss"):
        FastTextClassifier(loss="bogus")
    with pytest.raises(Word2BertError, match="not trained"):
        FastTextClassifier().predict("hello")
    good = tmp_path / "good.txt"
    good.write_text("__label__a x y\n__label__b z w\n")
    model = FastTextClassifier(str(good), dim=8, epoch=1, progress=False)
    with pytest.raises(Word2BertError, match="newline"):
        model.predict("two\nlines")
    with pytest.raises(Word2BertError, match="no line has a known label"):
        model.test(str(path))


def test_command_line(tmp_path, capsys, monkeypatch):
    import io

    from word2bert.cli import main

    rng = np.random.default_rng(4)
    train, _ = planted_lines(800, rng)
    test, _ = planted_lines(50, rng)
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(test) + "\n")
    model = tmp_path / "model.bin"
    assert main(["train", "classifier", str(tmp_path / "train.txt"), "-o", str(model), "--dim", "8", "--epoch", "3",
                 "--lr", "0.5", "--bucket", "1000", "--word-ngrams", "2", "--workers", "1", "--no-progress"]) == 0
    assert main(["test", str(model), str(tmp_path / "test.txt"), "-k", "1"]) == 0
    out = capsys.readouterr().out.split()
    assert out[:2] == ["N", "50"] and float(out[3]) > 0.9
    monkeypatch.setattr("sys.stdin", io.StringIO("sig2_1 sig2_4 noise3\nsig0_0 sig0_5\n"))
    assert main(["predict", str(model), "-", "-k", "2", "--probabilities"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == "__label__c2" and lines[1].split()[0] == "__label__c0"
    (tmp_path / "plain.txt").write_text("no labels in this file\n")
    assert main(["train", "classifier", str(tmp_path / "plain.txt"), "-o", str(tmp_path / "x.bin")]) == 2
    assert "no label found" in capsys.readouterr().err
    assert main(["test", str(tmp_path / "plain.txt"), str(tmp_path / "test.txt")]) == 2
    assert "not a fastText .bin" in capsys.readouterr().err
    assert not (tmp_path / "x.bin").exists()


def test_unshuffled_order_is_fasttexts_threads_reading_side_by_side():
    """fastText's thread t starts at part t of the file and reads on (wrapping): 10 lines, 2 threads
    read 0-4 and 5-9 in turn, then swap parts; 3 threads split 10 lines as 0-2, 3-5, 6-9."""
    from word2bert.static.classifier import fasttext_line_order

    np.testing.assert_array_equal(fasttext_line_order(10, 2, 0), [0, 5, 1, 6, 2, 7, 3, 8, 4, 9])
    np.testing.assert_array_equal(fasttext_line_order(10, 2, 1), [5, 0, 6, 1, 7, 2, 8, 3, 9, 4])
    np.testing.assert_array_equal(fasttext_line_order(10, 3, 0), [0, 3, 6, 1, 4, 7, 2, 5, 8, 9])
    np.testing.assert_array_equal(fasttext_line_order(7, 1, 4), np.arange(7))
    for threads in (2, 3, 5):
        assert sorted(fasttext_line_order(23, threads, 2)) == list(range(23))


@pytest.mark.parametrize("text", [
    "__label__a x </s> y\n__label__b z </s>\n",  # the text's own </s> inside line 1
    "__label__a x y\n__label__b z </s> x\n",  # ... first seen after line 1
    "__label__a x y\r\n__label__b z\rw x\n",  # \r\n and \r end lines (universal newlines)
    "__label__a x\x1cy\u00a0z \xff\n__label__b y",  # str.split's separators, an undecodable byte, no final newline
    "</s> __label__a q\n",
])
def test_the_scanner_reads_a_file_as_python_does(tmp_path, text):
    from word2bert.static.classifier import scanned_lines
    from word2bert.static.subwords import EOS

    path = tmp_path / "train.txt"
    path.write_bytes(text.encode("utf-8", "surrogateescape").replace("\xff".encode(), b"\xff"))
    with open(path, encoding="utf-8", errors="replace", newline=None) as handle:
        expected = FastTextClassifier._tokenize([line.split() + [EOS] for line in handle])
    with pytest.warns(UnicodeWarning) if b"\xff" in path.read_bytes() else _no_warning():
        unique, local, line_offsets = scanned_lines(path)
    assert unique == expected[0]
    np.testing.assert_array_equal(local, expected[1])
    np.testing.assert_array_equal(line_offsets, expected[2])


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


def test_the_scanner_leaves_files_with_empty_lines_and_compressed_files_to_python(tmp_path):
    import gzip

    from word2bert.static.classifier import scanned_lines

    (tmp_path / "gap.txt").write_text("__label__a x\n\n__label__b y\n")
    (tmp_path / "blank_end.txt").write_text("__label__a x\n   ")
    with gzip.open(tmp_path / "train.txt.gz", "wt") as handle:
        handle.write("__label__a x\n")
    for name in ("gap.txt", "blank_end.txt", "train.txt.gz"):
        assert scanned_lines(tmp_path / name) is None
    with pytest.warns(UserWarning, match="the first is line 2"):  # read in Python: the empty line is a line
        model = FastTextClassifier(tmp_path / "gap.txt", epoch=1, workers=1)
    assert model.ntokens == 7  # its </s> counts


@pytest.mark.parametrize("kind", [bag_kernels.LOSS_SOFTMAX, bag_kernels.LOSS_OVA, bag_kernels.LOSS_NS])
def test_numpy_label_probabilities_equal_the_compiled_kernel(kind):
    from word2bert.static import classifier

    rng = np.random.default_rng(4)
    input_vectors = rng.normal(0, 1, (50, 8)).astype(np.float32)
    output_vectors = rng.normal(0, 1, (5, 8)).astype(np.float32)
    counts = np.array([0, 3, 0, 1, 7, 0, 0, 2, 4, 1, 0, 5, 0])  # empty bags first, last and between
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    rows = rng.integers(0, 50, offsets[-1]).astype(np.int32)
    codes, points, lengths = bag_kernels.dummy_tree()
    ours = classifier.label_probabilities(input_vectors, output_vectors, offsets, rows, kind, codes, points, lengths)
    compiled = classifier._label_probabilities(input_vectors, output_vectors, offsets, rows, kind, codes, points,
                                               lengths)
    assert ours.dtype == np.float32 and ours.shape == (len(counts), 5)
    np.testing.assert_allclose(ours, compiled, rtol=1e-5, atol=1e-6)
    assert not ours[counts == 0].any()
    # by hand for one bag: the mean of its rows, then softmax or sigmoid of W h
    hidden = input_vectors[rows[offsets[4]:offsets[5]]].astype(np.float64).mean(axis=0)
    scores = output_vectors.astype(np.float64) @ hidden
    expected = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum() \
        if kind == bag_kernels.LOSS_SOFTMAX else 1 / (1 + np.exp(-scores))
    np.testing.assert_allclose(ours[4], expected, rtol=1e-5)


def reference_example_rows(token_ids, token_hashes, line_offsets, nwords, bucket, word_ngrams, sub_offsets, sub_rows,
                           oov_index, oov_offsets, oov_rows):
    """fastText's Dictionary::getLine + addWordNgrams written out line by line in plain Python."""
    lines = []
    for e in range(len(line_offsets) - 1):
        rows, hashes = [], []
        for t in range(line_offsets[e], line_offsets[e + 1]):
            w = token_ids[t]
            if w == -2:
                continue
            if w >= 0:
                rows += list(sub_rows[sub_offsets[w]:sub_offsets[w + 1]])
            else:
                rows += list(oov_rows[oov_offsets[oov_index[t]]:oov_offsets[oov_index[t] + 1]])
            signed = int(token_hashes[t]) - (1 << 32) if token_hashes[t] >= 1 << 31 else int(token_hashes[t])
            hashes.append(signed % (1 << 64))  # uint64(int32 hash)
        for i in range(len(hashes)):
            h = hashes[i]
            for j in range(i + 1, min(len(hashes), i + word_ngrams)):
                h = (h * 116049371 + hashes[j]) % (1 << 64)
                rows.append(nwords + h % bucket)
        lines.append(rows)
    return lines


def test_encoded_rows_follow_fasttexts_getline_written_out():
    from word2bert.static.classifier import _encode_examples

    rng = np.random.default_rng(7)
    nwords, bucket = 6, 1000
    sub_offsets = np.array([0, 1, 3, 4, 7, 8, 9], np.int64)  # words with 0-2 character n-gram rows
    sub_rows = rng.integers(0, 50, 9).astype(np.int32)
    oov_offsets = np.array([0, 2, 2, 5], np.int64)  # three OOV words, one without n-grams
    oov_rows = rng.integers(6, 50, 5).astype(np.int32)
    lengths = [0, 1, 4, 2, 7, 3, 0, 5]  # an empty line, one of one word, and lines with labels (-2)
    token_ids = rng.choice([-2, -1, 0, 1, 2, 3, 4, 5], sum(lengths), p=[.15, .15, .2, .1, .1, .1, .1, .1])
    oov_index = np.where(token_ids == -1, rng.integers(0, 3, len(token_ids)), 0)
    token_hashes = rng.integers(0, 1 << 32, len(token_ids), dtype=np.uint64).astype(np.int64)  # half above 2^31
    line_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    for word_ngrams in (1, 2, 3):
        args = (token_ids, token_hashes, line_offsets, nwords, bucket, word_ngrams, sub_offsets, sub_rows, oov_index,
                oov_offsets, oov_rows)
        offsets, rows = _encode_examples(*args)
        expected = reference_example_rows(*args)
        assert rows.dtype == np.int32 and len(offsets) == len(lengths) + 1
        assert [rows[offsets[e]:offsets[e + 1]].tolist() for e in range(len(lengths))] == expected
