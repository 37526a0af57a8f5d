"""A report's photos: read as the outside sees them (the published copies), in one query for a page
of reports; and stored — the original kept unchanged, a watermarked copy published."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..models import Photo
from .errors import PhotoStoreUnavailable
from .photos import ReadPhoto, Watermark, publish, taken_at


def photos_of(session: Session, report_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """{report_id: [{id, kind, seq, taken_at, taken_at_source, width, height}, …]} in kind/seq order."""
    ids = list(report_ids)
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not ids:
        return found
    rows = session.execute(
        select(Photo.id, Photo.report_id, Photo.kind, Photo.seq, Photo.taken_at, Photo.taken_at_source,
               Photo.width, Photo.height, Photo.event_id)
        .where(Photo.report_id.in_(ids)).order_by(Photo.report_id, Photo.kind, Photo.seq)).all()
    for row in rows:
        found[row.report_id].append(dict(row._mapping))
    return found


# --- the storing side ----------------------------------------------------------------------------
#
# Files first, rows second, and never a delete on a guess (see domain/intake.py): every file is
# named by its content's SHA-256, so a retry writes the same file again, and a file whose row never
# committed stays until `sweep_orphan_photos` finds that no row names it.
#
#   PHOTO_DIR/original/ab/ab12….jpg   the upload, byte for byte (evidence; admins only)
#   PHOTO_DIR/published/cd/cd34….jpg  the watermarked copy everyone else sees
#   PHOTO_DIR/ef/ef56….jpg            published copies from before the photos table (migration 0005)

ORIGINAL_DIR = "original"
PUBLISHED_DIR = "published"


def store_original(photo_dir: Path, photo: ReadPhoto) -> str:
    """Write the upload unchanged; its path relative to photo_dir."""
    return store_file(photo_dir, f"{ORIGINAL_DIR}/{photo.sha256[:2]}/{photo.sha256}.{photo.extension}",
                      photo.original)


def store_published(photo_dir: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return store_file(photo_dir, f"{PUBLISHED_DIR}/{digest[:2]}/{digest}.jpg", data)


FILE_MODE, DIR_MODE = 0o640, 0o750  # the app's user reads and writes, its group (backups) reads, no one else


def make_private_dirs(root: Path, directory: Path) -> None:
    """`directory` (under `root`) and the folders between, created DIR_MODE whatever the umask."""
    missing = []
    while directory != root and not directory.exists():
        missing.append(directory)
        directory = directory.parent
    root.mkdir(parents=True, exist_ok=True)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
        os.chmod(folder, DIR_MODE)


def store_file(photo_dir: Path, rel: str, data: bytes) -> str:
    """Write `data` at photo_dir/rel atomically (rel is named by the content, so writing it again is
    harmless) and return rel. A store that cannot be written (read-only, full, missing) is a 503:
    the caller's transaction then rolls back and no row names the file."""
    path = photo_dir / rel
    try:
        if path.exists() and path.stat().st_size == len(data):
            os.utime(path)  # a fresh mtime: the sweep must not take it while its row is being committed
            return rel
        make_private_dirs(photo_dir, path.parent)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        try:
            # originals keep their EXIF/GPS (admins only): no other local account may read the store
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise PhotoStoreUnavailable(reason=exc.strerror or type(exc).__name__) from None
    return rel


@dataclass(frozen=True)
class Evidence:
    """What each photo of one report says in its watermark, apart from its own time."""
    report_id: int
    street_name: str
    lon: float
    lat: float
    reporter_name: str
    received_at: dt.datetime
    tz: str


def add_photos(session: Session, photo_dir: Path, photos: list[ReadPhoto], originals: list[str],
               evidence: Evidence, kind: str = "before", event_id: int | None = None) -> None:
    """Publish each photo (watermark, JPEG), write it, and add its row. The originals are already
    written (before the report's row existed); the caller commits. A unit's feedback photos
    (`event_id`) come after the kind's earlier ones."""
    first = session.execute(select(func.coalesce(func.max(Photo.seq) + 1, 0)).where(
        Photo.report_id == evidence.report_id, Photo.kind == kind)).scalar_one()
    session.add_all(publish_photos(photo_dir, photos, originals, evidence, kind, first, event_id))


def publish_photos(photo_dir: Path, photos: list[ReadPhoto], originals: list[str], evidence: Evidence,
                   kind: str = "before", first_seq: int = 0, event_id: int | None = None) -> list[Photo]:
    """Each photo published (watermark, JPEG) and written, and its row, not yet added to a session:
    intake does this work before it inserts the report, whose triggers lock the counter rows."""
    rows = []
    for seq, (photo, original_path) in enumerate(zip(photos, originals, strict=True), start=first_seq):
        at, source = taken_at(photo, evidence.received_at)
        published, width, height = publish(photo, Watermark(
            at=at, at_source=source, street_name=evidence.street_name, lon=evidence.lon, lat=evidence.lat,
            reporter_name=evidence.reporter_name, report_id=evidence.report_id, tz=evidence.tz))
        rows.append(Photo(report_id=evidence.report_id, kind=kind, seq=seq, original_path=original_path,
                          published_path=store_published(photo_dir, published), sha256=photo.sha256,
                          size_bytes=len(photo.original), width=width, height=height,
                          taken_at=at, taken_at_source=source, event_id=event_id))
    return rows


def sweep_orphan_photos(session: Session, photo_dir: Path, *, older_than_s: float = 3600,
                        dry_run: bool = False) -> list[Path]:
    """Remove files under photo_dir that no photos row names (as original or published) and that are
    older than `older_than_s` (a younger one may belong to a transaction still in flight). Returns
    what was (or would be) removed."""
    if not photo_dir.is_dir():
        return []
    named = {p for (p,) in session.execute(text(
        "SELECT original_path FROM photos WHERE original_path IS NOT NULL "
        "UNION SELECT published_path FROM photos"))}
    cutoff = time.time() - older_than_s
    removed = []
    for path in sorted(photo_dir.rglob("*")):
        if not path.is_file() or path.stat().st_mtime > cutoff:
            continue
        if path.relative_to(photo_dir).as_posix() in named:
            continue
        if not dry_run:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
