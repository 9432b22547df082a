"""Photo intake for the Create page: uploader (many files), optional camera, decoded once per file."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st
from PIL import Image

from igcap.images import MAX_UPLOAD_MB, SUPPORTED_LABEL, Photo, PhotoError, load_photo

UPLOAD_KEY = "create.upload"
CAMERA_KEY = "create.camera"
_DECODED = "create.decoded"  # file_id → Photo | PhotoError: reruns do not decode the same file again
KEEP_SIDE = 1080  # what session state keeps: the stored copy is 1080 px and the models see 224 px


def photo_inputs() -> list[Photo]:
    """Draw the inputs; return the usable photos (one per distinct content), showing why others are not."""
    files = st.file_uploader(f"Photos ({SUPPORTED_LABEL}; up to {MAX_UPLOAD_MB} MB each)",
                             accept_multiple_files=True, key=UPLOAD_KEY)
    files = list(files or [])
    if st.toggle("Use the camera", key="create.use_camera", help="Take a photo with this device's camera."):
        shot = st.camera_input("Take a photo", key=CAMERA_KEY)
        if shot is not None:
            files.append(shot)
    return _decode_all(files)


def _decode_all(files) -> list[Photo]:
    cache = st.session_state.setdefault(_DECODED, {})
    current = {f.file_id: f for f in files}
    for stale in set(cache) - set(current):
        del cache[stale]
    photos: dict[str, Photo] = {}
    for file_id, f in current.items():
        if file_id not in cache:
            cache[file_id] = _decode(f)
        decoded = cache[file_id]
        if isinstance(decoded, PhotoError):
            st.error(f"**{f.name}**: {decoded.message}", icon="🚫")
        else:
            photos.setdefault(decoded.sha256, decoded)  # the same photo twice is captioned once
    return list(photos.values())


def _decode(uploaded) -> Photo | PhotoError:
    try:
        return _lighter(load_photo(uploaded.getvalue(), uploaded.name))
    except PhotoError as err:
        return err


def _lighter(photo: Photo) -> Photo:
    """The photo with its pixels cut to 1080 px: a 12-MP upload held per session would cost 36 MB,
    this costs under 3 MB, and neither the saved copy nor the captions change."""
    if max(photo.image.size) <= KEEP_SIDE:
        return photo
    image = photo.image.copy()
    image.thumbnail((KEEP_SIDE, KEEP_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return replace(photo, image=image)  # width/height still describe the original
