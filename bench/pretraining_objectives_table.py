"""SpanBERT's comparison table (Joshi et al. 2020, table 4), at small scale: one small encoder, the same
data and number of steps, one row per pre-training objective.

Rows: token masking (BERT), whole-word masking, span masking + SBO (SpanBERT), n-gram masking (ALBERT),
phrase masking (ERNIE 1.0; phrases learned with ``Phrases`` on the same text), ERNIE 2.0 multi-task
(knowledge masking with phrases, token-document relation, sentence reordering, sentence distance,
added stage by stage with task embeddings), and a randomly initialised control. Every masking row is
MLM on single segments (no NSP); every row starts from the same random weights (seed) and sees the
same batches in the same order.

Columns:

* held-out masked-word accuracy: on held-out enmix segments, whole words are masked (15%, always
  ``[MASK]``, the same words for every row); a word counts as right when every one of its pieces is
  predicted (argmax of the MLM head);
* fine-tuned P@1 on wn_lexname (45 classes): the encoder fine-tuned on a sample of the training
  glosses, scored on a sample of the test glosses (``word2bert.tasks.finetune``);
* CPU-minutes (process CPU time) of pre-training and of fine-tuning.

    OMP_NUM_THREADS=1 flock /tmp/w2b-quality-2.lock python bench/pretraining_objectives_table.py [--steps 600] [--rows token span-sbo ...]

Data: ../shared/data/enmix.txt.xz (a prefix of its documents, enough for the steps) and
../shared/data/wn_lexname.{train,test}.txt.xz.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

# ../shared/data beside the repository (a worktree sits one level deeper: /work/wt/NAME)
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
ROWS = ("control", "token", "whole-word", "span-sbo", "ngram", "phrase", "ernie2")


def read_enmix_documents(path: Path, tokens_needed: int) -> list[str]:
    """The first documents (lines) of enmix holding ``tokens_needed`` words."""
    from word2bert.fileio import open_text

    documents, total = [], 0
    with open_text(path) as handle:
        for line in handle:
            words = line.split()
            if words:
                documents.append(" ".join(words))
                total += len(words)
            if total >= tokens_needed:
                break
    return documents


class Recording:
    """Wraps a unit selector and keeps the unit ids it returned (to score whole words)."""

    def __init__(self, selector):
        self.selector, self.unit_ids = selector, None

    def select(self, input_ids, candidates, n_predict, rng):
        self.unit_ids = self.selector.select(input_ids, candidates, n_predict, rng)
        return self.unit_ids


def masked_word_batches(blocks, tokenizer, batch_size: int, seed: int):
    """Held-out batches with 15% of whole words replaced by [MASK] (the same for every model), and the
    unit of every masked slot."""
    from word2bert.objectives.base import ObjectiveCollator
    from word2bert.objectives.mlm import MaskedLM, MaskedLMObjective
    from word2bert.objectives.units import WholeWordUnits

    recording = Recording(WholeWordUnits.from_tokenizer(tokenizer))
    masking = MaskedLM(tokenizer.vocab_size, tokenizer.mask_id, tokenizer.special_ids, tokenizer.pad_id,
                       max_predictions_per_seq=64, mask_token_prob=1.0, random_token_prob=0.0, units=recording)
    collate = ObjectiveCollator([MaskedLMObjective(masking=masking)], tokenizer.pad_id, keys=("input_ids",))
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, len(blocks), batch_size):
        items = [{"input_ids": np.r_[tokenizer.cls_id, b, tokenizer.sep_id]} for b in blocks[start:start + batch_size]]
        batch = collate(items, rng)
        positions = batch["masked_positions"].numpy()
        units = np.take_along_axis(recording.unit_ids, positions, axis=1)
        units[batch["masked_labels"].numpy() == -100] = -1
        out.append((batch, units))
    return out


@torch.no_grad()
def masked_word_accuracy(model, batches, task_type: bool = False) -> float:
    model.eval()
    right = total = 0
    for batch, units in batches:
        extra = {"task_type_ids": torch.zeros_like(batch["input_ids"])} if task_type else {}
        out = model(batch["input_ids"], batch["attention_mask"], masked_positions=batch["masked_positions"],
                    masked_labels=batch["masked_labels"], **extra)
        correct = (out.outputs["mlm"].logits.argmax(-1) == batch["masked_labels"]).numpy()
        for row in range(len(units)):
            for unit in np.unique(units[row][units[row] >= 0]):
                right += bool(correct[row][units[row] == unit].all())
                total += 1
    model.train()
    return right / max(total, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", nargs="*", choices=ROWS, default=list(ROWS))
    parser.add_argument("--steps", type=int, default=600, help="pre-training steps per row")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--lr", type=float, default=5e-4, help="pre-training learning rate")
    parser.add_argument("--finetune-lr", type=float, default=3e-4)
    parser.add_argument("--finetune-epochs", type=float, default=1.0)
    parser.add_argument("--train-examples", type=int, default=8000, help="wn_lexname training glosses used")
    parser.add_argument("--test-examples", type=int, default=3000, help="wn_lexname test glosses scored")
    parser.add_argument("--held-out-segments", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (quality runs: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(DATA), help="the directory of enmix.txt.xz and wn_lexname.*")
    parser.add_argument("--work", default=None, help="directory for the vocabulary and checkpoints (default: temp)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="wall-clock budget: rows not started by then are left out (and named in the file)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "pretraining_objectives_table.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from word2bert.corpus.wordpiece import WordPieceTokenizer
    from word2bert.models.bert import BertConfig, BertForPreTraining, BertModel
    from word2bert.models.ernie import ErnieConfig, ErnieForMultiTaskPreTraining
    from word2bert.models.roberta import pack_sentences, segments_dataset
    from word2bert.models.spanbert import SpanBertConfig, SpanBertForPreTraining
    from word2bert.objectives import ernie
    from word2bert.objectives.mlm import MaskedLM, MaskedLMObjective
    from word2bert.objectives.units import make_selector
    from word2bert.static.phrases import learn_phrases
    from word2bert.tasks.finetune import finetune
    from word2bert.train import Trainer, TrainingArguments

    work = Path(args.work or tempfile.mkdtemp(prefix="w2b-objectives-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    block = args.max_seq_length - 2
    needed = int(1.3 * args.steps * args.batch_size * block) + args.held_out_segments * block
    data_dir = Path(args.data)
    texts = read_enmix_documents(data_dir / "enmix.txt.xz", needed)
    corpus_path = work / "enmix-prefix.txt"
    corpus_path.write_text("\n".join(texts) + "\n")
    tokenizer_dir = work / "tokenizer"
    if (tokenizer_dir / "vocab.txt").is_file():
        tokenizer = WordPieceTokenizer.from_pretrained(tokenizer_dir)
    else:
        tokenizer = WordPieceTokenizer.train(corpus_path, vocab_size=args.vocab_size, min_frequency=5)
        tokenizer.save(tokenizer_dir)
    words_per_sentence = 24
    documents_text = [[" ".join(d.split()[k:k + words_per_sentence]) for k in range(0, len(d.split()),
                                                                                    words_per_sentence)]
                      for d in texts]
    ids = iter(tokenizer.ids_batch([s for d in documents_text for s in d]))
    documents = [[np.asarray(next(ids), dtype=np.int32) for _ in d] for d in documents_text]
    held_count, held_tokens = 0, 0  # held out: the last documents, about --held-out-segments segments
    while held_tokens < args.held_out_segments * block and held_count < len(documents) // 4:
        held_count += 1
        held_tokens += sum(len(s) for s in documents[-held_count])
    held_documents, train_documents = documents[-held_count:], documents[:-held_count]
    train_texts = texts[:-held_count]
    blocks = pack_sentences(train_documents, block, "doc-sentences")
    held_blocks = pack_sentences(held_documents, block, "doc-sentences")[:args.held_out_segments]
    dataset = segments_dataset(blocks, tokenizer.cls_id, tokenizer.sep_id)
    held_batches = masked_word_batches(held_blocks, tokenizer, 64, args.seed)
    phrase_started = time.process_time()
    phrases = learn_phrases([t.split() for t in train_texts], passes=2, threshold=[100.0, 50.0],
                            scoring="word2phrase", min_count=5)
    phrase_cpu = time.process_time() - phrase_started
    n_phrases = len(phrases.export_phrases())
    data_seconds = time.perf_counter() - started
    print(f"data: {len(blocks)} training segments, {len(held_blocks)} held out, {n_phrases} phrases, "
          f"{data_seconds:.0f} s", flush=True)

    base = dict(vocab_size=tokenizer.vocab_size, hidden_size=args.hidden, num_hidden_layers=args.layers,
                num_attention_heads=args.heads, intermediate_size=4 * args.hidden,
                max_position_embeddings=args.max_seq_length, pad_token_id=tokenizer.pad_id)
    train_file, test_file = data_dir / "wn_lexname.train.txt.xz", data_dir / "wn_lexname.test.txt.xz"
    results = []

    def masking_for(units):
        return MaskedLM(tokenizer.vocab_size, tokenizer.mask_id, tokenizer.special_ids, tokenizer.pad_id,
                        max_predictions_per_seq=20, dynamic=True, seed=args.seed, units=units)

    context = {"load_before": load_before, "tokenizer": tokenizer, "texts": texts, "n_phrases": n_phrases,
               "phrase_cpu": phrase_cpu, "data_seconds": data_seconds, "data_cpu": time.process_time()}
    for row in args.rows:
        if args.max_minutes and time.perf_counter() - started > 60 * args.max_minutes:
            print(f"--max-minutes {args.max_minutes} reached: rows from {row} on are not run", flush=True)
            break
        torch.manual_seed(args.seed)
        row_dir = work / row
        cpu = time.process_time()
        wall = time.perf_counter()
        accuracy, sampler, train_data, task_type = None, None, dataset, False
        if row == "control":
            model = BertModel(BertConfig(**base))
            model.save_pretrained(row_dir)
        else:
            if row in ("token", "whole-word", "ngram", "phrase"):
                units = None if row == "token" else make_selector(row, tokenizer, phrases=phrases)
                model = BertForPreTraining(BertConfig(**base), masking_for(units), next_sentence=False)
                collate = model.collator(pad_id=tokenizer.pad_id)
            elif row == "span-sbo":
                model = SpanBertForPreTraining(SpanBertConfig(**base), masking_for(make_selector("span", tokenizer)))
                collate = model.collator(pad_id=tokenizer.pad_id)
            else:  # ernie2
                task_type = True
                corpus = ernie.ErnieDocuments(train_documents)
                rng = np.random.default_rng(args.seed)
                cls_id, sep_id = tokenizer.cls_id, tokenizer.sep_id
                items = {"knowledge_masking": ernie.block_instances(corpus, "knowledge_masking", args.max_seq_length,
                                                                    cls_id, sep_id),
                         "token_document_relation": ernie.block_instances(corpus, "token_document_relation",
                                                                          args.max_seq_length, cls_id, sep_id),
                         "sentence_reordering": ernie.sentence_reordering_instances(corpus, args.max_seq_length,
                                                                                    cls_id, sep_id, rng),
                         "sentence_distance": ernie.sentence_distance_instances(corpus, args.max_seq_length,
                                                                                cls_id, sep_id, rng, 0.3)}
                schedule = ernie.ErnieSchedule.default(args.steps, list(items))
                model = ErnieForMultiTaskPreTraining(ErnieConfig(**base, use_task_id=True),
                                                     {"knowledge_masking": None, "token_document_relation": None,
                                                      "sentence_reordering": 9, "sentence_distance": None})
                preparers = {"knowledge_masking": [MaskedLMObjective(
                    masking=masking_for(make_selector("phrase", tokenizer, phrases=phrases)))]}
                preparers.update({t: [model.objectives[t]] for t in items if t != "knowledge_masking"})
                train_data = ernie.MultiTaskData(items, schedule.task_types)
                collate = ernie.MultiTaskCollator(preparers, schedule.task_types, tokenizer.pad_id)
                sampler = ernie.ScheduleSampler(schedule, train_data, args.batch_size, seed=args.seed)
            training = TrainingArguments(batch_size=args.batch_size, max_steps=args.steps, learning_rate=args.lr,
                                         warmup_steps=0.05, weight_decay=0.01, seed=args.seed, progress=False)
            trainer = Trainer(model, training, train_data, collate, sampler=sampler)
            state = trainer.train()
            accuracy = masked_word_accuracy(model, held_batches, task_type)
            model.save_pretrained(row_dir)
            print(f"{row}: {state.global_step} steps, final loss "
                  f"{state.history[-1]['loss'] if state.history else float('nan'):.3f}, "
                  f"masked-word accuracy {accuracy:.4f}", flush=True)
        tokenizer.save(row_dir)
        pretrain_cpu, pretrain_wall = time.process_time() - cpu, time.perf_counter() - wall
        cpu, wall = time.process_time(), time.perf_counter()
        tuned = finetune(row_dir, train_file, test_file, epochs=args.finetune_epochs, batch_size=32,
                         learning_rate=args.finetune_lr, max_length=32, seed=args.seed, progress=False,
                         max_train_examples=args.train_examples, max_dev_examples=args.test_examples)
        p_at_1 = tuned.metrics.get("accuracy")
        result = {"row": row, "masked_word_accuracy": accuracy, "p_at_1": p_at_1,
                  "pretrain_cpu_minutes": pretrain_cpu / 60, "pretrain_wall_minutes": pretrain_wall / 60,
                  "finetune_cpu_minutes": (time.process_time() - cpu) / 60,
                  "finetune_wall_minutes": (time.perf_counter() - wall) / 60}
        if row == "phrase" or row == "ernie2":
            result["phrase_learning_cpu_minutes"] = phrase_cpu / 60
        results.append(result)
        print(json.dumps(result), flush=True)
        write_report(args, argv, results, context)  # after every row: a stopped run keeps its rows
    skipped = [row for row in args.rows if row not in {r["row"] for r in results}]
    if skipped:
        context["skipped"] = skipped
        write_report(args, argv, results, context)

def write_report(args, argv, results, context) -> None:
    from word2bert.fileio import atomic_write

    load_before, tokenizer, texts = context["load_before"], context["tokenizer"], context["texts"]
    n_phrases, phrase_cpu, data_seconds = context["n_phrases"], context["phrase_cpu"], context["data_seconds"]
    load_after = os.getloadavg()
    names = {"control": "random init (control)", "token": "token (BERT)", "whole-word": "whole word (BERT-WWM)",
             "span-sbo": "span + SBO (SpanBERT)", "ngram": "n-gram (ALBERT)", "phrase": "phrase (ERNIE 1.0)",
             "ernie2": "ERNIE 2.0 multi-task"}
    lines = ["# Pre-training objectives at small scale (SpanBERT's table 4, in miniature)", "",
             f"Command: `python bench/pretraining_objectives_table.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
             "",
             f"Encoder: {args.layers} layers, hidden {args.hidden}, {args.heads} heads, FFN {4 * args.hidden}, "
             f"WordPiece {tokenizer.vocab_size} (trained on the same prefix); segments of {args.max_seq_length} tokens from a "
             f"{sum(len(t.split()) for t in texts):,}-word prefix of enmix; {args.steps} steps of {args.batch_size} "
             f"segments, AdamW lr {args.lr}, dynamic masking (15%, 80/10/10 per unit), seed {args.seed}. "
             f"Phrases: {n_phrases} (word2phrase, 2 passes, thresholds 100/50). Fine-tuning: "
             f"{args.train_examples} wn_lexname training glosses, {args.finetune_epochs:g} epoch, lr "
             f"{args.finetune_lr}, max length 32; P@1 on {args.test_examples} test glosses.",
             f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average before "
             f"{load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, after "
             f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}; "
             f"`uptime`: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", "",
             "| objective | held-out masked-word accuracy | wn_lexname P@1 | pre-training CPU-min | "
             "fine-tuning CPU-min |", "|---|---:|---:|---:|---:|"]
    for r in results:
        accuracy = "—" if r["masked_word_accuracy"] is None else f"{r['masked_word_accuracy']:.4f}"
        lines.append(f"| {names[r['row']]} | {accuracy} | {r['p_at_1']:.4f} | {r['pretrain_cpu_minutes']:.1f} | "
                     f"{r['finetune_cpu_minutes']:.1f} |")
    total_cpu = time.process_time() / 60
    lines += ["", "CPU-minutes are the process's CPU time (all threads). Phrase learning (shared by the phrase "
              f"and ERNIE rows) took {phrase_cpu / 60:.1f} CPU-min; data preparation (reading, WordPiece, "
              f"phrases) {context['data_cpu'] / 60:.1f} CPU-min, {data_seconds:.0f} s wall. Whole run so far: "
              f"{total_cpu:.1f} CPU-min.",
              *([f"Not run (--max-minutes reached): {', '.join(context['skipped'])}."] if context.get("skipped") else []),
              "",
              "Per row (JSON):", "", "```", *[json.dumps(r) for r in results], "```", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    print("\n".join(lines[-len(results) - 8:]), flush=True)




if __name__ == "__main__":
    sys.exit(main())
