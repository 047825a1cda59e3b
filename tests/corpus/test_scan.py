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


def generated_text(seed, n_lines=400):
    """Random lines with every hard case of a scan: \\r\\n, \\r and \\n line ends, empty and blank lines, a
    line longer than the sentence limit, undecodable bytes, Unicode spaces and letters, controls, case."""
    rng = np.random.default_rng(seed)
    common = [f"w{i}".encode() for i in range(60)] + ["caf\u00e9".encode(), "CAF\u00c9".encode(), b"Word", b"WORD",
                                                       b"bad\xe9", b"bad\xe8", b"x\x01y", "\u65e5\u672c".encode()]
    spaces = [b" ", b"\t", b"  ", "\u00a0".encode(), "\u3000".encode(), b"\x1c"]
    line_ends = [b"\n", b"\r\n", b"\r"]
    lines = []
    for number in range(n_lines):
        kind = rng.integers(10)
        if kind == 0:
            lines.append(b"" if rng.integers(2) else b" \t ")
            continue
        n_tokens = 40 if kind == 1 else int(rng.integers(1, 12))  # 40: longer than max_sentence_length 15
        tokens = [common[i] for i in rng.integers(len(common), size=n_tokens)]
        if number > n_lines // 2 and rng.integers(3) == 0:
            tokens.append(f"late{number % 7}".encode())  # first seen in the second half, some only there
        lines.append(b"".join(token + spaces[rng.integers(len(spaces))] for token in tokens))
    ends = [line_ends[i] for i in rng.integers(len(line_ends), size=n_lines)]
    return b"".join(line + end for line, end in zip(lines, ends))


def assert_same_scan(expected, actual):
    assert actual.words == expected.words
    np.testing.assert_array_equal(actual.counts, expected.counts)
    np.testing.assert_array_equal(actual.tokens, expected.tokens)
    np.testing.assert_array_equal(actual.offsets, expected.offsets)
    assert actual.tokens.dtype == expected.tokens.dtype and actual.offsets.dtype == expected.offsets.dtype
    assert actual.stats == expected.stats


@pytest.fixture
def two_parts_from_small_files(monkeypatch):
    from word2bert.corpus import scan

    monkeypatch.setattr(scan, "TWO_PARTS_BYTES", 1)
    monkeypatch.setattr(scan, "BLOCK_BYTES", 61)  # many blocks in each part
    return scan


@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_two_part_scan_equals_one_part_scan(tmp_path, two_parts_from_small_files, seed, lowercase):
    data = generated_text(seed)
    if seed % 2:
        data = data.rstrip(b"\r\n") + b" last line without a line end"
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    assert two_parts_from_small_files._split_point(path) is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnicodeWarning)
        one = scan_file(path, lowercase, 15, workers=1)
        two = scan_file(path, lowercase, 15, workers=2)
    assert_same_scan(one, two)
    assert one.stats.undecodable_lines > 0 and one.stats.control_bytes > 0
    assert any(word.startswith("late") for word in one.words)
    expected_vocab, expected = python_reading(path, lowercase, 15, 1)
    vocab = vocabulary_of(merge_duplicates(two), 1)
    assert vocab.words == expected_vocab.words
    np.testing.assert_array_equal(encode_scan(merge_duplicates(two), vocab).tokens, expected.tokens)


@pytest.mark.parametrize("first_half_end, second_half_start, cut_after", [
    (b"a b\r", b"\nc d\n", 1),  # the middle byte is the \n of a \r\n: cut after it
    (b"a b", b"\r\nc d\n", 2),  # the middle byte is the \r of a \r\n: cut after both
    (b"a b", b"\rc d\n", 1),  # a lone \r
    (b"a b\n", b"\n\n \nc d\n", 1),  # empty and blank lines after the cut
    (b"a b", b" c d\r\n\r\n", 6),  # the middle in a line: cut after its end
])
def test_two_parts_are_cut_after_a_whole_line_end(tmp_path, two_parts_from_small_files, first_half_end,
                                                  second_half_start, cut_after):
    second_half = second_half_start + b"late a\rb late\n\n" + b"x " * 10 + b"tail"
    first_half = b"first line\r\nlate? no: a b a\n" + first_half_end
    first_half = b"y" * (len(second_half) - len(first_half)) + first_half  # the middle byte starts the second half
    path = tmp_path / "corpus.txt"
    path.write_bytes(first_half + second_half)
    assert two_parts_from_small_files._split_point(path) == len(first_half) + cut_after
    one = scan_file(path, False, 4, workers=1)
    two = scan_file(path, False, 4, workers=2)
    assert_same_scan(one, two)


def test_two_part_scan_advances_progress_by_every_token_and_refuses_binaries(tmp_path, two_parts_from_small_files):
    class Progress:
        total = 0

        def update(self, n):
            self.total += n

    path = tmp_path / "corpus.txt"
    path.write_bytes(generated_text(7).replace(b"\xe9", b"e").replace(b"\xe8", b"e"))
    progress = Progress()
    scanned = scan_file(path, progress=progress, workers=2)
    assert progress.total == len(scanned.tokens) > 0
    assert len(two_parts_from_small_files._scan_block.signatures) == 1  # no second compilation for the join
    rng = np.random.default_rng(1)
    binary = tmp_path / "program"
    binary.write_bytes(bytes(rng.integers(0, 256, 200_000, dtype=np.uint8)))
    with pytest.raises(Word2BertError, match="does not look like a text file"):
        scan_file(binary, workers=2)


def test_compressed_small_and_lineless_files_are_read_in_one_part(tmp_path, monkeypatch):
    from word2bert.corpus import scan

    text = generated_text(3)
    compressed = tmp_path / "corpus.txt.gz"
    compressed.write_bytes(gzip.compress(text))
    plain = tmp_path / "corpus.txt"
    plain.write_bytes(text)
    one_line = tmp_path / "one_line.txt"
    one_line.write_bytes(b"a b c " * 100 + b"\n")
    assert scan._split_point(plain) is None  # smaller than TWO_PARTS_BYTES
    monkeypatch.setattr(scan, "TWO_PARTS_BYTES", 1)
    assert scan._split_point(compressed) is None and scan._split_point(one_line) is None
    assert scan._split_point(plain) is not None


def test_words_are_decoded_as_python_decodes_each_line(tmp_path):
    rng = np.random.default_rng(5)
    alphabet = np.array([b for b in range(256) if b not in (9, 10, 11, 12, 13, 28, 29, 30, 31, 32)] + list(
        range(0x80, 0x100)) * 3, np.uint8)  # mostly bytes of multibyte sequences, valid or not
    lines = [b" ".join(alphabet[rng.integers(len(alphabet), size=rng.integers(1, 7))].tobytes()
                       for _ in range(rng.integers(1, 9))) for _ in range(3000)]
    path = tmp_path / "bytes.txt"
    path.write_bytes(b"\n".join(lines))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnicodeWarning)
        scanned = scan_file(path, check=False)
    expected = dict.fromkeys(word for line in path.read_bytes().decode("utf-8", "replace").split("\n")
                             for word in line.split())
    assert merge_duplicates(scanned).words == list(expected)
