"""Whose draft: the one local person's on localhost, nobody's on a shared deployment without sign-in."""

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
