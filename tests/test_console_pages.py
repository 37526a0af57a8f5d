"""The dispatcher's console (geoapp/web/console.py, geoapp/domain/work_queue.py): each tab of the work
queue holds the right reports (states made through lifecycle.perform), filters stay in the links,
the dispatch panel's suggestion and one-click dispatch, an override without a reason refused, and
only dispatchers get in."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from geoapp.domain import lifecycle
from geoapp.domain.lifecycle import ActionFields
from geoapp.domain.reports import get_report
from geoapp.domain.visibility import Viewer
from geoapp.models import User
from tests.conftest import data_block, jpeg, report_body


def row_ids(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'<li class="row[^"]*" data-id="(\d+)"', html)}


class Lifecycle:
    """Reports moved through the real lifecycle, as the people who may move them."""

    def __init__(self, app, db):
        self.app, self.db = app, db
        self.rules = lifecycle.rules_from_settings(app.config["GEOAPP"])
        with db.sessionmaker() as s:
            self.viewers = {u.username: Viewer.of(u) for u in s.execute(select(User)).scalars()}

    def viewer(self, name: str) -> Viewer:
        return self.viewers[name]

    def handler_of(self, report_id: int) -> Viewer:
        with self.db.sessionmaker() as s:
            unit_id = get_report(s, report_id)["unit_id"]
        return next(v for v in self.viewers.values() if v.role == "unit_handler" and v.unit_id == unit_id)

    def act(self, who: Viewer | str, report_id: int, action: str, now: dt.datetime | None = None, **fields):
        who = self.viewer(who) if isinstance(who, str) else who
        with self.db.transaction() as session:
            version = get_report(session, report_id)["version"]
            return lifecycle.perform(session, who, report_id, action, ActionFields(version=version, **fields),
                                     self.rules, now=now)

    def dispatch(self, report_id: int, now: dt.datetime | None = None):
        with self.db.sessionmaker() as s:
            unit = get_report(s, report_id)["unit_code"]  # the rule's unit, stored at intake
        return self.act("dispatcher", report_id, "dispatch", now=now, unit=unit)


@pytest.fixture
def flow(app, db, users):
    return Lifecycle(app, db)


@pytest.fixture
def post(app, auth, streets):
    def send(user="rep03", street="S03", fraction=0.5, **extra):
        r = app.test_client().post("/api/v1/reports", json=report_body(*streets.point(street, fraction), **extra),
                                   headers=auth(user))
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.json["id"]
    return send


@pytest.fixture
def queue_world(post, flow):
    """One or two reports in every tab of the queue, made as the people involved would make them."""
    now = dt.datetime.now(dt.timezone.utc)
    r = {name: post(fraction=0.05 + i * 0.1) for i, name in enumerate(
        ("new", "accepted", "returned", "extension", "overdue", "unsatisfied", "ledger", "handled", "closed"))}
    flow.act("dispatcher", r["accepted"], "accept")
    for name in ("returned", "extension", "unsatisfied", "ledger", "handled", "closed"):
        flow.dispatch(r[name])
    flow.dispatch(r["overdue"], now=now - dt.timedelta(days=60))  # its time limit ran out long ago
    flow.act(flow.handler_of(r["returned"]), r["returned"], "hand_back", reason="不属于本单位养护范围")
    flow.act(flow.handler_of(r["extension"]), r["extension"], "request_extension",
             until=now + dt.timedelta(days=30), reason="需要采购材料")
    for name in ("unsatisfied", "handled", "closed"):
        handler = flow.handler_of(r[name])
        flow.act(handler, r[name], "unit_accept")
        flow.act(handler, r[name], "handled", text="已清理", photos=[jpeg()])
    flow.act("rep03", r["unsatisfied"], "verify", reply_rating=2, result_rating=1, comment="垃圾还在")
    flow.act("rep03", r["closed"], "verify", reply_rating=5, result_rating=5)
    flow.act("dispatcher", r["closed"], "close")
    flow.act("dispatcher", r["ledger"], "ledger", promised_on=(now + dt.timedelta(days=90)).date(), reason="需要改造管网")
    return r


EXPECTED_TABS = {
    "screen": {"new", "accepted"},
    "returned": {"returned"},
    "extension": {"extension"},
    "overdue": {"overdue"},
    "unsatisfied": {"unsatisfied"},
    "ledger": {"ledger"},
    "closing": {"handled"},
}


def test_each_tab_holds_the_right_reports(as_user, queue_world):
    client = as_user("dispatcher")
    for tab, names in EXPECTED_TABS.items():
        page = client.get(f"/console?tab={tab}")
        assert page.status_code == 200, tab
        html = page.get_data(as_text=True)
        assert row_ids(html) == {queue_world[n] for n in names}, tab
        # every tab's count, on every tab
        for other, other_names in EXPECTED_TABS.items():
            link = re.search(rf'data-tab="{other}"[^>]*>\s*<span class="tab-label">[^<]*</span> '
                             rf'<span class="count[^"]*">(\d+)</span>', html)
            assert link and int(link.group(1)) == len(other_names), (tab, other)
        # each row opens the report in the console
        for n in names:
            assert f'href="/console/reports/{queue_world[n]}"' in html


def test_tabs_say_what_the_dispatcher_decides_on(as_user, queue_world):
    client = as_user("dispatcher")
    returned = client.get("/console?tab=returned").get_data(as_text=True)
    assert "不属于本单位养护范围" in returned and "回退单位" in returned
    overdue = client.get("/console?tab=overdue").get_data(as_text=True)
    assert 'class="unit-group"' in overdue and "1 件超期" in overdue
    assert re.search(r"\d+ 个工作日 [\d.]+ 小时", overdue), "how late, in working time"
    unsatisfied = client.get("/console?tab=unsatisfied").get_data(as_text=True)
    assert "垃圾还在" in unsatisfied and "答复 2 / 5，结果 1 / 5" in unsatisfied
    ledger = client.get("/console?tab=ledger").get_data(as_text=True)
    assert "承诺完成日期" in ledger and "未到期" in ledger
    extension = client.get("/console?tab=extension").get_data(as_text=True)
    assert "需要采购材料" in extension


def test_filters_stay_in_the_links_and_narrow_every_tab(as_user, queue_world):
    client = as_user("dispatcher")
    html = client.get("/console?tab=screen&street=S03").get_data(as_text=True)
    assert row_ids(html) == {queue_world["new"], queue_world["accepted"]}
    assert 'href="/console?tab=overdue&amp;street=S03"' in html
    assert 'href="/map?street=S03"' in html and 'href="/console/duplicates?street=S03"' in html
    elsewhere = client.get("/console?tab=screen&street=S04").get_data(as_text=True)
    assert row_ids(elsewhere) == set()
    assert not re.search(r'<span class="count count-some">', elsewhere), "no tab counts anything on S04"
    today = dt.date.today()
    period = f"from={(today - dt.timedelta(days=2)).isoformat()}&to={(today + dt.timedelta(days=1)).isoformat()}"
    assert row_ids(client.get(f"/console?tab=screen&{period}").get_data(as_text=True)) == {
        queue_world["new"], queue_world["accepted"]}
    bad = client.get("/console?from=2026-13-01")
    assert bad.status_code == 400


def test_the_queue_in_english(as_user, queue_world):
    html = as_user("dispatcher").get("/console?tab=screen&lang=en").get_data(as_text=True)
    assert 'lang="en"' in html and row_ids(html) == {queue_world["new"], queue_world["accepted"]}


def test_only_dispatchers_get_in(client, as_user, post):
    report = post()
    for name in ("rep03", "handler01"):
        c = as_user(name)
        assert c.get("/console").status_code == 403, name
        assert c.get(f"/console/reports/{report}").status_code == 403, name
    anonymous = client.get("/console")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert as_user("admin").get("/console").status_code == 200
    assert as_user("dispatcher").get("/console/reports/999999").status_code == 404


def _csrf(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def test_the_dispatch_panel_suggests_and_one_click_dispatches(as_user, post, db):
    report = post()
    client = as_user("dispatcher")
    page = client.get(f"/console/reports/{report}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    data = data_block(html, "console-report-data")
    assert 'id="dispatch-panel"' in html and 'id="dispatch-accept"' in html
    assert "dispatch" in data["action_labels"] and data["version"] == 1
    suggestion = client.get(data["endpoints"]["suggestion"]).json
    assert suggestion["unit"]["code"] and suggestion["unit"]["reason"]
    # what console_report.js sends for the one click: the suggested unit, the deadline left to the server
    r = client.post(data["endpoints"]["actions"], json={"action": "dispatch", "version": data["version"],
                                                        "unit": suggestion["unit"]["code"]},
                    headers={"X-CSRFToken": _csrf(html)})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.json["status"] == "dispatched" and r.json["unit"]["code"] == suggestion["unit"]["code"]
    given = dt.datetime.fromisoformat(r.json["deadline_at"])
    computed = dt.datetime.fromisoformat(suggestion["deadline_at"])
    assert abs(given - computed) < dt.timedelta(minutes=5), "the deadline is the computed one"
    after = client.get(f"/console/reports/{report}").get_data(as_text=True)
    assert 'id="dispatch-panel"' not in after, "dispatched: the panel is gone"
    assert "派遣" in after and 'id="deadline"' in after and 'id="album-toggle"' in after


def test_an_override_without_a_reason_is_refused(as_user, post):
    report = post()
    client = as_user("dispatcher")
    html = client.get(f"/console/reports/{report}").get_data(as_text=True)
    data = data_block(html, "console-report-data")
    suggested = client.get(data["endpoints"]["suggestion"]).json["unit"]["code"]
    other = next(code for code in data["units"] if code != suggested)
    r = client.post(data["endpoints"]["actions"], json={"action": "dispatch", "version": 1, "unit": other},
                    headers={"X-CSRFToken": _csrf(html)})
    assert r.status_code == 400 and r.json["message"]
    r = client.post(data["endpoints"]["actions"], json={"action": "dispatch", "version": 1, "unit": other,
                                                        "cooperating": [suggested], "reason": "该路段由其负责"},
                    headers={"X-CSRFToken": _csrf(html)})
    assert r.status_code == 200 and r.json["unit"]["code"] == other
    assert [u["code"] for u in r.json["cooperating_units"]] == [suggested]


def test_the_report_page_shows_the_history_and_only_the_actions_allowed_now(as_user, queue_world):
    client = as_user("dispatcher")
    html = client.get(f"/console/reports/{queue_world['unsatisfied']}").get_data(as_text=True)
    for words in ("提交上报", "派遣", "签收", "办结", "评价", "已清理", "垃圾还在"):
        assert words in html, words
    assert re.search(r'alt="处置照片 1"', html), "the after photo sits on its event"
    forms = set(re.findall(r'<form class="action-form[^"]*" data-action="(\w+)"', html))
    assert forms == {"edit_deadline", "ledger"}, forms
    assert 'id="dispatch-panel"' not in html
    returned = client.get(f"/console/reports/{queue_world['returned']}").get_data(as_text=True)
    assert 'id="dispatch-panel"' in returned and "不属于本单位养护范围" in returned
    extension = client.get(f"/console/reports/{queue_world['extension']}").get_data(as_text=True)
    assert {"grant_extension", "refuse_extension"} <= set(
        re.findall(r'<form class="action-form[^"]*" data-action="(\w+)"', extension))
    english = client.get(f"/console/reports/{queue_world['handled']}?lang=en").get_data(as_text=True)
    assert 'data-action="close"' in english and 'data-action="reopen"' in english
