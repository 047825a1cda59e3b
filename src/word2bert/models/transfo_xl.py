"""Transformer-XL language model (Dai et al. 2019): a causal Transformer with segment memory.

The model reads a token stream one segment at a time; every layer attends to its own segment and to
the cached hidden states of the previous segments (``mem_len`` of them, stop-gradient), with
relative positions, so the context reaches ``n_layer * mem_len`` tokens back while a step costs only
``seq_len * (seq_len + mem_len)`` attention scores (:mod:`word2bert.nn.relative`). Trained on BPTT
windows of a stream (the trainer carries the memory as ``state``), evaluated the same way.

``logits = Dropout(h) E^T + b``: the output layer is tied to the input embeddings ``E``, which are
scaled by ``sqrt(d_model)`` on input as in the reference code. The reference uses an adaptive softmax
for its large vocabularies; with the 10,000 words of Penn Treebank a full softmax is used here.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write
from word2bert.models.xlnet import EncoderOutput, XLNetLMOutput, init_xlnet_weights, language_model_loss
from word2bert.nn.relative import RelativeTransformer, check_memory_length
from word2bert.nn.transformer import ACTIVATIONS, get_activation


@dataclass
class TransfoXLConfig:
    """Transformer-XL hyper-parameters, with the names of transformers' (former) ``TransfoXLConfig``.

    ``mem_len``: hidden states kept per layer for the next segment (0: no memory, a vanilla
    Transformer LM on fixed segments). ``clamp_len``: distances beyond it share an encoding (-1:
    none). ``same_length``: every position attends to the same number of keys. ``untie_r``: one pair
    of position biases per layer instead of one shared pair (the reference's default: shared).
    """

    vocab_size: int = 10000
    d_model: int = 256
    n_layer: int = 4
    n_head: int = 4
    d_inner: int = 1024
    activation_function: str = "relu"
    dropout: float = 0.1
    dropatt: float = 0.0
    mem_len: int = 64
    clamp_len: int = -1
    same_length: bool = False
    untie_r: bool = False
    init_std: float = 0.02
    layer_norm_epsilon: float = 1e-5

    model_type = "transfo-xl"

    def __post_init__(self):
        self.validate()

    @property
    def hidden_size(self) -> int:
        return self.d_model

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layer

    @property
    def max_position_embeddings(self) -> int:
        return 512

    def validate(self) -> None:
        for name in ("vocab_size", "d_model", "n_layer", "n_head", "d_inner"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise Word2BertError(f"TransfoXLConfig.{name}={value!r} must be a positive integer")
        if self.d_model % self.n_head or self.d_model % 2:
            raise Word2BertError(f"TransfoXLConfig.d_model={self.d_model} must be even and divisible by "
                                 f"n_head={self.n_head}")
        check_memory_length(self.mem_len, "TransfoXLConfig.mem_len")
        if isinstance(self.clamp_len, bool) or not isinstance(self.clamp_len, int) or (
                self.clamp_len < 1 and self.clamp_len != -1):
            raise Word2BertError(f"TransfoXLConfig.clamp_len={self.clamp_len!r} must be a positive integer or -1")
        for name in ("dropout", "dropatt"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise Word2BertError(f"TransfoXLConfig.{name}={value!r} must be in [0, 1)")
        if self.activation_function not in ACTIVATIONS:
            get_activation(self.activation_function)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TransfoXLConfig":
        if not isinstance(data, dict):
            raise Word2BertError(f"a Transformer-XL config must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{key: value for key, value in data.items() if key in names})
        except TypeError as error:
            raise Word2BertError(f"bad Transformer-XL config value: {error}") from None

    def save(self, path) -> None:
        with atomic_write(path, "w", encoding="utf-8") as handle:
            json.dump({**self.to_dict(), "model_type": self.model_type}, handle, indent=2, sort_keys=True)
            handle.write("\n")


class TransfoXLModel(nn.Module):
    """The Transformer-XL encoder (causal relative stack); ``state`` is the memory."""

    def __init__(self, config: TransfoXLConfig):
        super().__init__()
        if not isinstance(config, TransfoXLConfig):
            raise Word2BertError(f"TransfoXLModel needs a TransfoXLConfig, got {type(config).__name__}")
        self.config = config
        self.word_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.embedding_scale = math.sqrt(config.d_model)
        self.encoder = RelativeTransformer(
            num_layers=config.n_layer, hidden_size=config.d_model, num_heads=config.n_head,
            intermediate_size=config.d_inner, activation=config.activation_function, dropout=config.dropout,
            attention_dropout=config.dropatt, layer_norm_eps=config.layer_norm_epsilon,
            untie_biases=config.untie_r, use_segments=False, mem_len=config.mem_len,
            clamp_len=config.clamp_len, same_length=config.same_length, causal=True)
        self.dropout = nn.Dropout(config.dropout)
        self.apply(lambda module: init_xlnet_weights(module, config.init_std))

    def get_input_embeddings(self) -> nn.Embedding:
        return self.word_embedding

    def forward(self, input_ids: torch.Tensor, attention_mask=None, token_type_ids=None, *, position_ids=None,
                state=None, read_positions=None, output_hidden_states: bool = False) -> EncoderOutput:
        """Encode the segment ``input_ids`` (B, T) after the memory ``state`` of the previous segments."""
        if input_ids.dim() != 2:
            raise Word2BertError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size):
            raise Word2BertError(f"input_ids must lie in [0, vocab_size={self.config.vocab_size})")
        if position_ids is not None or token_type_ids is not None:
            raise Word2BertError("Transformer-XL uses relative positions and no segments: no position_ids or "
                                 "token_type_ids")
        key_padding = None
        if attention_mask is not None:
            if attention_mask.dim() != 2 or tuple(attention_mask.shape) != tuple(input_ids.shape):
                raise Word2BertError("Transformer-XL takes a (batch, length) padding attention_mask only")
            key_padding = attention_mask.bool()
        if state is not None:
            state = list(state)
            if len(state) != self.config.n_layer or any(m.shape[0] != input_ids.shape[0] for m in state):
                raise Word2BertError("the memory (state) does not fit this model or batch size")
        hidden = self.dropout(self.word_embedding(input_ids) * self.embedding_scale)
        output = self.encoder(hidden, memory=state, key_padding=key_padding, read_positions=read_positions,
                              output_hidden_states=output_hidden_states)
        last = self.dropout(output.content)
        return EncoderOutput(last, output.hidden_states, last[:, -1] if read_positions is None else None,
                             output.memory)


class TransfoXLLMHeadModel(nn.Module):
    """Transformer-XL with the tied output layer; ``forward(input_ids, labels, state)`` for the trainer.

    ``labels`` (B, T) are the next tokens (-100 ignored); the loss is their mean negative
    log-likelihood and ``stats["nll"]`` its summable (sum, count), so the trainer reports perplexity.
    """

    def __init__(self, config: TransfoXLConfig):
        super().__init__()
        self.config = config
        self.transformer = TransfoXLModel(config)
        self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.word_embedding

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None, *, state=None,
                attention_mask=None) -> XLNetLMOutput:
        encoded = self.transformer(input_ids, attention_mask, state=state)
        logits = F.linear(encoded.last_hidden_state, self.transformer.word_embedding.weight, self.output_bias)
        output = XLNetLMOutput(logits=logits, state=encoded.state)
        if labels is not None:
            if tuple(labels.shape) != tuple(input_ids.shape):
                raise Word2BertError(f"labels of shape {tuple(labels.shape)} do not match input_ids "
                                     f"{tuple(input_ids.shape)}")
            output.loss, output.stats = language_model_loss(logits, labels)
        return output

    def save_pretrained(self, directory) -> None:
        """config.json and model.safetensors (our names; transformers no longer ships Transformer-XL)."""
        from safetensors.torch import save_file

        from word2bert.fileio import atomic_save

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {key: value.detach().contiguous().cpu() for key, value in self.state_dict().items()
                   if not _is_shared_duplicate(self, key)}
        atomic_save(directory / "model.safetensors", lambda tmp: save_file(tensors, tmp))
        self.config.save(directory / "config.json")

    @classmethod
    def from_pretrained(cls, directory, **overrides) -> "TransfoXLLMHeadModel":
        from safetensors.torch import load_file

        directory = Path(directory)
        path = directory / "config.json"
        if not path.is_file():
            raise Word2BertError(f"config file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise Word2BertError(f"cannot read config file {path}: {error}") from None
        config = TransfoXLConfig.from_dict({**data, **overrides})
        model = cls(config)
        weights = directory / "model.safetensors"
        if not weights.is_file():
            raise Word2BertError(f"weights file not found: {weights}")
        state = load_file(str(weights))
        missing = [key for key in model.state_dict() if key not in state and not _is_shared_duplicate(model, key)]
        if missing:
            raise Word2BertError(f"{weights}: no weights for {', '.join(missing[:4])}")
        model.load_state_dict(state, strict=False)
        return model


def _is_shared_duplicate(model: nn.Module, key: str) -> bool:
    """True for the second and later names of a tied parameter (shared position biases)."""
    first = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        first.setdefault(id(parameter), name)
    parameters = dict(model.named_parameters(remove_duplicate=False))
    return key in parameters and first[id(parameters[key])] != key


@torch.no_grad()
def evaluate_stream(model: TransfoXLLMHeadModel, tokens, seq_len: int, mem_len: int | None = None,
                    batch_size: int = 1) -> dict:
    """Perplexity of ``model`` on a token stream read in segments of ``seq_len`` with memory ``mem_len``.

    The stream is cut into ``batch_size`` equal rows (``batchify``); each row is read left to right,
    the memory of one segment feeding the next, and every token but the first of its row is
    predicted exactly once. ``mem_len`` overrides the model's memory length (0: none). Returns
    ``{"nll", "perplexity", "tokens"}``.
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise Word2BertError(f"parameter seq_len={seq_len!r} must be a positive integer")
    tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
    row_length = (len(tokens) - 1) // batch_size
    if row_length < 1:
        raise Word2BertError(f"a stream of {len(tokens)} tokens is too short for {batch_size} rows")
    rows = tokens[:row_length * batch_size + 1]
    inputs = torch.stack([rows[b * row_length:(b + 1) * row_length] for b in range(batch_size)])
    targets = torch.stack([rows[b * row_length + 1:(b + 1) * row_length + 1] for b in range(batch_size)])
    encoder = model.transformer.encoder
    saved = encoder.mem_len
    if mem_len is not None:
        encoder.mem_len = check_memory_length(mem_len)
    was_training = model.training
    model.eval()
    nll, count, state = 0.0, 0, None
    try:
        for start in range(0, row_length, seq_len):
            output = model(inputs[:, start:start + seq_len], targets[:, start:start + seq_len], state=state)
            nll += output.stats["nll"][0]
            count += output.stats["nll"][1]
            state = output.state
    finally:
        encoder.mem_len = saved
        model.train(was_training)
    return {"nll": nll / count, "perplexity": math.exp(nll / count), "tokens": count}


__all__ = ["TransfoXLConfig", "TransfoXLLMHeadModel", "TransfoXLModel", "evaluate_stream"]
