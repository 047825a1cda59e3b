"""Progress bars for long jobs: rate, ETA and the current loss/learning rate (tqdm)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress_bar(total=None, desc: str = "", unit: str = "word", disable: bool | None = None, **kwargs):
    """A tqdm bar on stderr with SI-scaled rates (``1.2Mword/s``) and ETA.

    ``disable=None`` hides it when stderr is not a terminal, so logs stay clean.
    """
    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True,
                disable=disable, file=sys.stderr, smoothing=0.1, **kwargs)
