"""Model architectures (BERT first; GPT, seq2seq, XLNet, ELMo, ULMFiT join here)."""

from word2bert.models.bert import BertConfig, BertForPreTraining, BertModel, BertOutput, PreTrainingOutput

__all__ = ["BertConfig", "BertForPreTraining", "BertModel", "BertOutput", "PreTrainingOutput"]
