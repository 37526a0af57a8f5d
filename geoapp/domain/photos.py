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
- at most `slots` images are decoded at once on the machine, across threads and processes (lock
  files under RUN_DIR, `configure_decoding`); more wait up to `wait_s` seconds and are then refused
  with ServerBusy (503, the phone retries).
Figures: bench/photo_memory.py (`bench/run photo_memory`).

HEIC/HEIF and AVIF are recognised (by their ISO-BMFF `ftyp` brand) and refused with a message
that says so, not decoded: no pillow-heif. WeChat and the iOS file picker already hand over JPEG,
so the only way to get HEIC here is to send the file from somewhere else; the message explains
how to send a JPEG instead.

What a report keeps of each photo (intake.submit_report does the storing):
- the ORIGINAL upload, byte for byte, as evidence (content-addressed; admins only);
- a PUBLISHED copy: upright, long edge `max_px`, a watermark burnt in (when, where, who, which
  report), re-encoded as a metadata-free JPEG (see `read_photo`, `publish`).
`taken_at` comes from EXIF DateTimeOriginal when it is plausible, else it is the time received.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import functools
import hashlib
import io
import logging
import math
import os
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import ExifTags, Image, ImageDraw, ImageEnhance, ImageFont, ImageOps, UnidentifiedImageError

from .errors import (BadPhoto, PhotoFormatUnsupported, PhotoStoreUnavailable, PhotoTooLarge, PhotoTooManyPixels,
                     ServerBusy, TooManyPhotos)
from .vocabulary import MAX_PHOTOS_PER_REPORT

log = logging.getLogger(__name__)

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

class DecodeSlots:
    """`count` slots shared by every process and thread that names the same folder: slot i is the
    file slot-i there, held with a non-blocking exclusive flock. flock belongs to an open file, so two
    threads of one process exclude each other as two gunicorn workers do, and a process that dies
    gives its slot back with its files. A slot is looked for every POLL_S until the wait is over."""

    POLL_S = 0.05

    def __init__(self, folder: Path | None, count: int):
        self.folder, self.count = folder, count

    def _folder(self) -> Path:
        if self.folder is None:  # not configured (a script, a test): a folder of this process's own
            self.folder = Path(tempfile.mkdtemp(prefix="geoapp-decode-slots-"))
        self.folder.mkdir(mode=0o750, parents=True, exist_ok=True)
        return self.folder

    def acquire(self, timeout: float) -> int | None:
        """An open file descriptor holding a slot (give it to `release`), or None after `timeout` s."""
        folder = self._folder()
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self.count):
                fd = os.open(folder / f"slot-{i}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
                except BaseException:
                    os.close(fd)
                    raise
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(self.POLL_S, left))

    @staticmethod
    def release(fd: int) -> None:
        os.close(fd)  # closing the file drops its lock


_decode_slots = DecodeSlots(None, 2)
_decode_wait_s = 20.0


def configure_decoding(slots: int = 2, wait_s: float = 20.0, run_dir: Path | None = None) -> None:
    """How many images may be decoded at once on this machine, and how long a request waits for a
    slot before it is refused with ServerBusy. `run_dir` (Settings.run_dir) holds the slots' lock
    files: every process naming it shares the `slots` (gunicorn's workers); None gives this process
    slots of its own. A decode that holds a slot of the previous setting releases it there; the new
    setting applies to requests that start waiting after this."""
    global _decode_slots, _decode_wait_s
    if slots < 1:
        raise ValueError(f"decode slots must be at least 1, not {slots}")
    if wait_s < 0:
        raise ValueError(f"decode wait must not be negative, not {wait_s}")
    _decode_slots = DecodeSlots(Path(run_dir) / "decode-slots" if run_dir is not None else None, slots)
    _decode_wait_s = float(wait_s)


def check_photo_count(count: int) -> None:
    if count > MAX_PHOTOS_PER_REPORT:
        raise TooManyPhotos(max_photos=MAX_PHOTOS_PER_REPORT, count=count)


@dataclass
class ReadPhoto:
    """An accepted upload: its original bytes (kept unchanged) and its pixels, upright and scaled to
    the published size, waiting for the watermark (which needs the report's id)."""
    original: bytes
    sha256: str            # of the original bytes
    format: str            # JPEG, MPO, PNG or WEBP, as found in the content
    image: Image.Image     # RGB, upright, long edge at most max_px
    exif_taken_at: dt.datetime | None  # DateTimeOriginal, aware; not yet judged plausible

    @property
    def extension(self) -> str:
        return {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp"}[self.format]

    @property
    def content_type(self) -> str:
        return content_type_of(self.extension)

    def close(self) -> None:
        self.image.close()


def content_type_of(extension: str) -> str:
    return {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}.get(extension,
                                                                                "application/octet-stream")


def prepare_photo(data: bytes, *, max_bytes: int, max_px: int) -> bytes:
    """The upload as a clean JPEG (upright, scaled, no metadata), without a watermark."""
    photo = read_photo(data, max_bytes=max_bytes, max_px=max_px, tz="UTC")
    try:
        return encode_jpeg(photo.image)
    finally:
        photo.close()


def read_photo(data: bytes, *, max_bytes: int, max_px: int, tz: str) -> ReadPhoto:
    """Check an upload by its content and decode it (upright, scaled to max_px). `tz` is the zone
    an EXIF time without OffsetTimeOriginal was taken in (the city's)."""
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
        taken_at = _exif_taken_at(image, tz)  # from the header; before exif_transpose drops the EXIF
        slot = _decode_slots.acquire(timeout=_decode_wait_s)
        if slot is None:
            raise ServerBusy()
        try:
            pixels = _decode_upright(image, fmt, max_px)
        finally:
            DecodeSlots.release(slot)
    except BaseException:
        image.close()  # its pixels are freed now, not whenever the garbage collector gets to them
        raise
    return ReadPhoto(original=data, sha256=hashlib.sha256(data).hexdigest(), format=fmt, image=pixels,
                     exif_taken_at=taken_at)


# --- when was it taken? ------------------------------------------------------------------------

# A camera's clock may be wrong or unset (2000-01-01, a phone after a battery change): a time
# more than this far ahead of receipt, or older than the programme could use, is not believed.
TAKEN_AT_MAX_AHEAD = dt.timedelta(minutes=10)
TAKEN_AT_MAX_AGE = dt.timedelta(days=365)


def _exif_taken_at(image: Image.Image, tz: str) -> dt.datetime | None:
    try:
        exif = image.getexif().get_ifd(ExifTags.IFD.Exif)
        raw = exif.get(ExifTags.Base.DateTimeOriginal)
        offset = exif.get(ExifTags.Base.OffsetTimeOriginal)
    except _DECODE_ERRORS:
        return None
    if not isinstance(raw, str):
        return None
    stamp = raw.strip("\x00 ")[:19]
    try:
        naive = dt.datetime.strptime(stamp, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # "0000:00:00 00:00:00", blanks: the camera did not know
    if isinstance(offset, str):
        try:
            return dt.datetime.strptime(f"{stamp} {offset.strip(chr(0) + ' ')}", "%Y:%m:%d %H:%M:%S %z")
        except ValueError:
            pass  # an unreadable offset: fall back to the city's zone
    return naive.replace(tzinfo=ZoneInfo(tz))


def taken_at(photo: ReadPhoto, received_at: dt.datetime) -> tuple[dt.datetime, str]:
    """(when, 'exif') if the photo's own time is plausible, else (received_at, 'received')."""
    exif = photo.exif_taken_at
    if exif is not None and received_at - TAKEN_AT_MAX_AGE <= exif <= received_at + TAKEN_AT_MAX_AHEAD:
        return exif, "exif"
    return received_at, "received"


# --- the published copy: watermark, JPEG, no metadata ------------------------------------------

@dataclass(frozen=True)
class Watermark:
    """What the published copy says about itself (in Chinese: it is evidence for the city's
    authority, not a UI string). Times are shown in the city's zone."""
    at: dt.datetime
    at_source: str          # 'exif' or 'received'
    street_name: str
    lon: float
    lat: float
    reporter_name: str
    report_id: int
    tz: str

    def lines(self) -> list[str]:
        local = self.at.astimezone(ZoneInfo(self.tz)).strftime("%Y-%m-%d %H:%M")
        when = f"拍摄 {local}" if self.at_source == "exif" else f"接收 {local}（照片无拍摄时间）"
        ns, ew = ("N" if self.lat >= 0 else "S"), ("E" if self.lon >= 0 else "W")
        return [when,
                f"{self.street_name}  {ns} {abs(self.lat):.5f}° {ew} {abs(self.lon):.5f}°",
                f"{self.reporter_name}  编号 {self.report_id}"]


def publish(photo: ReadPhoto, mark: Watermark) -> tuple[bytes, int, int]:
    """The published JPEG of an accepted photo, watermarked: (bytes, width, height)."""
    image = photo.image.copy()  # the caller's pixels stay clean (a retry may publish again)
    try:
        burn_watermark(image, mark.lines())
        return encode_jpeg(image), image.width, image.height
    finally:
        image.close()


# The band and its text, relative to the image's width so it reads the same on a phone screen
# and on paper: at 1600 px wide the text is 51 px high (about 3.4 mm across an A4 print).
_FONT_FRACTION = 0.032
_MIN_FONT_PX = 10
_BAND_DARKNESS = 0.3  # the band keeps 30 % of the photo's brightness: white text on it reads in sun


def burn_watermark(image: Image.Image, lines: list[str]) -> None:
    """Darken a band at the bottom of `image` (RGB, in place) and write `lines` in white on it."""
    width, height = image.size
    margin = max(4, round(width * 0.02))
    size = max(_MIN_FONT_PX, round(width * _FONT_FRACTION))
    font = _font(size)
    widest = max(font.getlength(line) for line in lines)
    if widest > width - 2 * margin:  # a long street name: shrink the text, never cut it
        size = max(_MIN_FONT_PX, int(size * (width - 2 * margin) / widest))
        font = _font(size)
    line_h = round(size * 1.35)
    band_h = min(height, line_h * len(lines) + 2 * margin - (line_h - size))
    top = height - band_h
    band = image.crop((0, top, width, height))
    image.paste(ImageEnhance.Brightness(band).enhance(_BAND_DARKNESS), (0, top))
    band.close()
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((margin, top + margin + i * line_h), line, font=font, fill=(255, 255, 255))


def encode_jpeg(image: Image.Image) -> bytes:
    """A baseline JPEG of RGB pixels carrying nothing else: no EXIF, XMP, ICC profile, comment, and
    not even the JFIF header (APP0: pixel density only; decoders take three components as YCbCr
    without it, as they do for camera files that carry EXIF instead)."""
    image.info = {}  # Pillow's JPEG writer copies the comment (COM) from info; drop everything
    out = io.BytesIO()
    # Baseline (not progressive), no exif=, icc_profile=, xmp=, comment=: only JFIF and pixels.
    image.save(out, format="JPEG", quality=85, optimize=True)
    data = out.getvalue()
    if data[2:4] == b"\xff\xe0":  # libjpeg writes JFIF APP0 right after SOI
        data = data[:2] + data[4 + int.from_bytes(data[4:6], "big"):]
    return data


# --- the watermark's font ----------------------------------------------------------------------

FONT_PACKAGE = "fonts-noto-cjk"
_FONT_FAMILY = "Noto Sans CJK SC"
_FONT_KNOWN_PATH = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


class WatermarkFontMissing(RuntimeError):
    pass


@functools.cache
def watermark_font_file() -> tuple[str, int]:
    """(path, face index) of Noto Sans CJK SC, found through fontconfig (any install location), or
    Debian's path. Raises WatermarkFontMissing with what to install."""
    if shutil.which("fc-match"):
        try:
            found = subprocess.run(["fc-match", "-f", "%{file}\t%{index}", _FONT_FAMILY], capture_output=True,
                                   text=True, timeout=10, check=True).stdout
            path, _, index = found.partition("\t")
            # fc-match always answers, with a fallback font when the family is absent: check the file
            if "NotoSansCJK" in Path(path).name.replace("-", "").replace(" ", "") and Path(path).is_file():
                return path, int(index or 0)
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    if _FONT_KNOWN_PATH.is_file():
        return str(_FONT_KNOWN_PATH), 2  # the .ttc's faces: JP, KR, SC, TC, HK
    raise WatermarkFontMissing(
        f"the photo watermark needs the font {_FONT_FAMILY!r}, which is not installed: "
        f"install Debian's {FONT_PACKAGE} (apt-get install {FONT_PACKAGE}; scripts/serve does this)")


def watermark_font_check() -> tuple[bool, str]:
    """For /readyz and the start-up log: (ok, detail)."""
    try:
        path, index = watermark_font_file()
    except WatermarkFontMissing as exc:
        return False, str(exc)
    return True, f"{path} (face {index})"


def require_watermark_font() -> None:
    """Before anything of a photo is stored: without the font no published copy can be made."""
    try:
        watermark_font_file()
    except WatermarkFontMissing:
        raise PhotoStoreUnavailable(reason=f"watermark font missing; install {FONT_PACKAGE}") from None


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    path, index = watermark_font_file()
    return ImageFont.truetype(path, size, index=index)


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


def _decode_upright(image: Image.Image, fmt: str, max_px: int) -> Image.Image:
    """Decode (at reduced scale for JPEG), turn upright, scale to max_px and flatten to RGB.
    Called holding a decode slot; returns `image` itself or its replacement (`image` is then closed)."""
    if fmt in ("JPEG", "MPO"):
        # Decode at 1/2, 1/4 or 1/8 scale, never below the size the photo is scaled to here: at
        # most 2× the published size is decoded (a 12 MP photo for 1600 px: 2000×1500).
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
    upright = image
    has_alpha = upright.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        upright.mode == "P" and "transparency" in upright.info)
    if upright.mode not in ("RGB", "RGBA", "L"):
        # Palette and 1-bit images would be scaled by nearest neighbour; 16-bit and CMYK cannot
        # be scaled or saved as they are.
        upright = _replace(upright, upright.convert("RGBA" if has_alpha else "RGB"))
    upright.thumbnail((max_px, max_px))  # in place: the full-size pixels are released here
    if upright.mode == "RGBA":
        flat = Image.new("RGB", upright.size, (255, 255, 255))  # transparent areas become white
        flat.paste(upright, (0, 0), upright)
        upright = _replace(upright, flat)
    elif upright.mode != "RGB":
        upright = _replace(upright, upright.convert("RGB"))
    upright.info = {}
    return upright


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
