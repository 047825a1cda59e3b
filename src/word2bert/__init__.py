"""word2bert: word representations along the line from word2vec to BERT.

The static half (word2vec, fastText, GloVe, LSA, doc2vec) needs only numpy and numba;
the contextual half (BERT and its family) needs PyTorch.
"""

from word2bert.errors import Word2BertError

__version__ = "0.1.0"

__all__ = ["Word2BertError", "Word2Vec", "KeyedVectors", "__version__"]


def __getattr__(name):
    # Lazy imports keep `import word2bert` cheap (numba compiles on first use only).
    if name == "Word2Vec":
        from word2bert.static.word2vec import Word2Vec

        return Word2Vec
    if name == "KeyedVectors":
        from word2bert.vectors import KeyedVectors

        return KeyedVectors
    raise AttributeError(f"module 'word2bert' has no attribute {name!r}")
