"""igcap.beam_search (beam search without transformers) gives generate's ids, and beam_request says what
it decodes."""

import collections
import copy
import dataclasses

import pytest
import torch

from igcap import beam_search
from igcap.decoding import PRESETS, DecodingSettings
from tests.igcap.test_lean_decoding import model, pixels, tokenizer  # noqa: F401  (the same tiny models and photos)


def beam(**options) -> DecodingSettings:
    return DecodingSettings(strategy="beam", **{"no_repeat_ngram_size": 0, "max_new_tokens": 10, **options})


CASES = {
    "balanced (the default)": PRESETS["balanced"].replace(max_new_tokens=14),
    "precise": PRESETS["precise"].replace(max_new_tokens=12),
    "2 beams": beam(num_beams=2),
    "16 beams, 5 variants": beam(num_beams=16, num_variants=5, max_new_tokens=6),
    "repetition penalty 1.5": beam(num_beams=3, repetition_penalty=1.5),
    "repetition penalty below 1": beam(num_beams=3, repetition_penalty=0.8),
    "no-repeat 1-grams": beam(num_beams=3, no_repeat_ngram_size=1),
    "no-repeat 2-grams, 3 variants": beam(num_beams=4, num_variants=3, no_repeat_ngram_size=2),
    "no-repeat 4-grams": beam(num_beams=3, no_repeat_ngram_size=4, max_new_tokens=16),
    "min length = max length": beam(num_beams=3, min_new_tokens=8, max_new_tokens=8, no_repeat_ngram_size=3),
    "one new token": beam(num_beams=4, max_new_tokens=1),
    "one new token, 4 variants": beam(num_beams=4, num_variants=4, max_new_tokens=1),
    "long": beam(num_beams=3, max_new_tokens=60, no_repeat_ngram_size=3, repetition_penalty=1.2),
}


def generated(model, pixels, settings, eos_id: int = 0, early_stopping=True):
    """generate's ids and the loop's for the same request (the tiny tokenizer's end-of-text is 0, and it is
    also their pad and start token); ``eos_id``: another end token, the pad and start staying 0."""
    gen_config = copy.deepcopy(settings.to_generation_config(eos_token_id=0))
    gen_config.eos_token_id, gen_config.early_stopping = eos_id, early_stopping
    request = dataclasses.replace(beam_search.beam_request(settings, 0, 0, 0), eos_id=eos_id,
                                  early_stopping=early_stopping)
    with torch.inference_mode():
        reference = model.generate(pixel_values=pixels, generation_config=gen_config)
    return reference, beam_search.beam_search(model, pixels, request)


@pytest.mark.parametrize("settings", CASES.values(), ids=CASES.keys())
def test_beam_search_gives_generates_ids(model, pixels, settings):
    reference, ours = generated(model, pixels, settings)
    assert reference.shape[0] == len(pixels) * settings.num_variants
    assert torch.equal(ours, reference)


def test_one_photo_too(model, pixels):
    reference, ours = generated(model, pixels[:1], CASES["balanced (the default)"])
    assert torch.equal(ours, reference)


@pytest.mark.parametrize("variants", [1, 2, 3, 4])
def test_every_number_of_variants(model, pixels, variants):
    reference, ours = generated(model, pixels[:3], beam(num_beams=4, num_variants=variants, no_repeat_ngram_size=2))
    assert torch.equal(ours, reference)
    per_photo = ours.view(3, variants, -1)
    assert all(len({tuple(v) for v in photo.tolist()}) == variants for photo in per_photo)  # different captions


def first_positions(ids, token: int) -> list:
    return [row.index(token) if token in row else None for row in ids[:, 1:].tolist()]


@pytest.fixture(scope="module")
def early_end(model, pixels):
    """An end token the model writes early for some photos, later or never for others (the tiny models never
    write their end-of-text): finished beams, the length penalty and the early-stop heuristic all take part."""
    settings = beam(num_beams=3, num_variants=2, max_new_tokens=14, no_repeat_ngram_size=2)
    with torch.inference_mode():
        plain = model.generate(pixel_values=pixels, generation_config=settings.to_generation_config(eos_token_id=0))
    for token in sorted(set(plain[:, 3:].flatten().tolist())):
        reference, _ = generated(model, pixels, settings, eos_id=token)
        if len(set(first_positions(reference, token))) >= 3:
            return token
    pytest.fail("no token ends the captions at different steps: the test's premise")


PENALTIES = [0.5, 1.0, 2.0]
STOPPING = [True, False, "never"]


@pytest.mark.parametrize("early_stopping", STOPPING, ids=str)
@pytest.mark.parametrize("length_penalty", PENALTIES)
def test_beams_that_end_at_different_steps(model, pixels, early_end, length_penalty, early_stopping):
    settings = beam(num_beams=3, num_variants=2, max_new_tokens=14, no_repeat_ngram_size=2,
                    length_penalty=length_penalty)
    reference, ours = generated(model, pixels, settings, eos_id=early_end, early_stopping=early_stopping)
    assert torch.equal(ours, reference)


def test_length_penalty_and_early_stopping_change_the_captions(model, pixels, early_end):
    """The premise of the test above: its requests do not all give the same ids, so a loop that ignored
    the length penalty or early stopping would fail it."""
    outputs = set()
    for length_penalty in PENALTIES:
        for early_stopping in STOPPING:
            settings = beam(num_beams=3, num_variants=2, max_new_tokens=14, no_repeat_ngram_size=2,
                            length_penalty=length_penalty)
            reference, _ = generated(model, pixels, settings, eos_id=early_end, early_stopping=early_stopping)
            outputs.add(tuple(map(tuple, reference.tolist())))
    assert len(outputs) >= 3


def test_a_minimum_length_keeps_the_end_away(model, pixels, early_end):
    """With an end token written early, min_new_tokens pushes it back, as in generate."""
    settings = beam(num_beams=3, num_variants=2, max_new_tokens=14, no_repeat_ngram_size=2, min_new_tokens=6)
    reference, ours = generated(model, pixels, settings, eos_id=early_end)
    ends = [p for p in first_positions(reference, early_end) if p is not None]
    assert ends and min(ends) >= 6  # 0-based among the new tokens: the 7th at the earliest
    assert torch.equal(ours, reference)


def test_finished_sequences_are_filled_as_in_generate(model, pixels, early_end):
    """generate fills a sequence shorter than the longest returned with ``pad or eos``: the end token when
    the pad is 0, as here."""
    settings = beam(num_beams=3, num_variants=3, max_new_tokens=14, no_repeat_ngram_size=2)
    reference, ours = generated(model, pixels, settings, eos_id=early_end)
    filled = [row[row.index(early_end) + 1:] for row in reference[:, 1:].tolist() if early_end in row]
    assert any(filled) and all(set(rest) == {early_end} for rest in filled if rest)
    assert torch.equal(ours, reference)


def test_beam_request_from_settings():
    request = beam_search.beam_request(PRESETS["balanced"].replace(num_variants=2), 7, 8, 9)
    assert request == beam_search.BeamRequest(start_id=7, eos_id=8, pad_id=9, num_beams=4, num_return_sequences=2,
                                              max_new_tokens=40, min_new_tokens=0, repetition_penalty=1.2,
                                              no_repeat_ngram_size=3, length_penalty=1.0, early_stopping=True)


@pytest.mark.parametrize("settings", [PRESETS["fast"], PRESETS["creative"], PRESETS["balanced"].replace(max_emoji=0),
                                      PRESETS["balanced"].replace(start_with="Our trip")],
                         ids=["greedy", "sampling", "emoji limit", "start words"])
def test_what_the_loop_does_not_do_gets_no_request(settings):
    assert beam_search.beam_request(settings, 0, 0, 0) is None


@pytest.mark.parametrize("change", [dict(num_return_sequences=5), dict(max_new_tokens=0), dict(early_stopping="sometimes"),
                                    dict(early_stopping=1)], ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))}")
def test_impossible_requests_are_refused(change):
    with pytest.raises(ValueError):
        beam_search.BeamRequest(**{**dict(start_id=0, eos_id=0, pad_id=0, num_beams=4), **change})


@pytest.fixture(scope="module")
def frequent_end(model, pixels):
    """The token the model writes most: as an end token, several of the best continuations end at once."""
    with torch.inference_mode():
        plain = model.generate(pixel_values=pixels, generation_config=beam(num_beams=4).to_generation_config(eos_token_id=0))
    return collections.Counter(plain[:, 1:].flatten().tolist()).most_common(1)[0][0]


@pytest.mark.parametrize("early_stopping", STOPPING, ids=str)
@pytest.mark.parametrize("length_penalty", [0.5, 2.0])
def test_many_beams_ending_at_once(model, pixels, frequent_end, length_penalty, early_stopping):
    settings = beam(num_beams=4, num_variants=4, max_new_tokens=12, length_penalty=length_penalty)
    reference, ours = generated(model, pixels, settings, eos_id=frequent_end, early_stopping=early_stopping)
    assert torch.equal(ours, reference)



# the helpers, state by state: random beam states through both ports (transformers' own as the reference)
BATCH, BEAMS, MAX_LENGTH, CUR_LEN = 3, 4, 10, 5
KEEP = 2 * BEAMS


def state(seed: int):
    g = torch.Generator().manual_seed(seed)

    def flags(*shape, p=0.5):
        return torch.rand(*shape, generator=g) < p

    def log_probs(*shape):
        return (-torch.rand(*shape, generator=g) * 20).sort(dim=-1, descending=True)[0]

    p = torch.rand(1, generator=g).item() ** 0.3  # sometimes mostly finished, sometimes mostly running
    finished = flags(BATCH, BEAMS, p=p)
    return dict(
        sequences=torch.randint(0, 50, (BATCH, BEAMS, MAX_LENGTH), generator=g),
        topk_running_sequences=torch.randint(0, 50, (BATCH, KEEP, MAX_LENGTH), generator=g),
        beam_scores=torch.where(finished, log_probs(BATCH, BEAMS), -1e9),  # finished beams hold a score
        running_beam_scores=log_probs(BATCH, BEAMS) * 3 - 10,  # near the finished ones once divided by a length
        topk_log_probs=log_probs(BATCH, KEEP),
        beam_indices=torch.randint(-1, 12, (BATCH, BEAMS, MAX_LENGTH - 1), generator=g, dtype=torch.int32),
        topk_running_beam_indices=torch.randint(-1, 12, (BATCH, KEEP, MAX_LENGTH - 1), generator=g, dtype=torch.int32),
        is_early_stop_heuristic_unsatisfied=flags(BATCH, 1, p=0.7),
        is_sent_finished=finished,
        next_token_hits_stopping_criteria=flags(BATCH, KEEP, p=p),
        accumulated_log_probs=torch.randn(BATCH, BEAMS * 30, generator=g) - 5,
    )


def generation_mixin():
    from transformers.generation.utils import GenerationMixin

    return GenerationMixin


SEEDS = range(12)


@pytest.mark.parametrize("early_stopping", STOPPING, ids=str)
@pytest.mark.parametrize("length_penalty", [0.0, 0.5, 1.0, 2.0, -1.0])
def test_update_finished_beams_and_the_heuristic_match_transformers(length_penalty, early_stopping):
    mixin = generation_mixin()
    mask = torch.cat((torch.ones(BEAMS, dtype=torch.bool), torch.zeros(KEEP - BEAMS, dtype=torch.bool)))
    for seed in SEEDS:
        s = state(seed)
        args = dict(sequences=s["sequences"], topk_running_sequences=s["topk_running_sequences"],
                    beam_scores=s["beam_scores"], topk_log_probs=s["topk_log_probs"], beam_indices=s["beam_indices"],
                    topk_running_beam_indices=s["topk_running_beam_indices"],
                    is_early_stop_heuristic_unsatisfied=s["is_early_stop_heuristic_unsatisfied"],
                    is_sent_finished=s["is_sent_finished"],
                    next_token_hits_stopping_criteria=s["next_token_hits_stopping_criteria"], top_num_beam_mask=mask,
                    num_beams=BEAMS, cur_len=CUR_LEN, decoder_prompt_len=1, length_penalty=length_penalty,
                    early_stopping=early_stopping)
        for ours, theirs in zip(beam_search.update_finished_beams(**args),
                                mixin._update_finished_beams(mixin, **args), strict=True):
            assert torch.equal(ours, theirs)
        args = dict(is_early_stop_heuristic_unsatisfied=s["is_early_stop_heuristic_unsatisfied"],
                    running_beam_scores=s["running_beam_scores"], beam_scores=s["beam_scores"],
                    is_sent_finished=s["is_sent_finished"], cur_len=CUR_LEN, max_length=MAX_LENGTH,
                    decoder_prompt_len=1, early_stopping=early_stopping, length_penalty=length_penalty)
        assert torch.equal(beam_search.check_early_stop_heuristic(**args), mixin._check_early_stop_heuristic(**args))
        flags = (s["is_early_stop_heuristic_unsatisfied"], s["is_sent_finished"], s["next_token_hits_stopping_criteria"],
                 early_stopping)
        assert beam_search.has_unfinished_sequences(*flags) == bool(mixin._beam_search_has_unfinished_sequences(*flags))
        all_finished = (flags[0], torch.ones_like(flags[1]), flags[2], early_stopping)
        assert beam_search.has_unfinished_sequences(*all_finished) == \
            bool(mixin._beam_search_has_unfinished_sequences(*all_finished))


def test_top_k_continuations_and_running_beams_match_transformers():
    mixin = generation_mixin()
    for seed in SEEDS:
        s = state(seed)
        args = dict(accumulated_log_probs=s["accumulated_log_probs"], running_sequences=s["sequences"],
                    running_beam_indices=s["beam_indices"], cur_len=CUR_LEN, decoder_prompt_len=1, beams_to_keep=KEEP,
                    num_beams=BEAMS, batch_size=BATCH)
        ours = beam_search.top_k_continuations(**args)
        theirs = mixin._get_top_k_continuations(mixin, do_sample=False, **args)
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
        args = dict(topk_log_probs=s["topk_log_probs"], topk_running_sequences=s["topk_running_sequences"],
                    topk_running_beam_indices=s["topk_running_beam_indices"],
                    next_token_hits_stopping_criteria=s["next_token_hits_stopping_criteria"], num_beams=BEAMS)
        ours, theirs = (beam_search.running_beams_for_next_iteration(**args),
                        mixin._get_running_beams_for_next_iteration(mixin, **args))
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


@pytest.mark.parametrize("length", [3, MAX_LENGTH])
def test_stopping_criteria_match_transformers(length):
    from transformers.generation.stopping_criteria import EosTokenCriteria, MaxLengthCriteria, StoppingCriteriaList

    eos = torch.tensor([7])
    theirs = StoppingCriteriaList([MaxLengthCriteria(MAX_LENGTH), EosTokenCriteria(eos)])
    ids = torch.randint(0, 10, (20, length), generator=torch.Generator().manual_seed(length))
    assert torch.equal(beam_search.hits_stopping_criteria(ids, MAX_LENGTH, eos), theirs(ids, None))
