"""Model architectures: one model per file, each on :mod:`word2bert.models.base`.

``auto.from_pretrained(directory)`` builds whichever registered model a checkpoint's config.json names.
"""

from word2bert.models.base import EncoderOutput, PretrainedConfig, PretrainedModel
from word2bert.models.bert import BertConfig, BertForPreTraining, BertModel, BertOutput
from word2bert.models.pretraining import PreTrainingModel, PreTrainingOutput

__all__ = ["BertConfig", "BertForPreTraining", "BertModel", "BertOutput", "EncoderOutput", "PreTrainingModel",
           "PreTrainingOutput", "PretrainedConfig", "PretrainedModel"]
