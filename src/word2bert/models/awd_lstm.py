"""AWD-LSTM (Merity, Keskar & Socher 2018, "Regularizing and Optimizing LSTM Language Models").

A stack of LSTM layers over word embeddings, regularised five ways (``nn/recurrent.py``):

* DropConnect on every layer's hidden-to-hidden matrix (``weight_dropout``, one mask per batch);
* embedding dropout: whole words removed from the embedding matrix (``embedding_dropout``);
* locked (variational) dropout, one mask across time, on the embedded input (``input_dropout``),
  between layers (``hidden_dropout``) and on the last layer's output (``output_dropout``);
* the output layer tied to the embeddings (the last layer's size is then the embedding size);
* activation regularisation ``AR = alpha * mean((m * h_t^L)^2)`` on the dropped output of the last
  layer and temporal activation regularisation ``TAR = beta * mean(h_t^L - h_{t-1}^L)^2`` on its
  undropped output (alpha 2, beta 1).

The training recipe (variable-length BPTT around 70 with the learning rate scaled by length / 70,
NT-ASGD: SGD that turns into averaged SGD when the validation loss stops improving) lives in
:mod:`word2bert.tasks.ulmfit`, on the shared Trainer.

Defaults are the repository's PTB settings: 400-dimensional embeddings, 3 layers of 1150 units,
dropouts 0.1 (embedding), 0.4 (input), 0.25 (hidden), 0.4 (output), 0.5 (weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from word2bert.errors import Word2BertError
from word2bert.interop.huggingface import KeyMap, rename
from word2bert.models.base import EncoderOutput, PretrainedConfig, PretrainedModel
from word2bert.nn.linear_cross_entropy import Workspace, linear_cross_entropy
from word2bert.nn.recurrent import EmbeddingDropout, LockedDropout, WeightDropLSTM

IGNORE_INDEX = -100

LayerState = tuple[torch.Tensor, torch.Tensor]


@dataclass
class AWDLSTMConfig(PretrainedConfig):
    """AWD-LSTM hyper-parameters (the paper's repository's names in the comments).

    ``hidden_size`` (read-only) is the width of what the encoder outputs: the last layer's, which is
    ``embedding_size`` when the output layer is tied to the embeddings, else ``lstm_size``.
    """

    model_type = "awd_lstm"
    vocab_size: int = 10000
    embedding_size: int = 400        # emsize
    lstm_size: int = 1150            # nhid: the width of every layer but the last when tied
    num_layers: int = 3              # nlayers
    embedding_dropout: float = 0.1   # dropoute
    input_dropout: float = 0.4       # dropouti
    hidden_dropout: float = 0.25     # dropouth
    output_dropout: float = 0.4      # dropout
    weight_dropout: float = 0.5      # wdrop
    tie_weights: bool = True
    ar_alpha: float = 2.0            # alpha
    tar_beta: float = 1.0            # beta
    pad_token_id: int | None = None

    def validate(self) -> None:
        self.require_positive_ints("vocab_size", "embedding_size", "lstm_size", "num_layers")
        self.require_probabilities("embedding_dropout", "input_dropout", "hidden_dropout", "output_dropout",
                                   "weight_dropout")
        for name in ("ar_alpha", "tar_beta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise Word2BertError(f"AWDLSTMConfig.{name}={value!r} must be >= 0")

    def layer_sizes(self) -> list[tuple[int, int]]:
        """(input, hidden) of every layer; the last one outputs the embedding size when tied."""
        sizes = []
        for layer in range(self.num_layers):
            inputs = self.embedding_size if layer == 0 else self.lstm_size
            last = layer == self.num_layers - 1
            sizes.append((inputs, self.embedding_size if last and self.tie_weights else self.lstm_size))
        return sizes

    @property
    def hidden_size(self) -> int:
        return self.layer_sizes()[-1][1]

    @property
    def num_hidden_layers(self) -> int:
        return self.num_layers

    @property
    def max_position_embeddings(self) -> int:
        return 1_000_000                 # a recurrent model has no length limit


def encoder_rules(config: AWDLSTMConfig, prefix: str = "") -> list:
    """The encoder's weights keep their names (AWD-LSTM has no transformers class)."""
    names = ["embeddings.weight"]
    for layer in range(config.num_layers):
        names += [f"layers.{layer}.{name}" for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    return [rename(prefix + name, prefix + name) for name in names]


def discriminative_groups(layer_groups: list[list[nn.Parameter]], learning_rate: float, factor: float = 2.6,
                          weight_decay: float = 0.0) -> list[dict]:
    """ULMFiT's discriminative fine-tuning: group ``g`` of ``G`` (0 = bottom) gets
    ``lr_g = lr / factor^(G - 1 - g)``, so each layer down learns ``factor`` times slower (2.6)."""
    if not factor > 0:
        raise Word2BertError(f"parameter factor={factor!r} must be > 0")
    top = len(layer_groups) - 1
    return [{"params": list(group), "lr": learning_rate / factor ** (top - g), "weight_decay": weight_decay}
            for g, group in enumerate(layer_groups) if len(group)]


@dataclass
class LMOutput:
    """``loss`` = mean NLL + AR + TAR in training (mean NLL in evaluation); ``stats`` holds the
    summable ``{"nll": (sum of -ln P, count)}``; ``logits`` only when asked for."""

    loss: torch.Tensor | None
    stats: dict
    state: tuple | None
    logits: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


class AWDLSTMModel(PretrainedModel):
    """The AWD-LSTM encoder: embedding (word dropout) -> locked dropout -> L weight-dropped LSTMs
    with locked dropout between them. Follows the encoder interface (``state`` carried by the caller)."""

    config_class = AWDLSTMConfig
    base_model_prefix = "awd_lstm"
    hf_architecture = "AWDLSTMModel"
    is_encoder = True

    @classmethod
    def hf_key_map(cls, config: AWDLSTMConfig) -> KeyMap:
        return KeyMap(encoder_rules(config), prefix="awd_lstm.")

    def __init__(self, config: AWDLSTMConfig):
        super().__init__()
        if not isinstance(config, AWDLSTMConfig):
            raise Word2BertError(f"AWDLSTMModel needs an AWDLSTMConfig, got {type(config).__name__}")
        self.config = config
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size)
        self.embedding_dropout = EmbeddingDropout(config.embedding_dropout)
        # the layers run time-major (no transposing copies inside the LSTM kernel)
        self.input_dropout = LockedDropout(config.input_dropout, batch_first=False)
        self.layers = nn.ModuleList([WeightDropLSTM(i, h, config.weight_dropout, batch_first=False)
                                     for i, h in config.layer_sizes()])
        self.hidden_dropout = LockedDropout(config.hidden_dropout, batch_first=False)
        nn.init.uniform_(self.embeddings.weight, -0.1, 0.1)    # the repository's initrange

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def initial_state(self, batch_size: int, device=None) -> tuple[LayerState, ...]:
        """Zeros for every layer: ``((h, c), ...)`` with h, c of shape (batch, layer size)."""
        device = device or self.embeddings.weight.device
        return tuple((torch.zeros(batch_size, h, device=device), torch.zeros(batch_size, h, device=device))
                     for _, h in self.config.layer_sizes())

    def forward(self, input_ids: torch.Tensor, attention_mask=None, token_type_ids=None, *, position_ids=None,
                state=None, read_positions=None, output_hidden_states: bool = False) -> EncoderOutput:
        """``input_ids`` (B, T). ``state``: the previous window's (h, c) per layer, or None (zeros).

        The LSTM reads left to right, so right padding never changes the outputs at real tokens
        (``attention_mask`` is accepted and not needed). ``read_positions`` (B, Q) gathers rows
        of the last layer. The outputs are (B, T, d) views of time-major tensors.
        """
        output, new_state, hidden_states = self.forward_time_major(input_ids, state, output_hidden_states)
        x = output.transpose(0, 1)
        if read_positions is not None:
            x = x.gather(1, read_positions[..., None].expand(-1, -1, x.size(-1)))
        if hidden_states is not None:
            hidden_states = tuple(h.transpose(0, 1) for h in hidden_states)
        return EncoderOutput(x, hidden_states, None, new_state)

    def forward_time_major(self, input_ids: torch.Tensor, state=None, output_hidden_states: bool = False):
        """The stack on ``input_ids`` (B, T): ``(last layer's output (T, B, d), new state, hidden states or None)``."""
        if input_ids.dim() != 2:
            raise Word2BertError(f"AWD-LSTM reads (batch, time) ids, got shape {tuple(input_ids.shape)}")
        batch = input_ids.size(0)
        if state is None or state[0][0].size(0) != batch:
            state = self.initial_state(batch, input_ids.device)
        x = self.embedding_dropout(input_ids.t(), self.embeddings.weight, self.config.pad_token_id)
        x = self.input_dropout(x)
        hidden_states = [x] if output_hidden_states else None
        new_state = []
        for index, layer in enumerate(self.layers):
            x, layer_state = layer(x, state[index])
            new_state.append(layer_state)
            if hidden_states is not None:
                hidden_states.append(x)
            if index < len(self.layers) - 1:
                x = self.hidden_dropout(x)
        return x, tuple(new_state), hidden_states


class AWDLSTMForLanguageModeling(PretrainedModel):
    """AWD-LSTM language model: encoder -> locked output dropout -> (tied) softmax over the vocabulary.

    ``forward(input_ids, labels, state)``: ``labels[b, t]`` is the word after ``input_ids[b, t]``
    (-100: no prediction). In training the loss adds AR and TAR.
    """

    config_class = AWDLSTMConfig
    base_model_prefix = "awd_lstm"
    hf_architecture = "AWDLSTMForLanguageModeling"

    @classmethod
    def hf_key_map(cls, config: AWDLSTMConfig) -> KeyMap:
        head = [rename("decoder_bias", "decoder_bias")]
        if not config.tie_weights:
            head.append(rename("decoder_weight", "decoder_weight"))
        return KeyMap(encoder_rules(config, "awd_lstm.") + head, prefix="awd_lstm.")

    def __init__(self, config: AWDLSTMConfig):
        super().__init__()
        if not isinstance(config, AWDLSTMConfig):
            raise Word2BertError(f"AWDLSTMForLanguageModeling needs an AWDLSTMConfig, got {type(config).__name__}")
        self.config = config
        self.awd_lstm = AWDLSTMModel(config)
        self.output_dropout = LockedDropout(config.output_dropout, batch_first=False)
        if config.tie_weights:
            self.decoder_weight = None
        else:
            self.decoder_weight = nn.Parameter(torch.empty(config.vocab_size, config.hidden_size))
            nn.init.uniform_(self.decoder_weight, -0.1, 0.1)
        self.decoder_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.discriminative_factor = 1.0
        self.last_window_length = 0
        self.loss_workspace = Workspace()  # the loss's logits buffer, kept between training steps

    @property
    def output_weight(self) -> torch.Tensor:
        return self.awd_lstm.embeddings.weight if self.decoder_weight is None else self.decoder_weight

    def get_input_embeddings(self) -> nn.Embedding:
        return self.awd_lstm.embeddings

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters from the bottom up: embeddings (+ decoder), each LSTM layer (for
        discriminative learning rates: group g gets ``lr / 2.6^(top - g)``)."""
        encoder = self.awd_lstm
        bottom = [encoder.embeddings.weight, self.decoder_bias]
        if self.decoder_weight is not None:
            bottom.append(self.decoder_weight)
        return [bottom] + [list(layer.parameters()) for layer in encoder.layers]

    def configure_optimizers(self, args) -> list[dict]:
        """Optimizer groups from the bottom up with rates ``lr / discriminative_factor^(top - g)``
        (``discriminative_factor`` 1: one rate, the AWD-LSTM recipe; 2.6: ULMFiT's fine-tuning)."""
        return discriminative_groups(self.layer_groups(), args.learning_rate, self.discriminative_factor,
                                     args.weight_decay)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None, state=None,
                attention_mask=None, return_logits: bool = False) -> LMOutput:
        self.last_window_length = input_ids.size(1)     # read by the per-batch learning-rate scaling
        raw, state, _ = self.awd_lstm.forward_time_major(input_ids, state)    # (T, B, d)
        dropped = self.output_dropout(raw)
        logits = None
        if return_logits:
            logits = torch.nn.functional.linear(dropped, self.output_weight, self.decoder_bias).transpose(0, 1)
        loss, stats = None, {}
        if labels is not None:
            targets = labels.t()
            nll, _ = linear_cross_entropy(dropped, self.output_weight, targets, self.decoder_bias,
                                          workspace=self.loss_workspace if self.training else None,
                                          ignore_index=IGNORE_INDEX)
            count_value = int((targets != IGNORE_INDEX).sum())
            loss = nll / max(count_value, 1)
            stats = {"nll": (nll.detach(), count_value)}
            if self.training:
                if self.config.ar_alpha:
                    loss = loss + self.config.ar_alpha * dropped.pow(2).mean()
                if self.config.tar_beta and raw.size(0) > 1:
                    loss = loss + self.config.tar_beta * (raw[1:] - raw[:-1]).pow(2).mean()
        return LMOutput(loss, stats, state, logits, raw.transpose(0, 1))


@torch.no_grad()
def stream_perplexity(model: AWDLSTMForLanguageModeling, stream: torch.Tensor, batch_size: int = 10,
                      bptt: int = 70) -> float:
    """Perplexity over a token stream read as ``batch_size`` contiguous rows, ``bptt`` steps at a
    time with the state carried (the repository's ``evaluate``): ``exp(sum NLL / predictions)``."""
    stream = torch.as_tensor(stream, dtype=torch.long)
    rows = (len(stream) - 1) // batch_size
    if rows < 1:
        raise Word2BertError(f"the stream of {len(stream)} tokens is shorter than one step of {batch_size} rows")
    inputs = stream[:rows * batch_size].view(batch_size, rows)
    targets = stream[1:rows * batch_size + 1].view(batch_size, rows)
    was_training = model.training
    model.eval()
    device = model.output_weight.device
    state, nll, count = None, 0.0, 0
    for start in range(0, rows, bptt):
        output = model(inputs[:, start:start + bptt].to(device), labels=targets[:, start:start + bptt].to(device),
                       state=state)
        state = output.state
        nll += float(output.stats["nll"][0])
        count += output.stats["nll"][1]
    model.train(was_training)
    return math.exp(nll / count)
