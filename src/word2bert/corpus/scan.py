"""One compiled pass over a text file: tokens, their counts and the corpus as ids, at once.

:func:`scan_file` reads the file's bytes in blocks (decompressing .gz/.bz2/.xz; the decompressors
release the GIL) and a numba kernel (``nogil``) splits them into lines and tokens, counts every
distinct token in an open-addressing hash table and writes each token's provisional id (its rank
of first appearance) and each line's boundaries. :func:`vocabulary_and_corpus` then keeps the words
with ``min_count`` and maps the provisional ids to vocabulary ids with numpy: the vocabulary and
the :class:`~word2bert.corpus.EncodedCorpus` of one read of the file, with no Python per token
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

import itertools
import warnings
from typing import NamedTuple

import numba
import numpy as np

from word2bert.errors import Word2BertError
from word2bert.fileio import open_binary

BLOCK_BYTES = 1 << 20
MAX_SENTENCE_LENGTH = 10000  # as corpus.reader (gensim's MAX_WORDS_IN_BATCH)
NOT_TEXT_LIMIT = 0.3  # a larger share of non-text bytes means "not a text file"
SNIFF_BYTES = 1 << 16  # what is looked at before the file is refused


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
              check: bool = True) -> ScannedFile:
    """Read ``path`` once (see the module docstring); ``progress`` (tqdm) advances in tokens. With
    ``check``, a file that is mostly not text is refused after its first block (:func:`check_text`)."""
    if max_sentence_length < 1:
        raise Word2BertError(f"parameter max_sentence_length={max_sentence_length} must be >= 1")
    counters = np.zeros(9, np.int64)
    slots = np.zeros(1 << 16, np.int32)
    hashes = np.empty(1 << 14, np.uint64)
    word_start = np.empty(1 << 14, np.int64)
    word_length = np.empty(1 << 14, np.int64)
    counts = np.zeros(1 << 14, np.int64)
    arena = np.empty(1 << 18, np.uint8)
    tokens = np.empty(1 << 20, np.int32)
    offsets = np.zeros(1 << 16, np.int64)
    head = b""
    checked = not check
    read = 0
    with open_binary(path) as handle:
        carry = b""
        while True:
            chunk = handle.read(BLOCK_BYTES)
            final = not chunk
            read += len(chunk)
            if not head:
                head = chunk[:4]
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
            block = np.frombuffer(data, np.uint8, count=end)
            carry = data[end:]
            room = end // 2 + 2
            n_words, used, n_tokens, n_sentences = (int(x) for x in counters[:4])
            hashes = _grown(hashes, n_words + room)
            word_start = _grown(word_start, n_words + room)
            word_length = _grown(word_length, n_words + room)
            counts = _grown(counts, n_words + room, fill=0)
            arena = _grown(arena, used + end)
            tokens = _grown(tokens, n_tokens + room)
            offsets = _grown(offsets, n_sentences + room + 1, fill=0)
            if len(slots) < 2 * (n_words + room):
                size = len(slots)
                while size < 2 * (n_words + room):
                    size *= 2
                slots = np.zeros(size, np.int32)
                _rehash(slots, hashes, n_words)
            _scan_block(block, end, bool(lowercase), int(max_sentence_length), slots, hashes, arena, word_start,
                        word_length, counts, tokens, offsets, counters)
            if progress is not None:
                progress.update(int(counters[2]) - n_tokens)
            if not checked and (read >= SNIFF_BYTES or final):
                check_text(path, _stats(counters, read - len(carry)), head)  # refuse a binary before reading on
                checked = True
            if final:
                break
    n_words, used, n_tokens, n_sentences, open_count = (int(x) for x in counters[:5])
    if open_count > 0:  # the last line had no line end
        n_sentences += 1
        offsets = _grown(offsets, n_sentences + 1, fill=0)
        offsets[n_sentences] = n_tokens
    stats = _stats(counters, read)
    if check:
        check_text(path, stats, head)
    blob = arena[:used].tobytes()
    starts, lengths = word_start[:n_words], word_length[:n_words]
    words = [blob[s:s + n].decode("utf-8", "replace") for s, n in zip(starts.tolist(), lengths.tolist())]
    if lowercase:
        words = [w.lower() if not w.isascii() else w for w in words]
    return ScannedFile(words, counts[:n_words].copy(), tokens[:n_tokens], offsets[:n_sentences + 1].copy(), stats)


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
