"""What every contextual model shares: its config, its encoder output, and Hugging Face checkpoints.

* :class:`PretrainedConfig` — the base of every model's config dataclass (Hugging Face field names):
  dict and ``config.json`` conversion, and validation that names the bad field.
* :class:`EncoderOutput` — what every encoder returns (the encoder contract, see
  ``../shared/DESIGN.md``)::

      forward(input_ids, attention_mask=None, token_type_ids=None, *, position_ids=None, state=None,
              read_positions=None, output_hidden_states=False) -> EncoderOutput

  ``attention_mask`` is a (B, T) padding mask (1 = token) or a boolean (B, T, T) / (B, H, T, T)
  mask (True = may attend); ``read_positions`` (B, Q) computes the last layer only at those rows;
  recurrent and memory models return a ``state`` that the caller passes back as ``state=``.
* :class:`PretrainedModel` — ``config_class``, ``model_type``, ``base_model_prefix``,
  ``hf_architecture`` and ``hf_key_map(config)``; from those it gets ``from_pretrained`` and
  ``save_pretrained`` (the files and the key mapping are in :mod:`word2bert.interop.huggingface`),
  and it registers itself so that :mod:`word2bert.models.auto` can build it from a directory.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop import huggingface as hf


# --------------------------------------------------------------------------- configs

class PretrainedConfig:
    """Base of the model configs; subclasses are dataclasses whose fields use Hugging Face's names.

    Subclasses set ``model_type`` and override :meth:`validate`; :meth:`hf_fields_in` /
    :meth:`hf_fields_out` translate the few values whose spelling differs from Hugging Face's.
    """

    model_type: ClassVar[str] = ""

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise Word2BertError naming the first bad parameter (subclasses extend this)."""

    # ---------------------------------------------------------------- validation helpers
    def require_positive_ints(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise Word2BertError(f"{type(self).__name__}.{name}={value!r} must be a positive integer")

    def require_probabilities(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise Word2BertError(f"{type(self).__name__}.{name}={value!r} must be in [0, 1)")

    def require_positive_floats(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise Word2BertError(f"{type(self).__name__}.{name}={value!r} must be > 0")

    def require_divisible(self, name: str, by: str) -> None:
        if getattr(self, name) % getattr(self, by) != 0:
            raise Word2BertError(f"{type(self).__name__}.{name}={getattr(self, name)} is not divisible by "
                                 f"{by}={getattr(self, by)}")

    # ---------------------------------------------------------------- conversion
    def to_dict(self) -> dict:
        """All fields as a plain dict, in our spelling."""
        return dataclasses.asdict(self)

    @classmethod
    def hf_fields_in(cls, data: dict) -> dict:
        """Hugging Face spelling -> ours (identity unless a subclass differs)."""
        return data

    def hf_fields_out(self, data: dict) -> dict:
        """Our spelling -> Hugging Face's (identity unless a subclass differs)."""
        return data

    def hf_incompatibilities(self) -> list[str]:
        """Settings transformers' model of this type cannot represent (saved anyway, read back by us)."""
        return []

    def to_hf_dict(self, architecture: str | None = None) -> dict:
        """The dict written as config.json: Hugging Face keys, ``model_type`` and ``architectures``."""
        data = self.hf_fields_out(self.to_dict())
        data["model_type"] = self.model_type
        if architecture:
            data["architectures"] = [architecture]
        return data

    @classmethod
    def from_dict(cls, data: dict):
        """Build from a dict such as a Hugging Face config.json, ignoring keys that are not ours."""
        if not isinstance(data, dict):
            raise Word2BertError(f"a {cls.model_type} config must be a JSON object, got {type(data).__name__}")
        model_type = data.get("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise Word2BertError(f"config has model_type={model_type!r}; {cls.__name__} reads "
                                 f"{cls.model_type!r} checkpoints")
        data = cls.hf_fields_in(dict(data))
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{key: value for key, value in data.items() if key in names})
        except TypeError as error:
            raise Word2BertError(f"bad {cls.model_type} config value: {error}") from None

    @classmethod
    def from_json_file(cls, path):
        """Read a config.json (missing or malformed file -> Word2BertError naming it)."""
        data = hf.read_json_object(path)
        try:
            return cls.from_dict(data)
        except Word2BertError as error:
            raise Word2BertError(f"{path}: {error}") from None

    def save(self, path, architecture: str | None = None) -> None:
        """Write the config as Hugging Face compatible JSON, atomically."""
        hf.write_config_dict(path, self.to_hf_dict(architecture))

    def replace(self, **changes):
        """A copy with some fields changed (unknown names -> Word2BertError)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise Word2BertError(f"unknown {type(self).__name__} field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- encoder output

@dataclass
class EncoderOutput:
    """What an encoder returns.

    ``last_hidden_state`` (B, T, d), or (B, Q, d) when ``read_positions`` was given;
    ``hidden_states`` = (embedding output, layer 1, ..., layer L) when asked for;
    ``pooled`` a sentence vector where the model has one (BERT: ``tanh(W h_[CLS] + b)``);
    ``state`` what a recurrent or memory model carries to its next call (LSTM states,
    Transformer-XL memory, a decoder's key/value cache), else None.
    """

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    pooled: torch.Tensor | None = None
    state: Any = None

    @property
    def pooler_output(self) -> torch.Tensor | None:
        """Hugging Face's name for :attr:`pooled`."""
        return self.pooled


# --------------------------------------------------------------------------- models

class PretrainedModel(nn.Module):
    """A model that reads and writes Hugging Face checkpoint directories through its key map.

    Subclasses set ``config_class``, ``base_model_prefix`` (the encoder's attribute name in a model
    with heads, which is also transformers' key prefix: "bert", "transformer", ...),
    ``hf_architecture`` (the transformers class whose checkpoints it reads and writes) and
    ``is_encoder`` (True for the bare encoder), and implement ``hf_key_map(config)``.
    """

    config_class: ClassVar[type] = PretrainedConfig
    base_model_prefix: ClassVar[str] = ""
    hf_architecture: ClassVar[str | None] = None
    is_encoder: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "hf_architecture" in cls.__dict__ and cls.hf_architecture and cls.config_class.model_type:
            hf.register_model(cls.config_class.model_type, cls.hf_architecture, cls)

    @property
    def model_type(self) -> str:
        return self.config_class.model_type

    @classmethod
    def hf_key_map(cls, config) -> hf.KeyMap:
        """Our state-dict keys <-> the keys transformers' ``hf_architecture`` class writes."""
        raise NotImplementedError(f"{cls.__name__} has no Hugging Face key map")

    def get_input_embeddings(self) -> nn.Module:
        """The token embedding table (output layers tie their weights to it)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(cls, directory, **config_overrides):
        """Build from a checkpoint directory (config.json + model.safetensors / sharded / .bin).

        ``config_overrides`` replace config fields (e.g. ``hidden_dropout_prob=0.0``). Weights of
        optional parts the checkpoint lacks (a pooler, pre-training heads) keep their random
        initialisation, with a warning; a missing or mis-shaped required weight is an error.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise Word2BertError(f"checkpoint directory not found: {directory}")
        config = cls.config_class.from_json_file(directory / hf.CONFIG_NAME)
        if config_overrides:
            config = config.replace(**config_overrides)
        hf_state, path = hf.read_state_dict(directory)
        state, missing_optional = cls.hf_key_map(config).to_ours(hf_state, source=path, what=config.model_type)
        model = cls(config)
        expected = model.state_dict()
        for key, value in state.items():
            if key not in expected:
                raise Word2BertError(f"{cls.__name__} has no weight {key} (a key map error)")
            if tuple(value.shape) != tuple(expected[key].shape):
                raise Word2BertError(
                    f"{path}: weight for {key} has shape {tuple(value.shape)} but config.json implies "
                    f"{tuple(expected[key].shape)}")
        model.load_state_dict(state, strict=False)
        if missing_optional:
            shown = ", ".join(missing_optional[:4]) + (" ..." if len(missing_optional) > 4 else "")
            warnings.warn(f"{path}: no weights for {shown}; they keep their random initialisation", stacklevel=2)
        return model

    def save_pretrained(self, directory) -> None:
        """Write ``config.json`` and ``model.safetensors`` with Hugging Face's names, each atomically."""
        directory = hf.make_checkpoint_directory(directory)
        problems = self.config.hf_incompatibilities()
        if problems:
            warnings.warn(f"{directory}: {', '.join(problems)} are word2bert extensions; transformers' "
                          f"{self.hf_architecture} cannot load this checkpoint faithfully", stacklevel=2)
        hf.write_state_dict(directory, self.hf_key_map(self.config).to_theirs(self.state_dict()))
        self.config.save(directory / hf.CONFIG_NAME, architecture=self.hf_architecture)


def gather_rows(hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """out[b, q] = hidden[b, positions[b, q]]: (B, T, d) and (B, Q) -> (B, Q, d)."""
    return hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))


__all__ = ["EncoderOutput", "PretrainedConfig", "PretrainedModel", "gather_rows"]
