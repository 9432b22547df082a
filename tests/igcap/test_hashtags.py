import pytest

from igcap.hashtags import HashtagSetError, add_hashtags, parse_hashtag_set
from igcap.instagram import DEFAULT_LIMITS, InstagramLimits, instagram_stats

TRAVEL = ["#travel", "#wanderlust", "#roadtrip"]


def test_typed_sets_become_hashtags():
    assert parse_hashtag_set("travel, #wanderlust  #roadtrip") == TRAVEL
    assert parse_hashtag_set("#Beach #beach; sun") == ["#Beach", "#sun"]  # repeats dropped, first spelling kept
    assert parse_hashtag_set("#café #東京") == ["#café", "#東京"]


@pytest.mark.parametrize("text", ["", "  , ", "#", "good-vibes", "#a #b! "])
def test_bad_sets_say_what_is_wrong(text):
    with pytest.raises(HashtagSetError):
        parse_hashtag_set(text)


def test_adding_a_set_appends_what_is_missing():
    done = add_hashtags("Sunset drive #Travel", TRAVEL, DEFAULT_LIMITS)
    assert done.text == "Sunset drive #Travel #wanderlust #roadtrip"
    assert (done.added, done.already_there, done.left_out) == (("#wanderlust", "#roadtrip"), ("#travel",), ())
    assert add_hashtags("", TRAVEL, DEFAULT_LIMITS).text == "#travel #wanderlust #roadtrip"


def test_adding_a_set_never_goes_past_the_hashtag_limit():
    caption = "Beach day #sun #sea #sand"
    done = add_hashtags(caption, TRAVEL, DEFAULT_LIMITS)
    assert done.text == "Beach day #sun #sea #sand #travel #wanderlust"
    assert done.left_out == ("#roadtrip",) and instagram_stats(done.text, DEFAULT_LIMITS).ok
    assert "Left out #roadtrip: Instagram allows 5 hashtags" in done.message(DEFAULT_LIMITS)
    full = add_hashtags(done.text, ["#more"], DEFAULT_LIMITS)
    assert full.text == done.text and full.added == () and full.left_out == ("#more",)


def test_adding_a_set_never_goes_past_the_character_limit():
    limits = InstagramLimits(max_chars=30, max_hashtags=5)
    done = add_hashtags("A twenty char captio", TRAVEL, limits)
    assert done.text == "A twenty char captio #travel" and len(done.text) <= 30
    assert done.left_out == ("#wanderlust", "#roadtrip")


def test_sets_accept_hashtags_written_with_combining_marks():
    assert parse_hashtag_set("#भारत, தமிழ் #เที่ยว") == ["#भारत", "#தமிழ்", "#เที่ยว"]
    assert parse_hashtag_set("#café cafe\u0301") == ["#café"]  # one tag, however the accent was typed
    done = add_hashtags("Lights #भारत", ["#भारत", "#भालू"])
    assert done.text == "Lights #भारत #भालू" and done.already_there == ("#भारत",)
