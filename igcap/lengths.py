"""Caption length presets: short / medium / long, as token limits for the decoder.

The models write GPT-2 tokens, so length is set in tokens; the characters each preset usually gives are
estimated at CHARS_PER_TOKEN, the usual figure for GPT-2's tokenizer on English text (about 4 characters,
¾ of a word, per token). It is an estimate, not measured on these four models; a caption can always end
sooner, when the model writes its end-of-text token.
"""

from __future__ import annotations

from dataclasses import dataclass

CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Length:
    name: str
    min_new_tokens: int
    max_new_tokens: int

    @property
    def chars(self) -> tuple[int, int]:
        """About how many characters a caption of this length has (at least, at most)."""
        return self.min_new_tokens * CHARS_PER_TOKEN, self.max_new_tokens * CHARS_PER_TOKEN

    @property
    def label(self) -> str:
        low, high = self.chars
        words = f"up to {self.max_new_tokens} tokens" if not self.min_new_tokens else \
            f"{self.min_new_tokens}–{self.max_new_tokens} tokens"
        chars = f"≈ {high} characters at most" if not low else f"≈ {low}–{high} characters"
        return f"{self.name.capitalize()} ({words}, {chars})"

    def apply(self, settings):
        """DecodingSettings with this length's token limits."""
        return settings.replace(min_new_tokens=self.min_new_tokens, max_new_tokens=self.max_new_tokens)


LENGTHS: dict[str, Length] = {
    "short": Length("short", 0, 16),  # a line: "Golden hour at the beach 🌅"
    "medium": Length("medium", 8, 32),  # up to about what shows under the photo before "… more" (~125 chars)
    "long": Length("long", 24, 64),  # a few sentences
}
