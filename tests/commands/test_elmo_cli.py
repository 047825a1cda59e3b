"""`word2bert encode --model elmo` on the bilm-tf test fixture."""

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("h5py")

from word2bert.cli import main  # noqa: E402
from word2bert.models.elmo import ElmoModel, encode  # noqa: E402

torch.set_num_threads(1)
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "elmo_tiny"


def test_encode_model_elmo_prints_the_encode_vectors(capsys):
    texts = ["The cat sat .", "A dog barked loudly"]
    assert main(["encode", "--model", "elmo", str(FIXTURE), *texts, "--layer", "mix"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == texts
    printed = np.array([[float(x) for x in line.split("\t")[1].split()] for line in lines])
    expected = encode(ElmoModel.from_pretrained(FIXTURE), texts, layer="mix").sentence_vectors
    np.testing.assert_allclose(printed, expected, rtol=1e-4, atol=1e-5)
    assert main(["encode", "--model", "elmo", str(FIXTURE), "x y", "--tokens", "--layer", "0"]) == 0
    tokens = capsys.readouterr().out.strip().splitlines()
    assert [t.split("\t")[0] for t in tokens] == ["x", "y"] and len(tokens[0].split("\t")[1].split()) == 32


def test_encode_unknown_model_or_missing_weights_is_one_line(tmp_path, capsys):
    assert main(["encode", "--model", "nosuch", str(FIXTURE), "x"]) == 2
    assert "--model 'nosuch'" in capsys.readouterr().err
    assert main(["encode", "--model", "elmo", str(tmp_path), "x"]) == 2
    err = capsys.readouterr().err
    assert "options.json" in err and "Traceback" not in err
