"""The app's log lines and each request's id (README "Logs").

Every request gets an id: the `X-Request-ID` nginx sends (`proxy_set_header X-Request-ID
$request_id`, the same id nginx writes in its own access log) when the app is behind that proxy
(GEOAPP_PROXY_HOPS >= 1) and the id is a sane token, otherwise a fresh one. It is `g.request_id`,
it is sent back in the response's `X-Request-ID`, and it is on every log record made while the
request is handled (a record factory, so every handler sees it, not only ours).

GEOAPP_LOG_FORMAT=json (production) writes one JSON object per line to stderr, which gunicorn's
supervisor (systemd or supervisord) appends to /var/log/geoapp/app.log; `text` (the default) is for
a developer's terminal. Each request ends with one access line (logger `geoapp.access`): method,
path, the query's parameter names (never their values: a search term or a token is not an
auditor's business), status, duration, the signed-in user's id, the client's address as ProxyFix
gives it. Headers, cookies and bodies are never logged, so neither are passwords nor API keys.

The standard library's logging with a small Formatter, rather than python-json-logger: a dozen
lines, and one dependency fewer to keep up to date on a city's server.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# what nginx's $request_id looks like (32 hex digits), with room for other proxies' ids; anything
# else (spaces, quotes, newlines, an overlong value) is replaced, so a client cannot forge log lines
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
FORMATS = ("text", "json")

access_log = logging.getLogger("geoapp.access")

# every LogRecord has these; any other attribute came as `extra=` and becomes a field of its own
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}
# json.dumps escapes the ASCII control characters; these three also end a line for some readers
# (Python's str.splitlines, some editors), so they are escaped too: one record stays one line
_UNICODE_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_CONTROL = re.compile("[\x00-\x1f\x7f\u0085\u2028\u2029]")


def request_id_of(header: str | None, trusted: bool) -> str:
    """The id for this request: the proxy's, when there is a trusted one and its id is sane."""
    if trusted and header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex  # nginx's $request_id has the same shape


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


def _utc_iso(created: float) -> str:
    return datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, request_id, pid, and any
    fields passed as `extra=` (the access line's method, path, status, ...)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "pid": record.process,  # which gunicorn worker: a stuck or crashing one is found by it
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # compact, as nginx's lines are: `"request_id":"…"` finds a request in both files alike;
        # Chinese stays readable
        line = json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":"))
        for char, escaped in _UNICODE_BREAKS.items():
            line = line.replace(char, escaped)  # only ever inside a JSON string: still valid JSON
        return line


class TextFormatter(logging.Formatter):
    """For a terminal: `time LEVEL logger [request id] message`, the message's control characters
    shown escaped (a traceback, added after it, keeps its lines)."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = _CONTROL.sub(lambda m: repr(m.group(0))[1:-1], record.message)
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().formatMessage(record)


class _StderrHandler(logging.StreamHandler):
    """sys.stderr as it is when a record is written, not when the app was made (gunicorn's worker
    and pytest's capture both replace it)."""

    _geoapp = True  # ours: replaced, not duplicated, when another app is made in this process

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def _install_record_factory() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_geoapp", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        if has_request_context():  # elsewhere a caller may pass its own request_id as extra=
            record.request_id = g.get("request_id")
        return record
    factory._geoapp = True
    logging.setLogRecordFactory(factory)


def configure_logging(fmt: str) -> None:
    """The process's log output: one handler on the root logger, writing `fmt` lines to stderr; the
    app's own loggers (`geoapp.*`) at INFO, everything else at its default (warnings and up)."""
    from flask.logging import default_handler

    if fmt not in FORMATS:
        raise ValueError(f"GEOAPP_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    _install_record_factory()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_geoapp", False)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    app_logger = logging.getLogger("geoapp")  # also Flask's app.logger (the app's import name)
    app_logger.removeHandler(default_handler)  # ours, on the root, writes its records once
    if app_logger.level == logging.NOTSET:
        app_logger.setLevel(logging.INFO)


def _signed_in_user_id():
    """The signed-in user's id when this request already looked them up (Flask-Login keeps the
    user in g._login_user); never a lookup of its own just for the log."""
    user = g.get("_login_user")
    if user is not None and getattr(user, "is_authenticated", False):
        return getattr(user, "id", None)
    return None


def init_app(app: Flask, settings) -> None:
    """Call first in create_app: later hooks' records then carry the request id too."""
    configure_logging(settings.log_format)
    trusted = settings.trusted_proxy_hops > 0  # without a proxy, the header is the client's own

    @app.before_request
    def _start_request():
        g.request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER), trusted)
        g.request_started = time.perf_counter()

    @app.after_request
    def _end_request(response):
        request_id = g.get("request_id") or request_id_of(None, False)
        response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
        fields = {
            "method": request.method,
            "path": request.path,  # without the query string: its values may be secrets
            "status": response.status_code,
            "duration_ms": duration_ms,
            "user_id": _signed_in_user_id(),
            "remote_addr": request.remote_addr,
        }
        if request.args:
            fields["query_keys"] = sorted(set(request.args.keys()))
        access_log.info("%s %s %s %s ms", request.method, request.path, response.status_code, duration_ms,
                        extra=fields)
        return response
