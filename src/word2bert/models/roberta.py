"""RoBERTa (Liu et al. 2019): BERT's encoder trained differently.

What changes from BERT, and where it lives:

* **byte-level BPE** vocabulary (GPT-2's; :mod:`word2bert.tokenizers.bpe`), specials ``<s> <pad> </s>
  <unk> <mask>``; a sequence is ``<s> X </s>``;
* **dynamic masking**: a new mask each time a sequence is used (``MaskedLM(dynamic=True)``);
* **no next-sentence prediction**; inputs are packed with :func:`pack_sentences`:
  FULL-SENTENCES (complete sentences read contiguously, across document boundaries, with an extra
  separator between documents) or DOC-SENTENCES (the same within one document);
* **positions offset by the padding index** (fairseq's ``make_positions``): real tokens take
  positions ``pad + 1, pad + 2, ...`` and padding takes ``pad``, so the table has
  ``max_seq_length + pad + 1`` rows (514 for 512 tokens with ``<pad>`` = 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from word2bert.errors import Word2BertError

PACKINGS = ("full-sentences", "doc-sentences")


def pack_sentences(documents: Sequence[Sequence[np.ndarray]], max_tokens: int, packing: str = "full-sentences",
                   separator_id: int | None = None) -> list[np.ndarray]:
    """Pack documents (lists of sentences, int arrays) into blocks of at most ``max_tokens`` tokens.

    Sentences are read in order and kept whole: a sentence that does not fit in the current block
    starts the next one (a sentence longer than a block is cut into block-sized pieces).
    ``full-sentences`` lets a block run on into the next document with ``separator_id`` between
    the documents (RoBERTa's extra separator); ``doc-sentences`` ends the block with the document,
    so blocks near a document's end may be short. Specials are not added: a block becomes
    ``<s> block </s>``.
    """
    if packing not in PACKINGS:
        raise Word2BertError(f"parameter packing={packing!r} must be one of {', '.join(PACKINGS)}")
    if max_tokens < 1:
        raise Word2BertError(f"parameter max_tokens={max_tokens} must be >= 1")
    cross = packing == "full-sentences"
    if cross and separator_id is None:
        raise Word2BertError("full-sentences packing needs the separator id put between documents")
    separator = np.array([separator_id if separator_id is not None else 0], dtype=np.int32)
    blocks: list[np.ndarray] = []
    current: list[np.ndarray] = []
    size = 0

    def close():
        nonlocal current, size
        while current and current[-1] is separator:  # a block never ends with a document separator
            current.pop()
        if current:
            blocks.append(np.concatenate(current).astype(np.int32))
        current, size = [], 0

    for document in documents:
        sentences = [np.asarray(s, dtype=np.int32) for s in document if len(s)]
        if not sentences:
            continue
        if cross and current:
            if size + 1 >= max_tokens:
                close()
            else:
                current.append(separator)
                size += 1
        for sentence in sentences:
            pieces = [sentence[k:k + max_tokens] for k in range(0, len(sentence), max_tokens)]
            for piece in pieces:
                if size + len(piece) > max_tokens:
                    close()
                current.append(piece)
                size += len(piece)
        if not cross:
            close()
    close()
    if not blocks:
        raise Word2BertError("the corpus is empty: no sentences to pack into pre-training sequences")
    return blocks
