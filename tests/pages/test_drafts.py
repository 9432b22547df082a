"""Whose draft: the one local person's on localhost, nobody's on a shared deployment without sign-in."""

import threading

import pytest

from igcap.access import Identity, Mode
from igcap_ui import drafts


@pytest.mark.parametrize("mode, owner", [(Mode.LOCAL, "local"), (Mode.OPEN, None),
                                         (Mode.OIDC, "user:ana@example.org"), (Mode.PASSWORD, "user:ana@example.org")])
def test_a_draft_belongs_to_the_signed_in_person_or_the_local_one_never_to_everyone(monkeypatch, mode, owner):
    """Signed in: that person's draft; no sign-in on this machine only: the one local person's; no sign-in on a
    reachable address: nobody's (every visitor would share it)."""
    who = "local" if mode in (Mode.LOCAL, Mode.OPEN) else "ana@example.org"
    monkeypatch.setattr(drafts.access, "current", lambda: Identity(who, who, "owner", mode))
    assert drafts.owner() == owner


def test_owners_get_separate_folders(app_env):
    assert drafts.folder("user:a@example.org") != drafts.folder("user:b@example.org")
    assert "a@example.org" not in str(drafts.folder("user:a@example.org"))  # the folder name reveals no one


class _Tabs:
    """Streamlit's session state as each browser tab sees it: one state per thread (a tab's script run)."""

    def __init__(self):
        self._tab = threading.local()

    @property
    def session_state(self) -> dict:
        return self._tab.state

    def open(self, state: dict | None = None) -> dict:
        self._tab.state = {} if state is None else state
        return self._tab.state


@pytest.fixture
def tabs(monkeypatch, tmp_path):
    """Every tab of the one local person, sharing one draft folder."""
    from igcap_ui import photos, results, text_boxes

    stand_in = _Tabs()
    for module in (drafts, photos, results, text_boxes):
        monkeypatch.setattr(module, "st", stand_in)
    monkeypatch.setattr(drafts, "owner", lambda: "local")
    monkeypatch.setattr(drafts, "folder", lambda who: tmp_path / "draft")
    return stand_in


def _photo(colour: str):
    from PIL import Image

    from igcap.images import Photo

    return Photo(Image.new("RGB", (8, 8), colour), colour * 4, f"{colour}.jpg", 8, 8, "JPEG", 10)


def _draft_photos(tabs) -> list[str]:
    state = tabs.open()
    drafts._restore(drafts.folder("local"))
    return list(state.get("create.photos", {}))


def test_two_tabs_saving_at_once_leave_a_whole_draft(tabs):
    """Two tabs of one person end their runs at once with different photos: each save's clean-up deleted the
    other's photo after the other had named it in draft.json, and the next reload lost the whole draft."""
    for trial in range(60):
        start = threading.Barrier(2)

        def tab(colour):
            tabs.open({"create.photos": {_photo(colour).sha256: _photo(colour)}})
            start.wait()
            for run in range(3):
                tabs.session_state["create.card_counter"] = trial * 10 + run  # a change: each run writes
                drafts.save()

        workers = [threading.Thread(target=tab, args=(colour,)) for colour in ("red", "blue")]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(10)
        assert _draft_photos(tabs) in (["red" * 4], ["blue" * 4]), f"trial {trial}: the draft lost its photo"


def test_a_photo_missing_from_the_draft_costs_only_that_photo(tabs):
    from igcap_ui.results import Card, store

    tabs.open({"create.photos": {p.sha256: p for p in (_photo("red"), _photo("blue"))},
               "manual.redredredred": "mine", "manual.blueblueblueblue": "gone"})
    for sha in ("red" * 4, "blue" * 4):
        store()[sha] = {"m": Card("m", [], None, {}, 1)}
    drafts.save()
    (drafts.folder("local") / f"{'blue' * 4}.png").unlink()
    state = tabs.open()
    drafts._restore(drafts.folder("local"))
    assert list(state["create.photos"]) == ["red" * 4]
    assert list(store()) == ["red" * 4] and state["manual.redredredred"] == "mine"
    assert "manual.blueblueblueblue" not in state
