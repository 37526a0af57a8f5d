"""The dispatcher's console in Debian chromium: from the work queue to a report, dispatched by one click
on the suggestion, flagged for the album; an override without a reason shows the server's refusal.
At 1280 px (a dispatcher's desktop) and at 375 px (it must not break on a phone). Nothing leaves the
server (page.blocked), nothing fails in the console (page.errors)."""
import io

from tests.browser.conftest import PHONE, offline_page, sign_in, until
from tests.conftest import jpeg, report_body

DESKTOP = {"width": 1280, "height": 900}


def _post_report(app, auth, streets, fraction: float, description: str) -> int:
    body = report_body(*streets.point("S03", fraction), description=description)
    data = {k: str(v) for k, v in body.items()} | {"photo": (io.BytesIO(jpeg()), "p.jpg", "image/jpeg")}
    r = app.test_client().post("/api/v1/reports", data=data, content_type="multipart/form-data",
                               headers=auth("rep03"))
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json["id"]


def _no_sideways_scroll(page):
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "horizontal scroll"


def test_dispatch_by_one_click_and_flag_for_the_album(browser, live_server, app, users, auth, streets, tmp_path):
    first = _post_report(app, auth, streets, 0.3, "井盖缺失，夜间危险")
    second = _post_report(app, auth, streets, 0.7, "路灯不亮")
    page = offline_page(browser, live_server, viewport=DESKTOP)
    sign_in(page, live_server, "dispatcher", next_path="/console")
    assert page.url.endswith("/console")
    assert page.text_content(".tab.current .count").strip() == "2"
    assert page.is_visible(f'li.row[data-id="{first}"]')
    page.screenshot(path=str(tmp_path / "queue-1280.png"), full_page=True)

    page.click(f'li.row[data-id="{first}"] a')
    page.wait_for_url(f"**/console/reports/{first}")
    until(page, "!document.getElementById('dispatch-accept').disabled")
    assert page.text_content("#suggested-unit").strip()
    assert page.text_content("#suggested-reason").strip()
    assert page.text_content("#suggested-deadline").strip()
    assert page.input_value("#dispatch-deadline"), "the computed deadline, editable"
    page.screenshot(path=str(tmp_path / "report-1280.png"), full_page=True)
    suggested = page.text_content("#suggested-unit").strip()

    page.click("#dispatch-accept")  # one click
    page.wait_for_selector("#flash.flash-ok")
    assert page.text_content("#status-label") == "已派遣"
    assert page.text_content("#unit").strip() == suggested
    assert page.is_visible("#deadline")
    assert page.query_selector("#dispatch-panel") is None
    assert page.get_attribute("#album-toggle", "aria-pressed") == "false"

    page.click("#album-toggle")
    page.wait_for_selector('#album-toggle[aria-pressed="true"]')
    assert page.text_content("#album-state").strip() == "已列入问题图册"
    assert page.is_visible(".badge-album")
    history = page.text_content("#history")
    assert "派遣" in history and "问题图册" in history
    page.screenshot(path=str(tmp_path / "dispatched-1280.png"), full_page=True)
    assert page.errors == [] and page.blocked == []

    # the same console on a phone: the other report, overridden without a reason → the refusal shown
    phone = offline_page(browser, live_server, viewport=PHONE)
    sign_in(phone, live_server, "dispatcher", next_path="/console")
    _no_sideways_scroll(phone)
    phone.screenshot(path=str(tmp_path / "queue-375.png"), full_page=True)
    phone.goto(f"{live_server}/console/reports/{second}")
    until(phone, "!document.getElementById('dispatch-accept').disabled")
    _no_sideways_scroll(phone)
    phone.screenshot(path=str(tmp_path / "report-375.png"), full_page=True)
    phone.click("#dispatch-override summary")
    current = phone.input_value("#dispatch-unit")
    other = phone.evaluate("Array.from(document.querySelectorAll('#dispatch-unit option'))"
                           f".map(o => o.value).find(v => v !== {current!r})")
    phone.select_option("#dispatch-unit", other)
    phone.click("#dispatch-form button[type=submit]")
    phone.wait_for_selector("#dispatch-form .form-error.shown-error")
    assert "理由" in phone.text_content("#dispatch-form .form-error")
    phone.screenshot(path=str(tmp_path / "override-375.png"), full_page=True)
    # a 400 is the user's mistake: the browser logs the failed fetch, nothing else may appear
    assert [e for e in phone.errors if "400" not in e] == [] and phone.blocked == []

    # another dispatcher acts first: this page's version is stale → 409, the message shown after a reload
    r = app.test_client().post(f"/api/v1/reports/{second}/actions", json={"action": "accept", "version": 1},
                               headers=auth("dispatcher"))
    assert r.status_code == 200, r.get_data(as_text=True)
    phone.errors.clear()
    phone.click("#dispatch-accept")
    phone.wait_for_selector("#flash.flash-error")
    assert "提交失败" in phone.text_content("#flash")
    assert phone.text_content("#status-label") == "已受理"
    assert [e for e in phone.errors if "409" not in e] == [] and phone.blocked == []
    print("screenshots:", tmp_path)


def test_overdue_and_handed_back_tabs_read_well(browser, live_server, app, db, users, auth, streets, tmp_path):
    """The tabs whose rows carry the most (how late by unit; who handed it back and why), as made by
    the lifecycle itself, at both widths."""
    import datetime as dt

    from sqlalchemy import select

    from geoapp.domain import lifecycle
    from geoapp.domain.reports import get_report
    from geoapp.domain.visibility import Viewer
    from geoapp.models import User

    rules = lifecycle.rules_from_settings(app.config["GEOAPP"])
    late, back = (_post_report(app, auth, streets, f, d) for f, d in ((0.2, "人行道破损"), (0.8, "垃圾堆积")))
    with db.transaction() as session:
        viewers = {u.username: Viewer.of(u) for u in session.execute(select(User)).scalars()}
        long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=20)
        for report, now in ((late, long_ago), (back, None)):
            rec = get_report(session, report)
            lifecycle.perform(session, viewers["dispatcher"], report, "dispatch",
                              lifecycle.ActionFields(version=rec["version"], unit=rec["unit_code"]), rules, now=now)
        rec = get_report(session, back)
        handler = next(v for v in viewers.values() if v.role == "unit_handler" and v.unit_id == rec["unit_id"])
        lifecycle.perform(session, handler, back, "hand_back",
                          lifecycle.ActionFields(version=rec["version"], reason="该设施不属于本单位养护范围"), rules)
    for viewport, name in ((DESKTOP, "1280"), (PHONE, "375")):
        page = offline_page(browser, live_server, viewport=viewport)
        sign_in(page, live_server, "dispatcher", next_path="/console?tab=overdue")
        assert page.is_visible(f'li.row[data-id="{late}"]')
        assert "工作日" in page.text_content(f'li.row[data-id="{late}"]')
        _no_sideways_scroll(page)
        page.screenshot(path=str(tmp_path / f"overdue-{name}.png"), full_page=True)
        page.click('a.tab[data-tab="returned"]')
        page.wait_for_selector(f'li.row[data-id="{back}"]')
        assert "该设施不属于本单位养护范围" in page.text_content(f'li.row[data-id="{back}"]')
        page.screenshot(path=str(tmp_path / f"returned-{name}.png"), full_page=True)
        assert page.errors == [] and page.blocked == []
    print("screenshots:", tmp_path)
