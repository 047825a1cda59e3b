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

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import KeyMap, rename
from word2bert.models.base import EncoderOutput, PretrainedConfig, PretrainedModel
from word2bert.models.xlnet import RelativeStackConfig, init_xlnet_weights
from word2bert.nn.relative import RelativeTransformer, check_memory_length
from word2bert.nn.transformer import ACTIVATIONS, get_activation
from word2bert.objectives.permutation_lm import output_layer_loss


@dataclass
class TransfoXLConfig(RelativeStackConfig, PretrainedConfig):
    """Transformer-XL hyper-parameters, with the names of transformers' (former) ``TransfoXLConfig``.

    ``mem_len``: hidden states kept per layer for the next segment (0: no memory, a vanilla
    Transformer LM on fixed segments). ``clamp_len``: distances beyond it share an encoding (-1:
    none). ``same_length``: every position attends to the same number of keys. ``untie_r``: one pair
    of position biases per layer instead of one shared pair (the reference's default: shared).
    """

    model_type = "transfo-xl"

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

    def validate(self) -> None:
        self.check_relative_stack()
        self.require_probabilities("dropout", "dropatt")
        self.require_positive_floats("init_std", "layer_norm_epsilon")
        if self.activation_function not in ACTIVATIONS:
            get_activation(self.activation_function)


def _own_names(config, prefix: str = "") -> KeyMap:
    """Checkpoints keep our own names (transformers 5 no longer has Transformer-XL); a tied bias is
    stored once, under the first layer."""
    keys = []
    for index in range(config.n_layer):
        layer = f"{prefix}encoder.layers.{index}."
        keys += [f"{layer}attention.{name}" for name in ("qkv_proj.weight", "position_proj.weight", "out_proj.weight",
                                                         "layer_norm.weight", "layer_norm.bias")]
        if config.untie_r or index == 0:
            keys += [f"{layer}attention.content_bias", f"{layer}attention.position_bias"]
        keys += [f"{layer}feed_forward.{name}.{part}" for name in ("dense_in", "dense_out", "layer_norm")
                 for part in ("weight", "bias")]
    return KeyMap([rename(key, key) for key in [f"{prefix}word_embedding.weight"] + keys])


class TransfoXLModel(PretrainedModel):
    """The Transformer-XL encoder (causal relative stack); ``state`` is the memory."""

    config_class = TransfoXLConfig
    base_model_prefix = "transformer"
    hf_architecture = "TransfoXLModel"
    is_encoder = True

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

    @classmethod
    def hf_key_map(cls, config: TransfoXLConfig) -> KeyMap:
        return _own_names(config)

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
            key_padding = None if bool(attention_mask.bool().all()) else attention_mask.bool()
        if state is not None:
            state = list(state)
            if len(state) != self.config.n_layer or any(m.shape[0] != input_ids.shape[0] for m in state):
                raise Word2BertError("the memory (state) does not fit this model or batch size")
        hidden = self.dropout(self.word_embedding(input_ids) * self.embedding_scale)
        output = self.encoder(hidden, memory=state, key_padding=key_padding, read_positions=read_positions,
                              output_hidden_states=output_hidden_states)
        last = self.dropout(output.content)
        pooled = None
        if read_positions is None:
            last_index = (key_padding.long().sum(1).clamp_min(1) - 1) if key_padding is not None else \
                torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, dtype=torch.long, device=last.device)
            pooled = last[torch.arange(input_ids.shape[0], device=last.device), last_index]
        return EncoderOutput(last, output.hidden_states, pooled, output.memory)


class TransfoXLLMOutput:
    """``loss`` (mean NLL of the labels), ``stats`` ({"nll": (sum, count), "accuracy": (correct, count)}),
    ``state`` (the memory), ``logits`` (B, T, V) computed when read."""

    def __init__(self, loss, stats, state, hidden, model):
        self.loss, self.stats, self.state, self.hidden = loss, stats, state, hidden
        self._model, self._logits = model, None

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None:
            self._logits = self._model.output_logits(self.hidden)
        return self._logits


class TransfoXLLMHeadModel(PretrainedModel):
    """Transformer-XL with the tied output layer; ``forward(input_ids, labels, state)`` for the trainer.

    ``labels`` (B, T) are the next tokens (the :class:`~word2bert.train.samplers.TokenStream`
    convention; -100 ignored); the loss is their mean negative log-likelihood and ``stats["nll"]`` its
    summable (sum, count), so the trainer reports perplexity.
    """

    config_class = TransfoXLConfig
    base_model_prefix = "transformer"
    hf_architecture = "TransfoXLLMHeadModel"

    def __init__(self, config: TransfoXLConfig):
        super().__init__()
        self.config = config
        self.transformer = TransfoXLModel(config)
        self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))

    @classmethod
    def hf_key_map(cls, config: TransfoXLConfig) -> KeyMap:
        return _own_names(config, "transformer.") + KeyMap([rename("output_bias", "output_bias")])

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.word_embedding

    def output_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.transformer.word_embedding.weight, self.output_bias)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None, *, state=None,
                attention_mask=None) -> TransfoXLLMOutput:
        encoded = self.transformer(input_ids, attention_mask, state=state)
        hidden = encoded.last_hidden_state
        loss, stats = None, {}
        if labels is not None:
            if tuple(labels.shape) != tuple(input_ids.shape):
                raise Word2BertError(f"labels of shape {tuple(labels.shape)} do not match input_ids "
                                     f"{tuple(input_ids.shape)}")
            loss, stats = output_layer_loss(hidden, self.transformer.word_embedding.weight, self.output_bias, labels)
        return TransfoXLLMOutput(loss, stats, encoded.state, hidden, self)


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
