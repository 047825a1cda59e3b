"""Training reference models with Facebook's ``fasttext`` package, for the parity tests."""

import subprocess
import sys
from pathlib import Path

import pytest


def facebook_train(directory, function, input_path, after="", **kwargs):
    """Train with the fasttext package in a fresh interpreter and save its ``.bin``.

    The fasttext wheels (0.9.2 and 0.9.3) abort some small runs with "Encountered NaN"
    depending on the process's heap layout; a fresh process per attempt makes that rare.
    """
    out = Path(directory) / f"facebook_{function}_{abs(hash(repr(sorted(kwargs.items())))) % 10**8}.bin"
    script = (f"import fasttext\nm = fasttext.{function}({str(input_path)!r}, verbose=0, **{kwargs!r})\n"
              f"{after}\nm.save_model({str(out)!r})\n")
    for _ in range(10):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        if done.returncode == 0:
            return out
        if "NaN" not in done.stderr:
            raise AssertionError(done.stderr)
    pytest.skip("the fasttext package kept failing with 'Encountered NaN'")
