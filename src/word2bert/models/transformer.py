"""The Transformer encoder-decoder (Vaswani et al. 2017, "Attention Is All You Need").

- :class:`TransformerConfig` uses the field names of transformers' ``MarianConfig`` (Marian is the
  vanilla Transformer in transformers), so a ``config.json`` of a ``MarianMTModel`` loads as is; ours
  on top: ``pre_layer_norm`` (pre-LN blocks instead of the paper's post-LN),
  ``position_embedding_type`` ("sinusoidal", the paper's, in Marian's sines-then-cosines layout, or
  "learned") and ``type_vocab_size`` (language embeddings added to the tokens, MASS/XLM style) with
  ``source_language_id`` / ``target_language_id``, the languages a translation model reads and writes
  (used when no ``token_type_ids`` are given).
- :class:`TransformerModel` = source embeddings -> :class:`~word2bert.nn.TransformerEncoder`, target
  embeddings -> :class:`~word2bert.nn.TransformerDecoder` (masked self-attention + attention over the
  encoder output). One token table is shared by the encoder, the decoder and the output projection
  (a joint BPE vocabulary, section 3.4), its rows multiplied by sqrt(d_model) on input.
- :class:`TransformerForTranslation` adds the tied output layer ``logits = h E^T + b`` and the
  label-smoothed loss (Szegedy et al. 2016; 0.1 in the paper), computed only at the target positions
  that have a label; :meth:`TransformerForTranslation.translate` decodes with beam search (GNMT length
  penalty) or greedily over the cached decoder, through :mod:`word2bert.models.generation`.

Both read and write transformers' ``MarianModel`` / ``MarianMTModel`` checkpoints (fused Q/K/V and
K/V projections split on the way out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import KeyMap, concat, rename
from word2bert.models.base import EncoderOutput, PretrainedConfig, PretrainedModel
from word2bert.nn.attention import build_attention_mask, build_memory_mask
from word2bert.nn.cache import KeyValueCache
from word2bert.nn.decoder import TransformerDecoder
from word2bert.nn.embeddings import TransformerEmbeddings
from word2bert.nn.linear import linear
from word2bert.nn.linear_cross_entropy import Workspace, linear_cross_entropy
from word2bert.nn.packed import Packing, packed_decoder_layer, packed_encoder_layer
from word2bert.nn.transformer import ACTIVATIONS, TransformerEncoder, get_activation

IGNORE_INDEX = -100


@dataclass
class TransformerConfig(PretrainedConfig):
    """Hyper-parameters of the encoder-decoder, with transformers' ``MarianConfig`` names.

    The defaults are the paper's base model (6 + 6 layers, d 512, 8 heads, FFN 2048, ReLU, dropout 0.1,
    sinusoidal positions, embeddings scaled by sqrt(d) and shared with the output layer).
    """

    model_type = "marian"

    vocab_size: int = 8000
    d_model: int = 512
    encoder_layers: int = 6
    decoder_layers: int = 6
    encoder_attention_heads: int = 8
    decoder_attention_heads: int = 8
    encoder_ffn_dim: int = 2048
    decoder_ffn_dim: int = 2048
    activation_function: str = "relu"
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    max_position_embeddings: int = 512
    scale_embedding: bool = True
    init_std: float = 0.02
    pad_token_id: int = 0
    eos_token_id: int = 1
    decoder_start_token_id: int = 2
    share_encoder_decoder_embeddings: bool = True
    tie_word_embeddings: bool = True
    layer_norm_eps: float = 1e-5
    pre_layer_norm: bool = False
    position_embedding_type: str = "sinusoidal"
    type_vocab_size: int = 0
    source_language_id: int | None = None
    target_language_id: int | None = None

    def validate(self) -> None:
        self.require_positive_ints("vocab_size", "d_model", "encoder_layers", "decoder_layers",
                                   "encoder_attention_heads", "decoder_attention_heads", "encoder_ffn_dim",
                                   "decoder_ffn_dim", "max_position_embeddings")
        self.require_divisible("d_model", "encoder_attention_heads")
        self.require_divisible("d_model", "decoder_attention_heads")
        self.require_probabilities("dropout", "attention_dropout", "activation_dropout")
        self.require_positive_floats("init_std", "layer_norm_eps")
        if self.activation_function not in ACTIVATIONS:
            get_activation(self.activation_function)
        if self.position_embedding_type not in ("sinusoidal", "learned"):
            raise Word2BertError(f"TransformerConfig.position_embedding_type={self.position_embedding_type!r} "
                                 "must be 'sinusoidal' or 'learned'")
        for name in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise Word2BertError(f"TransformerConfig.{name}={value!r} must be in [0, vocab_size={self.vocab_size})")
        if not (self.share_encoder_decoder_embeddings and self.tie_word_embeddings):
            raise Word2BertError("TransformerConfig: only a joint vocabulary shared by the encoder, the decoder and "
                                 "the output layer is supported (share_encoder_decoder_embeddings and "
                                 "tie_word_embeddings must be true)")
        if isinstance(self.type_vocab_size, bool) or not isinstance(self.type_vocab_size, int) \
                or self.type_vocab_size < 0:
            raise Word2BertError(f"TransformerConfig.type_vocab_size={self.type_vocab_size!r} must be an integer >= 0")
        for name in ("source_language_id", "target_language_id"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 0 <= value < max(self.type_vocab_size, 1) or not self.type_vocab_size):
                raise Word2BertError(f"TransformerConfig.{name}={value!r} must be a language embedding id in "
                                     f"[0, type_vocab_size={self.type_vocab_size})")

    @classmethod
    def hf_fields_in(cls, data: dict) -> dict:
        decoder_vocab = data.get("decoder_vocab_size")
        if decoder_vocab is not None and decoder_vocab != data.get("vocab_size", decoder_vocab):
            raise Word2BertError(f"decoder_vocab_size={decoder_vocab} differs from vocab_size={data.get('vocab_size')}: "
                                 "only a joint vocabulary is supported")
        return data

    def hf_fields_out(self, data: dict) -> dict:
        data["decoder_vocab_size"] = self.vocab_size
        data["is_encoder_decoder"] = True
        data["forced_eos_token_id"] = self.eos_token_id
        return data

    def hf_incompatibilities(self) -> list[str]:
        problems = []
        if self.pre_layer_norm:
            problems.append("pre_layer_norm")
        if self.position_embedding_type != "sinusoidal":
            problems.append("learned positions")
        if self.type_vocab_size:
            problems.append("language (token type) embeddings")
        if self.layer_norm_eps != 1e-5:
            problems.append(f"layer_norm_eps={self.layer_norm_eps}")
        return problems


@dataclass
class Seq2SeqOutput:
    """What the encoder-decoder returns.

    ``last_hidden_state`` (B, T, d): the decoder's last layer; ``encoder_output`` the encoder's
    :class:`~word2bert.models.base.EncoderOutput`; ``state`` the decoder's
    :class:`~word2bert.nn.KeyValueCache` when decoding incrementally; ``loss`` the label-smoothed
    mean over labelled target tokens; ``stats`` summable pairs ``{"nll": (sum, count), "accuracy":
    (correct, count)}`` (unsmoothed); ``logits`` (N, V) at the labelled positions when ``labels`` were
    given (None when a gradient was recorded: the fused loss does not keep them), else (B, T, V).
    """

    last_hidden_state: torch.Tensor
    encoder_output: EncoderOutput | None = None
    state: Any = None
    loss: torch.Tensor | None = None
    stats: dict | None = None
    logits: torch.Tensor | None = None


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """The decoder input of teacher forcing: ``[start, y_1, ..., y_{T-1}]`` (-100 labels read as padding)."""
    shifted = labels.new_full(labels.shape, pad_token_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)


def label_smoothed_nll(logits: torch.Tensor, labels: torch.Tensor, epsilon: float) -> tuple[torch.Tensor, ...]:
    """Label-smoothed cross-entropy over N labelled rows (Szegedy et al. 2016, section 7)::

        q = (1 - eps) onehot(y) + eps / V        loss = -sum_v q_v log p_v = (1 - eps) nll + eps mean_v(-log p_v)

    (PyTorch's ``cross_entropy(label_smoothing=eps)``). Returns ``(loss_sum, nll_sum, correct)``
    over the rows; ``nll`` is the unsmoothed -log p(y).
    """
    log_probs = logits.float().log_softmax(-1)
    nll = -log_probs.gather(1, labels[:, None]).squeeze(1)
    loss = nll if epsilon == 0 else (1.0 - epsilon) * nll - epsilon * log_probs.mean(-1)
    correct = (logits.argmax(-1) == labels).sum()
    return loss.sum(), nll.detach().sum(), correct


def init_seq2seq_weights(module: nn.Module) -> None:
    """fairseq's Transformer initialisation: Linear weights Xavier-uniform (U(-a, a), a = sqrt(6 / (fan_in +
    fan_out))), biases 0; token embeddings ~ N(0, 1/d) so that the scaled input sqrt(d) e has unit
    variance, padding row 0; LayerNorm 1 / 0. (transformers' Marian draws N(0, init_std^2) instead;
    with small models its 0.02 leaves attention uniform for hundreds of steps.)"""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=module.embedding_dim ** -0.5)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _embeddings(config: TransformerConfig) -> TransformerEmbeddings:
    return TransformerEmbeddings(
        vocab_size=config.vocab_size,
        hidden_size=config.d_model,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        dropout=config.dropout,
        pad_token_id=config.pad_token_id,
        position_embedding_type=config.position_embedding_type,
        layer_norm=False,
        scale_embeddings=config.scale_embedding,
        sinusoidal_layout="halves",
    )


class TransformerModel(PretrainedModel):
    """Encoder and decoder with one shared token table (transformers' ``MarianModel``)."""

    config_class = TransformerConfig
    base_model_prefix = "model"
    hf_architecture = "MarianModel"

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise Word2BertError(f"TransformerModel needs a TransformerConfig, got {type(config).__name__}")
        self.config = config
        self.encoder_embeddings = _embeddings(config)
        self.decoder_embeddings = _embeddings(config)
        self.decoder_embeddings.word_embeddings = self.encoder_embeddings.word_embeddings  # one joint table
        common = dict(hidden_size=config.d_model, activation=config.activation_function,
                      hidden_dropout=config.dropout, attention_dropout=config.attention_dropout,
                      activation_dropout=config.activation_dropout, layer_norm_eps=config.layer_norm_eps,
                      pre_layer_norm=config.pre_layer_norm)
        self.encoder = TransformerEncoder(config.encoder_layers, num_heads=config.encoder_attention_heads,
                                          intermediate_size=config.encoder_ffn_dim, **common)
        self.decoder = TransformerDecoder(config.decoder_layers, num_heads=config.decoder_attention_heads,
                                          intermediate_size=config.decoder_ffn_dim, **common)
        self.apply(init_seq2seq_weights)

    @classmethod
    def hf_key_map(cls, config: TransformerConfig) -> KeyMap:
        return KeyMap(seq2seq_rules(config), prefix="model.")

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder_embeddings.word_embeddings

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        """The encoder output ("memory") of the source ``input_ids`` (B, S); ``attention_mask`` (B, S) 1 = token."""
        if token_type_ids is None and self.config.source_language_id is not None:
            token_type_ids = torch.full_like(input_ids, self.config.source_language_id)
        embedded = self.encoder_embeddings(input_ids, token_type_ids, position_ids=position_ids)
        last, hidden_states = self.encoder(embedded, attention_mask, output_hidden_states=output_hidden_states)
        return EncoderOutput(last, hidden_states)

    def packed_forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        decoder_input_ids: torch.Tensor,
        target_keep: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        decoder_token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, Packing, Packing]:
        """Teacher-forced training pass over the real tokens only (:mod:`word2bert.nn.packed`).

        ``target_keep`` (B, T) marks the target positions to compute, a prefix of each row (right
        padding). Returns ``(decoder_rows (N_t, d), memory_rows (N_s, d), target_packing,
        source_packing)``; the rows equal those of :meth:`forward` at the real positions."""
        if token_type_ids is None and self.config.source_language_id is not None:
            token_type_ids = torch.full_like(input_ids, self.config.source_language_id)
        if decoder_token_type_ids is None and self.config.target_language_id is not None:
            decoder_token_type_ids = torch.full_like(decoder_input_ids, self.config.target_language_id)
        source_keep = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        source, target = Packing(source_keep), Packing(target_keep)
        memory = source.pack(self.encoder_embeddings(input_ids, token_type_ids))
        self_mask = build_attention_mask(attention_mask, input_ids.shape[1])
        for depth in range(self.encoder.num_layers):
            memory = packed_encoder_layer(self.encoder.layer_at(depth), memory, source, self_mask)
        if self.encoder.final_norm is not None:
            memory = self.encoder.final_norm(memory)
        hidden = target.pack(self.decoder_embeddings(decoder_input_ids, decoder_token_type_ids))
        memory_mask = build_memory_mask(attention_mask, input_ids.shape[1])
        for layer in self.decoder.layers:
            hidden = packed_decoder_layer(layer, hidden, target, memory, source, memory_mask)
        if self.decoder.final_norm is not None:
            hidden = self.decoder.final_norm(hidden)
        return hidden, memory, target, source

    def decode(
        self,
        decoder_input_ids: torch.Tensor,
        memory: torch.Tensor | None,
        memory_mask: torch.Tensor | None = None,
        *,
        decoder_attention_mask: torch.Tensor | None = None,
        decoder_token_type_ids: torch.Tensor | None = None,
        decoder_position_ids: torch.Tensor | None = None,
        cache: KeyValueCache | None = None,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        """Decoder states (B, T, d) of ``decoder_input_ids`` (B, T) against ``memory`` (B, S, d).

        With a ``cache`` the tokens continue the cached ones (positions ``cache.length ..``; the memory
        may be None after the first call); the cache is updated in place and returned as ``state``.
        ``decoder_position_ids`` override the positions (MASS keeps a fragment's original positions).
        """
        past = 0 if cache is None else cache.length
        if decoder_token_type_ids is None and self.config.target_language_id is not None:
            decoder_token_type_ids = torch.full_like(decoder_input_ids, self.config.target_language_id)
        embedded = self.decoder_embeddings(decoder_input_ids, decoder_token_type_ids,
                                           position_ids=decoder_position_ids, past_length=past)
        last, hidden_states = self.decoder(embedded, memory, decoder_attention_mask, memory_mask, causal=True,
                                           cache=cache, output_hidden_states=output_hidden_states)
        return EncoderOutput(last, hidden_states, state=cache)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        *,
        token_type_ids: torch.Tensor | None = None,
        decoder_token_type_ids: torch.Tensor | None = None,
        decoder_position_ids: torch.Tensor | None = None,
        memory_attention_mask: torch.Tensor | None = None,
        encoder_output: EncoderOutput | None = None,
        state: KeyValueCache | None = None,
    ) -> Seq2SeqOutput:
        """Encode the source (unless ``encoder_output`` is given) and decode ``decoder_input_ids``.

        ``memory_attention_mask`` (B, S): the encoder positions the decoder may attend to (default:
        the source's ``attention_mask``; MASS also hides the masked positions)."""
        if decoder_input_ids is None:
            raise Word2BertError("the encoder-decoder needs decoder_input_ids (or labels to shift)")
        if encoder_output is None:
            if input_ids is None:
                raise Word2BertError("give input_ids (the source) or encoder_output")
            encoder_output = self.encode(input_ids, attention_mask, token_type_ids)
        memory_mask = attention_mask if memory_attention_mask is None else memory_attention_mask
        decoded = self.decode(decoder_input_ids, encoder_output.last_hidden_state, memory_mask,
                              decoder_attention_mask=decoder_attention_mask,
                              decoder_token_type_ids=decoder_token_type_ids,
                              decoder_position_ids=decoder_position_ids, cache=state)
        return Seq2SeqOutput(decoded.last_hidden_state, encoder_output, decoded.state)


class TransformerForTranslation(PretrainedModel):
    """The encoder-decoder with its tied output layer and label-smoothed loss (transformers' ``MarianMTModel``).

    ``label_smoothing`` is the epsilon of the training loss (the paper's 0.1); the reported ``nll``
    statistic is the unsmoothed negative log-likelihood (its exp is the perplexity).
    """

    config_class = TransformerConfig
    base_model_prefix = "model"
    hf_architecture = "MarianMTModel"

    def __init__(self, config: TransformerConfig, label_smoothing: float = 0.1):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise Word2BertError(f"parameter label_smoothing={label_smoothing!r} must be in [0, 1)")
        self.config = config
        self.label_smoothing = float(label_smoothing)
        #: teacher forcing from labels alone runs on the real tokens only (TransformerModel.packed_forward)
        self.packed = True
        self.model = TransformerModel(config)
        self.register_buffer("final_logits_bias", torch.zeros(1, config.vocab_size))
        self.loss_workspace = Workspace()  # the fused output layer's logits buffer, kept between steps

    @classmethod
    def hf_key_map(cls, config: TransformerConfig) -> KeyMap:
        rules = [rule.with_prefixes("model.", "model.") for rule in seq2seq_rules(config)]
        rules.append(rename("final_logits_bias", "final_logits_bias", required=False))
        return KeyMap(rules, prefix="model.")

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def output_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """logits = h E^T + b with E the shared token table (E pre-packed when decoding: nn.linear)."""
        return linear(hidden, self.model.get_input_embeddings().weight, self.final_logits_bias[0])

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        token_type_ids: torch.Tensor | None = None,
        decoder_token_type_ids: torch.Tensor | None = None,
        decoder_position_ids: torch.Tensor | None = None,
        memory_attention_mask: torch.Tensor | None = None,
        encoder_output: EncoderOutput | None = None,
        state: KeyValueCache | None = None,
    ) -> Seq2SeqOutput:
        """Teacher-forced decoding; with ``labels`` (B, T) (-100 = no label) the loss and statistics.

        Without ``decoder_input_ids`` they are the labels shifted right behind the start token. The
        vocabulary projection runs only at labelled positions when labels are given (``logits`` is then
        (N, V) over those positions in row-major order)."""
        if decoder_input_ids is None:
            if labels is None:
                raise Word2BertError("give decoder_input_ids or labels")
            packable = (self.packed and input_ids is not None and decoder_attention_mask is None
                        and decoder_position_ids is None and memory_attention_mask is None
                        and encoder_output is None and state is None and labels.dim() == 2)
            decoder_input_ids = shift_tokens_right(labels, self.config.pad_token_id,
                                                   self.config.decoder_start_token_id)
            if packable:
                labelled = labels != IGNORE_INDEX
                if not bool((labelled[:, 1:] & ~labelled[:, :-1]).any()):  # labels right-padded
                    hidden, memory, target, source = self.model.packed_forward(
                        input_ids, attention_mask, decoder_input_ids, labelled, token_type_ids, decoder_token_type_ids)
                    output = Seq2SeqOutput(target.unpack(hidden), EncoderOutput(source.unpack(memory)))
                    return self._add_loss(output, hidden, labels[labelled])
        output = self.model(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask,
                            token_type_ids=token_type_ids, decoder_token_type_ids=decoder_token_type_ids,
                            decoder_position_ids=decoder_position_ids, memory_attention_mask=memory_attention_mask,
                            encoder_output=encoder_output, state=state)
        hidden = output.last_hidden_state
        if labels is None:
            output.logits = self.output_logits(hidden)
            return output
        if tuple(labels.shape) != tuple(hidden.shape[:2]):
            raise Word2BertError(f"labels shape {tuple(labels.shape)} != decoder input shape {tuple(hidden.shape[:2])}")
        labelled = labels != IGNORE_INDEX
        return self._add_loss(output, hidden[labelled], labels[labelled])

    def _add_loss(self, output: Seq2SeqOutput, hidden: torch.Tensor, targets: torch.Tensor) -> Seq2SeqOutput:
        """Loss and statistics of the labelled rows ``hidden`` (N, d) with labels ``targets`` (N,); the
        logits too, except when a gradient is being recorded: the output layer and the loss then run as
        one fused step (:func:`~word2bert.nn.linear_cross_entropy.linear_cross_entropy`) that does not keep them."""
        epsilon = self.label_smoothing if self.training else 0.0
        weight = self.model.get_input_embeddings().weight
        if torch.is_grad_enabled():
            logits = None
            bias = self.final_logits_bias[0]
            bias = bias if bool(bias.any()) else None  # Marian's is zeros: no pass adding it to every row
            loss_sum, nll_sum, correct = linear_cross_entropy(hidden, weight, targets, bias, label_smoothing=epsilon,
                                                              with_nll=True, workspace=self.loss_workspace)
        else:
            logits = self.output_logits(hidden)
            loss_sum, nll_sum, correct = label_smoothed_nll(logits, targets, epsilon)
        count = targets.numel()
        output.logits = logits
        output.loss = loss_sum / max(count, 1)
        output.stats = {"nll": (nll_sum, count), "accuracy": (correct, count)}
        return output

    @torch.no_grad()
    def translate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        token_type_ids: torch.Tensor | None = None,
        decoder_token_type_id: int | None = None,
        num_beams: int = 4,
        max_new_tokens: int = 64,
        length_penalty: float = 0.6,
        **options,
    ):
        """Decode the sources ``input_ids`` (B, S): beam search (GNMT length penalty) or greedy with
        ``num_beams=1``; the encoder runs once, the decoder one token at a time over its cache.

        Returns :class:`word2bert.models.generation.GenerationOutput` whose ``new_tokens`` (B, N) are
        the translations (ending in the end-of-sentence id, then padding). ``decoder_token_type_id``
        sets the target language embedding when the model has them.
        """
        from word2bert.models.generation import generate

        was_training = self.training
        self.eval()
        try:
            memory = self.model.encode(input_ids, attention_mask, token_type_ids).last_hidden_state
            cache = KeyValueCache()

            def step(new_ids: torch.Tensor, cache: KeyValueCache):
                first = not cache.has_memory  # later steps read the memory's keys/values from the cache
                types = None if decoder_token_type_id is None else torch.full_like(new_ids, decoder_token_type_id)
                decoded = self.model.decode(new_ids, memory if first else None, attention_mask if first else None,
                                            decoder_token_type_ids=types, cache=cache)
                return self.output_logits(decoded.last_hidden_state[:, -1]), cache

            start = torch.full((input_ids.shape[0], 1), self.config.decoder_start_token_id, dtype=torch.long,
                               device=input_ids.device)
            return generate(step, start, cache, max_new_tokens=max_new_tokens, num_beams=num_beams,
                            length_penalty=length_penalty, stop_token_ids=[self.config.eos_token_id],
                            pad_token_id=self.config.pad_token_id, **options)
        finally:
            self.train(was_training)


def seq2seq_rules(config: TransformerConfig) -> list:
    """Key rules of :class:`TransformerModel` <-> transformers' ``MarianModel``."""
    rules = [rename("encoder_embeddings.word_embeddings.weight", "shared.weight",
                    aliases=["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"])]
    if config.position_embedding_type == "learned":
        rules += [rename("encoder_embeddings.position_embeddings.weight", "encoder.embed_positions.weight"),
                  rename("decoder_embeddings.position_embeddings.weight", "decoder.embed_positions.weight")]
    if config.type_vocab_size:  # ours only (language embeddings)
        rules += [rename("encoder_embeddings.token_type_embeddings.weight", "encoder.embed_types.weight"),
                  rename("decoder_embeddings.token_type_embeddings.weight", "decoder.embed_types.weight")]
    for side, count in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        for i in range(count):
            mine, theirs = f"{side}.layers.{i}.", f"{side}.layers.{i}."
            self_attention = "attention" if side == "encoder" else "self_attention"
            self_norm = "attention_norm" if side == "encoder" else "self_attention_norm"
            for param in ("weight", "bias"):
                rules += [
                    concat(f"{mine}{self_attention}.qkv_proj.{param}",
                           [f"{theirs}self_attn.{part}_proj.{param}" for part in ("q", "k", "v")]),
                    rename(f"{mine}{self_attention}.out_proj.{param}", f"{theirs}self_attn.out_proj.{param}"),
                    rename(f"{mine}{self_norm}.{param}", f"{theirs}self_attn_layer_norm.{param}"),
                    rename(f"{mine}feed_forward.dense_in.{param}", f"{theirs}fc1.{param}"),
                    rename(f"{mine}feed_forward.dense_out.{param}", f"{theirs}fc2.{param}"),
                    rename(f"{mine}feed_forward_norm.{param}", f"{theirs}final_layer_norm.{param}"),
                ]
                if side == "decoder":
                    rules += [
                        rename(f"{mine}cross_attention.query_proj.{param}", f"{theirs}encoder_attn.q_proj.{param}"),
                        concat(f"{mine}cross_attention.kv_proj.{param}",
                               [f"{theirs}encoder_attn.{part}_proj.{param}" for part in ("k", "v")]),
                        rename(f"{mine}cross_attention.out_proj.{param}", f"{theirs}encoder_attn.out_proj.{param}"),
                        rename(f"{mine}cross_attention_norm.{param}", f"{theirs}encoder_attn_layer_norm.{param}"),
                    ]
    if config.pre_layer_norm:  # ours only
        for side in ("encoder", "decoder"):
            rules += [rename(f"{side}.final_norm.{param}", f"{side}.layer_norm.{param}") for param in ("weight", "bias")]
    return rules


__all__ = [
    "Seq2SeqOutput",
    "TransformerConfig",
    "TransformerForTranslation",
    "TransformerModel",
    "label_smoothed_nll",
    "seq2seq_rules",
    "shift_tokens_right",
]
