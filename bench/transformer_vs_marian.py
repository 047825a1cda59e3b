"""The Transformer encoder-decoder: word2bert's TransformerForTranslation vs transformers' MarianMTModel.

Two measurements on real English->French pairs (../shared/data/po_en_fr), CPU, 2 threads:

``--task train``: training steps. Same config (6 + 6 layers, d 256, 4 heads, FFN 1024, joint byte-level
BPE vocabulary of 8,000 learned on the training pairs, dropout 0.1, post-LN, sinusoidal positions,
embeddings scaled by sqrt(d) and tied), same initial weights (transformers' random initialisation
copied into ours through the Marian key map), same optimizer (Adam, lr 5e-4, betas (0.9, 0.98),
eps 1e-9), the same batches (length-grouped, ~4,096 source + target tokens each, padding included).
Both minimise plain cross-entropy (transformers' loss; ours with label_smoothing=0). Steps run in
chunks alternating ours / theirs; tokens/s (real source + target tokens) is the median over chunks,
the first 2 steps of each model (in each invocation) untimed. Quality: mean training loss of the last 20 steps and
held-out loss (eval mode, 8 validation batches) after all steps.

``--task beam``: beam search, beam 4, batch 16, up to 64 new tokens, on one model (``--model DIR``, a
``word2bert train translation`` output; transformers loads the same weights from its
``save_pretrained`` files) over the first ``--sentences`` test sentences; sentences/s as the median of
``--repeats`` interleaved runs, and whether the hypotheses are identical. The length penalties of
the two differ in form (GNMT's ((5+|Y|)/6)^alpha here, |Y|^alpha in transformers), so the comparison
uses alpha = 0 (both rank by log-probability) and transformers' exact stopping (early_stopping="never"
is equivalent to ours; its default heuristic coincides with it at alpha = 0).

    python bench/transformer_vs_marian.py --task train [--steps 200] [--chunk 20]
    python bench/transformer_vs_marian.py --task beam --model runs/transformer [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
RESULTS = Path(__file__).parent / "results"


def load_batches(args, tokenizer, split: str, count: int, seed: int):
    from word2bert.corpus.parallel import ParallelDataset, TokenBudgetSampler, collate_translation, read_parallel_tsv

    pairs = read_parallel_tsv(Path(args.data) / f"po_en_fr.{split}.tsv.xz")
    data = ParallelDataset.encode(pairs, tokenizer)
    keep = [i for i in range(len(data)) if len(data.sources[i]) <= 128 and len(data.targets[i]) <= 128]
    data = data.subset(keep)
    sampler = TokenBudgetSampler(*data.lengths(), max_tokens=args.max_tokens, seed=seed)
    pad = tokenizer.token_to_id("<pad>")
    batches, epoch = [], 0
    while len(batches) < count:
        batches += [collate_translation([data[i] for i in batch], pad) for batch in sampler.batches(epoch)]
        epoch += 1
    return batches[:count]


def real_tokens(batch) -> int:
    return int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum())


class Runner:
    """One model, its optimizer, step times and losses, and its own state of torch's generator: every runner
    starts from ``rng_state``, so its dropout draws do not depend on how the chunks interleave, and two models
    that draw the same masks in the same order (``--masks torch``) draw the same values."""

    def __init__(self, name, model, loss_fn, rng_state):
        self.name, self.model, self.loss_fn = name, model, loss_fn
        self.rng_state = rng_state.clone()
        self.optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-9, foreach=True)
        self.losses, self.chunk_rates, self.steps = [], [], 0
        self.untimed_until = 2  # the first steps (of each process) warm the allocator up

    def train_steps(self, batches):
        self.model.train()
        torch.set_rng_state(self.rng_state)
        seconds, tokens = 0.0, 0
        for batch in batches:
            start = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model, batch)
            loss.backward()
            self.optimizer.step()
            value = loss.item()
            elapsed = time.perf_counter() - start
            self.losses.append(value)
            self.steps += 1
            if self.steps > self.untimed_until:
                seconds += elapsed
                tokens += real_tokens(batch)
        if seconds:
            self.chunk_rates.append(tokens / seconds)
        self.rng_state = torch.get_rng_state()

    @torch.no_grad()
    def evaluate(self, batches) -> float:
        self.model.eval()
        total = sum(self.loss_fn(self.model, b).item() * int((b["labels"] != -100).sum()) for b in batches)
        return total / sum(int((b["labels"] != -100).sum()) for b in batches)


def ours_loss(model, batch):
    return model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss


def theirs_loss(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss


def command_line() -> str:
    return "python bench/transformer_vs_marian.py " + " ".join(sys.argv[1:])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


UPTIME_AT_START = uptime()


def machine_line() -> str:
    import transformers

    return (f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, transformers "
            f"{transformers.__version__}, {torch.get_num_threads()} threads; `uptime` at the start: {UPTIME_AT_START}; "
            f"at the end: {uptime()}. Both models run "
            "interleaved in the same process, so the ratio holds even if other jobs ran alongside; the absolute rates "
            "less so.")


def run_train(args) -> list[str]:
    import transformers

    from word2bert.corpus.parallel import read_parallel_tsv, special_ids, train_joint_bpe
    from word2bert.models.transformer import TransformerConfig, TransformerForTranslation

    start = time.perf_counter()
    # The vocabulary and the batches depend only on these settings: cached, so that a run under the
    # benchmark lock spends its time on the measured steps (bench/cache/ is not in git).
    cache = Path(args.cache) / (f"vocab{args.vocab_size}-tokens{args.max_tokens}-steps{args.steps}-"
                                f"eval{args.eval_batches}-seed{args.seed}")
    if (cache / "batches.pt").is_file():
        from word2bert.corpus.parallel import load_joint_bpe

        tokenizer = load_joint_bpe(cache)
        train_batches, held_out = torch.load(cache / "batches.pt", weights_only=False)
        prepared = "read from the cache"
    else:
        pairs = read_parallel_tsv(Path(args.data) / "po_en_fr.train.tsv.xz")
        tokenizer = train_joint_bpe([t for pair in pairs for t in pair], vocab_size=args.vocab_size)
        train_batches = load_batches(args, tokenizer, "train", args.steps, args.seed)
        held_out = load_batches(args, tokenizer, "valid", args.eval_batches, 0)
        cache.mkdir(parents=True, exist_ok=True)
        tokenizer.save(cache)
        torch.save((train_batches, held_out), cache / "batches.pt")
        prepared = "computed"
    ids = special_ids(tokenizer)
    data_seconds = time.perf_counter() - start
    if args.prepare_only:
        print(f"prepared {len(train_batches)} training and {len(held_out)} held-out batches in {cache}")
        return []

    config = TransformerConfig(vocab_size=tokenizer.vocab_size, d_model=args.d_model, encoder_layers=args.layers,
                               decoder_layers=args.layers, encoder_attention_heads=args.heads,
                               decoder_attention_heads=args.heads, encoder_ffn_dim=args.ffn, decoder_ffn_dim=args.ffn,
                               max_position_embeddings=256, dropout=0.1, pad_token_id=ids["pad"],
                               eos_token_id=ids["eos"], decoder_start_token_id=ids["bos"])
    torch.manual_seed(args.seed)
    hf_config = transformers.MarianConfig(**config.to_hf_dict("MarianMTModel"))
    theirs = transformers.MarianMTModel(hf_config)
    ours = TransformerForTranslation(config, label_smoothing=0.0)
    state, _ = ours.hf_key_map(config).to_ours(theirs.state_dict())
    ours.load_state_dict(state, strict=False)  # the sinusoidal tables are computed, not loaded

    if args.masks == "torch":
        from word2bert.nn.dropout import set_mask_source

        set_mask_source("torch")
        # Training runs on the real tokens only (packed), which draws fewer mask elements than transformers
        # draws over the padded batch; the padded path draws them where transformers does.
        ours.packed = False
    start_state = torch.get_rng_state()  # both sides draw their dropout masks from here on, each its own stream
    runners = [Runner("word2bert", ours, ours_loss, start_state),
               Runner("transformers", theirs, theirs_loss, start_state)]
    resumed_from, earlier = 0, []
    if args.state and Path(args.state).is_file():  # continue an earlier invocation's run where it stopped
        saved = torch.load(args.state, weights_only=False)
        for runner in runners:
            part = saved["runners"][runner.name]
            runner.model.load_state_dict(part["model"])
            runner.optimizer.load_state_dict(part["optimizer"])
            runner.losses, runner.chunk_rates, runner.steps = part["losses"], part["chunk_rates"], part["steps"]
            runner.untimed_until = runner.steps + 2
            runner.rng_state = part["rng"]
        resumed_from, earlier = runners[0].steps, saved["invocations"]
        print(f"resumed from {args.state} after {resumed_from} steps", flush=True)
    first_chunk = {r.name: len(r.chunk_rates) for r in runners}
    started = time.perf_counter()
    for chunk_start in range(resumed_from, args.steps, args.chunk):
        if args.max_minutes and chunk_start > resumed_from and time.perf_counter() - started > args.max_minutes * 60:
            print(f"stopping after {chunk_start} steps: --max-minutes {args.max_minutes} reached", flush=True)
            break
        chunk = train_batches[chunk_start:chunk_start + args.chunk]
        for runner in (runners if (chunk_start // args.chunk) % 2 == 0 else runners[::-1]):
            runner.train_steps(chunk)
        print(f"step {chunk_start + len(chunk)}/{args.steps}: " + ", ".join(
            f"{r.name} loss {np.mean(r.losses[-len(chunk):]):.4f} {r.chunk_rates[-1] if r.chunk_rates else 0:,.0f} tok/s"
            for r in runners), flush=True)
    steps_done = runners[0].steps
    this_invocation = {r.name: statistics.median(r.chunk_rates[first_chunk[r.name]:]) for r in runners
                       if len(r.chunk_rates) > first_chunk[r.name]}
    invocations = earlier + [dict(command=command_line(), steps=(resumed_from, steps_done), rates=this_invocation,
                                  uptime=(UPTIME_AT_START, uptime()))]
    if args.state and steps_done < args.steps:
        from word2bert.fileio import atomic_save

        state = {"runners": {r.name: dict(model=r.model.state_dict(), optimizer=r.optimizer.state_dict(),
                                          losses=r.losses, chunk_rates=r.chunk_rates, steps=r.steps, rng=r.rng_state)
                                for r in runners},
                 "invocations": invocations}
        atomic_save(args.state, lambda path: torch.save(state, path))
        print(f"{steps_done} of {args.steps} steps done; state saved to {args.state}: run the same command again "
              "to continue", flush=True)
        return [f"Partial run: {steps_done} of {args.steps} steps; this invocation's tokens/s (median over its "
                f"chunks): " + ", ".join(f"{name} {rate:,.0f}" for name, rate in this_invocation.items())
                + (f" = {this_invocation['word2bert'] / this_invocation['transformers']:.2f}x"
                   if len(this_invocation) == 2 else "") + f"; state in {args.state}.", ""]
    held = {r.name: r.evaluate(held_out) for r in runners}
    if args.save:
        ours.save_pretrained(args.save)  # a `word2bert train translation`-like directory: weights, config, tokenizer
        tokenizer.save(args.save)
    medians = {r.name: statistics.median(r.chunk_rates) for r in runners}
    ratio = medians["word2bert"] / medians["transformers"]
    tokens_per_batch = statistics.mean(sum(int(b[k].numel()) for k in ("input_ids", "labels")) for b in train_batches)
    lines = [
        "# Transformer training: word2bert vs transformers' MarianMTModel (CPU)",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Steps run: {steps_done} per model" + (f" (of {args.steps}: the --max-minutes cap stopped it)"
                                                 if steps_done < args.steps else "") + ".",
        "",
        *([f"Run in {len(invocations)} invocations (the same command with `--state`; each one's chunks alternate "
           "the two models in one process, so every invocation gives a side-by-side ratio):", ""]
          + [f"- steps {a}-{b}: " + ", ".join(f"{name} {rate:,.0f} tokens/s" for name, rate in part["rates"].items())
             + (f" = **{part['rates']['word2bert'] / part['rates']['transformers']:.2f}x**"
                if len(part["rates"]) == 2 else "") + f"; `uptime` {part['uptime'][0]} / {part['uptime'][1]}"
             for part in invocations for a, b in [part["steps"]]] + [""] if len(invocations) > 1 else []),
        f"Config: {args.layers} + {args.layers} layers, d {args.d_model}, {args.heads} heads, FFN {args.ffn}, joint "
        f"byte-level BPE vocabulary {tokenizer.vocab_size}, dropout 0.1, post-LN; Adam lr 5e-4 betas (0.9, 0.98); "
        f"batches of <= {args.max_tokens} padded source + target positions (mean {tokens_per_batch:,.0f}) from "
        f"po_en_fr train, length-grouped; plain cross-entropy for both; dropout masks: "
        + ("word2bert's own (numpy 16-bit draws), transformers' by `bernoulli_`" if args.masks == "numpy" else
           "both sides by `bernoulli_` from the same generator state, each side its own stream, word2bert on the "
           "padded batch (not packed): the same masks")
        + f". Data preparation ({prepared}) {data_seconds:.0f} s, untimed. Held-out "
        f"loss over {len(held_out)} validation batches.",
        machine_line(),
        f"transformers attention: {theirs.config._attn_implementation}.",
        "",
        f"| model | tokens/s (median) | chunks | min | max | train loss, last {min(20, steps_done)} steps | held-out loss |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runners:
        lines.append(f"| {r.name} | {medians[r.name]:,.0f} | {len(r.chunk_rates)} | {min(r.chunk_rates):,.0f} | "
                     f"{max(r.chunk_rates):,.0f} | {np.mean(r.losses[-20:]):.4f} | {held[r.name]:.4f} |")
    lines += ["", f"**Speed ratio (word2bert / transformers): {ratio:.2f}x** (target >= 1.5x); tokens = real "
              "source + target tokens.", ""]
    return lines


def run_beam(args) -> list[str]:
    import transformers

    from word2bert.corpus.parallel import load_joint_bpe, read_parallel_tsv
    from word2bert.models.transformer import TransformerForTranslation

    model_dir = Path(args.model)
    ours = TransformerForTranslation.from_pretrained(model_dir).eval()
    theirs = transformers.MarianMTModel.from_pretrained(model_dir).eval()
    tokenizer = load_joint_bpe(model_dir)
    pairs = read_parallel_tsv(Path(args.data) / "po_en_fr.test.tsv.xz")[: args.sentences]
    pad = ours.config.pad_token_id
    eos = ours.config.eos_token_id
    batches = []
    for start in range(0, len(pairs), args.batch_size):
        rows = [ids + [eos] for ids in tokenizer.ids_batch([s for s, _ in pairs[start:start + args.batch_size]])]
        width = max(len(r) for r in rows)
        input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        batches.append((input_ids, (input_ids != pad).long()))

    def ours_run():
        return [ours.translate(x, m, num_beams=args.beams, max_new_tokens=args.max_new_tokens,
                               length_penalty=0.0).new_tokens for x, m in batches]

    def theirs_run():
        out = []
        for x, m in batches:
            generated = theirs.generate(input_ids=x, attention_mask=m, num_beams=args.beams, do_sample=False,
                                        max_new_tokens=args.max_new_tokens, length_penalty=0.0,
                                        early_stopping="never", forced_eos_token_id=None, num_return_sequences=1)
            out.append(generated[:, 1:])  # drop the decoder start token
        return out

    def rows(outputs):
        texts = []
        for block in outputs:
            for row in block.tolist():
                row = row[: row.index(eos) + 1] if eos in row else row
                texts.append([t for t in row if t != pad])
        return texts

    seconds = {"word2bert": [], "transformers": []}
    results = {}
    with torch.no_grad():
        for repeat in range(args.repeats):
            order = [("word2bert", ours_run), ("transformers", theirs_run)]
            for name, function in (order if repeat % 2 == 0 else order[::-1]):
                start = time.perf_counter()
                results[name] = rows(function())
                seconds[name].append(time.perf_counter() - start)
                print(f"repeat {repeat}: {name} {len(pairs) / seconds[name][-1]:.2f} sentences/s", flush=True)
    identical = sum(a == b for a, b in zip(results["word2bert"], results["transformers"]))
    rate = {name: len(pairs) / statistics.median(values) for name, values in seconds.items()}
    return [
        "# Beam search: word2bert's translate vs transformers' generate (CPU)",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Model: {model_dir} ({ours.config.encoder_layers} + {ours.config.decoder_layers} layers, d "
        f"{ours.config.d_model}); {len(pairs)} po_en_fr test sentences in batches of {args.batch_size}, beam "
        f"{args.beams}, up to {args.max_new_tokens} new tokens, length penalty 0.",
        machine_line(),
        "",
        "| decoder | sentences/s (median of %d) | runs (s) |" % args.repeats,
        "|---|---:|---|",
        *[f"| {name} | {rate[name]:.2f} | {', '.join(f'{s:.1f}' for s in seconds[name])} |" for name in seconds],
        "",
        f"**Speed ratio: {rate['word2bert'] / rate['transformers']:.2f}x** (target >= 2x); identical hypotheses: "
        f"{identical} / {len(pairs)}.",
        "",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=["train", "beam"], default="train")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=1024)
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="--task train: stop after the chunk that passes this many wall minutes (0: no cap)")
    parser.add_argument("--eval-batches", type=int, default=8, help="--task train: validation batches for the held-out loss")
    parser.add_argument("--cache", default=str(Path(__file__).parent / "cache" / "transformer_vs_marian"),
                        help="--task train: where the vocabulary and batches are kept between runs")
    parser.add_argument("--prepare-only", action="store_true", help="--task train: only fill the cache (no timing)")
    parser.add_argument("--save", help="--task train: save our trained model (and tokenizer) here, for --task beam")
    parser.add_argument("--state", help="--task train: with --max-minutes, save both runs here when the cap stops "
                        "them; the same command continues from it (runs longer than one benchmark slot)")
    parser.add_argument("--model", help="--task beam: a `word2bert train translation` output directory")
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--beams", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--masks", choices=("numpy", "torch"), default="numpy",
                        help="--task train: word2bert's dropout masks, its own numpy draws (default) or drawn as "
                             "F.dropout draws them; each side keeps its own generator state from the same start, so "
                             "with 'torch' both sides draw the same masks (word2bert then trains on the padded batch "
                             "as transformers does instead of its packed real tokens: slower, for comparing losses)")
    parser.add_argument("--out", help="results file (default bench/results/transformer_vs_marian_<task>.md)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.task == "beam" and not args.model:
        parser.error("--task beam needs --model")
    lines = run_train(args) if args.task == "train" else run_beam(args)
    if not lines:  # --prepare-only
        return 0
    text = "\n".join(lines)
    print(text)
    from word2bert.fileio import atomic_write

    out = Path(args.out or RESULTS / f"transformer_vs_marian_{args.task}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w", encoding="utf-8") as handle:
        handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
