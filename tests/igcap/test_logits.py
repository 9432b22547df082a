"""igcap.logits gives transformers' processed scores bit for bit, in generate's order, without importing it."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from igcap import logits
from igcap.decoding import DecodingSettings
from tests import builders

VOCAB = 40


def histories(rows: int, length: int, seed: int, high: int = 6):
    """Ids drawn from a few tokens (so tokens and n-grams repeat), a different history per row."""
    return torch.randint(0, high, (rows, length), generator=torch.Generator().manual_seed(seed))


def scores(rows: int, seed: int, vocab: int = VOCAB):
    """Random scores of both signs (the penalty multiplies negative ones and divides positive ones)."""
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 3


@pytest.mark.parametrize("penalty", [1.2, 0.9, 2.0])
@pytest.mark.parametrize("length", [1, 3, 9])
def test_the_repetition_penalty_gives_transformers_scores(penalty, length):
    from transformers import RepetitionPenaltyLogitsProcessor

    ids, raw = histories(5, length, seed=length), scores(5, seed=length + 100)
    ours = logits.RepetitionPenalty(penalty)(ids, raw.clone())
    assert torch.equal(ours, RepetitionPenaltyLogitsProcessor(penalty)(ids, raw.clone()))
    assert not torch.equal(ours, raw)  # the premise: some score changed


def test_the_repetition_penalty_on_known_scores():
    """Independently of transformers: a seen token's negative score is multiplied, a positive one divided,
    once however often it was seen; unseen tokens keep theirs."""
    raw = torch.tensor([[-2.0, 3.0, 1.0, -1.0]])
    out = logits.RepetitionPenalty(2.0)(torch.tensor([[0, 1, 1, 1]]), raw)
    assert out.tolist() == [[-4.0, 1.5, 1.0, -1.0]]
    assert raw.tolist() == [[-2.0, 3.0, 1.0, -1.0]]  # the caller's scores are left alone


def test_ids_past_the_heads_vocabulary_are_ignored_as_in_transformers():
    from transformers import RepetitionPenaltyLogitsProcessor

    ids = torch.tensor([[3, VOCAB + 2, 5], [VOCAB, 1, 1]])
    raw = scores(2, seed=7)
    assert torch.equal(logits.RepetitionPenalty(1.3)(ids, raw), RepetitionPenaltyLogitsProcessor(1.3)(ids, raw))


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("length", [1, 2, 3, 5, 12])
def test_no_repeat_ngrams_give_transformers_scores(size, length):
    """Sizes 1–4, histories shorter and longer than the n-gram, rows with different histories."""
    from transformers import NoRepeatNGramLogitsProcessor

    for seed in range(3):
        ids, raw = histories(6, length, seed=seed * 10 + length, high=4), scores(6, seed=seed)
        assert torch.equal(logits.NoRepeatNGram(size)(ids, raw), NoRepeatNGramLogitsProcessor(size)(ids, raw))


def test_no_repeat_ngrams_ban_exactly_the_completing_tokens():
    """Independently of transformers: after 1 2 3 1 2, 3-grams ban 3 (1 2 3 again); 2-grams ban what
    followed 2 (3) and nothing that only followed other tokens; a row shorter than the n-gram bans nothing."""
    raw = torch.zeros(2, 6)
    ids = torch.tensor([[1, 2, 3, 1, 2], [4, 4, 4, 4, 5]])
    banned = torch.isinf(logits.NoRepeatNGram(3)(ids, raw))
    assert banned.nonzero().tolist() == [[0, 3]]
    banned = torch.isinf(logits.NoRepeatNGram(2)(ids, raw))
    assert banned.nonzero().tolist() == [[0, 3]]
    banned = torch.isinf(logits.NoRepeatNGram(1)(ids, raw))
    assert banned.nonzero().tolist() == [[0, 1], [0, 2], [0, 3], [1, 4], [1, 5]]
    assert not torch.isinf(logits.NoRepeatNGram(4)(ids[:, :3], raw)).any()
    assert not torch.isinf(raw).any()


@pytest.mark.parametrize("min_new_tokens", [1, 4])
def test_the_minimum_length_gives_transformers_scores(min_new_tokens):
    from transformers import LogitsProcessorList, MinLengthLogitsProcessor, MinNewTokensLengthLogitsProcessor

    eos = 3
    theirs = LogitsProcessorList([MinLengthLogitsProcessor(1 + min_new_tokens, eos),
                                  MinNewTokensLengthLogitsProcessor(1, min_new_tokens, eos)])
    ours = logits.EndBannedUntil(1 + min_new_tokens, eos)
    banned_at = []
    for length in range(1, 8):
        ids, raw = histories(3, length, seed=length), scores(3, seed=length)
        out = ours(ids, raw)
        assert torch.equal(out, theirs(ids, raw))
        banned_at += [length] if torch.isinf(out[:, eos]).all() else []
    assert banned_at == list(range(1, 1 + min_new_tokens))  # the new tokens so far are length - 1


SETTINGS = {
    "greedy, everything": DecodingSettings(strategy="greedy", repetition_penalty=1.3, no_repeat_ngram_size=2,
                                           min_new_tokens=3, max_new_tokens=10),
    "balanced beam": DecodingSettings(strategy="beam", num_beams=4, repetition_penalty=1.2, no_repeat_ngram_size=3,
                                      min_new_tokens=2),
    "beam, penalty only": DecodingSettings(strategy="beam", num_beams=3, repetition_penalty=0.9, no_repeat_ngram_size=0),
    "nothing": DecodingSettings(strategy="greedy", no_repeat_ngram_size=0),
}
NAMES = {"RepetitionPenaltyLogitsProcessor": "RepetitionPenalty", "NoRepeatNGramLogitsProcessor": "NoRepeatNGram",
         "MinNewTokensLengthLogitsProcessor": "EndBannedUntil"}


@pytest.fixture(scope="module")
def tiny_model():
    return builders.inference_model(builders.make_tokenizer(), quantize=False)


def generates_processors(model, settings: DecodingSettings):
    """The processors generate itself builds for these settings (its own preparation steps)."""
    from transformers import LogitsProcessorList

    config, _ = model._prepare_generation_config(settings.to_generation_config(eos_token_id=0))
    config = copy.deepcopy(config)
    model._prepare_special_tokens(config, False, device="cpu", batch_size=2)
    config = model._prepare_generated_length(config, has_default_max_length=False, has_default_min_length=True,
                                             model_input_name="pixel_values", inputs_tensor=None, input_ids_length=1)
    return model._get_logits_processor(generation_config=config, input_ids_seq_length=1, encoder_input_ids=None,
                                       logits_processor=LogitsProcessorList(), device="cpu", model_kwargs={})


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_build_processors_follows_generates_list_and_order(tiny_model, settings):
    """generate's list (its MinLengthLogitsProcessor, which min_new_tokens makes the very same ban, left out)
    in its order, and the same scores through the whole chain."""
    theirs = generates_processors(tiny_model, settings)
    ours = logits.build_processors(eos_id=0, repetition_penalty=settings.repetition_penalty,
                                   no_repeat_ngram_size=settings.no_repeat_ngram_size,
                                   min_new_tokens=settings.min_new_tokens)
    expected = [NAMES[type(p).__name__] for p in theirs if type(p).__name__ != "MinLengthLogitsProcessor"]
    assert [type(p).__name__ for p in ours] == expected
    for length in (1, 2, 4, 7):
        ids, raw = histories(8, length, seed=length, high=5), torch.log_softmax(scores(8, seed=length), dim=-1)
        assert torch.equal(ours(ids, raw), theirs(ids, raw))


def test_neither_module_imports_transformers():
    code = """
import sys, torch
from igcap import beam_search, logits
chain = logits.build_processors(eos_id=0, repetition_penalty=1.2, no_repeat_ngram_size=2, min_new_tokens=3)
out = chain(torch.tensor([[1, 2, 1]]), torch.zeros(1, 5))  # bans the end (0) and 2 (1 2 again)
assert torch.isinf(out).sum() == 2, out
request = beam_search.BeamRequest(start_id=0, eos_id=0, pad_id=0, num_beams=2)
assert "transformers" not in sys.modules, sorted(m for m in sys.modules if m.startswith("transformers"))
"""
    root = Path(__file__).resolve().parents[2]  # this checkout's igcap, not an installed one
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root, env=env)
    assert done.returncode == 0, done.stderr


SAMPLING = {
    "creative preset": DecodingSettings(strategy="sample", temperature=0.9, top_k=50, top_p=0.92,
                                        repetition_penalty=1.2, no_repeat_ngram_size=3, num_variants=3),
    "hot, top-k only": DecodingSettings(strategy="sample", temperature=1.7, top_k=3, top_p=1.0, no_repeat_ngram_size=0),
    "top-p only": DecodingSettings(strategy="sample", temperature=1.0, top_k=0, top_p=0.5, no_repeat_ngram_size=0),
    "plain": DecodingSettings(strategy="sample", temperature=1.0, top_k=0, top_p=1.0, no_repeat_ngram_size=0),
}
WARPERS = {"TemperatureLogitsWarper": "Temperature", "TopKLogitsWarper": "TopK", "TopPLogitsWarper": "TopP"}


@pytest.mark.parametrize("settings", SAMPLING.values(), ids=SAMPLING.keys())
def test_sampling_warpers_follow_generates_list_order_and_scores(tiny_model, settings):
    """For sampling generate appends its warpers after the processors: ours are the same, in its order, with
    the same scores (-inf where it filters), on peaked and flat score rows alike."""
    theirs = generates_processors(tiny_model, settings)
    ours = logits.Processors((*logits.build_processors(eos_id=0, repetition_penalty=settings.repetition_penalty,
                                                       no_repeat_ngram_size=settings.no_repeat_ngram_size),
                              *logits.build_warpers(temperature=settings.temperature, top_k=settings.top_k,
                                                    top_p=settings.top_p)))
    names = {**NAMES, **WARPERS}
    assert [type(p).__name__ for p in ours] == [names[type(p).__name__] for p in theirs
                                               if type(p).__name__ != "MinLengthLogitsProcessor"]
    for length, spread in ((1, 1.0), (3, 8.0), (6, 0.1)):
        ids, raw = histories(8, length, seed=length, high=5), scores(8, seed=length) * spread
        assert torch.equal(ours(ids, raw), theirs(ids, raw))
    if settings.top_k or settings.top_p < 1:
        assert torch.isinf(ours(ids, raw)).any()  # the premise: something was filtered
