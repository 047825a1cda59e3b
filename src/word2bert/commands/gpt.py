"""``word2bert pretrain gpt`` (GPT-2 or GPT-1 language model on a text corpus) and ``word2bert generate``.

Examples::

    word2bert pretrain gpt corpus.txt -o gpt-small --layers 4 --hidden 256 --heads 4 --context 256
    word2bert pretrain gpt corpus.txt -o gpt-small --tokenizer ../shared/data/gpt2_bpe --max-steps 2000
    word2bert generate gpt-small "Once upon a time" --max-new-tokens 40 --sample --top-p 0.9
    echo "def main(" | word2bert generate gpt-small --num-beams 4
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from word2bert.commands import add_overwrite_option, prepare_output_directory
from word2bert.commands._contextual import (
    read_config_file,
    save_pretrained_with,
    tokenizer_stream,
    train_and_save,
)
from word2bert.errors import Word2BertError

PRETRAIN_EPILOG = """examples:
  word2bert pretrain gpt corpus.txt -o gpt-small --layers 4 --hidden 256 --heads 4 --context 256
  word2bert pretrain gpt corpus.txt -o gpt-small --tokenizer ../shared/data/gpt2_bpe   # GPT-2's BPE
  word2bert pretrain gpt corpus.txt -o gpt1-small --architecture gpt     # GPT-1: post-LN blocks
  word2bert pretrain gpt corpus.txt -o gpt-small --resume                # continue after Ctrl-C
  word2bert generate gpt-small "The meaning of" --max-new-tokens 30

The corpus (plain/.gz/.bz2/.xz) holds one document per line; it is read as one token stream with
<|endoftext|> after every document, tokenised with a byte-level BPE vocabulary trained on it (or the
one --tokenizer names: a directory with vocab.json + merges.txt or GPT-2's encoder.json + vocab.bpe).
Each batch row reads its own part of the stream, one --context window after another, and every
token is predicted from the ones before it in its window. The output directory is a Hugging Face
layout (config.json, model.safetensors, vocab.json, merges.txt) that transformers' GPT2LMHeadModel /
OpenAIGPTLMHeadModel and GPT2Tokenizer load; `word2bert finetune` and `word2bert generate` take it.
"""

GENERATE_EPILOG = """examples:
  word2bert generate gpt-small "Once upon a time"                   greedy, 50 new tokens, streamed
  word2bert generate gpt-small "Once upon a time" --sample --temperature 0.8 --top-k 40 --seed 1
  word2bert generate gpt-small "Once upon a time" --num-beams 4 --length-penalty 0.6
  cat prompt.txt | word2bert generate gpt-small --max-new-tokens 100
  word2bert generate gpt-small --lines < prompts.txt                 one prompt per line, batched

Tokens are printed as they are produced (greedy and sampling, one prompt); beam search and --lines
print each continuation when it is complete. Generation stops at <|endoftext|> unless --no-stop.
"""


def register(commands, train_commands) -> None:
    from word2bert.cli import HelpfulFormatter
    from word2bert.commands import subcommand_group

    models = subcommand_group(commands, "pretrain", help="pre-train a contextual model")
    gpt = models.add_parser("gpt", help="GPT-2 / GPT-1: causal language modelling", formatter_class=HelpfulFormatter,
                            epilog=PRETRAIN_EPILOG,
                            description="Pre-train a GPT-2 (pre-LN) or GPT-1 (post-LN) Transformer language model.")
    gpt.add_argument("corpus", help="text file (plain/.gz/.bz2/.xz), one document per line")
    gpt.add_argument("-o", "--output", required=True, help="output directory (Hugging Face layout + checkpoint)")
    gpt.add_argument("--architecture", choices=["gpt2", "gpt"], default="gpt2",
                     help="gpt2: pre-LN blocks, final LayerNorm, scaled residual init; gpt: GPT-1's post-LN blocks")
    gpt.add_argument("--config", help="GPT2Config / OpenAIGPTConfig JSON (transformers' names); flags override it")
    gpt.add_argument("--layers", type=int, help="n_layer (default 4)")
    gpt.add_argument("--hidden", type=int, help="n_embd (default 256)")
    gpt.add_argument("--heads", type=int, help="n_head (default 4)")
    gpt.add_argument("--ffn", type=int, help="feed-forward size (default 4 x hidden; GPT-2 only)")
    gpt.add_argument("--context", type=int, default=256, help="tokens per window = n_positions")
    gpt.add_argument("--dropout", type=float, help="resid/embd/attn dropout (default 0.1)")
    gpt.add_argument("--tokenizer", help="a BPE directory (vocab.json + merges.txt or encoder.json + vocab.bpe); "
                                         "default: train one on the corpus")
    gpt.add_argument("--vocab-size", type=int, default=8000, help="BPE vocabulary size when training one")
    gpt.add_argument("--batch-size", type=int, default=16, help="rows per batch (per process)")
    gpt.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: --epochs)")
    gpt.add_argument("--epochs", type=float, default=1.0)
    gpt.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (AdamW)")
    gpt.add_argument("--warmup", type=float, default=0.02, help="warm-up steps (< 1: fraction of the run)")
    gpt.add_argument("--schedule", default="linear", choices=["linear", "constant", "inverse_sqrt"],
                     help="learning rate after the warm-up")
    gpt.add_argument("--weight-decay", type=float, default=0.01)
    gpt.add_argument("--clip", type=float, default=1.0, help="max gradient norm (0: off)")
    gpt.add_argument("--eval-fraction", type=float, default=0.01, help="held-out share of the stream (its end)")
    gpt.add_argument("--eval-steps", type=int, default=0, help="evaluate every N steps (0: at the end)")
    gpt.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps (0: end/interrupt)")
    gpt.add_argument("--seed", type=int, default=12345)
    gpt.add_argument("--threads", type=int, default=None, help="torch threads")
    gpt.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output directory")
    add_overwrite_option(gpt)
    gpt.add_argument("--quiet", action="store_true", help="no progress bar")
    gpt.set_defaults(func=run_pretrain)

    generate = commands.add_parser("generate", help="continue a prompt with a GPT model", formatter_class=HelpfulFormatter,
                                   epilog=GENERATE_EPILOG,
                                   description="Generate text with a GPT-2 / GPT-1 model directory (greedy, sampling "
                                               "or beam search), streaming the tokens as they come.")
    generate.add_argument("model", help="model directory (word2bert pretrain gpt, or transformers' GPT-2 / GPT-1 "
                                        "with its BPE files)")
    generate.add_argument("prompt", nargs="?", help="the prompt (default: read standard input)")
    generate.add_argument("--max-new-tokens", type=int, default=50)
    generate.add_argument("--sample", action="store_true", help="sample instead of taking the most likely token")
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens")
    generate.add_argument("--top-p", type=float, default=None, help="sample within the nucleus of mass p")
    generate.add_argument("--num-beams", type=int, default=1, help="beam search with this many beams")
    generate.add_argument("--length-penalty", type=float, default=0.6, help="beam search: GNMT's alpha")
    generate.add_argument("--no-stop", action="store_true", help="do not stop at <|endoftext|>")
    generate.add_argument("--lines", action="store_true", help="each line of the input is a prompt (batched)")
    generate.add_argument("--seed", type=int, default=None, help="random seed for --sample")
    generate.add_argument("--threads", type=int, default=None, help="torch threads")
    generate.set_defaults(func=run_generate)


# --------------------------------------------------------------------------- pretrain

def build_config(args, vocab_size: int, eos_id: int):
    """A GPT2Config / OpenAIGPTConfig from --config plus the flags (flags win)."""
    from word2bert.models.gpt import GPT2Config, OpenAIGPTConfig

    config_class = GPT2Config if args.architecture == "gpt2" else OpenAIGPTConfig
    values = read_config_file(args.config) if args.config else {}
    for key, value in {"n_layer": 4, "n_embd": 256, "n_head": 4}.items():
        values.setdefault(key, value)
    flags = {"n_layer": args.layers, "n_embd": args.hidden, "n_head": args.heads}
    if args.dropout is not None:
        flags.update(resid_pdrop=args.dropout, embd_pdrop=args.dropout, attn_pdrop=args.dropout)
    if args.ffn is not None:
        if config_class is not GPT2Config:
            raise Word2BertError("--ffn: GPT-1's feed-forward size is 4 x hidden (transformers' OpenAIGPTConfig)")
        flags["n_inner"] = args.ffn
    values.update({key: value for key, value in flags.items() if value is not None})
    values.update(vocab_size=vocab_size, n_positions=args.context)
    if config_class is GPT2Config:
        values.update(bos_token_id=eos_id, eos_token_id=eos_id)
    return config_class.from_dict(values)


def stream_collate(items, rng=None) -> dict:
    """Equal-length stream windows -> ``input_ids`` and ``target_ids`` (each position's next token)."""
    import torch

    def stack(key):
        return torch.from_numpy(np.stack([np.asarray(item[key], dtype=np.int64) for item in items]))

    return {"input_ids": stack("input_ids"), "target_ids": stack("labels")}


def run_pretrain(args) -> int:
    import torch

    from word2bert.models.gpt import GPT2LMHeadModel, OpenAIGPTLMHeadModel
    from word2bert.tokenizers.bpe import ByteLevelBPETokenizer
    from word2bert.train import Trainer, TrainingArguments
    from word2bert.train.checkpoint import find_checkpoint
    from word2bert.train.samplers import ContiguousStreamSampler, TokenStream

    if args.threads:
        torch.set_num_threads(args.threads)
    corpus, output = Path(args.corpus), Path(args.output)
    prepare_output_directory(args.output, overwrite=args.overwrite, resume=args.resume)
    if not corpus.exists():
        raise Word2BertError(f"corpus not found: {corpus}")
    for name in ("context", "batch_size", "vocab_size"):
        if getattr(args, name) < 1:
            raise Word2BertError(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    if not 0 <= args.eval_fraction < 1:
        raise Word2BertError(f"--eval-fraction={args.eval_fraction} must be in [0, 1)")
    if args.resume and find_checkpoint(output) is None:
        raise Word2BertError(f"--resume: no checkpoint in {output}")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    if args.resume and (output / "vocab.json").exists():
        tokenizer = ByteLevelBPETokenizer.from_pretrained(output)
    elif args.tokenizer:
        tokenizer = ByteLevelBPETokenizer.from_pretrained(args.tokenizer)
    else:
        say(f"training a byte-level BPE vocabulary of {args.vocab_size} on {corpus}")
        tokenizer = ByteLevelBPETokenizer.train(corpus, vocab_size=args.vocab_size)
    config = build_config(args, tokenizer.vocab_size, tokenizer.eos_id)
    say(f"reading {corpus} as one token stream")
    tokens = tokenizer_stream(corpus, tokenizer, tokenizer.eos_id)  # lines joined by <|endoftext|>
    held_out_count = int(len(tokens) * args.eval_fraction)
    train_tokens, held_out = (tokens[:-held_out_count], tokens[-held_out_count:]) if held_out_count > 1 \
        else (tokens, None)
    sampler = ContiguousStreamSampler(len(train_tokens), args.batch_size, args.context, seed=args.seed)
    eval_data = eval_sampler = None
    if held_out is not None:
        eval_rows = max(1, min(args.batch_size, (len(held_out) - 1) // args.context))
        eval_data = TokenStream(held_out)
        eval_sampler = ContiguousStreamSampler(len(held_out), eval_rows, args.context, seed=args.seed)
    torch.manual_seed(args.seed)
    model = (GPT2LMHeadModel if args.architecture == "gpt2" else OpenAIGPTLMHeadModel)(config)
    training = TrainingArguments(
        output_dir=str(output), batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
        learning_rate=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup, schedule=args.schedule,
        max_grad_norm=args.clip, seed=args.seed, save_steps=args.save_steps, eval_steps=args.eval_steps,
        progress=False if args.quiet else None)
    trainer = Trainer(model, training, TokenStream(train_tokens), stream_collate, eval_data=eval_data,
                      sampler=sampler, eval_sampler=eval_sampler)
    output.mkdir(parents=True, exist_ok=True)
    if trainer.rank == 0:
        tokenizer.save(output)
        config.save(output / "config.json", architecture=model.hf_architecture)
    say(f"{len(train_tokens):,} training tokens in {args.batch_size} rows, windows of {args.context}; "
        f"{trainer.state.total_steps} steps")
    return train_and_save(trainer, output, args.resume, save_pretrained_with(model, tokenizer))


# --------------------------------------------------------------------------- generate

class TextStreamer:
    """Prints the text of the tokens of one row as they arrive: the whole continuation is decoded
    each time and only what is new is written, holding back an incomplete UTF-8 character (U+FFFD)."""

    def __init__(self, tokenizer, stop_ids, out=None):
        self.tokenizer, self.stop_ids = tokenizer, set(stop_ids)
        self.out = sys.stdout if out is None else out
        self.ids: list[int] = []
        self.printed = 0
        self.done = False

    def __call__(self, tokens) -> None:
        if self.done:
            return
        token = int(tokens[0])
        if token in self.stop_ids:
            self.done = True
            return
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return
        self.out.write(text[self.printed:])
        self.out.flush()
        self.printed = len(text)

    def finish(self) -> None:
        text = self.tokenizer.decode(self.ids)
        self.out.write(text[self.printed:] + "\n")
        self.out.flush()


def load_generator(directory):
    """The model (any registered model with a ``generate`` method) and BPE tokenizer of a directory."""
    from word2bert.models import auto
    from word2bert.tokenizers.auto import tokenizer_from_pretrained

    directory = Path(directory)
    if not directory.is_dir():
        raise Word2BertError(f"model directory not found: {directory}")
    model = auto.from_pretrained(directory)
    if not hasattr(model, "generate"):
        name = type(model).__name__
        raise Word2BertError(f"{directory} holds a {name}, which does not generate text (give a GPT model)")
    tokenizer = tokenizer_from_pretrained(directory)
    if not hasattr(tokenizer, "eos_id"):
        raise Word2BertError(f"{directory}: generation needs GPT's BPE tokenizer (vocab.json + merges.txt)")
    return model.eval(), tokenizer


def run_generate(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.max_new_tokens < 1:
        raise Word2BertError(f"--max-new-tokens={args.max_new_tokens} must be >= 1")
    text = args.prompt if args.prompt is not None else sys.stdin.read()
    prompts = [line for line in text.splitlines() if line.strip()] if args.lines else [text.rstrip("\n")]
    if not prompts or not any(prompts):
        raise Word2BertError("give a prompt (an argument or standard input)")
    model, tokenizer = load_generator(args.model)
    stop_ids = [] if args.no_stop or tokenizer.eos_id is None else [tokenizer.eos_id]  # GPT-1 has no end token
    encoded = tokenizer.encode_batch(prompts, padding=True, padding_side="left")
    ids = torch.tensor(encoded["input_ids"], dtype=torch.long)
    mask = torch.tensor(encoded["attention_mask"], dtype=torch.long)
    if ids.shape[1] == 0 or bool((mask.sum(1) == 0).any()):  # an empty prompt starts from <|endoftext|>
        if tokenizer.eos_id is None:
            raise Word2BertError("give a non-empty prompt (this model has no start-of-text token)")
        ids = torch.cat([torch.full((ids.shape[0], 1), tokenizer.eos_id), ids], 1)
        mask = torch.cat([torch.ones(mask.shape[0], 1, dtype=torch.long), mask], 1)
    room = model.config.n_positions - ids.shape[1]
    if room < 1:
        raise Word2BertError(f"the prompt has {ids.shape[1]} tokens; the model reads at most {model.config.n_positions}")
    max_new = min(args.max_new_tokens, room)
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    stream = len(prompts) == 1 and args.num_beams == 1
    streamer = TextStreamer(tokenizer, stop_ids) if stream else None
    output = model.generate(ids, mask, max_new_tokens=max_new, do_sample=args.sample, temperature=args.temperature,
                            top_k=args.top_k, top_p=args.top_p, num_beams=args.num_beams,
                            length_penalty=args.length_penalty, stop_token_ids=stop_ids,
                            pad_token_id=tokenizer.pad_id, generator=generator, on_tokens=streamer)
    if streamer is not None:
        streamer.finish()
        return 0
    for row in range(len(prompts)):
        new = output.new_tokens[row, : int(output.lengths[row])].tolist()
        if new and new[-1] in stop_ids:
            new = new[:-1]
        print(tokenizer.decode(new).replace("\n", " ") if args.lines else tokenizer.decode(new))
    return 0


# --------------------------------------------------------------------------- finetune --model gpt

def run_finetune(args) -> int:
    """``word2bert finetune --model gpt``: GPT-1's input transformations and auxiliary LM loss
    (:mod:`word2bert.tasks.gpt_transforms`); --task pair means entailment."""
    from word2bert.commands import save_or_rescue
    from word2bert.commands._contextual import check_model_directory, format_metrics
    from word2bert.commands._options import input_path
    from word2bert.commands.finetune import _check_finetune_arguments
    from word2bert.tasks.gpt_transforms import (
        GPT_TASKS,
        finetune_gpt,
        read_gpt_task_file,
    )

    task = "entailment" if args.task == "pair" else args.task
    if task not in GPT_TASKS:
        raise Word2BertError(f"--task {args.task}: --model gpt fine-tunes {', '.join(GPT_TASKS)} (pair = entailment)")
    args.epochs = 3.0 if args.epochs is None else args.epochs
    args.lr = 6.25e-5 if args.lr is None else args.lr
    model_dir = check_model_directory(input_path(args, "model", "MODEL"))
    _check_finetune_arguments(args)
    output, _exists = prepare_output_directory(args.output, overwrite=args.overwrite, marker="task.json")
    read_gpt_task_file(task, args.train)  # a bad line is reported before the model is loaded
    if args.dev is not None:
        read_gpt_task_file(task, args.dev)
    result = finetune_gpt(model_dir, args.train, args.dev, task=task, epochs=args.epochs, max_steps=args.max_steps,
                          batch_size=args.batch_size, learning_rate=args.lr, max_length=args.max_length,
                          warmup=args.warmup, weight_decay=args.weight_decay, dropout=args.dropout, seed=args.seed,
                          max_train_examples=args.max_train_examples, max_dev_examples=args.max_dev_examples,
                          progress=False if args.quiet else None, num_threads=args.threads)

    def save(directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        result.model.save_pretrained(directory)
        result.tokenizer.save(directory)

    save_or_rescue(save, output, "fine-tuned model")
    metrics = {**result.metrics, "train_seconds": round(result.train_seconds, 2),
               "eval_seconds": round(result.eval_seconds, 2)}
    if args.json:
        print(json.dumps(metrics))
        return 0
    dev = ""
    if args.dev is not None:
        dev = f"; dev {format_metrics({k: v for k, v in result.metrics.items() if k not in ('train_loss', 'train_steps')})}"
    print(f"finetune: GPT {task}, {result.metrics.get('train_steps', 0):,} steps in {result.train_seconds:.1f} s, "
          f"train loss {result.metrics.get('train_loss', float('nan')):.4f}{dev} -> {output}")
    return 0
