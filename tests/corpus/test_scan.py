"""The compiled scanner reads a file exactly as Python's own reading does (``open_text`` +
``line.split()``: LineSentence, Vocabulary.build, EncodedCorpus.encode), and tells text from binaries."""

import gzip
import warnings

import numpy as np
import pytest

from word2bert.corpus import EncodedCorpus, LineSentence, Vocabulary
from word2bert.corpus.scan import check_text, encode_scan, merge_duplicates, scan_file, vocabulary_of
from word2bert.errors import Word2BertError

# every kind of separator str.split() knows, universal newlines, undecodable bytes, controls, case
TRICKY = ("hello world\r\nfoo\tbar\x0bbaz\x1cqux\rnext line\u00a0nbsp\u2003em\u3000ideo\u2028ls\x85nel end\n"
          "caf\u00e9 CAF\u00c9 Caf\u00e9 \u0130stanbul istanbul \u212a k K \u03a3\u039f\u03a3 \u03c3\u03bf\u03c2\n"
          "\n\n   \n" + " ".join("abcdefghijklmnopq") + "\n").encode("utf-8") + (
    b"bad\xe9byte caf\xe9 caf\xe8 ok\xc3\n\x00nul x\x7fy \xed\xa0\x80sur \xf0\x9f\x98\x80emoji \xe2\x80bad\n"
    b"over\xc0\xafong \xf4\x90\x80\x80big\nlast line without a newline")


def python_reading(path, lowercase, max_length, min_count):
    lines = LineSentence(path, lowercase=lowercase, max_sentence_length=max_length)
    vocab = Vocabulary.build(lines, min_count=min_count)
    return vocab, EncodedCorpus.encode(lines, vocab)


@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("max_length", [7, 10_000])
def test_scan_equals_pythons_reading(tmp_path, lowercase, max_length):
    path = tmp_path / "tricky.txt"
    path.write_bytes(TRICKY)
    expected_vocab, expected = python_reading(path, lowercase, max_length, 1)
    with pytest.warns(UnicodeWarning, match="lines hold bytes that are not UTF-8"):
        scanned = merge_duplicates(scan_file(path, lowercase, max_length))
    vocab = vocabulary_of(scanned, 1)
    encoded = encode_scan(scanned, vocab)
    assert vocab.words == expected_vocab.words
    np.testing.assert_array_equal(vocab.counts, expected_vocab.counts)
    assert vocab.raw_total_words == expected_vocab.raw_total_words
    np.testing.assert_array_equal(encoded.tokens, expected.tokens)
    np.testing.assert_array_equal(encoded.offsets, expected.offsets)
    assert encoded.raw_word_count == expected.raw_word_count
    assert scanned.stats.undecodable_lines == 3 and scanned.stats.control_bytes == 2


def test_scan_of_a_larger_random_file_across_blocks(tmp_path, monkeypatch):
    from word2bert.corpus import scan

    monkeypatch.setattr(scan, "BLOCK_BYTES", 997)  # lines cut across many blocks
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)] + ["caf\u00e9", "na\u00efve", "\u65e5\u672c"]
    lines = [" ".join(rng.choice(words, rng.integers(0, 30))) for _ in range(800)]
    path = tmp_path / "corpus.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("\r\n".join(lines))
    expected_vocab, expected = python_reading(path, False, 11, 3)
    scanned = merge_duplicates(scan_file(path, False, 11))
    vocab = vocabulary_of(scanned, 3)
    assert vocab.words == expected_vocab.words
    np.testing.assert_array_equal(vocab.counts, expected_vocab.counts)
    encoded = encode_scan(scanned, vocab)
    np.testing.assert_array_equal(encoded.tokens, expected.tokens)
    np.testing.assert_array_equal(encoded.offsets, expected.offsets)


def test_binary_files_are_refused(tmp_path):
    rng = np.random.default_rng(1)
    elf = bytes([0x7F, 0x45, 0x4C, 0x46]) + bytes(rng.integers(0, 256, 200_000, dtype=np.uint8))
    path = tmp_path / "program"
    path.write_bytes(elf)
    with pytest.raises(Word2BertError, match="does not look like a text file"):
        scan_file(path)
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("some text\nin UTF-16\n".encode("utf-16"))
    with pytest.raises(Word2BertError, match="UTF-16"):
        scan_file(utf16)


def test_mostly_text_with_some_latin1_lines_is_read_with_a_warning(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(("plain text line\n" * 50).encode() + "caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    with pytest.warns(UnicodeWarning, match="1 of 51 lines hold bytes that are not UTF-8"):
        scanned = scan_file(path)
    assert "caf\ufffd" in scanned.words


def test_check_text_thresholds(tmp_path):
    from word2bert.corpus.scan import TextStats

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_text("f", TextStats(lines=10, bytes=1000, undecodable_bytes=0, undecodable_lines=0, control_bytes=0))
    with pytest.raises(Word2BertError, match="40%"):
        check_text("f", TextStats(lines=10, bytes=1000, undecodable_bytes=300, undecodable_lines=10, control_bytes=100))


def test_empty_and_out_of_vocabulary_corpora(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    with pytest.raises(Word2BertError, match="empty"):
        vocabulary_of(scan_file(empty), 1)
    path = tmp_path / "few.txt"
    path.write_text("a b c\n")
    with pytest.raises(Word2BertError, match="min_count=5"):
        vocabulary_of(scan_file(path), 5)


def test_merge_duplicates_keeps_a_scan_without_duplicates_and_merges_one_with_them(tmp_path):
    from word2bert.corpus.scan import ScannedFile, TextStats

    stats = TextStats(lines=2, bytes=20, undecodable_bytes=2, undecodable_lines=2, control_bytes=0)
    distinct = ScannedFile(["a", "b", "c"], np.array([2, 1, 1]), np.array([0, 1, 0, 2], np.int32),
                           np.array([0, 2, 4]), stats)
    assert merge_duplicates(distinct) is distinct
    # b"x\xe9" and b"x\xe8" both read as "x\ufffd": one word, first seen at position 1
    duplicated = ScannedFile(["a", "x\ufffd", "b", "x\ufffd"], np.array([1, 2, 1, 3]),
                             np.array([0, 1, 3, 2, 3, 1, 3], np.int32), np.array([0, 3, 7]), stats)
    merged = merge_duplicates(duplicated)
    assert merged.words == ["a", "x\ufffd", "b"]
    np.testing.assert_array_equal(merged.counts, [1, 5, 1])
    np.testing.assert_array_equal(merged.tokens, [0, 1, 1, 2, 1, 1, 1])
    assert merged.tokens.dtype == np.int32
    np.testing.assert_array_equal(merged.offsets, duplicated.offsets)


def test_encode_scan_drops_out_of_vocabulary_tokens_and_sentences_left_empty(tmp_path):
    path = tmp_path / "few.txt"
    path.write_text("a b rare\nrare\n\nb a\nother rare\na\n")
    scanned = scan_file(path)
    vocab = Vocabulary(["a", "b"], [3, 2])
    encoded = encode_scan(scanned, vocab)
    assert encoded.tokens.dtype == np.int32 and encoded.offsets.dtype == np.int64
    np.testing.assert_array_equal(encoded.tokens, [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(encoded.offsets, [0, 2, 4, 5])
    assert encoded.raw_word_count == 9
    with pytest.raises(Word2BertError, match="no token of the corpus is in the vocabulary"):
        encode_scan(scanned, Vocabulary(["zzz"], [1]))


def test_a_crlf_cut_between_two_reads_is_one_line_end(tmp_path, monkeypatch):
    from word2bert.corpus import scan

    path = tmp_path / "crlf.txt"
    path.write_bytes(b"abc def\r\nxy\r\n\r\nz\r\n")
    whole = scan_file(path)
    monkeypatch.setattr(scan, "BLOCK_BYTES", 8)  # the first read ends between \r and \n
    cut = scan_file(path)
    assert whole.stats.lines == cut.stats.lines == 4
    assert whole.words == cut.words
    np.testing.assert_array_equal(whole.tokens, cut.tokens)
    np.testing.assert_array_equal(whole.offsets, cut.offsets)
