"""Atomic writes: the output appears whole or not at all, with the permissions open() would give."""

import os
import signal

import numpy as np
import pytest

from word2bert.fileio import atomic_save, atomic_write, interrupts_deferred


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_atomic_outputs_get_the_permissions_of_a_plain_open(tmp_path, umask_022):
    with atomic_write(tmp_path / "vectors.txt", "w") as handle:
        handle.write("a 1.0\n")
    atomic_save(tmp_path / "model.npz", lambda name: np.savez(name, x=np.zeros(2)))
    with open(tmp_path / "plain.txt", "w") as handle:
        handle.write("x")
    expected = os.stat(tmp_path / "plain.txt").st_mode & 0o777
    assert expected == 0o644
    for name in ("vectors.txt", "model.npz"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == expected


def test_a_failed_write_leaves_neither_output_nor_temporary(tmp_path):
    (tmp_path / "out.txt").write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "out.txt", "w") as handle:
        handle.write("half")
        raise RuntimeError("disk full")
    assert (tmp_path / "out.txt").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_second_ctrl_c_does_not_cut_a_checkpoint_write_short(tmp_path):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)  # an impatient double Ctrl-C, or `timeout -s INT`
                with atomic_write(tmp_path / "checkpoint.npz", "wb") as handle:
                    handle.write(b"complete")
        assert (tmp_path / "checkpoint.npz").read_bytes() == b"complete"
        with interrupts_deferred(raise_after=False):
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
