"""Is this upload a photo, and what do we keep of it?

Checked by content (Pillow decodes it; the file name and declared type are ignored), capped in
size, turned upright from its EXIF orientation, scaled down, and re-encoded as a JPEG that
carries no metadata at all (EXIF GPS, device serials and owner names never reach the store).
"""
from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BadPhoto, PhotoTooLarge

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "MPO"}  # MPO: what many phone cameras write as .jpg
MAX_PIXELS = 50_000_000  # refuses decompression bombs long before memory is at risk


def prepare_photo(data: bytes, *, max_bytes: int, max_px: int) -> bytes:
    if len(data) > max_bytes:
        raise PhotoTooLarge(size_mb=len(data) / 1024 / 1024, max_mb=max_bytes / 1024 / 1024)
    if not data:
        raise BadPhoto(problem="the file is empty", problem_zh="文件为空。")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                if probe.width * probe.height > MAX_PIXELS:
                    raise BadPhoto(problem="the image has too many pixels", problem_zh="图像像素过多。")
                probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError):
        raise BadPhoto(problem="the file is not an image (JPEG, PNG or WebP)",
                       problem_zh="文件不是图片（须为 JPEG、PNG 或 WebP）。") from None
    if fmt not in ACCEPTED_FORMATS:
        raise BadPhoto(problem=f"{fmt} images are not accepted; send JPEG, PNG or WebP",
                       problem_zh=f"不接受 {fmt} 格式；请使用 JPEG、PNG 或 WebP。")
    image = ImageOps.exif_transpose(image)
    image.thumbnail((max_px, max_px))
    if image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, optimize=True)  # no exif= / icc: metadata dropped
    return out.getvalue()
