"""CLI sub-commands; each public module defines ``register(commands, train_commands)`` (see cli.py).

The helpers below serve every command that writes a model:

* outputs are checked before any work (:func:`check_output_file`, :func:`prepare_output_directory`),
  so a training run never ends in an unwritable path, and a save that still fails at the end
  goes to a fallback path that the error names (:func:`save_or_rescue`);
* ``--resume`` continues a checkpoint with its own settings and refuses flags that contradict
  them (:func:`check_resume_flags`); a fresh run does not silently discard the checkpoint of an
  interrupted one (:func:`claim_checkpoint`).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from word2bert.errors import Word2BertError

# ---------------------------------------------------------------------------------------------
# outputs


def _writable_directory(directory: Path, what: str) -> None:
    """Raise unless a file can be created in ``directory`` (tried, not guessed from permissions)."""
    if not directory.exists():
        raise Word2BertError(f"directory does not exist: {directory} (for {what})")
    if not directory.is_dir():
        raise Word2BertError(f"{directory} is not a directory (for {what})")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".word2bert-write-test."):
            pass
    except OSError as exc:
        raise Word2BertError(f"cannot write in {directory} (for {what}): {exc.strerror or exc}") from None


def check_output_file(path, flag: str = "-o") -> Path:
    """``path`` names a file that can be written: not a directory, in a writable directory."""
    path = Path(path)
    what = f"{flag} {path}"
    if path.is_dir():
        raise Word2BertError(f"{flag} {path} is a directory; give the path of a file (in it or elsewhere)")
    _writable_directory(path.parent if str(path.parent) else Path("."), what)
    return path


def prepare_output_directory(path, flag: str = "-o", overwrite: bool = False, resume: bool = False,
                             marker: str = "config.json") -> tuple[Path, bool]:
    """Check an output directory as Hugging Face's scripts do; returns ``(path, exists)``.

    A non-empty directory is refused unless ``overwrite`` (replace what is there: its training
    checkpoint is deleted at once, so that a later ``--resume`` cannot continue the replaced run) or
    ``resume`` (continue the run whose checkpoint is there). The directory is not created here, so a
    failed check leaves nothing behind. Under torchrun only process 0 checks.
    """
    path = Path(path)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, process 0 checks (and creates) the directory
        return path, path.exists()
    if path.exists() and not path.is_dir():
        raise Word2BertError(f"{flag} {path} is a file; give a directory for the model")
    if path.is_dir():
        _writable_directory(path, f"{flag} {path}")
        if overwrite and not resume:  # the run that --resume would find is the one being replaced
            (path / "checkpoint.pt").unlink(missing_ok=True)
        if any(path.iterdir()) and not (overwrite or resume):
            kind = "a model" if (path / marker).exists() else "files"
            raise Word2BertError(f"output directory {path} already holds {kind}; give --overwrite to replace it"
                                 + (" or --resume to continue its run" if kind == "a model" else "")
                                 + ", or another -o")
        return path, True
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    _writable_directory(ancestor, f"{flag} {path}")
    return path, False


def add_overwrite_option(parser) -> None:
    """``--overwrite`` for a command whose ``-o`` is a model directory (see :func:`prepare_output_directory`)."""
    parser.add_argument("--overwrite", "--overwrite-output-dir", action="store_true",
                        help="train from scratch into a non-empty output directory, replacing its model and checkpoint")


def _rescue_locations(name: str):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for directory in (Path.cwd(), Path.home(), Path(tempfile.gettempdir())):
        yield directory / f"word2bert-rescued-{stamp}-{name}"


def save_or_rescue(save, path, what: str = "model"):
    """``save(path)``; when that fails (disk full, directory removed, permissions changed during
    training), ``save(fallback)`` in the current directory, the home directory or the temporary
    directory, and a Word2BertError that names where the trained model went."""
    path = Path(path)
    try:
        return save(path)
    except (OSError, Word2BertError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        for fallback in _rescue_locations(path.name or "model"):
            try:
                save(fallback)
            except (OSError, Word2BertError):
                continue
            raise Word2BertError(f"could not write the {what} to {path} ({reason}); it was saved to "
                                 f"{fallback} instead") from None
        raise Word2BertError(f"could not write the {what} to {path} ({reason}), nor to a fallback in the current, "
                             f"home or temporary directory") from None


def check_finite(vectors, what: str = "the trained vectors") -> None:
    """Refuse to save vectors holding NaN or infinity (a run that diverged).

    One float64 sum over the matrix (NaN and infinities propagate through it; float32 values
    cannot overflow it), then the rows are counted only when something is wrong."""
    import numpy as np

    if vectors is None or math.isfinite(float(np.sum(vectors, dtype=np.float64))):
        return
    rows = int((~np.isfinite(vectors).all(axis=1)).sum())
    raise Word2BertError(f"training diverged: {rows:,} of {len(vectors):,} rows of {what} are NaN or infinite "
                         "(lower the learning rate, --alpha / --lr); nothing was written")


def check_finite_model(model) -> None:
    """:func:`check_finite` on a static model's input and output rows."""
    for name in ("input_vectors", "output_vectors"):
        check_finite(getattr(model, name, None), f"the model's {name.replace('_', ' ')}")


@contextlib.contextmanager
def naming_input(path):
    """An "empty" error raised while reading ``path`` names the file (the readers' messages may not)."""
    try:
        yield
    except Word2BertError as exc:
        if "empty" in str(exc) and str(path) not in str(exc):
            raise Word2BertError(f"{path}: {exc}") from None
        raise


# ---------------------------------------------------------------------------------------------
# checkpoints and --resume


def checkpoint_path(output) -> Path:
    """Where an interrupted run writing ``output`` leaves its checkpoint: ``OUTPUT.checkpoint.npz``."""
    return Path(str(output) + ".checkpoint.npz")


def claim_checkpoint(output, args) -> Path:
    """The checkpoint path of this run; a checkpoint left there by an interrupted run is refused
    unless this run continues it (``--resume``) or discards it (``--overwrite``)."""
    checkpoint = checkpoint_path(output)
    resume = getattr(args, "resume", None)
    if checkpoint.exists() and not resume:
        if not getattr(args, "overwrite", False):
            raise Word2BertError(f"{checkpoint} holds an interrupted run: continue it with --resume {checkpoint}, "
                                 "or start afresh with --overwrite (which deletes it)")
        checkpoint.unlink()
    return checkpoint


def resume_from(load, path, interrupted=lambda model: getattr(model, "_resume_state", None) is not None):
    """``load(path)`` for ``--resume path``, which must be the checkpoint of an interrupted run
    (``interrupted(model)``: by default a model whose ``_resume_state`` says where it stopped),
    not a finished model nor another kind of file."""
    path = Path(path)
    if not path.is_file():
        raise Word2BertError(f"--resume: file not found: {path}")
    hint = "a checkpoint is the OUT.checkpoint.npz file that Ctrl-C leaves beside the output"
    if not zipfile.is_zipfile(path):
        raise Word2BertError(f"--resume {path}: not a checkpoint ({hint})")
    try:
        model = load(path)
    except Word2BertError as exc:
        raise Word2BertError(f"--resume {path}: not a checkpoint of this model ({exc})") from None
    except Exception as exc:  # a foreign .npz or zip: the loader's own message names Python internals
        raise Word2BertError(f"--resume {path}: not a checkpoint of this model ({type(exc).__name__}; {hint})") \
            from None
    if not interrupted(model):
        raise Word2BertError(f"--resume {path}: a finished model, not the checkpoint of an interrupted run ({hint})")
    return model


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return a == b


def check_resume_flags(args, model, settings: dict, parser=None) -> None:
    """Refuse flags given with ``--resume`` that contradict the checkpoint's settings.

    ``settings`` maps an argument (``args.<dest>``) to the model attribute it sets (or a
    function of the model). Flags given with the checkpoint's own value are accepted.
    """
    given = getattr(args, "_given", set())
    conflicts = []
    for dest, attribute in settings.items():
        if dest not in given:
            continue
        value = getattr(args, dest)
        saved = attribute(model) if callable(attribute) else getattr(model, attribute, None)
        if not _same(value, saved):
            conflicts.append(f"{_flag(dest, parser)} {_shown(value)} (the checkpoint's: {_shown(saved)})")
    if conflicts:
        raise Word2BertError("--resume continues the checkpoint's run with its own settings, but "
                             + "; ".join(conflicts)
                             + ": drop those flags, or start a new run without --resume")


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _flag(dest: str, parser=None) -> str:
    if parser is not None:
        for action in parser._actions:
            if action.dest == dest and action.option_strings:
                long = [s for s in action.option_strings if s.startswith("--")]
                return (long or action.option_strings)[0]
    return "--" + dest.replace("_", "-")


def remove_checkpoint(checkpoint: Path) -> None:
    """Remove the checkpoint of a run that has now completed."""
    if checkpoint.exists():
        checkpoint.unlink()


def subcommand_group(commands, name: str, help: str = "", description: str = ""):
    """The sub-parser group of ``word2bert NAME MODEL`` (e.g. ``pretrain``): the one an earlier command
    module created, or a new one. Lets each model's module add ``word2bert pretrain <model>``."""
    import argparse
    import sys

    parser = commands.choices.get(name)
    if parser is None:
        from word2bert.cli import HelpfulFormatter

        parser = commands.add_parser(name, help=help, formatter_class=HelpfulFormatter, description=description)
        group = parser.add_subparsers(title="models", dest=f"{name}_model", metavar="MODEL")

        def missing(args) -> int:
            parser.print_help(sys.stderr)
            print(f"\n{parser.prog}: error: give a model", file=sys.stderr)
            return 2

        parser.set_defaults(func=missing)
        return group
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError(f"the {name!r} command has no model sub-commands")


def say(*parts, quiet: bool = False) -> None:
    """A status line on stderr (stdout stays for results)."""
    if not quiet:
        print(*parts, file=sys.stderr)


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 label``, ``2 labels``, ``1,234 words``, ``3 entries``."""
    if count == 1:
        return f"{count:,} {noun}"
    if plural_form is None:
        plural_form = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
    return f"{count:,} {plural_form}"


__all__ = ["check_output_file", "prepare_output_directory", "add_overwrite_option", "save_or_rescue",
           "check_finite", "check_finite_model", "checkpoint_path", "claim_checkpoint", "resume_from",
           "check_resume_flags", "naming_input",
           "remove_checkpoint", "say", "plural", "subcommand_group"]
