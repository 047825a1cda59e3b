"""Suite-wide settings: no network, caches in a temporary directory, one torch thread per
pytest-xdist worker (two workers on two cores must not each spin two OpenMP threads)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # read by torch (and numpy's BLAS) when first imported, which happens after this file; also
    # inherited by the CLI subprocesses that tests start
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Point the word2bert cache at a per-session temporary directory."""
    monkeypatch.setenv("WORD2BERT_HOME", str(tmp_path_factory.getbasetemp() / "word2bert-home"))
