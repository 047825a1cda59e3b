"""Hugging Face BERT checkpoints <-> word2bert models.

A Hugging Face checkpoint directory holds ``config.json`` and ``model.safetensors`` (or a sharded
``model.safetensors.index.json``, or the older ``pytorch_model.bin``), plus the tokenizer's
``vocab.txt``, which :mod:`word2bert.corpus.wordpiece` reads. Our modules have their own names
(and one fused query/key/value matrix per layer); this module maps between the two.

=====================================================  ==============================================
Hugging Face key                                       word2bert key
=====================================================  ==============================================
embeddings.{word,position,token_type}_embeddings       embeddings.{same}
embeddings.LayerNorm                                   embeddings.layer_norm
encoder.layer.i.attention.self.{query,key,value}       encoder.layers.i.attention.qkv_proj (stacked)
encoder.layer.i.attention.output.dense                 encoder.layers.i.attention.out_proj
encoder.layer.i.attention.output.LayerNorm             encoder.layers.i.attention_norm
encoder.layer.i.intermediate.dense                     encoder.layers.i.feed_forward.dense_in
encoder.layer.i.output.dense                           encoder.layers.i.feed_forward.dense_out
encoder.layer.i.output.LayerNorm                       encoder.layers.i.feed_forward_norm
pooler.dense                                           pooler.dense
cls.predictions.transform.dense / .LayerNorm           mlm_head.dense / mlm_head.layer_norm
cls.predictions.bias (decoder tied to embeddings)      mlm_head.bias
cls.seq_relationship                                   nsp_head
=====================================================  ==============================================

Checkpoints of a task model (BertForPreTraining, BertForSequenceClassification, ...) prefix the
encoder with ``bert.``; a bare BertModel does not. Both load into either of our classes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
PYTORCH_NAME = "pytorch_model.bin"


# --------------------------------------------------------------------------- key mapping

def _encoder_renames(config) -> list[tuple[str, str]]:
    """(word2bert key, Hugging Face key) pairs of a bare BertModel, except the fused QKV."""
    pairs = [
        ("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
        ("embeddings.layer_norm.weight", "embeddings.LayerNorm.weight"),
        ("embeddings.layer_norm.bias", "embeddings.LayerNorm.bias"),
    ]
    if config.position_embedding_type == "learned":
        pairs.append(("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight"))
    if config.type_vocab_size > 0:
        pairs.append(("embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight"))
    for i in range(config.num_hidden_layers):
        ours, theirs = f"encoder.layers.{i}.", f"encoder.layer.{i}."
        for param in ("weight", "bias"):
            pairs += [
                (f"{ours}attention.out_proj.{param}", f"{theirs}attention.output.dense.{param}"),
                (f"{ours}attention_norm.{param}", f"{theirs}attention.output.LayerNorm.{param}"),
                (f"{ours}feed_forward.dense_in.{param}", f"{theirs}intermediate.dense.{param}"),
                (f"{ours}feed_forward.dense_out.{param}", f"{theirs}output.dense.{param}"),
                (f"{ours}feed_forward_norm.{param}", f"{theirs}output.LayerNorm.{param}"),
            ]
    if config.pre_layer_norm:  # not a Hugging Face BERT feature: our own key, read back by us only
        pairs += [("encoder.final_norm.weight", "encoder.final_norm.weight"),
                  ("encoder.final_norm.bias", "encoder.final_norm.bias")]
    return pairs


_POOLER_RENAMES = [("pooler.dense.weight", "pooler.dense.weight"), ("pooler.dense.bias", "pooler.dense.bias")]

_HEAD_RENAMES = [
    ("mlm_head.dense.weight", "cls.predictions.transform.dense.weight"),
    ("mlm_head.dense.bias", "cls.predictions.transform.dense.bias"),
    ("mlm_head.layer_norm.weight", "cls.predictions.transform.LayerNorm.weight"),
    ("mlm_head.layer_norm.bias", "cls.predictions.transform.LayerNorm.bias"),
    ("mlm_head.bias", "cls.predictions.bias"),
    ("nsp_head.weight", "cls.seq_relationship.weight"),
    ("nsp_head.bias", "cls.seq_relationship.bias"),
]


def _normalise_hf_keys(state: dict) -> dict:
    """Old TF-converted checkpoints name LayerNorm parameters gamma/beta; use weight/bias."""
    out = {}
    for key, value in state.items():
        if key.endswith(".gamma"):
            key = key[: -len(".gamma")] + ".weight"
        elif key.endswith(".beta"):
            key = key[: -len(".beta")] + ".bias"
        out[key] = value
    return out


def hf_to_word2bert(hf_state: dict, config, with_heads: bool, source="checkpoint") -> tuple[dict, list[str]]:
    """Map a Hugging Face BERT state dict to our key names.

    Returns ``(state, missing_optional)``: the mapped tensors and the optional weights (pooler,
    pre-training heads) the checkpoint lacks. A missing encoder weight raises Word2BertError.
    """
    hf_state = _normalise_hf_keys(hf_state)
    base = "bert." if any(key.startswith("bert.") for key in hf_state) else ""
    prefix = "bert." if with_heads else ""
    state, missing_required, missing_optional = {}, [], []

    def take(ours: str, theirs: str, required: bool) -> None:
        if theirs in hf_state:
            state[ours] = hf_state[theirs]
        elif required:
            missing_required.append(theirs)
        else:
            missing_optional.append(theirs)

    for ours, theirs in _encoder_renames(config):
        take(prefix + ours, base + theirs, required=True)
    for i in range(config.num_hidden_layers):
        for param in ("weight", "bias"):
            names = [f"{base}encoder.layer.{i}.attention.self.{part}.{param}" for part in ("query", "key", "value")]
            absent = [name for name in names if name not in hf_state]
            if absent:
                missing_required += absent
            else:  # our fused projection: rows [0,d) query, [d,2d) key, [2d,3d) value
                state[f"{prefix}encoder.layers.{i}.attention.qkv_proj.{param}"] = torch.cat(
                    [hf_state[name] for name in names], dim=0
                )
    for ours, theirs in _POOLER_RENAMES:
        take(prefix + ours, base + theirs, required=False)
    if with_heads:
        for ours, theirs in _HEAD_RENAMES:
            if theirs == "cls.predictions.bias" and theirs not in hf_state and "cls.predictions.decoder.bias" in hf_state:
                theirs = "cls.predictions.decoder.bias"
            take(ours, theirs, required=False)
    if missing_required:
        shown = ", ".join(missing_required[:5]) + (" ..." if len(missing_required) > 5 else "")
        raise Word2BertError(
            f"{source}: not a BERT checkpoint matching its config.json: {len(missing_required)} "
            f"weights missing ({shown})"
        )
    return state, missing_optional


def word2bert_to_hf(state: dict, config, with_heads: bool) -> dict:
    """Map our state dict to Hugging Face key names (the inverse of :func:`hf_to_word2bert`).

    The tied MLM decoder is not written (transformers ties it to the word embeddings on load).
    """
    prefix = "bert." if with_heads else ""
    out = {}
    for ours, theirs in _encoder_renames(config) + _POOLER_RENAMES:
        out[prefix + theirs] = state[prefix + ours]
    hidden = config.hidden_size
    for i in range(config.num_hidden_layers):
        for param in ("weight", "bias"):
            fused = state[f"{prefix}encoder.layers.{i}.attention.qkv_proj.{param}"]
            for part, chunk in zip(("query", "key", "value"), fused.split(hidden, dim=0)):
                out[f"{prefix}encoder.layer.{i}.attention.self.{part}.{param}"] = chunk
    if with_heads:
        for ours, theirs in _HEAD_RENAMES:
            out[theirs] = state[ours]
    return {key: value.detach().contiguous().clone() for key, value in out.items()}


# --------------------------------------------------------------------------- files

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


def load_pretrained(cls, directory, **config_overrides):
    """Build ``cls`` (BertModel or BertForPreTraining) from a Hugging Face checkpoint directory."""
    from word2bert.models.bert import BertConfig

    directory = Path(directory)
    if not directory.is_dir():
        raise Word2BertError(f"checkpoint directory not found: {directory}")
    config = BertConfig.from_json_file(directory / CONFIG_NAME)
    if config_overrides:
        unknown = sorted(set(config_overrides) - set(config.to_dict()))
        if unknown:
            raise Word2BertError(f"unknown BertConfig field(s): {', '.join(unknown)}")
        config = BertConfig.from_dict({**config.to_dict(), **config_overrides})
    hf_state, path = read_state_dict(directory)
    with_heads = hasattr(cls, "hf_architecture") and cls.hf_architecture == "BertForPreTraining"
    state, missing_optional = hf_to_word2bert(hf_state, config, with_heads, source=path)
    model = cls(config)
    expected = model.state_dict()
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise Word2BertError(
                f"{path}: weight for {key} has shape {tuple(value.shape)} but config.json implies "
                f"{tuple(expected[key].shape)}"
            )
    model.load_state_dict(state, strict=False)
    if missing_optional:
        shown = ", ".join(missing_optional[:4]) + (" ..." if len(missing_optional) > 4 else "")
        warnings.warn(f"{path}: no weights for {shown}; they keep their random initialisation", stacklevel=3)
    return model


def save_pretrained(model, directory) -> None:
    """Write ``config.json`` and ``model.safetensors`` (Hugging Face names), each atomically."""
    from safetensors.torch import save_file

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise Word2BertError(f"cannot create checkpoint directory {directory}: {error}") from None
    config = model.config
    with_heads = model.hf_architecture == "BertForPreTraining"
    if config.pre_layer_norm or config.position_embedding_type != "learned":
        warnings.warn(
            f"{directory}: pre_layer_norm / sinusoidal positions are word2bert extensions; "
            "transformers' BertModel cannot load this checkpoint faithfully",
            stacklevel=3,
        )
    tensors = word2bert_to_hf(model.state_dict(), config, with_heads)
    tensors = {key: value.cpu() for key, value in tensors.items()}
    atomic_save(directory / SAFETENSORS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    config.save(directory / CONFIG_NAME, architecture=model.hf_architecture)


__all__ = [
    "hf_to_word2bert",
    "load_pretrained",
    "read_state_dict",
    "save_pretrained",
    "word2bert_to_hf",
]
