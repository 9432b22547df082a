"""The files of a folder a person names (photos to caption or to study, a dataset's CSVs), found one way:
hidden files and folders, whose names start with '.', are left out, as a file manager leaves them out.

A folder copied from a Mac holds an AppleDouble ``._IMG_0001.JPG`` beside each ``IMG_0001.JPG`` (macOS
writes one for every file it puts on a disk that is not its own): a name with a photo's extension that is
no photo, reported as "not an image". A file named on its own is read, hidden or not.
"""

from __future__ import annotations

from pathlib import Path


def visible_files(folder: Path, pattern: str = "*") -> list[Path]:
    """The files in ``folder`` that match ``pattern`` (a glob; ``"**/*"`` searches every sub-folder), sorted,
    without hidden ones: those whose name, or the name of a folder between them and ``folder``, starts with '.'."""
    folder = Path(folder)
    return sorted(f for f in folder.glob(pattern)
                  if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts))
