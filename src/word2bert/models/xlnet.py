"""XLNet (Yang et al. 2019): permutation language modelling with two-stream relative attention.

XLNet keeps the autoregressive factorisation of GPT, ``log p(x) = sum_t log p(x_{z_t} | x_{z_<t})``,
but over a random factorisation order ``z`` of the positions, so every token learns from context on
both sides. The order is realised as attention masks, never by moving tokens: the *content stream*
``h`` sees its predecessors in ``z`` and itself; the *query stream* ``g`` (started from one learned
vector, ``mask_emb``) sees its predecessors and its own *position* but not its own content, and
predicts the token there. Both streams are Transformer-XL layers (relative positions and segment
memory: :mod:`word2bert.nn.relative`) with relative segment encodings.

- :class:`XLNetConfig` uses Hugging Face's field names (``d_model``, ``n_layer``, ``n_head``,
  ``d_inner``, ``ff_activation``, ``attn_type``, ``mem_len``, ``reuse_len``, ``clamp_len``,
  ``bi_data``, ``same_length``, ``untie_r``); its ``mem_len`` default is non-zero and the memory is
  always returned (``state``) so that a caller can carry it.
- :class:`XLNetModel` is the encoder (word embeddings -> relative stack); :class:`XLNetLMHeadModel`
  adds the output layer tied to the word embeddings (``logits = g E^T + b``) and the loss over the
  predicted positions.

Both read and write Hugging Face checkpoints (``from_pretrained`` / ``save_pretrained``) of
transformers' ``XLNetModel`` / ``XLNetLMHeadModel`` through :func:`xlnet_encoder_rules` (transformers
keeps each projection as a (d_model, n_head, d_head) tensor; ours are fused ``nn.Linear`` weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import KeyMap, KeyRule, rename
from word2bert.models.base import EncoderOutput, PretrainedConfig, PretrainedModel
from word2bert.models.pretraining import PreTrainingModel
from word2bert.nn.relative import (
    RelativeMultiHeadAttention,
    RelativeTransformer,
    check_memory_length,
)
from word2bert.nn.transformer import ACTIVATIONS, get_activation
from word2bert.objectives.permutation_lm import PermutationLanguageModeling

IGNORE_INDEX = -100


class RelativeStackConfig:
    """What :class:`XLNetConfig` and Transformer-XL's config share: the encoder-interface names of
    their sizes (both spell them as transformers does: ``d_model``, ``n_layer``, ``n_head``) and the
    checks of a relative stack's fields (``vocab_size``, sizes, ``mem_len``, ``clamp_len``)."""

    @property
    def hidden_size(self) -> int:
        return self.d_model

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layer

    @property
    def num_attention_heads(self) -> int:
        return self.n_head

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    @property
    def hidden_dropout_prob(self) -> float:
        return self.dropout

    @property
    def max_position_embeddings(self) -> int:
        """Relative positions have no limit; this is only what ``encode`` truncates to by default."""
        return 512

    def check_relative_stack(self) -> None:
        """Positive sizes, ``d_model`` a multiple of ``n_head`` and even (sinusoids come in sin/cos
        pairs), ``mem_len`` >= 0, ``clamp_len`` positive or -1 (none)."""
        name = type(self).__name__
        self.require_positive_ints("vocab_size", "d_model", "n_layer", "n_head", "d_inner")
        self.require_divisible("d_model", "n_head")
        if self.d_model % 2:
            raise Word2BertError(f"{name}.d_model={self.d_model} must be even (sinusoidal relative positions)")
        check_memory_length(self.mem_len, f"{name}.mem_len")
        if isinstance(self.clamp_len, bool) or not isinstance(self.clamp_len, int) or (
                self.clamp_len < 1 and self.clamp_len != -1):
            raise Word2BertError(f"{name}.clamp_len={self.clamp_len!r} must be a positive integer or -1")


@dataclass
class XLNetConfig(RelativeStackConfig, PretrainedConfig):
    """XLNet hyper-parameters with Hugging Face's names and defaults (xlnet-large-cased), plus
    ``untie_r`` (transformers always unties the r_w / r_r / r_s biases; False shares one set across
    layers, as the reference code's default). ``mem_len`` (512, as transformers' current default) is
    never "off" by accident: 0 means no memory, and the memory is always returned as ``state``.

    ``attn_type``: "bi" (XLNet) or "uni" (causal, Transformer-XL). ``clamp_len``: relative distances
    beyond it share one encoding (-1: none). ``reuse_len``: how many tokens of each segment go to the
    memory (None: all). ``bi_data``: the second half of every batch is read backwards.
    """

    model_type = "xlnet"

    vocab_size: int = 32000
    d_model: int = 1024
    n_layer: int = 24
    n_head: int = 16
    d_inner: int = 4096
    ff_activation: str = "gelu"
    untie_r: bool = True
    attn_type: str = "bi"
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    mem_len: int = 512
    reuse_len: int | None = None
    use_mems_eval: bool = True
    use_mems_train: bool = False
    bi_data: bool = False
    clamp_len: int = -1
    same_length: bool = False
    summary_type: str = "last"
    summary_use_proj: bool = True
    summary_activation: str = "tanh"
    summary_last_dropout: float = 0.1
    start_n_top: int = 5
    end_n_top: int = 5
    pad_token_id: int = 5
    bos_token_id: int = 1
    eos_token_id: int = 2

    def validate(self) -> None:
        self.check_relative_stack()
        if self.reuse_len is not None and (isinstance(self.reuse_len, bool) or not isinstance(self.reuse_len, int)
                                           or self.reuse_len < 0):
            raise Word2BertError(f"XLNetConfig.reuse_len={self.reuse_len!r} must be an integer >= 0 or null")
        if self.attn_type not in ("bi", "uni"):
            raise Word2BertError(f"XLNetConfig.attn_type={self.attn_type!r} must be 'bi' or 'uni'")
        if self.same_length and self.attn_type != "uni":
            raise Word2BertError("XLNetConfig.same_length=true needs attn_type='uni'")
        self.require_probabilities("dropout")
        self.require_positive_floats("layer_norm_eps", "initializer_range")
        if self.ff_activation not in ACTIVATIONS:
            get_activation(self.ff_activation)

    @classmethod
    def hf_fields_in(cls, data: dict) -> dict:
        """transformers' ``mem_len: null`` (no memory) is our 0; ``d_head`` must agree with the sizes."""
        if data.get("mem_len", 0) is None:
            data["mem_len"] = 0
        d_head, d_model, n_head = data.get("d_head"), data.get("d_model"), data.get("n_head")
        if d_head is not None and d_model is not None and n_head is not None and d_head * n_head != d_model:
            raise Word2BertError(f"config d_head={d_head} x n_head={n_head} != d_model={d_model}")
        return data

    def hf_fields_out(self, data: dict) -> dict:
        data["d_head"] = self.d_head
        data["tie_word_embeddings"] = True
        return data


def init_xlnet_weights(module: nn.Module, std: float) -> None:
    """transformers' / the reference's initialisation: every weight ~ N(0, std^2), biases 0, LayerNorm 1/0."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, RelativeMultiHeadAttention):
        for name in ("content_bias", "position_bias", "segment_bias", "segment_embed"):
            parameter = module._parameters.get(name)
            if parameter is not None:
                nn.init.normal_(parameter, mean=0.0, std=std)


class XLNetModel(PretrainedModel):
    """The XLNet encoder: word embeddings -> :class:`~word2bert.nn.relative.RelativeTransformer`.

    ``forward`` follows the encoder interface; ``state`` is the memory (transformers' ``mems``), one
    (B, M, d) tensor per layer. ``extra_input_keys`` lets a pre-training model pass the permutation
    inputs through.
    """

    config_class = XLNetConfig
    base_model_prefix = "transformer"
    hf_architecture = "XLNetModel"
    is_encoder = True
    extra_input_keys = ("perm_mask", "target_mapping", "query_positions", "query_valid")

    def __init__(self, config: XLNetConfig):
        super().__init__()
        if not isinstance(config, XLNetConfig):
            raise Word2BertError(f"XLNetModel needs an XLNetConfig, got {type(config).__name__}")
        self.config = config
        self.word_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.mask_emb = nn.Parameter(torch.zeros(1, 1, config.d_model))
        self.encoder = RelativeTransformer(
            num_layers=config.n_layer, hidden_size=config.d_model, num_heads=config.n_head,
            intermediate_size=config.d_inner, activation=config.ff_activation, dropout=config.dropout,
            layer_norm_eps=config.layer_norm_eps, untie_biases=config.untie_r, use_segments=True,
            mem_len=config.mem_len, reuse_len=config.reuse_len, clamp_len=config.clamp_len,
            same_length=config.same_length, bi_data=config.bi_data, causal=config.attn_type == "uni")
        self.dropout = nn.Dropout(config.dropout)
        self.apply(lambda module: init_xlnet_weights(module, config.initializer_range))
        nn.init.normal_(self.mask_emb, std=config.initializer_range)

    @classmethod
    def hf_key_map(cls, config: XLNetConfig) -> KeyMap:
        return KeyMap(xlnet_encoder_rules(config), prefix="transformer.")

    def get_input_embeddings(self) -> nn.Embedding:
        return self.word_embedding

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, *, position_ids=None, state=None,
                read_positions: torch.Tensor | None = None, output_hidden_states: bool = False,
                perm_mask: torch.Tensor | None = None, target_mapping: torch.Tensor | None = None,
                query_positions: torch.Tensor | None = None, query_valid: torch.Tensor | None = None,
                mems=None) -> EncoderOutput:
        """Encode ``input_ids`` (B, T), continuing from ``state`` (the memory of the previous segment).

        ``attention_mask``: (B, T) with 1 = token, 0 = padding; or a boolean (B, T, T) *permutation*
        mask, True where position i may see position j in the factorisation order (the query stream's
        view; the content stream also sees itself). ``perm_mask`` (B, T, T): transformers' form of the
        same, 1 = may NOT see. The query stream runs at ``query_positions`` (B, Q) (``query_valid``
        False marks padding rows), or at the one-hot rows of ``target_mapping`` (B, Q, T) as in
        transformers; then ``last_hidden_state`` is the query stream (B, Q, d). ``read_positions``
        (B, Q) computes the content stream's last layer only at those positions. ``pooled`` is the
        last non-padding token's vector (XLNet's "last" summary). ``mems`` is transformers' name of
        ``state``.
        """
        if position_ids is not None:
            raise Word2BertError("XLNet uses relative positions; position_ids are not supported")
        if state is None:
            state = mems
        if input_ids.dim() != 2:
            raise Word2BertError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        batch, seq_len = input_ids.shape
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size):
            raise Word2BertError(f"input_ids must lie in [0, vocab_size={self.config.vocab_size})")
        key_padding, permutation_blocked = _split_attention_mask(attention_mask, perm_mask, batch, seq_len)
        if target_mapping is not None:
            if query_positions is not None:
                raise Word2BertError("give target_mapping or query_positions, not both")
            query_positions, query_valid = target_mapping_positions(target_mapping, seq_len)
        query = None
        if query_positions is not None:
            query_positions = query_positions.long()
            if query_positions.dim() != 2 or query_positions.shape[0] != batch:
                raise Word2BertError(f"query_positions must be (batch, predictions), got {tuple(query_positions.shape)}")
            _check_positions(query_positions, seq_len, "query_positions")
            query = self.dropout(self.mask_emb.expand(batch, query_positions.shape[1], -1))
            read_positions = None  # the rows read are the query stream's
        if read_positions is not None:
            read_positions = read_positions.long()
            _check_positions(read_positions, seq_len, "read_positions")
        if state is not None:
            state = list(state)
            if len(state) != self.config.n_layer:
                raise Word2BertError(f"state holds memory for {len(state)} layers; the model has {self.config.n_layer}")
            if any(m is not None and m.shape[0] != batch for m in state):
                raise Word2BertError("the memory (state) was built for another batch size")
        hidden = self.dropout(self.word_embedding(input_ids))
        output = self.encoder(hidden, memory=state, key_padding=key_padding,
                              permutation_blocked=permutation_blocked, segment_ids=token_type_ids, query=query,
                              query_positions=query_positions, query_valid=query_valid,
                              read_positions=read_positions, content_output=query is None,
                              output_hidden_states=output_hidden_states)
        last = self.dropout(output.query if query is not None else output.content)
        pooled = None
        if query is None and read_positions is None:
            pooled = last[torch.arange(batch, device=last.device),
                          _last_token_index(key_padding, batch, seq_len, last.device)]
        return EncoderOutput(last, output.hidden_states, pooled, output.memory)


class XLNetLMOutput:
    """What :class:`XLNetLMHeadModel` returns: ``loss`` (mean NLL over the predicted positions),
    ``stats`` ({"plm_nll": (sum, count), "plm_accuracy": (correct, count)}), ``state`` (the memory;
    ``mems`` in transformers' words), ``hidden`` (the rows the head reads) and ``logits`` (B, Q, V),
    computed when read."""

    def __init__(self, loss, stats, state, hidden, model, hidden_states=None):
        self.loss, self.stats, self.state, self.hidden = loss, stats, state, hidden
        self.hidden_states = hidden_states
        self._model, self._logits = model, None

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None:
            self._logits = self._model.objectives["plm"].logits(self.hidden, self._model)
        return self._logits

    @property
    def mems(self):
        return self.state


class XLNetLMHeadModel(PreTrainingModel):
    """XLNet with its language-model head (the permutation-LM objective): ``logits = g E^T + b``, E the
    word embeddings (tied), b the objective's bias (transformers' ``lm_loss.bias``).

    ``forward(input_ids, ..., perm_mask, target_mapping, labels, state)`` runs the query stream at the
    predicted positions and returns the mean cross-entropy over ``labels`` (-100 ignored); without
    ``target_mapping`` / ``query_positions`` the content stream's rows are scored (transformers' behaviour).
    ``objective`` (a :class:`PermutationLanguageModeling`) sets how batches are built (``collator()``).
    """

    config_class = XLNetConfig
    base_model_prefix = "transformer"
    hf_architecture = "XLNetLMHeadModel"

    def __init__(self, config: XLNetConfig, objective: PermutationLanguageModeling | None = None):
        if not isinstance(config, XLNetConfig):
            raise Word2BertError(f"XLNetLMHeadModel needs an XLNetConfig, got {type(config).__name__}")
        if objective is None:
            objective = PermutationLanguageModeling(config.vocab_size)
        elif objective.bias is None or objective.bias.shape[0] != config.vocab_size:
            raise Word2BertError(f"the permutation-LM objective must be built with vocab_size={config.vocab_size}")
        super().__init__(config, XLNetModel(config), {"plm": objective})

    @classmethod
    def hf_key_map(cls, config: XLNetConfig) -> KeyMap:
        rules = xlnet_encoder_rules(config, "transformer.", "transformer.")
        rules.append(rename("objectives.plm.bias", "lm_loss.bias", required=False))
        return KeyMap(rules, prefix="transformer.")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, *, state=None, perm_mask=None, target_mapping=None,
                query_positions=None, query_valid=None, labels: torch.Tensor | None = None,
                output_hidden_states: bool = False, mems=None) -> XLNetLMOutput:
        """See :meth:`XLNetModel.forward`; ``labels`` (B, Q) for the query rows, or (B, T) without them."""
        encoded = self.transformer(input_ids, attention_mask, token_type_ids, state=state, perm_mask=perm_mask,
                                   target_mapping=target_mapping, query_positions=query_positions,
                                   query_valid=query_valid, output_hidden_states=output_hidden_states, mems=mems)
        hidden = encoded.last_hidden_state
        loss, stats = None, {}
        if labels is not None:
            result = self.objectives["plm"](hidden, {"labels": labels}, self)
            loss = result.loss
            stats = {f"plm_{name}": value for name, value in result.stats.items()}
        return XLNetLMOutput(loss, stats, encoded.state, hidden, self, encoded.hidden_states)


# --------------------------------------------------------------------------- inputs

def target_mapping_positions(target_mapping: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' ``target_mapping`` (B, Q, T), one-hot rows (all-zero rows are padding) ->
    ``(positions (B, Q), valid (B, Q))``."""
    if target_mapping.dim() != 3 or target_mapping.shape[2] != seq_len:
        raise Word2BertError(f"target_mapping must be (batch, predictions, {seq_len}), got "
                             f"{tuple(target_mapping.shape)}")
    row_sums = target_mapping.sum(-1)
    nonzero = (target_mapping != 0).sum(-1)
    if bool((nonzero > 1).any()) or bool(((row_sums != 1) & (nonzero == 1)).any()):
        raise Word2BertError("every target_mapping row must be one-hot (a single 1) or all zeros")
    return target_mapping.argmax(-1), nonzero == 1


def _check_positions(positions: torch.Tensor, seq_len: int, name: str) -> None:
    if positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= seq_len):
        raise Word2BertError(f"{name} must index into the sequence length {seq_len}")


def _split_attention_mask(attention_mask, perm_mask, batch: int, seq_len: int):
    """-> (key_padding (B, T) bool or None, permutation_blocked (B, T, T) bool or None)."""
    key_padding = permutation_blocked = None
    if attention_mask is not None:
        if attention_mask.dim() == 2:
            if tuple(attention_mask.shape) != (batch, seq_len):
                raise Word2BertError(f"attention_mask of shape {tuple(attention_mask.shape)} does not match the "
                                     f"input ({batch}, {seq_len})")
            key_padding = attention_mask.bool()
            if bool(key_padding.all()):
                key_padding = None
        elif attention_mask.dim() == 3:
            if attention_mask.dtype != torch.bool:
                raise Word2BertError("a 3-D attention_mask must be boolean (True = may attend)")
            if tuple(attention_mask.shape) != (batch, seq_len, seq_len):
                raise Word2BertError(f"attention_mask of shape {tuple(attention_mask.shape)} is not "
                                     f"({batch}, {seq_len}, {seq_len})")
            permutation_blocked = ~attention_mask
        else:
            raise Word2BertError(f"attention_mask must be (B,T) or (B,T,T), got shape {tuple(attention_mask.shape)}")
    if perm_mask is not None:
        if tuple(perm_mask.shape) != (batch, seq_len, seq_len):
            raise Word2BertError(f"perm_mask of shape {tuple(perm_mask.shape)} is not ({batch}, {seq_len}, {seq_len})")
        blocked = perm_mask.bool() if perm_mask.dtype == torch.bool else perm_mask > 0
        permutation_blocked = blocked if permutation_blocked is None else permutation_blocked | blocked
    return key_padding, permutation_blocked


def _last_token_index(key_padding, batch: int, seq_len: int, device) -> torch.Tensor:
    """The index of each row's last real token (right padding), or T-1."""
    if key_padding is None:
        return torch.full((batch,), seq_len - 1, dtype=torch.long, device=device)
    positions = torch.arange(seq_len, device=device)
    return torch.where(key_padding, positions, -1).max(dim=1).values.clamp(min=0)


# --------------------------------------------------------------------------- Hugging Face key mapping

def _projection_rule(ours: str, theirs: str, d: int, heads: int, head_size: int, out: bool = False) -> KeyRule:
    """transformers keeps a projection as a (d_model, n_head, d_head) tensor used as ``x . W`` (or, for the
    output projection ``o``, as ``attn . o^T``); ours is an ``nn.Linear`` weight (out, in)."""
    if out:  # out_proj.weight (d, n*d_h) = o.reshape(d, n*d_h)
        return KeyRule(ours, (theirs,), lambda t: t[0].reshape(d, d).contiguous(),
                       lambda t, count: [t.reshape(d, heads, head_size).contiguous()])
    return KeyRule(ours, (theirs,), lambda t: t[0].reshape(d, d).t().contiguous(),
                   lambda t, count: [t.t().reshape(d, heads, head_size).contiguous()])


def _qkv_rule(ours: str, theirs: tuple[str, str, str], d: int, heads: int, head_size: int) -> KeyRule:
    """Our fused ``qkv_proj.weight`` (3d, d) = [q; k; v] each reshaped to (d, d) and transposed."""
    return KeyRule(ours, theirs, lambda t: torch.cat([x.reshape(d, d).t() for x in t], 0).contiguous(),
                   lambda t, count: [c.t().reshape(d, heads, head_size).contiguous() for c in t.split(d, 0)])


def _tied_rule(ours: str, theirs: tuple[str, ...]) -> KeyRule:
    """One shared bias (untie_r=false) <-> a copy in every layer; unequal copies cannot be tied."""

    def to_ours(tensors):
        if any(not torch.equal(tensors[0], t) for t in tensors[1:]):
            raise Word2BertError(f"the checkpoint's layers have different {theirs[0].rsplit('.', 1)[-1]} values "
                                 "but the config ties them (untie_r=false); set untie_r=true")
        return tensors[0]

    return KeyRule(ours, theirs, to_ours, lambda t, count: [t] * count)


def xlnet_encoder_rules(config: XLNetConfig, ours_prefix: str = "", theirs_prefix: str = "") -> list[KeyRule]:
    """Our XLNetModel keys <-> transformers' XLNetModel keys.

    ========================================  ==============================================
    transformers                              word2bert
    ========================================  ==============================================
    word_embedding, mask_emb                  word_embedding, mask_emb
    layer.i.rel_attn.q / k / v                encoder.layers.i.attention.qkv_proj (fused)
    layer.i.rel_attn.r / o                    encoder.layers.i.attention.position_proj / out_proj
    layer.i.rel_attn.r_w_bias / r_r_bias      encoder.layers.i.attention.content_bias / position_bias
    layer.i.rel_attn.r_s_bias / seg_embed     encoder.layers.i.attention.segment_bias / segment_embed
    layer.i.rel_attn.layer_norm               encoder.layers.i.attention.layer_norm
    layer.i.ff.layer_1 / layer_2 / layer_norm encoder.layers.i.feed_forward.dense_in / dense_out / layer_norm
    ========================================  ==============================================
    """
    d, heads, head_size = config.d_model, config.n_head, config.d_head
    rules = [rename("word_embedding.weight", "word_embedding.weight"), rename("mask_emb", "mask_emb")]
    biases = (("content_bias", "r_w_bias"), ("position_bias", "r_r_bias"), ("segment_bias", "r_s_bias"))
    for index in range(config.n_layer):
        ours, theirs = f"encoder.layers.{index}.", f"layer.{index}."
        rules += [
            _qkv_rule(f"{ours}attention.qkv_proj.weight", tuple(f"{theirs}rel_attn.{n}" for n in "qkv"),
                      d, heads, head_size),
            _projection_rule(f"{ours}attention.position_proj.weight", f"{theirs}rel_attn.r", d, heads, head_size),
            _projection_rule(f"{ours}attention.out_proj.weight", f"{theirs}rel_attn.o", d, heads, head_size,
                             out=True),
            rename(f"{ours}attention.segment_embed", f"{theirs}rel_attn.seg_embed"),
        ]
        if config.untie_r:
            rules += [rename(f"{ours}attention.{name}", f"{theirs}rel_attn.{hf}") for name, hf in biases]
        for part in ("weight", "bias"):
            rules += [
                rename(f"{ours}attention.layer_norm.{part}", f"{theirs}rel_attn.layer_norm.{part}"),
                rename(f"{ours}feed_forward.dense_in.{part}", f"{theirs}ff.layer_1.{part}"),
                rename(f"{ours}feed_forward.dense_out.{part}", f"{theirs}ff.layer_2.{part}"),
                rename(f"{ours}feed_forward.layer_norm.{part}", f"{theirs}ff.layer_norm.{part}"),
            ]
    if not config.untie_r:  # layer 0 owns the shared biases; the other layers' keys name the same tensors
        rules += [_tied_rule(f"encoder.layers.0.attention.{name}",
                             tuple(f"layer.{i}.rel_attn.{hf}" for i in range(config.n_layer)))
                  for name, hf in biases]
    return [rule.with_prefixes(ours_prefix, theirs_prefix) for rule in rules]


__all__ = [
    "RelativeStackConfig",
    "XLNetConfig",
    "XLNetLMHeadModel",
    "XLNetLMOutput",
    "XLNetModel",
    "target_mapping_positions",
    "xlnet_encoder_rules",
]
