"""File helpers shared by every reader and writer: compressed text, atomic writes, and checkpoint
writes that a second Ctrl-C cannot cut short."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import secrets
import signal
import threading
from pathlib import Path

from word2bert.errors import Word2BertError

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _temporary_beside(path: Path, prefix: str, suffix: str) -> str:
    """Create a new empty file ``prefix<random>suffix`` in ``path``'s directory and return its name.

    Created like ``open()`` creates a file (mode ``0o666`` less the umask, which the kernel
    applies), not with ``mkstemp``'s ``0o600``, so the renamed output is readable as usual.
    """
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.exists():
        raise Word2BertError(f"directory does not exist: {directory}")
    while True:
        name = str(directory / f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return name
        except FileExistsError:
            continue


def is_compressed(path) -> bool:
    """Whether :func:`open_binary` decompresses ``path`` (by its extension: .gz, .bz2, .xz)."""
    return Path(path).suffix.lower() in _OPENERS


def open_binary(path) -> io.BufferedIOBase:
    """Open ``path`` for binary reading, decompressing .gz/.bz2/.xz by extension.

    A missing file or a directory raises Word2BertError naming the path.
    """
    path = Path(path)
    if not path.exists():
        raise Word2BertError(f"file not found: {path}")
    if path.is_dir():
        raise Word2BertError(f"expected a file but found a directory: {path}")
    opener = _OPENERS.get(path.suffix.lower(), open)
    return opener(path, "rb")


def open_text(path, encoding: str = "utf-8") -> io.TextIOBase:
    """Open ``path`` as text (any of plain/.gz/.bz2/.xz); undecodable bytes become U+FFFD."""
    return io.TextIOWrapper(open_binary(path), encoding=encoding, errors="replace", newline=None)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None):
    """Write to a temporary file beside ``path`` and rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched, so a
    reader never sees a half-written output. Compressed output is chosen by extension
    (.gz/.bz2/.xz) when ``mode`` is binary or text.
    """
    path = Path(path)
    tmp_name = _temporary_beside(path, f".{path.name}.", ".tmp")
    try:
        opener = _OPENERS.get(path.suffix.lower())
        if opener is not None:
            if "b" in mode:
                handle = opener(tmp_name, mode)
            else:
                handle = opener(tmp_name, mode.replace("w", "wt"), encoding=encoding or "utf-8")
        else:
            handle = open(tmp_name, mode, encoding=encoding if "b" not in mode else None)
        with handle:
            yield handle
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_save(path, writer, *args, **kwargs):
    """Call ``writer(tmp_path, *args, **kwargs)`` (e.g. np.save, torch.save) then rename to ``path``.

    For writers that want a file name rather than a handle. The temporary keeps the final
    suffix so that writers that append one (np.savez) do not change it.
    """
    path = Path(path)
    tmp_name = _temporary_beside(path, f".{path.stem}.", f".tmp{path.suffix}")
    try:
        writer(tmp_name, *args, **kwargs)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def interrupts_deferred(raise_after: bool = True):
    """Hold off SIGINT while the block runs (writing a checkpoint after a first Ctrl-C must survive
    a second one, or GNU ``timeout -s INT``, which signals the process and then its group). An
    interrupt that arrived meanwhile is raised when the block ends, unless ``raise_after=False``
    (the block runs in a handler that re-raises the first one anyway). Only the main thread
    receives signals; elsewhere the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received and raise_after:
        raise KeyboardInterrupt
