"""Photos: the published copy of a report's photo (visibility rule) and the original (admins only).

A photo one may not see answers 404, like its report (domain/visibility.py). The files are named by
their content, so the ETag is the SHA-256 and never changes; the answer is `private, no-cache`: a
browser keeps it but asks again each time (a cheap 304), so a photo stops showing as soon as its
report stops being visible to this user.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from flask import Blueprint, abort, current_app, g, send_file
from sqlalchemy import select

from ..domain import audit, visibility
from ..domain.photos import content_type_of, watermark_font_check
from ..models import Photo, Report
from . import read_session, settings
from .doors import api_login_required

bp = Blueprint("photos", __name__, url_prefix="/api/v1")


@bp.record_once
def _say_if_the_watermark_font_is_missing(state) -> None:
    """At start-up, not at the first photo: without the font every report with photos is refused."""
    ok, detail = watermark_font_check()
    if not ok:
        state.app.logger.error("photos cannot be published: %s", detail)


@bp.get("/photos/<int:photo_id>")
@api_login_required
def published(photo_id: int):
    photo = _visible_photo(photo_id)
    # published files are named by their own SHA-256 (report_photos.store_published)
    return _send(photo.published_path, etag=PurePosixPath(photo.published_path).stem)


@bp.get("/photos/<int:photo_id>/original")
@api_login_required
def original(photo_id: int):
    if not visibility.may_see_original_photo(g.viewer):
        abort(404)
    photo = _visible_photo(photo_id)
    if photo.original_path is None:  # a photo from before originals were kept (migration 0005)
        abort(404)
    from .auth import audit_now

    # the original carries what publishing strips (the exact place and time, the device): who saw it is kept
    audit_now(audit.PHOTO_ORIGINAL_VIEW, object_type="photo", object_id=photo_id, details={"sha256": photo.sha256})
    return _send(photo.original_path, etag=photo.sha256)


def _visible_photo(photo_id: int):
    # the photo's report must be one this viewer may see (the same SQL rule as every list)
    row = read_session().execute(
        select(Photo.published_path, Photo.original_path, Photo.sha256)
        .join(Report, Report.id == Photo.report_id)
        .where(Photo.id == photo_id, visibility.visible(g.viewer))).one_or_none()
    if row is None:
        abort(404)
    return row


def _send(rel: str, *, etag: str | None):
    path: Path = settings().photo_dir / rel
    if not path.is_file():
        # a row whose file is gone: the store was damaged or restored without it; say so in the log
        current_app.logger.error("photo file missing: %s", path)
        abort(404)
    response = send_file(path, mimetype=content_type_of(path.suffix.lstrip(".").lower()), etag=etag or False,
                         conditional=True, max_age=0)
    response.cache_control.private = True
    response.cache_control.public = False
    response.cache_control.no_cache = True
    return response
