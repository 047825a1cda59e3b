"""Greedy generation: word2bert's GPT2LMHeadModel.generate vs transformers' GPT2LMHeadModel.generate.

Same model (GPT-2 shape: 6 layers, hidden 384, 6 heads, 256 positions, GPT-2's 50,257-token BPE;
transformers' random initialisation copied into ours, or a trained checkpoint with --model), same
prompts (32 GPT-2 BPE tokens each from enmix), 128 new tokens, greedy, no stop token, key/value
cache on both sides, batch 1 and batch 8. The output tokens must be identical (checked every run).

Timing: per batch size, the two generate calls alternate; generated tokens/s (batch x 128 / wall
seconds of the call, everything the user waits for once the model is loaded) is the median over
--runs runs (>= 3) after one untimed warm-up call each.

    flock /tmp/w2b-bench.lock python bench/gpt_generate_vs_transformers.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpt_vs_transformers import CONTEXT, DATA, HEADS, HIDDEN, LAYERS, VOCAB, encoded_windows, load_average  # noqa: E402

PROMPT, NEW_TOKENS = 32, 128


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpt_generate_vs_transformers.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import transformers

    from word2bert.fileio import atomic_write
    from word2bert.models.gpt import GPT2Config, GPT2LMHeadModel

    loads = [load_average()]
    config = GPT2Config(vocab_size=VOCAB, n_positions=CONTEXT, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS,
                        bos_token_id=None, eos_token_id=None)
    torch.manual_seed(args.seed)
    hf_config = transformers.GPT2Config(**{k: v for k, v in config.to_hf_dict().items() if k != "model_type"})
    hf_config._attn_implementation = "sdpa"
    theirs = transformers.GPT2LMHeadModel(hf_config).eval()
    ours = GPT2LMHeadModel(config).eval()
    state, _ = GPT2LMHeadModel.hf_key_map(config).to_ours(theirs.state_dict())
    ours.load_state_dict(state)

    batch_sizes = [int(b) for b in args.batches.split(",")]
    windows = torch.from_numpy(encoded_windows(Path(args.data), max(batch_sizes), 1))[:, :PROMPT]

    def run_theirs(prompts):
        return theirs.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=NEW_TOKENS,
                               min_new_tokens=NEW_TOKENS, do_sample=False, num_beams=1, pad_token_id=0,
                               eos_token_id=None, use_cache=True)

    def run_ours(prompts):
        return ours.generate(prompts, max_new_tokens=NEW_TOKENS, stop_token_ids=[], pad_token_id=0).sequences

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write_report(rows):
        lines = [
            "# Greedy generation: word2bert vs transformers (CPU)",
            "",
            f"Command: `python bench/gpt_generate_vs_transformers.py --runs {args.runs} --batches {args.batches}`",
            "",
            f"Model: GPT-2 shape, {LAYERS} layers, hidden {HIDDEN}, {HEADS} heads, vocabulary {VOCAB}, random weights "
            f"(transformers' initialisation, copied); prompts of {PROMPT} enmix BPE tokens; {NEW_TOKENS} new tokens, "
            "greedy, no stop token, key/value cache.",
            f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, transformers "
            f"{transformers.__version__}, {torch.get_num_threads()} threads. Load: before `{loads[0]}`; after "
            f"`{load_average()}`.",
            f"tokens/s = batch x {NEW_TOKENS} / wall seconds of one generate call, median of {args.runs} alternating "
            "runs after a warm-up call.",
            "",
            "| batch | word2bert tokens/s | transformers tokens/s | ratio | identical tokens | seconds per call (ours / theirs) |",
            "|---:|---:|---:|---:|---|---|",
        ]
        for batch, ours_rate, their_rate, identical, times in rows:
            lines.append(f"| {batch} | {ours_rate:,.1f} | {their_rate:,.1f} | **{ours_rate / their_rate:.2f}x** | "
                         f"{'yes' if identical else 'NO'} | "
                         f"{' '.join(f'{t:.2f}' for t in times['word2bert'])} / "
                         f"{' '.join(f'{t:.2f}' for t in times['transformers'])} |")
        lines.append("")
        with atomic_write(out, "w", encoding="utf-8") as handle:  # after every batch size: a partial run keeps its rows
            handle.write("\n".join(lines))

    rows = []
    for batch in batch_sizes:
        prompts = windows[:batch].contiguous()
        with torch.no_grad():
            expected = run_theirs(prompts)
            identical = torch.equal(run_ours(prompts), expected)
            times = {"word2bert": [], "transformers": []}
            for run in range(args.runs):
                order = [("word2bert", run_ours), ("transformers", run_theirs)]
                for name, call in (order if run % 2 == 0 else order[::-1]):
                    start = time.perf_counter()
                    out_ids = call(prompts)
                    times[name].append(time.perf_counter() - start)
                    identical = identical and torch.equal(out_ids, expected)
        rate = {name: batch * NEW_TOKENS / statistics.median(seconds) for name, seconds in times.items()}
        rows.append((batch, rate["word2bert"], rate["transformers"], identical, times))
        print(f"batch {batch}: word2bert {rate['word2bert']:.1f} tok/s, transformers {rate['transformers']:.1f} tok/s, "
              f"ratio {rate['word2bert'] / rate['transformers']:.2f}, identical tokens: {identical}", flush=True)
        write_report(rows)
    print(out.read_text())


if __name__ == "__main__":
    main()
