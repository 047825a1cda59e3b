"""SentencePiece-style unigram tokeniser (Kudo 2018), ALBERT's vocabulary, on Hugging Face ``tokenizers``.

A unigram language model over sub-word pieces: a word is split into the pieces ``x_1 .. x_k``
that maximise ``sum_i log p(x_i)`` (Viterbi); training starts from a large seed vocabulary and
repeatedly drops the pieces whose removal lowers the corpus likelihood least (EM, keeping
``shrinking_factor`` of the pieces per round) until ``vocab_size`` remain. Spaces are kept as
the meta symbol ``▁`` at the start of a word's first piece (SentencePiece's convention), so
text is recovered exactly and a piece starting with ``▁`` starts a word.

The pipeline is ALBERT's (the ``AlbertTokenizer`` of transformers, which reads the
``tokenizer.json`` we save): replace `````` and ``''`` by ``"``, NFKD and strip accents unless
``keep_accents``, lower-case if ``lowercase``, split on whitespace, prefix ``▁``; pairs are
``[CLS] A [SEP] B [SEP]`` with segment ids 0 / 1. The special tokens are ALBERT's
``<pad> <unk> [CLS] [SEP] [MASK]`` at ids 0-4.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write, open_text
from word2bert.tokenizers.base import SentencePairTokenizer, require_tokenizers

SPECIAL_TOKENS = ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")
WORD_START = "\u2581"  # ▁, SentencePiece's meta symbol for a space


def _tokenizers():
    return require_tokenizers("the unigram tokeniser")


def _normalizer(lowercase: bool, keep_accents: bool):
    from tokenizers import normalizers

    steps = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
    if not keep_accents:
        steps += [normalizers.NFKD(), normalizers.StripAccents()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _pre_tokenizer():
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                    pre_tokenizers.Metaspace(replacement=WORD_START, prepend_scheme="always")])


class UnigramTokenizer(SentencePairTokenizer):
    """A unigram (SentencePiece-style) tokeniser: ``pieces`` is a list of ``(piece, log probability)``.

    Build one with :meth:`train`, :meth:`from_file` (a ``tokenizer.json``) or
    :meth:`from_pretrained` (a directory holding ``tokenizer.json``, e.g. an ALBERT model).
    The encoding methods are those of :class:`~word2bert.corpus.wordpiece.WordPieceTokenizer`.
    """

    def __init__(self, pieces: Sequence[tuple[str, float]], lowercase: bool = True, keep_accents: bool = False,
                 unk_token: str = "<unk>", pad_token: str = "<pad>", cls_token: str = "[CLS]",
                 sep_token: str = "[SEP]", mask_token: str = "[MASK]"):
        tk = _tokenizers()
        from tokenizers import decoders, processors
        from tokenizers.models import Unigram

        pieces = [(str(piece), float(score)) for piece, score in pieces]
        vocab = {piece: i for i, (piece, _) in enumerate(pieces)}
        if len(vocab) != len(pieces):
            raise Word2BertError("the unigram vocabulary has duplicate pieces")
        missing = [t for t in (unk_token, cls_token, sep_token) if t not in vocab]
        if missing:
            raise Word2BertError(f"the unigram vocabulary lacks the special token(s) {', '.join(missing)}")
        self.lowercase = bool(lowercase)
        self.keep_accents = bool(keep_accents)
        self.tokens = {"unk_token": unk_token, "pad_token": pad_token, "cls_token": cls_token,
                       "sep_token": sep_token, "mask_token": mask_token}
        tokenizer = tk.Tokenizer(Unigram(pieces, unk_id=vocab[unk_token], byte_fallback=False))
        tokenizer.add_special_tokens([t for t in (pad_token, unk_token, cls_token, sep_token, mask_token)
                                      if t in vocab])
        tokenizer.normalizer = _normalizer(self.lowercase, self.keep_accents)
        tokenizer.pre_tokenizer = _pre_tokenizer()
        tokenizer.decoder = decoders.Metaspace(replacement=WORD_START, prepend_scheme="always")
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls_token}:0 $A:0 {sep_token}:0", pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
            special_tokens=[(cls_token, vocab[cls_token]), (sep_token, vocab[sep_token])])
        self._tokenizer = tokenizer
        self._pieces = pieces
        self._vocab = vocab
        self.unk_id = vocab[unk_token]
        self.cls_id = vocab[cls_token]
        self.sep_id = vocab[sep_token]
        self.pad_id = vocab.get(pad_token, 0)
        self.mask_id = vocab.get(mask_token)
        self.special_ids = sorted({vocab[t] for t in self.tokens.values() if t in vocab})

    # ------------------------------------------------------------------ construction
    @classmethod
    def train(cls, files=None, vocab_size: int = 8000, lowercase: bool = True, keep_accents: bool = False,
              max_piece_length: int = 16, shrinking_factor: float = 0.75, n_sub_iterations: int = 2,
              texts: Iterable[str] | None = None, special_tokens: Sequence[str] = SPECIAL_TOKENS) -> UnigramTokenizer:
        """Learn a unigram vocabulary of ``vocab_size`` pieces (special tokens included, first).

        ``files`` is one path or a list (plain or .gz/.bz2/.xz); ``texts`` an iterable of strings
        instead. ``max_piece_length``, ``shrinking_factor`` and ``n_sub_iterations`` are
        SentencePiece's (``tokenizers``' ``UnigramTrainer``) settings.
        """
        tk = _tokenizers()
        from tokenizers import trainers
        from tokenizers.models import Unigram

        if (files is None) == (texts is None):
            raise Word2BertError("give text files or texts= to train the unigram vocabulary on (one of them)")
        special_tokens = list(special_tokens)
        if vocab_size <= len(special_tokens):
            raise Word2BertError(f"parameter vocab_size={vocab_size} must be > {len(special_tokens)}")
        if not 0 < shrinking_factor < 1:
            raise Word2BertError(f"parameter shrinking_factor={shrinking_factor} must be in (0, 1)")
        if max_piece_length < 1:
            raise Word2BertError(f"parameter max_piece_length={max_piece_length} must be >= 1")
        if files is not None:
            if isinstance(files, (str, Path)):
                files = [files]
            files = [Path(f) for f in files]
            if not files:
                raise Word2BertError("give at least one text file to train the unigram vocabulary on")
            for path in files:
                if not path.is_file():
                    raise Word2BertError(f"file not found: {path}")

            def lines():
                for path in files:
                    with open_text(path) as handle:
                        yield from handle
            texts = lines()
        tokenizer = tk.Tokenizer(Unigram())
        tokenizer.normalizer = _normalizer(lowercase, keep_accents)
        tokenizer.pre_tokenizer = _pre_tokenizer()
        unk_token = special_tokens[1] if len(special_tokens) > 1 else "<unk>"
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=special_tokens, unk_token=unk_token,
            max_piece_length=max_piece_length, shrinking_factor=shrinking_factor,
            n_sub_iterations=n_sub_iterations, show_progress=False)
        tokenizer.train_from_iterator(texts, trainer=trainer)
        state = json.loads(tokenizer.to_str())
        pieces = [(piece, score) for piece, score in state["model"]["vocab"]]
        if len(pieces) <= len(special_tokens):
            raise Word2BertError("no text to learn a unigram vocabulary from")
        return cls(pieces, lowercase=lowercase, keep_accents=keep_accents, unk_token=unk_token)

    @classmethod
    def from_file(cls, path) -> UnigramTokenizer:
        """Load a ``tokenizer.json`` holding a Unigram model (ours, or an ALBERT/T5-style one)."""
        path = Path(path)
        if not path.is_file():
            raise Word2BertError(f"unigram tokenizer file not found: {path}")
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            model = state["model"]
            if model.get("type") != "Unigram":
                raise Word2BertError(f"{path} holds a {model.get('type')} model, not a Unigram one")
            pieces = [(piece, score) for piece, score in model["vocab"]]
            unk_token = pieces[model["unk_id"]][0] if model.get("unk_id") is not None else "<unk>"
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise Word2BertError(f"cannot read the unigram tokenizer {path}: {exc}") from None
        options = cls._normalizer_options(state.get("normalizer"))
        config_path = path.with_name("tokenizer_config.json")
        if config_path.is_file():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise Word2BertError(f"cannot read {config_path}: {exc}") from None
            options["lowercase"] = bool(config.get("do_lower_case", options["lowercase"]))
            options["keep_accents"] = bool(config.get("keep_accents", options["keep_accents"]))
        try:
            return cls(pieces, unk_token=unk_token, **options)
        except Word2BertError as exc:
            raise Word2BertError(f"{path}: {exc}") from None

    @staticmethod
    def _normalizer_options(normalizer) -> dict:
        """``lowercase`` / ``keep_accents`` read back from a saved normaliser."""
        steps = []
        if isinstance(normalizer, dict):
            steps = normalizer.get("normalizers", [normalizer])
        types = {step.get("type") for step in steps if isinstance(step, dict)}
        return {"lowercase": "Lowercase" in types, "keep_accents": "StripAccents" not in types}

    @classmethod
    def from_pretrained(cls, directory) -> UnigramTokenizer:
        """Load ``directory/tokenizer.json`` (``tokenizer_config.json`` gives ``do_lower_case``/``keep_accents``)."""
        directory = Path(directory)
        if directory.is_file():
            return cls.from_file(directory)
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise Word2BertError(f"no tokenizer.json in {directory} (missing unigram vocabulary)")
        return cls.from_file(path)

    def save(self, directory) -> Path:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` (atomically); transformers'
        ``AlbertTokenizer.from_pretrained(directory)`` reads them. Returns the ``tokenizer.json`` path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "tokenizer.json"
        self._configure(None, False, False)
        with atomic_write(path, "w", encoding="utf-8") as handle:
            handle.write(self._tokenizer.to_str())
        config = {"tokenizer_class": "AlbertTokenizer", "do_lower_case": self.lowercase,
                  "keep_accents": self.keep_accents, "remove_space": True,
                  "bos_token": self.tokens["cls_token"], "eos_token": self.tokens["sep_token"],
                  **self.tokens}
        with atomic_write(directory / "tokenizer_config.json", "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2)
        return path

    # ------------------------------------------------------------------ vocabulary
    @property
    def pad_token(self) -> str:
        return self.tokens["pad_token"]

    @property
    def pieces(self) -> list[tuple[str, float]]:
        """``(piece, log probability)`` in id order."""
        return list(self._pieces)

    def id_to_token(self, index: int) -> str | None:
        index = int(index)
        return self._pieces[index][0] if 0 <= index < len(self._pieces) else None

    def word_start_table(self) -> np.ndarray:
        """Bool per id: the piece begins a word (starts with ``▁``) or is a special token.

        Whole-word masking reads word boundaries from it: a word is a ``▁`` piece and the
        pieces without ``▁`` that follow it.
        """
        table = np.array([piece.startswith(WORD_START) for piece, _ in self._pieces], dtype=bool)
        table[self.special_ids] = True
        return table

    def __repr__(self) -> str:
        return f"UnigramTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"
