"""GPT (Radford et al. 2018) and GPT-2 (Radford et al. 2019): Transformer decoders trained to predict
the next token.

Both are the shared :class:`~word2bert.nn.TransformerEncoder` run with causal attention (position t
sees positions <= t) over word + learned position embeddings (no LayerNorm, no segments)::

    h_0 = Dropout(W_e[x] + W_p[positions])
    h_l = block(h_{l-1}),  l = 1 .. L
    p(x_{t+1} | x_<=t) = softmax(h_L[t] W_e^T)          (output embedding tied to the input one)

- **GPT-1** (:class:`OpenAIGPTConfig`): post-LN blocks, ``h = LN(x + Attn(x)); out = LN(h + FFN(h))``,
  GELU (tanh form), no final LayerNorm, 512 positions, N(0, 0.02) initialisation.
- **GPT-2** (:class:`GPT2Config`): pre-LN blocks, ``h = x + Attn(LN(x)); out = h + FFN(LN(h))``, a
  final LayerNorm after the last block, GELU (tanh form), 1024 positions, and the projections that
  end each residual branch (attention output, second FFN layer) initialised with
  std = 0.02 / sqrt(2 L) so the residual stream's variance does not grow with depth.

Classes follow transformers' names and read/write their checkpoints: :class:`GPT2Model` /
:class:`GPT2LMHeadModel` (``model_type`` "gpt2") and :class:`OpenAIGPTModel` /
:class:`OpenAIGPTLMHeadModel` ("openai-gpt"). transformers stores GPT's linear layers as ``Conv1D``
with the weight transposed (in, out); the key maps transpose them:

=============================================  =============================================
Hugging Face key (GPT-2; GPT-1 in brackets)    word2bert key
=============================================  =============================================
transformer.wte [tokens_embed]                 transformer.embeddings.word_embeddings
transformer.wpe [positions_embed]              transformer.embeddings.position_embeddings
transformer.h.i.ln_1                           transformer.encoder.layers.i.attention_norm
transformer.h.i.attn.c_attn (Conv1D)           transformer.encoder.layers.i.attention.qkv_proj (transposed)
transformer.h.i.attn.c_proj (Conv1D)           transformer.encoder.layers.i.attention.out_proj (transposed)
transformer.h.i.ln_2                           transformer.encoder.layers.i.feed_forward_norm
transformer.h.i.mlp.c_fc / c_proj (Conv1D)     transformer.encoder.layers.i.feed_forward.dense_in / dense_out
transformer.ln_f [none: GPT-1 is post-LN]      transformer.encoder.final_norm
lm_head (tied: not stored)                     objectives.lm.decoder (only when untied)
=============================================  =============================================

Generation (:meth:`GPTLMHeadModel.generate`) runs :func:`word2bert.models.generation.generate` with a
key/value cache (:class:`~word2bert.nn.KeyValueCache`); left-padded prompts get position ids that
skip their padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import KeyMap, rename, transpose
from word2bert.models.base import EncoderOutput, PretrainedConfig, PretrainedModel
from word2bert.models.generation import GenerationOutput, LinearLogits, generate
from word2bert.models.pretraining import PreTrainingModel
from word2bert.nn.cache import KeyValueCache
from word2bert.nn.embeddings import TransformerEmbeddings, position_ids_from_attention_mask
from word2bert.nn.transformer import ACTIVATIONS, TransformerEncoder, get_activation, init_transformer_weights
from word2bert.objectives.causal_lm import CausalLanguageModeling

# --------------------------------------------------------------------------- configs


class _GPTConfigFields:
    """Names shared by both configs (our spelling over transformers' GPT fields) and their checks."""

    pre_layer_norm: ClassVar[bool] = False

    @property
    def hidden_size(self) -> int:
        return self.n_embd

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layer

    @property
    def num_attention_heads(self) -> int:
        return self.n_head

    @property
    def max_position_embeddings(self) -> int:
        return self.n_positions

    @property
    def intermediate_size(self) -> int:
        inner = getattr(self, "n_inner", None)
        return 4 * self.n_embd if inner is None else inner

    def check_gpt_fields(self) -> None:
        self.require_positive_ints("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
        self.require_divisible("n_embd", "n_head")
        self.require_probabilities("resid_pdrop", "embd_pdrop", "attn_pdrop")
        self.require_positive_floats("layer_norm_epsilon", "initializer_range")
        if self.hidden_act not in ACTIVATIONS:
            get_activation(self.hidden_act)


@dataclass
class GPT2Config(_GPTConfigFields, PretrainedConfig):
    """GPT-2's hyper-parameters with transformers' names and defaults (the 124M "gpt2")."""

    model_type: ClassVar[str] = "gpt2"
    pre_layer_norm: ClassVar[bool] = True

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    tie_word_embeddings: bool = True
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False

    @property
    def hidden_act(self) -> str:
        return self.activation_function

    def validate(self) -> None:
        self.check_gpt_fields()
        if self.n_inner is not None:
            self.require_positive_ints("n_inner")
        if not self.scale_attn_weights or self.scale_attn_by_inverse_layer_idx:
            raise Word2BertError("GPT2Config: only attention scaled by 1/sqrt(head size) is supported "
                                 "(scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False)")


#: transformers' GPT-1 activation names (``ACT_FNS`` of its modeling_openai) -> ours.
OPENAI_GPT_ACTIVATIONS = {"gelu": "gelu_new", "relu": "relu", "silu": "silu", "swish": "silu"}


@dataclass
class OpenAIGPTConfig(_GPTConfigFields, PretrainedConfig):
    """GPT-1's hyper-parameters with transformers' names and defaults ("openai-gpt": 12 x 768, 40,478
    BPE tokens, 512 positions). ``afn`` is the activation by transformers' GPT-1 names: "gelu" there
    is the tanh form of OpenAI's code, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), not the exact
    GELU; "relu", "silu"/"swish"."""

    model_type: ClassVar[str] = "openai-gpt"

    vocab_size: int = 40478
    n_positions: int = 512
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    afn: str = "gelu"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True

    @property
    def hidden_act(self) -> str:
        return OPENAI_GPT_ACTIVATIONS.get(self.afn, self.afn)

    def validate(self) -> None:
        if self.afn not in OPENAI_GPT_ACTIVATIONS:
            raise Word2BertError(f"OpenAIGPTConfig.afn={self.afn!r} must be one of "
                                 f"{', '.join(sorted(OPENAI_GPT_ACTIVATIONS))}")
        self.check_gpt_fields()


# --------------------------------------------------------------------------- encoder


def init_gpt_weights(model: nn.Module, config) -> None:
    """N(0, initializer_range) for linear and embedding weights, zero biases, unit LayerNorms; GPT-2
    also scales the residual-branch output projections to std / sqrt(2 * n_layer)."""
    model.apply(lambda module: init_transformer_weights(module, config.initializer_range))
    if config.pre_layer_norm:
        std = config.initializer_range / math.sqrt(2 * config.n_layer)
        for name, parameter in model.named_parameters():
            if name.endswith("attention.out_proj.weight") or name.endswith("feed_forward.dense_out.weight"):
                nn.init.normal_(parameter, mean=0.0, std=std)


class GPTModel(PretrainedModel):
    """The GPT-1 / GPT-2 Transformer decoder (no head): embeddings -> causal TransformerEncoder.

    Follows the encoder contract of :mod:`word2bert.models.base`; ``state`` is a
    :class:`~word2bert.nn.KeyValueCache` (pass ``use_cache=True`` or a cache to get one back).
    """

    base_model_prefix = "transformer"
    is_encoder = True

    def __init__(self, config):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise Word2BertError(f"{type(self).__name__} needs a {self.config_class.__name__}, "
                                 f"got {type(config).__name__}")
        self.config = config
        self.embeddings = TransformerEmbeddings(
            vocab_size=config.vocab_size, hidden_size=config.n_embd, max_position_embeddings=config.n_positions,
            type_vocab_size=0, dropout=config.embd_pdrop, pad_token_id=None, layer_norm=False)
        self.encoder = TransformerEncoder(
            num_layers=config.n_layer, hidden_size=config.n_embd, num_heads=config.n_head,
            intermediate_size=config.intermediate_size, activation=config.hidden_act,
            hidden_dropout=config.resid_pdrop, attention_dropout=config.attn_pdrop,
            layer_norm_eps=config.layer_norm_epsilon, pre_layer_norm=config.pre_layer_norm)
        init_gpt_weights(self, config)

    @classmethod
    def hf_key_map(cls, config) -> KeyMap:
        return KeyMap(gpt_encoder_rules(config), prefix="transformer.")

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def resize_token_embeddings(self, vocab_size: int) -> nn.Embedding:
        """Grow (or shrink) the token table to ``vocab_size`` rows, keeping the existing rows; new rows
        are drawn from N(0, initializer_range) (GPT-1 fine-tuning adds start/delimiter/extract tokens)."""
        old = self.embeddings.word_embeddings
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
            raise Word2BertError(f"vocab_size={vocab_size!r} must be a positive integer")
        new = nn.Embedding(vocab_size, old.embedding_dim).to(old.weight.device, old.weight.dtype)
        nn.init.normal_(new.weight, mean=0.0, std=self.config.initializer_range)
        keep = min(vocab_size, old.num_embeddings)
        with torch.no_grad():
            new.weight[:keep] = old.weight[:keep]
        self.embeddings.word_embeddings = new
        self.embeddings.vocab_size = vocab_size
        self.config.vocab_size = vocab_size
        return new

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
              position_ids: torch.Tensor | None = None, past_length: int = 0) -> torch.Tensor:
        """h_0 = Dropout(W_e[x] + W_p[positions] (+ W_e[token types])): transformers embeds GPT's
        token types with the word table, before the dropout."""
        embeddings = self.embeddings
        if token_type_ids is None:
            return embeddings(input_ids, position_ids=position_ids, past_length=past_length)
        embeddings.check_inputs(input_ids, None)
        token_type_ids = torch.as_tensor(token_type_ids, device=input_ids.device)
        if tuple(token_type_ids.shape) != tuple(input_ids.shape):
            raise Word2BertError(f"token_type_ids shape {tuple(token_type_ids.shape)} != input_ids shape "
                                 f"{tuple(input_ids.shape)}")
        embeddings.check_inputs(token_type_ids, None)
        positions = embeddings.make_position_ids(input_ids, position_ids, past_length)
        summed = (embeddings.word_embeddings(input_ids) + embeddings.position_embeddings(positions)
                  + embeddings.word_embeddings(token_type_ids))
        return embeddings.dropout(summed)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        state: KeyValueCache | None = None,
        read_positions: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        use_cache: bool = False,
    ) -> EncoderOutput:
        """Encode ``input_ids`` (B, T) causally.

        ``attention_mask``: (B, T) padding mask (1 = token) — with a cache, of the new tokens or of
        every (cached + new) position — or a boolean (B, T, T) mask, intersected with causality.
        ``position_ids`` default to past + 0, 1, ...; left-padded prompts pass
        :func:`~word2bert.nn.embeddings.position_ids_from_attention_mask`. ``token_type_ids`` are
        embedded with the word table, as transformers does. ``state``: a key/value cache to extend
        (``use_cache=True`` starts one); it is returned as ``state``.
        """
        cache = state
        if cache is None and use_cache:
            cache = KeyValueCache()
        if cache is not None and not isinstance(cache, KeyValueCache):
            raise Word2BertError(f"GPT's state is a KeyValueCache, got {type(cache).__name__}")
        past = 0 if cache is None else cache.length
        embedded = self.embed(input_ids, token_type_ids, position_ids, past)
        last_hidden, all_hidden = self.encoder(
            embedded, attention_mask, causal=True, output_hidden_states=output_hidden_states,
            last_layer_positions=read_positions, cache=cache)
        return EncoderOutput(last_hidden, all_hidden, None, cache)


def gpt_encoder_rules(config, ours: str = "", theirs: str = "") -> list:
    """Key rules of a bare GPT-1/GPT-2 encoder, with key prefixes (see the module docstring)."""
    gpt2 = config.model_type == "gpt2"
    rules = [
        rename("embeddings.word_embeddings.weight", "wte.weight" if gpt2 else "tokens_embed.weight"),
        rename("embeddings.position_embeddings.weight", "wpe.weight" if gpt2 else "positions_embed.weight"),
    ]
    for i in range(config.n_layer):
        mine, hf = f"encoder.layers.{i}.", f"h.{i}."
        rules += [
            transpose(f"{mine}attention.qkv_proj.weight", f"{hf}attn.c_attn.weight"),
            rename(f"{mine}attention.qkv_proj.bias", f"{hf}attn.c_attn.bias"),
            transpose(f"{mine}attention.out_proj.weight", f"{hf}attn.c_proj.weight"),
            rename(f"{mine}attention.out_proj.bias", f"{hf}attn.c_proj.bias"),
            transpose(f"{mine}feed_forward.dense_in.weight", f"{hf}mlp.c_fc.weight"),
            rename(f"{mine}feed_forward.dense_in.bias", f"{hf}mlp.c_fc.bias"),
            transpose(f"{mine}feed_forward.dense_out.weight", f"{hf}mlp.c_proj.weight"),
            rename(f"{mine}feed_forward.dense_out.bias", f"{hf}mlp.c_proj.bias"),
        ]
        for param in ("weight", "bias"):
            rules += [rename(f"{mine}attention_norm.{param}", f"{hf}ln_1.{param}"),
                      rename(f"{mine}feed_forward_norm.{param}", f"{hf}ln_2.{param}")]
    if config.pre_layer_norm:
        rules += [rename("encoder.final_norm.weight", "ln_f.weight"), rename("encoder.final_norm.bias", "ln_f.bias")]
    return [rule.with_prefixes(ours, theirs) for rule in rules]


class GPT2Model(GPTModel):
    """GPT-2's decoder without a head (transformers' ``GPT2Model``)."""

    config_class = GPT2Config
    hf_architecture = "GPT2Model"


class OpenAIGPTModel(GPTModel):
    """GPT-1's decoder without a head (transformers' ``OpenAIGPTModel``)."""

    config_class = OpenAIGPTConfig
    hf_architecture = "OpenAIGPTModel"


# --------------------------------------------------------------------------- language model


@dataclass
class _GenerationState:
    """What a GPT generation step carries: the key/value cache (or, uncached, every token so far) and
    the padding mask of every position so far (None while there is no padding)."""

    cache: KeyValueCache | None
    input_ids: torch.Tensor | None
    attention_mask: torch.Tensor | None


class GPTLMHeadModel(PreTrainingModel):
    """A GPT decoder + the causal language-modelling objective (``objectives["lm"]``).

    ``model(input_ids, attention_mask=None, labels=None)`` returns a
    :class:`~word2bert.models.pretraining.PreTrainingOutput` whose ``loss`` is the mean next-token
    loss, ``stats`` has ``lm_nll`` and ``lm_accuracy``, and ``lm_logits`` the (B, T, V) logits
    (computed when read). :meth:`logits` and :meth:`generate` serve inference.
    """

    base_model_prefix = "transformer"
    encoder_class: ClassVar[type] = GPTModel

    def __init__(self, config):
        if not isinstance(config, self.config_class):
            raise Word2BertError(f"{type(self).__name__} needs a {self.config_class.__name__}, "
                                 f"got {type(config).__name__}")
        decoder = None if config.tie_word_embeddings else nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if decoder is not None:
            nn.init.normal_(decoder.weight, mean=0.0, std=config.initializer_range)
        super().__init__(config, self.encoder_class(config), {"lm": CausalLanguageModeling(decoder)})

    @classmethod
    def hf_key_map(cls, config) -> KeyMap:
        rules = gpt_encoder_rules(config, "transformer.", "transformer.")
        if not config.tie_word_embeddings:
            rules.append(rename("objectives.lm.decoder.weight", "lm_head.weight"))
        return KeyMap(rules, prefix="transformer.")

    def resize_token_embeddings(self, vocab_size: int) -> nn.Embedding:
        """Resize the (tied) token table; an untied output layer is resized the same way."""
        embedding = self.encoder.resize_token_embeddings(vocab_size)
        decoder = self.objectives["lm"].decoder
        if decoder is not None:
            new = nn.Linear(decoder.in_features, vocab_size, bias=False).to(decoder.weight.device)
            nn.init.normal_(new.weight, mean=0.0, std=self.config.initializer_range)
            keep = min(vocab_size, decoder.out_features)
            with torch.no_grad():
                new.weight[:keep] = decoder.weight[:keep]
            self.objectives["lm"].decoder = new
        return embedding

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
               position_ids: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits (B, T, V) at every position."""
        hidden = self.encoder(input_ids, attention_mask, token_type_ids, position_ids=position_ids).last_hidden_state
        return self.objectives["lm"].logits(hidden, self)

    # ---------------------------------------------------------------- generation
    def generation_step(self, use_cache: bool = True, greedy_only: bool = False):
        """The step function :func:`~word2bert.models.generation.generate` drives: feeds the new tokens
        (with the cache, or the whole sequence again without it) and returns the last position's logits
        — as a :class:`~word2bert.models.generation.LinearLogits` with ``greedy_only`` (tokens only:
        their argmax is found without the full product onto the vocabulary) when the output layer has
        no bias."""
        objective = self.objectives["lm"]
        weight, bias = objective.output_weights(self)
        lazy = greedy_only and bias is None

        def step(new_ids: torch.Tensor, state: _GenerationState):
            mask = state.attention_mask
            if mask is not None and (state.cache is not None and state.cache.length or state.input_ids is not None):
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], new_ids.shape[1])], 1)
            if use_cache:
                positions = None if mask is None else position_ids_from_attention_mask(mask)[:, -new_ids.shape[1]:]
                hidden = self.encoder(new_ids, mask, position_ids=positions, state=state.cache).last_hidden_state
                state = _GenerationState(state.cache, None, mask)
            else:
                ids = new_ids if state.input_ids is None else torch.cat([state.input_ids, new_ids], 1)
                positions = None if mask is None else position_ids_from_attention_mask(mask)
                hidden = self.encoder(ids, mask, position_ids=positions).last_hidden_state
                state = _GenerationState(None, ids, mask)
            if lazy:
                return LinearLogits(hidden[:, -1], weight), state
            return objective.next_token_logits(hidden[:, -1], self), state

        return step

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                 max_new_tokens: int = 20, use_cache: bool = True, stop_token_ids=None, pad_token_id=None,
                 output_scores: bool = False, **options) -> GenerationOutput:
        """Continue the prompts ``input_ids`` (B, T), left-padded with ``attention_mask`` (B, T) when
        their lengths differ. ``options`` are those of :func:`word2bert.models.generation.generate`
        (``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``num_beams``, ``length_penalty``,
        ``generator``, ``on_tokens``). ``stop_token_ids`` default to the config's ``eos_token_id``
        (GPT-2); ``pad_token_id`` to the same, or 0. ``output_scores=True`` also sums the chosen
        tokens' log-probabilities (off by default, as in transformers: a pass over the vocabulary)."""
        input_ids = torch.as_tensor(input_ids, dtype=torch.long)
        if input_ids.dim() == 1:
            input_ids = input_ids[None]
        eos = getattr(self.config, "eos_token_id", None)
        if stop_token_ids is None:
            stop_token_ids = [] if eos is None else [eos]
        if pad_token_id is None:
            pad_token_id = eos if eos is not None else 0
        if attention_mask is not None:
            attention_mask = torch.as_tensor(attention_mask).to(input_ids.device)
            if tuple(attention_mask.shape) != tuple(input_ids.shape):
                raise Word2BertError(f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape "
                                     f"{tuple(input_ids.shape)}")
            if bool(attention_mask[:, -1].eq(0).any()):
                raise Word2BertError("batched prompts must be left-padded (the last column must be real tokens)")
            if bool(attention_mask.bool().all()):
                attention_mask = None
        total = input_ids.shape[1] + max_new_tokens
        if total > self.config.n_positions:
            raise Word2BertError(f"prompt of {input_ids.shape[1]} tokens + max_new_tokens={max_new_tokens} "
                                 f"exceeds the model's {self.config.n_positions} positions")
        was_training = self.training
        self.eval()
        try:
            state = _GenerationState(KeyValueCache() if use_cache else None, None, attention_mask)
            greedy_only = not output_scores and not options.get("do_sample") and options.get("num_beams", 1) == 1
            step = self.generation_step(use_cache, greedy_only)
            return generate(step, input_ids, state, max_new_tokens=max_new_tokens,
                            stop_token_ids=stop_token_ids, pad_token_id=pad_token_id,
                            output_scores=output_scores, **options)
        finally:
            self.train(was_training)


class GPT2LMHeadModel(GPTLMHeadModel):
    """GPT-2 with its tied language-model head (transformers' ``GPT2LMHeadModel``)."""

    config_class = GPT2Config
    encoder_class = GPT2Model
    hf_architecture = "GPT2LMHeadModel"


class OpenAIGPTLMHeadModel(GPTLMHeadModel):
    """GPT-1 with its tied language-model head (transformers' ``OpenAIGPTLMHeadModel``)."""

    config_class = OpenAIGPTConfig
    encoder_class = OpenAIGPTModel
    hf_architecture = "OpenAIGPTLMHeadModel"


__all__ = [
    "GPT2Config",
    "GPT2LMHeadModel",
    "GPT2Model",
    "GPTLMHeadModel",
    "GPTModel",
    "OpenAIGPTConfig",
    "OpenAIGPTLMHeadModel",
    "OpenAIGPTModel",
    "gpt_encoder_rules",
    "init_gpt_weights",
]
