"""Key/value cache for incremental (token-by-token) decoding with a Transformer.

When a decoder generates one token at a time, the keys and values of the tokens it has already seen
do not change, so each step computes them only for the new tokens and attends over

    K = [K_past ; K_new],   V = [V_past ; V_new]

(Vaswani et al. 2017 do this implicitly; fairseq's ``incremental_state`` and Hugging Face's
``DynamicCache`` are the same idea). Cross-attention reads a fixed memory (the encoder output), so
its keys and values are computed once, at the first step, and reused.

- :class:`KeyValueCache` holds one :class:`LayerCache` per depth (a stack that shares one layer's
  weights across depth, as ALBERT does, still has one entry per depth: the inputs differ), the
  padding mask of the cached keys (left-padded prompts), and the memory's padding mask.
- ``cache.length`` is the number of positions already cached; the next tokens sit at positions
  ``length, length + 1, ...``.
- ``cache.reorder(index)`` selects rows along the batch (beam search keeps the surviving beams;
  an index longer than the batch, such as ``arange(B).repeat_interleave(k)``, expands it to k beams);
  ``cache.truncate(length)`` forgets the positions from ``length`` on.

The cache is updated in place by the attention modules; the models return it as their ``state``.
Appending writes into buffers that grow by doubling (amortised O(1) per token instead of copying
the whole past at every step), except while autograd records the computation, where a plain
``torch.cat`` keeps the graph correct.
"""

from __future__ import annotations

import torch

from word2bert.errors import Word2BertError


class KeyValues:
    """Keys and values (B, H, T, d_h) of one attention module, growable along T."""

    def __init__(self):
        self._keys: torch.Tensor | None = None
        self._values: torch.Tensor | None = None
        self.length = 0

    @property
    def keys(self) -> torch.Tensor | None:
        return None if self._keys is None else self._keys[:, :, : self.length]

    @property
    def values(self) -> torch.Tensor | None:
        return None if self._values is None else self._values[:, :, : self.length]

    def set(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace the content (cross-attention's memory keys/values)."""
        self._keys, self._values, self.length = keys, values, keys.shape[2]
        return keys, values

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new tokens' keys/values (B, H, t, d_h); return all of them (B, H, length + t, d_h)."""
        if self._keys is None:
            return self.set(keys, values)
        if keys.shape[0] != self._keys.shape[0]:
            raise Word2BertError(
                f"the cache holds a batch of {self._keys.shape[0]} but the new tokens have a batch of "
                f"{keys.shape[0]}; reorder the cache along the batch first"
            )
        new_length = self.length + keys.shape[2]
        if torch.is_grad_enabled() and (keys.requires_grad or self._keys.requires_grad):
            self._keys = torch.cat([self.keys, keys], 2)
            self._values = torch.cat([self.values, values], 2)
        else:
            if new_length > self._keys.shape[2]:
                self._grow(max(new_length, 2 * self._keys.shape[2]))
            self._keys[:, :, self.length : new_length] = keys
            self._values[:, :, self.length : new_length] = values
        self.length = new_length
        return self.keys, self.values

    def _grow(self, capacity: int) -> None:
        for name in ("_keys", "_values"):
            old = getattr(self, name)
            new = old.new_empty(old.shape[0], old.shape[1], capacity, old.shape[3])
            new[:, :, : self.length] = old[:, :, : self.length]
            setattr(self, name, new)

    def reorder(self, index: torch.Tensor) -> None:
        # the whole buffer, spare capacity included: one copy, and the next append need not grow it
        if self._keys is not None:
            self._keys = self._keys.index_select(0, index)
            self._values = self._values.index_select(0, index)

    def truncate(self, length: int) -> None:
        """Forget every position from ``length`` on (the buffers keep their capacity)."""
        self.length = min(self.length, length)


class LayerCache:
    """The cache of one layer at one depth: its self-attention's past keys/values and, for a decoder
    layer, its cross-attention's memory keys/values (``cross_attention.length == 0`` until computed)."""

    def __init__(self):
        self.self_attention = KeyValues()
        self.cross_attention = KeyValues()

    def reorder(self, index: torch.Tensor, memory_too: bool = True) -> None:
        self.self_attention.reorder(index)
        if memory_too:
            self.cross_attention.reorder(index)


class KeyValueCache:
    """Everything a Transformer stack needs to continue decoding where it stopped.

    ``layers[i]`` is the :class:`LayerCache` of depth i (created on first use). ``key_padding_mask``
    (B, length) bool marks the cached positions that are real tokens (None: all are); the stacks keep
    it up to date from the ``attention_mask`` of each call, so a left-padded batch of prompts stays
    masked while new tokens are appended. ``memory_padding_mask`` (B, S) bool is the encoder output's
    padding mask, stored at the first decoder step so later steps need not pass the memory again.
    """

    def __init__(self):
        self.layers: list[LayerCache] = []
        self.key_padding_mask: torch.Tensor | None = None
        self.memory_padding_mask: torch.Tensor | None = None
        self.memory_rows: torch.Tensor | None = None  # which memory (source) each row's cross keys/values hold

    def layer(self, depth: int) -> LayerCache:
        """The cache of depth ``depth`` (created, with the ones below it, on first use)."""
        while len(self.layers) <= depth:
            self.layers.append(LayerCache())
        return self.layers[depth]

    @property
    def length(self) -> int:
        """How many positions are cached (the ``past`` of the next call)."""
        return self.layers[0].self_attention.length if self.layers else 0

    def __len__(self) -> int:
        return self.length

    @property
    def batch_size(self) -> int | None:
        for layer in self.layers:
            for store in (layer.self_attention, layer.cross_attention):
                if store._keys is not None:
                    return store._keys.shape[0]
        for mask in (self.key_padding_mask, self.memory_padding_mask):
            if mask is not None:
                return mask.shape[0]
        return None

    @property
    def has_memory(self) -> bool:
        """True once the cross-attention keys/values of the memory are cached."""
        return bool(self.layers) and self.layers[0].cross_attention.length > 0

    def reorder(self, index: torch.Tensor) -> "KeyValueCache":
        """Keep rows ``index`` (LongTensor (B',)) of the batch in every tensor, in place; returns self.

        Beam search calls it with the beam each surviving hypothesis came from; ``index`` may repeat
        rows (expanding a batch of B sources to B*k beams)."""
        index = torch.as_tensor(index, dtype=torch.long)
        batch = self.batch_size
        if index.dim() != 1:
            raise Word2BertError(f"cache reorder index must be 1-D, got shape {tuple(index.shape)}")
        if batch is not None and index.numel() and (int(index.min()) < 0 or int(index.max()) >= batch):
            raise Word2BertError(f"cache reorder index out of range for a batch of {batch}")
        # Beam search keeps every beam with its own source, so after the first expansion each row's
        # memory keys/values are already those it needs: they are copied only when that changes.
        memory_too = True
        if self.has_memory:
            rows = self.memory_rows
            if rows is None:
                rows = torch.arange(self.layers[0].cross_attention._keys.shape[0], device=index.device)
            moved = rows.index_select(0, index)
            memory_too = not torch.equal(moved, rows)
            self.memory_rows = moved
        for layer in self.layers:
            layer.reorder(index, memory_too)
        if self.key_padding_mask is not None:
            self.key_padding_mask = self.key_padding_mask.index_select(0, index)
        if self.memory_padding_mask is not None and memory_too:
            self.memory_padding_mask = self.memory_padding_mask.index_select(0, index)
        return self

    def truncate(self, length: int) -> "KeyValueCache":
        """Keep only the first ``length`` cached positions of the self-attention (in place; returns self).

        UniLM decodes by appending ``[token, MASK]`` and reading the prediction at the mask; the
        mask's keys/values must not stay in the cache, so it is truncated after each step."""
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= self.length:
            raise Word2BertError(f"cannot truncate a cache of {self.length} positions to {length!r}")
        for layer in self.layers:
            layer.self_attention.truncate(length)
        if self.key_padding_mask is not None:
            self.key_padding_mask = self.key_padding_mask[:, :length]
        return self

    def extend_attention_mask(
        self, attention_mask: torch.Tensor | None, new_tokens: int, batch: int
    ) -> tuple[torch.Tensor | None, int]:
        """Record the padding of ``new_tokens`` new positions; return ``(mask over all keys, past length)``.

        Call it once per stack call, before the layers append their keys. ``attention_mask`` is

        - a (B, t) padding mask of the new tokens, or a (B, length + t) padding mask of every position
          (Hugging Face's convention); 1/True = real token. The result is the (B, length + t) padding
          mask of all keys, or None while every key is real (then SDPA needs no padding mask);
        - None: the new tokens are real;
        - a boolean (B, t, length + t) or (B, H, t, length + t) mask (True = may attend): returned with the
          recorded padding of the keys folded in; the new tokens are recorded as real.
        """
        past = self.length
        total = past + new_tokens
        if attention_mask is not None and attention_mask.dim() in (3, 4):
            padding = self._record_padding(None, new_tokens, batch)
            if padding is None:
                return attention_mask, past
            padding = padding[:, None, :] if attention_mask.dim() == 3 else padding[:, None, None, :]
            return attention_mask & padding, past
        if attention_mask is not None and (attention_mask.dim() != 2 or attention_mask.shape[1] not in (new_tokens, total)):
            raise Word2BertError(
                f"with a cache of {past} positions, a padding attention_mask must be (batch, {new_tokens}) "
                f"or (batch, {total}); got shape {tuple(attention_mask.shape)}"
            )
        return self._record_padding(attention_mask, new_tokens, batch), past

    def _record_padding(self, attention_mask: torch.Tensor | None, new_tokens: int, batch: int) -> torch.Tensor | None:
        past = self.length
        if attention_mask is None:
            if self.key_padding_mask is not None:
                new = torch.ones(batch, new_tokens, dtype=torch.bool, device=self.key_padding_mask.device)
                self.key_padding_mask = torch.cat([self.key_padding_mask, new], 1)
            return self.key_padding_mask
        keep = attention_mask.bool()
        if keep.shape[1] == past + new_tokens:
            self.key_padding_mask = None if bool(keep.all()) else keep
            return self.key_padding_mask
        if self.key_padding_mask is None and bool(keep.all()):
            return None
        past_mask = self.key_padding_mask
        if past_mask is None:
            past_mask = torch.ones(batch, past, dtype=torch.bool, device=keep.device)
        self.key_padding_mask = torch.cat([past_mask, keep], 1)
        return self.key_padding_mask


__all__ = ["KeyValueCache", "KeyValues", "LayerCache"]
