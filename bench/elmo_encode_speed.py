"""ELMo feature extraction on CPU: sentences/s with and without the per-word-type character cache.

At inference the character CNN of a word does not depend on its context, so ``ElmoModel`` can run
it once per distinct word (``enable_character_cache``) and look the vector up afterwards. This
script encodes the same sentences (PTB test, one sentence per line) with ``word2bert.models.elmo.encode``
three ways, each ``--repeats`` times, and prints a markdown table of medians:

* no cache: the CNN runs on every token;
* cache, cold: a fresh cache at the start of the call (what a one-off ``encode`` costs, filling included);
* cache, warm: the same call again with the filled cache (a long-running service).

Models: ``tiny`` is the bilm-tf test fixture (real weights; CNN 124 filters, LSTM 64/16), ``small``
AllenNLP's "small" ELMo shape (CNN 2048 filters, 1 highway, LSTM 1024 with projection 128, 2 layers)
with random weights (speed does not depend on the values), ``original`` the shape of the original ELMo
(CNN 2048 filters, 2 highways, LSTM 4096/512). Example::

    flock /tmp/w2b-bench.lock python bench/elmo_encode_speed.py --model small --sentences 500 --repeats 3 \\
        --markdown bench/results/elmo_encode_speed.md
"""

from __future__ import annotations

import argparse
import lzma
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
from shared_data import DATA  # noqa: E402  (../shared/data of the clone or of a worktree's clone)
FIXTURE = ROOT / "tests" / "fixtures" / "elmo_tiny"
FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]
SHAPES = {
    "small": dict(char_embedding_dim=16, filters=FILTERS, n_highway=1, lstm_dim=1024, projection_dim=128),
    "medium": dict(char_embedding_dim=16, filters=FILTERS, n_highway=1, lstm_dim=2048, projection_dim=256),
    "original": dict(char_embedding_dim=16, filters=FILTERS, n_highway=2, lstm_dim=4096, projection_dim=512),
}


def load_model(name: str):
    from word2bert.models.elmo import ElmoConfig, ElmoModel

    if name == "tiny":
        return ElmoModel.from_pretrained(FIXTURE).eval()
    if name in SHAPES:
        torch.manual_seed(0)
        return ElmoModel(ElmoConfig(**SHAPES[name], n_layers=2, cell_clip=3.0, proj_clip=3.0,
                                    use_skip_connections=True)).eval()
    return ElmoModel.from_pretrained(name).eval()


def read_sentences(path: Path, count: int) -> list[list[str]]:
    opener = lzma.open if path.suffix == ".xz" else open
    sentences = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.split():
                sentences.append(line.split())
            if len(sentences) >= count:
                break
    return sentences


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="small", help="tiny | small | medium | original | a bilm-tf directory")
    parser.add_argument("--data", default=str(DATA / "ptb.test.txt.xz"))
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", help="append the table to this file")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from word2bert.models.elmo import encode

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    sentences = read_sentences(Path(args.data), args.sentences)
    tokens = sum(len(s) for s in sentences)
    types = len({w for s in sentences for w in s})
    run = lambda: encode(model, sentences, layer=-1, batch_size=args.batch_size)  # noqa: E731
    results = {"no cache": [], "cache, cold": [], "cache, warm": []}
    load = [os.getloadavg()[0]]
    for repeat in range(args.repeats):
        model.enable_character_cache(False)
        results["no cache"].append(timed(run))
        model.enable_character_cache(True)
        results["cache, cold"].append(timed(run))
        results["cache, warm"].append(timed(run))
        load.append(os.getloadavg()[0])
        print(f"repeat {repeat + 1}: " + ", ".join(f"{mode} {runs[-1][0]:.2f} s wall / {runs[-1][1]:.2f} s CPU"
                                                  for mode, runs in results.items()), file=sys.stderr, flush=True)
    with torch.no_grad():  # the cache must not change the numbers
        model.enable_character_cache(False)
        plain = encode(model, sentences[:64], stateful=False).sentence_vectors
        model.enable_character_cache(True)
        cached = encode(model, sentences[:64], stateful=False).sentence_vectors
    difference = float(abs(plain - cached).max())
    base = statistics.median(w for w, _ in results["no cache"])
    lines = [
        f"## model {args.model}: {len(sentences)} sentences, {tokens} tokens, {types} word types "
        f"({Path(args.data).name}), batch {args.batch_size}, {args.threads} threads, {args.repeats} repeats",
        "",
        f"Load average (1 min) before/after each repeat: {', '.join(f'{x:.1f}' for x in load)} (2 cores). "
        f"Max |difference| of the vectors with and without the cache: {difference:.2e}.",
        "",
        "| mode | wall s (median) | CPU s (median) | sentences/s | tokens/s | speed-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        lines.append(f"| {mode} | {wall:.2f} | {cpu:.2f} | {len(sentences) / wall:.1f} | {tokens / wall:.0f} | "
                     f"{base / wall:.2f}x |")
    lines += ["", f"Command: `python bench/elmo_encode_speed.py --model {args.model} --sentences {args.sentences} "
                  f"--batch-size {args.batch_size} --repeats {args.repeats} --threads {args.threads}`", ""]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
