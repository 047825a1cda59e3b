"""Decoding for any autoregressive model: greedy, sampling (temperature, top-k, top-p), beam search.

The driver knows nothing about the model. It calls a **step function**::

    step(new_ids: LongTensor (B, t), state) -> (logits: Tensor (B, V), state)

which feeds the new tokens to the model (the whole prompt at the first call, then the one token
just chosen) and returns the logits of the next token after the last of them, together with the
updated state (a key/value cache, an LSTM state, the encoder memory of a translation model ...).
Beam search also *reorders* the state along the batch (keeps the rows of the surviving beams); the
default :func:`reorder_state` handles objects with a ``reorder(index)`` method (the key/value
cache), tensors (batch on dim 0) and containers of them.

Batched prompts of different lengths are **left-padded**, so every prompt ends in the last column
and the logits of the first step are the next-token logits of every row; the step function (its
state) knows the padding mask and gives each real token its position (a GPT step sets position
ids from the mask, see :meth:`word2bert.models.gpt.GPTLMHeadModel.generate`).

Sampling (Holtzman et al. 2020 for top-p): logits are divided by the temperature, then top-k keeps
the k largest, top-p the smallest set of most likely tokens whose probabilities sum to >= p (the
most likely token always stays); the next token is drawn from the softmax of what is left.

Beam search with the length penalty of Wu et al. (2016), GNMT::

    score(Y) = log P(Y | prompt) / lp(Y),    lp(Y) = ((5 + |Y|) / 6) ** alpha

with |Y| the number of new tokens (a final stop token included) and ``alpha = length_penalty``
(0 = plain log-probability; Vaswani et al. 2017 used 0.6 with 4 beams).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from word2bert.errors import Word2BertError
from word2bert.nn.screened_argmax import screened_argmax

StepFunction = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


@dataclass
class GenerationOutput:
    """``sequences`` (B, T+N) = prompt then new tokens (``pad_token_id`` after a stop token);
    ``new_tokens`` (B, N); ``lengths`` (B,) new tokens of each row, its stop token included;
    ``scores`` (B,): beam search's length-penalised score; for greedy search and sampling, with
    ``output_scores=True`` (the default), the sum of log p(token) of the chosen tokens under the
    model's (unmodified) distribution, else None (it costs a pass over the vocabulary per step)."""

    sequences: torch.Tensor
    new_tokens: torch.Tensor
    lengths: torch.Tensor
    scores: torch.Tensor | None


def reorder_state(state, index: torch.Tensor):
    """Select batch rows ``index`` (LongTensor (B',), may repeat rows) in every part of ``state``.

    An object with ``reorder(index)`` is reordered by it (its return value is the new state, or the
    object itself when it returns None); a tensor becomes ``tensor.index_select(0, index)``; tuples,
    lists, dicts and dataclasses are walked; anything else (None, numbers, strings) is kept.
    """
    if state is None or isinstance(state, (int, float, str, bool)):
        return state
    if hasattr(state, "reorder") and callable(state.reorder):
        result = state.reorder(index)
        return state if result is None else result
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index.to(state.device))
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # a named tuple
        return type(state)(*(reorder_state(part, index) for part in state))
    if isinstance(state, (tuple, list)):
        return type(state)(reorder_state(part, index) for part in state)
    if isinstance(state, dict):
        return {key: reorder_state(value, index) for key, value in state.items()}
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return dataclasses.replace(state, **{f.name: reorder_state(getattr(state, f.name), index)
                                             for f in dataclasses.fields(state) if f.init})
    return state


def length_penalty_factor(length, alpha: float):
    """GNMT's lp = ((5 + length) / 6) ** alpha (a float or a tensor of lengths)."""
    if isinstance(length, torch.Tensor):
        return ((5.0 + length.to(torch.float64)) / 6.0) ** alpha
    return ((5.0 + length) / 6.0) ** alpha


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """logits / temperature with everything outside the top-k and the top-p nucleus set to -inf."""
    logits = logits.float() / temperature if temperature != 1.0 else logits.float()
    vocab = logits.shape[-1]
    if top_k is not None and top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probabilities = sorted_logits.softmax(-1)
        mass_before = probabilities.cumsum(-1) - probabilities  # mass of the strictly more likely tokens
        drop_sorted = mass_before >= top_p  # keep a token while the mass above it is still < p
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _check_options(input_ids, max_new_tokens, temperature, top_k, top_p, num_beams, do_sample, on_tokens):
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[1] < 1:
        shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise Word2BertError(f"input_ids must be a (batch, length >= 1) tensor of token ids, got {shape}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise Word2BertError(f"parameter max_new_tokens={max_new_tokens!r} must be an integer >= 1")
    if not isinstance(temperature, (int, float)) or not temperature > 0:
        raise Word2BertError(f"parameter temperature={temperature!r} must be > 0")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise Word2BertError(f"parameter top_k={top_k!r} must be an integer >= 1")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0.0 < top_p <= 1.0):
        raise Word2BertError(f"parameter top_p={top_p!r} must be in (0, 1]")
    if isinstance(num_beams, bool) or not isinstance(num_beams, int) or num_beams < 1:
        raise Word2BertError(f"parameter num_beams={num_beams!r} must be an integer >= 1")
    if num_beams > 1 and do_sample:
        raise Word2BertError("beam search does not sample: give num_beams=1 with do_sample=True")
    if num_beams > 1 and on_tokens is not None:
        raise Word2BertError("tokens cannot be streamed during beam search (the best beam is known at the end)")


class LinearLogits:
    """The next-token logits ``hidden @ weight.T`` (B, V) of a step, not computed yet. A step function
    may return one instead of a tensor when only greedy tokens are wanted (no sampling, no beams, no
    scores): the driver then takes their argmax through
    :func:`~word2bert.nn.screened_argmax.screened_argmax` (exact, without the full product)."""

    def __init__(self, hidden: torch.Tensor, weight: torch.Tensor):
        self.hidden, self.weight = hidden, weight

    def argmax(self, dim: int = -1) -> torch.Tensor:
        """The tokens (B,) along the vocabulary (``dim`` is accepted as ``Tensor.argmax`` takes it)."""
        return screened_argmax(self.hidden, self.weight)

    def materialize(self) -> torch.Tensor:
        return torch.mm(self.weight, self.hidden.t()).t()


def _check_logits(logits, batch, step_number):
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise Word2BertError(f"the step function returned logits of shape {shape} at step {step_number}; "
                             f"expected (batch={batch}, vocabulary)")


@torch.no_grad()
def generate(
    step: StepFunction,
    input_ids: torch.Tensor,
    state=None,
    *,
    max_new_tokens: int = 20,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_beams: int = 1,
    length_penalty: float = 0.6,
    stop_token_ids: Iterable[int] | int | None = None,
    pad_token_id: int = 0,
    generator: torch.Generator | None = None,
    reorder: Callable[[Any, torch.Tensor], Any] = reorder_state,
    on_tokens: Callable[[torch.Tensor], None] | None = None,
    output_scores: bool = True,
) -> GenerationOutput:
    """Continue each prompt of ``input_ids`` (B, T) by up to ``max_new_tokens`` tokens.

    ``num_beams > 1``: beam search; else greedy (argmax) or, with ``do_sample``, sampling from the
    filtered distribution (``temperature``, ``top_k``, ``top_p``; ``generator`` seeds it). A row
    stops after a token of ``stop_token_ids``; generation ends when every row has stopped.
    ``on_tokens(tokens)`` is called with each step's new tokens (B,) as they are produced
    (streaming; a stopped row shows ``pad_token_id``). ``output_scores=False`` skips summing the
    chosen tokens' log-probabilities (greedy / sampling; beam search always scores).
    """
    _check_options(input_ids, max_new_tokens, temperature, top_k, top_p, num_beams, do_sample, on_tokens)
    if stop_token_ids is None:
        stop_ids = []
    elif isinstance(stop_token_ids, int):
        stop_ids = [stop_token_ids]
    else:
        stop_ids = sorted({int(i) for i in stop_token_ids})
    if num_beams > 1:
        return _beam_search(step, input_ids, state, max_new_tokens, num_beams, float(length_penalty),
                            stop_ids, pad_token_id, reorder)
    return _greedy_or_sample(step, input_ids, state, max_new_tokens, do_sample, temperature, top_k, top_p,
                             stop_ids, pad_token_id, generator, on_tokens, output_scores)


def _greedy_or_sample(step, input_ids, state, max_new_tokens, do_sample, temperature, top_k, top_p,
                      stop_ids, pad_token_id, generator, on_tokens, output_scores) -> GenerationOutput:
    batch, device = input_ids.shape[0], input_ids.device
    stop = torch.tensor(stop_ids, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)
    scores = torch.zeros(batch, dtype=torch.float64, device=device) if output_scores else None
    new_tokens = []
    feed = input_ids
    for number in range(max_new_tokens):
        logits, state = step(feed, state)
        if isinstance(logits, LinearLogits) and (do_sample or scores is not None):
            logits = logits.materialize()
        if not isinstance(logits, LinearLogits):
            _check_logits(logits, batch, number)
        if do_sample:
            filtered = filter_logits(logits, temperature, top_k, top_p)
            tokens = torch.multinomial(filtered.softmax(-1), 1, generator=generator).squeeze(1)
        else:
            tokens = logits.argmax(-1)
        if scores is not None:
            exact = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
            log_probs = (exact.gather(1, tokens[:, None]).squeeze(1) - torch.logsumexp(exact, -1)).double()
            scores += log_probs.masked_fill(finished, 0.0)
        tokens = tokens.masked_fill(finished, pad_token_id)
        lengths += (~finished).long()
        new_tokens.append(tokens)
        if on_tokens is not None:
            on_tokens(tokens)
        if stop.numel():
            finished |= torch.isin(tokens, stop)
        if bool(finished.all()) or number == max_new_tokens - 1:
            break
        feed = tokens[:, None]
    generated = torch.stack(new_tokens, 1)
    return GenerationOutput(torch.cat([input_ids, generated], 1), generated, lengths, scores)


def _beam_search(step, input_ids, state, max_new_tokens, num_beams, alpha, stop_ids, pad_token_id,
                 reorder) -> GenerationOutput:
    """Beam search over B prompts with k = ``num_beams`` beams each, vectorised over the batch.

    Each step every live beam b (score s_b = log P of its tokens) proposes s_b + log p(v) for every
    token v; the 2k best of the k*V candidates are looked at in order: a candidate ending in a stop
    token whose rank is < k becomes a finished hypothesis (scored s / lp(length)), the k best others
    are the next live beams. A batch row is done when it has k finished hypotheses and no live beam
    can still beat the worst of them: log-probabilities only decrease, so a live beam's final
    score is at most s / lp(L) for L its current length or ``max_new_tokens`` (lp is monotone in L).
    At ``max_new_tokens`` the live beams are finished as they are. The best finished hypothesis wins.

    A row that is done leaves the batch at once (its beams are dropped from the state), so the step
    function decodes only the rows still searching; their results are kept aside per original row.
    """
    batch, device = input_ids.shape[0], input_ids.device
    k = num_beams
    neg_inf = float("-inf")
    stop = torch.tensor(stop_ids, dtype=torch.long, device=device)
    # Finished hypotheses of each row (the k best so far): normalised scores, tokens, lengths.
    done_scores = torch.full((batch, k), neg_inf, dtype=torch.float64, device=device)
    done_tokens = torch.full((batch, k, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
    done_lengths = torch.zeros((batch, k), dtype=torch.long, device=device)
    row_done = torch.zeros(batch, dtype=torch.bool, device=device)
    # The rows still searching (``active``: their original indices); the results of the others.
    active = torch.arange(batch, device=device)
    final_scores, final_tokens, final_lengths = done_scores.clone(), done_tokens.clone(), done_lengths.clone()

    def set_aside(local: torch.Tensor) -> None:
        final_scores[active[local]] = done_scores[local]
        final_tokens[active[local]] = done_tokens[local]
        final_lengths[active[local]] = done_lengths[local]

    logits, state = step(input_ids, state)  # first step on the B prompts, before expanding to beams
    _check_logits(logits, batch, 0)
    beams_per_row = 1
    beam_scores = torch.zeros(batch, 1, dtype=torch.float64, device=device)
    beam_tokens = torch.zeros(batch, 1, 0, dtype=torch.long, device=device)
    batch_offsets = torch.arange(batch, device=device)[:, None]

    for length in range(1, max_new_tokens + 1):
        # Only a beam's 2k most likely tokens can be among the 2k best candidates (its score s_b is
        # the same for all its tokens): log p in the logits' precision over the vocabulary, totals in
        # float64 over those 2k per beam.
        vocab = logits.shape[-1]
        per_beam = min(2 * k, vocab)
        best_log_probs, best_tokens = logits.log_softmax(-1).topk(per_beam, dim=-1)
        candidates = (beam_scores[:, :, None] + best_log_probs.double().view(batch, beams_per_row, per_beam))
        candidates = candidates.view(batch, beams_per_row * per_beam)
        width = min(2 * k, candidates.shape[1])
        top_scores, top_index = candidates.topk(width, dim=1)  # sorted, best first
        source_beam = top_index // per_beam
        token = best_tokens.view(batch, beams_per_row * per_beam).gather(1, top_index)
        is_stop = torch.isin(token, stop) if stop.numel() else torch.zeros_like(token, dtype=torch.bool)
        finite = top_scores > neg_inf

        # Candidates that end in a stop token (rank < k) or reach the length limit are finished.
        rank = torch.arange(width, device=device)[None, :]
        finishing = finite & ((is_stop & (rank < k)) | (length == max_new_tokens)) & ~row_done[:, None]
        if bool(finishing.any()):
            normalised = top_scores / length_penalty_factor(length, alpha)
            new_scores = torch.where(finishing, normalised, torch.full_like(normalised, neg_inf))
            history = beam_tokens.gather(1, source_beam[:, :, None].expand(-1, -1, length - 1))
            new_tokens = torch.full((batch, width, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
            new_tokens[:, :, : length - 1] = history
            new_tokens[:, :, length - 1] = token
            pooled_scores = torch.cat([done_scores, new_scores], 1)
            pooled_tokens = torch.cat([done_tokens, new_tokens], 1)
            pooled_lengths = torch.cat([done_lengths, torch.full_like(token, length)], 1)
            done_scores, keep = pooled_scores.topk(k, dim=1)
            done_tokens = pooled_tokens[batch_offsets, keep]
            done_lengths = pooled_lengths.gather(1, keep)
        if length == max_new_tokens:
            break

        # The next live beams: the k best candidates that do not end in a stop token.
        live = finite & ~is_stop
        order = torch.argsort((~live).to(torch.int8), dim=1, stable=True)[:, :k]  # live ones first, in rank order
        if order.shape[1] < k:  # fewer candidates than beams (tiny vocabulary, first steps)
            order = torch.cat([order, order[:, :1].expand(-1, k - order.shape[1])], 1)
        chosen_live = live.gather(1, order)
        beam_scores = torch.where(chosen_live, top_scores.gather(1, order), torch.full_like(beam_scores[:, :1], neg_inf))
        parents = source_beam.gather(1, order)
        chosen_tokens = token.gather(1, order)
        beam_tokens = torch.cat([beam_tokens.gather(1, parents[:, :, None].expand(-1, -1, length - 1)),
                                 chosen_tokens[:, :, None]], 2)

        # A row is done when its k-th finished hypothesis beats every live beam's best possible score.
        best_live = beam_scores.max(1).values
        bound = torch.maximum(best_live / length_penalty_factor(length, alpha),
                              best_live / length_penalty_factor(max_new_tokens, alpha))
        bound = torch.where(best_live > neg_inf, bound, torch.full_like(bound, neg_inf))
        row_done |= (done_scores[:, -1] > neg_inf) & (done_scores[:, -1] >= bound)
        row_done |= best_live == neg_inf
        if bool(row_done.all()):
            break

        previous_offsets = batch_offsets
        if bool(row_done.any()):  # done rows leave the batch: keep the others' beams only
            set_aside(row_done.nonzero().squeeze(1))
            keep = (~row_done).nonzero().squeeze(1)
            active, row_done = active[keep], row_done[keep]
            done_scores, done_tokens, done_lengths = done_scores[keep], done_tokens[keep], done_lengths[keep]
            beam_scores, beam_tokens = beam_scores[keep], beam_tokens[keep]
            parents, chosen_tokens = parents[keep], chosen_tokens[keep]
            previous_offsets = keep[:, None]
            batch = keep.numel()
            batch_offsets = torch.arange(batch, device=device)[:, None]
        rows = (previous_offsets * beams_per_row + parents).reshape(-1)  # flat index into the current rows
        state = reorder(state, rows)
        beams_per_row = k
        logits, state = step(chosen_tokens.reshape(-1, 1), state)
        _check_logits(logits, batch * k, length)

    set_aside(torch.arange(batch, device=device))
    best = final_scores.argmax(1)
    generated = final_tokens[torch.arange(final_tokens.shape[0], device=device), best]
    lengths = final_lengths.gather(1, best[:, None]).squeeze(1)
    generated = generated[:, : max(int(lengths.max()), 1)]
    scores = final_scores.gather(1, best[:, None]).squeeze(1)
    return GenerationOutput(torch.cat([input_ids, generated], 1), generated, lengths, scores)


__all__ = ["GenerationOutput", "StepFunction", "filter_logits", "generate", "length_penalty_factor",
           "reorder_state"]
