"""Caption metrics, all computed here or by sacrebleu: nothing is downloaded at run time.

(The ``evaluate`` library fetches metric scripts from the hub; these are plain functions instead.)
For distinct-n, repetition and length, words are whitespace-separated and lower-cased, so emoji and
hashtags count as words. ROUGE-L tokenises as Google's rouge-score does by default, so its figures compare
with published ones (rouge_tokens); BLEU is sacrebleu's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SENTENCE = re.compile(r"[^.!?…]+[.!?…]*")
_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return text.lower().split()


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokens (no stemming): the runs of a-z and 0-9 in the lower-cased text. So
    punctuation never sticks to a word ("beach!" is "beach"), a hashtag counts as its word ("#travel" is
    "travel", "good_vibes" two words), emoji are dropped, and so are letters outside a-z: "café" is "caf",
    "día" is "d a", a caption in another script or of emoji alone has no tokens and scores 0."""
    return _ROUGE_TOKEN.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0–100) with sacrebleu's standard 13a tokenisation, one reference per caption."""
    import sacrebleu

    _same_length(hypotheses, references)
    if not hypotheses:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, by dynamic programming over one row at a time."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F1 (0–1) of one caption against its reference, on rouge_tokens: what rouge-score's
    ``RougeScorer(["rougeL"]).score(reference, hypothesis)["rougeL"].fmeasure`` gives."""
    hyp, ref = rouge_tokens(hypothesis), rouge_tokens(reference)
    if not hyp or not ref:
        return 0.0
    common = lcs_length(hyp, ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(hyp), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def mean_rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    _same_length(hypotheses, references)
    return _mean([rouge_l(h, r) for h, r in zip(hypotheses, references)])


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams in all captions (0–1): low means the model says the same thing."""
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def is_repetitive(text: str) -> bool:
    """A caption that repeats itself: the same sentence twice, or any word 3-gram twice."""
    sentences = [s.strip().lower() for s in _SENTENCE.findall(text) if len(s.split()) >= 2]
    if len(sentences) != len(set(sentences)):
        return True
    grams = ngrams(words(text), 3)
    return len(grams) != len(set(grams))


def repetition_rate(texts: Sequence[str]) -> float:
    """Share of captions that repeat a sentence or a 3-gram (the original model 2's failure)."""
    return _mean([1.0 if is_repetitive(t) else 0.0 for t in texts])


def mean_length(texts: Sequence[str]) -> float:
    """Mean caption length in words."""
    return _mean([len(words(t)) for t in texts])


def eos_share(ended_with_eos: Sequence[bool]) -> float:
    """Share of captions the model finished itself rather than the length limit cutting them."""
    return _mean([1.0 if e else 0.0 for e in ended_with_eos])


def caption_metrics(hypotheses: Sequence[str], references: Sequence[str],
                    ended_with_eos: Sequence[bool] | None = None, raw: Sequence[str] | None = None) -> dict:
    """All text metrics at once. ``raw`` (text before clean-up) is used for the repetition rate, since
    clean-up removes exactly the repeats it should reveal."""
    metrics = {"captions": len(hypotheses), "bleu": bleu(hypotheses, references),
               "rouge_l": mean_rouge_l(hypotheses, references), "distinct_1": distinct_n(hypotheses, 1),
               "distinct_2": distinct_n(hypotheses, 2), "repetition_rate": repetition_rate(raw or hypotheses),
               "mean_words": mean_length(hypotheses)}
    if ended_with_eos is not None:
        metrics["eos_share"] = eos_share(ended_with_eos)
    return metrics


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _same_length(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} captions but {len(references)} references")
