"""Whose draft: the one local person's on localhost, nobody's on a shared deployment without sign-in."""

import pytest

from igcap_ui import drafts


@pytest.mark.parametrize("host, owner", [(None, "local"), ("localhost", "local"), ("127.0.0.1", "local"),
                                         ("[::1]", "local"), ("igcap.example.org", None), ("10.0.0.7", None)])
def test_a_draft_belongs_to_the_local_person_only_on_this_machine(monkeypatch, host, owner):
    monkeypatch.setattr(drafts, "_host", lambda: host)
    assert drafts.owner() == owner


def test_owners_get_separate_folders(app_env):
    assert drafts.folder("user:a@example.org") != drafts.folder("user:b@example.org")
    assert "a@example.org" not in str(drafts.folder("user:a@example.org"))  # the folder name reveals no one
