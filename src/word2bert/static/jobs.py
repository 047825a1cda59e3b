"""How every static model trains: jobs, threads, the learning-rate schedule, progress, Ctrl-C and resume.

A training run is a list of :class:`Job` s: consecutive chunks of the corpus (sentences, lines,
documents or co-occurrence blocks), epoch after epoch, each with the learning rate at its start and
end and its own random seed. :func:`run_jobs` runs them on ``workers`` Python threads; the kernels
release the GIL, so the threads train in parallel on shared matrices (Hogwild). Jobs start in
order, at most ``2 * workers`` at a time, and an epoch's jobs all finish before the next epoch's
start (its callbacks then see the model of that epoch). With one worker the jobs run strictly in
order, so a run interrupted and resumed ends bit for bit where the uninterrupted run does.

Ctrl-C: while jobs run, SIGINT only asks them to stop (no exception lands in the middle of
anything): no new job starts, the running ones finish, the checkpoint is written, and only then is
:class:`TrainingInterrupted` (a ``KeyboardInterrupt``) raised. More SIGINTs meanwhile (an impatient
second Ctrl-C, or GNU ``timeout -s INT`` signalling the process and then its group) are noted and
do not stop the checkpoint from being written.
"""

from __future__ import annotations

import concurrent.futures as futures
import signal
import sys
import threading
from typing import Callable, NamedTuple

import numpy as np

from word2bert.errors import Word2BertError


class Job(NamedTuple):
    """Sentences (lines, documents, blocks) ``[first, last)`` of ``epoch``; the learning rate runs from
    ``alpha_start`` to ``alpha_end`` over it; ``seed`` starts its random stream."""

    epoch: int
    first: int
    last: int
    alpha_start: float
    alpha_end: float
    seed: int


def chunk_bounds(offsets: np.ndarray, target_tokens: int = 50_000) -> list[tuple[int, int]]:
    """Split sentences into consecutive ranges of about ``target_tokens`` tokens each
    (``offsets[i]`` is where sentence ``i`` starts; a sentence is never split)."""
    n = len(offsets) - 1
    if n <= 0:
        return []
    marks = np.searchsorted(offsets, np.arange(target_tokens, offsets[-1], target_tokens), side="left")
    cuts = np.unique(np.concatenate([[0], marks, [n]]))
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def schedule(offsets: np.ndarray, epochs: int, alpha: float, min_alpha: float, seed: int,
             target_tokens: int = 50_000) -> list[Job]:
    """The jobs of ``epochs`` passes over a corpus with sentence ``offsets``.

    The learning rate decays linearly with the position in the whole run,
    ``alpha(t) = alpha - (alpha - min_alpha) * t / (epochs * tokens)`` (word2vec.c, gensim and
    fastText). A corpus without tokens has no jobs.
    """
    bounds = chunk_bounds(offsets, target_tokens)
    total = float(offsets[-1]) * epochs if len(offsets) else 0.0
    if total <= 0:
        return []
    jobs = []
    position = 0
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        for first, last in bounds:
            size = int(offsets[last] - offsets[first])
            a0 = alpha - (alpha - min_alpha) * position / total
            position += size
            a1 = alpha - (alpha - min_alpha) * position / total
            jobs.append(Job(epoch, first, last, a0, a1, int(rng.integers(1, 2**62))))
    return jobs


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_jobs`, raised once the running jobs have finished (and the checkpoint,
    if one was asked for, is written): the matrices then hold exactly the first ``jobs_done`` jobs,
    and ``loss``/``examples``/``tokens`` are those of the whole run so far."""

    def __init__(self, jobs_done: int, loss: float, examples: int, tokens: int, checkpoint=None):
        super().__init__(f"interrupted after {jobs_done} jobs")
        self.jobs_done = jobs_done
        self.loss = loss
        self.examples = examples
        self.tokens = tokens
        self.checkpoint = checkpoint


class Totals(NamedTuple):
    """What :func:`run_jobs` returns: the sums over the run (a resumed run included) of the jobs'
    ``(loss, examples, tokens)``, and per epoch of this call."""

    loss: float
    examples: int
    tokens: int
    epochs: dict


class _CtrlC:
    """While active (in the main thread), SIGINT sets ``requested`` instead of raising, and says so."""

    def __init__(self, what: str, progress, checkpoint):
        self.what = what
        self.progress = progress
        self.checkpoint = checkpoint
        self.requested = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._handler)
            except ValueError:  # not the main interpreter
                self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None
        return False

    def _handler(self, signum, frame):
        if not self.requested:
            self.requested = True
            then = "; then the checkpoint is written" if self.checkpoint is not None else ""
            self.say(f"{self.what}: interrupted: finishing the running jobs{then}")
        elif self.checkpoint is not None:
            self.say(f"{self.what}: still stopping; the checkpoint is being written, please wait")

    def say(self, message: str) -> None:
        if self.progress is not None and hasattr(self.progress, "write"):
            self.progress.write(message, file=sys.stderr)  # above the bar, not through it
        else:
            print(message, file=sys.stderr)


def resume_state(jobs, corpus_size: int, jobs_done: int, loss: float, examples: int, tokens: int) -> dict:
    """What a checkpoint keeps to continue a run: the jobs done and the run's shape (JSON-ready)."""
    epoch = jobs[jobs_done].epoch if jobs_done < len(jobs) else (jobs[-1].epoch + 1 if jobs else 0)
    return {"jobs_done": int(jobs_done), "n_jobs": len(jobs), "corpus_size": int(corpus_size), "epoch": int(epoch),
            "loss": float(loss), "examples": int(examples), "tokens": int(tokens)}


def run_jobs(call: Callable, jobs: list, workers: int, *, progress=None, sizes=None, resume: dict | None = None,
             corpus_size: int | None = None, checkpoint=None, save: Callable | None = None, what: str = "training",
             on_epoch_begin: Callable | None = None, on_epoch_end: Callable | None = None) -> Totals:
    """Run ``call(job) -> (loss, examples, tokens)`` over ``jobs`` on ``workers`` threads.

    ``progress`` (a tqdm bar) advances by each job's ``tokens``; ``sizes[j]`` (the tokens of job ``j``)
    moves it past the jobs a resumed run skips. ``resume`` is ``None`` or the state of an
    interrupted run (:func:`resume_state`), which must have been made on the same jobs of a corpus
    of ``corpus_size`` tokens; its first ``jobs_done`` jobs are skipped and its sums carried on.
    ``on_epoch_begin(epoch)`` and ``on_epoch_end(epoch, loss, examples, tokens)`` run in the calling
    thread between epochs; with either, an epoch's jobs all finish before the next epoch's start
    (without, jobs run on across epochs, so no thread waits at an epoch's end). On Ctrl-C (or a ``KeyboardInterrupt`` from a callback) no new job starts,
    the started ones finish, ``save(checkpoint, state)`` writes the checkpoint when a ``checkpoint``
    path is given, and :class:`TrainingInterrupted` is raised. Returns :class:`Totals`.
    """
    workers = max(1, int(workers))
    corpus_size = int(corpus_size) if corpus_size is not None else 0
    first_job, loss, examples, tokens = 0, 0.0, 0, 0
    if resume is not None:
        if resume["n_jobs"] != len(jobs) or resume["corpus_size"] != corpus_size:
            raise Word2BertError(f"the {what} checkpoint was made on another corpus or with other epochs "
                                 f"({resume['corpus_size']:,} tokens, {resume['n_jobs']} jobs; now {corpus_size:,} "
                                 f"tokens, {len(jobs)} jobs): resume with the corpus it was trained on")
        first_job = int(resume["jobs_done"])
        loss, examples, tokens = float(resume["loss"]), int(resume["examples"]), int(resume["tokens"])
        if progress is not None and sizes is not None:
            progress.update(int(np.sum(sizes[:first_job])))
    per_epoch: dict = {}
    sums = [loss, examples, tokens]

    def account(epoch, result):
        job_loss, job_examples, job_tokens = float(result[0]), int(result[1]), int(result[2])
        sums[0] += job_loss
        sums[1] += job_examples
        sums[2] += job_tokens
        epoch_sums = per_epoch.setdefault(epoch, [0.0, 0, 0])
        epoch_sums[0] += job_loss
        epoch_sums[1] += job_examples
        epoch_sums[2] += job_tokens
        if progress is not None:
            progress.update(job_tokens)
            if sums[1]:
                progress.set_postfix(loss=f"{sums[0] / sums[1]:.4f}", refresh=False)

    barrier = on_epoch_begin is not None or on_epoch_end is not None
    next_job = first_job
    error = None
    ctrl_c = _CtrlC(what, progress, checkpoint)
    with ctrl_c, futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending: dict = {}
        epoch = jobs[first_job].epoch if first_job < len(jobs) else None
        try:
            if epoch is not None and on_epoch_begin is not None:
                on_epoch_begin(epoch)
            while epoch is not None and not ctrl_c.requested:
                while next_job < len(jobs) and (jobs[next_job].epoch == epoch or not barrier) and \
                        len(pending) < 2 * workers:
                    pending[pool.submit(call, jobs[next_job])] = jobs[next_job].epoch
                    next_job += 1
                if pending:
                    done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                    for item in done:
                        account(pending.pop(item), item.result())
                    continue
                # every job of the epoch is done
                if on_epoch_end is not None:
                    on_epoch_end(epoch, *per_epoch.get(epoch, (0.0, 0, 0)))
                epoch = jobs[next_job].epoch if next_job < len(jobs) else None
                if epoch is not None and on_epoch_begin is not None and not ctrl_c.requested:
                    on_epoch_begin(epoch)
        except KeyboardInterrupt:  # from a callback, or Ctrl-C outside the main thread
            ctrl_c.requested = True
        except BaseException as exc:  # a failing job or callback: stop starting jobs, then raise it
            error = exc
        try:
            for item in list(pending):
                try:
                    account(pending.pop(item), item.result())
                except Exception as exc:
                    error = error or exc
        except KeyboardInterrupt:  # outside the main thread nothing defers it: wait on
            ctrl_c.requested = True
            for item in list(pending):
                account(pending.pop(item), item.result())
        if error is not None:
            raise error
        if ctrl_c.requested:
            if checkpoint is not None and save is not None:
                save(checkpoint, resume_state(jobs, corpus_size, next_job, *sums))
                ctrl_c.say(f"{what}: interrupted after {next_job} of {len(jobs)} jobs; checkpoint saved to "
                           f"{checkpoint} (resume with the same corpus)")
            raise TrainingInterrupted(next_job, *sums, checkpoint=checkpoint)
    return Totals(sums[0], sums[1], sums[2], {e: tuple(v) for e, v in per_epoch.items()})
