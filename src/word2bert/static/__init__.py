"""The static models: one engine (bag of input rows -> hidden vector -> loss over output rows).

``huffman`` (word2vec.c's tree), ``sampling`` (LCG, unigram^0.75 table, subsampling),
``losses`` (NS / HS / softmax steps), ``kernels`` (word2vec's fast skip-gram and CBOW blocks),
``bag_kernels`` (the generic bag-of-rows kernels for fastText, the classifier and doc2vec),
then one file per model: ``word2vec``, ``fasttext``, ``classifier``, ``doc2vec``,
``cooccurrence`` + ``glove``, ``lsa``.
"""
