"""Character n-grams of words and fastText's hash, so that our n-gram ids equal fastText's.

fastText (Bojanowski et al. 2017, "Enriching Word Vectors with Subword Information") represents
a word ``w`` by the set of its character n-grams of ``<w>`` (``<`` and ``>`` mark the word
boundaries) for ``minn <= n <= maxn``, plus the word itself. An n-gram's row is
``nwords + hash(ngram) % bucket``; its vector is shared by every word containing it.

Everything here works on UTF-8 BYTES exactly as ``Dictionary::computeSubwords`` and
``Dictionary::hash`` of fastText 0.9 do:

* ``hash`` is 32-bit FNV-1a with a quirk: every byte is sign-extended through ``int8``
  before the xor, ``h = (h ^ uint32(int8(byte))) * 16777619`` starting from 2166136261;
  for non-ASCII bytes this differs from textbook FNV-1a.
* ``n`` counts characters, not bytes: an n-gram never starts on a UTF-8 continuation byte
  (``byte & 0xC0 == 0x80``) and always takes a character's continuation bytes with it.
* The single characters ``<`` and ``>`` are never n-grams (``n == 1`` at either end).

The vocabulary's n-grams are computed in one numba pass over a concatenated byte buffer (no
per-word Python beyond encoding the strings once); the whole-token hashes, in numpy.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FNV_OFFSET_BASIS = 2166136261
FNV_PRIME = 16777619
MASK32 = 0xFFFFFFFF
BOW = "<"
EOW = ">"
EOS = "</s>"  # fastText's end-of-sentence token; it gets no n-grams


@njit(nogil=True, cache=True)
def _fnv_step(h, byte):
    """One step of fastText's hash: ``h = (h ^ uint32(int8(byte))) * 16777619 mod 2^32``."""
    extended = np.uint64(byte) if byte < 128 else (np.uint64(byte) | np.uint64(0xFFFFFF00))
    return ((h ^ extended) * np.uint64(FNV_PRIME)) & np.uint64(MASK32)


def fasttext_hash(text: str) -> int:
    """fastText's ``Dictionary::hash`` of ``text`` (UTF-8 encoded): FNV-1a over int8-sign-extended bytes,
    as an unsigned 32-bit int."""
    return int(hash_tokens([text])[0])


def hash_tokens(tokens) -> np.ndarray:
    """The fastText hash of every token, as uint32: the FNV-1a steps of all tokens at once, byte position
    by byte position over one buffer (numpy: nothing to compile on a first run)."""
    data, offsets = encode_words(tokens, boundaries=False)
    signed = data.view(np.int8).astype(np.int64).astype(np.uint64) & np.uint64(MASK32)  # uint32(int8(byte))
    lengths = np.diff(offsets)
    hashes = np.full(len(lengths), FNV_OFFSET_BASIS, np.uint64)
    active = np.arange(len(lengths))
    for position in range(int(lengths.max()) if len(lengths) else 0):
        active = active[lengths[active] > position]
        step = (hashes[active] ^ signed[offsets[active] + position]) * np.uint64(FNV_PRIME)
        hashes[active] = step & np.uint64(MASK32)
    return hashes.astype(np.uint32)


def encode_words(words, boundaries: bool = True):
    """Concatenate the UTF-8 bytes of ``<word>`` (or ``word``) into one uint8 buffer + int64 offsets."""
    if boundaries:
        encoded = [(BOW + w + EOW).encode("utf-8", "surrogatepass") for w in words]
    else:
        encoded = [w.encode("utf-8", "surrogatepass") for w in words]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    if encoded:
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
    return data, offsets


@njit(nogil=True, cache=True)
def _ngram_hashes(data, start, end, minn, maxn, out, count_only):
    """Hashes of the character n-grams of ``data[start:end]`` (= ``<word>``), in fastText's order.

    For every start byte ``i`` that is not a continuation byte, extend the n-gram one
    character (lead byte plus its continuation bytes) at a time; keep it when
    ``minn <= n <= maxn`` and it is not the lone ``<`` or ``>``. Returns how many were kept.
    """
    k = 0
    for i in range(start, end):
        if (data[i] & 0xC0) == 0x80:
            continue
        h = np.uint64(FNV_OFFSET_BASIS)
        j = i
        n = 1
        while j < end and n <= maxn:
            h = _fnv_step(h, data[j])
            j += 1
            while j < end and (data[j] & 0xC0) == 0x80:
                h = _fnv_step(h, data[j])
                j += 1
            if n >= minn and not (n == 1 and (i == start or j == end)):
                if not count_only:
                    out[k] = h
                k += 1
            n += 1
    return k


@njit(nogil=True, cache=True)
def _subword_table(data, offsets, is_eos, minn, maxn, bucket, nwords, include_self):
    """CSR table of input rows per word: ``[word id] + [nwords + hash % bucket for each n-gram]``."""
    n_words = len(offsets) - 1
    counts = np.zeros(n_words, dtype=np.int64)
    scratch = np.empty(0, dtype=np.uint64)
    for w in range(n_words):
        c = 1 if include_self else 0
        if maxn > 0 and bucket > 0 and not is_eos[w]:
            c += _ngram_hashes(data, offsets[w], offsets[w + 1], minn, maxn, scratch, True)
        counts[w] = c
    row_offsets = np.zeros(n_words + 1, dtype=np.int64)
    for w in range(n_words):
        row_offsets[w + 1] = row_offsets[w] + counts[w]
    rows = np.empty(row_offsets[n_words], dtype=np.int32)
    hashes = np.empty(512, dtype=np.uint64)
    for w in range(n_words):
        k = row_offsets[w]
        if include_self:
            rows[k] = w
            k += 1
        if maxn > 0 and bucket > 0 and not is_eos[w]:
            length = offsets[w + 1] - offsets[w]
            need = length * maxn + 1
            if need > len(hashes):
                hashes = np.empty(need, dtype=np.uint64)
            m = _ngram_hashes(data, offsets[w], offsets[w + 1], minn, maxn, hashes, False)
            for q in range(m):
                rows[k + q] = nwords + np.int64(hashes[q] % np.uint64(bucket))
    return row_offsets, rows


def subword_rows(words, minn: int, maxn: int, bucket: int, nwords: int | None = None,
                 include_self: bool = True):
    """Input rows of each word as CSR ``(offsets, rows)``: its own id (if ``include_self``)
    then ``nwords + hash(ngram) % bucket`` for its n-grams, in fastText's order.

    With ``include_self`` word ``i`` of ``words`` is given id ``i`` (in-vocabulary words);
    ``nwords`` defaults to ``len(words)``. ``</s>`` gets no n-grams, as in fastText.
    """
    words = list(words)
    if nwords is None:
        nwords = len(words)
    if maxn <= 0 or bucket <= 0:  # no n-grams (the classifier's default): each word is its own row, or none
        offsets = np.arange(len(words) + 1, dtype=np.int64) * (1 if include_self else 0)
        return offsets, np.arange(offsets[-1], dtype=np.int32)
    data, offsets = encode_words(words, boundaries=True)
    is_eos = np.array([w == EOS for w in words], dtype=np.bool_)
    return _subword_table(data, offsets, is_eos, int(minn), int(maxn), int(bucket), int(nwords), include_self)


def word_ngrams(word: str, minn: int, maxn: int) -> list[str]:
    """The n-gram strings of ``<word>`` in fastText's order (for inspection and tests)."""
    if word == EOS or maxn <= 0:
        return []
    data = (BOW + word + EOW).encode("utf-8", "surrogatepass")
    out = []
    for i in range(len(data)):
        if (data[i] & 0xC0) == 0x80:
            continue
        j, n = i, 1
        while j < len(data) and n <= maxn:
            j += 1
            while j < len(data) and (data[j] & 0xC0) == 0x80:
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == len(data))):
                out.append(data[i:j].decode("utf-8", "replace"))
            n += 1
    return out
