"""Photo intake for the Create page: uploader (many files), optional camera, decoded once per file.

The photos live in session state, updated only when the uploader or the camera changes: Streamlit
empties a widget on pages that do not draw it, and a visit to the gallery must not lose the photos
(or their cards).

A photo taken out of the uploader (or the camera) that has captions or hand-written text is set aside,
not dropped: the page names it with a "Put back" button until the person puts it back or forgets it
(the draft keeps it too, igcap_ui.drafts). The uploader can empty without anyone touching it: when the
browser draws the page afresh (a sidebar click Streamlit ran as a rerun of the open page, see
igcap_ui.text_boxes) every widget starts from its default, and the next change anywhere sent the empty
uploader, which took the photo, its cards and the edits with it. "Clear photos" sets them aside too.

Memory: each photo is decoded already cut to 1080 px (igcap.images bounds one decode whatever its mode),
and a session takes at most MAX_PHOTOS photos and MAX_SESSION_MB of files at once; files past either
limit are refused with a message before they are decoded. At most MAX_PHOTOS photos are set aside (the
latest).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import streamlit as st

from igcap.images import MAX_UPLOAD_MB, SUPPORTED_LABEL, WORKING_SIDE, Photo, PhotoError, load_photo
from igcap_ui.plain import plain
from igcap_ui.results import manual_key, store

UPLOAD_KEY = "create.upload"
CAMERA_KEY = "create.camera"
_PHOTOS = "create.photos"  # sha256 → Photo, in upload order
_REFUSED = "create.refused"  # [(file id, file name, message)] for files that are not usable photos
_ORIGIN = "create.photo_origin"  # sha256 → uploader file id, or None for photos from earlier (kept on upload)
_SAME = "create.same"  # [(file id, file name, name of the earlier file with the same bytes)]
_REMOVED = "create.removed"  # sha256 → Photo: taken out with captions or text, offered back (oldest first)
_DECODED = "create.decoded"  # file_id → Photo | PhotoError: a change elsewhere does not decode a file again
KEEP_SIDE = WORKING_SIDE  # what session state keeps: the stored copy is 1080 px and the models see 224 px
MAX_PHOTOS = 20  # photos one session works on at once
MAX_SESSION_MB = 100  # their files together (each file is at most MAX_UPLOAD_MB)


def photo_inputs() -> list[Photo]:
    """Draw the inputs; return the usable photos (one per distinct content), showing why others are not."""
    files = st.file_uploader(f"Photos ({SUPPORTED_LABEL}; up to {MAX_UPLOAD_MB} MB each)",
                             accept_multiple_files=True, key=UPLOAD_KEY, on_change=_sync)
    if st.toggle("Use the camera", key="create.use_camera", help="Take a photo with this device's camera."):
        st.camera_input("Take a photo", key=CAMERA_KEY, on_change=_sync)
    else:
        _keep_camera_photo(files or [])
    if _PHOTOS not in st.session_state:
        _sync()
    held = {f.file_id for f in files or []} | ({shot.file_id} if (shot := st.session_state.get(CAMERA_KEY)) else set())
    for file_id, name, message in st.session_state[_REFUSED]:
        if file_id in held:  # a file no longer in the uploader (removed, or a visit elsewhere) has no message
            st.error(f"**{plain(name)}**: {message}", icon="🚫")
    for file_id, name, first in st.session_state.get(_SAME, []):
        if file_id in held:
            st.info(f"{plain(name)} is the same photo as {plain(first)}: it is captioned once.", icon="🪞")
    _removed_note(uploader_empty=not files)
    photos = st.session_state[_PHOTOS]
    if photos and not files and st.session_state.get(CAMERA_KEY) is None:
        # The uploader is empty (a visit elsewhere, a reload): these photos no longer belong to it, so the
        # next upload adds to them instead of replacing them.
        st.session_state[_ORIGIN] = dict.fromkeys(photos)
        _earlier_photos_note(len(photos))
    return list(photos.values())


def _keep_camera_photo(files) -> None:
    """With the camera turned off, its photo belongs to no widget any more: it stays as a photo from
    earlier, or the next change of the uploader would drop it with its captions and unsaved edits."""
    origin = st.session_state.get(_ORIGIN)
    if not origin:
        return
    uploaded = {f.file_id for f in files}
    loose = [sha for sha, source in origin.items() if source is not None and source not in uploaded]
    if loose:
        st.session_state[_ORIGIN] = {**origin, **dict.fromkeys(loose)}


def kept() -> dict[str, Photo]:
    """sha256 → Photo: the photos this session holds (for the draft)."""
    return st.session_state.get(_PHOTOS, {})


def set_aside() -> dict[str, Photo]:
    """sha256 → Photo: the photos taken out with their captions or text, offered back (for the draft)."""
    return st.session_state.get(_REMOVED, {})


def restore(photos: dict[str, Photo], removed: dict[str, Photo] | None = None) -> None:
    """Put photos from a draft back (before the inputs are drawn); they belong to no uploader file.
    ``removed``: the draft's photos set aside, offered back again."""
    st.session_state[_PHOTOS] = {**photos, **st.session_state.get(_PHOTOS, {})}
    st.session_state.setdefault(_REFUSED, [])
    st.session_state.setdefault(_SAME, [])
    st.session_state[_ORIGIN] = {sha: None for sha in st.session_state[_PHOTOS]}
    if removed:
        _put_aside(removed)


def has_work(sha: str) -> bool:
    """Whether the photo has captions (generated) or hand-written text that would go with it."""
    return bool(store().get(sha)) or bool(st.session_state.get(manual_key(sha)))


def _put_aside(photos: dict[str, Photo]) -> None:
    """Add ``photos`` to those set aside (the latest MAX_PHOTOS kept); one the session holds is not aside."""
    held = st.session_state.get(_PHOTOS, {})
    aside = {sha: p for sha, p in st.session_state.get(_REMOVED, {}).items() if sha not in photos}
    aside.update(photos)
    aside = {sha: p for sha, p in aside.items() if sha not in held}
    st.session_state[_REMOVED] = dict(list(aside.items())[-MAX_PHOTOS:])


def _removed_note(uploader_empty: bool) -> None:
    """Name the photos set aside, with a button to put them back and one to forget them."""
    aside = st.session_state.get(_REMOVED)
    if not aside:
        return
    one = len(aside) == 1
    names = ", ".join(f"**{plain(p.name)}**" for p in aside.values())
    why = " (the uploader can also empty by itself, when the browser draws the page afresh)" if uploader_empty else ""
    with st.container(border=True):
        st.warning(f"Removed with {'its' if one else 'their'} captions: {names}. Put {'it' if one else 'them'} "
                   f"back if you did not mean to{why}.", icon="🗑️")
        back, forget = st.columns(2)
        if back.button("↩️ Put back", key="create.put_back", type="primary",
                       help="The photos come back below with their captions and edits, as photos from earlier."):
            held = dict(st.session_state.get(_PHOTOS, {}))
            room = max(MAX_PHOTOS - len(held), 0)
            returning = dict(list(aside.items())[:room])  # the rest stay set aside, still offered
            held.update(returning)
            st.session_state[_PHOTOS] = held
            st.session_state[_ORIGIN] = {**st.session_state.get(_ORIGIN, {}), **dict.fromkeys(returning)}
            st.session_state[_REMOVED] = {sha: p for sha, p in aside.items() if sha not in returning}
            st.rerun()
        if forget.button("Forget it" if len(aside) == 1 else "Forget them", key="create.forget_removed",
                         help="Let these photos go, with their captions and unsaved edits (saved captions stay "
                              "in the gallery)."):
            st.session_state[_REMOVED] = {}
            st.rerun()


def _earlier_photos_note(count: int) -> None:
    left, right = st.columns([4, 1])
    left.caption(f"{count} photo(s) from earlier in this session are below.")
    if right.button("Clear photos", key="create.clear_photos"):
        photos = st.session_state[_PHOTOS]
        st.session_state[_PHOTOS], st.session_state[_REFUSED], st.session_state[_SAME] = {}, [], []
        st.session_state[_ORIGIN] = {}
        _put_aside({sha: p for sha, p in photos.items() if has_work(sha)})
        st.rerun()


def _sync() -> None:
    """Rebuild the photo list from what the uploader and the camera hold now."""
    files = list(st.session_state.get(UPLOAD_KEY) or [])
    shot = st.session_state.get(CAMERA_KEY)
    if shot is not None:
        files.append(shot)
    cache = st.session_state.setdefault(_DECODED, {})
    origin = st.session_state.get(_ORIGIN, {})
    earlier = st.session_state.get(_PHOTOS, {})
    photos = {sha: p for sha, p in earlier.items() if origin.get(sha) is None}  # not from the uploader: stay
    new_origin: dict[str, str | None] = dict.fromkeys(photos)
    refused, same, total = [], [], 0
    for f in files:
        total += f.size
        if len(photos) >= MAX_PHOTOS or total > MAX_SESSION_MB * 1024 * 1024:
            refused.append((f.file_id, f.name, _over_limit(len(photos))))
            continue
        decoded = cache.get(f.file_id) or _decode(f)
        cache[f.file_id] = decoded
        if isinstance(decoded, PhotoError):
            refused.append((f.file_id, f.name, decoded.message))
        elif decoded.sha256 in photos and new_origin.get(decoded.sha256) is not None:  # twice in the uploader
            same.append((f.file_id, f.name, photos[decoded.sha256].name))  # captioned once, and said so
        else:
            photos.setdefault(decoded.sha256, decoded)
            new_origin[decoded.sha256] = f.file_id
    for stale in set(cache) - {f.file_id for f in files}:
        del cache[stale]
    gone = {sha: p for sha, p in earlier.items() if sha not in photos and has_work(sha)}
    st.session_state[_PHOTOS], st.session_state[_REFUSED], st.session_state[_SAME] = photos, refused, same
    st.session_state[_ORIGIN] = new_origin
    _put_aside(gone)  # and a photo uploaded again is no longer aside


def _over_limit(count: int) -> str:
    return (f"Not used: one session works on at most {MAX_PHOTOS} photos and {MAX_SESSION_MB} MB of files at "
            f"once ({count} photo(s) are in use). Remove some photos, or caption these in another round.")


def _decode(uploaded) -> Photo | PhotoError:
    """The upload decoded with its pixels cut to 1080 px: a 12-MP photo held per session would cost
    36 MB, this costs under 3.5 MB, and neither the saved copy (1080 px) nor the captions (224 px) need more."""
    try:
        return load_photo(uploaded.getvalue(), uploaded.name, max_side=KEEP_SIDE)
    except PhotoError as err:
        return err


@contextmanager
def photo_row(image, photo) -> Iterator[tuple]:
    """A bordered block: the photo with its name and size in a narrow left column; yields (left, right)
    so the caller adds the photo's controls on the left and its captions on the right."""
    with st.container(border=True):
        left, right = st.columns([1, 3])
        with left:
            st.image(image, caption=f"{plain(photo.name)} · {photo.width}×{photo.height}")
        yield left, right
