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
transformers' ``XLNetModel`` / ``XLNetLMHeadModel``; :func:`hf_to_word2bert` / :func:`word2bert_to_hf`
convert the state dicts (transformers keeps each projection as a (d_model, n_head, d_head) tensor;
ours are fused ``nn.Linear`` weights).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save, atomic_write
from word2bert.nn.relative import RelativeTransformer, check_memory_length
from word2bert.nn.transformer import ACTIVATIONS, get_activation

IGNORE_INDEX = -100
CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"


@dataclass
class XLNetConfig:
    """XLNet hyper-parameters with Hugging Face's names and defaults (xlnet-large-cased), except
    ``mem_len`` = 512 explicitly non-zero and ``untie_r`` kept as a field (transformers always unties).

    ``attn_type``: "bi" (XLNet) or "uni" (causal, Transformer-XL). ``clamp_len``: relative distances
    beyond it share one encoding (-1: none). ``reuse_len``: how many tokens of each segment go to the
    memory (None: all). ``bi_data``: the second half of every batch is read backwards.
    """

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

    model_type = "xlnet"

    def __post_init__(self):
        self.validate()

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
        """Relative positions have no limit; this is what ``encode`` truncates to by default."""
        return 512

    def validate(self) -> None:
        """Raise Word2BertError naming the first bad parameter."""
        for name in ("vocab_size", "d_model", "n_layer", "n_head", "d_inner"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise Word2BertError(f"XLNetConfig.{name}={value!r} must be a positive integer")
        if self.d_model % self.n_head:
            raise Word2BertError(f"XLNetConfig.d_model={self.d_model} is not divisible by n_head={self.n_head}")
        if self.d_model % 2:
            raise Word2BertError(f"XLNetConfig.d_model={self.d_model} must be even (sinusoidal relative positions)")
        check_memory_length(self.mem_len, "XLNetConfig.mem_len")
        if self.reuse_len is not None and (isinstance(self.reuse_len, bool) or not isinstance(self.reuse_len, int)
                                           or self.reuse_len < 0):
            raise Word2BertError(f"XLNetConfig.reuse_len={self.reuse_len!r} must be an integer >= 0 or null")
        if isinstance(self.clamp_len, bool) or not isinstance(self.clamp_len, int) or (
                self.clamp_len < 1 and self.clamp_len != -1):
            raise Word2BertError(f"XLNetConfig.clamp_len={self.clamp_len!r} must be a positive integer or -1")
        if self.attn_type not in ("bi", "uni"):
            raise Word2BertError(f"XLNetConfig.attn_type={self.attn_type!r} must be 'bi' or 'uni'")
        if self.same_length and self.attn_type != "uni":
            raise Word2BertError("XLNetConfig.same_length=true needs attn_type='uni'")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise Word2BertError(f"XLNetConfig.dropout={self.dropout!r} must be in [0, 1)")
        if not isinstance(self.layer_norm_eps, (int, float)) or self.layer_norm_eps <= 0:
            raise Word2BertError(f"XLNetConfig.layer_norm_eps={self.layer_norm_eps!r} must be > 0")
        if self.ff_activation not in ACTIVATIONS:
            get_activation(self.ff_activation)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_hf_dict(self, architecture: str | None = None) -> dict:
        """config.json contents: transformers' XLNetConfig keys (plus ``untie_r``) and ``model_type``."""
        data = self.to_dict()
        data["model_type"] = self.model_type
        data["d_head"] = self.d_head
        data["tie_word_embeddings"] = True
        if architecture:
            data["architectures"] = [architecture]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "XLNetConfig":
        """Build from a dict such as a Hugging Face config.json, ignoring keys that are not ours."""
        if not isinstance(data, dict):
            raise Word2BertError(f"an XLNet config must be a JSON object, got {type(data).__name__}")
        model_type = data.get("model_type", "xlnet")
        if model_type != "xlnet":
            raise Word2BertError(f"config has model_type={model_type!r}, not 'xlnet'")
        if "d_head" in data and "d_model" in data and "n_head" in data and \
                data["d_head"] * data["n_head"] != data["d_model"]:
            raise Word2BertError(f"config d_head={data['d_head']} x n_head={data['n_head']} != d_model={data['d_model']}")
        names = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        if values.get("mem_len", 0) is None:  # transformers' "no memory"
            values["mem_len"] = 0
        return cls(**values)

    @classmethod
    def from_json_file(cls, path) -> "XLNetConfig":
        path = Path(path)
        if not path.is_file():
            raise Word2BertError(f"config file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise Word2BertError(f"cannot read config file {path}: {error}") from None
        try:
            return cls.from_dict(data)
        except Word2BertError as error:
            raise Word2BertError(f"{path}: {error}") from None
        except TypeError as error:
            raise Word2BertError(f"{path}: bad config value: {error}") from None

    def save(self, path, architecture: str | None = None) -> None:
        with atomic_write(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_hf_dict(architecture), handle, indent=2, sort_keys=True)
            handle.write("\n")


@dataclass
class EncoderOutput:
    """The encoder interface's output. ``last_hidden_state`` is (B, T, d), or (B, Q, d) for the query
    stream / at ``read_positions``; ``pooled`` the last token's vector (XLNet's "last" summary);
    ``state`` the memory for the next segment (one (B, M, d) tensor per layer)."""

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    pooled: torch.Tensor | None = None
    state: list[torch.Tensor] | None = None

    @property
    def pooler_output(self) -> torch.Tensor | None:
        return self.pooled

    @property
    def mems(self) -> list[torch.Tensor] | None:
        """transformers' name of the memory."""
        return self.state


@dataclass
class XLNetLMOutput:
    """``loss``: mean NLL over the predicted positions; ``logits`` (B, Q, V); ``stats`` summable pairs
    ``{"nll": (sum, count), "accuracy": (correct, count)}``; ``state`` the memory."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    stats: dict | None = None
    state: list[torch.Tensor] | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None

    @property
    def mems(self):
        return self.state


def init_xlnet_weights(module: nn.Module, std: float) -> None:
    """transformers' / the reference's initialisation: every weight ~ N(0, std^2), biases 0, LayerNorm 1/0."""
    from word2bert.nn.relative import RelativeMultiHeadAttention

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


class _PretrainedXLNet:
    """``from_pretrained`` / ``save_pretrained`` of Hugging Face XLNet checkpoints."""

    hf_architecture = "XLNetModel"
    base_model_prefix = "transformer"

    @classmethod
    def from_pretrained(cls, directory, **config_overrides):
        """Load a directory holding config.json and model.safetensors / pytorch_model.bin written by
        transformers' XLNetModel / XLNetLMHeadModel (or by us). ``config_overrides`` replace config fields."""
        from word2bert.interop.huggingface import read_state_dict

        directory = Path(directory)
        if not directory.is_dir():
            raise Word2BertError(f"checkpoint directory not found: {directory}")
        config = XLNetConfig.from_json_file(directory / CONFIG_NAME)
        if config_overrides:
            unknown = sorted(set(config_overrides) - set(config.to_dict()))
            if unknown:
                raise Word2BertError(f"unknown XLNetConfig field(s): {', '.join(unknown)}")
            config = XLNetConfig.from_dict({**config.to_dict(), **config_overrides})
        hf_state, path = read_state_dict(directory)
        model = cls(config)
        model.load_hf_state_dict(hf_state, source=path)
        return model

    def save_pretrained(self, directory) -> None:
        """Write config.json and model.safetensors with transformers' key names, each atomically."""
        from safetensors.torch import save_file

        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise Word2BertError(f"cannot create checkpoint directory {directory}: {error}") from None
        tensors = {key: value.cpu() for key, value in self.hf_state_dict().items()}
        atomic_save(directory / SAFETENSORS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
        self.config.save(directory / CONFIG_NAME, architecture=self.hf_architecture)


class XLNetModel(_PretrainedXLNet, nn.Module):
    """The XLNet encoder: word embeddings -> :class:`~word2bert.nn.relative.RelativeTransformer`.

    ``forward`` follows the encoder interface; ``state`` is the memory (transformers' ``mems``).
    """

    hf_architecture = "XLNetModel"

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
        (B, Q) computes the content stream's last layer only at those positions.
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
        last = output.query if query is not None else output.content
        last = self.dropout(last)
        pooled = None
        if query is None and read_positions is None:
            pooled = last[torch.arange(batch, device=last.device), _last_token_index(key_padding, batch, seq_len,
                                                                                     last.device)]
        return EncoderOutput(last, output.hidden_states, pooled, output.memory)

    # ------------------------------------------------------------------ Hugging Face weights
    def hf_state_dict(self, prefix: str = "") -> dict:
        return word2bert_to_hf(self.state_dict(), self.config, prefix, ours_prefix="")

    def load_hf_state_dict(self, hf_state: dict, source="checkpoint") -> None:
        base = "transformer." if any(key.startswith("transformer.") for key in hf_state) else ""
        state = hf_to_word2bert(hf_state, self.config, base, ours_prefix="", source=source)
        _load_checked(self, state, source)


class XLNetLMHeadModel(_PretrainedXLNet, nn.Module):
    """XLNet with its language-model head: ``logits = g E^T + b`` (E the word embeddings, tied).

    ``forward(..., labels=...)`` returns the mean cross-entropy over the predicted positions (labels
    -100 are ignored): the permutation LM loss when the query stream runs at the targets.
    """

    hf_architecture = "XLNetLMHeadModel"

    def __init__(self, config: XLNetConfig):
        super().__init__()
        self.config = config
        self.transformer = XLNetModel(config)
        self.lm_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.word_embedding

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, *, state=None, perm_mask=None, target_mapping=None,
                query_positions=None, query_valid=None, labels: torch.Tensor | None = None,
                output_hidden_states: bool = False, mems=None) -> XLNetLMOutput:
        """See :meth:`XLNetModel.forward`; ``labels`` (B, Q) for the query rows, or (B, T) without them."""
        encoded = self.transformer(input_ids, attention_mask, token_type_ids, state=state, perm_mask=perm_mask,
                                   target_mapping=target_mapping, query_positions=query_positions,
                                   query_valid=query_valid, output_hidden_states=output_hidden_states, mems=mems)
        logits = F.linear(encoded.last_hidden_state, self.transformer.word_embedding.weight, self.lm_bias)
        output = XLNetLMOutput(logits=logits, state=encoded.state, hidden_states=encoded.hidden_states)
        if labels is not None:
            if tuple(labels.shape) != tuple(logits.shape[:2]):
                raise Word2BertError(f"labels of shape {tuple(labels.shape)} do not match the predicted rows "
                                     f"{tuple(logits.shape[:2])}")
            output.loss, output.stats = language_model_loss(logits, labels)
        return output

    def hf_state_dict(self) -> dict:
        out = word2bert_to_hf(self.state_dict(), self.config, "transformer.", ours_prefix="transformer.")
        out["lm_loss.bias"] = self.lm_bias.detach().clone()
        out["lm_loss.weight"] = self.transformer.word_embedding.weight.detach().clone()
        return out

    def load_hf_state_dict(self, hf_state: dict, source="checkpoint") -> None:
        base = "transformer." if any(key.startswith("transformer.") for key in hf_state) else ""
        state = hf_to_word2bert(hf_state, self.config, base, ours_prefix="transformer.", source=source)
        if "lm_loss.bias" in hf_state:
            state["lm_bias"] = hf_state["lm_loss.bias"]
        else:
            warnings.warn(f"{source}: no lm_loss.bias; the output bias starts at zero", stacklevel=3)
        _load_checked(self, state, source)


def language_model_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Mean of ``-log softmax(logits)[label]`` over the labels that are not -100, and the summable
    statistics ``nll`` = (sum, count) and ``accuracy`` = (correct, count)."""
    flat_logits = logits.reshape(-1, logits.shape[-1]).float()
    flat_labels = labels.reshape(-1).long()
    keep = flat_labels != IGNORE_INDEX
    count = int(keep.sum())
    if count == 0:  # nothing predicted in this batch: a zero loss that keeps the graph connected
        zero = flat_logits.sum() * 0.0
        return zero, {"nll": (0.0, 0), "accuracy": (0, 0)}
    nll_sum = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX, reduction="sum")
    with torch.no_grad():
        correct = int((flat_logits.argmax(-1)[keep] == flat_labels[keep]).sum())
    return nll_sum / count, {"nll": (float(nll_sum.detach()), count), "accuracy": (correct, count)}


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

def _layer_renames(index: int) -> list[tuple[str, str]]:
    """(ours, transformers') keys of one layer that map one to one."""
    ours, theirs = f"encoder.layers.{index}.", f"layer.{index}."
    return [
        (f"{ours}attention.content_bias", f"{theirs}rel_attn.r_w_bias"),
        (f"{ours}attention.position_bias", f"{theirs}rel_attn.r_r_bias"),
        (f"{ours}attention.segment_bias", f"{theirs}rel_attn.r_s_bias"),
        (f"{ours}attention.segment_embed", f"{theirs}rel_attn.seg_embed"),
        (f"{ours}attention.layer_norm.weight", f"{theirs}rel_attn.layer_norm.weight"),
        (f"{ours}attention.layer_norm.bias", f"{theirs}rel_attn.layer_norm.bias"),
        (f"{ours}feed_forward.dense_in.weight", f"{theirs}ff.layer_1.weight"),
        (f"{ours}feed_forward.dense_in.bias", f"{theirs}ff.layer_1.bias"),
        (f"{ours}feed_forward.dense_out.weight", f"{theirs}ff.layer_2.weight"),
        (f"{ours}feed_forward.dense_out.bias", f"{theirs}ff.layer_2.bias"),
        (f"{ours}feed_forward.layer_norm.weight", f"{theirs}ff.layer_norm.weight"),
        (f"{ours}feed_forward.layer_norm.bias", f"{theirs}ff.layer_norm.bias"),
    ]


def hf_to_word2bert(hf_state: dict, config: XLNetConfig, prefix: str = "", ours_prefix: str = "",
                    source="checkpoint") -> dict:
    """transformers' XLNet keys (under ``prefix``, e.g. "transformer.") -> ours (under ``ours_prefix``).

    Their projections are (d_model, n_head, d_head) tensors used as ``x . W``; ours are ``nn.Linear``
    weights (out, in): ``W_q -> q.reshape(d, d).T``, stacked with k and v into ``qkv_proj``;
    ``r -> position_proj``; the output projection ``o`` (d, n, d_h) is used as ``attn . o^T``, so
    ``out_proj.weight = o.reshape(d, d)``.
    """
    d = config.d_model
    state, missing = {}, []

    def get(key):
        full = prefix + key
        if full not in hf_state:
            missing.append(full)
            return None
        return hf_state[full]

    embedding, mask_emb = get("word_embedding.weight"), get("mask_emb")
    if embedding is not None:
        state[ours_prefix + "word_embedding.weight"] = embedding
    if mask_emb is not None:
        state[ours_prefix + "mask_emb"] = mask_emb
    for index in range(config.n_layer):
        for ours, theirs in _layer_renames(index):
            value = get(theirs)
            if value is not None:
                state[ours_prefix + ours] = value
        projections = {name: get(f"layer.{index}.rel_attn.{name}") for name in ("q", "k", "v", "o", "r")}
        if any(value is None for value in projections.values()):
            continue
        layer = f"{ours_prefix}encoder.layers.{index}.attention."
        state[layer + "qkv_proj.weight"] = torch.cat([projections[name].reshape(d, d).t() for name in "qkv"], 0)
        state[layer + "position_proj.weight"] = projections["r"].reshape(d, d).t()
        state[layer + "out_proj.weight"] = projections["o"].reshape(d, d)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise Word2BertError(f"{source}: not an XLNet checkpoint matching its config.json: "
                             f"{len(missing)} weights missing ({shown})")
    if not config.untie_r:
        for name in ("content_bias", "position_bias", "segment_bias"):
            values = [state[f"{ours_prefix}encoder.layers.{i}.attention.{name}"] for i in range(config.n_layer)]
            if any(not torch.equal(values[0], value) for value in values[1:]):
                raise Word2BertError(f"{source}: the layers have different {name} values but the config ties "
                                     "them (untie_r=false); set untie_r=true")
    return {key: value.contiguous() for key, value in state.items()}


def word2bert_to_hf(state: dict, config: XLNetConfig, prefix: str = "", ours_prefix: str = "") -> dict:
    """Our keys -> transformers' (the inverse of :func:`hf_to_word2bert`); tied biases are written to
    every layer, as transformers keeps one copy per layer."""
    d, heads, head_size = config.d_model, config.n_head, config.d_head
    out = {
        prefix + "word_embedding.weight": state[ours_prefix + "word_embedding.weight"],
        prefix + "mask_emb": state[ours_prefix + "mask_emb"],
    }
    for index in range(config.n_layer):
        for ours, theirs in _layer_renames(index):
            out[prefix + theirs] = state[ours_prefix + ours]
        layer = f"{ours_prefix}encoder.layers.{index}.attention."
        fused = state[layer + "qkv_proj.weight"]
        for name, chunk in zip("qkv", fused.split(d, dim=0)):
            out[f"{prefix}layer.{index}.rel_attn.{name}"] = chunk.t().reshape(d, heads, head_size)
        out[f"{prefix}layer.{index}.rel_attn.r"] = state[layer + "position_proj.weight"].t().reshape(d, heads, head_size)
        out[f"{prefix}layer.{index}.rel_attn.o"] = state[layer + "out_proj.weight"].reshape(d, heads, head_size)
    return {key: value.detach().contiguous().clone() for key, value in out.items()}


def _load_checked(model: nn.Module, state: dict, source) -> None:
    expected = model.state_dict()
    for key, value in state.items():
        if key not in expected:
            continue
        if tuple(value.shape) != tuple(expected[key].shape):
            raise Word2BertError(f"{source}: weight for {key} has shape {tuple(value.shape)} but the config "
                                 f"implies {tuple(expected[key].shape)}")
    missing = [key for key in expected if key not in state]
    if missing:
        raise Word2BertError(f"{source}: no weights for {', '.join(missing[:4])}")
    model.load_state_dict(state, strict=True)


__all__ = [
    "EncoderOutput",
    "XLNetConfig",
    "XLNetLMHeadModel",
    "XLNetLMOutput",
    "XLNetModel",
    "hf_to_word2bert",
    "language_model_loss",
    "target_mapping_positions",
    "word2bert_to_hf",
]
