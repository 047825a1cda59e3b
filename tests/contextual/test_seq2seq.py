"""The Transformer encoder-decoder: Marian parity both ways, cached = uncached decoding, padding,
beam search = exhaustive search, the label-smoothed loss, the schedule, and tiny models that learn
to copy and to reverse."""

import itertools
import math
import tempfile
import warnings

import numpy as np
import pytest
import torch

from word2bert.corpus.parallel import TokenBudgetSampler, collate_translation
from word2bert.errors import Word2BertError
from word2bert.models.generation import length_penalty_factor
from word2bert.models.transformer import (
    TransformerConfig,
    TransformerForTranslation,
    label_smoothed_nll,
    shift_tokens_right,
)
from word2bert.train import Trainer, TrainingArguments
from word2bert.train.schedules import inverse_sqrt, inverse_sqrt_peak

torch.set_num_threads(1)

EOS, PAD, BOS = 0, 1, 2


def tiny_config(**changes):
    values = dict(vocab_size=40, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                  decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=24, max_position_embeddings=32,
                  pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=BOS, dropout=0.0)
    values.update(changes)
    return TransformerConfig(**values)


def spread(model, std=0.3, seed=0):
    """Weights far from the initialisation, so that outputs depend on every part of the network."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.normal_(0, std)
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.normal_(0, 0.5)
    return model.eval()


def batch_with_padding(vocab=40, seed=1):
    generator = torch.Generator().manual_seed(seed)
    source = torch.randint(4, vocab, (3, 7), generator=generator)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 6:] = 0
    source[mask == 0] = PAD
    target = torch.randint(4, vocab, (3, 5), generator=generator)
    target[:, 0] = BOS
    return source, mask, target


# --- Hugging Face Marian, both ways ------------------------------------------------------------

MARIAN_SHAPES = [
    dict(vocab_size=40, d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4,
         decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=24, max_position_embeddings=32),
    dict(vocab_size=37, d_model=24, encoder_layers=1, decoder_layers=3, encoder_attention_heads=2,
         decoder_attention_heads=6, encoder_ffn_dim=20, decoder_ffn_dim=40, max_position_embeddings=20),
]


@pytest.mark.parametrize("shape", MARIAN_SHAPES)
def test_marian_checkpoints_convert_both_ways(shape, tmp_path):
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.MarianConfig(**shape, pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=BOS,
                                          scale_embedding=True, activation_function="relu")
    torch.manual_seed(0)
    theirs = transformers.MarianMTModel(hf_config)
    with torch.no_grad():  # random weights of a useful scale (the positions stay sinusoidal)
        for name, parameter in theirs.named_parameters():
            if "embed_positions" not in name:
                parameter.normal_(0, 0.3)
        theirs.final_logits_bias.normal_(0, 0.5)
    theirs.eval()
    theirs.save_pretrained(tmp_path / "theirs")
    ours = TransformerForTranslation.from_pretrained(tmp_path / "theirs").eval()
    source, mask, target = batch_with_padding(shape["vocab_size"])
    expected = theirs(input_ids=source, attention_mask=mask, decoder_input_ids=target).logits
    torch.testing.assert_close(ours(source, mask, decoder_input_ids=target).logits, expected, atol=1e-5, rtol=1e-4)
    # ours -> theirs: perturb ours first so that the round trip carries our weights, not theirs
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    mine = ours(source, mask, decoder_input_ids=target).logits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.save_pretrained(tmp_path / "ours")
        back = transformers.MarianMTModel.from_pretrained(tmp_path / "ours").eval()
    got = back(input_ids=source, attention_mask=mask, decoder_input_ids=target).logits
    torch.testing.assert_close(got, mine, atol=1e-5, rtol=1e-4)
    # greedy decoding gives transformers' tokens
    back.generation_config.forced_eos_token_id = None
    theirs_tokens = back.generate(input_ids=source, attention_mask=mask, num_beams=1, do_sample=False,
                                  max_new_tokens=6)[:, 1:]
    ours_tokens = ours.translate(source, mask, num_beams=1, max_new_tokens=6).new_tokens
    width = min(theirs_tokens.shape[1], ours_tokens.shape[1])
    assert torch.equal(ours_tokens[:, :width].masked_fill(ours_tokens[:, :width] == EOS, PAD),
                       theirs_tokens[:, :width].masked_fill(theirs_tokens[:, :width] == EOS, PAD))


# --- decoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pre_layer_norm", [False, True])
def test_cached_decoding_equals_the_full_pass(pre_layer_norm):
    model = spread(TransformerForTranslation(tiny_config(pre_layer_norm=pre_layer_norm)))
    source, mask, _ = batch_with_padding()
    steps = []
    out = model.translate(source, mask, num_beams=1, max_new_tokens=6,
                          on_tokens=lambda tokens: steps.append(tokens))
    generated = out.new_tokens
    prefix = torch.cat([torch.full((3, 1), BOS), generated[:, :-1]], 1)
    logits = model(source, mask, decoder_input_ids=prefix).logits  # teacher forcing on the same prefix
    # every greedy token is the argmax of the uncached logits at its position (until the row stopped)
    for row in range(3):
        length = int(out.lengths[row])
        assert torch.equal(logits[row, :length].argmax(-1), generated[row, :length])
    # and the cached scores are the uncached log-probabilities
    log_probs = logits.log_softmax(-1).gather(2, generated[..., None]).squeeze(-1).double()
    expected = torch.stack([log_probs[r, : int(out.lengths[r])].sum() for r in range(3)])
    torch.testing.assert_close(out.scores, expected, atol=1e-4, rtol=1e-4)


def test_cross_attention_ignores_source_padding():
    model = spread(TransformerForTranslation(tiny_config()))
    source, mask, target = batch_with_padding()
    padded = model(source, mask, decoder_input_ids=target).logits
    alone = model(source[1:2, :4], decoder_input_ids=target[1:2]).logits  # row 1 without its padding
    torch.testing.assert_close(padded[1:2], alone, atol=1e-5, rtol=1e-4)
    noisy = source.clone()
    noisy[mask == 0] = 7  # what sits in the padded slots does not matter
    torch.testing.assert_close(model(noisy, mask, decoder_input_ids=target).logits, padded, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(model(noisy, decoder_input_ids=target).logits[1], padded[1], atol=1e-3)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_beam_search_equals_exhaustive_search(alpha):
    """With enough beams, beam search returns the best-scoring sequence of all V^n candidates."""
    config = tiny_config(vocab_size=5, max_position_embeddings=16)  # tokens: </s> <pad> <s> and two words
    model = spread(TransformerForTranslation(config), std=0.5, seed=3)
    with torch.no_grad():
        model.final_logits_bias[0, PAD] = -1e9  # never predict padding or the start token
        model.final_logits_bias[0, BOS] = -1e9
    source = torch.tensor([[3, 4, 4], [4, 3, 3]])
    max_new = 3
    out = model.translate(source, num_beams=12, max_new_tokens=max_new, length_penalty=alpha)
    for row in range(2):
        best, best_score = None, -math.inf
        for length in range(1, max_new + 1):
            for tokens in itertools.product([EOS, 3, 4], repeat=length):
                if EOS in tokens[:-1] or (length < max_new and tokens[-1] != EOS):
                    continue  # a hypothesis ends at its first </s>, or is cut at max_new tokens
                prefix = torch.tensor([[BOS, *tokens[:-1]]])
                logits = model(source[row:row + 1], decoder_input_ids=prefix).logits[0].double()
                log_p = logits.log_softmax(-1)[torch.arange(length), torch.tensor(tokens)].sum().item()
                score = log_p / length_penalty_factor(length, alpha)
                if score > best_score:
                    best, best_score = list(tokens), score
        got = out.new_tokens[row, : int(out.lengths[row])].tolist()
        assert got == best, (alpha, row)
        assert out.scores[row].item() == pytest.approx(best_score, abs=1e-5)


# --- loss and schedule ---------------------------------------------------------------------------


def test_label_smoothed_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 1])
    epsilon = 0.1
    expected = 0.0
    for row, label in zip(logits.tolist(), labels.tolist()):
        log_z = math.log(sum(math.exp(v) for v in row))
        log_p = [v - log_z for v in row]
        q = [epsilon / 3 + (1 - epsilon) * (k == label) for k in range(3)]  # (1-eps) one-hot + eps/V
        expected += -sum(qk * lp for qk, lp in zip(q, log_p))
    loss_sum, nll_sum, correct = label_smoothed_nll(logits, labels, epsilon)
    assert loss_sum.item() == pytest.approx(expected, rel=1e-6)
    assert loss_sum.item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels, label_smoothing=epsilon, reduction="sum").item(), rel=1e-6)
    assert nll_sum.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item())
    assert correct.item() == 1


def test_model_loss_counts_only_labelled_tokens():
    model = spread(TransformerForTranslation(tiny_config(), label_smoothing=0.1))
    source, mask, _ = batch_with_padding()
    labels = torch.tensor([[5, 6, 7, EOS], [8, EOS, -100, -100], [9, 10, EOS, -100]])
    model.train()
    output = model(source, mask, labels=labels)
    decoder_input = shift_tokens_right(labels, PAD, BOS)
    assert decoder_input.tolist() == [[BOS, 5, 6, 7], [BOS, 8, EOS, PAD], [BOS, 9, 10, EOS]]
    full = model(source, mask, decoder_input_ids=decoder_input).logits
    keep = labels != -100
    expected = torch.nn.functional.cross_entropy(full[keep], labels[keep], label_smoothing=0.1)
    torch.testing.assert_close(output.loss, expected)
    assert output.stats["nll"][1] == 9 and output.stats["accuracy"][1] == 9
    model.eval()  # evaluation reports the plain negative log-likelihood
    torch.testing.assert_close(model(source, mask, labels=labels).loss,
                               torch.nn.functional.cross_entropy(full[keep], labels[keep]))


def test_inverse_sqrt_schedule_is_the_papers_formula():
    d, warmup = 512, 4000
    peak = inverse_sqrt_peak(d, warmup)
    for step in (1, 100, 3999, 4000, 4001, 10000, 100000):
        paper = d ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)
        assert peak * inverse_sqrt(step, warmup, 0) == pytest.approx(paper, rel=1e-12)
    assert inverse_sqrt(0, warmup, 0) == 0.0 and inverse_sqrt(warmup, warmup, 0) == 1.0


# --- learning --------------------------------------------------------------------------------------


class SequenceTask:
    """Source: 3-6 random words (ids 3..12); target: the same words, copied or reversed; both end in </s>."""

    def __init__(self, reverse, size=1500, seed=0):
        rng = np.random.default_rng(seed)
        self.sources, self.targets = [], []
        for _ in range(size):
            words = rng.integers(3, 13, size=rng.integers(3, 7))
            target = words[::-1] if reverse else words
            self.sources.append(np.append(words, EOS).astype(np.int32))
            self.targets.append(np.append(target, EOS).astype(np.int32))

    def __len__(self):
        return len(self.sources)

    def __getitem__(self, index):
        return {"input_ids": self.sources[index], "labels": self.targets[index]}


@pytest.mark.parametrize("reverse", [False, True])
def test_tiny_transformer_learns_to_copy_and_to_reverse(reverse):
    """600 steps: at 280 reversing was still being learnt and float rounding alone (the fused loss's
    chunked sums) moved it between 29 and 39 correct of 40; at 600, seeds 0-2 give 38-39."""
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=13, d_model=32, encoder_layers=2, decoder_layers=2,
                               encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                               decoder_ffn_dim=64, max_position_embeddings=16, dropout=0.0, pad_token_id=PAD,
                               eos_token_id=EOS, decoder_start_token_id=BOS)
    model = TransformerForTranslation(config, label_smoothing=0.1)
    data = SequenceTask(reverse)
    source_lengths = [len(s) for s in data.sources]
    sampler = TokenBudgetSampler(source_lengths, source_lengths, max_tokens=600, seed=0)
    args = TrainingArguments(max_steps=600, learning_rate=1e-2, warmup_steps=30, schedule="inverse_sqrt",
                             optimizer="adam", adam_beta2=0.98, adam_epsilon=1e-9, weight_decay=0.0,
                             progress=False, logging_steps=1000, seed=0)
    Trainer(model, args, data, lambda items, rng: collate_translation(items, PAD), sampler=sampler).train()
    test = SequenceTask(reverse, size=40, seed=99)
    source = torch.from_numpy(collate_translation([test[i] for i in range(40)], PAD)["input_ids"].numpy())
    out = model.translate(source, (source != PAD).long(), num_beams=2, max_new_tokens=10)
    correct = sum(out.new_tokens[i, : len(test.targets[i])].tolist() == test.targets[i].tolist() for i in range(40))
    assert correct >= 36, correct  # >= 90% exact sequences


# --- data and errors -------------------------------------------------------------------------------


def test_token_budget_batches_cover_every_pair_once_within_budget():
    rng = np.random.default_rng(0)
    sources, targets = rng.integers(1, 30, 500), rng.integers(1, 30, 500)
    sampler = TokenBudgetSampler(sources, targets, max_tokens=200, seed=1, window=100)
    for epoch in (0, 1):
        batches = sampler.batches(epoch)
        flat = sorted(i for batch in batches for i in batch)
        assert flat == list(range(500))
        for batch in batches:
            assert len(batch) * (sources[batch].max() + targets[batch].max()) <= 200
        assert batches == sampler.batches(epoch)  # a function of (seed, epoch)
    padded = sum(len(b) * (sources[b].max() + targets[b].max()) for b in sampler.batches(0))
    assert padded < 1.3 * (sources.sum() + targets.sum())  # length grouping keeps padding low
    halves = [sampler.batches(0, rank, 2) for rank in (0, 1)]
    assert len(halves[0]) == len(halves[1])


def test_bad_configs_and_inputs_are_reported():
    with pytest.raises(Word2BertError, match="joint vocabulary"):
        tiny_config(share_encoder_decoder_embeddings=False)
    with pytest.raises(Word2BertError, match="decoder_start_token_id"):
        tiny_config(decoder_start_token_id=40)
    model = TransformerForTranslation(tiny_config())
    with pytest.raises(Word2BertError, match="decoder_input_ids or labels"):
        model(torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(Word2BertError, match="max_position_embeddings"):
        model(torch.ones(1, 40, dtype=torch.long), labels=torch.ones(1, 3, dtype=torch.long))


# --- the packed (padding-free) training pass and fast dropout ------------------------------------

@pytest.mark.parametrize("changes", [dict(), dict(pre_layer_norm=True, type_vocab_size=2, source_language_id=0,
                                                   target_language_id=1)])
def test_packed_training_pass_equals_the_padded_one(changes):
    """Loss, statistics and every gradient of the padding-free pass equal those of the padded layers."""
    model = spread(TransformerForTranslation(tiny_config(**changes), label_smoothing=0.1))
    source, mask, _ = batch_with_padding()
    labels = torch.tensor([[5, 6, 7, EOS, -100], [8, EOS, -100, -100, -100], [9, 10, 11, 12, EOS]])
    results = []
    for packed in (True, False):
        model.packed = packed
        model.zero_grad()
        output = model(source, mask, labels=labels)
        output.loss.backward()
        results.append((output.loss.detach(), output.stats, output.last_hidden_state.detach(),
                        {name: p.grad.clone() for name, p in model.named_parameters()}))
    (loss_a, stats_a, hidden_a, grads_a), (loss_b, stats_b, hidden_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b)
    assert [float(v) for pair in stats_a.values() for v in pair] == [float(v) for pair in stats_b.values() for v in pair]
    keep = labels != -100
    torch.testing.assert_close(hidden_a[keep], hidden_b[keep])
    assert hidden_a[~keep].abs().sum() == 0  # padding positions are not computed
    for name in grads_b:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-4, msg=name)
    # labels that are not right-padded take the padded path (same loss)
    holes = labels.clone()
    holes[0, 1] = -100
    model.packed = True
    packed_loss = model(source, mask, labels=holes).loss
    model.packed = False
    torch.testing.assert_close(packed_loss, model(source, mask, labels=holes).loss)


def test_head_major_unpacking_and_packing_by_hand():
    """unpack_heads puts packed row n, group g at [g, b, t] (zeros at the padding); pack_heads inverts it;
    both gradients by gradcheck (float64)."""
    from word2bert.nn.packed import Packing

    keep = torch.tensor([[True, True, True], [True, False, False], [True, True, False]])
    packing = Packing(keep)
    positions = [(b, t) for b in range(3) for t in range(3) if keep[b, t]]
    groups, head_size = 3, 2
    rows = torch.arange(len(positions) * groups * head_size, dtype=torch.float64).view(len(positions), -1)
    heads = packing.unpack_heads(rows, groups)
    assert heads.shape == (groups, 3, 3, head_size)
    expected = torch.zeros(groups, 3, 3, head_size, dtype=torch.float64)
    for n, (b, t) in enumerate(positions):
        for g in range(groups):
            expected[g, b, t] = rows[n, g * head_size:(g + 1) * head_size]
    assert torch.equal(heads, expected)
    assert torch.equal(packing.pack_heads(heads), rows)
    rows.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda r: packing.unpack_heads(r, groups), (rows,))
    padded = torch.randn(groups, 3, 3, head_size, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(packing.pack_heads, (padded,))


def test_unpacking_in_parts_is_unpacking_heads_split_and_every_part_gets_its_gradient():
    """unpack_parts(rows, 3, h) equals unpack_heads(rows, 3h) cut into three blocks of h heads; its gradient by
    gradcheck (float64), also when a part is unused (its columns' gradient is zero)."""
    from word2bert.nn.packed import Packing

    keep = torch.tensor([[True, True, False, False], [True, True, True, True], [True, False, False, False]])
    packing = Packing(keep)
    parts, heads, head_size = 3, 2, 3
    rows = torch.randn(int(keep.sum()), parts * heads * head_size, dtype=torch.float64)
    whole = packing.unpack_heads(rows, parts * heads)
    for p, part in enumerate(packing.unpack_parts(rows, parts, heads)):
        assert part.shape == (heads, 3, 4, head_size)
        assert torch.equal(part, whole[p * heads:(p + 1) * heads])
    rows.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda r: packing.unpack_parts(r, parts, heads), (rows,))
    assert torch.autograd.gradcheck(lambda r: packing.unpack_parts(r, parts, heads)[1], (rows,))
    packing.unpack_parts(rows, parts, heads)[2].sum().backward()
    columns = heads * head_size
    assert torch.equal(rows.grad[:, :2 * columns], torch.zeros_like(rows.grad[:, :2 * columns]))
    assert torch.equal(rows.grad[:, 2 * columns:], torch.ones_like(rows.grad[:, 2 * columns:]))


def test_the_translation_model_draws_every_dropout_mask_with_the_cheap_sampler():
    """nn.dropout.Dropout (16-bit numpy draws; its statistics are tested in test_nn_dropout.py)."""
    from word2bert.nn.dropout import Dropout

    model = TransformerForTranslation(tiny_config(dropout=0.1))
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    from word2bert.nn.decoder import TransformerDecoderLayer

    decoder_layers = [m for m in model.modules() if isinstance(m, TransformerDecoderLayer)]
    assert decoder_layers and all(isinstance(layer.dropout, Dropout) for layer in decoder_layers)


@pytest.mark.parametrize("epsilon", [0.0, 0.1])
@pytest.mark.parametrize("with_bias", [False, True])  # Marian's zero bias is passed as None
def test_fused_output_layer_and_smoothed_loss_match_the_composition(epsilon, with_bias):
    """The shared fused output layer with label smoothing, chunk by chunk (3 rows of 7 at a time),
    against PyTorch's cross_entropy(label_smoothing=eps): loss, unsmoothed NLL, accuracy count and the
    gradients of hidden, weight and bias, in float64; the workspace's buffer serves the next call too."""
    from word2bert.nn.linear_cross_entropy import Workspace, linear_cross_entropy

    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(7, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = torch.randn(11, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    bias = (torch.randn(11, dtype=torch.float64, generator=generator).requires_grad_(True) if with_bias else None)
    targets = torch.randint(0, 11, (7,), generator=generator)
    logits = torch.nn.functional.linear(hidden, weight, bias)
    expected = torch.nn.functional.cross_entropy(logits, targets, label_smoothing=epsilon, reduction="sum")
    inputs = (hidden, weight) + ((bias,) if with_bias else ())
    composed = torch.autograd.grad(expected * 0.7, inputs)
    workspace = Workspace()
    for _ in range(2):
        loss, nll, correct = linear_cross_entropy(hidden, weight, targets, bias, chunk_rows=3, label_smoothing=epsilon,
                                                  with_nll=True, workspace=workspace)
        torch.testing.assert_close(loss, expected)
        torch.testing.assert_close(nll, torch.nn.functional.cross_entropy(logits, targets, reduction="sum"))
        assert not nll.requires_grad
        assert int(correct) == int((logits.argmax(-1) == targets).sum())
        for mine, reference in zip(torch.autograd.grad(loss * 0.7, inputs), composed):
            torch.testing.assert_close(mine, reference)
    assert tuple(workspace.buffer.shape) == (3, 11)
    small = (hidden[:4, :3].detach().requires_grad_(), weight[:6, :3].detach().requires_grad_())
    assert torch.autograd.gradcheck(
        lambda h, w: linear_cross_entropy(h, w, targets[:4] % 6, chunk_rows=3, label_smoothing=0.1)[0], small)


def test_training_loss_is_the_label_smoothed_composition():
    """The model's fused training loss (gradients recorded) equals its eval-path composition with the
    same smoothing, and both report the unsmoothed NLL."""
    model = spread(TransformerForTranslation(tiny_config(), label_smoothing=0.1))
    source, mask, _ = batch_with_padding()
    labels = torch.tensor([[5, 6, 7, EOS], [8, EOS, -100, -100], [9, 10, EOS, -100]])
    model.train()  # tiny_config has no dropout: both paths compute the same function
    fused = model(source, mask, labels=labels)
    assert fused.logits is None
    with torch.no_grad():
        composed = model(source, mask, labels=labels)
    assert composed.logits is not None
    torch.testing.assert_close(fused.loss.detach(), composed.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused.stats["nll"][0], composed.stats["nll"][0], rtol=1e-5, atol=1e-5)
    assert int(fused.stats["accuracy"][0]) == int(composed.stats["accuracy"][0])
    fused.loss.backward()
    assert model.model.get_input_embeddings().weight.grad.abs().sum() > 0
