import pytest

from igcap.text import (MAX_EMOJI_RUN, clean_caption, collapse_emoji_runs, collapse_repeats, contains_emoji,
                        count_emoji, dedupe_hashtags)

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


def test_repeated_hashtags_keep_the_first_spelling_only():
    assert clean_caption("Sunny day #beach #beach #beach") == "Sunny day #beach"
    assert clean_caption("At the #Beach today #sun #beach #SUN #travel") == "At the #Beach today #sun #travel"
    assert dedupe_hashtags("#a #b") == "#a #b"
    assert dedupe_hashtags("C# and C# #csharp") == "C# and C# #csharp"  # no hashtags repeated here


def test_a_run_of_one_emoji_keeps_at_most_three():
    assert MAX_EMOJI_RUN == 3
    assert clean_caption("Golden hour " + "🌅" * 16) == "Golden hour 🌅🌅🌅"
    assert clean_caption("Golden hour" + " 🌅" * 16 + " #sunset") == "Golden hour 🌅 🌅 🌅 #sunset"
    assert clean_caption("So happy 😍😍😍 and 🌅🌅") == "So happy 😍😍😍 and 🌅🌅"  # three or fewer stay
    assert clean_caption("mixed 😍🌅😍🌅😍🌅😍") == "mixed 😍🌅😍🌅😍🌅😍"  # not a run of one emoji
    # Emoji made of several code points count as one: ZWJ sequences, skin tones, flags.
    assert collapse_emoji_runs("👩‍💻" * 5) == "👩‍💻" * 3
    assert collapse_emoji_runs("👍🏽" * 4 + "👍") == "👍🏽" * 3 + "👍"
    assert collapse_emoji_runs("🇫🇷" * 6) == "🇫🇷" * 3
    assert collapse_emoji_runs("🌅" * 5, most=1) == "🌅"


def test_emoji_detection_for_the_decoding_controls():
    assert contains_emoji("ok 👍🏽") and contains_emoji("\u200d") and contains_emoji("❤️")
    assert not contains_emoji("Brand™ at 25°C, © me") and not contains_emoji("#beach")
    assert count_emoji("👩‍💻 🇫🇷 😍😍 text") == 4


def test_clean_up_never_cuts_into_the_words_a_caption_was_started_with():
    keep = "Our first trip to"
    assert clean_caption("Our first trip to the coast. We stayed until the", drop_fragment=True,
                         keep=keep) == "Our first trip to the coast."
    # No sentence end after the person's words: the whole caption stays rather than cutting into them.
    assert clean_caption("Our first trip to the coast with", drop_fragment=True, keep=keep) == \
        "Our first trip to the coast with"
    assert clean_caption("Done. Our first trip to the coast with", drop_fragment=True, keep="Done. Our first") == \
        "Done. Our first trip to the coast with"
    assert clean_caption("Done. Our first trip to the coast with", drop_fragment=True) == "Done."
    # Their repeated words stay; the model's loop after them goes.
    assert clean_caption("so so so good a b c a b c", keep="so so so good") == "so so so good a b c"


def test_preview_cuts_at_a_word_and_says_more():
    from igcap.instagram import preview

    long = "word " * 60
    p = preview(long)
    assert p.endswith("… more") and len(p) <= 125 + len("… more")
    assert preview("short caption") == "short caption"


def test_preview_keeps_line_breaks_as_instagram_does():
    from igcap.instagram import preview

    assert preview("Night flight\n\nover the city  \n#travel") == "Night flight\n\nover the city\n#travel"
    p = preview("First line\n" + "word " * 40)
    assert p.startswith("First line\nword word") and p.endswith("… more")


def test_clean_up_keeps_two_different_hashtags_that_share_their_first_letter():
    # With \w alone both read as "#भ": the second was taken for a repeat and cut mid-word ("withालू").
    assert clean_caption("Diwali in #भारत with #भालू") == "Diwali in #भारत with #भालू"
    assert clean_caption("Trip #เที่ยว #เทศกาล #เที่ยว") == "Trip #เที่ยว #เทศกาล"


def test_an_emoji_run_keeps_every_different_emoji_after_it():
    # The run's copies were matched as a prefix: "👍" inside "👍🏽", "👩" inside "👩‍💻" (leaving a bare joiner).
    assert collapse_emoji_runs("👍👍👍👍🏽") == "👍👍👍👍🏽"
    assert collapse_emoji_runs("👩👩👩👩‍💻") == "👩👩👩👩‍💻"
    assert collapse_emoji_runs("❤❤❤❤️") == "❤❤❤❤️"
    assert collapse_emoji_runs("👨‍👩👩👩👩") == "👨‍👩👩👩👩"  # the first 👩 belongs to the family
    assert collapse_emoji_runs("👍👍 👍👍🏽👍") == "👍👍 👍👍🏽👍"
    assert collapse_emoji_runs("👍 👍 👍 👍 👍🏽") == "👍 👍 👍 👍🏽"


def test_keycap_emoji_count_as_emoji():
    assert count_emoji("1️⃣") == 1 and count_emoji("Step 1️⃣ then #️⃣ and *⃣") == 3
    assert collapse_emoji_runs("5️⃣" * 5) == "5️⃣" * 3
    assert clean_caption("Top tips 3️⃣ and the", drop_fragment=True) == "Top tips 3️⃣"  # it ends a sentence


@pytest.mark.parametrize("raw, expected", [
    ("Beach day with the best crew beach day with the best crew beach day with the", "Beach day with the best crew"),
    ("Love this place! love this place! love this place!", "Love this place!"),
    ("Good vibes only, good vibes only good vibes", "Good vibes only,"),
])
def test_a_loop_is_found_whatever_its_case_and_trailing_punctuation(raw, expected):
    # A loop that restarts a sentence starts it with a capital, or ends it with a "!": compared exactly, the
    # copies differed by one word and a stray "beach" / "love" was left at the end.
    assert clean_caption(raw) == expected == clean_caption(raw, drop_fragment=True)


@pytest.mark.parametrize("raw, expected", [
    ("Love the #beach, the #Beach is life.", "Love the #beach, the Beach is life."),
    ("Best #summer ever, #Summer vibes only 🌞", "Best #summer ever, Summer vibes only 🌞"),
    ("Love #beach. #Beach #sun", "Love #beach. #sun"),
    ("Great #sun day #sun!", "Great #sun day!"),
    ("#beach #sun #beach 🌞 #BEACH", "#beach #sun 🌞"),
    ("Fun at the #beach today! Fun at the #Beach today!", "Fun at the #beach today!"),  # a loop is one copy
])
def test_a_repeated_hashtag_in_a_sentence_keeps_its_word(raw, expected):
    # Removing it left a hole in the sentence ("the is life."); only a repeat in the hashtags at the end goes.
    assert clean_caption(raw) == expected


def test_the_start_words_stay_as_written_when_the_model_glues_punctuation_onto_them():
    # The continuation ", so much" sticks to "girls": the words no longer matched the start words word for
    # word, so nothing was protected and the fragment cut went back to "ever!", into the person's words.
    keep = "Best day ever! Sunday brunch with the girls"
    assert clean_caption(keep + ", so much fun and we", drop_fragment=True, keep=keep) == \
        keep + ", so much fun and we"
    assert clean_caption(keep + ", so much fun. And we", drop_fragment=True, keep=keep) == keep + ", so much fun."
    assert clean_caption(keep + "!", drop_fragment=True, keep=keep) == keep + "!"


def test_the_start_words_stay_as_written_when_they_repeat_a_hashtag_or_an_emoji():
    # De-duplication ran over the start words too: their own second "#Beach" went, and then nothing matched.
    keep = "#beach day at the #Beach"
    assert clean_caption(keep + " with friends", keep=keep) == keep + " with friends"
    assert clean_caption(keep + " with friends #BEACH #sun", keep=keep) == keep + " with friends #sun"
    keep = "Sunset " + "🌅" * 5
    assert clean_caption(keep + " at the beach", keep=keep) == keep + " at the beach"
    # A run the model carries on from the start words counts their copies: it does not grow.
    assert clean_caption("Sunset 🌅🌅 " + "🌅" * 6, keep="Sunset 🌅🌅") == "Sunset 🌅🌅 🌅"
    assert clean_caption(keep + "🌅🌅 wow", keep=keep) == keep + " wow"
