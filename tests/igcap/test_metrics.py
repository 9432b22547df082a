"""Caption metrics, computed locally (sacrebleu for BLEU): checked against hand-worked examples."""

import pytest

from igcap import metrics

MODEL_2_LOOP = ("I'm so excited to finally share my first collection with you guys! I've been working on this for so "
                "long that I'm almost ready to reveal it 😂 I'm so excited to finally share my first collection with "
                "you guys! I've been working on this for so long that I'm almost ready")


def test_bleu_is_100_for_identical_captions_and_low_for_unrelated_ones():
    refs = ["a red circle on a white background ✨ #shapes", "sunset vibes at the beach 🌅 #travel"]
    assert metrics.bleu(refs, refs) == pytest.approx(100.0)
    assert metrics.bleu(["completely different words here", "nothing alike at all"], refs) < 5
    assert metrics.bleu([], []) == 0.0
    with pytest.raises(ValueError, match="references"):
        metrics.bleu(["one"], [])


@pytest.mark.parametrize("a, b, expected", [
    ("a b c d", "a c d", 3), ("a b", "c d", 0), ("", "a", 0), ("x a y b z c", "a b c", 3),
])
def test_longest_common_subsequence(a, b, expected):
    assert metrics.lcs_length(a.split(), b.split()) == expected


def test_rouge_l_by_hand():
    # LCS("the cat sat", "the cat on the mat") = "the cat": P = 2/3, R = 2/5, F1 = 0.5
    assert metrics.rouge_l("The cat sat", "the cat on the mat") == pytest.approx(0.5)
    assert metrics.rouge_l("same words", "same words") == 1.0
    assert metrics.rouge_l("", "anything") == 0.0
    assert metrics.mean_rouge_l(["a b", "x"], ["a b", "y"]) == pytest.approx(0.5)


@pytest.mark.parametrize("hypothesis, reference, expected", [
    # punctuation is not part of a word: all four words match (whitespace words gave 3 of 4: 0.75)
    ("Sunset at the beach!", "sunset at the beach", 1.0),
    # emoji dropped, "#mondays" is "mondays": [coffee first mondays] vs [coffee first thing on mondays],
    # LCS 3, P = 3/3, R = 3/5, F1 = 2 * 1 * 0.6 / 1.6 = 0.75
    ("Coffee first ☕ #mondays", "coffee, first thing on mondays!", 0.75),
    ("good_vibes only", "good vibes only", 1.0),  # "_" separates words too
    # letters outside a-z are dropped, as rouge-score does: "café" is "caf"; LCS [au lait]: P = R = 2/3
    ("café au lait", "cafe au lait", 2 / 3),
    ("🌅🌊", "🌅🌊", 0.0),  # no words at all: 0, as rouge-score
])
def test_rouge_l_tokenises_like_googles_rouge_score(hypothesis, reference, expected):
    """Values worked by hand; each is also what rouge-score 0.1.2's RougeScorer(["rougeL"]) gives."""
    assert metrics.rouge_l(hypothesis, reference) == pytest.approx(expected)


def test_distinct_n_counts_unique_ngrams_over_all_captions():
    assert metrics.distinct_n(["a a a"], 1) == pytest.approx(1 / 3)
    assert metrics.distinct_n(["a a a"], 2) == pytest.approx(1 / 2)
    assert metrics.distinct_n(["a b", "c d"], 1) == 1.0
    assert metrics.distinct_n(["🌅 #travel", "🌅 #summer"], 1) == pytest.approx(3 / 4)  # emoji and hashtags are words


@pytest.mark.parametrize("text, repetitive", [
    (MODEL_2_LOOP, True),  # the original model 2's loop
    ("Love it. Love it.", True),  # a repeated sentence
    ("a red circle and a red circle", True),  # a repeated 3-gram
    ("so so good", False),
    ("a red circle on a red square", False),
])
def test_repetition(text, repetitive):
    assert metrics.is_repetitive(text) is repetitive


def test_rates_lengths_and_eos_share():
    assert metrics.repetition_rate([MODEL_2_LOOP, "fine caption", "also fine", "ok"]) == 0.25
    assert metrics.mean_length(["one two", "one two three four"]) == 3.0
    assert metrics.eos_share([True, False, True, True]) == 0.75
    assert metrics.repetition_rate([]) == 0.0


def test_caption_metrics_uses_raw_text_for_repetition():
    cleaned, raw = ["nice day"], ["nice day nice day nice day"]
    out = metrics.caption_metrics(cleaned, ["a nice day"], [False], raw=raw)
    assert out["repetition_rate"] == 1.0 and out["eos_share"] == 0.0 and out["captions"] == 1
    assert set(out) == {"captions", "bleu", "rouge_l", "distinct_1", "distinct_2", "repetition_rate", "mean_words",
                        "eos_share"}
