"""Corpus pipeline: streaming readers, vocabulary, and the encoded (int32) corpus."""

from word2bert.corpus.encoded import EncodedCorpus
from word2bert.corpus.reader import LineSentence, iter_sentences
from word2bert.corpus.vocab import Vocabulary

__all__ = ["EncodedCorpus", "LineSentence", "Vocabulary", "iter_sentences"]
