"""Downstream use of contextual models: fine-tuning heads on any encoder, task data formats, encode()."""

from word2bert.tasks.heads import (BertForQuestionAnswering, BertForSequenceClassification,
                                   BertForTokenClassification, QuestionAnswering, SequenceClassification,
                                   TaskOutput, TokenClassification, build_head, load_finetuned)

__all__ = ["BertForQuestionAnswering", "BertForSequenceClassification", "BertForTokenClassification",
           "QuestionAnswering", "SequenceClassification", "TaskOutput", "TokenClassification", "build_head",
           "encode", "finetune", "load_finetuned"]


def __getattr__(name):
    if name == "encode":
        from word2bert.tasks.encode import encode
        return encode
    if name == "finetune":
        from word2bert.tasks.finetune import finetune
        return finetune
    raise AttributeError(name)
