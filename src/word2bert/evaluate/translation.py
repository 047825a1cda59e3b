"""Machine-translation evaluation: corpus BLEU and chrF with ``sacrebleu``, and a word-for-word baseline.

- :func:`translation_scores` computes corpus BLEU (Papineni et al. 2002; sacrebleu's default 13a
  tokenisation, exponential smoothing off as in its default) and chrF (Popović 2015, character 6-grams,
  beta 2), each 0-100, with sacrebleu's signatures so the figures can be reproduced.
- :class:`WordForWordTranslator` is the floor a translation model must clear: every source word is
  replaced by the target word it is most often aligned to in the training pairs (source words never
  aligned are copied: placeholders such as ``%s`` and file names). Alignments come from IBM Model 1
  (Brown et al. 1993) trained by EM on the 13a tokens of the pairs::

      t(f | e) ∝ sum over pairs, over target tokens f_j, over source tokens e_i (and NULL) of
                 t(f_j | e_i) / sum_i' t(f_j | e_i')                       (E-step, then normalise per e)

  and each target token is aligned to ``argmax_i t(f_j | e_i)`` (the Viterbi alignment of Model 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from word2bert.errors import Word2BertError


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise Word2BertError("translation scores need the `sacrebleu` package: pip install sacrebleu") from exc
    return sacrebleu


def translation_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """Corpus BLEU and chrF of ``hypotheses`` against one reference each.

    Returns ``{"bleu", "chrf", "bleu_signature", "chrf_signature", "sentences"}`` (scores 0-100).
    """
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise Word2BertError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise Word2BertError("no sentences to score")
    sacrebleu = _sacrebleu()
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": float(bleu_score.score),
        "chrf": float(chrf_score.score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hypotheses),
    }


def tokenize_13a(text: str) -> list[str]:
    """sacrebleu's 13a tokens (punctuation split off, apostrophes kept), the units BLEU counts."""
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()(text).split()


class WordForWordTranslator:
    """Word-by-word translation by the most frequent IBM Model 1 alignment (see the module docstring).

    ``WordForWordTranslator.fit(pairs)`` then ``translate(source)`` / ``translate_batch(sources)``.
    ``table`` maps each aligned source token to its most frequent target token.
    """

    def __init__(self, table: dict[str, str]):
        self.table = dict(table)

    @classmethod
    def fit(cls, pairs: Iterable[tuple[str, str]], iterations: int = 5) -> "WordForWordTranslator":
        """Train IBM Model 1 ``t(target | source)`` for ``iterations`` EM steps on (source, target) pairs."""
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise Word2BertError(f"parameter iterations={iterations!r} must be a positive integer")
        source_vocab: dict[str, int] = {"<NULL>": 0}
        target_vocab: dict[str, int] = {}
        combo_source, combo_target, combo_group = [], [], []
        group = 0
        for source, target in pairs:
            source_ids = np.array([0] + [source_vocab.setdefault(w, len(source_vocab)) for w in tokenize_13a(source)],
                                  dtype=np.int64)
            target_ids = np.array([target_vocab.setdefault(w, len(target_vocab)) for w in tokenize_13a(target)],
                                  dtype=np.int64)
            if len(target_ids) == 0:
                continue
            # every (source token incl. NULL, target token) combination; one group per target token
            combo_source.append(np.tile(source_ids, len(target_ids)))
            combo_target.append(np.repeat(target_ids, len(source_ids)))
            combo_group.append(np.repeat(np.arange(group, group + len(target_ids)), len(source_ids)))
            group += len(target_ids)
        if not combo_source:
            raise Word2BertError("no sentence pairs with target words to align")
        combo_source = np.concatenate(combo_source)
        combo_target = np.concatenate(combo_target)
        combo_group = np.concatenate(combo_group)
        keys = combo_source * len(target_vocab) + combo_target
        pair_keys, combo_pair = np.unique(keys, return_inverse=True)
        pair_source = pair_keys // len(target_vocab)
        probability = np.full(len(pair_keys), 1.0 / len(target_vocab))  # t(f | e), uniform start
        for _ in range(iterations):
            weight = probability[combo_pair]
            posterior = weight / np.bincount(combo_group, weights=weight, minlength=group)[combo_group]
            counts = np.bincount(combo_pair, weights=posterior, minlength=len(pair_keys))
            totals = np.bincount(pair_source, weights=counts, minlength=len(source_vocab))
            probability = counts / totals[pair_source]
        # Viterbi alignment: the best source token of every target token (ties: the first)
        order = np.lexsort((-probability[combo_pair], combo_group))
        first = np.ones(len(order), dtype=bool)
        first[1:] = combo_group[order][1:] != combo_group[order][:-1]
        best = order[first]
        aligned = best[combo_source[best] != 0]
        link_keys, link_counts = np.unique(combo_source[aligned] * len(target_vocab) + combo_target[aligned],
                                           return_counts=True)
        link_source, link_target = link_keys // len(target_vocab), link_keys % len(target_vocab)
        order = np.lexsort((-link_counts, link_source))
        first = np.ones(len(order), dtype=bool)
        first[1:] = link_source[order][1:] != link_source[order][:-1]
        source_words = list(source_vocab)
        target_words = list(target_vocab)
        table = {source_words[link_source[i]]: target_words[link_target[i]] for i in order[first]}
        return cls(table)

    def translate(self, source: str) -> str:
        return " ".join(self.table.get(word, word) for word in tokenize_13a(source))

    def translate_batch(self, sources: Iterable[str]) -> list[str]:
        return [self.translate(source) for source in sources]


__all__ = ["WordForWordTranslator", "tokenize_13a", "translation_scores"]
