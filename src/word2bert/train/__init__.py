"""Training: one Trainer for every network + objective, samplers, schedules, checkpoints, DDP."""

from word2bert.train.samplers import (ContiguousStreamSampler, LengthGroupedSampler, Sampler, ShuffledSampler,
                                      TokenStream, stack_collate)
from word2bert.train.trainer import Trainer, TrainingArguments, TrainState

__all__ = ["ContiguousStreamSampler", "LengthGroupedSampler", "Sampler", "ShuffledSampler", "TokenStream",
           "Trainer", "TrainingArguments", "TrainState", "stack_collate"]
