"""``word2bert train translation`` and ``word2bert translate``: the Transformer encoder-decoder.

Examples::

    word2bert train translation po_en_fr.train.tsv.xz --valid po_en_fr.valid.tsv.xz -o en-fr/ \\
        --layers 6 --d-model 256 --heads 4 --ffn 1024 --max-tokens 4096 --max-cpu-minutes 60
    word2bert translate en-fr/ po_en_fr.test.tsv.xz --score -o hypotheses.txt --beam 4
    echo "Cannot open file" | word2bert translate en-fr/
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from word2bert.commands import (
    add_overwrite_option,
    check_output_file,
    check_resume_flags,
    prepare_output_directory,
    save_or_rescue,
)
from word2bert.errors import Word2BertError

TRAIN_EPILOG = """examples:
  word2bert train translation pairs.tsv -o en-fr/ --valid valid.tsv --max-cpu-minutes 60
  word2bert train translation pairs.tsv -o en-fr/ --resume          # continue after Ctrl-C
  word2bert train translation pairs.tsv -o en-fr/ --init mass/      # fine-tune a pre-trained model (MASS)

PAIRS is `source<TAB>target` per line (plain/.gz/.bz2/.xz). A joint byte-level BPE vocabulary is
learned on both sides; batches hold up to --max-tokens source + target positions of pairs of similar
length; the loss is label-smoothed cross-entropy; the rate follows the inverse square root of the step
after a linear warm-up (Vaswani et al. 2017). The output directory holds config.json +
model.safetensors (transformers' MarianMTModel reads them), the tokenizer (vocab.json, merges.txt)
and a resumable checkpoint.
"""

TRANSLATE_EPILOG = """examples:
  word2bert translate en-fr/ sources.txt -o hypotheses.txt --beam 4
  word2bert translate en-fr/ test.tsv --score            # TSV source<TAB>reference: BLEU and chrF on stderr
  echo "File not found" | word2bert translate en-fr/ --beam 1
"""


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter

    train = train_commands.add_parser(
        "translation", help="the Transformer encoder-decoder on sentence pairs", formatter_class=HelpfulFormatter,
        epilog=TRAIN_EPILOG, description="Train a Transformer translation model (Vaswani et al. 2017).")
    train.add_argument("pairs", help="training pairs: source<TAB>target per line")
    train.add_argument("-o", "--output", required=True, help="output directory")
    train.add_argument("--valid", help="held-out pairs (loss and perplexity at the end)")
    train.add_argument("--init", help="start from this model directory (its tokenizer and config) instead of scratch")
    train.add_argument("--source-language-id", type=int,
                       help="with --init of a model with language embeddings (MASS): the source's language id")
    train.add_argument("--target-language-id", type=int, help="... and the target's")
    train.add_argument("--max-pairs", type=int, help="use only the first N training pairs")
    train.add_argument("--vocab-size", type=int, default=8000, help="joint BPE vocabulary size")
    train.add_argument("--layers", type=int, default=6, help="encoder and decoder layers")
    train.add_argument("--d-model", type=int, default=256)
    train.add_argument("--heads", type=int, default=4)
    train.add_argument("--ffn", type=int, default=1024)
    train.add_argument("--dropout", type=float, default=0.1)
    train.add_argument("--attention-dropout", type=float, default=0.0)
    train.add_argument("--activation", default="relu")
    train.add_argument("--pre-layer-norm", action="store_true", help="pre-LN blocks instead of the paper's post-LN")
    train.add_argument("--learned-positions", action="store_true", help="learned instead of sinusoidal positions")
    train.add_argument("--max-length", type=int, default=256,
                       help="max_position_embeddings (a longer training pair is an error, or skipped with --skip-long)")
    train.add_argument("--skip-long", action="store_true", help="leave out training pairs longer than --max-length")
    train.add_argument("--label-smoothing", type=float, default=0.1)
    train.add_argument("--max-tokens", type=int, default=4096, help="padded source + target positions per batch")
    train.add_argument("--max-steps", type=int, help="optimizer steps (default: --epochs)")
    train.add_argument("--epochs", type=float, default=10.0)
    train.add_argument("--max-cpu-minutes", type=float, help="stop (and save) after this much process CPU time")
    train.add_argument("--warmup", type=int, default=4000, help="warm-up steps of the inverse-sqrt schedule")
    train.add_argument("--lr", type=float, help="peak learning rate (default: the paper's (d_model * warmup)^-0.5)")
    train.add_argument("--clip", type=float, default=0.0, help="max gradient norm (0: off, as in the paper)")
    train.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps (0: end/interrupt)")
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--threads", type=int, help="torch threads")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output directory")
    add_overwrite_option(train)
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)

    translate = commands.add_parser(
        "translate", help="translate sentences with a trained encoder-decoder", formatter_class=HelpfulFormatter,
        epilog=TRANSLATE_EPILOG,
        description="Translate one sentence per line (a file, or stdin); writes one hypothesis per line.")
    translate.add_argument("model", help="model directory (word2bert train translation output)")
    translate.add_argument("input", nargs="?", default="-", help="sentences, or TSV source<TAB>reference; '-' = stdin")
    translate.add_argument("-o", "--output", help="hypotheses file (default: stdout)")
    translate.add_argument("--beam", type=int, default=4, help="beam size (1: greedy)")
    translate.add_argument("--max-len", type=int, default=64, help="max new tokens per sentence")
    translate.add_argument("--length-penalty", type=float, default=0.6, help="GNMT's alpha")
    translate.add_argument("--batch-size", type=int, default=32)
    translate.add_argument("--score", action="store_true", help="input is TSV with references: print BLEU and chrF")
    translate.add_argument("--threads", type=int, help="torch threads")
    translate.set_defaults(func=run_translate)


# Flags that --resume may change: where to stop, how to run, what to print (and the PAIRS path, which a
# user may move; it cannot be dropped from the command line). Every other flag is part of
# the run (data, vocabulary, architecture, schedule, seed) and must match the checkpoint's value.
RESUMABLE = {"pairs", "resume", "overwrite", "output", "quiet", "threads", "max_cpu_minutes", "epochs", "max_steps",
             "save_steps", "valid", "func", "command", "train_command"}
ARGUMENTS_FILE = "training_args.json"


def saved_arguments(args) -> dict:
    """The run-defining arguments, as ``training_args.json`` keeps them for a later ``--resume``."""
    return {name: value for name, value in vars(args).items()
            if not name.startswith("_") and not callable(value) and name not in RESUMABLE}


def check_resume(args, output: Path) -> None:
    """``--resume`` continues the checkpoint's run: refuse flags that contradict it (before any work)."""
    path = output / ARGUMENTS_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return  # a run from before training_args.json existed: nothing to compare with
    except (OSError, ValueError) as exc:
        raise Word2BertError(f"--resume: cannot read {path} ({exc})") from None
    settings = {name: (lambda _saved, n=name: saved.get(n)) for name in saved_arguments(args) if name in saved}
    check_resume_flags(args, saved, settings, getattr(args, "_leaf_parser", None))


def build_config(args, tokenizer):
    from word2bert.corpus.parallel import special_ids
    from word2bert.models.transformer import TransformerConfig

    ids = special_ids(tokenizer)
    return TransformerConfig(
        vocab_size=tokenizer.vocab_size, d_model=args.d_model, encoder_layers=args.layers, decoder_layers=args.layers,
        encoder_attention_heads=args.heads, decoder_attention_heads=args.heads, encoder_ffn_dim=args.ffn,
        decoder_ffn_dim=args.ffn, activation_function=args.activation, dropout=args.dropout,
        attention_dropout=args.attention_dropout, max_position_embeddings=args.max_length,
        pad_token_id=ids["pad"], eos_token_id=ids["eos"], decoder_start_token_id=ids["bos"],
        pre_layer_norm=args.pre_layer_norm,
        position_embedding_type="learned" if args.learned_positions else "sinusoidal")


class CpuBudget:
    """A trainer callback that ends training (after saving) once the process has used ``minutes`` of CPU
    since the callback was made (at the start of the command: data preparation counts)."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60.0
        self.start = time.process_time()

    def used_minutes(self) -> float:
        return (time.process_time() - self.start) / 60.0

    def __call__(self, trainer, state) -> None:
        if time.process_time() - self.start >= self.seconds:
            state.stop_requested = True  # the loop stops after this step; a --resume goes on to total_steps


def run_train(args) -> int:
    import torch

    from word2bert.corpus.parallel import (
        ParallelDataset,
        TokenBudgetSampler,
        collate_translation,
        load_joint_bpe,
        read_parallel_tsv,
        special_ids,
        train_joint_bpe,
    )
    from word2bert.models.transformer import TransformerForTranslation
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.checkpoint import find_checkpoint
    from word2bert.train.schedules import inverse_sqrt_peak

    command_cpu_start = time.process_time()
    if args.threads:
        torch.set_num_threads(args.threads)
    output, _ = prepare_output_directory(args.output, overwrite=args.overwrite, resume=args.resume)
    if args.resume:
        if find_checkpoint(output) is None:
            raise Word2BertError(f"--resume: no checkpoint in {output}")
        check_resume(args, output)
    if not 0.0 <= args.label_smoothing < 1.0:
        raise Word2BertError(f"--label-smoothing={args.label_smoothing} must be in [0, 1)")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    budget = CpuBudget(args.max_cpu_minutes) if args.max_cpu_minutes else None
    pair_lines, valid_lines = [], []
    pairs = read_parallel_tsv(args.pairs, max_pairs=args.max_pairs, line_numbers=pair_lines)
    valid_pairs = read_parallel_tsv(args.valid, line_numbers=valid_lines) if args.valid else None
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Word2BertError(f"cannot create {output}: {exc.strerror or exc}") from None
    model = None
    if args.resume:  # the weights come from the checkpoint
        tokenizer = load_joint_bpe(output)
        config = TransformerForTranslation.config_class.from_json_file(output / "config.json")
    elif args.init:
        tokenizer = load_joint_bpe(args.init)
        changes = {name: getattr(args, name) for name in ("source_language_id", "target_language_id")
                   if getattr(args, name) is not None}
        model = TransformerForTranslation.from_pretrained(args.init, **changes)
        model.label_smoothing = args.label_smoothing
        config = model.config
    else:
        say(f"learning a joint BPE vocabulary of {args.vocab_size} on {len(pairs)} pairs")
        tokenizer = train_joint_bpe([text for pair in pairs for text in pair], vocab_size=args.vocab_size)
        config = build_config(args, tokenizer)
    if model is None:
        torch.manual_seed(args.seed)
        model = TransformerForTranslation(config, label_smoothing=args.label_smoothing)
    train = ParallelDataset.encode(pairs, tokenizer, max_length=config.max_position_embeddings,
                                   where=f"{args.pairs}: line", skip_long=args.skip_long, line_numbers=pair_lines)
    if train.skipped:
        say(f"left out {train.skipped} training pairs longer than {config.max_position_embeddings} tokens")
    if len(train) == 0:
        raise Word2BertError(f"{args.pairs}: no training pair fits in {config.max_position_embeddings} positions")
    valid = ParallelDataset.encode(valid_pairs, tokenizer, max_length=config.max_position_embeddings,
                                   where=f"{args.valid}: line", line_numbers=valid_lines) if valid_pairs else None
    pad = special_ids(tokenizer)["pad"]
    sampler = TokenBudgetSampler(*train.lengths(), max_tokens=args.max_tokens, seed=args.seed)
    eval_sampler = TokenBudgetSampler(*valid.lengths(), max_tokens=args.max_tokens, seed=0) if valid else None
    peak = args.lr if args.lr is not None else inverse_sqrt_peak(config.d_model, args.warmup)
    training = TrainingArguments(
        output_dir=str(output), epochs=args.epochs, max_steps=args.max_steps, learning_rate=peak, optimizer="adam",
        adam_beta1=0.9, adam_beta2=0.98, adam_epsilon=1e-9, weight_decay=0.0, warmup_steps=args.warmup,
        schedule="inverse_sqrt", max_grad_norm=args.clip, seed=args.seed, save_steps=args.save_steps,
        progress=False if args.quiet else None)
    collate = lambda items, rng: collate_translation(items, pad)  # noqa: E731
    trainer = Trainer(model, training, train, collate, eval_data=valid, sampler=sampler, eval_sampler=eval_sampler,
                      callbacks=[budget] if budget else None)
    if trainer.rank == 0:
        tokenizer.save(output)
        config.save(output / "config.json", architecture=model.hf_architecture)
        if not args.resume:
            from word2bert.fileio import atomic_write

            with atomic_write(output / ARGUMENTS_FILE, "w", encoding="utf-8") as handle:
                json.dump(saved_arguments(args), handle, indent=2)
    say(f"{len(train)} pairs, {sampler.num_batches()} batches per epoch, up to {trainer.state.total_steps} steps "
        f"(peak lr {peak:.2e}, warm-up {args.warmup})")
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        state = trainer.train(resume_from=output if args.resume else None)
    except KeyboardInterrupt:
        if trainer.rank == 0:
            print(f"word2bert: interrupted; checkpoint saved in {output} (continue with --resume)", file=sys.stderr)
        return 130
    if trainer.rank == 0:
        def save(directory):
            model.save_pretrained(directory)
            tokenizer.save(directory)

        save_or_rescue(save, output)
        summary = {"steps": state.global_step, "source_tokens": state.tokens_seen,
                   "wall_minutes": round((time.perf_counter() - started) / 60, 2),
                   "cpu_minutes": round((time.process_time() - cpu_started) / 60, 2),
                   "cpu_minutes_with_data_preparation": round((time.process_time() - command_cpu_start) / 60, 2),
                   "final_loss": state.history[-1]["loss"] if state.history else None,
                   "evaluation": state.evaluations[-1] if state.evaluations else None}
        from word2bert.fileio import atomic_write

        with atomic_write(output / "training.json", "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)
        print(json.dumps(summary))
    return 0


def read_sources(path: str, score: bool) -> tuple[list[str], list[str] | None, list[int]]:
    """Lines of a file or stdin; with ``score`` TSV ``source<TAB>reference`` lines (errors name the line).
    Returns (sources, references or None, the 1-based line number of each source)."""
    from word2bert.corpus.parallel import read_parallel_tsv
    from word2bert.fileio import open_text

    if score:
        if path == "-":
            raise Word2BertError("--score needs a TSV file of source<TAB>reference lines, not stdin")
        numbers: list[int] = []
        pairs = read_parallel_tsv(path, line_numbers=numbers)
        return [s for s, _ in pairs], [t for _, t in pairs], numbers
    if path == "-":
        lines = [line.rstrip("\r\n") for line in sys.stdin]
        where = "stdin"
    else:
        if not Path(path).is_file():
            raise Word2BertError(f"input file not found: {path}")
        with open_text(path) as handle:
            lines = [line.rstrip("\r\n") for line in handle]
        where = path
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise Word2BertError(f"{where}:{number}: empty source sentence")
    return lines, None, list(range(1, len(lines) + 1))


def translate_sentences(model, tokenizer, sentences, beam: int, max_len: int, length_penalty: float,
                        batch_size: int, where: str = "line", line_numbers: list[int] | None = None) -> list[str]:
    """Translate ``sentences`` in batches of similar length; hypotheses in the input order. A source too
    long for the model is an error naming ``where`` and its line (``line_numbers[i]``, default i + 1)."""
    import torch

    from word2bert.corpus.parallel import decode_translations, special_ids

    ids = special_ids(tokenizer)
    encoded = tokenizer.ids_batch(sentences)
    limit = model.config.max_position_embeddings
    for number, row in enumerate(encoded, 1):
        if len(row) + 1 > limit:
            line = line_numbers[number - 1] if line_numbers is not None else number
            raise Word2BertError(f"{where} {line}: the source has {len(row) + 1} tokens, more than the model's "
                                 f"{limit} positions")
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    hypotheses: list[str | None] = [None] * len(encoded)
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        rows = [encoded[i] + [ids["eos"]] for i in chosen]
        width = max(len(r) for r in rows)
        input_ids = torch.tensor([r + [ids["pad"]] * (width - len(r)) for r in rows])
        out = model.translate(input_ids, (input_ids != ids["pad"]).long(), num_beams=beam, max_new_tokens=max_len,
                              length_penalty=length_penalty)
        for index, text in zip(chosen, decode_translations(tokenizer, out.new_tokens)):
            hypotheses[index] = text
    return hypotheses


def run_translate(args) -> int:
    import torch

    from word2bert.corpus.parallel import load_joint_bpe
    from word2bert.fileio import atomic_write
    from word2bert.models.transformer import TransformerForTranslation

    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("beam", "max_len", "batch_size"):
        if getattr(args, name) < 1:
            raise Word2BertError(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise Word2BertError(f"{model_dir}: not a translation model directory (no config.json)")
    if args.output:
        check_output_file(args.output)
    sources, references, line_numbers = read_sources(args.input, args.score)
    tokenizer = load_joint_bpe(model_dir)
    model = TransformerForTranslation.from_pretrained(model_dir).eval()
    started = time.perf_counter()
    where = "stdin line" if args.input == "-" else f"{args.input}: line"
    hypotheses = translate_sentences(model, tokenizer, sources, args.beam, args.max_len, args.length_penalty,
                                     args.batch_size, where, line_numbers)
    seconds = time.perf_counter() - started
    text = "".join(h + "\n" for h in hypotheses)
    if args.output:
        with atomic_write(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    if references is not None:
        from word2bert.evaluate.translation import translation_scores

        scores = translation_scores(hypotheses, references)
        scores["sentences_per_second"] = round(len(sources) / seconds, 2)
        print(json.dumps(scores), file=sys.stderr)
    return 0
