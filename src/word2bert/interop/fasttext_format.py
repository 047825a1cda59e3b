"""Facebook fastText files: the binary model ``.bin`` and the text vectors ``.vec``.

``.bin`` layout (fastText 0.9, ``FastText::saveModel``; all little-endian):

* ``int32`` magic 793712314, ``int32`` version 12;
* Args: ``int32`` dim, ws, epoch, minCount, neg, wordNgrams, loss (hs=1, ns=2, softmax=3,
  ova=4), model (cbow=1, sg=2, sup=3), bucket, minn, maxn, lrUpdateRate; ``float64`` t;
* Dictionary: ``int32`` size, nwords, nlabels; ``int64`` ntokens, pruneidx_size; ``size``
  entries of (NUL-terminated UTF-8 word, ``int64`` count, ``int8`` type: 0 word, 1 label),
  words first then labels; ``pruneidx_size`` pairs of ``int32`` (pruned models; -1 = not pruned);
* ``bool`` quant_input, the input matrix (dense: ``int64`` rows, ``int64`` cols, float32
  data, rows = nwords + bucket); ``bool`` qout, the output matrix the same way.

A quantized matrix (``.ftz``; ``QuantMatrix::save``) is ``bool`` qnorm, ``int64`` rows, cols,
``int32`` codesize, ``codesize`` uint8 codes, the product quantizer (``int32`` dim, nsubq, dsub,
lastdsub, then ``dim * 256`` float32 centroids), and with qnorm ``rows`` uint8 norm codes and the
norms' own quantizer. Pruned models (``quantize(cutoff=...)``) keep ``pruneidx``: n-gram bucket ->
row among the kept n-grams.

This module only reads and writes the data (:class:`FastTextFile`); the models build themselves
from it (``FastText.from_fasttext_file``, ``FastTextClassifier.from_fasttext_file``), and
:mod:`word2bert.static.quantize` computes quantized matrices. ``.vec`` is the word2vec text format
(header ``n dim``), read and written by :class:`word2bert.vectors.KeyedVectors`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write, open_binary

FASTTEXT_MAGIC = 793712314
FASTTEXT_VERSION = 12
LOSS_CODES = {"hs": 1, "ns": 2, "softmax": 3, "ova": 4}
MODEL_CODES = {"cbow": 1, "sg": 2, "sup": 3}
_ARG_NAMES = ("dim", "ws", "epoch", "minCount", "neg", "wordNgrams", "loss", "model", "bucket", "minn", "maxn",
              "lrUpdateRate")


@dataclass
class ProductQuantizerData:
    """fastText's ``ProductQuantizer``: ``nsubq`` blocks of ``dsub`` columns (the last ``lastdsub``), 256
    centroids each, in one flat float32 array of ``dim * 256`` values (block ``m``'s codebook starts at
    ``m * 256 * dsub``)."""

    dim: int
    nsubq: int
    dsub: int
    lastdsub: int
    centroids: np.ndarray


@dataclass
class QuantizedMatrixData:
    """fastText's ``QuantMatrix``: ``codes`` (rows, nsubq) uint8 of ``pq``; with qnorm, ``norm_codes`` (rows,)
    of the one-dimensional ``norm_pq``."""

    rows: int
    cols: int
    codes: np.ndarray
    pq: ProductQuantizerData
    norm_codes: np.ndarray | None = None
    norm_pq: ProductQuantizerData | None = None


@dataclass
class FastTextFile:
    """Everything a fastText ``.bin`` holds, in fastText's own names.

    ``words``/``counts`` are the word entries (ids ``0..nwords-1``), ``labels``/``label_counts``
    the label entries; ``input_matrix`` has ``nwords + bucket`` rows (words, then n-gram
    buckets; fewer when ``pruneidx`` maps buckets to rows), ``output_matrix`` one row per word
    (unsupervised) or per label (supervised). Either matrix is a float32 array or, in an ``.ftz``,
    a :class:`QuantizedMatrixData`.
    """

    args: dict
    words: list
    counts: np.ndarray
    labels: list
    label_counts: np.ndarray
    ntokens: int
    input_matrix: np.ndarray
    output_matrix: np.ndarray
    pruneidx: dict | None = None

    @property
    def loss(self) -> str:
        return {v: k for k, v in LOSS_CODES.items()}.get(self.args["loss"], "ns")

    @property
    def model(self) -> str:
        return {v: k for k, v in MODEL_CODES.items()}.get(self.args["model"], "sg")

    @property
    def quantized(self) -> bool:
        return isinstance(self.input_matrix, QuantizedMatrixData)


class _Reader:
    def __init__(self, handle, path):
        self.handle = handle
        self.path = path

    def take(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise Word2BertError(f"{self.path}: truncated fastText .bin file (wanted {n} more bytes)")
        return data

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def cstring(self) -> bytes:
        out = bytearray()
        while True:
            chunk = self.handle.read(1)
            if not chunk:
                raise Word2BertError(f"{self.path}: truncated fastText .bin file inside the dictionary")
            if chunk == b"\0":
                return bytes(out)
            out += chunk
            if len(out) > 1 << 16:
                raise Word2BertError(f"{self.path}: corrupt fastText .bin (dictionary entry longer than 64 KiB)")

    def matrix(self, what: str) -> np.ndarray:
        rows, cols = self.unpack("qq")
        if rows < 0 or cols <= 0 or rows * cols > 1 << 40:
            raise Word2BertError(f"{self.path}: corrupt fastText .bin ({what} matrix of {rows} x {cols})")
        out = np.empty((rows, cols), dtype="<f4")
        view = memoryview(out).cast("B")
        got = 0
        while got < len(view):
            n = self.handle.readinto(view[got:])
            if not n:
                raise Word2BertError(f"{self.path}: truncated fastText .bin file in the {what} matrix")
            got += n
        return out.astype(np.float32, copy=False)

    def quantizer(self, what: str) -> ProductQuantizerData:
        dim, nsubq, dsub, lastdsub = self.unpack("4i")
        if dim <= 0 or dsub <= 0 or nsubq != -(-dim // dsub) or not 0 < lastdsub <= dsub:
            raise Word2BertError(f"{self.path}: corrupt .ftz ({what} quantizer: dim {dim}, nsubq {nsubq}, dsub {dsub})")
        centroids = np.frombuffer(self.take(4 * dim * 256), dtype="<f4").astype(np.float32)
        return ProductQuantizerData(dim, nsubq, dsub, lastdsub, centroids)

    def quantized_matrix(self, what: str) -> QuantizedMatrixData:
        (qnorm,) = self.unpack("?")
        rows, cols = self.unpack("qq")
        (codesize,) = self.unpack("i")
        if rows < 0 or cols <= 0 or codesize < 0 or codesize > rows * cols:
            raise Word2BertError(f"{self.path}: corrupt .ftz ({what} matrix of {rows} x {cols}, {codesize} codes)")
        codes = np.frombuffer(self.take(codesize), dtype=np.uint8)
        pq = self.quantizer(what)
        if codesize != rows * pq.nsubq or pq.dim != cols:
            raise Word2BertError(f"{self.path}: corrupt .ftz ({what} codes do not match the quantizer)")
        norm_codes = norm_pq = None
        if qnorm:
            norm_codes = np.frombuffer(self.take(rows), dtype=np.uint8).copy()
            norm_pq = self.quantizer(what + " norm")
        return QuantizedMatrixData(int(rows), int(cols), codes.reshape(rows, pq.nsubq).copy(), pq, norm_codes, norm_pq)


def read_fasttext_bin(path) -> FastTextFile:
    """Read a Facebook fastText ``.bin`` model (see the module docstring for the layout)."""
    with open_binary(path) as handle:
        reader = _Reader(handle, path)
        head = handle.read(8)
        if len(head) < 8:
            raise Word2BertError(f"{path}: not a fastText .bin model (file too short)")
        magic, version = struct.unpack("<ii", head)
        if magic != FASTTEXT_MAGIC:
            raise Word2BertError(f"{path}: not a fastText .bin model (bad magic number {magic}); "
                                 "for text vectors (.vec) use load_word2vec_format")
        if version > FASTTEXT_VERSION:
            raise Word2BertError(f"{path}: fastText .bin version {version} is newer than supported "
                                 f"({FASTTEXT_VERSION})")
        values = reader.unpack("12i")
        args = dict(zip(_ARG_NAMES, values))
        (args["t"],) = reader.unpack("d")
        if args["dim"] <= 0 or args["bucket"] < 0 or args["loss"] not in LOSS_CODES.values() \
                or args["model"] not in MODEL_CODES.values():
            raise Word2BertError(f"{path}: corrupt fastText .bin (implausible arguments {args})")
        if version == 11 and args["model"] == MODEL_CODES["sup"]:
            args["maxn"] = 0  # fastText: old supervised models do not use char n-grams
        size, nwords, nlabels = reader.unpack("3i")
        ntokens, pruneidx_size = reader.unpack("2q")
        if size < 0 or nwords < 0 or nlabels < 0 or nwords + nlabels != size:
            raise Word2BertError(f"{path}: corrupt fastText .bin dictionary (size {size}, nwords {nwords}, "
                                 f"nlabels {nlabels})")
        words, counts, labels, label_counts = [], [], [], []
        for _ in range(size):
            word = reader.cstring().decode("utf-8", "replace")
            count, kind = reader.unpack("qb")
            if kind == 0:
                words.append(word)
                counts.append(count)
            else:
                labels.append(word)
                label_counts.append(count)
        if len(words) != nwords:
            raise Word2BertError(f"{path}: corrupt fastText .bin dictionary ({len(words)} words, header says {nwords})")
        pruneidx = {}  # (pruneidx_size -1: not pruned; 0: every n-gram pruned away)
        if pruneidx_size > 0:
            pairs = np.frombuffer(reader.take(8 * pruneidx_size), dtype="<i4").reshape(-1, 2)
            pruneidx = {int(a): int(b) for a, b in pairs}
        (quant_input,) = reader.unpack("?")
        input_matrix = reader.quantized_matrix("input") if quant_input else reader.matrix("input")
        (quant_output,) = reader.unpack("?")
        output_matrix = reader.quantized_matrix("output") if quant_output else reader.matrix("output")
        widths = [m.cols if isinstance(m, QuantizedMatrixData) else m.shape[1] for m in (input_matrix, output_matrix)]
        if widths != [args["dim"], args["dim"]]:
            raise Word2BertError(f"{path}: corrupt fastText .bin (matrix width does not match dim {args['dim']})")
        n_input = input_matrix.rows if isinstance(input_matrix, QuantizedMatrixData) else input_matrix.shape[0]
        if pruneidx_size < 0 and n_input != nwords + args["bucket"]:
            raise Word2BertError(f"{path}: corrupt fastText .bin (input matrix has {n_input} rows, "
                                 f"expected nwords + bucket = {nwords + args['bucket']})")
    return FastTextFile(args, words, np.asarray(counts, np.int64), labels, np.asarray(label_counts, np.int64),
                        int(ntokens), input_matrix, output_matrix, pruneidx if pruneidx_size >= 0 else None)


def write_fasttext_bin(path, model: FastTextFile) -> None:
    """Write ``model`` as a fastText 0.9 ``.bin`` (version 12) that ``fasttext.load_model`` reads."""
    args = dict(model.args)
    for name in _ARG_NAMES:
        if name not in args:
            raise Word2BertError(f"cannot write fastText .bin: argument {name!r} missing")
    with atomic_write(path, "wb") as out:
        out.write(struct.pack("<ii", FASTTEXT_MAGIC, FASTTEXT_VERSION))
        out.write(struct.pack("<12i", *(int(args[name]) for name in _ARG_NAMES)))
        out.write(struct.pack("<d", float(args.get("t", 1e-4))))
        nwords, nlabels = len(model.words), len(model.labels)
        out.write(struct.pack("<3i", nwords + nlabels, nwords, nlabels))
        # pruneidx_size -1 means "not pruned" (0 would mean every n-gram was pruned away)
        out.write(struct.pack("<2q", int(model.ntokens), len(model.pruneidx) if model.pruneidx is not None else -1))
        entries = bytearray()
        for word, count in zip(model.words, np.asarray(model.counts).tolist()):
            entries += word.encode("utf-8", "surrogatepass") + b"\0" + struct.pack("<qb", int(count), 0)
        for label, count in zip(model.labels, np.asarray(model.label_counts).tolist()):
            entries += label.encode("utf-8", "surrogatepass") + b"\0" + struct.pack("<qb", int(count), 1)
        out.write(bytes(entries))
        for a, b in (model.pruneidx or {}).items():
            out.write(struct.pack("<ii", a, b))
        for matrix in (model.input_matrix, model.output_matrix):
            if isinstance(matrix, QuantizedMatrixData):
                out.write(struct.pack("<?", True))
                _write_quantized(out, matrix)
                continue
            matrix = np.ascontiguousarray(matrix, dtype="<f4")
            out.write(struct.pack("<?", False))
            out.write(struct.pack("<qq", *matrix.shape))
            out.write(memoryview(matrix).cast("B"))


def _write_quantizer(out, pq: ProductQuantizerData) -> None:
    out.write(struct.pack("<4i", pq.dim, pq.nsubq, pq.dsub, pq.lastdsub))
    out.write(np.ascontiguousarray(pq.centroids, dtype="<f4").tobytes())


def _write_quantized(out, matrix: QuantizedMatrixData) -> None:
    codes = np.ascontiguousarray(matrix.codes, dtype=np.uint8)
    out.write(struct.pack("<?qqi", matrix.norm_pq is not None, matrix.rows, matrix.cols, codes.size))
    out.write(codes.tobytes())
    _write_quantizer(out, matrix.pq)
    if matrix.norm_pq is not None:
        out.write(np.ascontiguousarray(matrix.norm_codes, dtype=np.uint8).tobytes())
        _write_quantizer(out, matrix.norm_pq)


def save_vec(vectors, path) -> None:
    """Write word vectors as fastText's ``.vec`` (the word2vec text format)."""
    vectors.save_word2vec_format(path, binary=False)


def load_vec(path):
    """Read fastText's ``.vec`` text vectors as :class:`KeyedVectors`."""
    from word2bert.vectors import KeyedVectors

    return KeyedVectors.load_word2vec_format(path, binary=False)
