"""WordPiece vocabularies (BERT's tokeniser), trained and applied by Hugging Face ``tokenizers``.

The pipeline is BERT's ``BasicTokenizer`` + ``WordpieceTokenizer`` (google-research/bert
``tokenization.py``): clean control characters, put spaces around every CJK ideograph (so
Chinese is split one character per token), lower-case and strip accents (NFD, drop combining
marks), split on whitespace and punctuation, then greedy longest-match-first sub-words with
the ``##`` continuation prefix; a word with no match becomes ``[UNK]``. Pairs are encoded as
``[CLS] A [SEP] B [SEP]`` with segment (token type) ids 0 for ``[CLS] A [SEP]`` and 1 for
``B [SEP]``. The Rust library does all the work; this class only fixes the conventions and
gives the special ids names.

A vocabulary file is ``vocab.txt``: one token per line, the line number is the id (the
format of BERT and of Hugging Face's ``BertTokenizer``).
"""

from __future__ import annotations

import json
from pathlib import Path

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write, open_text
from word2bert.tokenizers.base import SentencePairTokenizer, require_tokenizers

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _tokenizers():
    return require_tokenizers("WordPiece")


class WordPieceTokenizer(SentencePairTokenizer):
    """BERT's WordPiece tokeniser (``tokenizers.Tokenizer`` with the Bert normaliser/processor).

    Build one with :meth:`train`, :meth:`from_file` (a ``vocab.txt``) or :meth:`from_pretrained`
    (a model directory holding ``vocab.txt``). ``lowercase=True`` also strips accents, as BERT's
    uncased models (and Hugging Face's ``BertTokenizerFast`` with ``strip_accents=None``) do.
    """

    def __init__(self, vocab: dict[str, int], lowercase: bool = True, strip_accents: bool | None = None):
        tk = _tokenizers()
        from tokenizers import decoders, normalizers, pre_tokenizers, processors
        from tokenizers.models import WordPiece

        missing = [t for t in ("[UNK]", "[CLS]", "[SEP]") if t not in vocab]
        if missing:
            raise Word2BertError(f"the WordPiece vocabulary lacks the special token(s) {', '.join(missing)}")
        self.lowercase = bool(lowercase)
        self.strip_accents = strip_accents
        tokenizer = tk.Tokenizer(WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##",
                                           max_input_chars_per_word=100))
        tokenizer.add_special_tokens([t for t in SPECIAL_TOKENS if t in vocab])
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=self.lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
        tokenizer.decoder = decoders.WordPiece(prefix="##")
        self._tokenizer = tokenizer
        self._vocab = dict(vocab)
        self.unk_id = vocab["[UNK]"]
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        self.pad_id = vocab.get("[PAD]", 0)
        self.mask_id = vocab.get("[MASK]")
        self.special_ids = sorted({vocab[t] for t in SPECIAL_TOKENS if t in vocab})

    # ------------------------------------------------------------------ construction
    @classmethod
    def train(cls, files, vocab_size: int = 30522, min_frequency: int = 2, lowercase: bool = True,
              limit_alphabet: int = 1000) -> WordPieceTokenizer:
        """Learn a WordPiece vocabulary of ``vocab_size`` entries from text ``files``.

        ``files`` is one path or a list (plain or .gz/.bz2/.xz). Sub-words seen fewer than
        ``min_frequency`` times are not merged; the five special tokens come first (ids 0-4).
        """
        tk = _tokenizers()
        from tokenizers import normalizers, pre_tokenizers, trainers
        from tokenizers.models import WordPiece

        if isinstance(files, (str, Path)):
            files = [files]
        files = [Path(f) for f in files]
        if not files:
            raise Word2BertError("give at least one text file to train the WordPiece vocabulary on")
        if vocab_size < len(SPECIAL_TOKENS) + 1:
            raise Word2BertError(f"parameter vocab_size={vocab_size} must be > {len(SPECIAL_TOKENS)}")
        if min_frequency < 1:
            raise Word2BertError(f"parameter min_frequency={min_frequency} must be >= 1")
        for path in files:
            if not path.exists():
                raise Word2BertError(f"file not found: {path}")

        def lines():
            for path in files:
                with open_text(path) as handle:
                    yield from handle

        tokenizer = tk.Tokenizer(WordPiece(unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
            limit_alphabet=limit_alphabet, continuing_subword_prefix="##", show_progress=False)
        tokenizer.train_from_iterator(lines(), trainer=trainer)
        vocab = tokenizer.get_vocab()
        if len(vocab) <= len(SPECIAL_TOKENS):
            raise Word2BertError(f"no text to learn a WordPiece vocabulary from in {', '.join(map(str, files))}")
        return cls(vocab, lowercase=lowercase)

    @classmethod
    def from_file(cls, vocab_path, lowercase: bool = True, strip_accents: bool | None = None) -> WordPieceTokenizer:
        """Load a ``vocab.txt`` (one token per line; line number = id)."""
        path = Path(vocab_path)
        if not path.exists():
            raise Word2BertError(f"WordPiece vocabulary not found: {path}")
        vocab: dict[str, int] = {}
        with open_text(path) as handle:
            for line in handle:
                token = line.rstrip("\n").rstrip("\r")
                if token and token not in vocab:
                    vocab[token] = len(vocab)
                elif not token:
                    vocab[f"[EMPTY{len(vocab)}]"] = len(vocab)  # keep ids aligned with line numbers
                else:  # duplicate line: keep the id slot, as BertTokenizer does (first wins)
                    vocab[f"[DUP{len(vocab)}]"] = len(vocab)
        if not vocab:
            raise Word2BertError(f"WordPiece vocabulary is empty: {path}")
        try:
            return cls(vocab, lowercase=lowercase, strip_accents=strip_accents)
        except Word2BertError as exc:
            raise Word2BertError(f"{path}: {exc}") from None

    @classmethod
    def from_pretrained(cls, directory) -> WordPieceTokenizer:
        """Load ``directory/vocab.txt``; ``tokenizer_config.json`` (if any) gives ``do_lower_case``."""
        directory = Path(directory)
        if directory.is_file():
            return cls.from_file(directory)
        vocab_path = directory / "vocab.txt"
        if not vocab_path.exists():
            raise Word2BertError(f"no vocab.txt in {directory} (missing WordPiece vocabulary)")
        lowercase, strip_accents = True, None
        config_path = directory / "tokenizer_config.json"
        if config_path.exists():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise Word2BertError(f"cannot read {config_path}: {exc}") from None
            lowercase = bool(config.get("do_lower_case", True))
            strip_accents = config.get("strip_accents")
        return cls.from_file(vocab_path, lowercase=lowercase, strip_accents=strip_accents)

    def save(self, directory) -> Path:
        """Write ``directory/vocab.txt`` and ``tokenizer_config.json`` (atomically); return the vocab path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tokens = sorted(self._vocab, key=self._vocab.__getitem__)
        vocab_path = directory / "vocab.txt"
        with atomic_write(vocab_path, "w", encoding="utf-8") as handle:
            for token in tokens:
                handle.write(token + "\n")
        config = {"do_lower_case": self.lowercase, "strip_accents": self.strip_accents,
                  "tokenize_chinese_chars": True, "tokenizer_class": "BertTokenizer",
                  "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                  "cls_token": "[CLS]", "mask_token": "[MASK]"}
        with atomic_write(directory / "tokenizer_config.json", "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2)
        return vocab_path

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"
