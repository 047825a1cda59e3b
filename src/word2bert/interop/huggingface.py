"""Hugging Face checkpoint files, and the key maps between their tensor names and ours.

This module is a leaf: it imports no model. It knows

* the files of a checkpoint directory: ``config.json``, ``model.safetensors`` (or a sharded
  ``model.safetensors.index.json``, or the older ``pytorch_model.bin``);
* :class:`KeyMap`, a list of :class:`KeyRule` that say which of our tensors is which of theirs and
  how it is transformed on the way (renamed, transposed for the ``Conv1D`` layers of GPT/GPT-2, or
  our fused query/key/value matrix concatenated from their three);
* a registry ``model_type -> {architecture: model class}`` that the models fill in when their
  module is imported (:class:`word2bert.models.base.PretrainedModel` does it), so that a directory
  can be loaded by what its ``config.json`` says it is (:mod:`word2bert.models.auto`).

Each model declares its own key map (``hf_key_map(config)``); loading and saving through it is the
same for every model and lives in :mod:`word2bert.models.base`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save, atomic_write

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
PYTORCH_NAME = "pytorch_model.bin"


# --------------------------------------------------------------------------- key maps

def _identity(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return tensors[0]


def _identity_back(tensor: torch.Tensor, count: int) -> list[torch.Tensor]:
    return [tensor]


@dataclass(frozen=True)
class KeyRule:
    """One of our tensors ``ours`` made from their tensors ``theirs`` (usually one).

    ``to_ours(their_tensors) -> our tensor`` and ``to_theirs(our_tensor, len(theirs)) -> their
    tensors`` are inverse transforms. A rule that is not ``required`` may be absent from a checkpoint
    (a pooler, a pre-training head): the tensor then keeps its initial value. ``aliases`` are other
    names a one-tensor rule's tensor has in some checkpoints, tried in order when reading.
    """

    ours: str
    theirs: tuple[str, ...]
    to_ours: Callable = _identity
    to_theirs: Callable = _identity_back
    required: bool = True
    aliases: tuple[str, ...] = ()

    def with_prefixes(self, ours_prefix: str, theirs_prefix: str) -> KeyRule:
        return KeyRule(ours_prefix + self.ours, tuple(theirs_prefix + t for t in self.theirs),
                       self.to_ours, self.to_theirs, self.required,
                       tuple(theirs_prefix + a for a in self.aliases))

    def find(self, hf_state: dict) -> tuple[str, ...] | None:
        """The names under which ``hf_state`` holds this rule's tensors, or None."""
        if all(name in hf_state for name in self.theirs):
            return self.theirs
        for alias in self.aliases:
            if alias in hf_state:
                return (alias,)
        return None


def rename(ours: str, theirs: str, required: bool = True, aliases: Sequence[str] = ()) -> KeyRule:
    """Same tensor, another name."""
    return KeyRule(ours, (theirs,), required=required, aliases=tuple(aliases))


def transpose(ours: str, theirs: str, required: bool = True) -> KeyRule:
    """Their tensor is ours transposed: transformers' ``Conv1D`` stores a Linear weight as (in, out)."""
    return KeyRule(ours, (theirs,), lambda tensors: tensors[0].t().contiguous(),
                   lambda tensor, count: [tensor.t().contiguous()], required)


def concat(ours: str, theirs: Sequence[str], dim: int = 0, required: bool = True) -> KeyRule:
    """Ours is their tensors concatenated along ``dim`` in order (our fused Q/K/V from their q, k, v)."""
    return KeyRule(ours, tuple(theirs), lambda tensors: torch.cat(list(tensors), dim=dim),
                   lambda tensor, count: list(tensor.chunk(count, dim=dim)), required)


class KeyMap:
    """Our state dict <-> a Hugging Face state dict, through a list of :class:`KeyRule`.

    ``prefix`` (for example ``"bert."``) is the one transformers puts before the encoder's keys in
    its task and pre-training models (``BertForPreTraining``) and leaves out in the bare encoder
    (``BertModel``). Rules are written for the keys of the class they belong to; when a checkpoint
    was saved by the other kind of class, :meth:`to_ours` adds or strips the prefix to match.
    """

    def __init__(self, rules: Sequence[KeyRule], prefix: str = ""):
        self.rules = list(rules)
        self.prefix = prefix
        owners = [rule.ours for rule in self.rules]
        if len(owners) != len(set(owners)):
            raise ValueError("a key map names one of our tensors twice")

    def __add__(self, other: KeyMap) -> KeyMap:
        return KeyMap(self.rules + other.rules, self.prefix or other.prefix)

    @property
    def our_keys(self) -> list[str]:
        return [rule.ours for rule in self.rules]

    def _align_prefix(self, hf_state: dict) -> dict:
        prefix = self.prefix
        if not prefix:
            return hf_state
        expects = any(t.startswith(prefix) for rule in self.rules for t in rule.theirs)
        has = any(key.startswith(prefix) for key in hf_state)
        if expects and not has:  # a bare encoder's checkpoint loaded into a model with heads
            return {prefix + key: value for key, value in hf_state.items()}
        if has and not expects:  # a checkpoint with heads loaded into a bare encoder
            return {key[len(prefix):]: value for key, value in hf_state.items() if key.startswith(prefix)}
        return hf_state

    def to_ours(self, hf_state: dict, source="checkpoint", what: str = "model") -> tuple[dict, list[str]]:
        """Map a Hugging Face state dict to our names.

        Returns ``(state, missing_optional)``. Missing required tensors raise one Word2BertError
        naming the first few and ``source``.
        """
        hf_state = self._align_prefix(normalise_legacy_names(hf_state))
        state, missing_required, missing_optional = {}, [], []
        for rule in self.rules:
            names = rule.find(hf_state)
            if names is None:
                absent = [name for name in rule.theirs if name not in hf_state]
                (missing_required if rule.required else missing_optional).extend(absent)
                continue
            state[rule.ours] = rule.to_ours([hf_state[name] for name in names])
        if missing_required:
            shown = ", ".join(missing_required[:5]) + (" ..." if len(missing_required) > 5 else "")
            raise Word2BertError(
                f"{source}: not a {what} checkpoint matching its config.json: {len(missing_required)} "
                f"weights missing ({shown})")
        return state, missing_optional

    def to_theirs(self, state: dict) -> dict:
        """Map our state dict to Hugging Face names (contiguous CPU copies, ready for safetensors)."""
        out = {}
        for rule in self.rules:
            if rule.ours not in state:
                if rule.required:
                    raise KeyError(rule.ours)
                continue
            parts = rule.to_theirs(state[rule.ours], len(rule.theirs))
            for name, tensor in zip(rule.theirs, parts):
                out[name] = tensor.detach().contiguous().cpu().clone()
        return out


def normalise_legacy_names(state: dict) -> dict:
    """Old TF-converted checkpoints name LayerNorm parameters gamma/beta; use weight/bias."""
    out = {}
    for key, value in state.items():
        if key.endswith(".gamma"):
            key = key[: -len(".gamma")] + ".weight"
        elif key.endswith(".beta"):
            key = key[: -len(".beta")] + ".bias"
        out[key] = value
    return out


# --------------------------------------------------------------------------- registry

#: model_type (as in config.json) -> {Hugging Face architecture name -> our model class}.
MODEL_REGISTRY: dict[str, dict[str, type]] = {}


def register_model(model_type: str, architecture: str, model_class: type) -> None:
    """Record that ``model_class`` reads and writes checkpoints of ``architecture`` / ``model_type``."""
    MODEL_REGISTRY.setdefault(model_type, {})[architecture] = model_class


def read_config_dict(directory) -> dict:
    """The parsed ``config.json`` of a checkpoint directory (Word2BertError naming the file)."""
    if not Path(directory).is_dir():
        raise Word2BertError(f"checkpoint directory not found: {directory}")
    return read_json_object(Path(directory) / CONFIG_NAME)


def read_json_object(path) -> dict:
    """A JSON file holding one object (missing, unreadable or malformed -> Word2BertError naming it)."""
    path = Path(path)
    if not path.is_file():
        raise Word2BertError(f"config file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise Word2BertError(f"{path}: not valid JSON ({error})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise Word2BertError(f"cannot read config file {path}: {error}") from None
    if not isinstance(data, dict):
        raise Word2BertError(f"{path}: a config must be a JSON object, got {type(data).__name__}")
    return data


def write_config_dict(path, data: dict) -> None:
    """Write ``data`` as an indented, sorted JSON file, atomically."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")


# --------------------------------------------------------------------------- weight files

def read_state_dict(directory) -> tuple[dict, Path]:
    """Read the weights of a checkpoint directory: model.safetensors, its sharded index, or
    pytorch_model.bin (``torch.load(weights_only=True)``). Returns ``(state, path read)``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise Word2BertError(f"checkpoint directory not found: {directory}")
    single = directory / SAFETENSORS_NAME
    index = directory / SAFETENSORS_INDEX_NAME
    legacy = directory / PYTORCH_NAME
    if single.is_file():
        return _read_safetensors(single), single
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise Word2BertError(f"cannot read checkpoint index {index}: {error}") from None
        state = {}
        for shard in sorted(set(weight_map.values())):
            state.update(_read_safetensors(directory / shard))
        return state, index
    if legacy.is_file():
        try:
            state = torch.load(legacy, map_location="cpu", weights_only=True)
        except Exception as error:  # pickle, zip and unpickler errors all mean "corrupt file"
            raise Word2BertError(f"cannot read weights file {legacy}: {error}") from None
        if not isinstance(state, dict):
            raise Word2BertError(f"{legacy} does not hold a state dict")
        return state, legacy
    raise Word2BertError(f"no {SAFETENSORS_NAME} or {PYTORCH_NAME} in checkpoint directory {directory}")


def _read_safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    if not path.is_file():
        raise Word2BertError(f"weights file not found: {path}")
    try:
        return load_file(str(path), device="cpu")
    except Exception as error:  # SafetensorError, OSError: corrupt or truncated file
        raise Word2BertError(f"cannot read weights file {path}: {error}") from None


def write_state_dict(directory, tensors: dict) -> Path:
    """Write ``tensors`` (Hugging Face names) to ``directory/model.safetensors``, atomically."""
    from safetensors.torch import save_file

    directory = Path(directory)
    tensors = {key: value.detach().contiguous().cpu() for key, value in tensors.items()}
    path = directory / SAFETENSORS_NAME
    atomic_save(path, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    return path


def make_checkpoint_directory(directory) -> Path:
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise Word2BertError(f"cannot write a checkpoint directory over the file {directory}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise Word2BertError(f"cannot create checkpoint directory {directory}: {error}") from None
    return directory


__all__ = [
    "CONFIG_NAME",
    "KeyMap",
    "KeyRule",
    "MODEL_REGISTRY",
    "concat",
    "make_checkpoint_directory",
    "read_config_dict",
    "read_json_object",
    "read_state_dict",
    "register_model",
    "rename",
    "transpose",
    "write_config_dict",
    "write_state_dict",
]
