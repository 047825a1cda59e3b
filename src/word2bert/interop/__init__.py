"""Files of other tools: word2vec text/binary and GloVe text (``word2vec_format``)."""

from word2bert.interop.word2vec_format import (
    FORMATS,
    detect_format,
    read_glove_format,
    read_word2vec_format,
    write_glove_format,
    write_word2vec_format,
)

__all__ = ["FORMATS", "detect_format", "read_glove_format", "read_word2vec_format",
           "write_glove_format", "write_word2vec_format"]
