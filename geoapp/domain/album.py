"""The bimonthly album (问题图册): which reports go in it, numbered and grouped how, and the issued
album kept as issued. Layout data only: the pages and the PDF are rendered by the web layer
(geoapp/web/albums.py, templates/albums/) and written by geoapp/domain/album_pdf.py.

- A **period** is two whole calendar months, the first day of a month to the last day of the next
  (2026-09-01..2026-10-31), local days (DISPLAY_TZ). It may not start in the future.
- **Which reports**: flagged for the album by a dispatcher (`reports.album`, the lifecycle's `album`
  action), not rejected, merged or void, reported before the period's end, and in no album issued
  before. So a report flagged late (after its own period's album was issued) is not lost: it goes
  into the next album, marked as carried over (往期补录).
- **Numbering**: albums are numbered in the order issued (第1期, 第2期, …), and periods follow each
  other: a new period starts after the last issued one ends. The same period again → 409 (an
  issued album is never regenerated: re-issuing would give other contents under the same number);
  an earlier or overlapping period → 409 too (its reports are already in a later album). Two issues
  at once are serialised by a transaction-level advisory lock; the EXCLUDE constraint on the
  periods (migration 0010) stands behind it.
- **Grouping**: by the taxonomy's class level (公用设施 / 环境卫生与园林绿化 / 城市容貌, in the order
  of categories.sort_order), then street code, then position along the street; entries are numbered
  1..N through the whole album.
- **As issued**: each entry's snapshot (texts in both languages, status, unit, deadline, photos, the
  small map's geometry) is stored in album_entries; the PDF is stored under PHOTO_DIR/albums by its
  SHA-256, so downloading it again gives the same bytes, whatever happens to the reports later.
"""
from __future__ import annotations

import calendar
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from ..models import Album, AlbumEntry, Category, Photo, Report, User
from . import album_map
from .errors import (  # noqa: F401 - the album's refusals, also read as albums.<Name> by the web layer
    AlbumAlreadyIssued, AlbumEmpty, AlbumFileDamaged, AlbumNotFound, AlbumOutOfOrder, AlbumPeriodNotStarted,
    BadAlbumPeriod,
)
from .inputs import parse_day, refusal
from .report_photos import ORIGINAL_DIR, store_file
from .reports import ReportFilter, list_reports
from .periods import Days
from .vocabulary import HANDLED_STATUSES, WITHDRAWN_STATUSES

ALBUM_DIR = "albums"  # under PHOTO_DIR: albums/ab/ab12….pdf
# 已办结: the unit finished (and maybe the reporter confirmed, or the dispatcher closed it)
NOT_IN_ALBUM = WITHDRAWN_STATUSES
CHINESE_NUMERALS = "一二三四五六七八九十"
_LOCK_KEY = 0x616C62756D  # "album": one issue at a time (pg_advisory_xact_lock)




# --- the period -----------------------------------------------------------------------------------

def _day(field: str, value: Any) -> dt.date:
    try:
        day = parse_day(value)
    except ValueError:
        raise refusal(field, "date") from None
    if day is None:
        raise refusal(field, "missing")
    return day


@dataclass(frozen=True)
class Period(Days):
    """An album's period: two whole calendar months (periods.Days: local days, the last included)."""

    @classmethod
    def parse(cls, from_: Any, to: Any) -> "Period":
        """`from`/`to` as sent (YYYY-MM-DD): two whole months, or a refusal saying what is wrong."""
        start, end = _day("from", from_), _day("to", to)
        if start > end:
            raise refusal("from", "date_order")
        if start.day != 1 or end != _last_day_of_next_month(start):
            raise BadAlbumPeriod(from_=start.isoformat(), to=end.isoformat())
        return cls(start, end)

    @classmethod
    def starting(cls, start: dt.date) -> "Period":
        return cls(start, _last_day_of_next_month(start))

    def params(self) -> dict[str, str]:
        return {"from_": self.start.isoformat(), "to": self.end.isoformat()}


def _last_day_of_next_month(start: dt.date) -> dt.date:
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def next_period(session: Session, today: dt.date) -> Period:
    """What the "issue the next" form proposes: the two months after the last issued album, else the
    two months before the current one."""
    last = session.execute(select(func.max(Album.period_to))).scalar_one()
    if last is not None:
        return Period.starting(last + dt.timedelta(days=1))
    first_of_month = today.replace(day=1)
    back = (first_of_month - dt.timedelta(days=1)).replace(day=1)
    return Period.starting((back - dt.timedelta(days=1)).replace(day=1))


# --- selection and layout data --------------------------------------------------------------------

def _classes(session: Session) -> list[dict]:
    rows = session.execute(select(Category.code, Category.name, Category.name_en)
                           .where(Category.level == "class").order_by(Category.sort_order, Category.code)).all()
    return [dict(r._mapping) for r in rows]


def _candidates(session: Session, end: dt.datetime) -> list[int]:
    in_an_album = select(AlbumEntry.report_id)
    return list(session.execute(
        select(Report.id).where(Report.album.is_(True), Report.status.notin_(NOT_IN_ALBUM),
                                Report.created_at < end, Report.id.notin_(in_an_album))).scalars())


def _published_photos(session: Session, ids: list[int]) -> dict[int, dict[str, list[dict]]]:
    found: dict[int, dict[str, list[dict]]] = {}
    rows = session.execute(select(Photo.id, Photo.report_id, Photo.kind, Photo.published_path, Photo.width,
                                  Photo.height).where(Photo.report_id.in_(ids), Photo.kind.in_(("before", "after")))
                           .order_by(Photo.report_id, Photo.kind, Photo.seq)).all()
    for r in rows:
        found.setdefault(r.report_id, {"before": [], "after": []})[r.kind].append(
            {"id": r.id, "path": r.published_path, "width": r.width, "height": r.height})
    return found


def _named(rec: dict, prefix: str) -> dict:
    return {"code": rec[f"{prefix}_code"], "name": rec[f"{prefix}_name"], "name_en": rec[f"{prefix}_name_en"]}


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def _entry(rec: dict, photos: dict, streets: list[dict], start: dt.datetime) -> dict:
    """One problem as printed (everything the pages show; nothing read from the report again)."""
    return {
        "report_id": rec["id"],
        "carried_over": rec["created_at"] < start,
        "class": _named(rec, "class"), "item": _named(rec, "category"), "street": _named(rec, "street"),
        "position_m": round(rec["position_m"]), "lon": round(rec["lon"], 7), "lat": round(rec["lat"], 7),
        "description": rec["description"], "reporter_name": rec["reporter_name"],
        "created_at": _iso(rec["created_at"]), "status": rec["status"],
        "unit": _named(rec, "unit"),
        "cooperating_units": [{"code": u["code"], "name": u["name"], "name_en": u["name_en"]}
                              for u in rec.get("cooperating_units") or []],
        "deadline_at": _iso(rec["deadline_at"]), "handled_at": _iso(rec["handled_at"]),
        "overdue": bool(rec.get("overdue")),
        "ledger_promised_on": _iso(rec["ledger_promised_on"]),
        "photos": photos.get(rec["id"], {"before": [], "after": []}),
        "map": {"window_m": album_map.DEFAULT_WINDOW_M, "streets": streets},
    }


def _count(entries: list[dict], key: str) -> list[dict]:
    counts: dict[str, dict] = {}
    for e in entries:
        row = counts.setdefault(e[key]["code"], {**e[key], "n": 0, "handled": 0})
        row["n"] += 1
        row["handled"] += e["status"] in HANDLED_STATUSES
    return sorted(counts.values(), key=lambda r: (-r["n"], r["code"]))


def summary(entries: list[dict], classes: list[dict]) -> dict:
    """The summary table: counts by class (all classes, in taxonomy order), street and unit, and
    completion so far (办结: handled, verified or closed) at issue time."""
    by_class = {r["code"]: r for r in _count(entries, "class")}
    return {
        "total": len(entries),
        "handled": sum(e["status"] in HANDLED_STATUSES for e in entries),
        "carried_over": sum(e["carried_over"] for e in entries),
        "by_class": [by_class.get(c["code"], {**c, "n": 0, "handled": 0}) for c in classes],
        "by_street": _count(entries, "street"),
        "by_unit": _count(entries, "unit"),
    }


def groups(entries: list[dict], class_order: list[str]) -> list[dict]:
    """The album's sections: one per class that has entries, in taxonomy order ("一、公用设施")."""
    out = []
    for code in class_order:
        members = [e for e in entries if e["class"]["code"] == code]
        if members:
            out.append({"ordinal": CHINESE_NUMERALS[len(out)] if len(out) < 10 else str(len(out) + 1),
                        "class": members[0]["class"], "entries": members})
    return out


def draft(session: Session, period: Period, tz: str, number: int, issued_at: dt.datetime) -> dict:
    """The album as it would be issued now: cover data, summary, numbered entries in their groups."""
    start, end = period.moments(tz)
    ids = _candidates(session, end)
    records = list_reports(session, ReportFilter(ids=tuple(ids), limit=max(len(ids), 1)))[0] if ids else []
    classes = _classes(session)
    rank = {c["code"]: i for i, c in enumerate(classes)}
    records.sort(key=lambda r: (rank.get(r["class_code"], len(rank)), r["class_code"], r["street_code"],
                                r["position_m"], r["id"]))
    photos = _published_photos(session, ids)
    windows = album_map.street_windows(session, ids)
    entries = [_entry(rec, photos, windows[rec["id"]], start) for rec in records]
    for no, e in enumerate(entries, start=1):
        e["no"] = no
    return {"number": number, "period_from": period.start.isoformat(), "period_to": period.end.isoformat(),
            "issued_at": issued_at.isoformat(), "summary": summary(entries, classes),
            "class_order": [c["code"] for c in classes], "entries": entries}


# --- issuing and reading back ---------------------------------------------------------------------

@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


def issue_album(session: Session, period: Period, *, issued_by: int, photo_dir: Path, tz: str,
                render: Callable[[dict], RenderedPdf], now: dt.datetime | None = None) -> dict:
    """Issue the next album for `period` inside the caller's transaction: refusals first (409 same
    or earlier period, 422 nothing flagged), then the draft, its PDF (render), the file, the rows."""
    now = now or dt.datetime.now(dt.timezone.utc)
    today = now.astimezone(ZoneInfo(tz)).date()
    if period.start > today:
        raise AlbumPeriodNotStarted(**period.params())
    session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
    same = session.execute(select(Album).where(Album.period_from == period.start)).scalar_one_or_none()
    if same is not None and same.period_to == period.end:
        raise AlbumAlreadyIssued(**period.params(), number=same.number,
                                 issued_on=same.issued_at.astimezone(ZoneInfo(tz)).date().isoformat())
    last = session.execute(select(Album).order_by(Album.number.desc()).limit(1)).scalar_one_or_none()
    if last is not None and period.start <= last.period_to:
        raise AlbumOutOfOrder(number=last.number, last_from=last.period_from.isoformat(),
                              last_to=last.period_to.isoformat(),
                              next_from=(last.period_to + dt.timedelta(days=1)).isoformat())
    number = (last.number + 1) if last is not None else 1
    album = draft(session, period, tz, number, now)
    if not album["entries"]:
        raise AlbumEmpty(**period.params())
    pdf = render(album)
    digest = hashlib.sha256(pdf.data).hexdigest()
    path = store_file(photo_dir, f"{ALBUM_DIR}/{digest[:2]}/{digest}.pdf", pdf.data)
    album_id = session.execute(insert(Album).values(
        number=number, period_from=period.start, period_to=period.end, issued_at=now, issued_by_id=issued_by,
        n_entries=len(album["entries"]), summary=album["summary"], pdf_path=path, pdf_sha256=digest,
        pdf_size=len(pdf.data), pdf_pages=pdf.pages).returning(Album.id)).scalar_one()
    session.execute(insert(AlbumEntry), [
        {"album_id": album_id, "no": e["no"], "report_id": e["report_id"], "class_code": e["class"]["code"],
         "data": e} for e in album["entries"]])
    album.update(id=album_id, pdf_sha256=digest, pdf_size=len(pdf.data), pdf_pages=pdf.pages, pdf_path=path)
    return album


_LISTED = (Album.id, Album.number, Album.period_from, Album.period_to, Album.issued_at, Album.n_entries,
           Album.summary, Album.pdf_sha256, Album.pdf_size, Album.pdf_pages, Album.pdf_path,
           User.display_name.label("issued_by"))


def list_albums(session: Session) -> list[dict]:
    """The issued albums, the newest first (no entries)."""
    rows = session.execute(select(*_LISTED).join(User, User.id == Album.issued_by_id)
                           .order_by(Album.number.desc())).all()
    return [dict(r._mapping) for r in rows]


def get_album(session: Session, number: int) -> dict:
    """An issued album with its entries as issued, in the same shape `draft` gives."""
    row = session.execute(select(*_LISTED).join(User, User.id == Album.issued_by_id)
                          .where(Album.number == number)).one_or_none()
    if row is None:
        raise AlbumNotFound(number=number)
    album = dict(row._mapping)
    entries = list(session.execute(select(AlbumEntry.data).where(AlbumEntry.album_id == album["id"])
                                   .order_by(AlbumEntry.no)).scalars())
    classes = [c["code"] for c in _classes(session)]
    seen = [c for c in dict.fromkeys(e["class"]["code"] for e in entries) if c not in classes]
    album.update(period_from=album["period_from"].isoformat(), period_to=album["period_to"].isoformat(),
                 issued_at=album["issued_at"].isoformat(), entries=entries, class_order=classes + seen)
    return album


def album_pdf(session: Session, number: int, photo_dir: Path) -> tuple[bytes, str]:
    """The issued PDF's bytes and SHA-256, checked against what was stored at issue."""
    row = session.execute(select(Album.pdf_path, Album.pdf_sha256).where(Album.number == number)).one_or_none()
    if row is None:
        raise AlbumNotFound(number=number)
    try:
        data = (photo_dir / row.pdf_path).read_bytes()
    except OSError:
        data = b""
    if hashlib.sha256(data).hexdigest() != row.pdf_sha256:
        raise AlbumFileDamaged(number=number, path=row.pdf_path)
    return data, row.pdf_sha256


def photo_file(photo_dir: Path, rel: str) -> Path | None:
    """A published photo's file, only if `rel` names a file inside PHOTO_DIR and not an original
    (PHOTO_DIR/original: admins only) nor an album (the PDF's url_fetcher asks here; nothing else
    may be read). Published copies live under published/, those from before migration 0005 at the top."""
    root = photo_dir.resolve()
    path = (photo_dir / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file() or path.suffix.lower() not in (".jpg", ".jpeg"):
        return None
    if path.is_relative_to(root / ORIGINAL_DIR) or path.is_relative_to(root / ALBUM_DIR):
        return None
    return path
