"""Pre-training objectives: data collators that decide what is corrupted and what is predicted.

``MaskedLM`` (BERT's 15% with 80/10/10; static or dynamic masking as an option),
next-sentence prediction pairs (``nsp``), and ``PretrainingDataset``/``PretrainingCollator``
tying them into batches of ``BertForPreTraining`` keyword arguments.
"""

from word2bert.objectives.mlm import IGNORE_INDEX, MaskedLM
from word2bert.objectives.nsp import create_instances_from_document, truncate_seq_pair

__all__ = ["IGNORE_INDEX", "MaskedLM", "PretrainingCollator", "PretrainingDataset",
           "create_instances_from_document", "read_documents", "truncate_seq_pair"]


def __getattr__(name):  # torch is imported only when the batch builders are used
    if name in ("PretrainingCollator", "PretrainingDataset", "read_documents"):
        from word2bert.objectives import pretraining
        return getattr(pretraining, name)
    raise AttributeError(name)
