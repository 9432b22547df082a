"""Decoding settings: one validated dataclass for greedy, beam search and sampling, and named presets."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

STRATEGIES = ("greedy", "beam", "sample")
STRATEGY_WORDS = {"greedy": "greedy decoding", "beam": "beam search", "sample": "sampling"}  # as people read them
MAX_NEW_TOKENS_LIMIT = 256  # a caption never needs more; GPT-2 has 1,024 positions
MAX_VARIANTS = 8
MAX_START_CHARS = 200  # "Start with…": a first sentence, not the caption
MAX_EMOJI = 20
# Every seed, a caption's and a study's, is a whole number from 0 to SEED_MAX: a study keeps its seed in an
# Integer column, int4 on PostgreSQL (db.studies.SEED_MAX, the same number: db cannot import igcap), and
# torch.manual_seed takes it; "more like this" draws its seeds from this range too.
SEED_MAX = 2**31 - 1


class DecodingError(ValueError):
    """An impossible decoding setting; the message says which and what to choose instead."""


@dataclass(frozen=True)
class Knob:
    """What the dashboard's advanced panel and ``caption``'s flags need to know about one field.

    ``low``/``high`` are inclusive bounds (None: open), ``above`` an exclusive lower bound; the validator
    reads them. ``generate``: the GenerationConfig argument it sets (None: not a generation argument),
    ``only`` the strategies that use it. ``flag``: whether ``caption`` has a ``--field-name`` option for it.
    """

    label: str  # the panel's label
    help: str  # the panel's tooltip and the flag's help
    type: type  # what the flag parses and the widget returns
    low: float | None = None
    high: float | None = None
    above: float | None = None
    step: float | None = None  # the panel's +/- step (floats)
    choices: tuple[str, ...] | None = None  # a pick from a list (a select box, a flag with choices)
    optional: bool = False  # empty allowed (None)
    generate: str | None = None
    only: tuple[str, ...] | None = None  # None: every strategy
    flag: bool = True
    creator: bool = False  # a creator control: the panel shows it above the advanced settings
    placeholder: str | None = None  # what an empty box says


def knob(default, **spec) -> Any:
    """A DecodingSettings field whose metadata is its Knob."""
    return field(default=default, metadata={"knob": Knob(**spec)})


@dataclass(frozen=True)
class DecodingSettings:
    strategy: str = knob("beam", label="Strategy", type=str, choices=STRATEGIES,
                         help="Greedy is fastest; beam search finds the likeliest caption; sampling gives varied ones.")
    num_beams: int = knob(4, label="Beams", type=int, low=2, high=16,
                          generate="num_beams", only=("beam",),
                          help="Beam search: how many candidate captions are kept at each step (more = slower, safer).")
    temperature: float = knob(1.0, label="Temperature", type=float, above=0, high=5, step=0.05,
                              generate="temperature", only=("sample",),
                              help="Sampling: below 1 picks safer words, above 1 wilder ones.")
    top_k: int = knob(50, label="Top-k", type=int, low=0,
                      generate="top_k", only=("sample",),
                      help="Sampling: draw only from the k likeliest next words (0 = no limit).")
    top_p: float = knob(1.0, label="Top-p", type=float, above=0, high=1, step=0.01,
                        generate="top_p", only=("sample",),
                        help="Sampling: draw only from the likeliest words that together hold this much probability.")
    repetition_penalty: float = knob(1.0, label="Repetition penalty", type=float, above=0, step=0.05,
                                     generate="repetition_penalty",
                                     help="Above 1 discourages reusing words already in the caption.")
    no_repeat_ngram_size: int = knob(3, label="No-repeat n-gram size", type=int, low=0,
                                     generate="no_repeat_ngram_size",
                                     help="Never repeat any run of this many tokens (stops looping captions; 0 = off).")
    length_penalty: float = knob(1.0, label="Length penalty", type=float, step=0.1,
                                 generate="length_penalty", only=("beam",),
                                 help="Beam search: above 1 favours longer captions, below 1 shorter ones.")
    min_new_tokens: int = knob(0, label="Minimum length (tokens)", type=int, low=0,
                               generate="min_new_tokens",
                               help="The caption is at least this many tokens long.")
    max_new_tokens: int = knob(40, label="Maximum length (tokens)", type=int, low=1, high=MAX_NEW_TOKENS_LIMIT,
                               generate="max_new_tokens",
                               help="The caption stops after at most this many tokens (a token is about ¾ of a word).")
    num_variants: int = knob(1, label="Variants per model", type=int, low=1, high=MAX_VARIANTS,
                             generate="num_return_sequences", only=("beam", "sample"),
                             help="How many different captions each model writes per photo (beam search or "
                                  "sampling; greedy decoding writes one).")
    seed: int | None = knob(None, label="Seed", type=int, low=0, high=SEED_MAX, optional=True,
                            only=("sample",),
                            placeholder="empty = new captions each time",
                            help="Fix it to get the same sampled captions again; leave empty for new ones each time.")
    drop_fragment: bool = knob(True, label="Drop an unfinished last sentence", type=bool, flag=False,
                               help="Cut an unfinished last sentence when a caption hit the length limit.")
    start_with: str = knob("", label="Start with…", type=str, high=MAX_START_CHARS, creator=True,
                           placeholder="Your first words, e.g. Our first trip to",
                           help="The caption's first words: every model continues them, and they stay as written.")
    max_emoji: int | None = knob(None, label="Emoji (empty = keep, 0 = none, N = at most N)", type=int, low=0,
                                 high=MAX_EMOJI, optional=True, creator=True, placeholder="keep the model's emoji",
                                 help="Enforced while the caption is written: empty keeps the model's emoji, "
                                      "0 bans them, N allows at most N (your own words' emoji count).")

    def __post_init__(self):
        if unused_knobs(self.strategy, ["num_variants"]):  # greedy writes one caption: a count set is ignored
            object.__setattr__(self, "num_variants", 1)
        for problem in _problems(self):
            raise DecodingError(problem)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def deterministic(self) -> bool:
        """The same photo and settings always give the same caption (greedy, beam, or a fixed seed)."""
        return self.strategy != "sample" or self.seed is not None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodingSettings:
        """Settings from a stored dict; unknown keys (from older or newer versions) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> DecodingSettings:
        return replace(self, **changes)

    def to_generation_config(self, *, eos_token_id: int):
        """A transformers GenerationConfig holding only the knobs this strategy uses; GPT-2's end-of-text
        is also its pad, bos and decoder start (igcap.architecture)."""
        from transformers import GenerationConfig

        knobs = {k.generate: getattr(self, name) for name, k in KNOBS.items()
                 if k.generate and (k.only is None or self.strategy in k.only)}
        return GenerationConfig(**knobs, **STRATEGY_MODES[self.strategy], eos_token_id=eos_token_id,
                                bos_token_id=eos_token_id, pad_token_id=eos_token_id,
                                decoder_start_token_id=eos_token_id)


KNOBS: dict[str, Knob] = {f.name: f.metadata["knob"] for f in fields(DecodingSettings)}
STRATEGY_MODES = {  # what each strategy adds to the knobs it uses
    "beam": {"do_sample": False, "early_stopping": True},
    "sample": {"do_sample": True, "num_beams": 1},
    "greedy": {"do_sample": False, "num_beams": 1},
}
FIELD_HELP: dict[str, str] = {name: k.help for name, k in KNOBS.items()}


def unused_knobs(strategy: str, names: Iterable[str]) -> list[str]:
    """Those of the fields ``names`` that ``strategy`` does not read (their Knob's ``only``): a value set
    there changes no caption. The settings check such a knob's bounds only under its strategy (the seed's
    under every one: it is kept with the settings)."""
    return [name for name in names if KNOBS[name].only is not None and strategy not in KNOBS[name].only]


def bounds_problem(name: str, value) -> str | None:
    """Why ``value`` is outside the bounds of the field ``name`` ("Top-k must be at least 0"), else None."""
    return f"{KNOBS[name].label} must be {_range_words(KNOBS[name])}" if _breaks(KNOBS[name], value) else None


def _outside(s: DecodingSettings, name: str) -> bool:
    """Whether a field's value breaks its Knob's bounds."""
    return _breaks(KNOBS[name], getattr(s, name))


def _breaks(k: Knob, value) -> bool:
    """Whether ``value`` breaks the Knob's bounds (a text's bounds are on its length)."""
    if value is None:
        return not k.optional
    if isinstance(value, str):
        value = len(value)
    if isinstance(value, float) and not math.isfinite(value):  # NaN passes every comparison
        return True
    return ((k.low is not None and value < k.low) or (k.high is not None and value > k.high)
            or (k.above is not None and value <= k.above))


def _problems(s: DecodingSettings):
    """Every reason these settings cannot work, as sentences a person can act on."""
    k = KNOBS
    if s.strategy not in STRATEGIES:
        yield f"Decoding strategy must be one of {', '.join(STRATEGIES)}, not {s.strategy!r}."
    if _outside(s, "max_new_tokens"):
        yield f"Maximum length must be between {k['max_new_tokens'].low} and {k['max_new_tokens'].high} tokens."
    if _outside(s, "min_new_tokens") or s.min_new_tokens > s.max_new_tokens:
        yield f"Minimum length must be between {k['min_new_tokens'].low} and the maximum length."
    if _outside(s, "num_variants"):
        yield f"Variants per model must be between {k['num_variants'].low} and {k['num_variants'].high}."
    if _outside(s, "repetition_penalty"):
        yield f"Repetition penalty must be above {k['repetition_penalty'].above} (1 = no penalty)."
    if _outside(s, "no_repeat_ngram_size"):
        yield f"No-repeat n-gram size must be {k['no_repeat_ngram_size'].low} (off) or more."
    if _outside(s, "seed"):
        yield f"Seed must be a whole number from {k['seed'].low} to {k['seed'].high}."
    if _outside(s, "start_with"):
        yield f"Start with… can be at most {k['start_with'].high} characters."
    if _outside(s, "max_emoji"):
        yield f"Emoji must be empty (keep), 0 (none) or a number up to {k['max_emoji'].high}."
    if s.strategy == "beam":
        if _outside(s, "num_beams"):
            yield (f"Beam search needs between {k['num_beams'].low} and {k['num_beams'].high} beams "
                   "(1 beam is greedy decoding).")
        elif s.num_variants > s.num_beams:
            yield f"Beam search can return at most one variant per beam: raise beams to {s.num_variants} or lower variants."
    if s.strategy == "sample":
        if _outside(s, "temperature"):
            yield f"Temperature must be above {k['temperature'].above} and at most {k['temperature'].high}."
        if _outside(s, "top_k"):
            yield f"Top-k must be {k['top_k'].low} (no limit) or more."
        if _outside(s, "top_p"):
            yield f"Top-p must be above {k['top_p'].above} and at most {k['top_p'].high}."
    for name, knob in k.items():  # any other knob with bounds, in the words of its label
        if name not in _WORDED and (knob.only is None or s.strategy in knob.only) and _outside(s, name):
            yield f"{knob.label} must be {_range_words(knob)}."


_WORDED = {"strategy", "max_new_tokens", "min_new_tokens", "num_variants", "repetition_penalty",
           "no_repeat_ngram_size", "seed", "num_beams", "temperature", "top_k", "top_p",
           "start_with", "max_emoji"}  # checked above


def _range_words(k: Knob) -> str:
    low = f"above {k.above}" if k.above is not None else f"at least {k.low}" if k.low is not None else ""
    high = f"at most {k.high}" if k.high is not None else ""
    return " and ".join(w for w in (low, high) if w) or "a number"


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
