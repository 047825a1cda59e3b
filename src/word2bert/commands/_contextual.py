"""What the contextual commands (``pretrain MODEL``, ``finetune``, ``encode``) share.

* :func:`require_contextual`: without PyTorch (or tokenizers / safetensors) a command says in one
  line what to install, before any work.
* :func:`pretrain_group`: the ``word2bert pretrain`` group; a model's command module adds its
  ``pretrain MODEL`` parser to it (``pretrain_group(commands).add_parser("gpt", ...)``).
* :func:`check_model_directory`: a Hugging Face layout directory (config.json); ``finetune`` and
  ``encode`` build whatever encoder its ``model_type`` names (:mod:`word2bert.models.auto`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from word2bert.errors import Word2BertError

_PACKAGES = {"torch": "PyTorch", "tokenizers": "Hugging Face tokenizers", "safetensors": "safetensors"}

INSTALL_HINT = ("pip install 'word2bert[contextual]' (for the CPU-only PyTorch, first: pip install torch "
                "--index-url https://download.pytorch.org/whl/cpu)")


def missing_message(command: str, missing: list[str]) -> str:
    names = [_PACKAGES.get(m, m) for m in missing]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "is" if len(names) == 1 else "are"
    return f"`word2bert {command}` needs {listed}, which {verb} not installed: {INSTALL_HINT}"


def require_contextual(command: str) -> None:
    """Raise a one-line Word2BertError naming what to install when a contextual dependency is missing."""
    missing = []
    for name in _PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise Word2BertError(missing_message(command, missing))


def pretrain_group(commands):
    """The sub-parser group of ``word2bert pretrain`` (created by the first module that asks)."""
    from word2bert.commands import subcommand_group

    return subcommand_group(commands, "pretrain", help="pre-train a contextual model",
                            description="Pre-train a contextual model; `word2bert pretrain MODEL --help` for its "
                                        "options.")


def check_model_directory(path, flag: str = "MODEL") -> Path:
    """A model directory with a config.json (Hugging Face layout)."""
    path = Path(path)
    if not path.exists():
        raise Word2BertError(f"model directory not found: {path}")
    if not path.is_dir():
        raise Word2BertError(f"{flag} {path} is a file; give the model's directory (config.json, weights, vocabulary)")
    if not (path / "config.json").is_file():
        raise Word2BertError(f"{path} has no config.json: not a model directory (Hugging Face layout)")
    return path


def format_metrics(metrics: dict) -> str:
    """``accuracy 0.950, examples 40`` (floats to 4 significant digits, counts with separators)."""
    parts = []
    for key, value in metrics.items():
        name = key.replace("_", " ")
        if isinstance(value, bool) or value is None:
            parts.append(f"{name} {value}")
        elif isinstance(value, int):
            parts.append(f"{name} {value:,}")
        elif isinstance(value, float):
            parts.append(f"{name} {value:.4g}")
        elif isinstance(value, dict):
            parts.append(format_metrics(value))
        else:
            parts.append(f"{name} {value}")
    return ", ".join(parts)
