"""``word2bert distill``: a small student learns from a teacher (DistilBERT, Sanh et al. 2019).

Two modes, one command:

* **masked-LM distillation** (``--corpus FILE``): DistilBERT's pre-training. The teacher is a model
  with a masked-LM head (a ``pretrain bert`` output, transformers' BERT / RoBERTa MLM checkpoints); the
  student takes a subset of its layers (``--layers N``, spread from the first to the last, or
  ``--teacher-layers``) and learns from its soft targets at the masked positions, its own MLM loss and
  the cosine between hidden states (:class:`~word2bert.objectives.distillation.MaskedLMDistillation`).
  OUT is a Hugging Face directory that ``finetune`` and ``encode`` take.
* **task distillation** (``--task classification --train FILE``): a fine-tuned teacher (a ``finetune``
  output) teaches a smaller student on the same labelled file: soft targets + the gold labels
  (:class:`~word2bert.objectives.distillation.TaskDistillation`). OUT is a fine-tuned model directory,
  as ``finetune`` writes it.

Output folders follow the other training commands: ``-o`` is required, checked before any work, a
non-empty one is refused without ``--overwrite`` (start afresh) or ``--resume`` (continue the run
whose checkpoint is there, with the settings of its ``training_args.json``).
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path

from word2bert.commands import (add_overwrite_option, check_resume_flags, prepare_output_directory, save_or_rescue,
                                say)
from word2bert.commands._contextual import check_model_directory, format_metrics, require_contextual
from word2bert.errors import Word2BertError

DESCRIPTION = """Distil a teacher into a smaller student.

Masked-LM distillation (--corpus), DistilBERT's pre-training: loss = alpha_ce * T^2 KL(teacher || student)
at the masked positions + alpha_mlm * the student's MLM loss + alpha_cos * (1 - cos) between the last hidden
states; DistilBERT's weights (5, 2, 1) and temperature (2) by default. The student is DistilBERT (BERT
teachers; no segment embeddings, no pooler) or the teacher's own architecture (--student same), with the
teacher's embeddings and heads and --layers of its layers (default half).

Task distillation (--task, --train): the fine-tuned teacher's class distribution and the gold labels teach
a student with the same labels: loss = alpha_ce * T^2 KL + alpha_task * cross-entropy (transformers'
run_squad_w_distillation defaults: 0.5, 0.5, T = 2). The student starts from the teacher's layers, or
from --init-from (the pre-trained model the teacher was fine-tuned from, or a distilled student)."""

EPILOG = """examples:
  word2bert distill --teacher bert-small --corpus corpus.txt -o distilbert-small          # half the layers
  word2bert distill --teacher bert-small --corpus corpus.txt -o student --layers 2 --student same
  word2bert distill --teacher clf --task classification --train train.tsv --dev dev.tsv -o clf-small --layers 2
  word2bert distill --teacher clf --task classification --train train.txt -o clf-small --init-from minilm --layers 3
  word2bert distill --teacher bert-small --corpus corpus.txt -o distilbert-small --resume   # after Ctrl-C

Defaults that differ between the modes (masked LM / task): --epochs 3 / 3, --lr 5e-4 / 5e-5, --warmup 0.05 /
0.1, --weight-decay 0 / 0.01, --clip 5 / 1, Adam beta2 0.98 / 0.999 (DistilBERT's training script / finetune's).
The teacher and the student share the teacher's tokenizer. The last line printed is a summary; --json prints
it as JSON on stdout.
"""

TASKS = ("classification", "pair", "tagging")

MLM_DEFAULTS = {"alpha_ce": 5.0, "alpha_mlm": 2.0, "alpha_cos": 1.0, "epochs": 3.0, "lr": 5e-4, "warmup": 0.05,
                "weight_decay": 0.0, "clip": 5.0}
TASK_DEFAULTS = {"alpha_ce": 0.5, "alpha_task": 0.5, "epochs": 3.0, "lr": 5e-5, "warmup": 0.1, "weight_decay": 0.01,
                 "clip": 1.0}

#: Flags of one mode only (given in the other, they are refused rather than ignored).
CORPUS_ONLY = ("ce_rows", "min_seq_length", "masked_lm_prob", "max_predictions", "mlm_smoothing", "eval_fraction")
TASK_ONLY = ("init_from", "pooling", "dev", "max_train_examples", "max_dev_examples")

#: Flags that may change when a run is resumed; every other flag must match training_args.json.
RESUMABLE = {"max_steps", "epochs", "save_steps", "threads", "quiet", "json", "resume", "overwrite", "output",
             "corpus", "train", "dev", "teacher", "init_from"}


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter

    parser = commands.add_parser("distill", help="distil a teacher into a smaller student (DistilBERT)",
                                 formatter_class=HelpfulFormatter, description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--teacher", required=True, metavar="DIR",
                        help="the teacher: a model directory with an MLM head (--corpus) or a fine-tuned one (--task)")
    parser.add_argument("--corpus", metavar="FILE", help="text for masked-LM distillation, one sequence per line")
    parser.add_argument("--task", choices=TASKS, help="task distillation on labelled data (the teacher's task)")
    parser.add_argument("--train", "--train-file", metavar="FILE", help="labelled training file (finetune's formats)")
    parser.add_argument("--dev", "--validation-file", metavar="FILE",
                        help="labelled evaluation file: student and teacher accuracy are reported")
    parser.add_argument("-o", "--output", "--output-dir", required=True, metavar="OUT",
                        help="directory for the student; refused if it holds files, unless --overwrite or --resume")
    add_overwrite_option(parser)
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT's checkpoint with the settings it was started with")
    student = parser.add_argument_group("student")
    student.add_argument("--layers", type=int, metavar="N", help="student layers (default: half the teacher's)")
    student.add_argument("--teacher-layers", metavar="I,J,...",
                         help="the teacher layers the student starts from, 0-based (default: N spread from the first "
                              "to the last: 0,2,4,7,9,11 for 12 -> 6)")
    student.add_argument("--student", dest="student_type", choices=["distilbert", "same"], default=None,
                         help="DistilBERT (default for BERT teachers) or the teacher's own architecture (default "
                              "otherwise)")
    student.add_argument("--sinusoidal-positions", action="store_true",
                         help="DistilBERT student with fixed sinusoidal positions instead of the teacher's table")
    student.add_argument("--init-from", metavar="DIR",
                         help="take the student's weights from this encoder directory instead of the teacher (task "
                              "distillation; same vocabulary)")
    student.add_argument("--pooling", choices=["pooler", "cls", "mean", "last"],
                         help="the student's sentence vector (task distillation; default: the teacher's)")
    loss = parser.add_argument_group("loss (defaults: DistilBERT's for --corpus / run_squad_w_distillation for --task)")
    loss.add_argument("--temperature", type=float, default=2.0, metavar="T",
                      help="softmax temperature of the soft targets")
    loss.add_argument("--alpha-ce", type=float, metavar="W", help="weight of T^2 KL(teacher || student) (5 / 0.5)")
    loss.add_argument("--alpha-mlm", type=float, metavar="W", help="weight of the student's masked-LM loss (2)")
    loss.add_argument("--alpha-cos", type=float, metavar="W", help="weight of the hidden-state cosine loss (1)")
    loss.add_argument("--alpha-task", type=float, metavar="W", help="weight of the student's task loss (0.5)")
    loss.add_argument("--ce-rows", choices=["masked", "all"], default="masked",
                      help="rows of the soft-target loss: the masked positions, or every non-padding position")
    data = parser.add_argument_group("data")
    data.add_argument("--max-seq-length", "--max-length", type=int, default=128, metavar="N",
                      help="tokens per sequence (longer lines are cut into chunks; task inputs are truncated)")
    data.add_argument("--min-seq-length", type=int, default=12, metavar="N",
                      help="drop corpus sequences shorter than this, in tokens with [CLS] and [SEP] (DistilBERT: 12)")
    data.add_argument("--masked-lm-prob", type=float, default=0.15, metavar="P", help="share of tokens masked")
    data.add_argument("--max-predictions", type=int, default=20, metavar="N", help="most masked tokens per sequence")
    data.add_argument("--mlm-smoothing", type=float, default=0.7, metavar="S",
                      help="mask token v with weight count_v^-S (DistilBERT/XLM: 0.7; 0: uniform, as BERT)")
    data.add_argument("--eval-fraction", type=float, default=0.01, metavar="F",
                      help="held-out share of the corpus sequences (student and teacher MLM accuracy)")
    data.add_argument("--max-train-examples", type=int, metavar="N", help="train on a random subset of N examples")
    data.add_argument("--max-dev-examples", type=int, metavar="N", help="evaluate on a random subset of N examples")
    optim = parser.add_argument_group("optimisation (AdamW, linear warm-up and decay)")
    optim.add_argument("--batch-size", "--per-device-train-batch-size", type=int, default=32, metavar="N",
                       help="sequences per step")
    optim.add_argument("--max-steps", type=int, metavar="N", help="optimizer steps (default: as many as --epochs take)")
    optim.add_argument("--epochs", "--num-train-epochs", type=float, metavar="E", help="passes over the data (3)")
    optim.add_argument("--lr", "--learning-rate", type=float, help="peak learning rate (5e-4 / 5e-5)")
    optim.add_argument("--warmup", "--warmup-steps", "--warmup-ratio", type=float, metavar="W",
                       help="warm-up steps, < 1: a fraction of the run (0.05 / 0.1)")
    optim.add_argument("--weight-decay", type=float, metavar="D", help="AdamW weight decay (0 / 0.01)")
    optim.add_argument("--clip", "--max-grad-norm", type=float, metavar="NORM",
                       help="max gradient norm, 0: off (5 / 1)")
    optim.add_argument("--grad-accum", "--gradient-accumulation-steps", type=int, default=1, metavar="N",
                       help="gradient accumulation steps")
    optim.add_argument("--bf16", action="store_true", help="bf16 autocast")
    optim.add_argument("--seed", type=int, default=0, help="random seed (order, masks, new weights)")
    run = parser.add_argument_group("running")
    run.add_argument("--save-steps", type=int, default=500, metavar="N",
                     help="checkpoint every N steps (0: only at the end and on Ctrl-C)")
    run.add_argument("--threads", type=int, metavar="N", help="torch threads (default: torch's)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or status lines")
    run.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(func=run_distill, python_names={"learning_rate": "--lr", "warmup_steps": "--warmup",
                                                        "max_grad_norm": "--clip", "student_layers": "--layers",
                                                        "gradient_accumulation_steps": "--grad-accum",
                                                        "ce_rows": "--ce-rows", "mlm_smoothing": "--mlm-smoothing"})


# --------------------------------------------------------------------------- checks

def _mode(args) -> str:
    if args.corpus is not None and (args.task is not None or args.train is not None):
        raise Word2BertError("give --corpus (masked-LM distillation) or --task with --train (task distillation), "
                             "not both")
    if args.corpus is not None:
        return "mlm"
    if args.task is None and args.train is None:
        raise Word2BertError("give --corpus FILE (masked-LM distillation) or --task TASK --train FILE "
                             "(task distillation)")
    if args.train is None:
        raise Word2BertError(f"--task {args.task} needs --train FILE")
    if args.task is None:
        args.task = "classification"
    return "task"


def _fill_defaults(args, mode: str) -> None:
    defaults = MLM_DEFAULTS if mode == "mlm" else TASK_DEFAULTS
    wrong = ("alpha_task",) if mode == "mlm" else ("alpha_mlm", "alpha_cos")
    for name in wrong:
        if getattr(args, name) is not None:
            raise Word2BertError(f"--{name.replace('_', '-')} applies to "
                                 f"{'task' if mode == 'mlm' else 'masked-LM'} distillation only")
    given = getattr(args, "_given", set())
    only = CORPUS_ONLY if mode == "task" else TASK_ONLY
    misplaced = [dest for dest in only if dest in given or (dest in TASK_ONLY and getattr(args, dest) is not None)]
    if misplaced:
        flag = "--" + misplaced[0].replace("_", "-")
        raise Word2BertError(f"{flag} applies to {'masked-LM' if mode == 'task' else 'task'} distillation only")
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def _check_arguments(args, mode: str) -> None:
    for name in ("batch_size", "grad_accum", "max_seq_length", "max_predictions"):
        if getattr(args, name) < 1:
            raise Word2BertError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    for name in ("layers", "max_steps", "threads", "max_train_examples", "max_dev_examples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise Word2BertError(f"--{name.replace('_', '-')} {value}: must be >= 1")
    if args.max_seq_length < 3:
        raise Word2BertError(f"--max-seq-length {args.max_seq_length}: must be >= 3")
    if args.save_steps < 0 or args.min_seq_length < 0:
        raise Word2BertError("--save-steps and --min-seq-length must be >= 0")
    if not 0.0 < args.masked_lm_prob < 1.0:
        raise Word2BertError(f"--masked-lm-prob {args.masked_lm_prob}: must be in (0, 1)")
    if not 0.0 <= args.eval_fraction < 1.0:
        raise Word2BertError(f"--eval-fraction {args.eval_fraction}: must be in [0, 1)")
    if args.mlm_smoothing < 0:
        raise Word2BertError(f"--mlm-smoothing {args.mlm_smoothing}: must be >= 0")
    if not args.temperature > 0:
        raise Word2BertError(f"--temperature {args.temperature}: must be > 0")
    if not args.lr > 0:
        raise Word2BertError(f"--lr {args.lr}: must be > 0")
    if args.max_steps is None and not args.epochs > 0:
        raise Word2BertError(f"--epochs {args.epochs}: must be > 0")
    if args.warmup < 0 or args.weight_decay < 0 or args.clip < 0:
        raise Word2BertError("--warmup, --weight-decay and --clip must be >= 0")
    for name in ("alpha_ce", "alpha_mlm", "alpha_cos", "alpha_task"):
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise Word2BertError(f"--{name.replace('_', '-')} {value}: must be >= 0")
    for flag, directory in (("--teacher", args.teacher), ("--init-from", args.init_from)):
        if directory is not None and not Path(directory).exists():
            raise Word2BertError(f"{flag} {directory}: model directory not found")
        if directory is not None:
            check_model_directory(directory, flag)
    files = [("--corpus", args.corpus)] if mode == "mlm" else [("--train", args.train), ("--dev", args.dev)]
    for flag, path in files:
        if path is not None and not Path(path).is_file():
            raise Word2BertError(f"{flag}: file not found: {path}" if not Path(path).is_dir()
                                 else f"{flag}: expected a file but found a directory: {path}")
    args.teacher_layer_list = _parse_layers(args.teacher_layers)
    if args.teacher_layer_list is not None and args.layers is not None \
            and args.layers != len(args.teacher_layer_list):
        raise Word2BertError(f"--layers {args.layers} but --teacher-layers names {len(args.teacher_layer_list)} "
                             "layers")


def _parse_layers(text):
    if text is None:
        return None
    try:
        layers = [int(part) for part in text.replace(" ", "").split(",") if part != ""]
    except ValueError:
        raise Word2BertError(f"--teacher-layers {text!r}: give comma-separated layer numbers such as 0,2,4") from None
    if not layers:
        raise Word2BertError("--teacher-layers: give at least one layer")
    return layers


def _saved_arguments(output: Path) -> dict | None:
    path = output / "training_args.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None


def _check_resume(args, output: Path) -> None:
    """``--resume`` needs OUT's checkpoint; flags that contradict the run's settings are refused and the
    others come from its ``training_args.json``."""
    from word2bert.train.checkpoint import find_checkpoint

    if find_checkpoint(output) is None:
        raise Word2BertError(f"--resume: no checkpoint in {output} (it is written every --save-steps steps, at "
                             "the end and on Ctrl-C)")
    saved = _saved_arguments(output)
    if saved is None:
        raise Word2BertError(f"--resume: {output} has no training_args.json, so the run's settings are unknown")
    settings = {dest: (lambda _m, d=dest: saved.get(d)) for dest in saved if dest not in RESUMABLE}
    check_resume_flags(args, saved, settings, getattr(args, "_leaf_parser", None))
    for dest, value in saved.items():
        if dest not in RESUMABLE and dest not in getattr(args, "_given", set()) and hasattr(args, dest):
            setattr(args, dest, value)


def _arguments_to_save(args) -> dict:
    return {k: v for k, v in vars(args).items()
            if not k.startswith("_") and not callable(v) and k not in ("python_names", "command")}


# --------------------------------------------------------------------------- models

def load_mlm_teacher(directory):
    """The model in ``directory`` with its masked-LM head: the class config.json names when it has one,
    else another registered class of the same model_type that does (a transformers ``BertForMaskedLM``
    checkpoint loads into ``BertForPreTraining``). A checkpoint without MLM weights is refused."""
    from word2bert.interop.huggingface import read_config_dict, read_state_dict
    from word2bert.models import auto

    config_dict = read_config_dict(directory)
    model_type = config_dict.get("model_type")
    if not model_type:
        raise Word2BertError(f"{directory}/config.json has no model_type")
    classes = auto.model_classes(model_type)
    named = [classes[a] for a in config_dict.get("architectures") or [] if a in classes]
    ordered = named + [c for c in classes.values() if c not in named]
    config = auto.encoder_class(model_type).config_class.from_json_file(Path(directory) / "config.json")
    chosen = None
    for cls in ordered:
        if not cls.is_encoder and any(key.startswith("objectives.mlm.") for key in cls.hf_key_map(config).our_keys):
            chosen = cls
            break
    no_head = (f"the teacher {directory} has no masked-LM head (it is a {model_type} encoder): masked-LM "
               "distillation needs MLM weights (a `pretrain bert` output, transformers' BertForMaskedLM); "
               "distil a fine-tuned teacher with --task instead")
    if chosen is None:
        raise Word2BertError(no_head)
    key_map = chosen.hf_key_map(config)
    state, path = read_state_dict(directory)
    _, missing = key_map.to_ours(state, source=path, what=model_type)
    head_keys = {name for rule in key_map.rules if rule.ours.startswith("objectives.mlm.") for name in rule.theirs}
    if head_keys & set(missing):
        raise Word2BertError(no_head)
    with warnings.catch_warnings():  # heads the teacher does not use (NSP) keep their initialisation
        warnings.simplefilter("ignore")
        return chosen.from_pretrained(directory)


def _is_bert(encoder) -> bool:
    config = encoder.config
    return (getattr(config, "model_type", None) == "bert" and not getattr(config, "pre_layer_norm", False)
            and getattr(config, "position_embedding_type", "learned") == "learned")


def _student_type(args, source_encoder) -> str:
    if args.student_type is None:
        args.student_type = "distilbert" if _is_bert(source_encoder) else "same"
    if args.student_type == "distilbert" and not _is_bert(source_encoder):
        raise Word2BertError(f"--student distilbert needs a BERT model to start from, not "
                             f"{source_encoder.config.model_type!r}: use --student same")
    if args.sinusoidal_positions and args.student_type != "distilbert":
        raise Word2BertError("--sinusoidal-positions applies to a DistilBERT student (--student distilbert)")
    return args.student_type


def _cut(model, args, encoder):
    """The student made from ``model`` (whose encoder is ``encoder``) with the chosen layers."""
    from word2bert.models.distilbert import distilbert_from_bert, spread_layers, student_from_teacher

    depth = encoder.config.num_hidden_layers
    layers = args.teacher_layer_list
    if layers is None:
        count = args.layers if args.layers is not None else max(1, depth // 2)
        layers = spread_layers(depth, count)
    args.chosen_layers = list(layers)
    if _student_type(args, encoder) == "distilbert":
        return distilbert_from_bert(model, layers=layers, sinusoidal_pos_embds=args.sinusoidal_positions)
    return student_from_teacher(model, layers=layers)


# --------------------------------------------------------------------------- the command

def run_distill(args) -> int:
    require_contextual("distill")
    mode = _mode(args)
    if args.resume and args.overwrite:
        raise Word2BertError("--resume continues the run in OUT and --overwrite replaces it: give one of them")
    output = Path(args.output)
    prepare_output_directory(output, overwrite=args.overwrite, resume=args.resume,
                             marker="config.json" if mode == "mlm" else "task.json")
    if args.resume:
        _check_resume(args, output)
    _fill_defaults(args, mode)
    _check_arguments(args, mode)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if mode == "mlm":
        return _run_mlm(args, output)
    return _run_task(args, output)


def _train(args, output: Path, model, train_data, collate, eval_data=None, sampler=None, adam_beta2=0.999,
           what: str = "sequences"):
    """Write the run's files, train (resuming when asked), return the trainer; OUT is removed again if
    this run created it and failed before training."""
    from word2bert.train import Trainer, TrainingArguments

    training = TrainingArguments(
        output_dir=str(output), batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
        learning_rate=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup, adam_beta2=adam_beta2,
        max_grad_norm=args.clip, gradient_accumulation_steps=args.grad_accum, bf16=args.bf16, seed=args.seed,
        save_steps=args.save_steps, progress=False if args.quiet else None)
    trainer = Trainer(model, training, train_data, collate, eval_data=eval_data, sampler=sampler)
    created = not output.exists()
    try:
        output.mkdir(parents=True, exist_ok=True)
        if not args.resume:
            (output / "training_args.json").write_text(json.dumps(_arguments_to_save(args), indent=2) + "\n",
                                                       encoding="utf-8")
    except BaseException:
        if created:
            shutil.rmtree(output, ignore_errors=True)
        raise
    say(f"{len(train_data):,} training {what}, {trainer.state.total_steps:,} steps of {args.batch_size}",
        quiet=args.quiet)
    trainer.train(resume_from=output if args.resume else None)
    return trainer


def _run_mlm(args, output: Path) -> int:
    import torch

    from word2bert.objectives import MaskedLM
    from word2bert.objectives.distillation import FrequencySmoothedTokens, MaskedLMDistillation, SequenceDataset
    from word2bert.tasks.finetune import load_tokenizer
    from word2bert.train.samplers import LengthGroupedSampler

    teacher_dir = Path(args.teacher)
    tokenizer = load_tokenizer(teacher_dir)
    teacher = load_mlm_teacher(teacher_dir)
    positions = teacher.config.max_position_embeddings
    if args.max_seq_length > positions and "max_seq_length" not in getattr(args, "_given", set()):
        args.max_seq_length = positions  # the default is the teacher's limit when that is shorter
    if args.max_seq_length > positions:
        raise Word2BertError(f"--max-seq-length {args.max_seq_length} exceeds the teacher's "
                             f"max_position_embeddings={positions}")
    torch.manual_seed(args.seed)
    student = _cut(teacher, args, teacher.encoder)
    say(f"student: {type(student).__name__}, {student.config.num_hidden_layers} layers from teacher layers "
        f"{', '.join(map(str, args.chosen_layers))}", quiet=args.quiet)
    say(f"reading {args.corpus}", quiet=args.quiet)
    dataset = SequenceDataset.from_file(args.corpus, tokenizer, max_seq_length=args.max_seq_length,
                                        min_seq_length=args.min_seq_length)
    train, held_out = dataset.split(int(len(dataset) * args.eval_fraction), seed=args.seed)
    units = None
    if args.mlm_smoothing > 0:
        units = FrequencySmoothedTokens(train.token_counts(tokenizer.vocab_size), args.mlm_smoothing)
    masking = MaskedLM(tokenizer.vocab_size, tokenizer.mask_id, tokenizer.special_ids, tokenizer.pad_id,
                       masked_lm_prob=args.masked_lm_prob, max_predictions_per_seq=args.max_predictions,
                       dynamic=True, seed=args.seed, units=units)
    distillation = MaskedLMDistillation(student, teacher, masking=masking, temperature=args.temperature,
                                        alpha_ce=args.alpha_ce, alpha_mlm=args.alpha_mlm, alpha_cos=args.alpha_cos,
                                        ce_rows=args.ce_rows)
    # batches of similar lengths, as DistilBERT's GroupedBatchSampler makes them
    sampler = LengthGroupedSampler(train.lengths, args.batch_size, args.seed)
    started = time.perf_counter()
    try:
        trainer = _train(args, output, distillation, train, distillation.collator(tokenizer.pad_id),
                         eval_data=held_out, sampler=sampler, adam_beta2=0.98)
    except KeyboardInterrupt:
        say(f"word2bert: interrupted; checkpoint saved in {output} (continue with --resume)")
        return 130

    def save(directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        student.save_pretrained(directory)
        tokenizer.save(directory)

    save_or_rescue(save, output, "student")
    state = trainer.state
    summary = {"student": type(student).__name__, "layers": student.config.num_hidden_layers,
               "teacher_layers": args.chosen_layers, "steps": state.global_step, "tokens": state.tokens_seen,
               "final_loss": state.history[-1]["loss"] if state.history else None,
               "evaluation": state.evaluations[-1] if state.evaluations else None,
               "seconds": round(time.perf_counter() - started, 2), "output": str(output)}
    return _report(args, "masked-LM", summary)


def _report(args, what: str, summary: dict, evaluated_on: str = "held-out") -> int:
    if args.json:
        print(json.dumps(summary))
        return 0
    evaluation = ""
    if summary.get("evaluation"):
        shown = {k: v for k, v in summary["evaluation"].items() if k not in ("step",)}
        evaluation = f"; {evaluated_on} {format_metrics(shown)}"
    loss = f", final loss {summary['final_loss']:.4f}" if summary.get("final_loss") is not None else ""
    print(f"distill ({what}): {summary['student']} of {summary['layers']} layers, {summary['steps']:,} steps in "
          f"{summary['seconds']:.1f} s{loss}{evaluation} -> {summary['output']}")
    return 0


def _run_task(args, output: Path) -> int:
    import numpy as np
    import torch

    from word2bert.models.auto import encoder_from_pretrained
    from word2bert.objectives.distillation import TaskDistillation
    from word2bert.tasks.data import TaskCollator, read_task_file
    from word2bert.tasks.finetune import encode_examples, evaluate_task, load_tokenizer
    from word2bert.tasks.heads import build_head, load_finetuned
    from word2bert.train.samplers import LengthGroupedSampler

    teacher_dir = Path(args.teacher)
    if not (teacher_dir / "task.json").is_file():
        raise Word2BertError(f"--teacher {teacher_dir} has no task.json: task distillation needs a fine-tuned "
                             "teacher (a `word2bert finetune` output)")
    teacher = load_finetuned(teacher_dir)
    if teacher.task not in ("classification", "tagging") or (args.task == "tagging") != (teacher.task == "tagging"):
        raise Word2BertError(f"--task {args.task} does not fit the teacher, fine-tuned for {teacher.task}")
    tokenizer = load_tokenizer(teacher_dir)
    labels = list(teacher.labels)
    examples = read_task_file(args.task, args.train)
    if args.max_train_examples and args.max_train_examples < len(examples):
        keep = np.sort(np.random.default_rng(args.seed).permutation(len(examples))[:args.max_train_examples])
        examples = [examples[i] for i in keep]
    unknown = sorted(({t for e in examples for t in e["tags"]} if args.task == "tagging"
                      else {e["label"] for e in examples}) - set(labels))
    if unknown:
        raise Word2BertError(f"--train {args.train}: label {unknown[0]!r} is not one the teacher predicts "
                             f"({len(labels)} labels)")
    positions = teacher.encoder.config.max_position_embeddings
    max_length = min(args.max_seq_length, positions)
    items = encode_examples(args.task, examples, tokenizer, labels, max_length)
    torch.manual_seed(args.seed)
    if args.init_from is not None:
        source = encoder_from_pretrained(args.init_from)
        if source.config.vocab_size != teacher.encoder.config.vocab_size:
            raise Word2BertError(f"--init-from {args.init_from}: its vocabulary ({source.config.vocab_size} ids) is "
                                 f"not the teacher's ({teacher.encoder.config.vocab_size})")
    else:
        source = teacher
    pooling = args.pooling or getattr(teacher, "pooling", "cls")
    source_encoder = teacher.encoder if source is teacher else source
    keeps_head = args.task == "tagging" or pooling == getattr(teacher, "pooling", None)
    if source is teacher and _student_type(args, source_encoder) == "same" and keeps_head:
        student = _cut(teacher, args, source_encoder)  # the teacher's head, pooler and classifier included
    else:
        student = build_head(args.task, _cut(source_encoder, args, source_encoder), labels=labels, pooling=pooling)
    say(f"student: {type(student.encoder).__name__} of {student.encoder.config.num_hidden_layers} layers from "
        f"{'teacher' if source is teacher else args.init_from} layers {', '.join(map(str, args.chosen_layers))}",
        quiet=args.quiet)
    distillation = TaskDistillation(student, teacher, temperature=args.temperature, alpha_ce=args.alpha_ce,
                                    alpha_task=args.alpha_task)
    sampler = LengthGroupedSampler([len(item["input_ids"]) for item in items], args.batch_size, args.seed)
    started = time.perf_counter()
    try:
        trainer = _train(args, output, distillation, items, TaskCollator(tokenizer.pad_id), sampler=sampler,
                         what="examples")
    except KeyboardInterrupt:
        say(f"word2bert: interrupted; checkpoint saved in {output} (continue with --resume)")
        return 130
    seconds = time.perf_counter() - started

    def save(directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        student.save_pretrained(directory)
        tokenizer.save(directory)

    save_or_rescue(save, output, "student")
    state = trainer.state
    evaluation = None
    if args.dev is not None:
        dev = read_task_file(args.task, args.dev)
        if args.max_dev_examples and args.max_dev_examples < len(dev):
            keep = np.sort(np.random.default_rng(args.seed + 1).permutation(len(dev))[:args.max_dev_examples])
            dev = [dev[i] for i in keep]
        dev_items = encode_examples(args.task, dev, tokenizer, labels, max_length)
        student_metrics = evaluate_task(student, dev_items, args.task, pad_id=tokenizer.pad_id)
        teacher_metrics = evaluate_task(teacher, dev_items, args.task, pad_id=tokenizer.pad_id)
        evaluation = {"accuracy": student_metrics["accuracy"], "teacher_accuracy": teacher_metrics["accuracy"],
                      "examples": student_metrics["examples"]}
    layers_key = "teacher_layers" if source is teacher else "init_layers"  # the layers of --init-from's model
    summary = {"student": type(student.encoder).__name__, "layers": student.encoder.config.num_hidden_layers,
               layers_key: args.chosen_layers, "steps": state.global_step,
               "final_loss": state.history[-1]["loss"] if state.history else None, "evaluation": evaluation,
               "seconds": round(seconds, 2), "output": str(output)}
    return _report(args, args.task, summary, "dev")
