"""word2vec text and binary files, GloVe text files: reading and writing.

Layouts (as written by word2vec.c's ``main`` after training, and read by its ``distance.c``):

* word2vec text: a header line ``<count> <dimension>``, then one line per word,
  ``word v1 v2 ... vd`` (word2vec.c leaves a space before the newline; gensim does not).
* word2vec binary: the same header line, then per word the UTF-8 bytes of the word, one space,
  ``d`` little-endian float32 values, and a newline (word2vec.c writes the newline; gensim's
  writer does not, so both are accepted when reading).
* GloVe text: like word2vec text without the header line.

Readers return ``(vectors, words)`` with ``vectors`` a float32 array of shape (count, dimension).
Undecodable bytes in words become U+FFFD (never fatal). Duplicate words keep their first vector,
as gensim does. Bad files raise :class:`Word2BertError` naming the file (and the line for text);
so do vectors holding NaN or infinity (or numbers too large for float32), which would otherwise
load and answer every query with NaN scores.
All writers go through :func:`word2bert.fileio.atomic_write`, so a failed write leaves no
half-written file. Compressed files (.gz, .bz2, .xz) are handled by extension.
"""

from __future__ import annotations

import mmap
import re
from pathlib import Path

import numpy as np
from numba import njit

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write, open_binary

__all__ = [
    "read_word2vec_format", "write_word2vec_format", "read_glove_format", "write_glove_format",
    "detect_format", "FORMATS",
]

#: Names accepted by :func:`detect_format` callers and the ``convert`` command.
FORMATS = ("word2vec-text", "word2vec-binary", "glove", "npz")

_HEADER = re.compile(rb"^\s*(\d+)\s+(\d+)\s*$")
_COMPRESSED = (".gz", ".bz2", ".xz")
_SNIFF_BYTES = 1 << 16


# ----------------------------------------------------------------------------------------------
# helpers


def _read_all_bytes(path) -> np.ndarray:
    """The whole file as a uint8 array; plain files are memory-mapped (no copy of big files)."""
    path = Path(path)
    handle = open_binary(path)  # raises Word2BertError for a missing file
    with handle:
        if path.suffix.lower() in _COMPRESSED:
            try:
                data = handle.read()
            except (OSError, EOFError, ValueError) as exc:
                raise Word2BertError(f"{path}: cannot decompress ({exc})") from None
            return np.frombuffer(data, dtype=np.uint8)
        size = path.stat().st_size
        if size == 0:
            return np.zeros(0, dtype=np.uint8)
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return np.frombuffer(mapped, dtype=np.uint8)


def _read_head(path, size: int = _SNIFF_BYTES) -> bytes:
    """The first ``size`` (decompressed) bytes of ``path``."""
    with open_binary(path) as handle:
        try:
            return handle.read(size)
        except (OSError, EOFError, ValueError) as exc:
            raise Word2BertError(f"{path}: cannot decompress ({exc})") from None


def _parse_header(path, first_line: bytes) -> tuple[int, int]:
    match = _HEADER.match(first_line)
    if match is None:
        shown = first_line[:60].decode("utf-8", errors="replace")
        raise Word2BertError(
            f"{path}: line 1: expected a word2vec header '<count> <dimension>', found {shown!r} "
            "(a GloVe file has no header: use the glove format)")
    count, dim = int(match.group(1)), int(match.group(2))
    if dim <= 0:
        raise Word2BertError(f"{path}: line 1: dimension must be > 0, found {dim}")
    return count, dim


def _drop_duplicates(vectors: np.ndarray, words: list[str]):
    """Keep the first occurrence of each word (gensim's rule for files with repeated words)."""
    if len(set(words)) == len(words):
        return vectors, words
    seen: set[str] = set()
    keep = []
    for i, word in enumerate(words):
        if word not in seen:
            seen.add(word)
            keep.append(i)
    return vectors[keep], [words[i] for i in keep]


def check_finite_rows(path, vectors: np.ndarray, words: list[str], where) -> None:
    """Raise naming the first row with NaN, infinity or a number beyond float32's range.

    ``where(i)`` describes row ``i`` for the message (its line number in a text file)."""
    if vectors.size == 0 or np.isfinite(np.sum(vectors, dtype=np.float64)):
        return
    bad_rows = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    first = int(bad_rows[0])
    value = vectors[first][~np.isfinite(vectors[first])][0]
    more = f" ({len(bad_rows):,} such rows in all)" if len(bad_rows) > 1 else ""
    raise Word2BertError(f"{path}: {where(first)}: the vector of {words[first]!r} holds {value} (not a finite "
                         f"float32 number){more}")


_WORD_SEPARATORS = (" ", "\n", "\t", "\r")  # a word holding one cannot be read back


def _check_writable(vectors, words):
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise Word2BertError(f"vectors must be a 2-D array, got shape {vectors.shape}")
    if len(words) != vectors.shape[0]:
        raise Word2BertError(f"{len(words)} words but {vectors.shape[0]} vectors")
    joined = "\x00".join(words)  # one C-speed search over all words; the loop below names the culprit
    if not all(words) or any(ch in joined for ch in _WORD_SEPARATORS):
        for word in words:
            if not word or any(ch in word for ch in _WORD_SEPARATORS):
                raise Word2BertError(
                    f"word {word!r} cannot be written in a word2vec/GloVe file (empty or contains whitespace)")
    return np.ascontiguousarray(vectors, dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# binary


@njit(nogil=True, cache=True)
def _scan_binary_records(data, start, count, dim, vector_bytes, word_bytes):  # pragma: no cover - numba
    """Walk ``count`` records ``word<space><dim x float32>[\\n]`` of a word2vec binary file.

    Copies the raw vector bytes into ``vector_bytes`` (count, 4*dim) and the word bytes into
    ``word_bytes``, each word followed by a newline. Newlines inside or before a word are
    dropped, as word2vec.c's distance.c does (so files with and without the newline after each
    vector both read). Returns (records read, position after the last record, bytes of words
    written, or -1 if ``word_bytes`` overflowed, which only a corrupt file can cause).
    """
    n = data.shape[0]
    pos = start
    wpos = 0
    cap = word_bytes.shape[0]
    record = 4 * dim
    for i in range(count):
        while pos < n and data[pos] == 10:
            pos += 1
        if pos >= n:
            return i, pos, wpos
        while pos < n and data[pos] != 32:
            byte = data[pos]
            if byte != 10:
                if wpos >= cap - 1:
                    return i, pos, -1
                word_bytes[wpos] = byte
                wpos += 1
            pos += 1
        if pos + 1 + record > n:
            return i, pos, wpos
        pos += 1
        for k in range(record):
            vector_bytes[i, k] = data[pos + k]
        pos += record
        word_bytes[wpos] = 10
        wpos += 1
    return count, pos, wpos


def _read_binary(path, limit: int | None):
    data = _read_all_bytes(path)
    newline = np.flatnonzero(data[:4096] == 10)
    if newline.size == 0:
        raise Word2BertError(f"{path}: line 1: missing the word2vec header '<count> <dimension>'")
    header_end = int(newline[0]) + 1
    count, dim = _parse_header(path, data[:header_end].tobytes())
    wanted = count if limit is None else min(count, int(limit))
    record = 4 * dim
    body = data.shape[0] - header_end
    word_capacity = max(0, body - wanted * record) + wanted + 1
    vector_bytes = np.empty((wanted, record), dtype=np.uint8)
    word_bytes = np.empty(word_capacity, dtype=np.uint8)
    done, pos, used = _scan_binary_records(data, header_end, wanted, dim, vector_bytes, word_bytes)
    if used < 0 or done < wanted:
        raise Word2BertError(
            f"{path}: truncated or corrupt word2vec binary file: the header promises {count} vectors "
            f"of dimension {dim}, but only {done} complete records were found")
    if limit is None or wanted == count:
        rest = data[pos:]
        if rest.size and np.any((rest != 10) & (rest != 32) & (rest != 13)):
            raise Word2BertError(
                f"{path}: unexpected data after the {count} vectors the header promises "
                "(header count or dimension wrong, or not a word2vec binary file)")
    words = word_bytes[:used].tobytes().decode("utf-8", errors="replace").split("\n")[:-1]
    vectors = vector_bytes.view("<f4").reshape(wanted, dim).astype(np.float32, copy=False)
    del data
    check_finite_rows(path, vectors, words, lambda i: f"vector {i + 1}")
    return vectors, words


def _write_binary(handle, vectors, words):
    """word2vec.c's layout exactly: ``word `` + raw little-endian float32 + ``\\n`` per word."""
    handle.write(f"{len(words)} {vectors.shape[1]}\n".encode())
    little = vectors.astype("<f4", copy=False)
    chunk = 1 << 14
    for start in range(0, len(words), chunk):
        block = little[start:start + chunk]
        parts = []
        for word, row in zip(words[start:start + chunk], block):
            parts.append(word.encode("utf-8") + b" ")
            parts.append(row.tobytes())
            parts.append(b"\n")
        handle.write(b"".join(parts))



# ----------------------------------------------------------------------------------------------
# text: compiled fast path (the Python path below is the fallback that explains errors)

_POWERS_OF_TEN = np.array([10.0 ** k for k in range(23)])  # exactly representable in float64


@njit(nogil=True, cache=True)
def _parse_decimal(data, pos, powers):  # pragma: no cover - numba
    """Parse ``[+-]digits[.digits][(e|E)[+-]digits]`` at ``pos`` -> (ok, value, end).

    value = mantissa * 10^exponent, with the mantissa (up to 18 significant digits) an exact
    integer and the power of ten exact up to 10^22, so a number written with 9 significant
    digits (as our writer does for float32) comes back exactly. Anything else (nan, inf, a
    stray character) returns ok=False and the caller falls back to the general parser.
    """
    n = data.shape[0]
    negative = False
    if pos < n and (data[pos] == 45 or data[pos] == 43):  # '-' '+'
        negative = data[pos] == 45
        pos += 1
    mantissa = 0
    exponent = 0
    digits = 0
    significant = 0
    while pos < n and 48 <= data[pos] <= 57:
        if significant < 18:
            mantissa = mantissa * 10 + (data[pos] - 48)
            if mantissa > 0:
                significant += 1
        else:
            exponent += 1
        digits += 1
        pos += 1
    if pos < n and data[pos] == 46:  # '.'
        pos += 1
        while pos < n and 48 <= data[pos] <= 57:
            if significant < 18:
                mantissa = mantissa * 10 + (data[pos] - 48)
                exponent -= 1
                if mantissa > 0:
                    significant += 1
            digits += 1
            pos += 1
    if digits == 0:
        return False, 0.0, pos
    if pos < n and (data[pos] == 101 or data[pos] == 69):  # 'e' 'E'
        pos += 1
        exp_negative = False
        if pos < n and (data[pos] == 45 or data[pos] == 43):
            exp_negative = data[pos] == 45
            pos += 1
        exp_digits = 0
        exp_value = 0
        while pos < n and 48 <= data[pos] <= 57:
            if exp_value < 100000:
                exp_value = exp_value * 10 + (data[pos] - 48)
            exp_digits += 1
            pos += 1
        if exp_digits == 0:
            return False, 0.0, pos
        exponent += -exp_value if exp_negative else exp_value
    if pos < n and not (data[pos] == 32 or data[pos] == 9 or data[pos] == 13 or data[pos] == 10):
        return False, 0.0, pos
    value = float(mantissa)
    if exponent > 0:
        value = value * powers[exponent] if exponent <= 22 else value * 10.0 ** exponent
    elif exponent < 0:
        value = value / powers[-exponent] if exponent >= -22 else value * 10.0 ** exponent
    return True, -value if negative else value, pos


@njit(nogil=True, cache=True)
def _parse_text_records(data, start, count, dim, vectors, word_bytes, powers):  # pragma: no cover
    """Parse ``count`` lines ``word v1 ... vd`` from ``start`` into ``vectors`` and ``word_bytes``.

    Words end at a space or tab (word2vec.c's ReadWord); numbers are separated by spaces or tabs;
    trailing spaces and '\r' are allowed. Returns (lines parsed, status, position, word bytes
    used): status 0 = all parsed, 1 = a line did not fit (caller explains it), 2 = end of data.
    """
    n = data.shape[0]
    pos = start
    wpos = 0
    for i in range(count):
        if pos >= n:
            return i, 2, pos, wpos
        word_start = pos
        while pos < n and data[pos] != 32 and data[pos] != 9 and data[pos] != 10 and data[pos] != 13:
            word_bytes[wpos] = data[pos]
            wpos += 1
            pos += 1
        if pos == word_start:
            return i, 1, pos, wpos
        word_bytes[wpos] = 10
        wpos += 1
        for k in range(dim):
            while pos < n and (data[pos] == 32 or data[pos] == 9 or data[pos] == 13):
                pos += 1
            if pos >= n or data[pos] == 10:
                return i, 1, pos, wpos
            ok, value, pos = _parse_decimal(data, pos, powers)
            if not ok:
                return i, 1, pos, wpos
            vectors[i, k] = value
        while pos < n and (data[pos] == 32 or data[pos] == 9 or data[pos] == 13):
            pos += 1
        if pos < n and data[pos] != 10:
            return i, 1, pos, wpos
        pos += 1
    return count, 0, pos, wpos


def _fast_text_records(data: np.ndarray, start: int, count: int, dim: int):
    """Compiled parse of ``count`` records; None when any line needs the general parser."""
    vectors = np.empty((count, dim), dtype=np.float32)
    word_bytes = np.empty(max(0, data.shape[0] - start) + 1, dtype=np.uint8)
    done, status, pos, used = _parse_text_records(data, start, count, dim, vectors, word_bytes, _POWERS_OF_TEN)
    if status != 0:
        return None
    words = word_bytes[:used].tobytes().decode("utf-8", errors="replace").split("\n")[:-1]
    return vectors, words, pos


def _read_text_bytes(path, limit_lines: int | None) -> np.ndarray:
    """The (decompressed) bytes of a text file, or of its first ``limit_lines`` lines."""
    if limit_lines is None:
        return _read_all_bytes(path)
    chunks = []
    with open_binary(path) as handle:
        try:
            for raw_line in handle:
                chunks.append(raw_line)
                if len(chunks) >= limit_lines:
                    break
        except (OSError, EOFError, ValueError) as exc:
            raise Word2BertError(f"{path}: cannot decompress ({exc})") from None
    return np.frombuffer(b"".join(chunks), dtype=np.uint8)


def _only_whitespace(data: np.ndarray) -> bool:
    return not np.any((data != 10) & (data != 32) & (data != 13) & (data != 9))


# ----------------------------------------------------------------------------------------------
# text: general path


def _parse_text_lines(path, lines: list[str], first_line_no: int, dim: int | None):
    """Split ``word v1 ... vd`` lines into words and a float32 matrix (bulk numeric parsing).

    ``first_line_no`` is the file line number of ``lines[0]`` (for error messages). ``dim`` is
    the expected dimension (None: taken from the first line, the GloVe case).
    """
    words = []
    rests = []
    for line in lines:
        word, _, rest = line.rstrip().partition(" ")
        words.append(word)
        rests.append(rest)
    for i, (word, rest) in enumerate(zip(words, rests)):
        if not word or not rest.strip():
            raise Word2BertError(
                f"{path}: line {first_line_no + i}: expected 'word v1 ... vd', found {lines[i][:60]!r}")
    if dim is None:
        dim = len(rests[0].split()) if rests else 0
    try:
        vectors = np.loadtxt(rests, dtype=np.float32, comments=None, ndmin=2)
    except ValueError as exc:
        raise _locate_text_error(path, rests, first_line_no, dim, exc) from None
    if vectors.shape != (len(words), dim):
        raise _locate_text_error(path, rests, first_line_no, dim, None)
    return vectors, words


def _locate_text_error(path, rests, first_line_no, dim, exc) -> Word2BertError:
    """Slow path, only after bulk parsing failed: find the first bad line and say what is wrong."""
    for i, rest in enumerate(rests):
        fields = rest.split()
        if len(fields) != dim:
            return Word2BertError(
                f"{path}: line {first_line_no + i}: expected {dim} numbers after the word, found {len(fields)}")
        for field in fields:
            try:
                float(field)
            except ValueError:
                return Word2BertError(f"{path}: line {first_line_no + i}: not a number: {field[:40]!r}")
    return Word2BertError(f"{path}: cannot parse the vectors ({exc})")


def _read_text_lines(path, limit_lines: int | None) -> list[str]:
    """Lines of a (possibly compressed) text file, undecodable bytes replaced.

    Splits on '\\n' only (``str.splitlines`` would also split on characters such as U+2028
    that may occur inside words).
    """
    with open_binary(path) as handle:
        try:
            if limit_lines is None:
                raw = handle.read()
                lines = raw.decode("utf-8", errors="replace").split("\n")
            else:
                lines = []
                for raw_line in handle:
                    lines.append(raw_line.decode("utf-8", errors="replace"))
                    if len(lines) >= limit_lines:
                        break
        except (OSError, EOFError, ValueError) as exc:
            raise Word2BertError(f"{path}: cannot decompress ({exc})") from None
    lines = [line.rstrip("\r\n") for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _read_text(path, limit: int | None):
    vectors, words = _read_text_unchecked(path, limit)
    check_finite_rows(path, vectors, words, lambda i: f"line {i + 2}")
    return vectors, words


def _read_text_unchecked(path, limit: int | None):
    data = _read_text_bytes(path, None if limit is None else int(limit) + 1)
    newline = np.flatnonzero(data[:4096] == 10)
    if data.shape[0] and newline.size:
        header_end = int(newline[0]) + 1
        count, dim = _parse_header(path, data[:header_end].tobytes())
        wanted = count if limit is None else min(count, int(limit))
        parsed = _fast_text_records(data, header_end, wanted, dim)
        if parsed is not None:
            vectors, words, pos = parsed
            if limit is not None or _only_whitespace(data[pos:]):
                return vectors, words
    return _read_text_general(path, limit)


def _read_text_general(path, limit: int | None):
    """Line-by-line parsing with bulk numeric conversion; explains what is wrong with a bad file."""
    lines = _read_text_lines(path, None if limit is None else int(limit) + 1)
    if not lines:
        raise Word2BertError(f"{path}: empty file, expected a word2vec header '<count> <dimension>'")
    count, dim = _parse_header(path, lines[0].encode())
    body = lines[1:]
    wanted = count if limit is None else min(count, int(limit))
    if limit is None and len(body) != count:
        raise Word2BertError(
            f"{path}: the header promises {count} vectors but the file has {len(body)} lines of vectors")
    if len(body) < wanted:
        raise Word2BertError(f"{path}: the header promises {count} vectors but the file ends after {len(body)}")
    return _parse_text_lines(path, body[:wanted], 2, dim)


@njit(nogil=True, cache=True)
def _write_number(value, out, pos, buffer):  # pragma: no cover - numba
    """Write ``value`` with 9 significant digits like C's ``%.9g`` (enough to round-trip float32).

    value = D * 10^(e-8) with D the 9-digit integer nearest to |value| / 10^(e-8),
    e = floor(log10|value|); trailing zeros dropped; fixed notation for -4 <= e < 9, else
    ``d.ddde-XX``. NaN and infinities are written as nan / inf / -inf. ``buffer``: 9 bytes of scratch.
    """
    if value != value:
        out[pos] = 110; out[pos + 1] = 97; out[pos + 2] = 110  # nan
        return pos + 3
    if np.signbit(value):
        out[pos] = 45  # '-'
        pos += 1
        value = -value
    if value == np.inf:
        out[pos] = 105; out[pos + 1] = 110; out[pos + 2] = 102  # inf
        return pos + 3
    if value == 0:
        out[pos] = 48
        return pos + 1
    e = int(np.floor(np.log10(value)))
    digits = int(np.rint(value * 10.0 ** (8 - e)))
    if digits >= 1000000000:
        e += 1
        digits = int(np.rint(value * 10.0 ** (8 - e)))
    elif digits < 100000000:
        e -= 1
        digits = int(np.rint(value * 10.0 ** (8 - e)))
    if digits >= 1000000000:  # rounding carried again (only at exact powers of ten)
        digits //= 10
        e += 1
    for k in range(8, -1, -1):
        buffer[k] = 48 + digits % 10
        digits //= 10
    length = 9
    while length > 1 and buffer[length - 1] == 48:
        length -= 1
    if -4 <= e < 9:
        if e >= 0:
            for k in range(e + 1):
                out[pos] = buffer[k] if k < length else 48
                pos += 1
            if length > e + 1:
                out[pos] = 46
                pos += 1
                for k in range(e + 1, length):
                    out[pos] = buffer[k]
                    pos += 1
        else:
            out[pos] = 48
            out[pos + 1] = 46
            pos += 2
            for _ in range(-e - 1):
                out[pos] = 48
                pos += 1
            for k in range(length):
                out[pos] = buffer[k]
                pos += 1
        return pos
    out[pos] = buffer[0]
    pos += 1
    if length > 1:
        out[pos] = 46
        pos += 1
        for k in range(1, length):
            out[pos] = buffer[k]
            pos += 1
    out[pos] = 101  # 'e'
    out[pos + 1] = 45 if e < 0 else 43
    pos += 2
    magnitude = -e if e < 0 else e
    if magnitude >= 100:
        out[pos] = 48 + magnitude // 100
        pos += 1
    out[pos] = 48 + (magnitude // 10) % 10
    out[pos + 1] = 48 + magnitude % 10
    return pos + 2


@njit(nogil=True, cache=True)
def _format_text_rows(vectors, word_bytes, word_offsets, out):  # pragma: no cover - numba
    """Write lines ``word v1 ... vd\n`` into ``out``; returns the number of bytes written."""
    pos = 0
    buffer = np.empty(9, dtype=np.uint8)
    for i in range(vectors.shape[0]):
        for k in range(word_offsets[i], word_offsets[i + 1]):
            out[pos] = word_bytes[k]
            pos += 1
        for j in range(vectors.shape[1]):
            out[pos] = 32
            pos = _write_number(np.float64(vectors[i, j]), out, pos + 1, buffer)
        out[pos] = 10
        pos += 1
    return pos


def _write_text(handle, vectors, words, header: bool):
    """Write ``word v1 ... vd`` lines (UTF-8) to a binary handle, compiled number formatting."""
    if header:
        handle.write(f"{len(words)} {vectors.shape[1]}\n".encode())
    chunk = 1 << 12
    for start in range(0, len(words), chunk):
        encoded = [word.encode("utf-8") for word in words[start:start + chunk]]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        block = vectors[start:start + chunk]
        out = np.empty(int(offsets[-1]) + block.size * 17 + len(encoded), dtype=np.uint8)
        used = _format_text_rows(block, np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets, out)
        handle.write(out[:used].tobytes())


# ----------------------------------------------------------------------------------------------
# public API


def is_binary_word2vec(path) -> bool:
    """Guess whether a word2vec file (with header) is binary: its first record does not parse as text."""
    head = _read_head(path)
    newline = head.find(b"\n")
    if newline < 0:
        raise Word2BertError(f"{path}: line 1: missing the word2vec header '<count> <dimension>'")
    _count, dim = _parse_header(path, head[:newline + 1])
    record_end = head.find(b"\n", newline + 1)
    record = head[newline + 1:] if record_end < 0 else head[newline + 1:record_end]
    try:
        fields = record.decode("utf-8", errors="replace").split(" ")
        fields = [field for field in fields if field.strip()]
        if len(fields) < dim + 1:
            return True
        for field in fields[-dim:]:
            float(field)
    except ValueError:
        return True
    return False


def read_word2vec_format(path, binary: bool | None = None, limit: int | None = None):
    """Read a word2vec text or binary file -> (float32 vectors (n, dim), words).

    ``binary=None`` decides from the content (a first record that does not parse as text means
    binary). ``limit`` reads only the first ``limit`` vectors (the most frequent ones in files
    sorted by frequency, as word2vec.c writes them).
    """
    if limit is not None and int(limit) < 0:
        raise Word2BertError(f"parameter limit={limit!r} must be >= 0")
    if binary is None:
        binary = is_binary_word2vec(path)
    vectors, words = _read_binary(path, limit) if binary else _read_text(path, limit)
    return _drop_duplicates(vectors, words)


def read_glove_format(path, limit: int | None = None):
    """Read a GloVe text file (``word v1 ... vd`` lines, no header) -> (float32 vectors, words)."""
    vectors, words = _read_glove_unchecked(path, limit)
    check_finite_rows(path, vectors, words, lambda i: f"line {i + 1}")
    return _drop_duplicates(vectors, words)


def _read_glove_unchecked(path, limit: int | None):
    data = _read_text_bytes(path, None if limit is None else int(limit))
    first_end = np.flatnonzero(data[:1 << 20] == 10)
    first = data[:int(first_end[0]) if first_end.size else data.shape[0]].tobytes()
    fields = first.split()
    if len(fields) >= 2 and not _HEADER.match(first):
        text = np.flatnonzero((data != 10) & (data != 32) & (data != 13) & (data != 9))
        end = int(text[-1]) + 1 if text.size else 0
        count = int(np.count_nonzero(data[:end] == 10)) + (1 if end else 0)
        parsed = _fast_text_records(data, 0, count, len(fields) - 1)
        if parsed is not None:
            vectors, words, _pos = parsed
            if limit is not None:
                vectors, words = vectors[:int(limit)], words[:int(limit)]
            return vectors, words
    return _read_glove_general(path, limit)


def _read_glove_general(path, limit: int | None):
    lines = _read_text_lines(path, None if limit is None else int(limit))
    if limit is not None:
        lines = lines[:int(limit)]
    if not lines:
        raise Word2BertError(f"{path}: no vectors found (empty file)")
    if _HEADER.match(lines[0].encode()):
        raise Word2BertError(
            f"{path}: line 1 looks like a word2vec header {lines[0]!r}; read it as word2vec text")
    return _parse_text_lines(path, lines, 1, None)


def write_word2vec_format(path, vectors, words, binary: bool = False):
    """Write a word2vec file (text or binary) atomically, in word2vec.c's layout.

    Binary: header ``n d\\n`` then ``word `` + d little-endian float32 + ``\\n`` per word, byte for
    byte what word2vec.c writes. Text: header, then ``word v1 ... vd`` with 9 significant digits
    (word2vec.c's ``%lf`` keeps only 6 decimals; 9 digits make the float32 round trip exact).
    """
    words = list(words)
    vectors = _check_writable(vectors, words)
    if binary:
        with atomic_write(path, "wb") as handle:
            _write_binary(handle, vectors, words)
    else:
        with atomic_write(path, "wb") as handle:
            _write_text(handle, vectors, words, header=True)


def write_glove_format(path, vectors, words):
    """Write a GloVe text file (no header line) atomically."""
    words = list(words)
    vectors = _check_writable(vectors, words)
    with atomic_write(path, "wb") as handle:
        _write_text(handle, vectors, words, header=False)


def detect_format(path) -> str:
    """Which of :data:`FORMATS` a file is in, from its content.

    ``.npz`` (a zip archive) -> "npz"; a ``<count> <dimension>`` first line -> word2vec, binary
    or text by :func:`is_binary_word2vec`; otherwise -> "glove".
    """
    head = _read_head(path, _SNIFF_BYTES)
    if not head:
        raise Word2BertError(f"{path}: empty file, not a vector file")
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    newline = head.find(b"\n")
    first = head if newline < 0 else head[:newline + 1]
    if _HEADER.match(first):
        return "word2vec-binary" if is_binary_word2vec(path) else "word2vec-text"
    if b"\x00" in head[:4096]:
        raise Word2BertError(f"{path}: not a vector file (binary data without word2vec's '<count> <dimension>' "
                             "header, and not a .npz)")
    return "glove"


def format_from_extension(path) -> str | None:
    """The format implied by a file name (.npz, .bin, .txt/.vec; compression suffixes skipped), or None."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    if not suffixes:
        return None
    return {".npz": "npz", ".bin": "word2vec-binary", ".txt": "word2vec-text",
            ".vec": "word2vec-text"}.get(suffixes[-1])

