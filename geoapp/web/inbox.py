"""The in-app inbox: /inbox (a user's notifications, newest first), opening one (read, then on to the
report's page for the user's role), "mark all read"; the unread count every page's header shows; and
its API, GET /api/v1/notifications and POST /api/v1/notifications/read.

What is notified and to whom is geoapp/domain/notifications.py; this is only how it is read.
"""
from __future__ import annotations

from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from .. import present
from ..domain import notifications
from ..domain.errors import BadInput
from ..translations import N_, Text
from . import database, read_session, settings
from .doors import api_login_required
from .auth import login_required
from .i18n import current_language

bp = Blueprint("inbox", __name__)
api_bp = Blueprint("inbox_api", __name__, url_prefix="/api/v1")

API_PAGE_MAX = 200


def init_app(app, csrf) -> None:
    """The page, the API (which checks CSRF itself, for cookie writes only: api.api_login_required)
    and the header's unread count."""
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)
    app.context_processor(unread_in_header)


def unread_in_header() -> dict:
    """`unread_notifications` for base.html's "消息 (N)" link; None when nobody is signed in."""
    try:
        signed_in = current_user.is_authenticated
    except Exception:  # rendered outside a request (an error page before the user is known)
        return {"unread_notifications": None}
    if not signed_in:
        return {"unread_notifications": None}
    session = read_session()
    try:
        return {"unread_notifications": notifications.unread_count(session, current_user.user.id)}
    except SQLAlchemyError:  # the page may be the error page saying the database is down: leave the count out
        session.rollback()
        return {"unread_notifications": None}


def _item(n: dict, role: str, lang: str, tz: str) -> dict:
    """One notification as the page and the API show it."""
    return {
        "id": n["id"], "report_id": n["report_id"], "kind": n["kind"],
        "text": notifications.line(n["kind"], lang),
        "report": _("问题 #%(id)s · %(category)s · %(street)s", id=n["report_id"],
                    category=present.localized(n, "category_name", lang),
                    street=present.localized(n, "street_name", lang)),
        "status": n["report_status"], "status_label": present.status_label(n["report_status"], lang),
        "created_at": n["created_at"].isoformat(), "created": present.local_time(n["created_at"], tz, lang),
        "read": n["read_at"] is not None,
        "report_url": notifications.report_path(role, n["report_id"]),
        "open_url": url_for("inbox.open_notification", notification_id=n["id"]),
    }


@bp.get("/inbox")
@login_required()
def show():
    session, lang, tz = read_session(), current_language(), settings().display_tz
    user = current_user.user
    offset = max(request.args.get("offset", 0, type=int) or 0, 0)
    rows = notifications.inbox(session, user.id, limit=notifications.INBOX_PAGE + 1, offset=offset)
    more = len(rows) > notifications.INBOX_PAGE
    items = [_item(n, user.role, lang, tz) for n in rows[:notifications.INBOX_PAGE]]
    return render_template("inbox/inbox.html", items=items, offset=offset,
                           older=offset + notifications.INBOX_PAGE if more else None,
                           unread=notifications.unread_count(session, user.id))


@bp.get("/inbox/<int:notification_id>")
@login_required()
def open_notification(notification_id: int):
    """Opening a line marks it read and goes on to the report's page for this user's role. (A GET
    that writes: it only ever marks the user's own line read, which is what following it means.)"""
    user = current_user.user
    with database().transaction() as session:
        found = notifications.get_notification(session, user.id, notification_id)
        if found is None:
            abort(404)
        notifications.mark_read(session, user.id, [notification_id])
    return redirect(notifications.report_path(user.role, found["report_id"]))


@bp.post("/inbox/read-all")
@login_required()
def read_all():
    """"Mark all read" (a form with the page's CSRF token, checked by CSRFProtect)."""
    with database().transaction() as session:
        notifications.mark_read(session, current_user.user.id)
    return redirect(url_for("inbox.show"))


# --- API -----------------------------------------------------------------------------------------

def _bad(field: str, problem: str, **params) -> BadInput:
    return BadInput(field=field, field_label=field, problem=Text(problem, **params))


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise _bad(name, N_("须为 {low} 到 {high} 之间的整数。"), low=low, high=high)
    return int(raw)


@api_bp.get("/notifications")
@api_login_required
def api_list():
    """The caller's notifications, newest first (?unread=1: only unread; ?limit=, ?offset=), and the
    unread count."""
    session, lang, tz = read_session(), current_language(), settings().display_tz
    limit = _int_arg("limit", notifications.INBOX_PAGE, 1, API_PAGE_MAX)
    offset = _int_arg("offset", 0, 0, 10**9)
    unread_only = request.args.get("unread") in ("1", "true", "yes")
    rows = notifications.inbox(session, g.user.id, unread_only=unread_only, limit=limit, offset=offset)
    return jsonify({"notifications": [_item(n, g.user.role, lang, tz) for n in rows],
                    "unread": notifications.unread_count(session, g.user.id)})


@api_bp.post("/notifications/read")
@api_login_required
def api_mark_read():
    """Mark read: JSON {"ids": [..]} (the caller's own; others' ids are ignored) or {"all": true}."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _bad("body", N_("须为 JSON 对象。"))
    ids = body.get("ids")
    if body.get("all") is True:
        ids = None
    elif not (isinstance(ids, list) and 0 < len(ids) <= API_PAGE_MAX
              and all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids)):
        raise _bad("ids", N_("须为 1 到 200 个通知编号的列表，或给出 \"all\": true。"))
    with database().transaction() as session:
        marked = notifications.mark_read(session, g.user.id, ids)
        unread = notifications.unread_count(session, g.user.id)
    return jsonify({"marked": marked, "unread": unread})
