"""Decoding settings: one validated dataclass for greedy, beam search and sampling, and named presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

STRATEGIES = ("greedy", "beam", "sample")
MAX_NEW_TOKENS_LIMIT = 256  # a caption never needs more; GPT-2 has 1,024 positions
MAX_VARIANTS = 8


class DecodingError(ValueError):
    """An impossible decoding setting; the message says which and what to choose instead."""


@dataclass(frozen=True)
class DecodingSettings:
    strategy: str = "beam"  # greedy (fastest), beam (best single caption), sample (varied, creative)
    num_beams: int = 4  # beam search only: captions kept in play at each step
    temperature: float = 1.0  # sampling only: < 1 safer words, > 1 wilder words
    top_k: int = 50  # sampling only: draw from the k likeliest next tokens (0 = no limit)
    top_p: float = 1.0  # sampling only: draw from the smallest set of tokens with this much probability
    repetition_penalty: float = 1.0  # > 1 discourages tokens already written
    no_repeat_ngram_size: int = 3  # never repeat a run of this many tokens (0 = allow)
    length_penalty: float = 1.0  # beam search only: > 1 favours longer captions, < 1 shorter ones
    min_new_tokens: int = 0  # the caption is at least this many tokens
    max_new_tokens: int = 40  # the caption stops at this many tokens at most
    num_variants: int = 1  # captions per photo per model
    seed: int | None = None  # fixes sampling so the same settings give the same captions
    drop_fragment: bool = True  # cut an unfinished last sentence when the length limit stopped the caption

    def __post_init__(self):
        for problem in _problems(self):
            raise DecodingError(problem)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodingSettings:
        """Settings from a stored dict; unknown keys (from older or newer versions) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> DecodingSettings:
        return replace(self, **changes)

    def to_generation_config(self, *, eos_token_id: int, pad_token_id: int | None = None,
                             decoder_start_token_id: int | None = None):
        """A transformers GenerationConfig holding only the knobs this strategy uses."""
        from transformers import GenerationConfig

        kwargs = dict(_strategy_kwargs(self), max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens,
                      repetition_penalty=self.repetition_penalty, no_repeat_ngram_size=self.no_repeat_ngram_size,
                      num_return_sequences=self.num_variants, eos_token_id=eos_token_id, bos_token_id=eos_token_id,
                      pad_token_id=eos_token_id if pad_token_id is None else pad_token_id,
                      decoder_start_token_id=eos_token_id if decoder_start_token_id is None else decoder_start_token_id)
        return GenerationConfig(**kwargs)


def _strategy_kwargs(s: DecodingSettings) -> dict[str, Any]:
    if s.strategy == "beam":
        return {"do_sample": False, "num_beams": s.num_beams, "length_penalty": s.length_penalty,
                "early_stopping": True}
    if s.strategy == "sample":
        return {"do_sample": True, "num_beams": 1, "temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p}
    return {"do_sample": False, "num_beams": 1}


def _problems(s: DecodingSettings):
    """Every reason these settings cannot work, as sentences a person can act on."""
    if s.strategy not in STRATEGIES:
        yield f"Decoding strategy must be one of {', '.join(STRATEGIES)}, not {s.strategy!r}."
    if not 1 <= s.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
        yield f"Maximum length must be between 1 and {MAX_NEW_TOKENS_LIMIT} tokens."
    if not 0 <= s.min_new_tokens <= s.max_new_tokens:
        yield "Minimum length must be between 0 and the maximum length."
    if not 1 <= s.num_variants <= MAX_VARIANTS:
        yield f"Variants per model must be between 1 and {MAX_VARIANTS}."
    if s.repetition_penalty <= 0:
        yield "Repetition penalty must be above 0 (1 = no penalty)."
    if s.no_repeat_ngram_size < 0:
        yield "No-repeat n-gram size must be 0 (off) or more."
    if s.seed is not None and s.seed < 0:
        yield "Seed must be a whole number of 0 or more."
    if s.strategy == "greedy" and s.num_variants > 1:
        yield "Greedy decoding gives one caption per photo; choose sampling or beam search for several variants."
    if s.strategy == "beam":
        if not 2 <= s.num_beams <= 16:
            yield "Beam search needs between 2 and 16 beams (1 beam is greedy decoding)."
        elif s.num_variants > s.num_beams:
            yield f"Beam search can return at most one variant per beam: raise beams to {s.num_variants} or lower variants."
    if s.strategy == "sample":
        if not 0 < s.temperature <= 5:
            yield "Temperature must be above 0 and at most 5."
        if s.top_k < 0:
            yield "Top-k must be 0 (no limit) or more."
        if not 0 < s.top_p <= 1:
            yield "Top-p must be above 0 and at most 1."


PRESETS: dict[str, DecodingSettings] = {
    # Beam search that cannot loop: no 3-gram twice and a mild penalty on reused words.
    "balanced": DecodingSettings(strategy="beam", num_beams=4, no_repeat_ngram_size=3, repetition_penalty=1.2,
                                 max_new_tokens=40),
    # Nucleus sampling for varied, playful captions; three takes per model.
    "creative": DecodingSettings(strategy="sample", temperature=0.9, top_k=50, top_p=0.92, repetition_penalty=1.2,
                                 no_repeat_ngram_size=3, max_new_tokens=48, num_variants=3),
    # Wider beam favouring short, literal captions.
    "precise": DecodingSettings(strategy="beam", num_beams=5, length_penalty=0.8, no_repeat_ngram_size=3,
                                repetition_penalty=1.1, max_new_tokens=30),
    # The cheapest setting: one pass, one token at a time (what the original app did, minus the loops).
    "fast": DecodingSettings(strategy="greedy", num_beams=1, no_repeat_ngram_size=3, max_new_tokens=32),
}
DEFAULT_PRESET = "balanced"

FIELD_HELP: dict[str, str] = {
    "strategy": "Greedy is fastest; beam search finds the likeliest caption; sampling gives varied ones.",
    "num_beams": "Beam search: how many candidate captions are kept at each step (more = slower, safer).",
    "temperature": "Sampling: below 1 picks safer words, above 1 wilder ones.",
    "top_k": "Sampling: draw only from the k likeliest next words (0 = no limit).",
    "top_p": "Sampling: draw only from the likeliest words that together hold this much probability.",
    "repetition_penalty": "Above 1 discourages reusing words already in the caption.",
    "no_repeat_ngram_size": "Never repeat any run of this many tokens (stops looping captions; 0 = off).",
    "length_penalty": "Beam search: above 1 favours longer captions, below 1 shorter ones.",
    "min_new_tokens": "The caption is at least this many tokens long.",
    "max_new_tokens": "The caption stops after at most this many tokens (a token is about ¾ of a word).",
    "num_variants": "How many different captions each model writes per photo.",
    "seed": "Fix it to get the same sampled captions again; leave empty for new ones each time.",
    "drop_fragment": "Cut an unfinished last sentence when a caption hit the length limit.",
}
