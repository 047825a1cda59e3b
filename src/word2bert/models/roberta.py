"""RoBERTa (Liu et al. 2019): BERT's encoder trained differently.

What changes from BERT, and where it lives:

* **byte-level BPE** vocabulary (GPT-2's; :mod:`word2bert.tokenizers.bpe`), specials ``<s> <pad> </s>
  <unk> <mask>``; a sequence is ``<s> X </s>``;
* **dynamic masking**: a new mask each time a sequence is used (``MaskedLM(dynamic=True)``);
* **no next-sentence prediction**; inputs are packed with :func:`pack_sentences`:
  FULL-SENTENCES (complete sentences read contiguously, across document boundaries, with an extra
  separator between documents) or DOC-SENTENCES (the same within one document);
* **positions offset by the padding index** (fairseq's ``make_positions``): real tokens take
  positions ``pad + 1, pad + 2, ...`` and padding takes ``pad``, so the table has
  ``max_seq_length + pad + 1`` rows (514 for 512 tokens with ``<pad>`` = 1);
* no segment embeddings to speak of (``type_vocab_size=1``).

:class:`RobertaModel` is BERT's encoder with those positions; :class:`RobertaForMaskedLM` adds the
masked-LM objective (transformers' ``RobertaLMHead``: dense, GELU, LayerNorm, decoder tied to the
embeddings). Both read and write transformers' checkpoints; keys are BERT's under ``roberta.``, and
the head is ``lm_head.{dense,layer_norm,bias}``. :class:`RobertaTokenizer` is the byte-level BPE
with RoBERTa's specials and ``<s> A </s></s> B </s>`` pairs (transformers' ``RobertaTokenizer``
reads what it saves).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write
from word2bert.interop.huggingface import KeyMap, rename
from word2bert.models.base import EncoderOutput
from word2bert.models.bert import BertConfig, BertModel, bert_encoder_rules
from word2bert.models.pretraining import PreTrainingModel
from word2bert.nn.embeddings import TransformerEmbeddings
from word2bert.nn.transformer import init_transformer_weights
from word2bert.objectives.mlm import MaskedLM, MaskedLMHead, MaskedLMObjective
from word2bert.tokenizers.base import SentencePairTokenizer

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


# ---------------------------------------------------------------------------------- model
@dataclass
class RobertaConfig(BertConfig):
    """RoBERTa's hyper-parameters with transformers' names and roberta-base's defaults."""

    model_type = "roberta"

    vocab_size: int = 50265
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2

    def validate(self) -> None:
        super().validate()
        if self.position_embedding_type != "learned":
            raise Word2BertError("RobertaConfig.position_embedding_type must be 'absolute' (learned)")
        if self.max_position_embeddings <= self.pad_token_id + 1:
            raise Word2BertError(f"RobertaConfig.max_position_embeddings={self.max_position_embeddings} leaves no "
                                 f"position after the padding index {self.pad_token_id}")

    def hf_incompatibilities(self) -> list[str]:
        return ["pre_layer_norm"] if self.pre_layer_norm else []


class RobertaModel(BertModel):
    """BERT's encoder with RoBERTa's positions: real tokens at ``pad + 1, pad + 2, ...``, padding at ``pad``.

    ``add_pooling_layer=False`` leaves out the pooler (transformers' ``RobertaForMaskedLM`` has none).
    """

    config_class = RobertaConfig
    base_model_prefix = "roberta"
    hf_architecture = "RobertaModel"
    is_encoder = True

    def __init__(self, config: RobertaConfig, add_pooling_layer: bool = True):
        if not isinstance(config, RobertaConfig):
            raise Word2BertError(f"RobertaModel needs a RobertaConfig, got {type(config).__name__}")
        super().__init__(config)
        self.embeddings = TransformerEmbeddings(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size,
            max_position_embeddings=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
            layer_norm_eps=config.layer_norm_eps, dropout=config.hidden_dropout_prob,
            pad_token_id=config.pad_token_id, padding_position=config.pad_token_id)
        self.embeddings.apply(lambda module: init_transformer_weights(module, config.initializer_range))
        if not add_pooling_layer:
            self.pooler = None

    @classmethod
    def hf_key_map(cls, config: RobertaConfig) -> KeyMap:
        return KeyMap(bert_encoder_rules(config), prefix="roberta.")

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, *, position_ids=None, state=None,
                read_positions=None, output_hidden_states=False) -> EncoderOutput:
        """As :meth:`BertModel.forward`; ``pooled`` is None without a pooler."""
        if self.pooler is not None:
            return super().forward(input_ids, attention_mask, token_type_ids, position_ids=position_ids,
                                   state=state, read_positions=read_positions,
                                   output_hidden_states=output_hidden_states)
        if state is not None:
            raise Word2BertError("RoBERTa carries no state between batches")
        embedded = self.embeddings(input_ids, token_type_ids, position_ids=position_ids)
        last_hidden, all_hidden = self.encoder(embedded, attention_mask, causal=False,
                                               output_hidden_states=output_hidden_states,
                                               last_layer_positions=read_positions)
        return EncoderOutput(last_hidden, all_hidden, None)


class RobertaForMaskedLM(PreTrainingModel):
    """RoBERTa's pre-training model: the encoder (no pooler) + the masked-LM objective, no NSP.

    ``masking`` (a :class:`MaskedLM`, dynamic for RoBERTa; its ``units`` may be any selector of
    :mod:`word2bert.objectives.units`) is needed only to build batches with :meth:`collator`.
    """

    config_class = RobertaConfig
    base_model_prefix = "roberta"
    hf_architecture = "RobertaForMaskedLM"

    def __init__(self, config: RobertaConfig, masking: MaskedLM | None = None):
        head = MaskedLMHead(config.hidden_size, config.vocab_size, config.hidden_act, config.layer_norm_eps)
        head.apply(lambda module: init_transformer_weights(module, config.initializer_range))
        super().__init__(config, RobertaModel(config, add_pooling_layer=False),
                         {"mlm": MaskedLMObjective(head, masking)})

    @classmethod
    def hf_key_map(cls, config: RobertaConfig) -> KeyMap:
        head = "objectives.mlm.head."
        rules = [rename(f"{head}dense.weight", "lm_head.dense.weight", required=False),
                 rename(f"{head}dense.bias", "lm_head.dense.bias", required=False),
                 rename(f"{head}layer_norm.weight", "lm_head.layer_norm.weight", required=False),
                 rename(f"{head}layer_norm.bias", "lm_head.layer_norm.bias", required=False),
                 rename(f"{head}bias", "lm_head.bias", required=False, aliases=["lm_head.decoder.bias"])]
        encoder = [rule for rule in bert_encoder_rules(config, "roberta.", "roberta.") if ".pooler." not in rule.ours]
        return KeyMap(encoder + rules, prefix="roberta.")

    @property
    def mlm_head(self) -> MaskedLMHead:
        return self.objectives["mlm"].head


# ---------------------------------------------------------------------------------- tokenizer
class RobertaTokenizer(SentencePairTokenizer):
    """GPT-2's byte-level BPE with RoBERTa's specials: ``<s> X </s>``, pairs ``<s> A </s></s> B </s>``.

    Build one with :meth:`train` (specials ``<s> <pad> </s> <unk> <mask>`` take ids 0-4) or
    :meth:`from_pretrained` (``vocab.json`` + ``merges.txt``, e.g. roberta-base's). Segment ids are
    all 0 (RoBERTa has one segment embedding). The encoding methods are those of
    :class:`~word2bert.corpus.wordpiece.WordPieceTokenizer`.
    """

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]], add_prefix_space: bool = False):
        from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
        from tokenizers.models import BPE

        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise Word2BertError(f"the RoBERTa vocabulary lacks the special token(s) {', '.join(missing)}")
        try:
            model = BPE(vocab=dict(vocab), merges=[tuple(m) for m in merges], dropout=None,
                        continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False)
        except Exception as error:  # the Rust side rejects merges whose parts are not in the vocabulary
            raise Word2BertError(f"inconsistent BPE vocabulary and merges: {error}") from None
        tokenizer = Tokenizer(model)
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
        tokenizer.post_processor = processors.RobertaProcessing(
            ("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]), trim_offsets=True, add_prefix_space=add_prefix_space)
        self._tokenizer = tokenizer
        self._vocab = dict(vocab)
        self._merges = [tuple(m) for m in merges]
        self.add_prefix_space = bool(add_prefix_space)
        self.cls_id, self.pad_id, self.sep_id, self.unk_id, self.mask_id = (vocab[t] for t in SPECIAL_TOKENS)
        self.bos_id, self.eos_id = self.cls_id, self.sep_id
        self.special_ids = sorted(vocab[t] for t in SPECIAL_TOKENS)

    @classmethod
    def train(cls, files, vocab_size: int = 8000, min_frequency: int = 2) -> RobertaTokenizer:
        """Learn a byte-level BPE vocabulary of ``vocab_size`` entries (RoBERTa's five specials first)."""
        from word2bert.tokenizers.bpe import ByteLevelBPETokenizer

        bpe = ByteLevelBPETokenizer.train(files, vocab_size=vocab_size, min_frequency=min_frequency,
                                          special_tokens=SPECIAL_TOKENS)
        return cls(bpe.get_vocab(), bpe.merges)

    @classmethod
    def from_pretrained(cls, directory) -> RobertaTokenizer:
        """Load ``vocab.json`` + ``merges.txt`` (``tokenizer_config.json`` may set ``add_prefix_space``)."""
        from word2bert.tokenizers.bpe import read_merges_file, read_vocab_file

        directory = Path(directory)
        vocab_path, merges_path = directory / "vocab.json", directory / "merges.txt"
        if not vocab_path.is_file() or not merges_path.is_file():
            raise Word2BertError(f"no vocab.json + merges.txt in {directory} (missing RoBERTa tokenizer)")
        add_prefix_space = False
        config_path = directory / "tokenizer_config.json"
        if config_path.is_file():
            try:
                add_prefix_space = bool(json.loads(config_path.read_text(encoding="utf-8")).get("add_prefix_space",
                                                                                                  False))
            except (OSError, ValueError) as error:
                raise Word2BertError(f"cannot read {config_path}: {error}") from None
        try:
            return cls(read_vocab_file(vocab_path), read_merges_file(merges_path), add_prefix_space)
        except Word2BertError as error:
            raise Word2BertError(f"{vocab_path}: {error}") from None

    def save(self, directory) -> Path:
        """Write ``vocab.json``, ``merges.txt`` and ``tokenizer_config.json`` (transformers'
        ``RobertaTokenizer`` reads them), each atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_write(directory / "vocab.json", "w", encoding="utf-8") as handle:
            json.dump(dict(sorted(self._vocab.items(), key=lambda item: item[1])), handle, ensure_ascii=False)
        with atomic_write(directory / "merges.txt", "w", encoding="utf-8") as handle:
            handle.write("#version: 0.2\n")
            handle.writelines(f"{first} {second}\n" for first, second in self._merges)
        config = {"tokenizer_class": "RobertaTokenizer", "add_prefix_space": self.add_prefix_space,
                  "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                  "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"}
        with atomic_write(directory / "tokenizer_config.json", "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2)
        return directory

    pad_token = "<pad>"
    token_type_ids = "zeros"  # RoBERTa has one segment embedding

    @property
    def merges(self) -> list[tuple[str, str]]:
        return list(self._merges)

    def word_start_table(self) -> np.ndarray:
        """Bool per id: the token begins with the encoded space ``Ġ`` (or is special)."""
        table = np.zeros(len(self._vocab), dtype=bool)
        for token, index in self._vocab.items():
            table[index] = token.startswith("\u0120")
        table[self.special_ids] = True
        return table

    def _pretokenized(self, words: list[str]) -> list[str]:
        """Each word after a space, as in running text (the first one too with ``add_prefix_space``)."""
        return [word if k == 0 or self.add_prefix_space else " " + word for k, word in enumerate(words)]

    def __repr__(self) -> str:
        return f"RobertaTokenizer(vocab_size={self.vocab_size})"


# ---------------------------------------------------------------------------------- packing
PACKINGS = ("full-sentences", "doc-sentences")


def pack_sentences(documents: Sequence[Sequence[np.ndarray]], max_tokens: int, packing: str = "full-sentences",
                   separator_id: int | None = None) -> list[np.ndarray]:
    """Pack documents (lists of sentences, int arrays) into blocks of at most ``max_tokens`` tokens.

    Sentences are read in order and kept whole: a sentence that does not fit in the current block
    starts the next one (a sentence longer than a block is cut into block-sized pieces).
    ``full-sentences`` lets a block run on into the next document with ``separator_id`` between
    the documents (RoBERTa's extra separator); ``doc-sentences`` ends the block with the document,
    so blocks near a document's end may be short. Specials are not added: a block becomes
    ``<s> block </s>``.
    """
    if packing not in PACKINGS:
        raise Word2BertError(f"parameter packing={packing!r} must be one of {', '.join(PACKINGS)}")
    if max_tokens < 1:
        raise Word2BertError(f"parameter max_tokens={max_tokens} must be >= 1")
    cross = packing == "full-sentences"
    if cross and separator_id is None:
        raise Word2BertError("full-sentences packing needs the separator id put between documents")
    separator = np.array([separator_id if separator_id is not None else 0], dtype=np.int32)
    blocks: list[np.ndarray] = []
    current: list[np.ndarray] = []
    size = 0

    def close():
        nonlocal current, size
        while current and current[-1] is separator:  # a block never ends with a document separator
            current.pop()
        if current:
            blocks.append(np.concatenate(current).astype(np.int32))
        current, size = [], 0

    for document in documents:
        sentences = [np.asarray(s, dtype=np.int32) for s in document if len(s)]
        if not sentences:
            continue
        if cross and current:
            if size + 1 >= max_tokens:
                close()
            else:
                current.append(separator)
                size += 1
        for sentence in sentences:
            pieces = [sentence[k:k + max_tokens] for k in range(0, len(sentence), max_tokens)]
            for piece in pieces:
                if size + len(piece) > max_tokens:
                    close()
                current.append(piece)
                size += len(piece)
        if not cross:
            close()
    close()
    if not blocks:
        raise Word2BertError("the corpus is empty: no sentences to pack into pre-training sequences")
    return blocks


def segments_dataset(blocks: Sequence[np.ndarray], cls_id: int, sep_id: int):
    """One-segment pre-training instances ``<s> block </s>`` in a
    :class:`~word2bert.objectives.pretraining.PretrainingDataset` (no second segment, no NSP label)."""
    from word2bert.objectives.pretraining import PretrainingDataset

    if not len(blocks):
        raise Word2BertError("no sequences to pre-train on")
    lengths = np.fromiter((len(b) + 2 for b in blocks), dtype=np.int64, count=len(blocks))
    offsets = np.zeros(len(blocks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.empty(offsets[-1], dtype=np.int32)
    tokens[offsets[:-1]] = cls_id
    tokens[offsets[1:] - 1] = sep_id
    for start, block in zip(offsets[:-1].tolist(), blocks):
        tokens[start + 1:start + 1 + len(block)] = block
    return PretrainingDataset(tokens, offsets, lengths.astype(np.int32), np.full(len(blocks), -100, dtype=np.int64))
