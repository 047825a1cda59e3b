"""Byte-level byte-pair encoding (Radford et al. 2019, GPT-2; Sennrich et al. 2016 for BPE).

Text is turned into UTF-8 bytes, each byte is shown as one printable character (GPT-2's
``bytes_to_unicode`` table: printable ASCII and Latin-1 map to themselves, the other bytes to
U+0100 and up, so a space is ``Ġ`` and a newline ``Ċ``), the text is split into pre-tokens by
GPT-2's regular expression::

    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

(a word keeps its leading space), and each pre-token is encoded by applying the learned merges
in rank order: the pair of adjacent symbols with the lowest-ranked merge is joined first, until
no listed merge applies. Every byte is a symbol of its own, so there is no unknown token.

The Rust library (Hugging Face ``tokenizers``) does all the work; this class fixes GPT-2's
conventions, reads and writes its files and gives the special ids names. The vocabulary files
are GPT-2's ``encoder.json`` + ``vocab.bpe`` or, under Hugging Face's names, ``vocab.json`` +
``merges.txt`` (the same formats): a JSON object token -> id, and one merge ``a b`` per line
after a ``#version`` line.

Note: this package is ``word2bert.tokenizers``; ``import tokenizers`` (absolute) is Hugging Face's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write, open_text
from word2bert.tokenizers.base import TokenizerBase, require_tokenizers

END_OF_TEXT = "<|endoftext|>"

#: (vocabulary, merges) file names, in the order :meth:`ByteLevelBPETokenizer.from_pretrained` tries them.
FILE_NAMES = (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe"))


def _tokenizers():
    return require_tokenizers("byte-level BPE")


def read_vocab_file(path) -> dict[str, int]:
    """Read an ``encoder.json`` / ``vocab.json`` (a JSON object token -> id)."""
    path = Path(path)
    if not path.is_file():
        raise Word2BertError(f"BPE vocabulary file not found: {path}")
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Word2BertError(f"cannot read BPE vocabulary {path}: {error}") from None
    if not isinstance(vocab, dict) or not vocab:
        raise Word2BertError(f"{path}: a BPE vocabulary must be a non-empty JSON object token -> id")
    for token, index in vocab.items():
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise Word2BertError(f"{path}: token {token!r} has id {index!r}; ids must be integers >= 0")
    if len(set(vocab.values())) != len(vocab):
        raise Word2BertError(f"{path}: two tokens share one id")
    return vocab


def read_merges_file(path) -> list[tuple[str, str]]:
    """Read a ``vocab.bpe`` / ``merges.txt``: an optional ``#version`` line, then ``a b`` per line, by rank."""
    path = Path(path)
    if not path.is_file():
        raise Word2BertError(f"BPE merges file not found: {path}")
    merges = []
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line or (number == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise Word2BertError(f"{path}, line {number}: a merge must be two symbols separated by one space")
            merges.append((parts[0], parts[1]))
    return merges


class ByteLevelBPETokenizer(TokenizerBase):
    """GPT-2's byte-level BPE tokeniser (``tokenizers.Tokenizer`` with a BPE model and ByteLevel pre-tokeniser).

    Build one with :meth:`train`, :meth:`from_files` (``encoder.json`` + ``vocab.bpe``) or
    :meth:`from_pretrained` (a directory holding either pair). With GPT-2's files it gives the
    same ids as transformers' ``GPT2TokenizerFast``. ``<|endoftext|>`` (GPT-2's only special token)
    is the end-of-text id; written in a text it is read as that one token, as Hugging Face does.
    GPT-2 has no padding token, so ``pad_id`` is the end-of-text id unless ``pad_token`` names
    another; padded positions have ``attention_mask`` 0.
    """

    def __init__(
        self,
        vocab: dict[str, int],
        merges: Sequence[tuple[str, str]],
        eos_token: str = END_OF_TEXT,
        bos_token: str | None = None,
        pad_token: str | None = None,
        special_tokens: Sequence[str] = (),
        add_prefix_space: bool = False,
    ):
        tk = _tokenizers()
        from tokenizers import decoders, pre_tokenizers
        from tokenizers.models import BPE

        bos_token = eos_token if bos_token is None else bos_token
        specials = list(dict.fromkeys([eos_token, bos_token] + ([pad_token] if pad_token else []) + list(special_tokens)))
        missing = [token for token in specials if token not in vocab]
        if missing:
            raise Word2BertError(f"the BPE vocabulary lacks the special token(s) {', '.join(missing)}")
        merges = [tuple(pair) for pair in merges]
        try:
            model = BPE(vocab=dict(vocab), merges=merges, dropout=None, continuing_subword_prefix="",
                        end_of_word_suffix="", fuse_unk=False)
        except Exception as error:  # the Rust side rejects merges whose parts are not in the vocabulary
            raise Word2BertError(f"inconsistent BPE vocabulary and merges: {error}") from None
        tokenizer = tk.Tokenizer(model)
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens(specials)
        self._tokenizer = tokenizer
        self._vocab = dict(vocab)
        self._merges = merges
        self.add_prefix_space = bool(add_prefix_space)
        self.eos_token, self.bos_token, self.pad_token = eos_token, bos_token, pad_token or eos_token
        self.special_tokens = specials
        self.eos_id = vocab[eos_token]
        self.bos_id = vocab[bos_token]
        self.pad_id = vocab[self.pad_token]
        self.unk_id = None  # every byte is a token: nothing is unknown
        self.special_ids = sorted({vocab[token] for token in specials})

    def add_special_tokens(self, tokens: Sequence[str]) -> list[int]:
        """Add tokens that are read whole and never merged (GPT-1's start / delimiter / extract
        tokens); new ones get the next ids. Returns the ids of ``tokens``."""
        tokens = list(tokens)
        vocab = dict(self._vocab)
        for token in tokens:
            if not isinstance(token, str) or not token:
                raise Word2BertError(f"a special token must be a non-empty string, got {token!r}")
            if token not in vocab:
                vocab[token] = max(vocab.values()) + 1
        extra = self.additional_special_tokens()
        self.__dict__.update(self._rebuilt(vocab, extra + [t for t in tokens if t not in extra]).__dict__)
        return [self._vocab[token] for token in tokens]

    def additional_special_tokens(self) -> list[str]:
        """Special tokens other than the end-of-text / start / padding ones."""
        return [t for t in self.special_tokens if t not in (self.eos_token, self.bos_token, self.pad_token)]

    def _rebuilt(self, vocab: dict[str, int], special_tokens: list[str]):
        return type(self)(vocab, self._merges, eos_token=self.eos_token, bos_token=self.bos_token,
                          pad_token=self.pad_token if self.pad_token != self.eos_token else None,
                          special_tokens=special_tokens, add_prefix_space=self.add_prefix_space)

    # ------------------------------------------------------------------ construction
    @classmethod
    def train(cls, files, vocab_size: int = 50257, min_frequency: int = 2,
              special_tokens: Sequence[str] = (END_OF_TEXT,), add_prefix_space: bool = False) -> ByteLevelBPETokenizer:
        """Learn merges from text ``files`` (one path or a list; plain or .gz/.bz2/.xz) until the
        vocabulary has ``vocab_size`` entries: ``special_tokens`` (ids 0, 1, ...), the 256 bytes, then
        one new symbol per merge, most frequent pair first; pairs seen fewer than ``min_frequency``
        times are not merged. The first special token is the end-of-text token."""
        tk = _tokenizers()
        from tokenizers import pre_tokenizers, trainers
        from tokenizers.models import BPE

        if isinstance(files, (str, Path)):
            files = [files]
        files = [Path(f) for f in files]
        if not files:
            raise Word2BertError("give at least one text file to train the BPE vocabulary on")
        special_tokens = list(special_tokens)
        if not special_tokens:
            raise Word2BertError("give at least one special token (the end-of-text token)")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256 + len(special_tokens):
            raise Word2BertError(
                f"parameter vocab_size={vocab_size!r} must be >= {256 + len(special_tokens)} "
                "(the 256 bytes and the special tokens)")
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
            raise Word2BertError(f"parameter min_frequency={min_frequency!r} must be an integer >= 1")
        for path in files:
            if not path.is_file():
                raise Word2BertError(f"file not found: {path}")

        def lines():
            for path in files:
                with open_text(path) as handle:
                    yield from handle

        tokenizer = tk.Tokenizer(BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=special_tokens, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(lines(), trainer=trainer)
        model = json.loads(tokenizer.to_str())["model"]
        merges = [tuple(pair.split(" ")) if isinstance(pair, str) else tuple(pair) for pair in model["merges"]]
        return cls(model["vocab"], merges, eos_token=special_tokens[0], special_tokens=special_tokens,
                   add_prefix_space=add_prefix_space)

    @classmethod
    def from_files(cls, vocab_path, merges_path, **options) -> ByteLevelBPETokenizer:
        """Load ``encoder.json`` + ``vocab.bpe`` (GPT-2's names) or ``vocab.json`` + ``merges.txt``."""
        vocab = read_vocab_file(vocab_path)
        merges = read_merges_file(merges_path)
        try:
            return cls(vocab, merges, **options)
        except Word2BertError as error:
            raise Word2BertError(f"{vocab_path}: {error}") from None

    @classmethod
    def from_pretrained(cls, directory, **options) -> ByteLevelBPETokenizer:
        """Load a directory holding ``vocab.json`` + ``merges.txt`` (Hugging Face) or ``encoder.json`` +
        ``vocab.bpe`` (GPT-2). Its ``tokenizer_config.json``, if any, gives ``add_prefix_space`` and the
        eos/bos/pad tokens; ``options`` override them."""
        directory = Path(directory)
        if not directory.is_dir():
            raise Word2BertError(f"tokenizer directory not found: {directory}")
        for vocab_name, merges_name in FILE_NAMES:
            if (directory / vocab_name).is_file() and (directory / merges_name).is_file():
                break
        else:
            raise Word2BertError(f"no vocab.json + merges.txt (or encoder.json + vocab.bpe) in {directory}")
        config_path = directory / "tokenizer_config.json"
        settings = {}
        if config_path.is_file():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as error:
                raise Word2BertError(f"cannot read {config_path}: {error}") from None
            settings = cls._settings_from_config(config if isinstance(config, dict) else {})
        settings.update(options)
        return cls.from_files(directory / vocab_name, directory / merges_name, **settings)

    @classmethod
    def _settings_from_config(cls, config: dict) -> dict:
        """Constructor options from a ``tokenizer_config.json``."""
        settings = {}
        for key in ("eos_token", "bos_token", "pad_token"):
            value = config.get(key)
            if isinstance(value, dict):  # Hugging Face's serialised AddedToken
                value = value.get("content")
            if isinstance(value, str):
                settings[key] = value
        if "add_prefix_space" in config:
            settings["add_prefix_space"] = bool(config["add_prefix_space"])
        additional = config.get("additional_special_tokens") or []
        additional = [t.get("content") if isinstance(t, dict) else t for t in additional]
        if additional and all(isinstance(t, str) for t in additional):
            settings["special_tokens"] = additional
        return settings

    def _tokenizer_config(self) -> dict:
        """What ``save`` writes as ``tokenizer_config.json`` (transformers' names)."""
        config = {"tokenizer_class": "GPT2Tokenizer", "add_prefix_space": self.add_prefix_space,
                  "eos_token": self.eos_token, "bos_token": self.bos_token, "unk_token": self.eos_token,
                  "pad_token": self.pad_token, "model_max_length": 1024}
        if self.additional_special_tokens():
            config["additional_special_tokens"] = self.additional_special_tokens()
        return config

    def save(self, directory) -> Path:
        """Write ``vocab.json``, ``merges.txt`` and ``tokenizer_config.json`` (transformers' GPT-2
        tokenizer reads the directory), each atomically; return the directory."""
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise Word2BertError(f"cannot create tokenizer directory {directory}: {error}") from None
        ordered = dict(sorted(self._vocab.items(), key=lambda item: item[1]))
        with atomic_write(directory / "vocab.json", "w", encoding="utf-8") as handle:
            json.dump(ordered, handle, ensure_ascii=False)
        with atomic_write(directory / "merges.txt", "w", encoding="utf-8") as handle:
            handle.write("#version: 0.2\n")
            for first, second in self._merges:
                handle.write(f"{first} {second}\n")
        config = self._tokenizer_config()
        with atomic_write(directory / "tokenizer_config.json", "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2)
        return directory

    token_type_ids = None  # GPT-2 has no segments

    # ------------------------------------------------------------------ vocabulary
    @property
    def merges(self) -> list[tuple[str, str]]:
        return list(self._merges)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Join the tokens' bytes and decode them as UTF-8 (an incomplete character becomes U+FFFD)."""
        ids = [int(i) for i in ids]
        size = self.vocab_size
        bad = [i for i in ids if not 0 <= i < size]
        if bad:
            raise Word2BertError(f"cannot decode id {bad[0]}: outside the vocabulary [0, {size})")
        return self._tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def decode_batch(self, sequences: Sequence[Sequence[int]], skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(ids, skip_special_tokens) for ids in sequences]

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str, max_length: int | None = None, truncation: bool = True, padding=False,
               return_offsets: bool = False, truncation_side: str = "right") -> dict:
        """Encode one text. Returns ``dict(input_ids, attention_mask)`` of Python lists (plus
        ``offset_mapping`` and ``special_tokens_mask`` with ``return_offsets``). No token is added:
        GPT-2 marks document boundaries with ``<|endoftext|>`` (``eos_id``) between texts."""
        if not isinstance(text, str):
            raise Word2BertError(f"encode() takes a text string, got {type(text).__name__}")
        tokenizer = self._configure(max_length, truncation, padding, truncation_side=truncation_side)
        return self._as_dict([tokenizer.encode(text, add_special_tokens=False)], True, return_offsets)

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None, truncation: bool = True,
                     padding=False, return_offsets: bool = False, padding_side: str = "right",
                     truncation_side: str = "right", pad_to_multiple_of: int | None = None) -> dict:
        """Encode many texts (in parallel, in Rust); as :meth:`encode` with lists of lists.

        ``padding=True`` pads to the longest text with ``pad_id`` (attention 0); ``padding_side="left"``
        puts the padding before the text, as batched generation needs (the prompts then all end at
        the last column).
        """
        if isinstance(texts, str):
            raise Word2BertError("encode_batch() takes a list of texts, not one string")
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise Word2BertError(f"encode_batch(): text {index} is a {type(text).__name__}, not a string")
        tokenizer = self._configure(max_length, truncation, padding, pad_to_multiple_of, padding_side=padding_side,
                                    truncation_side=truncation_side)
        encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
        return self._as_dict(encodings, single=False, return_offsets=return_offsets)

    def __repr__(self) -> str:
        return (f"ByteLevelBPETokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)}, "
                f"add_prefix_space={self.add_prefix_space})")


class OpenAIGPTTokenizer(ByteLevelBPETokenizer):
    """GPT-1's BPE (Radford et al. 2018; transformers' ``OpenAIGPTTokenizer``): lower-cased text split
    like BERT's basic tokenizer (whitespace and punctuation, accents kept), then BPE over characters
    with ``</w>`` marking the end of a word; characters outside the vocabulary become ``<unk>``.

    Same interface as :class:`ByteLevelBPETokenizer`; GPT-1 has no end-of-text token (``eos_id`` is
    None) and pads with ``<unk>``. Read from ``vocab.json`` + ``merges.txt`` (as transformers writes
    GPT-1's files) or learned with :meth:`train`.
    """

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]], unk_token: str = "<unk>",
                 special_tokens: Sequence[str] = (), **ignored):
        tk = _tokenizers()
        from tokenizers import decoders, normalizers, pre_tokenizers
        from tokenizers.models import BPE

        specials = list(dict.fromkeys([unk_token, *special_tokens]))
        missing = [token for token in specials if token not in vocab]
        if missing:
            raise Word2BertError(f"the BPE vocabulary lacks the special token(s) {', '.join(missing)}")
        merges = [tuple(pair) for pair in merges]
        try:
            model = BPE(vocab=dict(vocab), merges=merges, dropout=None, continuing_subword_prefix="",
                        end_of_word_suffix="</w>", fuse_unk=False, unk_token=unk_token)
        except Exception as error:
            raise Word2BertError(f"inconsistent BPE vocabulary and merges: {error}") from None
        tokenizer = tk.Tokenizer(model)
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.BPEDecoder(suffix="</w>")
        tokenizer.add_special_tokens(specials)
        self._tokenizer = tokenizer
        self._vocab = dict(vocab)
        self._merges = merges
        self.add_prefix_space = False
        self.unk_token = unk_token
        self.eos_token = self.bos_token = None
        self.pad_token = unk_token
        self.special_tokens = specials
        self.eos_id = self.bos_id = None
        self.unk_id = self.pad_id = vocab[unk_token]
        self.special_ids = sorted({vocab[token] for token in specials})

    def additional_special_tokens(self) -> list[str]:
        return [t for t in self.special_tokens if t != self.unk_token]

    def _rebuilt(self, vocab, special_tokens):
        return type(self)(vocab, self._merges, unk_token=self.unk_token, special_tokens=special_tokens)

    @classmethod
    def _settings_from_config(cls, config: dict) -> dict:
        settings = {}
        unk = config.get("unk_token")
        unk = unk.get("content") if isinstance(unk, dict) else unk
        if isinstance(unk, str):
            settings["unk_token"] = unk
        additional = config.get("additional_special_tokens") or []
        additional = [t.get("content") if isinstance(t, dict) else t for t in additional]
        if additional and all(isinstance(t, str) for t in additional):
            settings["special_tokens"] = additional
        return settings

    def _tokenizer_config(self) -> dict:
        config = {"tokenizer_class": "OpenAIGPTTokenizer", "unk_token": self.unk_token, "do_lower_case": True,
                  "model_max_length": 512}
        if self.additional_special_tokens():
            config["additional_special_tokens"] = self.additional_special_tokens()
        return config

    @classmethod
    def train(cls, files, vocab_size: int = 40478, min_frequency: int = 2, unk_token: str = "<unk>",
              limit_alphabet: int = 1000) -> OpenAIGPTTokenizer:
        """Learn GPT-1-style merges (``</w>`` word ends, lower case) from text ``files``."""
        tk = _tokenizers()
        from tokenizers import normalizers, pre_tokenizers, trainers
        from tokenizers.models import BPE

        if isinstance(files, (str, Path)):
            files = [files]
        files = [Path(f) for f in files]
        for path in files:
            if not path.is_file():
                raise Word2BertError(f"file not found: {path}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
            raise Word2BertError(f"parameter vocab_size={vocab_size!r} must be an integer >= 2")

        def lines():
            for path in files:
                with open_text(path) as handle:
                    yield from handle

        tokenizer = tk.Tokenizer(BPE(unk_token=unk_token, end_of_word_suffix="</w>"))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[unk_token],
                                      end_of_word_suffix="</w>", limit_alphabet=limit_alphabet, show_progress=False)
        tokenizer.train_from_iterator(lines(), trainer=trainer)
        model = json.loads(tokenizer.to_str())["model"]
        merges = [tuple(pair.split(" ")) if isinstance(pair, str) else tuple(pair) for pair in model["merges"]]
        return cls(model["vocab"], merges, unk_token=unk_token)

    def __repr__(self) -> str:
        return f"OpenAIGPTTokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)})"


__all__ = ["END_OF_TEXT", "ByteLevelBPETokenizer", "OpenAIGPTTokenizer", "read_merges_file", "read_vocab_file"]
