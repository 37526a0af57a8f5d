"""The audit administrator's read side (geoapp/web/admin_audit.py) and `geoapp audit export`: the
API's filters and keyset pages (no row lost or repeated), who may read (the auditor only, by key and
by page), the AUDIT_READ row each read writes, refusals with their reason, the CSV (BOM, header,
hostile text kept inert), the page escaping what a refused sign-in typed, the export of old months
(refused inside 180 days; the chain still verifies from its anchor), and the page in chromium."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import shutil
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from geoapp.domain import audit
from geoapp.domain.audit import Actor, record_independently, verify
from geoapp.web.admin_audit import EVENT_LABELS
from tests.browser.conftest import browser, live_server  # noqa: F401 - their fixtures: a live server, chromium
from tests.test_i18n import user_data  # noqa: F401 - the fixture: what people wrote, which has no English

TZ = ZoneInfo("Asia/Shanghai")  # Settings' default display_tz, which the tests' settings keep
HYPERLINK = '=HYPERLINK("http://evil.example/","点我")'
SCRIPT = "<script>alert(1)</script>"
NOT_AUDITORS = ("dispatcher", "admin", "leader", "sysadmin", "secadmin", "rep01")
FIELDS = ", ".join(audit.FIELDS)


def rows(db, event: str | None = None) -> list[dict]:
    with db.engine.connect() as conn:
        where = "WHERE event = :e" if event else ""
        return [dict(r) for r in conn.execute(text(f"SELECT {FIELDS} FROM audit_log {where} ORDER BY id"),
                                              {"e": event}).mappings()]


def verified(db) -> audit.Verdict:
    with db.engine.connect() as conn:
        return verify(conn)


def backdate(owner_db, when: dict[int, dt.datetime]) -> None:
    """Move rows to other moments (as the owner), then re-hash the whole chain in id order from its
    start (the anchor's hash after an export, else GENESIS), so `verify` passes on the result:
    rows as they would be had they been written then."""
    with owner_db.engine.begin() as conn:
        for rid, at in when.items():
            conn.execute(text("UPDATE audit_log SET at = :at WHERE id = :id"), {"at": at, "id": rid})
        start = audit.anchor(conn)
        prev = start.last_hash if start else audit.GENESIS
        for row in conn.execute(text(f"SELECT {FIELDS} FROM audit_log ORDER BY id")).mappings().all():
            digest = audit.row_hash(prev, dict(row))
            conn.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :id"),
                         {"p": prev, "h": digest, "id": row["id"]})
            prev = digest


def local(day: dt.date, hh: int, mm: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), TZ)


# --- the API ------------------------------------------------------------------------------------

@pytest.fixture
def trail(db, owner_db, users):
    """Four rows of known moments, on one old local day D and just after it: alice signs in at
    D 10:00, bob fails at D 23:30 (15:30 UTC, the same UTC day as the next row), alice again at
    D+1 00:30 (16:30 UTC on D: in D by UTC, not by the city's clock), and leader exports now."""
    day = dt.datetime.now(TZ).date() - dt.timedelta(days=400)
    a = record_independently(db.engine, Actor(username="alice", role="dispatcher"), audit.SIGN_IN)
    b = record_independently(db.engine, Actor(username="bob"), audit.SIGN_IN_FAILED, outcome="failed")
    c = record_independently(db.engine, Actor(username="alice", role="dispatcher"), audit.SIGN_IN)
    d = record_independently(db.engine, Actor(username="leader", role="leader"), audit.EXPORT,
                             details={"format": "csv", "rows": 3})
    backdate(owner_db, {a: local(day, 10, 0), b: local(day, 23, 30), c: local(day + dt.timedelta(days=1), 0, 30)})
    assert verified(db).ok
    return {"day": day, "a": a, "b": b, "c": c, "d": d}


def ids(client, auth, query: str) -> list[int]:
    r = client.get(f"/api/v1/audit?{query}", headers=auth("auditor"))
    assert r.status_code == 200, r.get_data(as_text=True)
    return [row["id"] for row in r.get_json()["audit"]]


def test_filters_by_event_user_and_period_in_the_city_s_time_zone(client, auth, trail):
    t, day = trail, trail["day"].isoformat()
    next_day = (trail["day"] + dt.timedelta(days=1)).isoformat()
    assert ids(client, auth, "event=sign_in") == [t["c"], t["a"]]          # newest first
    assert ids(client, auth, "user=alice") == [t["c"], t["a"]]
    assert ids(client, auth, "user=bob&event=sign_in") == []
    # `to` is the whole local day: 23:30 is in, 00:30 the next morning (still D in UTC) is not
    assert ids(client, auth, f"from={day}&to={day}") == [t["b"], t["a"]]
    assert ids(client, auth, f"from={next_day}&to={next_day}") == [t["c"]]
    # moments with their zone; a '+' not written as %2B arrives as a space and still means the offset
    assert ids(client, auth, f"from={day}T12:00%2B08:00&to={next_day}T00:30:00%2B08:00") == [t["b"]]
    assert ids(client, auth, f"from={day}T12:00+08:00&to={next_day}T00:30:01+08:00") == [t["c"], t["b"]]
    assert ids(client, auth, f"from={day}T15:00Z&to={day}T16:00Z") == [t["b"]]
    r = client.get("/api/v1/audit?event=export", headers=auth("auditor")).get_json()
    [row] = r["audit"]
    assert row == {**row, "event": "export", "actor": "leader", "role": "leader", "outcome": "ok",
                   "details": {"format": "csv", "rows": 3}}
    assert set(row) == set(audit.FIELDS) | {"prev_hash", "hash"} and row["at"].endswith("+00:00")
    assert r["next"] is None


def test_keyset_pages_lose_and_repeat_no_row(client, auth, db, users):
    for n in range(23):
        record_independently(db.engine, Actor(username=f"user{n % 4}"), audit.SIGN_IN_FAILED, outcome="failed",
                             details={"n": n})
    expected = [r["id"] for r in reversed(rows(db))]
    seen, url, pages = [], "/api/v1/audit?limit=5", 0
    while url:
        r = client.get(url, headers=auth("auditor"))
        assert r.status_code == 200 and r.headers["Cache-Control"] == "private, no-store"
        body = r.get_json()
        assert len(body["audit"]) <= 5
        seen += [row["id"] for row in body["audit"]]
        url, pages = body["next"], pages + 1
        assert url is None or (url.startswith("/api/v1/audit?") and "limit=5" in url)
    assert seen == expected                              # every row once, newest first
    assert pages == -(-len(expected) // 5)               # no empty last page
    # each page was a read, recorded with its filters and rows, newer than everything it read
    reads = rows(db, audit.AUDIT_READ)
    assert len(reads) == pages and all(r["id"] > max(expected) for r in reads)
    assert [r["details"]["rows"] for r in reads] == [5] * (pages - 1) + [len(expected) - 5 * (pages - 1)]
    # the rows the auditor's own reads added come first on a fresh read, then the same ones again
    assert ids(client, auth, "limit=500") == [r["id"] for r in reversed(reads)] + expected
    assert verified(db).ok


def test_a_read_is_recorded_with_who_what_and_how_many(client, auth, trail, db):
    r = client.get(f"/api/v1/audit?event=sign_in&user=alice&from={trail['day']}", headers=auth("auditor"))
    assert r.status_code == 200 and len(r.get_json()["audit"]) == 2
    [read] = rows(db, audit.AUDIT_READ)
    with db.engine.connect() as conn:
        auditor = conn.execute(text("SELECT id FROM users WHERE username = 'auditor'")).scalar_one()
    assert (read["actor"], read["actor_id"], read["role"], read["outcome"], read["object_type"]) == \
        ("auditor", auditor, "auditor", "ok", "audit_log")
    start = dt.datetime.combine(trail["day"], dt.time(), TZ)
    assert read["details"] == {"format": "json", "event": "sign_in", "user": "alice",
                               "from": start.isoformat(), "rows": 2}
    assert verified(db).ok


@pytest.mark.parametrize("query, field, reason", [
    ("from=2026-13-01", "from", "YYYY-MM-DD"),
    ("from=yesterday", "from", "YYYY-MM-DD"),
    ("from=2026-05-01T08:00", "from", "zone"),           # a moment without its zone is ambiguous
    ("to=2026-05-01T08:00%2B25:00", "to", "zone"),
    ("to=9999-12-31", "to", "range"),
    ("from=2026-05-02&to=2026-05-01", "from", "before"),
    ("event=sign_inn", "event", "sign_in_failed"),
    ("after=abc", "after", "whole number"),
    ("limit=0", "limit", "from 1 to 500"),
    ("limit=501", "limit", "from 1 to 500"),
])
def test_bad_filters_are_refused_with_their_reason_in_both_languages(client, auth, db, users, query, field, reason):
    r = client.get(f"/api/v1/audit?{query}&lang=en", headers=auth("auditor"))
    assert r.status_code == 400
    body = r.get_json()
    assert body["error"] == "bad_input" and body["details"]["field"] == field
    assert body["message"].startswith(f"{field}: ") and reason in body["message"], body["message"]
    zh = client.get(f"/api/v1/audit?{query}&lang=zh", headers=auth("auditor")).get_json()["message"]
    assert re.search(r"[\u4e00-\u9fff]", zh) and "：" in zh
    assert rows(db, audit.AUDIT_READ) == []              # nothing was read, nothing is recorded


@pytest.mark.parametrize("query", ["user=%00", "user=" + "x" * 1000, "user=%ED%A0%80", "event=%00",
                                   "after=999999999999999999", "from=0001-01-01", "to=2026-05-01T00:00Z&lang=en"])
def test_odd_but_harmless_input_is_answered_not_crashed_on(client, auth, users, query):
    r = client.get(f"/api/v1/audit?{query}", headers=auth("auditor"))
    assert r.status_code in (200, 400), r.get_data(as_text=True)


def test_only_the_auditor_may_read_by_key_or_session(client, auth, as_user, users, db):
    assert client.get("/api/v1/audit").status_code == 401
    for who in NOT_AUDITORS:
        for query in ("", "?from=nonsense"):             # another role learns nothing from a 400 either
            r = client.get(f"/api/v1/audit{query}", headers=auth(who))
            assert r.status_code == 403, who
            assert r.get_json()["error"] == "not_permitted"
        assert as_user(who).get("/api/v1/audit").status_code == 403, who
    assert rows(db, audit.AUDIT_READ) == []
    assert as_user("auditor").get("/api/v1/audit").status_code == 200       # the page's session works too


# --- the page -----------------------------------------------------------------------------------

def test_the_page_is_the_auditor_s_alone(client, as_user, users):
    r = client.get("/admin/audit")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    for who in NOT_AUDITORS:
        assert as_user(who).get("/admin/audit").status_code == 403, who
        assert as_user(who).get("/admin/audit.csv").status_code == 403, who
    auditor = as_user("auditor")
    assert auditor.get("/").headers["Location"].endswith("/admin/audit")  # the auditor's home


def _table_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]


def test_the_page_filters_pages_and_escapes_what_a_refused_sign_in_typed(app, users, as_user, signin, db):
    signin.reset_limits()
    assert signin.login(SCRIPT, "whatever-password", client=app.test_client()).status_code == 401
    record_independently(db.engine, Actor(username="dispatcher", role="dispatcher"), audit.REPORT_VIEW,
                         object_type="report", object_id=7, details={"note": SCRIPT})
    auditor = as_user("auditor")
    html = auditor.get("/admin/audit?event=sign_in_failed").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and SCRIPT not in html
    assert "<script" not in html                          # the CSP forbids inline script: there is none
    assert "登录失败" in html and 'data-outcome="failed"' in html
    [failed] = rows(db, audit.SIGN_IN_FAILED)
    assert _table_ids(html) == [failed["id"]]
    assert failed["at"].astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S") in html   # the city's clock
    assert 'href="/admin/audit.csv?event=sign_in_failed"' in html
    details = auditor.get("/admin/audit?event=report_view").get_data(as_text=True)
    assert "{&#34;note&#34;: &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;}" in details and SCRIPT not in details
    assert "report 7" in details

    # keyset pages of 2: every row once, newest first (the page's own reads are newer than all it
    # pages through); "back to the newest" on every page but the first
    expected = [r["id"] for r in reversed(rows(db))]
    seen, url, pages = [], "/admin/audit?limit=2", 0
    while url:
        page = auditor.get(url).get_data(as_text=True)
        assert ("回到最新" in page) == (pages > 0)
        seen += _table_ids(page)
        found = re.search(r'id="audit-older" href="([^"]+)"', page)
        url, pages = (found.group(1).replace("&amp;", "&") if found else None), pages + 1
    assert seen == expected and pages == -(-len(expected) // 2)
    reads = rows(db, audit.AUDIT_READ)
    assert reads and all(r["details"]["format"] == "html" for r in reads)


def test_a_bad_filter_on_the_page_says_why_and_reads_nothing(as_user, users, db):
    r = as_user("auditor").get("/admin/audit?from=2026-02-30&user=%3Cb%3E")
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "开始时间：须为 YYYY-MM-DD 格式的日期" in html and 'value="&lt;b&gt;"' in html
    assert rows(db, audit.AUDIT_READ) == []
    r = as_user("auditor").get("/admin/audit.csv?to=nope&lang=en")
    assert r.status_code == 400 and "to: must be a date" in r.get_data(as_text=True)


def test_every_event_has_a_label_and_the_page_reads_in_english(as_user, users, db, user_data):
    from tests.test_i18n import CJK, shown_texts, without_user_data

    assert set(EVENT_LABELS) == set(audit.EVENTS)
    for event in audit.EVENTS:  # one row of each, so the walker sees every label
        record_independently(db.engine, Actor(username="cli:ops", role="cli"), event, details={"k": 1})
    r = as_user("auditor").get("/admin/audit?lang=en&limit=500")
    assert r.status_code == 200
    left = [t for t in without_user_data(shown_texts(r), user_data()) if CJK.search(t)]
    assert not left, left[:10]
    for bad in ("/admin/audit?lang=en&from=x", "/admin/audit?lang=en&event=x"):
        r = as_user("auditor").get(bad)
        assert r.status_code == 400
        assert not [t for t in without_user_data(shown_texts(r), user_data()) if CJK.search(t)]


# --- the CSV ------------------------------------------------------------------------------------

def test_the_csv_has_every_matching_row_and_runs_no_formula(app, users, as_user, signin, db, trail):
    signin.reset_limits()
    for name in (HYPERLINK, SCRIPT):
        assert signin.login(name, "whatever-password", client=app.test_client()).status_code == 401
    record_independently(db.engine, Actor(username="dispatcher", role="dispatcher"), audit.SIGN_IN_FAILED,
                         outcome="failed", object_id="-2+3", details={"typed": HYPERLINK, "html": SCRIPT})
    failed = rows(db, audit.SIGN_IN_FAILED)
    r = as_user("auditor").get("/admin/audit.csv?event=sign_in_failed")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Cache-Control"] == "private, no-store" and "attachment" in r.headers["Content-Disposition"]
    body = r.get_data(as_text=True)
    assert body.startswith("\ufeff")                      # Excel on Chinese Windows reads UTF-8 by the BOM
    table = list(csv.reader(io.StringIO(body[1:])))
    header = table[0]
    assert header[:4] == ["编号", "时间（Asia/Shanghai）", "用户编号", "操作人"] and header[-1] == "哈希"
    by_id = {int(row[0]): dict(zip(header, row)) for row in table[1:]}
    assert list(by_id) == [f["id"] for f in reversed(failed)]      # every matching row, newest first
    actors = {row["操作人"] for row in by_id.values()}
    assert "'" + HYPERLINK in actors and SCRIPT in actors           # kept as text, never a formula
    hostile = by_id[failed[-1]["id"]]
    assert hostile["对象编号"] == "'-2+3"
    assert json.loads(hostile["详情"]) == {"typed": HYPERLINK, "html": SCRIPT}
    assert hostile["事件说明"] == "登录失败" and hostile["结果"] == "failed"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in table for cell in row)
    bob = by_id[trail["b"]]
    assert bob["时间（Asia/Shanghai）"] == f"{trail['day']} 23:30:00"
    [read] = rows(db, audit.AUDIT_READ)
    assert read["details"] == {"format": "csv", "event": "sign_in_failed"} and read["actor"] == "auditor"
    assert read["id"] not in by_id                         # the file holds what was there before the read
    english = as_user("auditor").get("/admin/audit.csv?lang=en&user=bob")
    lines = english.get_data(as_text=True)[1:].splitlines()
    assert lines[0].startswith("No.,Time (Asia/Shanghai),User ID,Actor,") and len(lines) == 2


# --- `geoapp audit export` ----------------------------------------------------------------------

def first_of_month(day: dt.date, months_back: int) -> dt.date:
    y, m = divmod(day.year * 12 + day.month - 1 - months_back, 12)
    return dt.date(y, m + 1, 1)


def test_export_writes_old_months_drops_them_and_the_chain_still_verifies(app, db, owner_db, users, tmp_path):
    today = dt.datetime.now(dt.timezone.utc).date()
    old = [record_independently(db.engine, Actor(username=f"old{n}"), audit.SIGN_IN, details={"n": n})
           for n in range(4)]
    recent = [record_independently(db.engine, Actor(username="new"), audit.SIGN_IN) for _ in range(2)]
    earlier = [r["id"] for r in rows(db) if r["id"] < old[0]]       # the users fixture's, if it wrote any
    # the oldest ids in two months about 14 and 13 months ago, in chain order
    m14, m13 = first_of_month(today, 14), first_of_month(today, 13)
    when = {rid: dt.datetime.combine(m14, dt.time(9), dt.timezone.utc) + dt.timedelta(minutes=i)
            for i, rid in enumerate(earlier + old[:2])}
    when |= {rid: dt.datetime.combine(m13 + dt.timedelta(days=3), dt.time(9 + i), dt.timezone.utc)
             for i, rid in enumerate(old[2:])}
    backdate(owner_db, when)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0

    target = tmp_path / "audit-old.jsonl"
    out = runner.invoke(args=["audit", "export", "--before", first_of_month(today, 12).isoformat(),
                              "--to", str(target)])
    assert out.exit_code == 0, out.output
    lines = target.read_text(encoding="utf-8").splitlines()
    exported = [json.loads(line) for line in lines]
    assert [row["id"] for row in exported] == sorted(when)
    assert f"rows: {len(when)}" in out.output and f"file: {target}" in out.output
    assert f"months: {m14:%Y-%m}, {m13:%Y-%m}" in out.output
    assert f"sha256: {hashlib.sha256(target.read_bytes()).hexdigest()}" in out.output
    left = rows(db)
    assert [r["id"] for r in left if r["event"] != audit.AUDIT_EXPORT] == recent
    [done] = rows(db, audit.AUDIT_EXPORT)
    assert done["role"] == "cli" and done["details"]["rows"] == len(when)
    ok = runner.invoke(args=["audit", "verify"])           # from the anchor the export left
    assert ok.exit_code == 0 and "from the last export's anchor" in ok.output, ok.output
    # the exported rows hash as they did in the database: the file can be checked on its own
    prev = audit.GENESIS
    for row in exported:
        row["at"] = dt.datetime.fromisoformat(row["at"])
        assert row["prev_hash"] == prev and audit.row_hash(prev, row) == row["hash"]
        prev = row["hash"]
    # once more: nothing old is left to export, and a file is never overwritten
    again = runner.invoke(args=["audit", "export", "--before", first_of_month(today, 12).isoformat(),
                                "--to", str(tmp_path / "again.jsonl")])
    assert again.exit_code == 0 and "nothing exported" in again.output
    assert not (tmp_path / "again.jsonl").exists()
    same = runner.invoke(args=["audit", "export", "--before", first_of_month(today, 12).isoformat(),
                               "--to", str(target)])
    assert same.exit_code != 0 and "exists" in same.output


def test_export_inside_the_kept_six_months_is_refused(app, db, users, tmp_path):
    record_independently(db.engine, Actor(username="x"), audit.SIGN_IN)
    before = rows(db)
    runner = app.test_cli_runner()
    for day in (dt.date.today() - dt.timedelta(days=10), dt.date.today() - dt.timedelta(days=170)):
        out = runner.invoke(args=["audit", "export", "--before", day.isoformat(), "--to", str(tmp_path / "f.jsonl")])
        assert out.exit_code != 0 and "export refused" in out.output and "180 days" in out.output, out.output
    assert not (tmp_path / "f.jsonl").exists() and rows(db) == before
    bad = runner.invoke(args=["audit", "export", "--before", "2020-13-01", "--to", str(tmp_path / "f.jsonl")])
    assert bad.exit_code == 2
    nowhere = runner.invoke(args=["audit", "export", "--before", "2020-01-01",
                                  "--to", str(tmp_path / "no" / "such" / "f.jsonl")])
    assert nowhere.exit_code == 1 and "not a directory" in nowhere.output
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0


# --- in chromium --------------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(not shutil.which("/usr/bin/chromium"), reason="Debian chromium is not installed")


@needs_chromium
def test_the_auditor_filters_the_trail_in_chromium(browser, live_server, users, db, tmp_path):
    from tests.browser.conftest import offline_page, sign_in

    record_independently(db.engine, Actor(username=SCRIPT), audit.SIGN_IN_FAILED, outcome="failed")
    page = offline_page(browser, live_server, viewport={"width": 1280, "height": 900})
    sign_in(page, live_server, "auditor")
    assert page.url.endswith("/admin/audit")
    assert page.locator("#audit tbody tr").count() >= 2     # the auditor's own sign-in, the failure
    page.select_option("select[name=event]", "sign_in_failed")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_load_state("load")
    assert "event=sign_in_failed" in page.url
    table = page.locator("#audit tbody tr")
    assert table.count() == 1 and table.first.get_attribute("data-event") == "sign_in_failed"
    assert page.locator("#audit .audit-actor").first.inner_text() == SCRIPT      # shown as text, not run
    assert page.locator("#audit-csv").get_attribute("href") == "/admin/audit.csv?event=sign_in_failed"
    page.screenshot(path=str(tmp_path / "audit-1280.png"), full_page=True)
    assert (tmp_path / "audit-1280.png").stat().st_size > 0
    assert page.errors == [] and page.blocked == [] and page.dialogs == []

    other = offline_page(browser, live_server, viewport={"width": 1280, "height": 900})
    sign_in(other, live_server, "dispatcher")
    assert other.goto(f"{live_server}/admin/audit").status == 403
