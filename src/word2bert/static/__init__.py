"""The static models: one engine (a bag of input rows -> a hidden vector -> a loss over output rows)
and the thin models that configure it.

The engine:

* ``huffman`` (word2vec.c's tree) and ``sampling`` (the LCG, the alias table of negative sampling,
  subsampling);
* ``losses``: the sigmoid tables and the output losses (negative sampling, hierarchical softmax,
  softmax, one-vs-all), written once for every model;
* ``kernels``: the example kernels and the chunk drivers of every model (numba, ``nogil``), compiled
  per vector size and loss (``native``);
* ``jobs``: threads, the learning-rate schedule, progress, Ctrl-C checkpoints and resume;
* ``init`` (initial weights) and ``storage`` (one file format for every model).

The models: ``word2vec``, ``fasttext`` (+ ``subwords``), ``classifier``, ``doc2vec``,
``cooccurrence`` + ``glove``, ``lsa``.
"""
