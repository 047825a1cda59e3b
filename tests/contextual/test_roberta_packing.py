"""RoBERTa's FULL-SENTENCES and DOC-SENTENCES packing on numbered sentences."""

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.models.roberta import pack_sentences

SEP = 2


def numbered_corpus(n_documents=40, seed=0):
    rng = np.random.default_rng(seed)
    return [[1000 * (d + 1) + 50 * s + np.arange(rng.integers(1, 40)) for s in range(rng.integers(1, 8))]
            for d in range(n_documents)]


@pytest.mark.parametrize("packing", ["full-sentences", "doc-sentences"])
def test_packing_keeps_order_and_whole_sentences(packing):
    documents = numbered_corpus()
    blocks = pack_sentences(documents, 64, packing, separator_id=SEP)
    assert all(1 <= len(b) <= 64 for b in blocks)
    # reading the blocks back (without separators) gives the corpus in order, every token once
    flat = np.concatenate([b[b != SEP] for b in blocks])
    np.testing.assert_array_equal(flat, np.concatenate([np.concatenate(d) for d in documents]))
    sentences = {int(s[0]): len(s) for d in documents for s in d}
    for block in blocks:
        real = block[block != SEP]
        documents_in_block = set((real // 1000).tolist())
        if packing == "doc-sentences":
            assert len(documents_in_block) == 1 and SEP not in block
        else:  # one separator between consecutive documents, never at a block's edge
            assert np.count_nonzero(block == SEP) == len(documents_in_block) - 1
            assert block[0] != SEP and block[-1] != SEP
        # whole sentences: a block starts at a sentence start (sentences here are shorter than a block)
        assert int(real[0]) in sentences
    if packing == "full-sentences":  # blocks are full: the next sentence did not fit
        lengths = np.array([len(b) for b in blocks[:-1]])
        assert lengths.mean() > 50
        assert any(len(set((b[b != SEP] // 1000).tolist())) > 1 for b in blocks)


def test_long_sentences_are_cut_and_bad_packing_named():
    blocks = pack_sentences([[np.arange(10, 160)]], 64, "doc-sentences")
    assert [len(b) for b in blocks] == [64, 64, 22]
    with pytest.raises(Word2BertError, match="packing='segments'"):
        pack_sentences([[np.arange(3)]], 10, "segments")
    with pytest.raises(Word2BertError, match="separator"):
        pack_sentences([[np.arange(3)]], 10, "full-sentences")
