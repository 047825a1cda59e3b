"""GPT-1 / GPT-2 against transformers (random weights, two shapes each, both directions), causality,
the next-token loss and its statistics, generation against transformers' generate and against
itself (cache, padding), and a tiny GPT that learns a planted pattern."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from word2bert.errors import Word2BertError
from word2bert.models import auto
from word2bert.models.gpt import (
    GPT2Config,
    GPT2LMHeadModel,
    GPT2Model,
    OpenAIGPTConfig,
    OpenAIGPTLMHeadModel,
    OpenAIGPTModel,
)
from word2bert.nn.dropout import set_mask_source
from word2bert.nn.linear_cross_entropy import Workspace, linear_cross_entropy
from word2bert.objectives.causal_lm import CausalLanguageModeling

transformers = pytest.importorskip("transformers")

SHAPES = [dict(vocab_size=61, n_positions=40, n_embd=24, n_layer=2, n_head=3),
          dict(vocab_size=37, n_positions=24, n_embd=32, n_layer=3, n_head=4, initializer_range=0.1)]

FAMILIES = {
    "gpt2": (transformers.GPT2Config, transformers.GPT2LMHeadModel, GPT2Config, GPT2LMHeadModel, GPT2Model),
    "openai-gpt": (transformers.OpenAIGPTConfig, transformers.OpenAIGPTLMHeadModel, OpenAIGPTConfig,
                   OpenAIGPTLMHeadModel, OpenAIGPTModel),
}


def their_model(family, shape, seed=0, **extra):
    their_config_class, their_class = FAMILIES[family][:2]
    torch.manual_seed(seed)
    if family == "gpt2":  # transformers' default ids (50256) lie outside these small vocabularies
        extra = {"bos_token_id": shape["vocab_size"] - 1, "eos_token_id": shape["vocab_size"] - 1, **extra}
    config = their_config_class(**shape, **extra)
    return their_class(config).eval()


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("shape", [0, 1])
def test_transformers_checkpoints_load_and_ours_save_for_transformers(family, shape, tmp_path):
    _, their_class, our_config_class, our_class, encoder_class = FAMILIES[family]
    theirs = their_model(family, SHAPES[shape])
    theirs.save_pretrained(tmp_path / "theirs")
    ours = our_class.from_pretrained(tmp_path / "theirs").eval()
    assert type(auto.from_pretrained(tmp_path / "theirs")) is our_class  # config.json's architecture
    ids = torch.randint(0, SHAPES[shape]["vocab_size"], (3, 11), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # right padding
    with torch.no_grad():
        expected = theirs(ids, attention_mask=mask).logits
        torch.testing.assert_close(ours.logits(ids, mask), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours(ids, mask).lm_logits, expected, atol=1e-5, rtol=0)
        hidden = theirs.transformer(ids).last_hidden_state
        bare = encoder_class.from_pretrained(tmp_path / "theirs").eval()  # heads' checkpoint into the bare encoder
        torch.testing.assert_close(bare(ids).last_hidden_state, hidden, atol=1e-5, rtol=0)

    torch.manual_seed(2)  # our own random model (our initialisation) -> transformers
    config = our_config_class(**SHAPES[shape], **({"eos_token_id": 0, "bos_token_id": 0} if family == "gpt2" else {}))
    mine = our_class(config).eval()
    mine.save_pretrained(tmp_path / "ours")
    loaded = their_class.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, attention_mask=mask).logits, mine.logits(ids, mask), atol=1e-5, rtol=0)
        their_loss = loaded(ids, labels=ids).loss
        assert float(mine(ids).loss) == pytest.approx(float(their_loss), abs=1e-5)


def test_untied_output_layer_and_bare_encoder_round_trip(tmp_path):
    theirs = their_model("gpt2", SHAPES[0], tie_word_embeddings=False)
    theirs.save_pretrained(tmp_path / "untied")
    ours = GPT2LMHeadModel.from_pretrained(tmp_path / "untied").eval()
    assert ours.objectives["lm"].decoder is not None
    ids = torch.randint(0, 61, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(ours.logits(ids), theirs(ids).logits, atol=1e-5, rtol=0)
    encoder = GPT2Model(GPT2Config(**SHAPES[0]))
    encoder.save_pretrained(tmp_path / "bare")
    their_encoder = transformers.GPT2Model.from_pretrained(tmp_path / "bare").eval()
    with torch.no_grad():
        torch.testing.assert_close(their_encoder(ids).last_hidden_state, encoder.eval()(ids).last_hidden_state,
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("config_class", [GPT2Config, OpenAIGPTConfig])
def test_changing_a_later_token_changes_no_earlier_logit(config_class):
    torch.manual_seed(0)
    model = (GPT2LMHeadModel if config_class is GPT2Config else OpenAIGPTLMHeadModel)(
        config_class(**SHAPES[0])).eval()
    ids = torch.randint(0, 61, (2, 12))
    changed = ids.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 61
    with torch.no_grad():
        before, after = model.logits(ids), model.logits(changed)
    assert torch.equal(before[:, :7], after[:, :7])
    assert not torch.allclose(before[:, 7:], after[:, 7:])


def test_gpt2_residual_projections_start_smaller():
    config = GPT2Config(vocab_size=50, n_positions=16, n_embd=128, n_layer=8, n_head=4)
    model = GPT2Model(config)
    layer = model.encoder.layers[3]
    expected = 0.02 / math.sqrt(2 * 8)
    for weight in (layer.attention.out_proj.weight, layer.feed_forward.dense_out.weight):
        assert float(weight.detach().std()) == pytest.approx(expected, rel=0.05)
    assert float(layer.attention.qkv_proj.weight.detach().std()) == pytest.approx(0.02, rel=0.05)
    gpt1 = OpenAIGPTModel(OpenAIGPTConfig(vocab_size=50, n_positions=16, n_embd=128, n_layer=8, n_head=4))
    assert float(gpt1.encoder.layers[3].attention.out_proj.weight.detach().std()) == pytest.approx(0.02, rel=0.05)
    assert gpt1.encoder.final_norm is None and model.encoder.final_norm is not None


def test_fused_loss_equals_cross_entropy_with_gradients():
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(37, 8, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = torch.randn(23, 8, dtype=torch.float64, generator=generator, requires_grad=True)
    bias = torch.randn(23, dtype=torch.float64, generator=generator, requires_grad=True)
    targets = torch.randint(0, 23, (37,), generator=generator)
    nll, correct = linear_cross_entropy(hidden, weight, targets, bias, chunk_rows=5)
    assert nll.dtype == torch.float64
    logits = F.linear(hidden, weight, bias)
    reference = F.cross_entropy(logits, targets, reduction="sum")
    assert float(nll.detach()) == pytest.approx(float(reference.detach()), rel=1e-12)
    assert int(correct) == int((logits.argmax(1) == targets).sum())
    (3.0 * nll).backward()
    fused = [t.grad.clone() for t in (hidden, weight, bias)]
    for t in (hidden, weight, bias):
        t.grad = None
    (3.0 * reference).backward()
    for mine, theirs in zip(fused, (hidden.grad, weight.grad, bias.grad)):
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)
    small = (hidden[:5, :3].detach().requires_grad_(), weight[:7, :3].detach().requires_grad_())
    assert torch.autograd.gradcheck(lambda h, w: linear_cross_entropy(h, w, targets[:5] % 7, chunk_rows=2)[0], small)


def test_fused_mean_loss_reuses_its_workspace_and_matches_pytorch():
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(11, 6, generator=generator, requires_grad=True)
    weight = torch.randn(19, 6, generator=generator, requires_grad=True)
    targets = torch.randint(0, 19, (11,), generator=generator)
    reference = F.cross_entropy(F.linear(hidden, weight), targets)
    expected = torch.autograd.grad(reference, (hidden, weight))
    workspace = Workspace()
    for _ in range(2):  # the second call reuses the first call's buffer
        loss, _ = linear_cross_entropy(hidden, weight, targets, chunk_rows=4, reduction="mean", workspace=workspace)
        assert float(loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-6)
        for mine, theirs in zip(torch.autograd.grad(loss, (hidden, weight)), expected):  # incoming gradient 1
            torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-7)
    assert workspace.buffer is not None and tuple(workspace.buffer.shape) == (4, 19)
    assert copy.deepcopy(workspace).buffer is None
    with pytest.raises(Word2BertError, match="reduction"):
        linear_cross_entropy(hidden, weight, targets, reduction="none")


def test_fused_loss_under_no_grad_computes_no_gradient_products():
    """An evaluation (torch.no_grad) multiplies each chunk once, by W; with gradients wanted each chunk
    also takes the products of dL/dh and dL/dW. Same loss either way."""
    from torch.profiler import profile

    generator = torch.Generator().manual_seed(4)
    hidden = torch.randn(10, 8, generator=generator, requires_grad=True)
    weight = torch.randn(30, 8, generator=generator, requires_grad=True)
    targets = torch.randint(0, 30, (10,), generator=generator)

    def products(grad: bool):
        with torch.set_grad_enabled(grad), profile() as prof:
            loss, _ = linear_cross_entropy(hidden, weight, targets, chunk_rows=5)
        count = sum(event.count for event in prof.key_averages() if event.key in ("aten::mm", "aten::addmm",
                                                                                   "aten::addmm_"))
        return count, float(loss.detach())

    (without, loss_without), (with_grad, loss_with) = products(False), products(True)
    assert without == 2 and with_grad == 6
    assert loss_without == loss_with


def test_fused_loss_computes_in_float32_under_autocast():
    generator = torch.Generator().manual_seed(2)
    hidden = torch.randn(9, 16, generator=generator, requires_grad=True)
    weight = torch.randn(300, 16, generator=generator, requires_grad=True)
    targets = torch.randint(0, 300, (9,), generator=generator)
    expected, _ = linear_cross_entropy(hidden, weight, targets, chunk_rows=4)
    expected_grad = torch.autograd.grad(expected, hidden)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = linear_cross_entropy(hidden, weight, targets, chunk_rows=4)
    assert loss.dtype == torch.float32
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)  # bf16 products: ~1e-2 off
    torch.testing.assert_close(torch.autograd.grad(loss, hidden)[0], expected_grad, rtol=1e-5, atol=1e-6)


def test_objective_targets_skip_padding_and_report_summable_stats():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**SHAPES[0])).eval()
    ids = torch.randint(0, 61, (2, 6))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    out = model(ids, mask)
    logits = model.logits(ids, mask)
    keep = mask[:, 1:].bool()
    reference = F.cross_entropy(logits[:, :-1][keep], ids[:, 1:][keep], reduction="sum")
    nll_sum, count = out.stats["lm_nll"]
    assert count == 5 + 2 and nll_sum == pytest.approx(float(reference.detach()), rel=1e-5)
    assert float(out.loss.detach()) == pytest.approx(float(reference.detach()) / 7, rel=1e-5)
    correct, count = out.stats["lm_accuracy"]
    assert count == 7 and correct == int((logits[:, :-1][keep].argmax(-1) == ids[:, 1:][keep]).sum())
    stream = torch.randint(0, 61, (2, 7))  # a token stream's windows: each position's next token given
    out = model(stream[:, :-1], target_ids=stream[:, 1:])
    reference = F.cross_entropy(model.logits(stream[:, :-1]).reshape(-1, 61), stream[:, 1:].reshape(-1))
    assert float(out.loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-5)
    assert out.stats["lm_nll"][1] == 12
    import numpy as np

    batch = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    CausalLanguageModeling().prepare(batch, [], None)
    assert (batch["labels"] == np.where(mask.numpy() == 1, ids.numpy(), -100)).all()


def small_gpt2(seed=0, vocab=31):
    # eos 2: a token this random model often produces, so rows stop early
    return their_model("gpt2", dict(vocab_size=vocab, n_positions=64, n_embd=24, n_layer=2, n_head=3),
                       seed=seed, initializer_range=0.3, eos_token_id=2)


def test_greedy_and_beam_search_equal_transformers_generate(tmp_path, one_thread):
    theirs = small_gpt2()
    theirs.save_pretrained(tmp_path)
    ours = GPT2LMHeadModel.from_pretrained(tmp_path)
    pad = 30
    ids = torch.randint(3, 30, (4, 6), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    mask[1, :1] = 0
    ids = ids.masked_fill(mask == 0, pad)
    expected = theirs.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=pad)
    out = ours.generate(ids, mask, max_new_tokens=12, pad_token_id=pad)
    assert (out.new_tokens == 2).any()  # some row stopped
    assert torch.equal(out.sequences, expected[:, : out.sequences.shape[1]])
    assert expected[:, out.sequences.shape[1]:].eq(pad).all()
    for beams in (2, 4):  # length penalty 0: both rank hypotheses by log-probability alone
        expected = theirs.generate(ids, attention_mask=mask, max_new_tokens=8, num_beams=beams, length_penalty=0.0,
                                   do_sample=False, pad_token_id=pad)
        out = ours.generate(ids, mask, max_new_tokens=8, num_beams=beams, length_penalty=0.0, pad_token_id=pad)
        for row in range(4):  # (transformers fills a finished beam with the stop token, we with padding)
            length = int(out.lengths[row])
            assert out.new_tokens[row, :length].tolist() == expected[row, 6:6 + length].tolist(), (beams, row)


def test_cached_equals_uncached_and_padded_batch_equals_single_prompts(one_thread):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=31, n_positions=64, n_embd=24, n_layer=2, n_head=3,
                                       initializer_range=0.3, eos_token_id=2, bos_token_id=2))
    prompts = [[5, 6, 7, 8, 9], [11, 12], [20, 21, 22]]
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    for options in ({}, {"num_beams": 3}, {"do_sample": True, "top_k": 5}):
        def run(use_cache, prompt_ids=ids, prompt_mask=mask):
            generator = torch.Generator().manual_seed(7)
            return model.generate(prompt_ids, prompt_mask, max_new_tokens=10, use_cache=use_cache,
                                  generator=generator if options.get("do_sample") else None, **options)

        cached, uncached = run(True), run(False)
        assert torch.equal(cached.sequences, uncached.sequences), options
        if options.get("do_sample"):
            continue
        for row, prompt in enumerate(prompts):
            alone = run(True, torch.tensor([prompt]), None)
            length = int(alone.lengths[0])
            assert cached.new_tokens[row, :length].tolist() == alone.new_tokens[0, :length].tolist(), options
    streamed = []
    model.generate(ids, mask, max_new_tokens=4, on_tokens=streamed.append)
    assert len(streamed) >= 1 and streamed[0].shape == (3,)
    with pytest.raises(Word2BertError, match="left-padded"):
        model.generate(ids, torch.flip(mask, [1]))
    with pytest.raises(Word2BertError, match="positions"):
        model.generate(ids, mask, max_new_tokens=100)


@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread, and a second one spinning on a loaded machine costs 20x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_gpt_learns_a_planted_pattern(one_thread):
    """Each sequence counts up from a random start with a random stride (mod 16): after two tokens the
    rest is determined, but only by looking back (the stride is in no single token)."""
    torch.manual_seed(0)
    vocab, length = 16, 12
    config = GPT2Config(vocab_size=vocab, n_positions=length, n_embd=48, n_layer=2, n_head=4,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, eos_token_id=None, bos_token_id=None)
    model = GPT2LMHeadModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / 200)

    def batch(size, generator):
        start = torch.randint(0, vocab, (size, 1), generator=generator)
        stride = torch.randint(1, 4, (size, 1), generator=generator)
        return (start + stride * torch.arange(length)) % vocab

    generator = torch.Generator().manual_seed(1)
    for _ in range(200):
        loss = model(batch(64, generator)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    test = batch(32, torch.Generator().manual_seed(99))
    model.eval()
    out = model.generate(test[:, :3], max_new_tokens=length - 3, stop_token_ids=[])
    accuracy = float((out.sequences == test).float()[:, 3:].mean())
    assert accuracy > 0.9, accuracy
    with torch.no_grad():
        logits = model.logits(test)
    nll = F.cross_entropy(logits[:, 2:-1].reshape(-1, vocab), test[:, 3:].reshape(-1))
    assert float(nll) < 0.3  # uniform guessing would be log 16 = 2.77


def test_resize_token_embeddings_and_bad_configs():
    model = OpenAIGPTLMHeadModel(OpenAIGPTConfig(**SHAPES[0]))
    old = model.get_input_embeddings().weight.detach().clone()
    model.resize_token_embeddings(64)
    assert model.get_input_embeddings().weight.shape == (64, 24)
    assert torch.equal(model.get_input_embeddings().weight[:61], old)
    assert model.logits(torch.tensor([[63, 1]])).shape == (1, 2, 64)
    with pytest.raises(Word2BertError, match="n_embd"):
        GPT2Config(n_embd=10, n_head=3)
    with pytest.raises(Word2BertError, match="resid_pdrop"):
        OpenAIGPTConfig(resid_pdrop=1.5)
    with pytest.raises(Word2BertError, match="max_position|positions"):
        GPT2LMHeadModel(GPT2Config(**SHAPES[0])).logits(torch.zeros(1, 41, dtype=torch.long))


@pytest.fixture
def torch_dropout_masks():
    """Dropout masks drawn as torch's F.dropout draws them (restored afterwards)."""
    previous = set_mask_source("torch")
    yield
    set_mask_source(previous)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("shape", [0, 1])
def test_training_with_dropout_equals_transformers_with_torch_masks(family, shape, tmp_path, torch_dropout_masks):
    """With dropout 0.1 at every site (embeddings, attention probabilities, residuals) and the masks drawn
    as F.dropout draws them, our model and transformers' take the same three AdamW steps: the same
    losses (to 1e-5) from the same generator state, though each step's loss differs from the loss
    without dropout (the masks are really drawn)."""
    theirs = their_model(family, SHAPES[shape], resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1)
    theirs.save_pretrained(tmp_path / "theirs")
    ours = FAMILIES[family][3].from_pretrained(tmp_path / "theirs")
    ours.train()
    theirs.train()
    ours_optimizer = torch.optim.AdamW(ours.parameters(), lr=1e-2)
    their_optimizer = torch.optim.AdamW(theirs.parameters(), lr=1e-2)
    ids = torch.randint(0, SHAPES[shape]["vocab_size"], (3, 17), generator=torch.Generator().manual_seed(1))
    for step in range(3):
        with torch.no_grad():
            without_dropout = float(theirs.eval()(ids, labels=ids).loss)
        theirs.train()
        torch.manual_seed(100 + step)
        our_loss = ours(ids).loss
        torch.manual_seed(100 + step)
        their_loss = theirs(ids, labels=ids).loss
        assert our_loss.item() == pytest.approx(their_loss.item(), abs=1e-5)
        assert abs(their_loss.item() - without_dropout) > 1e-3
        for optimizer, loss in ((ours_optimizer, our_loss), (their_optimizer, their_loss)):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
