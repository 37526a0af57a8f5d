"""State that several gunicorn workers share (issue [5] item 3): the sign-in limits in PostgreSQL
(geoapp/ratelimit_store.py), the client's address behind the proxy (ProxyFix), the secret key made
once, the photo-decode slots per machine, one notification sender."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from sqlalchemy import text

from geoapp.config import PROJECT_ROOT
from geoapp.domain import notifications, photos
from geoapp.domain.errors import ServerBusy
from geoapp.notifier import run_round

from .conftest import AuthActions, jpeg, report_body


def failed_sign_in(app, client, username: str = "rep01"):
    return AuthActions(app, client).login(username, "wrong password", client=client)


# --- the sign-in limits, shared by every worker ------------------------------------------------

def test_the_sign_in_limit_holds_across_two_workers(make_app, users):
    one, two = make_app(), make_app()  # two create_app, as two gunicorn workers build them
    assert one.config["GEOAPP"].ratelimit_storage_uri == "database"  # the default
    for _ in range(5):
        assert failed_sign_in(one, one.test_client()).status_code == 401
    refused = failed_sign_in(two, two.test_client())
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # the right password too, on either worker, until the window ends
    assert AuthActions(two, two.test_client()).login("rep01").status_code == 429
    assert AuthActions(one, one.test_client()).login("rep02").status_code == 302  # others are not locked


def test_a_count_outlives_the_request_and_a_new_window_starts_afresh(app, db, users):
    limiter = app.extensions["geoapp_sign_in_throttle"].limiter.limiter
    storage = limiter.storage
    assert storage.incr("k", 60) == 1 and storage.incr("k", 60, amount=2) == 3
    assert storage.get("k") == 3 and storage.get_expiry("k") > time.time() + 50
    with db.engine.begin() as conn:  # the window ends (as if 60 s had passed)
        conn.execute(text("UPDATE rate_limits SET expires_at = now() - interval '1 second' WHERE key = 'k'"))
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1  # a new window, not 4
    storage.clear("k")
    assert storage.get("k") == 0


def test_concurrent_failures_are_all_counted(app, users):
    storage = app.extensions["geoapp_sign_in_throttle"].limiter.limiter.storage
    threads = [threading.Thread(target=lambda: [storage.incr("race", 60) for _ in range(10)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert storage.get("race") == 80


def test_ended_windows_are_cleaned_up_by_later_writes(app, db, users):
    storage = app.extensions["geoapp_sign_in_throttle"].limiter.limiter.storage
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO rate_limits (key, count, expires_at) "
                          "SELECT 'old' || i, 1, now() - interval '1 hour' FROM generate_series(1, 30) i"))
    storage.incr("fresh", 60)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT key FROM rate_limits")).scalars().all() == ["fresh"]


def test_memory_storage_can_still_be_chosen(make_app, users):
    app = make_app(ratelimit_storage_uri="memory://")
    assert type(app.extensions["geoapp_sign_in_throttle"].limiter.limiter.storage).__name__ == "MemoryStorage"


# --- the client's real address behind the proxy -----------------------------------------------

def proxied(app, forwarded_for: str):
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for)
    return client


def test_behind_one_proxy_the_limit_is_per_real_client(make_app, users):
    one, two = make_app(trusted_proxy_hops=1, login_fails_per_ip=3), make_app(trusted_proxy_hops=1, login_fails_per_ip=3)
    for name in ("rep01", "rep02", "rep03"):  # different names: only the address's count fills up
        assert failed_sign_in(one, proxied(one, "203.0.113.7"), name).status_code == 401
    assert failed_sign_in(two, proxied(two, "203.0.113.7"), "rep04").status_code == 429  # client A, other worker
    # client B, through the same nginx (the same 127.0.0.1), is not locked out
    assert AuthActions(two, proxied(two, "198.51.100.9")).login("rep05", client=proxied(two, "198.51.100.9")).status_code == 302
    # a spoofed header in front of nginx's is not believed: the last hop's address counts
    assert failed_sign_in(one, proxied(one, "198.51.100.9, 203.0.113.7"), "rep06").status_code == 429


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(make_app, users):
    app = make_app(trusted_proxy_hops=0, login_fails_per_ip=3)
    for i, name in enumerate(("rep01", "rep02", "rep03")):  # a new "address" each time: all from one socket
        assert failed_sign_in(app, proxied(app, f"192.0.2.{i + 1}"), name).status_code == 401
    assert failed_sign_in(app, proxied(app, "192.0.2.99"), "rep04").status_code == 429


# --- the secret key, made once --------------------------------------------------------------------

def test_processes_starting_together_agree_on_one_secret_key(tmp_path):
    var, go = tmp_path / "var", tmp_path / "go"
    script = textwrap.dedent(f"""
        import os, time
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        from geoapp.config import _secret_key
        print(_secret_key())
    """)
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | {"GEOAPP_VAR_DIR": str(var)}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                              text=True) for _ in range(8)]
    time.sleep(0.5)  # every one imported and waiting at the start line (they only read it after)
    go.touch()
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(keys) == 1 and len(keys.pop()) == 64
    key_file = var / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o640"
    assert sorted(p.name for p in var.iterdir()) == ["secret_key"]  # no temporary file left behind


# --- the photo-decode budget, per machine ------------------------------------------------------

HOLDER = """
import sys, time
from pathlib import Path
from geoapp.domain.photos import DecodeSlots
slot = DecodeSlots(Path(sys.argv[1]) / "decode-slots", int(sys.argv[2])).acquire(timeout=5)
print("held" if slot is not None else "none", flush=True)
sys.stdin.read()  # hold it until told
"""


def test_the_decode_slots_are_shared_by_every_process(tmp_path):
    holders = [subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "2"], cwd=PROJECT_ROOT,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        assert [h.stdout.readline().strip() for h in holders] == ["held", "held"]  # two processes, two slots
        photos.configure_decoding(slots=2, wait_s=0.3, run_dir=tmp_path)
        with pytest.raises(ServerBusy):  # this process finds none free and is refused after its wait
            photos.prepare_photo(jpeg(), max_bytes=10 * 2**20, max_px=1600)
        holders[0].stdin.close()  # one holder ends: its slot is free again (the lock goes with the file)
        holders[0].wait(10)
        assert photos.prepare_photo(jpeg(), max_bytes=10 * 2**20, max_px=1600)[:2] == b"\xff\xd8"
    finally:
        photos.configure_decoding()
        for h in holders:
            h.kill()
            h.wait(10)


def test_a_separate_run_dir_has_its_own_slots(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "a"), "1"], cwd=PROJECT_ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        photos.configure_decoding(slots=1, wait_s=0, run_dir=tmp_path / "b")
        assert photos.prepare_photo(jpeg(), max_bytes=10 * 2**20, max_px=1600)
    finally:
        photos.configure_decoding()
        holder.kill()
        holder.wait(10)


# --- one notification sender --------------------------------------------------------------------

class BlockingSender(notifications.Sender):
    """Records what it sends; the first delivery waits until released (a slow SMTP server)."""

    def __init__(self):
        self.sent, self.entered, self.release = [], threading.Event(), threading.Event()

    def deliver(self, message):
        self.entered.set()
        assert self.release.wait(30)
        self.sent.append(message.notification_id)


@pytest.fixture
def outbox(client, auth, streets, db):
    """Notifications waiting to be e-mailed: one report's line for every user, each with an address."""
    lon, lat = streets.point("S03", 0.5)
    assert client.post("/api/v1/reports", json=report_body(lon, lat), headers=auth("rep03")).status_code == 201
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET email = username || '@example.org'"))
        conn.execute(text("DELETE FROM notifications"))
        return conn.execute(text(
            "INSERT INTO notifications (user_id, report_id, kind) "
            "SELECT u.id, (SELECT min(id) FROM reports), 'dispatched' FROM users u ORDER BY u.id "
            "RETURNING id")).scalars().all()


def test_two_concurrent_rounds_send_each_message_once(app, db, settings, outbox, monkeypatch):
    assert len(outbox) > 20
    sender = BlockingSender()
    monkeypatch.setattr(notifications, "sender_from_settings", lambda _s: sender)
    results = {}
    first = threading.Thread(target=lambda: results.update(first=run_round(db, settings)))
    first.start()
    try:
        assert sender.entered.wait(30)  # the first round is sending, holding the lock
        results["second"] = run_round(db, settings)  # a second worker's round meanwhile
    finally:
        sender.release.set()
        first.join(30)
    assert results["second"] is None  # skipped, sent nothing
    assert results["first"]["sent"] == len(outbox)
    assert sorted(sender.sent) == outbox  # each exactly once
    assert run_round(db, settings)["sent"] == 0  # the lock was given back; nothing is left to send
    assert sorted(sender.sent) == outbox


def test_the_outbox_alone_never_sends_a_message_twice(app, db, outbox):
    """Without the lock (a second runner on a dropped lock): SKIP LOCKED still gives each row to one."""
    assert len(outbox) > 20
    a, b = BlockingSender(), BlockingSender()
    b.release.set()
    counts = {}

    def deliver(name, sender):
        with db.transaction() as s:
            counts[name] = notifications.deliver_pending(s, sender)
    first = threading.Thread(target=deliver, args=("a", a))
    first.start()
    try:
        assert a.entered.wait(30)
        deliver("b", b)  # while a holds its rows
    finally:
        a.release.set()
        first.join(30)
    assert sorted(a.sent + b.sent) == outbox and not set(a.sent) & set(b.sent)
    assert counts["b"]["sent"] == 0


def test_notify_loop_runs_rounds_and_stops_on_sigterm(app, db, settings):
    env = os.environ | {"DATABASE_URL": settings.database_url, "NOTIFY_INTERVAL_S": "0.2",
                        "GEOAPP_VAR_DIR": str(settings.photo_dir.parent), "SMTP_HOST": ""}
    proc = subprocess.Popen([sys.executable, "-c", "from geoapp.cli import main; main()", "notify", "loop"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "a round every 0.2 s" in proc.stdout.readline()
        time.sleep(1)  # a few rounds
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "notification sender stopped" in out


# --- the counters, updated after the photo work -------------------------------------------------

def test_intake_inserts_the_report_only_after_its_photos_are_published(client, auth, streets, db, monkeypatch):
    """The report's insert fires the triggers that lock the shared counter rows (report_cells,
    coverage_marks) until the commit: the watermarking must be over by then."""
    from geoapp.domain import intake, report_photos

    seen = []

    def publish_and_look(photo_dir, photos_, originals, evidence, *args, **kwargs):
        rows = report_photos.publish_photos(photo_dir, photos_, originals, evidence, *args, **kwargs)
        with db.engine.connect() as other:  # another worker's view: no counter row is held for it yet
            other.execute(text("SET lock_timeout = '100ms'"))
            other.execute(text("SELECT * FROM report_cells FOR UPDATE")).all()  # refused if one were locked
        seen.append(evidence.report_id)
        return rows
    monkeypatch.setattr(intake, "publish_photos", publish_and_look)
    lon, lat = streets.point("S03", 0.5)
    for _ in range(2):  # the second one finds the first's counter rows, and they are free
        r = client.post("/api/v1/reports", headers=auth("rep03"), content_type="multipart/form-data",
                        data={**{k: str(v) for k, v in report_body(lon, lat).items()}, "photo": (io.BytesIO(jpeg()), "a.jpg")})
        assert r.status_code == 201
        assert r.json["id"] == seen[-1]  # the watermark's id is the report's
    assert len(seen) == 2
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM report_cells WHERE level = 16 AND month = '-infinity'")).scalar_one() == 2
