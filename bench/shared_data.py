"""Where the benchmarks find ../shared/data: beside the checkout (a clone at /work/main reads /work/shared/data)
or beside the main clone of a worktree (/work/wt/NAME reads /work/shared/data too)."""

from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def find_shared_data() -> Path:
    """The first ``shared/data`` folder found walking up from the repository; ``../shared/data`` if none
    (the scripts then name that path in their "file not found" messages)."""
    for folder in _REPO.parents:
        if (folder / "shared" / "data").is_dir():
            return folder / "shared" / "data"
    return _REPO.parent / "shared" / "data"


DATA = find_shared_data()
