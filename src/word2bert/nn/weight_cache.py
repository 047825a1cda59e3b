"""Tensors derived from a weight (a packed copy, a quantised screen), kept as long as the weight lives
and rebuilt when it changes.

The key of an entry is the weight's identity and its version: ``weight._version`` (which every
in-place change bumps: an optimizer step, ``load_state_dict``'s ``copy_``), its storage address
(``param.data = other`` changes it) and its shape. An entry leaves with its weight (weak reference),
so the cache never keeps a model alive.
"""

from __future__ import annotations

import weakref
from typing import Callable, TypeVar

import torch

T = TypeVar("T")

#: (id(weight), kind) -> (weak reference to the weight, its version key, the derived value)
_ENTRIES: dict[tuple[int, str], tuple] = {}


def _version_key(weight: torch.Tensor) -> tuple:
    return weight._version, weight.data_ptr(), tuple(weight.shape)


def derived(weight: torch.Tensor, kind: str, build: Callable[[torch.Tensor], T]) -> T:
    """``build(weight)``, computed once per version of ``weight`` and ``kind`` (a name for what is built)."""
    identity = (id(weight), kind)
    key = _version_key(weight)
    entry = _ENTRIES.get(identity)
    if entry is not None and entry[0]() is weight and entry[1] == key:
        return entry[2]
    value = build(weight)
    _ENTRIES[identity] = (weakref.ref(weight, lambda _, i=identity: _ENTRIES.pop(i, None)), key, value)
    return value


def clear(kind: str | None = None) -> None:
    """Drop every cached value (of one ``kind``, or all)."""
    for identity in [i for i in _ENTRIES if kind is None or i[1] == kind]:
        _ENTRIES.pop(identity, None)


__all__ = ["clear", "derived"]
