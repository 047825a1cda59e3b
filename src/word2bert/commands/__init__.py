"""CLI sub-commands; each module defines ``register(commands, train_commands)`` (see cli.py).

The helpers below serve every ``train`` command that leaves a checkpoint on Ctrl-C.
"""

from __future__ import annotations

from pathlib import Path

from word2bert.errors import Word2BertError


def checkpoint_path(output) -> Path:
    """Where an interrupted run writing ``output`` leaves its checkpoint: ``OUTPUT.checkpoint.npz``."""
    return Path(str(output) + ".checkpoint.npz")


def resume_from(load, path):
    """``load(path)`` for ``--resume path``, which must be the checkpoint of an interrupted run
    (a model whose ``_resume_state`` says where it stopped), not a finished model."""
    if not Path(path).is_file():
        raise Word2BertError(f"--resume: file not found: {path}")
    model = load(path)
    if model._resume_state is None:
        raise Word2BertError(f"{path} is a finished model, not a checkpoint of an interrupted run")
    return model


def remove_checkpoint(checkpoint: Path) -> None:
    """Remove the checkpoint of a run that has now completed."""
    if checkpoint.exists():
        checkpoint.unlink()
