"""What every word2bert tokeniser on Hugging Face ``tokenizers`` shares.

A tokeniser here wraps one ``tokenizers.Tokenizer`` (``self._tokenizer``) and keeps its vocabulary
(``self._vocab``: token -> id) and padding id (``self.pad_id``). :class:`TokenizerBase` gives it the
vocabulary look-ups, ``tokenize`` / ``decode``, the truncation and padding settings of one call
(:meth:`TokenizerBase._configure`) and the conversion of ``tokenizers`` encodings to transformers'
dictionaries of lists. :class:`SentencePairTokenizer` adds the encoder tokenisers' calls, a text or a
pair of texts with special tokens around them (BERT's ``[CLS] A [SEP] B [SEP]``, RoBERTa's
``<s> A </s></s> B </s>``): ``encode``, ``encode_batch``, ``encode_words``.

Truncation follows transformers' ``longest_first``: with a pair, the longer text loses a token at a
time until the whole fits ``max_length`` (specials included).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence

from word2bert.errors import Word2BertError

PADDINGS = "False, True/'longest' or 'max_length'"


def require_tokenizers(what: str):
    """Hugging Face's ``tokenizers`` module, or a clear error naming ``what`` needs it."""
    try:
        import tokenizers
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise Word2BertError(f"{what} needs the `tokenizers` package: pip install tokenizers") from exc
    return tokenizers


def _positive_length(max_length) -> int:
    """``max_length`` as an int >= 1 (bools and fractions refused)."""
    try:
        if isinstance(max_length, bool):
            raise TypeError
        length = operator.index(max_length)
    except TypeError:
        length = None
    if length is None or length < 1:
        raise Word2BertError(f"parameter max_length={max_length!r} must be an integer >= 1")
    return length


class TokenizerBase:
    """Vocabulary look-ups, decoding and per-call settings of a ``tokenizers.Tokenizer``.

    Subclasses set ``_tokenizer``, ``_vocab`` and ``pad_id`` and name their padding token
    (:attr:`pad_token`). ``token_type_ids`` says where ``encode``'s segment ids come from: the
    tokeniser's post-processor (``"tokenizer"``), all zeros (``"zeros"``: RoBERTa has one segment
    embedding) or nowhere (``None``: GPT-2 has no segments).
    """

    pad_token: str = "[PAD]"
    token_type_ids: str | None = "tokenizer"

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def __len__(self) -> int:
        return len(self._vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def token_to_id(self, token: str) -> int | None:
        return self._vocab.get(token)

    def id_to_token(self, index: int) -> str | None:
        return self._tokenizer.id_to_token(int(index))

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.id_to_token(i) for i in ids]

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` without special tokens."""
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def ids_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids of each text without special tokens, truncation or padding (for corpora)."""
        tokenizer = self._configure(None, False, False)
        return [e.ids for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    # ------------------------------------------------------------------ one call's settings
    def _configure(self, max_length, truncation, padding, pad_to_multiple_of=None, padding_side: str = "right",
                   truncation_side: str = "right"):
        """Set truncation (``longest_first`` from ``truncation_side``) and padding (to the longest of
        the batch, or to ``max_length``) on the wrapped tokeniser for the call at hand; return it."""
        tokenizer = self._tokenizer
        for name, side in (("padding_side", padding_side), ("truncation_side", truncation_side)):
            if side not in ("left", "right"):
                raise Word2BertError(f"parameter {name}={side!r} must be 'left' or 'right'")
        if max_length is not None and truncation:
            tokenizer.enable_truncation(max_length=_positive_length(max_length), strategy="longest_first",
                                        direction=truncation_side)
        else:
            tokenizer.no_truncation()
        if padding in (False, None, "do_not_pad"):
            tokenizer.no_padding()
        elif padding in (True, "longest"):
            tokenizer.enable_padding(direction=padding_side, pad_id=self.pad_id, pad_token=self.pad_token,
                                     pad_type_id=0, pad_to_multiple_of=pad_to_multiple_of)
        elif padding == "max_length":
            if max_length is None:
                raise Word2BertError("padding='max_length' needs max_length")
            tokenizer.enable_padding(direction=padding_side, pad_id=self.pad_id, pad_token=self.pad_token,
                                     pad_type_id=0, length=_positive_length(max_length))
        else:
            raise Word2BertError(f"parameter padding={padding!r} must be {PADDINGS}")
        return tokenizer

    def _as_dict(self, encodings, single: bool, return_offsets: bool = False) -> dict:
        """transformers' dictionary of lists (one list per text; the lists themselves with ``single``):
        ``input_ids``, ``token_type_ids`` (see :attr:`token_type_ids`), ``attention_mask``; with
        ``return_offsets`` also ``offset_mapping``, ``special_tokens_mask`` and, for tokenisers with
        segments, ``sequence_ids`` and ``word_ids``."""
        result = {"input_ids": [e.ids for e in encodings]}
        if self.token_type_ids == "tokenizer":
            result["token_type_ids"] = [e.type_ids for e in encodings]
        elif self.token_type_ids == "zeros":
            result["token_type_ids"] = [[0] * len(e.ids) for e in encodings]
        result["attention_mask"] = [e.attention_mask for e in encodings]
        if return_offsets:
            result["offset_mapping"] = [e.offsets for e in encodings]
            result["special_tokens_mask"] = [e.special_tokens_mask for e in encodings]
            if self.token_type_ids is not None:
                result["sequence_ids"] = [e.sequence_ids for e in encodings]
                result["word_ids"] = [e.word_ids for e in encodings]
        return {key: value[0] for key, value in result.items()} if single else result


class SentencePairTokenizer(TokenizerBase):
    """An encoder's tokeniser: one text or a pair, with its special tokens around them."""

    def encode(self, text: str, pair: str | None = None, max_length: int | None = None,
               truncation: bool = True, padding=False, add_special_tokens: bool = True,
               return_offsets: bool = False) -> dict:
        """Encode one text (or a pair) with the special tokens of the model.

        Returns ``dict(input_ids, token_type_ids, attention_mask)`` of Python lists (and
        ``offset_mapping``/``sequence_ids``/``word_ids``/``special_tokens_mask`` with
        ``return_offsets``). ``max_length`` with ``truncation`` cuts the longer of the pair
        first, one token at a time ("longest_first"), as Hugging Face does; ``padding`` is
        False, True (no-op for a single text) or "max_length".
        """
        if not isinstance(text, str) or (pair is not None and not isinstance(pair, str)):
            raise Word2BertError("encode() takes a text string (and optionally a pair string)")
        tokenizer = self._configure(max_length, truncation, padding)
        encoding = tokenizer.encode(text, pair, add_special_tokens=add_special_tokens)
        return self._as_dict([encoding], single=True, return_offsets=return_offsets)

    def encode_batch(self, texts: Sequence[str], pairs: Sequence[str] | None = None,
                     max_length: int | None = None, truncation: bool = True, padding=False,
                     add_special_tokens: bool = True, return_offsets: bool = False,
                     pad_to_multiple_of: int | None = None) -> dict:
        """Encode many texts (in parallel, in Rust); as :meth:`encode` with lists of lists.

        ``padding=True`` pads every sequence to the longest of the batch.
        """
        if isinstance(texts, str):
            raise Word2BertError("encode_batch() takes a list of texts, not one string")
        inputs = list(texts)
        if pairs is not None:
            pairs = list(pairs)
            if len(pairs) != len(inputs):
                raise Word2BertError(f"{len(inputs)} texts but {len(pairs)} pairs")
            inputs = list(zip(inputs, pairs))
        tokenizer = self._configure(max_length, truncation, padding, pad_to_multiple_of)
        encodings = tokenizer.encode_batch(inputs, add_special_tokens=add_special_tokens)
        return self._as_dict(encodings, single=False, return_offsets=return_offsets)

    def encode_words(self, words: Sequence[str], max_length: int | None = None, truncation: bool = True,
                     padding=False) -> dict:
        """Encode a pre-split list of words; ``word_ids`` maps each token to its word (None for specials)."""
        tokenizer = self._configure(max_length, truncation, padding)
        encoding = tokenizer.encode(self._pretokenized(list(words)), is_pretokenized=True)
        return self._as_dict([encoding], single=True, return_offsets=True)

    def _pretokenized(self, words: list[str]) -> list[str]:
        """The words as the pre-tokeniser should see them (byte-level BPE wants their spaces back)."""
        return words
