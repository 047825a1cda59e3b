"""BERT (Devlin et al. 2019): a Transformer encoder over token + segment + position embeddings.

- :class:`BertConfig` uses the Hugging Face field names, so a ``config.json`` from the Hub loads as is.
- :class:`BertModel` is the encoder: embeddings -> :class:`~word2bert.nn.TransformerEncoder` -> pooler.
- :class:`BertForPreTraining` is the encoder + the masked-LM objective + the next-sentence objective
  (a :class:`~word2bert.models.pretraining.PreTrainingModel`). The masked-LM head runs **only at the
  masked positions**, and the last layer is computed only there and at [CLS], which is most of the
  speed-up over transformers.

Both read and write Hugging Face checkpoints (``from_pretrained`` / ``save_pretrained``) through the
key map below; ours has one fused query/key/value matrix per layer where transformers has three.

=====================================================  ==============================================
Hugging Face key                                       word2bert key
=====================================================  ==============================================
embeddings.{word,position,token_type}_embeddings       embeddings.{same}
embeddings.LayerNorm                                   embeddings.layer_norm
encoder.layer.i.attention.self.{query,key,value}       encoder.layers.i.attention.qkv_proj (stacked)
encoder.layer.i.attention.output.dense                 encoder.layers.i.attention.out_proj
encoder.layer.i.attention.output.LayerNorm             encoder.layers.i.attention_norm
encoder.layer.i.intermediate.dense                     encoder.layers.i.feed_forward.dense_in
encoder.layer.i.output.dense                           encoder.layers.i.feed_forward.dense_out
encoder.layer.i.output.LayerNorm                       encoder.layers.i.feed_forward_norm
pooler.dense                                           pooler.dense
cls.predictions.transform.dense / .LayerNorm           objectives.mlm.head.dense / .layer_norm
cls.predictions.bias (decoder tied to embeddings)      objectives.mlm.head.bias
cls.seq_relationship                                   objectives.nsp.head
=====================================================  ==============================================

transformers' task and pre-training models prefix the encoder with ``bert.``; a bare BertModel does
not. Both load into either of our classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import KeyMap, concat, rename
from word2bert.models.base import EncoderOutput, PretrainedConfig, PretrainedModel
from word2bert.models.pretraining import PreTrainingModel, PreTrainingOutput
from word2bert.nn.embeddings import TransformerEmbeddings
from word2bert.nn.transformer import ACTIVATIONS, TransformerEncoder, get_activation, init_transformer_weights
from word2bert.objectives.mlm import MaskedLM, MaskedLMHead, MaskedLMObjective
from word2bert.objectives.nsp import NextSentencePrediction

IGNORE_INDEX = -100

# Hugging Face spells learned absolute positions "absolute".
_POSITION_TYPE_ALIASES = {"absolute": "learned", "learned": "learned", "sinusoidal": "sinusoidal"}


@dataclass
class BertConfig(PretrainedConfig):
    """BERT hyper-parameters, with Hugging Face's names and defaults (bert-base-uncased).

    Ours on top of Hugging Face's: ``pre_layer_norm`` (pre-LN blocks instead of BERT's post-LN) and
    ``position_embedding_type`` "learned" (BERT; Hugging Face's "absolute") or "sinusoidal".
    """

    model_type = "bert"

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
            self.position_embedding_type, self.position_embedding_type)
        super().__post_init__()

    def validate(self) -> None:
        self.require_positive_ints("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                   "intermediate_size", "max_position_embeddings")
        if isinstance(self.type_vocab_size, bool) or not isinstance(self.type_vocab_size, int) \
                or self.type_vocab_size < 0:
            raise Word2BertError(f"BertConfig.type_vocab_size={self.type_vocab_size!r} must be an integer >= 0")
        self.require_divisible("hidden_size", "num_attention_heads")
        self.require_probabilities("hidden_dropout_prob", "attention_probs_dropout_prob")
        self.require_positive_floats("layer_norm_eps", "initializer_range")
        if self.hidden_act not in ACTIVATIONS:
            get_activation(self.hidden_act)
        if self.position_embedding_type not in ("learned", "sinusoidal"):
            raise Word2BertError(
                f"BertConfig.position_embedding_type={self.position_embedding_type!r} is not supported "
                "(use 'learned' / Hugging Face 'absolute', or 'sinusoidal')")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise Word2BertError(
                f"BertConfig.pad_token_id={self.pad_token_id!r} must be in [0, vocab_size={self.vocab_size})")

    def hf_fields_out(self, data: dict) -> dict:
        if data["position_embedding_type"] == "learned":
            data["position_embedding_type"] = "absolute"
        return data

    def hf_incompatibilities(self) -> list[str]:
        problems = []
        if self.pre_layer_norm:
            problems.append("pre_layer_norm")
        if self.position_embedding_type != "learned":
            problems.append("sinusoidal positions")
        return problems


BertOutput = EncoderOutput  # the name of earlier releases


def bert_encoder_rules(config: BertConfig, ours: str = "", theirs: str = "") -> list:
    """Key rules of a bare BERT encoder (embeddings, layers, pooler), with key prefixes."""
    rules = [
        rename("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
        rename("embeddings.layer_norm.weight", "embeddings.LayerNorm.weight"),
        rename("embeddings.layer_norm.bias", "embeddings.LayerNorm.bias"),
    ]
    if config.position_embedding_type == "learned":
        rules.append(rename("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight"))
    if config.type_vocab_size > 0:
        rules.append(rename("embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight"))
    for i in range(config.num_hidden_layers):
        mine, hf_layer = f"encoder.layers.{i}.", f"encoder.layer.{i}."
        for param in ("weight", "bias"):
            rules += [
                concat(f"{mine}attention.qkv_proj.{param}",
                       [f"{hf_layer}attention.self.{part}.{param}" for part in ("query", "key", "value")]),
                rename(f"{mine}attention.out_proj.{param}", f"{hf_layer}attention.output.dense.{param}"),
                rename(f"{mine}attention_norm.{param}", f"{hf_layer}attention.output.LayerNorm.{param}"),
                rename(f"{mine}feed_forward.dense_in.{param}", f"{hf_layer}intermediate.dense.{param}"),
                rename(f"{mine}feed_forward.dense_out.{param}", f"{hf_layer}output.dense.{param}"),
                rename(f"{mine}feed_forward_norm.{param}", f"{hf_layer}output.LayerNorm.{param}"),
            ]
    if config.pre_layer_norm:  # not a Hugging Face BERT feature: our own key, read back by us only
        rules += [rename("encoder.final_norm.weight", "encoder.final_norm.weight"),
                  rename("encoder.final_norm.bias", "encoder.final_norm.bias")]
    rules += [rename("pooler.dense.weight", "pooler.dense.weight", required=False),
              rename("pooler.dense.bias", "pooler.dense.bias", required=False)]
    return [rule.with_prefixes(ours, theirs) for rule in rules]


class BertPooler(nn.Module):
    """pooled = tanh(W h_[CLS] + b), the sentence vector the NSP head and classifiers read."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(PretrainedModel):
    """The BERT encoder: :class:`TransformerEmbeddings` -> :class:`TransformerEncoder` -> :class:`BertPooler`."""

    config_class = BertConfig
    base_model_prefix = "bert"
    hf_architecture = "BertModel"
    is_encoder = True

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

    @classmethod
    def hf_key_map(cls, config: BertConfig) -> KeyMap:
        return KeyMap(bert_encoder_rules(config), prefix="bert.")

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        state=None,
        read_positions: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        """Encode ``input_ids`` (B, T) (the encoder contract of :mod:`word2bert.models.base`).

        ``attention_mask``: (B, T) with 1 = token, 0 = padding; or a boolean (B, T, T) / (B, 1, T, T)
        mask with True where query i may attend to key j (UniLM, XLNet). ``token_type_ids`` default
        to 0. With ``read_positions`` (B, Q) the last layer is computed at those rows only and
        ``pooled`` is not computed (the pooler reads position 0, which need not be among them).
        BERT carries no ``state``.
        """
        if state is not None:
            raise Word2BertError("BERT carries no state between batches")
        if position_ids is None:
            embedded = self.embeddings(input_ids, token_type_ids)
        else:
            embedded = self.embeddings(input_ids, token_type_ids, position_ids=position_ids)
        last_hidden, all_hidden = self.encoder(
            embedded, attention_mask, causal=False, output_hidden_states=output_hidden_states,
            last_layer_positions=read_positions)
        pooled = self.pooler(last_hidden) if read_positions is None else None
        return EncoderOutput(last_hidden, all_hidden, pooled)


# Earlier releases had this head here; it is the masked-LM objective's head.
BertMaskedLMHead = MaskedLMHead


class BertForPreTraining(PreTrainingModel):
    """BERT with the masked-LM and next-sentence-prediction objectives (``next_sentence=False``: MLM only).

    loss = mean over masked positions of -log p(original token) + mean over pairs of -log p(is-next label),
    each term present only when its labels are given. ``masking`` (a :class:`MaskedLM`) is needed only to
    build batches with :meth:`collator`; the keyword arguments are those of the collated batch:
    ``masked_positions`` (B, P) index into T, ``masked_labels`` (B, P) hold the original ids (-100 for
    unused slots), ``next_sentence_label`` (B,) is 0 = B follows A, 1 = B is random.
    """

    config_class = BertConfig
    base_model_prefix = "bert"
    hf_architecture = "BertForPreTraining"

    def __init__(self, config: BertConfig, masking: MaskedLM | None = None, next_sentence: bool = True):
        objectives = {"mlm": MaskedLMObjective(
            MaskedLMHead(config.hidden_size, config.vocab_size, config.hidden_act, config.layer_norm_eps), masking)}
        if next_sentence:
            objectives["nsp"] = NextSentencePrediction(nn.Linear(config.hidden_size, 2))
        super().__init__(config, BertModel(config), objectives)
        for objective in self.objectives.values():
            objective.apply(lambda module: init_transformer_weights(module, config.initializer_range))

    @classmethod
    def hf_key_map(cls, config: BertConfig) -> KeyMap:
        heads = [
            rename("objectives.mlm.head.dense.weight", "cls.predictions.transform.dense.weight", required=False),
            rename("objectives.mlm.head.dense.bias", "cls.predictions.transform.dense.bias", required=False),
            rename("objectives.mlm.head.layer_norm.weight", "cls.predictions.transform.LayerNorm.weight",
                   required=False),
            rename("objectives.mlm.head.layer_norm.bias", "cls.predictions.transform.LayerNorm.bias",
                   required=False),
            rename("objectives.mlm.head.bias", "cls.predictions.bias", required=False,
                   aliases=["cls.predictions.decoder.bias"]),
            rename("objectives.nsp.head.weight", "cls.seq_relationship.weight", required=False),
            rename("objectives.nsp.head.bias", "cls.seq_relationship.bias", required=False),
        ]
        return KeyMap(bert_encoder_rules(config, "bert.", "bert.") + heads, prefix="bert.")

    @property
    def mlm_head(self) -> MaskedLMHead:
        return self.objectives["mlm"].head

    @property
    def nsp_head(self) -> nn.Linear | None:
        return self.objectives["nsp"].head if "nsp" in self.objectives else None


__all__ = [
    "BertConfig",
    "BertForPreTraining",
    "BertMaskedLMHead",
    "BertModel",
    "BertOutput",
    "BertPooler",
    "PreTrainingOutput",
    "bert_encoder_rules",
]
