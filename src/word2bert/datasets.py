"""Corpora that need no files from the user: the built-in demo corpus and downloads.

The demo corpus is made from text every Python installation has: the docstrings and
comments of the standard library and the pydoc topic pages that ship with the
interpreter. It is English prose about programming, about a million tokens, lower-cased
to ``a-z`` words as text8 is, one document per source file.

For users who are online, :func:`download` fetches a standard corpus (text8) into the
cache directory with a progress bar; the download goes to a temporary file and is
renamed only when complete.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import sysconfig
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from word2bert.errors import Word2BertError
from word2bert.fileio import atomic_write
from word2bert.progress import progress_bar

CORPORA = {
    "text8": {
        "url": "http://mattmahoney.net/dc/text8.zip",
        "member": "text8",
        "description": "first 10^8 bytes of English Wikipedia, cleaned (17M words)",
    },
}

_TRIPLE_QUOTED = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', re.S)
_COMMENT = re.compile(r"^\s*#(.*)$", re.M)
_WORD = re.compile(r"[a-z]+")


def _make_directory(path: Path, what: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Word2BertError(f"cannot create the {what} {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise Word2BertError(f"the {what} {path} is not writable")
    return path


def cache_dir() -> Path:
    """``$WORD2BERT_HOME`` or ``~/.cache/word2bert``, created if needed."""
    root = Path(os.environ.get("WORD2BERT_HOME") or Path.home() / ".cache" / "word2bert")
    return _make_directory(root, "cache directory ($WORD2BERT_HOME or ~/.cache/word2bert)")


def normalise(text: str) -> str:
    """Lower-case and keep runs of ``a-z`` separated by single spaces (text8 style)."""
    return " ".join(_WORD.findall(text.lower()))


def stdlib_documents():
    """Yield one text8-style document per standard-library source file, plus pydoc topics."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        if "site-packages" in path.parts:
            continue
        try:
            source = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        pieces = [a or b for a, b in _TRIPLE_QUOTED.findall(source)]
        pieces += _COMMENT.findall(source)
        document = normalise(" ".join(pieces))
        if document:
            yield document
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data
        topics = {}
    for text in topics.values():
        document = normalise(text)
        if document:
            yield document


def demo_corpus(path: Path | None = None) -> Path:
    """Write (once) and return the demo corpus file built from the Python standard library."""
    path = Path(path) if path is not None else cache_dir() / "python-docs.txt"
    if not path.exists():
        with atomic_write(path, "w", encoding="utf-8") as out:
            n_documents = 0
            for document in stdlib_documents():
                out.write(document + "\n")
                n_documents += 1
        if n_documents == 0:
            path.unlink()
            raise Word2BertError("found no standard-library sources to build the demo corpus from")
    return path


def download(name: str, directory: Path | None = None, url: str | None = None, timeout: float = 60.0) -> Path:
    """Download corpus ``name`` (see ``CORPORA``) into ``directory`` and return the text file.

    ``url`` overrides the corpus' address (a mirror, or a local server in tests). An
    existing complete file is reused. Zip archives are unpacked and removed.
    """
    if name not in CORPORA:
        raise Word2BertError(f"unknown corpus {name!r}; available: {', '.join(sorted(CORPORA))}")
    spec = CORPORA[name]
    directory = _make_directory(Path(directory), "directory") if directory is not None else cache_dir()
    target = directory / spec["member"]
    if target.exists():
        return target
    url = url or spec["url"]
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".download", dir=directory)
    except OSError as exc:
        raise Word2BertError(f"cannot write in {directory}: {exc.strerror or exc}") from None
    try:
        _fetch(url, fd, tmp_name, target, name, spec, timeout)
    except (OSError, http.client.HTTPException) as exc:  # disk full, connection lost: the partial file goes
        raise Word2BertError(f"download of {url} into {directory} failed: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def _fetch(url, fd, tmp_name, target, name, spec, timeout) -> None:
    """Stream ``url`` into the temporary file ``fd``/``tmp_name``, then unpack or rename it to ``target``."""
    with os.fdopen(fd, "wb") as out:
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Word2BertError(f"could not download {url}: {reason}") from None
        with response:
            total = response.headers.get("Content-Length")
            with progress_bar(total=int(total) if total else None, desc=f"download {name}",
                              unit="B") as bar:
                while True:
                    chunk = response.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
            if total and out.tell() != int(total):
                raise Word2BertError(f"download of {url} ended early: {out.tell()} of {total} bytes")
    if url.endswith(".zip") or zipfile.is_zipfile(tmp_name):
        try:
            with zipfile.ZipFile(tmp_name) as archive, archive.open(spec["member"]) as member, \
                    atomic_write(target, "wb") as out:
                shutil.copyfileobj(member, out, 1 << 20)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise Word2BertError(f"downloaded archive from {url} is not usable: {exc}") from None
    else:
        os.replace(tmp_name, target)
