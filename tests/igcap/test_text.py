import pytest

from igcap.text import CAPTION_LIMIT, HASHTAG_LIMIT, clean_caption, collapse_repeats, instagram_stats, preview

PAIR = ("I'm so excited to finally share my first collection with you guys! I've been working on this for so "
        "long that I'm almost ready to reveal it 😂")
# What the original model 2 wrote for one photo: the pair three times, then cut mid-way by the length limit.
ORIGINAL_MODEL_2 = (f"{PAIR} {PAIR} {PAIR} I'm so excited to finally share my first collection with you guys! "
                    "I've been working on this for so long that I'm almost ready")


def test_original_looping_caption_reduces_to_the_sentence_pair_once():
    assert clean_caption(ORIGINAL_MODEL_2) == PAIR
    assert clean_caption(ORIGINAL_MODEL_2, drop_fragment=True) == PAIR


def test_special_tokens_and_whitespace_are_stripped_emoji_and_hashtags_kept():
    raw = "<|endoftext|>  Golden  hour\t🌅 #sunset   #travel <|endoftext|><|endoftext|>"
    assert clean_caption(raw) == "Golden hour 🌅 #sunset #travel"


@pytest.mark.parametrize("raw, expected", [
    ("a b c d a b c d", "a b c d"),
    ("so so good", "so so good"),  # short stutters are not loops
    ("beach day with friends beach day with friends beach day", "beach day with friends"),
    ("one two three four five", "one two three four five"),
])
def test_collapse_repeats(raw, expected):
    assert " ".join(collapse_repeats(raw.split())) == expected


def test_drop_fragment_cuts_an_unfinished_last_sentence_only_when_asked():
    raw = "Sunset at the beach. We stayed until the"
    assert clean_caption(raw) == raw
    assert clean_caption(raw, drop_fragment=True) == "Sunset at the beach."
    assert clean_caption("Love this view 😍 and the", drop_fragment=True) == "Love this view 😍"
    assert clean_caption("no sentence end at all", drop_fragment=True) == "no sentence end at all"


def test_instagram_limits():
    text = "x" * (CAPTION_LIMIT + 1) + " " + " ".join(f"#t{i}" for i in range(HASHTAG_LIMIT + 1))
    stats = instagram_stats(text)
    assert stats.over_chars and stats.over_hashtags and not stats.ok
    assert stats.hashtags == HASHTAG_LIMIT + 1
    ok = instagram_stats("Morning coffee ☕ #coffee #mood email@x.com")
    assert ok.ok and ok.hashtags == 2 and ok.chars == len("Morning coffee ☕ #coffee #mood email@x.com")


def test_preview_cuts_at_a_word_and_says_more():
    long = "word " * 60
    p = preview(long)
    assert p.endswith("… more") and len(p) <= 125 + len("… more")
    assert preview("short caption") == "short caption"
