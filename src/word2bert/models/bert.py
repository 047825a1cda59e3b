"""BERT (Devlin et al. 2019): a Transformer encoder over token + segment + position embeddings.

- :class:`BertConfig` uses the Hugging Face field names, so a ``config.json`` from the Hub loads as is.
- :class:`BertModel` is the encoder: embeddings -> :class:`~word2bert.nn.TransformerEncoder` -> pooler.
- :class:`BertForPreTraining` adds the two pre-training heads. The masked-LM head runs **only at the
  masked positions** (gathered before the vocabulary projection), which is most of the speed-up over
  computing vocabulary logits for every token; the next-sentence head reads the pooled ``[CLS]``.

Both load and save Hugging Face checkpoints (``from_pretrained`` / ``save_pretrained``); the key
mapping lives in :mod:`word2bert.interop.huggingface`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write
from word2bert.nn.embeddings import TransformerEmbeddings
from word2bert.nn.transformer import ACTIVATIONS, TransformerEncoder, get_activation, init_transformer_weights

IGNORE_INDEX = -100

# Hugging Face spells learned absolute positions "absolute".
_POSITION_TYPE_ALIASES = {"absolute": "learned", "learned": "learned", "sinusoidal": "sinusoidal"}


@dataclass
class BertConfig:
    """BERT hyper-parameters, with Hugging Face's names and defaults (bert-base-uncased).

    Ours on top of Hugging Face's: ``pre_layer_norm`` (pre-LN blocks instead of BERT's post-LN) and
    ``position_embedding_type`` "learned" (BERT; Hugging Face's "absolute") or "sinusoidal".
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02
    pre_layer_norm: bool = False
    position_embedding_type: str = "learned"

    def __post_init__(self):
        self.position_embedding_type = _POSITION_TYPE_ALIASES.get(
            self.position_embedding_type, self.position_embedding_type
        )
        self.validate()

    def validate(self) -> None:
        """Raise Word2BertError naming the first bad parameter."""
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise Word2BertError(f"BertConfig.{name}={value!r} must be a positive integer")
        if isinstance(self.type_vocab_size, bool) or not isinstance(self.type_vocab_size, int) or self.type_vocab_size < 0:
            raise Word2BertError(f"BertConfig.type_vocab_size={self.type_vocab_size!r} must be an integer >= 0")
        if self.hidden_size % self.num_attention_heads != 0:
            raise Word2BertError(
                f"BertConfig.hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise Word2BertError(f"BertConfig.{name}={value!r} must be in [0, 1)")
        if not isinstance(self.layer_norm_eps, (int, float)) or self.layer_norm_eps <= 0:
            raise Word2BertError(f"BertConfig.layer_norm_eps={self.layer_norm_eps!r} must be > 0")
        if not isinstance(self.initializer_range, (int, float)) or self.initializer_range <= 0:
            raise Word2BertError(f"BertConfig.initializer_range={self.initializer_range!r} must be > 0")
        if self.hidden_act not in ACTIVATIONS:
            get_activation(self.hidden_act)
        if self.position_embedding_type not in ("learned", "sinusoidal"):
            raise Word2BertError(
                f"BertConfig.position_embedding_type={self.position_embedding_type!r} is not supported "
                "(use 'learned' / Hugging Face 'absolute', or 'sinusoidal')"
            )
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise Word2BertError(
                f"BertConfig.pad_token_id={self.pad_token_id!r} must be in [0, vocab_size={self.vocab_size})"
            )

    def to_dict(self) -> dict:
        """All fields as a plain dict (our names; see :meth:`to_hf_dict` for a Hugging Face config.json)."""
        return dataclasses.asdict(self)

    def to_hf_dict(self, architecture: str | None = None) -> dict:
        """The dict written as config.json: Hugging Face keys plus our two extra fields.

        Learned positions are written as Hugging Face's "absolute". A sinusoidal or pre-LN model
        round-trips through word2bert only (transformers' BertModel has neither).
        """
        data = self.to_dict()
        if data["position_embedding_type"] == "learned":
            data["position_embedding_type"] = "absolute"
        data["model_type"] = "bert"
        if architecture:
            data["architectures"] = [architecture]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "BertConfig":
        """Build from a dict such as a Hugging Face config.json, ignoring keys that are not ours."""
        if not isinstance(data, dict):
            raise Word2BertError(f"a BERT config must be a JSON object, got {type(data).__name__}")
        model_type = data.get("model_type", "bert")
        if model_type != "bert":
            raise Word2BertError(f"config has model_type={model_type!r}; only 'bert' checkpoints are supported")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    @classmethod
    def from_json_file(cls, path) -> "BertConfig":
        """Read a config.json (missing or malformed file -> Word2BertError naming it)."""
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
        """Write the config as JSON (Hugging Face compatible, see :meth:`to_hf_dict`), atomically."""
        with atomic_write(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_hf_dict(architecture), handle, indent=2, sort_keys=True)
            handle.write("\n")


@dataclass
class BertOutput:
    """``last_hidden_state`` (B,T,d); ``pooler_output`` (B,d) = tanh(W h_[CLS] + b);
    ``hidden_states`` = (embeddings output, layer_1, ..., layer_L) when asked for."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class PreTrainingOutput:
    """Losses and logits of :class:`BertForPreTraining`; ``mlm_logits`` is (B,P,V) at the masked positions."""

    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    nsp_loss: torch.Tensor | None = None
    mlm_logits: torch.Tensor | None = None
    nsp_logits: torch.Tensor | None = None


class _PretrainedMixin:
    """``from_pretrained`` / ``save_pretrained`` through :mod:`word2bert.interop.huggingface`."""

    hf_architecture = "BertModel"

    @classmethod
    def from_pretrained(cls, directory, **config_overrides):
        """Load a Hugging Face BERT checkpoint directory (config.json + model.safetensors or
        pytorch_model.bin). ``config_overrides`` replace config fields (e.g. ``hidden_dropout_prob=0.0``)."""
        from word2bert.interop.huggingface import load_pretrained

        return load_pretrained(cls, directory, **config_overrides)

    def save_pretrained(self, directory) -> None:
        """Write config.json and model.safetensors with Hugging Face key names, each file atomically."""
        from word2bert.interop.huggingface import save_pretrained

        save_pretrained(self, directory)


class BertPooler(nn.Module):
    """pooled = tanh(W h_[CLS] + b), the sentence vector the NSP head and classifiers read."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(_PretrainedMixin, nn.Module):
    """The BERT encoder: :class:`TransformerEmbeddings` -> :class:`TransformerEncoder` -> :class:`BertPooler`."""

    hf_architecture = "BertModel"

    def __init__(self, config: BertConfig):
        super().__init__()
        if not isinstance(config, BertConfig):
            raise Word2BertError(f"BertModel needs a BertConfig, got {type(config).__name__}")
        self.config = config
        self.embeddings = TransformerEmbeddings(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            max_position_embeddings=config.max_position_embeddings,
            type_vocab_size=config.type_vocab_size,
            layer_norm_eps=config.layer_norm_eps,
            dropout=config.hidden_dropout_prob,
            pad_token_id=config.pad_token_id,
            position_embedding_type=config.position_embedding_type,
        )
        self.encoder = TransformerEncoder(
            num_layers=config.num_hidden_layers,
            hidden_size=config.hidden_size,
            num_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            activation=config.hidden_act,
            hidden_dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
            layer_norm_eps=config.layer_norm_eps,
            pre_layer_norm=config.pre_layer_norm,
        )
        self.pooler = BertPooler(config.hidden_size)
        self.apply(lambda module: init_transformer_weights(module, config.initializer_range))

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> BertOutput:
        """Encode ``input_ids`` (B,T).

        ``attention_mask``: (B,T) with 1 = token, 0 = padding; or a boolean (B,T,T) / (B,1,T,T) mask
        with True where query i may attend to key j (UniLM, XLNet). ``token_type_ids`` default to 0.
        """
        embedded = self.embeddings(input_ids, token_type_ids)
        last_hidden, all_hidden = self.encoder(
            embedded, attention_mask, causal=False, output_hidden_states=output_hidden_states
        )
        return BertOutput(last_hidden, self.pooler(last_hidden), all_hidden)


class BertMaskedLMHead(nn.Module):
    """BERT's masked-LM head on hidden vectors h (N,d), decoder tied to the word embeddings E (V,d)::

        logits = LayerNorm(act(h W_t + b_t)) E^T + b
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = get_activation(config.hidden_act)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        transformed = self.layer_norm(self.activation(self.dense(hidden)))
        return F.linear(transformed, word_embeddings, self.bias)


class BertForPreTraining(_PretrainedMixin, nn.Module):
    """BERT with the masked-LM and next-sentence-prediction heads.

    loss = mean over masked positions of -log p(original token) + mean over pairs of -log p(is-next label),
    each term present only when its labels are given.
    """

    hf_architecture = "BertForPreTraining"

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.mlm_head = BertMaskedLMHead(config)
        self.nsp_head = nn.Linear(config.hidden_size, 2)
        self.mlm_head.apply(lambda module: init_transformer_weights(module, config.initializer_range))
        init_transformer_weights(self.nsp_head, config.initializer_range)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        masked_positions: torch.Tensor | None = None,
        masked_labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
    ) -> PreTrainingOutput:
        """``masked_positions`` (B,P) index into T; ``masked_labels`` (B,P) hold the original ids, -100 for
        padding entries; ``next_sentence_label`` (B,) is 0 = B follows A, 1 = B is random (BERT's and
        Hugging Face's convention). Without ``masked_positions`` the MLM head is not run."""
        if masked_positions is None:
            if masked_labels is not None:
                raise Word2BertError("masked_labels given without masked_positions")
            encoded = self.bert(input_ids, token_type_ids, attention_mask)
            output = PreTrainingOutput(nsp_logits=self.nsp_head(encoded.pooler_output))
        else:
            masked_positions = masked_positions.long()
            seq_len = input_ids.shape[1]
            if masked_positions.dim() != 2 or masked_positions.shape[0] != input_ids.shape[0]:
                raise Word2BertError(
                    f"masked_positions must be (batch, predictions), got shape {tuple(masked_positions.shape)}"
                )
            if masked_positions.numel() and (int(masked_positions.min()) < 0 or int(masked_positions.max()) >= seq_len):
                raise Word2BertError(f"masked_positions must index into the sequence length {seq_len}")
            # The heads read only [CLS] (position 0) and the masked positions, so the last layer is
            # computed at those rows only; the vocabulary projection then runs on the masked rows.
            read_positions = torch.cat([masked_positions.new_zeros(masked_positions.shape[0], 1), masked_positions], 1)
            embedded = self.bert.embeddings(input_ids, token_type_ids)
            rows, _ = self.bert.encoder(embedded, attention_mask, last_layer_positions=read_positions)
            output = PreTrainingOutput(nsp_logits=self.nsp_head(self.bert.pooler(rows)))
            output.mlm_logits = self.mlm_head(rows[:, 1:], self.bert.embeddings.word_embeddings.weight)
        losses = []
        if masked_labels is not None:
            if tuple(masked_labels.shape) != tuple(masked_positions.shape):
                raise Word2BertError(
                    f"masked_labels shape {tuple(masked_labels.shape)} != masked_positions shape "
                    f"{tuple(masked_positions.shape)}"
                )
            labels = masked_labels.reshape(-1).long()
            logits = output.mlm_logits.reshape(-1, output.mlm_logits.shape[-1])
            if bool((labels != IGNORE_INDEX).any()):
                output.mlm_loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
            else:  # no prediction in this batch: a zero loss that keeps the graph connected
                output.mlm_loss = logits.sum() * 0.0
            losses.append(output.mlm_loss)
        if next_sentence_label is not None:
            output.nsp_loss = F.cross_entropy(output.nsp_logits, next_sentence_label.reshape(-1).long())
            losses.append(output.nsp_loss)
        if losses:
            output.loss = losses[0] if len(losses) == 1 else losses[0] + losses[1]
        return output

__all__ = [
    "BertConfig",
    "BertForPreTraining",
    "BertMaskedLMHead",
    "BertModel",
    "BertOutput",
    "BertPooler",
    "PreTrainingOutput",
]
