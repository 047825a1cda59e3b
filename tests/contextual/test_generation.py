"""The generation driver against independent references, on toy step functions:

beam search = exhaustive search over every sequence of a tiny vocabulary (several length penalties,
a batch of prompts, so beams must follow their state when reordered); sampling frequencies =
the renormalised top-k / top-p / temperature distribution; stop tokens, padding and streaming.
"""

import itertools
import math

import pytest
import torch

from word2bert.errors import Word2BertError
from word2bert.models.generation import filter_logits, generate, length_penalty_factor, reorder_state

VOCAB, STOP = 4, 3


class ToyRecurrentLM:
    """h_t = tanh(W h_{t-1} + E[x_t]); logits = U h_t. The state h (B, d) carries the whole history,
    so a beam whose state is not reordered with it gets the wrong next-token distribution."""

    def __init__(self, seed=0, dim=6, scale=3.0):
        gen = torch.Generator().manual_seed(seed)
        self.W = torch.randn(dim, dim, generator=gen, dtype=torch.float64) / math.sqrt(dim)
        self.E = torch.randn(VOCAB, dim, generator=gen, dtype=torch.float64)
        self.U = torch.randn(VOCAB, dim, generator=gen, dtype=torch.float64) * scale
        self.dim = dim
        self.calls = 0

    def initial_state(self, batch):
        return torch.zeros(batch, self.dim, dtype=torch.float64)

    def step(self, new_ids, state):
        self.calls += 1
        for column in new_ids.unbind(1):
            state = torch.tanh(state @ self.W.T + self.E[column])
        return state @ self.U.T, state

    def log_prob(self, prompt, continuation):
        """log P(continuation | prompt), one token at a time (no batching, no reordering)."""
        state = self.initial_state(1)
        logits, state = self.step(torch.tensor([prompt]), state)
        total = 0.0
        for token in continuation:
            total += float(logits.log_softmax(-1)[0, token])
            logits, state = self.step(torch.tensor([[token]]), state)
        return total


def exhaustive_best(model, prompt, max_new, alpha):
    """The best length-penalised sequence over all continuations: up to max_new tokens, ending at the
    first stop token or at max_new."""
    best = (-math.inf, None)
    for length in range(1, max_new + 1):
        for sequence in itertools.product(range(VOCAB), repeat=length):
            if STOP in sequence[:-1] or (sequence[-1] != STOP and length < max_new):
                continue
            score = model.log_prob(prompt, sequence) / length_penalty_factor(length, alpha)
            best = max(best, (score, sequence))
    return best


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0, -1.0])
def test_beam_search_equals_exhaustive_search(alpha):
    model = ToyRecurrentLM(seed=1)
    prompts = [[0, 1], [2, 2], [1, 0]]
    max_new = 4
    out = generate(model.step, torch.tensor(prompts), model.initial_state(3), max_new_tokens=max_new,
                   num_beams=VOCAB ** max_new, length_penalty=alpha, stop_token_ids=[STOP], pad_token_id=0)
    for row, prompt in enumerate(prompts):
        score, sequence = exhaustive_best(model, prompt, max_new, alpha)
        length = int(out.lengths[row])
        assert tuple(out.new_tokens[row, :length].tolist()) == sequence
        assert out.new_tokens[row, length:].eq(0).all()
        assert float(out.scores[row]) == pytest.approx(score, abs=1e-9)
        assert out.sequences[row, :2].tolist() == prompt


def test_small_beam_finds_what_greedy_misses():
    """First token: A (p=.6) or B (p=.4). After A every token is equally likely (p=.25), after B
    the stop token is certain. Greedy takes A then a .25 token (P=.15); two beams find B STOP (P=.4)."""
    A, B = 0, 1
    table = {(): [0.6, 0.4, 0.0, 0.0], (A,): [0.25] * 4, (B,): [0.0, 0.0, 0.0, 1.0]}

    def step(new_ids, history):
        history = torch.cat([history, new_ids], 1) if history is not None else new_ids[:, 1:]
        rows = [table.get(tuple(h.tolist()), [0.25] * 4) for h in history]
        return torch.tensor(rows).clamp_min(1e-12).log(), history

    prompt = torch.zeros(1, 1, dtype=torch.long)
    greedy = generate(step, prompt, None, max_new_tokens=2, stop_token_ids=[STOP], output_scores=True)
    beam = generate(step, prompt, None, max_new_tokens=2, num_beams=2, length_penalty=0.0, stop_token_ids=[STOP])
    assert greedy.new_tokens[0, 0] == A
    assert beam.new_tokens[0].tolist() == [B, STOP]
    assert float(beam.scores[0]) == pytest.approx(math.log(0.4), abs=1e-6)
    assert float(greedy.scores[0]) == pytest.approx(math.log(0.15), abs=1e-6)


def test_beam_search_stops_once_no_live_beam_can_win():
    """The stop token is near-certain: after two steps (one finished hypothesis per beam) every live beam
    is already below the three finished ones and, without a length bonus (alpha 0), cannot catch up."""
    calls = []

    def step(new_ids, state):
        calls.append(new_ids.shape)
        logits = torch.full((new_ids.shape[0], VOCAB), -20.0)
        logits[:, STOP] = 0.0
        return logits, state

    out = generate(step, torch.zeros(2, 3, dtype=torch.long), None, max_new_tokens=50, num_beams=3,
                   length_penalty=0.0, stop_token_ids=[STOP])
    assert out.new_tokens.tolist() == [[STOP], [STOP]] and out.lengths.tolist() == [1, 1]
    assert len(calls) == 2


def test_greedy_stops_pads_and_streams():
    model = ToyRecurrentLM(seed=2)
    prompts = torch.tensor([[0, 1, 2], [2, 1, 0], [1, 1, 1], [0, 0, 0]])
    streamed = []
    out = generate(model.step, prompts, model.initial_state(4), max_new_tokens=8, stop_token_ids=STOP,
                   pad_token_id=-1, on_tokens=streamed.append, output_scores=True)
    assert torch.equal(torch.stack(streamed, 1), out.new_tokens)
    for row in range(4):  # each row alone, one token at a time, is what the batch produced
        state = model.initial_state(1)
        logits, state = model.step(prompts[row : row + 1], state)
        expected, log_p = [], 0.0
        for _ in range(8):
            token = int(logits.argmax())
            expected.append(token)
            log_p += float(logits.log_softmax(-1)[0, token])
            if token == STOP:
                break
            logits, state = model.step(torch.tensor([[token]]), state)
        length = int(out.lengths[row])
        assert out.new_tokens[row, :length].tolist() == expected
        assert out.new_tokens[row, length:].eq(-1).all()
        assert float(out.scores[row]) == pytest.approx(log_p, abs=1e-9)
    if bool((out.lengths < 8).all()):  # everyone stopped early: no step after the last stop
        assert out.new_tokens.shape[1] == int(out.lengths.max())


def sample_frequencies(logits, samples=40000, **options):
    """Draw `samples` first tokens from fixed logits (one batch row per sample)."""
    def step(new_ids, state):
        return logits.expand(new_ids.shape[0], -1), state

    generator = torch.Generator().manual_seed(0)
    out = generate(step, torch.zeros(samples, 1, dtype=torch.long), None, max_new_tokens=1, do_sample=True,
                   generator=generator, **options)
    return torch.bincount(out.new_tokens[:, 0], minlength=logits.shape[-1]).double() / samples


def assert_frequencies(observed, expected, samples=40000):
    sigma = (expected * (1 - expected) / samples).sqrt()
    assert torch.all((observed - expected).abs() <= 5 * sigma + 1e-12), (observed, expected)


def test_sampling_statistics_top_k_top_p_temperature():
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0]])
    p = logits[0].double().softmax(-1)  # [.53, .20, .12, .07, .03, .003]

    assert_frequencies(sample_frequencies(logits), p)
    top3 = torch.zeros_like(p)
    top3[:3] = p[:3] / p[:3].sum()
    observed = sample_frequencies(logits, top_k=3)
    assert observed[3:].eq(0).all()
    assert_frequencies(observed, top3)
    # nucleus 0.8: .53 + .20 = .73 < .8, with .12 -> .85 >= .8: the three most likely tokens
    observed = sample_frequencies(logits, top_p=0.8)
    assert observed[3:].eq(0).all()
    assert_frequencies(observed, top3)
    squared = p ** 2 / (p ** 2).sum()  # temperature 1/2: p_i^(1/T) renormalised
    assert_frequencies(sample_frequencies(logits, temperature=0.5), squared)
    top1 = sample_frequencies(logits, top_p=0.3)  # the most likely token alone already exceeds p
    assert top1[0] == 1.0


def test_filter_logits_keeps_ties_and_order():
    logits = torch.tensor([[0.0, 3.0, 1.0, 3.0]])
    kept = filter_logits(logits, top_k=2)
    assert torch.isinf(kept).tolist() == [[True, False, True, False]]
    kept = filter_logits(logits, top_p=0.95)  # p = .458, .458, .062, .023: the first three reach .977
    assert torch.isfinite(kept).sum() == 3


def test_reorder_state_walks_containers_and_calls_reorder():
    class Cache:
        def __init__(self, rows):
            self.rows = rows

        def reorder(self, index):
            self.rows = [self.rows[i] for i in index.tolist()]

    cache = Cache(["a", "b", "c"])
    state = {"cache": cache, "hidden": (torch.arange(3)[:, None].expand(3, 2), [torch.tensor([10, 11, 12])]),
             "step": 7, "nothing": None}
    index = torch.tensor([2, 2, 0])
    out = reorder_state(state, index)
    assert out["cache"] is cache and cache.rows == ["c", "c", "a"]
    assert out["hidden"][0][:, 0].tolist() == [2, 2, 0] and out["hidden"][1][0].tolist() == [12, 12, 10]
    assert out["step"] == 7 and out["nothing"] is None


def test_bad_options_are_reported():
    model = ToyRecurrentLM()
    prompt = torch.zeros(1, 2, dtype=torch.long)
    for options, message in [({"max_new_tokens": 0}, "max_new_tokens"), ({"temperature": 0}, "temperature"),
                             ({"top_k": 0, "do_sample": True}, "top_k"), ({"top_p": 1.5}, "top_p"),
                             ({"num_beams": 2, "do_sample": True}, "does not sample"),
                             ({"num_beams": 2, "on_tokens": print}, "streamed")]:
        with pytest.raises(Word2BertError, match=message):
            generate(model.step, prompt, model.initial_state(1), **options)
    with pytest.raises(Word2BertError, match="input_ids"):
        generate(model.step, torch.zeros(2, dtype=torch.long), None)
    with pytest.raises(Word2BertError, match="logits of shape"):
        generate(lambda ids, state: (torch.zeros(5, VOCAB), state), prompt, None)


def test_beam_search_drops_done_rows_and_each_row_gets_what_it_gets_alone():
    """A row whose search is over leaves the batch (the step function sees fewer rows from then on);
    every row's hypothesis, length and score are those of a search over that prompt alone."""
    model = ToyRecurrentLM(seed=2, scale=3.0)
    prompts = torch.tensor([[0, 1], [1, 2], [2, 0], [0, 0], [1, 1], [2, 2]])
    rows_seen = []

    def step(new_ids, state):
        rows_seen.append(new_ids.shape[0])
        return model.step(new_ids, state)

    options = dict(num_beams=3, max_new_tokens=8, length_penalty=0.6, stop_token_ids=STOP, pad_token_id=0)
    batched = generate(step, prompts, model.initial_state(6), **options)
    assert rows_seen[:2] == [6, 18] and rows_seen[-1] < 18 and rows_seen[-1] % 3 == 0
    assert all(a >= b for a, b in zip(rows_seen[1:], rows_seen[2:]))  # rows only ever leave
    for row in range(len(prompts)):
        alone = generate(model.step, prompts[row:row + 1], model.initial_state(1), **options)
        length = int(alone.lengths[0])
        assert int(batched.lengths[row]) == length
        assert batched.new_tokens[row, :length].tolist() == alone.new_tokens[0, :length].tolist()
        assert (batched.new_tokens[row, length:] == 0).all()
        assert batched.scores[row].item() == pytest.approx(alone.scores[0].item(), abs=1e-12)
