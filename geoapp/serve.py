"""`geoapp serve`: the app under waitress, the production WSGI server (`scripts/serve` ends with it).

It binds the port before saying anything, so "serving on …" is printed only when the server really
listens, and a busy port is refused in one plain sentence instead of a traceback.

waitress reads a whole request body (to memory, past `inbuf_overflow` to a temporary file) before the
app sees the request, so the app's own size limit comes too late to protect the disk: with waitress's
default `max_request_body_size` of 1 GB, three anonymous 300 MB uploads filled 928 MiB of temp.
Here waitress refuses anything larger than the app would accept anyway (UPLOAD_MAX_MB plus
multipart overhead), from the Content-Length header before reading the body.
"""
from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
import threading

import click
from flask import current_app

# A JSON report is a few KB and stays in memory; a photo body (up to UPLOAD_MAX_MB) goes to a temporary
# file instead. This is waitress's default, stated here because the worst case depends on it: raising it
# would put up to CONNECTION_LIMIT x the body limit into RAM instead of temp files.
INBUF_OVERFLOW = 512 * 1024
# At most this many connections at once (waitress's default, stated for the same reason): the worst case
# of buffered request bodies is CONNECTION_LIMIT x the body limit (100 x 10 MB ≈ 1 GB with the default
# UPLOAD_MAX_MB), each needing a connection held open, instead of 1 GB per request. 29 phones and a few
# browsers (about 6 connections each) fit; beyond it, new connections wait in the listen backlog rather
# than being refused.
CONNECTION_LIMIT = 100


def max_request_body_size(app_limit: int) -> int:
    """The largest request body waitress accepts: twice the app's own limit (Flask's
    MAX_CONTENT_LENGTH, Settings.request_body_max_bytes). A photo a little over the limit still reaches the app, which refuses it
    with its JSON `photo_too_large` in the user's language (a phone can show that); anything
    far larger is cut off by waitress, from Content-Length, before a byte of the body is read."""
    return 2 * app_limit


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _can_bind(host: str, port: int) -> bool:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False
    for family, type_, proto, _, addr in infos:
        with socket.socket(family, type_, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
            try:
                s.bind(addr)
            except OSError:
                return False
    return True


def _next_free_port(host: str, port: int) -> int | None:
    return next((p for p in range(port + 1, min(port + 100, 65536)) if _can_bind(host, p)), None)


def _refusal(exc: OSError, host: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        free = _next_free_port(host, port) or port + 1
        return (f"port {port} on {host} is already in use (another geoapp or another program); "
                f"run GEOAPP_PORT={free} scripts/serve (or geoapp serve --port {free}), or stop the other one")
    if exc.errno == errno.EACCES:
        return (f"not allowed to listen on port {port} on {host} (ports below 1024 need root); "
                f"choose another with GEOAPP_PORT")
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return f"cannot listen on {host}: it is not an address of this machine ({exc.strerror or exc}); check GEOAPP_HOST"
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"


@click.command("serve")
@click.option("--host", envvar="GEOAPP_HOST", default="127.0.0.1", show_default=True, show_envvar=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", envvar="GEOAPP_PORT", default=5000, show_default=True, show_envvar=True,
              type=click.IntRange(0, 65535), help="TCP port (0: any free one, printed).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(min=1),
              help="Requests handled at once.")
def serve(host: str, port: int, threads: int) -> None:
    """Serve the app with waitress (what scripts/serve runs); refuses clearly when the port is taken."""
    from waitress import create_server

    app = current_app._get_current_object()  # built by geoapp.create_app() (the CLI's app factory)
    settings = app.config["GEOAPP"]
    logging.basicConfig()  # waitress logs warnings (e.g. a full task queue) through `logging`, as waitress.serve does
    try:
        # create_server binds and listens at once (waitress.serve is create_server + a print + run);
        # binding here, not probing first, leaves no gap in which another program could take the port.
        server = create_server(
            app, host=host, port=port, threads=threads,
            max_request_body_size=max_request_body_size(settings.request_body_max_bytes),
            inbuf_overflow=INBUF_OVERFLOW, connection_limit=CONNECTION_LIMIT,
        )
    except OSError as exc:  # socket.gaierror is an OSError too
        click.echo(f"[geoapp] {_refusal(exc, host, port)}", err=True)
        sys.exit(1)
    except ValueError as exc:  # waitress: a host name that does not resolve ("Invalid host/port specified.")
        click.echo(f"[geoapp] cannot listen on {host!r} port {port}: {exc} Check GEOAPP_HOST", err=True)
        sys.exit(1)
    bound_port = getattr(server, "effective_port", None) or server.effective_listen[0][1]
    url = f"http://{_url_host(host)}:{bound_port}/"
    click.echo(f"[geoapp] serving on {url}  (the map: {url}map; Ctrl-C stops the server, "
               f"not the database)")
    sys.stdout.flush()
    # waitress stops on Ctrl-C (KeyboardInterrupt) or SystemExit, giving running requests a few seconds;
    # make `kill` (SIGTERM) do the same instead of cutting them off.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    start_notifier(app, settings.notify_interval_s)
    server.run()


def start_notifier(app, interval_s: float, stop: threading.Event | None = None) -> threading.Thread | None:
    """Every `interval_s` seconds, in a daemon thread: the overdue sweep and the e-mail outbox
    (`geoapp notify run`, domain/notifications.py), each round under an advisory lock so that other
    processes running it too (`geoapp notify loop`, a second `geoapp serve`) skip rather than send
    (geoapp/notifier.py). A failing round is logged and the next one tries again; the thread dies
    with the server, or ends when `stop` is set. interval_s <= 0: not started (cron runs it instead)."""
    if interval_s <= 0:
        return None
    from .notifier import run_rounds

    thread = threading.Thread(target=run_rounds, args=(app, interval_s, stop or threading.Event()),
                              kwargs={"first_at_once": False}, name="geoapp-notify", daemon=True)
    thread.start()
    return thread
