"""Parallel data (TSV errors, joint BPE, encoding limits), BLEU/chrF and the word-for-word baseline."""

import lzma

import numpy as np
import pytest

from word2bert.corpus.parallel import (
    ParallelDataset,
    collate_translation,
    decode_translations,
    read_parallel_tsv,
    special_ids,
    train_joint_bpe,
)
from word2bert.errors import Word2BertError
from word2bert.evaluate.translation import WordForWordTranslator, tokenize_13a, translation_scores

pytest.importorskip("sacrebleu")


def test_tsv_reading_and_errors_name_the_line(tmp_path):
    good = tmp_path / "pairs.tsv.xz"
    with lzma.open(good, "wt", encoding="utf-8") as handle:
        handle.write("a cat\tun chat\n\nthe dog\tle chien\n")
    assert read_parallel_tsv(good) == [("a cat", "un chat"), ("the dog", "le chien")]
    assert read_parallel_tsv(good, max_pairs=1) == [("a cat", "un chat")]
    bad = tmp_path / "bad.tsv"
    bad.write_text("a cat\tun chat\nno tab here\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match=r"bad.tsv:2: no tab"):
        read_parallel_tsv(bad)
    bad.write_text("a cat\tun chat\n \tvide\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match=r"bad.tsv:2: empty source"):
        read_parallel_tsv(bad)
    bad.write_text("a cat\t \n", encoding="utf-8")
    with pytest.raises(Word2BertError, match=r"bad.tsv:1: empty target"):
        read_parallel_tsv(bad)
    with pytest.raises(Word2BertError, match="not found"):
        read_parallel_tsv(tmp_path / "missing.tsv")


PAIRS = [("the cat sleeps", "le chat dort"), ("the dog sleeps", "le chien dort"), ("a cat eats", "un chat mange"),
         ("a dog eats", "un chien mange"), ("the cat eats", "le chat mange"), ("a dog sleeps", "un chien dort")] * 5


def test_joint_bpe_encodes_both_sides_and_decodes_back():
    tokenizer = train_joint_bpe([t for pair in PAIRS for t in pair], vocab_size=300, languages=("en", "fr"))
    ids = special_ids(tokenizer)
    assert [ids[k] for k in ("eos", "pad", "bos", "mask")] == [0, 1, 2, 3]
    assert tokenizer.token_to_id("<en>") == 4 and tokenizer.token_to_id("<fr>") == 5
    data = ParallelDataset.encode(PAIRS[:2], tokenizer, max_length=20)
    assert data[0]["input_ids"][-1] == 0 and data[0]["labels"][-1] == 0
    assert decode_translations(tokenizer, [data[1]["labels"].tolist() + [1, 1]]) == ["le chien dort"]
    batch = collate_translation([data[0], data[1]], pad_id=1)
    assert batch["labels"].shape == batch["input_ids"].shape[:1] + batch["labels"].shape[1:]
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    with pytest.raises(Word2BertError, match="pair 2: the source has .* more than the model's 3 positions"):
        ParallelDataset.encode([("a", "un"), ("the cat sleeps", "le chat dort")], tokenizer, max_length=3)


def test_word_for_word_baseline_recovers_a_planted_dictionary():
    model = WordForWordTranslator.fit(PAIRS)
    assert model.table["cat"] == "chat" and model.table["dog"] == "chien" and model.table["eats"] == "mange"
    assert model.translate("the dog eats") == "le chien mange"
    assert model.translate("a zebra") == "un zebra"  # unknown words are copied


def test_translation_scores():
    scores = translation_scores(["le chat dort ."], ["le chat dort."])
    assert scores["bleu"] == pytest.approx(100.0) and scores["chrf"] == pytest.approx(100.0)
    assert "tok:13a" in scores["bleu_signature"]
    assert tokenize_13a("fichier.") == ["fichier", "."]
    partial = translation_scores(["le chien dort"], ["le chat dort"])
    assert 0 < partial["chrf"] < 100
    with pytest.raises(Word2BertError, match="references"):
        translation_scores(["a"], [])


def test_pad_rows_shape():
    from word2bert.corpus.parallel import pad_rows

    out = pad_rows([np.array([1, 2]), np.array([3])], 9)
    assert out.tolist() == [[1, 2], [3, 9]]
