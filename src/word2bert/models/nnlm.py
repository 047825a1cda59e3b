"""The neural probabilistic language model of Bengio, Ducharme, Vincent & Jauvin (2003).

Word ``w_t`` is predicted from the ``n - 1`` words before it::

    x = [C(w_{t-1}); C(w_{t-2}); ...; C(w_{t-n+1})]          (concatenated word feature vectors)
    y = b + W x + U tanh(d + H x)
    P(w_t = i | w_{t-n+1} ... w_{t-1}) = softmax(y)_i

``C`` is the |V| x m embedding table, ``H`` (h x (n-1)m) and ``d`` the hidden layer, ``U`` (|V| x h)
and ``b`` the output layer, ``W`` (|V| x (n-1)m) the optional direct connections from the input
to the output. ``U`` and ``W`` are stored side by side as one matrix ``output.weight = [U W]``
over ``[tanh(d + H x); x]``, so the output is a single matrix product.

Contexts do not cross the end of a sentence (``<eos>`` fills the positions before a sentence's
first word), the same information the Kneser-Ney models in ``kneser_ney.py`` condition on.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from word2bert.corpus.lm_corpus import EOS, VOCAB_FILE, check_lm_vocabulary
from word2bert.corpus.vocab import Vocabulary
from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_save, atomic_write
from word2bert.interop.huggingface import read_json_object
from word2bert.nn.linear_cross_entropy import linear_cross_entropy
from word2bert.objectives.base import IGNORE_INDEX


@dataclass
class NNLMConfig:
    """Sizes of the model: ``order`` is n (the model reads n - 1 words), ``embedding_size`` m,
    ``hidden_size`` h (0: no hidden layer, ``y = b + W x``)."""

    model_type = "nnlm"
    vocab_size: int = 10000
    order: int = 5
    embedding_size: int = 100
    hidden_size: int = 200
    direct_connections: bool = True
    dropout: float = 0.0          # on x and on the hidden layer's output (not in Bengio et al.)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        for name, low in (("vocab_size", 2), ("order", 2), ("embedding_size", 1), ("hidden_size", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise Word2BertError(f"NNLMConfig.{name}={value!r} must be an integer >= {low}")
        if self.hidden_size == 0 and not self.direct_connections:
            raise Word2BertError("NNLMConfig: hidden_size=0 needs direct_connections=True (no path to the output)")
        if not 0.0 <= self.dropout < 1.0:
            raise Word2BertError(f"NNLMConfig.dropout={self.dropout!r} must be in [0, 1)")

    def to_dict(self) -> dict:
        return {"model_type": self.model_type, **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict) -> NNLMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known - {"model_type"})
        if unknown:
            raise Word2BertError(f"NNLMConfig has no field(s) {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class LMOutput:
    """``loss`` (mean NLL when labels are given), ``logits`` and summable ``stats``:
    ``{"nll": (sum of -ln P, count)}`` (perplexity = exp(sum / count))."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    stats: dict


class NNLM(nn.Module):
    """Bengio et al.'s feed-forward language model (see the module docstring)."""

    model_type = "nnlm"

    def __init__(self, config: NNLMConfig):
        super().__init__()
        self.config = config
        context = (config.order - 1) * config.embedding_size
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size)            # C
        self.hidden = nn.Linear(context, config.hidden_size) if config.hidden_size else None  # H, d
        features = config.hidden_size + (context if config.direct_connections else 0)
        self.output = nn.Linear(features, config.vocab_size)                                # [U W], b
        self.dropout = nn.Dropout(config.dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings uniform in [-0.1, 0.1]; weights uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)]; biases 0."""
        nn.init.uniform_(self.embeddings.weight, -0.1, 0.1)
        for layer in (self.hidden, self.output):
            if layer is not None:
                bound = 1.0 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.weight, -bound, bound)
                nn.init.zeros_(layer.bias)

    def features(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``[tanh(d + H x); x]`` (the parts that exist) for contexts ``input_ids`` (B, n-1)."""
        x = self.dropout(self.embeddings(input_ids).flatten(1))
        parts = []
        if self.hidden is not None:
            parts.append(self.dropout(torch.tanh(self.hidden(x))))
        if self.config.direct_connections:
            parts.append(x)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                return_logits: bool | None = None) -> LMOutput:
        """``input_ids`` (B, n-1): the previous words, oldest first; ``labels`` (B,): the next word.

        With labels the output layer and the softmax cross-entropy run fused and the logits are
        returned only with ``return_logits=True``; without labels the logits are returned.
        """
        if input_ids.dim() != 2 or input_ids.size(1) != self.config.order - 1:
            raise Word2BertError(f"NNLM of order {self.config.order} reads (batch, {self.config.order - 1}) "
                                 f"contexts, got {tuple(input_ids.shape)}")
        features = self.features(input_ids)
        if return_logits is None:
            return_logits = labels is None
        logits = self.output(features) if return_logits else None
        loss, stats = None, {}
        if labels is not None:
            nll, _ = linear_cross_entropy(features, self.output.weight, labels, self.output.bias,
                                          ignore_index=IGNORE_INDEX)
            count = int((labels != IGNORE_INDEX).sum())
            loss = nll / count
            stats = {"nll": (nll.detach(), count)}
        return LMOutput(loss, logits, stats)

    # ------------------------------------------------------------------ files
    def save_pretrained(self, directory, vocab: Vocabulary | None = None) -> None:
        """``config.json``, ``model.safetensors`` and (given) ``word_vocab.txt``, each written atomically."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_write(directory / "config.json", "w", encoding="utf-8") as handle:
            json.dump(self.config.to_dict(), handle, indent=2)
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        atomic_save(directory / "model.safetensors", lambda name: save_file(state, name))
        if vocab is not None:
            vocab.save(directory / VOCAB_FILE)

    @classmethod
    def from_pretrained(cls, directory) -> NNLM:
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path, weights_path = directory / "config.json", directory / "model.safetensors"
        for path in (config_path, weights_path):
            if not path.is_file():
                raise Word2BertError(f"{directory} is not an NNLM directory: {path.name} is missing")
        values = read_json_object(config_path)
        if values.get("model_type") != cls.model_type:
            raise Word2BertError(f"{config_path}: model_type {values.get('model_type')!r} is not 'nnlm'")
        model = cls(NNLMConfig.from_dict(values))
        try:
            model.load_state_dict(load_file(str(weights_path)))
        except RuntimeError as exc:
            raise Word2BertError(f"{weights_path} does not fit {config_path}: {exc}") from None
        return model


class NgramWindows:
    """Every position of a token stream as an (n-1 previous words, next word) example.

    ``stream`` holds the sentences, each ending with ``<eos>``; context positions before the
    start of the current sentence read ``<eos>``. Items are positions; :meth:`collate` gathers
    a batch of them with array indexing (the Trainer's ``collate_fn``).
    """

    def __init__(self, stream: np.ndarray, order: int, eos_id: int):
        stream = np.asarray(stream, dtype=np.int64)
        if len(stream) == 0:
            raise Word2BertError("the token stream is empty")
        self.stream, self.order, self.eos_id = stream, order, eos_id
        starts = np.flatnonzero(stream == eos_id) + 1               # the first word of each next sentence
        starts = starts[starts < len(stream)]
        sentence_start = np.zeros(len(stream), dtype=np.int64)
        sentence_start[starts] = starts
        self.sentence_start = np.maximum.accumulate(sentence_start)  # per position: where its sentence starts

    def __len__(self) -> int:
        return len(self.stream)

    def __getitem__(self, index: int) -> int:
        return index

    def contexts(self, positions: np.ndarray) -> np.ndarray:
        """(len(positions), n-1) previous words, oldest first, ``<eos>`` before the sentence start."""
        offsets = np.arange(-(self.order - 1), 0)
        where = positions[:, None] + offsets[None, :]
        inside = where >= self.sentence_start[positions][:, None]
        return np.where(inside, self.stream[np.maximum(where, 0)], self.eos_id)

    def collate(self, items, rng=None) -> dict:
        positions = np.asarray(items, dtype=np.int64)
        return {"input_ids": torch.from_numpy(self.contexts(positions)),
                "labels": torch.from_numpy(self.stream[positions])}


@torch.no_grad()
def perplexity(model: NNLM, windows: NgramWindows, batch_size: int = 2048) -> float:
    """``exp(-mean ln P(w_t | context))`` over every position of ``windows``."""
    was_training = model.training
    model.eval()
    nll, count = 0.0, 0
    for start in range(0, len(windows), batch_size):
        batch = windows.collate(np.arange(start, min(start + batch_size, len(windows))))
        output = model(**batch)
        nll += float(output.stats["nll"][0])
        count += output.stats["nll"][1]
    model.train(was_training)
    return math.exp(nll / count)


@dataclass
class NNLMResult:
    model: NNLM
    vocab: Vocabulary
    train_seconds: float
    history: list
    perplexities: dict


def train_nnlm(train_path, config: NNLMConfig | None = None, valid_path=None, test_path=None, output_dir=None,
               epochs: float = 1.0, batch_size: int = 256, learning_rate: float = 1e-3, weight_decay: float = 0.0,
               warmup: float = 0.0, seed: int = 0, max_steps: int | None = None, progress: bool | None = None,
               num_threads: int | None = None, vocab: Vocabulary | None = None, min_count: int = 1,
               max_vocab_size: int | None = None, save_steps: int = 0, resume: bool = False,
               callbacks=None, save_model: bool = True) -> NNLMResult:
    """Train an NNLM on a text file (one sentence per line) with the shared Trainer (AdamW, linear
    decay, examples in random order); report perplexity on ``valid_path`` / ``test_path``.

    With ``output_dir`` the vocabulary is written there first, a checkpoint every ``save_steps``
    steps and on interrupt (``resume=True`` continues from it), and the model at the end (unless
    ``save_model=False``: the caller saves ``result.model``, e.g. with a fallback location).
    """
    from word2bert.corpus.lm_corpus import build_lm_vocabulary, encode_lines, token_stream
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.checkpoint import find_checkpoint

    started = time.perf_counter()
    output_dir = Path(output_dir) if output_dir is not None else None
    if resume and (output_dir is None or find_checkpoint(output_dir) is None):
        raise Word2BertError(f"resume: no checkpoint in {output_dir}")
    if resume and (output_dir / VOCAB_FILE).is_file():
        vocab = Vocabulary.load(output_dir / VOCAB_FILE)
    elif vocab is None:
        vocab = build_lm_vocabulary(train_path, min_count=min_count, max_vocab_size=max_vocab_size)
    check_lm_vocabulary(vocab)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        vocab.save(output_dir / VOCAB_FILE)
    eos = vocab.index[EOS]
    config = config or NNLMConfig()
    config.vocab_size = len(vocab)
    config.validate()
    torch.manual_seed(seed)
    model = NNLM(config)
    windows = NgramWindows(token_stream(encode_lines(train_path, vocab), eos), config.order, eos)
    args = TrainingArguments(output_dir=str(output_dir) if output_dir is not None else None, batch_size=batch_size,
                             epochs=epochs, max_steps=max_steps, learning_rate=learning_rate,
                             weight_decay=weight_decay, warmup_steps=warmup, max_grad_norm=0.0, seed=seed,
                             progress=progress, num_threads=num_threads, logging_steps=50, save_steps=save_steps)
    trainer = Trainer(model, args, windows, windows.collate, callbacks=callbacks)
    trainer.train(resume_from=output_dir if resume else None)
    train_seconds = time.perf_counter() - started
    perplexities = {}
    for name, path in (("valid", valid_path), ("test", test_path)):
        if path is not None:
            held_out = NgramWindows(token_stream(encode_lines(path, vocab), eos), config.order, eos)
            perplexities[name] = perplexity(model, held_out)
    if output_dir is not None and save_model:
        model.save_pretrained(output_dir, vocab)
    return NNLMResult(model, vocab, train_seconds, trainer.state.history, perplexities)
