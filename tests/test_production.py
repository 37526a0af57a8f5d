"""The production install, for real (scripts/install-production): Debian's nginx, gunicorn as the
user geoapp, PostgreSQL as postgres, all on loopback. It lays down /opt/geoapp, /etc/geoapp and
/var/lib/geoapp, so it runs only as root and where asked to: in CI (CI=true, a throwaway machine) or
with GEOAPP_TEST_PRODUCTION=1. It listens on high ports (18443, 18080) so it meets no other server."""
from __future__ import annotations

import os
import socket
import ssl
import stat
import subprocess
import time
import http.client
from pathlib import Path

import pytest

from geoapp.config import PROJECT_ROOT

HTTPS, HTTP = 18443, 18080
wanted = os.geteuid() == 0 and (os.environ.get("CI") or os.environ.get("GEOAPP_TEST_PRODUCTION") == "1")
pytestmark = pytest.mark.skipif(not wanted, reason="the production install runs as root in CI "
                                "or with GEOAPP_TEST_PRODUCTION=1 (it installs into /opt, /etc, /var)")


def install() -> subprocess.CompletedProcess:
    env = dict(os.environ, GEOAPP_HTTPS_PORT=str(HTTPS), GEOAPP_HTTP_PORT=str(HTTP), GEOAPP_DEMO="0")
    for name in ("DATABASE_URL", "OWNER_DATABASE_URL", "TEST_DATABASE_URL", "TEST_OWNER_DATABASE_URL"):
        env.pop(name, None)
    return subprocess.run([str(PROJECT_ROOT / "scripts" / "install-production")], env=env, capture_output=True,
                          text=True, timeout=1200)


@pytest.fixture(scope="module")
def installed():
    first = install()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    yield first


def https(path: str, method: str = "GET", body=None, headers=None, source: str = "127.0.0.1"):
    context = ssl._create_unverified_context()  # the install's self-signed certificate
    conn = http.client.HTTPSConnection("127.0.0.1", HTTPS, context=context, timeout=20,
                                       source_address=(source, 0))
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r, data


def pids_of(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def user_of(pid: int) -> str:
    import pwd

    return pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name


def test_ready_through_nginx_and_tls(installed):
    r, body = https("/readyz")
    assert r.status == 200, body
    assert r.getheader("Strict-Transport-Security", "").startswith("max-age=")
    assert len(r.msg.get_all("Strict-Transport-Security")) == 1


def test_plain_http_is_redirected_to_https(installed):
    conn = http.client.HTTPConnection("127.0.0.1", HTTP, timeout=10)
    conn.request("GET", "/login?next=/map")
    r = conn.getresponse()
    assert r.status == 301 and r.getheader("Location") == f"https://127.0.0.1:{HTTPS}/login?next=/map"


def test_static_files_are_served_by_nginx_with_a_long_lifetime(installed):
    r, page = https("/login")
    assert r.status == 200
    import re

    css = re.search(rb'href="(/static/css/[^"]+\?v=[0-9a-f]+)"', page).group(1).decode()
    r, _ = https(css)
    assert r.status == 200 and "immutable" in r.getheader("Cache-Control", "")


def test_each_process_runs_as_its_own_user(installed):
    gunicorn = pids_of("gunicorn -c /opt/geoapp/deploy/gunicorn.conf.py")
    assert len(gunicorn) >= 3  # a master and its workers
    assert {user_of(p) for p in gunicorn} == {"geoapp"}
    assert {user_of(p) for p in pids_of("nginx: worker process")} == {"www-data"}
    assert {user_of(p) for p in pids_of("postgres -D /var/lib/postgresql/15/geoapp")} == {"postgres"}
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
    # the database listens on loopback only
    assert not any(":5433" in line and not ("127.0.0.1:5433" in line or "[::1]:5433" in line)
                   for line in listening.splitlines())


def test_data_is_the_apps_alone_and_the_code_is_read_only_to_it(installed):
    data = Path("/var/lib/geoapp")
    mode = data.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o750 and user_of_path(data) == "geoapp"
    key = data / "secret_key"
    assert key.exists() and stat.S_IMODE(key.stat().st_mode) & 0o007 == 0
    env = Path("/etc/geoapp/geoapp.env")
    assert stat.S_IMODE(env.stat().st_mode) == 0o640
    assert stat.S_IMODE(Path("/etc/geoapp/owner.env").stat().st_mode) == 0o600
    for path in ("/opt/geoapp/venv/lib", "/opt/geoapp/src/geoapp", "/opt/geoapp/deploy"):
        assert subprocess.run(["runuser", "-u", "geoapp", "--", "test", "-w", path]).returncode != 0, path
    # no other local account reaches the data
    assert subprocess.run(["runuser", "-u", "nobody", "--", "ls", "/var/lib/geoapp"],
                          capture_output=True).returncode != 0


def user_of_path(path: Path) -> str:
    import pwd

    return pwd.getpwuid(path.stat().st_uid).pw_name


def test_nginx_limits_sign_in_attempts_per_address(installed):
    """nginx's limit_req on /login: a flood from one address is cut to its burst (429), while
    another address is still served."""
    statuses = [https("/login", source="127.0.0.2")[0].status for _ in range(30)]
    assert 429 in statuses and statuses[0] == 200
    assert https("/login", source="127.0.0.3")[0].status == 200


def sign_in(username: str, password: str, source: str) -> tuple[int, str]:
    """The sign-in page as a browser uses it, from the address `source`: GET /login (its CSRF token
    and cookie), then POST the form, on one TLS connection."""
    import re
    from urllib.parse import urlencode

    context = ssl._create_unverified_context()
    conn = http.client.HTTPSConnection("127.0.0.1", HTTPS, context=context, timeout=20, source_address=(source, 0))
    try:
        conn.request("GET", "/login")
        r = conn.getresponse()
        page = r.read()
        assert r.status == 200, (source, r.status)
        cookie = r.getheader("Set-Cookie").split(";")[0]
        token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
        conn.request("POST", "/login", body=urlencode({"csrf_token": token, "username": username, "password": password}),
                     headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded",
                              "Referer": f"https://127.0.0.1:{HTTPS}/login"})
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def app_log_lines() -> list[dict]:
    import json

    lines = []
    for line in Path("/var/log/geoapp/app.log").read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_the_sign_in_limit_holds_across_the_workers_and_counts_the_real_client(installed):
    """LOGIN_FAILS_PER_USER (5) failures, each from an address of its own, reach gunicorn's workers
    through nginx; the sixth attempt, from yet another address, is refused by the app (its 429, not
    nginx's): the count is one, shared by every worker (rate_limits). The app sees each client's
    own address (ProxyFix, one hop): its log line and its per-address count name 127.0.0.x, never
    nginx's 127.0.0.1."""
    import secrets

    name = f"probe-{secrets.token_hex(4)}"
    statuses = [sign_in(name, "wrong password", f"127.0.0.{21 + i}")[0] for i in range(5)]
    assert statuses == [401] * 5, statuses
    status, page = sign_in(name, "wrong password", "127.0.0.26")
    assert status == 429 and "登录尝试过多" in page, (status, page[:300])

    posts = [e for e in app_log_lines() if e.get("logger") == "geoapp.access" and e.get("path") == "/login"
             and e.get("method") == "POST" and e.get("remote_addr", "").startswith("127.0.0.2")]
    assert {e["remote_addr"] for e in posts} >= {f"127.0.0.{21 + i}" for i in range(6)}
    print("workers that counted the failures:", sorted({e["pid"] for e in posts[-6:]}))
    keys = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-p", "5433", "-d", "geoapp",
                           "-tAc", "SELECT key FROM rate_limits"], capture_output=True, text=True, check=True).stdout
    assert "127.0.0.21" in keys and name in keys, keys


def test_nginx_and_the_app_log_the_same_request_id(installed):
    r, _ = https("/readyz", source="127.0.0.99")
    request_id = r.getheader("X-Request-ID")
    assert request_id and len(request_id) == 32
    time.sleep(0.5)  # nginx writes its line once the response is sent
    assert any(e.get("request_id") == request_id and e.get("path") == "/readyz" for e in app_log_lines())
    import json

    nginx = [json.loads(line) for line in Path("/var/log/nginx/geoapp-access.log").read_text().splitlines()
             if request_id in line]
    assert nginx and nginx[0]["remote_addr"] == "127.0.0.99" and nginx[0]["uri"] == "/readyz"


def test_logs_are_the_apps_own_and_kept_190_days(installed):
    assert Path("/etc/logrotate.d/geoapp").read_text() == (PROJECT_ROOT / "deploy/logrotate/geoapp").read_text()
    for log in Path("/var/log/geoapp").glob("*.log"):
        st = log.stat()
        assert user_of_path(log) == "geoapp" and stat.S_IMODE(st.st_mode) == 0o640, log
    debug = subprocess.run(["logrotate", "-d", "/etc/logrotate.d/geoapp"], capture_output=True, text=True)
    assert debug.returncode == 0, debug.stderr
    assert "rotate 190" in Path("/etc/logrotate.d/geoapp").read_text()


def user_of_path(path: Path) -> str:
    import pwd

    return pwd.getpwuid(path.stat().st_uid).pw_name


def test_a_client_that_sends_its_headers_slowly_is_cut_off(installed):
    """client_header_timeout 10 s: a connection that never finishes its request is closed by nginx,
    bounded here at 30 s."""
    context = ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", HTTPS), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET /login HTTP/1.1\r\nHost: localhost\r\n")  # and never the blank line
            started = time.monotonic()
            try:
                data = tls.recv(1024)
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            waited = time.monotonic() - started
    assert waited < 25 and (data == b"" or b"408" in data)


def test_running_it_again_changes_nothing(installed):
    before = sorted(pids_of("gunicorn -c /opt/geoapp/deploy/gunicorn.conf.py"))
    again = install()
    assert again.returncode == 0, again.stderr[-3000:]
    assert "installing release" not in again.stderr
    assert sorted(pids_of("gunicorn -c /opt/geoapp/deploy/gunicorn.conf.py")) == before
    assert https("/readyz")[0].status == 200


def test_a_graceful_reload_drops_no_request(installed):
    """An upgrade's reload (the install sends gunicorn HUP when the code changed): new workers start
    while the old ones finish what they hold, on the same socket. Requests keep arriving through
    nginx all the while; every one is answered 200, and afterwards other workers answer."""
    import threading

    gunicorns = pids_of("gunicorn -c /opt/geoapp/deploy/gunicorn.conf.py")

    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    master = next(p for p in gunicorns if parent(p) not in gunicorns)
    workers_before = {p for p in gunicorns if parent(p) == master}
    statuses: list = []
    stop = threading.Event()

    def client(n: int):
        while not stop.is_set():
            try:
                statuses.append(https("/readyz", source=f"127.0.0.{60 + n}")[0].status)
            except OSError as e:  # a dropped connection is what this test is about
                statuses.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    subprocess.run(["supervisorctl", "signal", "HUP", "geoapp:geoapp-web"], check=True, capture_output=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the old workers have all gone
        now = set(pids_of("gunicorn -c /opt/geoapp/deploy/gunicorn.conf.py")) - {master}
        if now and not (now & workers_before):
            break
        time.sleep(0.2)
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    workers_after = set(pids_of("gunicorn -c /opt/geoapp/deploy/gunicorn.conf.py")) - {master}
    print(f"{len(statuses)} requests during the reload; workers {sorted(workers_before)} -> {sorted(workers_after)}")
    assert workers_after and not (workers_after & workers_before)
    assert len(statuses) > 20 and set(statuses) == {200}, [s for s in statuses if s != 200][:5]


def test_every_wal_segment_is_archived_for_point_in_time_recovery(installed):
    """pgBackRest (docs/backup-and-pitr.md; the drill itself is tests/test_pitr.py): the install made
    the stanza and a first full backup, and PostgreSQL's archive_command succeeds — a switched WAL
    segment arrives in the repository."""
    def psql(sql: str) -> str:
        return subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-p", "5433", "-d", "postgres",
                               "-tAc", sql], capture_output=True, text=True, check=True, cwd="/").stdout.strip()

    assert psql("SHOW archive_mode") == "on"
    psql("SELECT pg_logical_emit_message(false, 'geoapp', 'archive probe')")  # a WAL record, so there is a segment to switch
    segment = psql("SELECT pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and psql("SELECT last_archived_wal FROM pg_stat_archiver") < segment:
        time.sleep(0.5)
    assert psql("SELECT last_archived_wal FROM pg_stat_archiver") >= segment
    info = subprocess.run(["runuser", "-u", "postgres", "--", "pgbackrest", "--config=/etc/pgbackrest/geoapp.conf",
                           "--stanza=geoapp", "--output=json", "info"], capture_output=True, text=True, check=True,
                          cwd="/").stdout
    import json

    [stanza] = json.loads(info)
    assert stanza["status"]["code"] == 0 and any(b["type"] == "full" for b in stanza["backup"])
    assert stat.S_IMODE(Path("/etc/pgbackrest/geoapp.conf").stat().st_mode) == 0o640
