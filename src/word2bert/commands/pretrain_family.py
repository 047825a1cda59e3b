"""``word2bert pretrain {roberta,albert,spanbert,ernie}`` and the masking options they share with
``pretrain bert`` (``--masking {token,whole-word,span,ngram,phrase,entity}``).

Each writes a Hugging Face layout directory (config.json, model.safetensors, the tokenizer's files)
that ``word2bert finetune`` and ``word2bert encode`` take, and a checkpoint that ``--resume`` continues.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from word2bert.commands import add_overwrite_option, prepare_output_directory
from word2bert.commands._contextual import (
    read_config_file,
    save_pretrained_with,
    train_and_save,
)
from word2bert.errors import Word2BertError

MASKINGS = ("token", "whole-word", "span", "ngram", "phrase", "entity")

EPILOG = """examples:
  word2bert pretrain roberta corpus.txt -o roberta-small --packing full-sentences --max-steps 2000
  word2bert pretrain albert corpus.txt -o albert-small --embedding-size 64 --groups 1 --masking ngram
  word2bert pretrain spanbert corpus.txt -o spanbert-small --masking span --geometric-p 0.2
  word2bert pretrain ernie corpus.txt -o ernie-small --schedule stages.json --gazetteer names.txt
  word2bert pretrain bert corpus.txt -o bert-wwm --masking whole-word
  word2bert finetune roberta-small --train train.tsv --dev dev.tsv -o clf

Masking units (15% of the tokens, 80/10/10 decided per unit): token (BERT), whole-word (BERT-WWM;
--chinese: jieba words), span (SpanBERT: geometric lengths in words), ngram (ALBERT: n <= 3,
p(n) ~ 1/n), phrase (ERNIE: --phrases from `word2bert phrases --save-model`, else learned on the
corpus), entity (ERNIE: --gazetteer, one name per line, or --spacy-model).

ERNIE's schedule file (continual multi-task learning; later stages keep the earlier tasks):
  {"stages": [{"steps": 1000, "tasks": {"knowledge_masking": 1}},
              {"steps": 1000, "tasks": {"knowledge_masking": 1, "sentence_reordering": 1}}]}
  tasks: knowledge_masking (units of --masking), capitalization, token_document_relation,
  sentence_reordering, sentence_distance, discourse_relation; ERNIE 1.0's basic_masking,
  phrase_masking, entity_masking ("continual": false, or --sequential, trains them one stage each);
  dialogue (with --dialogues FILE)
"""


# ---------------------------------------------------------------------------------- masking options
def add_masking_arguments(parser, default: str = "token") -> None:
    """``--masking`` and the options of its unit selectors (shared by every ``pretrain`` model)."""
    group = parser.add_argument_group("masking units")
    group.add_argument("--masking", choices=MASKINGS, default=default, help="which tokens are masked together")
    group.add_argument("--phrases", help="phrase masking: a phrase model (word2bert phrases --save-model) or a "
                                         "file of phrases, one per line (default: learn them on the corpus)")
    group.add_argument("--gazetteer", help="entity masking: a file of entity names, one per line")
    group.add_argument("--spacy-model", help="entity masking: find entities with this spaCy model instead")
    group.add_argument("--chinese", action="store_true", help="whole-word masking of Chinese words (jieba)")
    group.add_argument("--geometric-p", type=float, default=0.2,
                       help="span masking: p of the geometric span length (the paper 0.2, its code 0.3)")
    group.add_argument("--max-span", type=int, default=10, help="span masking: longest span, in words")
    group.add_argument("--max-ngram", type=int, default=3, help="n-gram masking: longest n-gram, in words")


def _read_phrases(path: Path):
    from word2bert.static.phrases import load_phrases

    try:
        return load_phrases(path)
    except Word2BertError:
        pass
    from word2bert.fileio import open_text

    with open_text(path) as handle:
        phrases = [line.split("\t")[0].strip() for line in handle if line.strip() and not line.startswith("#")]
    if not phrases:
        raise Word2BertError(f"--phrases {path}: no phrases in it")
    return phrases


def masking_units(args, tokenizer, corpus, say=lambda *a: None):
    """The unit selector that ``args.masking`` and its options describe."""
    from word2bert.objectives.units import make_selector

    phrases = None
    if args.masking == "phrase":
        if args.phrases:
            phrases = _read_phrases(Path(args.phrases))
        else:
            from word2bert.static.phrases import learn_phrases

            say(f"learning phrases on {corpus} (word2phrase scores, 2 passes; give --phrases to choose them)")
            phrases = learn_phrases(corpus_file=corpus, passes=2, threshold=[100.0, 50.0], scoring="word2phrase",
                                    min_count=5)
            found = len(phrases.export_phrases())
            if not found:
                raise Word2BertError(f"no phrases found in {corpus} (too little text for word2phrase's thresholds): "
                                     "give --phrases (a phrase model or a list)")
            say(f"{found} phrases")
    texts = None
    if args.masking == "entity" and args.spacy_model and not args.gazetteer:
        from word2bert.objectives.ernie import read_document_texts

        texts = [s for d in read_document_texts(corpus) for s in d]
    return make_selector(args.masking, tokenizer, phrases=phrases, gazetteer=args.gazetteer,
                         chinese=args.chinese, geometric_p=args.geometric_p, max_span=args.max_span,
                         max_ngram=args.max_ngram, spacy_model=args.spacy_model, spacy_texts=texts)


# ---------------------------------------------------------------------------------- the commands
MODELS = {
    "roberta": ("RoBERTa: byte-level BPE, dynamic masking, no NSP, packed full sentences", "token"),
    "albert": ("ALBERT: factorised embedding, shared layers, sentence-order prediction, unigram vocabulary",
               "ngram"),
    "spanbert": ("SpanBERT: span masking + span boundary objective on single segments", "span"),
    "ernie": ("ERNIE 2.0: knowledge masking and sentence tasks added stage by stage (task embeddings)", "phrase"),
}


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter
    from word2bert.commands._contextual import pretrain_group

    models = pretrain_group(commands)  # the shared `word2bert pretrain MODEL` group (subcommand_group)
    for name, (help_text, default_masking) in MODELS.items():
        parser = models.add_parser(name, help=help_text, formatter_class=HelpfulFormatter, epilog=EPILOG,
                                   description=f"Pre-train {help_text}.")
        parser.add_argument("corpus", help="text file (plain/.gz/.bz2/.xz): one sentence per line and blank lines "
                                           "between documents, or one document per line")
        parser.add_argument("-o", "--output", required=True, help="output directory (Hugging Face layout)")
        parser.add_argument("--config", help="model config JSON (transformers' field names); flags override it")
        parser.add_argument("--layers", type=int, help="num_hidden_layers (default 4)")
        parser.add_argument("--hidden", type=int, help="hidden_size (default 256)")
        parser.add_argument("--heads", type=int, help="num_attention_heads (default 4)")
        parser.add_argument("--ffn", type=int, help="intermediate_size (default 4 x hidden)")
        parser.add_argument("--dropout", type=float, help="hidden and attention dropout")
        parser.add_argument("--vocab", help="a directory with an existing tokenizer (default: train one)")
        parser.add_argument("--vocab-size", type=int, default=8000, help="vocabulary size when training one")
        parser.add_argument("--cased", action="store_true", help="keep case (WordPiece / unigram vocabularies)")
        parser.add_argument("--max-seq-length", type=int, default=128)
        parser.add_argument("--short-seq-prob", type=float, default=0.1)
        parser.add_argument("--words-per-sentence", type=int, default=24,
                            help="pseudo-sentence length for one-document-per-line corpora")
        parser.add_argument("--masked-lm-prob", type=float, default=0.15)
        parser.add_argument("--max-predictions", type=int, default=20, help="max_predictions_per_seq")
        add_masking_arguments(parser, default_masking)
        if name != "roberta":
            parser.add_argument("--dynamic-masking", action="store_true",
                                help="new masks every use (default: fixed masks per copy, --dupe-factor copies)")
            parser.add_argument("--dupe-factor", type=int, default=None, help="copies of the data (default 5, "
                                                                               "1 with --dynamic-masking)")
        if name == "roberta":
            parser.add_argument("--packing", choices=["full-sentences", "doc-sentences"], default="full-sentences",
                                help="FULL-SENTENCES crosses documents (with a separator); DOC-SENTENCES does not")
        if name == "albert":
            parser.add_argument("--embedding-size", type=int, default=128, help="E of the factorised embedding")
            parser.add_argument("--groups", type=int, default=1, help="num_hidden_groups (1: one shared layer)")
            parser.add_argument("--no-sop", action="store_true", help="masked LM only")
        if name == "spanbert":
            parser.add_argument("--no-sbo", action="store_true", help="masked LM only (no span boundary objective)")
        if name == "ernie":
            parser.add_argument("--schedule", help="stages and task weights (JSON, see below); default: one task "
                                                   "added per stage, --tasks in order, --max-steps in all")
            parser.add_argument("--tasks", default="knowledge_masking,token_document_relation,sentence_reordering,"
                                                   "sentence_distance", help="tasks of the default schedule")
            parser.add_argument("--dialogues", help="a dialogue file (one turn per line, blank lines between "
                                                    "dialogues) for ERNIE 1.0's dialogue LM task 'dialogue'")
            parser.add_argument("--sequential", action="store_true",
                                help="default schedule: one task per stage instead of adding tasks (ERNIE 1.0's "
                                     "--tasks basic_masking,phrase_masking,entity_masking)")
        parser.add_argument("--batch-size", type=int, default=32, help="per process")
        parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: --epochs)")
        parser.add_argument("--epochs", type=float, default=1.0)
        parser.add_argument("--lr", type=float, default=1e-4)
        parser.add_argument("--warmup", type=float, default=0.01, help="warm-up steps (< 1: fraction of the run)")
        parser.add_argument("--weight-decay", type=float, default=0.01)
        parser.add_argument("--clip", type=float, default=1.0, help="max gradient norm (0: off)")
        parser.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
        parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
        parser.add_argument("--eval-fraction", type=float, default=0.01, help="held-out share of the instances")
        parser.add_argument("--eval-steps", type=int, default=0, help="evaluate every N steps (0: at the end)")
        parser.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps (0: end/interrupt)")
        parser.add_argument("--seed", type=int, default=12345)
        parser.add_argument("--threads", type=int, default=None, help="torch threads")
        parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output directory")
        add_overwrite_option(parser)
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        parser.set_defaults(func=run, family_model=name)


# ---------------------------------------------------------------------------------- building blocks
def _config(config_class, args, vocab_size: int, **fixed):
    """A config from --config, the size flags (they win) and ``fixed`` values."""
    values = read_config_file(args.config) if args.config else {}
    for key, value in {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4}.items():
        values.setdefault(key, value)
    flags = {"num_hidden_layers": args.layers, "hidden_size": args.hidden, "num_attention_heads": args.heads,
             "intermediate_size": args.ffn}
    values.update({k: v for k, v in flags.items() if v is not None})
    values.setdefault("intermediate_size", 4 * values["hidden_size"])
    if args.dropout is not None:
        values["hidden_dropout_prob"] = values["attention_probs_dropout_prob"] = args.dropout
    values["vocab_size"] = vocab_size
    values.update(fixed)
    return config_class.from_dict(values)


def _tokenizer(kind: str, args, corpus: Path, output: Path, say):
    """The model's tokenizer: from the output (resume), from --vocab, or trained on the corpus."""
    from word2bert.tokenizers.auto import tokenizer_from_pretrained

    if args.resume and any((output / f).is_file() for f in ("vocab.txt", "tokenizer.json", "vocab.json")):
        return tokenizer_from_pretrained(output)
    if args.vocab:
        return tokenizer_from_pretrained(args.vocab)
    say(f"training a {kind} vocabulary of {args.vocab_size} on {corpus}")
    if kind == "byte-level BPE":
        from word2bert.models.roberta import RobertaTokenizer
        return RobertaTokenizer.train(corpus, vocab_size=args.vocab_size)
    if kind == "unigram":
        from word2bert.tokenizers.unigram import UnigramTokenizer
        return UnigramTokenizer.train(corpus, vocab_size=args.vocab_size, lowercase=not args.cased)
    from word2bert.corpus.wordpiece import WordPieceTokenizer
    return WordPieceTokenizer.train(corpus, vocab_size=args.vocab_size, lowercase=not args.cased)


def _masking(args, tokenizer, units, dynamic: bool):
    from word2bert.objectives.mlm import MaskedLM

    return MaskedLM(tokenizer.vocab_size, tokenizer.mask_id, tokenizer.special_ids, tokenizer.pad_id,
                    masked_lm_prob=args.masked_lm_prob, max_predictions_per_seq=args.max_predictions,
                    dynamic=dynamic, seed=args.seed, units=units)


def _build_roberta(args, corpus, output, say):
    from word2bert.models.roberta import (
        RobertaConfig,
        RobertaForMaskedLM,
        pack_sentences,
        segments_dataset,
    )
    from word2bert.objectives.pretraining import read_documents

    tokenizer = _tokenizer("byte-level BPE", args, corpus, output, say)
    units = masking_units(args, tokenizer, corpus, say)
    documents = read_documents(corpus, tokenizer, words_per_sentence=args.words_per_sentence)
    blocks = pack_sentences(documents, args.max_seq_length - 2, args.packing, separator_id=tokenizer.sep_id)
    config = _config(RobertaConfig, args, tokenizer.vocab_size, pad_token_id=tokenizer.pad_id,
                     bos_token_id=tokenizer.cls_id, eos_token_id=tokenizer.sep_id,
                     max_position_embeddings=args.max_seq_length + tokenizer.pad_id + 1)
    masking = _masking(args, tokenizer, units, dynamic=True)
    return tokenizer, config, RobertaForMaskedLM(config, masking), segments_dataset(blocks, tokenizer.cls_id,
                                                                                      tokenizer.sep_id)


def _dupe_factor(args) -> int:
    return args.dupe_factor or (1 if args.dynamic_masking else 5)


def _build_albert(args, corpus, output, say):
    from word2bert.models.albert import AlbertConfig, AlbertForPreTraining
    from word2bert.models.roberta import pack_sentences, segments_dataset
    from word2bert.objectives.pretraining import read_documents
    from word2bert.objectives.sop import SentenceOrderDataset

    tokenizer = _tokenizer("unigram", args, corpus, output, say)
    units = masking_units(args, tokenizer, corpus, say)
    documents = read_documents(corpus, tokenizer, words_per_sentence=args.words_per_sentence)
    config = _config(AlbertConfig, args, tokenizer.vocab_size, embedding_size=args.embedding_size,
                     num_hidden_groups=args.groups, pad_token_id=tokenizer.pad_id,
                     max_position_embeddings=args.max_seq_length)
    if args.no_sop:
        blocks = pack_sentences(documents * _dupe_factor(args), args.max_seq_length - 2, "doc-sentences")
        dataset = segments_dataset(blocks, tokenizer.cls_id, tokenizer.sep_id)
    else:
        dataset = SentenceOrderDataset.from_documents(documents, tokenizer.cls_id, tokenizer.sep_id,
                                                      args.max_seq_length, args.short_seq_prob,
                                                      _dupe_factor(args), args.seed)
    masking = _masking(args, tokenizer, units, args.dynamic_masking)
    return tokenizer, config, AlbertForPreTraining(config, masking, sentence_order=not args.no_sop), dataset


def _build_spanbert(args, corpus, output, say):
    from word2bert.models.roberta import pack_sentences, segments_dataset
    from word2bert.models.spanbert import SpanBertConfig, SpanBertForPreTraining
    from word2bert.objectives.pretraining import read_documents

    tokenizer = _tokenizer("WordPiece", args, corpus, output, say)
    units = masking_units(args, tokenizer, corpus, say)
    documents = read_documents(corpus, tokenizer, words_per_sentence=args.words_per_sentence)
    blocks = pack_sentences(documents * _dupe_factor(args), args.max_seq_length - 2, "doc-sentences")
    config = _config(SpanBertConfig, args, tokenizer.vocab_size, max_position_embeddings=args.max_seq_length,
                     pad_token_id=tokenizer.pad_id)
    masking = _masking(args, tokenizer, units, args.dynamic_masking)
    model = SpanBertForPreTraining(config, masking, span_boundary=not args.no_sbo)
    return tokenizer, config, model, segments_dataset(blocks, tokenizer.cls_id, tokenizer.sep_id)


def _build_ernie(args, corpus, output, say):
    import numpy as np

    from word2bert.models.ernie import ErnieConfig, ErnieForMultiTaskPreTraining
    from word2bert.objectives import ernie
    from word2bert.objectives.mlm import MaskedLMObjective

    tokenizer = _tokenizer("WordPiece", args, corpus, output, say)
    if args.schedule:
        schedule = ernie.ErnieSchedule.from_file(args.schedule)
    else:
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        if args.dialogues and "dialogue" not in tasks:
            tasks.append("dialogue")
        steps = args.max_steps or 1000
        try:
            schedule = ernie.ErnieSchedule.default(steps, tasks, continual=not args.sequential)
        except Word2BertError as exc:
            raise Word2BertError(f"--tasks: {exc}") from None
    tasks = schedule.tasks
    if "dialogue" in tasks and not args.dialogues:
        raise Word2BertError("the schedule has the dialogue task: give --dialogues FILE")
    units = {}  # each masked-LM task's units; bad masking options fail here, before the long work
    for task in tasks:
        if task in ernie.MASKING_TASKS:
            level = ernie.MASKING_TASKS[task] or args.masking
            units[task] = masking_units(argparse.Namespace(**{**vars(args), "masking": level}), tokenizer, corpus, say)
    say("reading documents and building the tasks' instances: " + ", ".join(tasks))
    corpus_docs = ernie.ErnieDocuments.from_texts(ernie.read_document_texts(corpus, args.words_per_sentence),
                                                  tokenizer)
    rng = np.random.default_rng(args.seed)
    cls_id, sep_id, length = tokenizer.cls_id, tokenizer.sep_id, args.max_seq_length
    items, classes = {}, {}
    for task in tasks:
        if task in ernie.MASKING_TASKS:
            items[task] = ernie.block_instances(corpus_docs, "knowledge_masking", length, cls_id, sep_id)
        elif task in ("capitalization", "token_document_relation"):
            items[task] = ernie.block_instances(corpus_docs, task, length, cls_id, sep_id)
        elif task == "sentence_reordering":
            items[task] = ernie.sentence_reordering_instances(corpus_docs, length, cls_id, sep_id, rng)
            classes[task] = len(ernie.reordering_classes())
        elif task == "sentence_distance":
            items[task] = ernie.sentence_distance_instances(corpus_docs, length, cls_id, sep_id, rng)
        elif task == "discourse_relation":
            items[task], names = ernie.discourse_instances(corpus_docs, tokenizer, length, cls_id, sep_id, rng=rng)
            classes[task] = max(1, len(names))
            say(f"discourse relation: {len(items[task])} pairs, markers {', '.join(names) or 'none'}")
        elif task == "dialogue":
            items[task] = ernie.dialogue_instances(ernie.read_dialogues(args.dialogues, tokenizer), length,
                                                   cls_id, sep_id, rng)
    config = _config(ErnieConfig, args, tokenizer.vocab_size, use_task_id=True,
                     task_type_vocab_size=max(schedule.task_types.values()) + 1,
                     max_position_embeddings=args.max_seq_length, pad_token_id=tokenizer.pad_id)
    model = ErnieForMultiTaskPreTraining(config, {t: classes.get(t) for t in tasks})
    dialogue_masking = _masking(args, tokenizer, None, args.dynamic_masking)
    preparers = {}
    for task in tasks:
        if task in ernie.MASKING_TASKS:
            preparers[task] = [MaskedLMObjective(masking=_masking(args, tokenizer, units[task], args.dynamic_masking))]
        elif task == "dialogue":
            preparers[task] = [MaskedLMObjective(masking=dialogue_masking), model.objectives[task]]
        else:
            preparers[task] = [model.objectives[task]]
    data = ernie.MultiTaskData(items, schedule.task_types)
    collate = ernie.MultiTaskCollator(preparers, schedule.task_types, tokenizer.pad_id)
    sampler = ernie.ScheduleSampler(schedule, data, args.batch_size, seed=args.seed)
    return tokenizer, config, model, data, collate, sampler, schedule.total_steps


def _resume_settings(args, output: Path) -> None:
    """``--resume``: OUT must hold a checkpoint; flags that contradict the run being continued are
    refused (as ``pretrain bert`` does), and the settings not given come from that run."""
    from word2bert.commands.bert import RESUMABLE, _check_resume, _saved_arguments

    _check_resume(args, output)
    saved = _saved_arguments(output) or {}
    for dest, value in saved.items():
        if dest not in RESUMABLE and dest not in getattr(args, "_given", set()) and hasattr(args, dest):
            setattr(args, dest, value)


def _arguments_to_save(args) -> dict:
    return {k: v for k, v in vars(args).items()
            if not k.startswith("_") and not callable(v) and k not in ("pretrain_model", "command")}


def run(args) -> int:
    import torch

    from word2bert.train import Trainer, TrainingArguments

    if args.threads:
        torch.set_num_threads(args.threads)
    corpus, output = Path(args.corpus), Path(args.output)
    if args.resume and args.overwrite:
        raise Word2BertError("--resume continues the run in OUT and --overwrite replaces it: give one of them")
    prepare_output_directory(args.output, overwrite=args.overwrite, resume=args.resume)
    if args.resume:
        _resume_settings(args, output)
    if not corpus.is_file():
        raise Word2BertError(f"corpus not found: {corpus}")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    torch.manual_seed(args.seed)
    sampler, max_steps, held_out = None, args.max_steps, None
    if args.family_model == "ernie":
        tokenizer, config, model, train, collate, sampler, max_steps = _build_ernie(args, corpus, output, say)
    else:
        build = {"roberta": _build_roberta, "albert": _build_albert, "spanbert": _build_spanbert}[args.family_model]
        tokenizer, config, model, dataset = build(args, corpus, output, say)
        held_out_count = int(len(dataset) * args.eval_fraction) if args.eval_fraction > 0 else 0
        train, held_out = dataset.split(held_out_count, seed=args.seed) if held_out_count else (dataset, None)
        collate = model.collator(pad_id=tokenizer.pad_id)
    training = TrainingArguments(
        output_dir=str(output), batch_size=args.batch_size, epochs=args.epochs, max_steps=max_steps,
        learning_rate=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup,
        max_grad_norm=args.clip, gradient_accumulation_steps=args.grad_accum, bf16=args.bf16, seed=args.seed,
        save_steps=args.save_steps, eval_steps=args.eval_steps, progress=False if args.quiet else None)
    trainer = Trainer(model, training, train, collate, eval_data=held_out, sampler=sampler)
    created = not output.exists()
    try:
        if trainer.rank == 0:
            output.mkdir(parents=True, exist_ok=True)
            tokenizer.save(output)
            config.save(output / "config.json", architecture=model.hf_architecture)
            if not args.resume:  # what --resume continues with (and checks its flags against)
                (output / "training_args.json").write_text(json.dumps(_arguments_to_save(args), indent=2) + "\n",
                                                           encoding="utf-8")
    except BaseException:
        if created:
            import shutil

            shutil.rmtree(output, ignore_errors=True)
        raise
    say(f"{len(train)} training instances, {trainer.state.total_steps} steps of {args.batch_size} x "
        f"{trainer.world_size} process(es)")
    return train_and_save(trainer, output, args.resume, save_pretrained_with(model, tokenizer),
                          model=args.family_model)
