import pytest

from igcap.decoding import FIELD_HELP, PRESETS, DecodingError, DecodingSettings


@pytest.mark.parametrize("changes, words", [
    ({"strategy": "greedy", "num_variants": 2}, "Greedy"),
    ({"strategy": "beam", "num_beams": 1}, "beams"),
    ({"strategy": "beam", "num_beams": 2, "num_variants": 3}, "variant per beam"),
    ({"strategy": "sample", "temperature": 0}, "Temperature"),
    ({"strategy": "sample", "top_p": 1.5}, "Top-p"),
    ({"strategy": "sample", "top_k": -1}, "Top-k"),
    ({"min_new_tokens": 50, "max_new_tokens": 10}, "Minimum length"),
    ({"max_new_tokens": 0}, "Maximum length"),
    ({"strategy": "nucleus"}, "strategy"),
    ({"seed": -3}, "Seed"),
    ({"repetition_penalty": 0}, "Repetition penalty"),
])
def test_impossible_settings_get_a_clear_message(changes, words):
    with pytest.raises(DecodingError, match=words):
        DecodingSettings(**changes)


def test_presets_are_valid_and_default_does_not_repeat_itself():
    assert {"balanced", "creative", "precise"} <= set(PRESETS)
    assert PRESETS["balanced"].no_repeat_ngram_size >= 2 and PRESETS["balanced"].repetition_penalty > 1
    assert PRESETS["creative"].strategy == "sample" and PRESETS["creative"].num_variants > 1


def test_every_field_has_help():
    from dataclasses import fields

    assert {f.name for f in fields(DecodingSettings)} == set(FIELD_HELP)


@pytest.mark.parametrize("name", list(PRESETS))
def test_generation_config_carries_only_the_strategy_knobs(name):
    settings = PRESETS[name]
    cfg = settings.to_generation_config(eos_token_id=50256)
    assert cfg.eos_token_id == cfg.pad_token_id == cfg.decoder_start_token_id == 50256
    assert cfg.max_new_tokens == settings.max_new_tokens
    assert cfg.num_return_sequences == settings.num_variants
    assert cfg.do_sample == (settings.strategy == "sample")
    assert cfg.num_beams == (settings.num_beams if settings.strategy == "beam" else 1)
    if settings.strategy == "sample":
        assert cfg.top_p == settings.top_p and cfg.temperature == settings.temperature


def test_round_trip_through_dict_ignores_unknown_keys():
    s = PRESETS["creative"].replace(seed=7)
    assert DecodingSettings.from_dict({**s.to_dict(), "from_the_future": 1}) == s
