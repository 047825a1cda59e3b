import bz2
import gzip
import lzma

import pytest

from word2bert.corpus import LineSentence, iter_sentences
from word2bert.corpus.reader import as_sentences
from word2bert.errors import Word2BertError

TEXT = "The quick brown fox\n\njumps over  the lazy dog\n"


@pytest.mark.parametrize("suffix,opener", [(".txt", open), (".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)])
def test_every_compression_reads_the_same_tokens(tmp_path, suffix, opener):
    path = tmp_path / f"corpus{suffix}"
    with opener(path, "wt", encoding="utf-8") as out:
        out.write(TEXT)
    assert list(iter_sentences(path)) == [["The", "quick", "brown", "fox"], ["jumps", "over", "the", "lazy", "dog"]]
    assert list(iter_sentences(path, lowercase=True))[0][0] == "the"


def test_undecodable_bytes_are_replaced_not_fatal(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"caf\xe9 ok\n\xff\xfe word\n")
    sentences = list(iter_sentences(path))
    assert sentences == [["caf\ufffd", "ok"], ["\ufffd\ufffd", "word"]]


def test_long_lines_are_split_into_chunks(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text(" ".join(f"w{i}" for i in range(2500)) + "\nshort line\n")
    chunks = list(iter_sentences(path, max_sentence_length=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500, 2]
    assert chunks[1][0] == "w1000" and chunks[2][-1] == "w2499"


def test_line_sentence_is_reiterable_and_missing_file_is_clear(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a b\nc\n")
    corpus = LineSentence(path)
    assert list(corpus) == list(corpus) == [["a", "b"], ["c"]]
    with pytest.raises(Word2BertError, match="file not found: .*nope.txt"):
        LineSentence(tmp_path / "nope.txt")


def test_as_sentences_refuses_ambiguous_or_one_shot_input(tmp_path):
    with pytest.raises(Word2BertError, match="exactly one"):
        as_sentences(None, None)
    with pytest.raises(Word2BertError, match="not a string"):
        as_sentences("a b c")
    with pytest.raises(Word2BertError, match="one-shot"):
        as_sentences(iter([["a"]]))
    assert as_sentences([["a"]]) == [["a"]]
