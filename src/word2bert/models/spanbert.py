"""SpanBERT (Joshi et al. 2020): BERT's encoder pre-trained on single segments with span masking and
the span boundary objective, no next-sentence prediction.

:class:`SpanBertForPreTraining` = :class:`~word2bert.models.bert.BertModel` + the masked-LM objective
(its ``MaskedLM`` usually with :class:`~word2bert.objectives.units.SpanUnits`) + the span boundary
objective (:mod:`word2bert.objectives.span`); ``loss = L_MLM + L_SBO``. Checkpoints are BERT's
(``model_type`` "bert": transformers' ``BertModel``/``BertForMaskedLM`` read the encoder and the MLM
head) and **keep the SBO head** under ``cls.span_boundary.*`` (SpanBERT's released checkpoints
dropped both heads), which transformers ignores and we read back.
"""

from __future__ import annotations

from dataclasses import dataclass

from word2bert.interop.huggingface import KeyMap, rename
from word2bert.models.bert import BertConfig, BertForPreTraining, BertModel, bert_encoder_rules
from word2bert.models.pretraining import PreTrainingModel
from word2bert.nn.transformer import init_transformer_weights
from word2bert.objectives.mlm import MaskedLM, MaskedLMHead, MaskedLMObjective
from word2bert.objectives.span import SpanBoundaryHead, SpanBoundaryObjective

SBO_KEYS = ("position_embeddings.weight", "dense1.weight", "dense1.bias", "layer_norm1.weight", "layer_norm1.bias",
            "dense2.weight", "dense2.bias", "layer_norm2.weight", "layer_norm2.bias", "bias")


@dataclass
class SpanBertConfig(BertConfig):
    """BERT's config plus the SBO head's sizes (reference defaults: 20 relative positions of size 200)."""

    sbo_max_targets: int = 20
    sbo_position_size: int = 200

    def validate(self) -> None:
        super().validate()
        self.require_positive_ints("sbo_max_targets", "sbo_position_size")


class SpanBertForPreTraining(PreTrainingModel):
    """BERT encoder + masked LM + span boundary objective (``span_boundary=False``: MLM only)."""

    config_class = SpanBertConfig
    base_model_prefix = "bert"
    hf_architecture = "SpanBertForPreTraining"

    def __init__(self, config: SpanBertConfig, masking: MaskedLM | None = None, span_boundary: bool = True):
        objectives = {"mlm": MaskedLMObjective(
            MaskedLMHead(config.hidden_size, config.vocab_size, config.hidden_act, config.layer_norm_eps), masking)}
        if span_boundary:
            objectives["sbo"] = SpanBoundaryObjective(SpanBoundaryHead(
                config.hidden_size, config.vocab_size, config.sbo_max_targets, config.sbo_position_size,
                config.hidden_act, config.layer_norm_eps))
        if span_boundary and masking is not None:
            masking.return_unit_ids = True  # the SBO tells touching spans apart by their unit ids
        super().__init__(config, BertModel(config), objectives)
        for objective in self.objectives.values():
            objective.apply(lambda module: init_transformer_weights(module, config.initializer_range))

    @classmethod
    def hf_key_map(cls, config: SpanBertConfig) -> KeyMap:
        mlm = [rule for rule in BertForPreTraining.hf_key_map(config).rules if rule.ours.startswith("objectives.mlm.")]
        sbo = [rename(f"objectives.sbo.head.{key}", f"cls.span_boundary.{key}", required=False) for key in SBO_KEYS]
        return KeyMap(bert_encoder_rules(config, "bert.", "bert.") + mlm + sbo, prefix="bert.")


__all__ = ["SpanBertConfig", "SpanBertForPreTraining"]
