"""Marking a module as a frozen teacher (distillation): no gradients, eval mode, not checkpointed.

``freeze(module)`` sets ``requires_grad=False`` on its parameters and the flag ``_word2bert_frozen``
on the module; the trainer reads the flag (:func:`is_frozen`, :func:`frozen_modules`) to keep such
modules in eval mode (no dropout) and out of its checkpoints. This differs from merely setting
``requires_grad=False`` (ULMFiT's gradual unfreezing): parameters frozen that way are still trained
once unfrozen, and saved.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from word2bert.errors import Word2BertError

FROZEN_FLAG = "_word2bert_frozen"  # the trainer (train/trainer.py) reads the same name


def freeze(module: nn.Module) -> nn.Module:
    """Freeze ``module`` as a teacher: ``requires_grad=False`` everywhere, eval mode, flagged; returns it."""
    if not isinstance(module, nn.Module):
        raise Word2BertError(f"freeze() needs a torch.nn.Module, got {type(module).__name__}")
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    module.eval()
    setattr(module, FROZEN_FLAG, True)
    return module


def is_frozen(module: nn.Module) -> bool:
    """True if ``module`` was marked by :func:`freeze`."""
    return bool(getattr(module, FROZEN_FLAG, False))


def frozen_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``(qualified name, module)`` of each outermost frozen module inside ``model`` (including itself,
    with name ""). Parameters and buffers whose names start with ``name + "."`` belong to it."""
    prefixes: list[str] = []
    for name, module in model.named_modules():
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            continue
        if is_frozen(module):
            yield name, module
            if name == "":  # the whole model is frozen: nothing inside it is outermost
                return
            prefixes.append(name)


__all__ = ["FROZEN_FLAG", "freeze", "frozen_modules", "is_frozen"]
