"""Instagram's limits: the 2026 defaults, one place to change them, and how a caption measures up."""

import pytest

from igcap.config import ConfigError, Settings, instagram_limits
from igcap.instagram import DEFAULT_LIMITS, InstagramLimits, instagram_stats, mentions, preview


def tags(n: int) -> str:
    return " ".join(f"#tag{i}" for i in range(n))


def test_defaults_are_instagrams_2026_rules():
    assert (DEFAULT_LIMITS.max_chars, DEFAULT_LIMITS.max_hashtags, DEFAULT_LIMITS.preview_chars,
            DEFAULT_LIMITS.max_mentions) == (2200, 5, 125, 20)
    assert Settings().instagram == DEFAULT_LIMITS == Settings.from_env({}).instagram


def test_five_hashtags_pass_and_six_are_over():
    assert instagram_stats("Beach day " + tags(5), DEFAULT_LIMITS).ok
    six = instagram_stats("Beach day " + tags(6), DEFAULT_LIMITS)
    assert six.hashtags == 6 and six.over_hashtags and not six.over_chars and not six.ok
    assert six.over_limit() == {"chars": False, "hashtags": True, "mentions": False}
    assert six.warning() == "Instagram will refuse this caption as it is: 6 hashtags; Instagram allows 5."


def test_characters_over_2200_are_over():
    at_limit = instagram_stats("x" * 2200, DEFAULT_LIMITS)
    over = instagram_stats("x" * 2201, DEFAULT_LIMITS)
    assert at_limit.ok and over.over_chars and over.over_limit() == {"chars": True, "hashtags": False, "mentions": False}
    assert "2,201 characters; Instagram allows 2,200" in over.warning()


def test_hashtags_inside_words_and_emails_do_not_count():
    stats = instagram_stats("Morning coffee ☕ #coffee #mood email@x.com C# a##b", DEFAULT_LIMITS)
    assert stats.hashtags == 2 and stats.ok and stats.warning() is None


def test_twenty_mentions_pass_and_twenty_one_are_over():
    people = [f"@friend_{i}" for i in range(21)]
    assert instagram_stats("Thanks " + " ".join(people[:20])).ok
    over = instagram_stats("Thanks " + " ".join(people))
    assert over.mentions == 21 and over.over_mentions and not over.ok
    assert over.over_limit() == {"chars": False, "hashtags": False, "mentions": True}
    assert over.warning() == "Instagram will refuse this caption as it is: 21 @mentions; Instagram allows 20."


def test_mentions_are_usernames_not_emails_or_words():
    text = "Shot by @anna.smith with @bob_1! Mail ana@example.com, @@x, (@cafe), @josé, @anna. done"
    assert mentions(text) == ["anna.smith", "bob_1", "cafe", "anna"]
    assert mentions("@" + "a" * 30) == ["a" * 30] and mentions("@" + "a" * 31) == []  # 30 characters at most


def test_environment_changes_every_limit():
    env = {"IGCAP_INSTAGRAM_MAX_CHARS": "100", "IGCAP_INSTAGRAM_MAX_HASHTAGS": "10",
           "IGCAP_INSTAGRAM_PREVIEW_CHARS": "40", "IGCAP_INSTAGRAM_MAX_MENTIONS": "2"}
    limits = Settings.from_env(env).instagram
    assert limits == InstagramLimits(max_chars=100, max_hashtags=10, preview_chars=40,
                                     max_mentions=2) == instagram_limits(env)
    assert instagram_stats("@a @b", limits).ok and instagram_stats("@a @b @c", limits).over_mentions
    assert instagram_stats("Beach day " + tags(6), limits).ok
    assert instagram_stats(tags(6)).over_hashtags  # without limits: the defaults
    long = "word " * 30
    assert len(instagram_stats(long, limits).preview) <= 40 + len("… more")


@pytest.mark.parametrize("env, words", [({"IGCAP_INSTAGRAM_MAX_HASHTAGS": "five"}, "IGCAP_INSTAGRAM_MAX_HASHTAGS"),
                                        ({"IGCAP_INSTAGRAM_MAX_CHARS": "0"}, "IGCAP_INSTAGRAM_MAX_CHARS"),
                                        ({"IGCAP_INSTAGRAM_PREVIEW_CHARS": "-5"}, "1 or more")])
def test_bad_limits_name_the_key(env, words):
    with pytest.raises(ConfigError, match=words):
        Settings.from_env(env)


def test_preview_cuts_at_a_word_and_says_more():
    long = "word " * 60
    p = preview(long)
    assert p.endswith("… more") and len(p) <= 125 + len("… more")
    assert preview("short caption") == "short caption"


@pytest.mark.parametrize("tag", ["भारत", "বাংলাদেশ", "தமிழ்", "เที่ยว", "café", "cafe\u0301", "نوروز", "東京", "x_y2"])
def test_hashtags_in_scripts_written_with_combining_marks_count_whole(tag):
    # Python's \w leaves out combining marks (Devanagari, Tamil and Thai vowel signs, a typed-apart accent):
    # "#भारत" was read as "#भ".
    from igcap.instagram import hashtags

    assert hashtags(f"Diwali in #{tag}, 2026") == [tag]
    assert instagram_stats(f"#{tag} #{tag}x").hashtags == 2


def test_the_same_hashtag_however_its_accent_was_typed():
    from igcap.instagram import tag_key

    assert tag_key("#Café") == tag_key("cafe\u0301") == "café"
    assert tag_key("#भारत") != tag_key("#भालू")


def test_the_keycap_emoji_is_not_a_hashtag():
    # "#️⃣" is "#" + U+FE0F + U+20E3, both marks: with marks allowed anywhere it counted as a hashtag
    from igcap.hashtags import HashtagSetError, parse_hashtag_set
    from igcap.instagram import hashtags
    from igcap.text import clean_caption

    assert hashtags("Press #️⃣ then #️⃣ again #fun") == ["fun"]
    assert instagram_stats(" ".join(["#️⃣"] * 6)).hashtags == 0
    assert clean_caption("Press #️⃣ then #️⃣ again #fun") == "Press #️⃣ then #️⃣ again #fun"
    with pytest.raises(HashtagSetError):
        parse_hashtag_set("#️⃣ travel")


FIRST = ("Golden hour on the coast with my favourite people, salty hair and sandy feet, nothing beats a slow "
         "summer evening like this 🌅")


def test_preview_keeps_a_word_that_ends_exactly_at_the_limit():
    assert len(FIRST) == 125
    assert preview(FIRST + " See you tomorrow #beach") == FIRST + "… more"
    assert preview(FIRST + "\n#beach #sun") == FIRST + "… more"  # a line break after it too


@pytest.mark.parametrize("text, shown", [
    ("🇫🇷" * 70, "🇫🇷" * 62),  # not a lone regional indicator
    ("a" * 123 + "👩‍💻👩‍💻 rest", "a" * 123),  # not "👩" + a dangling joiner
    ("a" * 124 + "👍🏽" * 5, "a" * 124),  # not 👍 without its skin tone
    ("a" * 124 + "❤️" * 5, "a" * 124),  # not ❤ without its variation selector
    ("a" * 124 + "1️⃣" * 5, "a" * 124),  # not a keycap's digit alone
    ("e\u0301" * 70, "e\u0301" * 62),  # not a letter without its accent
])
def test_preview_without_a_space_cuts_between_whole_characters(text, shown):
    assert preview(text) == shown + "… more"
