"""Sub-word tokenisers on Hugging Face ``tokenizers``: unigram (SentencePiece-style, ALBERT) and
byte-level BPE (GPT-2), GPT-1's character BPE; WordPiece is in :mod:`word2bert.corpus.wordpiece`.

This package is ``word2bert.tokenizers``; inside it, ``import tokenizers`` (absolute) is Hugging Face's.
"""

from word2bert.tokenizers.bpe import END_OF_TEXT, ByteLevelBPETokenizer, OpenAIGPTTokenizer
from word2bert.tokenizers.unigram import UnigramTokenizer

__all__ = ["END_OF_TEXT", "ByteLevelBPETokenizer", "OpenAIGPTTokenizer", "UnigramTokenizer"]
