"""Photos in: bytes from an upload or a file → an upright RGB image, or a PhotoError a person can read.

``load_photo`` is the one door every photo goes through (the dashboard's uploader and the CLI's folder
walk). It refuses what it cannot or should not decode (empty, oversized, decompression bombs, damaged
files, non-images) with a PhotoError whose ``message`` says what happened and what to do, and it never
lets any other exception out. What comes back is fully decoded, turned upright by its EXIF orientation
and converted to 8-bit RGB, so the models and the storage code never think about modes or rotations.

Memory: with ``max_side`` (the app and the CLI pass WORKING_SIDE, 1080: the stored copy's side; the
models see 224 px) the photo is made small in its own mode before anything converts it. JPEGs decode at
1/2, 1/4 or 1/8 scale (``draft``); other formats decode whole, then are box-reduced in their own mode
(16-bit greys by a banded NumPy pass straight to 8 bits), and only the small image is turned upright
and converted. One photo's peak is then the decoded image at its own depth (at most 4 bytes a pixel ×
MAX_PIXELS = 200 MB; a 16-bit 7000×7000 PNG is 98 MB) plus small copies; palette and 1-bit images
are first widened to 8-bit RGB(A) (at most 4 bytes a pixel more). DECODE_SLOTS decodes run at once in
the process, so several sessions uploading together stay within DECODE_SLOTS × that bound.

``python -c "from igcap.images import benchmark_load; benchmark_load()"`` times a synthetic 12-megapixel
phone photo through load_photo and the storage copies; ``python -m igcap.images`` (benchmark_memory)
prints the peak memory of one large upload per mode.
"""

from __future__ import annotations

import hashlib
import io
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_MB = 20  # Streamlit's server.maxUploadSize counts megabytes of 1024 * 1024 bytes
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 48-MP phone sensor fits; 50 MP of RGB is already 150 MB of memory
WORKING_SIDE = 1080  # the longest side the app and the CLI keep: the stored copy is 1080 px, the models see 224
DECODE_SLOTS = 2  # full decodes at once in this process (each can hold up to 200 MB, see above)
_decode_slots = threading.BoundedSemaphore(DECODE_SLOTS)

# Pillow format names we decode. MPO is a JPEG with extra frames (stereo / depth cameras).
SUPPORTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF")
SUPPORTED_LABEL = "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF"
# File names the CLI's folder walk takes as photos: every extension Pillow (and the HEIF opener) registers
# for a format above, HEIF image sequences (.heics, .heifs) left out; a test checks the two agree.
# .jfif is Chrome-on-Windows' JPEG, .jpe an old one, .hif Canon's HEIF.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".png", ".apng", ".webp", ".gif", ".bmp",
                              ".tif", ".tiff", ".heic", ".heif", ".hif"})

# Leading bytes of the supported formats: a file that starts like one of them but fails to decode is
# a damaged photo, not "not an image", and deserves a message that says so.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
_FORMAT_LABELS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF", "BMP": "BMP",
                  "TIFF": "TIFF", "HEIF": "HEIC"}
_TRUNCATION_HINTS = ("truncated", "end of file", "eof", "unexpected end", "not enough data", "too short",
                     "premature", "buffer is not large enough")


class PhotoError(ValueError):
    """A photo we will not use. ``message`` is for a person; ``code`` for the program
    (empty, too_large, too_many_pixels, truncated, corrupt, not_an_image, pdf, unsupported, missing,
    unreadable_file, not_bytes; "unreadable" when none fits)."""

    def __init__(self, message: str, code: str = "unreadable", name: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.name = name


@dataclass(frozen=True)
class Photo:
    """A decoded photo: ``image`` is upright 8-bit RGB and fully loaded; ``sha256`` hashes the original
    bytes, so the same upload gives the same hash (de-duplication)."""

    image: Image.Image = field(repr=False, compare=False)
    sha256: str
    name: str
    width: int
    height: int
    format: str  # Pillow's name for the file's format: "JPEG", "MPO", "PNG", "HEIF", ...
    size_bytes: int


def load_photo(data: bytes, name: str = "photo", *, max_bytes: int = MAX_UPLOAD_BYTES,
               max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> Photo:
    """Decode uploaded bytes into a Photo, or raise PhotoError (and nothing else).

    ``max_side``: the image comes back with its longest side at most this (never enlarged), reduced
    before any conversion so memory stays bounded (module docstring); ``width``/``height`` still
    describe the photo as taken, upright. None keeps every pixel.
    ``max_pixels`` above Pillow's own refusal level (about 179 MP) has no effect beyond it, and images
    between Pillow's warning level (89 MP) and that one make Pillow warn before we check them."""
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    try:
        data = _as_bytes(data)
        _check_size(len(data), max_bytes)
        with _decode_slots:
            image, fmt, (width, height) = _decode(data, max_pixels, max_side)
            if width * height >= _TRIM_PIXELS:
                _give_memory_back()
        return Photo(image=image, sha256=hashlib.sha256(data).hexdigest(), name=name, width=width,
                     height=height, format=fmt, size_bytes=len(data))
    except PhotoError as error:
        error.name = name
        raise
    except MemoryError:
        raise PhotoError("This photo is too big to decode with the memory available here. "
                         "Try a smaller copy of it.", "too_many_pixels", name) from None
    except Exception as error:  # a decoder bug must not reach the person as a stack trace
        raise PhotoError("This file could not be decoded as an image. Try saving it again as JPEG or PNG.",
                         "corrupt", name) from error  # the cause stays chained for the logs


def load_photo_file(path: str | Path, *, max_bytes: int = MAX_UPLOAD_BYTES,
                    max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> Photo:
    """``load_photo`` for a file on disk; the Photo's name is the file name."""
    path = Path(path)
    try:
        _check_file(path, max_bytes)
        data = path.read_bytes()
    except PhotoError as error:
        error.name = path.name
        raise
    except OSError as error:
        raise PhotoError(f"{path} could not be read ({error.strerror or error}).", "unreadable_file",
                         path.name) from None
    return load_photo(data, path.name, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side)


def _check_file(path: Path, max_bytes: int) -> None:
    """Refuse before reading, so a huge file never lands in memory and a pipe never blocks us."""
    if not path.exists():
        raise PhotoError(f"There is no file at {path}.", "missing")
    if path.is_dir():
        raise PhotoError(f"{path} is a folder, not a photo.", "unreadable_file")
    if not path.is_file():
        raise PhotoError(f"{path} is not a regular file.", "unreadable_file")
    _check_size(path.stat().st_size, max_bytes)


# ---------------------------------------------------------------- checks before decoding

def _as_bytes(data) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    if not isinstance(data, bytes):
        raise PhotoError(f"Expected the photo's bytes, got {type(data).__name__}.", "not_bytes")
    return data


def _check_size(size: int, max_bytes: int) -> None:
    if size == 0:
        raise PhotoError("This file is empty (0 bytes). Try uploading it again.", "empty")
    if size > max_bytes:
        raise PhotoError(f"This file is {_megabytes(size)}; photos can be at most {_megabytes(max_bytes)}. "
                         "Try a smaller or more compressed copy.", "too_large")


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise PhotoError(f"This image is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels); "
                         f"the limit is {max_pixels / 1e6:.0f} megapixels. Try a smaller copy.",
                         "too_many_pixels")


def _megabytes(size: int) -> str:
    from igcap.units import mib

    return mib(size)


# ---------------------------------------------------------------- decoding

def _decode(data: bytes, max_pixels: int, max_side: int | None) -> tuple[Image.Image, str, tuple[int, int]]:
    """Open (header only), check the pixel count, decode the first frame (smaller when it can), reduce it
    in its own mode, turn upright, make RGB. Returns (image, format, upright size as taken)."""
    with _open(data) as opened:
        _check_pixels(opened.width, opened.height, max_pixels)
        fmt, size = opened.format or "?", opened.size
        if max_side is None:
            _load(opened, fmt, data)
            return to_rgb(_upright(opened)), fmt, size_upright(opened.size, _orientation(opened))
        if fmt in ("JPEG", "MPO"):
            opened.draft(None, (max_side, max_side))  # decode at 1/2..1/8 scale, still at least max_side
        _load(opened, fmt, data)
        # After loading: Pillow turns a TIFF upright as it loads (its size is upright from the start) and
        # drops the tag; read before, the tag would turn it a second time.
        orientation = _orientation(opened)
        small = _reduced(opened, max_side)  # a new, small image: the decoded one is freed on leaving `with`
    image = to_rgb(_transposed(small, orientation))
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image, fmt, size_upright(size, orientation)


_TRIM_PIXELS = 10_000_000


def _give_memory_back() -> None:
    """Return the freed decode buffers to the system (glibc keeps freed heap memory otherwise: after a
    large upload the server stayed 883 MiB bigger). A no-op where there is no glibc."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _load(opened: Image.Image, fmt: str, data: bytes) -> None:
    try:
        opened.load()  # GIF, WebP, TIFF, MPO and HEIF: this is the first frame
    except Image.DecompressionBombError:
        raise _bomb_error() from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        raise _damaged(fmt, error, data) from None


def size_upright(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1 when absent or unreadable; HEIF's is already applied by libheif)."""
    try:
        value = image.getexif().get(0x0112, 1)
        return value if value in _TRANSPOSE else 1
    except Exception:  # unreadable EXIF: the pixels are still good, show them as stored
        return 1


def _transposed(image: Image.Image, orientation: int) -> Image.Image:
    return image.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else image


# Modes whose pixels cannot be box-averaged as they are: palette indices, 1-bit.
_WIDEN = {"P": "RGB", "PA": "RGBA", "1": "L"}
# Modes that may carry a transparent colour key (PNG's tRNS): widened to alpha before averaging, or the key
# would be lost (Image.new keeps no info) and averaged edges would not match it.
_KEYED = {"P": "RGBA", "L": "LA", "RGB": "RGBA", "1": "LA"}


def _reduced(image: Image.Image, max_side: int, band_rows: int = 256) -> Image.Image:
    """A new image in (nearly) the same mode, its longest side between max_side and 2 × max_side.

    A band of rows at a time: Pillow's reduce() of an RGBA or LA image first makes a premultiplied copy
    of the whole image (twice the memory), and palette or 1-bit images must be widened before averaging."""
    # A box average: a fine reduction, Lanczos does the rest; never more than the short side (a 5000 × 1
    # strip would reduce to nothing).
    factor = max(1, min(max(image.size) // max_side, min(image.size)))
    if image.mode.startswith("I;16") and "transparency" in image.info:
        image = _over_white(image)  # a 16-bit grey with a transparent key: rare; lay it over white first
    if image.mode.startswith("I;16"):
        return _grey16_reduced(image, factor, band_rows)
    wide = _KEYED.get(image.mode) if "transparency" in image.info else _WIDEN.get(image.mode)
    if factor == 1:
        return image.convert(wide) if wide else image.copy()
    width, height = image.size[0] // factor, image.size[1] // factor
    out = Image.new(wide or image.mode, (width, height))
    rows = max(1, band_rows // factor) * factor
    for top in range(0, height * factor, rows):
        band = image.crop((0, top, width * factor, min(top + rows, height * factor)))
        out.paste((band.convert(wide) if wide else band).reduce(factor), (0, top // factor))
    return out


def _grey16_reduced(image: Image.Image, factor: int, band_rows: int = 256) -> Image.Image:
    """16-bit grey → 8-bit grey, box-averaged by ``factor``, a band of rows at a time (Pillow cannot
    reduce 16-bit modes, and converting the whole image to float first cost 1.3 GB at 7000×7000)."""
    import numpy as np

    width, height = image.size
    out_w, out_h = max(1, width // factor), max(1, height // factor)
    rows = max(1, band_rows // factor) * factor
    out = np.empty((out_h, out_w), dtype=np.uint8)
    for top in range(0, out_h * factor, rows):
        bottom = min(top + rows, out_h * factor)
        band = np.asarray(image.crop((0, top, out_w * factor, bottom)), dtype=np.float32)
        means = band.reshape((bottom - top) // factor, factor, out_w, factor).mean(axis=(1, 3))
        out[top // factor:bottom // factor] = np.clip(np.rint(means * (255.0 / 65535.0)), 0, 255)
    return Image.fromarray(out, "L")


def _open(data: bytes) -> Image.Image:
    _register_heif()
    try:
        return Image.open(io.BytesIO(data), formats=_openable_formats())
    except Image.DecompressionBombError:
        raise _bomb_error() from None
    except UnidentifiedImageError:
        raise _unidentified(data) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        raise _damaged(_sniff(data) or "image", error, data) from None


def _openable_formats() -> list[str]:
    # Restricting Image.open to these keeps exotic decoders (EPS runs Ghostscript) away from uploads.
    Image.init()
    return [f for f in SUPPORTED_FORMATS if f in Image.OPEN]


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phones store portrait photos sideways and set this tag).

    HEIF needs nothing here: libheif applies the container's rotation and pillow-heif resets the tag."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # unreadable EXIF: the pixels are still good, show them as stored
        return image.copy()


# ---------------------------------------------------------------- any mode → 8-bit RGB

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode: alpha over white, 16/32-bit and float scaled, Lab via colour
    management. Colour profiles are otherwise ignored, as the models saw them in training."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _ALPHA_MODES or "transparency" in image.info:
        return _over_white(image)
    if mode.startswith("I;16"):
        return _scaled_to_8bit(image, 65535.0)
    if mode in ("I", "F"):
        return _scaled_to_8bit(image, None)
    if mode == "LAB":
        return _lab_to_rgb(image)
    return image.convert("RGB")


def _over_white(image: Image.Image) -> Image.Image:
    if image.mode == "La":  # premultiplied grey: Pillow converts it only to LA
        image = image.convert("LA")
    if image.mode.startswith("I;16"):  # Pillow's RGBA conversion clips 16-bit grey at 255: scale it first
        import numpy as np

        key = image.info.get("transparency")
        grey = _scaled_to_8bit(image, 65535.0).convert("L")
        opaque = np.asarray(image) != key if key is not None else np.ones(image.size[::-1], dtype=bool)
        image = Image.merge("LA", (grey, Image.fromarray(np.where(opaque, 255, 0).astype(np.uint8), "L")))
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _scaled_to_8bit(image: Image.Image, full_scale: float | None) -> Image.Image:
    """Pillow's own conversion clips 16-bit values at 255 (a white picture); scale instead.

    ``full_scale`` None (modes I and F, whose depth the file does not tell): 0..1 and 0..255 are taken
    as they are, 0..65535 as 16-bit, anything else is stretched from its minimum to its maximum."""
    import numpy as np

    values = np.asarray(image, dtype=np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if full_scale is None:
        full_scale = next((s for s in (1.0, 255.0, 65535.0) if low >= 0 and high <= s), None)
    if full_scale is None:
        values, full_scale = values - low, max(high - low, 1e-12)
    grey = np.clip(np.rint(values * (255.0 / full_scale)), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def _lab_to_rgb(image: Image.Image) -> Image.Image:
    from PIL import ImageCms

    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"),
                                        "LAB", "RGB")
    return ImageCms.applyTransform(image, transform)


# ---------------------------------------------------------------- errors a person can read

def _sniff(data: bytes) -> str | None:
    """The supported format ``data`` starts like, if any."""
    for signature, fmt in _SIGNATURES:
        if data.startswith(signature) or (len(data) >= 4 and signature.startswith(data)):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def _unidentified(data: bytes) -> PhotoError:
    fmt = _sniff(data)
    if fmt == "HEIF" and not _register_heif():
        return PhotoError("HEIC/HEIF photos need the pi-heif package, which is not installed here. "
                          "Convert the photo to JPEG, or install pi-heif.", "unsupported")
    if fmt:
        return _damaged(fmt, None, data)
    if data.lstrip()[:5] == b"%PDF-":
        return PhotoError("This is a PDF document, not a photo. Export the page as a JPEG or PNG first.",
                          "pdf")
    other = _other_format(data)
    if other:
        article = "an" if other[:1] in "AEIOU" else "a"
        return PhotoError(f"This is {article} {other} image, which we do not read (supported: {SUPPORTED_LABEL}). "
                          "Convert it to JPEG or PNG first.", "unsupported")
    return PhotoError(f"This file is not an image we can read (supported: {SUPPORTED_LABEL}).",
                      "not_an_image")


def _other_format(data: bytes) -> str | None:
    """Name an image format Pillow recognises but we do not accept (ICO, PSD, AVIF, ...), header only."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format
    except Exception:
        return None


def _damaged(fmt: str, error: BaseException | None, data: bytes) -> PhotoError:
    label = _FORMAT_LABELS.get(fmt, fmt)
    text = str(error).lower() if error is not None else ""
    if isinstance(error, EOFError) or any(hint in text for hint in _TRUNCATION_HINTS) or _cut_off(fmt, data):
        return PhotoError(f"This {label} file is incomplete: it ends before the picture does (perhaps "
                          "the upload or copy was cut off). Try the original file again.", "truncated")
    return PhotoError(f"This {label} file is damaged and cannot be decoded. Try exporting or saving it "
                      "again.", "corrupt")


def _cut_off(fmt: str, data: bytes) -> bool:
    """Whether the file visibly lacks its end (decoders often report that only as a generic error)."""
    if fmt in ("JPEG", "MPO"):
        return not data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if fmt == "PNG":
        return b"IEND" not in data[-16:]
    if fmt == "GIF":
        return not data.rstrip(b"\x00").endswith(b";")
    if fmt in ("WEBP", "BMP") and len(data) >= 8:
        # both headers declare the file's length: RIFF's counts from byte 8, BMP's from byte 0
        offset, header = (4, 8) if fmt == "WEBP" else (2, 0)
        return len(data) < struct.unpack_from("<I", data, offset)[0] + header
    if fmt == "HEIF":
        return _boxes_cut_off(data)
    return False


def _boxes_cut_off(data: bytes) -> bool:
    """Whether the last top-level ISO-BMFF box (HEIF's container) ends past the end of ``data``."""
    at = 0
    while at + 8 <= len(data):
        size = struct.unpack_from(">I", data, at)[0]
        if size == 1 and at + 16 <= len(data):  # a 64-bit size follows the type
            size = struct.unpack_from(">Q", data, at + 8)[0]
        if size < 8:  # 0 means "to the end of the file"; anything else is not a box we can follow
            return False
        at += size
    return at != len(data)


def _bomb_error() -> PhotoError:
    # Pillow's own guard (twice Image.MAX_IMAGE_PIXELS, left as Pillow ships it) fired before ours could.
    return PhotoError("This image claims far too many pixels to decode safely (a possible decompression "
                      "bomb). Try a smaller copy.", "too_many_pixels")


# ---------------------------------------------------------------- HEIC / HEIF

_heif_lock = threading.Lock()
_heif_state: list[bool] = []  # empty until the first attempt, then [available]


def _register_heif() -> bool:
    """Register a HEIF opener once, on first use (it is a global Pillow registration): pi-heif, the
    decode-only build whose binary wheels bundle only LGPL libraries (libheif, libde265); pillow-heif, the
    same API with an encoder, where pi-heif is not installed (its binary wheels are GPLv2 through x265)."""
    if _heif_state:
        return _heif_state[0]
    with _heif_lock:
        if not _heif_state:
            try:
                from pi_heif import register_heif_opener
            except ImportError:
                try:
                    from pillow_heif import register_heif_opener
                except ImportError:
                    register_heif_opener = None
            if register_heif_opener is not None:
                register_heif_opener()
            _heif_state.append(register_heif_opener is not None)
    return _heif_state[0]


def heif_available() -> bool:
    """Whether HEIC/HEIF photos can be decoded here."""
    return _register_heif()


# ---------------------------------------------------------------- copies for storage

def resized_jpeg(image: Image.Image, max_side: int = 1080, quality: int = 90) -> bytes:
    """JPEG bytes of ``image`` with its longest side at most ``max_side`` (1080 is Instagram's width).
    Never upscales."""
    if max_side < 1 or not 1 <= quality <= 100:
        raise ValueError(f"max_side must be ≥ 1 and quality 1..100, got {max_side} and {quality}")
    image = to_rgb(image)
    scale = max_side / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        # reducing_gap: on big reductions (48-MP photos) a cheap box reduction comes first, then Lanczos
        # over at least 3× the target size: as sharp, faster
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def thumbnail_jpeg(image: Image.Image, side: int = 320) -> bytes:
    """A small JPEG for galleries: the whole photo fitted inside ``side``×``side`` (no crop)."""
    return resized_jpeg(image, max_side=side, quality=85)


# ---------------------------------------------------------------- benchmark

def benchmark_load(repeats: int = 5) -> None:
    """Print how long a synthetic 12-MP phone JPEG (4032×3024) takes through load_photo and the copies."""
    import time

    sideways, upright = _synthetic_phone_jpeg(orientation=6), _synthetic_phone_jpeg(orientation=None)
    loaded = load_photo(sideways).image
    print(f"12-MP JPEG (4032×3024, quality 90): {len(sideways) / 1e6:.1f} MB")
    timings = {
        "load_photo, stored sideways (EXIF 6)": lambda: load_photo(sideways),
        "load_photo, stored upright": lambda: load_photo(upright),
        "  of which: Image.open + load": lambda: Image.open(io.BytesIO(upright)).load(),
        "  with draft to >= 1080 (not used)": lambda: _draft_decode(upright, 1080),
        "resized_jpeg 1080": lambda: resized_jpeg(loaded),
        "thumbnail_jpeg 320": lambda: thumbnail_jpeg(loaded),
    }
    for label, run in timings.items():
        best = min(_seconds(run, time.perf_counter) for _ in range(repeats))
        print(f"{label:40s} {best * 1000:7.0f} ms (best of {repeats})")


def _seconds(run, clock) -> float:
    start = clock()
    run()
    return clock() - start


def _draft_decode(data: bytes, side: int) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (side, side))
    image.load()
    return image


def _synthetic_phone_jpeg(size=(4032, 3024), orientation: int | None = 6) -> bytes:
    """Noise over gradients: about as hard to decode as a real photo (a flat image decodes too fast)."""
    channels = [Image.linear_gradient("L").resize(size).rotate(angle, expand=False) for angle in (0, 90, 45)]
    noise = Image.effect_noise(size, 40)
    channels = [Image.blend(c, noise, 0.35) for c in channels]
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation  # 6: stored sideways, as phones store portrait photos
    buffer = io.BytesIO()
    Image.merge("RGB", channels).save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()
