"""nn/screened_argmax.py: each int8 screen finds exactly the argmax of the full fp32 product, with few
candidates, on random, near-tied, duplicated and mixed-scale rows; the uint8 kernel's grid is exact and
forced by its guard row; a screen is rebuilt when the weight changes; a kernel that rounds worse than
assumed disables its screen (and the next kernel, or the full product, serves); GPT's greedy generation
gives the same tokens with and without it."""

import pytest
import torch

import word2bert.nn.screened_argmax as screened
from word2bert.models.gpt import GPT2Config, GPT2LMHeadModel
from word2bert.nn.screened_argmax import ArgmaxScreen, DynamicUint8Screen, screened_argmax

#: candidates per row allowed on 6,000 x 64 random rows: the uint8 kernel's 7-bit rows give a wider bound
CANDIDATES_PER_ROW = {"uint8_dynamic": 12, "int8_weight_only": 4}


def full_argmax(hidden, weight):
    return torch.mm(weight, hidden.t()).t().argmax(-1)


def screen_with(kernel, weight):
    screen = screened._SCREENS[kernel].checked(weight)
    if screen is None:
        pytest.skip(f"the {kernel} kernel is not available in this torch / on this machine")
    return screen


@pytest.mark.parametrize("kernel", screened.KERNELS)
def test_screen_equals_the_full_product_on_random_rows_with_few_candidates(kernel):
    torch.manual_seed(0)
    weight = torch.randn(6000, 64) * 0.02
    screen = screen_with(kernel, weight)
    candidates = 0
    for scale in (0.1, 1.0, 8.0, 50.0):
        hidden = torch.randn(16, 64) * scale
        assert torch.equal(screen.argmax(hidden), full_argmax(hidden, weight))
        candidates += screen.candidates(hidden)[0].numel()
    assert candidates / 64 < CANDIDATES_PER_ROW[kernel]  # selective: a few rows recomputed, not thousands


@pytest.mark.parametrize("kernel", screened.KERNELS)
def test_near_ties_duplicate_rows_and_mixed_scales(kernel):
    torch.manual_seed(1)
    weight = torch.randn(3000, 32) * 0.05
    hidden = torch.randn(8, 32)
    hidden[3] *= 1e-3  # a row far smaller than the others (one grid for all rows in the uint8 kernel)
    best = full_argmax(hidden, weight)
    for row, index in enumerate(best.tolist()):
        other = (index + 17 + row) % 3000
        weight[other] = weight[index] * (1 + 1e-6 * (row - 4))  # a rival within 1e-6 of the best
    weight[2999] = weight[5]  # an exact duplicate: the smaller index wins, as with torch.argmax
    hidden[7] = weight[5] * 10
    screen = screen_with(kernel, weight)
    assert torch.equal(screen.argmax(hidden), full_argmax(hidden, weight))
    assert screen.argmax(hidden)[7].item() == 5
    zero = torch.zeros(2, 32)
    assert torch.equal(screen.argmax(zero), full_argmax(zero, weight))  # all logits 0: index 0


def test_uint8_grid_is_exact_and_forced_by_the_guard_row():
    """h~ has at most 128 levels s (q - z), |h - h~| <= s / 2; with the guard row appended the kernel
    multiplies exactly h~ (its result equals the exact integer product within the assumed rounding)."""
    if not DynamicUint8Screen.available():
        pytest.skip("no quantized dynamic linear kernel in this torch")
    torch.manual_seed(4)
    weight = torch.randn(500, 40) * 0.1
    screen = screen_with("uint8_dynamic", weight)
    for hidden in (torch.randn(5, 40) * 3.0, torch.rand(5, 40) + 0.5, -torch.rand(3, 40)):
        rounded, guard = screen.grid(hidden)
        low, high = min(hidden.min().item(), 0.0), max(hidden.max().item(), 0.0)
        step = (high - low) / 127
        levels = torch.round(rounded / step)
        assert levels.unique().numel() <= 128
        assert torch.allclose(levels * step, rounded, atol=1e-5 * step)
        assert (hidden - rounded).abs().max().item() <= step / 2 * (1 + 1e-5)
        assert guard[0, :2].tolist() == pytest.approx([rounded.min().item() if low < 0 else 0.0,
                                                       rounded.max().item() if high > 0 else 0.0], abs=step)
        approximate, used = screen.scores(hidden)
        exact = (used.double() @ screen.quantized.double().t()) * screen.scales.double()[None, :]
        assert ((approximate.double() - exact).abs() <= screen.kernel_error(approximate.double(), used.double())).all()


def test_screen_is_cached_and_rebuilt_when_the_weight_changes():
    torch.manual_seed(2)
    weight = torch.nn.Parameter(torch.randn(2000, 16) * 0.02)
    first = ArgmaxScreen.for_weight(weight)
    if first is None:
        pytest.skip("no int8 kernel in this torch")
    assert ArgmaxScreen.for_weight(weight) is first
    with torch.no_grad():
        weight.mul_(-1.0)
    second = ArgmaxScreen.for_weight(weight)
    assert second is not first
    hidden = torch.randn(4, 16)
    assert torch.equal(second.argmax(hidden), full_argmax(hidden, weight.detach()))


def _worse_kernels(monkeypatch, which):
    """Make the kernels named in ``which`` round 2^-5 worse than their bounds allow."""
    if "int8_weight_only" in which and screened._int8_kernel() is not None:
        exact = screened._int8_kernel()
        monkeypatch.setattr(screened, "_int8_kernel", lambda: lambda h, q, s: exact(h, q, s) * (1 + 2.0 ** -5))
    if "uint8_dynamic" in which and screened._dynamic_kernel() is not None:
        prepack, dynamic = screened._dynamic_kernel()
        monkeypatch.setattr(screened, "_dynamic_kernel",
                            lambda: (prepack, lambda x, w, r: dynamic(x, w, r) * (1 + 2.0 ** -5)))


def test_a_kernel_rounding_worse_than_assumed_disables_its_screen(monkeypatch):
    weight = torch.randn(500, 16)
    hidden = torch.randn(3, 16)
    _worse_kernels(monkeypatch, {"uint8_dynamic"})
    fallback = ArgmaxScreen.for_weight(weight)  # the next kernel serves
    assert fallback is None or fallback.kernel == "int8_weight_only"
    assert torch.equal(screened_argmax(hidden, weight), full_argmax(hidden, weight))
    _worse_kernels(monkeypatch, {"int8_weight_only"})
    weight = torch.randn(500, 16)
    assert ArgmaxScreen.for_weight(weight) is None  # none left: the full product
    assert torch.equal(screened_argmax(hidden, weight), full_argmax(hidden, weight))


def test_gpt_greedy_generation_gives_the_same_tokens_with_and_without_the_screen(monkeypatch):
    torch.manual_seed(3)
    config = GPT2Config(vocab_size=3000, n_positions=64, n_embd=32, n_layer=2, n_head=2)
    model = GPT2LMHeadModel(config).eval()
    prompts = torch.randint(0, 3000, (4, 6))
    used = []
    real = ArgmaxScreen.argmax
    monkeypatch.setattr(ArgmaxScreen, "argmax", lambda self, hidden: used.append(self.kernel) or real(self, hidden))
    screened_tokens = model.generate(prompts, max_new_tokens=24, stop_token_ids=[]).sequences
    if DynamicUint8Screen.available():
        assert set(used) == {"uint8_dynamic"}  # the preferred screen served every greedy step
    with_scores = model.generate(prompts, max_new_tokens=24, stop_token_ids=[], output_scores=True)
    assert torch.equal(screened_tokens, with_scores.sequences)  # scores need the full logits: no screen
    for kernels in (("int8_weight_only",), ()):  # the other kernel, then none (the full product)
        monkeypatch.setattr(screened, "KERNELS", kernels)
        screened.weight_cache.clear("argmax_screen")
        assert torch.equal(screened_tokens, model.generate(prompts, max_new_tokens=24, stop_token_ids=[]).sequences)
    monkeypatch.setattr(screened, "MAX_ROWS", 0)
    assert torch.equal(screened_tokens, model.generate(prompts, max_new_tokens=24, stop_token_ids=[]).sequences)


def test_a_kernel_that_cannot_be_built_falls_back(monkeypatch):
    """An engine that refuses per-row int8 weights (any exception while building) leaves the next kernel."""
    if screened._dynamic_kernel() is None:
        pytest.skip("no quantized dynamic linear kernel in this torch")
    _, dynamic = screened._dynamic_kernel()

    def refusing_prepack(weight, bias):
        raise AssertionError("per-channel weights are not supported by this engine")

    monkeypatch.setattr(screened, "_dynamic_kernel", lambda: (refusing_prepack, dynamic))
    weight = torch.randn(400, 16)
    screen = ArgmaxScreen.for_weight(weight)
    assert screen is None or screen.kernel == "int8_weight_only"
    hidden = torch.randn(3, 16)
    assert torch.equal(screened_argmax(hidden, weight), full_argmax(hidden, weight))
