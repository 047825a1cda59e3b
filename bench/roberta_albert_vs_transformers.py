"""RoBERTa and ALBERT pre-training steps against transformers, and what SpanBERT's SBO head costs.

1. word2bert ``RobertaForMaskedLM`` vs transformers' ``RobertaForMaskedLM`` (masked LM only, one
   segment ``<s> x </s>``, positions from the padding index);
2. word2bert ``AlbertForPreTraining`` vs transformers' ``AlbertForPreTraining`` (masked LM + sentence
   order: consecutive halves, swapped half of the time; factorised embedding E = 128, one shared layer);
3. word2bert ``SpanBertForPreTraining`` with and without the span boundary objective (span masking,
   p = 0.2, spans up to 10 tokens; the same encoder weights and batches).

Shape (the issue's): 4 layers, hidden 256, 4 heads, FFN 1024, vocabulary 8000, batch 32 x 128, 15%
masked (19 positions per sequence, 80/10/10), AdamW lr 1e-4 weight decay 0.01 (fused when available).
Same initial weights for both sides (transformers' random init copied into ours through the key maps),
the same batches (bench/bert_vs_transformers.py's Markov-chain data), CPU, 2 threads. Steps run in
chunks alternating the two sides (so both see the same machine load), the first 2 steps of each model
untimed; tokens/s is the median over the chunks (>= 3). Dropout: RoBERTa 0.1 (its default), ALBERT 0
(its default), SpanBERT 0.1.

    flock /tmp/w2b-bench.lock python bench/roberta_albert_vs_transformers.py [--steps 24] [--chunk 8]
    flock /tmp/w2b-bench.lock python bench/roberta_albert_vs_transformers.py --only roberta --steps 12 --chunk 3
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
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bert_vs_transformers import BATCH, FIRST_ORDINARY, LENGTH, PREDICTIONS, VOCAB, MarkovData, Runner  # noqa: E402

PAD_ROBERTA, BOS, EOS = 1, 0, 2          # RoBERTa's <pad>, <s>, </s>
PAD, CLS, SEP, MASK = 0, 2, 3, 4         # ALBERT's <pad>, [CLS], [SEP], [MASK]
HALF_A = (LENGTH - 3) // 2


def mask_batch(rng, ids: np.ndarray, special: np.ndarray) -> dict:
    """19 positions per row among the non-special ones, 80/10/10; our and transformers' label forms."""
    keys = rng.random(ids.shape)
    keys[special] = np.inf
    positions = np.sort(np.argsort(keys, axis=1)[:, :PREDICTIONS], axis=1)
    labels = np.take_along_axis(ids, positions, 1)
    action = rng.random(positions.shape)
    replacement = np.where(action < 0.8, MASK,
                           np.where(action < 0.9, rng.integers(FIRST_ORDINARY, VOCAB, positions.shape), labels))
    corrupted = ids.copy()
    np.put_along_axis(corrupted, positions, replacement, 1)
    full_labels = np.full_like(ids, -100)
    np.put_along_axis(full_labels, positions, labels, 1)
    t = torch.from_numpy
    return {"input_ids": t(corrupted), "attention_mask": torch.ones(ids.shape, dtype=torch.long),
            "masked_positions": t(positions), "masked_labels": t(labels), "labels": t(full_labels)}


def roberta_batch(data: MarkovData, rng) -> dict:
    body = data.chain(rng, rng.integers(FIRST_ORDINARY, VOCAB, BATCH), LENGTH - 2)
    ids = np.concatenate([np.full((BATCH, 1), BOS), body, np.full((BATCH, 1), EOS)], 1)
    special = np.zeros(ids.shape, bool)
    special[:, [0, -1]] = True
    return mask_batch(rng, ids, special)


def albert_batch(data: MarkovData, rng) -> dict:
    first = data.chain(rng, rng.integers(FIRST_ORDINARY, VOCAB, BATCH), HALF_A)
    second = data.chain(rng, first[:, -1], LENGTH - 3 - HALF_A)
    swapped = rng.random(BATCH) < 0.5
    parts, types = [], []
    for row in range(BATCH):  # per row (32), not per token
        seg_a, seg_b = (second[row], first[row]) if swapped[row] else (first[row], second[row])
        parts.append(np.concatenate([[CLS], seg_a, [SEP], seg_b, [SEP]]))
        types.append(np.r_[np.zeros(len(seg_a) + 2, np.int64), np.ones(len(seg_b) + 1, np.int64)])
    ids = np.stack(parts)
    special = np.isin(ids, [CLS, SEP])
    batch = mask_batch(rng, ids, special)
    batch["token_type_ids"] = torch.from_numpy(np.stack(types))
    batch["sentence_order_label"] = torch.from_numpy(swapped.astype(np.int64))
    return batch


# ------------------------------------------------------------------------------------------ the models
def roberta_pair(seed: int):
    import transformers

    from word2bert.models.roberta import RobertaConfig, RobertaForMaskedLM

    config = RobertaConfig(vocab_size=VOCAB, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                           intermediate_size=1024, max_position_embeddings=LENGTH + 2)
    torch.manual_seed(seed)
    hf_config = transformers.RobertaConfig(**config.to_hf_dict())
    hf_config._attn_implementation = "sdpa"
    theirs = transformers.RobertaForMaskedLM(hf_config)
    ours = RobertaForMaskedLM(config)
    state, _ = RobertaForMaskedLM.hf_key_map(config).to_ours(theirs.state_dict())
    ours.load_state_dict(state)

    def ours_loss(model, batch):
        return model(batch["input_ids"], batch["attention_mask"], masked_positions=batch["masked_positions"],
                     masked_labels=batch["masked_labels"]).loss

    def theirs_loss(model, batch):
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss

    return Runner("word2bert", ours, ours_loss), Runner("transformers", theirs, theirs_loss)


def albert_pair(seed: int):
    import transformers

    from word2bert.models.albert import AlbertConfig, AlbertForPreTraining

    config = AlbertConfig(vocab_size=VOCAB, embedding_size=128, hidden_size=256, num_hidden_layers=4,
                          num_attention_heads=4, intermediate_size=1024, max_position_embeddings=LENGTH)
    torch.manual_seed(seed)
    hf_config = transformers.AlbertConfig(**config.to_hf_dict())
    hf_config._attn_implementation = "sdpa"
    theirs = transformers.AlbertForPreTraining(hf_config)
    ours = AlbertForPreTraining(config)
    state, _ = AlbertForPreTraining.hf_key_map(config).to_ours(theirs.state_dict())
    ours.load_state_dict(state)

    def ours_loss(model, batch):
        return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                     masked_positions=batch["masked_positions"], masked_labels=batch["masked_labels"],
                     sentence_order_label=batch["sentence_order_label"]).loss

    def theirs_loss(model, batch):
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     token_type_ids=batch["token_type_ids"], labels=batch["labels"],
                     sentence_order_label=batch["sentence_order_label"]).loss

    return Runner("word2bert", ours, ours_loss), Runner("transformers", theirs, theirs_loss)


def spanbert_pair(seed: int):
    from word2bert.models.spanbert import SpanBertConfig, SpanBertForPreTraining

    config = SpanBertConfig(vocab_size=VOCAB, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                            intermediate_size=1024, max_position_embeddings=LENGTH)
    torch.manual_seed(seed)
    with_sbo = SpanBertForPreTraining(config)
    without = SpanBertForPreTraining(config, span_boundary=False)
    without.load_state_dict({k: v for k, v in with_sbo.state_dict().items() if not k.startswith("objectives.sbo.")})

    def loss(model, batch):
        return model(batch["input_ids"], batch["attention_mask"], **{k: batch[k] for k in (
            "masked_positions", "masked_labels", "sbo_left", "sbo_right", "sbo_relative")}).loss

    return Runner("MLM + SBO", with_sbo, loss), Runner("MLM only", without, loss)


def span_batches(data: MarkovData, rng, count: int) -> list[dict]:
    """Span-masked single segments, built by the SpanBERT model's own collator (SpanUnits, p = 0.2)."""
    from word2bert.models.spanbert import SpanBertConfig, SpanBertForPreTraining
    from word2bert.objectives.mlm import MaskedLM
    from word2bert.objectives.units import SpanUnits

    masking = MaskedLM(VOCAB, MASK, special_ids=(0, 1, 2, 3, 4), pad_id=PAD, max_predictions_per_seq=PREDICTIONS,
                       units=SpanUnits(None, geometric_p=0.2, max_span=10))
    builder = SpanBertForPreTraining(SpanBertConfig(vocab_size=VOCAB, hidden_size=8, num_hidden_layers=1,
                                                    num_attention_heads=1, intermediate_size=8,
                                                    max_position_embeddings=LENGTH), masking)
    collate = builder.collator(pad_id=PAD, keys=("input_ids",))
    batches = []
    for _ in range(count):
        body = data.chain(rng, rng.integers(FIRST_ORDINARY, VOCAB, BATCH), LENGTH - 2)
        ids = np.concatenate([np.full((BATCH, 1), CLS), body, np.full((BATCH, 1), SEP)], 1)
        batches.append(collate([{"input_ids": row} for row in ids], rng))
    return batches


# ------------------------------------------------------------------------------------------ running
def race(runners, batches, chunk: int, label: str) -> None:
    for start in range(0, len(batches), chunk):
        part = batches[start:start + chunk]
        order = runners if (start // chunk) % 2 == 0 else runners[::-1]
        for runner in order:
            runner.train_steps(part, warmup_steps=2)
        print(f"{label} step {start + len(part)}/{len(batches)}: " + ", ".join(
            f"{r.name} loss {np.mean(r.losses[-len(part):]):.4f} {(r.chunk_rates or [float('nan')])[-1]:,.0f} tok/s"
            for r in runners), flush=True)


def table(title: str, runners, held_out: dict, ratio_label: str, target: str) -> list[str]:
    medians = [statistics.median(r.chunk_rates) for r in runners]
    lines = [f"### {title}", "",
             "| model | tokens/s (median) | chunks | min | max | step, median (s) | loss at step 1 | "
             "train loss, last 8 steps | held-out loss |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for runner, median in zip(runners, medians):
        lines.append(f"| {runner.name} | {median:,.0f} | {len(runner.chunk_rates)} | {min(runner.chunk_rates):,.0f} | "
                     f"{max(runner.chunk_rates):,.0f} | {statistics.median(runner.step_seconds[2:]):.2f} | "
                     f"{runner.losses[0]:.4f} | {np.mean(runner.losses[-8:]):.4f} | "
                     f"{held_out.get(runner.name, float('nan')):.4f} |")
    lines += ["", f"**{ratio_label}: {medians[0] / medians[1]:.2f}x** ({target}).", ""]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=24, help="steps per model")
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["roberta", "albert", "spanbert"], nargs="*", default=None)
    parser.add_argument("--out", help="results file (default bench/results/roberta_albert_vs_transformers.md, "
                                      "or ..._PART.md with one --only part: run the parts one lock-hold each)")
    args = parser.parse_args(argv)
    if args.out is None:
        suffix = f"_{args.only[0]}" if args.only and len(args.only) == 1 else ""
        args.out = str(Path(__file__).parent / "results" / f"roberta_albert_vs_transformers{suffix}.md")
    torch.set_num_threads(args.threads)
    import transformers

    load_before = os.getloadavg()
    data = MarkovData(args.seed)
    parts = args.only or ["roberta", "albert", "spanbert"]
    lines = ["# RoBERTa and ALBERT pre-training vs transformers; SpanBERT's SBO overhead (CPU)", "",
             f"Command: `python bench/roberta_albert_vs_transformers.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
             "",
             f"Machine: {platform.machine()}, torch {torch.__version__}, transformers {transformers.__version__} "
             f"(sdpa), {torch.get_num_threads()} threads; `uptime` before the run: "
             f"{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}",
             f"Shape: 4 layers, hidden 256, 4 heads, FFN 1024, vocab {VOCAB}, batch {BATCH} x {LENGTH}, "
             f"{PREDICTIONS} masked positions per sequence; AdamW; {args.steps} steps per model in interleaved "
             f"chunks of {args.chunk} (first 2 untimed).", ""]
    started = time.perf_counter()
    for part in parts:
        rng = np.random.default_rng(args.seed + 1)
        if part == "spanbert":
            runners = spanbert_pair(args.seed)
            batches = span_batches(data, rng, args.steps)
            held = span_batches(data, np.random.default_rng(10_000), 2)
            title, ratio_label, target = ("SpanBERT: MLM + SBO vs MLM only (same encoder, same span-masked batches)",
                                          "Speed with SBO / without", "target: SBO adds <= 15% to a step, "
                                                                      "i.e. ratio >= 0.87")
        else:
            runners = roberta_pair(args.seed) if part == "roberta" else albert_pair(args.seed)
            make = roberta_batch if part == "roberta" else albert_batch
            batches = [make(data, rng) for _ in range(args.steps)]
            held = [make(data, np.random.default_rng(10_000 + i)) for i in range(2)]
            title = ("RoBERTa: RobertaForMaskedLM" if part == "roberta"
                     else "ALBERT: AlbertForPreTraining (MLM + SOP), E = 128, one shared layer")
            ratio_label, target = "Speed ratio (word2bert / transformers)", "target >= 1.5x"
        race(runners, batches, args.chunk, part)
        held_out = {r.name: r.evaluate(held) for r in runners}
        lines += table(title, runners, held_out, ratio_label, target)
        write_results(args.out, lines, started, load_before)  # after every part: a stopped run keeps them


def write_results(path, lines, started, load_before) -> None:
    from word2bert.fileio import atomic_write

    load_after = os.getloadavg()
    footer = [f"Wall time of the run: {time.perf_counter() - started:.0f} s; load average before "
              f"{load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, after "
              f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}.",
              f"`uptime` after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", "",
              "Held-out loss: mean over 2 fixed batches (eval mode) of the model's pre-training loss. "
              "Where the speed comes from: transformers projects all 4096 positions onto the vocabulary; "
              "word2bert gathers the 608 masked positions first and computes its last layer only at those "
              "positions (and [CLS] for SOP), with fused Q/K/V.", ""]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines + footer))
    print("\n".join(lines[-14:] + footer), flush=True)


if __name__ == "__main__":
    main()
