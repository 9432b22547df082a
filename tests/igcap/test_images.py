"""Photos in: every supported format decodes to upright RGB; every bad file gets a PhotoError a person can read.

The bad-image corpus is made here from good files (cut, corrupted, mislabelled), so nothing is checked in.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib

import pytest
from PIL import Image, ImageDraw

from igcap import images
from igcap.images import (IMAGE_EXTENSIONS, MAX_UPLOAD_BYTES, SUPPORTED_FORMATS, Photo, PhotoError, load_photo,
                          load_photo_file, resized_jpeg, thumbnail_jpeg, to_rgb)
from tests import builders

RED = (255, 0, 0)


def close(pixel, expected, tolerance=12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected))


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


# ---------------------------------------------------------------- every format in

FORMAT_OF_FILE = {"photo.jpg": "JPEG", "photo.png": "PNG", "photo.webp": "WEBP", "photo.gif": "GIF",
                  "photo.bmp": "BMP", "photo.tiff": "TIFF", "photo.heic": "HEIF", "photo.mpo": "MPO"}


@pytest.fixture(scope="module")
def samples() -> dict[str, bytes]:
    return builders.sample_photos(size=(64, 48), colour="red")


@pytest.mark.parametrize("file_name", FORMAT_OF_FILE)
def test_each_supported_format_decodes_to_rgb(samples, file_name):
    photo = load_photo(samples[file_name], file_name)
    assert photo.format == FORMAT_OF_FILE[file_name]
    assert photo.format in SUPPORTED_FORMATS
    assert (photo.width, photo.height) == photo.image.size == (64, 48)
    assert photo.image.mode == "RGB"
    assert close(photo.image.getpixel((32, 24)), RED)
    assert photo.name == file_name and photo.size_bytes == len(samples[file_name])


def test_every_sample_file_has_a_listed_extension(samples):
    assert {"." + name.rsplit(".", 1)[1] for name in samples} <= IMAGE_EXTENSIONS
    assert {".jpeg", ".tif", ".heif"} <= IMAGE_EXTENSIONS


def test_photo_is_fully_loaded_and_independent_of_the_bytes(samples):
    data = bytearray(samples["photo.png"])
    photo = load_photo(data)
    data[:] = b"\x00" * len(data)
    assert close(photo.image.getpixel((0, 0)), RED)


def test_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (30, 20), c) for c in ("red", "blue", "green")]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert close(load_photo(data).image.getpixel((5, 5)), RED, 0)


def test_mpo_with_two_frames_uses_the_first():
    data = builders.mpo_bytes(("red", "blue"))
    assert Image.open(io.BytesIO(data)).n_frames == 2
    photo = load_photo(data)
    assert photo.format == "MPO"
    assert close(photo.image.getpixel((10, 10)), RED)


def test_animated_webp_uses_the_first_frame():
    frames = [Image.new("RGB", (30, 20), c) for c in ("red", "blue")]
    data = encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert close(load_photo(data).image.getpixel((5, 5)), RED, 0)


# ---------------------------------------------------------------- upright

def test_sideways_phone_jpeg_comes_out_upright():
    photo = load_photo(builders.upright_test_photo(orientation=6, size=(80, 40)))
    assert (photo.width, photo.height) == (40, 80)
    assert close(photo.image.getpixel((20, 10)), RED)  # red on top
    assert close(photo.image.getpixel((20, 70)), (0, 0, 255))  # blue below


QUADRANTS = {"top-left": "red", "top-right": "lime", "bottom-left": "blue", "bottom-right": "yellow"}


def quadrant_picture(size=(60, 40)) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    boxes = {"top-left": (0, 0, w // 2 - 1, h // 2 - 1), "top-right": (w // 2, 0, w, h // 2 - 1),
             "bottom-left": (0, h // 2, w // 2 - 1, h), "bottom-right": (w // 2, h // 2, w, h)}
    for where, box in boxes.items():
        draw.rectangle(box, fill=QUADRANTS[where])
    return img


# How a camera stores an upright picture for each EXIF orientation (TIFF/EXIF spec, tag 274): the
# viewer must undo this. Written from the spec, not from Pillow's exif_transpose table.
T = Image.Transpose
STORED_AS = {1: [], 2: [T.FLIP_LEFT_RIGHT], 3: [T.ROTATE_180], 4: [T.FLIP_TOP_BOTTOM],
             5: [T.TRANSPOSE], 6: [T.ROTATE_90], 7: [T.TRANSVERSE], 8: [T.ROTATE_270]}


def assert_quadrants(image: Image.Image, tolerance=40):
    w, h = image.size
    centres = {"top-left": (w // 4, h // 4), "top-right": (3 * w // 4, h // 4),
               "bottom-left": (w // 4, 3 * h // 4), "bottom-right": (3 * w // 4, 3 * h // 4)}
    expected = {where: Image.new("RGB", (1, 1), colour).getpixel((0, 0)) for where, colour in QUADRANTS.items()}
    seen = {where: image.getpixel(xy) for where, xy in centres.items()}
    assert all(close(seen[k], expected[k], tolerance) for k in QUADRANTS), seen


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("max_side", [None, 1080])  # 1080: how the app and the CLI load a photo
def test_all_eight_exif_orientations_come_out_upright(fmt, orientation, max_side):
    upright = quadrant_picture((60, 40))
    stored = upright
    for step in STORED_AS[orientation]:
        stored = stored.transpose(step)
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = load_photo(encoded(stored, fmt, exif=exif, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {})),
                       max_side=max_side)
    assert photo.image.size == (60, 40) and (photo.width, photo.height) == (60, 40)
    assert_quadrants(photo.image)


def test_sideways_mpo_comes_out_upright():
    photo = load_photo(builders.mpo_bytes(("red", "blue"), size=(80, 40), orientation=6))
    assert (photo.format, photo.width, photo.height) == ("MPO", 40, 80)


def test_iphone_style_heic_is_turned_once_not_twice():
    # iPhones write both a rotation box and EXIF orientation 6; applying both would leave it sideways.
    stored = Image.new("RGB", (80, 40), "blue")
    ImageDraw.Draw(stored).rectangle([0, 0, 39, 40], fill="red")
    photo = load_photo(builders.heic_bytes(image=stored, orientation=6))
    assert (photo.format, photo.width, photo.height) == ("HEIF", 40, 80)
    assert close(photo.image.getpixel((20, 10)), RED, 30)
    assert close(photo.image.getpixel((20, 70)), (0, 0, 255), 30)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_keeps_the_photo_as_stored():
    data = encoded(Image.new("RGB", (30, 20), "red"), "JPEG", exif=b"Exif\x00\x00MM\x00*garbage")
    photo = load_photo(data)
    assert (photo.width, photo.height) == (30, 20)


# ---------------------------------------------------------------- any mode → RGB

def in_memory(mode, size=(8, 8), colour=None, **info):
    img = Image.new(mode, size, colour)
    img.info.update(info)
    return img


@pytest.mark.parametrize("image, expected", [
    pytest.param(in_memory("RGBA", colour=(255, 0, 0, 128)), (255, 127, 127), id="RGBA half-transparent"),
    pytest.param(in_memory("RGBA", colour=(0, 0, 0, 0)), (255, 255, 255), id="RGBA transparent is white"),
    pytest.param(in_memory("LA", colour=(0, 0)), (255, 255, 255), id="LA"),
    pytest.param(in_memory("La", colour=(0, 0)), (255, 255, 255), id="La premultiplied"),
    pytest.param(in_memory("RGBa", colour=(0, 0, 0, 0)), (255, 255, 255), id="RGBa premultiplied"),
    pytest.param(in_memory("I;16", colour=40000), (155, 155, 155), id="I;16"),
    pytest.param(in_memory("I;16B", colour=65535), (255, 255, 255), id="I;16B"),
    pytest.param(in_memory("I", colour=32896), (128, 128, 128), id="I 16-bit range"),
    pytest.param(in_memory("I", colour=200), (200, 200, 200), id="I 8-bit range"),
    pytest.param(in_memory("F", colour=0.5), (128, 128, 128), id="F 0..1"),
    pytest.param(in_memory("F", colour=-3.0), (0, 0, 0), id="F out of range"),
    pytest.param(in_memory("CMYK", colour=(0, 255, 255, 0)), (255, 0, 0), id="CMYK"),
    pytest.param(in_memory("L", colour=77), (77, 77, 77), id="L"),
    pytest.param(in_memory("1", colour=1), (255, 255, 255), id="1-bit"),
    pytest.param(in_memory("YCbCr", colour=(76, 85, 255)), (254, 0, 0), id="YCbCr"),
    pytest.param(in_memory("LAB", colour=(255, 128, 128)), (255, 255, 255), id="LAB white"),
])
def test_any_mode_becomes_8bit_rgb(image, expected):
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == image.size
    assert close(rgb.getpixel((0, 0)), expected, 3), rgb.getpixel((0, 0))


def test_float_image_with_a_wide_range_is_stretched():
    img = Image.new("F", (2, 1))
    img.putpixel((0, 0), -1000.0)
    img.putpixel((1, 0), 5000.0)
    rgb = to_rgb(img)
    assert rgb.getpixel((0, 0)) == (0, 0, 0) and rgb.getpixel((1, 0)) == (255, 255, 255)


def palette_with_transparency(fmt: str) -> bytes:
    img = Image.new("P", (10, 10), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((0, 0), 0)
    return encoded(img, fmt, transparency=0)


@pytest.mark.parametrize("data, at, expected", [
    pytest.param(encoded(Image.new("I;16", (8, 8), 40000), "PNG"), (0, 0), (155, 155, 155), id="16-bit PNG"),
    pytest.param(encoded(Image.new("I;16", (8, 8), 40000), "TIFF"), (0, 0), (155, 155, 155), id="16-bit TIFF"),
    pytest.param(encoded(Image.new("F", (8, 8), 0.25), "TIFF"), (0, 0), (64, 64, 64), id="float TIFF"),
    pytest.param(encoded(Image.new("LA", (8, 8), (0, 0)), "PNG"), (0, 0), (255, 255, 255), id="LA PNG"),
    pytest.param(encoded(Image.new("RGBA", (8, 8), (0, 0, 255, 0)), "WEBP", lossless=True), (0, 0),
                 (255, 255, 255), id="RGBA WebP"),
    pytest.param(palette_with_transparency("PNG"), (0, 0), (255, 255, 255), id="P+transparency PNG"),
    pytest.param(palette_with_transparency("PNG"), (5, 5), RED, id="P PNG opaque pixel"),
    pytest.param(palette_with_transparency("GIF"), (0, 0), (255, 255, 255), id="P+transparency GIF"),
    pytest.param(encoded(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"), (0, 0), RED, id="CMYK JPEG"),
    pytest.param(encoded(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "TIFF"), (0, 0), RED, id="CMYK TIFF"),
    pytest.param(encoded(Image.new("1", (8, 8), 1), "BMP"), (0, 0), (255, 255, 255), id="1-bit BMP"),
    pytest.param(encoded(Image.new("L", (8, 8), 90), "PNG"), (0, 0), (90, 90, 90), id="grey PNG"),
])
def test_files_in_other_modes_load_as_rgb(data, at, expected):
    photo = load_photo(data)
    assert photo.image.mode == "RGB"
    assert close(photo.image.getpixel(at), expected, 6), photo.image.getpixel(at)


# ---------------------------------------------------------------- the bad-image corpus

def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` pixels (a decompression bomb's calling card)."""
    data = bytearray(builders.photo_bytes("PNG", size=(4, 4)))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    return bytes(data)


def refusal(data, **kwargs) -> PhotoError:
    with pytest.raises(PhotoError) as caught:
        load_photo(data, "upload.bin", **kwargs)
    error = caught.value
    assert isinstance(error, ValueError) and str(error) == error.message and error.name == "upload.bin"
    return error


def test_empty_file():
    error = refusal(b"")
    assert error.code == "empty" and "empty" in error.message


def test_file_over_the_upload_limit():
    error = refusal(b"\xff\xd8\xff" + b"\x00" * MAX_UPLOAD_BYTES)
    assert error.code == "too_large" and "20.0 MiB" in error.message


def test_size_limit_is_a_parameter(samples):
    data = samples["photo.bmp"]
    assert refusal(data, max_bytes=len(data) - 1).code == "too_large"
    assert load_photo(data, max_bytes=len(data)).size_bytes == len(data)


def test_pixel_limit_is_a_parameter(samples):
    assert refusal(samples["photo.png"], max_pixels=64 * 48 - 1).code == "too_many_pixels"
    assert load_photo(samples["photo.png"], max_pixels=64 * 48).width == 64


def test_image_over_our_pixel_limit_is_refused_before_decoding():
    error = refusal(png_claiming(8000, 8000))  # 64 MP: over our 50, under Pillow's own warning level
    assert error.code == "too_many_pixels" and "8000×8000" in error.message


def test_decompression_bomb_is_refused():
    error = refusal(png_claiming(100_000, 100_000))  # 10 gigapixels: Pillow's own check refuses it in open
    assert error.code == "too_many_pixels"
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # the global limit is left as Pillow ships it


@pytest.mark.parametrize("file_name", FORMAT_OF_FILE)
def test_truncated_file_of_each_format(samples, file_name):
    data = samples[file_name]
    error = refusal(data[:len(data) // 2])
    assert error.code == "truncated", error.message
    assert "incomplete" in error.message


@pytest.mark.parametrize("data, code, words", [
    pytest.param(b"Dear diary, today I took a photo.\n" * 20, "not_an_image", "not an image", id="text"),
    pytest.param(random.Random(1).randbytes(5000), "not_an_image", "not an image", id="random bytes"),
    pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "pdf", "PDF", id="PDF"),
    pytest.param(encoded(Image.new("RGB", (16, 16)), "ICO"), "unsupported", "an ICO image", id="ICO"),
    pytest.param(encoded(Image.new("RGB", (16, 16)), "PPM"), "unsupported", "PPM", id="PPM"),
])
def test_non_images_and_unsupported_formats(data, code, words):
    error = refusal(data)
    assert error.code == code and words in error.message


def complete_but_damaged(fmt: str) -> bytes:
    data = bytearray(builders.photo_bytes(fmt, size=(64, 48)))
    if fmt == "PNG":
        data[data.index(b"IDAT") + 6] ^= 0xFF  # the compressed pixels no longer inflate
    else:
        start = data.index(b"\xff\xda") + 14  # inside the scan: markers where pixels should be
        data[start:-2] = b"\xff\xc0" * ((len(data) - start - 2) // 2) + b"\x00" * ((len(data) - start) % 2)
    return bytes(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_damaged_but_complete_file(fmt):
    data = complete_but_damaged(fmt)
    assert data.endswith(b"\xff\xd9" if fmt == "JPEG" else b"IEND\xaeB`\x82")
    error = refusal(data)
    assert error.code == "corrupt" and "damaged" in error.message


def test_every_failure_has_its_own_message(samples):
    messages = {
        "empty": refusal(b"").message,
        "too_large": refusal(samples["photo.png"], max_bytes=10).message,
        "too_many_pixels": refusal(samples["photo.png"], max_pixels=10).message,
        "truncated": refusal(samples["photo.jpg"][:200]).message,
        "corrupt": refusal(complete_but_damaged("PNG")).message,
        "not_an_image": refusal(b"hello").message,
        "pdf": refusal(b"%PDF-1.4\n").message,
        "unsupported": refusal(encoded(Image.new("RGB", (8, 8)), "ICO")).message,
    }
    assert len(set(messages.values())) == len(messages)
    assert all(m.endswith(".") and "Traceback" not in m for m in messages.values())


def test_an_unexpected_decoder_failure_is_still_a_photo_error(samples, monkeypatch):
    def broken(image):
        raise KeyError("a bug deep inside a decoder")

    monkeypatch.setattr(images, "to_rgb", broken)
    error = refusal(samples["photo.png"])
    assert error.code == "corrupt" and "KeyError" not in error.message
    assert isinstance(error.__cause__, KeyError)  # kept for the logs


def test_non_bytes_input_is_a_photo_error():
    assert refusal("photo.jpg").code == "not_bytes"


def test_heif_support_is_available_here_and_decodes_with_pi_heif(samples):
    assert images.heif_available()
    from PIL import Image

    with Image.open(io.BytesIO(samples["photo.heic"])) as opened:  # the app's opener, not the tests' encoder
        assert type(opened).__module__.startswith("pi_heif")


def test_heic_without_a_heif_decoder_says_what_is_missing(samples, monkeypatch):
    monkeypatch.setattr(images, "_heif_state", [False])
    openable = images._openable_formats
    monkeypatch.setattr(images, "_openable_formats", lambda: [f for f in openable() if f != "HEIF"])
    error = refusal(samples["photo.heic"])
    assert error.code == "unsupported" and "pi-heif" in error.message


# ---------------------------------------------------------------- fuzz: nothing but PhotoError, ever

def mutations(data: bytes, seed: int, count: int = 24):
    rng = random.Random(seed)
    for _ in range(count // 3):  # cut anywhere
        yield data[:rng.randrange(len(data))]
    for _ in range(count // 3):  # flip a few bytes
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        yield bytes(out)
    for _ in range(count // 3):  # splice junk into the middle
        at = rng.randrange(len(data))
        yield data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at + rng.randint(0, 64):]


@pytest.mark.filterwarnings("ignore")  # corrupted metadata makes Pillow warn; warnings are fine
@pytest.mark.parametrize("file_name", FORMAT_OF_FILE)
def test_mutated_files_never_raise_anything_but_photo_error(samples, file_name):
    outcomes = {"loaded": 0, "refused": 0}
    for i, data in enumerate(mutations(samples[file_name], seed=sum(file_name.encode()))):
        try:
            photo = load_photo(data, max_pixels=2_000_000)
        except PhotoError as error:
            assert error.message and error.code, (i, error)
            outcomes["refused"] += 1
        else:
            assert photo.image.mode == "RGB" and photo.image.width > 0
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 0  # the corpus really contains broken files


# ---------------------------------------------------------------- hash

def test_hash_is_of_the_original_bytes_and_stable(samples):
    data = samples["photo.heic"]
    first, again = load_photo(data, "a.heic"), load_photo(data, "renamed.heic")
    assert first.sha256 == again.sha256 == hashlib.sha256(data).hexdigest()


def test_different_files_have_different_hashes():
    one = builders.photo_bytes("PNG", size=(16, 16), colour="red")
    other_pixel = Image.new("RGB", (16, 16), "red")
    other_pixel.putpixel((3, 3), (254, 0, 0))
    hashes = {load_photo(d).sha256 for d in (one, encoded(other_pixel, "PNG"),
                                             builders.photo_bytes("JPEG", size=(16, 16), colour="red"))}
    assert len(hashes) == 3


def test_photo_is_frozen_and_compares_by_content(samples):
    a, b = load_photo(samples["photo.png"], "x"), load_photo(samples["photo.png"], "x")
    assert a == b and hash(a) == hash(b) and "image" not in repr(a)
    with pytest.raises(AttributeError):
        a.name = "y"


# ---------------------------------------------------------------- copies for storage

def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()
    return image


@pytest.mark.parametrize("size, expected", [
    ((3000, 1500), (1080, 540)),
    ((1000, 2000), (540, 1080)),
    ((1080, 1080), (1080, 1080)),
    ((200, 100), (200, 100)),  # never upscaled
])
def test_resized_jpeg_fits_instagram_width(size, expected):
    assert decoded(resized_jpeg(Image.new("RGB", size, "red"))).size == expected


def test_thumbnail_fits_its_square():
    assert decoded(thumbnail_jpeg(Image.new("RGB", (1200, 900)))).size == (320, 240)
    assert decoded(thumbnail_jpeg(Image.new("RGB", (900, 1200)), side=100)).size == (75, 100)


def test_resized_copy_is_sharp_without_aliasing():
    # Left: 1-pixel stripes, finer than the half-size copy can show: a good filter turns them grey
    # (a nearest-pixel shortcut makes them black or white). Right: 8-pixel stripes must stay crisp.
    img = Image.new("L", (2160, 2160), 0)
    draw = ImageDraw.Draw(img)
    for x in range(0, 1080, 2):
        draw.line([x, 0, x, 2160], fill=255)
    for x in range(1080, 2160, 16):
        draw.rectangle([x, 0, x + 7, 2160], fill=255)
    small = decoded(resized_jpeg(img.convert("RGB"), quality=95)).convert("L")
    fine = [small.getpixel((x, 540)) for x in range(100, 140)]
    coarse = [small.getpixel((x, 540)) for x in range(700, 740)]
    assert all(100 <= v <= 155 for v in fine), fine
    assert max(coarse) - min(coarse) > 180, coarse


def test_resized_jpeg_of_a_transparent_image_is_on_white():
    out = decoded(resized_jpeg(Image.new("RGBA", (50, 50), (0, 0, 0, 0))))
    assert close(out.getpixel((25, 25)), (255, 255, 255), 3)


def test_resized_jpeg_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        resized_jpeg(Image.new("RGB", (4, 4)), max_side=0)
    with pytest.raises(ValueError):
        resized_jpeg(Image.new("RGB", (4, 4)), quality=101)


# ---------------------------------------------------------------- files on disk

def test_load_photo_file_names_the_photo_after_the_file(tmp_path):
    paths = builders.write_sample_photos(tmp_path / "photos")
    photos = [load_photo_file(p) for p in paths]
    assert [p.name for p in photos] == [p.name for p in paths]
    assert all(isinstance(p, Photo) for p in photos)


def test_load_photo_file_problems(tmp_path):
    with pytest.raises(PhotoError) as missing:
        load_photo_file(tmp_path / "nope.jpg")
    with pytest.raises(PhotoError) as folder:
        load_photo_file(tmp_path)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    with pytest.raises(PhotoError) as too_big:
        load_photo_file(big, max_bytes=50)
    assert (missing.value.code, folder.value.code, too_big.value.code) == ("missing", "unreadable_file", "too_large")
    assert "folder" in folder.value.message
    assert too_big.value.name == "big.jpg"


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
def test_load_photo_file_refuses_a_pipe_instead_of_waiting_on_it(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(PhotoError) as caught:
        load_photo_file(tmp_path / "pipe.jpg")
    assert caught.value.code == "unreadable_file"


# ---------------------------------------------------------------- max_side: reduced before converting (issue 12 item 1)

def _pattern(mode: str, size=(1600, 900)):
    """A left/right split (dark | light) in ``mode``, so orientation and tones can be checked after reduction."""
    import numpy as np
    from PIL import Image

    if mode.startswith("I;16"):
        values = np.full(size[::-1], 60000, dtype=np.uint16)
        values[:, : size[0] // 2] = 3000
        return Image.fromarray(values)
    light = {"1": 1, "L": 230, "P": 2, "LA": (230, 255), "RGBA": (230, 230, 230, 255), "RGB": (230, 230, 230),
             "I": 60000, "F": 0.9, "CMYK": (0, 0, 0, 25)}[mode]
    dark = {"1": 0, "L": 20, "P": 1, "LA": (20, 255), "RGBA": (20, 20, 20, 255), "RGB": (20, 20, 20),
            "I": 3000, "F": 0.1, "CMYK": (0, 0, 0, 235)}[mode]
    image = Image.new(mode, size, light)
    if mode == "P":
        image.putpalette([0, 0, 0, 20, 20, 20, 230, 230, 230] + [0] * 759)
    image.paste(dark, (0, 0, size[0] // 2, size[1]))
    return image


@pytest.mark.parametrize("mode, fmt", [("RGB", "JPEG"), ("L", "PNG"), ("I;16", "PNG"), ("RGBA", "PNG"),
                                       ("LA", "PNG"), ("P", "PNG"), ("1", "PNG"), ("I", "TIFF"), ("F", "TIFF"),
                                       ("CMYK", "JPEG")])
def test_max_side_reduces_every_mode_to_the_same_picture(mode, fmt):
    import io

    import numpy as np

    buffer = io.BytesIO()
    _pattern(mode).save(buffer, format=fmt)
    data = buffer.getvalue()
    full = load_photo(data, "big")
    small = load_photo(data, "big", max_side=400)
    assert (small.width, small.height) == (full.width, full.height) == (1600, 900)
    assert small.image.mode == "RGB" and small.image.size == (400, 225)
    expected = np.asarray(full.image.resize(small.image.size), dtype=float)
    assert np.abs(np.asarray(small.image, dtype=float) - expected).mean() < 6


def test_max_side_keeps_the_exif_orientation_and_never_enlarges():
    from tests.builders import upright_test_photo

    photo = load_photo(upright_test_photo(size=(1600, 800)), "sideways.jpg", max_side=200)
    assert (photo.width, photo.height) == (800, 1600)  # upright, as taken
    assert photo.image.size == (100, 200)
    top, bottom = photo.image.getpixel((50, 20)), photo.image.getpixel((50, 180))
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200  # red on top, as in the full decode
    small = load_photo(upright_test_photo(size=(80, 40)), "small.jpg", max_side=1080)
    assert small.image.size == (40, 80)


@pytest.mark.parametrize("max_side", [None, 1080, 200])
@pytest.mark.parametrize("mode, key", [("RGB", (0, 0, 0)), ("L", 0), ("P", 0), ("I;16", 0)])
def test_a_transparent_colour_key_is_laid_over_white_like_an_alpha_channel(mode, key, max_side):
    # PNG optimisers write a logo on transparency as RGB (or grey) + a tRNS colour key instead of RGBA; the
    # transparent background came out black (RGB always; grey when the photo was reduced).
    picture = Image.new(mode, (800, 800), 0)
    if mode == "P":
        picture.putpalette([0, 0, 0, 200, 0, 0])  # index 0 transparent, 1 red
    picture.paste({"RGB": (200, 0, 0), "I;16": 50000, "P": 1}.get(mode, 200), (200, 200, 600, 600))
    photo = load_photo(encoded(picture, "PNG", transparency=key), max_side=max_side)
    assert photo.image.getpixel((2, 2)) == (255, 255, 255)
    middle = photo.image.getpixel((photo.image.width // 2, photo.image.height // 2))
    assert middle != (255, 255, 255) and middle != (0, 0, 0)  # the opaque part stays as it was


@pytest.mark.parametrize("size", [(5000, 1), (3, 20000), (2500, 2)])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_long_thin_strip_is_reduced_not_called_damaged(size, fmt):
    photo = load_photo(encoded(Image.new("RGB", size, "red"), fmt), "strip", max_side=1080)
    assert max(photo.image.size) == 1080 and min(photo.image.size) == 1
    assert (photo.width, photo.height) == size


def test_every_extension_pillow_reads_as_a_supported_still_format_is_listed():
    """The CLI's folder walk goes by IMAGE_EXTENSIONS: Chrome on Windows saves JPEGs as .jfif, old cameras
    as .jpe, Canon cameras HEIF as .hif; those were skipped though the uploader takes them."""
    from PIL import Image

    from igcap import images

    assert images._register_heif()  # the HEIF opener registers its extensions, as decoding a HEIC does
    Image.init()
    sequences = {".heics", ".heifs"}  # HEIF image sequences: not photos
    readable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in SUPPORTED_FORMATS} - sequences
    assert {".jfif", ".jpe", ".hif"} <= readable
    assert readable <= IMAGE_EXTENSIONS


def test_a_folder_walk_finds_jfif_and_jpe_photos(tmp_path):
    from igcap.cli.caption import photo_files

    for name in ("a.jfif", "b.JPE", "c.hif", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [f.name for f in photo_files([str(tmp_path)])] == ["a.jfif", "b.JPE", "c.hif"]
