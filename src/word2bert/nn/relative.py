"""Relative attention with segment memory (Transformer-XL, Dai et al. 2019) and XLNet's two streams.

**Relative positions.** A query at key-axis position ``p`` (memory first, so the current segment's
token ``i`` sits at ``p = M + i``) scores key ``j`` by its content *and* by the distance ``p - j``,
never by absolute positions (eq. 3 of the Transformer-XL paper, split as in the reference code)::

    score(p, j) = (q_p + u) . k_j            # (a) + (c): content, with the global content bias u = r_w_bias
                + (q_p + v) . W_r R[p - j]   # (b) + (d): position, with the global position bias v = r_r_bias
                + (q_p + s) . S[seg_p != seg_j]   # XLNet only: relative segment encoding, s = r_s_bias
    attention   = softmax(scale * score + mask) V,  scale = 1 / sqrt(d_head)

``R[d] = [sin(d f_0) .. sin(d f_{D/2-1}), cos(d f_0) .. cos(d f_{D/2-1})]`` with ``f_k = 10000^(-2k/D)``
(:func:`relative_sinusoid`); distances are clamped to ``[-clamp_len, clamp_len]`` when ``clamp_len > 0``.
The position term is computed once per query row against the table of every distance that can occur
(``K-1`` down to ``-(Q-1)``, or ``0`` for causal attention) and moved into place by the *relative
shift* (:func:`relative_shift`: a strided view, no copy), or by a gather for an arbitrary set of query
rows (:func:`relative_gather`).

**Segment recurrence.** Each layer also attends to ``memory``: the hidden states that entered that
layer for the previous segment(s), cached with stop-gradient (``new_memory = cat(memory,
hidden)[-mem_len:].detach()``, :func:`update_memory`). Memory keys come first on the key axis.

**Two-stream attention (XLNet).** With a factorisation order ``z`` (realised as a mask, the tokens
are never reordered) the *content stream* ``h`` at position ``i`` sees ``j`` iff ``z(j) <= z(i)``
(itself included), and the *query stream* ``g`` sees ``j`` iff ``z(j) < z(i)``: its own position
through the relative encodings but never its own content. Both streams share every weight; keys
and values always come from the content stream (and the memory). ``g`` is computed only at the
predicted positions.

Everything runs as batched matrix products over (batch, heads); there is no loop over positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.nn.transformer import get_activation

#: The additive score of a blocked (query, key) pair, as in the reference code (``score - 1e30 * mask``):
#: finite, so a row that may see nothing gets a uniform distribution instead of NaN.
BLOCKED_SCORE = -1e30


# --------------------------------------------------------------------------- positions

def relative_sinusoid(distances: torch.Tensor, dim: int) -> torch.Tensor:
    """The relative position encodings ``R[d]`` of the given distances, shape (len(distances), dim)::

        R[d] = [sin(d f_0), ..., sin(d f_{dim/2-1}), cos(d f_0), ..., cos(d f_{dim/2-1})],
        f_k = 1 / 10000^(2k / dim)

    (sines first, then cosines, as Transformer-XL and XLNet lay them out; computed in float32 as
    they do.)
    """
    if dim % 2:
        raise Word2BertError(f"the relative position encoding needs an even hidden size, got {dim}")
    frequency_exponents = torch.arange(0, dim, 2, dtype=torch.int64, device=distances.device).float()
    inverse_frequency = 1.0 / torch.pow(10000.0, frequency_exponents / dim)
    angles = distances.float()[:, None] * inverse_frequency[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def relative_distances(query_len: int, key_len: int, causal: bool, clamp_len: int = -1,
                       device=None) -> torch.Tensor:
    """The distances ``p - j`` the position table covers, in the order the shift expects:
    ``key_len - 1`` down to ``-(query_len - 1)`` (``0`` when ``causal``: later keys are masked).

    Entry ``r`` holds the distance ``key_len - 1 - r``. ``clamp_len > 0`` clamps every distance to
    ``[-clamp_len, clamp_len]`` (Transformer-XL/XLNet's ``clamp_len``; -1 = no clamping).
    """
    last = 0 if causal else -(query_len - 1)
    distances = torch.arange(key_len - 1, last - 1, -1, dtype=torch.int64, device=device)
    if clamp_len is not None and clamp_len > 0:
        distances = distances.clamp(-clamp_len, clamp_len)
    return distances


def relative_shift(position_scores: torch.Tensor, key_len: int) -> torch.Tensor:
    """Align scores against the distance table with the keys (the "relative shift"), for the rows of
    the current segment.

    ``position_scores[..., i, r]`` scores query row ``i`` against distance ``D[r] = key_len - 1 - r``
    (see :func:`relative_distances`); the query row ``i`` sits at key position ``p = key_len - Q + i``
    (after ``M = key_len - Q`` memory positions). Returns ``out[..., i, j] = position_scores[..., i,
    r(i, j)]`` with ``D[r(i, j)] = p - j``, i.e. ``r = Q - 1 - i + j``: a strided view whose rows
    step ``R - 1`` elements (no copy). For causal tables (``R = key_len``) the entries with ``j > p``
    read neighbouring values and must be masked by the caller.
    """
    *lead, query_len, table_len = position_scores.shape
    if table_len < key_len:
        raise Word2BertError(f"the distance table has {table_len} entries, fewer than the {key_len} keys")
    scores = position_scores.contiguous()
    lead_strides = scores.stride()[:-2]
    return scores.as_strided((*lead, query_len, key_len), (*lead_strides, table_len - 1, 1),
                             scores.storage_offset() + query_len - 1)


def relative_gather(position_scores: torch.Tensor, key_positions: torch.Tensor, key_len: int) -> torch.Tensor:
    """:func:`relative_shift` for arbitrary query rows: ``key_positions`` (B, Q) are the key-axis
    positions ``p`` of the rows of ``position_scores`` (B, H, Q, R); ``out[b, h, q, j] =
    position_scores[b, h, q, key_len - 1 - p + j]`` (indices past the table, which only masked
    causal pairs produce, are clamped)."""
    batch, heads, query_len, table_len = position_scores.shape
    keys = torch.arange(key_len, device=position_scores.device)
    index = (key_len - 1 - key_positions)[:, :, None] + keys[None, None, :]
    index = index.clamp_(max=table_len - 1)
    return position_scores.gather(-1, index[:, None].expand(batch, heads, query_len, key_len))


# --------------------------------------------------------------------------- memory

def update_memory(hidden: torch.Tensor, memory: torch.Tensor | None, mem_len: int,
                  reuse_len: int | None = None) -> torch.Tensor | None:
    """The memory a layer keeps for the next segment: ``cat(memory, hidden[:, :reuse_len])[:, -mem_len:]``
    with stop-gradient (``detach``). ``hidden`` is what *entered* the layer (B, T, d). ``mem_len = 0``
    keeps no memory (None)."""
    if mem_len <= 0:
        return None
    if reuse_len is not None and reuse_len > 0:
        hidden = hidden[:, :reuse_len]
    hidden = hidden.detach()
    if memory is None or memory.shape[1] == 0:
        return hidden[:, -mem_len:]
    return torch.cat([memory.to(hidden.dtype), hidden], dim=1)[:, -mem_len:]


def check_memory_length(mem_len, name: str = "mem_len") -> int:
    """``mem_len`` must be an integer >= 0 (0 = no memory)."""
    if isinstance(mem_len, bool) or not isinstance(mem_len, int) or mem_len < 0:
        raise Word2BertError(f"parameter {name}={mem_len!r} must be an integer >= 0 (0 = no memory)")
    return mem_len


# --------------------------------------------------------------------------- one attention layer

@dataclass
class StreamRows:
    """What one stream's attention needs besides its queries, prepared once per forward pass.

    ``key_positions`` (B, Q): key-axis position of each query row, or None for the current segment's
    rows in order (then the relative shift is a strided view). ``blocked`` (B|1, 1, Q, K) bool, True
    where the query may *not* attend, or None. ``segment_differs`` (B, 1, Q, K) bool, True where query
    and key lie in different segments, or None. ``valid`` (B, 1, Q, 1): 0 for padding query rows
    (their attention output is zeroed, as transformers' ``target_mapping`` does), or None.
    """

    key_positions: torch.Tensor | None = None
    blocked: torch.Tensor | None = None
    segment_differs: torch.Tensor | None = None
    valid: torch.Tensor | None = None
    residual_index: torch.Tensor | None = None  # (B, Q) rows of the stream input that get the residual


class RelativeMultiHeadAttention(nn.Module):
    """Multi-head attention with relative positions, memory and XLNet's two streams (post-LN).

    Parameters (no projection biases, as in both reference implementations): ``qkv_proj`` (fused
    W_q, W_k, W_v), ``position_proj`` (W_r), ``out_proj`` (W_o); ``content_bias`` (u, r_w_bias),
    ``position_bias`` (v, r_r_bias) and, with segments, ``segment_bias`` (s, r_s_bias) and
    ``segment_embed`` (S, 2 x heads x d_head). ``shared_biases`` (a previous layer's attention)
    ties u, v, s across layers (Transformer-XL's default); otherwise every layer has its own.

    ``forward`` returns ``LayerNorm(x + Dropout(Attention(x) W_o))`` for each stream asked for.
    """

    def __init__(self, hidden_size: int, num_heads: int, head_size: int | None = None, dropout: float = 0.0,
                 attention_dropout: float = 0.0, layer_norm_eps: float = 1e-12, use_segments: bool = False,
                 shared_biases: RelativeMultiHeadAttention | None = None):
        super().__init__()
        head_size = head_size or hidden_size // num_heads
        if head_size * num_heads != hidden_size:
            raise Word2BertError(f"hidden_size={hidden_size} must equal num_heads={num_heads} x head_size={head_size}")
        self.hidden_size, self.num_heads, self.head_size = hidden_size, num_heads, head_size
        self.scale = head_size ** -0.5
        self.use_segments = use_segments
        self.qkv_proj = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.position_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.out_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        if shared_biases is None:
            self.content_bias = nn.Parameter(torch.zeros(num_heads, head_size))
            self.position_bias = nn.Parameter(torch.zeros(num_heads, head_size))
            self.segment_bias = nn.Parameter(torch.zeros(num_heads, head_size)) if use_segments else None
        else:
            self.content_bias = shared_biases.content_bias
            self.position_bias = shared_biases.position_bias
            self.segment_bias = shared_biases.segment_bias if use_segments else None
        self.segment_embed = nn.Parameter(torch.zeros(2, num_heads, head_size)) if use_segments else None
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = nn.Dropout(attention_dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, H*d_h) -> (B, H, L, d_h)."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, content: torch.Tensor, position_embeddings: torch.Tensor, *,
                memory: torch.Tensor | None = None, content_rows: StreamRows | None = None,
                query: torch.Tensor | None = None, query_rows: StreamRows | None = None,
                compute_content: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Attend ``content`` (B, T, d) and optionally the query stream ``query`` (B, Q, d).

        ``position_embeddings`` (G, R, d): the encodings of :func:`relative_distances` (G = 2 when the
        second half of the batch reads its segment backwards, XLNet's ``bi_data``). Keys and values come
        from ``cat(memory, content)``. ``compute_content=False`` skips the content stream's own output
        (the last layer of pre-training needs only the query stream). Returns ``(content_out, query_out)``.
        """
        d = self.hidden_size
        weight = self.qkv_proj.weight
        rows = content_rows or StreamRows()
        content_query = None
        if memory is not None and memory.shape[1] > 0:
            keys_in = torch.cat([memory.to(content.dtype), content], dim=1)
            key, value = F.linear(keys_in, weight[d:]).split(d, dim=-1)
        elif compute_content and rows.residual_index is None:  # one product for Q, K and V
            content_query, key, value = F.linear(content, weight).split(d, dim=-1)
            content_query = self._heads(content_query)
        else:
            key, value = F.linear(content, weight[d:]).split(d, dim=-1)
        key, value = self._heads(key), self._heads(value)
        key_len = key.shape[2]
        groups, table_len = position_embeddings.shape[0], position_embeddings.shape[1]
        position_keys = F.linear(position_embeddings, self.position_proj.weight)
        position_keys = position_keys.view(groups, table_len, self.num_heads, self.head_size).permute(0, 2, 3, 1)

        content_out = None
        if compute_content:
            residual = content if rows.residual_index is None else _gather_rows(content, rows.residual_index)
            if content_query is None:
                content_query = self._heads(F.linear(residual, weight[:d]))
            context = self._attend(content_query, key, value, position_keys, rows, key_len)
            content_out = self._post(residual, context)
        query_out = None
        if query is not None:
            query_heads = self._heads(F.linear(query, weight[:d]))
            context = self._attend(query_heads, key, value, position_keys, query_rows or StreamRows(), key_len)
            query_out = self._post(query, context)
        return content_out, query_out

    def _attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, position_keys: torch.Tensor,
                rows: StreamRows, key_len: int) -> torch.Tensor:
        """softmax(scale * (content + position [+ segment] scores), blocked -> -1e30) V, as (B, H, Q, d_h)."""
        batch, heads, query_len, head_size = query.shape
        scores = torch.matmul(query + self.content_bias[:, None], key.transpose(-1, -2))
        groups = position_keys.shape[0]
        position_query = (query + self.position_bias[:, None]).reshape(groups, batch // groups, heads, query_len,
                                                                         head_size)
        position_scores = torch.matmul(position_query, position_keys[:, None]).view(batch, heads, query_len, -1)
        if rows.key_positions is None:
            position_scores = relative_shift(position_scores, key_len)
        else:
            position_scores = relative_gather(position_scores, rows.key_positions, key_len)
        scores = scores + position_scores
        if self.use_segments and rows.segment_differs is not None:
            # (q + s) . S[same], (q + s) . S[different]: one score per query row and head for each case
            segment_scores = torch.matmul(query + self.segment_bias[:, None],
                                          self.segment_embed.permute(1, 2, 0)[None])
            scores = scores + torch.where(rows.segment_differs, segment_scores[..., 1:2], segment_scores[..., 0:1])
        scores = scores * self.scale
        if rows.blocked is not None:
            scores = scores.masked_fill(rows.blocked, BLOCKED_SCORE)
        probabilities = self.attention_dropout(torch.softmax(scores, dim=-1))
        context = torch.matmul(probabilities, value)
        if rows.valid is not None:
            context = context * rows.valid
        return context

    def _post(self, residual: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        batch, _, query_len, _ = context.shape
        merged = context.transpose(1, 2).reshape(batch, query_len, self.hidden_size)
        return self.layer_norm(residual + self.dropout(self.out_proj(merged)))


def _gather_rows(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """out[b, q] = hidden[b, index[b, q]]: (B, T, d), (B, Q) -> (B, Q, d)."""
    return hidden.gather(1, index[:, :, None].expand(-1, -1, hidden.shape[-1]))


class PositionwiseFeedForward(nn.Module):
    """``LayerNorm(x + Dropout(W_2 Dropout(act(W_1 x + b_1)) + b_2))`` (post-LN, both reference codes)."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation: str = "gelu", dropout: float = 0.0,
                 layer_norm_eps: float = 1e-12):
        super().__init__()
        self.dense_in = nn.Linear(hidden_size, intermediate_size)
        self.dense_out = nn.Linear(intermediate_size, hidden_size)
        self.activation = get_activation(activation)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        inner = self.dropout(self.activation(self.dense_in(hidden)))
        return self.layer_norm(hidden + self.dropout(self.dense_out(inner)))


class RelativeTransformerLayer(nn.Module):
    """Relative attention then the feed-forward network, applied to each stream with the same weights."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, activation: str = "gelu",
                 dropout: float = 0.0, attention_dropout: float = 0.0, layer_norm_eps: float = 1e-12,
                 use_segments: bool = False, shared_biases: RelativeMultiHeadAttention | None = None):
        super().__init__()
        self.attention = RelativeMultiHeadAttention(hidden_size, num_heads, dropout=dropout,
                                                    attention_dropout=attention_dropout,
                                                    layer_norm_eps=layer_norm_eps, use_segments=use_segments,
                                                    shared_biases=shared_biases)
        self.feed_forward = PositionwiseFeedForward(hidden_size, intermediate_size, activation, dropout,
                                                    layer_norm_eps)

    def forward(self, content, position_embeddings, *, memory=None, content_rows=None, query=None,
                query_rows=None, compute_content=True):
        content, query = self.attention(content, position_embeddings, memory=memory, content_rows=content_rows,
                                        query=query, query_rows=query_rows, compute_content=compute_content)
        if content is not None:
            content = self.feed_forward(content)
        if query is not None:
            query = self.feed_forward(query)
        return content, query


# --------------------------------------------------------------------------- the stack

@dataclass
class RelativeStackOutput:
    """``content``: the content stream after the last layer (B, T, d), or (B, Q, d) at ``read_positions``,
    or None when only the query stream was asked for; ``query``: the query stream (B, Q, d) or None;
    ``memory``: one (B, M', d) tensor per layer for the next segment (None when ``mem_len = 0``);
    ``hidden_states``: (stack input, layer 1, ..., layer L) of the content stream when asked for."""

    content: torch.Tensor | None
    query: torch.Tensor | None
    memory: list[torch.Tensor] | None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class RelativeTransformer(nn.Module):
    """A stack of :class:`RelativeTransformerLayer` with segment memory (Transformer-XL and XLNet).

    ``causal=True`` is Transformer-XL's language model (XLNet's ``attn_type="uni"``): position ``p``
    sees keys ``j <= p`` (memory included); ``same_length`` further limits every query to its last
    ``M + 1`` keys. ``causal=False`` (XLNet's ``"bi"``) lets every position see the whole segment and
    memory, unless a permutation mask says otherwise. ``bi_data``: the second half of every batch is
    read backwards (distances negated), XLNet's bidirectional data pipeline.
    """

    def __init__(self, num_layers: int, hidden_size: int, num_heads: int, intermediate_size: int,
                 activation: str = "gelu", dropout: float = 0.1, attention_dropout: float | None = None,
                 layer_norm_eps: float = 1e-12, untie_biases: bool = True, use_segments: bool = False,
                 mem_len: int = 0, reuse_len: int | None = None, clamp_len: int = -1, same_length: bool = False,
                 bi_data: bool = False, causal: bool = False):
        super().__init__()
        check_memory_length(mem_len)
        if isinstance(clamp_len, bool) or not isinstance(clamp_len, int) or (clamp_len < 1 and clamp_len != -1):
            raise Word2BertError(f"parameter clamp_len={clamp_len!r} must be a positive integer or -1 (no clamping)")
        if reuse_len is not None and (not isinstance(reuse_len, int) or reuse_len < 0):
            raise Word2BertError(f"parameter reuse_len={reuse_len!r} must be an integer >= 0 or None")
        if same_length and not causal:
            raise Word2BertError("same_length applies to causal attention only (attn_type='uni')")
        self.hidden_size = hidden_size
        self.mem_len, self.reuse_len, self.clamp_len = mem_len, reuse_len, clamp_len
        self.same_length, self.bi_data, self.causal = same_length, bi_data, causal
        attention_dropout = dropout if attention_dropout is None else attention_dropout
        layers = []
        for index in range(num_layers):
            shared = None if untie_biases or index == 0 else layers[0].attention
            layers.append(RelativeTransformerLayer(hidden_size, num_heads, intermediate_size, activation, dropout,
                                                   attention_dropout, layer_norm_eps, use_segments, shared))
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)

    # ------------------------------------------------------------------ masks and positions
    def position_embeddings(self, query_len: int, key_len: int, device) -> torch.Tensor:
        """(G, R, d) encodings of the distances ``key_len - 1 ...`` (G = 2 with ``bi_data``: forward, backward)."""
        distances = relative_distances(query_len, key_len, self.causal, self.clamp_len, device)
        table = relative_sinusoid(distances, self.hidden_size)[None]
        if self.bi_data:  # the backward half reads its segment right to left: every distance negated
            table = torch.cat([table, relative_sinusoid(-distances, self.hidden_size)[None]], dim=0)
        return table

    def allowed_keys(self, batch: int, query_len: int, memory_len: int, device,
                     key_padding: torch.Tensor | None = None,
                     permutation_blocked: torch.Tensor | None = None) -> torch.Tensor | None:
        """Who may the *query stream* see: (B|1, T, M+T) bool, True = may attend; None = everyone.

        Memory keys are always visible (except what causal / same_length exclude); a key of the
        current segment is hidden by ``permutation_blocked[b, i, j]`` (transformers' ``perm_mask``)
        and by padding (``key_padding`` False). The content stream additionally sees itself.
        """
        constraints = []
        key_len = memory_len + query_len
        if self.causal:
            rows = torch.arange(query_len, device=device)[:, None]
            keys = torch.arange(key_len, device=device)[None, :]
            allowed = keys <= rows + memory_len
            if self.same_length:
                allowed = allowed & (keys >= rows)
            constraints.append(allowed[None])
        if permutation_blocked is not None or key_padding is not None:
            data = torch.ones(batch, query_len, query_len, dtype=torch.bool, device=device)
            if permutation_blocked is not None:
                data = data & ~permutation_blocked.bool()
            if key_padding is not None:
                data = data & key_padding.bool()[:, None, :]
            if memory_len:
                data = torch.cat([data.new_ones(batch, query_len, memory_len), data], dim=2)
            constraints.append(data)
        if not constraints:
            return None
        allowed = constraints[0]
        for other in constraints[1:]:
            allowed = allowed & other
        return allowed

    # ------------------------------------------------------------------ forward
    def forward(self, hidden: torch.Tensor, *, memory: list[torch.Tensor] | None = None,
                key_padding: torch.Tensor | None = None, permutation_blocked: torch.Tensor | None = None,
                segment_ids: torch.Tensor | None = None, query: torch.Tensor | None = None,
                query_positions: torch.Tensor | None = None, query_valid: torch.Tensor | None = None,
                read_positions: torch.Tensor | None = None, content_output: bool = True,
                output_hidden_states: bool = False) -> RelativeStackOutput:
        """Run the stack on the embedded segment ``hidden`` (B, T, d) (dropout already applied).

        ``memory``: one (B, M, d) tensor per layer (from the previous call's output) or None.
        ``key_padding`` (B, T): True/1 for tokens, False/0 for padding. ``permutation_blocked``
        (B, T, T): True where position i may not see position j (transformers' ``perm_mask``).
        ``segment_ids`` (B, T): XLNet's relative segment encoding (memory counts as segment 0).
        ``query`` (B, Q, d) with ``query_positions`` (B, Q) runs the query stream at those positions
        (``query_valid`` (B, Q) False for padding rows). ``read_positions`` (B, Q') computes the
        content stream's last layer at those positions only. ``content_output=False`` skips the content
        stream of the last layer (only the query stream is read).
        """
        batch, seq_len, _ = hidden.shape
        if memory is not None and len(memory) != len(self.layers):
            raise Word2BertError(f"memory has {len(memory)} layers, the model {len(self.layers)}")
        memory_len = memory[0].shape[1] if memory is not None and memory[0] is not None else 0
        if memory is not None and any(m is None or m.shape[1] != memory_len for m in memory):
            raise Word2BertError("every layer's memory must have the same length")
        if self.bi_data and batch % 2:
            raise Word2BertError(f"bi_data needs an even batch size (forward and backward halves), got {batch}")
        key_len = memory_len + seq_len
        device = hidden.device
        allowed = self.allowed_keys(batch, seq_len, memory_len, device, key_padding, permutation_blocked)
        differs = None
        if segment_ids is not None:
            keys_segments = segment_ids
            if memory_len:
                keys_segments = torch.cat([segment_ids.new_zeros(batch, memory_len), segment_ids], dim=1)
            differs = (segment_ids[:, :, None] != keys_segments[:, None, :])[:, None]

        content_rows = StreamRows(
            blocked=None if allowed is None else ~_with_diagonal(allowed, memory_len)[:, None],
            segment_differs=differs)
        last_rows = content_rows
        if read_positions is not None:
            last_rows = _select_rows(content_rows, read_positions, memory_len)
        query_rows = None
        if query is not None:
            if query_positions is None or query_positions.shape != query.shape[:2]:
                raise Word2BertError("the query stream needs query_positions of shape (batch, predictions)")
            query_rows = _select_rows(StreamRows(blocked=None if allowed is None else ~allowed[:, None],
                                                 segment_differs=differs), query_positions, memory_len)
            query_rows.residual_index = None
            if query_valid is not None:
                query_rows.valid = query_valid.to(hidden.dtype)[:, None, :, None]

        positions = self.dropout(self.position_embeddings(seq_len, key_len, device).to(hidden.dtype))
        new_memory = [] if self.mem_len > 0 else None
        all_hidden = [hidden] if output_hidden_states else None
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            layer_memory = memory[index] if memory is not None else None
            if new_memory is not None:
                new_memory.append(update_memory(hidden, layer_memory, self.mem_len, self.reuse_len))
            is_last = index == last
            compute_content = not is_last or content_output or output_hidden_states
            hidden_out, query = layer(hidden, positions, memory=layer_memory,
                                      content_rows=last_rows if is_last else content_rows,
                                      query=query, query_rows=query_rows, compute_content=compute_content)
            if hidden_out is not None:
                hidden = hidden_out
                if all_hidden is not None:
                    all_hidden.append(hidden)
        content = hidden if (content_output or output_hidden_states) else None
        return RelativeStackOutput(content, query, new_memory, tuple(all_hidden) if all_hidden is not None else None)


def _with_diagonal(allowed: torch.Tensor, memory_len: int) -> torch.Tensor:
    """``allowed`` (B|1, T, M+T) plus every position seeing itself (the content stream)."""
    query_len, key_len = allowed.shape[-2], allowed.shape[-1]
    eye = torch.zeros(query_len, key_len, dtype=torch.bool, device=allowed.device)
    eye[:, memory_len:] = torch.eye(query_len, dtype=torch.bool, device=allowed.device)
    return allowed | eye


def _select_rows(rows: StreamRows, positions: torch.Tensor, memory_len: int) -> StreamRows:
    """The rows of ``rows`` at segment positions ``positions`` (B, Q), with their key-axis positions."""
    positions = positions.long()

    def take(tensor):
        if tensor is None:
            return None
        tensor = tensor.expand(positions.shape[0], *tensor.shape[1:])
        index = positions[:, None, :, None].expand(-1, tensor.shape[1], -1, tensor.shape[-1])
        return tensor.gather(2, index)

    return StreamRows(key_positions=positions + memory_len, blocked=take(rows.blocked),
                      segment_differs=take(rows.segment_differs), residual_index=positions)


__all__ = [
    "BLOCKED_SCORE",
    "PositionwiseFeedForward",
    "RelativeMultiHeadAttention",
    "RelativeStackOutput",
    "RelativeTransformer",
    "RelativeTransformerLayer",
    "StreamRows",
    "check_memory_length",
    "relative_distances",
    "relative_gather",
    "relative_shift",
    "relative_sinusoid",
    "update_memory",
]
