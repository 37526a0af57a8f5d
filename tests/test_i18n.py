"""Language: every UI string and refusal is a gettext msgid (the Chinese text) with English in
geoapp/translations/en/LC_MESSAGES/messages.po.

- The catalog is complete: every msgid in the source has English, none fuzzy.
- A walker fetches each page of PAGES in English and finds no Chinese left once user data (names,
  descriptions, place names without an English form) is taken out: not in the visible text, not in
  title/placeholder/aria-label/alt, not in the page's JSON data block, not in an API's JSON. The same
  pages in Chinese do contain Chinese.
- The language comes from ?lang= (remembered), else Accept-Language, else Chinese.
- Layout: the header of each page takes at most two rows on a 360 px phone, one or two on a desktop,
  and a report's popup is wide enough to read (tests/browser fixtures, Debian chromium).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import text

from geoapp.domain.accounts import WeakPassword
from geoapp.domain.errors import OffStreet, SwappedCoordinates
from geoapp.translations import DIRECTORY, catalog
from tests.conftest import report_body

ROOT = Path(__file__).resolve().parent.parent
CATALOG = DIRECTORY / "en" / "LC_MESSAGES" / "messages.po"
# Han, CJK punctuation, fullwidth forms: what an English page must not show
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


@dataclass(frozen=True)
class Page:
    """One page (or API answer) the walker reads in both languages.
    path may name {report}: a report of rep03's on S03, made for the walk."""
    path: str
    user: str | None = None  # signed in through /login (None: nobody)
    status: int = 200
    method: str = "GET"
    json_body: dict | None = None
    bearer: bool = False  # the API with the user's key instead of the session cookie

    def __str__(self):
        return f"{self.method} {self.path} as {self.user or 'nobody'}"


# The pages the walker reads. Add each new page here.
PAGES = [
    Page("/login"),
    Page("/account/password", "dispatcher"),
    Page("/account/password", "rep03"),
    Page("/map", "dispatcher"),
    Page("/no/such/page", status=404),
    Page("/no/such/page", "rep03", status=404),
    Page("/api/v1/nonexistent", "dispatcher", status=404),
    Page("/api/v1/reports", status=401),
    Page("/api/v1/reports", "rep03", status=400, method="POST", bearer=True,
         json_body={"client_id": "not-a-uuid", "lat": "41.1", "lon": "121.1", "category": "0401", "description": "x"}),
    Page("/api/v1/reports", "rep03", status=400, method="POST", bearer=True,
         json_body=report_body(41.1165, 121.125)),  # latitude and longitude swapped
    Page("/api/v1/reports", "rep03", status=422, method="POST", bearer=True, json_body="OFF_STREET"),
    Page("/my", "rep03"),
    Page("/my/pin", "rep03"),
    Page("/reports/{report}", "rep03"),
    Page("/reports/{report}", "dispatcher"),
    Page("/account/api-key", "rep03"),
    Page("/api/v1/me", "rep03", bearer=True),
    Page("/api/v1/walks?street=NOPE", "rep03", status=400, bearer=True),
    # [3]: the console, the unit's pages, the inbox, the lifecycle's refusals
    Page("/console", "dispatcher"),
    Page("/console?tab=overdue", "dispatcher"),
    Page("/console/reports/{report}", "dispatcher"),
    Page("/console/reports/{dispatched}", "dispatcher"),
    Page("/console/duplicates", "dispatcher"),
    Page("/unit", "handler03"),
    Page("/unit/reports/{dispatched}", "handler03"),
    Page("/reports/{dispatched}", "rep03"),
    Page("/inbox", "handler03"),
    Page("/api/v1/lifecycle", "dispatcher", bearer=True),
    Page("/api/v1/reports/{report}/actions", "dispatcher", status=409, method="POST", bearer=True,
         json_body={"action": "close", "version": 1}),
    Page("/api/v1/reports/{report}/actions", "dispatcher", status=400, method="POST", bearer=True,
         json_body={"action": "reject", "version": 1}),
    # [4]: the album (an issued album's own page is walked in tests/test_album.py)
    Page("/albums", "dispatcher"),
    Page("/albums", "leader"),
    Page("/api/v1/albums", "dispatcher", status=400, method="POST", bearer=True,
         json_body={"from": "2026-09-15", "to": "2026-10-31"}),
    Page("/api/v1/albums", "dispatcher", status=422, method="POST", bearer=True,
         json_body={"from": "2020-01-01", "to": "2020-02-29"}),
    # [4]: coverage per road
    Page("/coverage", "leader"),
    Page("/coverage/S03", "rep03"),
    Page("/api/v1/coverage?street=S03", "rep03", bearer=True),
    Page("/api/v1/coverage?from=2026-11-02&to=2026-11-01", "leader", status=400, bearer=True),
    Page("/api/v1/coverage?bin_m=15", "leader", status=400, bearer=True),
    # [4]: the statistics and the monthly bulletin
    Page("/stats", "leader"),
    Page("/stats/bulletin", "leader"),
    Page("/api/v1/stats?by=unit", "leader", bearer=True),
    Page("/api/v1/stats?by=colour", "dispatcher", status=400, bearer=True),
    # [6]: the security administrator's policy, and enrolling a second factor
    Page("/admin/security", "secadmin"),
    Page("/account/second-factor", "rep03"),
]

# Attributes a person reads (or hears from a screen reader)
READ_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")


class _Reader(HTMLParser):
    """The text a person sees on a page: visible text, read attributes, and JSON data blocks.
    An element marked lang="zh…" (the language switch names Chinese in Chinese) is left out."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.data_blocks: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, skipped)
        self._in = None

    def _skipping(self) -> bool:
        return any(skipped for _, skipped in self._stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        skipped = (a.get("lang") or "").lower().startswith("zh") and tag != "html"
        if tag in ("meta", "link", "input", "br", "img", "hr"):  # void elements
            if not (skipped or self._skipping()):
                self.texts += [a[k] for k in READ_ATTRIBUTES if a.get(k)]
            return
        self._stack.append((tag, skipped))
        if not self._skipping():
            self.texts += [a[k] for k in READ_ATTRIBUTES if a.get(k)]
        if tag == "script":
            self._in = "json" if a.get("type") == "application/json" else "script"
        elif tag == "style":
            self._in = "script"

    def handle_endtag(self, tag):
        while self._stack:
            top, _ = self._stack.pop()
            if top == tag:
                break
        if tag in ("script", "style"):
            self._in = None

    def handle_data(self, data):
        if self._in == "json":
            self.data_blocks.append(data)
        elif self._in is None and not self._skipping() and data.strip():
            self.texts.append(data)


def _strings(value, skip_keys=("description", "keys")):
    """Every string inside a JSON value, except user text under `skip_keys` and a name that comes
    with its English form beside it (`name` next to `name_en`: the data in both languages).
    `keys` are the pin page's category search keys: matched against what is typed (Chinese,
    pinyin, English alike), never shown."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in skip_keys and f"{k}_en" not in value:
                yield from _strings(v, skip_keys)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, skip_keys)


def shown_texts(response) -> list[str]:
    if response.mimetype == "application/json":
        return list(_strings(response.json))
    reader = _Reader()
    reader.feed(response.get_data(as_text=True))
    texts = list(reader.texts)
    for block in reader.data_blocks:
        texts += _strings(json.loads(block))
    return texts


@pytest.fixture
def user_data(db):
    """user_data() -> what people and the city wrote that has no English form: names of people,
    places a street runs between, descriptions; names with an English column only where it is
    empty. Longest first (read when called: after the walk has made its report)."""
    queries = [
        "SELECT display_name FROM users", "SELECT username FROM users", "SELECT name FROM representatives",
        "SELECT from_name FROM streets", "SELECT to_name FROM streets", "SELECT district FROM streets",
        "SELECT name FROM streets WHERE coalesce(name_en, '') = ''",
        "SELECT name FROM units WHERE coalesce(name_en, '') = ''",
        "SELECT description FROM reports",
        # what people wrote along the lifecycle: reasons, replies, comments
        "SELECT data->>'reason' FROM report_events", "SELECT data->>'text' FROM report_events",
        "SELECT data->>'comment' FROM report_events",
    ]
    def read() -> list[str]:
        found = set()
        with db.sessionmaker() as s:
            for q in queries:
                found.update(v for (v,) in s.execute(text(q)) if v)
        return sorted(found, key=len, reverse=True)
    return read


def without_user_data(texts: list[str], user_data: list[str]) -> list[str]:
    out = []
    for t in texts:
        for value in user_data:
            t = t.replace(value, " ")
        out.append(t)
    return out


@pytest.fixture
def walk(app, users, auth, signin, streets):
    """fetch(page, lang) -> the response, as the page's user, with one report of rep03's on file."""
    made = app.test_client().post("/api/v1/reports", json=report_body(*streets.point("S03", 0.5)),
                                  headers=auth("rep03"))
    assert made.status_code == 201, made.get_data(as_text=True)
    context = {"report": made.json["id"]}
    # a second report, dispatched to M03 (handler03, in units.csv order), with a reply from the unit
    other = app.test_client().post("/api/v1/reports", json=report_body(*streets.point("S03", 0.3)),
                                   headers=auth("rep03")).json
    for who, body in (("dispatcher", {"action": "dispatch", "version": 1, "unit": "M03", "reason": "按职责改派"}),
                      ("handler03", {"action": "unit_accept", "version": 2}),
                      ("handler03", {"action": "progress", "version": 3, "text": "已安排人员"})):
        r = app.test_client().post(f"/api/v1/reports/{other['id']}/actions", json=body, headers=auth(who))
        assert r.status_code == 200, r.get_data(as_text=True)
    context["dispatched"] = other["id"]

    def fetch(page: Page, lang: str):
        client = app.test_client()
        headers = {}
        if page.user and page.bearer:
            headers = auth(page.user)
        elif page.user:
            signin.reset_limits()
            assert signin.login(page.user, client=client).status_code == 302
        path = page.path.format(**context)
        url = f"{path}{'&' if '?' in path else '?'}lang={lang}"
        body = page.json_body
        if body == "OFF_STREET":
            body = report_body(*streets.point("S03", 0.5, 200.0))
        r = client.open(url, method=page.method, json=body, headers=headers)
        assert r.status_code == page.status, (str(page), r.status_code, r.get_data(as_text=True)[:300])
        return r

    return fetch


# --- the catalog ------------------------------------------------------------------------------------

def _catalog():
    with CATALOG.open("rb") as fh:
        return read_po(fh)


def test_every_msgid_has_english_and_none_is_fuzzy():
    missing, fuzzy = [], []
    for m in _catalog():
        if not m.id:
            continue
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if not all(s.strip() for s in strings):
            missing.append(m.id)
        if m.fuzzy:
            fuzzy.append(m.id)
    assert not missing, f"run scripts/i18n and give these English: {missing}"
    assert not fuzzy, f"check these translations and drop their fuzzy flag: {fuzzy}"


def ui_msgids():
    """Every msgid of the code (geoapp/) and the pages (templates/), as scripts/i18n extracts them."""
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None, "N_": None}
    for folder, method_map in (("geoapp", [("**.py", "python")]), ("templates", [("**.html", "jinja2")])):
        for _file, _line, msg, *_rest in extract_from_dir(str(ROOT / folder), method_map, keywords=keywords):
            yield msg if isinstance(msg, str) else msg[0]


def test_every_string_in_the_source_is_in_the_catalog():
    """A new _('…') without English would show Chinese on English pages: scripts/i18n adds it."""
    in_source = set(ui_msgids())
    in_catalog = {m.id if isinstance(m.id, str) else m.id[0] for m in _catalog() if m.id}
    assert not in_source - in_catalog, f"run scripts/i18n: {sorted(in_source - in_catalog)}"


def test_the_compiled_catalog_says_what_the_po_says():
    """The .mo is compiled at setup, never committed: one that lags the .po shows old English."""
    compiled = catalog("en")
    stale = [m.id for m in _catalog() if m.id and isinstance(m.id, str) and m.string
             and compiled.gettext(m.id) != m.string]
    assert not stale, f"run scripts/i18n (or scripts/test, which compiles): {stale[:5]}"


# --- pages in both languages ------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES, ids=str)
def test_english_pages_show_no_chinese_but_user_data(walk, user_data, page):
    texts = shown_texts(walk(page, "en"))
    left = [t for t in without_user_data(texts, user_data()) if CJK.search(t)]
    assert not left, f"{page}: Chinese left on the English page: {left[:10]}"


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_chinese_pages_are_in_chinese(walk, user_data, page):
    texts = without_user_data(shown_texts(walk(page, "zh")), user_data())
    assert any(CJK.search(t) for t in texts), f"{page}: no Chinese on the Chinese page"


def test_accept_language_english_gives_english(client):
    r = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    html = r.get_data(as_text=True)
    assert 'lang="en"' in html and "Sign in" in html and "登录" not in html.replace('lang="zh-CN">中文', "")


def test_no_preference_gives_chinese(client):
    assert "用户名" in client.get("/login").get_data(as_text=True)


def test_lang_overrides_accept_language_and_is_remembered(client):
    english_browser = {"Accept-Language": "en-US,en;q=0.9"}
    assert "用户名" in client.get("/login?lang=zh", headers=english_browser).get_data(as_text=True)
    assert "用户名" in client.get("/login", headers=english_browser).get_data(as_text=True)
    assert "Username" in client.get("/login?lang=en").get_data(as_text=True)
    assert "Username" in client.get("/login").get_data(as_text=True)


def test_api_refusals_speak_the_requests_language(client, auth, streets):
    body = report_body(*streets.point("S03", 0.5, 200.0))
    en = client.post("/api/v1/reports", json=body, headers=auth("rep03") | {"Accept-Language": "en"})
    assert en.status_code == 422 and en.json["message"].startswith("200 m from Jiefang Road"), en.json
    zh = client.post("/api/v1/reports?lang=zh", json=body, headers=auth("rep03"))
    assert "距离解放路 200 米" in zh.json["message"], zh.json


# --- domain sentences outside a request ----------------------------------------------------------

def test_domain_errors_speak_either_language_without_a_request():
    err = SwappedCoordinates(lat=121.1, lon=41.1)
    assert "swapped" in err.message("en") and "填反" in err.message("zh")
    assert err.message() == err.message("zh")  # no request: Chinese, the default
    assert str(err) == err.message("en")  # logs and tracebacks read English


def test_domain_errors_follow_the_request(app):
    err = OffStreet(street="解放路", street_en="Jiefang Road", distance="1,240", distance_m=1240.0, tolerance=30.0)
    with app.test_request_context("/?lang=en"):
        assert err.message() == "1,240 m from Jiefang Road; reports must be within 30 m of a key street."
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert err.message() == "该位置距离解放路 1,240 米；问题点须在重点街路 30 米以内。"


def test_password_policy_speaks_either_language(app):
    weak = WeakPassword("too_short", n=10)
    assert weak.message("zh") == "密码至少需要 10 个字符。"
    assert weak.message("en") == "The password must be at least 10 characters long."
    with app.test_request_context("/?lang=en"):
        assert weak.message() == weak.message("en")


def test_map_dates_and_distances_follow_the_locale(client, signin, users, auth, streets):
    """The console map formats a popup's time and distance in the browser, from its data block: the
    city's zone, the page's language and the distance's words ("{n} 米" / "{n} m")."""
    signin.login("dispatcher")

    def data_block(lang):
        reader = _Reader()
        reader.feed(client.get(f"/map?lang={lang}").get_data(as_text=True))
        return json.loads(reader.data_blocks[0])

    zh, en = data_block("zh"), data_block("en")
    assert zh["labels"]["distance"] == "{n} 米" and en["labels"]["distance"] == "{n} m"
    assert zh["lang"] != en["lang"] and zh["tz"] == en["tz"] == "Asia/Shanghai"


# --- layout from 360 px, in chromium ------------------------------------------------------------

from tests.browser.conftest import CHROMIUM, browser, live_server, offline_page, sign_in  # noqa: E402,F401

LAYOUT_PAGES = [("/login", None), ("/account/password", "dispatcher"), ("/map", "dispatcher"),
                ("/no/such/page", "dispatcher"), ("/coverage", "leader"),
                ("/stats", "leader"), ("/albums", "leader")]
HEADER_ROW_PX = 44


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
@pytest.mark.parametrize("width", [360, 1280])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_header_takes_at_most_two_rows(browser, live_server, users, tmp_path, width, lang):
    page = offline_page(browser, live_server, viewport={"width": width, "height": 740},
                        locale="en-US" if lang == "en" else "zh-CN")
    signed_in = None
    for path, user in LAYOUT_PAGES:
        if user and user != signed_in:
            sign_in(page, live_server, user)
            signed_in = user
        page.goto(f"{live_server}{path}?lang={lang}", wait_until="load")
        header = page.locator("header.topbar").bounding_box()
        assert header["height"] <= 2 * HEADER_ROW_PX + 12, (path, width, header)
        assert header["width"] <= width, (path, width, header)
        # nothing in the header is squeezed narrower than two characters (the old single-character column)
        narrow = page.evaluate("""() => [...document.querySelectorAll('.topbar-title, .topbar-user > *, .legend-item, .report-count')]
            .filter(e => e.offsetParent !== null && e.textContent.trim().length > 1 && e.getBoundingClientRect().width < 28)
            .map(e => e.textContent.trim())""")
        assert narrow == [], (path, width, narrow)
        page.screenshot(path=str(tmp_path / f"{path.strip('/').replace('/', '_')}-{lang}-{width}.png"))
    # the error page's own 404 is reported on the console; nothing else may be
    assert [e for e in page.errors if "status of 404" not in e] == [] and page.blocked == []


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_popups_are_wide_enough_to_read_on_a_phone(browser, live_server, app, users, auth, streets, tmp_path):
    description = "路灯杆倾斜，灯罩脱落，夜间人行道一片漆黑，行人容易摔倒，请尽快处理"
    made = app.test_client().post("/api/v1/reports", headers=auth("rep03"),
                                  json=report_body(*streets.point("S03", 0.5), description=description))
    assert made.status_code == 201
    page = offline_page(browser, live_server, viewport={"width": 360, "height": 740})
    sign_in(page, live_server, "dispatcher", next_path="/map")
    page.wait_for_url(re.compile(r".*/map(#.*)?$"))  # the page adds its view (#z/lat/lon)
    page.wait_for_function("() => window.geoappMap !== undefined")
    page.evaluate("""() => {
        const map = window.geoappMap;
        map.eachLayer(l => { if (l.feature && l.feature.properties && l.feature.properties.popup && !window.__street)
                                 window.__street = l; });
        window.__street.openPopup(window.__street.getCenter ? window.__street.getCenter() : undefined);
    }""")
    box = page.locator(".leaflet-popup-content").bounding_box()
    page.screenshot(path=str(tmp_path / "street-popup-360.png"))
    assert box["width"] >= 150, box  # Chinese lines of eight characters or more, not one or two
    # a report's popup, its marker near the right edge of the screen
    page.evaluate("""([lat, lon]) => {
        const map = window.geoappMap;
        map.closePopup();
        const at = map.project([lat, lon], 18).subtract([150, 0]);
        map.setView(map.unproject(at, 18), 18, {animate: false});
    }""", [made.json["lat"], made.json["lon"]])
    deadline = time.monotonic() + 15  # the report's tile arrives from the server
    while not page.evaluate("""(id) => { let found = null;
            window.geoappMap.eachLayer(l => { if (l.reportId === id) found = l; });
            window.__target = found; return !!found; }""", made.json["id"]):
        assert time.monotonic() < deadline, "the report's marker never came"
        page.wait_for_timeout(200)
    page.evaluate("() => window.__target.openPopup()")
    page.wait_for_selector(".leaflet-popup .report-popup")
    page.wait_for_timeout(500)  # the popup's pan into view
    box = page.locator(".leaflet-popup-content").bounding_box()
    page.screenshot(path=str(tmp_path / "report-popup-360.png"))
    assert box["width"] >= 190, box
    assert 0 <= box["x"] and box["x"] + box["width"] <= 360, box  # on the screen, not cut off
    assert page.errors == [] and page.blocked == []
