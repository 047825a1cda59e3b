"""bilm-tf checkpoints (ELMo, Peters et al. 2018): ``options.json``, ``lm_weights.hdf5`` and the vocabulary.

A leaf module: it reads and writes the files and converts TensorFlow's array layouts, and
knows no model. The weight file (what bilm-tf's ``dump_weights`` writes, what its
``BidirectionalLanguageModel`` and AllenNLP's ``Elmo`` read) holds::

    char_embed                                     (n_characters - 1, char_dim)  no padding row
    CNN/W_cnn_{i}, CNN/b_cnn_{i}                   (1, width, char_dim, count), (count,)
    CNN_high_{k}/W_carry, b_carry, W_transform, b_transform   (n, n) used as x @ W, (n,)
    CNN_proj/W_proj, b_proj                        (n_filters, projection_dim), only if they differ
    RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/W_0  (input + output size, 4 * dim)   d: 0 forward, 1 backward
    RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/B    (4 * dim,)
    RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/W_P_0 (dim, projection_dim), only with a projection

bilm-tf's ``dump_weights`` leaves out the softmax; we may add ``softmax/W`` (vocab, projection_dim)
and ``softmax/b`` (vocab,), which bilm-tf and AllenNLP ignore. TensorFlow's ``LSTMCell`` orders
its gates (i, j, f, o), multiplies ``[x, h] @ W_0`` and adds ``forget_bias = 1`` to ``f`` at run
time; :func:`lstm_from_tf` / :func:`lstm_to_tf` convert to and from PyTorch's (i, f, g, o) rows
with the forget bias folded into the bias.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save, atomic_write, open_text

OPTIONS_NAME = "options.json"
WEIGHTS_NAME = "lm_weights.hdf5"
VOCAB_NAME = "vocab.txt"
TF_FORGET_BIAS = 1.0

BOS, EOS, UNK = "<S>", "</S>", "<UNK>"


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is in the contextual extra
        raise Word2BertError("reading or writing bilm-tf checkpoints needs h5py: pip install h5py") from None
    return h5py


def lstm_prefix(direction: int, layer: int) -> str:
    """The hdf5 group of one LSTM layer: direction 0 is forward, 1 backward."""
    return f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell/"


# --------------------------------------------------------------------------- options.json

def read_options(path) -> dict:
    """Read and check bilm-tf's ``options.json`` (``lstm`` and ``char_cnn`` sections)."""
    path = Path(path)
    if path.is_dir():
        path = path / OPTIONS_NAME
    if not path.exists():
        raise Word2BertError(f"bilm-tf options file not found: {path}")
    try:
        options = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Word2BertError(f"{path}: not valid JSON ({exc})") from None
    validate_options(options, path)
    return options


def validate_options(options, source="options") -> None:
    """Raise a Word2BertError naming ``source`` and the field unless ``options`` describe a character ELMo."""
    if not isinstance(options, dict):
        raise Word2BertError(f"{source}: expected a JSON object with 'lstm' and 'char_cnn' sections")
    lstm, cnn = options.get("lstm"), options.get("char_cnn")
    if not isinstance(lstm, dict):
        raise Word2BertError(f"{source}: missing the 'lstm' section")
    if not isinstance(cnn, dict):
        raise Word2BertError(f"{source}: missing the 'char_cnn' section (only character-input ELMo is supported)")
    for key in ("dim", "projection_dim"):
        if not isinstance(lstm.get(key), int) or lstm[key] < 1:
            raise Word2BertError(f"{source}: lstm.{key} must be a positive integer, got {lstm.get(key)!r}")
    if lstm["projection_dim"] > lstm["dim"]:
        raise Word2BertError(f"{source}: lstm.projection_dim={lstm['projection_dim']} exceeds lstm.dim={lstm['dim']}")
    if not isinstance(lstm.get("n_layers", 1), int) or lstm.get("n_layers", 1) < 1:
        raise Word2BertError(f"{source}: lstm.n_layers must be a positive integer, got {lstm.get('n_layers')!r}")
    filters = cnn.get("filters")
    if (not isinstance(filters, list) or not filters
            or not all(isinstance(f, list) and len(f) == 2 and all(isinstance(v, int) and v > 0 for v in f)
                       for f in filters)):
        raise Word2BertError(f"{source}: char_cnn.filters must be a list of [width, count] pairs, got {filters!r}")
    embedding = cnn.get("embedding")
    if not isinstance(embedding, dict) or not isinstance(embedding.get("dim"), int) or embedding["dim"] < 1:
        raise Word2BertError(f"{source}: char_cnn.embedding.dim must be a positive integer")
    for key in ("n_characters", "max_characters_per_token"):
        if not isinstance(cnn.get(key), int) or cnn[key] < 1:
            raise Word2BertError(f"{source}: char_cnn.{key} must be a positive integer, got {cnn.get(key)!r}")
    if cnn["n_characters"] not in (261, 262):
        raise Word2BertError(f"{source}: char_cnn.n_characters={cnn['n_characters']}; bilm-tf's character "
                             "ids need 261 (training) or 262 (with the padding id)")
    if cnn.get("activation", "relu") not in ("relu", "tanh"):
        raise Word2BertError(f"{source}: char_cnn.activation must be 'relu' or 'tanh', got {cnn.get('activation')!r}")


def write_options(path, options: dict) -> None:
    validate_options(options, path)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(options, handle)


# --------------------------------------------------------------------------- lm_weights.hdf5

def read_weights(path) -> dict[str, np.ndarray]:
    """Every dataset of the hdf5 file, by its full name (e.g. ``CNN/W_cnn_0``), as float32 arrays."""
    h5py = _h5py()
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.exists():
        raise Word2BertError(f"bilm-tf weight file not found: {path}")
    weights = {}
    try:
        with h5py.File(path, "r") as handle:
            def visit(name, item):
                if isinstance(item, h5py.Dataset):
                    weights[name] = np.asarray(item[...], dtype=np.float32)
            handle.visititems(visit)
    except OSError as exc:
        raise Word2BertError(f"{path}: not a readable hdf5 file ({exc})") from None
    if not weights:
        raise Word2BertError(f"{path}: the hdf5 file holds no weights")
    return weights


def write_weights(path, weights: dict[str, np.ndarray]) -> None:
    """Write ``{name: array}`` as float32 datasets (names with ``/`` make groups), atomically."""
    h5py = _h5py()

    def writer(name):
        with h5py.File(name, "w") as handle:
            for key in sorted(weights):
                handle.create_dataset(key, data=np.asarray(weights[key], dtype=np.float32))

    atomic_save(path, writer)


def expect_shape(weights: dict, name: str, shape: tuple, source="the weight file") -> np.ndarray:
    """``weights[name]`` if it has ``shape``; otherwise a Word2BertError saying options and weights disagree."""
    if name not in weights:
        raise Word2BertError(f"{source}: dataset {name!r} is missing (does options.json match these weights?)")
    array = weights[name]
    if tuple(array.shape) != tuple(shape):
        raise Word2BertError(f"{source}: dataset {name!r} has shape {tuple(array.shape)} but options.json "
                             f"implies {tuple(shape)}: the options file does not match the weights")
    return array


# --------------------------------------------------------------------------- array layouts

def _tf_to_torch_gate_rows(matrix: np.ndarray, hidden: int) -> np.ndarray:
    """Reorder the 4*hidden gate rows from TensorFlow's (i, j, f, o) to PyTorch's (i, f, g=j, o)."""
    i, j, f, o = (matrix[k * hidden:(k + 1) * hidden] for k in range(4))
    return np.concatenate([i, f, j, o])


def _torch_to_tf_gate_rows(matrix: np.ndarray, hidden: int) -> np.ndarray:
    i, f, g, o = (matrix[k * hidden:(k + 1) * hidden] for k in range(4))
    return np.concatenate([i, g, f, o])


def lstm_from_tf(kernel: np.ndarray, bias: np.ndarray, input_size: int,
                 forget_bias: float = TF_FORGET_BIAS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF ``W_0`` (input + output, 4H) and ``B`` (4H) -> PyTorch ``weight_ih`` (4H, input), ``weight_hh``
    (4H, output) and ``bias`` (4H) with ``forget_bias`` added to the forget gate."""
    hidden = kernel.shape[1] // 4
    weight_ih = _tf_to_torch_gate_rows(kernel[:input_size].T, hidden)
    weight_hh = _tf_to_torch_gate_rows(kernel[input_size:].T, hidden)
    torch_bias = _tf_to_torch_gate_rows(bias, hidden).copy()
    torch_bias[hidden:2 * hidden] += forget_bias
    return weight_ih, weight_hh, torch_bias


def lstm_to_tf(weight_ih: np.ndarray, weight_hh: np.ndarray, bias: np.ndarray,
               forget_bias: float = TF_FORGET_BIAS) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`lstm_from_tf`: PyTorch rows -> TF ``W_0`` and ``B``."""
    hidden = weight_ih.shape[0] // 4
    bias = bias.copy()
    bias[hidden:2 * hidden] -= forget_bias
    kernel = np.concatenate([_torch_to_tf_gate_rows(weight_ih, hidden).T,
                             _torch_to_tf_gate_rows(weight_hh, hidden).T])
    return kernel, _torch_to_tf_gate_rows(bias, hidden)


def conv_from_tf(kernel: np.ndarray) -> np.ndarray:
    """TF conv2d kernel (1, width, in, out) -> PyTorch Conv1d weight (out, in, width)."""
    return np.ascontiguousarray(kernel[0].transpose(2, 1, 0))


def conv_to_tf(weight: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(weight.transpose(2, 1, 0))[None]


# --------------------------------------------------------------------------- vocabulary

def read_vocabulary(path, required=(BOS, EOS, UNK)) -> list[str]:
    """bilm-tf's vocabulary: one token a line, which must include ``required`` (for training, ``<S>``,
    ``</S>`` and ``<UNK>``, as bilm-tf's ``load_vocab`` demands).

    The line order is the softmax order (bilm-tf's sampled softmax assumes most frequent first).
    """
    path = Path(path)
    if path.is_dir():
        path = path / VOCAB_NAME
    words, seen = [], {}
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            word = line.strip()
            if not word:
                raise Word2BertError(f"{path}, line {number}: empty line in the vocabulary")
            if word == "!!!MAXTERMID":
                continue
            if word in seen:
                raise Word2BertError(f"{path}, line {number}: {word!r} repeats line {seen[word]}")
            seen[word] = number
            words.append(word)
    missing = [token for token in required if token not in seen]
    if missing:
        raise Word2BertError(f"{path}: the vocabulary lacks {', '.join(missing)} (bilm-tf's training needs "
                             "<S>, </S> and <UNK>)")
    return words


def write_vocabulary(path, words) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        for word in words:
            handle.write(word + "\n")
