"""Chinese word boundaries for whole-word masking (Chinese-BERT-wwm, Cui et al. 2019).

BERT's WordPiece splits Chinese text one character per token (every CJK ideograph gets spaces
around it), so ``##`` pieces never mark Chinese words. Chinese-BERT-wwm segments the text with
a word segmenter (LTP in the paper; ``jieba`` here, an optional dependency, or any callable
``text -> list of words``) and treats the characters of one segmenter word as one unit: a
character token continues a word when it and the token before it are CJK characters of the
same segmenter word. Non-Chinese tokens keep the tokeniser's own convention (``##`` / ``▁``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from word2bert.errors import Word2BertError

Segmenter = Callable[[str], Sequence[str]]


def is_cjk_character(character: str) -> bool:
    """Whether ``character`` is a CJK ideograph (the code point blocks of BERT's ``_is_chinese_char``)."""
    cp = ord(character)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def jieba_segmenter() -> Segmenter:
    """jieba's accurate mode (``jieba.lcut``); a clear error when jieba is not installed."""
    try:
        import jieba
    except ImportError:
        raise Word2BertError("Chinese whole-word masking needs a segmenter: pip install jieba "
                             "(or pass segmenter=your_function)") from None
    import logging

    jieba.setLogLevel(logging.WARNING)
    return jieba.lcut


def segment_word_ids(text: str, segmenter: Segmenter) -> np.ndarray:
    """Index of the segmenter word each character of ``text`` belongs to (-1 for spaces between words).

    The segmenter's words must be substrings of ``text`` in order (jieba returns them so);
    whitespace between them is skipped.
    """
    word_of = np.full(len(text), -1, dtype=np.int64)
    position = 0
    for index, word in enumerate(segmenter(text)):
        if not word or word.isspace():
            continue
        found = text.find(word, position)
        if found < 0:
            raise Word2BertError(f"the segmenter returned {word!r}, which is not in the text at or after "
                                 f"character {position}")
        word_of[found:found + len(word)] = index
        position = found + len(word)
    return word_of


def chinese_word_starts(text: str, input_ids: Sequence[int], offsets: Sequence[tuple[int, int]],
                        token_word_starts: np.ndarray, segmenter: Segmenter | None = None) -> np.ndarray:
    """Bool per token: it starts a whole-word unit.

    ``offsets`` are each token's character span in ``text`` (the tokeniser's offset mapping;
    ``(0, 0)`` for special tokens) and ``token_word_starts`` the tokeniser's own word starts
    (``##``/``▁`` convention, e.g. ``word_start_table()[input_ids]``). A one-character CJK
    token continues the previous token's unit when that token is a CJK character of the same
    segmenter word.
    """
    if segmenter is None:
        segmenter = jieba_segmenter()
    starts = np.asarray(token_word_starts, dtype=bool).copy()
    if len(starts) != len(input_ids) or len(offsets) != len(input_ids):
        raise Word2BertError("input_ids, offsets and token_word_starts must have one entry per token")
    word_of = segment_word_ids(text, segmenter)
    previous_word = -1
    for k, (begin, end) in enumerate(offsets):
        if end - begin == 1 and is_cjk_character(text[begin]):
            word = word_of[begin]
            starts[k] = not (word >= 0 and word == previous_word)
            previous_word = word
        else:
            previous_word = -1
    return starts


def encode_whole_words(tokenizer, texts: Sequence[str], segmenter: Segmenter | None = None,
                       add_special_tokens: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(input_ids, word_starts)`` per text, with Chinese words from ``segmenter`` (default jieba).

    ``tokenizer`` is a :class:`~word2bert.corpus.wordpiece.WordPieceTokenizer` (or any tokeniser
    with ``encode_batch(..., return_offsets=True)`` and a ``word_start_table()`` or ``##`` pieces).
    """
    if segmenter is None:
        segmenter = jieba_segmenter()
    table = vocabulary_word_starts(tokenizer)
    encoded = tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens, return_offsets=True)
    result = []
    for text, ids, offsets in zip(texts, encoded["input_ids"], encoded["offset_mapping"]):
        ids = np.asarray(ids, dtype=np.int64)
        result.append((ids, chinese_word_starts(text, ids, offsets, table[ids], segmenter)))
    return result


def vocabulary_word_starts(tokenizer) -> np.ndarray:
    """Bool per vocabulary id: the token begins a word (no ``##`` prefix, or a ``▁`` prefix for unigram)."""
    if hasattr(tokenizer, "word_start_table"):
        return tokenizer.word_start_table()
    vocab = tokenizer.get_vocab()
    table = np.ones(max(vocab.values()) + 1, dtype=bool)
    for token, index in vocab.items():
        if token.startswith("##"):
            table[index] = False
    return table
