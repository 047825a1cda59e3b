"""Progress bars for long jobs: rate, ETA and the current loss/learning rate (tqdm); a spinner for
waits without a count."""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time

from tqdm.auto import tqdm


def progress_bar(total=None, desc: str = "", unit: str = "word", disable: bool | None = None, **kwargs):
    """A tqdm bar on stderr with SI-scaled rates (``1.2Mword/s``) and ETA.

    ``disable=None`` hides it when stderr is not a terminal, so logs stay clean.
    """
    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True,
                disable=disable, file=sys.stderr, smoothing=0.1, **kwargs)


@contextlib.contextmanager
def spinner(message: str, disable: bool | None = None, delay: float = 0.3):
    """Show ``message`` with a spinner and the seconds elapsed on stderr while the block runs (a wait
    that has no progress to count, such as compiling). Nothing when stderr is not a terminal
    (``disable=None``) or when the block ends within ``delay`` seconds; the line is cleared at the end.
    """
    if disable is None:
        disable = not sys.stderr.isatty()
    if disable:
        yield
        return
    done = threading.Event()
    start = time.perf_counter()

    def spin():
        if done.wait(delay):
            return
        for frame in itertools.cycle("|/-\\"):
            sys.stderr.write(f"\r{message} {frame} {time.perf_counter() - start:.0f}s")
            sys.stderr.flush()
            if done.wait(0.2):
                break
        sys.stderr.write("\r" + " " * (len(message) + 12) + "\r")
        sys.stderr.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
