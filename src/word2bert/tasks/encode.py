"""Contextual vectors from a BERT: token vectors of any layer or a learned mix, and sentence vectors.

``layer`` indexes the hidden states ``(embeddings output, layer 1, ..., layer L)``: 0 is the
embedding layer, -1 the last layer. ``layer="mix"`` uses ELMo's scalar mix (Peters et al.
2018, eq. 1): ``h_i = gamma * sum_l softmax(w)_l h_i^(l)`` with learned ``w`` and ``gamma``
(a :class:`ScalarMix`, trainable as part of a downstream model; uniform weights by default).
Sentence vectors pool the chosen token vectors: "cls" takes ``h_[CLS]``, "mean" averages the
non-padding positions (as sentence-transformers does for all-MiniLM-L6-v2), "last" takes the last
real token (left-to-right encoders), "pooler" is BERT's ``tanh(W h_[CLS] + b)`` of the last layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from word2bert.errors import Word2BertError
from word2bert.nn.scalar_mix import ScalarMix
from word2bert.tasks.heads import POOLINGS, as_encoder, last_token, mean_pool


@dataclass
class EncodedTexts:
    """``token_vectors[i]`` is (n_i, d) for the n_i tokens of text i (with [CLS]/[SEP]);
    ``sentence_vectors`` is (N, d); ``tokens[i]`` the word pieces."""

    token_vectors: list[np.ndarray]
    sentence_vectors: np.ndarray
    tokens: list[list[str]]


@torch.no_grad()
def encode(model, tokenizer, texts, layer: int | str = -1, pooling: str = "cls", batch_size: int = 32,
           max_length: int | None = None, scalar_mix: ScalarMix | None = None) -> EncodedTexts:
    """Encode ``texts`` (strings, or (text, pair) tuples) with ``model``: an encoder, or a model
    with one (a fine-tuned head, a pre-training model)."""
    bert = as_encoder(model)
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise Word2BertError("no texts to encode")
    if pooling not in POOLINGS:
        raise Word2BertError(f"parameter pooling={pooling!r} must be one of {', '.join(POOLINGS)}")
    num_states = bert.config.num_hidden_layers + 1
    if layer == "mix":
        scalar_mix = scalar_mix or ScalarMix(num_states, trainable=False)
    elif not isinstance(layer, int) or not -num_states <= layer < num_states:
        raise Word2BertError(f"parameter layer={layer!r} must be 'mix' or an integer in "
                             f"[{-num_states}, {num_states - 1}] (0 = embeddings, -1 = last layer)")
    max_length = max_length or bert.config.max_position_embeddings
    was_training = bert.training
    bert.eval()
    token_vectors, sentence_vectors, tokens = [], [], []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        firsts = [t[0] if isinstance(t, tuple) else t for t in chunk]
        pairs = [t[1] if isinstance(t, tuple) else None for t in chunk]
        has_pairs = any(p is not None for p in pairs)
        encoded = tokenizer.encode_batch(firsts, [p or "" for p in pairs] if has_pairs else None,
                                         max_length=max_length, truncation=True, padding=True)
        input_ids = torch.tensor(encoded["input_ids"])
        attention_mask = torch.tensor(encoded["attention_mask"])
        output = bert(input_ids, token_type_ids=torch.tensor(encoded["token_type_ids"]),
                      attention_mask=attention_mask, output_hidden_states=True)
        if layer == "mix":
            hidden = scalar_mix(output.hidden_states)
        else:
            hidden = output.hidden_states[layer]
        if pooling == "cls":
            pooled = hidden[:, 0]
        elif pooling == "mean":
            pooled = mean_pool(hidden, attention_mask)
        elif pooling == "last":
            pooled = last_token(hidden, attention_mask)
        else:
            if output.pooled is None:
                raise Word2BertError("this encoder has no pooler: use pooling 'cls', 'mean' or 'last'")
            pooled = output.pooled
        lengths = attention_mask.sum(dim=1).tolist()
        for row, length in enumerate(lengths):
            token_vectors.append(hidden[row, :length].float().numpy())
            tokens.append(tokenizer.convert_ids_to_tokens(encoded["input_ids"][row][:length]))
        sentence_vectors.append(pooled.float().numpy())
    if was_training:
        bert.train()
    return EncodedTexts(token_vectors, np.concatenate(sentence_vectors), tokens)
