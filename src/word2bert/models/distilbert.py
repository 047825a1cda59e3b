"""DistilBERT (Sanh et al. 2019): BERT's encoder with half the layers, no segment embeddings, no pooler.

- :class:`DistilBertConfig` has transformers' field names (``dim``, ``n_layers``, ``n_heads``,
  ``hidden_dim``, ``sinusoidal_pos_embds``, ...) and answers the names the rest of word2bert reads
  (``hidden_size``, ``num_hidden_layers``, ``max_position_embeddings``, ...).
- :class:`DistilBertModel` is the encoder: word + position embeddings -> LayerNorm -> post-LN
  Transformer layers (:class:`~word2bert.nn.TransformerEncoder`, the blocks BERT uses).
  ``token_type_ids`` are accepted and ignored (DistilBERT has no segment embeddings; a pair is told
  apart by its [SEP] only). DistilBERT has no pooler: ``pooled`` is the [CLS] row of the last layer,
  the vector transformers' ``DistilBertForSequenceClassification`` classifies, so fine-tuning heads
  with pooling "pooler" or "cls" read the same vector.
- :class:`DistilBertForMaskedLM` is the encoder + the masked-LM objective; its head
  ``LayerNorm(act(h W + b)) E^T + b_v`` is transformers' ``vocab_transform`` / ``vocab_layer_norm`` /
  ``vocab_projector`` (tied to the word embeddings).

Positions are learned (``sinusoidal_pos_embds=False``, the released checkpoints) or the fixed
sinusoids of Vaswani et al. (DistilBERT's option): the table is then filled with
``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(p / 10000^(2i/d))`` and not trained, as
in the original implementation (``out.requires_grad = False``). It is stored either way, as
transformers stores it.

Both classes read and write transformers' checkpoints through the key map below (transformers
prefixes the encoder with ``distilbert.`` in its task models):

=====================================================  ==============================================
Hugging Face key                                       word2bert key
=====================================================  ==============================================
embeddings.{word,position}_embeddings                  embeddings.{same}
embeddings.LayerNorm                                   embeddings.layer_norm
transformer.layer.i.attention.{q_lin,k_lin,v_lin}      encoder.layers.i.attention.qkv_proj (stacked)
transformer.layer.i.attention.out_lin                  encoder.layers.i.attention.out_proj
transformer.layer.i.sa_layer_norm                      encoder.layers.i.attention_norm
transformer.layer.i.ffn.lin1 / lin2                    encoder.layers.i.feed_forward.dense_in / dense_out
transformer.layer.i.output_layer_norm                  encoder.layers.i.feed_forward_norm
vocab_transform / vocab_layer_norm                     objectives.mlm.head.dense / .layer_norm
vocab_projector.bias (weight tied to the embeddings)   objectives.mlm.head.bias
=====================================================  ==============================================

**Students from a teacher.** :func:`distilbert_from_bert` builds DistilBERT's initialisation: the
teacher's embeddings, LayerNorm, MLM head and a subset of its layers (:func:`spread_layers`: one
layer out of two for 12 -> 6, keeping the first and the last, as DistilBERT's extraction script
does: 0, 2, 4, 7, 9, 11). BERT adds a segment embedding that DistilBERT lacks; its row 0 is folded
into the student's position table (the word table when positions are sinusoidal), so for one-segment
input the student's embedding output equals the teacher's (the extraction script drops it).
:func:`student_from_teacher` does the same for any BERT-like teacher (BERT, RoBERTa, ERNIE, SpanBERT,
a DistilBERT, with or without heads, a fine-tuned task model): a model of the teacher's own class
with fewer layers, every weight copied and layer ``j`` taken from teacher layer ``layers[j]``.

One difference from transformers' DistilBERT remains in training mode only: our layer applies
dropout to the attention output before the residual, as BERT's does (DistilBERT's layer has
dropout on the attention weights and the feed-forward output only). Evaluation outputs are the same.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import KeyMap, concat, rename
from word2bert.models.base import EncoderOutput, PretrainedConfig, PretrainedModel
from word2bert.models.pretraining import PreTrainingModel
from word2bert.nn.embeddings import TransformerEmbeddings, sinusoidal_position_table
from word2bert.nn.frozen import FROZEN_FLAG
from word2bert.nn.transformer import ACTIVATIONS, TransformerEncoder, get_activation, init_transformer_weights
from word2bert.objectives.mlm import MaskedLM, MaskedLMHead, MaskedLMObjective

LAYER_NORM_EPS = 1e-12  # fixed in DistilBERT (transformers has no config field for it)


@dataclass
class DistilBertConfig(PretrainedConfig):
    """DistilBERT's hyper-parameters with transformers' names and distilbert-base-uncased's defaults.

    Read-only aliases give the names of BERT's config that fine-tuning and ``encode`` read:
    ``hidden_size`` (``dim``), ``num_hidden_layers`` (``n_layers``), ``num_attention_heads``
    (``n_heads``), ``intermediate_size`` (``hidden_dim``), ``hidden_act`` (``activation``),
    ``hidden_dropout_prob`` (``dropout``), ``attention_probs_dropout_prob``, ``layer_norm_eps``.
    """

    model_type = "distilbert"

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    n_layers: int = 6
    n_heads: int = 12
    dim: int = 768
    hidden_dim: int = 3072
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    initializer_range: float = 0.02
    qa_dropout: float = 0.1
    seq_classif_dropout: float = 0.2
    pad_token_id: int = 0
    tie_word_embeddings: bool = True

    def validate(self) -> None:
        self.require_positive_ints("vocab_size", "max_position_embeddings", "n_layers", "n_heads", "dim",
                                   "hidden_dim")
        self.require_divisible("dim", "n_heads")
        self.require_probabilities("dropout", "attention_dropout", "qa_dropout", "seq_classif_dropout")
        self.require_positive_floats("initializer_range")
        if self.activation not in ACTIVATIONS:
            get_activation(self.activation)
        if not isinstance(self.sinusoidal_pos_embds, bool):
            raise Word2BertError(f"DistilBertConfig.sinusoidal_pos_embds={self.sinusoidal_pos_embds!r} must be "
                                 "true or false")
        if self.sinusoidal_pos_embds and self.dim % 2:
            raise Word2BertError(f"DistilBertConfig.dim={self.dim} must be even for sinusoidal positions")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise Word2BertError(
                f"DistilBertConfig.pad_token_id={self.pad_token_id!r} must be in [0, vocab_size={self.vocab_size})")
        if not self.tie_word_embeddings:
            raise Word2BertError("DistilBertConfig.tie_word_embeddings=false (an output layer apart from the word "
                                 "embeddings) is not supported")

    # the names of BertConfig that generic code reads
    @property
    def hidden_size(self) -> int:
        return self.dim

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layers

    @property
    def num_attention_heads(self) -> int:
        return self.n_heads

    @property
    def intermediate_size(self) -> int:
        return self.hidden_dim

    @property
    def hidden_act(self) -> str:
        return self.activation

    @property
    def hidden_dropout_prob(self) -> float:
        return self.dropout

    @property
    def attention_probs_dropout_prob(self) -> float:
        return self.attention_dropout

    @property
    def layer_norm_eps(self) -> float:
        return LAYER_NORM_EPS

    @property
    def type_vocab_size(self) -> int:
        return 0


def distilbert_encoder_rules(config: DistilBertConfig, ours: str = "", theirs: str = "") -> list:
    """Key rules of a bare DistilBERT encoder (see the module docstring), with key prefixes."""
    rules = [
        rename("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
        rename("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight"),
        rename("embeddings.layer_norm.weight", "embeddings.LayerNorm.weight"),
        rename("embeddings.layer_norm.bias", "embeddings.LayerNorm.bias"),
    ]
    for i in range(config.n_layers):
        mine, hf_layer = f"encoder.layers.{i}.", f"transformer.layer.{i}."
        for param in ("weight", "bias"):
            rules += [
                concat(f"{mine}attention.qkv_proj.{param}",
                       [f"{hf_layer}attention.{part}.{param}" for part in ("q_lin", "k_lin", "v_lin")]),
                rename(f"{mine}attention.out_proj.{param}", f"{hf_layer}attention.out_lin.{param}"),
                rename(f"{mine}attention_norm.{param}", f"{hf_layer}sa_layer_norm.{param}"),
                rename(f"{mine}feed_forward.dense_in.{param}", f"{hf_layer}ffn.lin1.{param}"),
                rename(f"{mine}feed_forward.dense_out.{param}", f"{hf_layer}ffn.lin2.{param}"),
                rename(f"{mine}feed_forward_norm.{param}", f"{hf_layer}output_layer_norm.{param}"),
            ]
    return [rule.with_prefixes(ours, theirs) for rule in rules]


class DistilBertModel(PretrainedModel):
    """The DistilBERT encoder: :class:`TransformerEmbeddings` (no segments) -> :class:`TransformerEncoder`."""

    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    hf_architecture = "DistilBertModel"
    is_encoder = True

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        if not isinstance(config, DistilBertConfig):
            raise Word2BertError(f"DistilBertModel needs a DistilBertConfig, got {type(config).__name__}")
        self.config = config
        self.embeddings = TransformerEmbeddings(
            config.vocab_size, config.dim, config.max_position_embeddings, type_vocab_size=0,
            layer_norm_eps=LAYER_NORM_EPS, dropout=config.dropout, pad_token_id=config.pad_token_id,
            position_embedding_type="learned")
        self.encoder = TransformerEncoder(
            num_layers=config.n_layers, hidden_size=config.dim, num_heads=config.n_heads,
            intermediate_size=config.hidden_dim, activation=config.activation, hidden_dropout=config.dropout,
            attention_dropout=config.attention_dropout, layer_norm_eps=LAYER_NORM_EPS)
        self.apply(lambda module: init_transformer_weights(module, config.initializer_range))
        if config.sinusoidal_pos_embds:
            table = self.embeddings.position_embeddings.weight
            with torch.no_grad():
                table.copy_(sinusoidal_position_table(config.max_position_embeddings, config.dim))
            table.requires_grad_(False)  # fixed, as in the original implementation

    @classmethod
    def hf_key_map(cls, config: DistilBertConfig) -> KeyMap:
        return KeyMap(distilbert_encoder_rules(config), prefix="distilbert.")

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        state=None,
        read_positions: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        """Encode ``input_ids`` (B, T) (the encoder contract of :mod:`word2bert.models.base`).

        ``token_type_ids`` are ignored (no segment embeddings). ``pooled`` is the last layer's
        [CLS] row (None with ``read_positions``, which computes the last layer at those rows only).
        """
        if state is not None:
            raise Word2BertError("DistilBERT carries no state between batches")
        embedded = self.embeddings(input_ids, position_ids=position_ids)
        last_hidden, all_hidden = self.encoder(
            embedded, attention_mask, causal=False, output_hidden_states=output_hidden_states,
            last_layer_positions=read_positions)
        pooled = last_hidden[:, 0] if read_positions is None else None
        return EncoderOutput(last_hidden, all_hidden, pooled)


class DistilBertForMaskedLM(PreTrainingModel):
    """DistilBERT with the masked-LM objective (transformers' ``DistilBertForMaskedLM``).

    ``forward(input_ids, attention_mask, masked_positions=..., masked_labels=...)``: the head runs at
    the masked positions only (``output.mlm_logits`` is (B, P, V)); loss = mean over predicted positions
    of -log p(original token). ``masking`` (a :class:`MaskedLM`) is needed only to build batches.
    """

    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    hf_architecture = "DistilBertForMaskedLM"

    def __init__(self, config: DistilBertConfig, masking: MaskedLM | None = None):
        head = MaskedLMHead(config.dim, config.vocab_size, config.activation, LAYER_NORM_EPS)
        super().__init__(config, DistilBertModel(config), {"mlm": MaskedLMObjective(head, masking)})
        head.apply(lambda module: init_transformer_weights(module, config.initializer_range))

    @classmethod
    def hf_key_map(cls, config: DistilBertConfig) -> KeyMap:
        head = [
            rename("objectives.mlm.head.dense.weight", "vocab_transform.weight", required=False),
            rename("objectives.mlm.head.dense.bias", "vocab_transform.bias", required=False),
            rename("objectives.mlm.head.layer_norm.weight", "vocab_layer_norm.weight", required=False),
            rename("objectives.mlm.head.layer_norm.bias", "vocab_layer_norm.bias", required=False),
            rename("objectives.mlm.head.bias", "vocab_projector.bias", required=False),
        ]
        return KeyMap(distilbert_encoder_rules(config, "distilbert.", "distilbert.") + head, prefix="distilbert.")

    @property
    def mlm_head(self) -> MaskedLMHead:
        return self.objectives["mlm"].head


# --------------------------------------------------------------------------- students from a teacher

def spread_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """The teacher layers a student of ``student_layers`` layers starts from, spread evenly from the
    first to the last: ``floor(j (L_t - 1) / (L_s - 1) + 1/2)`` for j = 0 .. L_s - 1 (one layer: the first).

    12 -> 6 gives 0, 2, 4, 7, 9, 11 (DistilBERT's extraction script); 6 -> 3 gives 0, 3, 5."""
    if isinstance(student_layers, bool) or not isinstance(student_layers, int) or student_layers < 1:
        raise Word2BertError(f"parameter student_layers={student_layers!r} must be a positive integer")
    if student_layers > teacher_layers:
        raise Word2BertError(f"a student of {student_layers} layers cannot take its layers from a teacher of "
                             f"{teacher_layers}")
    if student_layers == 1:
        return [0]
    return [int(j * (teacher_layers - 1) / (student_layers - 1) + 0.5) for j in range(student_layers)]


def _check_layers(layers, teacher_layers: int) -> list[int]:
    layers = [int(i) for i in layers]
    if not layers:
        raise Word2BertError("a student needs at least one layer")
    bad = [i for i in layers if not 0 <= i < teacher_layers]
    if bad:
        raise Word2BertError(f"teacher layer {bad[0]} does not exist: the teacher has layers 0 to {teacher_layers - 1}")
    return layers


def _stack_depth(encoder: nn.Module) -> int:
    """The number of distinct layers of a BERT-like encoder (refusing shared layers, e.g. ALBERT's)."""
    stack = getattr(encoder, "encoder", None)
    layers = getattr(stack, "layers", None)
    depth = getattr(encoder.config, "num_hidden_layers", None)
    if not isinstance(layers, nn.ModuleList) or depth is None:
        raise Word2BertError(f"{type(encoder).__name__} is not a BERT-like encoder (embeddings + encoder.layers)")
    if len(layers) != depth:
        raise Word2BertError(f"{type(encoder).__name__} shares its layers across depth ({len(layers)} layers for "
                             f"{depth} depths): a student cannot take some of them")
    return depth


def student_from_teacher(teacher: nn.Module, num_layers: int | None = None, layers=None) -> nn.Module:
    """A model of the teacher's own class with fewer layers, initialised from the teacher.

    ``teacher`` is any BERT-like model (an encoder with ``embeddings`` and ``encoder.layers``, alone
    or inside a pre-training model or a fine-tuned task head). ``layers`` lists the teacher layers
    to keep (default :func:`spread_layers` of ``num_layers``); every other weight (embeddings, pooler,
    heads) is copied as is. The student is in training mode and shares no tensor with the teacher.
    """
    from word2bert.tasks.heads import as_encoder

    encoder = as_encoder(teacher)
    depth = _stack_depth(encoder)
    if layers is None:
        if num_layers is None:
            raise Word2BertError("give the student's number of layers or the teacher layers it takes")
        layers = spread_layers(depth, num_layers)
    layers = _check_layers(layers, depth)
    if num_layers is not None and num_layers != len(layers):
        raise Word2BertError(f"{len(layers)} teacher layers given for a student of {num_layers} layers")
    student = copy.deepcopy(teacher)  # same class, heads and settings; the stacks are cut below
    student_encoder = as_encoder(student)
    student_encoder.encoder.layers = nn.ModuleList(copy.deepcopy(encoder.encoder.layers[i]) for i in layers)
    student_encoder.encoder.num_layers = len(layers)
    student_encoder.encoder.depth_to_group = list(range(len(layers)))
    old_config = student_encoder.config
    new_config = old_config.replace(**{_depth_field(old_config): len(layers)})
    for module in student.modules():  # a pre-training model shares its encoder's config
        if getattr(module, "config", None) is old_config:
            module.config = new_config
        module.__dict__.pop(FROZEN_FLAG, None)  # a frozen teacher gives a trainable student
    student.requires_grad_(True)
    _restore_fixed_tables(student)
    if hasattr(student, "freeze_unused_pooler"):  # a pre-training model leaves a pooler it never reads untrained
        student.freeze_unused_pooler()
    student.train()
    return student


def _depth_field(config) -> str:
    return "n_layers" if isinstance(config, DistilBertConfig) else "num_hidden_layers"


def _restore_fixed_tables(model: nn.Module) -> None:
    """Sinusoidal DistilBERT position tables stay untrained after requires_grad_(True)."""
    for module in model.modules():
        if isinstance(module, DistilBertModel) and module.config.sinusoidal_pos_embds:
            module.embeddings.position_embeddings.weight.requires_grad_(False)


def distilbert_config_from_bert(config, num_layers: int, sinusoidal_pos_embds: bool = False) -> DistilBertConfig:
    """The DistilBERT config of a student of ``num_layers`` layers of BERT ``config``'s width and vocabulary."""
    if getattr(config, "model_type", None) != "bert" or getattr(config, "pre_layer_norm", False):
        raise Word2BertError(f"a DistilBERT student is made from a BERT teacher (post-LN, model_type 'bert'), not "
                             f"{getattr(config, 'model_type', type(config).__name__)!r}; use the teacher's own class "
                             "(student_from_teacher)")
    if getattr(config, "position_embedding_type", "learned") != "learned":
        raise Word2BertError("a DistilBERT student needs a teacher with learned positions")
    return DistilBertConfig(
        vocab_size=config.vocab_size, max_position_embeddings=config.max_position_embeddings,
        sinusoidal_pos_embds=sinusoidal_pos_embds, n_layers=num_layers, n_heads=config.num_attention_heads,
        dim=config.hidden_size, hidden_dim=config.intermediate_size, dropout=config.hidden_dropout_prob,
        attention_dropout=config.attention_probs_dropout_prob, activation=config.hidden_act,
        initializer_range=config.initializer_range, pad_token_id=config.pad_token_id)


def distilbert_from_bert(teacher: nn.Module, num_layers: int | None = None, layers=None,
                         sinusoidal_pos_embds: bool = False, masking: MaskedLM | None = None):
    """DistilBERT's initialisation of a student from a BERT teacher.

    ``teacher``: a BERT encoder, or a model holding one (``BertForPreTraining``, a fine-tuned head).
    Returns a :class:`DistilBertForMaskedLM` when the teacher has a masked-LM objective (its head is
    copied: transformers' ``vocab_transform`` and ``vocab_projector``), else a :class:`DistilBertModel`.
    Embeddings, their LayerNorm and teacher layers ``layers`` (default :func:`spread_layers`) are
    copied; the teacher's segment-0 embedding is added to the position table (the word table with
    ``sinusoidal_pos_embds``) so that one-segment inputs embed exactly as in the teacher.
    """
    from word2bert.tasks.heads import as_encoder

    encoder = as_encoder(teacher)
    depth = _stack_depth(encoder)
    if layers is None:
        if num_layers is None:
            raise Word2BertError("give the student's number of layers or the teacher layers it takes")
        layers = spread_layers(depth, num_layers)
    layers = _check_layers(layers, depth)
    if num_layers is not None and num_layers != len(layers):
        raise Word2BertError(f"{len(layers)} teacher layers given for a student of {num_layers} layers")
    config = distilbert_config_from_bert(encoder.config, len(layers), sinusoidal_pos_embds)
    objectives = getattr(teacher, "objectives", None)
    teacher_mlm = objectives["mlm"] if objectives is not None and "mlm" in objectives else None
    student = DistilBertForMaskedLM(config, masking) if teacher_mlm is not None else DistilBertModel(config)
    student_encoder = as_encoder(student)
    with torch.no_grad():
        embeddings, source = student_encoder.embeddings, encoder.embeddings
        segment = source.token_type_embeddings.weight[0] if source.token_type_embeddings is not None else 0.0
        embeddings.word_embeddings.weight.copy_(source.word_embeddings.weight)
        if sinusoidal_pos_embds:
            embeddings.word_embeddings.weight.add_(segment)
        else:
            embeddings.position_embeddings.weight.copy_(source.position_embeddings.weight + segment)
        embeddings.layer_norm.load_state_dict(source.layer_norm.state_dict())
        for j, i in enumerate(layers):
            student_encoder.encoder.layers[j].load_state_dict(encoder.encoder.layers[i].state_dict())
        if teacher_mlm is not None:
            student.mlm_head.load_state_dict(teacher_mlm.head.state_dict())
    return student.train()


__all__ = [
    "DistilBertConfig",
    "DistilBertForMaskedLM",
    "DistilBertModel",
    "distilbert_config_from_bert",
    "distilbert_encoder_rules",
    "distilbert_from_bert",
    "spread_layers",
    "student_from_teacher",
]
