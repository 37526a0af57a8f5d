"""The representative's pages: home per role, /my (my street), /reports/<id> (visibility rule) and
/account/api-key (a key shown once, the old one ended), in both languages."""
import functools
import re

import pytest


from geoapp.domain.vocabulary import REPORT_STATUSES
from geoapp.translations import catalog
from tests.conftest import data_block, report_body
from tests.test_i18n import ROOT, CJK, shown_texts, without_user_data, user_data  # noqa: F401  (fixture)


@functools.cache
def _pending_patterns() -> tuple[re.Pattern, ...]:
    """The msgids in the source that have no English yet (this page's and the other helpers' new
    ones, until the lead merges them into the catalog), as patterns: parameters match anything.
    Chinese on an English page must be one of these, or user data; test_i18n requires the catalog
    to be complete, so once merged this test is as strict as the i18n walker."""
    from tests.test_i18n import ui_msgids

    english = catalog("en")
    out = []
    for msgid in ui_msgids():
        if CJK.search(msgid) and english.gettext(msgid) == msgid:
            parts = re.split(r"%\(\w+\)s|\{\w+\}", msgid)
            out.append(re.compile(".*".join(re.escape(p.strip()) for p in parts)))
    return tuple(out)


@pytest.fixture
def post(app, auth, streets):
    """post(user, street, fraction, **fields) -> a report made through the API (JSON, no photo)."""
    def send(user, street, fraction=0.5, **extra):
        r = app.test_client().post("/api/v1/reports", json=report_body(*streets.point(street, fraction), **extra),
                                   headers=auth(user))
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.json
    return send


# --- home per role -------------------------------------------------------------------------------

@pytest.mark.parametrize("username, home", [("rep03", "/my"), ("dispatcher", "/console"), ("admin", "/console"),
                                            ("handler01", "/unit")])
def test_sign_in_lands_each_role_on_its_home(as_user, username, home):
    client = as_user(username)
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith(home)
    assert client.get(home).status_code == 200


def test_my_street_is_the_representatives_page(as_user):
    page = as_user("dispatcher").get("/my")
    assert page.status_code == 403
    assert as_user("rep03").get("/my").status_code == 200


def test_my_street_without_signing_in_goes_to_login(client, users):
    r = client.get("/my")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


# --- /my -----------------------------------------------------------------------------------------

def test_my_data_block_has_my_street_and_quota(as_user, post):
    client = as_user("rep03")
    html = client.get("/my").get_data(as_text=True)
    data = data_block(html, "my-data")
    assert data["street"]["code"] == "S03" and data["street"]["label"] == "解放路"
    assert data["street"]["geometry"]["type"] in ("LineString", "MultiLineString")
    quota = data["quota"]
    assert quota["taken"] == 0 and quota["quota"] in (2, 4) and not quota["met"]
    assert f'已拍 0 / {quota["quota"]} 张' in html and "本月还剩" in html
    assert data["endpoints"]["reports"].startswith("/api/v1/reports?") and "street=S03" in data["endpoints"]["reports"]
    assert "street=S03" in data["endpoints"]["walks"] and "from=" in data["endpoints"]["walks"]
    assert [s["status"] for s in data["statuses"]] == list(REPORT_STATUSES)  # the legend: every status, in order
    assert 'href="/my/pin"' in html and 'href="/account/api-key"' in html
    # the API the page reads answers it, from the session cookie
    assert client.get(data["endpoints"]["reports"]).status_code == 200
    assert client.get(data["endpoints"]["walks"]).status_code == 200


def test_my_reports_are_listed_newest_first_with_links(as_user, post):
    first = post("rep03", "S03", 0.3, description="第一条")
    second = post("rep03", "S03", 0.6, description="第二条")
    post("dispatcher", "S03", 0.5)  # on my street but not mine: on the map, not in my list
    html = as_user("rep03").get("/my").get_data(as_text=True)
    listed = re.findall(r'<li data-report-id="(\d+)">', html)
    assert listed == [str(second["id"]), str(first["id"])]
    assert f'href="/reports/{second["id"]}"' in html and "已提交" in html
    assert "我的上报（共 2 条）" in html


def test_my_page_has_no_inline_script_or_style(as_user, post):
    post("rep03", "S03", 0.5, description="<script>alert(1)</script>")
    client = as_user("rep03")
    for path in ("/my", "/account/api-key"):
        html = client.get(path).get_data(as_text=True)
        for attrs, _body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
            assert 'src="' in attrs or 'type="application/json"' in attrs, attrs
        assert " style=" not in html and "<style" not in html
        for url in re.findall(r'(?:src|href)="(/(?:static|vendor)/[^"]+)"', html):
            assert client.get(url).status_code == 200, url


# --- /reports/<id> -------------------------------------------------------------------------------

def test_a_report_on_another_street_is_not_found(as_user, post):
    elsewhere = post("rep12", "S12")
    client = as_user("rep03")
    hidden, missing = client.get(f"/reports/{elsewhere['id']}"), client.get("/reports/99999999")
    assert hidden.status_code == missing.status_code == 404
    assert "S12" not in hidden.get_data(as_text=True)


def test_another_representatives_report_on_my_street_is_a_summary(as_user, post):
    theirs = post("rep04", "S03", 0.4, description="邻居写的描述")
    html = as_user("rep03").get(f"/reports/{theirs['id']}").get_data(as_text=True)
    assert "邻居写的描述" not in html and 'id="summary-note"' in html
    assert 'id="history"' not in html and 'id="unit"' not in html and 'id="dispatch-reason"' not in html
    assert "解放路，距起点" in html and "已提交" in html
    data = data_block(html, "report-data")
    assert data["street"]["code"] == "S03" and data["point"]["lat"] == pytest.approx(theirs["lat"])


def test_my_own_report_is_shown_in_full_with_its_history(as_user, post):
    mine = post("rep03", "S03", 0.5, description="路边垃圾堆积，已三天")
    html = as_user("rep03").get(f"/reports/{mine['id']}").get_data(as_text=True)
    assert "路边垃圾堆积，已三天" in html and 'id="summary-note"' not in html
    assert re.search(r'id="unit">[^<]+<', html) and re.search(r'id="dispatch-reason">[^<]+<', html)
    assert "提交上报" in html and "→ 已提交" in html
    # class › category › item, and the position along the street in metres
    assert re.search(r'id="category">[^<›]+ › [^<›]+ › [^<›]+<', html)
    assert re.search(r"解放路，距起点 [\d,]+ 米", html)
    en = as_user("rep03").get(f"/reports/{mine['id']}?lang=en").get_data(as_text=True)
    assert "Jiefang Road" in en


def test_a_dispatcher_sees_any_report_in_full(as_user, post):
    mine = post("rep03", "S03", 0.5, description="调度员能看到的描述")
    html = as_user("dispatcher").get(f"/reports/{mine['id']}").get_data(as_text=True)
    assert "调度员能看到的描述" in html and 'id="history"' in html


# --- /account/api-key ----------------------------------------------------------------------------

def _issued_key(html: str) -> str:
    return re.search(r'<code id="new-key">([^<]+)</code>', html).group(1)


def test_the_key_page_issues_a_key_once_and_ends_the_old_one(as_user, signin, users):
    client = as_user("rep03")
    page = client.get("/account/api-key")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="new-key"' not in html
    assert users["rep03"] not in html  # a stored key is never shown (only its hash is kept)
    assert "您已有一个 API 密钥" in html
    token = signin.csrf_token("/account/api-key", client=client)
    r = client.post("/account/api-key", data={"csrf_token": token})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    key = _issued_key(r.get_data(as_text=True))
    assert key.startswith("ga_") and key != users["rep03"]
    api = client.application.test_client()  # no cookie: the key alone
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).json["user"]["username"] == "rep03"
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {users['rep03']}"}).status_code == 401
    again = client.get("/account/api-key").get_data(as_text=True)
    assert key not in again and 'id="new-key"' not in again


def test_the_key_page_needs_its_csrf_token(as_user, users):
    client = as_user("rep03")
    r = client.post("/account/api-key", data={})
    assert r.status_code == 400
    api = client.application.test_client()
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {users['rep03']}"}).status_code == 200


def test_the_key_page_is_for_every_signed_in_user(as_user, client, users):
    assert as_user("dispatcher").get("/account/api-key").status_code == 200
    r = client.get("/account/api-key")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


# --- English -------------------------------------------------------------------------------------

@pytest.mark.parametrize("user, path", [("rep03", "/my"), ("rep03", "/reports/{mine}"), ("rep03", "/reports/{theirs}"),
                                        ("dispatcher", "/reports/{mine}"), ("rep03", "/account/api-key")])
def test_english_pages_leave_only_msgids_awaiting_english(as_user, post, user_data, user, path):  # noqa: F811
    ids = {"mine": post("rep03", "S03", 0.5)["id"], "theirs": post("rep04", "S03", 0.4)["id"]}
    r = as_user(user).get(path.format(**ids) + "?lang=en")
    assert r.status_code == 200
    left = [t.strip() for t in without_user_data(shown_texts(r), user_data()) if CJK.search(t)]
    pending = _pending_patterns()
    untranslated = [t for t in left if not any(p.fullmatch(t) for p in pending)]
    assert not untranslated, f"Chinese on the English page {path}: {untranslated[:10]}"
