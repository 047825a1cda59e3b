"""AWD-LSTM language model on PTB: word2bert against fastai's ``AWD_LSTM`` language learner, side by side.

Both sides get the same configuration, dropouts, regularisation (AR 2, TAR 1), optimiser (SGD, lr 30,
weight decay 1.2e-6 on every parameter, gradient norm clipped at 0.25) and the same batches: the PTB
training stream (``<eos>`` after every line) cut into ``--batch-size`` rows read in fixed windows of
``--bptt`` tokens (fastai's ``LMDataLoader`` cuts it exactly as the ``ContiguousStreamSampler`` does;
fastai has no variable-length BPTT, so both use fixed windows here).

* **speed**: ``--rounds`` alternating rounds of ``--steps`` optimizer steps each, from fresh models;
  training tokens/s per round (the training loop only) and the whole call (data, model, training:
  what the user waits for); medians, and the ratio of the medians.
* **quality**: each side trains from a fresh model for ``--budget`` seconds of wall clock (counted from the
  end of its first step, after data loading and set-up), then the PTB
  validation perplexity of both models is computed by the same procedure (10 rows, windows of 70,
  state carried, exp(total NLL / tokens)).

fastai is a benchmark-only peer (``pip install fastai --no-deps`` plus what its text modules import, see
``bench/results/awd_lstm_vs_fastai.md``): never a dependency of word2bert.

    flock /tmp/w2b-bench.lock python bench/awd_lstm_vs_fastai.py --config small --steps 30 --rounds 3 --budget 300
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from word2bert.corpus.lm_corpus import EOS, build_lm_vocabulary, encode_lines, token_stream  # noqa: E402
from word2bert.models.awd_lstm import AWDLSTMConfig  # noqa: E402

from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
CONFIGS = {   # the repository's PTB sizes, and a smaller one that fits a shared 2-core budget
    "full": {"embedding_size": 400, "lstm_size": 1150, "num_layers": 3},
    "small": {"embedding_size": 200, "lstm_size": 600, "num_layers": 3},
}
DROPOUTS = {"embedding_dropout": 0.1, "input_dropout": 0.4, "hidden_dropout": 0.25, "output_dropout": 0.4,
            "weight_dropout": 0.5}


# ------------------------------------------------------------------------------------ word2bert
def run_word2bert(args, max_steps=None, budget=None, seed=0):
    """``pretrain_language_model`` (the code ``word2bert pretrain awd-lstm`` runs) on PTB."""
    from word2bert.tasks.ulmfit import pretrain_language_model

    started = time.perf_counter()
    callbacks = []
    if budget is not None:
        budget_started = [None]

        def stop_after_budget(trainer, state):   # the budget runs from the end of the first step (as for fastai)
            if budget_started[0] is None:
                budget_started[0] = time.perf_counter()
            elif time.perf_counter() - budget_started[0] >= budget:
                state.total_steps = state.global_step       # the Trainer's loop ends after this step
        callbacks.append(stop_after_budget)

    config = AWDLSTMConfig(**CONFIGS[args.config], **DROPOUTS, pad_token_id=1)   # fastai's pad_token=1
    result = pretrain_language_model(
        args.train, config, None, None, batch_size=args.batch_size, bptt=args.bptt, variable_bptt=False,
        epochs=1000.0 if budget is not None else 1.0, max_steps=max_steps, learning_rate=30.0, weight_decay=1.2e-6,
        clip=0.25, nonmono=None, seed=seed, progress=False, num_threads=args.threads, callbacks=callbacks)
    total = time.perf_counter() - started
    steps = len(result.history)
    tokens = steps * args.batch_size * args.bptt
    return {"model": result.model, "vocab": result.vocab, "steps": steps, "call_seconds": total,
            "train_tokens_per_second": result.tokens_per_second, "call_tokens_per_second": tokens / total}


# ------------------------------------------------------------------------------------ fastai
def run_fastai(args, max_steps=None, budget=None, seed=0):
    """fastai's language learner: ``AWD_LSTM`` + ``LinearDecoder`` (tied), ``LMLearner`` (AR/TAR
    callbacks), fastai's SGD with true weight decay on every parameter, ``GradientClip(0.25)``."""
    warnings.filterwarnings("ignore")
    from fastai.callback.core import Callback, CancelFitException, CancelValidException
    from fastai.callback.training import GradientClip
    from fastai.data.core import DataLoaders
    from fastai.optimizer import SGD
    from fastai.text.data import LMDataLoader
    from fastai.text.learner import LMLearner
    from fastai.text.models.awdlstm import AWD_LSTM
    from fastai.text.models.core import get_language_model
    from fastai.text.data import LMTensorText
    from fastai.torch_core import set_seed
    from functools import partial

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    set_seed(seed)
    torch.manual_seed(seed)
    vocab = build_lm_vocabulary(args.train)
    stream = torch.as_tensor(token_stream(encode_lines(args.train, vocab), vocab.index[EOS]))
    train_dl = LMDataLoader([LMTensorText(stream)], lens=[len(stream)], bs=args.batch_size, seq_len=args.bptt,
                            shuffle=False, num_workers=0)
    dls = DataLoaders(train_dl, train_dl, device="cpu")
    sizes = CONFIGS[args.config]
    config = dict(emb_sz=sizes["embedding_size"], n_hid=sizes["lstm_size"], n_layers=sizes["num_layers"],
                  pad_token=1, bidir=False, output_p=DROPOUTS["output_dropout"],
                  hidden_p=DROPOUTS["hidden_dropout"], input_p=DROPOUTS["input_dropout"],
                  embed_p=DROPOUTS["embedding_dropout"], weight_p=DROPOUTS["weight_dropout"], tie_weights=True,
                  out_bias=True)
    model = get_language_model(AWD_LSTM, len(vocab), config=config)
    counter = {"steps": 0, "train_started": None, "budget_started": None}

    class Stop(Callback):
        order = 100

        def before_fit(self):
            counter["train_started"] = time.perf_counter()

        def after_batch(self):
            if not self.training:
                return
            counter["steps"] += 1
            if max_steps is not None and counter["steps"] >= max_steps:
                raise CancelFitException
            if counter["budget_started"] is None:      # the budget runs from the end of the first step
                counter["budget_started"] = time.perf_counter()
            elif budget is not None and time.perf_counter() - counter["budget_started"] >= budget:
                raise CancelFitException

        def before_validate(self):
            raise CancelValidException                 # validation is measured separately, the same way for both

    from fastai.losses import CrossEntropyLossFlat

    learn = LMLearner(dls, model, loss_func=CrossEntropyLossFlat(), opt_func=partial(SGD, mom=0.0), alpha=2.0,
                      beta=1.0, wd=1.2e-6, wd_bn_bias=True, cbs=[GradientClip(0.25), Stop()])
    with learn.no_bar(), learn.no_logging():
        learn.fit(1000 if budget is not None else 1, lr=30.0)
    finished = time.perf_counter()
    steps = counter["steps"]
    tokens = steps * args.batch_size * args.bptt
    return {"model": model, "vocab": vocab, "steps": steps, "call_seconds": finished - started,
            "train_tokens_per_second": tokens / (finished - counter["train_started"]),
            "call_tokens_per_second": tokens / (finished - started)}


def check_same_math() -> float:
    """Without dropout, both models with the same weights give the same loss (cross-entropy + AR + TAR)
    and gradients; returns the largest difference."""
    import torch.nn.functional as F
    from fastai.text.models.awdlstm import AWD_LSTM
    from fastai.text.models.core import get_language_model

    from word2bert.models.awd_lstm import AWDLSTMForLanguageModeling

    torch.manual_seed(0)
    vocab_size = 50
    theirs = get_language_model(AWD_LSTM, vocab_size, config=dict(
        emb_sz=8, n_hid=12, n_layers=3, pad_token=1, bidir=False, tie_weights=True, out_bias=True, output_p=0,
        hidden_p=0, input_p=0, embed_p=0, weight_p=0))
    ours = AWDLSTMForLanguageModeling(AWDLSTMConfig(
        vocab_size=vocab_size, embedding_size=8, lstm_size=12, num_layers=3, embedding_dropout=0, input_dropout=0,
        hidden_dropout=0, output_dropout=0, weight_dropout=0, pad_token_id=1))
    state = theirs.state_dict()
    mapped = {"awd_lstm.embeddings.weight": state["0.encoder.weight"], "decoder_bias": state["1.decoder.bias"]}
    for i in range(3):
        mapped[f"awd_lstm.layers.{i}.weight_hh_l0"] = state[f"0.rnns.{i}.weight_hh_l0_raw"]
        for name in ("weight_ih_l0", "bias_ih_l0", "bias_hh_l0"):
            mapped[f"awd_lstm.layers.{i}.{name}"] = state[f"0.rnns.{i}.module.{name}"]
    ours.load_state_dict(mapped)
    theirs.train(), ours.train(), theirs.reset()
    x, y = torch.randint(0, vocab_size, (3, 9)), torch.randint(0, vocab_size, (3, 9))
    x[0, 0] = 1
    out, raw, dropped = theirs(x)
    loss_theirs = (F.cross_entropy(out.reshape(-1, vocab_size), y.reshape(-1)) + 2 * dropped.pow(2).mean()
                   + (raw[:, 1:] - raw[:, :-1]).pow(2).mean())
    loss_ours = ours(x, y).loss
    loss_theirs.backward()
    loss_ours.backward()
    pairs = [(loss_theirs, loss_ours), (theirs[0].encoder.weight.grad, ours.awd_lstm.embeddings.weight.grad)]
    pairs += [(theirs[0].rnns[i].weight_hh_l0_raw.grad, ours.awd_lstm.layers[i].weight_hh_l0.grad) for i in range(3)]
    return max(float((a - b).detach().abs().max()) for a, b in pairs)


# ------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def validation_perplexity(model, vocab, path, kind, rows=10, bptt=70, max_lines=None):
    """exp(total NLL / predictions) over ``path`` (its first ``max_lines`` lines, or all) read as ``rows``
    rows, ``bptt`` at a time, state carried."""
    import torch.nn.functional as F

    stream = token_stream(encode_lines(path, vocab), vocab.index[EOS])
    if max_lines:
        ends = np.flatnonzero(stream == vocab.index[EOS])
        stream = stream[:ends[min(max_lines, len(ends)) - 1] + 1]
    stream = torch.as_tensor(stream)
    length = (len(stream) - 1) // rows
    inputs, targets = stream[:length * rows].view(rows, length), stream[1:length * rows + 1].view(rows, length)
    model.eval()
    nll, count, state = 0.0, 0, None
    if kind == "fastai":
        model.reset()
    for start in range(0, length, bptt):
        x, y = inputs[:, start:start + bptt], targets[:, start:start + bptt]
        if kind == "fastai":
            logits = model(x)[0]
        else:
            output = model(x, state=state, return_logits=True)
            logits, state = output.logits, output.state
        nll += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"))
        count += y.numel()
    return math.exp(nll / count)


def profile_steps(args, steps: int) -> list[str]:
    """Each side trains ``steps`` steps under torch's profiler; per step: the LSTM kernel (oneDNN's
    ``mkldnn_rnn_layer`` and its backward, the same kernel on both sides), the other matrix products
    (the tied softmax layer's), and the largest operators."""
    from torch.profiler import ProfilerActivity, profile

    lines = []
    for name, run in (("word2bert", run_word2bert), ("fastai", run_fastai)):
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            result = run(args, max_steps=steps, seed=0)
        events = profiler.key_averages()
        per_step = {event.key: event.self_cpu_time_total / steps / 1e3 for event in events}
        lstm = sum(per_step.get(key, 0.0) for key in ("aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward"))
        products = sum(per_step.get(key, 0.0) for key in ("aten::mm", "aten::addmm", "aten::addmm_"))
        step = 1e3 * args.batch_size * args.bptt / result["train_tokens_per_second"]  # ms, as the run timed it
        lines.append(f"profile {name:9s}: {step:.0f} ms a step (profiled); LSTM kernel {lstm:.0f} ms, other products "
                     f"{products:.0f} ms, the rest {step - lstm - products:.0f} ms")
        for event in sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]:
            lines.append(f"    {event.key[:48]:48s} {per_step[event.key]:7.1f} ms a step, {event.count / steps:.1f} calls")
    return lines


def fastai_version() -> str:
    try:
        import fastai
        return fastai.__version__
    except ImportError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default=str(DATA / "ptb.train.txt.xz"))
    parser.add_argument("--valid", default=str(DATA / "ptb.valid.txt.xz"))
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--bptt", type=int, default=70)
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per speed round")
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds (0: skip the speed comparison)")
    parser.add_argument("--budget", type=float, default=0.0, help="seconds of training per side for the quality "
                                                                  "comparison (0: skip it)")
    parser.add_argument("--valid-lines", type=int, default=None, help="evaluate on the first N lines of --valid "
                                                                       "(default: all)")
    parser.add_argument("--quality-seed", type=int, default=100, help="seed of both sides' quality runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS",
                        help="first profile STEPS steps of each side: where a step's time goes (0: skip)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "awd_lstm_vs_fastai.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    difference = check_same_math()
    print(f"same math without dropout: largest difference in loss and gradients {difference:.1e}", flush=True)
    if difference > 1e-5:
        raise SystemExit("the two models do not compute the same function: not comparable")

    rows, log = [], [f"same math (no dropout, same weights): largest loss/gradient difference {difference:.1e}"]
    if args.profile:
        for line in profile_steps(args, args.profile):
            print(line, flush=True)
            log.append(line)
    for round_ in range(args.rounds):
        for name, run in (("word2bert", run_word2bert), ("fastai", run_fastai)) if round_ % 2 == 0 else \
                (("fastai", run_fastai), ("word2bert", run_word2bert)):
            result = run(args, max_steps=args.steps, seed=round_)
            rows.append((name, result))
            line = (f"round {round_ + 1} {name:9s}: {result['steps']} steps, training {result['train_tokens_per_second']:.0f} "
                    f"tokens/s, whole call {result['call_seconds']:.1f} s ({result['call_tokens_per_second']:.0f} tokens/s)")
            print(line, flush=True)
            log.append(line)

    def median(name, key):
        return statistics.median(r[key] for n, r in rows if n == name)

    sizes = CONFIGS[args.config]
    table = [
        f"config {args.config}: embedding {sizes['embedding_size']}, LSTM {sizes['lstm_size']} x {sizes['num_layers']} "
        f"(last layer {sizes['embedding_size']}, tied), dropouts {DROPOUTS}, batch {args.batch_size} x bptt {args.bptt}, "
        f"SGD lr 30, clip 0.25, AR 2 / TAR 1, {args.threads} threads" + (
            f"; {args.steps} steps per round, {args.rounds} rounds (medians)" if rows else "")]
    if rows:
        ours, theirs = median("word2bert", "train_tokens_per_second"), median("fastai", "train_tokens_per_second")
        ours_call = median("word2bert", "call_tokens_per_second")
        theirs_call = median("fastai", "call_tokens_per_second")
        table += [
            "",
            "| | fastai " + fastai_version() + " | word2bert | ratio |",
            "|---|---:|---:|---:|",
            f"| training tokens/s | {theirs:,.0f} | {ours:,.0f} | **{ours / theirs:.2f}x** |",
            f"| tokens/s of the whole call (data, model, training) | {theirs_call:,.0f} | {ours_call:,.0f} | "
            f"{ours_call / theirs_call:.2f}x |",
        ]
        # each round runs the two sides back to back: the per-round ratio is less exposed to load drifting
        # between rounds than the ratio of the medians
        paired = [rows[i][1]["train_tokens_per_second"] / rows[i + 1][1]["train_tokens_per_second"]
                  if rows[i][0] == "word2bert" else
                  rows[i + 1][1]["train_tokens_per_second"] / rows[i][1]["train_tokens_per_second"]
                  for i in range(0, len(rows), 2)]
        table.append(f"| training tokens/s, per-round ratios (median) | | | "
                     f"{', '.join(f'{r:.2f}' for r in paired)} (**{statistics.median(paired):.2f}x**) |")
    if args.budget > 0:
        quality = {}
        for name, run in (("word2bert", run_word2bert), ("fastai", run_fastai)):
            result = run(args, budget=args.budget, seed=args.quality_seed)
            perplexity = validation_perplexity(result["model"], result["vocab"], args.valid, name,
                                               max_lines=args.valid_lines)
            quality[name] = (result["steps"], perplexity)
            line = f"budget {args.budget:.0f} s {name:9s}: {result['steps']} steps, PTB valid perplexity {perplexity:.1f}"
            print(line, flush=True)
            log.append(line)
        part = f"the first {args.valid_lines} lines of " if args.valid_lines else ""
        table += ["", f"Perplexity on {part}PTB valid after {args.budget:.0f} s of training each (fresh models, "
                      f"seed {args.quality_seed} on both sides):",
                  "", "| | fastai | word2bert |", "|---|---:|---:|",
                  f"| optimizer steps | {quality['fastai'][0]} | {quality['word2bert'][0]} |",
                  f"| validation perplexity | {quality['fastai'][1]:.1f} | {quality['word2bert'][1]:.1f} |"]
    load_after = os.getloadavg()
    text = "\n".join(table)
    print("\n" + text)
    header = (f"\n## {time.strftime('%Y-%m-%d %H:%M')} `python bench/awd_lstm_vs_fastai.py {' '.join(sys.argv[1:])}`\n\n"
              f"{platform.processor() or platform.machine()}, torch {torch.__version__}; load average "
              f"before {load_before[0]:.2f}, after {load_after[0]:.2f} (`uptime`: "
              f"{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()})\n\n")
    with open(args.out, "a", encoding="utf-8") as handle:
        handle.write(header + text + "\n\n```\n" + "\n".join(log) + "\n```\n")


if __name__ == "__main__":
    main()
