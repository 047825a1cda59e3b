"""Task files for fine-tuning: every line carries a real label, or the file is refused with the line."""

import json

import pytest

pytest.importorskip("torch")

from word2bert.errors import Word2BertError  # noqa: E402
from word2bert.tasks.data import read_classification, read_tagging  # noqa: E402


@pytest.mark.parametrize("name, content, message", [
    ("empty.tsv", "good text\tpos\nbad text\t\nmore\tneg\n", "empty.tsv:2: empty label"),
    ("blank.tsv", "good text\tpos\nbad text\t   \n", "blank.tsv:2: empty label"),
    ("header.tsv", "label\ttext\npos\tfine\n\tno label\n", "header.tsv:3: empty label"),
    ("pairs.tsv", "a\tb\tyes\nc\td\t\n", "pairs.tsv:2: empty label"),
    ("null.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n', "null.jsonl:2: empty label"),
    ("blank.jsonl", '{"text": "a", "label": ""}\n', "blank.jsonl:1: empty label"),
    ("prefix.txt", "__label__a one\n__label__ two\n", "prefix.txt:2: empty label"),
    ("one-field.tsv", "text without a label\n", "one-field.tsv:1: expected text<TAB>label"),
])
def test_empty_labels_are_refused_with_the_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(Word2BertError, match=message):
        read_classification(path)


def test_unlabelled_fasttext_lines_are_counted(tmp_path):
    path = tmp_path / "partly.txt"
    path.write_text("__label__a x y\nno label here\n__label__b z\nnor here\n\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match="partly.txt:2: no __label__ \\(2 of 4 lines have none"):
        read_classification(path)


def test_labels_are_read_whole(tmp_path):
    path = tmp_path / "ok.tsv"
    path.write_text("a b\tpos \nc\tneg\n", encoding="utf-8")
    assert [e["label"] for e in read_classification(path)] == ["pos", "neg"]
    jsonl = tmp_path / "ok.jsonl"
    jsonl.write_text(json.dumps({"text": "a", "label": 3}) + "\n", encoding="utf-8")
    assert read_classification(jsonl)[0]["label"] == "3"


def test_empty_tags_are_refused(tmp_path):
    conll = tmp_path / "tags.tsv"
    conll.write_text("the\tDET\ncat\t\n\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match="tags.tsv:2: empty tag"):
        read_tagging(conll)
    jsonl = tmp_path / "tags.jsonl"
    jsonl.write_text(json.dumps({"tokens": ["a", "b"], "tags": ["X", None]}) + "\n", encoding="utf-8")
    with pytest.raises(Word2BertError, match="tags.jsonl:1: empty tag"):
        read_tagging(jsonl)
