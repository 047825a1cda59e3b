"""ELMo (Peters et al. 2018, "Deep contextualized word representations").

A bidirectional language model over characters:

- **Token layer**: each token's UTF-8 bytes (bilm-tf's character ids, below) -> :class:`CharacterCNN`
  (filters of several widths, max-pooled, highway layers, projection to ``projection_dim``).
- **biLM**: a forward and a backward stack of projection LSTMs with cell and projection clipping and
  residual connections from the second layer up (:class:`BidirectionalLMStack`).
- **Losses**: the forward stack predicts the next token, the backward stack the previous one, through
  one softmax shared by both directions; ``loss = (L_forward + L_backward) / 2``, a sampled softmax
  (Jean et al. 2015, TensorFlow's ``sampled_softmax_loss``) while training on large vocabularies.
- **Representations**: layer 0 is the token layer repeated twice (``[x; x]``), layer ``l`` the
  concatenation ``[h_fwd_l; h_bwd_l]``; a task uses ``gamma * sum_l softmax(w)_l h_l`` (:class:`Elmo`).

Character ids (bilm-tf's ``UnicodeCharsVocabulary`` plus its ``Batcher``'s ``+1``): every token is
``max_characters`` ids, ``<begin word>``, its UTF-8 bytes ``b + 1`` (at most ``max_characters - 2``),
``<end word>``, then ``<padding>``; the sentence marks ``<S>`` / ``</S>`` are the words
``[<begin word>, <begin sentence>, <end word>]`` / ``[<begin word>, <end sentence>, <end word>]``;
id 0 marks a position that holds no token. The encoder reads whatever ids it is given (bilm-tf's
``Batcher`` puts ``<S>`` and ``</S>`` around each sentence); :class:`Elmo` adds and removes them itself.

The checkpoint format is bilm-tf's (``options.json`` + ``lm_weights.hdf5``, :mod:`word2bert.interop.bilm`),
so models trained here load in bilm-tf and AllenNLP and theirs load here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop import bilm as bilm_format
from word2bert.models.base import EncoderOutput, PretrainedConfig, PretrainedModel
from word2bert.nn import weight_cache
from word2bert.nn.char_cnn import CharacterCNN
from word2bert.nn.recurrent import BidirectionalLMStack
from word2bert.nn.scalar_mix import ScalarMix

IGNORE_INDEX = -100

# bilm-tf's special character ids before the +1 shift; the model sees these plus one.
BEGIN_SENTENCE_CHAR = 256
END_SENTENCE_CHAR = 257
BEGIN_WORD_CHAR = 258
END_WORD_CHAR = 259
PADDING_CHAR = 260
NUM_CHARACTERS = 262  # 256 bytes + 5 special ids + the "no token" id 0


def word_to_char_ids(word: str, max_characters: int = 50) -> np.ndarray:
    """The ``max_characters`` model character ids of one token (ids already shifted by one)."""
    if word == bilm_format.BOS:
        return _sentence_mark(BEGIN_SENTENCE_CHAR, max_characters)
    if word == bilm_format.EOS:
        return _sentence_mark(END_SENTENCE_CHAR, max_characters)
    ids = np.full(max_characters, PADDING_CHAR + 1, dtype=np.int32)
    encoded = word.encode("utf-8", "ignore")[:max_characters - 2]
    ids[0] = BEGIN_WORD_CHAR + 1
    ids[1:len(encoded) + 1] = np.frombuffer(encoded, dtype=np.uint8).astype(np.int32) + 1
    ids[len(encoded) + 1] = END_WORD_CHAR + 1
    return ids


def _sentence_mark(char: int, max_characters: int) -> np.ndarray:
    ids = np.full(max_characters, PADDING_CHAR + 1, dtype=np.int32)
    ids[:3] = (BEGIN_WORD_CHAR + 1, char + 1, END_WORD_CHAR + 1)
    return ids


def words_to_char_ids(words, max_characters: int = 50) -> np.ndarray:
    """(len(words), max_characters) character ids of a list of word types."""
    out = np.zeros((len(words), max_characters), dtype=np.int32)
    for i, word in enumerate(words):
        out[i] = word_to_char_ids(word, max_characters)
    return out


def batch_to_ids(sentences, max_characters: int = 50, add_sentence_boundaries: bool = False) -> torch.Tensor:
    """Tokenised sentences (lists of strings) -> character ids (B, T, max_characters), 0-padded (AllenNLP's
    ``batch_to_ids``). With ``add_sentence_boundaries`` every row is ``<S> tokens </S>`` (bilm-tf's ``Batcher``)."""
    if isinstance(sentences, (str, bytes)) or any(isinstance(s, str) for s in sentences):
        raise Word2BertError("batch_to_ids takes a list of tokenised sentences (lists of strings)")
    sentences = [list(s) for s in sentences]
    if not sentences:
        raise Word2BertError("batch_to_ids: no sentences")
    extra = 2 if add_sentence_boundaries else 0
    length = max(len(s) for s in sentences) + extra
    out = np.zeros((len(sentences), length, max_characters), dtype=np.int64)
    types: dict[str, np.ndarray] = {}
    for row, sentence in enumerate(sentences):
        if add_sentence_boundaries:
            sentence = [bilm_format.BOS, *sentence, bilm_format.EOS]
        for t, word in enumerate(sentence):
            ids = types.get(word)
            if ids is None:
                ids = types[word] = word_to_char_ids(word, max_characters)
            out[row, t] = ids
    return torch.from_numpy(out)


def add_sentence_boundaries(char_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Put ``<S>`` before and ``</S>`` after the tokens of every row: (B, T, C) -> (B, T + 2, C)."""
    batch, steps, width = char_ids.shape
    lengths = mask.long().sum(dim=1)
    out = char_ids.new_zeros(batch, steps + 2, width)
    out[:, 1:-1] = char_ids
    out[:, 0] = torch.as_tensor(_sentence_mark(BEGIN_SENTENCE_CHAR, width), dtype=char_ids.dtype)
    out[torch.arange(batch), lengths + 1] = torch.as_tensor(_sentence_mark(END_SENTENCE_CHAR, width),
                                                            dtype=char_ids.dtype)
    new_mask = torch.arange(steps + 2, device=mask.device).unsqueeze(0) < (lengths + 2).unsqueeze(1)
    return out, new_mask


def remove_sentence_boundaries(hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the ``<S>`` and ``</S>`` positions of :func:`add_sentence_boundaries`: (B, T + 2, d) -> (B, T, d)."""
    lengths = mask.long().sum(dim=1) - 2
    steps = hidden.shape[1] - 2
    new_mask = torch.arange(steps, device=mask.device).unsqueeze(0) < lengths.unsqueeze(1)
    return hidden[:, 1:-1] * new_mask.unsqueeze(-1).to(hidden.dtype), new_mask


# --------------------------------------------------------------------------- configuration

@dataclass
class ElmoConfig(PretrainedConfig):
    """ELMo's hyper-parameters; the defaults are the original model's (Peters et al. 2018).

    Field names follow bilm-tf's ``options.json`` (``lstm.dim`` is ``lstm_dim``, ``char_cnn.filters``
    is ``filters``, ...); :meth:`from_bilm_options` / :meth:`to_bilm_options` convert. ``vocab_size``
    is the softmax size (0: no softmax, a feature extractor), ``n_negative_samples`` the sampled
    softmax's shared negatives per batch (0 or >= vocab_size - 1: the full softmax).
    """

    model_type: ClassVar[str] = "elmo"

    char_embedding_dim: int = 16
    filters: list = field(default_factory=lambda: [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512],
                                                   [7, 1024]])
    n_highway: int = 2
    n_characters: int = NUM_CHARACTERS
    max_characters_per_token: int = 50
    cnn_activation: str = "relu"
    lstm_dim: int = 4096
    projection_dim: int = 512
    n_layers: int = 2
    cell_clip: float | None = 3.0
    proj_clip: float | None = 3.0
    use_skip_connections: bool = True
    vocab_size: int = 0
    dropout: float = 0.1
    n_negative_samples: int = 8192

    def __post_init__(self):
        self.filters = [[int(w), int(c)] for w, c in self.filters]
        self.validate()

    def validate(self) -> None:
        for name in ("char_embedding_dim", "lstm_dim", "projection_dim", "n_layers", "max_characters_per_token"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise Word2BertError(f"ElmoConfig.{name}={value!r} must be a positive integer")
        if self.projection_dim > self.lstm_dim:
            raise Word2BertError(f"ElmoConfig.projection_dim={self.projection_dim} exceeds lstm_dim={self.lstm_dim}")
        if self.n_characters != NUM_CHARACTERS:
            raise Word2BertError(f"ElmoConfig.n_characters={self.n_characters} must be {NUM_CHARACTERS} "
                                 "(256 bytes, 5 special ids and padding)")
        if self.max_characters_per_token < 3:
            raise Word2BertError("ElmoConfig.max_characters_per_token must be >= 3 (begin, one byte, end)")
        for name in ("vocab_size", "n_negative_samples", "n_highway"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise Word2BertError(f"ElmoConfig.{name}={value!r} must be an integer >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise Word2BertError(f"ElmoConfig.dropout={self.dropout!r} must be in [0, 1)")
        for name in ("cell_clip", "proj_clip"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise Word2BertError(f"ElmoConfig.{name}={value!r} must be > 0 or None")

    @property
    def output_dim(self) -> int:
        """Width of every ELMo layer: forward and backward halves."""
        return 2 * self.projection_dim

    @classmethod
    def from_bilm_options(cls, options: dict, **overrides) -> ElmoConfig:
        """From bilm-tf's ``options.json`` dict (training options such as ``n_tokens_vocab`` are read too)."""
        bilm_format.validate_options(options)
        lstm, cnn = options["lstm"], options["char_cnn"]
        values = dict(
            char_embedding_dim=cnn["embedding"]["dim"], filters=cnn["filters"], n_highway=cnn.get("n_highway") or 0,
            max_characters_per_token=cnn["max_characters_per_token"], cnn_activation=cnn.get("activation", "relu"),
            lstm_dim=lstm["dim"], projection_dim=lstm["projection_dim"], n_layers=lstm.get("n_layers", 1),
            cell_clip=lstm.get("cell_clip"), proj_clip=lstm.get("proj_clip"),
            use_skip_connections=bool(lstm.get("use_skip_connections", False)),
            vocab_size=int(options.get("n_tokens_vocab", 0) or 0), dropout=float(options.get("dropout", 0.1)),
            n_negative_samples=int(options.get("n_negative_samples_batch", 8192)))
        values.update(overrides)
        return cls(**values)

    def to_bilm_options(self) -> dict:
        """bilm-tf's ``options.json`` for inference (``n_characters`` 262, as its README asks)."""
        return {
            "lstm": {"dim": self.lstm_dim, "projection_dim": self.projection_dim, "n_layers": self.n_layers,
                     "cell_clip": self.cell_clip, "proj_clip": self.proj_clip,
                     "use_skip_connections": self.use_skip_connections},
            "char_cnn": {"embedding": {"dim": self.char_embedding_dim}, "filters": self.filters,
                         "n_highway": self.n_highway, "n_characters": self.n_characters,
                         "max_characters_per_token": self.max_characters_per_token, "activation": self.cnn_activation},
            "bidirectional": True, "dropout": self.dropout, "n_tokens_vocab": self.vocab_size,
            "n_negative_samples_batch": self.n_negative_samples,
        }


# --------------------------------------------------------------------------- the encoder

class CharacterCache:
    """Token-layer vectors kept per word type (its character ids) while the weights do not change
    (emptied by ``train()``, ``load_state_dict`` and every optimizer step).

    At inference the character CNN is a function of the word alone, so every distinct word is run
    through it once; later occurrences, in this batch or another, are looked up. The vectors live in
    one buffer that doubles when full; past ``max_types`` words the cache starts afresh (memory stays
    bounded on an endless stream).
    """

    def __init__(self, max_types: int = 1_000_000):
        self.max_types = max_types
        self.index: dict[bytes, int] = {}
        self.buffer: torch.Tensor | None = None
        # a character CNN trained in eval mode never calls train(), which empties the cache too
        weight_cache.clear_on_optimizer_steps(self)

    def __len__(self) -> int:
        return len(self.index)

    def clear(self) -> None:
        self.index.clear()
        self.buffer = None

    def _append(self, vectors: torch.Tensor) -> int:
        """Store ``vectors`` after the cached ones; return the row of the first."""
        start, needed = len(self.index), len(self.index) + vectors.shape[0]
        if self.buffer is None or needed > self.buffer.shape[0]:
            capacity = max(needed, 2 * (0 if self.buffer is None else self.buffer.shape[0]), 1024)
            grown = vectors.new_empty(capacity, vectors.shape[1])
            if self.buffer is not None:
                grown[:start] = self.buffer[:start]
            self.buffer = grown
        self.buffer[start:needed] = vectors
        return start

    def lookup(self, char_ids: torch.Tensor, char_cnn: CharacterCNN) -> torch.Tensor:
        """Token vectors (..., d) of ``char_ids`` (..., C), running ``char_cnn`` on unseen types only."""
        leading = char_ids.shape[:-1]
        types, inverse = torch.unique(char_ids.reshape(-1, char_ids.shape[-1]), dim=0, return_inverse=True)
        keys = [row.tobytes() for row in types.to(torch.int16).cpu().numpy()]
        if len(self.index) + len(keys) > self.max_types:
            self.clear()
        rows = [self.index.get(key, -1) for key in keys]
        unseen = [i for i, row in enumerate(rows) if row < 0]
        if unseen:
            start = self._append(char_cnn(types[unseen]))
            for offset, i in enumerate(unseen):
                self.index[keys[i]] = rows[i] = start + offset
        type_vectors = self.buffer[torch.as_tensor(rows, device=self.buffer.device)]
        return type_vectors[inverse].reshape(*leading, -1)


class ElmoModel(PretrainedModel):
    """The ELMo biLM as an encoder: character ids (B, T, C) -> ``[h_fwd; h_bwd]`` of every layer.

    Its :class:`EncoderOutput` has ``last_hidden_state`` (B, T, 2P) = ``[h_fwd_L; h_bwd_L]``,
    ``hidden_states`` = (``[x; x]``, layer 1, ..., layer L) and ``state``. Its files are bilm-tf's
    (``from_pretrained`` / ``save_pretrained`` read and write ``options.json`` + ``lm_weights.hdf5``).
    ``state`` is ``(h, c)`` of shapes (2, L, B, P) and (2, L, B, H) (direction, layer, row); passed back
    in, each row continues from where it stopped (bilm-tf's stateful inference and training).
    """

    config_class = ElmoConfig
    base_model_prefix = "elmo"
    is_encoder = True

    def __init__(self, config: ElmoConfig):
        super().__init__()
        if not isinstance(config, ElmoConfig):
            raise Word2BertError(f"ElmoModel needs an ElmoConfig, got {type(config).__name__}")
        self.config = config
        self.char_cnn = CharacterCNN(config.n_characters, config.char_embedding_dim, config.filters,
                                     config.n_highway, config.projection_dim, config.max_characters_per_token,
                                     config.cnn_activation)
        self.lstm = BidirectionalLMStack(config.n_layers, config.projection_dim, config.lstm_dim,
                                         config.projection_dim if config.projection_dim < config.lstm_dim else None,
                                         config.cell_clip, config.proj_clip, config.use_skip_connections,
                                         config.dropout)
        self.character_cache: CharacterCache | None = None

    # -------------------------------------------------------------- cache
    def enable_character_cache(self, enabled: bool = True) -> None:
        """Cache token-layer vectors per word type at inference (eval mode, or frozen weights)."""
        self.character_cache = CharacterCache() if enabled else None

    def train(self, mode: bool = True):
        if mode and self.character_cache is not None:  # the weights may change from here on
            self.character_cache.clear()
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs):
        if self.character_cache is not None:
            self.character_cache.clear()
        return super()._load_from_state_dict(*args, **kwargs)

    def token_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The token layer: :class:`CharacterCNN` of every position (cached per type when allowed)."""
        frozen = not torch.is_grad_enabled() or not any(p.requires_grad for p in self.char_cnn.parameters())
        if self.character_cache is not None and not self.training and frozen:
            return self.character_cache.lookup(input_ids, self.char_cnn)
        return self.char_cnn(input_ids)

    def get_input_embeddings(self) -> CharacterCNN:
        return self.char_cnn

    def zero_state(self, batch_size: int):
        return self.lstm.zero_state(batch_size, self.char_cnn.char_embedding.weight.device,
                                    self.char_cnn.char_embedding.weight.dtype)

    # -------------------------------------------------------------- forward
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, *, position_ids=None, state=None,
                read_positions: torch.Tensor | None = None, output_hidden_states: bool = False,
                backward_input_ids: torch.Tensor | None = None,
                backward_attention_mask: torch.Tensor | None = None) -> EncoderOutput:
        """Encode character ids ``input_ids`` (B, T, C); ``attention_mask`` (B, T) defaults to "has characters".

        ``backward_input_ids`` (training on a token stream): the window the backward stack reads, in
        forward order, when it is not the forward stack's window. ``token_type_ids`` and
        ``position_ids`` do not apply to an LSTM and must be None.
        """
        if token_type_ids is not None or position_ids is not None:
            raise Word2BertError("ELMo takes no token_type_ids or position_ids")
        if input_ids.dim() != 3 or input_ids.shape[-1] != self.config.max_characters_per_token:
            raise Word2BertError(f"ELMo input_ids must be character ids (batch, tokens, "
                                 f"{self.config.max_characters_per_token}), got shape {tuple(input_ids.shape)}")
        mask = self._mask(input_ids, attention_mask)
        embedded = self.token_embeddings(input_ids)
        backward_embedded = backward_mask = None
        if backward_input_ids is not None:
            backward_mask = self._mask(backward_input_ids, backward_attention_mask)
            backward_embedded = self.token_embeddings(backward_input_ids)
        all_real = bool(mask.all()) and (backward_mask is None or bool(backward_mask.all()))
        if state is not None:
            state = self._check_state(state, input_ids.shape[0])
        forward_layers, backward_layers, new_state = self.lstm(
            embedded, None if all_real else mask, state, backward_embedded,
            None if all_real else backward_mask)
        keep = mask.unsqueeze(-1).to(embedded.dtype)
        top = torch.cat([forward_layers[-1], backward_layers[-1]], dim=-1)
        hidden_states = None
        if output_hidden_states:
            hidden_states = (torch.cat([embedded, embedded], dim=-1) * keep,
                             *(torch.cat([f, b], dim=-1) for f, b in zip(forward_layers, backward_layers)))
        if read_positions is not None:
            index = read_positions.long().unsqueeze(-1).expand(-1, -1, top.shape[-1])
            top = top.gather(1, index)
        return EncoderOutput(top, hidden_states, None, new_state)

    def _mask(self, input_ids, attention_mask):
        if attention_mask is None:
            return (input_ids > 0).any(dim=-1)
        if attention_mask.dim() != 2:
            raise Word2BertError("ELMo's attention_mask must be a (batch, tokens) padding mask")
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1, keepdim=True)
        if not bool((mask == (torch.arange(mask.shape[1], device=mask.device) < lengths)).all()):
            raise Word2BertError("ELMo's attention_mask must put every row's tokens first (right padding)")
        return mask

    def _check_state(self, state, batch_size):
        h, c = state
        layers, P, H = self.config.n_layers, self.lstm.output_size, self.config.lstm_dim
        if h.shape != (2, layers, batch_size, P) or c.shape != (2, layers, batch_size, H):
            raise Word2BertError(f"ELMo state must be (h, c) of shapes {(2, layers, batch_size, P)} and "
                                 f"{(2, layers, batch_size, H)}, got {tuple(h.shape)} and {tuple(c.shape)}")
        return h, c

    # -------------------------------------------------------------- bilm-tf checkpoints
    @classmethod
    def from_bilm(cls, options_file, weight_file, **config_overrides) -> ElmoModel:
        """Load bilm-tf's ``options.json`` and ``lm_weights.hdf5`` (a mismatch -> Word2BertError naming the dataset)."""
        options = bilm_format.read_options(options_file)
        config = ElmoConfig.from_bilm_options(options, **config_overrides)
        model = cls(config)
        weights = bilm_format.read_weights(weight_file)
        model.load_bilm_weights(weights, source=str(weight_file))
        return model

    @classmethod
    def from_pretrained(cls, directory, **config_overrides) -> ElmoModel:
        directory = Path(directory)
        return cls.from_bilm(directory / bilm_format.OPTIONS_NAME, directory / bilm_format.WEIGHTS_NAME,
                             **config_overrides)

    def load_bilm_weights(self, weights: dict, source: str = "the weight file") -> None:
        state = bilm_state_dict(self.config, weights, source)
        own = self.state_dict()
        self.load_state_dict({key: value for key, value in state.items() if key in own}, strict=True)

    def bilm_weights(self) -> dict[str, np.ndarray]:
        """The biLM's weights under bilm-tf's dataset names."""
        return bilm_weights_from_state_dict(self.config, self.state_dict())

    def save_pretrained(self, directory) -> None:
        """Write ``options.json`` and ``lm_weights.hdf5`` (bilm-tf's files), each atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        bilm_format.write_options(directory / bilm_format.OPTIONS_NAME, self.config.to_bilm_options())
        bilm_format.write_weights(directory / bilm_format.WEIGHTS_NAME, self.bilm_weights())


def bilm_state_dict(config: ElmoConfig, weights: dict, source: str = "the weight file",
                    prefix: str = "") -> dict[str, torch.Tensor]:
    """bilm-tf's datasets -> our ``state_dict`` entries (shapes checked against ``config``)."""
    expect = lambda name, shape: bilm_format.expect_shape(weights, name, shape, source)  # noqa: E731
    state = {}
    char_embed = expect("char_embed", (config.n_characters - 1, config.char_embedding_dim))
    state["char_cnn.char_embedding.weight"] = np.concatenate(
        [np.zeros((1, config.char_embedding_dim), np.float32), char_embed])
    for i, (width, count) in enumerate(config.filters):
        kernel = expect(f"CNN/W_cnn_{i}", (1, width, config.char_embedding_dim, count))
        state[f"char_cnn.convolutions.{i}.weight"] = bilm_format.conv_from_tf(kernel)
        state[f"char_cnn.convolutions.{i}.bias"] = expect(f"CNN/b_cnn_{i}", (count,))
    n_filters = sum(count for _, count in config.filters)
    for k in range(config.n_highway):
        group = f"CNN_high_{k}/"
        state[f"char_cnn.highways.{k}.gate.weight"] = expect(group + "W_carry", (n_filters, n_filters)).T
        state[f"char_cnn.highways.{k}.gate.bias"] = expect(group + "b_carry", (n_filters,))
        state[f"char_cnn.highways.{k}.transform.weight"] = expect(group + "W_transform", (n_filters, n_filters)).T
        state[f"char_cnn.highways.{k}.transform.bias"] = expect(group + "b_transform", (n_filters,))
    if n_filters != config.projection_dim:
        state["char_cnn.projection.weight"] = expect("CNN_proj/W_proj", (n_filters, config.projection_dim)).T
        state["char_cnn.projection.bias"] = expect("CNN_proj/b_proj", (config.projection_dim,))
    projected = config.projection_dim < config.lstm_dim
    P, H = config.projection_dim, config.lstm_dim
    for direction, stack in ((0, "lstm.forward_stack"), (1, "lstm.backward_stack")):
        for layer in range(config.n_layers):
            group = bilm_format.lstm_prefix(direction, layer)
            kernel = expect(group + "W_0", (P + P, 4 * H))
            bias = expect(group + "B", (4 * H,))
            weight_ih, weight_hh, torch_bias = bilm_format.lstm_from_tf(kernel, bias, P)
            name = f"{stack}.layers.{layer}."
            state[name + "weight_ih"], state[name + "weight_hh"], state[name + "bias"] = weight_ih, weight_hh, torch_bias
            if projected:
                state[name + "weight_hr"] = expect(group + "W_P_0", (H, P)).T
    if config.vocab_size and "softmax/W" in weights:
        state["softmax_weight"] = expect("softmax/W", (config.vocab_size, P))
        state["softmax_bias"] = expect("softmax/b", (config.vocab_size,))
    return {prefix + key: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
            for key, value in state.items()}


def bilm_weights_from_state_dict(config: ElmoConfig, state: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """Our ``state_dict`` -> bilm-tf's datasets (the inverse of :func:`bilm_state_dict`)."""
    get = lambda key: state[prefix + key].detach().cpu().float().numpy()  # noqa: E731
    weights = {"char_embed": get("char_cnn.char_embedding.weight")[1:]}
    for i in range(len(config.filters)):
        weights[f"CNN/W_cnn_{i}"] = bilm_format.conv_to_tf(get(f"char_cnn.convolutions.{i}.weight"))
        weights[f"CNN/b_cnn_{i}"] = get(f"char_cnn.convolutions.{i}.bias")
    for k in range(config.n_highway):
        group = f"CNN_high_{k}/"
        weights[group + "W_carry"] = get(f"char_cnn.highways.{k}.gate.weight").T
        weights[group + "b_carry"] = get(f"char_cnn.highways.{k}.gate.bias")
        weights[group + "W_transform"] = get(f"char_cnn.highways.{k}.transform.weight").T
        weights[group + "b_transform"] = get(f"char_cnn.highways.{k}.transform.bias")
    if prefix + "char_cnn.projection.weight" in state:
        weights["CNN_proj/W_proj"] = get("char_cnn.projection.weight").T
        weights["CNN_proj/b_proj"] = get("char_cnn.projection.bias")
    for direction, stack in ((0, "lstm.forward_stack"), (1, "lstm.backward_stack")):
        for layer in range(config.n_layers):
            name = f"{stack}.layers.{layer}."
            kernel, bias = bilm_format.lstm_to_tf(get(name + "weight_ih"), get(name + "weight_hh"), get(name + "bias"))
            group = bilm_format.lstm_prefix(direction, layer)
            weights[group + "W_0"], weights[group + "B"] = kernel, bias
            if prefix + name + "weight_hr" in state:
                weights[group + "W_P_0"] = get(name + "weight_hr").T
    if prefix + "softmax_weight" in state:
        weights["softmax/W"] = get("softmax_weight")
        weights["softmax/b"] = get("softmax_bias")
    return {key: np.ascontiguousarray(value) for key, value in weights.items()}


# --------------------------------------------------------------------------- the user side (AllenNLP's Elmo)

class Elmo(nn.Module):
    """ELMo representations for a downstream model, as AllenNLP's ``Elmo``.

    ``Elmo(options_file, weight_file, num_output_representations, dropout=0.5)`` loads a bilm-tf
    checkpoint; ``forward(batch_to_ids(sentences))`` returns ``{"elmo_representations": [k tensors
    (B, T, 2P)], "mask": (B, T)}`` where representation ``k`` is ``dropout(gamma_k * sum_l
    softmax(w_k)_l h_l)`` over the L + 1 biLM layers (its own learned scalar mix). ``<S>`` and
    ``</S>`` are added around every sentence before the biLM and removed after
    (``keep_sentence_boundaries`` keeps them).

    Stateful like bilm-tf and AllenNLP: row ``b`` of a batch continues from the LSTM state that row
    ``b`` of the previous batch ended in (``stateful=False`` starts every batch from zeros;
    :meth:`reset_states` forgets). With frozen weights (``requires_grad=False``) the character CNN's
    outputs are cached per word type (``cache_characters``).
    """

    def __init__(self, options_file, weight_file, num_output_representations: int, requires_grad: bool = False,
                 dropout: float = 0.5, keep_sentence_boundaries: bool = False, scalar_mix_parameters=None,
                 stateful: bool = True, cache_characters: bool = True, module: ElmoModel | None = None):
        super().__init__()
        if num_output_representations < 1:
            raise Word2BertError(f"parameter num_output_representations={num_output_representations} must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise Word2BertError(f"parameter dropout={dropout} must be in [0, 1)")
        if module is not None:
            if options_file is not None or weight_file is not None:
                raise Word2BertError("give either module or options_file and weight_file, not both")
            self.bilm = module
        else:
            self.bilm = ElmoModel.from_bilm(options_file, weight_file)
        self.bilm.requires_grad_(requires_grad)
        if cache_characters and not requires_grad:
            self.bilm.enable_character_cache()
        num_layers = self.bilm.config.n_layers + 1
        self.scalar_mixes = nn.ModuleList()
        for _ in range(num_output_representations):
            mix = ScalarMix(num_layers, trainable=scalar_mix_parameters is None)
            if scalar_mix_parameters is not None:
                if len(scalar_mix_parameters) != num_layers:
                    raise Word2BertError(f"scalar_mix_parameters needs {num_layers} values (one per biLM layer)")
                with torch.no_grad():
                    mix.weights.copy_(torch.as_tensor(scalar_mix_parameters, dtype=mix.weights.dtype))
            self.scalar_mixes.append(mix)
        self.dropout = nn.Dropout(dropout)
        self.keep_sentence_boundaries = keep_sentence_boundaries
        self.stateful = stateful
        self._state = None

    def get_output_dim(self) -> int:
        return self.bilm.config.output_dim

    def reset_states(self) -> None:
        self._state = None

    def _initial_state(self, batch_size: int):
        if not self.stateful:
            return None
        if self._state is None or self._state[0].shape[2] < batch_size:
            fresh = self.bilm.zero_state(batch_size)
            if self._state is not None:  # keep the rows we have, add zero rows
                rows = self._state[0].shape[2]
                fresh[0][:, :, :rows], fresh[1][:, :, :rows] = self._state
            self._state = fresh
        return self._state[0][:, :, :batch_size], self._state[1][:, :, :batch_size]

    def forward(self, inputs: torch.Tensor, word_inputs=None) -> dict:
        """``inputs``: character ids (B, T, C) from :func:`batch_to_ids` (or (..., T, C))."""
        if word_inputs is not None:
            raise Word2BertError("word_inputs are not supported: pass character ids (the cache works on them)")
        original = inputs.shape
        if inputs.dim() > 3:
            inputs = inputs.reshape(-1, *original[-2:])
        mask = (inputs > 0).any(dim=-1)
        with_boundaries, boundary_mask = add_sentence_boundaries(inputs, mask)
        output = self.bilm(with_boundaries, boundary_mask, state=self._initial_state(inputs.shape[0]),
                           output_hidden_states=True)
        if self.stateful:  # new tensors, not in-place: the old state may be saved for backward
            rows = inputs.shape[0]
            self._state = tuple(torch.cat([new.detach(), old[:, :, rows:]], dim=2)
                                for new, old in zip(output.state, self._state))
        representations = []
        for mix in self.scalar_mixes:
            mixed = mix(output.hidden_states)
            if self.keep_sentence_boundaries:
                out_mask = boundary_mask
            else:
                mixed, out_mask = remove_sentence_boundaries(mixed, boundary_mask)
            mixed = self.dropout(mixed)
            if len(original) > 3:
                mixed = mixed.reshape(*original[:-2], *mixed.shape[-2:])
                out_mask = out_mask.reshape(*original[:-2], out_mask.shape[-1])
            representations.append(mixed)
        return {"elmo_representations": representations, "mask": out_mask}


# --------------------------------------------------------------------------- feature extraction

@dataclass
class ElmoEncoded:
    """``token_vectors[i]`` (n_i, 2P) for the n_i tokens of sentence i; ``sentence_vectors`` (N, 2P) their mean."""

    token_vectors: list[np.ndarray]
    sentence_vectors: np.ndarray
    tokens: list[list[str]]


@torch.no_grad()
def encode(model: ElmoModel, sentences, layer: int | str = -1, batch_size: int = 32, stateful: bool = True,
           scalar_mix=None) -> ElmoEncoded:
    """ELMo vectors of tokenised ``sentences`` (lists of tokens; strings are split on whitespace).

    ``layer``: 0 the token layer ``[x; x]``, 1..L the biLSTM layers, -1 the top, or "mix" (the scalar mix
    ``scalar_mix``, uniform by default). Batches run in order with each row's state carried (bilm-tf's
    ``dump_bilm_embeddings``) unless ``stateful=False``.
    """
    sentences = [s.split() if isinstance(s, str) else list(s) for s in sentences]
    if not sentences:
        raise Word2BertError("no sentences to encode")
    num_states = model.config.n_layers + 1
    if layer == "mix":
        scalar_mix = scalar_mix or ScalarMix(num_states, trainable=False)
    elif not isinstance(layer, int) or not -num_states <= layer < num_states:
        raise Word2BertError(f"parameter layer={layer!r} must be 'mix' or an integer in [{-num_states}, "
                             f"{num_states - 1}] (0 = the character layer, -1 = the top LSTM layer)")
    was_training = model.training
    model.eval()
    token_vectors, sentence_vectors, state = [], [], None
    try:
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start:start + batch_size]
            ids = batch_to_ids(chunk, model.config.max_characters_per_token, add_sentence_boundaries=True)
            if state is not None and state[0].shape[2] != len(chunk):  # the last, smaller batch
                state = (state[0][:, :, :len(chunk)], state[1][:, :, :len(chunk)])
            output = model(ids, state=state if stateful else None, output_hidden_states=True)
            state = output.state
            hidden = scalar_mix(output.hidden_states) if layer == "mix" else output.hidden_states[layer]
            for row, sentence in enumerate(chunk):
                vectors = hidden[row, 1:len(sentence) + 1].float().numpy()
                token_vectors.append(vectors)
                sentence_vectors.append(vectors.mean(axis=0) if len(sentence) else np.zeros(hidden.shape[-1],
                                                                                             np.float32))
    finally:
        model.train(was_training)
    return ElmoEncoded(token_vectors, np.stack(sentence_vectors), sentences)


# --------------------------------------------------------------------------- pre-training: the biLM losses

def log_uniform_probabilities(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``P(k) = (log(k + 2) - log(k + 1)) / log(V + 1)``: Zipf's law over ids sorted by frequency
    (TensorFlow's ``log_uniform_candidate_sampler``)."""
    ids = ids.double()
    return ((torch.log(ids + 2.0) - torch.log(ids + 1.0)) / math.log(vocab_size + 1.0))


def log_uniform_candidates(num_sampled: int, vocab_size: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """``num_sampled`` distinct ids drawn from :func:`log_uniform_probabilities`, in order of first draw,
    and the number of draws it took (TensorFlow's sampler with ``unique=True``)."""
    if not 0 < num_sampled <= vocab_size:
        raise Word2BertError(f"cannot draw {num_sampled} distinct ids from a vocabulary of {vocab_size}")
    log_range = math.log(vocab_size + 1.0)
    draws = np.zeros(0, dtype=np.int64)
    while True:
        block = rng.random(max(2 * num_sampled, 64))
        new = np.minimum(np.floor(np.exp(block * log_range)).astype(np.int64) - 1, vocab_size - 1)
        draws = np.concatenate([draws, new])
        values, first = np.unique(draws, return_index=True)
        if len(values) >= num_sampled:
            order = np.sort(first)[:num_sampled]    # positions of the first num_sampled distinct draws
            return draws[order], int(order[-1]) + 1


def expected_counts(ids: torch.Tensor, num_tries: int, vocab_size: int) -> torch.Tensor:
    """``Q(k) = 1 - (1 - P(k))^num_tries``: the chance that ``k`` is among the candidates."""
    return -torch.expm1(num_tries * torch.log1p(-log_uniform_probabilities(ids, vocab_size)))


def sampled_softmax_loss(hidden: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                         num_sampled: int, rng: np.random.Generator) -> torch.Tensor:
    """Per-row loss of the sampled softmax (Jean et al. 2015; TensorFlow's ``sampled_softmax_loss`` with
    ``remove_accidental_hits``): with candidates ``S`` shared by the batch and ``o_k = h . w_k + b_k``,

        loss = -log softmax([o_y - log Q(y), o_s - log Q(s) for s in S, s != y])_0

    ``hidden`` (N, d), ``targets`` (N,), ``weight`` (V, d), ``bias`` (V,).
    """
    vocab_size = weight.shape[0]
    sampled, num_tries = log_uniform_candidates(num_sampled, vocab_size, rng)
    sampled = torch.as_tensor(sampled, device=hidden.device)
    true_logits = (hidden * weight[targets]).sum(-1) + bias[targets]
    true_logits = true_logits - torch.log(expected_counts(targets, num_tries, vocab_size)).to(hidden.dtype)
    sampled_logits = hidden @ weight[sampled].t() + bias[sampled]
    sampled_logits = sampled_logits - torch.log(expected_counts(sampled, num_tries, vocab_size)).to(hidden.dtype)
    accidental = targets.unsqueeze(1) == sampled.unsqueeze(0)
    sampled_logits = sampled_logits.masked_fill(accidental, torch.finfo(sampled_logits.dtype).min)
    logits = torch.cat([true_logits.unsqueeze(1), sampled_logits], dim=1)
    return torch.logsumexp(logits, dim=1) - true_logits


@dataclass
class BiLMOutput:
    """``loss = (L_forward + L_backward) / 2``; ``stats`` summable pairs (``forward_nll``, ``backward_nll``,
    ``nll``: exact only with the full softmax, else ``sampled_nll``); ``state`` the LSTM states to carry."""

    loss: torch.Tensor | None = None
    losses: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    state: tuple | None = None


class ElmoForPreTraining(nn.Module):
    """The biLM with its softmax: the forward stack predicts the next token, the backward stack the
    previous one, through one softmax ``(W, b)`` of ``vocab_size`` words shared by both; dropout on
    each LSTM layer's input and on the top layer before the softmax (bilm-tf's training graph).

    ``forward(input_ids, labels, backward_input_ids, backward_labels, state)``: ``labels`` (B, T)
    are the next words of the forward window, ``backward_labels`` the previous words of the backward
    window (-100: none). While training with ``0 < n_negative_samples < vocab_size - 1`` the loss is the
    sampled softmax's; in eval mode it is the full softmax's.
    """

    base_model_prefix = "elmo"

    def __init__(self, config: ElmoConfig, vocabulary: list[str] | None = None):
        super().__init__()
        if config.vocab_size < 1:
            raise Word2BertError("ElmoForPreTraining needs ElmoConfig.vocab_size > 0 (the softmax)")
        if vocabulary is not None and len(vocabulary) != config.vocab_size:
            raise Word2BertError(f"the vocabulary has {len(vocabulary)} words but vocab_size={config.vocab_size}")
        self.config = config
        self.vocabulary = vocabulary
        self.elmo = ElmoModel(config)
        self.softmax_weight = nn.Parameter(torch.randn(config.vocab_size, config.projection_dim)
                                           / math.sqrt(config.projection_dim))
        self.softmax_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.output_dropout = nn.Dropout(config.dropout)

    @property
    def encoder(self) -> ElmoModel:
        return self.elmo

    def get_input_embeddings(self):
        return self.elmo.get_input_embeddings()

    def uses_sampled_softmax(self) -> bool:
        return self.training and 0 < self.config.n_negative_samples < self.config.vocab_size - 1

    def _direction_loss(self, hidden, labels):
        """(summed loss, count) over the positions with a label."""
        hidden = self.output_dropout(hidden).reshape(-1, hidden.shape[-1])
        labels = labels.reshape(-1).long()
        keep = labels != IGNORE_INDEX
        hidden, labels = hidden[keep], labels[keep]
        if labels.numel() == 0:
            return hidden.sum() * 0.0, 0
        if self.uses_sampled_softmax():
            seed = int(torch.randint(0, 2 ** 62, (1,)))      # the torch RNG drives the candidates too
            losses = sampled_softmax_loss(hidden, labels, self.softmax_weight, self.softmax_bias,
                                          self.config.n_negative_samples, np.random.default_rng(seed))
            return losses.sum(), labels.numel()
        logits = F.linear(hidden, self.softmax_weight, self.softmax_bias)
        return F.cross_entropy(logits, labels, reduction="sum"), labels.numel()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, *, labels=None, backward_input_ids=None,
                backward_labels=None, backward_attention_mask=None, state=None, **unused) -> BiLMOutput:
        encoded = self.elmo(input_ids, attention_mask, state=state, backward_input_ids=backward_input_ids,
                            backward_attention_mask=backward_attention_mask)
        output = BiLMOutput(state=encoded.state)
        if labels is None:
            return output
        if backward_labels is None:
            raise Word2BertError("ELMo pre-training needs labels (next words) and backward_labels (previous words)")
        P = self.config.projection_dim
        top = encoded.last_hidden_state
        forward_sum, forward_count = self._direction_loss(top[..., :P], labels)
        backward_sum, backward_count = self._direction_loss(top[..., P:], backward_labels)
        forward_loss = forward_sum / max(forward_count, 1)
        backward_loss = backward_sum / max(backward_count, 1)
        output.loss = 0.5 * (forward_loss + backward_loss)
        output.losses = {"forward": forward_loss, "backward": backward_loss}
        name = "sampled_nll" if self.uses_sampled_softmax() else "nll"
        forward_sum, backward_sum = forward_sum.detach(), backward_sum.detach()
        output.stats = {f"forward_{name}": (float(forward_sum), forward_count),
                        f"backward_{name}": (float(backward_sum), backward_count),
                        name: (float(forward_sum + backward_sum), forward_count + backward_count)}
        return output

    # -------------------------------------------------------------- files
    def save_pretrained(self, directory) -> None:
        """bilm-tf's files: ``options.json``, ``lm_weights.hdf5`` (with ``softmax/W``, ``softmax/b``) and the
        softmax ``vocab.txt``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        bilm_format.write_options(directory / bilm_format.OPTIONS_NAME, self.config.to_bilm_options())
        state = {f"elmo.{key}": value for key, value in self.elmo.state_dict().items()}
        state.update({"elmo.softmax_weight": self.softmax_weight, "elmo.softmax_bias": self.softmax_bias})
        bilm_format.write_weights(directory / bilm_format.WEIGHTS_NAME,
                                  bilm_weights_from_state_dict(self.config, state, prefix="elmo."))
        if self.vocabulary is not None:
            bilm_format.write_vocabulary(directory / bilm_format.VOCAB_NAME, self.vocabulary)

    @classmethod
    def from_pretrained(cls, directory, **config_overrides) -> ElmoForPreTraining:
        """Read a directory written by :meth:`save_pretrained` (the softmax must be in the weight file)."""
        directory = Path(directory)
        options = bilm_format.read_options(directory / bilm_format.OPTIONS_NAME)
        config = ElmoConfig.from_bilm_options(options, **config_overrides)
        vocabulary = None
        if (directory / bilm_format.VOCAB_NAME).exists():
            vocabulary = bilm_format.read_vocabulary(directory / bilm_format.VOCAB_NAME)
        model = cls(config, vocabulary)
        weights = bilm_format.read_weights(directory / bilm_format.WEIGHTS_NAME)
        if "softmax/W" not in weights:
            raise Word2BertError(f"{directory / bilm_format.WEIGHTS_NAME} holds no softmax (bilm-tf's dump_weights "
                                 "leaves it out): load it with ElmoModel.from_pretrained for features")
        state = bilm_state_dict(config, weights, str(directory / bilm_format.WEIGHTS_NAME))
        model.softmax_weight.data.copy_(state.pop("softmax_weight"))
        model.softmax_bias.data.copy_(state.pop("softmax_bias"))
        model.elmo.load_state_dict(state)
        return model


# --------------------------------------------------------------------------- pre-training: the data

class BidirectionalStream:
    """A tokenised corpus as one stream ``<S> w w w </S> <S> w ...`` for BPTT windows in both directions.

    The sampler (:class:`~word2bert.train.samplers.ContiguousStreamSampler`) cuts the stream into
    rows of ``row_length`` tokens and asks for windows ``(start, length)`` from the left of each row,
    one after another. The forward stack reads that window and predicts each next token. The backward
    stack reads the mirror window, at the same distance from the row's *right* end, shifted one token
    right, and predicts each previous token; so batch after batch it walks the row from right to left
    and its carried state continues too (bilm-tf feeds it a second, reversed stream).

    ``type_ids`` is the stream as ids of ``types`` (every distinct word, whose character ids the
    model reads); ``softmax_ids[type]`` is the type's softmax id (``<UNK>`` for words outside it).
    """

    def __init__(self, type_ids: np.ndarray, type_char_ids: np.ndarray, softmax_ids: np.ndarray, row_length: int):
        self.type_ids = np.asarray(type_ids)
        self.type_char_ids = type_char_ids
        self.softmax_ids = np.asarray(softmax_ids, dtype=np.int64)
        self.row_length = int(row_length)
        if self.row_length < 1:
            raise Word2BertError("the stream is too short for its rows")

    def __len__(self) -> int:
        return len(self.type_ids)

    def __getitem__(self, key) -> dict:
        start, length = int(key[0]), int(key[1])
        row, position = divmod(start, self.row_length)
        mirror = row * self.row_length + self.row_length - position - length
        if mirror < row * self.row_length or start + length + 1 > len(self.type_ids):
            raise Word2BertError(f"window {key} does not fit rows of {self.row_length} tokens")
        forward = self.type_ids[start:start + length + 1]
        backward = self.type_ids[mirror:mirror + length + 1]
        return {"input_ids": forward[:-1], "labels": self.softmax_ids[forward[1:]],
                "backward_input_ids": backward[1:], "backward_labels": self.softmax_ids[backward[:-1]]}

    def collate(self, items, rng=None) -> dict:
        """Equal-length windows -> character ids (B, T, C), labels (B, T) and an all-ones mask."""
        stack = lambda key: np.stack([item[key] for item in items])  # noqa: E731
        input_ids, backward_ids = stack("input_ids"), stack("backward_input_ids")
        return {"input_ids": torch.from_numpy(self.type_char_ids[input_ids].astype(np.int64)),
                "attention_mask": torch.ones(input_ids.shape, dtype=torch.long),
                "labels": torch.from_numpy(stack("labels")),
                "backward_input_ids": torch.from_numpy(self.type_char_ids[backward_ids].astype(np.int64)),
                "backward_labels": torch.from_numpy(stack("backward_labels"))}


def sentence_chunks(lines, max_sentence_length: int = 50):
    """Whitespace-tokenised lines, each cut into sentences of at most ``max_sentence_length`` words."""
    for line in lines:
        words = line.split()
        for start in range(0, len(words), max_sentence_length):
            yield words[start:start + max_sentence_length]


def build_stream_tokens(sentences, type_index: dict) -> np.ndarray:
    """The stream of type ids ``<S> w .. w </S> <S> ..`` (``<S>`` is type 0, ``</S>`` type 1)."""
    from word2bert.corpus.encoded import EncodedCorpus
    from word2bert.corpus.vocab import Vocabulary

    words = [w for w, _ in sorted(type_index.items(), key=lambda wi: wi[1]) if type_index[w] >= 2]
    vocab = Vocabulary(words, np.ones(len(words), dtype=np.int64))
    encoded = EncodedCorpus.encode(sentences, vocab)
    tokens, offsets = np.asarray(encoded.tokens, dtype=np.int64) + 2, encoded.offsets
    n_sentences = len(offsets) - 1
    stream = np.empty(len(tokens) + 2 * n_sentences, dtype=np.int32)
    starts = offsets[:-1] + 2 * np.arange(n_sentences)           # where each <S> goes
    ends = offsets[1:] + 2 * np.arange(n_sentences) + 1          # where each </S> goes
    is_word = np.ones(len(stream), dtype=bool)
    is_word[starts] = False
    is_word[ends] = False
    stream[is_word] = tokens
    stream[starts] = 0
    stream[ends] = 1
    return stream


@dataclass
class ElmoCorpus:
    """A corpus ready for :class:`BidirectionalStream`: the stream of type ids, the types (``<S>``,
    ``</S>``, then every word by decreasing count) with their character ids, the softmax vocabulary
    (bilm-tf's: ``<S>``, ``</S>``, ``<UNK>``, then words by decreasing count) and each type's softmax id."""

    stream: np.ndarray
    types: list[str]
    type_char_ids: np.ndarray
    vocabulary: list[str]
    softmax_ids: np.ndarray

    @classmethod
    def from_file(cls, path, vocabulary: list[str] | None = None, vocab_size: int = 50000, min_count: int = 1,
                  max_sentence_length: int = 50, max_characters: int = 50, types: list[str] | None = None):
        """Read a text file (one sentence per line; longer lines are cut) and number it.

        ``vocabulary``: a bilm-tf vocabulary (with ``<S>``, ``</S>``, ``<UNK>``), else the ``vocab_size``
        most frequent words with count >= ``min_count``. ``types``: reuse the word types of another
        corpus (a held-out file next to its training file; new words are added at the end).
        """
        from word2bert.corpus.vocab import Vocabulary
        from word2bert.fileio import open_text

        def sentences():
            with open_text(path) as handle:
                yield from sentence_chunks(handle, max_sentence_length)

        counted = Vocabulary.build(sentences(), min_count=1)
        if types is None:
            types = [bilm_format.BOS, bilm_format.EOS] + [w for w in counted.words
                                                          if w not in (bilm_format.BOS, bilm_format.EOS)]
        else:
            known = set(types)
            types = list(types) + [w for w in counted.words if w not in known]
        type_index = {w: i for i, w in enumerate(types)}
        stream = build_stream_tokens(sentences(), type_index)
        if vocabulary is None:
            specials = [bilm_format.BOS, bilm_format.EOS, bilm_format.UNK]
            frequent = [w for w, c in zip(counted.words, counted.counts) if c >= min_count and w not in specials]
            vocabulary = specials + frequent[:max(0, vocab_size - len(specials))]
        else:
            missing = [t for t in (bilm_format.BOS, bilm_format.EOS, bilm_format.UNK) if t not in vocabulary]
            if missing:
                raise Word2BertError(f"the vocabulary lacks {', '.join(missing)}")
        softmax_index = {w: i for i, w in enumerate(vocabulary)}
        unk = softmax_index[bilm_format.UNK]
        softmax_ids = np.array([softmax_index.get(w, unk) for w in types], dtype=np.int64)
        return cls(stream, types, words_to_char_ids(types, max_characters), list(vocabulary), softmax_ids)

    def windows(self, row_length: int) -> BidirectionalStream:
        return BidirectionalStream(self.stream, self.type_char_ids, self.softmax_ids, row_length)
