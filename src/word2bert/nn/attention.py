"""Multi-head self-attention on ``torch.nn.functional.scaled_dot_product_attention``.

One attention module serves every Transformer in word2bert. What distinguishes BERT, GPT, UniLM
and XLNet is mostly *the mask*, so masks are built in one place (:func:`build_attention_mask`) and
the attention itself accepts any of them:

- a padding mask ``(B, T)`` with 1 = real token, 0 = padding (BERT),
- a causal flag (GPT), alone or combined with padding,
- an arbitrary per-example 2-D mask ``(B, T, T)`` or per-head ``(B, H, T, T)`` boolean tensor,
  True = "query i may attend to key j" (UniLM's seq2seq mask, XLNet's permutation masks).

A query row that may attend to nothing yields a zero vector (SDPA's behaviour for fully masked rows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from word2bert.errors import Word2BertError


def build_attention_mask(
    attention_mask: torch.Tensor | None,
    seq_len: int,
    causal: bool = False,
) -> torch.Tensor | None:
    """Turn a padding mask or a custom mask (and a causal flag) into a boolean SDPA mask.

    Returns a boolean tensor broadcastable to ``(B, H, T, T)`` where True means "may attend", or
    None when nothing is masked (then SDPA can use its fastest kernel; with ``causal=True`` and no
    other mask the caller passes ``is_causal=True`` to SDPA instead, see :class:`MultiHeadSelfAttention`).

    - ``(B, T)`` integer/bool padding mask (1 keep, 0 pad) -> ``(B, 1, 1, T)``: key j is visible to
      every query iff token j is real. An all-ones padding mask returns None.
    - ``(B, T, T)`` boolean -> ``(B, 1, T, T)``; ``(B, H, T, T)`` or ``(B, 1, T, T)`` boolean kept as is.
    - ``causal=True`` intersects the mask with the lower triangle ``j <= i``.
    """
    if attention_mask is None:
        return None  # causal alone is handled with is_causal=True inside SDPA
    if attention_mask.dim() == 2:
        if attention_mask.shape[1] != seq_len:
            raise Word2BertError(
                f"attention_mask has {attention_mask.shape[1]} positions but the input has {seq_len}"
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
        if tuple(attention_mask.shape[-2:]) != (seq_len, seq_len):
            raise Word2BertError(
                f"attention_mask of shape {tuple(attention_mask.shape)} does not match sequence length {seq_len}"
            )
        mask = attention_mask[:, None] if attention_mask.dim() == 3 else attention_mask
    else:
        raise Word2BertError(
            f"attention_mask must be (B,T), (B,T,T) or (B,H,T,T); got shape {tuple(attention_mask.shape)}"
        )
    if causal:
        lower = torch.ones(seq_len, seq_len, dtype=torch.bool, device=mask.device).tril()
        mask = mask & lower
    return mask


class MultiHeadSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (Vaswani et al. 2017) with one fused QKV projection.

    For input ``x`` (B, T, d) and h heads of size d_h = d / h::

        [Q; K; V] = x W_qkv + b_qkv                     (one (d, 3d) matrix instead of three)
        head_k    = softmax(Q_k K_k^T / sqrt(d_h) + M) V_k   (M = 0 where allowed, -inf where masked)
        output    = concat(head_1..head_h) W_o + b_o

    ``attention_dropout`` is applied to the attention probabilities during training (inside SDPA).
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
        self.qkv_proj = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)
        self.out_proj = nn.Linear(hidden_size, hidden_size, bias=bias)

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        causal: bool = False,
        query_positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend ``hidden`` (B, T, d) to itself under an SDPA-ready mask from :func:`build_attention_mask`.

        ``causal=True`` with ``attention_mask=None`` uses SDPA's built-in causal kernel; when a mask is
        given, it must already include the causal constraint (build_attention_mask does that).

        ``query_positions`` (B, Q): compute outputs only for these query positions (keys and values
        still cover all T tokens); the result is (B, Q, d). BERT's last layer uses this, since its
        heads read only the masked positions and [CLS].
        """
        batch, seq_len, _ = hidden.shape
        if query_positions is None:
            qkv = self.qkv_proj(hidden).view(batch, seq_len, 3, self.num_heads, self.head_size)
            query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, T, d_h)
            num_queries = seq_len
        else:
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
        context = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=self.attention_dropout if self.training else 0.0,
            is_causal=causal and attention_mask is None,
        )
        context = context.transpose(1, 2).reshape(batch, num_queries, self.hidden_size)
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
