"""word2bert: word representations along the line from word2vec to BERT.

The static half (word2vec, fastText, GloVe, LSA, doc2vec) needs only numpy, numba and scipy;
the contextual half (BERT and its family) needs PyTorch. Names are imported lazily, so
``import word2bert`` stays cheap: ``from word2bert import Word2Vec, KeyedVectors, BertModel``.
"""

import importlib

from word2bert.errors import Word2BertError

__version__ = "0.1.0"

_LAZY = {
    "KeyedVectors": "word2bert.vectors",
    "Word2Vec": "word2bert.static.word2vec",
    "FastText": "word2bert.static.fasttext",
    "FastTextClassifier": "word2bert.static.classifier",
    "train_supervised": "word2bert.static.classifier",
    "Doc2Vec": "word2bert.static.doc2vec",
    "TaggedDocument": "word2bert.static.doc2vec",
    "GloVe": "word2bert.static.glove",
    "LSA": "word2bert.static.lsa",
    "Phrases": "word2bert.static.phrases",
    "LineSentence": "word2bert.corpus",
    "Vocabulary": "word2bert.corpus",
    "EncodedCorpus": "word2bert.corpus",
    "evaluate_word_pairs": "word2bert.evaluate",
    "evaluate_word_analogies": "word2bert.evaluate",
    "BertConfig": "word2bert.models.bert",
    "BertModel": "word2bert.models.bert",
    "BertForPreTraining": "word2bert.models.bert",
    "WordPieceTokenizer": "word2bert.corpus.wordpiece",
    "ByteLevelBPETokenizer": "word2bert.tokenizers.bpe",
    "GPT2Config": "word2bert.models.gpt",
    "GPT2LMHeadModel": "word2bert.models.gpt",
    "OpenAIGPTConfig": "word2bert.models.gpt",
    "OpenAIGPTLMHeadModel": "word2bert.models.gpt",
    "UnigramTokenizer": "word2bert.tokenizers.unigram",
    "RobertaModel": "word2bert.models.roberta",
    "RobertaForMaskedLM": "word2bert.models.roberta",
    "AlbertModel": "word2bert.models.albert",
    "AlbertForPreTraining": "word2bert.models.albert",
    "SpanBertForPreTraining": "word2bert.models.spanbert",
    "ErnieModel": "word2bert.models.ernie",
    "Elmo": "word2bert.models.elmo",
    "ElmoModel": "word2bert.models.elmo",
    "ElmoForPreTraining": "word2bert.models.elmo",
    "batch_to_ids": "word2bert.models.elmo",
    "CoveForTranslation": "word2bert.models.cove",
    "DistilBertConfig": "word2bert.models.distilbert",
    "DistilBertModel": "word2bert.models.distilbert",
    "DistilBertForMaskedLM": "word2bert.models.distilbert",
}

__all__ = ["Word2BertError", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'word2bert' has no attribute {name!r}")
