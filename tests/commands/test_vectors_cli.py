"""`word2bert similar / analogy / evaluate / convert`: output, exit codes and one-line errors."""

import json

import numpy as np
import pytest

from word2bert.cli import main
from word2bert.vectors import KeyedVectors

WORDS = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy", "tiger", "cat"] + \
    [f"w{i}" for i in range(60)]


@pytest.fixture
def vectors_file(tmp_path):
    rng = np.random.default_rng(2)
    kv = KeyedVectors(rng.standard_normal((len(WORDS), 12)).astype(np.float32), WORDS)
    path = tmp_path / "vectors.bin"
    kv.save_word2vec_format(path, binary=True)
    return kv, path


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("word2bert: error: ")
    return err[0]


def test_similar_prints_aligned_neighbours(vectors_file, capsys):
    kv, path = vectors_file
    assert main(["similar", str(path), "king", "woman", "--negative", "man", "--topn", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = kv.most_similar(["king", "woman"], ["man"], topn=4)
    assert [line.split()[0] for line in lines] == [w for w, _ in expected]
    assert [float(line.split()[1]) for line in lines] == pytest.approx([s for _, s in expected], abs=1e-4)
    assert len({line.index(line.split()[1]) for line in lines}) == 1  # scores in one column


def test_analogy_both_methods(vectors_file, capsys):
    kv, path = vectors_file
    for method, solve in (("3cosadd", kv.most_similar), ("3cosmul", kv.most_similar_cosmul)):
        assert main(["analogy", str(path), "man", "king", "woman", "--method", method, "--topn", "3"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("man : king :: woman : ?")
        assert [line.split()[0] for line in lines[1:]] == [w for w, _ in solve(["king", "woman"], ["man"], topn=3)]


@pytest.mark.parametrize("argv, message", [
    (["similar", "{path}", "kingdom"], "word 'kingdom' is not in the vocabulary"),
    (["analogy", "{path}", "man", "king", "nobody"], "word 'nobody' is not in the vocabulary"),
    (["similar", "{missing}", "king"], "file not found"),
    (["evaluate", "{missing}"], "file not found"),
    (["similar", "{corrupt}", "king"], "truncated or corrupt"),
    (["similar", "{path}", "king", "--topn", "0"], "--topn 0: must be > 0"),
    (["convert", "{path}", "{tmp}/out.unknown"], "give --to"),
])
def test_bad_input_is_one_line_and_exit_2(vectors_file, tmp_path, capsys, argv, message):
    _kv, path = vectors_file
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(path.read_bytes()[:-20])
    values = dict(path=path, missing=tmp_path / "missing.bin", corrupt=corrupt, tmp=tmp_path)
    assert main([arg.format(**values) for arg in argv]) == 2
    assert message in one_error_line(capsys)


def test_evaluate_json_with_given_files(vectors_file, tmp_path, capsys):
    kv, path = vectors_file
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("king\tqueen\t8\nman\twoman\t7\ntiger\tcat\t6\nparis\tw1\t1\nrome\tunknown\t3\n")
    questions = tmp_path / "q.txt"
    questions.write_text(": capitals\nparis france rome italy\nrome italy paris france\n"
                         ": gram-x\nman woman king queen\n")
    assert main(["evaluate", str(path), "--similarity", str(pairs), "--analogies", str(questions),
                 "--method", "3cosmul", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["similarity"]["pairs_used"] == 4
    assert result["similarity"]["oov_ratio"] == pytest.approx(0.2)
    assert result["analogies"]["questions_used"] == 3
    assert [s["section"] for s in result["analogies"]["sections"]] == ["capitals", "gram-x"]
    from word2bert.evaluate import evaluate_word_analogies
    direct = evaluate_word_analogies(kv, questions, method="3cosmul")
    assert result["analogies"]["accuracy"] == direct["accuracy"]


def test_evaluate_table_uses_bundled_sets(vectors_file, capsys):
    _kv, path = vectors_file
    assert main(["evaluate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "wordsim353.tsv" in out and "questions-words.txt" in out
    assert "capital-common-countries" in out and "gram9-plural-verbs" in out and "total" in out


def test_convert_between_all_formats(vectors_file, tmp_path, capsys):
    kv, path = vectors_file
    chain = [("a.txt", []), ("b.glove", ["--to", "glove"]), ("c.npz", []), ("d.vec.gz", []), ("e.bin", [])]
    source = path
    for name, extra in chain:
        target = tmp_path / name
        assert main(["convert", str(source), str(target), *extra]) == 0
        assert "wrote 70 vectors" in capsys.readouterr().err
        back = KeyedVectors.load(target)
        assert back.index_to_key == kv.index_to_key
        np.testing.assert_allclose(back.vectors, kv.vectors, rtol=1e-6, atol=1e-7)
        source = target
    assert (tmp_path / "e.bin").read_bytes() == path.read_bytes()
    assert main(["convert", str(path), str(tmp_path / "top.txt"), "--limit", "5"]) == 0
    assert KeyedVectors.load(tmp_path / "top.txt").index_to_key == WORDS[:5]


def test_fasttext_models_are_read_by_the_vector_commands(tmp_path, capsys):
    """`similar` / `convert` take a fastText .bin (unknown words get n-gram vectors); a classifier
    .bin is sent to `predict`, and `predict` sends a word-vector .bin back."""
    from word2bert.static.classifier import FastTextClassifier
    from word2bert.static.fasttext import FastText

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"king queen man woman w{i % 7} w{(i * 3) % 7}\n" for i in range(200)))
    FastText(corpus_file=str(corpus), vector_size=16, min_count=1, epochs=1, bucket=1000, workers=1,
             progress=False).save(tmp_path / "unsup.bin")
    labelled = tmp_path / "labelled.txt"
    labelled.write_text("".join(f"__label__{'ab'[i % 2]} w{i % 7} king\n" for i in range(50)))
    FastTextClassifier(str(labelled), dim=16, epoch=1, bucket=1000, workers=1, progress=False).save(
        tmp_path / "clf.bin")
    assert main(["similar", str(tmp_path / "unsup.bin"), "kingly", "--topn", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["convert", str(tmp_path / "unsup.bin"), str(tmp_path / "unsup.vec")]) == 0
    assert "king" in KeyedVectors.load(tmp_path / "unsup.vec")
    capsys.readouterr()
    assert main(["similar", str(tmp_path / "clf.bin"), "king"]) == 2
    assert "is a fastText classifier: `word2bert predict`" in one_error_line(capsys)
    assert main(["predict", str(tmp_path / "unsup.bin"), str(labelled)]) == 2
    assert "holds fastText word vectors, not a classifier" in one_error_line(capsys)
