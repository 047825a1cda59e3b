"""Knowledge distillation into a small student (Hinton et al. 2015; DistilBERT, Sanh et al. 2019).

A frozen teacher runs inside the model, under ``torch.no_grad``, on the same batch as the student;
the student learns from three terms, weighted::

    loss = alpha_ce * L_ce + alpha_hard * L_hard + alpha_cos * L_cos

* ``L_ce``, the soft-target loss, at the rows the student predicts (:func:`soft_target_loss`)::

      L_ce = T^2 * mean_rows KL( softmax(z_t / T) || softmax(z_s / T) )

  The T^2 keeps its gradients, ``(T / N) (softmax(z_s / T) - softmax(z_t / T))``, on the scale of a
  hard loss's whatever the temperature (for large T they tend to ``(z_s - z_t) / (N K)`` for K
  classes and zero-mean logits, Hinton et al. section 2.1).
* ``L_hard``, the student's own loss on the real targets: masked-LM cross-entropy (``alpha_mlm``)
  or the task's cross-entropy (``alpha_task``).
* ``L_cos``, DistilBERT's cosine loss between the last hidden states of student and teacher at every
  non-padding position: ``mean_rows (1 - cos(h_s, h_t))`` (:func:`cosine_loss`; the widths must agree).

:class:`MaskedLMDistillation` is DistilBERT's pre-training: the rows of ``L_ce`` are the masked
positions (its reference code's ``--restrict_ce_to_mask``; ``ce_rows="all"`` takes every non-padding
position, the reference's default) and the weights default to those DistilBERT was trained with
(its README: ``--alpha_ce 5.0 --alpha_mlm 2.0 --alpha_cos 1.0``, temperature 2.0).
:class:`FrequencySmoothedTokens` is its choice of positions to mask (XLM's ``mlm_smoothing``).
:class:`TaskDistillation` is task-specific distillation: a fine-tuned teacher's class distribution
and the gold labels teach a fine-tuned student; its weights default to those of transformers'
``run_squad_w_distillation.py`` (alpha_ce 0.5, alpha for the task 0.5, temperature 2.0).

The teacher is marked with :func:`word2bert.nn.freeze`: no gradients, the trainer keeps it in eval
mode (no dropout) and leaves it out of checkpoints. Statistics are summable pairs: ``ce``
(T^2-scaled KL, rows), ``cos``, the student's ``nll`` and ``accuracy``, ``agreement`` (student's
argmax = teacher's) and the teacher's own ``teacher_accuracy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.models.base import gather_rows
from word2bert.nn.frozen import freeze
from word2bert.objectives.base import IGNORE_INDEX, ObjectiveCollator, classification_stats
from word2bert.objectives.mlm import MaskedLM, MaskedLMObjective

CE_ROWS = ("masked", "all")


# --------------------------------------------------------------------------- the losses

def soft_target_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                           temperature: float = 2.0) -> torch.Tensor:
    """Per row: ``T^2 * KL(p_t || p_s) = T^2 * sum_v p_t,v (log p_t,v - log p_s,v)`` with
    ``p = softmax(z / T)`` over the last dimension. (N, V) and (N, V) -> (N,), in float32 or wider."""
    if student_logits.shape != teacher_logits.shape:
        raise Word2BertError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                             f"{tuple(teacher_logits.shape)} differ in shape")
    if not temperature > 0:
        raise Word2BertError(f"parameter temperature={temperature} must be > 0")
    dtype = torch.promote_types(student_logits.dtype, torch.float32)
    log_student = F.log_softmax(student_logits.to(dtype) / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits.to(dtype) / temperature, dim=-1)
    return temperature ** 2 * (log_teacher.exp() * (log_teacher - log_student)).sum(dim=-1)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     temperature: float = 2.0) -> torch.Tensor:
    """``L_ce = T^2 * mean_rows KL(softmax(z_t/T) || softmax(z_s/T))`` (``nn.KLDivLoss(reduction="batchmean")``
    on ``log_softmax(z_s/T)`` and ``softmax(z_t/T)``, times T^2, as DistilBERT computes it)."""
    return soft_target_divergence(student_logits, teacher_logits, temperature).mean()


def cosine_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
    """Per row ``1 - cos(h_s, h_t)`` ((N, d), (N, d) -> (N,)): ``nn.CosineEmbeddingLoss`` with target 1."""
    if student_hidden.shape != teacher_hidden.shape:
        raise Word2BertError(f"the cosine loss compares hidden states of one width: student "
                             f"{tuple(student_hidden.shape)}, teacher {tuple(teacher_hidden.shape)}")
    return 1.0 - F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1, eps=1e-8)


def _check_weights(temperature: float, **alphas: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise Word2BertError(f"parameter temperature={temperature!r} must be > 0")
    for name, value in alphas.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise Word2BertError(f"parameter {name}={value!r} must be >= 0")
    if not any(value > 0 for value in alphas.values()):
        raise Word2BertError(f"every loss weight ({', '.join(alphas)}) is 0: nothing to train")


@dataclass
class DistillationOutput:
    """``loss`` (weighted sum; None without targets), ``losses`` (each term, unweighted), ``stats``
    (summable pairs), the student's ``logits`` and the teacher's ``teacher_logits``."""

    loss: torch.Tensor | None = None
    losses: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    logits: torch.Tensor | None = None
    teacher_logits: torch.Tensor | None = None


def _zero(like: torch.Tensor) -> torch.Tensor:
    """A zero that keeps the graph connected (a batch with no row for a term)."""
    return like.sum() * 0.0


def _pair_stats(student_logits: torch.Tensor, teacher_logits: torch.Tensor, divergence: torch.Tensor) -> dict:
    with torch.no_grad():
        rows = int(divergence.numel())
        agree = int((student_logits.argmax(-1) == teacher_logits.argmax(-1)).sum()) if rows else 0
        return {"ce": (float(divergence.sum()), rows), "agreement": (agree, rows)}


# --------------------------------------------------------------------------- masked-LM distillation

class SequenceDataset:
    """DistilBERT's pre-training data (its ``binarized_data.py`` + ``LmSeqsDataset``): every line of a
    text file is one sequence ``[CLS] tokens [SEP]``; a line longer than ``max_seq_length`` is cut into
    chunks of ``max_seq_length - 2`` tokens, each with its own [CLS] and [SEP]; sequences shorter than
    ``min_seq_length`` tokens (DistilBERT: 12) or more than half unknown tokens are dropped.

    Items are ``{"input_ids": int array, "index": i}``; tokens are kept in one flat int32 array.
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray):
        self.tokens = tokens
        self.offsets = offsets

    @classmethod
    def from_file(cls, path, tokenizer, max_seq_length: int = 128, min_seq_length: int = 12,
                  max_unknown: float = 0.5, chunk_lines: int = 8192) -> SequenceDataset:
        from word2bert.fileio import open_text

        if max_seq_length < 3:
            raise Word2BertError(f"parameter max_seq_length={max_seq_length} must be >= 3")
        body = max_seq_length - 2
        cls_id, sep_id, unk_id = tokenizer.cls_id, tokenizer.sep_id, getattr(tokenizer, "unk_id", None)
        pieces, lengths, read = [], [], 0

        def add(lines):
            for ids in tokenizer.ids_batch(lines):
                ids = np.asarray(ids, dtype=np.int32)
                for start in range(0, max(len(ids), 1), body):  # per chunk of a line, not per token
                    chunk = ids[start:start + body]
                    if len(chunk) + 2 < min_seq_length:
                        continue
                    if unk_id is not None and len(chunk) and np.count_nonzero(chunk == unk_id) >= max_unknown * (
                            len(chunk) + 2):
                        continue
                    pieces.append(np.concatenate([[cls_id], chunk, [sep_id]]).astype(np.int32))
                    lengths.append(len(chunk) + 2)

        with open_text(path) as handle:
            batch = []
            for line in handle:
                line = line.strip()
                if line:
                    batch.append(line)
                    read += 1
                if len(batch) >= chunk_lines:
                    add(batch)
                    batch = []
            if batch:
                add(batch)
        if not lengths:
            raise Word2BertError(f"{path}: no sequence of at least {min_seq_length} tokens in {read:,} non-empty "
                                 "line(s) (lower --min-seq-length, or give longer lines)")
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(np.concatenate(pieces), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        return {"input_ids": self.tokens[self.offsets[index]:self.offsets[index + 1]], "index": index}

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def token_counts(self, vocab_size: int) -> np.ndarray:
        """Occurrences of every id in the data (for :class:`FrequencySmoothedTokens`)."""
        return np.bincount(self.tokens, minlength=vocab_size)[:vocab_size]

    def split(self, held_out: int, seed: int = 0) -> tuple[SequenceDataset, SequenceDataset | None]:
        """(training part, ``held_out`` random sequences) — None when ``held_out`` is 0."""
        held_out = max(0, min(int(held_out), len(self) - 1))
        if held_out == 0:
            return self, None
        order = np.random.default_rng(seed).permutation(len(self))
        return self.subset(np.sort(order[held_out:])), self.subset(np.sort(order[:held_out]))

    def subset(self, indices) -> SequenceDataset:
        indices = np.asarray(indices, dtype=np.int64)
        parts = [self.tokens[self.offsets[i]:self.offsets[i + 1]] for i in indices]  # per sequence
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        return SequenceDataset(np.concatenate(parts) if parts else np.zeros(0, np.int32), offsets)


class FrequencySmoothedTokens:
    """DistilBERT's (XLM's) choice of the tokens to predict: a token of id ``v`` is chosen with weight
    ``max(count_v, 1) ** -smoothing`` (``mlm_smoothing`` 0.7), so rare tokens are predicted more
    often than under BERT's uniform choice; special tokens are never chosen.

    A unit selector of :class:`~word2bert.objectives.mlm.MaskedLM` (each token its own unit): per row,
    ``n_predict`` candidates drawn without replacement with those weights (Efraimidis and Spirakis'
    keys ``log(u) / w``, the largest ``n_predict`` win: the same distribution as successive draws).
    DistilBERT draws ``ceil(0.15 * tokens)`` over the whole batch; here the budget is per row, as BERT's.
    """

    def __init__(self, counts, smoothing: float = 0.7):
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 1 or not len(counts):
            raise Word2BertError("token counts must be a non-empty vector (one count per vocabulary id)")
        if not smoothing >= 0:
            raise Word2BertError(f"parameter mlm_smoothing={smoothing} must be >= 0")
        self.smoothing = float(smoothing)
        self.weights = np.maximum(counts, 1.0) ** -self.smoothing

    def select(self, input_ids: np.ndarray, candidates: np.ndarray, n_predict: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
        weights = self.weights[np.clip(input_ids, 0, len(self.weights) - 1)]
        keys = np.log(rng.random(input_ids.shape) + 1e-300) / weights
        keys = np.where(candidates, keys, -np.inf)
        order = np.argsort(-keys, axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(input_ids.shape[1])[None, :].repeat(len(input_ids), 0), axis=1)
        chosen = (ranks < np.asarray(n_predict)[:, None]) & candidates
        return np.where(chosen, np.arange(input_ids.shape[1])[None, :], -1).astype(np.int64)


def _mlm_objective(model: nn.Module, role: str) -> MaskedLMObjective:
    objectives = getattr(model, "objectives", None)
    if objectives is None or "mlm" not in objectives:
        raise Word2BertError(f"the {role} ({type(model).__name__}) has no masked-LM objective: masked-LM "
                             "distillation needs a model with an MLM head (BertForPreTraining, DistilBertForMaskedLM, "
                             "RobertaForMaskedLM, ...)")
    return objectives["mlm"]


class MaskedLMDistillation(nn.Module):
    """DistilBERT's distillation: ``student`` and ``teacher`` are pre-training models with a masked-LM
    objective over the same vocabulary (for instance a :class:`~word2bert.models.distilbert.DistilBertForMaskedLM`
    made by ``distilbert_from_bert`` and the ``BertForPreTraining`` it came from).

    ``forward(input_ids, attention_mask, token_type_ids, masked_positions=, masked_labels=)`` (the batch
    :meth:`collator` builds) returns a :class:`DistillationOutput` with
    ``loss = alpha_ce L_ce + alpha_mlm L_mlm + alpha_cos L_cos`` (module docstring); ``L_ce`` at the
    masked positions (``ce_rows="masked"``) or at every non-padding position (``"all"``), ``L_mlm`` the
    student's cross-entropy at the masked positions, ``L_cos`` over the non-padding positions.
    Only ``student`` is trained and saved: ``distillation.student.save_pretrained(directory)``.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, *, masking: MaskedLM | None = None,
                 temperature: float = 2.0, alpha_ce: float = 5.0, alpha_mlm: float = 2.0, alpha_cos: float = 1.0,
                 ce_rows: str = "masked"):
        super().__init__()
        _check_weights(temperature, alpha_ce=alpha_ce, alpha_mlm=alpha_mlm, alpha_cos=alpha_cos)
        if ce_rows not in CE_ROWS:
            raise Word2BertError(f"parameter ce_rows={ce_rows!r} must be one of {', '.join(CE_ROWS)}")
        _mlm_objective(student, "student")
        _mlm_objective(teacher, "teacher")
        student_vocab, teacher_vocab = student.config.vocab_size, teacher.config.vocab_size
        if student_vocab != teacher_vocab:
            raise Word2BertError(f"the student's vocabulary ({student_vocab} ids) differs from the teacher's "
                                 f"({teacher_vocab}): soft targets need one vocabulary")
        student_width, teacher_width = student.config.hidden_size, teacher.config.hidden_size
        if alpha_cos > 0 and student_width != teacher_width:
            raise Word2BertError(f"alpha_cos={alpha_cos} compares hidden states, but the student's width "
                                 f"({student_width}) differs from the teacher's ({teacher_width}); set alpha_cos=0")
        self.student = student
        self.teacher = freeze(teacher)
        self.masking = masking
        self.temperature = float(temperature)
        self.alpha_ce, self.alpha_mlm, self.alpha_cos = float(alpha_ce), float(alpha_mlm), float(alpha_cos)
        self.ce_rows = ce_rows

    def collator(self, pad_id: int = 0) -> ObjectiveCollator:
        """Pads ``input_ids`` and masks them with ``masking`` (dynamic masking: new masks every batch)."""
        if self.masking is None:
            raise Word2BertError("MaskedLMDistillation needs masking settings (a MaskedLM) to build batches")
        return ObjectiveCollator([MaskedLMObjective(masking=self.masking)], pad_id, keys=("input_ids",))

    @staticmethod
    def _run(model: nn.Module, input_ids, attention_mask, token_type_ids, positions, all_rows: bool):
        """(last hidden rows, MLM logits): at every position when ``all_rows``, else at ``positions``."""
        encoder = model.encoder
        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if not all_rows:
            kwargs["read_positions"] = positions
        hidden = encoder(input_ids, **kwargs).last_hidden_state
        batch = {"input_ids": input_ids, "masked_positions": positions}  # no labels: logits only
        logits = model.objectives["mlm"](hidden, batch, model).logits
        return hidden, logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, *, masked_positions: torch.Tensor,
                masked_labels: torch.Tensor | None = None) -> DistillationOutput:
        positions = masked_positions.long()
        all_rows = self.alpha_cos > 0 or self.ce_rows == "all"
        with torch.no_grad():
            teacher_hidden, teacher_logits = self._run(self.teacher, input_ids, attention_mask, token_type_ids,
                                                       positions, all_rows)
        student_hidden, student_logits = self._run(self.student, input_ids, attention_mask, token_type_ids,
                                                   positions, all_rows)
        if all_rows:  # logits at every position; the masked ones for the hard loss
            student_masked = gather_rows(student_logits, positions)
            teacher_masked = gather_rows(teacher_logits, positions)
        else:
            student_masked, teacher_masked = student_logits, teacher_logits
        output = DistillationOutput(logits=student_masked, teacher_logits=teacher_masked)
        if masked_labels is None:
            return output
        labels = masked_labels.reshape(-1).long()
        masked = labels != IGNORE_INDEX
        vocab = student_masked.shape[-1]
        flat_student, flat_teacher = student_masked.reshape(-1, vocab), teacher_masked.reshape(-1, vocab)
        if self.ce_rows == "masked":
            ce_student, ce_teacher = flat_student[masked], flat_teacher[masked]
        else:
            real = _real_rows(attention_mask, input_ids)
            ce_student, ce_teacher = student_logits[real], teacher_logits[real]
        divergence = soft_target_divergence(ce_student, ce_teacher, self.temperature)
        losses = {"ce": divergence.mean() if divergence.numel() else _zero(student_masked)}
        losses["mlm"] = (F.cross_entropy(flat_student.float(), labels, ignore_index=IGNORE_INDEX) if bool(masked.any())
                         else _zero(student_masked))
        stats = _pair_stats(ce_student, ce_teacher, divergence)
        stats.update(classification_stats(flat_student, labels))
        teacher_stats = classification_stats(flat_teacher, labels)
        stats["teacher_accuracy"] = teacher_stats["accuracy"]
        if self.alpha_cos > 0:
            real = _real_rows(attention_mask, input_ids)
            distances = cosine_loss(student_hidden[real], teacher_hidden[real])
            losses["cos"] = distances.mean() if distances.numel() else _zero(student_hidden)
            stats["cos"] = (float(distances.detach().sum()), int(distances.numel()))
        weights = {"ce": self.alpha_ce, "mlm": self.alpha_mlm, "cos": self.alpha_cos}
        output.losses = {name: value for name, value in losses.items() if weights[name] > 0}
        output.loss = sum(weights[name] * value for name, value in output.losses.items())
        output.stats = stats
        return output


def _real_rows(attention_mask: torch.Tensor | None, input_ids: torch.Tensor) -> torch.Tensor:
    """Boolean (B, T): the non-padding positions (all of them without a padding mask)."""
    if attention_mask is None:
        return torch.ones_like(input_ids, dtype=torch.bool)
    if attention_mask.dim() != 2:
        raise Word2BertError("distillation over non-padding rows needs a (batch, length) padding mask")
    return attention_mask.bool()


# --------------------------------------------------------------------------- task distillation

class TaskDistillation(nn.Module):
    """Task-specific distillation: a fine-tuned ``teacher`` (a classification or tagging head on any
    encoder, e.g. :func:`word2bert.tasks.heads.load_finetuned` of a ``word2bert finetune`` output)
    teaches ``student``, a head of the same task and labels on a smaller encoder.

    ``forward(input_ids, token_type_ids, attention_mask, labels)`` (the batch of
    :class:`~word2bert.tasks.data.TaskCollator`): ``loss = alpha_ce L_ce + alpha_task CE(student, labels)``,
    both over the rows the head predicts (one per example; per token for tagging, where labels are
    not -100). Without labels it returns the student's logits, so ``evaluate_task`` runs on it too.
    """

    TASKS = ("classification", "pair", "tagging")

    def __init__(self, student: nn.Module, teacher: nn.Module, *, temperature: float = 2.0, alpha_ce: float = 0.5,
                 alpha_task: float = 0.5):
        super().__init__()
        _check_weights(temperature, alpha_ce=alpha_ce, alpha_task=alpha_task)
        for role, model in (("student", student), ("teacher", teacher)):
            if getattr(model, "task", None) not in self.TASKS:
                raise Word2BertError(f"the {role} ({type(model).__name__}) is not a classification or tagging model "
                                     f"(task {getattr(model, 'task', None)!r}); task distillation reads class logits")
        if type(student).__name__ != type(teacher).__name__ or list(getattr(student, "labels", [])) != list(
                getattr(teacher, "labels", [])):
            raise Word2BertError("the student must predict the teacher's task and labels (same head, same label list)")
        self.student = student
        self.teacher = freeze(teacher)
        self.temperature = float(temperature)
        self.alpha_ce, self.alpha_task = float(alpha_ce), float(alpha_task)

    @property
    def task(self) -> str:
        return self.student.task

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> DistillationOutput:
        with torch.no_grad():
            teacher_logits = self.teacher(input_ids, token_type_ids=token_type_ids,
                                          attention_mask=attention_mask).logits
        student_logits = self.student(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask).logits
        output = DistillationOutput(logits=student_logits, teacher_logits=teacher_logits)
        if labels is None:
            return output
        classes = student_logits.shape[-1]
        flat_student, flat_teacher = student_logits.reshape(-1, classes), teacher_logits.reshape(-1, classes)
        flat_labels = labels.reshape(-1).long()
        rows = flat_labels != IGNORE_INDEX
        divergence = soft_target_divergence(flat_student[rows], flat_teacher[rows], self.temperature)
        losses = {"ce": divergence.mean() if divergence.numel() else _zero(student_logits),
                  "task": (F.cross_entropy(flat_student.float(), flat_labels, ignore_index=IGNORE_INDEX)
                           if bool(rows.any()) else _zero(student_logits))}
        stats = _pair_stats(flat_student[rows], flat_teacher[rows], divergence)
        stats.update(classification_stats(flat_student, flat_labels))
        stats["teacher_accuracy"] = classification_stats(flat_teacher, flat_labels)["accuracy"]
        weights = {"ce": self.alpha_ce, "task": self.alpha_task}
        output.losses = {name: value for name, value in losses.items() if weights[name] > 0}
        output.loss = sum(weights[name] * value for name, value in output.losses.items())
        output.stats = stats
        return output


__all__ = ["CE_ROWS", "DistillationOutput", "FrequencySmoothedTokens", "MaskedLMDistillation", "SequenceDataset",
           "TaskDistillation", "cosine_loss", "soft_target_divergence", "soft_target_loss"]
