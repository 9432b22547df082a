"""Clean-up of generated captions and Instagram's limits.

Clean-up keeps emoji and hashtags; it strips special tokens and stray whitespace, collapses text
repeated back to back (the original models looped one sentence pair to the length limit), and can
drop an unfinished last sentence left by the length limit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

CAPTION_LIMIT = 2200  # characters Instagram allows in a caption
HASHTAG_LIMIT = 30  # hashtags Instagram allows in a caption
PREVIEW_CHARS = 125  # about what shows under a photo before "… more"
MIN_REPEAT_WORDS = 3  # shorter repeats ("so so good") are left alone

_SPECIAL = re.compile(r"<\|[^|>]*\|>|<pad>|<s>|</s>|<unk>")
_HASHTAG = re.compile(r"(?<![\w#])#(\w+)", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?…](['\")\]]*)$")


@dataclass(frozen=True)
class InstagramStats:
    chars: int
    hashtags: int
    over_chars: bool
    over_hashtags: bool
    preview: str  # the first ~125 characters, as shown under the photo

    @property
    def ok(self) -> bool:
        return not (self.over_chars or self.over_hashtags)


def clean_caption(raw: str, drop_fragment: bool = False) -> str:
    """Generated text → a caption: no special tokens, single spaces, no back-to-back repeats."""
    words = _SPECIAL.sub(" ", raw).split()
    words = collapse_repeats(words)
    if drop_fragment:
        words = _drop_unfinished_sentence(words)
    return " ".join(words)


def collapse_repeats(words: list[str], min_unit: int = MIN_REPEAT_WORDS) -> list[str]:
    """Remove runs of ≥ min_unit words that repeat right after themselves, and a trailing partial copy."""
    words = list(words)
    looped = False
    while _remove_one_repeat(words, min_unit):
        looped = True
    # Once the text is known to loop, even a short restart at the end is the loop cut off by the limit.
    return _drop_partial_tail_copy(words, 1 if looped else min_unit, min_unit)


def _remove_one_repeat(words: list[str], min_unit: int) -> bool:
    n = len(words)
    for size in range(min_unit, n // 2 + 1):
        for start in range(0, n - 2 * size + 1):
            if words[start:start + size] == words[start + size:start + 2 * size]:
                del words[start + size:start + 2 * size]
                return True
    return False


def _drop_partial_tail_copy(words: list[str], min_tail: int, min_unit: int) -> list[str]:
    """'A B C D A B' → 'A B C D': a tail that restarts the unit just before it, cut off by the limit."""
    n = len(words)
    for tail in range(n // 2, min_tail - 1, -1):
        for unit in range(max(tail + 1, min_unit), n - tail + 1):
            start = n - tail - unit
            if words[start:start + tail] == words[n - tail:]:
                return words[:n - tail]
    return words


def _drop_unfinished_sentence(words: list[str]) -> list[str]:
    """Cut words after the last sentence end, emoji or hashtag, if the caption ends mid-sentence."""
    if not words or _ends_cleanly(words[-1]):
        return words
    for i in range(len(words) - 2, -1, -1):
        if _ends_cleanly(words[i]):
            return words[:i + 1]
    return words  # a single unfinished sentence is better than nothing


def _ends_cleanly(word: str) -> bool:
    return bool(_SENTENCE_END.search(word)) or word.startswith("#") or _is_emoji(word[-1])


def _is_emoji(char: str) -> bool:
    return unicodedata.category(char) == "So" or char in "\ufe0f\u200d"


def hashtags(text: str) -> list[str]:
    return _HASHTAG.findall(text)


def instagram_stats(text: str) -> InstagramStats:
    n_tags = len(hashtags(text))
    return InstagramStats(chars=len(text), hashtags=n_tags, over_chars=len(text) > CAPTION_LIMIT,
                          over_hashtags=n_tags > HASHTAG_LIMIT, preview=preview(text))


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """The caption as it reads collapsed under a photo: first line(s) up to ~limit chars, then '… more'."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] if " " in flat[:limit] else flat[:limit]
    return cut.rstrip() + "… more"
