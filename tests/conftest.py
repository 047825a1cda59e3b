"""Suite-wide settings: no network, caches in a temporary directory, two threads."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Point the word2bert cache at a per-session temporary directory."""
    monkeypatch.setenv("WORD2BERT_HOME", str(tmp_path_factory.getbasetemp() / "word2bert-home"))
