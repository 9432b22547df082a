"""The app's pages and who sees each: one table, read by the entry script (navigation by role) and by the
sign-in gate (a link to a page survives signing in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import streamlit as st

from igcap.access import Identity


@dataclass(frozen=True)
class AppPage:
    file: str  # relative to the entry script
    title: str
    icon: str
    shown_to: str  # the Identity property that lets a person see the page

    @property
    def url_path(self) -> str:
        """The page's address, as Streamlit derives it from the file name (…/gallery)."""
        return PurePosixPath(self.file).stem


# in the sidebar's order; studies are the owner's (local mode is the owner), every role rates
PAGES = (
    AppPage("app_pages/create.py", "Create", "✍️", "can_create"),
    AppPage("app_pages/gallery.py", "Gallery", "🖼️", "can_create"),
    AppPage("app_pages/studies.py", "Studies", "🧪", "is_owner"),
    AppPage("app_pages/rate.py", "Rate", "⭐", "can_rate"),
    AppPage("app_pages/arena.py", "Arena", "⚔️", "can_rate"),
    AppPage("app_pages/evaluation.py", "Evaluation", "📊", "can_create"),
    AppPage("app_pages/models.py", "Models", "🧠", "can_create"),
)


def pages_for(identity: Identity) -> list[st.Page]:
    """The pages of this person's role; the first is Create for those who create, else Rate."""
    default = "create" if identity.can_create else "rate"
    return [st.Page(p.file, title=p.title, icon=p.icon, default=p.url_path == default)
            for p in PAGES if getattr(identity, p.shown_to)]
