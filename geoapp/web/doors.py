"""What every web door does around a call into the core (geoapp/core): decide who is asking (once,
for the JSON API and the pages' scripts alike), read a JSON body, turn the query string into the
domain's filter, and shape one report for the viewer. The API blueprints and the pages import these
from here, not from one another.
"""
from __future__ import annotations

import functools

from flask import current_app, g, request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest

from .. import present
from ..domain import lifecycle
from ..domain.inputs import ReportQuery, refusal
from ..domain.reports import ReportFilter, access_to, events_of
from ..domain.visibility import FULL, Viewer
from . import settings
from .errors import HTTP_ERRORS, render_error


def _unauthorized():
    code, msgid = HTTP_ERRORS[401]
    return render_error(code, 401, _(msgid), headers={"WWW-Authenticate": 'Bearer realm="geoapp"'})


def api_login_required(view):
    """Who is asking is decided in one place, web/auth.py: the bearer key (other apps) or the
    session cookie (our own pages). A cookie is sent by the browser on its own, so a state-changing
    request that rides on it must also carry the page's CSRF token (header X-CSRFToken); a bearer
    key cannot be sent by a forged cross-site request, so it needs none."""
    from .auth import request_user

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user, via = request_user()
        if user is None:
            return _unauthorized()
        if via == "session" and request.method not in ("GET", "HEAD", "OPTIONS"):
            current_app.extensions["csrf"].protect()
        g.user = user
        g.viewer = Viewer.of(user)
        return view(*args, **kwargs)
    return wrapper


def json_object() -> dict:
    """The request's JSON body as an object; else the one refusal every API gives (malformed JSON,
    nested too deep for the parser, or not an object)."""
    try:
        body = request.get_json(silent=False) if request.is_json else None
    except (BadRequest, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise refusal("body", "object")
    return body


def report_filter(query: ReportQuery, viewer: Viewer) -> ReportFilter:
    """The console's filters (query string) as the domain's ReportFilter — every list and map uses this."""
    start, end = query.period(settings().display_tz)
    return ReportFilter(bbox=query.bbox, statuses=query.status, street=query.street,
                        reporter_id=viewer.user_id if query.mine else None, category=query.category,
                        unit=query.unit, created_from=start, created_before=end, overdue=query.overdue,
                        album=query.album, viewer=viewer, limit=query.limit, offset=query.offset)


def report_body(session, record, viewer: Viewer) -> dict:
    """One report as the API and the pages show it to this viewer: with its history and the actions
    this viewer may take when they see it in full."""
    seen = access_to(viewer, record)
    body = present.report(record, seen)
    if seen == FULL:
        body["events"] = [present.event(e) for e in events_of(session, record["id"])]
        body["actions"] = lifecycle.available_actions(viewer, record)
    return body
