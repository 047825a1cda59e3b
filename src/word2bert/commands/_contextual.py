"""What the contextual commands (``pretrain MODEL``, ``finetune``, ``encode``) share.

* :func:`require_contextual`: without PyTorch (or tokenizers / safetensors) a command says in one
  line what to install, before any work.
* :func:`pretrain_group`: the ``word2bert pretrain`` group; a model's command module adds its
  ``pretrain MODEL`` parser to it (``pretrain_group(commands).add_parser("gpt", ...)``).
* :func:`check_model_directory`: a Hugging Face layout directory (config.json); ``finetune`` and
  ``encode`` build whatever encoder its ``model_type`` names (:mod:`word2bert.models.auto`).
* :func:`train_and_save`: the end every ``pretrain MODEL`` shares: train (resuming with ``--resume``),
  Ctrl-C leaving a checkpoint, the model saved (or rescued to a fallback path), a JSON summary.
"""

from __future__ import annotations

import importlib
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from word2bert.errors import Word2BertError

_PACKAGES = {"torch": "PyTorch", "tokenizers": "Hugging Face tokenizers", "safetensors": "safetensors"}

INSTALL_HINT = ("pip install 'word2bert[contextual]' (for the CPU-only PyTorch, first: pip install torch "
                "--index-url https://download.pytorch.org/whl/cpu)")


def missing_message(command: str, missing: list[str]) -> str:
    names = [_PACKAGES.get(m, m) for m in missing]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "is" if len(names) == 1 else "are"
    return f"`word2bert {command}` needs {listed}, which {verb} not installed: {INSTALL_HINT}"


def require_contextual(command: str) -> None:
    """Raise a one-line Word2BertError naming what to install when a contextual dependency is missing."""
    missing = []
    for name in _PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise Word2BertError(missing_message(command, missing))


def pretrain_group(commands):
    """The sub-parser group of ``word2bert pretrain`` (created by the first module that asks)."""
    from word2bert.commands import subcommand_group

    return subcommand_group(commands, "pretrain", help="pre-train a contextual model",
                            description="Pre-train a contextual model; `word2bert pretrain MODEL --help` for its "
                                        "options.")


def check_model_directory(path, flag: str = "MODEL") -> Path:
    """A model directory with a config.json (Hugging Face layout)."""
    path = Path(path)
    if not path.exists():
        raise Word2BertError(f"model directory not found: {path}")
    if not path.is_dir():
        raise Word2BertError(f"{flag} {path} is a file; give the model's directory (config.json, weights, vocabulary)")
    if not (path / "config.json").is_file():
        raise Word2BertError(f"{path} has no config.json: not a model directory (Hugging Face layout)")
    return path


def read_config_file(path) -> dict:
    """The fields of a ``--config`` JSON file (its ``model_type`` dropped: the command decides the class),
    read by :func:`~word2bert.interop.huggingface.read_json_object` (a clear message when the file is
    missing, not JSON, or not an object)."""
    from word2bert.interop.huggingface import read_json_object

    values = read_json_object(path)
    values.pop("model_type", None)
    return values


def format_metrics(metrics: dict) -> str:
    """``accuracy 0.950, examples 40`` (floats to 4 significant digits, counts with separators)."""
    parts = []
    for key, value in metrics.items():
        name = key.replace("_", " ")
        if isinstance(value, bool) or value is None:
            parts.append(f"{name} {value}")
        elif isinstance(value, int):
            parts.append(f"{name} {value:,}")
        elif isinstance(value, float):
            parts.append(f"{name} {value:.4g}")
        elif isinstance(value, dict):
            parts.append(format_metrics(value))
        else:
            parts.append(f"{name} {value}")
    return ", ".join(parts)


#: Where a contextual training command records the flags its run was started with.
TRAINING_ARGUMENTS = "training_args.json"


def save_training_arguments(args, output) -> None:
    """Write the run's settings (``vars(args)`` without internals) to OUT/training_args.json, so that
    ``--resume`` can refuse flags that contradict them (:func:`resume_training_arguments`)."""
    import json

    from word2bert.fileio import atomic_write

    values = {k: v for k, v in vars(args).items()
              if not k.startswith("_") and not callable(v) and isinstance(v, (str, int, float, bool, type(None)))}
    with atomic_write(Path(output) / TRAINING_ARGUMENTS, "w", encoding="utf-8") as handle:
        json.dump(values, handle, indent=2)
        handle.write("\n")


def resume_training_arguments(args, output, resumable) -> None:
    """With ``--resume``: a flag given on the command line that contradicts the value in
    OUT/training_args.json is refused (one Word2BertError naming every conflict, see
    :func:`word2bert.commands.check_resume_flags`); flags not given take the saved values, so the
    run continues with the settings it was started with. ``resumable``: flags that may change
    (steps, threads, progress, ...). A run that left no training_args.json is continued as before."""
    import json

    from word2bert.commands import check_resume_flags

    path = Path(output) / TRAINING_ARGUMENTS
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    checked = {dest: (lambda _saved, d=dest: saved[d]) for dest in saved
               if dest not in resumable and hasattr(args, dest)}
    check_resume_flags(args, saved, checked, getattr(args, "_leaf_parser", None))
    given = getattr(args, "_given", set())
    for dest in checked:
        if dest not in given:
            setattr(args, dest, saved[dest])


@contextmanager
def training_run_directory(args, output, resumable):
    """The output directory of a training command's run, around the run itself.

    ``--resume``: check the flags against OUT/training_args.json (:func:`resume_training_arguments`).
    A fresh run: create OUT and write training_args.json first; when the run then fails before it
    left a checkpoint (bad input found while reading the data, ...), the directory it created is
    removed again, so nothing half-written stays behind.
    """
    import os

    from word2bert.train.checkpoint import find_checkpoint

    output = Path(output)
    if getattr(args, "resume", False):
        resume_training_arguments(args, output, resumable)
        yield output
        return
    if os.environ.get("RANK", "0") != "0":      # under torchrun, process 0 writes
        yield output
        return
    created = not output.exists()
    try:
        output.mkdir(parents=True, exist_ok=True)
        save_training_arguments(args, output)
        yield output
    except BaseException:
        if created and find_checkpoint(output) is None:
            shutil.rmtree(output, ignore_errors=True)
        raise


def save_pretrained_with(model, *others):
    """A ``save(directory)`` for :func:`train_and_save`: the model's ``save_pretrained`` and each of
    ``others``' ``save`` (a tokenizer, say) into one directory, created if needed."""

    def save(directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(directory)
        for other in others:
            other.save(directory)

    return save


def train_and_save(trainer, output, resume: bool, save, what: str = "model", **summary_extra) -> int:
    """Train, save, summarise; return the command's exit status.

    ``trainer.train`` runs (from the checkpoint in ``output`` when ``resume``). Ctrl-C leaves the
    trainer's checkpoint there, says how to continue and returns 130. Then, on the first process only,
    ``save(directory)`` writes the model to ``output`` (or, when that fails, to a fallback path that
    the error names: :func:`word2bert.commands.save_or_rescue`) and one JSON line summarises the run:
    ``steps``, ``tokens``, ``final_loss``, the last held-out ``evaluation`` and ``summary_extra``.
    """
    import json
    import sys

    from word2bert.commands import save_or_rescue

    try:
        state = trainer.train(resume_from=output if resume else None)
    except KeyboardInterrupt:
        if trainer.rank == 0:
            print(f"word2bert: interrupted; checkpoint saved in {output} (continue with --resume)", file=sys.stderr)
        return 130
    if trainer.rank != 0:
        return 0
    save_or_rescue(save, output, what)
    summary = {"steps": state.global_step, "tokens": state.tokens_seen,
               "final_loss": state.history[-1]["loss"] if state.history else None,
               "evaluation": state.evaluations[-1] if state.evaluations else None, **summary_extra}
    print(json.dumps(summary))
    return 0


def tokenizer_stream(path, tokenizer, separator_id: int, chunk_lines: int = 4096) -> np.ndarray:
    """The corpus as one int32 token stream: each non-empty line's ids (``tokenizer.ids_batch``, read
    ``chunk_lines`` lines at a time) followed by ``separator_id`` (GPT's <|endoftext|>, XLNet's <sep>)."""
    from word2bert.fileio import open_text

    pieces, lines = [], []
    separator = np.array([separator_id], dtype=np.int32)

    def flush():
        for ids in tokenizer.ids_batch(lines):
            if len(ids):
                pieces.append(np.asarray(ids, dtype=np.int32))
                pieces.append(separator)
        lines.clear()

    with open_text(path) as handle:
        for line in handle:
            line = line.strip()
            if line:
                lines.append(line)
            if len(lines) >= chunk_lines:
                flush()
    flush()
    if not pieces:
        raise Word2BertError(f"the corpus {path} is empty: no text to pre-train on")
    return np.concatenate(pieces)
