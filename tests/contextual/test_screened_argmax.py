"""nn/screened_argmax.py: the int8 screen finds exactly the argmax of the full fp32 product, with few
candidates, on random, near-tied and duplicated rows; it is rebuilt when the weight changes; a kernel
that rounds worse than assumed disables it; GPT's greedy generation gives the same tokens with it."""

import pytest
import torch

import word2bert.nn.screened_argmax as screened
from word2bert.models.gpt import GPT2Config, GPT2LMHeadModel
from word2bert.nn.screened_argmax import ArgmaxScreen, screened_argmax

pytestmark = pytest.mark.skipif(screened._int8_kernel() is None, reason="torch without _weight_int8pack_mm")


def full_argmax(hidden, weight):
    return torch.mm(weight, hidden.t()).t().argmax(-1)


def test_screen_equals_the_full_product_on_random_rows_with_few_candidates():
    torch.manual_seed(0)
    weight = torch.randn(6000, 64) * 0.02
    screen = ArgmaxScreen.for_weight(weight)
    assert screen is not None
    candidates = 0
    for scale in (0.1, 1.0, 8.0, 50.0):
        hidden = torch.randn(16, 64) * scale
        assert torch.equal(screen.argmax(hidden), full_argmax(hidden, weight))
        candidates += screen.candidates(hidden)[0].numel()
    assert candidates / 64 < 4  # the screen is selective: a few rows recomputed, not thousands


def test_near_ties_and_duplicate_rows():
    torch.manual_seed(1)
    weight = torch.randn(3000, 32) * 0.05
    hidden = torch.randn(8, 32)
    best = full_argmax(hidden, weight)
    for row, index in enumerate(best.tolist()):
        other = (index + 17 + row) % 3000
        weight[other] = weight[index] * (1 + 1e-6 * (row - 4))  # a rival within 1e-6 of the best
    weight[2999] = weight[5]  # an exact duplicate: the smaller index wins, as with torch.argmax
    hidden[7] = weight[5] * 10
    assert torch.equal(screened_argmax(hidden, weight), full_argmax(hidden, weight))
    assert screened_argmax(hidden, weight)[7].item() == 5


def test_screen_is_cached_and_rebuilt_when_the_weight_changes():
    torch.manual_seed(2)
    weight = torch.nn.Parameter(torch.randn(2000, 16) * 0.02)
    first = ArgmaxScreen.for_weight(weight)
    assert ArgmaxScreen.for_weight(weight) is first
    with torch.no_grad():
        weight.mul_(-1.0)
    second = ArgmaxScreen.for_weight(weight)
    assert second is not first
    hidden = torch.randn(4, 16)
    assert torch.equal(second.argmax(hidden), full_argmax(hidden, weight.detach()))


def test_a_kernel_rounding_worse_than_assumed_disables_the_screen(monkeypatch):
    exact = screened._int8_kernel()
    monkeypatch.setattr(screened, "_int8_kernel", lambda: lambda h, q, s: exact(h, q, s) * (1 + 2.0 ** -5))
    weight = torch.randn(500, 16)
    assert ArgmaxScreen.for_weight(weight) is None
    hidden = torch.randn(3, 16)
    assert torch.equal(screened_argmax(hidden, weight), full_argmax(hidden, weight))


def test_gpt_greedy_generation_gives_the_same_tokens_with_and_without_the_screen(monkeypatch):
    torch.manual_seed(3)
    config = GPT2Config(vocab_size=3000, n_positions=64, n_embd=32, n_layer=2, n_head=2)
    model = GPT2LMHeadModel(config).eval()
    prompts = torch.randint(0, 3000, (4, 6))
    used = []
    real = ArgmaxScreen.argmax
    monkeypatch.setattr(ArgmaxScreen, "argmax", lambda self, hidden: used.append(1) or real(self, hidden))
    screened_tokens = model.generate(prompts, max_new_tokens=24, stop_token_ids=[]).sequences
    assert used  # the screen served the greedy steps
    with_scores = model.generate(prompts, max_new_tokens=24, stop_token_ids=[], output_scores=True)
    assert torch.equal(screened_tokens, with_scores.sequences)  # scores need the full logits: no screen
    monkeypatch.setattr(screened, "MAX_ROWS", 0)
    assert torch.equal(screened_tokens, model.generate(prompts, max_new_tokens=24, stop_token_ids=[]).sequences)
