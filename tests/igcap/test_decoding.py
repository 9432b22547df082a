import pytest

from igcap.decoding import FIELD_HELP, KNOBS, PRESETS, DecodingError, DecodingSettings


@pytest.mark.parametrize("changes, words", [
    ({"strategy": "beam", "num_beams": 1}, "beams"),
    ({"strategy": "beam", "num_beams": 2, "num_variants": 3}, "variant per beam"),
    ({"strategy": "sample", "temperature": 0}, "Temperature"),
    ({"strategy": "sample", "top_p": 1.5}, "Top-p"),
    ({"strategy": "sample", "top_k": -1}, "Top-k"),
    ({"min_new_tokens": 50, "max_new_tokens": 10}, "Minimum length"),
    ({"max_new_tokens": 0}, "Maximum length"),
    ({"strategy": "nucleus"}, "strategy"),
    ({"seed": -3}, "Seed"),
    # torch.manual_seed overflowed in every model (a traceback per model) and a study's Integer column is int4
    ({"strategy": "sample", "seed": 2**31}, "Seed must be a whole number from 0 to 2147483647"),
    ({"strategy": "sample", "seed": 99999999999999999999999}, "Seed must be"),
    ({"repetition_penalty": 0}, "Repetition penalty"),
    # NaN passed every bound (each comparison is False); infinity passed those without an upper one
    ({"strategy": "sample", "top_p": float("nan")}, "Top-p"),
    ({"strategy": "sample", "temperature": float("nan")}, "Temperature"),
    ({"repetition_penalty": float("nan")}, "Repetition penalty"),
    ({"repetition_penalty": float("inf")}, "Repetition penalty"),
    ({"strategy": "beam", "length_penalty": float("nan")}, "Length penalty must be a number"),
    ({"strategy": "beam", "length_penalty": float("-inf")}, "Length penalty"),
])
def test_impossible_settings_get_a_clear_message(changes, words):
    with pytest.raises(DecodingError, match=words):
        DecodingSettings(**changes)


def test_presets_are_valid_and_default_does_not_repeat_itself():
    assert {"balanced", "creative", "precise"} <= set(PRESETS)
    assert PRESETS["balanced"].no_repeat_ngram_size >= 2 and PRESETS["balanced"].repetition_penalty > 1
    assert PRESETS["creative"].strategy == "sample" and PRESETS["creative"].num_variants > 1


def test_every_field_describes_itself():
    from dataclasses import fields

    assert {f.name for f in fields(DecodingSettings)} == set(FIELD_HELP) == set(KNOBS)
    assert all(k.label and k.help and k.type in (str, int, float, bool) for k in KNOBS.values())


def test_caption_has_a_flag_per_knob_that_sets_it():
    from igcap.cli import build_parser
    from igcap.cli.caption import decoding_settings

    parser = build_parser()
    sample = {"strategy": "sample", "num_beams": "3", "temperature": "0.7", "top_k": "20", "top_p": "0.9",
              "repetition_penalty": "1.3", "no_repeat_ngram_size": "2", "length_penalty": "0.5",
              "min_new_tokens": "2", "max_new_tokens": "30", "num_variants": "3", "seed": "7",
              "start_with": "Golden hour at", "max_emoji": "1"}
    flagged = {name for name, knob in KNOBS.items() if knob.flag}
    assert flagged == set(sample) and {n for n, k in KNOBS.items() if not k.flag} == {"drop_fragment"}
    argv = ["caption", "x.jpg", *[a for name, v in sample.items() for a in ("--" + name.replace("_", "-"), v)]]
    settings = decoding_settings(parser.parse_args(argv))
    assert {name: getattr(settings, name) for name in sample} == {n: KNOBS[n].type(v) for n, v in sample.items()}


def test_creator_knobs_are_checked_and_drawn_above_the_advanced_ones():
    assert {n for n, k in KNOBS.items() if k.creator} == {"start_with", "max_emoji"}
    with pytest.raises(DecodingError, match="Start with… can be at most 200 characters"):
        DecodingSettings(start_with="x" * 201)
    with pytest.raises(DecodingError, match="Emoji must be empty"):
        DecodingSettings(max_emoji=-1)
    assert DecodingSettings(start_with="x" * 200, max_emoji=0).max_emoji == 0
    assert DecodingSettings().max_emoji is None and DecodingSettings().start_with == ""  # keep, nothing typed
    cfg = DecodingSettings(start_with="Hi", max_emoji=0).to_generation_config(eos_token_id=50256)
    assert "start_with" not in cfg.to_dict() and "max_emoji" not in cfg.to_dict()  # the captioner applies them


@pytest.mark.parametrize("changes, words", [
    ({"max_new_tokens": KNOBS["max_new_tokens"].high + 1}, "Maximum length"),
    ({"num_variants": KNOBS["num_variants"].high + 1, "strategy": "sample"}, "Variants"),
    ({"num_beams": KNOBS["num_beams"].high + 1}, "beams"),
    ({"strategy": "sample", "temperature": KNOBS["temperature"].high + 0.5}, "Temperature"),
    ({"strategy": "sample", "seed": KNOBS["seed"].high + 1}, "Seed"),
])
def test_bounds_come_from_the_knobs(changes, words):
    with pytest.raises(DecodingError, match=words):
        DecodingSettings(**changes)
    edge = {k: (KNOBS[k].high if isinstance(v, (int, float)) and k != "strategy" else v) for k, v in changes.items()}
    if "num_variants" in edge:
        edge["num_variants"] = KNOBS["num_variants"].high
    DecodingSettings(**{**edge, **({"num_variants": 1} if "num_beams" in edge else {})})


@pytest.mark.parametrize("name", list(PRESETS))
def test_generation_config_carries_only_the_strategy_knobs(name):
    settings = PRESETS[name]
    cfg = settings.to_generation_config(eos_token_id=50256)
    assert cfg.eos_token_id == cfg.pad_token_id == cfg.decoder_start_token_id == 50256
    assert cfg.max_new_tokens == settings.max_new_tokens
    assert (cfg.num_return_sequences or 1) == settings.num_variants  # unset under greedy: generate's 1
    assert cfg.do_sample == (settings.strategy == "sample")
    assert cfg.num_beams == (settings.num_beams if settings.strategy == "beam" else 1)
    if settings.strategy == "sample":
        assert cfg.top_p == settings.top_p and cfg.temperature == settings.temperature


def test_round_trip_through_dict_ignores_unknown_keys():
    s = PRESETS["creative"].replace(seed=7)
    assert DecodingSettings.from_dict({**s.to_dict(), "from_the_future": 1}) == s


def test_greedy_decoding_ignores_the_variants_count_like_any_knob_it_does_not_read():
    """Creative (three variants) switched to greedy was refused ("Greedy decoding gives one caption per
    photo…"), though the panel offered the count as if greedy read it."""
    from igcap.decoding import STRATEGY_WORDS, unused_knobs

    settings = PRESETS["creative"].replace(strategy="greedy")
    assert settings.num_variants == 1 and settings.to_dict()["num_variants"] == 1  # what runs, and is stored
    assert DecodingSettings(strategy="greedy", num_variants=0).num_variants == 1  # its bounds do not apply either
    assert unused_knobs("greedy", ["num_variants"]) == ["num_variants"]
    assert unused_knobs("beam", ["num_variants"]) == unused_knobs("sample", ["num_variants"]) == []
    assert PRESETS["creative"].num_variants == 3
    assert STRATEGY_WORDS == {"greedy": "greedy decoding", "beam": "beam search", "sample": "sampling"}


def test_unused_knobs_are_those_the_strategy_does_not_read():
    from igcap.decoding import bounds_problem, unused_knobs

    names = ["num_beams", "temperature", "top_k", "top_p", "length_penalty", "seed", "max_new_tokens", "start_with"]
    assert unused_knobs("greedy", names) == ["num_beams", "temperature", "top_k", "top_p", "length_penalty", "seed"]
    assert unused_knobs("beam", names) == ["temperature", "top_k", "top_p", "seed"]
    assert unused_knobs("sample", names) == ["num_beams", "length_penalty"]
    assert bounds_problem("top_k", -1) == "Top-k must be at least 0"
    assert bounds_problem("temperature", float("nan")) == "Temperature must be above 0 and at most 5"
    assert bounds_problem("top_k", 0) is None and bounds_problem("num_beams", 16) is None
