"""ELMo: bilm-tf parity on its own test fixture, checkpoint round trips, character ids, the cache."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

h5py = pytest.importorskip("h5py")

from word2bert.errors import Word2BertError  # noqa: E402
from word2bert.interop import bilm as bilm_format  # noqa: E402
from word2bert.models.elmo import ElmoModel, batch_to_ids, word_to_char_ids  # noqa: E402

torch.set_num_threads(1)
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "elmo_tiny"


def load_expected():
    """bilm-tf's outputs: expected[k][i] = top layer [forward; backward] of sentence i of group k."""
    sentences = json.loads((FIXTURE / "lm_embeddings_sentences.json").read_text())
    expected = []
    for k in range(len(sentences)):
        with h5py.File(FIXTURE / f"lm_embeddings_{k}.hdf5", "r") as handle:
            expected.append([np.concatenate([handle[str(i)][0], handle[str(i)][1]], axis=-1) for i in range(10)])
    return sentences, expected


def run_like_bilm_tf(model, sentences, carry_state=True):
    """10 batches of 3 sentences (batch i = sentence i of each group), each row's state carried on."""
    state, tops = None, []
    with torch.no_grad():
        for i in range(10):
            batch = [sentences[k][i].strip().split() for k in range(3)]
            output = model(batch_to_ids(batch, add_sentence_boundaries=True), state=state if carry_state else None)
            state = output.state
            tops.append([output.last_hidden_state[k, 1:len(batch[k]) + 1].numpy() for k in range(3)])
    return tops


@pytest.fixture(scope="module")
def tiny():
    return ElmoModel.from_bilm(FIXTURE / "options.json", FIXTURE / "lm_weights.hdf5").eval()


def test_top_layer_equals_bilm_tf_outputs(tiny):
    sentences, expected = load_expected()
    tops = run_like_bilm_tf(tiny, sentences)
    worst = max(np.abs(tops[i][k] - expected[k][i]).max() for i in range(10) for k in range(3))
    assert worst < 1e-5
    # the carried state matters: from a zero state every batch, the same weights are far off
    fresh = run_like_bilm_tf(tiny, sentences, carry_state=False)
    assert max(np.abs(fresh[i][k] - expected[k][i]).max() for i in range(1, 10) for k in range(3)) > 1e-2


def test_cached_character_layer_gives_the_same_outputs(tiny):
    sentences, expected = load_expected()
    tiny.enable_character_cache()
    try:
        tops = run_like_bilm_tf(tiny, sentences)
        distinct = {w for group in sentences for s in group for w in s.split()} | {"<S>", "</S>"}
        assert len(tiny.character_cache) == len(distinct) + 1  # one CNN run per word type, and padding
    finally:
        tiny.enable_character_cache(False)
    worst = max(np.abs(tops[i][k] - expected[k][i]).max() for i in range(10) for k in range(3))
    assert worst < 1e-5


def test_character_cache_follows_an_optimizer_step_taken_in_eval_mode(tiny):
    """Training in eval mode (dropout off) never calls train(True): the optimizer step hook empties
    the cache, so inference afterwards sees the new character CNN."""
    import copy

    model = copy.deepcopy(tiny).eval()
    model.enable_character_cache()
    ids = torch.tensor([[[259, 98, 99, 260] + [261] * 46, [259, 100, 260] + [261] * 47]], dtype=torch.long)
    with torch.no_grad():
        before = model.token_embeddings(ids)
    assert len(model.character_cache) == 2
    optimizer = torch.optim.SGD(model.char_cnn.parameters(), lr=1.0)
    model.char_cnn(ids).square().sum().backward()
    optimizer.step()
    assert len(model.character_cache) == 0
    with torch.no_grad():
        after = model.token_embeddings(ids)
        torch.testing.assert_close(after, model.char_cnn(ids))
    assert not torch.allclose(after, before)


def test_write_then_read_reproduces_the_checkpoint(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    original = bilm_format.read_weights(FIXTURE / "lm_weights.hdf5")
    written = bilm_format.read_weights(tmp_path / "lm_weights.hdf5")
    assert set(written) == set(original)
    for name in original:
        np.testing.assert_allclose(written[name], original[name], atol=1e-6, err_msg=name)
    assert bilm_format.read_options(tmp_path)["lstm"] == {**json.loads((FIXTURE / "options.json").read_text())["lstm"]}
    again = ElmoModel.from_pretrained(tmp_path).eval()
    ids = batch_to_ids([["Hello", "world", "."], ["ELMo", "reads", "bytes", "ü"]], add_sentence_boundaries=True)
    with torch.no_grad():
        torch.testing.assert_close(again(ids).last_hidden_state, tiny(ids).last_hidden_state)


def test_character_ids_follow_bilm_tf():
    ids = word_to_char_ids("ab", 8)
    assert ids.tolist() == [259, 98, 99, 260, 261, 261, 261, 261]   # <bow> 'a'+1 'b'+1 <eow> <pad>...
    assert word_to_char_ids("é", 6).tolist() == [259, 0xC3 + 1, 0xA9 + 1, 260, 261, 261]   # UTF-8 bytes
    assert word_to_char_ids("<S>", 6).tolist() == [259, 257, 260, 261, 261, 261]
    assert word_to_char_ids("</S>", 6).tolist() == [259, 258, 260, 261, 261, 261]
    long = word_to_char_ids("x" * 60, 50)
    assert long[0] == 259 and long[49] == 260 and (long[1:49] == ord("x") + 1).all()   # 48 bytes kept
    batch = batch_to_ids([["a"], ["b", "c"]])
    assert batch.shape == (2, 2, 50) and batch[0, 1].abs().sum() == 0   # 0 = no token


def test_options_that_do_not_match_the_weights_are_reported(tmp_path):
    options = json.loads((FIXTURE / "options.json").read_text())
    options["lstm"]["projection_dim"] = 32
    (tmp_path / "options.json").write_text(json.dumps(options))
    with pytest.raises(Word2BertError, match="does not match the weights"):
        ElmoModel.from_bilm(tmp_path / "options.json", FIXTURE / "lm_weights.hdf5")
    options["lstm"]["projection_dim"] = 16
    options["lstm"]["n_layers"] = 3
    (tmp_path / "options.json").write_text(json.dumps(options))
    with pytest.raises(Word2BertError, match="Cell2.*missing"):
        ElmoModel.from_bilm(tmp_path / "options.json", FIXTURE / "lm_weights.hdf5")
    (tmp_path / "bad.json").write_text('{"lstm": {"dim": 8}}')
    with pytest.raises(Word2BertError, match="bad.json"):
        ElmoModel.from_bilm(tmp_path / "bad.json", FIXTURE / "lm_weights.hdf5")


def test_vocabulary_must_hold_the_special_tokens(tmp_path):
    words = bilm_format.read_vocabulary(FIXTURE / "vocab_test.txt", required=("<S>", "</S>"))  # inference only
    assert len(words) == 448 and {"<S>", "</S>"} <= set(words)
    (tmp_path / "vocab.txt").write_text("<S>\n</S>\nthe\n")
    with pytest.raises(Word2BertError, match=r"vocab.txt: the vocabulary lacks <UNK>"):
        bilm_format.read_vocabulary(tmp_path / "vocab.txt")


def test_state_of_the_wrong_shape_is_reported(tiny):
    ids = batch_to_ids([["a", "b"]], add_sentence_boundaries=True)
    with pytest.raises(Word2BertError, match="state must be"):
        tiny(ids, state=tiny.zero_state(3))
    with pytest.raises(Word2BertError, match="character ids"):
        tiny(torch.zeros(2, 3, dtype=torch.long))


def test_allennlp_style_elmo_reproduces_bilm_tf_with_a_top_layer_mix():
    from word2bert.models.elmo import Elmo

    sentences, expected = load_expected()
    elmo = Elmo(FIXTURE / "options.json", FIXTURE / "lm_weights.hdf5", num_output_representations=2,
                dropout=0.0, scalar_mix_parameters=[-9e10, -9e10, 1.0]).eval()
    assert elmo.get_output_dim() == 32
    for i in range(10):
        batch = [sentences[k][i].strip().split() for k in range(3)]
        with torch.no_grad():
            out = elmo(batch_to_ids(batch))
        assert len(out["elmo_representations"]) == 2
        assert out["mask"].sum(1).tolist() == [len(s) for s in batch]
        for k in range(3):
            got = out["elmo_representations"][1][k, :len(batch[k])].numpy()
            assert np.abs(got - expected[k][i]).max() < 1e-5
            assert out["elmo_representations"][0][k, len(batch[k]):].abs().sum() == 0


def test_elmo_scalar_mix_learns_while_the_bilm_stays_frozen():
    from word2bert.models.elmo import Elmo

    elmo = Elmo(FIXTURE / "options.json", FIXTURE / "lm_weights.hdf5", num_output_representations=1, dropout=0.5,
                stateful=False)
    trainable = {name for name, p in elmo.named_parameters() if p.requires_grad}
    assert trainable == {"scalar_mixes.0.weights", "scalar_mixes.0.gamma"}
    out = elmo(batch_to_ids([["a", "short", "one"], ["two"]]))
    out["elmo_representations"][0].sum().backward()
    assert elmo.scalar_mixes[0].weights.grad is not None and elmo.scalar_mixes[0].weights.grad.abs().sum() > 0
    # stateless: the same batch gives the same answer (in eval mode, without dropout)
    elmo.eval()
    with torch.no_grad():
        a = elmo(batch_to_ids([["same", "words"]]))["elmo_representations"][0]
        b = elmo(batch_to_ids([["same", "words"]]))["elmo_representations"][0]
    torch.testing.assert_close(a, b)


def test_encode_layers(tiny):
    from word2bert.models.elmo import encode

    encoded = encode(tiny, ["the cat sat", "a dog"], layer=0, stateful=False)
    assert [v.shape for v in encoded.token_vectors] == [(3, 32), (2, 32)]
    np.testing.assert_array_equal(encoded.token_vectors[0][:, :16], encoded.token_vectors[0][:, 16:])  # [x; x]
    top = encode(tiny, ["the cat sat", "a dog"], layer=-1, stateful=False)
    np.testing.assert_allclose(top.sentence_vectors[1], top.token_vectors[1].mean(0), rtol=1e-6)
    with pytest.raises(Word2BertError, match="layer=5"):
        encode(tiny, ["x"], layer=5)


def test_character_cache_grows_and_starts_afresh_when_full(tiny):
    from word2bert.models.elmo import CharacterCache

    cache = CharacterCache(max_types=6)
    with torch.no_grad():
        for words in (["a", "b", "a"], ["c", "d", "b"], ["e", "f", "g", "h"]):
            ids = batch_to_ids([words])
            torch.testing.assert_close(cache.lookup(ids, tiny.char_cnn), tiny.char_cnn(ids))
            assert len(cache) <= 6
    assert len(cache) == 4   # the third batch did not fit beside the first five types: a fresh start


def test_elmo_keeps_sentence_boundaries_when_asked():
    from word2bert.models.elmo import Elmo

    elmo = Elmo(FIXTURE / "options.json", FIXTURE / "lm_weights.hdf5", 1, dropout=0.0, keep_sentence_boundaries=True,
                stateful=False).eval()
    with torch.no_grad():
        out = elmo(batch_to_ids([["a", "b", "c"], ["d"]]))
    assert out["elmo_representations"][0].shape == (2, 5, 32)
    assert out["mask"].sum(1).tolist() == [5, 3]      # <S> tokens </S>
    with pytest.raises(Word2BertError, match="scalar_mix_parameters"):
        Elmo(FIXTURE / "options.json", FIXTURE / "lm_weights.hdf5", 1, scalar_mix_parameters=[1.0, 2.0])
