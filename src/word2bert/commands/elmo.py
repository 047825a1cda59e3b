"""``word2bert pretrain elmo`` and ``word2bert encode --model elmo``.

Examples::

    word2bert encode --model elmo elmo-dir/ "the cat sat" "a dog barked" --layer mix
    word2bert encode --model elmo elmo-dir/ - --tokens < sentences.txt
"""

from __future__ import annotations

import sys

from word2bert.errors import Word2BertError


def register(commands, train_commands) -> None:
    """Nothing to add yet: ``encode --model elmo`` is routed here by the encode command."""


def run_encode(args) -> int:
    """Print ELMo vectors (a bilm-tf directory: options.json + lm_weights.hdf5) of whitespace-tokenised texts.

    ``--layer`` 0 (character layer), 1..L, -1 (top) or ``mix``; sentence vectors are the mean of the
    token vectors (``--pooling`` does not apply). Texts run in order with each row's LSTM state
    carried on, as bilm-tf's ``dump_bilm_embeddings`` does.
    """
    from pathlib import Path

    from word2bert.models.elmo import ElmoModel, encode

    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    layer = args.layer if args.layer == "mix" else _int(args.layer, "--layer")
    model = ElmoModel.from_pretrained(Path(args.model))
    model.enable_character_cache()
    encoded = encode(model, texts, layer=layer)
    if args.tokens:
        for tokens, vectors in zip(encoded.tokens, encoded.token_vectors):
            for token, vector in zip(tokens, vectors):
                print(token + "\t" + " ".join(f"{x:.6g}" for x in vector))
            print()
    else:
        for text, vector in zip(texts, encoded.sentence_vectors):
            print(text.replace("\t", " ") + "\t" + " ".join(f"{x:.6g}" for x in vector))
    return 0


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Word2BertError(f"{name} must be an integer or 'mix', got {value!r}") from None
