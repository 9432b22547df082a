"""What the Create page has generated this session, so reruns redraw it instead of generating again.

The store maps photo hash → model key → Card. Each Card gets a fresh number, used in its widget keys,
so a regenerated card starts from its new text while an untouched card keeps the person's edits.
A card also remembers what it saved to the gallery, so it can say "unsaved changes" after an edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

_STORE = "create.results"
_COUNTER = "create.card_counter"


@dataclass
class Card:
    model_key: str
    results: list  # CaptionResult, ordered by variant
    failure: Any = None  # ModelFailure when the model could not caption
    settings: dict = field(default_factory=dict)  # DecodingSettings.to_dict() used
    number: int = 0
    edits: dict = field(default_factory=dict)  # variant → text as edited; outlives the widget on other pages
    more_settings: dict = field(default_factory=dict)  # variant → settings of a "more like this" variant
    saved_ids: dict = field(default_factory=dict)  # variant → id of the gallery caption saved from it
    saved_texts: dict = field(default_factory=dict)  # variant → the text as last saved
    note: str = ""  # a word about how this card came to be (e.g. the same text as before, and why)

    def text(self, result) -> str:
        return self.edits.get(result.variant, result.text)

    def text_key(self, variant: int) -> str:
        return f"card{self.number}.v{variant}.text"

    def settings_for(self, variant: int) -> dict:
        """The decoding settings that wrote this variant (a "more like this" variant has its own seed)."""
        return self.more_settings.get(variant, self.settings)

    def add_more(self, results, settings: dict) -> None:
        """Append the variants of a "more like this" run after the card's own, numbered on."""
        from dataclasses import replace

        offset = max((r.variant for r in self.results), default=-1) + 1
        for result in sorted(results, key=lambda r: r.variant):
            moved = replace(result, variant=result.variant + offset)
            self.results.append(moved)
            self.more_settings[moved.variant] = settings
    def unsaved_edit(self, result) -> bool:
        """The person changed this variant and the gallery does not hold the change."""
        return self.text(result) != self.saved_texts.get(result.variant, result.text)

    def has_unsaved_edits(self) -> bool:
        return any(self.unsaved_edit(r) for r in self.results)


def manual_key(photo_sha: str) -> str:
    """The widget key of a photo's "Write your own caption" box."""
    return f"manual.{photo_sha}"


def store() -> dict[str, dict[str, Card]]:
    return st.session_state.setdefault(_STORE, {})


def new_card(model_key: str, results: list, failure, settings: dict) -> Card:
    st.session_state[_COUNTER] = st.session_state.get(_COUNTER, 0) + 1
    results = sorted(results, key=lambda r: r.variant)
    return Card(model_key, results, failure, settings, st.session_state[_COUNTER])


def cards_from_run(run, photo_shas: list[str], settings: dict) -> dict[str, Card]:
    """One ModelRun (all photos for one model) → one Card per photo hash."""
    by_photo: dict[int, list] = {i: [] for i in range(len(photo_shas))}
    for result in run.results:
        by_photo[result.photo_index].append(result)
    return {sha: new_card(run.model_key, by_photo[i], run.error, settings) for i, sha in enumerate(photo_shas)}
