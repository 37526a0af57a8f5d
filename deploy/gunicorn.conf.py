"""gunicorn for geoapp in production (scripts/install-production; deploy/systemd/geoapp.service).

Settings come from the environment the install writes (/etc/geoapp/geoapp.env), so one file serves
every machine:
  GEOAPP_BIND      where to listen: nginx's upstream, never a public address (default the unix socket)
  GEOAPP_WORKERS   processes (default 2 x cores + 1, at most 9); GEOAPP_THREADS threads each (default 4)
Every piece of state the workers share lives in PostgreSQL or on disk (README "Production"): the
sign-in limits, the secret key (created once, atomically), the photo-decode slots (lock files), the
notification sender (one process of its own, `geoapp notify loop`).
"""
import multiprocessing
import os

bind = [os.environ.get("GEOAPP_BIND", "unix:/run/geoapp/gunicorn.sock")]
# gthread: a worker's threads wait on the database and on photo uploads that nginx has already buffered
worker_class = "gthread"
workers = int(os.environ.get("GEOAPP_WORKERS") or min(2 * multiprocessing.cpu_count() + 1, 9))
threads = int(os.environ.get("GEOAPP_THREADS") or 4)
# No preload: each worker opens its own database pool after the fork (a pool must not cross a fork),
# and `kill -HUP` then loads new code into fresh workers while the old ones finish their requests.
preload_app = False
# An album is rendered in ~14 s (README "The album"); nothing legitimate takes a minute.
timeout = 90
graceful_timeout = 30
keepalive = 5
# nginx has read the whole request already (it buffers bodies); these bound what reaches us anyway
limit_request_line = 8190
limit_request_fields = 100
# No file the app writes is for other users (photos and albums are written 0640 explicitly,
# geoapp/domain/report_photos.py). Group write is kept for the socket alone: it is created 0770 in
# /run/geoapp, whose group is nginx's www-data (setgid), so nginx and no one else may connect.
umask = 0o007
# The app logs each request itself, as a JSON line with the request id (geoapp/logs.py);
# gunicorn's own messages (workers started, timeouts) go to stderr, which the supervisor keeps.
accesslog = None
errorlog = "-"
loglevel = "info"
# gunicorn's own lines as the app's are: JSON (geoapp/logs.py), so app.log is one format throughout
if os.environ.get("GEOAPP_LOG_FORMAT", "text").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "geoapp.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        # each key replaces gunicorn's default (which names its own handlers): all three are given;
        # the root gets its handler from the app (geoapp/logs.py configure_logging)
        "root": {"level": "WARNING", "handlers": []},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
                    "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False}},
    }
# ProxyFix in the app trusts exactly one hop (GEOAPP_PROXY_HOPS=1); gunicorn itself trusts none.
forwarded_allow_ips = ""
proc_name = "geoapp"


def when_ready(server):
    """Hand the socket to nginx's group (www-data), so nginx and no other account may connect. The
    install makes geoapp a member of www-data for this one chgrp (a process may give a file it owns
    only to a group it belongs to); nginx gets no access to geoapp's data that way."""
    import grp

    for address in bind:
        if address.startswith("unix:"):
            try:
                os.chown(address[5:], -1, grp.getgrnam(os.environ.get("GEOAPP_SOCKET_GROUP", "www-data")).gr_gid)
            except (KeyError, PermissionError) as exc:
                server.log.warning("socket %s keeps its group: %s", address, exc)
