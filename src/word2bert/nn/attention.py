"""Multi-head attention on ``torch.nn.functional.scaled_dot_product_attention``: self, cross and cached.

One attention module serves every Transformer in word2bert. What distinguishes BERT, GPT, UniLM
and XLNet is mostly *the mask*, so masks are built in one place (:func:`build_attention_mask`) and
the attention itself accepts any of them:

- a padding mask ``(B, T)`` with 1 = real token, 0 = padding (BERT),
- a causal flag (GPT), alone or combined with padding,
- an arbitrary per-example 2-D mask ``(B, T, T)`` or per-head ``(B, H, T, T)`` boolean tensor,
  True = "query i may attend to key j" (UniLM's seq2seq mask, XLNet's permutation masks).

:class:`MultiHeadSelfAttention` projects Q, K, V with one fused matrix; given a
:class:`~word2bert.nn.cache.KeyValues` it appends the new tokens' keys/values to the cached ones
and attends over all of them (incremental decoding: the t new queries sit at positions
``past .. past + t - 1``). :class:`MultiHeadCrossAttention` takes its queries from one sequence and
its keys/values from another (the encoder output, "memory"), with a key padding mask over the
memory; with a cache it projects the memory once.

A query row that may attend to nothing yields a zero vector (SDPA's behaviour for fully masked rows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.nn.cache import KeyValues
from word2bert.nn.dropout import dropout
from word2bert.nn.linear import Linear


def causal_mask(query_len: int, key_len: int, device=None) -> torch.Tensor:
    """(query_len, key_len) boolean: query i (at position key_len - query_len + i) may see key j iff
    j <= key_len - query_len + i. With key_len == query_len this is the lower triangle."""
    return torch.ones(query_len, key_len, dtype=torch.bool, device=device).tril(key_len - query_len)


def build_attention_mask(
    attention_mask: torch.Tensor | None,
    seq_len: int,
    causal: bool = False,
    past_length: int = 0,
) -> torch.Tensor | None:
    """Turn a padding mask or a custom mask (and a causal flag) into a boolean SDPA mask.

    ``seq_len`` is the number of queries (new tokens) and ``past_length`` the number of cached
    positions before them, so there are ``key_len = past_length + seq_len`` keys.

    Returns a boolean tensor broadcastable to ``(B, H, seq_len, key_len)`` where True means "may
    attend", or None when nothing is masked (then SDPA can use its fastest kernel; with
    ``causal=True``, no other mask and no past the caller passes ``is_causal=True`` to SDPA instead,
    see :class:`MultiHeadSelfAttention`).

    - ``(B, key_len)`` integer/bool padding mask (1 keep, 0 pad) -> ``(B, 1, 1, key_len)``: key j is
      visible to every query iff token j is real. An all-ones padding mask (without causal) returns None.
    - ``(B, seq_len, key_len)`` boolean -> ``(B, 1, seq_len, key_len)``; ``(B, H, seq_len, key_len)``
      or ``(B, 1, seq_len, key_len)`` boolean kept as is.
    - ``causal=True`` intersects the mask with :func:`causal_mask` (query i sees keys j <= past + i).
    """
    key_len = past_length + seq_len
    if attention_mask is None:
        if not causal or past_length == 0 or seq_len == 1:
            return None  # causal alone and no past: is_causal=True inside SDPA; one new token sees every key
        return causal_mask(seq_len, key_len)[None, None]
    if attention_mask.dim() == 2:
        if attention_mask.shape[1] != key_len:
            raise Word2BertError(
                f"attention_mask has {attention_mask.shape[1]} positions but the input has {key_len}"
                + (f" ({past_length} cached + {seq_len} new)" if past_length else "")
            )
        keep = attention_mask.bool()
        if not causal and bool(keep.all()):
            return None
        mask = keep[:, None, None, :]
    elif attention_mask.dim() in (3, 4):
        if attention_mask.dtype != torch.bool:
            raise Word2BertError(
                f"a {attention_mask.dim()}-D attention_mask must be boolean (True = may attend), "
                f"got dtype {attention_mask.dtype}"
            )
        if tuple(attention_mask.shape[-2:]) != (seq_len, key_len):
            raise Word2BertError(
                f"attention_mask of shape {tuple(attention_mask.shape)} does not match sequence length {seq_len}"
                + (f" and {key_len} keys ({past_length} cached)" if past_length else "")
            )
        mask = attention_mask[:, None] if attention_mask.dim() == 3 else attention_mask
    else:
        raise Word2BertError(
            f"attention_mask must be (B,T), (B,T,T) or (B,H,T,T); got shape {tuple(attention_mask.shape)}"
        )
    if causal:
        mask = mask & causal_mask(seq_len, key_len, mask.device)
    return mask


def build_memory_mask(memory_padding_mask: torch.Tensor | None, memory_len: int) -> torch.Tensor | None:
    """A (B, S) padding mask of the memory (1 = real) -> SDPA mask (B, 1, 1, S), or None if nothing is masked.

    A (B, T, S) / (B, H, T, S) boolean mask (True = may attend) is passed through as (B, 1|H, T, S)."""
    if memory_padding_mask is None:
        return None
    if memory_padding_mask.shape[-1] != memory_len:
        raise Word2BertError(
            f"memory attention mask has {memory_padding_mask.shape[-1]} positions but the memory has {memory_len}"
        )
    if memory_padding_mask.dim() == 2:
        keep = memory_padding_mask.bool()
        return None if bool(keep.all()) else keep[:, None, None, :]
    if memory_padding_mask.dim() in (3, 4) and memory_padding_mask.dtype == torch.bool:
        return memory_padding_mask[:, None] if memory_padding_mask.dim() == 3 else memory_padding_mask
    raise Word2BertError(
        f"memory attention mask must be a (B,S) padding mask or a boolean (B,T,S)/(B,H,T,S) mask; "
        f"got shape {tuple(memory_padding_mask.shape)} and dtype {memory_padding_mask.dtype}"
    )


#: Training with at most this many keys computes attention unfused on the CPU (see :func:`attend`).
UNFUSED_MAX_KEYS = 64


def attend(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    causal: bool = False,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Scaled dot-product attention of (B, h, T, d_h) queries over (B, h, S, d_h) keys and values::

        A = softmax(Q K^T / sqrt(d_h) + M),    output = Dropout(A) V

    ``mask`` (boolean, True = may attend, broadcastable to (B, h, T, S)) or ``causal`` (query i sees
    keys j <= i; T == S) gives M (0 or -inf). A query that may attend to nothing gets a zero row.
    Without dropout this is ``F.scaled_dot_product_attention`` (its fused kernels). With dropout,
    SDPA on the CPU falls back to its unfused path anyway and draws the mask with ``bernoulli_``;
    here the same unfused computation draws it with :func:`~word2bert.nn.dropout.dropout_mask`
    (about half the cost) and skips SDPA's fully-masked-row passes when the mask is causal. Training
    on short keys (S <= :data:`UNFUSED_MAX_KEYS`, CPU) takes the unfused path too: SDPA's CPU flash
    kernel spends more on its blocks than the two small matrix products it replaces (forward + backward
    of 178 x 4 heads x 11 tokens: 14.2 ms against 7.9; 71 x 4 x 36: 18.7 against 12.7).
    """
    if mask is not None and mask.dtype != torch.bool:  # an additive float mask: SDPA's own path
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, is_causal=causal, dropout_p=dropout_p)
    short_training = (key.shape[-2] <= UNFUSED_MAX_KEYS and query.device.type == "cpu" and torch.is_grad_enabled()
                      and (query.requires_grad or key.requires_grad or value.requires_grad))
    if dropout_p == 0.0 and not short_training:
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, is_causal=causal)
    scores = torch.matmul(query, key.transpose(-1, -2)).mul_(query.shape[-1] ** -0.5)
    if causal:
        mask = causal_mask(query.shape[-2], key.shape[-2], query.device)
    if mask is not None:
        scores.masked_fill_(~mask, float("-inf"))
    probabilities = torch.softmax(scores, dim=-1)
    if mask is not None and not causal:
        nothing_visible = ~mask.any(dim=-1, keepdim=True)
        if bool(nothing_visible.any()):
            probabilities = probabilities.masked_fill(nothing_visible, 0.0)
    return torch.matmul(dropout(probabilities, dropout_p), value)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, h * d_h) -> (B, h, T, d_h)."""
    batch, length, size = x.shape
    return x.view(batch, length, num_heads, size // num_heads).transpose(1, 2)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (Vaswani et al. 2017) with one fused QKV projection.

    For input ``x`` (B, T, d) and h heads of size d_h = d / h::

        [Q; K; V] = x W_qkv + b_qkv                     (one (d, 3d) matrix instead of three)
        head_k    = softmax(Q_k K_k^T / sqrt(d_h) + M) V_k   (M = 0 where allowed, -inf where masked)
        output    = concat(head_1..head_h) W_o + b_o

    With a cache, K and V are ``[K_past; K_new]``, ``[V_past; V_new]`` (the new ones are appended to the
    cache). ``attention_dropout`` is applied to the attention probabilities during training (inside SDPA).
    """

    def __init__(self, hidden_size: int, num_heads: int, attention_dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if hidden_size % num_heads != 0:
            raise Word2BertError(
                f"hidden_size={hidden_size} must be divisible by num_attention_heads={num_heads}"
            )
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.attention_dropout = attention_dropout
        self.qkv_proj = Linear(hidden_size, 3 * hidden_size, bias=bias)
        self.out_proj = Linear(hidden_size, hidden_size, bias=bias)

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        causal: bool = False,
        query_positions: torch.Tensor | None = None,
        cache: KeyValues | None = None,
    ) -> torch.Tensor:
        """Attend ``hidden`` (B, T, d) to itself (and to the cached past) under an SDPA-ready mask.

        ``attention_mask`` comes from :func:`build_attention_mask` (shape broadcastable to
        (B, H, T, past + T)). ``causal=True`` with ``attention_mask=None`` uses SDPA's built-in causal
        kernel when nothing is cached; when a mask is given, it must already include the causal
        constraint (build_attention_mask does that).

        ``query_positions`` (B, Q): compute outputs only for these query positions (keys and values
        still cover all T tokens); the result is (B, Q, d). BERT's last layer uses this, since its
        heads read only the masked positions and [CLS].

        ``cache``: the :class:`~word2bert.nn.cache.KeyValues` of this layer; the new keys/values are
        appended to it, in place.
        """
        batch, seq_len, _ = hidden.shape
        if query_positions is None:
            qkv = self.qkv_proj(hidden).view(batch, seq_len, 3, self.num_heads, self.head_size)
            query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, T, d_h)
            num_queries = seq_len
        else:
            if cache is not None:
                raise Word2BertError("query_positions cannot be combined with a key/value cache")
            d = self.hidden_size
            weight, bias = self.qkv_proj.weight, self.qkv_proj.bias
            num_queries = query_positions.shape[1]
            queries_in = gather_positions(hidden, query_positions)
            query = F.linear(queries_in, weight[:d], None if bias is None else bias[:d])
            query = query.view(batch, num_queries, self.num_heads, self.head_size).transpose(1, 2)
            kv = F.linear(hidden, weight[d:], None if bias is None else bias[d:])
            key, value = kv.view(batch, seq_len, 2, self.num_heads, self.head_size).permute(2, 0, 3, 1, 4).unbind(0)
            attention_mask = select_query_rows(attention_mask, query_positions, seq_len, causal)
            causal = False  # folded into the mask rows
        if cache is not None:
            key, value = cache.append(key, value)
        key_len = key.shape[2]
        if causal and attention_mask is None and key_len != num_queries and num_queries > 1:
            attention_mask = causal_mask(num_queries, key_len, hidden.device)
        context = attend(query, key, value, attention_mask,
                         causal=causal and attention_mask is None and key_len == num_queries,
                         dropout_p=self.attention_dropout if self.training else 0.0)
        context = context.transpose(1, 2).reshape(batch, num_queries, self.hidden_size)
        return self.out_proj(context)


class MultiHeadCrossAttention(nn.Module):
    """Multi-head attention whose queries come from ``hidden`` (B, T, d) and keys/values from ``memory``
    (B, S, d_m) — the encoder-decoder attention of Vaswani et al. (2017)::

        Q = hidden W_q + b_q;   [K; V] = memory W_kv + b_kv   (K and V fused in one (d_m, 2d) matrix)
        output = concat_k softmax(Q_k K_k^T / sqrt(d_h) + M) V_k  W_o + b_o

    where M masks the memory's padding. With a cache the memory's K and V are computed at the first
    call and reused afterwards (``memory`` may then be None).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        attention_dropout: float = 0.0,
        bias: bool = True,
        memory_size: int | None = None,
    ):
        super().__init__()
        if hidden_size % num_heads != 0:
            raise Word2BertError(
                f"hidden_size={hidden_size} must be divisible by num_attention_heads={num_heads}"
            )
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.attention_dropout = attention_dropout
        self.query_proj = Linear(hidden_size, hidden_size, bias=bias)
        self.kv_proj = Linear(memory_size or hidden_size, 2 * hidden_size, bias=bias)
        self.out_proj = Linear(hidden_size, hidden_size, bias=bias)

    def memory_keys_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory's keys and values, each (B, h, S, d_h)."""
        batch, length, _ = memory.shape
        kv = self.kv_proj(memory).view(batch, length, 2, self.num_heads, self.head_size)
        key, value = kv.permute(2, 0, 3, 1, 4).unbind(0)
        return key, value

    def forward(
        self,
        hidden: torch.Tensor,
        memory: torch.Tensor | None,
        memory_mask: torch.Tensor | None = None,
        cache: KeyValues | None = None,
    ) -> torch.Tensor:
        """``memory_mask``: SDPA-ready, from :func:`build_memory_mask` ((B, 1, 1, S) or (B, 1|H, T, S));
        ``cache``: this layer's cross-attention :class:`~word2bert.nn.cache.KeyValues`."""
        batch, seq_len, _ = hidden.shape
        if cache is not None and cache.length > 0:
            key, value = cache.keys, cache.values
        else:
            if memory is None:
                raise Word2BertError("cross-attention needs the memory (encoder output) at its first call")
            key, value = self.memory_keys_values(memory)
            if cache is not None:
                cache.set(key, value)
        query = split_heads(self.query_proj(hidden), self.num_heads)
        context = attend(query, key, value, memory_mask,
                         dropout_p=self.attention_dropout if self.training else 0.0)
        context = context.transpose(1, 2).reshape(batch, seq_len, self.hidden_size)
        return self.out_proj(context)


def gather_positions(hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """out[b, q] = hidden[b, positions[b, q]]: (B, T, d) and (B, Q) -> (B, Q, d)."""
    return hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))


def select_query_rows(
    mask: torch.Tensor | None, query_positions: torch.Tensor, seq_len: int, causal: bool
) -> torch.Tensor | None:
    """Restrict an SDPA mask (B|1, H|1, T|1, T) to the rows of ``query_positions`` (B, Q).

    A causal constraint becomes explicit: query at position i may see keys j <= i.
    """
    if causal and mask is None:
        mask = torch.ones(1, 1, seq_len, seq_len, dtype=torch.bool, device=query_positions.device).tril()
    if mask is None or mask.shape[-2] == 1:
        return mask
    batch, num_queries = query_positions.shape
    mask = mask.expand(batch, mask.shape[1], seq_len, seq_len)
    index = query_positions[:, None, :, None].expand(batch, mask.shape[1], num_queries, seq_len)
    return mask.gather(2, index)


__all__ = [
    "MultiHeadCrossAttention",
    "MultiHeadSelfAttention",
    "attend",
    "build_attention_mask",
    "build_memory_mask",
    "causal_mask",
    "gather_positions",
    "select_query_rows",
    "split_heads",
]
