"""Instagram's caption rules, in one place: the limits, and how a caption measures up against them.

The figures (as of 2026), and where they come from:
- **5 hashtags** per post or reel: Instagram's @creators account announced on 18–19 December 2025 that
  posts and reels carry at most 5 hashtags (it was 30), rolled out gradually.
- **2,200 characters** per caption: Instagram's own limit for a caption (unchanged).
- **about 125 characters** show under a photo before "… more" (the feed cuts the caption there; the exact
  cut depends on the screen, so this is a guide, not a rule).
- **20 @mentions** per caption: what Meta's Instagram content-publishing API documents for a caption ("20 @
  tags"); the app does not publish a figure of its own (third-party guides say 20 or 30), so igcap warns past 20.

When Instagram changes them again, set ``IGCAP_INSTAGRAM_MAX_CHARS``, ``IGCAP_INSTAGRAM_MAX_HASHTAGS``,
``IGCAP_INSTAGRAM_MAX_MENTIONS`` or ``IGCAP_INSTAGRAM_PREVIEW_CHARS`` (read by :mod:`igcap.config` into
``Settings.instagram``, which the app and the CLI pass here), or change the defaults below.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass


@functools.cache
def tag_chars() -> str:
    """What a hashtag is made of, as the inside of a regular-expression character class: letters, digits and
    _ (``\\w``), and the combining marks that Indic, Thai and other scripts write words with (Unicode
    categories Mn, Mc, Me: "#भारत", "#தமிழ்", "#เที่ยว"), which ``\\w`` alone leaves out, plus the zero-width
    (non-)joiners those scripts use. The one definition for every place that finds or parses hashtags."""
    ranges, start = [], None
    for cp in [*range(0x20000), *range(0xE0000, 0xE1000)]:  # marks live in planes 0, 1 and 14 only
        mark = unicodedata.category(chr(cp))[0] == "M"
        if mark and start is None:
            start = cp
        elif not mark and start is not None:
            ranges.append(f"{chr(start)}-{chr(cp - 1)}" if cp - 1 > start else chr(start))
            start = None
    return r"\w\u200c\u200d" + "".join(re.escape(r) if len(r) == 1 else r for r in ranges)


def tag_body() -> str:
    """A hashtag's body as a regular expression: a letter, digit or _ first, then tag_chars (so "#️⃣", the
    keycap emoji, which is "#" and two marks, is no hashtag)."""
    return rf"\w[{tag_chars()}]*"


def hashtag_regex() -> str:
    """A hashtag in running text as a regular expression (its body the one group): not inside a word or right
    after another "#" ("a#b", "##b")."""
    return rf"(?<![{tag_chars()}#])#({tag_body()})"


@functools.cache
def _hashtag() -> re.Pattern:
    return re.compile(hashtag_regex())


# An @mention: an Instagram username (letters, digits, "_" and ".", at most 30, not ending in ".", which is the
# sentence's), not inside a word or an e-mail address ("ana@example.com") and not right after another "@".
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?)(?![\w@])")


def tag_key(tag: str) -> str:
    """What makes two hashtags the same one: case aside ("#Beach" = "#beach"), and however the accents were
    typed (a composed "é" or "e" + a combining accent)."""
    return unicodedata.normalize("NFC", tag.lstrip("#")).casefold()


@dataclass(frozen=True)
class InstagramLimits:
    max_chars: int = 2200  # characters a caption may have
    max_hashtags: int = 5  # hashtags a post or reel may carry (30 before December 2025)
    preview_chars: int = 125  # about what shows under the photo before "… more"
    max_mentions: int = 20  # @mentions a caption may carry (Meta's publishing API: "20 @ tags")

    def __post_init__(self):
        for name in ("max_chars", "max_hashtags", "preview_chars", "max_mentions"):
            if getattr(self, name) < 1:
                raise ValueError(f"Instagram limit {name} must be at least 1, not {getattr(self, name)}")


DEFAULT_LIMITS = InstagramLimits()


@dataclass(frozen=True)
class InstagramStats:
    chars: int
    hashtags: int
    limits: InstagramLimits
    preview: str  # the first ~125 characters, as shown under the photo
    mentions: int = 0  # @mentions (repeats included)

    @property
    def over_chars(self) -> bool:
        return self.chars > self.limits.max_chars

    @property
    def over_hashtags(self) -> bool:
        return self.hashtags > self.limits.max_hashtags

    @property
    def over_mentions(self) -> bool:
        return self.mentions > self.limits.max_mentions

    @property
    def ok(self) -> bool:
        return not (self.over_chars or self.over_hashtags or self.over_mentions)

    def over_limit(self) -> dict[str, bool]:
        """One flag per limit, as the CLI writes them: {"chars": …, "hashtags": …, "mentions": …}."""
        return {"chars": self.over_chars, "hashtags": self.over_hashtags, "mentions": self.over_mentions}

    def problems(self) -> list[str]:
        """Sentences for each limit the caption breaks, e.g. "6 hashtags; Instagram allows 5"."""
        out = []
        if self.over_chars:
            out.append(f"{self.chars:,} characters; Instagram allows {self.limits.max_chars:,}")
        if self.over_hashtags:
            out.append(f"{self.hashtags} hashtags; Instagram allows {self.limits.max_hashtags}")
        if self.over_mentions:
            out.append(f"{self.mentions} @mentions; Instagram allows {self.limits.max_mentions}")
        return out

    def warning(self) -> str | None:
        """One sentence for a person, or None when the caption is within every limit."""
        if self.ok:
            return None
        return "Instagram will refuse this caption as it is: " + " and ".join(self.problems()) + "."


def hashtags(text: str) -> list[str]:
    """The hashtags in text, without '#', in order (repeats included: Instagram counts each)."""
    return _hashtag().findall(text)


def mentions(text: str) -> list[str]:
    """The @mentioned usernames in text, without '@', in order (repeats included); e-mail addresses are not."""
    return _MENTION.findall(text)


def instagram_stats(text: str, limits: InstagramLimits | None = None) -> InstagramStats:
    """How text measures up. ``limits``: pass ``Settings.from_env().instagram`` to honour IGCAP_INSTAGRAM_*
    (the app and the CLI do); None means the defaults above."""
    limits = limits or DEFAULT_LIMITS
    return InstagramStats(chars=len(text), hashtags=len(hashtags(text)), limits=limits,
                          preview=preview(text, limits.preview_chars), mentions=len(mentions(text)))


def preview(text: str, limit: int = DEFAULT_LIMITS.preview_chars) -> str:
    """The caption as it reads collapsed under a photo: up to ~limit chars, then '… more'.

    Line breaks stay (Instagram keeps them); only trailing spaces on a line and outer blank space go. The cut
    comes after the last word that fits whole (one ending right at the limit too); with no space to cut at, it
    comes between whole characters as a person sees them (a flag, "👩‍💻", "👍🏽", "1️⃣", an accented letter)."""
    kept = "\n".join(line.rstrip() for line in text.strip().splitlines())
    if len(kept) <= limit:
        return kept
    head = kept[:limit + 1]  # with the character after the limit: a space there means the last word fits
    cut = max(head.rfind(" "), head.rfind("\n"))
    return (kept[:cut] if cut > 0 else _whole_characters(kept, limit)).rstrip() + "… more"


def _whole_characters(text: str, limit: int) -> str:
    """The longest start of text, at most ``limit`` code points, that ends between grapheme clusters."""
    import regex  # \X, a grapheme cluster (Python's re has none); imported when a preview is cut mid-word

    end = 0
    for cluster in regex.finditer(r"\X", text):
        if cluster.end() > limit:
            break
        end = cluster.end()
    return text[:end]
