import functools
import http.server
import io
import threading
import zipfile

import pytest

from word2bert import datasets
from word2bert.cli import main
from word2bert.errors import Word2BertError


@pytest.fixture
def http_root(tmp_path):
    """Serve ``tmp_path/www`` on a loopback port for the duration of a test."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def make_text8_zip(path, text):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("text8", text)
    path.write_bytes(buffer.getvalue())


def test_download_fetches_and_unpacks_over_loopback(http_root, tmp_path):
    root, base = http_root
    make_text8_zip(root / "text8.zip", " anarchism originated as a term of abuse")
    target = datasets.download("text8", directory=tmp_path / "cache", url=f"{base}/text8.zip")
    assert target.read_text() == " anarchism originated as a term of abuse"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["text8"]  # no temporary left
    # a second call reuses the file without the network
    assert datasets.download("text8", directory=tmp_path / "cache", url=f"{base}/missing.zip") == target


def test_download_failure_is_clear_and_leaves_nothing(http_root, tmp_path, capsys):
    _, base = http_root
    with pytest.raises(Word2BertError, match="could not download .*missing.zip"):
        datasets.download("text8", directory=tmp_path / "cache", url=f"{base}/missing.zip")
    assert list((tmp_path / "cache").iterdir()) == []
    assert main(["download", "text8", "--dir", str(tmp_path / "c2"), "--url", f"{base}/missing.zip"]) == 2
    assert "could not download" in capsys.readouterr().err


def test_corrupt_archive_is_reported(http_root, tmp_path):
    root, base = http_root
    (root / "text8.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(Word2BertError, match="not usable"):
        datasets.download("text8", directory=tmp_path / "cache", url=f"{base}/text8.zip")
    assert list((tmp_path / "cache").iterdir()) == []


def test_demo_corpus_comes_from_the_standard_library(tmp_path):
    path = datasets.demo_corpus(tmp_path / "docs.txt")
    lines = path.read_text().splitlines()
    words = sum(len(line.split()) for line in lines)
    assert len(lines) > 500 and words > 300_000
    assert all(line == datasets.normalise(line) for line in lines[:50])
    vocabulary = set(" ".join(lines).split())
    assert {"file", "thread", "socket", "return", "string"} <= vocabulary
