"""The Create page's work in progress (photos, cards, edits, hand-written text) kept on disk per person,
so a browser reload or a dropped connection (a new Streamlit session) does not lose it.

Whose draft: the signed-in user's when the app has sign-in; otherwise, when the app is opened on this
machine (localhost), the one local person's. On a shared deployment without sign-in nobody can be told
apart, so no draft is kept there (one visitor must never see another's photos).

Where: ``<IGCAP_DATA_DIR>/drafts/<sha256 of the owner>/``: ``draft.json`` (cards and texts) and one PNG per
photo (the 1080-px copy the page holds, lossless). Written at the end of a Create run only when it changed.
Every tab of a person (in local mode every tab on this computer) shares the folder: a save or a restore holds
the folder's lock (one per folder, for the process), so a draft.json never names a photo another tab's save
has just deleted; the last save wins. A photo whose file is missing anyway is left out on restore, the rest
of the draft kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, fields
from pathlib import Path

import streamlit as st
from PIL import Image

from igcap.access import Mode
from igcap_ui import access, resources

log = logging.getLogger(__name__)
_LOADED = "create.draft_loaded"  # this session has taken its draft (once, on its first Create run)
_WRITTEN = "create.draft_digest"  # digest of the draft last written, so unchanged runs write nothing
VERSION = 1
_FOLDER_LOCKS: dict[Path, threading.Lock] = {}  # one per draft folder (person) used by this process
_FOLDER_LOCKS_LOCK = threading.Lock()


def owner() -> str | None:
    """Whose draft this session works on, or None when nobody can be told apart (no draft then): the signed-in
    identity (igcap_ui.access), the one person at the keyboard in local mode, nobody on a shared deployment
    without sign-in (every visitor would share one draft)."""
    identity = access.current()
    if identity.signed_in:
        return f"user:{identity.id}"
    return "local" if identity.mode is Mode.LOCAL else None


def folder(who: str) -> Path:
    return resources.settings().data_dir / "drafts" / hashlib.sha256(who.encode()).hexdigest()[:32]


def _folder_lock(where: Path) -> threading.Lock:
    """The lock a save or restore of this folder holds: two tabs of one person run at once."""
    with _FOLDER_LOCKS_LOCK:
        return _FOLDER_LOCKS.setdefault(where, threading.Lock())


def restore() -> None:
    """On a session's first Create run: put the owner's draft back into the session (photos, cards, texts)."""
    if st.session_state.get(_LOADED):
        return
    st.session_state[_LOADED] = True
    who = owner()
    if who is None:
        return
    try:
        _restore(folder(who))
    except Exception as err:  # noqa: BLE001 - a damaged draft must not stop the page; start afresh
        log.warning("draft not restored: %s", err)


def _restore(where: Path) -> None:
    from igcap.captioner import CaptionResult, ModelFailure
    from igcap.images import Photo
    from igcap_ui import photos as photo_state
    from igcap_ui.results import Card, store

    path = where / "draft.json"
    with _folder_lock(where):
        if not path.is_file():
            return
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != VERSION:
            return
        kept = {}
        for meta in data["photos"]:
            try:
                with Image.open(where / f"{meta['sha256']}.png") as image:
                    kept[meta["sha256"]] = Photo(image=image.convert("RGB"), **meta)
            except FileNotFoundError:  # this photo is lost; its cards and text go with it, the rest stays
                log.warning("draft photo %s missing: left out", meta["sha256"][:12])
    photo_state.restore(kept)
    cards = store()
    for sha, per_model in data["cards"].items():
        if sha not in kept:
            continue
        for key, c in per_model.items():
            results = [CaptionResult(**r) for r in c["results"]]
            failure = ModelFailure(**c["failure"]) if c["failure"] else None
            ints = lambda d: {int(k): v for k, v in d.items()}  # noqa: E731 - JSON keys are strings
            cards.setdefault(sha, {})[key] = Card(
                key, results, failure, settings=c["settings"], number=c["number"], edits=ints(c["edits"]),
                more_settings=ints(c.get("more_settings", {})), saved_ids=ints(c["saved_ids"]),
                saved_texts=ints(c["saved_texts"]), note=c.get("note", ""))
    st.session_state["create.card_counter"] = max(data.get("counter", 0), st.session_state.get("create.card_counter", 0))
    for sha, text in data.get("manual", {}).items():
        if sha in kept:
            st.session_state.setdefault(f"manual.{sha}", text)


def save() -> None:
    """At the end of a Create run: write the draft if it changed (nothing when no owner)."""
    who = owner()
    if who is None:
        return
    from igcap_ui import photos as photo_state
    from igcap_ui.results import store

    kept = photo_state.kept()
    cards = store()
    data = {
        "version": VERSION,
        "photos": [{f.name: getattr(p, f.name) for f in fields(p) if f.name != "image"} for p in kept.values()],
        "cards": {sha: {key: _card_dict(card) for key, card in cards[sha].items()} for sha in kept if sha in cards},
        "manual": {sha: st.session_state[f"manual.{sha}"] for sha in kept
                   if st.session_state.get(f"manual.{sha}")},
        "counter": st.session_state.get("create.card_counter", 0),
    }
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if st.session_state.get(_WRITTEN) == digest:
        return
    where = folder(who)
    try:
        with _folder_lock(where):  # the photos, the draft naming them and the clean-up, as one
            where.mkdir(parents=True, exist_ok=True)
            for sha, photo in kept.items():
                if not (where / f"{sha}.png").is_file():
                    _atomic(where / f"{sha}.png", lambda f, p=photo: p.image.save(f, "PNG"))
            _atomic(where / "draft.json", lambda f: f.write(text.encode("utf-8")))
            for old in where.glob("*.png"):
                if old.stem not in kept:
                    old.unlink(missing_ok=True)
        st.session_state[_WRITTEN] = digest
    except OSError as err:  # a full or read-only disk: the page keeps working, the draft is just not kept
        log.warning("draft not written: %s", err)


def _card_dict(card) -> dict:
    return {"results": [asdict(r) for r in card.results], "failure": asdict(card.failure) if card.failure else None,
            "settings": card.settings, "number": card.number, "edits": card.edits, "saved_ids": card.saved_ids,
            "saved_texts": card.saved_texts, "note": card.note, "more_settings": card.more_settings}


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
