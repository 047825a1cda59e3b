"""The one training driver of the static models: schedule, epochs, errors, Ctrl-C and resume."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from word2bert.errors import Word2BertError
from word2bert.static.jobs import TrainingInterrupted, resume_state, run_jobs, schedule


@pytest.fixture
def sigint_handled():
    """A shell starts background jobs with SIGINT ignored; tests that signal themselves want Python's."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_schedule_decays_linearly_over_the_whole_run():
    offsets = np.arange(0, 1001, 10)  # 100 sentences of 10 tokens
    jobs = schedule(offsets, epochs=2, alpha=0.1, min_alpha=0.0, seed=3, target_tokens=250)
    assert [job.epoch for job in jobs] == [0] * 4 + [1] * 4
    assert jobs[0].alpha_start == 0.1 and jobs[-1].alpha_end == pytest.approx(0.0)
    for a, b in zip(jobs, jobs[1:]):
        assert a.alpha_end == pytest.approx(b.alpha_start)
    position = 0
    for job in jobs:  # alpha(t) = 0.1 * (1 - t / 2000) at every job boundary
        assert job.alpha_start == pytest.approx(0.1 * (1 - position / 2000))
        position += offsets[job.last] - offsets[job.first]
    assert len({job.seed for job in jobs}) == len(jobs)
    assert schedule(np.array([0]), 3, 0.1, 0.0, 1) == []  # nothing to train: no jobs (not a ZeroDivisionError)


def test_epochs_run_one_after_the_other_and_callbacks_see_each_whole():
    jobs = schedule(np.arange(0, 1001, 10), 3, 0.1, 0.0, 1, target_tokens=100)
    running = []
    seen = []

    def call(job):
        running.append(job.epoch)
        time.sleep(0.002)
        return 1.0, 2, int(job.last - job.first) * 10

    def epoch_end(epoch, loss, examples, tokens):
        seen.append((epoch, loss, examples, tokens, set(running)))
        running.clear()

    totals = run_jobs(call, jobs, 3, corpus_size=1000, on_epoch_end=epoch_end)
    assert [(e, loss, n, t) for e, loss, n, t, _ in seen] == [(e, 10.0, 20, 1000) for e in range(3)]
    assert all(epochs == {e} for e, _, _, _, epochs in seen)  # no job of the next epoch ran before the callback
    assert (totals.loss, totals.examples, totals.tokens) == (30.0, 60, 3000)


def test_a_failing_job_stops_the_run_with_its_error():
    jobs = schedule(np.arange(0, 1001, 10), 1, 0.1, 0.0, 1, target_tokens=50)

    def call(job):
        if job.first >= 50:
            raise ValueError("boom")
        return 0.0, 0, 0

    with pytest.raises(ValueError, match="boom"):
        run_jobs(call, jobs, 2, corpus_size=1000)


def test_resume_skips_the_jobs_done_and_refuses_another_corpus():
    jobs = schedule(np.arange(0, 1001, 10), 2, 0.1, 0.0, 1, target_tokens=100)
    done = []
    state = resume_state(jobs, 1000, 7, 5.0, 9, 700)
    assert state["epoch"] == 0 and json.loads(json.dumps(state)) == state
    totals = run_jobs(lambda job: done.append(job) or (1.0, 1, 100), jobs, 1, resume=state, corpus_size=1000)
    assert done == jobs[7:] and (totals.loss, totals.examples, totals.tokens) == (18.0, 22, 2000)
    with pytest.raises(Word2BertError, match="another corpus"):
        run_jobs(lambda job: (0, 0, 0), jobs, 1, resume=state, corpus_size=999)


def test_ctrl_c_and_more_ctrl_c_while_the_checkpoint_is_written(tmp_path, sigint_handled, capsys):
    """The first SIGINT stops the run after the running jobs; the SIGINTs that arrive while the checkpoint
    is written (an impatient second Ctrl-C, ``timeout -s INT`` signalling the process and its group)
    do not prevent it."""
    jobs = schedule(np.arange(0, 10001, 10), 1, 0.1, 0.0, 1, target_tokens=100)
    calls = []

    def call(job):
        calls.append(job)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.005)
        return 1.0, 1, 100

    def save(path, state):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the signals are handled while we write
        path.write_text(json.dumps(state))

    checkpoint = tmp_path / "run.checkpoint"
    with pytest.raises(TrainingInterrupted) as stopped:
        run_jobs(call, jobs, 2, corpus_size=10000, checkpoint=checkpoint, save=save, what="test")
    state = json.loads(checkpoint.read_text())
    assert 5 <= state["jobs_done"] == stopped.value.jobs_done == len(calls) < len(jobs)
    assert isinstance(stopped.value, KeyboardInterrupt)
    err = capsys.readouterr().err
    assert "checkpoint saved" in err and "still stopping" in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_ctrl_c_from_a_thread_that_is_not_main_still_saves(tmp_path):
    """Outside the main thread no handler can be installed: a KeyboardInterrupt is caught instead."""
    jobs = schedule(np.arange(0, 1001, 10), 1, 0.1, 0.0, 1, target_tokens=100)
    outcome = {}

    def epoch_begin(epoch):
        raise KeyboardInterrupt

    def target():
        try:
            run_jobs(lambda job: (0.0, 0, 0), jobs, 1, corpus_size=1000, checkpoint=tmp_path / "c",
                     save=lambda path, state: path.write_text(json.dumps(state)), on_epoch_begin=epoch_begin)
        except TrainingInterrupted as exc:
            outcome["jobs_done"] = exc.jobs_done

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    assert outcome == {"jobs_done": 0} and json.loads((tmp_path / "c").read_text())["jobs_done"] == 0


SCRIPT = textwrap.dedent("""
    import sys
    from word2bert import Word2Vec

    class Started:
        def on_epoch_begin(self, model):
            if not getattr(self, "said", False):
                print("training", flush=True)
                self.said = True

    sentences = [[f"w{(i * 7 + j) % 50}" for j in range(12)] for i in range(300)]
    model = Word2Vec(vector_size=8, min_count=1, epochs=20000, workers=2, sg=1, progress=False,
                     callbacks=[Started()])
    model.build_vocab(sentences)
    model.train(sentences, checkpoint=sys.argv[1])
""")


def test_word2vec_run_signalled_twice_leaves_its_checkpoint(tmp_path):
    """The reported case: ``train word2vec`` got SIGINT twice (double Ctrl-C, ``timeout -s INT``) and
    lost the run in 11 of 20 tries; now every try leaves a checkpoint that loads."""
    from word2bert.static.word2vec import Word2Vec

    for attempt in range(3):
        checkpoint = tmp_path / f"w2v-{attempt}.npz"
        child = subprocess.Popen([sys.executable, "-c", SCRIPT, str(checkpoint)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                     sys.path)), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        assert child.stdout.readline().strip() == "training"
        child.send_signal(signal.SIGINT)
        time.sleep(0.001 * attempt)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
        assert child.returncode != 0 and "checkpoint saved" in err, err
        resumed = Word2Vec.load(checkpoint)
        assert resumed._resume_state is not None and resumed._resume_state["jobs_done"] >= 0
