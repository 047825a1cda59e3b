"""Pre-training objectives: what is corrupted, which rows are read, which head, which loss.

The contract is in :mod:`word2bert.objectives.base` (``Objective``, ``ObjectiveCollator``, summable
statistics). ``MaskedLM`` is BERT's corruption (15% with 80/10/10, static or dynamic, by token or
by unit) and ``MaskedLMObjective`` its objective; ``NextSentencePrediction`` and its pair builder
are in ``nsp``; ``PretrainingDataset``/``PretrainingCollator`` tie BERT's two into batches.
"""

from word2bert.objectives.base import IGNORE_INDEX, Objective, ObjectiveCollator, ObjectiveOutput
from word2bert.objectives.mlm import MaskedLM, MaskedLMHead, MaskedLMObjective
from word2bert.objectives.nsp import NextSentencePrediction, create_instances_from_document, truncate_seq_pair
from word2bert.objectives.pretraining import PretrainingCollator, PretrainingDataset, read_documents

__all__ = ["IGNORE_INDEX", "MaskedLM", "MaskedLMHead", "MaskedLMObjective", "NextSentencePrediction", "Objective",
           "ObjectiveCollator", "ObjectiveOutput", "PretrainingCollator", "PretrainingDataset",
           "create_instances_from_document", "read_documents", "truncate_seq_pair"]
