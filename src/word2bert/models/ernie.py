"""ERNIE (Sun et al. 2019, 2020): BERT's encoder with a task embedding, pre-trained on knowledge
masking and, in 2.0, on many tasks added stage by stage.

* :class:`ErnieModel` — transformers' ``ErnieModel``: BERT's embeddings plus, with ``use_task_id``, a
  task-type embedding (``task_type_ids``, one id per kind of task) added before the LayerNorm::

      e = word[x_t] + position[t] + segment[s_t] + task[k_t];   E = Dropout(LayerNorm(e))

* :class:`ErnieForPreTraining` — transformers' ``ErnieForPreTraining``: masked LM (ERNIE 1.0's
  knowledge masking: phrase / entity units) + next-sentence prediction.
* :class:`ErnieForMultiTaskPreTraining` — ERNIE 2.0: the encoder + one objective per task
  (:mod:`word2bert.objectives.ernie`), trained on batches of one task each, on an
  :class:`~word2bert.objectives.ernie.ErnieSchedule`. Its checkpoint is transformers' ErnieModel +
  MLM head (``ernie.*``, ``cls.predictions.*``), the other task heads under ``cls.tasks.<task>.*``.

Keys are BERT's under ``ernie.``, plus ``ernie.embeddings.task_type_embeddings``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import KeyMap, rename
from word2bert.models.base import EncoderOutput
from word2bert.models.bert import BertConfig, BertForPreTraining, BertModel, bert_encoder_rules
from word2bert.models.pretraining import PreTrainingModel
from word2bert.nn.embeddings import TransformerEmbeddings
from word2bert.nn.transformer import init_transformer_weights
from word2bert.objectives.ernie import (MASKING_TASKS, SENTENCE_TASKS, TOKEN_TASKS, SentenceClassification,
                                        TokenClassification)
from word2bert.objectives.mlm import MaskedLM, MaskedLMHead, MaskedLMObjective
from word2bert.objectives.nsp import NextSentencePrediction


@dataclass
class ErnieConfig(BertConfig):
    """transformers' ``ErnieConfig``: BERT's fields + ``task_type_vocab_size`` and ``use_task_id``."""

    model_type = "ernie"

    task_type_vocab_size: int = 3
    use_task_id: bool = False
    ernie_tasks: dict | None = None  # ours: the tasks of ErnieForMultiTaskPreTraining ({task: classes})

    def validate(self) -> None:
        super().validate()
        self.require_positive_ints("task_type_vocab_size")
        if self.position_embedding_type != "learned":
            raise Word2BertError("ErnieConfig.position_embedding_type must be 'absolute' (learned)")


class ErnieEmbeddings(TransformerEmbeddings):
    """:class:`TransformerEmbeddings` + a task-type table added before the LayerNorm (``use_task_id``)."""

    def __init__(self, config: ErnieConfig):
        super().__init__(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                         max_position_embeddings=config.max_position_embeddings,
                         type_vocab_size=config.type_vocab_size, layer_norm_eps=config.layer_norm_eps,
                         dropout=config.hidden_dropout_prob, pad_token_id=config.pad_token_id)
        self.task_type_embeddings = (nn.Embedding(config.task_type_vocab_size, config.hidden_size)
                                     if config.use_task_id else None)

    def forward(self, input_ids, token_type_ids=None, position_ids=None, past_length: int = 0,
                task_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(input_ids, token_type_ids)
        embedded = self.word_embeddings(input_ids)
        embedded = embedded + self.position_embeddings(self.make_position_ids(input_ids, position_ids, past_length))
        if token_type_ids is None:
            embedded = embedded + self.token_type_embeddings.weight[0]
        else:
            embedded = embedded + self.token_type_embeddings(token_type_ids)
        if self.task_type_embeddings is not None:
            if task_type_ids is None:
                embedded = embedded + self.task_type_embeddings.weight[0]
            else:
                if task_type_ids.numel() and (int(task_type_ids.min()) < 0 or
                                              int(task_type_ids.max()) >= self.task_type_embeddings.num_embeddings):
                    raise Word2BertError(f"task_type_ids must be in [0, {self.task_type_embeddings.num_embeddings})")
                embedded = embedded + self.task_type_embeddings(task_type_ids)
        return self.dropout(self.layer_norm(embedded))


class ErnieModel(BertModel):
    """The ERNIE encoder: :class:`ErnieEmbeddings` -> BERT's encoder -> pooler; ``forward`` also takes
    ``task_type_ids`` (B, T)."""

    config_class = ErnieConfig
    base_model_prefix = "ernie"
    hf_architecture = "ErnieModel"
    is_encoder = True
    extra_input_keys = ("task_type_ids",)  # PreTrainingModel hands these batch keys to the encoder

    def __init__(self, config: ErnieConfig):
        if not isinstance(config, ErnieConfig):
            raise Word2BertError(f"ErnieModel needs an ErnieConfig, got {type(config).__name__}")
        super().__init__(config)
        self.embeddings = ErnieEmbeddings(config)
        self.embeddings.apply(lambda module: init_transformer_weights(module, config.initializer_range))

    @classmethod
    def hf_key_map(cls, config: ErnieConfig) -> KeyMap:
        return KeyMap(ernie_encoder_rules(config), prefix="ernie.")

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, *, task_type_ids=None, position_ids=None,
                state=None, read_positions=None, output_hidden_states=False) -> EncoderOutput:
        if state is not None:
            raise Word2BertError("ERNIE carries no state between batches")
        embedded = self.embeddings(input_ids, token_type_ids, position_ids=position_ids, task_type_ids=task_type_ids)
        last_hidden, all_hidden = self.encoder(embedded, attention_mask, causal=False,
                                               output_hidden_states=output_hidden_states,
                                               last_layer_positions=read_positions)
        pooled = self.pooler(last_hidden) if read_positions is None else None
        return EncoderOutput(last_hidden, all_hidden, pooled)


def ernie_encoder_rules(config: ErnieConfig, ours: str = "", theirs: str = "") -> list:
    rules = bert_encoder_rules(config, ours, theirs)
    if config.use_task_id:
        rules.append(rename("embeddings.task_type_embeddings.weight",
                            "embeddings.task_type_embeddings.weight").with_prefixes(ours, theirs))
    return rules


def _mlm_head(config: ErnieConfig) -> MaskedLMHead:
    return MaskedLMHead(config.hidden_size, config.vocab_size, config.hidden_act, config.layer_norm_eps)


def _head_rules(config, with_nsp: bool) -> list:
    rules = [rule for rule in BertForPreTraining.hf_key_map(config).rules if rule.ours.startswith("objectives.")]
    return [rule for rule in rules if with_nsp or not rule.ours.startswith("objectives.nsp.")]


class ErnieForPreTraining(PreTrainingModel):
    """transformers' ``ErnieForPreTraining``: ERNIE's encoder + masked LM + next-sentence prediction.

    ERNIE 1.0's knowledge masking is the masked LM with phrase or entity units
    (``MaskedLM(units=make_selector("phrase" | "entity", ...))``).
    """

    config_class = ErnieConfig
    base_model_prefix = "ernie"
    hf_architecture = "ErnieForPreTraining"

    def __init__(self, config: ErnieConfig, masking: MaskedLM | None = None, next_sentence: bool = True):
        objectives = {"mlm": MaskedLMObjective(_mlm_head(config), masking)}
        if next_sentence:
            objectives["nsp"] = NextSentencePrediction(nn.Linear(config.hidden_size, 2))
        super().__init__(config, ErnieModel(config), objectives)
        for objective in self.objectives.values():
            objective.apply(lambda module: init_transformer_weights(module, config.initializer_range))

    @classmethod
    def hf_key_map(cls, config: ErnieConfig) -> KeyMap:
        return KeyMap(ernie_encoder_rules(config, "ernie.", "ernie.") + _head_rules(config, True), prefix="ernie.")


class ErnieForMultiTaskPreTraining(PreTrainingModel):
    """ERNIE 2.0: the encoder (with task embeddings) + one objective per task.

    ``tasks`` maps task names (:data:`~word2bert.objectives.ernie.TASKS`) to
    their number of classes where the data decides it (``sentence_reordering``: 9 for m = 3,
    ``discourse_relation``: the markers found). The masked-LM tasks (``knowledge_masking``, ERNIE 1.0's
    ``basic_masking`` / ``phrase_masking`` / ``entity_masking``) and ``dialogue`` share the masked-LM
    objective ``mlm``. Batches come from :class:`~word2bert.objectives.ernie.MultiTaskCollator`.
    """

    config_class = ErnieConfig
    base_model_prefix = "ernie"
    hf_architecture = "ErnieForMultiTaskPreTraining"

    def __init__(self, config: ErnieConfig, tasks: dict[str, int | None] | None = None):
        if tasks is None:
            tasks = dict(config.ernie_tasks or {"knowledge_masking": None})
        objectives = {}
        if any(task in MASKING_TASKS or task == "dialogue" for task in tasks):   # they share one MLM head
            objectives["mlm"] = MaskedLMObjective(_mlm_head(config))
        for task, classes in tasks.items():
            if task in TOKEN_TASKS:
                objectives[task] = TokenClassification(nn.Linear(config.hidden_size, 2), TOKEN_TASKS[task])
            elif task in SENTENCE_TASKS:
                label_key, fixed = SENTENCE_TASKS[task]
                classes = classes or fixed
                if not classes:
                    raise Word2BertError(f"give the number of classes of {task}")
                objectives[task] = SentenceClassification(nn.Linear(config.hidden_size, int(classes)), label_key)
            elif task not in MASKING_TASKS:
                raise Word2BertError(f"unknown ERNIE task {task!r}")
        super().__init__(config, ErnieModel(config), objectives)
        self.tasks = dict(tasks)
        config.ernie_tasks = dict(tasks)  # saved in config.json, so that from_pretrained rebuilds the heads
        for objective in self.objectives.values():
            objective.apply(lambda module: init_transformer_weights(module, config.initializer_range))

    @classmethod
    def hf_key_map(cls, config: ErnieConfig) -> KeyMap:
        rules = ernie_encoder_rules(config, "ernie.", "ernie.") + _head_rules(config, False)
        for task in config.ernie_tasks or {}:
            if task in TOKEN_TASKS or task in SENTENCE_TASKS:
                for param in ("weight", "bias"):
                    rules.append(rename(f"objectives.{task}.head.{param}", f"cls.tasks.{task}.{param}",
                                        required=False))
        return KeyMap(rules, prefix="ernie.")


__all__ = ["ErnieConfig", "ErnieEmbeddings", "ErnieForMultiTaskPreTraining", "ErnieForPreTraining", "ErnieModel",
           "ernie_encoder_rules"]
