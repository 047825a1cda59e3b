"""CoVe (McCann et al. 2017, "Learned in Translation: Contextualized Word Vectors").

An attentional sequence-to-sequence translation model whose encoder, the **MT-LSTM**, reads frozen
GloVe vectors; once trained, the encoder alone turns a sentence into context vectors and a
downstream model reads ``[GloVe(w); CoVe(w)]``.

- **Encoder** (:class:`CoveEncoder`): ``CoVe(w) = MT-LSTM(GloVe(w))``, two bidirectional LSTM layers;
  the GloVe table is never trained (unknown words and padding are zero vectors).
- **Decoder** (:class:`AttentionalDecoder`, the paper's section 3, OpenNMT's global attention with
  input feeding): with ``H`` the encoder's top layer,

      h_t = LSTM([z_{t-1}; h~_{t-1}], h_{t-1})           (z: the previous target word's embedding)
      alpha_t = softmax(H (W_1 h_t + b_1))                (over the source positions)
      h~_t = tanh(W_2 [H^T alpha_t; h_t] + b_2)
      p(w_t | ...) = softmax(W_out h~_t + b_out)

  started from the encoder's final states (forward and backward concatenated, per layer).
- :class:`BiLSTMMaxPoolClassifier`: the downstream comparison's classifier, a bidirectional LSTM over
  (frozen) features, max-pooled over time, then a linear layer.

A model directory holds ``config.json``, ``model.safetensors`` (GloVe table included), and the
vocabularies ``source_vocab.txt`` (the GloVe words, one per embedding row) and ``target_vocab.txt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save, atomic_write, open_text
from word2bert.models.base import EncoderOutput, PretrainedConfig

IGNORE_INDEX = -100
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SOURCE_SPECIALS = (PAD, UNK)            # ids 0 and 1 of the source vocabulary: zero vectors
TARGET_SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0..3 of the target vocabulary
CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
SOURCE_VOCAB_NAME, TARGET_VOCAB_NAME = "source_vocab.txt", "target_vocab.txt"

_TOKEN = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_", re.UNICODE)


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Words (letters), numbers and single punctuation marks: ``"Can't open 'x.txt'"`` ->
    ``can ' t open ' x . txt '``."""
    return _TOKEN.findall(text.lower() if lowercase else text)


@dataclass
class CoveConfig(PretrainedConfig):
    """MT-LSTM sizes; the paper's are GloVe 300, hidden 300 per direction, 2 layers, decoder 2 layers."""

    model_type: ClassVar[str] = "cove"

    source_vocab_size: int = 2
    embedding_dim: int = 300
    hidden_size: int = 300
    num_layers: int = 2
    dropout: float = 0.2
    target_vocab_size: int = 0            # 0: an encoder without a decoder
    target_embedding_dim: int = 300
    def validate(self) -> None:
        for name in ("source_vocab_size", "embedding_dim", "hidden_size", "num_layers", "target_embedding_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise Word2BertError(f"CoveConfig.{name}={value!r} must be a positive integer")
        if not isinstance(self.target_vocab_size, int) or self.target_vocab_size < 0 or self.target_vocab_size in (
                1, 2, 3, 4):
            raise Word2BertError(f"CoveConfig.target_vocab_size={self.target_vocab_size!r} must be 0 (no decoder) "
                                 "or more than the 4 special tokens")
        if not 0.0 <= self.dropout < 1.0:
            raise Word2BertError(f"CoveConfig.dropout={self.dropout!r} must be in [0, 1)")

    @property
    def cove_dim(self) -> int:
        return 2 * self.hidden_size

    @property
    def feature_dim(self) -> int:
        """Width of ``[GloVe(w); CoVe(w)]``."""
        return self.embedding_dim + self.cove_dim



@dataclass
class Seq2SeqOutput:
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    stats: dict = field(default_factory=dict)
    state: object = None


def _lengths(attention_mask: torch.Tensor) -> torch.Tensor:
    lengths = attention_mask.long().sum(dim=1)
    return lengths.clamp_min(1).cpu()  # an empty row runs one (padding) step


class CoveEncoder(nn.Module):
    """The MT-LSTM: frozen GloVe rows -> 2-layer bidirectional LSTM. ``forward`` follows the encoder interface:
    :class:`EncoderOutput` with ``last_hidden_state`` (B, T, 2H) = CoVe, ``hidden_states`` = (GloVe, layer 1,
    layer 2, ...) and ``state`` the final ``(h, c)`` of every layer and direction, (2L, B, H) as ``nn.LSTM``
    orders them (the decoder starts from it; the encoder itself takes no state)."""

    config_class = CoveConfig
    base_model_prefix = "encoder"
    is_encoder = True

    def __init__(self, config: CoveConfig, vectors: np.ndarray | None = None):
        super().__init__()
        self.config = config
        self.embeddings = nn.Embedding(config.source_vocab_size, config.embedding_dim, padding_idx=0)
        if vectors is not None:
            if vectors.shape != (config.source_vocab_size, config.embedding_dim):
                raise Word2BertError(f"GloVe table of shape {vectors.shape} does not fit the config "
                                     f"({config.source_vocab_size}, {config.embedding_dim})")
            with torch.no_grad():
                self.embeddings.weight.copy_(torch.from_numpy(np.asarray(vectors, dtype=np.float32)))
        self.embeddings.weight.requires_grad_(False)   # GloVe stays fixed (the paper's setting)
        self.layers = nn.ModuleList(
            nn.LSTM(config.embedding_dim if i == 0 else config.cove_dim, config.hidden_size, batch_first=True,
                    bidirectional=True)
            for i in range(config.num_layers))
        self.dropout = nn.Dropout(config.dropout)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, token_type_ids=None, *,
                position_ids=None, state=None, read_positions=None, output_hidden_states: bool = False):
        if token_type_ids is not None or position_ids is not None or state is not None:
            raise Word2BertError("the CoVe encoder takes no token_type_ids, position_ids or state")
        if attention_mask is None:
            attention_mask = input_ids != 0
        attention_mask = attention_mask.bool()
        lengths = _lengths(attention_mask)
        glove = self.embeddings(input_ids)
        x, layers, hs, cs = glove, [glove], [], []
        for i, lstm in enumerate(self.layers):
            packed = pack_padded_sequence(self.dropout(x) if i > 0 else x, lengths, batch_first=True,
                                          enforce_sorted=False)
            out, (h, c) = lstm(packed)
            x, _ = pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
            layers.append(x)
            hs.append(h)
            cs.append(c)
        top = x
        if read_positions is not None:
            top = top.gather(1, read_positions.long().unsqueeze(-1).expand(-1, -1, top.shape[-1]))
        return EncoderOutput(top, tuple(layers) if output_hidden_states else None, None,
                             (torch.cat(hs), torch.cat(cs)))

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 include_glove: bool = True) -> torch.Tensor:
        """``[GloVe(w); CoVe(w)]`` (B, T, E + 2H) (or CoVe alone), zero at padding."""
        if attention_mask is None:
            attention_mask = input_ids != 0
        output = self(input_ids, attention_mask)
        parts = [self.embeddings(input_ids), output.last_hidden_state] if include_glove else [output.last_hidden_state]
        return torch.cat(parts, dim=-1) * attention_mask.unsqueeze(-1).to(output.last_hidden_state.dtype)


class AttentionalDecoder(nn.Module):
    """A stacked LSTM decoder with global attention and input feeding (see the module docstring)."""

    def __init__(self, config: CoveConfig):
        super().__init__()
        hidden = config.cove_dim  # so that it starts from [forward; backward] final encoder states
        self.hidden_size = hidden
        self.embeddings = nn.Embedding(config.target_vocab_size, config.target_embedding_dim, padding_idx=0)
        self.cells = nn.ModuleList(
            nn.LSTMCell(config.target_embedding_dim + hidden if i == 0 else hidden, hidden)
            for i in range(config.num_layers))
        self.attention_in = nn.Linear(hidden, config.cove_dim)                    # W_1, b_1
        self.attention_out = nn.Linear(config.cove_dim + hidden, hidden)          # W_2, b_2
        self.output = nn.Linear(hidden, config.target_vocab_size)                 # W_out, b_out
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, decoder_input_ids: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
                state: tuple[list, list]) -> torch.Tensor:
        """Teacher-forced pass: (B, T_tgt) previous words -> attentional states h~ (B, T_tgt, hidden)."""
        hs, cs = state
        hs, cs = list(hs), list(cs)
        batch = decoder_input_ids.shape[0]
        feed = memory.new_zeros(batch, self.hidden_size)
        embedded = self.dropout(self.embeddings(decoder_input_ids))
        blocked = ~memory_mask.bool()
        outputs = []
        for t in range(decoder_input_ids.shape[1]):
            x = torch.cat([embedded[:, t], feed], dim=-1)
            for i, cell in enumerate(self.cells):
                hs[i], cs[i] = cell(x, (hs[i], cs[i]))
                x = self.dropout(hs[i]) if i + 1 < len(self.cells) else hs[i]
            scores = torch.bmm(memory, self.attention_in(x).unsqueeze(-1)).squeeze(-1)   # H (W_1 h_t + b_1)
            alpha = torch.softmax(scores.masked_fill(blocked, float("-inf")), dim=-1)
            context = torch.bmm(alpha.unsqueeze(1), memory).squeeze(1)                  # H^T alpha_t
            feed = torch.tanh(self.attention_out(torch.cat([context, x], dim=-1)))
            outputs.append(feed)
        return self.dropout(torch.stack(outputs, dim=1))


class CoveForTranslation(nn.Module):
    """MT-LSTM encoder + attentional decoder, trained with teacher forcing on sentence pairs.

    ``forward(input_ids, attention_mask, decoder_input_ids, labels)``: ``decoder_input_ids`` are
    ``<s> y_1 .. y_n``, ``labels`` ``y_1 .. y_n </s>`` (-100 at padding);
    ``loss = mean over target words of -log p(y_t | y_<t, x)``; stats ``nll`` and ``accuracy``.
    """

    def __init__(self, config: CoveConfig, vectors: np.ndarray | None = None,
                 source_words: list[str] | None = None, target_words: list[str] | None = None):
        super().__init__()
        if config.target_vocab_size < 1:
            raise Word2BertError("CoveForTranslation needs target_vocab_size > 0")
        self.config = config
        self.encoder = CoveEncoder(config, vectors)
        self.decoder = AttentionalDecoder(config)
        self.source_words = source_words
        self.target_words = target_words

    def bridge(self, encoder_state) -> tuple[list, list]:
        """Decoder layer l starts from ``[h_fwd_l; h_bwd_l]`` and ``[c_fwd_l; c_bwd_l]`` of encoder layer l."""
        h, c = encoder_state  # (2L, B, H): layer 0 forward, layer 0 backward, layer 1 forward, ...
        hs = [torch.cat([h[2 * i], h[2 * i + 1]], dim=-1) for i in range(self.config.num_layers)]
        cs = [torch.cat([c[2 * i], c[2 * i + 1]], dim=-1) for i in range(self.config.num_layers)]
        return hs, cs

    def forward(self, input_ids, attention_mask=None, decoder_input_ids=None, labels=None, state=None,
                **unused) -> Seq2SeqOutput:
        if decoder_input_ids is None:
            raise Word2BertError("CoveForTranslation needs decoder_input_ids (the shifted target)")
        if attention_mask is None:
            attention_mask = input_ids != 0
        encoded = self.encoder(input_ids, attention_mask)
        attentional = self.decoder(decoder_input_ids, encoded.last_hidden_state, attention_mask,
                                   self.bridge(encoded.state))
        logits = self.decoder.output(attentional)
        output = Seq2SeqOutput(logits=logits)
        if labels is not None:
            flat_labels = labels.reshape(-1)
            flat_logits = logits.reshape(-1, logits.shape[-1])
            output.loss = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX)
            with torch.no_grad():
                keep = flat_labels != IGNORE_INDEX
                count = int(keep.sum())
                output.stats = {"nll": (float(output.loss) * count, count),
                                "accuracy": (int((flat_logits[keep].argmax(-1) == flat_labels[keep]).sum()), count)}
        return output

    # ---------------------------------------------------------------- files
    def save_pretrained(self, directory) -> None:
        save_cove(self, directory)


# --------------------------------------------------------------------------- vocabularies and data

def build_target_vocabulary(sentences, max_size: int = 10000, min_count: int = 2) -> list[str]:
    """The special tokens, then the most frequent target tokens (count >= ``min_count``), at most ``max_size`` in all."""
    from collections import Counter

    counts = Counter(token for sentence in sentences for token in sentence)
    words = [w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if c >= min_count
             and w not in TARGET_SPECIALS]
    return list(TARGET_SPECIALS) + words[:max(0, max_size - len(TARGET_SPECIALS))]


def glove_table(vectors) -> tuple[list[str], np.ndarray]:
    """The source vocabulary and embedding table from GloVe ``KeyedVectors``: ``<pad>``, ``<unk>`` (zeros), then GloVe."""
    words = list(SOURCE_SPECIALS) + list(vectors.index_to_key)
    table = np.zeros((len(words), vectors.vector_size), dtype=np.float32)
    table[len(SOURCE_SPECIALS):] = vectors.vectors
    return words, table


def ids_of(tokens, index: dict, unk: int = 1) -> np.ndarray:
    return np.fromiter((index.get(token, unk) for token in tokens), dtype=np.int64, count=len(tokens))


def read_pairs(path, max_pairs: int | None = None) -> list[tuple[str, str]]:
    """``source<TAB>target`` lines (plain/.gz/.bz2/.xz); a line without a tab is an error naming it."""
    pairs = []
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise Word2BertError(f"{path}, line {number}: expected 'source<TAB>target', got {len(parts)} field(s)")
            pairs.append((parts[0], parts[1]))
            if max_pairs and len(pairs) >= max_pairs:
                break
    if not pairs:
        raise Word2BertError(f"{path}: no sentence pairs")
    return pairs


class TranslationPairs:
    """Tokenised, numbered pairs: item ``i`` is ``{"input_ids", "decoder_input_ids", "labels"}``."""

    def __init__(self, pairs, source_index: dict, target_index: dict, max_length: int = 60):
        self.items = []
        bos, eos = target_index[BOS], target_index[EOS]
        for source, target in pairs:
            src = ids_of(tokenize(source)[:max_length], source_index)
            tgt = ids_of(tokenize(target)[:max_length], target_index)
            if len(src) == 0 or len(tgt) == 0:
                continue
            self.items.append({"input_ids": src, "decoder_input_ids": np.concatenate([[bos], tgt]),
                               "labels": np.concatenate([tgt, [eos]])})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i) -> dict:
        return self.items[i]

    def lengths(self) -> np.ndarray:
        return np.array([len(item["input_ids"]) + len(item["labels"]) for item in self.items])


def pad_to_tensor(arrays, fill: int) -> torch.Tensor:
    width = max(1, max(len(a) for a in arrays))
    out = np.full((len(arrays), width), fill, dtype=np.int64)
    for row, array in enumerate(arrays):
        out[row, :len(array)] = array
    return torch.from_numpy(out)


def collate_pairs(items, rng=None) -> dict:
    """Pad a list of :class:`TranslationPairs` items into the model's keyword arguments."""
    input_ids = pad_to_tensor([item["input_ids"] for item in items], 0)
    return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long(),
            "decoder_input_ids": pad_to_tensor([item["decoder_input_ids"] for item in items], 0),
            "labels": pad_to_tensor([item["labels"] for item in items], IGNORE_INDEX)}


# --------------------------------------------------------------------------- files

def save_cove(model, directory) -> None:
    """``config.json``, ``model.safetensors`` and the vocabularies, each written atomically."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    atomic_save(directory / WEIGHTS_NAME, lambda name: save_file(state, name))
    model.config.save(directory / CONFIG_NAME, architecture=type(model).__name__)
    for name, words in ((SOURCE_VOCAB_NAME, model.source_words), (TARGET_VOCAB_NAME, model.target_words)):
        if words is not None:
            with atomic_write(directory / name, "w", encoding="utf-8") as handle:
                handle.write("\n".join(words) + "\n")


def _read_words(path) -> list[str]:
    if not path.exists():
        raise Word2BertError(f"CoVe vocabulary not found: {path}")
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def load_cove(directory, encoder_only: bool = False):
    """A :class:`CoveForTranslation` (or, with ``encoder_only``, its :class:`CoveEncoder` with
    ``source_words``) from a directory written by :func:`save_cove`."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.exists():
        raise Word2BertError(f"not a CoVe model directory (no {CONFIG_NAME}): {directory}")
    config = CoveConfig.from_json_file(config_path)
    if not (directory / WEIGHTS_NAME).exists():
        raise Word2BertError(f"CoVe weights not found: {directory / WEIGHTS_NAME}")
    state = load_file(str(directory / WEIGHTS_NAME))
    source_words = _read_words(directory / SOURCE_VOCAB_NAME)
    if len(source_words) != config.source_vocab_size:
        raise Word2BertError(f"{directory / SOURCE_VOCAB_NAME}: {len(source_words)} words but the config says "
                             f"source_vocab_size={config.source_vocab_size}")
    if encoder_only:
        model = CoveEncoder(config)
        prefix = "encoder."
        state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
        model.source_words = source_words
    else:
        model = CoveForTranslation(config, source_words=source_words,
                                   target_words=_read_words(directory / TARGET_VOCAB_NAME))
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise Word2BertError(f"{directory / WEIGHTS_NAME} does not fit {config_path}: {error}") from None
    (model if encoder_only else model.encoder).embeddings.weight.requires_grad_(False)
    return model


@torch.no_grad()
def encode(encoder: CoveEncoder, sentences, batch_size: int = 64, include_glove: bool = True):
    """``[GloVe(w); CoVe(w)]`` per token of each sentence (strings are tokenised with :func:`tokenize`);
    returns (token vectors per sentence, sentence vectors = their mean, the tokens)."""
    index = {word: i for i, word in enumerate(encoder.source_words)}
    tokenized = [tokenize(s) if isinstance(s, str) else list(s) for s in sentences]
    was_training = encoder.training
    encoder.eval()
    token_vectors, sentence_vectors = [], []
    try:
        for start in range(0, len(tokenized), batch_size):
            chunk = tokenized[start:start + batch_size]
            ids = pad_to_tensor([ids_of(t, index) for t in chunk], 0)
            lengths = torch.tensor([len(t) for t in chunk])
            mask = torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
            features = encoder.features(ids, mask, include_glove)
            for row, tokens in enumerate(chunk):
                vectors = features[row, :len(tokens)].numpy()
                token_vectors.append(vectors)
                sentence_vectors.append(vectors.mean(0) if len(tokens) else np.zeros(features.shape[-1], np.float32))
    finally:
        encoder.train(was_training)
    return token_vectors, np.stack(sentence_vectors), tokenized


# --------------------------------------------------------------------------- downstream classifier

class BiLSTMMaxPoolClassifier(nn.Module):
    """``logits = W max_t BiLSTM(features)_t + b`` over (frozen) token features.

    ``featurizer(input_ids, attention_mask) -> (B, T, F)`` gives the features (GloVe alone, or
    ``[GloVe; CoVe]``); it is not trained. The max runs over the real tokens only.
    """

    def __init__(self, featurizer: nn.Module, feature_dim: int, num_labels: int, hidden_size: int = 128,
                 dropout: float = 0.2):
        super().__init__()
        self.featurizer = featurizer
        for parameter in featurizer.parameters():
            parameter.requires_grad_(False)
        self.lstm = nn.LSTM(feature_dim, hidden_size, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden_size, num_labels)

    def train(self, mode: bool = True):
        super().train(mode)
        self.featurizer.eval()   # fixed features: no dropout inside them
        return self

    def forward(self, input_ids, attention_mask=None, labels=None, **unused) -> Seq2SeqOutput:
        if attention_mask is None:
            attention_mask = input_ids != 0
        mask = attention_mask.bool()
        with torch.no_grad():
            features = self.featurizer(input_ids, mask)
        packed = pack_padded_sequence(self.dropout(features), _lengths(mask), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        hidden, _ = pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
        pooled = hidden.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values
        logits = self.classifier(self.dropout(pooled))
        output = Seq2SeqOutput(logits=logits)
        if labels is not None:
            output.loss = F.cross_entropy(logits, labels)
            with torch.no_grad():
                output.stats = {"nll": (float(output.loss) * len(labels), len(labels)),
                                "accuracy": (int((logits.argmax(-1) == labels).sum()), len(labels))}
        return output


class GloveFeatures(nn.Module):
    """The GloVe-only featurizer: ``GloVe(w)`` from a :class:`CoveEncoder`'s (frozen) table."""

    def __init__(self, encoder: CoveEncoder):
        super().__init__()
        self.embeddings = encoder.embeddings

    def forward(self, input_ids, attention_mask):
        return self.embeddings(input_ids) * attention_mask.unsqueeze(-1).to(self.embeddings.weight.dtype)


class CoveFeatures(nn.Module):
    """The ``[GloVe(w); CoVe(w)]`` featurizer of a trained :class:`CoveEncoder`."""

    def __init__(self, encoder: CoveEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):
        return self.encoder.features(input_ids, attention_mask)
