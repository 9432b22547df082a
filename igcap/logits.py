"""The logits processors the presets use, without transformers: the same scores, bit for bit.

The caption path that never imports transformers (its import costs about 1.5 s and 133 MiB) still has to
give the captions ``generate`` gives, so each processor here does the float operations of its
transformers counterpart (5.24, Apache-2.0, generation/logits_process.py) in the same order:

* ``RepetitionPenalty``: ``RepetitionPenaltyLogitsProcessor`` as generate builds it for our requests (no
  ``prompt_ignore_length``: generate passes none without a decoder attention mask), its 2-D path.
* ``NoRepeatNGram``: ``NoRepeatNGramLogitsProcessor``. transformers 5.24's version is already vectorised
  (one prefix matched against every window, no per-row Python dicts as in 4.x), so it is ported as is.
* ``EndBannedUntil``: ``MinNewTokensLengthLogitsProcessor`` (the end token's score is -inf while the ids
  are shorter than the prompt plus ``min_new_tokens``), without its search of the whole vocabulary for
  the end token at every step. generate also adds ``MinLengthLogitsProcessor`` with ``min_length`` =
  prompt + ``min_new_tokens`` (it derives min_length from min_new_tokens whenever the latter is set): the
  very same ban, so applying it once gives the same scores.

``build_processors`` returns them in the order ``GenerationMixin._get_logits_processor`` appends them
(repetition penalty, no-repeat n-gram, minimum length), the same for greedy and beam search; sampling
appends the warpers after them (``build_warpers``: ``TemperatureLogitsWarper``, ``TopKLogitsWarper``,
``TopPLogitsWarper``, in that order, with one token always kept, as generate builds them without beams).
Each is ``proc(input_ids, scores) -> scores`` and returns a new tensor (the caller's scores are left alone),
as transformers' do.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RepetitionPenalty:
    """Scores of tokens already in a row's ids: negative ones times ``penalty``, others divided by it."""

    penalty: float

    def __call__(self, input_ids, scores):
        import torch

        vocab_size = scores.shape[-1]
        # ids past the scores' vocabulary (an embedding larger than the head) go to a spare column, dropped after
        input_ids = input_ids.clamp(max=vocab_size)
        padded = torch.nn.functional.pad(scores, (0, 1))
        score = torch.gather(padded, 1, input_ids)
        score = torch.where(score < 0, score * self.penalty, score / self.penalty)
        return padded.scatter(1, input_ids, score)[..., :vocab_size]


@dataclass(frozen=True)
class NoRepeatNGram:
    """No n-gram of ``size`` tokens twice in a row's ids: a token that would complete an n-gram already
    there gets -inf.

    Only a window that starts with the ids' last ``size - 1`` tokens can be completed by the next token, so
    that suffix is matched against every window of the ids at once, and each matching window bans its
    own last token (the window starting at the suffix itself would need one token more, so it never bans
    anything). Rows shorter than ``size`` have no complete n-gram: nothing is banned."""

    size: int

    def __post_init__(self):
        if not isinstance(self.size, int) or self.size <= 0:
            raise ValueError(f"the n-gram size must be a positive integer, not {self.size!r}")

    def __call__(self, input_ids, scores):
        import torch

        length = input_ids.shape[-1]
        if length < self.size:
            return scores
        prefix = input_ids[:, length + 1 - self.size:]
        windows = input_ids.unfold(dimension=1, size=self.size, step=1)
        matches = (windows[..., :-1] == prefix.unsqueeze(1)).all(dim=-1)
        vocab_size = scores.shape[-1]
        # non-matching windows (and ids past the vocabulary) mark a spare column, so they unban nothing
        banned = scores.new_zeros((scores.shape[0], vocab_size + 1), dtype=torch.bool)
        banned.scatter_(1, torch.where(matches, windows[..., -1].clamp(max=vocab_size), vocab_size), True)
        return scores.masked_fill(banned[:, :vocab_size], -float("inf"))


@dataclass(frozen=True)
class EndBannedUntil:
    """The end token's score is -inf while the ids are shorter than ``length`` (prompt + minimum new
    tokens): generate's MinNewTokensLengthLogitsProcessor and MinLengthLogitsProcessor give the same."""

    length: int
    eos_id: int

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] < self.length:
            scores = scores.clone()
            scores[:, self.eos_id] = float("-inf")
        return scores


class Processors(tuple):
    """Processors applied in order, like transformers' LogitsProcessorList."""

    def __call__(self, input_ids, scores):
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


def build_processors(*, eos_id: int, repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
                     min_new_tokens: int = 0, prompt_length: int = 1, extra: tuple = ()) -> Processors:
    """The processors generate builds for these options, in its order (greedy and beam search alike);
    ``prompt_length``: the decoder's ids before the first new token (1: the start token); ``extra``: the
    caller's own processors (the emoji limit), after the built-in ones, where generate merges a custom list."""
    out = []
    if repetition_penalty is not None and repetition_penalty != 1.0:
        out.append(RepetitionPenalty(float(repetition_penalty)))
    if no_repeat_ngram_size is not None and no_repeat_ngram_size > 0:
        out.append(NoRepeatNGram(int(no_repeat_ngram_size)))
    if min_new_tokens is not None and min_new_tokens > 0:
        out.append(EndBannedUntil(prompt_length + int(min_new_tokens), int(eos_id)))
    return Processors((*out, *extra))


@dataclass(frozen=True)
class Temperature:
    """``TemperatureLogitsWarper``: scores divided by the temperature."""

    temperature: float

    def __call__(self, input_ids, scores):
        return scores / self.temperature


@dataclass(frozen=True)
class TopK:
    """``TopKLogitsWarper``: -inf for every score below the k-th largest of its row."""

    top_k: int

    def __call__(self, input_ids, scores):
        import torch

        top_k = min(self.top_k, scores.size(-1))
        indices_to_remove = scores < torch.topk(scores, top_k)[0][..., -1, None]
        return scores.masked_fill(indices_to_remove, float("-inf"))


@dataclass(frozen=True)
class TopP:
    """``TopPLogitsWarper``: -inf for the least likely tokens whose probabilities add up to at most 1 − p
    (the likeliest token always kept)."""

    top_p: float

    def __call__(self, input_ids, scores):
        import torch

        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        sorted_indices_to_remove = cumulative_probs <= (1 - self.top_p)
        sorted_indices_to_remove[..., -1:] = 0
        indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
        return scores.masked_fill(indices_to_remove, float("-inf"))


def build_warpers(*, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> Processors:
    """The warpers generate appends for sampling without beams, in its order."""
    out = []
    if temperature is not None and temperature != 1.0:
        out.append(Temperature(float(temperature)))
    if top_k is not None and top_k != 0:
        out.append(TopK(max(int(top_k), 1)))
    if top_p is not None and top_p < 1.0:
        out.append(TopP(float(top_p)))
    return Processors(out)
