"""ERNIE 1.0's dialogue language model and ERNIE 2.0's continual multi-task pre-training.

ERNIE 1.0 (Sun et al. 2019) masks knowledge units (phrases, entities: :mod:`word2bert.objectives.units`)
and adds a **dialogue language model**: a multi-turn dialogue ``[CLS] t1 [SEP] t2 [SEP] t3 [SEP]``
with role embeddings (query 0 / response 1, in the segment-embedding slot) is masked as usual, and
a head on ``[CLS]`` tells real dialogues (label 0) from ones with a turn replaced by a turn of
another dialogue (label 1), half of each.

ERNIE 2.0 (Sun et al. 2020) trains one encoder on many tasks, adding tasks stage by stage while
it keeps training the earlier ones (continual multi-task learning); a **task embedding** (the
task's type id, transformers' ``task_type_ids``) is added to the input. The tasks here, with the
instance each builder makes from documents (lists of sentences of token ids):

===========================  ==================================================================
``knowledge_masking``        a block of consecutive sentences; masked LM over phrase/entity units
``capitalization``           the same block; per word-start token: is the word capitalised?
``token_document_relation``  the same block; per token: does it occur in the document outside it?
``sentence_reordering``      a block cut into n <= m segments (m = 3) at sentence boundaries
                             (at random tokens when it has fewer sentences), shuffled;
                             ``k = sum_{n<=m} n!`` classes (9), drawn uniformly
``sentence_distance``        a sentence A and a sentence B: next sentence (0), another sentence of
                             the same document (1), a sentence of another document (2), a third each
``discourse_relation``       consecutive sentences A, B where B begins with an explicit discourse
                             marker ("but", "because", "however", ...); the marker is removed and
                             is the label (the English ERNIE 2.0 data, after Sileo et al. 2019)
===========================  ==================================================================

Labels are balanced by construction where the task allows it; the reordering and distance
instances are rejection-sampled so that every class is equally likely.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.objectives.base import Objective, ObjectiveOutput, classification_loss, pad_batch, to_tensors
from word2bert.objectives.nsp import NextSentencePrediction, truncate_seq_pair

IGNORE_INDEX = -100

ERNIE2_TASKS = ("knowledge_masking", "capitalization", "token_document_relation", "sentence_reordering",
                "sentence_distance", "discourse_relation")
# masked-LM tasks and their units: ERNIE 1.0's three stages, or (None) the units the user chose
MASKING_TASKS = {"knowledge_masking": None, "basic_masking": "token", "phrase_masking": "phrase",
                 "entity_masking": "entity"}
TASKS = (*ERNIE2_TASKS, "basic_masking", "phrase_masking", "entity_masking", "dialogue")
# the task embedding: one id per kind of task (the paper's word-, structure- and semantic-aware tasks)
DEFAULT_TASK_TYPES = {"knowledge_masking": 0, "capitalization": 0, "token_document_relation": 0,
                      "sentence_reordering": 1, "sentence_distance": 1, "discourse_relation": 2,
                      "basic_masking": 0, "phrase_masking": 0, "entity_masking": 0, "dialogue": 0}
DISCOURSE_MARKERS = ("but", "because", "however", "so", "although", "therefore", "then", "meanwhile",
                     "instead", "also", "still", "thus", "moreover", "indeed", "otherwise", "finally",
                     "for example", "in fact", "as a result", "in addition", "on the other hand",
                     "nevertheless", "consequently", "for instance", "afterwards", "besides", "hence", "yet",
                     "similarly", "in contrast", "unfortunately", "fortunately", "actually", "meanwhile")


def reordering_classes(max_segments: int = 3) -> list[tuple[int, ...]]:
    """The permutations of 1..m segments, in order: class c is ``classes[c]`` (``sum n!`` of them)."""
    return [perm for n in range(1, max_segments + 1) for perm in itertools.permutations(range(n))]


def _segment(tokens: np.ndarray, cls_id: int, sep_id: int) -> dict:
    ids = np.concatenate([[cls_id], tokens, [sep_id]]).astype(np.int64)
    return {"input_ids": ids, "token_type_ids": np.zeros(len(ids), dtype=np.int64)}


def _segments(parts: Sequence[np.ndarray], cls_id: int, sep_id: int) -> dict:
    """``[CLS] p1 [SEP] p2 [SEP] ...`` with segment ids 0, 1, 0, ... per part (with its [SEP])."""
    pieces, types = [np.array([cls_id])], [np.zeros(1, dtype=np.int64)]
    for k, part in enumerate(parts):
        pieces += [np.asarray(part), np.array([sep_id])]
        types.append(np.full(len(part) + 1, k % 2, dtype=np.int64))
    return {"input_ids": np.concatenate(pieces).astype(np.int64), "token_type_ids": np.concatenate(types)}


# ---------------------------------------------------------------------------------- documents
def read_document_texts(path, words_per_sentence: int = 24) -> list[list[str]]:
    """Documents as lists of sentence strings, split as ``objectives.pretraining.read_documents`` splits
    them (blank lines between documents; else one document per line cut every ``words_per_sentence``)."""
    from word2bert.fileio import open_text

    with open_text(path) as handle:
        lines = [line.strip() for line in handle]
    documents: list[list[str]] = []
    if any(not line for line in lines):
        current: list[str] = []
        for line in lines + [""]:
            if line:
                current.append(line)
            elif current:
                documents.append(current)
                current = []
    else:
        for line in lines:
            words = line.split()
            if words:
                documents.append([" ".join(words[k:k + words_per_sentence])
                                  for k in range(0, len(words), words_per_sentence)])
    if not documents:
        raise Word2BertError(f"the corpus {path} is empty: no text to pre-train on")
    return documents


@dataclass
class ErnieDocuments:
    """Documents as lists of sentences (int32 token ids), with optional per-token capitalisation
    flags (1: a word start whose word is capitalised, 0: a lower-case word start, -1: not a word start)."""

    documents: list[list[np.ndarray]]
    capitalized: list[list[np.ndarray]] | None = None

    @classmethod
    def from_texts(cls, documents_text: Sequence[Sequence[str]], tokenizer) -> ErnieDocuments:
        """Tokenise documents (lists of sentence strings); flags from the text's case at each word start."""
        from word2bert.objectives.units import word_start_table

        table = word_start_table(tokenizer)
        flat = [s for d in documents_text for s in d]
        encoded = tokenizer.encode_batch(flat, add_special_tokens=False, return_offsets=True)
        sentences, flags = [], []
        for text, ids, offsets in zip(flat, encoded["input_ids"], encoded["offset_mapping"]):
            ids = np.asarray(ids, dtype=np.int32)
            upper = _uppercase(text)
            starts = np.asarray([o[0] for o in offsets], dtype=np.int64).reshape(-1)
            at_word_start = table[ids] if len(ids) else np.zeros(0, bool)
            cap = np.where(at_word_start, upper[np.clip(starts, 0, max(len(text) - 1, 0))] if len(text) else 0, -1)
            cap = cap.astype(np.int8)
            sentences.append(ids)
            flags.append(cap)
        documents, capitalized, k = [], [], 0
        for document in documents_text:
            pairs = [(s, f) for s, f in zip(sentences[k:k + len(document)], flags[k:k + len(document)]) if len(s)]
            k += len(document)
            if pairs:
                documents.append([s for s, _ in pairs])
                capitalized.append([f for _, f in pairs])
        if not documents:
            raise Word2BertError("the corpus is empty: no sentences to make ERNIE instances from")
        return cls(documents, capitalized)


def _uppercase(text: str) -> np.ndarray:
    """Bool per character of ``text``: upper case (vectorised for ASCII, per character otherwise)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    upper = (codes >= 65) & (codes <= 90)
    other = np.flatnonzero(codes > 127)
    if len(other):
        upper[other] = [text[i].isupper() for i in other.tolist()]
    return upper


def _blocks(document: list[np.ndarray], max_tokens: int) -> list[tuple[int, int, int, int]]:
    """Consecutive sentences packed into blocks of at most ``max_tokens`` tokens, as
    ``(first sentence, end sentence, first token, end token)`` within the document's concatenation."""
    blocks, start_sentence, start_token, size, token = [], 0, 0, 0, 0
    for i, sentence in enumerate(document):
        if size and size + len(sentence) > max_tokens:
            blocks.append((start_sentence, i, start_token, token))
            start_sentence, start_token, size = i, token, 0
        size += len(sentence)
        token += len(sentence)
        while size > max_tokens:  # a sentence longer than a block: cut it
            blocks.append((start_sentence, i + 1, start_token, start_token + max_tokens))
            start_token += max_tokens
            size -= max_tokens
            start_sentence = i
    if size:
        blocks.append((start_sentence, len(document), start_token, token))
    return blocks


# ---------------------------------------------------------------------------------- instance builders
def block_instances(corpus: ErnieDocuments, task: str, max_seq_length: int, cls_id: int, sep_id: int) -> list[dict]:
    """One-segment instances ``[CLS] block [SEP]`` for the word-aware tasks (see the module docstring)."""
    if task not in ("knowledge_masking", "capitalization", "token_document_relation"):
        raise Word2BertError(f"{task} does not use one-segment blocks")
    if task == "capitalization" and corpus.capitalized is None:
        raise Word2BertError("capitalization prediction needs the text's case (ErnieDocuments.from_texts)")
    items = []
    for d, document in enumerate(corpus.documents):
        flat = np.concatenate(document)
        flags = np.concatenate(corpus.capitalized[d]) if corpus.capitalized is not None else None
        for _, _, first, end in _blocks(document, max_seq_length - 2):
            item = _segment(flat[first:end], cls_id, sep_id)
            if task == "capitalization":
                labels = np.where(flags[first:end] >= 0, flags[first:end], IGNORE_INDEX)
                item["capitalization_labels"] = np.concatenate([[IGNORE_INDEX], labels, [IGNORE_INDEX]])
            elif task == "token_document_relation":
                outside = np.concatenate([flat[:first], flat[end:]])
                labels = np.isin(flat[first:end], outside).astype(np.int64)
                item["relation_labels"] = np.concatenate([[IGNORE_INDEX], labels, [IGNORE_INDEX]])
            items.append(item)
    if task == "capitalization":
        labels = np.concatenate([i["capitalization_labels"] for i in items])
        if not (labels == 1).any():
            raise Word2BertError("capitalization prediction: no capitalised word in the corpus (is it "
                                 "lower-cased?); leave the task out")
    return items


def sentence_reordering_instances(corpus: ErnieDocuments, max_seq_length: int, cls_id: int, sep_id: int,
                                  rng: np.random.Generator, max_segments: int = 3) -> list[dict]:
    """Blocks cut into n segments and shuffled; label = class of (n, permutation), uniform over classes."""
    classes = reordering_classes(max_segments)
    items = []
    for document in corpus.documents:
        flat = np.concatenate(document)
        boundaries = np.cumsum([len(s) for s in document])[:-1]
        for _, _, first, end in _blocks(document, max_seq_length - 1 - max_segments):
            feasible = [c for c, perm in enumerate(classes) if len(perm) <= end - first]  # n non-empty parts
            label = feasible[int(rng.integers(len(feasible)))]
            permutation = classes[label]
            n = len(permutation)
            inner = boundaries[(boundaries > first) & (boundaries < end)] - first
            if len(inner) >= n - 1:
                cuts = np.sort(rng.choice(inner, n - 1, replace=False))
            else:
                cuts = np.sort(rng.choice(np.arange(1, end - first), n - 1, replace=False))
            parts = np.split(flat[first:end], cuts)
            item = _segments([parts[k] for k in permutation], cls_id, sep_id)
            item["reordering_label"] = label
            items.append(item)
    return items


def sentence_distance_instances(corpus: ErnieDocuments, max_seq_length: int, cls_id: int, sep_id: int,
                                rng: np.random.Generator, per_sentence: float = 1.0) -> list[dict]:
    """Pairs (A, B) labelled 0 (B follows A), 1 (same document, not adjacent), 2 (another document)."""
    documents = corpus.documents
    if len(documents) < 2:
        raise Word2BertError("sentence distance needs at least two documents")
    items = []
    n_sentences = sum(len(d) for d in documents)
    for _ in range(int(per_sentence * n_sentences)):
        label = int(rng.integers(3))  # drawn first, then a pair that has it: the classes stay balanced
        for _attempt in range(100):
            d = int(rng.integers(len(documents)))
            document = documents[d]
            i = int(rng.integers(len(document)))
            if label == 0:
                if i + 1 >= len(document):
                    continue
                b = document[i + 1]
            elif label == 1:
                far = list(range(0, i - 1)) + list(range(i + 2, len(document)))  # not adjacent to i
                if not far:
                    continue
                b = document[far[int(rng.integers(len(far)))]]
            else:
                other = int(rng.integers(len(documents) - 1))
                other += other >= d
                b = documents[other][int(rng.integers(len(documents[other])))]
            a, b = truncate_seq_pair(document[i], b, max_seq_length - 3, rng)
            item = _segments([a, b], cls_id, sep_id)
            item["distance_label"] = label
            items.append(item)
            break
    return items


def discourse_instances(corpus: ErnieDocuments, tokenizer, max_seq_length: int, cls_id: int, sep_id: int,
                        markers: Sequence[str] = DISCOURSE_MARKERS, rng: np.random.Generator | None = None
                        ) -> tuple[list[dict], list[str]]:
    """Consecutive sentences whose second begins with a marker; returns the items and the label names.

    Markers are matched as token sequences at the start of B (longest first); the marker and a comma
    right after it are removed from B. Markers that never occur get no class.
    """
    rng = rng or np.random.default_rng(0)
    markers = list(dict.fromkeys(m.strip() for m in markers if m.strip()))
    marker_ids = [tuple(ids) for ids in tokenizer.ids_batch(markers)]
    comma = tokenizer.token_to_id(",")
    order = sorted(range(len(markers)), key=lambda k: -len(marker_ids[k]))
    found = []
    for document in corpus.documents:
        for a, b in zip(document[:-1], document[1:]):
            head = tuple(b[:8].tolist())
            for k in order:
                size = len(marker_ids[k])
                if size and head[:size] == marker_ids[k]:
                    rest = b[size:]
                    if comma is not None and len(rest) and rest[0] == comma:
                        rest = rest[1:]
                    if len(rest):
                        found.append((a, rest, k))
                    break
    used = sorted({k for _, _, k in found})
    label_of = {k: n for n, k in enumerate(used)}
    items = []
    for a, b, k in found:
        a, b = truncate_seq_pair(a, b, max_seq_length - 3, rng)
        item = _segments([a, b], cls_id, sep_id)
        item["discourse_label"] = label_of[k]
        items.append(item)
    return items, [markers[k] for k in used]


def dialogue_instances(dialogues: Sequence[Sequence[tuple[int, np.ndarray]]], max_seq_length: int, cls_id: int,
                       sep_id: int, rng: np.random.Generator, max_turns: int = 3) -> list[dict]:
    """ERNIE 1.0's dialogue LM instances: windows of ``max_turns`` consecutive turns ``(role, ids)``,
    roles as segment ids (query 0, response 1); half of them get one turn replaced by a random turn of
    another dialogue (``dialogue_label`` 1; real dialogues 0)."""
    if len(dialogues) < 2:
        raise Word2BertError("the dialogue LM needs at least two dialogues (one to take fake turns from)")
    items = []
    for d, dialogue in enumerate(dialogues):
        for start in range(max(1, len(dialogue) - max_turns + 1)):
            turns = list(dialogue[start:start + max_turns])
            if len(turns) < 2:
                continue
            label = int(rng.random() < 0.5)
            if label:
                other = int(rng.integers(len(dialogues) - 1))
                other += other >= d
                replacement = dialogues[other][int(rng.integers(len(dialogues[other])))]
                k = int(rng.integers(len(turns)))
                turns[k] = (turns[k][0], replacement[1])
            budget = max_seq_length - 1 - len(turns)
            while sum(len(t) for _, t in turns) > budget:  # trim the longest turn from its end
                longest = max(range(len(turns)), key=lambda j: len(turns[j][1]))
                turns[longest] = (turns[longest][0], turns[longest][1][:-1])
            if any(len(t) == 0 for _, t in turns):
                continue
            pieces, roles = [np.array([cls_id])], [np.zeros(1, np.int64)]
            for role, tokens in turns:
                pieces += [np.asarray(tokens), np.array([sep_id])]
                roles.append(np.full(len(tokens) + 1, role, dtype=np.int64))
            roles[0][0] = turns[0][0]
            items.append({"input_ids": np.concatenate(pieces).astype(np.int64),
                          "token_type_ids": np.concatenate(roles), "dialogue_label": label})
    if not items:
        raise Word2BertError("no dialogue has two turns")
    return items


def read_dialogues(path, tokenizer) -> list[list[tuple[int, np.ndarray]]]:
    """A dialogue file: one turn per line, blank lines between dialogues; a line may start with
    ``Q<TAB>`` or ``R<TAB>`` for its role (default: turns alternate Q, R, Q, ...)."""
    from word2bert.fileio import open_text

    dialogues, current = [], []
    with open_text(path) as handle:
        for line_number, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line.strip():
                if current:
                    dialogues.append(current)
                current = []
                continue
            role = len(current) % 2
            if line[:2] in ("Q\t", "R\t"):
                role, line = (0 if line[0] == "Q" else 1), line[2:]
            current.append((role, line))
    if current:
        dialogues.append(current)
    if not dialogues:
        raise Word2BertError(f"{path}: no dialogues (one turn per line, blank lines between dialogues)")
    texts = [text for dialogue in dialogues for _, text in dialogue]
    ids = iter(tokenizer.ids_batch(texts))
    return [[(role, np.asarray(next(ids), dtype=np.int32)) for role, _ in dialogue] for dialogue in dialogues]


# ---------------------------------------------------------------------------------- the schedule
@dataclass
class Stage:
    """``steps`` batches in which each batch's task is drawn with probability ∝ ``tasks[name]``."""

    steps: int
    tasks: dict[str, float]


@dataclass
class ErnieSchedule:
    """ERNIE 2.0's continual multi-task schedule: stages that add tasks and keep the earlier ones.

    ``continual=False`` lets a stage drop earlier tasks (ERNIE 1.0's masking stages: basic, then
    phrase, then entity level).
    """

    stages: list[Stage]
    task_types: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_TASK_TYPES))
    continual: bool = True

    def __post_init__(self):
        if not self.stages:
            raise Word2BertError("an ERNIE schedule needs at least one stage")
        seen: set[str] = set()
        for number, stage in enumerate(self.stages, 1):
            if not isinstance(stage.steps, int) or stage.steps < 1:
                raise Word2BertError(f"stage {number}: steps={stage.steps!r} must be a positive integer")
            if not stage.tasks:
                raise Word2BertError(f"stage {number} has no tasks")
            for task, weight in stage.tasks.items():
                if task not in TASKS:
                    raise Word2BertError(f"stage {number}: unknown task {task!r} (tasks: {', '.join(TASKS)})")
                if not isinstance(weight, (int, float)) or not weight > 0:
                    raise Word2BertError(f"stage {number}: weight of {task} must be > 0, got {weight!r}")
                if task not in self.task_types:
                    raise Word2BertError(f"no task type id for {task}")
            dropped = sorted(seen - set(stage.tasks))
            if dropped and self.continual:
                raise Word2BertError(f"stage {number} drops {', '.join(dropped)}: continual multi-task learning "
                                     "keeps training the tasks of earlier stages (or set \"continual\": false)")
            seen |= set(stage.tasks)

    @property
    def tasks(self) -> list[str]:
        """Every task of the schedule, in order of first appearance."""
        return list(dict.fromkeys(task for stage in self.stages for task in stage.tasks))

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)

    def task_sequence(self, seed: int = 0) -> list[str]:
        """The task of every batch, stage after stage (a function of the seed)."""
        rng = np.random.default_rng([seed, 7])
        sequence = []
        for stage in self.stages:
            names = list(stage.tasks)
            weights = np.array([stage.tasks[n] for n in names], dtype=np.float64)
            sequence += [names[k] for k in rng.choice(len(names), size=stage.steps, p=weights / weights.sum())]
        return sequence

    @classmethod
    def from_dict(cls, data: dict, source: str = "schedule") -> ErnieSchedule:
        if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
            raise Word2BertError(f"{source}: expected a JSON object with a list 'stages'")
        stages = []
        for number, stage in enumerate(data["stages"], 1):
            if not isinstance(stage, dict) or "steps" not in stage or "tasks" not in stage:
                raise Word2BertError(f"{source}: stage {number} needs 'steps' and 'tasks'")
            tasks = stage["tasks"]
            if isinstance(tasks, list):
                tasks = {t: 1.0 for t in tasks}
            if not isinstance(tasks, dict):
                raise Word2BertError(f"{source}: stage {number}: 'tasks' must map task names to weights")
            stages.append(Stage(stage["steps"], dict(tasks)))
        types = dict(DEFAULT_TASK_TYPES)
        types.update(data.get("task_types", {}))
        try:
            return cls(stages, types, bool(data.get("continual", True)))
        except Word2BertError as exc:
            raise Word2BertError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path) -> ErnieSchedule:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise Word2BertError(f"ERNIE schedule not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise Word2BertError(f"cannot read the ERNIE schedule {path}: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def default(cls, steps: int, tasks: Sequence[str] = ("knowledge_masking", "token_document_relation",
                                                          "sentence_reordering", "sentence_distance"),
                continual: bool = True) -> ErnieSchedule:
        """One task added per stage (``continual=False``: one task *per* stage), stages of equal length,
        equal weights."""
        if not tasks:
            raise Word2BertError("give at least one ERNIE task")
        if steps < len(tasks):
            raise Word2BertError(f"{steps} steps are fewer than the {len(tasks)} stages of the default schedule "
                                 "(one task added per stage): train longer or give a schedule file")
        per_stage = steps // len(tasks)
        stages = [Stage(per_stage if k < len(tasks) - 1 else steps - per_stage * (len(tasks) - 1),
                        {t: 1.0 for t in (tasks[:k + 1] if continual else tasks[k:k + 1])})
                  for k in range(len(tasks))]
        return cls(stages, continual=continual)


class MultiTaskData:
    """Items of several tasks, addressed as ``data[(task, index)]``; each item also gets its ``task``."""

    def __init__(self, items_by_task: dict[str, list[dict]], task_types: dict[str, int]):
        empty = [t for t, items in items_by_task.items() if not items]
        if empty:
            raise Word2BertError(f"no instances for task(s) {', '.join(empty)} in this corpus")
        self.items = items_by_task
        self.task_types = task_types

    def __len__(self) -> int:
        return sum(len(v) for v in self.items.values())

    def __getitem__(self, key) -> dict:
        task, index = key
        item = dict(self.items[task][index])
        item["task"] = task
        item["index"] = index
        return item


class ScheduleSampler:
    """The trainer's sampler for an :class:`ErnieSchedule`: each batch holds items of one task, the
    task of batch s being ``schedule.task_sequence(seed)[s]``; a task's items are read in a shuffled
    order that starts again when used up. One epoch is the whole schedule."""

    stateful = False

    def __init__(self, schedule: ErnieSchedule, data: MultiTaskData, batch_size: int, seed: int = 0):
        missing = [t for t in schedule.tasks if t not in data.items]
        if missing:
            raise Word2BertError(f"the schedule uses task(s) without data: {', '.join(missing)}")
        self.schedule, self.data, self.batch_size, self.seed = schedule, data, int(batch_size), seed

    def num_batches(self, world_size: int = 1) -> int:
        return self.schedule.total_steps

    def batches(self, epoch: int, rank: int = 0, world_size: int = 1) -> list[list]:
        rng = np.random.default_rng([self.seed, epoch])
        orders = {t: rng.permutation(len(items)) for t, items in self.data.items.items()}
        cursor = dict.fromkeys(orders, 0)
        size = self.batch_size * world_size
        out = []
        for task in self.schedule.task_sequence(self.seed + epoch):
            order = orders[task]
            picks = [int(order[(cursor[task] + k) % len(order)]) for k in range(size)]
            cursor[task] += size
            out.append([(task, i) for i in picks[rank::world_size]])
        return out




# ---------------------------------------------------------------------------------- objectives and batches
# label key and number of classes of each sentence-level task (None: set from the data)
SENTENCE_TASKS = {"sentence_reordering": ("reordering_label", None), "sentence_distance": ("distance_label", 3),
                  "discourse_relation": ("discourse_label", None), "dialogue": ("dialogue_label", 2)}
TOKEN_TASKS = {"capitalization": "capitalization_labels", "token_document_relation": "relation_labels"}


class SentenceClassification(NextSentencePrediction):
    """A classifier on the pooled ``[CLS]`` vector for a sentence-level task (next-sentence prediction's
    head with another label key); it runs only on batches that carry its labels."""

    def active(self, batch) -> bool:
        return batch.get(self.label_key) is not None


class TokenClassification(Objective):
    """A per-token classifier ``logits_t = W h_t + b`` for a word-aware task; labels -100 are skipped.

    ``prepare`` pads the items' ``label_key`` arrays to the batch width with -100.
    """

    def __init__(self, head: nn.Module | None, label_key: str):
        super().__init__()
        self.head = head
        self.label_key = label_key

    def active(self, batch) -> bool:
        return batch.get(self.label_key) is not None

    def prepare(self, batch, items, rng) -> None:
        width = batch["input_ids"].shape[1]
        labels = np.full((len(items), width), IGNORE_INDEX, dtype=np.int64)
        for row, item in enumerate(items):
            values = np.asarray(item[self.label_key], dtype=np.int64)
            labels[row, :len(values)] = values
        batch[self.label_key] = labels

    def forward(self, hidden, batch, model) -> ObjectiveOutput:
        logits = self.head(hidden)
        loss, stats = classification_loss(logits.reshape(-1, logits.shape[-1]), batch[self.label_key])
        return ObjectiveOutput(loss=loss, stats=stats, logits=logits)


class MultiTaskCollator:
    """Batches of one task each (see :class:`ScheduleSampler`): pad, run that task's ``preparers``
    (objectives that build the batch, e.g. a masked-LM objective with the task's masking), add
    ``task_type_ids`` (B, T) filled with the task's type id."""

    def __init__(self, preparers: dict[str, list], task_types: dict[str, int], pad_id: int = 0):
        self.preparers = preparers
        self.task_types = task_types
        self.pad_id = pad_id

    def __call__(self, items, rng=None) -> dict:
        tasks = {item.get("task") for item in items}
        if len(tasks) != 1 or None in tasks:
            raise Word2BertError(f"a multi-task batch must hold items of one task, got {sorted(map(str, tasks))}")
        task = tasks.pop()
        if task not in self.preparers:
            raise Word2BertError(f"no objective prepares batches of task {task!r}")
        batch = pad_batch(items, self.pad_id)
        for objective in self.preparers[task]:
            objective.prepare(batch, items, rng)
        batch["task_type_ids"] = np.full(batch["input_ids"].shape, self.task_types[task], dtype=np.int64)
        return to_tensors(batch)


__all__ = ["DEFAULT_TASK_TYPES", "DISCOURSE_MARKERS", "ERNIE2_TASKS", "MASKING_TASKS", "TASKS", "ErnieDocuments", "ErnieSchedule",
           "MultiTaskCollator", "MultiTaskData", "SENTENCE_TASKS", "ScheduleSampler", "SentenceClassification",
           "Stage", "TOKEN_TASKS", "TokenClassification", "block_instances", "dialogue_instances",
           "discourse_instances", "read_dialogues", "reordering_classes", "sentence_distance_instances",
           "sentence_reordering_instances"]
