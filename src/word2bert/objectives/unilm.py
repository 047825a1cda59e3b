"""UniLM: one shared Transformer trained as four language models through its self-attention mask
(Dong et al. 2019, "Unified Language Model Pre-training for Natural Language Understanding and
Generation").

An input is a pair ``[CLS] A [SEP] B [SEP]``; tokens are masked and predicted as in BERT (15%,
80/10/10) and what distinguishes the four objectives is only who may attend to whom (True = query
row i may attend to key column j), for real tokens i, j:

- bidirectional: every token sees every token (BERT);
- left-to-right: j <= i;   right-to-left: j >= i;
- sequence-to-sequence: every token sees the source segment ``[CLS] A [SEP]``; a target token (in
  ``B [SEP]``) also sees the target tokens up to itself; source tokens never see the target.

Within a batch each pair draws its objective: bidirectional 1/3, sequence-to-sequence 1/3,
left-to-right 1/6, right-to-left 1/6 (the paper's section 2.3). Each objective has its own segment
(token type) embeddings, as in the reference code's ``new_segment_ids``: bidirectional 0 / 1
(segments A / B), left-to-right 2, right-to-left 3, sequence-to-sequence 4 (source) / 5 (target), so
the model knows which mask it is under. A BERT checkpoint (two segment rows) is extended to six with
:func:`unilm_from_bert` (the new rows start as copies of rows 0 and 1).

Fine-tuning for generation (``target_mask_prob``, 0.7 in the paper for summarisation) uses the
sequence-to-sequence mask only and masks that share of the target tokens, the final ``[SEP]``
included so that the model learns where to stop. Decoding (:func:`unilm_generate`) runs left to
right over a key/value cache: the source is encoded once (bidirectionally), then each step feeds
the token just chosen and a ``[MASK]`` after it, reads the prediction at the mask, and drops the
mask's keys/values from the cache (the reference decoder keeps the hidden states of all but the
last position the same way).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.objectives.mlm import MaskedLM, MaskedLMHead, MaskedLMObjective

MODES = ("bidirectional", "left_to_right", "right_to_left", "seq2seq")
#: The paper's mixture: bidirectional 1/3, left-to-right 1/6, right-to-left 1/6, sequence-to-sequence 1/3.
MODE_PROBABILITIES = (1 / 3, 1 / 6, 1 / 6, 1 / 3)
#: Token type ids (segment A, segment B) of each mode.
SEGMENT_IDS = {"bidirectional": (0, 1), "left_to_right": (2, 2), "right_to_left": (3, 3), "seq2seq": (4, 5)}
TYPE_VOCAB_SIZE = 6


def unilm_attention_mask(mode: str, source_length: int, length: int, width: int | None = None) -> np.ndarray:
    """The (width, width) boolean mask of ``mode`` for a pair of ``length`` real tokens whose first
    ``source_length`` are the source ``[CLS] A [SEP]``; positions from ``length`` on are padding
    (nobody attends to them; their own rows see nothing)."""
    width = length if width is None else width
    if mode not in MODES:
        raise Word2BertError(f"UniLM mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 0 < source_length <= length <= width:
        raise Word2BertError(f"bad UniLM segment lengths: source {source_length}, total {length}, width {width}")
    mask = np.zeros((width, width), dtype=bool)
    real = slice(0, length)
    if mode == "bidirectional":
        mask[real, real] = True
    elif mode == "left_to_right":
        mask[real, real] = np.tril(np.ones((length, length), dtype=bool))
    elif mode == "right_to_left":
        mask[real, real] = np.triu(np.ones((length, length), dtype=bool))
    else:
        mask[real, :source_length] = True
        target = length - source_length
        mask[source_length:length, source_length:length] = np.tril(np.ones((target, target), dtype=bool))
    return mask


def segment_ids(mode: str, source_length: int, length: int, width: int | None = None) -> np.ndarray:
    """The token type ids of ``mode`` (padding: 0)."""
    width = length if width is None else width
    first, second = SEGMENT_IDS[mode]
    out = np.zeros(width, dtype=np.int64)
    out[:source_length] = first
    out[source_length:length] = second
    return out


class UniLMObjective(MaskedLMObjective):
    """Masked LM under UniLM's four attention masks (pre-training) or the sequence-to-sequence one
    with target masking (fine-tuning); see the module docstring.

    Items carry ``input_ids`` = ``[CLS] A [SEP] B [SEP]`` and ``source_length`` = len(``[CLS] A [SEP]``).
    ``prepare`` draws each pair's mode (``mode_probabilities`` over :data:`MODES`), writes the
    (B, T, T) ``attention_mask`` and the ``token_type_ids``, masks tokens with ``masking`` (BERT's
    15% over the whole pair), or, with ``target_mask_prob``, that share of the target tokens, and
    records the drawn ``unilm_mode`` (B,) (indices into :data:`MODES`).
    """

    def __init__(self, head: MaskedLMHead | None = None, masking: MaskedLM | None = None,
                 mode_probabilities: Sequence[float] = MODE_PROBABILITIES, target_mask_prob: float | None = None):
        super().__init__(head, masking)
        probabilities = np.asarray(mode_probabilities, dtype=np.float64)
        if probabilities.shape != (len(MODES),) or (probabilities < 0).any() or not np.isclose(probabilities.sum(), 1):
            raise Word2BertError(f"mode_probabilities must be {len(MODES)} non-negative numbers summing to 1 "
                                 f"(order: {', '.join(MODES)})")
        if target_mask_prob is not None and not 0 < target_mask_prob < 1:
            raise Word2BertError(f"parameter target_mask_prob={target_mask_prob!r} must be in (0, 1)")
        self.mode_probabilities = probabilities
        self.target_mask_prob = target_mask_prob

    def prepare(self, batch, items, rng) -> None:
        if self.masking is None:
            raise Word2BertError("the UniLM objective has no masking settings (MaskedLM) to build batches with")
        rng = rng if rng is not None else np.random.default_rng()
        input_ids = batch["input_ids"]
        size, width = input_ids.shape
        lengths = batch["attention_mask"].sum(axis=1)
        sources = np.array([int(item["source_length"]) for item in items])
        if self.target_mask_prob is not None:
            modes = np.full(size, MODES.index("seq2seq"))
        else:
            modes = rng.choice(len(MODES), size=size, p=self.mode_probabilities)
        masks = np.zeros((size, width, width), dtype=bool)
        types = np.zeros((size, width), dtype=np.int64)
        for row in range(size):  # per pair, not per token
            mode = MODES[modes[row]]
            masks[row] = unilm_attention_mask(mode, sources[row], lengths[row], width)
            types[row] = segment_ids(mode, sources[row], lengths[row], width)
        region = batch["attention_mask"]
        if self.target_mask_prob is not None:  # only target tokens (B [SEP]) are predicted
            region = region * (np.arange(width)[None, :] >= sources[:, None])
        masked = self.masking.apply(input_ids, region, rng)
        batch.update(masked)
        batch["attention_mask"] = masks
        batch["token_type_ids"] = types
        batch["unilm_mode"] = modes


def fine_tuning_masking(vocab_size: int, mask_id: int, cls_id: int, pad_id: int, target_mask_prob: float = 0.7,
                        max_predictions: int = 512) -> MaskedLM:
    """The MaskedLM of sequence-to-sequence fine-tuning: ``[SEP]`` may be chosen (the end of the target)."""
    return MaskedLM(vocab_size, mask_id, special_ids=(cls_id, pad_id, mask_id), pad_id=pad_id,
                    masked_lm_prob=target_mask_prob, max_predictions_per_seq=max_predictions)


def pair_item(source_ids: Sequence[int], target_ids: Sequence[int], cls_id: int, sep_id: int) -> dict:
    """``{"input_ids": [CLS] source [SEP] target [SEP], "source_length"}`` (ids without special tokens)."""
    ids = [cls_id, *source_ids, sep_id, *target_ids, sep_id]
    return {"input_ids": np.array(ids, dtype=np.int64), "source_length": len(source_ids) + 2}


def unilm_from_bert(model, objective: UniLMObjective):
    """Turn a :class:`~word2bert.models.bert.BertForPreTraining` (e.g. loaded from a BERT checkpoint) into a
    UniLM model in place: its ``mlm`` objective becomes ``objective`` (keeping the MLM head, so the
    checkpoint names stay BERT's), NSP is dropped, and the segment embeddings grow to six rows (the
    new rows copy rows 0 and 1 alternately). Returns the model."""
    embeddings = model.encoder.embeddings
    table = embeddings.token_type_embeddings
    if table is None:
        raise Word2BertError("UniLM needs a model with segment (token type) embeddings")
    if table.num_embeddings < TYPE_VOCAB_SIZE:
        grown = nn.Embedding(TYPE_VOCAB_SIZE, table.embedding_dim)
        with torch.no_grad():
            for row in range(TYPE_VOCAB_SIZE):
                grown.weight[row] = table.weight[row if row < table.num_embeddings else row % 2]
        embeddings.token_type_embeddings = grown
        embeddings.type_vocab_size = TYPE_VOCAB_SIZE
        model.config.type_vocab_size = TYPE_VOCAB_SIZE
        model.encoder.config.type_vocab_size = TYPE_VOCAB_SIZE
    if objective.head is None:
        objective.head = model.objectives["mlm"].head
    model.objectives = nn.ModuleDict({"mlm": objective})
    model.objective_weights = {"mlm": 1.0}
    model.freeze_unused_pooler()
    return model


@torch.no_grad()
def unilm_generate(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, mask_id: int, stop_id: int,
                   pad_id: int = 0, *, num_beams: int = 4, max_new_tokens: int = 64, length_penalty: float = 0.6,
                   **options):
    """Decode targets for the sources ``input_ids`` (B, S) = right-padded ``[CLS] A [SEP]`` rows.

    ``model`` is a UniLM model (:func:`unilm_from_bert`). Beam search or greedy
    (:func:`word2bert.models.generation.generate`); generation stops at ``stop_id`` (``[SEP]``).
    Returns the :class:`~word2bert.models.generation.GenerationOutput`.
    """
    from word2bert.models.generation import generate
    from word2bert.nn.cache import KeyValueCache

    bert = model.encoder
    head = model.objectives["mlm"].head
    table = bert.get_input_embeddings().weight
    source_type, target_type = SEGMENT_IDS["seq2seq"]
    was_training = model.training
    model.eval()
    try:
        lengths = attention_mask.long().sum(1)

        def step(new_ids: torch.Tensor, state: dict):
            cache, position = state["cache"], state["position"]
            batch = new_ids.shape[0]
            if cache.length == 0:  # the source, bidirectionally, then the first [MASK] right after it
                positions = torch.arange(new_ids.shape[1], device=new_ids.device).expand(batch, -1)
                hidden = bert.embeddings(new_ids, torch.full_like(new_ids, source_type), position_ids=positions)
                bert.encoder(hidden, attention_mask, causal=False, cache=cache)
                feed = new_ids.new_full((batch, 1), mask_id)
                positions = position[:, None]
            else:  # the token just chosen at `position`, and a [MASK] after it
                feed = torch.cat([new_ids, new_ids.new_full((batch, 1), mask_id)], 1)
                positions = torch.stack([position, position + 1], 1)
                position = position + 1
            hidden = bert.embeddings(feed, torch.full_like(feed, target_type), position_ids=positions)
            out, _ = bert.encoder(hidden, None, causal=True, cache=cache)
            cache.truncate(cache.length - 1)  # forget the [MASK]
            logits = head(out[:, -1], table)
            return logits, {"cache": cache, "position": position}

        state = {"cache": KeyValueCache(), "position": lengths.clone()}
        return generate(step, input_ids, state, num_beams=num_beams, max_new_tokens=max_new_tokens,
                        length_penalty=length_penalty, stop_token_ids=[stop_id], pad_token_id=pad_id, **options)
    finally:
        model.train(was_training)


__all__ = [
    "MODES",
    "MODE_PROBABILITIES",
    "SEGMENT_IDS",
    "UniLMObjective",
    "fine_tuning_masking",
    "pair_item",
    "segment_ids",
    "unilm_attention_mask",
    "unilm_from_bert",
    "unilm_generate",
]
