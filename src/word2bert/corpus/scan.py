"""One compiled pass over a text file: tokens, their counts and the corpus as ids, at once.

:func:`scan_file` reads the file's bytes in blocks (decompressing .gz/.bz2/.xz; the decompressors
release the GIL) and a numba kernel (``nogil``) splits them into lines and tokens, counts every
distinct token in an open-addressing hash table and writes each token's provisional id (its rank
of first appearance) and each line's boundaries. A plain file of ``TWO_PARTS_BYTES`` or more is
read as two halves of whole lines by two threads at once, and the second half's scan is appended to
the first's (its words take the first half's ids, or the next ones): the same result.
:func:`vocabulary_of` then keeps the words with ``min_count`` and :func:`encode_scan` maps the
provisional ids to vocabulary ids with numpy: the vocabulary and the
:class:`~word2bert.corpus.EncodedCorpus` of one read of the file, with no Python per token
(gensim's ``build_vocab`` and our old path kept a Python dict lookup per token and read the file
twice).

The result is the one Python's own reading gives (``open_text`` + ``line.split()``, as
:class:`~word2bert.corpus.LineSentence` reads), byte for byte:

* lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (universal newlines); a line without tokens is no sentence;
  a line longer than ``max_sentence_length`` tokens is cut into sentences of that many;
* tokens are separated by what ``str.split()`` calls whitespace: ASCII ``\\t \\n \\v \\f \\r``,
  ``\\x1c``-``\\x1f`` and space, and the Unicode spaces U+0085, U+00A0, U+1680, U+2000-U+200A,
  U+2028, U+2029, U+202F, U+205F and U+3000 (as UTF-8 sequences);
* a token's text is its bytes decoded as UTF-8 with undecodable bytes replaced by U+FFFD (done
  once per distinct token; two byte strings that decode, or lowercase, to the same text are one word).

The scan also counts what is not text (:class:`TextStats`): bytes that are not valid UTF-8, and
control bytes other than the whitespace above. :func:`check_text` refuses a file that is mostly not
text (a binary given by mistake) and warns about undecodable lines in a text file.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba
import numpy as np

from word2bert.errors import Word2BertError
from word2bert.fileio import open_binary

BLOCK_BYTES = 1 << 20
MAX_SENTENCE_LENGTH = 10000  # as corpus.reader (gensim's MAX_WORDS_IN_BATCH)
NOT_TEXT_LIMIT = 0.3  # a larger share of non-text bytes means "not a text file"
SNIFF_BYTES = 1 << 16  # what is looked at before the file is refused
TWO_PARTS_BYTES = 8 << 20  # a plain file this large is read by two threads, a half each


class TextStats(NamedTuple):
    """What a scan saw: ``lines`` read, ``bytes`` read, ``undecodable_bytes`` (not valid UTF-8),
    ``undecodable_lines`` (lines with at least one), ``control_bytes`` (C0 controls that are not
    whitespace, and DEL)."""

    lines: int
    bytes: int
    undecodable_bytes: int
    undecodable_lines: int
    control_bytes: int

    @property
    def not_text(self) -> float:
        """The share of bytes that are not text."""
        return (self.undecodable_bytes + self.control_bytes) / max(self.bytes, 1)


def check_text(path, stats: TextStats, head: bytes = b"") -> None:
    """Word2BertError if the file is mostly not text (a binary, UTF-16); a warning if some of its lines
    hold bytes that are not UTF-8 (they were read as U+FFFD)."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise Word2BertError(f"{path}: the file is UTF-16 text (byte-order mark {head[:2].hex()}); "
                             "convert it to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)")
    if stats.bytes and stats.not_text > NOT_TEXT_LIMIT:
        raise Word2BertError(
            f"{path}: does not look like a text file: {stats.not_text:.0%} of the first {stats.bytes:,} bytes are "
            f"control bytes or not UTF-8 ({stats.control_bytes:,} control, {stats.undecodable_bytes:,} undecodable); "
            "give a UTF-8 text file, one sentence or document per line")
    if stats.undecodable_lines:
        warnings.warn(f"{path}: {stats.undecodable_lines:,} of {stats.lines:,} lines hold bytes that are not UTF-8 "
                      f"({stats.undecodable_bytes:,} bytes, read as U+FFFD; a Latin-1 file?)", UnicodeWarning,
                      stacklevel=3)


# ---------------------------------------------------------------------------------------
# the kernel
# ---------------------------------------------------------------------------------------
@numba.njit(inline="always", nogil=True)
def _utf8_length(data, p, end):
    """Length of the valid UTF-8 sequence starting at ``data[p]``, or 0 if it is not valid (the rules of
    Python's decoder: no overlong forms, no surrogates, nothing above U+10FFFF)."""
    b = data[p]
    if b < 0x80:
        return 1
    if b < 0xC2 or b > 0xF4:
        return 0
    if b < 0xE0:
        n = 2
        lo = 0x80
        hi = 0xBF
    elif b < 0xF0:
        n = 3
        lo = 0xA0 if b == 0xE0 else 0x80
        hi = 0x9F if b == 0xED else 0xBF
    else:
        n = 4
        lo = 0x90 if b == 0xF0 else 0x80
        hi = 0x8F if b == 0xF4 else 0xBF
    if p + n > end:
        return 0
    c = data[p + 1]
    if c < lo or c > hi:
        return 0
    for k in range(2, n):
        if (data[p + k] & 0xC0) != 0x80:
            return 0
    return n


@numba.njit(inline="always", nogil=True)
def _space_length(data, p, end):
    """Length of the whitespace character at ``data[p]`` (as ``str.split()`` sees it), or 0."""
    b = data[p]
    if b == 0x20 or (0x09 <= b <= 0x0D) or (0x1C <= b <= 0x1F):
        return 1
    if b == 0xC2 and p + 1 < end and (data[p + 1] == 0x85 or data[p + 1] == 0xA0):
        return 2
    if p + 2 < end and (b == 0xE1 or b == 0xE2 or b == 0xE3):
        c = data[p + 1]
        d = data[p + 2]
        if b == 0xE1 and c == 0x9A and d == 0x80:
            return 3
        if b == 0xE2 and c == 0x80 and ((0x80 <= d <= 0x8A) or d == 0xA8 or d == 0xA9 or d == 0xAF):
            return 3
        if b == 0xE2 and c == 0x81 and d == 0x9F:
            return 3
        if b == 0xE3 and c == 0x80 and d == 0x80:
            return 3
    return 0


@numba.njit(nogil=True, cache=True)
def _scan_block(data, end, lowercase, max_sentence_length, slots, hashes, arena, word_start, word_length, counts,
                tokens, offsets, counters):
    """Tokens of ``data[:end]`` (whole lines: the block ends at a line end or at the end of the file).

    ``counters`` = [words, arena bytes, tokens, sentences, tokens of the open sentence, lines,
    undecodable bytes, undecodable lines, control bytes]; the arrays have room for what the block
    can add (the caller grows them). A new token gets the next id, its bytes go to ``arena``, its
    64-bit FNV-1a hash to ``hashes``; ``slots`` (a power of two, at most half full) maps hashes to
    ``id + 1``. With ``lowercase`` ASCII letters are lowercased here (other characters later, per word).
    """
    mask = slots.shape[0] - 1
    n_words, used, n_tokens, n_sentences, open_count, lines, bad_bytes, bad_lines, control = (
        counters[0], counters[1], counters[2], counters[3], counters[4], counters[5], counters[6], counters[7],
        counters[8])
    p = 0
    line_bad = False
    while p < end:
        b = data[p]
        if b == 0x0A or b == 0x0D:  # a line ends
            if b == 0x0D and p + 1 < end and data[p + 1] == 0x0A:
                p += 1
            p += 1
            lines += 1
            if line_bad:
                bad_lines += 1
                line_bad = False
            if open_count > 0:
                n_sentences += 1
                offsets[n_sentences] = n_tokens
                open_count = 0
            continue
        space = _space_length(data, p, end)
        if space > 0:
            p += space
            continue
        # a token: up to the next whitespace or line end
        start = p
        h = np.uint64(14695981039346656037)
        while p < end:
            b = data[p]
            if 0x21 <= b <= 0x7E:  # printable ASCII: the common case
                if lowercase and 0x41 <= b <= 0x5A:
                    b += 32
                h = (h ^ np.uint64(b)) * np.uint64(1099511628211)
                p += 1
            elif b < 0x80:
                if b == 0x20 or (0x09 <= b <= 0x0D) or (0x1C <= b <= 0x1F):
                    break  # whitespace or a line end
                control += 1  # the other C0 controls and DEL belong to the token, as in str.split()
                h = (h ^ np.uint64(b)) * np.uint64(1099511628211)
                p += 1
            elif _space_length(data, p, end) > 0:
                break
            else:
                n = _utf8_length(data, p, end)
                if n == 0:
                    bad_bytes += 1
                    line_bad = True
                    n = 1
                for k in range(n):
                    h = (h ^ np.uint64(data[p + k])) * np.uint64(1099511628211)
                p += n
        length = p - start
        slot = np.int64((h ^ (h >> np.uint64(29))) & np.uint64(mask))
        word = -1
        while True:
            entry = slots[slot]
            if entry == 0:
                break
            candidate = entry - 1
            if hashes[candidate] == h and word_length[candidate] == length:
                s0 = word_start[candidate]
                same = True
                for k in range(length):
                    c = data[start + k]
                    if lowercase and 0x41 <= c <= 0x5A:
                        c += 32
                    if arena[s0 + k] != c:
                        same = False
                        break
                if same:
                    word = candidate
                    break
            slot = (slot + 1) & mask
        if word < 0:
            word = n_words
            n_words += 1
            slots[slot] = word + 1
            hashes[word] = h
            word_start[word] = used
            word_length[word] = length
            for k in range(length):
                c = data[start + k]
                if lowercase and 0x41 <= c <= 0x5A:
                    c += 32
                arena[used + k] = c
            used += length
        counts[word] += 1
        tokens[n_tokens] = word
        n_tokens += 1
        open_count += 1
        if open_count == max_sentence_length:
            n_sentences += 1
            offsets[n_sentences] = n_tokens
            open_count = 0
    if line_bad:  # the file's last line, without a line end
        bad_lines += 1
    counters[0], counters[1], counters[2], counters[3], counters[4], counters[5], counters[6], counters[7], \
        counters[8] = n_words, used, n_tokens, n_sentences, open_count, lines, bad_bytes, bad_lines, control


@numba.njit(nogil=True, cache=True)
def _rehash(slots, hashes, n_words):
    mask = slots.shape[0] - 1
    for word in range(n_words):
        h = hashes[word]
        slot = np.int64((h ^ (h >> np.uint64(29))) & np.uint64(mask))
        while slots[slot] != 0:
            slot = (slot + 1) & mask
        slots[slot] = word + 1


def _grown(array, needed, fill=None):
    if len(array) >= needed:
        return array
    bigger = np.zeros(max(needed, 2 * len(array)), array.dtype) if fill == 0 else np.empty(
        max(needed, 2 * len(array)), array.dtype)
    bigger[:len(array)] = array
    return bigger


class ScannedFile(NamedTuple):
    """A text file read once: ``words`` (distinct tokens in order of first appearance) and their
    ``counts``; ``tokens`` (every token as an index into ``words``) and sentence ``offsets``; ``stats``."""

    words: list
    counts: np.ndarray
    tokens: np.ndarray
    offsets: np.ndarray
    stats: TextStats


def scan_file(path, lowercase: bool = False, max_sentence_length: int = MAX_SENTENCE_LENGTH, progress=None,
              check: bool = True, workers: int | None = None) -> ScannedFile:
    """Read ``path`` once (see the module docstring); ``progress`` (tqdm) advances in tokens. With
    ``check``, a file that is mostly not text is refused after its first block (:func:`check_text`).

    With ``workers`` >= 2 (the default where the machine has two cores) a plain file of at least
    ``TWO_PARTS_BYTES`` is read as two halves of whole lines by two threads at once (``progress`` is
    then advanced from both, one call at a time); the result is the same.
    """
    if max_sentence_length < 1:
        raise Word2BertError(f"parameter max_sentence_length={max_sentence_length} must be >= 1")
    if workers is None:
        workers = os.cpu_count() or 1
    lowercase, max_sentence_length = bool(lowercase), int(max_sentence_length)
    split = _split_point(path) if workers >= 2 else None
    if split is None:
        advance = _no_progress if progress is None else progress.update
        scan = _scan_range(path, 0, None, lowercase, max_sentence_length, advance, check, threading.Event())
    else:
        scan = _scan_in_two_parts(path, split, lowercase, max_sentence_length, progress, check)
    if check:
        check_text(path, scan.stats(), scan.head)
    return scan.scanned_file()


def _no_progress(n_tokens):
    pass


def _split_point(path) -> int | None:
    """Where a plain file of at least ``TWO_PARTS_BYTES`` is cut into two parts of whole lines: right after
    the first line end at or after its middle (after both bytes of a ``\\r\\n``). None for a compressed or
    smaller file, or one whose second half holds no line start."""
    with open_binary(path) as handle:
        if not isinstance(handle, io.BufferedReader):  # a decompressor: it cannot start in the middle
            return None
        size = os.fstat(handle.fileno()).st_size
        if size < TWO_PARTS_BYTES:
            return None
        position = size // 2
        handle.seek(position)
        while window := handle.read(SNIFF_BYTES):
            found = [i for i in (window.find(b"\n"), window.find(b"\r")) if i >= 0]
            if found:
                line_end = min(found)
                following = window[line_end + 1:line_end + 2] or handle.read(1)
                crlf = window[line_end:line_end + 1] == b"\r" and following == b"\n"
                split = position + line_end + (2 if crlf else 1)
                return split if split < size else None
            position += len(window)
    return None


def _scan_in_two_parts(path, split, lowercase, max_sentence_length, progress, check) -> _Scan:
    """The scan of ``path``: its bytes before ``split`` (a line start) read in this thread, the rest in
    another at the same time, then joined (:meth:`_Scan.append`)."""
    lock = threading.Lock()

    def advance(n_tokens):
        if progress is not None:
            with lock:
                progress.update(n_tokens)

    cancelled = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(_scan_range, path, split, None, lowercase, max_sentence_length, advance, False,
                             cancelled)
        try:
            first = _scan_range(path, 0, split, lowercase, max_sentence_length, advance, check, threading.Event())
            first.append(second.result())
        except BaseException:  # a file that is not text, an interrupt: the other thread stops after its block
            cancelled.set()
            raise
    return first


def _scan_range(path, start, stop, lowercase, max_sentence_length, advance, check, cancelled) -> _Scan | None:
    """The scan of the bytes of ``path`` from ``start`` (a line start) to ``stop`` (right after a line end;
    None: the end of the file). ``advance`` is called with each block's number of tokens; with ``check``, a
    part that is mostly not text is refused after its first block. None once ``cancelled`` is set."""
    scan = _Scan(lowercase, max_sentence_length)
    checked = not check
    with open_binary(path) as handle:
        if start:
            handle.seek(start)
        carry = b""
        while True:
            if cancelled.is_set():
                return None
            chunk = handle.read(BLOCK_BYTES if stop is None else min(BLOCK_BYTES, stop - start - scan.bytes_read))
            final = not chunk
            scan.bytes_read += len(chunk)
            if not scan.head:
                scan.head = chunk[:4]
            data = carry + chunk
            if final:
                end = len(data)
            else:
                last = len(data) - 1 if data.endswith(b"\r") else len(data)  # a last \r may be half a \r\n
                end = max(data.rfind(b"\n", 0, last), data.rfind(b"\r", 0, last)) + 1
                if end == 0 and len(data) < 64 * BLOCK_BYTES:  # no line end yet: read on
                    carry = data
                    continue
                if end == 0:
                    end = len(data)  # a 64 MiB line: cut it (between tokens only by chance)
            carry = data[end:]
            advance(scan.add_block(np.frombuffer(data, np.uint8, count=end)))
            if not checked and (scan.bytes_read >= SNIFF_BYTES or final):
                # refuse a binary before reading on
                check_text(path, _stats(scan.counters, scan.bytes_read - len(carry)), scan.head)
                checked = True
            if final:
                return scan


class _Scan:
    """What a scan of consecutive whole lines of a file has found so far, in arrays that grow as blocks are
    added: the word table (distinct tokens' ``hashes``, ``slots`` to find them, their bytes in ``arena``
    at ``word_start`` / ``word_length``), the words' ``counts``, the ``tokens``, the sentence ``offsets``
    and ``counters`` (see :func:`_scan_block`); the number of bytes read and the first four (``head``)."""

    def __init__(self, lowercase: bool, max_sentence_length: int):
        self.lowercase = lowercase
        self.max_sentence_length = max_sentence_length
        self.counters = np.zeros(9, np.int64)
        self.slots = np.zeros(1 << 16, np.int32)
        self.hashes = np.empty(1 << 14, np.uint64)
        self.word_start = np.empty(1 << 14, np.int64)
        self.word_length = np.empty(1 << 14, np.int64)
        self.arena = np.empty(1 << 18, np.uint8)
        self.counts = np.zeros(1 << 14, np.int64)
        self.tokens = np.empty(1 << 20, np.int32)
        self.offsets = np.zeros(1 << 16, np.int64)
        self.bytes_read = 0
        self.head = b""

    def add_block(self, block) -> int:
        """Scan ``block`` (whole lines, or the end of the file); the number of tokens it held."""
        room = len(block) // 2 + 2  # at most this many new words, tokens or sentences
        n_words, _, n_tokens, n_sentences = (int(x) for x in self.counters[:4])
        self._make_room_for_words(len(block))
        self.counts = _grown(self.counts, n_words + room, fill=0)
        self.tokens = _grown(self.tokens, n_tokens + room)
        self.offsets = _grown(self.offsets, n_sentences + room + 1, fill=0)
        _scan_block(block, len(block), self.lowercase, self.max_sentence_length, self.slots, self.hashes,
                    self.arena, self.word_start, self.word_length, self.counts, self.tokens, self.offsets,
                    self.counters)
        return int(self.counters[2]) - n_tokens

    def _make_room_for_words(self, n_bytes):
        """Grow the word table to take the new words that ``n_bytes`` bytes can hold."""
        room = n_bytes // 2 + 2
        n_words, used = int(self.counters[0]), int(self.counters[1])
        self.hashes = _grown(self.hashes, n_words + room)
        self.word_start = _grown(self.word_start, n_words + room)
        self.word_length = _grown(self.word_length, n_words + room)
        self.arena = _grown(self.arena, used + n_bytes)
        if len(self.slots) < 2 * (n_words + room):
            size = len(self.slots)
            while size < 2 * (n_words + room):
                size *= 2
            self.slots = np.zeros(size, np.int32)
            _rehash(self.slots, self.hashes, n_words)

    def append(self, later: _Scan) -> None:
        """Take in ``later``, the scan (on its own) of the lines that follow this scan's, as if this scan had
        read on: ``later``'s words that this scan has keep their ids here, its new words follow in their order
        of first appearance; counts add up, tokens and sentences follow, and so do the stats."""
        ids = self._word_ids(later.words_as_lines(), int(later.counters[0]))
        n_words, _, n_tokens, n_sentences = (int(x) for x in self.counters[:4])
        later_tokens, later_sentences = int(later.counters[2]), int(later.counters[3])
        self.counts = _grown(self.counts, n_words, fill=0)
        self.counts[ids] += later.counts[:len(ids)]  # no id twice: later's words are distinct byte strings
        tokens = np.empty(n_tokens + later_tokens, np.int32)  # no room for more: nothing is read after
        tokens[:n_tokens] = self.tokens[:n_tokens]
        tokens[n_tokens:] = ids[later.tokens[:later_tokens]]
        self.tokens = tokens
        self.offsets = _grown(self.offsets, n_sentences + later_sentences + 1, fill=0)
        self.offsets[n_sentences + 1:n_sentences + later_sentences + 1] = (
            later.offsets[1:later_sentences + 1] + n_tokens)
        self.counters[2:] += later.counters[2:]  # tokens, sentences, later's open sentence (this one has none), stats
        self.bytes_read += later.bytes_read

    def _word_ids(self, lines, n_lines) -> np.ndarray:
        """The ids of the words of ``lines`` (``n_lines`` distinct byte strings, one a line): a word this scan
        has keeps its id, the others become its next words, in order. The kernel reads them as a block, into
        this scan's word table (matching bytes as it does in a scan) but counts, tokens and sentences of
        their own."""
        self._make_room_for_words(len(lines))
        counters = np.zeros(9, np.int64)
        counters[:2] = self.counters[:2]  # words, arena bytes
        ids = np.empty(n_lines, np.int32)
        _scan_block(lines, len(lines), self.lowercase, 1, self.slots, self.hashes, self.arena, self.word_start,
                    self.word_length, np.zeros(len(self.hashes), np.int64), ids, np.zeros(n_lines + 1, np.int64),
                    counters)
        self.counters[:2] = counters[:2]
        return ids

    def words_as_lines(self) -> np.ndarray:
        """The words' bytes (lowercased where ASCII, with ``lowercase``), one a line, in order of first
        appearance (the last line without a line end)."""
        n_words, used = int(self.counters[0]), int(self.counters[1])
        lines = np.insert(self.arena[:used], self.word_start[1:n_words], ord("\n"))
        lines.flags.writeable = False  # read-only, as the blocks of a file: the kernel is compiled once, for those
        return lines

    def stats(self) -> TextStats:
        return _stats(self.counters, self.bytes_read)

    def scanned_file(self) -> ScannedFile:
        """The words, counts, tokens and sentences found, with the file's last line a sentence even without
        a line end."""
        n_words, _, n_tokens, n_sentences, open_count = (int(x) for x in self.counters[:5])
        offsets = self.offsets
        if open_count > 0:  # the last line had no line end
            n_sentences += 1
            offsets = _grown(offsets, n_sentences + 1, fill=0)
            offsets[n_sentences] = n_tokens
        # decoded at once: a line end ends any UTF-8 sequence, so each line decodes as it would alone
        words = self.words_as_lines().tobytes().decode("utf-8", "replace").split("\n") if n_words else []
        if self.lowercase:
            words = [w.lower() if not w.isascii() else w for w in words]
        return ScannedFile(words, self.counts[:n_words].copy(), self.tokens[:n_tokens],
                           offsets[:n_sentences + 1].copy(), self.stats())


def _stats(counters, n_bytes) -> TextStats:
    return TextStats(int(counters[5]), int(n_bytes), int(counters[6]), int(counters[7]), int(counters[8]))


def merge_duplicates(scanned: ScannedFile) -> ScannedFile:
    """One entry per distinct text: byte strings that decode (or lowercase) to the same word are
    merged, in order of first appearance. A scan without such byte strings (the usual case) is
    returned as it is."""
    if len(set(scanned.words)) == len(scanned.words):
        return scanned
    index: dict = {}
    remap = np.empty(len(scanned.words), np.int64)
    for i, word in enumerate(scanned.words):
        remap[i] = index.setdefault(word, len(index))
    counts = np.bincount(remap, weights=scanned.counts, minlength=len(index)).astype(np.int64)
    return scanned._replace(words=list(index), counts=counts, tokens=remap[scanned.tokens].astype(np.int32))


def file_key(path, lowercase, max_length) -> tuple:
    """What identifies a read of a text file: its path, size and modification time, and the settings."""
    from pathlib import Path

    try:
        stat = Path(path).stat()
    except OSError:
        raise Word2BertError(f"file not found: {path}") from None
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, bool(lowercase), int(max_length)


def file_source(sentences, corpus_file):
    """``(path, lowercase, max_sentence_length)`` when the corpus is a text file (``corpus_file``, or a
    :class:`~word2bert.corpus.LineSentence`), else None."""
    from word2bert.corpus.reader import LineSentence

    if corpus_file is not None and sentences is None:
        return corpus_file, None, None
    if isinstance(sentences, LineSentence) and corpus_file is None:
        return sentences.source, sentences.lowercase, sentences.max_sentence_length
    return None


def vocabulary_of(scanned: ScannedFile, min_count: int, max_vocab_size: int | None = None):
    """The :class:`~word2bert.corpus.Vocabulary` of a scan: words with ``min_count``, then at most
    ``max_vocab_size`` of the most frequent, by decreasing count (ties in order of first appearance,
    as :meth:`Vocabulary.from_counter`); ``raw_total_words`` counts every token read."""
    from word2bert.corpus.vocab import Vocabulary

    total = len(scanned.tokens)
    if total == 0:
        raise Word2BertError("the corpus is empty: no tokens were read")
    order = np.argsort(-scanned.counts, kind="stable")
    kept = order[scanned.counts[order] >= min_count]
    if max_vocab_size is not None:
        kept = kept[:max_vocab_size]
    if len(kept) == 0:
        raise Word2BertError(f"no word occurs at least min_count={min_count} times in the corpus ({total} tokens); "
                             "lower min_count")
    vocab = Vocabulary([scanned.words[i] for i in kept.tolist()], scanned.counts[kept])
    vocab.raw_total_words = total
    return vocab


def encode_scan(scanned: ScannedFile, vocab):
    """The :class:`~word2bert.corpus.EncodedCorpus` of a scan with ``vocab``: tokens out of the
    vocabulary dropped (they take no window position), sentences left empty dropped."""
    from word2bert.corpus.encoded import EncodedCorpus

    vocabulary_ids = np.fromiter(map(vocab.index.get, scanned.words, itertools.repeat(-1)), np.int32,
                                 len(scanned.words))
    ids = vocabulary_ids[scanned.tokens]
    kept = ids >= 0
    if not kept.any():
        if len(ids) == 0:
            raise Word2BertError("the corpus is empty: no tokens were read")
        raise Word2BertError("no token of the corpus is in the vocabulary")
    dropped_positions = np.flatnonzero(~kept)
    ends = scanned.offsets - np.searchsorted(dropped_positions, scanned.offsets)  # sentence ends once dropped
    nonempty = np.diff(ends) > 0
    offsets = np.concatenate([[0], ends[1:][nonempty]]).astype(np.int64)
    return EncodedCorpus(ids[kept], offsets, len(scanned.tokens))
