"""Every error -> one (code, status, message), rendered per surface: JSON under /api/, a page elsewhere.

Domain refusals (geoapp.domain.errors) carry their own code, status and sentences; HTTP errors from
routing and Werkzeug get theirs from HTTP_ERRORS; a database that cannot be reached is a 503 with
Retry-After, never a 500. Anything else is a bug: logged with its traceback, answered 500 in the
same shape.
"""
from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from ..domain.errors import BodyTooLarge, DatabaseUnavailable, DomainError, PhotoTooLarge
from .i18n import current_language

log = logging.getLogger(__name__)

# status -> (code, zh, en) for errors raised by routing, Werkzeug and the view decorators
HTTP_ERRORS = {
    400: ("bad_request", "请求无效。", "The request is invalid."),
    401: ("unauthorized", "需要登录或有效的 API 密钥（请求头 Authorization: Bearer <密钥>）。",
          "Sign in, or send a valid API key (header Authorization: Bearer <key>)."),
    403: ("forbidden", "您的账号无权执行此操作。", "Your account may not do this."),
    404: ("not_found", "找不到该地址或对象。", "There is nothing at this address."),
    405: ("method_not_allowed", "该地址不支持 {method} 请求。", "This address does not accept {method} requests."),
    413: ("body_too_large", "请求体过大。", "The request body is too large."),
    415: ("unsupported_media_type", "不支持该请求内容类型。", "This content type is not supported."),
    429: ("too_many_requests", "请求过于频繁，请稍后再试。", "Too many requests; try again later."),
    500: ("internal_error", "服务器内部错误，已记录，请稍后重试。", "Internal server error; it has been logged. Try again later."),
    503: ("unavailable", "服务暂时不可用，请稍后重试。", "The service is unavailable; try again later."),
}

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
    details = {k: v for k, v in err.params.items() if not k.endswith("_zh")}
    headers = {"Retry-After": str(err.params["retry_after"])} if "retry_after" in err.params else None
    return render_error(err.code, err.status, err.message(current_language()), details, headers)


def _http_error(err: HTTPException):
    status = err.code or 500
    if isinstance(err, RequestEntityTooLarge):
        return _domain_error(_too_large())
    code, zh, en = HTTP_ERRORS.get(status, (err.name.lower().replace(" ", "_"), err.description, err.description))
    message = (en if current_language() == "en" else zh).format(method=request.method)
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
    code, zh, en = HTTP_ERRORS[500]
    return render_error(code, 500, en if current_language() == "en" else zh)


def init_app(app: Flask) -> None:
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(InternalServerError, _internal_error)

    @app.before_request
    def _cap_json_bodies():
        if request.mimetype != "multipart/form-data" and request.method in ("POST", "PUT", "PATCH"):
            request.max_content_length = min(JSON_BODY_MAX, app.config["MAX_CONTENT_LENGTH"])
