"""Is this upload a photo, and what do we keep of it?

Checked by content (the file name and declared type are ignored), capped in bytes and in pixels,
turned upright from its EXIF orientation, scaled down, and re-encoded as a baseline JPEG that
carries no metadata at all: no EXIF (GPS, device serials, owner names), no XMP, no ICC profile,
no comment, no MPO extra frames (see tests/test_photos.py, which walks the stored JPEG's segments).

Decoding is where the memory goes, so it is guarded three ways:
- the width and height are read from the file's header and refused above a per-format pixel cap
  *before* any pixel is decoded (a 190 KB PNG can declare 7000×7000 RGBA, i.e. 196 MB decoded);
- JPEGs are decoded at reduced scale (libjpeg's DCT scaling, `Image.draft`), so even a 50 MP
  camera photo costs a quarter of its full size or less;
- at most `slots` images are decoded at once across threads (`configure_decoding`); more wait
  up to `wait_s` seconds and are then refused with ServerBusy (503, the phone retries).
Figures: bench/photo_memory.py (`bench/run photo_memory`).

HEIC/HEIF and AVIF are recognised (by their ISO-BMFF `ftyp` brand) and refused with a message
that says so, not decoded: no pillow-heif. WeChat and the iOS file picker already hand over JPEG,
so the only way to get HEIC here is to send the file from somewhere else; the message explains
how to send a JPEG instead.
"""
from __future__ import annotations

import io
import math
import struct
import threading

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BadPhoto, PhotoFormatUnsupported, PhotoTooLarge, PhotoTooManyPixels, ServerBusy

# MPO: what many phone cameras write as .jpg (a JPEG with extra frames; only the first is kept).
ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP")
# What Image.open is told to try: Pillow has no opener named MPO (asking for one is a KeyError);
# its JPEG opener returns an MPO image when the file carries an MP index.
_OPENERS = ("JPEG", "PNG", "WEBP")

# Pixel caps (width × height), per format, checked from the header before decoding.
# JPEG/MPO: 52 MP covers the 50 MP sensors of current phones (8160×6120 = 49.9 MP). A JPEG is
#   decoded at reduced scale (1/2, 1/4, 1/8) straight to near the stored size, so a large one
#   stays cheap; phones' 64–200 MP modes are refused (their default output is 12–50 MP).
# PNG/WebP: 16 MP. Neither format can be decoded at reduced scale, so the whole image is decoded
#   (RGBA: 4 bytes a pixel, 64 MB at the cap). Screenshots (a 3200×1440 phone screen is 4.6 MP)
#   and edited or exported photos are far smaller; a camera does not write PNG or WebP.
JPEG_MAX_PIXELS = 52_000_000
LOSSLESS_MAX_PIXELS = 16_000_000
MAX_PIXELS = {"JPEG": JPEG_MAX_PIXELS, "MPO": JPEG_MAX_PIXELS,
              "PNG": LOSSLESS_MAX_PIXELS, "WEBP": LOSSLESS_MAX_PIXELS}

# Image formats that are named in a refusal ("GIF photos are not supported") rather than called
# "not an image". Only formats with a distinctive signature, so garbage is never taken for one;
# identifying them reads the header only (Image.open is lazy; nothing here calls load()).
NAMED_OTHER_FORMATS = ("GIF", "BMP", "TIFF", "PSD", "ICO", "JPEG2000")

# ISO-BMFF brands (the `ftyp` box at byte 4) of HEIF-family stills. mif1/msf1 are generic HEIF
# brands shared by HEIC and AVIF: the compatible brands tell them apart.
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_GENERIC_BRANDS = {b"mif1", b"msf1", b"mif2", b"miaf"}

# Decoder failures on a file whose header looked right: Pillow raises all of these.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError)

_NOT_AN_IMAGE = dict(problem="the file is not an image (JPEG, PNG or WebP)",
                     problem_zh="文件不是图片（须为 JPEG、PNG 或 WebP）。")

_decode_slots = threading.BoundedSemaphore(2)
_decode_wait_s = 20.0


def configure_decoding(slots: int = 2, wait_s: float = 20.0) -> None:
    """How many images may be decoded at once across threads, and how long a request waits for a
    slot before it is refused with ServerBusy. A decode that already holds a slot of the previous
    setting releases it there; the new setting applies to requests that start waiting after this."""
    global _decode_slots, _decode_wait_s
    if slots < 1:
        raise ValueError(f"decode slots must be at least 1, not {slots}")
    if wait_s < 0:
        raise ValueError(f"decode wait must not be negative, not {wait_s}")
    _decode_slots = threading.BoundedSemaphore(slots)
    _decode_wait_s = float(wait_s)


def prepare_photo(data: bytes, *, max_bytes: int, max_px: int) -> bytes:
    if len(data) > max_bytes:
        raise PhotoTooLarge(size_mb=len(data) / 1024 / 1024, max_mb=max_bytes / 1024 / 1024)
    if not data:
        raise BadPhoto(problem="the file is empty", problem_zh="文件为空。")
    heif = _heif_family(data)
    if heif:
        raise PhotoFormatUnsupported(format=heif)

    image = _open_header(data)
    try:
        fmt = image.format
        width, height = image.size
        cap = MAX_PIXELS[fmt]
        if width * height > cap:
            raise PhotoTooManyPixels(width=width, height=height, megapixels=width * height / 1e6,
                                     format=_format_name(fmt), max_megapixels=cap / 1e6)
        slots = _decode_slots  # the one we release, even if configure_decoding replaces it meanwhile
        if not slots.acquire(timeout=_decode_wait_s):
            raise ServerBusy()
        try:
            return _decode_and_encode(image, fmt, max_px)
        finally:
            slots.release()
    finally:
        image.close()  # its pixels are freed now, not whenever the garbage collector gets to them


def _heif_family(data: bytes) -> str | None:
    """'HEIC' or 'AVIF' for an ISO-BMFF still image (iPhone camera files, AVIF exports), else None."""
    if data[4:8] != b"ftyp" or len(data) < 12:
        return None
    box_len = int.from_bytes(data[0:4], "big")
    major = data[8:12]
    compatible = {data[i:i + 4] for i in range(16, min(max(box_len, 16), len(data), 256) - 3, 4)}
    brands = {major} | compatible
    if major in _AVIF_BRANDS or (major in _HEIF_GENERIC_BRANDS and brands & _AVIF_BRANDS):
        return "AVIF"
    if major in _HEIC_BRANDS or major in _HEIF_GENERIC_BRANDS or brands & _HEIC_BRANDS:
        return "HEIC"
    return None  # MP4, QuickTime, 3GP…: not an image at all


def _open_header(data: bytes) -> Image.Image:
    """Identify the file and read its header (format, width, height) without decoding pixels."""
    buf = io.BytesIO(data)
    try:
        return Image.open(buf, formats=list(_OPENERS))
    except Image.DecompressionBombError:
        # Pillow refuses a header above 2 × Image.MAX_IMAGE_PIXELS (179 MP) inside open(), without
        # saying the size; read it with the same plugin so the refusal can name it (our caps are
        # far lower, so the caller refuses it with PhotoTooManyPixels).
        return _open_past_pillows_bomb_check(buf)
    except UnidentifiedImageError:
        pass
    except _DECODE_ERRORS:  # it starts like a JPEG, PNG or WebP, but its header cannot be read
        raise BadPhoto(problem="the image file is damaged or incomplete",
                       problem_zh="图片文件已损坏或不完整。") from None
    try:
        with Image.open(io.BytesIO(data), formats=list(NAMED_OTHER_FORMATS)) as other:
            fmt = other.format
    except (Image.DecompressionBombError, *_DECODE_ERRORS):
        raise BadPhoto(**_NOT_AN_IMAGE) from None
    raise PhotoFormatUnsupported(format=fmt)


def _open_past_pillows_bomb_check(buf: io.BytesIO) -> Image.Image:
    buf.seek(0)
    prefix = buf.read(16)
    for fmt in _OPENERS:
        factory, accept = Image.OPEN[fmt]  # registered by the Image.open call that just refused
        if accept is None or accept(prefix):
            buf.seek(0)
            try:
                return factory(buf, "")
            except _DECODE_ERRORS:
                continue
    raise BadPhoto(**_NOT_AN_IMAGE)


def _decode_and_encode(image: Image.Image, fmt: str, max_px: int) -> bytes:
    """Decode (at reduced scale for JPEG), turn upright, scale to max_px, flatten to RGB and encode
    a metadata-free JPEG. Called holding a decode slot."""
    if fmt in ("JPEG", "MPO"):
        # Decode at 1/2, 1/4 or 1/8 scale, never below the size the photo is scaled to here.
        image.draft("RGB", _fitted_size(image.size, max_px))
    try:
        image.load()
    except _DECODE_ERRORS:
        raise BadPhoto(problem=f"the {_format_name(fmt)} file is damaged or incomplete",
                       problem_zh=f"{_format_name(fmt)} 文件已损坏或不完整。") from None
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except _DECODE_ERRORS:
        pass  # unreadable EXIF: the orientation is unknown, keep the pixels as stored
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info)
    if image.mode not in ("RGB", "RGBA", "L"):
        # Palette and 1-bit images would be scaled by nearest neighbour; 16-bit and CMYK cannot
        # be scaled or saved as they are.
        image = _replace(image, image.convert("RGBA" if has_alpha else "RGB"))
    image.thumbnail((max_px, max_px))  # in place: the full-size pixels are released here
    if image.mode == "RGBA":
        flat = Image.new("RGB", image.size, (255, 255, 255))  # transparent areas become white
        flat.paste(image, (0, 0), image)
        image = _replace(image, flat)
    elif image.mode != "RGB":
        image = _replace(image, image.convert("RGB"))
    image.info = {}  # Pillow's JPEG writer copies the comment (COM) from info; drop everything
    out = io.BytesIO()
    # Baseline (not progressive), no exif=, icc_profile=, xmp=, comment=: only JFIF and pixels.
    image.save(out, format="JPEG", quality=85, optimize=True)
    image.close()
    return out.getvalue()


def _replace(old: Image.Image, new: Image.Image) -> Image.Image:
    if new is not old:
        old.close()  # release its pixels now, not when the last reference goes
    return new


def _fitted_size(size: tuple[int, int], max_px: int) -> tuple[int, int]:
    """The size `thumbnail((max_px, max_px))` will give (rounded up, so a draft is never smaller)."""
    width, height = size
    if max(width, height) <= max_px:
        return width, height
    ratio = max_px / max(width, height)
    return max(1, min(max_px, math.ceil(width * ratio))), max(1, min(max_px, math.ceil(height * ratio)))


def _format_name(fmt: str) -> str:
    return {"MPO": "JPEG", "WEBP": "WebP"}.get(fmt, fmt)
