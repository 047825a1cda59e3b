"""word2bert pretrain gpt / generate / finetune --model gpt, end to end on a tiny corpus."""

import io
import json

import pytest
import torch

from word2bert.cli import main

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny GPT-2 pre-trained by the CLI for a few steps."""
    directory = tmp_path_factory.mktemp("gpt-cli")
    corpus = directory / "corpus.txt"
    lines = ["the cat sat on the mat", "a dog ran in the park", "birds sang in the tall green trees",
             "héllo wörld 123 def f(x): return x"] * 30
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    threads = torch.get_num_threads()
    code = main(["pretrain", "gpt", str(corpus), "-o", str(directory / "model"), "--layers", "1", "--hidden", "16",
                 "--heads", "2", "--context", "24", "--vocab-size", "300", "--batch-size", "4", "--max-steps", "3",
                 "--threads", "1", "--quiet"])
    torch.set_num_threads(threads)
    assert code == 0
    return directory


def test_pretrain_writes_a_directory_transformers_reads(trained, capsys):
    model_dir = trained / "model"
    theirs = transformers.GPT2LMHeadModel.from_pretrained(str(model_dir)).eval()
    their_tokenizer = transformers.GPT2TokenizerFast.from_pretrained(str(model_dir))
    from word2bert.models.gpt import GPT2LMHeadModel
    from word2bert.tokenizers import ByteLevelBPETokenizer

    ours = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    tokenizer = ByteLevelBPETokenizer.from_pretrained(model_dir)
    text = "the cat sat in the héllo park"
    ids = tokenizer.encode(text)["input_ids"]
    assert their_tokenizer(text)["input_ids"] == ids
    with torch.no_grad():
        torch.testing.assert_close(ours.logits(torch.tensor([ids])), theirs(torch.tensor([ids])).logits,
                                   atol=1e-5, rtol=0)
    assert ours.config.n_positions == 24 and ours.config.eos_token_id == tokenizer.eos_id


def test_generate_from_an_argument_and_from_stdin(trained, capsys, monkeypatch):
    model_dir = str(trained / "model")
    from word2bert.models.gpt import GPT2LMHeadModel
    from word2bert.tokenizers import ByteLevelBPETokenizer

    model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    tokenizer = ByteLevelBPETokenizer.from_pretrained(model_dir)
    prompt = tokenizer.encode("the cat")["input_ids"]
    expected = model.generate(torch.tensor([prompt]), max_new_tokens=6, stop_token_ids=[]).new_tokens[0].tolist()
    capsys.readouterr()
    assert main(["generate", model_dir, "the cat", "--max-new-tokens", "6", "--no-stop"]) == 0
    assert capsys.readouterr().out == tokenizer.decode(expected) + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("the cat\n"))
    assert main(["generate", model_dir, "--max-new-tokens", "6", "--no-stop"]) == 0
    assert capsys.readouterr().out == tokenizer.decode(expected) + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("the cat\na dog ran\n"))
    assert main(["generate", model_dir, "--lines", "--max-new-tokens", "4", "--num-beams", "2", "--no-stop"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["generate", model_dir, "the", "--sample", "--top-k", "3", "--seed", "1", "--max-new-tokens", "3"]) == 0
    capsys.readouterr()
    assert main(["generate", str(trained), "x"]) == 2
    assert "config" in capsys.readouterr().err


def test_streamer_holds_back_an_incomplete_character(trained):
    from word2bert.commands.gpt import TextStreamer
    from word2bert.tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer.from_pretrained(trained / "model")
    byte_ids = [tokenizer.token_to_id(t) for t in tokenizer.tokenize("é")]  # two byte tokens, or one merged
    out = io.StringIO()
    streamer = TextStreamer(tokenizer, stop_ids=[tokenizer.eos_id], out=out)
    writes = []
    for token in byte_ids + [tokenizer.token_to_id("a"), tokenizer.eos_id, tokenizer.token_to_id("b")]:
        streamer(torch.tensor([token]))
        writes.append(out.getvalue())
    streamer.finish()
    assert "\ufffd" not in "".join(writes) and out.getvalue() == "éa\n"  # nothing after the stop token


def test_finetune_model_gpt_and_errors(trained, tmp_path, capsys):
    rows = [f"the cat is {word}\t{label}" for word, label in
            [("great", "pos"), ("bad", "neg"), ("good", "pos"), ("sad", "neg")] * 6]
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "clf"
    assert main(["finetune", "--model", "gpt", str(trained / "model"), "--train", str(tmp_path / "train.tsv"),
                 "--dev", str(tmp_path / "train.tsv"), "-o", str(out), "--max-steps", "2", "--batch-size", "4",
                 "--max-length", "24", "--json", "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["train_steps"] == 2 and 0 <= metrics["accuracy"] <= 1
    assert json.loads((out / "task.json").read_text())["gpt_task"] == "classification"
    assert main(["finetune", str(trained / "model"), "--train", str(tmp_path / "train.tsv"), "-o",
                 str(tmp_path / "x"), "--task", "similarity"]) == 2
    assert "--model gpt" in capsys.readouterr().err
    assert main(["pretrain", "gpt", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "m")]) == 2
    assert "corpus not found" in capsys.readouterr().err
