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


@pytest.mark.parametrize("change", ["fused adamw", "adam", "sgd through .data", "row through .data"])
def test_changes_the_version_misses_still_reach_the_packed_and_one_row_products(change):
    """torch's fused optimizers and edits through ``.data`` leave ``weight._version`` as it was: the probe
    of the weight's values or the optimizer step hook still rebuild the cached copies, so inference after
    training never multiplies by the weights of before (what transformers' default ``adamw_torch_fused``
    would otherwise have caused)."""
    torch.manual_seed(0)
    layer = Linear(16, 40)
    rows, row = torch.randn(4, 16), torch.randn(1, 16)
    with torch.no_grad():
        before = layer(rows), layer(row)
    if change == "row through .data":  # a probed element changes (the first); other rows need clear()
        layer.weight.data[0].add_(1.0)
    elif change == "sgd through .data":
        layer(rows).square().sum().backward()
        for parameter in layer.parameters():
            parameter.data.add_(-0.1 * parameter.grad)
    else:
        optimizer = (torch.optim.AdamW(layer.parameters(), lr=0.1, fused=True) if change == "fused adamw"
                     else torch.optim.Adam(layer.parameters(), lr=0.1))
        version = layer.weight._version
        layer(rows).square().sum().backward()
        optimizer.step()
        if change == "fused adamw":
            assert layer.weight._version == version  # what made the version key blind to it
    with torch.no_grad():
        for x, old in zip((rows, row), before):
            got = layer(x)
            assert not torch.allclose(got, old)
            torch.testing.assert_close(got, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


def test_every_optimizer_step_empties_the_cache():
    layer = Linear(8, 8)
    with torch.no_grad():
        layer(torch.randn(2, 8))
    assert weight_cache._ENTRIES
    frozen = torch.nn.Parameter(torch.zeros(1))
    frozen.grad = torch.zeros(1)
    torch.optim.SGD([frozen], lr=0.1).step()  # another model's optimizer: the cache is rebuilt all the same
    assert not weight_cache._ENTRIES


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


# ---------------------------------------------------------------------------------------------------
# Training on many rows: oneDNN's products for the output and the input gradient
# ---------------------------------------------------------------------------------------------------
@pytest.fixture
def onednn_training_from_few_rows(monkeypatch):
    """The training path from 8 rows on, so that small tensors exercise it (fresh_state restores the switch)."""
    monkeypatch.setattr(packed_linear, "MIN_TRAINING_ROWS", 8)


def took_onednn(out):
    return type(out.grad_fn).__name__.startswith("_OneDNNLinear")


def assert_product_within_rounding(got, a, b):
    """|got - a b| <= (K + 1) 2^-23 |a| |b| elementwise, K the inner dimension (any fp32 summation order)."""
    exact = a.double() @ b.double()
    allowed = (a.shape[-1] + 1) * 2.0 ** -23 * (a.double().abs() @ b.double().abs()) + 1e-30
    assert bool(((got.double() - exact).abs() <= allowed).all())


@needs_onednn
@pytest.mark.parametrize("shape,out_features,bias", [((40, 64), 300, True), ((3, 17, 48), 130, False),
                                                      ((2, 9, 33), 8, True)])
def test_training_values_and_gradients_are_products_to_fp32_rounding(shape, out_features, bias,
                                                                      onednn_training_from_few_rows):
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(*shape, generator=generator, requires_grad=True)
    weight = torch.randn(out_features, shape[-1], generator=generator, requires_grad=True)
    b = torch.randn(out_features, generator=generator, requires_grad=True) if bias else None
    out = linear(x, weight, b)
    assert took_onednn(out) and out.shape == (*shape[:-1], out_features)
    assert_within_fp32_rounding(out.detach(), x.detach(), weight.detach(), None if b is None else b.detach())
    upstream = torch.randn(out.shape, generator=generator)
    out.backward(upstream)
    rows, grad_rows = x.detach().reshape(-1, shape[-1]), upstream.reshape(-1, out_features)
    assert_product_within_rounding(x.grad.reshape(-1, shape[-1]), grad_rows, weight.detach())  # dL/dx = g W
    assert_product_within_rounding(weight.grad, grad_rows.t(), rows)  # dL/dW = g^T x
    if bias:
        torch.testing.assert_close(b.grad, grad_rows.sum(0), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_training_accepts_strided_inputs_and_gradients_and_frozen_operands(onednn_training_from_few_rows):
    generator = torch.Generator().manual_seed(8)
    x = torch.randn(4, 12, 2 * 24, generator=generator)[..., ::2].requires_grad_(True)  # not contiguous
    weight = torch.randn(30, 24, generator=generator)  # frozen
    out = linear(x, weight)
    assert took_onednn(out)
    upstream = torch.randn(4, 30, 12, generator=generator).transpose(1, 2)  # a strided incoming gradient
    out.backward(upstream)
    torch.testing.assert_close(x.grad, upstream @ weight, rtol=1e-5, atol=1e-5)
    assert weight.grad is None
    inputs = torch.randn(50, 24, generator=generator)  # frozen inputs, trained weight
    weight.requires_grad_(True)
    linear(inputs, weight).sum().backward()
    torch.testing.assert_close(weight.grad, torch.ones(30, 50) @ inputs, rtol=1e-5, atol=1e-5)


def test_training_below_the_row_threshold_or_switched_off_is_f_linear_bit_for_bit():
    generator = torch.Generator().manual_seed(9)
    weight = torch.randn(16, 32, generator=generator, requires_grad=True)
    few = torch.randn(packed_linear.MIN_TRAINING_ROWS - 1, 32, generator=generator)
    assert torch.equal(linear(few, weight), F.linear(few, weight))
    assert not took_onednn(linear(few, weight))
    packed_linear.set_onednn_training(False)  # fresh_state switches it back on
    many = torch.randn(packed_linear.MIN_TRAINING_ROWS, 32, generator=generator)
    out = linear(many, weight)
    assert not took_onednn(out) and torch.equal(out, F.linear(many, weight))
    float64 = torch.randn(packed_linear.MIN_TRAINING_ROWS, 32, dtype=torch.float64, generator=generator)
    assert not took_onednn(linear(float64, weight.double()))


@needs_onednn
def test_a_failing_operator_in_training_falls_back_to_f_linear(monkeypatch, onednn_training_from_few_rows):
    def broken(*_args):
        raise RuntimeError("no oneDNN here")

    monkeypatch.setattr(packed_linear, "_packed_product", broken)
    x = torch.randn(20, 6, requires_grad=True)
    weight = torch.randn(4, 6, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="pre-packed linear layers are off"):
        out = linear(x, weight)
    assert torch.equal(out, F.linear(x, weight)) and not took_onednn(out)


@needs_onednn
def test_gpt2_trains_the_same_with_onednn_products(onednn_training_from_few_rows):
    """Three AdamW steps of a small GPT-2 with every linear layer on oneDNN's products and with F.linear:
    the same losses and weights to fp32 rounding (the path is taken: the model's layers see 3 x 20 rows)."""
    from word2bert.models.gpt import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=97, n_positions=32, n_embd=48, n_layer=2, n_head=4, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    first = GPT2LMHeadModel(config)
    second = GPT2LMHeadModel(config)
    second.load_state_dict(first.state_dict())
    ids = torch.randint(0, 97, (3, 20), generator=torch.Generator().manual_seed(2))
    seen = []
    first_layer = first.transformer.encoder.layers[0].feed_forward.dense_in
    first_layer.register_forward_hook(lambda _module, _inputs, out: seen.append(took_onednn(out)))
    losses = {}
    for name, model, onednn in (("onednn", first, True), ("f_linear", second, False)):
        packed_linear.set_onednn_training(onednn)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        losses[name] = []
        for _ in range(3):
            optimizer.zero_grad()
            loss = model(ids).loss
            loss.backward()
            optimizer.step()
            losses[name].append(loss.item())
    assert seen == [True] * 3
    assert losses["onednn"] == pytest.approx(losses["f_linear"], abs=1e-5)
    assert losses["onednn"][2] < losses["onednn"][0] - 0.1  # it did learn
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
