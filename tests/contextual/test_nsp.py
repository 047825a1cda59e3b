"""NSP pre-training data: packing to max_seq_length, 50/50 next/random pairs, truncation, formats."""

import random

import numpy as np
import pytest

from word2bert.corpus.wordpiece import WordPieceTokenizer
from word2bert.errors import Word2BertError
from word2bert.objectives.nsp import IS_NEXT, RANDOM_NEXT, create_instances_from_document, truncate_seq_pair
from word2bert.objectives.pretraining import PretrainingDataset, read_documents

CLS, SEP = 2, 3


def reference_truncate(a, b, max_num_tokens):
    """google-research/bert's truncate_seq_pair (lengths only)."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_num_tokens:
        (a if len(a) > len(b) else b).pop()
    return len(a), len(b)


def test_truncate_seq_pair_matches_bert_and_cuts_both_ends():
    rng = np.random.default_rng(0)
    for len_a in range(0, 15):
        for len_b in range(0, 15):
            for limit in range(1, 30):
                a, b = truncate_seq_pair(np.arange(len_a), np.arange(100, 100 + len_b), limit, rng)
                assert (len(a), len(b)) == reference_truncate(range(len_a), range(len_b), limit)
                # what remains is a contiguous run of the original
                assert len(a) == 0 or np.all(np.diff(a) == 1)
    fronts = [truncate_seq_pair(np.arange(20), np.arange(2), 12, rng)[0][0] for _ in range(2000)]
    # 10 removals from a, each from the front with probability 1/2: mean 5 from the front
    assert abs(np.mean(fronts) - 5.0) < 0.2


def synthetic_documents(n_documents=100, seed=0, sentences=(40, 60)):
    """Document d's sentences hold ids encoding (d, sentence): 1000*d + 10*s + k."""
    rng = np.random.default_rng(seed)
    documents = []
    for d in range(n_documents):
        documents.append([np.arange(1000 * d + 10 * s + 5, 1000 * d + 10 * s + 5 + rng.integers(3, 6), dtype=np.int32)
                          for s in range(rng.integers(*sentences))])
    return documents


def test_instances_pack_to_length_and_nsp_is_half_random():
    documents = synthetic_documents()
    dataset = PretrainingDataset.from_documents(documents, CLS, SEP, max_seq_length=32, short_seq_prob=0.1,
                                                dupe_factor=3, seed=1)
    labels = dataset.next_sentence_labels
    n = len(labels)
    assert n > 1000
    # BERT's coin is fair, except that a chunk of a single sentence (rare here: documents are
    # long and sentences short) must take a random B
    assert abs((labels == RANDOM_NEXT).mean() - 0.5) < 4 * np.sqrt(0.25 / n)
    lengths = np.diff(dataset.offsets)
    assert lengths.max() <= 32
    assert np.median(lengths) >= 24  # packed close to the target, not one sentence per instance
    for i in range(0, n, 7):
        item = dataset[i]
        ids, types = item["input_ids"], item["token_type_ids"]
        b_start = dataset.segment_b_starts[i]
        assert ids[0] == CLS and ids[b_start - 1] == SEP and ids[-1] == SEP
        assert (types[:b_start] == 0).all() and (types[b_start:] == 1).all()
        a, b = ids[1:b_start - 1], ids[b_start:-1]
        assert len(a) and len(b)
        doc_a, doc_b = a // 1000, b // 1000
        assert (doc_a == doc_a[0]).all() and (doc_b == doc_b[0]).all()
        if item["next_sentence_label"] == IS_NEXT:
            # the true continuation: same document, B starts right after A ends
            assert doc_a[0] == doc_b[0] and b[0] > a[-1]
        else:
            assert doc_a[0] != doc_b[0]


def test_short_seq_prob_gives_short_targets():
    documents = synthetic_documents(seed=2)
    rng, np_rng = random.Random(0), np.random.default_rng(0)
    lengths = [len(a) + len(b) for d in range(len(documents))
               for a, b, _ in create_instances_from_document(documents, d, 64, 1.0, rng, np_rng)]
    long = [len(a) + len(b) for d in range(len(documents))
            for a, b, _ in create_instances_from_document(documents, d, 64, 0.0, random.Random(0), np_rng)]
    assert np.mean(lengths) < 0.8 * np.mean(long)


def test_read_documents_both_formats(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(20)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = WordPieceTokenizer.from_file(tmp_path / "vocab.txt")
    bert_format = tmp_path / "bert.txt"
    bert_format.write_text("w1 w2 w3\nw4 w5\n\nw6 w7\nw8\nw9 w10\n\n\n", encoding="utf-8")
    documents = read_documents(bert_format, tokenizer)
    assert [[s.tolist() for s in d] for d in documents] == [[[6, 7, 8], [9, 10]], [[11, 12], [13], [14, 15]]]
    line_format = tmp_path / "lines.txt"
    line_format.write_text(" ".join(f"w{i % 20}" for i in range(10)) + "\nw3 w4\n", encoding="utf-8")
    documents = read_documents(line_format, tokenizer, words_per_sentence=4)
    assert [len(s) for s in documents[0]] == [4, 4, 2] and len(documents) == 2


def test_empty_corpus_clear_message(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n", encoding="utf-8")
    tokenizer = WordPieceTokenizer.from_file(vocab)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(Word2BertError, match="empty"):
        PretrainingDataset.from_file(empty, tokenizer)
    with pytest.raises(Word2BertError, match="empty"):
        PretrainingDataset.from_documents([], CLS, SEP)
    with pytest.raises(Word2BertError, match="not found"):
        PretrainingDataset.from_file(tmp_path / "missing.txt", tokenizer)
