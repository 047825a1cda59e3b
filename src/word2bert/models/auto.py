"""Build whichever model a checkpoint directory holds, from its config.json.

Every model module in :mod:`word2bert.models` registers its classes when imported (see
:class:`word2bert.models.base.PretrainedModel`); this module imports them all on first use, so a new
model file is found without editing anything here (as the CLI finds its command modules).
"""

from __future__ import annotations

import importlib
import pkgutil

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import MODEL_REGISTRY, read_config_dict

_IMPORTED = False


def import_model_modules() -> None:
    """Import every module of :mod:`word2bert.models` once, so that all models are registered."""
    global _IMPORTED
    if _IMPORTED:
        return
    import word2bert.models as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"word2bert.models.{info.name}")
    _IMPORTED = True


def model_classes(model_type: str) -> dict[str, type]:
    """``{architecture: class}`` registered for ``model_type`` (Word2BertError if none)."""
    import_model_modules()
    if model_type not in MODEL_REGISTRY:
        known = ", ".join(sorted(MODEL_REGISTRY)) or "none"
        raise Word2BertError(f"no word2bert model reads model_type={model_type!r} checkpoints (known: {known})")
    return MODEL_REGISTRY[model_type]


def _model_type(directory) -> tuple[str, list[str]]:
    config = read_config_dict(directory)
    model_type = config.get("model_type")
    if not model_type:
        raise Word2BertError(f"{directory}/config.json has no model_type")
    return model_type, list(config.get("architectures") or [])


def encoder_class(model_type: str) -> type:
    """The bare encoder class of ``model_type`` (``is_encoder``)."""
    for cls in model_classes(model_type).values():
        if cls.is_encoder:
            return cls
    raise Word2BertError(f"model_type={model_type!r} has no encoder class")


def from_pretrained(directory, **config_overrides):
    """The model of the architecture config.json names (or the bare encoder when we lack that one)."""
    model_type, architectures = _model_type(directory)
    classes = model_classes(model_type)
    for architecture in architectures:
        if architecture in classes:
            return classes[architecture].from_pretrained(directory, **config_overrides)
    return encoder_class(model_type).from_pretrained(directory, **config_overrides)


def encoder_from_pretrained(directory, **config_overrides):
    """The bare encoder of a checkpoint, whatever heads it was saved with (for fine-tuning, encode())."""
    model_type, _ = _model_type(directory)
    return encoder_class(model_type).from_pretrained(directory, **config_overrides)


__all__ = ["encoder_class", "encoder_from_pretrained", "from_pretrained", "import_model_modules", "model_classes"]
