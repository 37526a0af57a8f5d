"""Notifications ([3] §5): who hears about a report's dispatch, hand-back, handling and lateness (the
in-app inbox, its unread count in every page's header, its API), and the e-mail outbox sent through a
real SMTP server (aiosmtpd as a local sink): one e-mail per notification to a user with an address,
nothing lost when the server is down, nothing sent twice."""
from __future__ import annotations

import datetime as dt
import io
import socket

import pytest
from sqlalchemy import func, select, text, update

from geoapp.domain import notifications
from geoapp.domain.accounts import issue_api_key
from geoapp.models import Notification, Report, Unit, User
from tests.conftest import jpeg, report_body


# --- helpers shared with tests/test_report_page_lifecycle.py and tests/browser/test_verify.py ---------


def add_handler(db, username: str, unit_id: int, email: str | None = None) -> str:
    """A unit handler of `unit_id` (the demo's handlers may not exist in this checkout yet); its API key."""
    with db.transaction() as session:
        session.add(User(username=username, display_name=f"处置员{username[-2:]}", role="unit_handler",
                         unit_id=unit_id, email=email))
        session.flush()
        return issue_api_key(session, username)


def set_email(db, username: str, email: str | None) -> None:
    with db.transaction() as session:
        session.execute(update(User).where(User.username == username).values(email=email))


class Lifecycle:
    """Drive one report through the lifecycle API as its parties would."""

    def __init__(self, app, auth, streets, db):
        self.client, self.auth, self.streets, self.db = app.test_client(), auth, streets, db
        self.keys: dict[str, str] = {}

    def headers(self, username: str) -> dict:
        if username in self.keys:
            return {"Authorization": f"Bearer {self.keys[username]}"}
        return self.auth(username)

    def report(self, username: str = "rep03", street: str = "S03", fraction: float = 0.4, **extra) -> dict:
        r = self.client.post("/api/v1/reports", json=report_body(*self.streets.point(street, fraction), **extra),
                             headers=self.headers(username))
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.json

    def get(self, report_id: int, username: str = "dispatcher") -> dict:
        r = self.client.get(f"/api/v1/reports/{report_id}", headers=self.headers(username))
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.json

    def act(self, report_id: int, username: str, action: str, expect: int = 200, photos: int = 0, **fields):
        version = self.get(report_id)["version"]
        if photos:
            data = {"action": action, "version": str(version), **{k: str(v) for k, v in fields.items()},
                    "photo": [(io.BytesIO(jpeg()), f"p{i}.jpg", "image/jpeg") for i in range(photos)]}
            r = self.client.post(f"/api/v1/reports/{report_id}/actions", data=data,
                                 content_type="multipart/form-data", headers=self.headers(username))
        else:
            r = self.client.post(f"/api/v1/reports/{report_id}/actions",
                                 json={"action": action, "version": version, **fields}, headers=self.headers(username))
        assert r.status_code == expect, r.get_data(as_text=True)
        return r.json

    def handler_of(self, report: dict, username: str | None = None, email: str | None = None) -> str:
        username = username or f"handler_r{report['id']}"
        self.keys[username] = add_handler(self.db, username, report["unit"]["id"], email)
        return username

    def dispatched(self, **extra) -> tuple[dict, str]:
        """A report of rep03's dispatched to its suggested unit, which has one handler: (report, handler)."""
        rep = self.report(**extra)
        handler = self.handler_of(rep)
        self.act(rep["id"], "dispatcher", "dispatch", unit=rep["unit"]["code"])
        return rep, handler

    def handled(self, text_: str = "已清理完毕", **extra) -> tuple[dict, str]:
        rep, handler = self.dispatched(**extra)
        self.act(rep["id"], handler, "unit_accept")
        self.act(rep["id"], handler, "progress", text="已安排人员，明天处理")
        self.act(rep["id"], handler, "handled", photos=1, text=text_)
        return rep, handler


@pytest.fixture
def flow(app, users, auth, streets, db) -> Lifecycle:
    return Lifecycle(app, auth, streets, db)


# --- the SMTP sink ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_port():
    return _free_port()


@pytest.fixture
def smtp_sink(smtp_port):
    """A real SMTP server on localhost (aiosmtpd) that keeps what it receives."""
    from aiosmtpd.controller import Controller

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield sink
    controller.stop()


def _sender(port: int) -> notifications.SmtpSender:
    return notifications.SmtpSender("127.0.0.1", port, "geoapp@example.test", timeout=5)


def _inbox(db, username: str) -> list[dict]:
    with db.transaction() as session:
        user_id = session.execute(select(User.id).where(User.username == username)).scalar_one()
        return notifications.inbox(session, user_id)


def _deliver(db, sender) -> dict:
    with db.transaction() as session:
        return notifications.deliver_pending(session, sender)


# --- who hears what --------------------------------------------------------------------------------

def test_dispatching_notifies_the_units_handlers_in_the_inbox_and_by_email(flow, db, smtp_sink, smtp_port):
    rep = flow.report()
    flow.handler_of(rep, "handler_a", "a@example.test")
    flow.handler_of(rep, "handler_b")  # no address: the inbox only
    with db.transaction() as session:
        other_unit = session.execute(select(Unit.id).where(Unit.id != rep["unit"]["id"]).limit(1)).scalar_one()
    flow.keys["handler_x"] = add_handler(db, "handler_x", other_unit, "x@example.test")
    set_email(db, "dispatcher", "d@example.test")

    flow.act(rep["id"], "dispatcher", "dispatch", unit=rep["unit"]["code"])

    for name in ("handler_a", "handler_b"):
        lines = _inbox(db, name)
        assert [(n["kind"], n["report_id"], n["read_at"]) for n in lines] == [("dispatched", rep["id"], None)]
    assert _inbox(db, "handler_x") == []
    assert _inbox(db, "dispatcher") == []  # who acted is not told what they did

    assert _deliver(db, _sender(smtp_port)) == {"sent": 1, "failed": 0, "left": 0}
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["a@example.test"]]
    mail = smtp_sink.messages[0].content.decode()
    assert "Subject:" in mail and f"#{rep['id']}" in mail
    # sent once: the next run finds nothing
    assert _deliver(db, _sender(smtp_port)) == {"sent": 0, "failed": 0, "left": 0}
    assert len(smtp_sink.messages) == 1


def test_handled_notifies_the_reporter(flow, db):
    rep, handler = flow.handled()
    assert [n["kind"] for n in _inbox(db, "rep03")] == ["handled"]
    assert _inbox(db, "rep04") == []


def test_handing_back_notifies_the_dispatchers(flow, db):
    rep, handler = flow.dispatched()
    flow.act(rep["id"], handler, "hand_back", reason="不属于本单位职责")
    assert [n["kind"] for n in _inbox(db, "dispatcher")] == ["returned"]
    assert _inbox(db, "rep03") == []


def test_an_unsatisfied_verification_notifies_the_unit(flow, db):
    rep, handler = flow.handled()
    flow.act(rep["id"], "rep03", "verify", reply_rating=2, result_rating=2, comment="垃圾还在")
    assert "reopened" in [n["kind"] for n in _inbox(db, handler)]


def _overdue_rows(db) -> list[tuple]:
    with db.transaction() as session:
        return session.execute(select(User.username, Notification.report_id, func.count())
                               .join(User, User.id == Notification.user_id)
                               .where(Notification.kind == "overdue")
                               .group_by(User.username, Notification.report_id).order_by(User.username)).all()


def test_the_overdue_sweep_twice_tells_each_receiver_once(flow, db):
    rep, handler = flow.dispatched()
    late, _ = flow.dispatched(fraction=0.7)
    with db.transaction() as session:  # the deadline has passed (overdue is computed from it)
        session.execute(update(Report).where(Report.id == late["id"])
                        .values(deadline_at=func.now() - text("interval '1 hour'")))
    now = dt.datetime.now(dt.timezone.utc)
    with db.transaction() as session:
        first = notifications.notify_overdue(session, now)
    with db.transaction() as session:
        second = notifications.notify_overdue(session, now)
    # the late report's lead unit handlers (both flows made one per report, same unit) and the dispatcher
    assert second == 0
    rows = _overdue_rows(db)
    assert {r[1] for r in rows} == {late["id"]}
    assert all(r[2] == 1 for r in rows)
    assert "dispatcher" in {r[0] for r in rows} and first == len(rows)

    # a new deadline that passes in turn is a new occasion
    with db.transaction() as session:
        session.execute(update(Report).where(Report.id == late["id"])
                        .values(deadline_at=func.now() - text("interval '5 minutes'")))
    with db.transaction() as session:
        assert notifications.notify_overdue(session, now) == first


def test_a_ledger_item_past_its_promised_date_is_overdue_once(flow, db):
    rep, handler = flow.dispatched()
    flow.act(rep["id"], "dispatcher", "ledger", promised_on=(dt.date.today() + dt.timedelta(days=30)).isoformat(),
             reason="需列入明年改造计划")
    with db.transaction() as session:
        session.execute(update(Report).where(Report.id == rep["id"])
                        .values(ledger_promised_on=dt.date.today() - dt.timedelta(days=2)))
    now = dt.datetime.now(dt.timezone.utc)
    for _ in range(2):
        with db.transaction() as session:
            notifications.notify_overdue(session, now)
    rows = _overdue_rows(db)
    assert rows and all(r[2] == 1 for r in rows)


def _notification_of(username: str):
    return (select(Notification.emailed_at, Notification.email_error)
            .join(User, User.id == Notification.user_id).where(User.username == username))


def test_smtp_down_keeps_the_notification_and_a_later_run_sends_it(flow, db, smtp_port):
    rep = flow.report()
    flow.handler_of(rep, "handler_a", "a@example.test")
    flow.act(rep["id"], "dispatcher", "dispatch", unit=rep["unit"]["code"])

    counts = _deliver(db, _sender(smtp_port))  # nothing listens there yet
    assert counts["sent"] == 0 and counts["failed"] == 1
    with db.transaction() as session:
        row = session.execute(_notification_of("handler_a")).one()
    assert row.emailed_at is None and "SMTP" in row.email_error

    from aiosmtpd.controller import Controller

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        assert _deliver(db, _sender(smtp_port))["sent"] == 1
    finally:
        controller.stop()
    assert [m.rcpt_tos for m in sink.messages] == [["a@example.test"]]
    with db.transaction() as session:
        row = session.execute(_notification_of("handler_a")).one()
    assert row.emailed_at is not None and row.email_error is None


def test_no_smtp_host_means_no_sender(settings):
    assert notifications.sender_from_settings(settings) is None


def test_notify_run_sweeps_and_sends(flow, db, make_app, smtp_sink, smtp_port):
    rep, handler = flow.dispatched()
    set_email(db, handler, "h@example.test")
    with db.transaction() as session:
        session.execute(update(Report).where(Report.id == rep["id"])
                        .values(deadline_at=func.now() - text("interval '1 hour'")))
    app = make_app(smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_from="geoapp@example.test")
    with app.app_context():  # as the `geoapp` command (FlaskGroup) runs its commands
        result = app.test_cli_runner().invoke(args=["notify", "run"])
    assert result.exit_code == 0, result.output
    # the unit's handlers (the demo's and this test's) and the dispatcher, each once
    assert f"overdue notifications added: {len(_overdue_rows(db))}" in result.output
    assert {"dispatcher", handler} <= {r[0] for r in _overdue_rows(db)}
    # the handler's dispatch notice and overdue notice; the dispatcher has no address
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == ["h@example.test", "h@example.test"]


# --- the inbox page, the header, the API ----------------------------------------------------------

def test_the_inbox_page_links_each_role_to_its_report_page_and_marks_read(flow, db, signin):
    rep, handler = flow.handled()
    client = signin.client
    signin.login("rep03")
    page = client.get("/my").get_data(as_text=True)
    assert "消息 (1)" in page  # the header's unread count
    inbox = client.get("/inbox").get_data(as_text=True)
    assert "问题已办结，请评价" in inbox and f"问题 #{rep['id']}" in inbox
    (line,) = _inbox(db, "rep03")
    opened = client.get(f"/inbox/{line['id']}")
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/reports/{rep['id']}")
    assert _inbox(db, "rep03")[0]["read_at"] is not None
    assert "消息 (0)" in client.get("/inbox").get_data(as_text=True)


def test_someone_elses_notification_is_not_found(flow, db, signin):
    rep, handler = flow.handled()
    (line,) = _inbox(db, "rep03")
    signin.login("rep04")
    assert signin.client.get(f"/inbox/{line['id']}").status_code == 404
    assert _inbox(db, "rep03")[0]["read_at"] is None


def test_mark_all_read(flow, db, signin):
    rep, handler = flow.dispatched()
    flow.act(rep["id"], handler, "hand_back", reason="不属于本单位职责")
    rep2, handler2 = flow.dispatched(fraction=0.6)
    flow.act(rep2["id"], handler2, "hand_back", reason="不属于本单位职责")
    signin.login("dispatcher")
    assert "消息 (2)" in signin.client.get("/inbox").get_data(as_text=True)
    r = signin.client.post("/inbox/read-all", data={"csrf_token": signin.csrf_token("/inbox")})
    assert r.status_code == 302
    assert all(n["read_at"] is not None for n in _inbox(db, "dispatcher"))
    # the dispatcher's link goes to the console's page of the report
    page = signin.client.get("/inbox").get_data(as_text=True)
    line = _inbox(db, "dispatcher")[0]
    assert signin.client.get(f"/inbox/{line['id']}").headers["Location"].endswith(f"/console/reports/{line['report_id']}")
    assert "消息 (0)" in page


def test_the_api_lists_and_marks_read(flow, db):
    rep, handler = flow.handled()
    client = flow.client
    r = client.get("/api/v1/notifications", headers=flow.headers("rep03"))
    assert r.status_code == 200
    assert r.json["unread"] == 1
    (item,) = r.json["notifications"]
    assert item["kind"] == "handled" and item["report_id"] == rep["id"] and item["read"] is False
    assert item["report_url"] == f"/reports/{rep['id']}"
    r = client.get("/api/v1/notifications?unread=1&lang=en", headers=flow.headers("rep03"))
    assert len(r.json["notifications"]) == 1
    bad = client.post("/api/v1/notifications/read", json={"ids": "all"}, headers=flow.headers("rep03"))
    assert bad.status_code == 400 and bad.json["error"] == "bad_input"
    r = client.post("/api/v1/notifications/read", json={"ids": [item["id"]]}, headers=flow.headers("rep03"))
    assert r.json == {"marked": 1, "unread": 0}
    # a handler's notifications link to the unit's page; another user's ids are ignored
    r = client.post("/api/v1/notifications/read", json={"ids": [item["id"]]}, headers=flow.headers(handler))
    assert r.json["marked"] == 0
    r = client.get("/api/v1/notifications", headers=flow.headers(handler))
    assert {n["report_url"] for n in r.json["notifications"]} == {f"/unit/reports/{rep['id']}"}
    assert client.get("/api/v1/notifications").status_code == 401


def test_marking_read_with_the_session_cookie_needs_the_csrf_token(flow, db, signin):
    rep, handler = flow.handled()
    signin.login("rep03")
    r = signin.client.post("/api/v1/notifications/read", json={"all": True})
    assert r.status_code == 400  # no X-CSRFToken
    token = signin.csrf_token("/inbox")
    r = signin.client.post("/api/v1/notifications/read", json={"all": True}, headers={"X-CSRFToken": token})
    assert r.status_code == 200 and r.json["unread"] == 0
