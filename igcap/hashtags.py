"""Hashtag sets: what a person types as a set ("travel wanderlust, #roadtrip") → hashtags, and adding a
set to a caption without going past Instagram's limits (igcap.instagram). Pure functions; the sets
themselves are stored by db.hashtag_sets."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from igcap.instagram import DEFAULT_LIMITS, InstagramLimits, hashtags, tag_body, tag_key

_SEPARATORS = re.compile(r"[\s,;]+")


@functools.cache
def _word() -> re.Pattern:
    return re.compile(rf"#?({tag_body()})")


class HashtagSetError(ValueError):
    """What a person typed is not a list of hashtags; the message says why."""


def parse_hashtag_set(text: str) -> list[str]:
    """'travel, #Wanderlust #roadtrip' → ['#travel', '#Wanderlust', '#roadtrip'] (repeats dropped, case-insensitive)."""
    tags, seen = [], set()
    for piece in filter(None, _SEPARATORS.split(text or "")):
        match = _word().fullmatch(unicodedata.normalize("NFC", piece))
        if not match:
            raise HashtagSetError(f"{piece!r} is not a hashtag: use letters, digits and _ only, like #travel.")
        if tag_key(match.group(1)) not in seen:
            seen.add(tag_key(match.group(1)))
            tags.append("#" + match.group(1))
    if not tags:
        raise HashtagSetError("Type at least one hashtag, like #travel.")
    return tags


@dataclass(frozen=True)
class HashtagAddition:
    text: str  # the caption with the hashtags that fit
    added: tuple[str, ...]
    already_there: tuple[str, ...]
    left_out: tuple[str, ...]  # would have gone past Instagram's hashtag or character limit

    def message(self, limits: InstagramLimits) -> str:
        """One sentence for a person about what happened."""
        parts = [f"Added {' '.join(self.added)}." if self.added else "Nothing added."]
        if self.already_there:
            parts.append(f"Already there: {' '.join(self.already_there)}.")
        if self.left_out:
            parts.append(f"Left out {' '.join(self.left_out)}: Instagram allows {limits.max_hashtags} hashtags "
                         f"and {limits.max_chars:,} characters.")
        return " ".join(parts)


def add_hashtags(caption: str, tags: list[str], limits: InstagramLimits | None = None) -> HashtagAddition:
    """Append the tags the caption does not have yet, in order, as long as they fit within the limits
    (pass ``Settings.from_env().instagram``; None means the defaults)."""
    limits = limits or DEFAULT_LIMITS
    present = {tag_key(t) for t in hashtags(caption)}
    text, added, already, left_out = caption.rstrip(), [], [], []
    count = len(hashtags(caption))
    for tag in tags:
        if tag_key(tag) in present:
            already.append(tag)
            continue
        candidate = f"{text} {tag}" if text else tag
        if count + 1 > limits.max_hashtags or len(candidate) > limits.max_chars:
            left_out.append(tag)
            continue
        text, count = candidate, count + 1
        present.add(tag_key(tag))
        added.append(tag)
    return HashtagAddition(text if added else caption, tuple(added), tuple(already), tuple(left_out))
