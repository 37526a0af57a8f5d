"""The unit handler's pages: /unit (the unit's queue by tab) and /unit/reports/<id> (a report's page
with the forms of the actions the lifecycle allows), against a real PostGIS, with reports moved
through the lifecycle by the real `lifecycle.perform` and the forms' posts sent as the page sends
them (multipart, the session cookie, X-CSRFToken, the version seen)."""
from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from PIL import Image
from sqlalchemy import select, text
from werkzeug.security import generate_password_hash

from geoapp.demo import DEMO_PASSWORD
from geoapp.domain import lifecycle
from geoapp.domain import photos as photo_domain
from geoapp.domain.visibility import Viewer
from geoapp.models import Unit, User
from tests.conftest import report_body
from tests.test_i18n import CJK, shown_texts, user_data, without_user_data  # noqa: F401  (fixture)
from tests.test_phone_pages import _pending_patterns
from tests.test_photo_pipeline import app_markers, camera_jpeg

STREET = "S03"


def small_jpeg(color=(200, 180, 160)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), color).save(out, "JPEG", quality=85)
    return out.getvalue()


class City:
    """Reports moved through the lifecycle by the domain itself, and handler accounts of units."""

    def __init__(self, app, db, settings, client, auth, streets, signin):
        self.app, self.db, self.settings, self.auth, self.streets, self.signin = app, db, settings, auth, streets, signin
        self.rules = lifecycle.rules_from_settings(settings)

    def submit(self, fraction: float = 0.5, user: str = "rep03", street: str = STREET, photo: bytes | None = None,
               **extra) -> dict:
        body = report_body(*self.streets.point(street, fraction), **extra)
        if photo is None:
            r = self.app.test_client().post("/api/v1/reports", json=body, headers=self.auth(user))
        else:
            data = {k: str(v) for k, v in body.items()} | {"photo": (io.BytesIO(photo), "before.jpg")}
            r = self.app.test_client().post("/api/v1/reports", data=data, content_type="multipart/form-data",
                                            headers=self.auth(user))
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.json

    def viewer(self, username: str) -> Viewer:
        with self.db.transaction() as s:
            return Viewer.of(s.execute(select(User).where(User.username == username)).scalar_one())

    def act(self, username: str, report_id: int, action: str, **fields) -> dict:
        with self.db.transaction() as s:
            version = s.execute(text("SELECT version FROM reports WHERE id = :i"), {"i": report_id}).scalar_one()
            return lifecycle.perform(s, self.viewer(username), report_id, action,
                                     lifecycle.ActionFields(version=version, **fields), self.rules)

    def dispatch(self, report: dict, unit: str | None = None, **fields) -> dict:
        unit = unit or report["unit"]["code"]
        if unit != report["unit"]["code"]:
            fields.setdefault("reason", "测试改派")
        return self.act("dispatcher", report["id"], "dispatch", unit=unit, **fields)

    def handler(self, unit_code: str, username: str) -> str:
        """A unit_handler account of that unit, with the demo password."""
        with self.db.transaction() as s:
            unit = s.execute(select(Unit).where(Unit.code == unit_code)).scalar_one()
            s.add(User(username=username, display_name=f"{unit.name}办理员", role="unit_handler", unit_id=unit.id,
                       password_hash=generate_password_hash(DEMO_PASSWORD)))
        return username

    def other_unit(self, code: str) -> str:
        with self.db.transaction() as s:
            return s.execute(select(Unit.code).where(Unit.code != code).order_by(Unit.code)).scalars().first()

    def signed_in(self, username: str):
        client = self.app.test_client()
        self.signin.reset_limits()
        assert self.signin.login(username, client=client).status_code == 302
        return client

    def late(self, report_id: int, hours: int = 30) -> None:
        """Move a running report's deadline into the past (overdue is computed from it)."""
        with self.db.transaction() as s:
            s.execute(text("UPDATE reports SET deadline_at = now() - make_interval(hours => :h) WHERE id = :i"),
                      {"h": hours, "i": report_id})


@pytest.fixture
def city(app, db, settings, client, auth, streets, signin, users):
    return City(app, db, settings, client, auth, streets, signin)


@pytest.fixture
def ours(city):
    """(the suggested unit of a report on S03, its handler's username, another unit, its handler)."""
    unit = city.submit(0.1)["unit"]["code"]
    other = city.other_unit(unit)
    return unit, city.handler(unit, "handler_a"), other, city.handler(other, "handler_b")


def ids_in(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="queue-row[^"]*" data-report-id="(\d+)"', html)]


def tab_counts(html: str) -> dict[str, int]:
    return {k: int(n) for k, n in re.findall(
        r'data-tab="(\w+)"[^>]*>\s*<span class="tab-label">[^<]*</span> <span class="tab-count[^"]*">(\d+)</span>', html)}


def page_state(html: str) -> dict:
    """What the page's forms would send: the CSRF token and the version seen; and what it offers."""
    return {"csrf": re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1),
            "version": int(re.search(r'data-version="(\d+)"', html).group(1)),
            "forms": re.findall(r'id="form-(\w+)"', html),
            "status": re.search(r'data-status="(\w+)"', html).group(1)}


def send_form(client, report_id: int, state: dict, action: str, photos=(), **fields):
    """POST /api/v1/reports/<id>/actions as unit_report.js sends a form (multipart, header X-CSRFToken)."""
    data = {"action": action, "version": str(state["version"]), **fields}
    if photos:
        data["photo"] = [(io.BytesIO(body), f"p{i}.jpg") for i, body in enumerate(photos)]
    return client.post(f"/api/v1/reports/{report_id}/actions", data=data, content_type="multipart/form-data",
                       headers={"X-CSRFToken": state["csrf"], "Accept": "application/json"})


# --- the queue ------------------------------------------------------------------------------------

def test_each_tab_holds_its_reports_and_counts_them(city, ours):
    unit, mine, other, theirs = ours
    new = city.submit(0.2)
    city.dispatch(new)
    accepted = city.submit(0.25)
    city.dispatch(accepted)
    city.act(mine, accepted["id"], "unit_accept")
    progressing = city.submit(0.3)
    city.dispatch(progressing)
    city.act(mine, progressing["id"], "unit_accept")
    city.act(mine, progressing["id"], "progress", text="已安排人员")
    late = city.submit(0.35)
    city.dispatch(late)
    city.act(mine, late["id"], "unit_accept")
    city.late(late["id"])
    reopened = city.submit(0.4)
    city.dispatch(reopened)
    city.act(mine, reopened["id"], "unit_accept")
    city.act(mine, reopened["id"], "handled", text="已清理", photos=[small_jpeg()])
    city.act("dispatcher", reopened["id"], "reopen", reason="现场仍有垃圾")
    returned = city.submit(0.45)
    city.dispatch(returned)
    city.act(mine, returned["id"], "hand_back", reason="该处属于绿化带，非本单位职责")
    on_ledger = city.submit(0.5)
    city.dispatch(on_ledger)
    city.act("dispatcher", on_ledger["id"], "ledger", promised_on=dt.date.today() + dt.timedelta(days=90),
             reason="需列入明年计划")
    done = city.submit(0.55)
    city.dispatch(done)
    city.act(mine, done["id"], "unit_accept")
    city.act(mine, done["id"], "handled", text="已修复", photos=[small_jpeg()])
    helping = city.submit(0.6)
    city.dispatch(helping, unit=other, cooperating=(unit,))
    elsewhere = city.submit(0.65)
    city.dispatch(elsewhere, unit=other)
    city.submit(0.7)  # not dispatched: the unit does not see it yet

    client = city.signed_in(mine)
    expected = {"new": [new["id"], helping["id"]], "in_progress": [accepted["id"], progressing["id"], late["id"]],
                "overdue": [late["id"]], "reopened": [reopened["id"]], "handed_back": [returned["id"]],
                "ledger": [on_ledger["id"]], "done": [done["id"]]}
    first = client.get("/unit").get_data(as_text=True)
    counts = tab_counts(first)
    assert counts == {k: len(v) for k, v in expected.items()}
    for tab, wanted in expected.items():
        html = client.get(f"/unit?tab={tab}").get_data(as_text=True)
        assert sorted(ids_in(html)) == sorted(wanted), tab
    assert sorted(ids_in(first)) == sorted(expected["new"])  # the first tab: new dispatches, 协办 too
    assert first.count('class="tag-coop"') == 1
    late_row = client.get("/unit?tab=overdue").get_data(as_text=True)
    assert re.search(r"超期 \d", late_row), "how late, in working time"
    assert "剩余" in client.get("/unit?tab=new").get_data(as_text=True)

    # the other unit's handler: its own dispatches (lead on both), none of ours
    other_client = city.signed_in(theirs)
    their_new = ids_in(other_client.get("/unit?tab=new").get_data(as_text=True))
    assert sorted(their_new) == sorted([helping["id"], elsewhere["id"]])
    for tab in expected:
        html = other_client.get(f"/unit?tab={tab}").get_data(as_text=True)
        assert not set(ids_in(html)) & {new["id"], late["id"], returned["id"], done["id"]}, tab


def test_a_cooperating_unit_sees_the_report_in_its_queue_and_may_only_post_progress(city, ours):
    unit, mine, other, theirs = ours
    report = city.submit(0.3)
    city.dispatch(report, unit=other, cooperating=(unit,))
    client = city.signed_in(mine)
    html = client.get("/unit?tab=new").get_data(as_text=True)
    assert ids_in(html) == [report["id"]] and "协办" in html
    city.act(theirs, report["id"], "unit_accept")
    page = client.get(f"/unit/reports/{report['id']}").get_data(as_text=True)
    assert page_state(page)["forms"] == ["progress"]
    r = send_form(client, report["id"], page_state(page), "progress", text="已派车配合")
    assert r.status_code == 200, r.json
    assert r.json["status"] == "in_progress"


def test_another_units_handler_gets_404_and_does_not_see_it_listed(city, ours):
    unit, mine, other, theirs = ours
    report = city.submit(0.3)
    city.dispatch(report)
    client = city.signed_in(theirs)
    assert client.get(f"/unit/reports/{report['id']}").status_code == 404
    assert client.get(f"/api/v1/reports/{report['id']}").status_code == 404
    assert client.get("/unit/reports/999999").status_code == 404
    for tab in ("new", "in_progress", "overdue", "reopened", "handed_back", "ledger", "done"):
        assert report["id"] not in ids_in(client.get(f"/unit?tab={tab}").get_data(as_text=True))
    # before dispatch the suggested unit's own handler does not see it either (only the rule's suggestion)
    waiting = city.submit(0.4)
    assert city.signed_in(mine).get(f"/unit/reports/{waiting['id']}").status_code == 404


def test_the_pages_are_for_handlers(city, ours):
    client = city.signed_in("rep03")
    assert client.get("/unit").status_code == 403
    assert city.app.test_client().get("/unit").status_code == 302  # to sign in


# --- a report's page and its forms, end to end ----------------------------------------------------

def test_accept_progress_with_a_photo_and_handled_with_a_watermarked_after_photo(city, ours, settings, db,
                                                                                 monkeypatch):
    unit, mine, other, theirs = ours
    burnt = []
    real = photo_domain.burn_watermark
    monkeypatch.setattr(photo_domain, "burn_watermark", lambda image, lines: burnt.append(lines) or real(image, lines))
    report = city.submit(0.3)
    city.dispatch(report)
    client = city.signed_in(mine)
    url = f"/unit/reports/{report['id']}"

    html = client.get(url).get_data(as_text=True)
    state = page_state(html)
    assert state["status"] == "dispatched"
    assert state["forms"] == ["unit_accept", "request_extension", "hand_back"]
    assert 'id="report-map"' in html and "leaflet" in html and report["description"] in html
    assert 'accept="image/*" capture="environment"' not in html  # no photo form before accepting

    r = send_form(client, report["id"], state, "unit_accept")
    assert r.status_code == 200, r.json
    html = client.get(url).get_data(as_text=True)
    state = page_state(html)
    assert state["status"] == "unit_accepted"
    assert state["forms"] == ["progress", "handled", "request_extension", "hand_back"]
    assert html.count('accept="image/*" capture="environment" multiple') == 2

    r = send_form(client, report["id"], state, "progress", photos=[small_jpeg()], text="已安排清运车辆")
    assert r.status_code == 200, r.json
    [progress_photo] = [p for p in r.json["photos"] if p["kind"] == "progress"]
    html = client.get(url).get_data(as_text=True)
    assert "已安排清运车辆" in html and progress_photo["url"] in html
    timeline = html[html.index('id="timeline"'):]
    progress_item = timeline[timeline.index('data-action="progress"'):]
    assert progress_photo["url"] in progress_item[:progress_item.index("</li>")], "the photo sits in its event"

    state = page_state(html)
    r = send_form(client, report["id"], state, "handled", text="已清理完毕")
    assert r.status_code == 400
    assert r.json["error"] == "bad_input" and r.json["message"]
    assert page_state(client.get(url).get_data(as_text=True))["status"] == "in_progress"

    upload = camera_jpeg(size=(1200, 900), orientation=1)
    r = send_form(client, report["id"], state, "handled", photos=[upload], text="已清理完毕")
    assert r.status_code == 200, r.json
    assert r.json["status"] == "handled"
    [after] = [p for p in r.json["photos"] if p["kind"] == "after"]
    published = client.get(after["url"]).data
    assert published != upload
    assert published[:2] == b"\xff\xd8"
    assert not any(m == 0xE1 for m in app_markers(published)), "no EXIF in the published copy"
    with Image.open(io.BytesIO(published)) as image:
        assert not image.getexif()
    with db.transaction() as s:
        unit_name = s.execute(select(Unit.name).where(Unit.code == unit)).scalar_one()
    assert any(unit_name in " ".join(lines) for lines in burnt), burnt  # watermarked with the unit's name
    html = client.get(url).get_data(as_text=True)
    assert page_state(html)["forms"] == [] and "已清理完毕" in html and after["url"] in html


def test_hand_back_says_not_ours_and_lands_in_the_handed_back_tab(city, ours):
    unit, mine, other, theirs = ours
    report = city.submit(0.3)
    city.dispatch(report)
    client = city.signed_in(mine)
    url = f"/unit/reports/{report['id']}"
    html = client.get(url).get_data(as_text=True)
    assert "不属于本单位职责" in html
    r = send_form(client, report["id"], page_state(html), "hand_back", reason="")
    assert r.status_code == 400
    r = send_form(client, report["id"], page_state(html), "hand_back", reason="属于园林绿化处管理范围")
    assert r.status_code == 200, r.json
    assert r.json["status"] == "returned"
    html = client.get(url).get_data(as_text=True)
    assert page_state(html)["forms"] == [] and "属于园林绿化处管理范围" in html
    assert ids_in(client.get("/unit?tab=handed_back").get_data(as_text=True)) == [report["id"]]
    assert ids_in(client.get("/unit?tab=new").get_data(as_text=True)) == []


def test_request_extension_shows_the_pending_request(city, ours):
    unit, mine, other, theirs = ours
    report = city.submit(0.3)
    city.dispatch(report)
    client = city.signed_in(mine)
    url = f"/unit/reports/{report['id']}"
    html = client.get(url).get_data(as_text=True)
    until = (dt.datetime.now() + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    r = send_form(client, report["id"], page_state(html), "request_extension", until=until, reason="需等待配件")
    assert r.status_code == 200, r.json
    assert r.json["extension_request"]["reason"] == "需等待配件"
    html = client.get(url).get_data(as_text=True)
    assert 'id="extension"' in html and "需等待配件" in html


def test_a_stale_version_is_refused_with_the_current_state(city, ours):
    unit, mine, other, theirs = ours
    report = city.submit(0.3)
    city.dispatch(report)
    client = city.signed_in(mine)
    url = f"/unit/reports/{report['id']}"
    seen = page_state(client.get(url).get_data(as_text=True))
    city.act("dispatcher", report["id"], "edit_deadline",
             deadline=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=5), reason="领导批示加急")
    r = send_form(client, report["id"], seen, "unit_accept")
    assert r.status_code == 409
    assert r.json["error"] == "stale_version" and r.json["message"]
    now = page_state(client.get(url).get_data(as_text=True))
    assert now["version"] == seen["version"] + 1 and now["status"] == "dispatched"


def test_the_pages_in_english_show_no_chinese_but_user_data(city, ours, user_data):  # noqa: F811
    unit, mine, other, theirs = ours
    report = city.submit(0.3)
    city.dispatch(report)
    late = city.submit(0.4)
    city.dispatch(late)
    city.late(late["id"])
    client = city.signed_in(mine)
    pending = _pending_patterns()
    for path in ("/unit", "/unit?tab=overdue", f"/unit/reports/{report['id']}", f"/unit/reports/{late['id']}"):
        r = client.get(path + ("&" if "?" in path else "?") + "lang=en")
        assert r.status_code == 200, path
        assert 'lang="en"' in r.get_data(as_text=True)
        left = [t.strip() for t in without_user_data(shown_texts(r), user_data()) if CJK.search(t)]
        untranslated = [t for t in left if not any(p.fullmatch(t) for p in pending)]
        assert not untranslated, f"Chinese on the English page {path}: {untranslated[:10]}"
