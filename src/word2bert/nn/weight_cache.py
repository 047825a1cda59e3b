"""Tensors derived from a weight (a packed copy, a quantised screen), kept as long as the weight lives
and rebuilt when it changes.

The key of an entry is the weight's identity and what tells that it changed:

- ``weight._version``, which in-place operations on the weight bump (the default optimizer steps,
  ``load_state_dict``'s ``copy_``), its storage address (``param.data = other`` changes it) and its shape;
- a probe of its values: :data:`PROBE_SIZE` elements spread evenly over a CPU weight, read through a
  numpy view. Changes made through ``weight.data`` (``p.data.add_(-lr * p.grad)``, a common hand-written
  SGD step) do not bump the version, and neither do torch's fused optimizers (``fused=True``,
  transformers' default ``adamw_torch_fused``); a step of either changes the probed elements;
- every step of any ``torch.optim`` optimizer empties the cache (a global step hook), whatever it changed.

An edit through ``.data`` that leaves every probed element as it was (one row of an embedding table, say)
goes unseen: call :func:`clear` after such an edit. An entry leaves with its weight (weak reference), so
the cache never keeps a model alive.
"""

from __future__ import annotations

import weakref
from typing import Callable, TypeVar

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

T = TypeVar("T")

#: Elements of a CPU weight compared on every lookup (see the module doc).
PROBE_SIZE = 16

#: (id(weight), kind) -> (weak reference to the weight, its version key, the derived value, probe reader,
#: the probe read when the value was built)
_ENTRIES: dict[tuple[int, str], tuple] = {}

#: Other caches of values computed from weights (anything with ``clear()``), emptied with this one on every
#: optimizer step (:func:`clear_on_optimizer_steps`).
_DEPENDENT_CACHES: "weakref.WeakSet" = weakref.WeakSet()


def _version_key(weight: torch.Tensor) -> tuple:
    return weight._version, weight.data_ptr(), tuple(weight.shape)


def _probe_reader(weight: torch.Tensor) -> Callable[[], bytes] | None:
    """A function returning the bytes of PROBE_SIZE evenly spread elements of ``weight`` (read through a
    numpy view sharing its memory), or None where there is none (not on the CPU, or a dtype numpy lacks)."""
    if weight.device.type != "cpu" or weight.numel() == 0:
        return None
    try:
        flat = weight.detach().numpy().reshape(-1)
    except (TypeError, RuntimeError, ValueError):
        return None
    positions = np.unique(np.linspace(0, flat.size - 1, num=min(PROBE_SIZE, flat.size)).astype(np.int64))
    return lambda: flat[positions].tobytes()


def derived(weight: torch.Tensor, kind: str, build: Callable[[torch.Tensor], T]) -> T:
    """``build(weight)``, computed once per version of ``weight`` and ``kind`` (a name for what is built)."""
    identity = (id(weight), kind)
    key = _version_key(weight)
    entry = _ENTRIES.get(identity)
    if entry is not None and entry[0]() is weight and entry[1] == key:
        reader, probe = entry[3], entry[4]
        if reader is None or reader() == probe:
            return entry[2]
    value = build(weight)
    reader = _probe_reader(weight)
    _ENTRIES[identity] = (weakref.ref(weight, lambda _, i=identity: _ENTRIES.pop(i, None)), key, value, reader,
                          None if reader is None else reader())
    return value


def clear(kind: str | None = None) -> None:
    """Drop every cached value (of one ``kind``, or all)."""
    for identity in [i for i in _ENTRIES if kind is None or i[1] == kind]:
        _ENTRIES.pop(identity, None)


def clear_on_optimizer_steps(cache) -> None:
    """Empty ``cache`` (anything with a ``clear()`` method) after every ``torch.optim`` step too, for as long
    as it lives: the step may have changed the weights its values were computed from."""
    _DEPENDENT_CACHES.add(cache)


def _after_optimizer_step(optimizer, args, kwargs) -> None:
    clear()
    for cache in list(_DEPENDENT_CACHES):
        cache.clear()


register_optimizer_step_post_hook(_after_optimizer_step)

__all__ = ["PROBE_SIZE", "clear", "clear_on_optimizer_steps", "derived"]
