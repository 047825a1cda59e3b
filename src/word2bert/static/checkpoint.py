"""Checkpoint files of the bag-kernel models (FastText, FastTextClassifier): one ``.npz``.

An interrupted ``train`` (Ctrl-C, see :func:`word2bert.static.bag_kernels.run_resumable`)
saves the model's parameters, vocabulary, matrices and the position it stopped at; loading
the file and training again on the same corpus continues the run. Layout: the arrays by
name, plus ``metadata``, a JSON string ``{"format", "model", "params", "meta", "resume"}``
(no pickles: ``np.load(allow_pickle=False)`` reads it).
"""

from __future__ import annotations

import json

import numpy as np

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write, open_binary

FORMAT = "word2bert.checkpoint"


def save_checkpoint(path, model: str, params: dict, meta: dict, arrays: dict, resume: dict | None) -> None:
    """Write ``arrays`` and the JSON ``params``/``meta``/``resume`` of ``model`` to ``path`` atomically."""
    metadata = {"format": FORMAT, "model": model, "params": params, "meta": meta, "resume": resume}
    with atomic_write(path, "wb") as handle:
        np.savez(handle, metadata=np.array(json.dumps(metadata)), **arrays)


def load_checkpoint(path, model: str, names) -> tuple[dict, dict, dict, dict | None]:
    """``(params, meta, arrays, resume)`` of a :func:`save_checkpoint` file of ``model``; the arrays
    ``names`` must be there. A missing, foreign or corrupt file raises Word2BertError."""
    try:
        with open_binary(path) as handle, np.load(handle, allow_pickle=False) as archive:
            metadata = json.loads(str(archive["metadata"]))
            if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
                raise Word2BertError(f"{path}: not a word2bert checkpoint")
            if metadata.get("model") != model:
                raise Word2BertError(f"{path}: a checkpoint of {metadata.get('model')}, not of {model}")
            arrays = {name: archive[name] for name in names}
    except Word2BertError:
        raise
    except Exception as exc:  # zipfile, json, missing keys: all mean "not a checkpoint of ours"
        raise Word2BertError(f"{path}: not a word2bert checkpoint or corrupt ({exc})") from None
    arrays = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    return metadata["params"], metadata["meta"], arrays, metadata.get("resume")


def check_shape(path, name: str, array: np.ndarray, expected: tuple) -> None:
    """Word2BertError unless ``array.shape == expected``."""
    if tuple(array.shape) != tuple(expected):
        raise Word2BertError(f"{path}: corrupt checkpoint: {name} has shape {tuple(array.shape)}, expected "
                             f"{tuple(expected)}")
