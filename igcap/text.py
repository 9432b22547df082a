"""Clean-up of generated captions (Instagram's limits live in igcap.instagram).

Clean-up keeps emoji and hashtags; it strips special tokens and stray whitespace, collapses text
repeated back to back (the original models looped one sentence pair to the length limit), writes each
hashtag once (case-insensitive: "#beach #Beach" keeps the first; a repeat inside a sentence keeps its word
without the '#'), shortens a run of one emoji to at most MAX_EMOJI_RUN, and can drop an unfinished last
sentence left by the length limit.
"""

from __future__ import annotations

import re
import unicodedata

import functools

from igcap.instagram import hashtags  # noqa: F401  (re-exported: text helpers in one import)
from igcap.instagram import hashtag_regex, tag_key

MIN_REPEAT_WORDS = 3  # shorter repeats ("so so good") are left alone
# "🌅🌅🌅" is a common way to write; a fourth and more of the same emoji in a row is a loop, not style.
MAX_EMOJI_RUN = 3

_SPECIAL = re.compile(r"<\|[^|>]*\|>|<pad>|<s>|</s>|<unk>")
_SENTENCE_END = re.compile(r"[.!?…](['\")\]]*)$")
# One emoji as a person sees it: a keycap ("1️⃣": a digit, # or * with U+20E3), a flag (two regional
# indicators), or a pictograph with its variation selector, skin tone and any zero-width-joined parts ("👩‍💻").
# (©, ®, ™ and other symbols that read as text are left out: "Brand™" and "25°C" are not emoji.)
_PICTO = ("[\u2194-\u21aa\u231a-\u23ff\u24c2\u25aa-\u25fe"
          "\u2600-\u27bf\u2934\u2935\u2b00-\u2bff\u3030\u303d\u3297\u3299\U0001f000-\U0001faff]")
_MODS = "[\ufe0f\ufe0e\U0001f3fb-\U0001f3ff\u20e3]*"
KEYCAP_MARK = "\u20e3"  # what makes "1" + U+FE0F an emoji; neither is one alone
EMOJI = re.compile(f"[0-9#*]\ufe0f?{KEYCAP_MARK}|[\U0001f1e6-\U0001f1ff]{{2}}"
                   f"|{_PICTO}{_MODS}(?:\u200d{_PICTO}{_MODS})*")


def clean_caption(raw: str, drop_fragment: bool = False, keep: str = "") -> str:
    """Generated text → a caption: no special tokens, single spaces, no back-to-back repeats, no hashtag
    twice, no run of one emoji longer than MAX_EMOJI_RUN.

    ``keep``: the words the caption was started with ("Start with…"), at the start of raw. They stay exactly as
    written, even where the model's continuation sticks to their last word ("girls" + ", so much"): only the
    continuation is cleaned (the start words' hashtags and emoji count as written before it) or cut as a
    fragment.
    """
    text = " ".join(_SPECIAL.sub(" ", raw).split())
    head = " ".join(keep.split())
    if not text.startswith(head):
        head = ""  # raw does not begin with them as typed: nothing to hold on to
    words = collapse_emoji_runs(text, fixed=len(head)).split()
    n = len(head.split())  # the start words, the last one with whatever the continuation stuck to it
    # Loops first: a loop's hashtags are its own copies ("… #beach today! Fun at the #beach …"), not repeats.
    words = dedupe_hashtags(" ".join(words[:n] + collapse_repeats(words[n:])), fixed=len(head)).split()
    if drop_fragment:
        words = _drop_unfinished_sentence(words, protect=n)
    return " ".join(words)


def collapse_repeats(words: list[str], min_unit: int = MIN_REPEAT_WORDS) -> list[str]:
    """Remove runs of ≥ min_unit words that repeat right after themselves, and a trailing partial copy; words
    compare case aside and without the punctuation after them ("Love this place! love this place!")."""
    words = list(words)
    looped = False
    while _remove_one_repeat(words, min_unit):
        looped = True
    # Once the text is known to loop, even a short restart at the end is the loop cut off by the limit.
    return _drop_partial_tail_copy(words, 1 if looped else min_unit, min_unit)


def _word_key(word: str) -> str:
    """What makes two words the same in a loop: case aside, and the punctuation after them ("Place!" = "place"):
    a loop restarting a sentence writes it with a capital, and ends the copy before it with "!" or ","."""
    end = len(word)
    while end and unicodedata.category(word[end - 1]).startswith("P"):
        end -= 1
    return word[:end].casefold()


def _remove_one_repeat(words: list[str], min_unit: int) -> bool:
    """Delete the second copy of the first unit that repeats right after itself (the first copy stays as written)."""
    keys = [_word_key(w) for w in words]
    n = len(words)
    for size in range(min_unit, n // 2 + 1):
        for start in range(0, n - 2 * size + 1):
            if keys[start:start + size] == keys[start + size:start + 2 * size]:
                del words[start + size:start + 2 * size]
                return True
    return False


def _drop_partial_tail_copy(words: list[str], min_tail: int, min_unit: int) -> list[str]:
    """'A B C D A B' → 'A B C D': a tail that restarts the unit just before it, cut off by the limit."""
    keys = [_word_key(w) for w in words]
    n = len(words)
    for tail in range(n // 2, min_tail - 1, -1):
        for unit in range(max(tail + 1, min_unit), n - tail + 1):
            start = n - tail - unit
            if keys[start:start + tail] == keys[n - tail:]:
                return words[:n - tail]
    return words


def _drop_unfinished_sentence(words: list[str], protect: int = 0) -> list[str]:
    """Cut words after the last sentence end, emoji or hashtag, if the caption ends mid-sentence; the first
    ``protect`` words (the person's own start) are never cut."""
    if not words or _ends_cleanly(words[-1]):
        return words
    for i in range(len(words) - 2, max(protect - 2, -1), -1):
        if _ends_cleanly(words[i]):
            return words[:i + 1]
    return words  # a single unfinished sentence is better than nothing


def _ends_cleanly(word: str) -> bool:
    return bool(_SENTENCE_END.search(word)) or word.startswith("#") or _is_emoji(word[-1])


def _is_emoji(char: str) -> bool:
    return unicodedata.category(char) == "So" or char in "\ufe0f\u200d\u20e3" or bool(EMOJI.fullmatch(char))


def contains_emoji(text: str) -> bool:
    """Whether text has an emoji (or a part of one: a joiner, a variation selector, a skin tone)."""
    return bool(EMOJI.search(text)) or any(c in "\ufe0f\u200d\u20e3" for c in text)


def count_emoji(text: str) -> int:
    return len(EMOJI.findall(text))


def dedupe_hashtags(text: str, fixed: int = 0) -> str:
    """Write each hashtag once (case-insensitive; the first spelling stays). A repeat among the hashtags at the
    end goes ("#beach #sun #Beach" → "#beach #sun"); a repeat used as a word in a sentence keeps the word and
    loses its '#' ("the #Beach is life" → "the Beach is life"), or the sentence would have a hole.

    The first ``fixed`` characters (the start words) are left as they are; their hashtags count as written."""
    seen: set[str] = set()
    block = _tag_block_start(text)

    def keep_first(match: re.Match) -> str:
        tag = tag_key(match.group(2))
        if tag not in seen or match.start(2) <= fixed:
            seen.add(tag)
            return match.group(0)
        return "" if match.start(2) > block else match.group(1) + match.group(2)

    return _hashtag_word().sub(keep_first, text)


def _tag_block_start(text: str) -> int:
    """Where the hashtags at the end begin: after the last letter or digit outside a hashtag or an emoji (only
    hashtags, emoji, punctuation and spaces follow)."""
    def blank(match: re.Match) -> str:
        return " " * len(match.group(0))

    rest = EMOJI.sub(blank, _hashtag_word().sub(blank, text))
    return max((i + 1 for i, c in enumerate(rest) if unicodedata.category(c)[0] in "LNM"), default=0)


@functools.cache
def _hashtag_word() -> re.Pattern:
    """A hashtag with the space before it (igcap.instagram.tag_chars says what a hashtag is made of)."""
    return re.compile(rf"(\s*){hashtag_regex()}")


def collapse_emoji_runs(text: str, most: int = MAX_EMOJI_RUN, fixed: int = 0) -> str:
    """A run of one emoji (with or without spaces between) keeps its first ``most`` copies.

    Emoji are compared whole: "👍👍👍👍🏽" is three 👍 and a 👍🏽, "👩👩👩👩‍💻" three 👩 and a 👩‍💻. The first
    ``fixed`` characters (the start words) are left as they are; a run that goes on after them counts their
    copies."""
    if most < 1:
        raise ValueError("an emoji run keeps at least one emoji")
    out, kept_to, prev, copies = [], 0, None, 0
    for match in EMOJI.finditer(text):
        same = prev is not None and match.group() == prev.group() and not text[prev.end():match.start()].strip()
        copies = copies + 1 if same else 1
        if copies > most and match.start() >= fixed:  # this copy goes, with the spaces before it
            out.append(text[kept_to:max(prev.end(), fixed)])
            kept_to = match.end()
        prev = match
    return "".join(out) + text[kept_to:]
