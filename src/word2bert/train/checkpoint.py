"""Training checkpoints: everything needed to continue a run exactly where it stopped.

One file, ``checkpoint.pt``, written atomically (temporary file + rename): the model's and the
optimizer's and scheduler's state, the trainer's position in the data (epoch, micro-batch,
optimizer step), the state a recurrent model carries between batches, and the random states of Python, NumPy and torch, so that a resumed run
draws the same dropout masks and data as the uninterrupted run would have.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save

CHECKPOINT_NAME = "checkpoint.pt"


def rng_states() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


def save_checkpoint(path, model, optimizer, scheduler, trainer_state: dict, rng: dict | None = None,
                    carried_state=None) -> Path:
    """Write a checkpoint atomically to ``path`` (a file, or a directory receiving ``checkpoint.pt``).

    ``model`` is a module or its state dict; ``rng`` defaults to the current random states (the
    trainer passes the states it saw at the end of the last completed optimizer step);
    ``carried_state`` is the state a recurrent or memory model carries to its next batch.
    """
    path = Path(path)
    if path.is_dir() or path.suffix == "":
        path.mkdir(parents=True, exist_ok=True)
        path = path / CHECKPOINT_NAME
    payload = {
        "model": model if isinstance(model, dict) else model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "trainer": dict(trainer_state),
        "rng": rng if rng is not None else rng_states(),
        "carried_state": carried_state,
        "format": "word2bert-checkpoint-1",
    }
    atomic_save(path, lambda tmp: torch.save(payload, tmp))
    return path


def find_checkpoint(path) -> Path | None:
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    return path if path.exists() else None


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; a clear error if it is not one."""
    found = find_checkpoint(path)
    if found is None:
        raise Word2BertError(f"no checkpoint to resume from at {path}")
    try:
        payload = torch.load(found, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt or foreign file
        raise Word2BertError(f"cannot read checkpoint {found}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != "word2bert-checkpoint-1":
        raise Word2BertError(f"{found} is not a word2bert training checkpoint")
    return payload
