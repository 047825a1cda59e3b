"""Sub-word tokenisers on Hugging Face ``tokenizers``: unigram (SentencePiece-style, ALBERT);
WordPiece is in :mod:`word2bert.corpus.wordpiece`.

This package is ``word2bert.tokenizers``; inside it, ``import tokenizers`` (absolute) is Hugging Face's.
"""

from word2bert.tokenizers.unigram import UnigramTokenizer

__all__ = ["UnigramTokenizer"]
