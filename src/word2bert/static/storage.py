"""One file format for every static model: its arrays by name plus JSON metadata, in one ``.npz``.

``metadata`` is a JSON string (no pickles: ``np.load(allow_pickle=False)`` reads the file)::

    {"format": "word2bert.static", "version": 2, "model": "Word2Vec", "word2bert": "0.1.0",
     "params": {...constructor arguments...}, "state": {...vocabulary, counters...},
     "resume": null or where an interrupted training run stopped}

Word2Vec, FastText, the classifier and Doc2Vec models and checkpoints, and GloVe checkpoints, are
all written this way (FastText and the classifier also write Facebook's ``.bin``, GloVe and LSA
their vectors in any vector format). Files are written atomically. :func:`load` also reads the
layouts of word2bert 0.1.0, each model's own (``word2bert.Word2Vec`` version 1,
``word2bert.checkpoint``, Doc2Vec's and GloVe's arrays), into the same :class:`Stored` shape.
"""

from __future__ import annotations

import json
import zipfile
from typing import NamedTuple

import numpy as np

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write, open_binary

FORMAT = "word2bert.static"
VERSION = 2


class Stored(NamedTuple):
    """A model file read back: which model, its parameters, state, arrays and resume position."""

    model: str
    params: dict
    state: dict
    arrays: dict
    resume: dict | None
    version: int


def save(path, model: str, params: dict, state: dict, arrays: dict, resume: dict | None = None) -> None:
    """Write ``arrays`` and the JSON metadata of ``model`` to ``path`` (an ``.npz`` whatever its name), atomically."""
    from word2bert import __version__

    metadata = {"format": FORMAT, "version": VERSION, "model": model, "word2bert": __version__,
                "params": params, "state": state, "resume": resume}
    if "metadata" in arrays:
        raise ValueError("'metadata' is reserved")
    with atomic_write(path, "wb") as handle:
        np.savez(handle, metadata=np.array(json.dumps(metadata)), **arrays)


def load(path, model: str, required=()) -> Stored:
    """Read a file of ``model`` written by :func:`save` (or by word2bert 0.1.0); the arrays ``required``
    must be there. A missing, foreign or corrupt file, or one of another model, raises Word2BertError."""
    try:
        with open_binary(path) as handle, np.load(handle, allow_pickle=False) as archive:
            names = set(archive.files)
            if "metadata" in names:
                metadata = json.loads(str(archive["metadata"]))
                if not isinstance(metadata, dict):
                    raise ValueError("metadata is not an object")
                stored = _from_metadata(metadata, archive)
            elif "format" in names and str(archive["format"]) == "word2bert-glove-checkpoint-1":
                stored = _glove_0_1(archive)
            elif {"params", "words", "tags", "input_vectors"} <= names:
                stored = _doc2vec_0_1(archive)
            else:
                raise ValueError("no metadata")
    except Word2BertError:
        raise
    except Exception as exc:  # zipfile, json, missing keys: all mean "not a file of ours"
        reason = exc if zipfile.is_zipfile(path) else "not an .npz archive"
        raise Word2BertError(f"{path}: not a word2bert {model} checkpoint or model, or corrupt ({reason})") from None
    if stored.model != model:
        raise Word2BertError(f"{path}: a checkpoint or model of {stored.model}, not of {model}")
    missing = [name for name in required if name not in stored.arrays]
    if missing:
        raise Word2BertError(f"{path}: corrupt {model} file: array {missing[0]!r} missing")
    arrays = {name: np.ascontiguousarray(value) for name, value in stored.arrays.items()}
    return stored._replace(arrays=arrays)


def check_shape(path, name: str, array: np.ndarray, expected: tuple) -> None:
    """Word2BertError unless ``array.shape == expected``."""
    if tuple(array.shape) != tuple(expected):
        raise Word2BertError(f"{path}: corrupt model file: {name} has shape {tuple(array.shape)}, expected "
                             f"{tuple(expected)}")


def _arrays(archive, skip=("metadata",)) -> dict:
    return {name: archive[name] for name in archive.files if name not in skip}


def _from_metadata(metadata: dict, archive) -> Stored:
    kind = metadata.get("format")
    if kind == FORMAT:
        if int(metadata.get("version", 0)) > VERSION:
            raise Word2BertError(f"written by a newer word2bert (format version {metadata['version']}; this one "
                                 f"reads up to {VERSION}): upgrade word2bert")
        return Stored(metadata["model"], metadata["params"], metadata.get("state") or {}, _arrays(archive),
                      metadata.get("resume"), int(metadata["version"]))
    if kind == "word2bert.checkpoint":  # 0.1.0: FastText and FastTextClassifier checkpoints
        return Stored(metadata["model"], metadata["params"], metadata.get("meta") or {}, _arrays(archive),
                      metadata.get("resume"), 1)
    if kind == "word2bert.Word2Vec":  # 0.1.0: Word2Vec models and checkpoints (version 1)
        state = {key: value for key, value in metadata.items() if key not in ("format", "version", "params", "resume")}
        return Stored("Word2Vec", metadata["params"], state, _arrays(archive), metadata.get("resume"), 1)
    raise ValueError(f"unknown format {kind!r}")


def _doc2vec_0_1(archive) -> Stored:
    """0.1.0's Doc2Vec file: JSON strings ``params``, ``words``, ``tags`` ([is_int, str] pairs) and
    ``resume`` beside the arrays."""
    state = {"words": json.loads(str(archive["words"])), "tags": json.loads(str(archive["tags"]))}
    resume = json.loads(str(archive["resume"])) if "resume" in archive.files else None
    arrays = {name: archive[name] for name in ("counts", "input_vectors", "output_vectors")}
    return Stored("Doc2Vec", json.loads(str(archive["params"])), state, arrays, resume, 1)


def _glove_0_1(archive) -> Stored:
    """0.1.0's GloVe checkpoint: ``settings`` as ``name=value`` strings, the words as UTF-8 bytes."""
    types = {"vector_size": int, "x_max": float, "alpha": float, "epochs": int, "eta": float, "workers": int,
             "seed": int, "output_vectors": str}
    settings = dict(item.split("=", 1) for item in archive["settings"].tolist())
    params = {name: convert(settings[name]) for name, convert in types.items()}
    blob, offsets = archive["word_bytes"].tobytes(), archive["word_offsets"]
    words = [blob[offsets[i]:offsets[i + 1]].decode("utf-8", "surrogatepass") for i in range(len(offsets) - 1)]
    state = {"words": words, "iterations_done": int(archive["iterations_done"]),
             "loss_history": archive["loss_history"].tolist()}
    names = ("word_parameters", "context_parameters", "word_biases", "context_biases", "word_bias_gradsq",
             "context_bias_gradsq", "counts")
    arrays = {name: archive[name] for name in names if name in archive.files}
    return Stored("GloVe", params, state, arrays, None, 1)
