"""Every error -> one (code, status, message), rendered per surface: JSON under /api/, a page elsewhere.

Domain refusals (geoapp.domain.errors) carry their own code, status and sentence (said in the
request's language); HTTP errors from routing and Werkzeug get theirs from HTTP_ERRORS; a database
that cannot be reached is a 503 with Retry-After, never a 500. Anything else is a bug: logged with its traceback, answered 500 in the
same shape.
"""
from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from ..domain.errors import BodyTooLarge, DatabaseUnavailable, DomainError, PhotoTooLarge
from ..translations import N_, Text
from .i18n import current_language

log = logging.getLogger(__name__)

# status -> (code, msgid) for errors raised by routing, Werkzeug and the view decorators
HTTP_ERRORS = {
    400: ("bad_request", N_("请求无效。")),
    401: ("unauthorized", N_("需要登录或有效的 API 密钥（请求头 Authorization: Bearer <密钥>）。")),
    403: ("forbidden", N_("您的账号无权执行此操作。")),
    404: ("not_found", N_("找不到该地址或对象。")),
    405: ("method_not_allowed", N_("该地址不支持 {method} 请求。")),
    413: ("body_too_large", N_("请求体过大。")),
    415: ("unsupported_media_type", N_("不支持该请求内容类型。")),
    429: ("too_many_requests", N_("请求过于频繁，请稍后再试。")),
    500: ("internal_error", N_("服务器内部错误，已记录，请稍后重试。")),
    503: ("unavailable", N_("服务暂时不可用，请稍后重试。")),
}
OTHER_HTTP_ERROR = N_("请求无法完成（HTTP {status} {name}）。")

# JSON bodies carry a report's fields only; photos come as multipart. A small cap keeps a large
# JSON body from being parsed at all, and lets 413 say which limit was crossed.
JSON_BODY_MAX = 64 * 1024


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def render_error(code: str, status: int, message: str, details: dict | None = None,
                 headers: dict | None = None):
    """The one place a refusal becomes a response."""
    if is_api_request():
        body = {"error": code, "message": message}
        if details:
            body["details"] = details
        response = jsonify(body)
    else:
        response = render_template("errors/error.html", code=code, status=status, message=message)
    return response, status, headers or {}


def _domain_error(err: DomainError):
    lang = current_language()
    # the params, as data; a sentence among them (a Text) said in the reader's language
    details = {k: v.render(lang) if isinstance(v, Text) else v for k, v in err.params.items()
               if not k.endswith("_zh") and k != "field_label"}
    headers = {"Retry-After": str(err.params["retry_after"])} if "retry_after" in err.params else None
    return render_error(err.code, err.status, err.message(lang), details, headers)


def _http_error(err: HTTPException):
    status = err.code or 500
    if isinstance(err, RequestEntityTooLarge):
        return _domain_error(_too_large())
    if status in HTTP_ERRORS:
        code, msgid = HTTP_ERRORS[status]
        message = _(msgid).format(method=request.method)
    else:  # a status nothing here raises on purpose: its standard name, the sentence in the reader's language
        code, message = err.name.lower().replace(" ", "_"), _(OTHER_HTTP_ERROR).format(status=status, name=err.name)
    headers = {}
    if status == 401 and is_api_request():
        headers["WWW-Authenticate"] = 'Bearer realm="geoapp"'
    if status == 405 and getattr(err, "valid_methods", None):
        headers["Allow"] = ", ".join(err.valid_methods)
    if status == 429 and getattr(err, "retry_after", None):
        headers["Retry-After"] = str(err.retry_after)
    return render_error(code, status, message, headers=headers)


def _too_large() -> DomainError:
    from . import settings

    size = request.content_length or 0
    if request.mimetype == "multipart/form-data":
        return PhotoTooLarge(size_mb=size / 1024 / 1024, max_mb=settings().upload_max_mb)
    return BodyTooLarge(size_kb=size / 1024, max_kb=JSON_BODY_MAX / 1024)


def _database_error(err: DBAPIError):
    # Connection refused, dropped mid-request, server shutting down: the client should retry.
    # Other database errors (a constraint we failed to check first) are bugs: 500, logged.
    if isinstance(err, (OperationalError, InterfaceError)) or err.connection_invalidated:
        log.warning("database unavailable: %s", str(err.orig).strip().splitlines()[0] if err.orig else err)
        # The page's header would ask the database who is signed in, again: show it signed out.
        g._login_user = current_app.login_manager.anonymous_user()
        return _domain_error(DatabaseUnavailable())
    return _internal_error(err)


def _internal_error(err: Exception):
    original = getattr(err, "original_exception", None) or err
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=original)
    code, msgid = HTTP_ERRORS[500]
    return render_error(code, 500, _(msgid))


def init_app(app: Flask) -> None:
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(InternalServerError, _internal_error)

    @app.before_request
    def _cap_json_bodies():
        if request.mimetype != "multipart/form-data" and request.method in ("POST", "PUT", "PATCH"):
            request.max_content_length = min(JSON_BODY_MAX, app.config["MAX_CONTENT_LENGTH"])
