"""word2vec text/binary and GloVe files: word2vec.c's layout, gensim both ways, bad files."""

import gzip
import struct

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.interop.word2vec_format import (
    detect_format,
    format_from_extension,
    read_glove_format,
    read_word2vec_format,
    write_glove_format,
    write_word2vec_format,
)
from word2bert.vectors import KeyedVectors

gensim_models = pytest.importorskip("gensim.models")

WORDS = ["the", "of", "</s>", "naïve", "日本", "a-b", "x"]


@pytest.fixture
def table():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((len(WORDS), 5)).astype(np.float32)
    vectors[0, 0] = 1e-7  # tiny values must survive text
    vectors[1, 1] = -123456.78
    return vectors, list(WORDS)


def distance_c_reader(path):
    """An independent minimal reader following word2vec.c's distance.c.

    fscanf("%lld", &words); fscanf("%lld", &size); then per word: fgetc until ' ' (a '\\n' is
    not stored), then fread(size floats). Bytes are read one at a time like fgetc.
    """
    data = open(path, "rb").read()
    pos = 0

    def scan_int():
        nonlocal pos
        while data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while data[pos:pos + 1].isdigit():
            pos += 1
        return int(data[start:pos])

    words, size = scan_int(), scan_int()
    vocab, rows = [], []
    for _ in range(words):
        word = bytearray()
        while True:
            char = data[pos:pos + 1]
            pos += 1
            if not char or char == b" ":
                break
            if char != b"\n":
                word += char
        rows.append(struct.unpack(f"<{size}f", data[pos:pos + 4 * size]))
        pos += 4 * size
        vocab.append(word.decode("utf-8"))
    return vocab, np.array(rows, dtype=np.float32)


def test_binary_is_byte_for_byte_word2vec_c_layout(table, tmp_path):
    vectors, words = table
    path = tmp_path / "v.bin"
    write_word2vec_format(path, vectors, words, binary=True)
    expected = f"{len(words)} 5\n".encode() + b"".join(
        w.encode("utf-8") + b" " + struct.pack("<5f", *row) + b"\n" for w, row in zip(words, vectors))
    assert path.read_bytes() == expected
    vocab, rows = distance_c_reader(path)
    assert vocab == words
    np.testing.assert_array_equal(rows, vectors)


@pytest.mark.parametrize("binary", [True, False])
def test_gensim_reads_ours(table, tmp_path, binary):
    vectors, words = table
    path = tmp_path / "v.w2v"
    write_word2vec_format(path, vectors, words, binary=binary)
    theirs = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert theirs.index_to_key == words
    np.testing.assert_allclose(theirs.vectors, vectors, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("binary", [True, False])
def test_we_read_gensims(table, tmp_path, binary):
    vectors, words = table
    reference = gensim_models.KeyedVectors(5)
    reference.add_vectors(words, vectors)
    path = tmp_path / "g.w2v"
    reference.save_word2vec_format(str(path), binary=binary)  # gensim's binary has no '\n' after a vector
    for detected in (None, binary):
        got, got_words = read_word2vec_format(path, binary=detected)
        assert got_words == words
        np.testing.assert_allclose(got, vectors, rtol=1e-6, atol=1e-6)


def test_reads_word2vec_c_text_with_trailing_spaces(tmp_path):
    # word2vec.c: fprintf("%s ", word); fprintf("%lf ", value) per value; fprintf("\n")
    rows = np.array([[0.5, -0.25, 1.0], [2.0, 3.0, -4.125]])
    text = "2 3\n" + "".join(w + " " + "".join("%lf " % v for v in r) + "\n" for w, r in zip(["a", "b"], rows))
    path = tmp_path / "c.txt"
    path.write_text(text)
    got, words = read_word2vec_format(path)
    assert words == ["a", "b"]
    np.testing.assert_array_equal(got, rows.astype(np.float32))
    assert detect_format(path) == "word2vec-text"


def test_text_round_trip_is_exact(table, tmp_path):
    vectors, words = table
    path = tmp_path / "v.txt"
    write_word2vec_format(path, vectors, words)
    got, got_words = read_word2vec_format(path)
    assert got_words == words
    np.testing.assert_array_equal(got, vectors)


def test_compressed_files(table, tmp_path):
    vectors, words = table
    for name, binary in (("v.txt.gz", False), ("v.bin.gz", True)):
        write_word2vec_format(tmp_path / name, vectors, words, binary=binary)
        with gzip.open(tmp_path / name, "rb") as handle:
            assert handle.read(4) == f"{len(words)} 5\n".encode()
        got, got_words = read_word2vec_format(tmp_path / name)
        assert got_words == words
        np.testing.assert_array_equal(got, vectors)
        assert KeyedVectors.load(tmp_path / name).index_to_key == words


def test_undecodable_bytes_are_replaced_not_fatal(tmp_path):
    record = struct.pack("<2f", 1.0, 2.0)
    path = tmp_path / "bad-utf8.bin"
    path.write_bytes(b"2 2\n" + b"ok " + record + b"\n" + b"caf\xe9 " + record + b"\n")
    got, words = read_word2vec_format(path, binary=True)
    assert words == ["ok", "caf\ufffd"]
    text = tmp_path / "bad-utf8.txt"
    text.write_bytes(b"1 2\ncaf\xe9 1 2\n")
    assert read_word2vec_format(text)[1] == ["caf\ufffd"]


def test_limit_reads_the_first_rows(table, tmp_path):
    vectors, words = table
    for binary in (True, False):
        path = tmp_path / f"v{binary}"
        write_word2vec_format(path, vectors, words, binary=binary)
        got, got_words = read_word2vec_format(path, binary=binary, limit=3)
        assert got_words == words[:3]
        np.testing.assert_array_equal(got, vectors[:3])


def test_duplicate_words_keep_the_first_vector(tmp_path):
    path = tmp_path / "dup.txt"
    path.write_text("3 2\na 1 2\nb 3 4\na 5 6\n")
    got, words = read_word2vec_format(path)
    assert words == ["a", "b"]
    np.testing.assert_array_equal(got, [[1, 2], [3, 4]])


def test_glove_round_trip_and_gensim(table, tmp_path):
    vectors, words = table
    path = tmp_path / "glove.txt"
    write_glove_format(path, vectors, words)
    assert path.read_text(encoding="utf-8").split("\n", 1)[0].split(" ")[0] == "the"
    assert detect_format(path) == "glove"
    got, got_words = read_glove_format(path)
    assert got_words == words
    np.testing.assert_array_equal(got, vectors)
    theirs = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True)
    np.testing.assert_allclose(theirs.vectors, vectors, rtol=1e-6, atol=1e-6)


def test_format_detection_and_extensions(table, tmp_path):
    vectors, words = table
    write_word2vec_format(tmp_path / "a.vec", vectors, words, binary=True)  # misleading name
    assert detect_format(tmp_path / "a.vec") == "word2vec-binary"
    assert format_from_extension("x/y.bin") == "word2vec-binary"
    assert format_from_extension("y.txt.gz") == "word2vec-text"
    assert format_from_extension("y.npz") == "npz"
    assert format_from_extension("y.model") is None


# --- bad files ---------------------------------------------------------------------------------

def test_truncated_binary_names_the_file(table, tmp_path):
    vectors, words = table
    path = tmp_path / "cut.bin"
    write_word2vec_format(path, vectors, words, binary=True)
    path.write_bytes(path.read_bytes()[:-15])
    with pytest.raises(Word2BertError, match=r"cut\.bin: truncated or corrupt .* promises 7 vectors"):
        read_word2vec_format(path, binary=True)


def test_binary_with_more_data_than_the_header_says(table, tmp_path):
    vectors, words = table
    path = tmp_path / "long.bin"
    write_word2vec_format(path, vectors, words, binary=True)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"7 5\n", b"6 5\n", 1))
    with pytest.raises(Word2BertError, match=r"long\.bin: unexpected data after the 6 vectors"):
        read_word2vec_format(path, binary=True)


@pytest.mark.parametrize("content, message", [
    ("2 3\na 1 2 3\nb 1 2\n", r"t\.txt: line 3: expected 3 numbers after the word, found 2"),
    ("2 3\na 1 2 3\nb 1 x 3\n", r"t\.txt: line 3: not a number: 'x'"),
    ("3 3\na 1 2 3\nb 1 2 3\n", r"t\.txt: the header promises 3 vectors but the file has 2"),
    ("1 3\na 1 2 3\nb 1 2 3\n", r"t\.txt: the header promises 1 vectors but the file has 2"),
    ("hello world\n", r"t\.txt: line 1: expected a word2vec header"),
    ("2 3\na 1 2 3\nb\n", r"t\.txt: line 3: expected 'word v1 ... vd'"),
])
def test_bad_text_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "t.txt"
    path.write_text(content)
    with pytest.raises(Word2BertError, match=message):
        read_word2vec_format(path, binary=False)


def test_glove_rows_of_different_length(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("a 1 2 3\nb 1 2 3\nc 1 2\n")
    with pytest.raises(Word2BertError, match=r"g\.txt: line 3: expected 3 numbers"):
        read_glove_format(path)


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old content")
    with pytest.raises(Word2BertError, match="whitespace"):
        write_word2vec_format(path, np.zeros((2, 2)), ["ok", "two words"])
    assert path.read_text() == "old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


# --- the compiled text parser ---------------------------------------------------------------------

def test_compiled_text_parser_agrees_with_python_float():
    from word2bert.interop.word2vec_format import _fast_text_records

    rng = np.random.default_rng(9)
    values = (rng.standard_normal(600) * 10.0 ** rng.integers(-12, 12, 600)).astype(np.float32)
    styles = {
        "%.9g": lambda v: "%.9g" % v,         # our writer
        "shortest32": lambda v: str(np.float32(v)),  # gensim writes the shortest float32 repr
        "repr64": lambda v: repr(np.float32(v).item()),
        "%lf": lambda v: "%lf" % v,           # word2vec.c's
        "%e": lambda v: "%e" % v,
        "%.17g": lambda v: "%.17g" % v,
        "signs": lambda v: ("+" if v >= 0 else "") + ("%.9G" % v),
    }
    for name, fmt in styles.items():
        tokens = [fmt(v) for v in values]
        text = "".join(f"w{i} " + " ".join(tokens[i * 6:(i + 1) * 6]) + " \n" for i in range(100))
        data = np.frombuffer(text.encode(), dtype=np.uint8)
        parsed = _fast_text_records(data, 0, 100, 6)
        assert parsed is not None, name
        got, words, _end = parsed
        expected = np.array([np.float32(float(t)) for t in tokens], dtype=np.float32).reshape(100, 6)
        assert words == [f"w{i}" for i in range(100)]
        if name == "%.17g":  # 17 digits can exceed an exact float64 mantissa: equal to 1 float32 ulp
            np.testing.assert_allclose(got, expected, rtol=1.2e-7, atol=0)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)


def test_tokens_the_compiled_parser_declines_fall_back(tmp_path):
    path = tmp_path / "special.txt"
    path.write_text("2 3\nb .5 1. 1e3\na 1 +2 -3E-1\n")
    got, words = read_word2vec_format(path)
    assert words == ["b", "a"]
    np.testing.assert_array_equal(got, np.array([[0.5, 1.0, 1000.0], [1, 2, -0.3]], dtype=np.float32))
    glove = tmp_path / "glove-blank-end.txt"
    glove.write_text("a 1 2\nb 3 4\n\n\n")
    assert read_glove_format(glove)[1] == ["a", "b"]


def test_compiled_number_writer_round_trips_float32_like_printf():
    from word2bert.interop.word2vec_format import _write_number

    rng = np.random.default_rng(4)
    with np.errstate(over="ignore"):
        values = (rng.standard_normal(20000) * 10.0 ** rng.integers(-44, 39, 20000)).astype(np.float32)
    special = np.array([0.0, -0.0, 1, 10, 1e8, 1e9, 0.1, 1e-4, 9.5e-5, 123456789, -2.25,
                        3.4e38, 1e-45, 1.17e-38, np.inf, -np.inf], dtype=np.float32)
    out, scratch = np.empty(32, dtype=np.uint8), np.empty(9, dtype=np.uint8)
    same_as_printf = 0
    for value in np.concatenate([special, values]):
        text = out[:_write_number(np.float64(value), out, 0, scratch)].tobytes().decode()
        back = np.float32(float(text))
        assert back == value and np.signbit(back) == np.signbit(value), (value, text)
        same_as_printf += text == "%.9g" % value
    # identical to C's %.9g except, rarely, the 9th digit of a near-tie (still an exact round trip)
    assert same_as_printf >= 0.999 * (len(values) + len(special))
    assert out[:_write_number(np.nan, out, 0, scratch)].tobytes() == b"nan"


@pytest.mark.parametrize("value", ["nan", "-inf", "inf", "1e39"])
@pytest.mark.parametrize("fmt", ["word2vec-text", "glove", "word2vec-binary", "npz"])
def test_non_finite_vectors_are_refused_with_their_line(tmp_path, fmt, value):
    """NaN or infinite values (or numbers beyond float32) would load and answer queries with NaN
    scores; every reader refuses them and names the line (text) or the vector (binary, .npz)."""
    from word2bert.vectors import KeyedVectors

    words = ["a", "b", "c", "d"]
    if fmt in ("word2vec-text", "glove"):
        rows = [word + "".join(f" {value if (i, j) == (2, 1) else i + j}" for j in range(3))
                for i, word in enumerate(words)]
        path = tmp_path / "vectors.txt"
        path.write_text(("4 3\n" if fmt == "word2vec-text" else "") + "\n".join(rows) + "\n")
        where = f"line {3 + (fmt == 'word2vec-text')}"
    else:
        with np.errstate(over="ignore"):
            vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
            vectors[2, 1] = np.float32(float(value))
        path = tmp_path / ("vectors.bin" if fmt == "word2vec-binary" else "vectors.npz")
        KeyedVectors(vectors, words).save(path, format=fmt)
        where = "vector 3"
    with pytest.raises(Word2BertError, match=f"{where}: the vector of 'c' holds .*not a finite"):
        KeyedVectors.load(path)
