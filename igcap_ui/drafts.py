"""The Create page's work in progress (photos, cards, edits, hand-written text) kept on disk per person,
so a browser reload or a dropped connection (a new Streamlit session) does not lose it.

Whose draft: the signed-in user's when the app has sign-in; otherwise, when the app is opened on this
machine (localhost), the one local person's. On a shared deployment without sign-in nobody can be told
apart, so no draft is kept there (one visitor must never see another's photos).

Where: ``<IGCAP_DATA_DIR>/drafts/<sha256 of the owner>/``: ``draft.json`` (cards and texts) and one PNG per
photo (the 1080-px copy the page holds, lossless), the photos set aside (igcap_ui.photos) included. Written at
the end of a Create run and as each model's cards arrive during Generate (a reload mid-Generate keeps them),
only when it changed.

An empty draft never replaces one with photos: that one (draft.json and its photos) moves to ``prev/`` first,
replacing the one kept there before, and the Create page offers it back while it holds no photos (restore,
or discard). Emptying is how work went missing for good: a page the browser drew afresh emptied the uploader,
the next change dropped the photo, and the save after it wrote ``{"cards": {}, "photos": []}``.
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
import shutil
import tempfile
import threading
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path

import streamlit as st
from PIL import Image

from igcap.access import Mode
from igcap_ui import access, resources

log = logging.getLogger(__name__)
_LOADED = "create.draft_loaded"  # this session has taken its draft (once, on its first Create run)
_WRITTEN = "create.draft_digest"  # digest of the draft last written, so unchanged runs write nothing
VERSION = 1
EARLIER = "prev"  # sub-folder: the last draft with photos that an empty one replaced (offered back)
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


def _restore(where: Path, all_back: bool = False) -> None:
    """Load the draft in ``where`` into the session; ``all_back``: its photos set aside come back as photos too."""
    from igcap.captioner import CaptionResult, ModelFailure
    from igcap.images import Photo
    from igcap_ui import photos as photo_state
    from igcap_ui import text_boxes
    from igcap_ui.results import Card, manual_key, store

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
        aside = {}
        for meta in data.get("removed", []):
            try:
                with Image.open(where / f"{meta['sha256']}.png") as image:
                    aside[meta["sha256"]] = Photo(image=image.convert("RGB"), **meta)
            except FileNotFoundError:
                log.warning("draft photo %s missing: left out", meta["sha256"][:12])
    if all_back:
        kept, aside = {**aside, **kept}, {}
    photo_state.restore(kept, aside)
    cards = store()
    for sha, per_model in data["cards"].items():
        if sha not in kept and sha not in aside:
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
        if (sha in kept or sha in aside) and manual_key(sha) not in st.session_state:
            text_boxes.write(manual_key(sha), text)


def save() -> None:
    """At the end of a Create run, and as a model's cards arrive: write the draft if it changed (nothing when
    no owner)."""
    who = owner()
    if who is None:
        return
    from igcap_ui import photos as photo_state
    from igcap_ui.results import manual_key, store

    kept, aside = photo_state.kept(), photo_state.set_aside()
    every = {**aside, **kept}
    cards = store()
    data = {
        "version": VERSION,
        "photos": [_photo_dict(p) for p in kept.values()],
        "removed": [_photo_dict(p) for p in aside.values()],  # set aside, offered back (igcap_ui.photos)
        "cards": {sha: {key: _card_dict(card) for key, card in cards[sha].items()} for sha in every if sha in cards},
        "manual": {sha: st.session_state[manual_key(sha)] for sha in every if st.session_state.get(manual_key(sha))},
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
            if not every:
                _keep_as_earlier(where)  # an empty draft never replaces one with photos
            for sha, photo in every.items():
                if not (where / f"{sha}.png").is_file():
                    _atomic(where / f"{sha}.png", lambda f, p=photo: p.image.save(f, "PNG"))
            _atomic(where / "draft.json", lambda f: f.write(text.encode("utf-8")))
            for old in where.glob("*.png"):
                if old.stem not in every:
                    old.unlink(missing_ok=True)
        st.session_state[_WRITTEN] = digest
    except OSError as err:  # a full or read-only disk: the page keeps working, the draft is just not kept
        log.warning("draft not written: %s", err)


def _keep_as_earlier(where: Path) -> None:
    """Move the draft in ``where`` (draft.json and its photos) to ``where/prev`` when it holds photos, replacing
    the one kept before: called, under the folder's lock, before an empty draft is written."""
    path = where / "draft.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    shas = [meta["sha256"] for meta in [*data.get("photos", []), *data.get("removed", [])]]
    if not shas:
        return
    earlier = where / EARLIER
    shutil.rmtree(earlier, ignore_errors=True)
    earlier.mkdir()
    for sha in shas:
        if (where / f"{sha}.png").is_file():
            os.replace(where / f"{sha}.png", earlier / f"{sha}.png")
    os.replace(path, earlier / "draft.json")  # last: a draft.json there names photos already there
    log.info("draft emptied: the earlier one kept in %s", earlier)


def earlier_work() -> None:
    """On a Create page with no photos: offer the work an empty draft replaced (``prev``), to restore or discard."""
    who = owner()
    if who is None:
        return
    earlier = folder(who) / EARLIER
    path = earlier / "draft.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        saved = datetime.fromtimestamp(path.stat().st_mtime).strftime("%d %b %H:%M")
    except (OSError, ValueError):
        return
    photos = len(data.get("photos", [])) + len(data.get("removed", []))
    captions = sum(len(c.get("results", [])) for per_model in data.get("cards", {}).values()
                   for c in per_model.values())
    with st.container(border=True):
        st.info(f"Earlier work is kept: {photos} photo(s) with {captions} caption(s), last saved {saved}, set "
                "aside when your draft became empty. Restore it, or discard it for good.", icon="🗂️")
        restore_it, discard_it = st.columns(2)
        if restore_it.button("↩️ Restore earlier work", key="create.restore_earlier", type="primary"):
            with _folder_lock(folder(who)):  # a save in another tab may replace it meanwhile
                try:
                    _restore(earlier, all_back=True)
                except Exception as err:  # noqa: BLE001 - a damaged draft must not stop the page
                    log.warning("earlier draft not restored: %s", err)
                    st.error("The earlier work could not be read back.", icon="⚠️")
                    return
                shutil.rmtree(earlier, ignore_errors=True)  # in this session now: the next run saves it
            st.rerun()
        if discard_it.button("Discard it", key="create.discard_earlier",
                             help="Delete the earlier photos and captions kept here (saved captions stay in the "
                                  "gallery)."):
            with _folder_lock(folder(who)):
                shutil.rmtree(earlier, ignore_errors=True)
            st.rerun()


def _photo_dict(photo) -> dict:
    return {f.name: getattr(photo, f.name) for f in fields(photo) if f.name != "image"}


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
