"""Load whichever tokenizer a model directory holds (``tasks.finetune.load_tokenizer`` calls this).

The directory's ``tokenizer_config.json`` names the class the way transformers does
(``tokenizer_class``); without one, the files decide:

==========================================  =====================================================
``tokenizer_class`` / files                 word2bert class
==========================================  =====================================================
BertTokenizer, ErnieTokenizer / vocab.txt   :class:`~word2bert.corpus.wordpiece.WordPieceTokenizer`
RobertaTokenizer                            :class:`~word2bert.models.roberta.RobertaTokenizer`
AlbertTokenizer / tokenizer.json (Unigram)  :class:`~word2bert.tokenizers.unigram.UnigramTokenizer`
GPT2Tokenizer / vocab.json + merges.txt,    :class:`~word2bert.tokenizers.bpe.ByteLevelBPETokenizer`
encoder.json + vocab.bpe
OpenAIGPTTokenizer / merges with ``</w>``   :class:`~word2bert.tokenizers.bpe.OpenAIGPTTokenizer`
==========================================  =====================================================
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from word2bert.errors import Word2BertError

TOKENIZER_CLASSES = {
    "BertTokenizer": "word2bert.corpus.wordpiece:WordPieceTokenizer",
    "ErnieTokenizer": "word2bert.corpus.wordpiece:WordPieceTokenizer",
    "RobertaTokenizer": "word2bert.models.roberta:RobertaTokenizer",
    "AlbertTokenizer": "word2bert.tokenizers.unigram:UnigramTokenizer",
    "GPT2Tokenizer": "word2bert.tokenizers.bpe:ByteLevelBPETokenizer",
    "OpenAIGPTTokenizer": "word2bert.tokenizers.bpe:OpenAIGPTTokenizer",
}


def _load_class(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _tokenizer_class_name(directory: Path) -> str | None:
    path = directory / "tokenizer_config.json"
    if not path.is_file():
        return None
    try:
        name = json.loads(path.read_text(encoding="utf-8")).get("tokenizer_class")
    except (OSError, ValueError, AttributeError) as error:
        raise Word2BertError(f"cannot read {path}: {error}") from None
    if isinstance(name, str) and name.endswith("Fast"):
        name = name[:-len("Fast")]
    return name


def _is_unigram(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model", {}).get("type") == "Unigram"
    except (OSError, ValueError, AttributeError):
        return False


def _has_word_end_suffix(merges: Path, lines: int = 2000) -> bool:
    """Whether a merges file marks word ends with ``</w>`` (GPT-1) in its first ``lines`` merges."""
    try:
        with open(merges, encoding="utf-8", errors="replace") as handle:
            return any("</w>" in line for _, line in zip(range(lines), handle))
    except OSError:
        return False


def tokenizer_from_pretrained(directory):
    """The tokenizer saved in ``directory`` (see the module docstring)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise Word2BertError(f"model directory not found: {directory}")
    name = _tokenizer_class_name(directory)
    if name in TOKENIZER_CLASSES:
        return _load_class(TOKENIZER_CLASSES[name]).from_pretrained(directory)
    if (directory / "vocab.txt").is_file():
        return _load_class(TOKENIZER_CLASSES["BertTokenizer"]).from_pretrained(directory)
    if (directory / "tokenizer.json").is_file() and _is_unigram(directory / "tokenizer.json"):
        return _load_class(TOKENIZER_CLASSES["AlbertTokenizer"]).from_pretrained(directory)
    if (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file() and \
            _has_word_end_suffix(directory / "merges.txt"):  # GPT-1's character BPE, not GPT-2's bytes
        return _load_class(TOKENIZER_CLASSES["OpenAIGPTTokenizer"]).from_pretrained(directory)
    if ((directory / "vocab.json").is_file() and (directory / "merges.txt").is_file()) or \
            ((directory / "encoder.json").is_file() and (directory / "vocab.bpe").is_file()):
        return _load_class(TOKENIZER_CLASSES["GPT2Tokenizer"]).from_pretrained(directory)
    raise Word2BertError(f"no tokenizer files in {directory} (vocab.txt, tokenizer.json, or vocab.json + merges.txt)")


__all__ = ["TOKENIZER_CLASSES", "tokenizer_from_pretrained"]
