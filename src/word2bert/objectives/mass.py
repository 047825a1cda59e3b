"""MASS: masked sequence-to-sequence pre-training (Song et al. 2019) for the Transformer encoder-decoder.

For a sentence ``x = x_0 .. x_{m-1}`` (ending with ``</s>``) one contiguous fragment ``x_u .. x_{v-1}``
of ``k = round(ratio * m)`` tokens (at least 1) is chosen: it starts the sentence 20% of the time,
ends it 20% of the time and sits at a uniformly random place otherwise (the reference code's
``shuffle_segments``). Then

- the **encoder** reads ``x`` with the fragment corrupted per token: 80% ``<mask>``, 10% a random
  token, 10% unchanged (BERT's rule on the fragment);
- the **decoder** predicts the fragment: at position ``t`` in ``u .. v-1`` its input is ``x_{t-1}``
  (the start token ``<s>`` when t = 0) and its label is ``x_t``; it keeps the original positions
  (``decoder_position_ids``) and gets no other position of the sentence: the tokens outside the
  fragment, which the encoder sees, are masked out of the decoder (the reference code leaves them
  out, which is the same for a causal decoder that only attends to its own inputs);
- the decoder's attention over the encoder skips the ``<mask>`` positions (the reference code's
  ``enc_mask``), so it must use the unmasked context.

``k = 1`` is BERT-like (one masked token predicted from the bidirectional context, the decoder
input telling nothing new) and ``k = m`` GPT-like (the encoder sees only masks, the decoder is a
left-to-right language model). ``language`` ids become language embeddings
(``token_type_ids`` / ``decoder_token_type_ids``) when the model has ``type_vocab_size`` > 0.

:class:`MassCollator` turns monolingual items ``{"input_ids", "language"}`` into the keyword arguments
of :class:`~word2bert.models.transformer.TransformerForTranslation`; the model's label loss at the
fragment positions is the MASS objective.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from word2bert.errors import Word2BertError

IGNORE_INDEX = -100


class MassMasking:
    """Fragment selection and corruption of one sentence (see the module docstring).

    ``special_ids`` are never drawn as random replacements; ``ratio`` is the fragment's share of the
    sentence (0.5 in the paper); ``mask_prob`` / ``random_prob`` split the fragment's corruption.
    """

    def __init__(self, vocab_size: int, mask_id: int, bos_id: int, special_ids: Sequence[int] = (),
                 ratio: float = 0.5, mask_prob: float = 0.8, random_prob: float = 0.1,
                 start_prob: float = 0.2, end_prob: float = 0.2):
        if not 0.0 < ratio <= 1.0:
            raise Word2BertError(f"parameter ratio={ratio!r} must be in (0, 1]")
        if mask_prob < 0 or random_prob < 0 or mask_prob + random_prob > 1:
            raise Word2BertError(f"mask_prob={mask_prob} and random_prob={random_prob} must be >= 0 and sum to <= 1")
        if start_prob < 0 or end_prob < 0 or start_prob + end_prob > 1:
            raise Word2BertError(f"start_prob={start_prob} and end_prob={end_prob} must be >= 0 and sum to <= 1")
        self.vocab_size, self.mask_id, self.bos_id = vocab_size, mask_id, bos_id
        self.ratio, self.mask_prob, self.random_prob = ratio, mask_prob, random_prob
        self.start_prob, self.end_prob = start_prob, end_prob
        specials = set(int(i) for i in special_ids) | {mask_id, bos_id}
        self.ordinary_ids = np.array([i for i in range(vocab_size) if i not in specials], dtype=np.int64)

    def fragment_length(self, length: int) -> int:
        return min(length, max(1, int(round(length * self.ratio))))

    def fragment(self, length: int, rng: np.random.Generator) -> tuple[int, int]:
        """``(u, v)``: the fragment is positions u .. v-1 of a sentence of ``length`` tokens."""
        k = self.fragment_length(length)
        draw = rng.random()
        if draw < self.start_prob:
            start = 0
        elif draw < self.start_prob + self.end_prob:
            start = length - k
        else:
            start = int(rng.integers(0, length - k + 1))
        return start, start + k

    def __call__(self, tokens: np.ndarray, rng: np.random.Generator, language: int | None = None) -> dict:
        """One sentence -> ``input_ids``, ``labels`` (the fragment), ``decoder_input_ids``,
        ``decoder_position_ids``, ``memory_attention_mask`` (1 = the decoder may attend to that encoder
        position) and, with a language, ``token_type_ids`` / ``decoder_token_type_ids``."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.ndim != 1 or len(tokens) == 0:
            raise Word2BertError("MASS needs a non-empty 1-D sentence of token ids")
        start, end = self.fragment(len(tokens), rng)
        encoder_input = tokens.copy()
        action = rng.random(end - start)
        fragment = encoder_input[start:end]
        masked = action < self.mask_prob
        randomised = (action >= self.mask_prob) & (action < self.mask_prob + self.random_prob)
        fragment[masked] = self.mask_id
        if randomised.any() and len(self.ordinary_ids):
            fragment[randomised] = rng.choice(self.ordinary_ids, int(randomised.sum()))
        previous = np.concatenate([[self.bos_id], tokens[:-1]])
        item = {
            "input_ids": encoder_input,
            "labels": tokens[start:end].copy(),
            "decoder_input_ids": previous[start:end].copy(),
            "decoder_position_ids": np.arange(start, end, dtype=np.int64),
            "memory_attention_mask": (encoder_input != self.mask_id).astype(np.int64),
        }
        if language is not None:
            item["token_type_ids"] = np.full(len(tokens), language, dtype=np.int64)
            item["decoder_token_type_ids"] = np.full(end - start, language, dtype=np.int64)
        return item


class MassCollator:
    """``collate(items, rng)`` for the trainer: MASS-corrupt each monolingual item and pad the batch.

    Items are ``{"input_ids": array, "language": int}`` (``language`` optional). Returns tensors:
    ``input_ids``, ``attention_mask``, ``token_type_ids``, ``decoder_input_ids``,
    ``decoder_position_ids``, ``decoder_token_type_ids``, ``memory_attention_mask`` and ``labels``
    (-100 on padding).
    """

    def __init__(self, masking: MassMasking, pad_id: int):
        self.masking, self.pad_id = masking, pad_id

    def __call__(self, items: Sequence[dict], rng: np.random.Generator | None = None) -> dict:
        from word2bert.corpus.parallel import collate_translation

        rng = rng if rng is not None else np.random.default_rng()
        corrupted = [self.masking(item["input_ids"], rng, item.get("language")) for item in items]
        return collate_translation(corrupted, self.pad_id)


class MonolingualDataset:
    """Encoded sentences of one or more languages: ``dataset[i] = {"input_ids", "language"}``."""

    def __init__(self, sentences: list[np.ndarray], languages: Sequence[int] | np.ndarray):
        if len(sentences) != len(languages):
            raise Word2BertError(f"{len(sentences)} sentences but {len(languages)} language ids")
        self.sentences, self.languages = sentences, np.asarray(languages, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, index) -> dict:
        return {"input_ids": self.sentences[index], "language": int(self.languages[index])}

    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.sentences], dtype=np.int64)


__all__ = ["MassCollator", "MassMasking", "MonolingualDataset"]
