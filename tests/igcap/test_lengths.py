from igcap.decoding import PRESETS
from igcap.instagram import DEFAULT_LIMITS
from igcap.lengths import LENGTHS


def test_lengths_grow_and_say_what_they_give():
    short, medium, long = LENGTHS["short"], LENGTHS["medium"], LENGTHS["long"]
    assert short.max_new_tokens < medium.max_new_tokens < long.max_new_tokens
    assert short.min_new_tokens <= medium.min_new_tokens < long.min_new_tokens < long.max_new_tokens
    assert medium.chars[1] <= DEFAULT_LIMITS.preview_chars + 5  # medium fits before "… more"
    assert short.label == "Short (up to 16 tokens, ≈ 64 characters at most)"
    assert long.label == "Long (24–64 tokens, ≈ 96–256 characters)"


def test_a_length_sets_the_token_limits_of_any_preset():
    for preset in PRESETS.values():
        for length in LENGTHS.values():
            chosen = length.apply(preset)  # valid with every preset
            assert (chosen.min_new_tokens, chosen.max_new_tokens) == (length.min_new_tokens, length.max_new_tokens)
            assert chosen.replace(min_new_tokens=0, max_new_tokens=preset.max_new_tokens) == \
                preset.replace(min_new_tokens=0)
