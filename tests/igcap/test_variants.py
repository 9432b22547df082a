from igcap.decoding import PRESETS
from igcap.variants import more_like_this


def test_more_like_this_keeps_the_settings_and_samples_with_a_new_seed():
    for name, preset in PRESETS.items():
        more = more_like_this(preset.replace(max_new_tokens=20, no_repeat_ngram_size=2))
        assert (more.strategy, more.num_variants, more.max_new_tokens, more.no_repeat_ngram_size) == \
            ("sample", 3, 20, 2), name
        assert (more.temperature, more.top_k, more.top_p, more.repetition_penalty) == \
            (preset.temperature, preset.top_k, preset.top_p, preset.repetition_penalty)
    seeds = {more_like_this(PRESETS["creative"]).seed for _ in range(5)}
    assert len(seeds) == 5 and all(s is not None for s in seeds)  # a new seed each click, recorded
    assert more_like_this(PRESETS["fast"], seed=7).seed == 7
