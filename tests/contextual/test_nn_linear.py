"""nn.linear: the pre-packed inference path and the one-row product equal F.linear (to fp32 rounding),
follow the weight when it changes, never touch training, and switch off when asked or when the operator
misbehaves."""

import pytest
import torch
import torch.nn.functional as F

import word2bert.nn.linear as packed_linear
from word2bert.nn import weight_cache
from word2bert.nn.linear import Linear, linear


@pytest.fixture(autouse=True)
def fresh_state():
    saved = dict(packed_linear._STATE)
    packed_linear._STATE.update(enabled=True, checked=False)
    yield
    packed_linear._STATE.update(saved)
    weight_cache.clear()


def packed_entries():
    return [key for key in weight_cache._ENTRIES if key[1] == packed_linear._KIND]


def assert_within_fp32_rounding(got, x, weight, bias):
    """|got - x W^T - b| <= (K + 1) 2^-23 (|x| |W|^T + |b|): an fp32 sum of K products in any order."""
    exact = x.double() @ weight.double().t()
    magnitude = x.double().abs() @ weight.double().abs().t()
    if bias is not None:
        exact, magnitude = exact + bias.double(), magnitude + bias.double().abs()
    allowed = (x.shape[-1] + 1) * 2.0 ** -23 * magnitude + 1e-30
    assert bool(((got.double() - exact).abs() <= allowed).all())


needs_onednn = pytest.mark.skipif(not packed_linear._available(), reason="this torch has no oneDNN linear operator")


@needs_onednn
@pytest.mark.parametrize("shape,out_features,bias", [((2, 64), 300, True), ((3, 5, 48), 130, False),
                                                      ((64, 256), 1000, True), ((7, 33), 8, True)])
def test_packed_product_equals_f_linear(shape, out_features, bias):
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(*shape, generator=generator)
    weight = torch.randn(out_features, shape[-1], generator=generator)
    b = torch.randn(out_features, generator=generator) if bias else None
    with torch.no_grad():
        got = linear(x, weight, b)
    assert got.shape == (*shape[:-1], out_features)
    assert_within_fp32_rounding(got, x, weight, b)
    assert_within_fp32_rounding(F.linear(x, weight, b), x, weight, b)  # the bound F.linear meets too
    assert len(packed_entries()) == 1  # it did take the packed path


@needs_onednn
def test_non_contiguous_rows_are_accepted():
    x = torch.randn(6, 9, 32)[:, -1]  # (6, 32) with a row stride of 9 * 32
    weight = torch.randn(50, 32)
    with torch.no_grad():
        torch.testing.assert_close(linear(x, weight), F.linear(x, weight), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_the_packed_copy_is_rebuilt_when_the_weight_changes():
    layer = Linear(16, 40)
    x = torch.randn(4, 16)
    with torch.no_grad():
        first = layer(x)
        layer.weight.mul_(2.0)  # in place: the version changes
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
        layer.load_state_dict({"weight": torch.zeros(40, 16), "bias": torch.ones(40)})
        assert torch.equal(layer(x), torch.ones(4, 40))
        layer.weight.data = torch.randn(40, 16)  # a new storage
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(first, layer(x).detach())


@needs_onednn
def test_the_cache_leaves_with_its_weight():
    layer = Linear(8, 8)
    with torch.no_grad():
        layer(torch.randn(2, 8))
    assert len(packed_entries()) == 1
    del layer
    assert packed_entries() == []


def test_training_goes_through_f_linear_with_identical_gradients():
    torch.manual_seed(0)
    layer = Linear(12, 7)
    reference = torch.nn.Linear(12, 7)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(5, 12, requires_grad=True)
    x_reference = x.detach().clone().requires_grad_(True)
    out, out_reference = layer(x), reference(x_reference)
    assert torch.equal(out, out_reference)
    out.square().sum().backward()
    out_reference.square().sum().backward()
    assert torch.equal(layer.weight.grad, reference.weight.grad)
    assert torch.equal(x.grad, x_reference.grad)
    assert packed_entries() == []


def test_large_inputs_single_rows_and_other_dtypes_use_f_linear():
    weight = torch.randn(10, 6)
    with torch.no_grad():
        linear(torch.randn(packed_linear.MAX_ROWS + 1, 6), weight)
        linear(torch.randn(1, 6), weight)  # one row: nn.gemv's matrix-vector product
        linear(torch.randn(1, 1, 6), weight)
        linear(torch.randn(3, 6, dtype=torch.float64), weight.double())
    assert packed_entries() == []


def test_a_failing_operator_turns_the_path_off(monkeypatch):
    def broken(*_args):
        raise RuntimeError("no oneDNN here")

    monkeypatch.setattr(packed_linear, "_packed_product", broken)
    x, weight = torch.randn(3, 6), torch.randn(4, 6)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="pre-packed linear layers are off"):
        result = linear(x, weight)
    assert torch.equal(result, F.linear(x, weight))
    assert packed_linear._STATE["enabled"] is False


def test_a_wrong_operator_is_caught_by_the_probe(monkeypatch):
    monkeypatch.setattr(packed_linear, "_available", lambda: True)
    monkeypatch.setattr(packed_linear, "_pack", lambda weight: weight.detach())
    monkeypatch.setattr(packed_linear, "_packed_product", lambda x, packed, bias: F.linear(x, packed, bias) + 1e-2)
    x, weight = torch.randn(3, 6), torch.randn(4, 6)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="disagreed"):
        assert torch.equal(linear(x, weight), F.linear(x, weight))


def test_switching_off_frees_the_packed_copies():
    layer = Linear(8, 8)
    with torch.no_grad():
        layer(torch.randn(2, 8))
        packed_linear.set_packed_inference(False)
        assert packed_entries() == []
        assert torch.equal(layer(torch.ones(2, 8)), F.linear(torch.ones(2, 8), layer.weight, layer.bias))
    assert packed_entries() == []


@needs_onednn
def test_translation_beam_search_is_unchanged_by_the_packed_path():
    from word2bert.models.transformer import TransformerConfig, TransformerForTranslation

    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=60, d_model=32, encoder_layers=2, decoder_layers=2,
                               encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                               decoder_ffn_dim=64, max_position_embeddings=64, pad_token_id=0, eos_token_id=1,
                               decoder_start_token_id=2)
    model = TransformerForTranslation(config).eval()
    source = torch.randint(3, 60, (5, 9))
    source[1, 6:] = 0
    mask = (source != 0).long()
    with_packed = model.translate(source, mask, num_beams=3, max_new_tokens=12)
    assert packed_entries()  # the decoder's layers and output layer took the packed path
    packed_linear.set_packed_inference(False)
    without = model.translate(source, mask, num_beams=3, max_new_tokens=12)
    assert torch.equal(with_packed.new_tokens, without.new_tokens)
    torch.testing.assert_close(with_packed.scores, without.scores, rtol=1e-5, atol=1e-5)


def view_entries():
    return [key for key in weight_cache._ENTRIES if key[1] == "numpy_view"]


@pytest.mark.parametrize("shape,out_features,bias", [((1, 384), 1152, True), ((1, 1, 48), 130, False),
                                                      ((33,), 7, True), ((1, 1536), 384, True)])
@pytest.mark.parametrize("threads", [1, 2])
def test_one_row_equals_f_linear(shape, out_features, bias, threads):
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(*shape, generator=generator)
    weight = torch.randn(out_features, shape[-1], generator=generator)
    b = torch.randn(out_features, generator=generator) if bias else None
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            got = linear(x, weight, b)
    finally:
        torch.set_num_threads(saved)
    assert got.shape == (*shape[:-1], out_features) and got.dtype == torch.float32
    assert_within_fp32_rounding(got.reshape(1, -1), x.reshape(1, -1), weight, b)
    assert len(view_entries()) == (2 if bias else 1)  # it did take the one-row path
    assert packed_entries() == []


def test_one_row_follows_the_weight_and_skips_what_it_cannot_serve():
    layer = Linear(16, 40)
    x = torch.randn(1, 16)
    with torch.no_grad():
        layer.weight.mul_(2.0)
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
        layer.weight.data = torch.randn(40, 16)  # a new storage
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
        weight_cache.clear()
        transposed = torch.randn(16, 40).t()  # not contiguous
        assert torch.equal(linear(x, transposed), F.linear(x, transposed))
        assert torch.equal(linear(x.double(), layer.weight.double()), F.linear(x.double(), layer.weight.double()))
        packed_linear.set_packed_inference(False)
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
    assert view_entries() == []
    packed_linear.set_packed_inference(True)
    out = layer(x)  # gradients wanted: F.linear, bit for bit
    assert out.requires_grad and torch.equal(out, F.linear(x, layer.weight, layer.bias))
    assert view_entries() == []


def test_one_row_from_several_threads_at_once():
    import threading

    generator = torch.Generator().manual_seed(1)
    weight, bias = torch.randn(500, 64, generator=generator), torch.randn(500, generator=generator)
    rows = [torch.randn(1, 64, generator=generator) for _ in range(4)]
    results, errors = {}, []

    def work(index):
        try:
            with torch.no_grad():
                for _ in range(50):
                    results[index] = linear(rows[index], weight, bias)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for index, row in enumerate(rows):
        assert_within_fp32_rounding(results[index], row, weight, bias)


def test_the_first_one_row_product_keeps_torchs_thread_count():
    """numba's thread pool starts on the first one-row product and, through the OpenMP runtime both use,
    resets OpenMP's thread count; torch's own count must stay what the process set (a fresh process:
    the pool starts once per process)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import word2bert

    script = ("import torch\n"
              "from word2bert.nn.linear import linear\n"
              "torch.set_num_threads(1)\n"
              "with torch.no_grad():\n"
              "    linear(torch.randn(1, 8), torch.randn(5, 8))\n"
              "print(torch.get_num_threads())\n")
    env = dict(os.environ, PYTHONPATH=str(Path(word2bert.__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "1"
