"""Training: one Trainer for every network + objective, schedules, checkpoints, DDP."""

from word2bert.train.trainer import Trainer, TrainingArguments, TrainState

__all__ = ["Trainer", "TrainingArguments", "TrainState"]
