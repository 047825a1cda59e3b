"""ALBERT (Lan et al. 2020): a BERT with fewer parameters, trained with sentence-order prediction.

* **Factorised embedding**: tokens are embedded in a small space E and projected to the hidden size
  H (``E x V + E x H`` parameters instead of ``H x V``): :class:`~word2bert.nn.TransformerEmbeddings`
  with ``embedding_size=E``.
* **Cross-layer sharing**: ``num_hidden_groups`` groups of weights for ``num_hidden_layers`` layers;
  depth i uses group ``floor(i / (L / G))`` (G = 1: one layer applied L times):
  :class:`~word2bert.nn.TransformerEncoder` with ``num_layer_groups``.
* **Sentence-order prediction** instead of next-sentence prediction
  (:mod:`word2bert.objectives.sop`), **n-gram masking** (:class:`~word2bert.objectives.units.NgramUnits`)
  and a **SentencePiece unigram** vocabulary (:class:`~word2bert.tokenizers.UnigramTokenizer`).

The masked-LM head maps H back to E before the decoder tied to the E-wide embeddings:
``logits = LayerNorm_E(act(h W + b)) E_words^T + bias``. Checkpoints are transformers'
``AlbertModel`` / ``AlbertForPreTraining`` both ways:

=================================================================  =====================================
transformers key                                                   word2bert key
=================================================================  =====================================
embeddings.{word,position,token_type}_embeddings, LayerNorm        embeddings.{same}, layer_norm
encoder.embedding_hidden_mapping_in                                embeddings.projection
encoder.albert_layer_groups.g.albert_layers.0.attention.q/k/v      encoder.layers.g.attention.qkv_proj
... .attention.dense / .attention.LayerNorm                        ... .attention.out_proj / attention_norm
... .ffn / .ffn_output / .full_layer_layer_norm                    ... .feed_forward.dense_in / dense_out
                                                                   / feed_forward_norm
pooler                                                             pooler.dense
predictions.{dense,LayerNorm,bias}                                 objectives.mlm.head.{dense,layer_norm,bias}
sop_classifier.classifier                                          objectives.sop.head.classifier
=================================================================  =====================================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import KeyMap, concat, rename
from word2bert.models.bert import BertConfig, BertModel
from word2bert.models.pretraining import PreTrainingModel
from word2bert.nn.embeddings import TransformerEmbeddings
from word2bert.nn.transformer import TransformerEncoder, get_activation, init_transformer_weights
from word2bert.objectives.mlm import MaskedLM, MaskedLMObjective
from word2bert.objectives.sop import SentenceOrderPrediction


@dataclass
class AlbertConfig(BertConfig):
    """ALBERT's hyper-parameters with transformers' names and defaults (albert-xxlarge's shape)."""

    model_type = "albert"

    vocab_size: int = 30000
    embedding_size: int = 128
    hidden_size: int = 4096
    num_hidden_layers: int = 12
    num_hidden_groups: int = 1
    num_attention_heads: int = 64
    intermediate_size: int = 16384
    inner_group_num: int = 1
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    classifier_dropout_prob: float = 0.1
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 3

    def validate(self) -> None:
        super().validate()
        self.require_positive_ints("embedding_size", "num_hidden_groups", "inner_group_num")
        if self.num_hidden_layers % self.num_hidden_groups:
            raise Word2BertError(f"AlbertConfig.num_hidden_groups={self.num_hidden_groups} must divide "
                                 f"num_hidden_layers={self.num_hidden_layers}")
        if self.inner_group_num != 1:
            raise Word2BertError(f"AlbertConfig.inner_group_num={self.inner_group_num}: only 1 (every released "
                                 "ALBERT) is supported")
        if self.position_embedding_type != "learned":
            raise Word2BertError("AlbertConfig.position_embedding_type must be 'absolute' (learned)")
        if self.pre_layer_norm:
            raise Word2BertError("ALBERT's layers are post-LN; pre_layer_norm is not supported")


class AlbertPooler(nn.Module):
    """pooled = tanh(W h_[CLS] + b)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class AlbertModel(BertModel):
    """The ALBERT encoder: factorised embeddings -> shared-layer encoder -> pooler (BERT's forward)."""

    config_class = AlbertConfig
    base_model_prefix = "albert"
    hf_architecture = "AlbertModel"
    is_encoder = True

    def __init__(self, config: AlbertConfig):
        if not isinstance(config, AlbertConfig):
            raise Word2BertError(f"AlbertModel needs an AlbertConfig, got {type(config).__name__}")
        nn.Module.__init__(self)
        self.config = config
        self.embeddings = TransformerEmbeddings(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size,
            max_position_embeddings=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
            layer_norm_eps=config.layer_norm_eps, dropout=config.hidden_dropout_prob,
            pad_token_id=config.pad_token_id, embedding_size=config.embedding_size)
        self.encoder = TransformerEncoder(
            num_layers=config.num_hidden_layers, hidden_size=config.hidden_size,
            num_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
            activation=config.hidden_act, hidden_dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob, layer_norm_eps=config.layer_norm_eps,
            num_layer_groups=config.num_hidden_groups)
        self.pooler = AlbertPooler(config.hidden_size)
        self.apply(lambda module: init_transformer_weights(module, config.initializer_range))
        if self.embeddings.projection is None:  # E == H: transformers still has the mapping
            self.embeddings.projection = nn.Linear(config.embedding_size, config.hidden_size)
            init_transformer_weights(self.embeddings.projection, config.initializer_range)

    @classmethod
    def hf_key_map(cls, config: AlbertConfig) -> KeyMap:
        return KeyMap(albert_encoder_rules(config), prefix="albert.")


def albert_encoder_rules(config: AlbertConfig, ours: str = "", theirs: str = "") -> list:
    """Key rules of a bare ALBERT encoder, with key prefixes (see the module docstring)."""
    rules = [rename("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
             rename("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight"),
             rename("embeddings.layer_norm.weight", "embeddings.LayerNorm.weight"),
             rename("embeddings.layer_norm.bias", "embeddings.LayerNorm.bias"),
             rename("embeddings.projection.weight", "encoder.embedding_hidden_mapping_in.weight"),
             rename("embeddings.projection.bias", "encoder.embedding_hidden_mapping_in.bias")]
    if config.type_vocab_size > 0:
        rules.append(rename("embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight"))
    for group in range(config.num_hidden_groups):
        mine, hf_layer = f"encoder.layers.{group}.", f"encoder.albert_layer_groups.{group}.albert_layers.0."
        for param in ("weight", "bias"):
            rules += [
                concat(f"{mine}attention.qkv_proj.{param}",
                       [f"{hf_layer}attention.{part}.{param}" for part in ("query", "key", "value")]),
                rename(f"{mine}attention.out_proj.{param}", f"{hf_layer}attention.dense.{param}"),
                rename(f"{mine}attention_norm.{param}", f"{hf_layer}attention.LayerNorm.{param}"),
                rename(f"{mine}feed_forward.dense_in.{param}", f"{hf_layer}ffn.{param}"),
                rename(f"{mine}feed_forward.dense_out.{param}", f"{hf_layer}ffn_output.{param}"),
                rename(f"{mine}feed_forward_norm.{param}", f"{hf_layer}full_layer_layer_norm.{param}"),
            ]
    rules += [rename("pooler.dense.weight", "pooler.weight", required=False),
              rename("pooler.dense.bias", "pooler.bias", required=False)]
    return [rule.with_prefixes(ours, theirs) for rule in rules]


class AlbertMLMHead(nn.Module):
    """``logits = LayerNorm_E(act(h W + b)) E_words^T + bias`` with ``W`` (H -> E) and the decoder tied
    to the E-wide word embeddings (transformers' ``AlbertMLMHead``)."""

    def __init__(self, hidden_size: int, embedding_size: int, vocab_size: int, activation: str = "gelu_new",
                 layer_norm_eps: float = 1e-12):
        super().__init__()
        self.dense = nn.Linear(hidden_size, embedding_size)
        self.activation = get_activation(activation)
        self.layer_norm = nn.LayerNorm(embedding_size, eps=layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(self.layer_norm(self.activation(self.dense(hidden))), word_embeddings, self.bias)


class AlbertForPreTraining(PreTrainingModel):
    """ALBERT with the masked-LM and sentence-order objectives (``sentence_order=False``: MLM only).

    ``masking`` (a :class:`MaskedLM`; ALBERT's is n-gram masking, ``units=NgramUnits(...)``) is
    needed only to build batches. Items carry ``sentence_order_label`` (0 in order, 1 swapped):
    :class:`~word2bert.objectives.sop.SentenceOrderDataset`.
    """

    config_class = AlbertConfig
    base_model_prefix = "albert"
    hf_architecture = "AlbertForPreTraining"

    def __init__(self, config: AlbertConfig, masking: MaskedLM | None = None, sentence_order: bool = True):
        head = AlbertMLMHead(config.hidden_size, config.embedding_size, config.vocab_size, config.hidden_act,
                             config.layer_norm_eps)
        objectives = {"mlm": MaskedLMObjective(head, masking)}
        if sentence_order:
            objectives["sop"] = SentenceOrderPrediction(hidden_size=config.hidden_size,
                                                        dropout=config.classifier_dropout_prob)
        super().__init__(config, AlbertModel(config), objectives)
        for objective in self.objectives.values():
            objective.apply(lambda module: init_transformer_weights(module, config.initializer_range))

    @classmethod
    def hf_key_map(cls, config: AlbertConfig) -> KeyMap:
        head = "objectives.mlm.head."
        rules = [rename(f"{head}dense.weight", "predictions.dense.weight", required=False),
                 rename(f"{head}dense.bias", "predictions.dense.bias", required=False),
                 rename(f"{head}layer_norm.weight", "predictions.LayerNorm.weight", required=False),
                 rename(f"{head}layer_norm.bias", "predictions.LayerNorm.bias", required=False),
                 rename(f"{head}bias", "predictions.bias", required=False, aliases=["predictions.decoder.bias"]),
                 rename("objectives.sop.head.classifier.weight", "sop_classifier.classifier.weight", required=False),
                 rename("objectives.sop.head.classifier.bias", "sop_classifier.classifier.bias", required=False)]
        return KeyMap(albert_encoder_rules(config, "albert.", "albert.") + rules, prefix="albert.")


__all__ = ["AlbertConfig", "AlbertForPreTraining", "AlbertMLMHead", "AlbertModel", "AlbertPooler",
           "albert_encoder_rules"]
