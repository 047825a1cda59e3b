"""Parallel corpora for translation: TSV pairs, a joint BPE vocabulary, token-budget batches.

- :func:`read_parallel_tsv` reads ``source<TAB>target`` lines (plain, .gz, .bz2, .xz); a line without
  a tab or with an empty side is an error naming the file and line.
- :func:`train_joint_bpe` learns one byte-level BPE vocabulary over both sides (the paper's shared
  source-target vocabulary, section 5.1), with the special tokens ``</s>`` (end of sentence, id 0),
  ``<pad>`` (1), ``<s>`` (decoder start, 2), ``<mask>`` (3) and one language tag per language.
- :class:`ParallelDataset` holds the encoded pairs (each side followed by ``</s>``); ``dataset[i]`` is
  an item ``{"input_ids", "labels"}`` for :func:`collate_translation`.
- :class:`TokenBudgetSampler` forms batches by token count (Vaswani et al. 2017, section 5.1: "each
  training batch contained ... approximately 25000 source tokens and 25000 target tokens"): pairs of
  similar length are grouped, and each batch holds as many as fit in ``max_tokens`` padded source +
  target positions.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from word2bert.errors import Word2BertError
from word2bert.fileio import open_text
from word2bert.train.samplers import Sampler

EOS, PAD, BOS, MASK = "</s>", "<pad>", "<s>", "<mask>"
SPECIAL_TOKENS = (EOS, PAD, BOS, MASK)
IGNORE_INDEX = -100


def read_parallel_tsv(path, max_pairs: int | None = None, line_numbers: list[int] | None = None
                      ) -> list[tuple[str, str]]:
    """The ``(source, target)`` pairs of a TSV file, one pair per line (blank lines are skipped).
    ``line_numbers``, a list, receives each pair's 1-based line number (for messages about a pair)."""
    path = Path(path)
    if not path.is_file():
        raise Word2BertError(f"parallel file not found: {path}")
    pairs = []
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if "\t" not in line:
                raise Word2BertError(f"{path}:{number}: no tab; each line must be 'source<TAB>target'")
            source, target = line.split("\t", 1)
            if not source.strip():
                raise Word2BertError(f"{path}:{number}: empty source sentence")
            if not target.strip():
                raise Word2BertError(f"{path}:{number}: empty target sentence")
            pairs.append((source.strip(), target.strip()))
            if line_numbers is not None:
                line_numbers.append(number)
            if max_pairs is not None and len(pairs) >= max_pairs:
                break
    if not pairs:
        raise Word2BertError(f"{path}: no sentence pairs")
    return pairs


def language_tag(language: str) -> str:
    return f"<{language}>"


def train_joint_bpe(texts: Sequence[str], vocab_size: int = 8000, languages: Sequence[str] = (),
                    min_frequency: int = 2):
    """A byte-level BPE vocabulary learned over ``texts`` (both sides of the training pairs).

    Ids 0-3 are ``</s> <pad> <s> <mask>``, then one tag ``<xx>`` per language in ``languages``.
    """
    from word2bert.tokenizers.bpe import ByteLevelBPETokenizer

    specials = list(SPECIAL_TOKENS) + [language_tag(language) for language in languages]
    with tempfile.TemporaryDirectory() as directory:
        corpus = Path(directory) / "corpus.txt"
        with open(corpus, "w", encoding="utf-8") as handle:
            for text in texts:
                handle.write(text.replace("\n", " ") + "\n")
        return ByteLevelBPETokenizer.train(corpus, vocab_size=vocab_size, min_frequency=min_frequency,
                                           special_tokens=specials, add_prefix_space=True)


def load_joint_bpe(directory):
    """The tokenizer :func:`train_joint_bpe` made, saved with ``save(directory)``."""
    from word2bert.tokenizers.bpe import ByteLevelBPETokenizer

    return ByteLevelBPETokenizer.from_pretrained(directory, pad_token=PAD, bos_token=BOS, add_prefix_space=True)


def special_ids(tokenizer) -> dict[str, int]:
    """``{"eos", "pad", "bos", "mask"}`` ids of a joint BPE tokenizer."""
    ids = {name: tokenizer.token_to_id(token) for name, token in (("eos", EOS), ("pad", PAD), ("bos", BOS),
                                                                 ("mask", MASK))}
    missing = [name for name, index in ids.items() if index is None]
    if missing:
        raise Word2BertError(f"the tokenizer lacks the special token(s) {', '.join(missing)}")
    return ids


def decode_translations(tokenizer, sequences) -> list[str]:
    """Token ids (rows of a tensor or lists; cut at the first ``</s>``) -> detokenised strings."""
    eos = tokenizer.token_to_id(EOS)
    texts = []
    for row in sequences:
        ids = [int(i) for i in row]
        if eos in ids:
            ids = ids[: ids.index(eos)]
        texts.append(tokenizer.decode(ids, skip_special_tokens=True).strip())
    return texts


class ParallelDataset:
    """Encoded pairs: ``sources[i]`` and ``targets[i]`` are int32 arrays ending with ``</s>``."""

    def __init__(self, sources: list[np.ndarray], targets: list[np.ndarray]):
        if len(sources) != len(targets):
            raise Word2BertError(f"{len(sources)} sources but {len(targets)} targets")
        self.sources, self.targets = sources, targets
        self.skipped = 0

    @classmethod
    def encode(cls, pairs: Sequence[tuple[str, str]], tokenizer, max_length: int | None = None,
               where: str = "", skip_long: bool = False,
               line_numbers: Sequence[int] | None = None) -> "ParallelDataset":
        """Encode ``pairs`` with ``tokenizer``. A side longer than ``max_length`` tokens (with ``</s>``)
        is an error naming the pair (``where`` and its 1-based number, or its ``line_numbers`` entry), or,
        with ``skip_long``, the pair is left out (``dataset.skipped`` counts them)."""
        eos = special_ids(tokenizer)["eos"]
        sources = tokenizer.ids_batch([s for s, _ in pairs])
        targets = tokenizer.ids_batch([t for _, t in pairs])
        encoded_sources, encoded_targets, skipped = [], [], 0
        for number, (src, tgt) in enumerate(zip(sources, targets), 1):
            too_long = [(side, len(ids) + 1) for side, ids in (("source", src), ("target", tgt))
                        if max_length is not None and len(ids) + 1 > max_length]
            if too_long and skip_long:
                skipped += 1
                continue
            if too_long:
                side, length = too_long[0]
                if line_numbers is not None:
                    number = line_numbers[number - 1]
                raise Word2BertError(
                    f"{where or 'pair'} {number}: the {side} has {length} tokens, more than the model's "
                    f"{max_length} positions; shorten it or raise max_position_embeddings")
            encoded_sources.append(np.array(src + [eos], dtype=np.int32))
            encoded_targets.append(np.array(tgt + [eos], dtype=np.int32))
        dataset = cls(encoded_sources, encoded_targets)
        dataset.skipped = skipped
        return dataset

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index) -> dict:
        return {"input_ids": self.sources[index], "labels": self.targets[index]}

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([len(s) for s in self.sources], dtype=np.int64),
                np.array([len(t) for t in self.targets], dtype=np.int64))

    def subset(self, indices) -> "ParallelDataset":
        return ParallelDataset([self.sources[i] for i in indices], [self.targets[i] for i in indices])


def pad_rows(rows: Sequence[np.ndarray], value: int) -> np.ndarray:
    """Right-pad 1-D arrays to one (N, max length) int64 array."""
    width = max(len(row) for row in rows)
    out = np.full((len(rows), width), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def collate_translation(items: Sequence[dict], pad_id: int, rng=None) -> dict:
    """Items -> the model's keyword arguments (torch tensors): ``input_ids`` and ``attention_mask``
    (B, S), ``labels`` (B, T) with -100 on padding. Any other array in the items (``token_type_ids``,
    ``decoder_token_type_ids``, ``decoder_position_ids``, ``decoder_input_ids``) is padded alongside."""
    import torch

    batch = {"input_ids": pad_rows([item["input_ids"] for item in items], pad_id)}
    batch["attention_mask"] = (pad_rows([np.ones(len(item["input_ids"])) for item in items], 0) > 0).astype(np.int64)
    batch["labels"] = pad_rows([item["labels"] for item in items], IGNORE_INDEX)
    for key in items[0]:
        if key not in batch:
            batch[key] = pad_rows([item[key] for item in items], pad_id if key.endswith("input_ids") else 0)
    return {key: torch.from_numpy(value) for key, value in batch.items()}


class TokenBudgetSampler(Sampler):
    """Length-grouped batches holding at most ``max_tokens`` padded source + target positions.

    Per epoch (a function of ``seed`` and the epoch): shuffle the pairs, sort each window of
    ``window`` pairs by (source, target) length, cut it greedily into batches whose
    ``batch size * (longest source + longest target)`` stays within ``max_tokens``, and shuffle the
    batches. With several ranks, global batches are split between them by interleaving, as
    :class:`~word2bert.train.samplers.LengthGroupedSampler` does. A pair longer than the budget on
    its own forms a batch alone.
    """

    def __init__(self, source_lengths, target_lengths, max_tokens: int, seed: int = 0, window: int = 10000):
        self.source_lengths = np.asarray(source_lengths, dtype=np.int64)
        self.target_lengths = np.asarray(target_lengths, dtype=np.int64)
        if len(self.source_lengths) != len(self.target_lengths) or len(self.source_lengths) == 0:
            raise Word2BertError("TokenBudgetSampler needs as many (>= 1) source as target lengths")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2:
            raise Word2BertError(f"parameter max_tokens={max_tokens!r} must be an integer >= 2")
        self.max_tokens, self.seed, self.window = max_tokens, seed, int(window)
        self._count: dict[int, int] = {}

    def global_batches(self, epoch: int, world_size: int = 1) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch, 31])
        order = rng.permutation(len(self.source_lengths))
        budget = self.max_tokens * world_size
        batches = []
        for start in range(0, len(order), self.window):
            chunk = order[start:start + self.window]
            chunk = chunk[np.lexsort((self.target_lengths[chunk], self.source_lengths[chunk]))]
            current, longest_source, longest_target = [], 0, 0
            for index in chunk:
                source, target = self.source_lengths[index], self.target_lengths[index]
                grown = (len(current) + 1) * (max(longest_source, source) + max(longest_target, target))
                if current and grown > budget:
                    batches.append(np.array(current))
                    current, longest_source, longest_target = [], 0, 0
                current.append(index)
                longest_source, longest_target = max(longest_source, source), max(longest_target, target)
            if current:
                batches.append(np.array(current))
        if world_size > 1:
            batches = [b for b in batches if len(b) >= world_size]
        return [batches[i] for i in rng.permutation(len(batches))]

    def num_batches(self, world_size: int = 1) -> int:
        """The batches of epoch 0 (other epochs cut their own shuffle and may differ by a few)."""
        if world_size not in self._count:
            self._count[world_size] = len(self.global_batches(0, world_size))
        return self._count[world_size]

    def batches(self, epoch: int, rank: int = 0, world_size: int = 1) -> list[list]:
        return [batch[rank::world_size].tolist() for batch in self.global_batches(epoch, world_size)]


__all__ = [
    "BOS",
    "EOS",
    "MASK",
    "PAD",
    "ParallelDataset",
    "TokenBudgetSampler",
    "collate_translation",
    "decode_translations",
    "language_tag",
    "load_joint_bpe",
    "read_parallel_tsv",
    "special_ids",
    "train_joint_bpe",
]
