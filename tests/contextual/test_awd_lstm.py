"""AWD-LSTM: against a plain torch.nn.LSTM stack, AR/TAR, carried state, files, the training recipe
(variable BPTT with per-batch rates, NT-ASGD) and a planted stream learned through the Trainer."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from word2bert.corpus.lm_corpus import EOS, build_lm_vocabulary, encode_lines, token_stream
from word2bert.corpus.vocab import Vocabulary
from word2bert.errors import Word2BertError
from word2bert.models.auto import from_pretrained
from word2bert.models.awd_lstm import AWDLSTMConfig, AWDLSTMForLanguageModeling, AWDLSTMModel, stream_perplexity
from word2bert.tasks.ulmfit import NTASGD, WindowLengthLearningRate, load_vocab, pretrain_language_model

torch.set_num_threads(1)

TINY = dict(vocab_size=30, embedding_size=6, lstm_size=10, num_layers=3)


def reference_lm(model):
    """The same weights in torch.nn.LSTM layers and a tied linear decoder."""
    layers = []
    for layer in model.awd_lstm.layers:
        lstm = torch.nn.LSTM(layer.input_size, layer.hidden_size, batch_first=True)
        lstm.load_state_dict(layer.state_dict())
        layers.append(lstm)

    def run(input_ids, state=None):
        x = model.awd_lstm.embeddings.weight[input_ids]
        states = []
        for index, lstm in enumerate(layers):
            h0 = None if state is None else (state[index][0][None], state[index][1][None])
            x, (h, c) = lstm(x, h0)
            states.append((h[0], c[0]))
        return x, F.linear(x, model.awd_lstm.embeddings.weight, model.decoder_bias), states

    return run


def test_evaluation_equals_a_plain_lstm_stack_with_tied_decoder():
    torch.manual_seed(0)
    model = AWDLSTMForLanguageModeling(AWDLSTMConfig(**TINY)).eval()
    assert model.awd_lstm.layers[-1].hidden_size == 6 and model.config.hidden_size == 6   # tied: last = embedding
    input_ids, labels = torch.randint(0, 30, (3, 9)), torch.randint(0, 30, (3, 9))
    hidden, logits, states = reference_lm(model)(input_ids)
    output = model(input_ids, labels=labels, return_logits=True)
    assert torch.allclose(output.logits, logits, atol=1e-5)
    assert torch.allclose(output.loss, F.cross_entropy(logits.reshape(-1, 30), labels.reshape(-1)), atol=1e-5)
    assert output.stats["nll"][1] == 27
    for (h, c), (h_ref, c_ref) in zip(output.state, states):
        assert torch.allclose(h, h_ref, atol=1e-5) and torch.allclose(c, c_ref, atol=1e-5)


def test_training_loss_adds_activation_and_temporal_activation_regularisation():
    torch.manual_seed(1)
    config = AWDLSTMConfig(**TINY, embedding_dropout=0.0, input_dropout=0.0, hidden_dropout=0.0,
                           output_dropout=0.0, weight_dropout=0.0, ar_alpha=2.0, tar_beta=1.0)
    model = AWDLSTMForLanguageModeling(config).train()
    input_ids, labels = torch.randint(0, 30, (2, 8)), torch.randint(0, 30, (2, 8))
    hidden, logits, _ = reference_lm(model)(input_ids)
    cross_entropy = F.cross_entropy(logits.reshape(-1, 30), labels.reshape(-1))
    expected = cross_entropy + 2.0 * hidden.pow(2).mean() + 1.0 * (hidden[:, 1:] - hidden[:, :-1]).pow(2).mean()
    output = model(input_ids, labels=labels)
    assert torch.allclose(output.loss, expected, atol=1e-5)
    assert float(output.stats["nll"][0]) / 16 == pytest.approx(float(cross_entropy), rel=1e-5)   # stats: NLL only


def test_training_draws_new_dropout_masks_every_batch():
    torch.manual_seed(2)
    model = AWDLSTMForLanguageModeling(AWDLSTMConfig(**TINY)).train()
    input_ids = torch.randint(0, 30, (2, 5))
    first = model(input_ids, labels=input_ids).loss
    masks = [layer.weight_hh_mask.clone() for layer in model.awd_lstm.layers]
    second = model(input_ids, labels=input_ids).loss
    assert not torch.equal(first, second)
    assert all(not torch.equal(m, layer.weight_hh_mask) for m, layer in zip(masks, model.awd_lstm.layers))
    model.eval()
    assert torch.equal(model(input_ids, labels=input_ids).loss, model(input_ids, labels=input_ids).loss)


def test_state_carried_across_windows_equals_one_long_window():
    torch.manual_seed(3)
    model = AWDLSTMForLanguageModeling(AWDLSTMConfig(**TINY)).eval()
    input_ids = torch.randint(0, 30, (2, 12))
    whole = model(input_ids, labels=input_ids, return_logits=True)
    first = model(input_ids[:, :5], labels=input_ids[:, :5], return_logits=True)
    second = model(input_ids[:, 5:], labels=input_ids[:, 5:], state=first.state, return_logits=True)
    assert torch.allclose(torch.cat([first.logits, second.logits], 1), whole.logits, atol=1e-5)
    # stream_perplexity: rows of the stream read window by window with the state carried
    stream = torch.randint(0, 30, (41,))
    rows = stream[:40].view(2, 20)
    targets = stream[1:41].view(2, 20)
    full = model(rows, labels=targets)
    assert stream_perplexity(model, stream, batch_size=2, bptt=7) == pytest.approx(math.exp(float(full.loss)), rel=1e-5)


def test_files_round_trip_and_the_encoder_loads_from_a_language_model(tmp_path):
    torch.manual_seed(4)
    model = AWDLSTMForLanguageModeling(AWDLSTMConfig(**TINY, tie_weights=False)).eval()
    model.save_pretrained(tmp_path / "lm")
    loaded = from_pretrained(tmp_path / "lm")
    assert isinstance(loaded, AWDLSTMForLanguageModeling)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    encoder = AWDLSTMModel.from_pretrained(tmp_path / "lm").eval()
    input_ids = torch.randint(0, 30, (2, 4))
    assert torch.equal(encoder(input_ids).last_hidden_state, model.awd_lstm(input_ids).last_hidden_state)
    assert encoder.config.hidden_size == 10             # untied: the last layer has lstm_size units


def test_window_length_scales_the_step_after_clipping():
    weight = torch.nn.Parameter(torch.zeros(3))
    holder = torch.nn.Module()
    holder.last_window_length = 35
    optimizer = torch.optim.SGD([weight], lr=2.0)
    WindowLengthLearningRate(holder, bptt=70).install(optimizer)
    weight.grad = torch.tensor([1.0, -2.0, 0.5])
    optimizer.step()
    assert torch.allclose(weight.detach(), -2.0 * 0.5 * torch.tensor([1.0, -2.0, 0.5]))
    assert optimizer.param_groups[0]["lr"] == 2.0       # the scheduled rate is restored


def test_ntasgd_switches_when_the_loss_stops_improving_and_averages_from_then_on():
    class State:
        global_step = 0
        evaluations = []

    class FakeTrainer:
        model = torch.nn.Linear(1, 1, bias=False)

    losses = iter([5.0, 4.0, 3.0, 3.2, 3.1, 3.3, 2.0, 1.0])
    callback = NTASGD(lambda model: next(losses), check_every=1, nonmono=2)
    trainer, state = FakeTrainer(), State()
    weights = []
    for step in range(1, 9):
        with torch.no_grad():
            trainer.model.weight.fill_(float(step))
        weights.append(float(step))
        state.global_step = step
        callback(trainer, state)
    # Merity's rule: switch when loss > min(losses[:-nonmono]) with more than nonmono earlier checks:
    # 3.2 > min(5)? 3.1 > min(5, 4)? no; 3.3 > min(5, 4, 3) = 3 at the sixth check: yes
    assert callback.switched_at == 6
    expected = np.mean(weights[6:])                      # the weights after the steps that follow: 7, 8
    assert float(callback.average[0]) == pytest.approx(expected)
    with callback.averaged_weights(trainer.model):
        assert float(trainer.model.weight) == pytest.approx(expected)
    assert float(trainer.model.weight) == 8.0


def planted_text(path, n_lines, seed):
    """Sentences cycle through fixed phrases: almost every next word is predictable."""
    rng = np.random.default_rng(seed)
    phrases = ["the cat sat on the mat", "a dog ran in the park", "we like green tea", "rain falls on the town"]
    path.write_text("".join(phrases[i] + "\n" for i in rng.integers(0, len(phrases), n_lines)))
    return path


def test_pretraining_through_the_trainer_learns_a_planted_stream(tmp_path):
    train = planted_text(tmp_path / "train.txt", 300, 0)
    valid = planted_text(tmp_path / "valid.txt", 40, 1)
    config = AWDLSTMConfig(embedding_size=16, lstm_size=32, num_layers=2, embedding_dropout=0.0, input_dropout=0.1,
                           hidden_dropout=0.1, output_dropout=0.1, weight_dropout=0.2)
    result = pretrain_language_model(train, config, valid, tmp_path / "lm", batch_size=4, bptt=12, epochs=6,
                                     learning_rate=10.0, seed=0, progress=False, nonmono=5, check_every=20)
    vocab = load_vocab(tmp_path / "lm")
    counts = vocab.counts[vocab.counts > 0] / vocab.counts.sum()
    unigram = math.exp(-(counts * np.log(counts)).sum())
    assert result.perplexities["valid"] < unigram / 5, (result.perplexities, unigram)    # seeds 0-3: 1.35-1.37
    assert result.evaluations and all("perplexity" in e for e in result.evaluations)
    reloaded = AWDLSTMForLanguageModeling.from_pretrained(tmp_path / "lm")
    stream = token_stream(encode_lines(valid, vocab), vocab.index[EOS])
    assert stream_perplexity(reloaded, stream) == pytest.approx(result.perplexities["valid"], rel=1e-5)


def test_bad_input_gets_clear_messages(tmp_path):
    train = planted_text(tmp_path / "train.txt", 20, 0)
    with pytest.raises(Word2BertError, match="bptt=500 is longer than the data"):
        pretrain_language_model(train, AWDLSTMConfig(**TINY), batch_size=4, bptt=500, max_steps=1, progress=False)
    (tmp_path / "lm").mkdir()
    Vocabulary(["a", "b"], [2, 1]).save(tmp_path / "lm" / "word_vocab.txt")
    with pytest.raises(Word2BertError, match="lacks <unk> and <eos>"):
        load_vocab(tmp_path / "lm")
    with pytest.raises(Word2BertError, match="lstm_size"):
        AWDLSTMConfig(lstm_size=0)
    with pytest.raises(Word2BertError, match="weight_dropout"):
        AWDLSTMConfig(weight_dropout=1.0)
    assert build_lm_vocabulary(train).index[EOS] >= 0
