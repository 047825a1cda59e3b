"""A pre-training model = an encoder + named objectives with weights (``../shared/DESIGN.md``).

BERT is an encoder + masked LM + next-sentence prediction; RoBERTa drops NSP; ALBERT swaps it
for sentence-order prediction; SpanBERT adds the span-boundary objective. The model runs the encoder
**once**, over the union of the rows its objectives read (when every objective names its rows, the
encoder's last layer is computed only there), hands each objective its rows, and returns

    loss = sum_k  w_k * loss_k

with the objectives' summable statistics prefixed by their names (``mlm_accuracy``, ``nsp_nll``,
...), which the trainer sums and reports without knowing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.models.base import PretrainedModel, gather_rows
from word2bert.objectives.base import Objective, ObjectiveCollator


@dataclass
class PreTrainingOutput:
    """``loss`` (the weighted sum, None without targets), ``losses`` and ``outputs`` per objective,
    ``stats`` ({objective_stat: (numerator, count)}) and the encoder's carried ``state``.

    ``output.mlm_logits`` / ``output.mlm_loss`` read the ``mlm`` objective's logits and loss.
    """

    loss: torch.Tensor | None = None
    losses: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    state: Any = None

    def __getattr__(self, name: str):
        if not name.startswith("__"):
            outputs = self.__dict__.get("outputs", {})
            for suffix in ("_logits", "_loss"):
                if name.endswith(suffix) and name[: -len(suffix)] in outputs:
                    found = outputs[name[: -len(suffix)]]
                    return found.logits if suffix == "_logits" else found.loss
            if name.endswith("_logits") or name.endswith("_loss"):
                return None
        raise AttributeError(name)


class PreTrainingModel(PretrainedModel):
    """``encoder`` (stored under ``base_model_prefix``) + ``objectives`` ({name: Objective}) + ``weights``.

    ``forward(input_ids, attention_mask=None, token_type_ids=None, *, state=None, **targets)``: the
    targets are whatever the objectives' ``prepare`` put in the batch. An objective whose inputs are
    absent from the batch does not run. Batch keys the encoder names in its ``extra_input_keys``
    (ERNIE's ``task_type_ids``) are passed to the encoder too.
    """

    def __init__(self, config, encoder: nn.Module, objectives: dict[str, Objective],
                 weights: dict[str, float] | None = None):
        super().__init__()
        if not objectives:
            raise Word2BertError("a pre-training model needs at least one objective")
        self.config = config
        setattr(self, self.base_model_prefix or "encoder_module", encoder)
        self.objectives = nn.ModuleDict(objectives)
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(objectives))
        if unknown:
            raise Word2BertError(f"weights given for objectives that are not there: {', '.join(unknown)}")
        self.objective_weights = {name: float(weights.get(name, 1.0)) for name in objectives}
        self.freeze_unused_pooler()

    @property
    def encoder(self) -> nn.Module:
        return getattr(self, self.base_model_prefix or "encoder_module")

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def freeze_unused_pooler(self) -> None:
        """A pooler no objective reads gets no gradient; freezing it keeps DistributedDataParallel
        (which requires every trainable parameter to receive one) working without
        ``find_unused_parameters``, e.g. BERT trained without NSP."""
        pooler = getattr(self.encoder, "pooler", None)
        if isinstance(pooler, nn.Module):
            used = any(objective.reads_pooled for objective in self.objectives.values())
            pooler.requires_grad_(used)

    def collator(self, pad_id: int = 0, keys=("input_ids", "token_type_ids")) -> ObjectiveCollator:
        """The batch builder for this model's objectives (in order)."""
        return ObjectiveCollator(self.objectives, pad_id, keys)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, *, state=None, **targets) -> PreTrainingOutput:
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                 **targets}
        active = {name: objective for name, objective in self.objectives.items() if objective.active(batch)}
        positions = {name: objective.read_positions(batch) for name, objective in active.items()}
        encoder_kwargs = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if state is not None:
            encoder_kwargs["state"] = state
        for key in getattr(self.encoder, "extra_input_keys", ()):  # e.g. ERNIE's task_type_ids
            if targets.get(key) is not None:
                encoder_kwargs[key] = targets[key]
        rows: dict[str, torch.Tensor] = {}
        if active and all(p is not None for p in positions.values()):
            # every objective names its rows: compute the last layer only at their union
            union, slots = distinct_positions(torch.cat([p.long() for p in positions.values()], dim=1))
            encoded = self.encoder(input_ids, read_positions=union, **encoder_kwargs)
            start = 0
            for name, p in positions.items():
                rows[name] = (encoded.last_hidden_state[:, start:start + p.shape[1]] if slots is None else
                              gather_rows(encoded.last_hidden_state, slots[:, start:start + p.shape[1]]))
                start += p.shape[1]
        else:
            encoded = self.encoder(input_ids, **encoder_kwargs)
            for name, p in positions.items():
                hidden = encoded.last_hidden_state
                rows[name] = hidden if p is None else gather_rows(hidden, p.long())
        output = PreTrainingOutput(state=encoded.state)
        weighted = []
        for name, objective in active.items():
            result = objective(rows[name], batch, self)
            output.outputs[name] = result
            for stat, value in result.stats.items():
                output.stats[f"{name}_{stat}"] = value
            if result.loss is not None:
                output.losses[name] = result.loss
                weighted.append(self.objective_weights[name] * result.loss)
        if weighted:
            output.loss = weighted[0] if len(weighted) == 1 else torch.stack(weighted).sum()
        return output


def distinct_positions(positions: torch.Tensor, keep_below: float = 0.9):
    """``(distinct, slots)`` with ``positions[b, q] = distinct[b, slots[b, q]]``: each row's distinct
    positions (sorted; rows with fewer are filled with their smallest), so that the last layer is
    computed once per position however many objectives or slots read it (SpanBERT's boundary tokens
    are read by every token of their span). When that would save less than ``1 - keep_below`` of the
    rows, ``(positions, None)``: the rows are read in place."""
    ordered, order = positions.sort(dim=1)
    first = torch.ones_like(ordered, dtype=torch.bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    slot_of_ordered = first.cumsum(1) - 1
    width = int(slot_of_ordered[:, -1].max()) + 1
    if width >= keep_below * positions.shape[1]:
        return positions, None
    distinct = ordered[:, :1].expand(-1, width).clone()
    distinct.scatter_(1, slot_of_ordered, ordered)
    slots = torch.empty_like(positions).scatter_(1, order, slot_of_ordered)
    return distinct, slots


__all__ = ["PreTrainingModel", "PreTrainingOutput", "distinct_positions"]
