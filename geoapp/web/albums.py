"""the bimonthly album (问题图册): /albums, /albums/<n>.html and .pdf, GET/POST /api/v1/albums (issue [4]).

Thin: which reports, numbered and grouped how, and the stored album are geoapp/domain/album.py; the
small maps geoapp/domain/album_map.py; the PDF geoapp/domain/album_pdf.py (WeasyPrint, photos from
the store only). Here: parse, call, render. The screen page and the PDF are the same template body
(templates/albums/_album.html) over the stored snapshot; the PDF is rendered once, at issue, in
Chinese (the document handed to the city government), and served as stored afterwards.

Who: the album is the programme's result — read by dispatchers, admins and leaders
(visibility.reads_programme); issued by dispatchers and admins (Viewer.dispatches). Others get 403.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date
from flask import (Blueprint, Flask, abort, current_app, g, has_request_context, jsonify, make_response, redirect,
                   render_template, request, url_for)
from flask_babel import force_locale
from flask_login import current_user
from markupsafe import Markup

from ..core.permissions import roles_with
from .. import present
from ..domain import album as albums
from ..domain import album_map
from ..domain import audit
from ..domain.album_pdf import photo_url, write_pdf
from ..domain.errors import DomainError
from ..domain.visibility import Viewer, reads_programme
from ..translations import LOCALES, N_, translate
from . import database, read_session, settings
from .doors import api_login_required, json_object
from .auth import audit_actor, audit_now, login_required
from .i18n import current_language

log = logging.getLogger(__name__)

bp = Blueprint("albums", __name__)
api_bp = Blueprint("albums_api", __name__, url_prefix="/api/v1")

PRINT_CSS = "css/album_print.css"
COMMITTEE = N_("锦州市人大环资城建委")
TITLE = N_("人大代表“随手拍”问题图册")


# --- the view: the stored album as the template reads it -------------------------------------------

def _day(iso: str, lang: str) -> str:
    return format_date(dt.date.fromisoformat(iso), "long", locale=LOCALES[lang])


def _photo(p: dict, src) -> dict:
    return {"src": src(p), "width": p.get("width"), "height": p.get("height")}


def album_view(album: dict, lang: str, tz: str, src) -> dict:
    """Everything the album's pages print, as strings in `lang`; `src(photo)` names a photo's image
    (the API's photo URL on screen, an album-photo: URL in the PDF)."""
    s = album["summary"]
    name = lambda row: present.localized(row, "name", lang)  # noqa: E731
    sections = []
    for group in albums.groups(album["entries"], album["class_order"]):
        items = []
        for e in group["entries"]:
            shown = present.album_entry(e, lang, tz)
            shown["before"] = [_photo(p, src) for p in e["photos"]["before"]]
            shown["after"] = [_photo(p, src) for p in e["photos"]["after"]]
            shown["map"] = Markup(album_map.svg(  # built from escaped parts (album_map.svg)
                e["map"]["streets"], e["map"]["window_m"], lang=lang, north=translate(N_("北"), lang),
                scale_label=present.distance(100, lang)))
            items.append(shown)
        sections.append({"ordinal": group["ordinal"] if lang != "en" else str(len(sections) + 1),
                         "name": name(group["class"]), "count": len(items), "entries": items})
    share = (s["handled"] / s["total"]) if s["total"] else 0.0
    return {
        "number": album["number"],
        "period_from": album["period_from"], "period_to": album["period_to"],
        "period": translate(N_("{start}至{end}"), lang).format(start=_day(album["period_from"], lang),
                                                              end=_day(album["period_to"], lang)),
        "issued_on": format_date(dt.datetime.fromisoformat(album["issued_at"]).astimezone(ZoneInfo(tz)).date(),
                                 "long", locale=LOCALES[lang]),
        "committee": translate(COMMITTEE, lang), "title": translate(TITLE, lang),
        "total": s["total"], "handled": s["handled"], "carried_over": s["carried_over"],
        "handled_share": f"{share * 100:.1f}%",
        "by_class": [{"name": name(r), "n": r["n"], "handled": r["handled"]} for r in s["by_class"]],
        "by_street": [{"name": name(r), "n": r["n"], "handled": r["handled"]} for r in s["by_street"]],
        "by_unit": [{"name": name(r), "n": r["n"], "handled": r["handled"]} for r in s["by_unit"]],
        "sections": sections,
    }


# --- issuing: the PDF is rendered here, once -------------------------------------------------------

def _render_pdf(album: dict) -> albums.RenderedPdf:
    cfg = settings()

    def render() -> str:
        with force_locale(LOCALES["zh"]):
            view = album_view(album, "zh", cfg.display_tz, lambda p: photo_url(p["path"]))
            return render_template("albums/print.html", album=view, lang="zh")
    if has_request_context():
        html = render()
    else:  # the CLI and the demo: a request context for the templates' gettext and url_for
        with current_app.test_request_context():
            html = render()
    pdf, refused = write_pdf(html, Path(current_app.static_folder) / PRINT_CSS, cfg.photo_dir)
    if refused:
        log.warning("album %s: WeasyPrint asked for %d URL(s) it may not fetch: %s", album["number"], len(refused),
                    ", ".join(u[:80] for u in refused[:5]))
    return pdf


def issue(session, period: albums.Period, issued_by: int, now: dt.datetime | None = None,
          actor: audit.Actor | None = None) -> dict:
    """Issue the next album for `period` in `session`'s transaction (the API, the page's form, the
    CLI and the demo all come here), with its audit row in the same transaction. Needs an app context."""
    cfg = settings()
    album = albums.issue_album(session, period, issued_by=issued_by, photo_dir=cfg.photo_dir, tz=cfg.display_tz,
                               render=_render_pdf, now=now)
    audit.record(session, actor or audit.Actor(user_id=issued_by), audit.ALBUM_ISSUE, object_type="album",
                 object_id=album["number"], details={"from": period.start.isoformat(), "to": period.end.isoformat(),
                                                     "sha256": album.get("pdf_sha256")})
    return album


def _listed(a: dict) -> dict:
    """One issued album as GET /api/v1/albums lists it."""
    s = a["summary"]
    return {
        "number": a["number"],
        "period": {"from": a["period_from"].isoformat() if hasattr(a["period_from"], "isoformat") else a["period_from"],
                   "to": a["period_to"].isoformat() if hasattr(a["period_to"], "isoformat") else a["period_to"]},
        "issued_at": a["issued_at"].isoformat() if hasattr(a["issued_at"], "isoformat") else a["issued_at"],
        "issued_by": a.get("issued_by"),
        "counts": {"total": s["total"], "handled": s["handled"], "carried_over": s["carried_over"],
                   "by_class": [{"code": r["code"], "name": r["name"], "name_en": r["name_en"], "n": r["n"],
                                 "handled": r["handled"]} for r in s["by_class"]]},
        "html": url_for("albums.html", number=a["number"]),
        # the API's own link: another system follows it with its API key (the page's /albums/<n>.pdf
        # takes the session cookie only and would send it to the sign-in page)
        "pdf": {"url": url_for("albums_api.pdf", number=a["number"]), "sha256": a["pdf_sha256"],
                "bytes": a["pdf_size"], "pages": a["pdf_pages"]},
    }


# --- pages -----------------------------------------------------------------------------------------

def _index(error: str | None = None, status: int = 200, asked: dict | None = None):
    session = read_session()
    cfg = settings()
    lang = current_language()
    today = dt.datetime.now(ZoneInfo(cfg.display_tz)).date()
    proposal = albums.next_period(session, today)
    rows = []
    for a in albums.list_albums(session):
        rows.append({**_listed(a), "period_text": translate(N_("{start}至{end}"), lang).format(
            start=_day(a["period_from"].isoformat(), lang), end=_day(a["period_to"].isoformat(), lang)),
            "issued_on": format_date(a["issued_at"].astimezone(ZoneInfo(cfg.display_tz)).date(), "long",
                                     locale=LOCALES[lang]),
            "size_mb": f"{a['pdf_size'] / 1024 / 1024:.1f}"})
    form = asked or {"from": proposal.start.isoformat(), "to": proposal.end.isoformat()}
    may_issue = Viewer.of(current_user).dispatches
    # the proposed period still running: issuing now closes it (later flags go to the next issue)
    running = proposal.end >= today and not asked
    return render_template("albums/index.html", albums=rows, form=form, may_issue=may_issue, error=error,
                           running=running), status


@bp.get("/albums")
@login_required(*roles_with("reports.read_programme"))
def index():
    return _index()


@bp.post("/albums")
@login_required(*roles_with("album.issue"))
def issue_from_form():
    asked = {"from": request.form.get("from", ""), "to": request.form.get("to", "")}
    try:
        period = albums.Period.parse(asked["from"], asked["to"])
        with database().transaction() as session:
            album = issue(session, period, current_user.id, actor=audit_actor())
    except DomainError as err:
        return _index(error=err.message(current_language()), status=err.status, asked=asked)
    return redirect(url_for("albums.html", number=album["number"]), 303)


@bp.get("/albums/<int:number>.html")
@login_required(*roles_with("reports.read_programme"))
def html(number: int):
    cfg = settings()
    album = albums.get_album(read_session(), number)
    view = album_view(album, current_language(), cfg.display_tz,
                      lambda p: url_for("photos.published", photo_id=p["id"]))
    meta = _listed(album)
    return render_template("albums/album.html", album=view, meta=meta)


@bp.get("/albums/<int:number>.pdf")
@login_required(*roles_with("reports.read_programme"))
def pdf(number: int):
    return _pdf_response(number)


def _pdf_response(number: int):
    data, digest = albums.album_pdf(read_session(), number, settings().photo_dir)
    audit_now(audit.ALBUM_DOWNLOAD, object_type="album", object_id=number, details={"sha256": digest})
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="album-{number:03d}.pdf"'
    response.headers["ETag"] = f'"{digest}"'
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# --- the API ---------------------------------------------------------------------------------------

@api_bp.get("/albums")
@api_login_required
def api_list():
    if not reads_programme(g.viewer):
        abort(403)
    return jsonify({"albums": [_listed(a) for a in albums.list_albums(read_session())]})


@api_bp.get("/albums/<int:number>.pdf")
@api_login_required
def pdf(number: int):
    """The issued PDF for an API key (or the session), as GET /api/v1/albums links it."""
    if not reads_programme(g.viewer):
        abort(403)
    return _pdf_response(number)


@api_bp.post("/albums")
@api_login_required
def api_issue():
    if not g.viewer.dispatches:
        abort(403)
    body = json_object()
    period = albums.Period.parse(body.get("from"), body.get("to"))
    with database().transaction() as session:
        album = issue(session, period, g.user.id, actor=audit_actor())
    with database().sessionmaker() as session:
        listed = next(a for a in albums.list_albums(session) if a["number"] == album["number"])
    return jsonify(_listed(listed)), 201


def init_app(app: Flask, csrf) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    # the API checks CSRF itself, only for writes that ride on the session cookie (api.api_login_required)
    csrf.exempt(api_bp)


def issue_demo_album(session, now: dt.datetime | None = None) -> dict | None:
    """For geoapp/demo.py (inside the app context, in its transaction): issue 第1期 for the two months
    before last (in December: September–October) from the demo's flagged reports, issued by the
    demo dispatcher; None when an album exists already or nothing was flagged then."""
    from sqlalchemy import select

    from ..models import Album, User

    if session.execute(select(Album.id).limit(1)).first() is not None:
        return None
    cfg = settings()
    now = now or dt.datetime.now(dt.timezone.utc)
    first = now.astimezone(ZoneInfo(cfg.display_tz)).date().replace(day=1)
    start = first
    for _ in range(3):
        start = (start - dt.timedelta(days=1)).replace(day=1)
    dispatcher = session.execute(select(User.id).where(User.username == "dispatcher")).scalar_one()
    try:
        return issue(session, albums.Period.starting(start), dispatcher, now)
    except albums.AlbumEmpty:
        return None
