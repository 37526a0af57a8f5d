"""geoapp.domain.photos on its own (no database): what is refused and how, what is decoded and how
much, how many decode at once, and that the stored JPEG carries nothing but pixels. Every image is
made here with Pillow (the HEIC header, which Pillow cannot write, is a hand-made `ftyp` box)."""
from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image, ImageCms, ImageFile, JpegImagePlugin
from PIL.PngImagePlugin import PngInfo

from geoapp.domain import photos
from geoapp.domain.errors import (BadPhoto, PhotoFormatUnsupported, PhotoTooLarge, PhotoTooManyPixels,
                                  ServerBusy)
from geoapp.domain.photos import prepare_photo

MAX_BYTES = 10 * 1024 * 1024
MAX_PX = 2048


def prepare(data: bytes, *, max_bytes: int = MAX_BYTES, max_px: int = MAX_PX) -> bytes:
    return prepare_photo(data, max_bytes=max_bytes, max_px=max_px)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def both_messages(error) -> str:
    return error.message("en") + "\n" + error.message("zh")


@pytest.fixture
def loads(monkeypatch):
    """Records every decode of pixel data: ImageFile.load is where every Pillow file format decodes
    (it is called again by later operations; those have no tiles left to decode and are not counted)."""
    calls = []
    real = ImageFile.ImageFile.load

    def spy(self):
        if self.tile:
            calls.append((self.format, self.size))
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return calls


@pytest.fixture
def decoding():
    yield photos.configure_decoding
    photos.configure_decoding()  # back to the defaults for every other test


# --- the JPEG segment walker: what markers does a stored photo carry? ---------------------------

SOI, EOI, SOS, APP0, APP1, APP2, COM = 0xD8, 0xD9, 0xDA, 0xE0, 0xE1, 0xE2, 0xFE
SOF_BASELINE, DHT, DQT, DRI = 0xC0, 0xC4, 0xDB, 0xDD
ALLOWED = {SOI, APP0, DQT, SOF_BASELINE, DHT, DRI, SOS, EOI}


def jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """[(marker, payload)] from SOI to the first EOI, and the offset just past that EOI."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    segments: list[tuple[int, bytes]] = [(SOI, b"")]
    i = 2
    while True:
        assert data[i] == 0xFF, f"expected a marker at byte {i}"
        while data[i] == 0xFF:  # fill bytes
            i += 1
        marker = data[i]
        i += 1
        if marker == EOI:
            segments.append((EOI, b""))
            return segments, i
        length = int.from_bytes(data[i:i + 2], "big")
        segments.append((marker, data[i + 2:i + length]))
        i += length
        if marker == SOS:  # entropy-coded data runs to the next marker that is not FF00 or RSTn
            while True:
                j = data.index(b"\xff", i)
                following = data[j + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    i = j + 2
                elif following == 0xFF:
                    i = j + 1
                else:
                    i = j
                    break


def markers(data: bytes) -> set[int]:
    return {marker for marker, _ in jpeg_segments(data)[0]}


def assert_only_pixels(stored: bytes) -> None:
    segments, end = jpeg_segments(stored)
    found = [marker for marker, _ in segments]
    assert set(found) <= ALLOWED, f"unexpected segments: {[hex(m) for m in found if m not in ALLOWED]}"
    assert found.count(SOF_BASELINE) == 1  # baseline, and no progressive/other SOFn (the set check)
    for marker, payload in segments:
        if marker == APP0:
            assert payload.startswith(b"JFIF\x00")
    assert end == len(stored), "bytes after EOI (an MPO's second frame?)"


# --- inputs carrying metadata -------------------------------------------------------------------

PHONE = "13812345678"


def camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"                  # Make
    exif[0x0110] = "Model-X"                     # Model
    exif[0x013B] = f"Owner {PHONE}"              # Artist
    exif[0x0112] = orientation                   # Orientation
    exif[0x8825] = {1: "N", 2: (41.0, 6.0, 57.6), 3: "E", 4: (121.0, 7.0, 12.0)}  # GPS IFD
    return exif


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="41,6.96N"/>'
       b'</rdf:RDF></x:xmpmeta>')
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def scene(size=(640, 480)) -> Image.Image:
    return Image.linear_gradient("L").resize(size).convert("RGB")


def jpeg_with(**params) -> bytes:
    return encode(scene(), "JPEG", **params)


def mpo_with_exif() -> bytes:
    first, second = scene(), scene().transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return encode(first, "MPO", save_all=True, append_images=[second], exif=camera_exif())


METADATA_INPUTS = {
    "exif_gps": (lambda: jpeg_with(exif=camera_exif()), {APP1}),
    "xmp": (lambda: jpeg_with(xmp=XMP), {APP1}),
    "icc": (lambda: jpeg_with(icc_profile=ICC), {APP2}),
    "comment_phone": (lambda: jpeg_with(comment=f"call {PHONE}"), {COM}),
    "everything": (lambda: jpeg_with(exif=camera_exif(), xmp=XMP, icc_profile=ICC, comment=f"call {PHONE}"),
                   {APP1, APP2, COM}),
    "mpo": (mpo_with_exif, {APP1, APP2}),
}


@pytest.mark.parametrize("name", METADATA_INPUTS)
def test_the_stored_jpeg_has_only_jfif_tables_and_pixels(name):
    build, carried = METADATA_INPUTS[name]
    data = build()
    assert carried <= markers(data), "the input does not carry the metadata this test is about"
    if name == "mpo":
        assert Image.open(io.BytesIO(data)).format == "MPO"
    stored = prepare(data)
    assert_only_pixels(stored)
    for secret in (PHONE.encode(), b"PhoneMaker", b"Exif\x00", b"http://ns.adobe.com/xap", b"ICC_PROFILE", b"MPF"):
        assert secret not in stored


def test_png_and_webp_metadata_does_not_reach_the_stored_jpeg():
    text = PngInfo()
    text.add_text("Comment", f"call {PHONE}")
    png = encode(scene().convert("RGBA"), "PNG", pnginfo=text, icc_profile=ICC, exif=camera_exif())
    webp = encode(scene(), "WEBP", icc_profile=ICC, exif=camera_exif(), xmp=XMP)
    for data in (png, webp):
        assert PHONE.encode() in data or b"PhoneMaker" in data
        stored = prepare(data)
        assert_only_pixels(stored)
        assert PHONE.encode() not in stored and b"PhoneMaker" not in stored


def test_output_is_an_rgb_jpeg_at_quality_85_scaled_to_max_px():
    stored = prepare(encode(Image.new("L", (3000, 1000), 90), "JPEG"), max_px=1200)
    reference = encode(Image.new("RGB", (8, 8)), "JPEG", quality=85)
    with Image.open(io.BytesIO(stored)) as out, Image.open(io.BytesIO(reference)) as ref:
        assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (1200, 400))
        assert out.quantization == ref.quantization  # the tables Pillow writes for quality 85


# --- orientation and reduced-scale JPEG decoding -------------------------------------------------

def halves(size, left=(255, 0, 0), right=(0, 0, 255)) -> Image.Image:
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def test_orientation_6_is_turned_upright():
    data = encode(halves((400, 200)), "JPEG", exif=camera_exif(orientation=6))
    with Image.open(io.BytesIO(prepare(data))) as out:
        assert out.size == (200, 400)
        # Orientation 6: rotate 90° clockwise to display, so the stored left (red) half is on top.
        top, bottom = out.getpixel((100, 20)), out.getpixel((100, 380))
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_a_large_jpeg_is_decoded_at_reduced_scale(monkeypatch, loads):
    drafts, before_thumbnail = [], []
    real_draft, real_thumbnail = JpegImagePlugin.JpegImageFile.draft, Image.Image.thumbnail

    def draft(self, mode, size):
        drafts.append((mode, size))
        return real_draft(self, mode, size)

    def thumbnail(self, size, *args, **kwargs):
        before_thumbnail.append(self.size)
        return real_thumbnail(self, size, *args, **kwargs)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)
    monkeypatch.setattr(Image.Image, "thumbnail", thumbnail)
    data = encode(halves((6000, 4000)), "JPEG", exif=camera_exif(orientation=6))
    with Image.open(io.BytesIO(prepare(data))) as out:
        assert out.size == (1365, 2048)
    assert drafts[0] == ("RGB", (2048, 1366))  # (thumbnail asks again later: a no-op once loaded)
    assert loads == [("JPEG", (3000, 2000))]        # libjpeg decoded at 1/2 scale: 18 MB, not 72 MB
    assert before_thumbnail == [(2000, 3000)]        # and turned upright before scaling


def test_a_50_megapixel_phone_photo_is_accepted(loads):
    data = encode(Image.new("L", (8160, 6120), 128), "JPEG")
    with Image.open(io.BytesIO(prepare(data))) as out:
        assert out.size == (2048, 1536)
    assert loads == [("JPEG", (4080, 3060))]


# --- pixel caps: refused from the header, before any decoding ------------------------------------

@pytest.fixture(scope="module")
def png_7000_rgba() -> bytes:
    data = encode(Image.new("RGBA", (7000, 7000), (30, 60, 90, 255)), "PNG")
    assert len(data) < 300 * 1024  # the attack: a small file that decodes to 196 MB
    return data


def test_a_7000x7000_png_is_refused_without_being_decoded(png_7000_rgba, loads):
    with pytest.raises(PhotoTooManyPixels) as refused:
        prepare(png_7000_rgba)
    assert loads == []
    message = both_messages(refused.value)
    assert "7000×7000" in refused.value.message("en") and "7000×7000" in refused.value.message("zh")
    assert "49 megapixels" in message and "PNG" in message and "16 megapixels" in message
    assert refused.value.status == 422
    # the spy does see a decode when there is one
    prepare(encode(Image.new("RGBA", (70, 70)), "PNG"))
    assert loads == [("PNG", (70, 70))]


def test_a_png_at_the_cap_is_accepted():
    with Image.open(io.BytesIO(prepare(encode(Image.new("L", (4000, 4000), 7), "PNG")))) as out:
        assert out.size == (2048, 2048)


def test_a_webp_over_16_megapixels_is_refused(loads):
    data = encode(Image.new("RGB", (5000, 4000)), "WEBP", lossless=True, method=0)
    with pytest.raises(PhotoTooManyPixels) as refused:
        prepare(data)
    assert loads == []
    assert "5000×4000" in refused.value.message("en") and "WebP" in refused.value.message("en")
    assert "20 megapixels" in refused.value.message("en") and "16 megapixels" in refused.value.message("en")


def test_a_jpeg_over_52_megapixels_is_refused(loads):
    data = encode(Image.new("L", (8000, 7000)), "JPEG")
    with pytest.raises(PhotoTooManyPixels) as refused:
        prepare(data)
    assert loads == []
    message = refused.value.message("en")
    assert "8000×7000" in message and "56 megapixels" in message and "JPEG" in message and "52 megapixels" in message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(10000, 9000), (15000, 12000)])  # above Pillow's warning / its error
def test_images_above_pillows_bomb_limits_are_named_too_many_pixels_not_not_an_image(size, loads):
    data = encode(Image.new("1", size), "PNG")
    with pytest.raises(PhotoTooManyPixels) as refused:
        prepare(data)
    assert loads == []
    assert f"{size[0]}×{size[1]}" in refused.value.message("en")


# --- formats -------------------------------------------------------------------------------------

def ftyp(major: bytes, *compatible: bytes) -> bytes:
    box = b"ftyp" + major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (len(box) + 4).to_bytes(4, "big") + box + b"\x00\x00\x00\x08mdat" + b"\x00" * 64


@pytest.mark.parametrize("data, expected", [
    (ftyp(b"heic", b"mif1", b"heic"), "HEIC"),     # an iPhone camera photo
    (ftyp(b"heix", b"mif1", b"heix"), "HEIC"),
    (ftyp(b"mif1", b"mif1", b"heic"), "HEIC"),
    (ftyp(b"msf1", b"msf1", b"hevc"), "HEIC"),
    (ftyp(b"avif", b"avif", b"mif1", b"miaf"), "AVIF"),
    (ftyp(b"mif1", b"mif1", b"avif"), "AVIF"),
    (encode(Image.new("RGB", (64, 48)), "AVIF"), "AVIF"),  # a real one: Pillow could open it, we do not
], ids=["heic", "heix", "mif1-heic", "msf1-hevc", "avif", "mif1-avif", "avif-by-pillow"])
def test_heic_and_avif_are_named_and_told_to_send_jpeg(data, expected, loads):
    with pytest.raises(PhotoFormatUnsupported) as refused:
        prepare(data)
    assert refused.value.params["format"] == expected
    assert refused.value.status == 415
    for lang in ("en", "zh"):
        assert expected in refused.value.message(lang) and "JPEG" in refused.value.message(lang)
    assert loads == []


def test_a_video_is_not_an_image():
    with pytest.raises(BadPhoto) as refused:
        prepare(ftyp(b"isom", b"isom", b"mp42"))
    assert "not an image" in refused.value.message("en")


@pytest.mark.parametrize("fmt, build", [
    ("GIF", lambda: encode(Image.new("P", (50, 50)), "GIF")),
    ("BMP", lambda: encode(Image.new("RGB", (50, 50)), "BMP")),
    ("TIFF", lambda: encode(Image.new("RGB", (50, 50)), "TIFF")),
])
def test_other_image_formats_are_named_without_decoding(fmt, build, loads):
    with pytest.raises(PhotoFormatUnsupported) as refused:
        prepare(build())
    assert refused.value.params["format"] == fmt
    assert fmt in refused.value.message("en") and "JPEG" in refused.value.message("en")
    assert loads == []


@pytest.mark.parametrize("data", [b"hello, world", b"GIF89a but really a script <script>", b"\x00" * 100,
                                  b"<?php system($_GET['c']); ?>"])
def test_garbage_is_not_an_image(data):
    with pytest.raises(BadPhoto) as refused:
        prepare(data)
    assert "not an image" in refused.value.message("en")


def test_a_cut_off_jpeg_is_damaged_not_not_an_image():
    data = encode(scene((1200, 900)).effect_spread(5), "JPEG")
    with pytest.raises(BadPhoto) as refused:
        prepare(data[: len(data) // 2])
    assert "damaged or incomplete" in refused.value.message("en")


def test_an_empty_file_is_refused():
    with pytest.raises(BadPhoto) as refused:
        prepare(b"")
    assert "empty" in refused.value.message("en")


def test_a_file_over_max_bytes_is_too_large():
    data = jpeg_with()
    with pytest.raises(PhotoTooLarge):
        prepare(data, max_bytes=len(data) - 1)
    assert prepare(data, max_bytes=len(data))


def test_a_transparent_png_is_flattened_onto_white():
    image = Image.new("RGBA", (100, 100), (255, 0, 0, 0))  # red, fully transparent
    image.paste((0, 0, 255, 255), (0, 50, 100, 100))       # bottom half opaque blue
    with Image.open(io.BytesIO(prepare(encode(image, "PNG")))) as out:
        assert out.mode == "RGB"
        top, bottom = out.getpixel((50, 20)), out.getpixel((50, 80))
    assert min(top) > 240
    assert bottom[2] > 200 and bottom[0] < 40


# --- how many decode at once ---------------------------------------------------------------------

@pytest.mark.parametrize("slots, second_waits", [(1, True), (2, False)])
def test_decoding_is_bounded_across_threads(slots, second_waits, decoding, monkeypatch):
    decoding(slots=slots, wait_s=0.2)
    inside, leave = threading.Event(), threading.Event()
    real = photos._decode_upright
    holder_done = []

    def held_step(*args, **kwargs):
        if threading.current_thread().name == "holder":
            inside.set()
            assert leave.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(photos, "_decode_upright", held_step)
    data = jpeg_with()
    holder = threading.Thread(target=lambda: holder_done.append(prepare(data)), name="holder")
    holder.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        if second_waits:
            with pytest.raises(ServerBusy) as refused:
                prepare(data)
            assert time.monotonic() - started >= 0.18  # it waited for a slot before giving up
            assert refused.value.status == 503 and "busy" in refused.value.message("en")
        else:
            assert prepare(data)
    finally:
        leave.set()
        holder.join(10)
    assert holder_done and holder_done[0][:2] == b"\xff\xd8"
    assert prepare(data)  # the slot was given back
