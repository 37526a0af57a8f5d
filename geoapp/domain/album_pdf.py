"""The album's PDF, written by WeasyPrint from the album's print HTML (templates/albums/print.html).

Nothing is fetched over a network: the photos reach WeasyPrint as `album-photo:<path>` URLs, which
`PhotoFetcher` answers from the photo store (published copies only: domain/album.photo_file); any
other URL — http(s), file:, data:, a path outside the store — is refused and recorded. The
stylesheet is read from the package's static folder by file name. Chinese is set in "Noto Sans CJK
SC" (fonts-noto-cjk), which WeasyPrint finds through fontconfig and embeds (subset) in the PDF.
"""
from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import quote, unquote

from .album import RenderedPdf, photo_file

PHOTO_SCHEME = "album-photo:"


def photo_url(rel_path: str) -> str:
    """How the print HTML names a published photo (its path relative to PHOTO_DIR)."""
    return PHOTO_SCHEME + quote(rel_path)


class PhotoFetcher:
    """WeasyPrint's url_fetcher: published photos from the store, nothing else (see module doc)."""

    def __init__(self, photo_dir: Path):
        from weasyprint.urls import URLFetcher, URLFetcherResponse

        self.photo_dir = photo_dir
        self.refused: list[str] = []
        fetcher = self

        class _Fetcher(URLFetcher):
            def fetch(self, url, headers=None):
                path = fetcher.resolve(url)
                if path is None:
                    fetcher.refused.append(url)
                    raise ValueError(f"the album fetches nothing but its own photos: {url[:200]}")
                return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": "image/jpeg"})

        self.weasyprint_fetcher = _Fetcher(allowed_protocols=())

    def resolve(self, url: str) -> Path | None:
        if not url.startswith(PHOTO_SCHEME):
            return None
        return photo_file(self.photo_dir, unquote(url[len(PHOTO_SCHEME):]))


def _keep_truncated_images_refused() -> None:
    """WeasyPrint, when imported, sets Pillow's process-wide LOAD_TRUNCATED_IMAGES, which would make
    domain/photos.py accept a cut-off upload as a photo in every later request. The album's images
    are our own complete published copies, so it is switched back off."""
    from PIL import ImageFile
    ImageFile.LOAD_TRUNCATED_IMAGES = False


# Photos are printed about 85 mm wide: 200 dpi is ~670 px, sharp on paper and on screen at 200 %;
# the published 1600 px copies (the evidence) stay as they are in the photo store. Without this an
# album of 100 problems is ~43 MB, too big to e-mail to the city government.
PRINT_IMAGES = {"dpi": 200, "jpeg_quality": 85, "optimize_images": True}


def write_pdf(html: str, stylesheet: Path, photo_dir: Path) -> tuple[RenderedPdf, list[str]]:
    """The PDF of `html` and the URLs refused on the way (none when the album is well formed)."""
    from weasyprint import CSS, HTML
    _keep_truncated_images_refused()

    fetcher = PhotoFetcher(photo_dir)
    document = HTML(string=html, base_url=PHOTO_SCHEME, url_fetcher=fetcher.weasyprint_fetcher).render(
        stylesheets=[CSS(filename=str(stylesheet), url_fetcher=fetcher.weasyprint_fetcher)], **PRINT_IMAGES)
    out = io.BytesIO()
    document.write_pdf(out)
    return RenderedPdf(data=out.getvalue(), pages=len(document.pages)), fetcher.refused


