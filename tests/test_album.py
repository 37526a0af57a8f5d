"""The bimonthly album (问题图册): issuing, numbering across periods, the stored PDF and page, user
text, refusals and roles. The PDF is read back with poppler (pdfinfo, pdftotext, pdfimages,
pdftoppm) as a person would see it."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import text

from geoapp.domain import album_map
from geoapp.domain.album import Period
from geoapp.domain.album_pdf import PhotoFetcher, photo_url
from tests.conftest import jpeg, report_body
from tests.test_i18n import user_data  # noqa: F401 - a fixture: what people and the city wrote

TZ = ZoneInfo("Asia/Shanghai")
SCRIPT = "<script>alert(1)</script> {{7*7}} & “引号” 井盖"
BEFORE = (40, 90, 200)    # the colours of the test photos, found again in the rendered pages
AFTER = (30, 170, 60)


def _months_back(n: int) -> dt.date:
    d = dt.datetime.now(TZ).date().replace(day=1)
    for _ in range(n):
        d = (d - dt.timedelta(days=1)).replace(day=1)
    return d


CURRENT = Period.starting(_months_back(1))    # last month and this one: contains today
PREVIOUS = Period.starting(_months_back(3))   # the two months before


def period_json(p: Period) -> dict:
    return {"from": p.start.isoformat(), "to": p.end.isoformat()}


class City:
    """Reports made through the API and moved along the lifecycle by the API, as people do."""

    def __init__(self, client, auth, streets, db):
        self.client, self.auth, self.streets, self.db = client, auth, streets, db

    def report(self, who: str, street: str, frac: float, category: str, description: str = "路边垃圾堆积",
               photos: tuple = (BEFORE,)) -> int:
        lon, lat = self.streets.point(street, frac, 3)
        body = report_body(lon, lat, category=category, description=description)
        files = [(io.BytesIO(jpeg(colour=c, size=(1200, 900))), f"p{i}.jpg") for i, c in enumerate(photos)]
        r = self.client.post("/api/v1/reports", data={**body, "photo": files}, headers=self.auth(who),
                             content_type="multipart/form-data")
        assert r.status_code == 201, r.get_json()
        return r.get_json()["id"]

    def act(self, who: str, rid: int, action: str, files=None, **fields) -> dict:
        version = self.client.get(f"/api/v1/reports/{rid}", headers=self.auth(who)).get_json()["version"]
        if files:
            data = {"action": action, "version": str(version), **fields,
                    "photo": [(io.BytesIO(b), f"p{i}.jpg") for i, b in enumerate(files)]}
            r = self.client.post(f"/api/v1/reports/{rid}/actions", data=data, headers=self.auth(who),
                                 content_type="multipart/form-data")
        else:
            r = self.client.post(f"/api/v1/reports/{rid}/actions",
                                 json={"action": action, "version": version, **fields}, headers=self.auth(who))
        assert r.status_code == 200, (action, r.get_json())
        return r.get_json()

    def flag(self, rid: int) -> None:
        self.act("dispatcher", rid, "accept")
        self.act("dispatcher", rid, "album", flag=True)

    def handle(self, rid: int) -> None:
        """Dispatched to the suggested unit, accepted by its handler, handled with an after photo."""
        rec = self.client.get(f"/api/v1/reports/{rid}", headers=self.auth("dispatcher")).get_json()
        unit = rec["unit"]["code"]
        if rec["status"] in ("submitted", "accepted"):
            self.act("dispatcher", rid, "dispatch", unit=unit)
        with self.db.sessionmaker() as s:
            handler = s.execute(text("SELECT username FROM users WHERE unit_id = (SELECT id FROM units WHERE code = :c) "
                                     "ORDER BY id LIMIT 1"), {"c": unit}).scalar_one()
        self.act(handler, rid, "unit_accept")
        self.act(handler, rid, "handled", files=[jpeg(colour=AFTER, size=(1200, 900))], text="已修复")

    def backdate(self, rid: int, day: dt.date) -> None:
        with self.db.transaction() as s:
            s.execute(text("UPDATE reports SET created_at = :t WHERE id = :id"),
                      {"t": dt.datetime.combine(day, dt.time(10), TZ), "id": rid})


@pytest.fixture
def city(client, auth, streets, db):
    return City(client, auth, streets, db)


@pytest.fixture
def flagged(city):
    """Four flagged problems in three classes (one handled, one with two photos, one carrying markup in
    its description) and one report not flagged."""
    ids = {
        "pavement": city.report("rep03", "S03", 0.4, "0102", "人行道地砖松动，行人易绊倒"),
        "litter": city.report("rep05", "S05", 0.5, "0401", "垃圾堆积多日无人清运", photos=(BEFORE, (200, 60, 40))),
        "markup": city.report("rep07", "S07", 0.3, "0601", SCRIPT),
        "lamp": city.report("rep03", "S03", 0.7, "0301", "路灯不亮"),
        "unflagged": city.report("rep04", "S04", 0.5, "0102", "未列入图册的问题"),
    }
    for key in ("pavement", "litter", "markup", "lamp"):
        city.flag(ids[key])
    city.handle(ids["litter"])
    return ids


def issue(client, auth, p: Period, who: str = "dispatcher"):
    return client.post("/api/v1/albums", json=period_json(p), headers=auth(who))


def run(*cmd: str, data: bytes | None = None) -> str:
    return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout.decode()


def pdf_facts(pdf: bytes, tmp_path: Path) -> dict:
    path = tmp_path / "album.pdf"
    path.write_bytes(pdf)
    info = run("pdfinfo", str(path))
    fonts = run("pdffonts", str(path))
    images = [line.split() for line in run("pdfimages", "-list", str(path)).splitlines()[2:]]
    return {"pages": int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1)),
            "text": run("pdftotext", "-layout", str(path), "-"),
            "page_text": lambda n: run("pdftotext", "-f", str(n), "-l", str(n), str(path), "-"),
            "fonts": fonts, "images": images, "path": path}


def page_png(path: Path, page: int, tmp_path: Path) -> Image.Image:
    prefix = tmp_path / f"page{page}"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", str(page), "-l", str(page), "-singlefile", str(path),
                    str(prefix)], check=True)
    return Image.open(f"{prefix}.png").convert("RGB")


def share_near(img: Image.Image, colour, tol: int = 40) -> float:
    data = img.tobytes()
    r0, g0, b0 = colour
    near = sum(1 for r, g, b in zip(data[0::3], data[1::3], data[2::3])
               if abs(r - r0) <= tol and abs(g - g0) <= tol and abs(b - b0) <= tol)
    return near / (len(data) // 3)


# --- issuing: the PDF as a person sees it ----------------------------------------------------------

def test_the_album_pdf_has_its_pages_chinese_text_photos_and_maps(client, auth, flagged, tmp_path, as_user):
    r = issue(client, auth, CURRENT)
    assert r.status_code == 201, r.get_json()
    listed = r.get_json()
    assert listed["number"] == 1 and listed["period"] == period_json(CURRENT)
    assert listed["counts"]["total"] == 4 and listed["counts"]["handled"] == 1
    assert [(c["code"], c["n"]) for c in listed["counts"]["by_class"]] == [("A", 2), ("B", 1), ("C", 1)]

    pdf = as_user("leader").get(listed["pdf"]["url"])
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert hashlib.sha256(pdf.data).hexdigest() == listed["pdf"]["sha256"]
    facts = pdf_facts(pdf.data, tmp_path)
    if os.environ.get("ALBUM_TEST_KEEP"):  # to look at it: ALBUM_TEST_KEEP=/tmp/album.pdf
        Path(os.environ["ALBUM_TEST_KEEP"]).write_bytes(pdf.data)

    # cover + summary + each class on its own pages, two problems to a page: A 2 -> 1, B 1 -> 1, C 1 -> 1
    assert facts["pages"] == listed["pdf"]["pages"] == 2 + 1 + 1 + 1
    fonts = [line.split() for line in facts["fonts"].splitlines()[2:]]
    assert fonts and all("Noto-Sans-CJK-SC" in f[0] and f[-5] == "yes" for f in fonts), fonts  # embedded
    cover = re.sub(r"\s+", "", facts["page_text"](1))
    for words in ("锦州市人大环资城建委", "问题图册", "第1期", f"{CURRENT.start.year}年{CURRENT.start.month}月1日"):
        assert words in cover, words
    summary = facts["page_text"](2)
    assert "办结率 25.0%" in summary and "公用设施" in summary and "环境卫生与园林绿化" in summary
    body = facts["text"]
    assert "人行道地砖松动，行人易绊倒" in body and "垃圾堆积多日无人清运" in body
    assert re.search(r"距起点 [\d,]+ 米", body)
    # numbered 1..4 through the album, grouped by class: A (two), then B, then C
    assert body.index("一、公用设施") < body.index("二、环境卫生与园林绿化") < body.index("三、城市容貌")

    # the photos: every before photo and the one after photo, as images in the PDF
    assert len(facts["images"]) == 1 + 2 + 1 + 1 + 1   # pavement, litter (2), markup, lamp, litter's after
    # the pages as pictures: the photos' colours and the small map's red street are on the problem pages
    page3 = page_png(facts["path"], 3, tmp_path)
    assert share_near(page3, BEFORE) > 0.05                       # two before photos, large
    assert share_near(page3, (0xb4, 0x23, 0x18), tol=30) > 0.001  # the problem's own street on the map
    assert share_near(page3, (0xd1, 0x24, 0x2f), tol=30) > 0.0002  # the point
    page4 = page_png(facts["path"], 4, tmp_path)
    assert share_near(page4, AFTER) > 0.02                        # the handled problem's after photo


def test_the_screen_page_shows_the_same_album(as_user, client, auth, flagged):
    listed = issue(client, auth, CURRENT).get_json()
    page = as_user("leader").get(listed["html"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "第 1 期" in html and "锦州市人大环资城建委" in html
    assert len(re.findall(r'<article class="problem[ "]', html)) == 4
    assert html.count("<svg") == 4 and "<text" in html
    # photos through the API's photo address (the visibility rule), never a file path
    assert re.search(r'<img src="/api/v1/photos/\d+"', html) and "published/" not in html
    english = as_user("leader").get(listed["html"] + "?lang=en").get_data(as_text=True)
    assert "Issue 1" in english and "Public facilities" in english


# --- numbering and what is stored -------------------------------------------------------------------

def test_numbering_continues_across_periods_and_late_flags_are_carried_over(client, auth, city, tmp_path):
    early = city.report("rep03", "S03", 0.2, "0102", "上一期的问题")
    city.backdate(early, PREVIOUS.start + dt.timedelta(days=10))
    city.flag(early)
    late = city.report("rep03", "S03", 0.8, "0401", "上一期上报、后来才列入")
    city.backdate(late, PREVIOUS.start + dt.timedelta(days=20))
    now = city.report("rep05", "S05", 0.5, "0301", "本期的问题")
    city.flag(now)

    first = issue(client, auth, PREVIOUS)
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["number"] == 1 and first.get_json()["counts"]["total"] == 1

    city.flag(late)  # flagged after its own period's album was issued
    second = issue(client, auth, CURRENT)
    assert second.status_code == 201, second.get_json()
    assert second.get_json()["number"] == 2
    counts = second.get_json()["counts"]
    assert counts["total"] == 2 and counts["carried_over"] == 1

    again = issue(client, auth, PREVIOUS)
    assert again.status_code == 409 and again.get_json()["error"] == "album_already_issued"
    assert "第 1 期" in again.get_json()["message"]
    overlap = issue(client, auth, Period.starting(_months_back(2)))
    assert overlap.status_code == 409 and overlap.get_json()["error"] == "album_out_of_order"
    listing = client.get("/api/v1/albums", headers=auth("leader")).get_json()["albums"]
    assert [a["number"] for a in listing] == [2, 1]


def test_an_issued_album_does_not_change_when_its_reports_do(client, auth, city, flagged, as_user, db):
    listed = issue(client, auth, CURRENT).get_json()
    reader = as_user("dispatcher")
    before_pdf = reader.get(listed["pdf"]["url"]).data
    before_html = reader.get(listed["html"]).get_data(as_text=True)
    # afterwards: the pavement problem is handled, its text edited in the database, the flag taken off
    city.handle(flagged["pavement"])
    city.act("dispatcher", flagged["lamp"], "album", flag=False)
    with db.transaction() as s:
        s.execute(text("UPDATE reports SET description = '改过的描述' WHERE id = :id"), {"id": flagged["pavement"]})
    assert reader.get(listed["pdf"]["url"]).data == before_pdf
    after_html = reader.get(listed["html"]).get_data(as_text=True)
    assert "改过的描述" not in after_html and "人行道地砖松动" in after_html
    assert after_html.count("已办结") == before_html.count("已办结")
    assert client.get("/api/v1/albums", headers=auth("admin")).get_json()["albums"][0]["counts"]["handled"] == 1


def test_a_damaged_pdf_file_is_not_served_as_the_album(client, auth, flagged, as_user, settings):
    listed = issue(client, auth, CURRENT).get_json()
    stored = next((settings.photo_dir / "albums").rglob("*.pdf"))
    stored.write_bytes(stored.read_bytes()[:-10])
    r = as_user("dispatcher").get(listed["pdf"]["url"])
    assert r.status_code == 503 and "SHA-256" in r.get_data(as_text=True)


# --- user text ---------------------------------------------------------------------------------------

def test_markup_in_a_description_is_printed_literally(client, auth, flagged, as_user, tmp_path):
    listed = issue(client, auth, CURRENT).get_json()
    reader = as_user("dispatcher")
    html = reader.get(listed["html"]).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{7*7}} &amp; “引号” 井盖" in html
    assert "<script>alert(1)" not in html and "49 &amp;" not in html
    text_of_pdf = pdf_facts(reader.get(listed["pdf"]["url"]).data, tmp_path)["text"]
    assert "<script>alert(1)</script> {{7*7}} & “引号” 井盖" in text_of_pdf


def test_the_small_map_escapes_names_and_draws_the_street_around_the_point(db, city):
    rid = city.report("rep03", "S03", 0.5, "0102")
    with db.sessionmaker() as s:
        windows = album_map.street_windows(s, [rid])[rid]
        length = s.execute(text("SELECT length_m FROM streets WHERE code = 'S03'")).scalar_one()
    own = [w for w in windows if w["own"]]
    assert len(own) == 1 and own[0]["code"] == "S03" and own[0]["label"] is not None
    # the window is 300 m wide in the metric CRS: every coordinate of the path lies inside it
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", own[0]["path"])]
    assert numbers and all(-300.05 <= v <= 300.05 for v in numbers)
    assert length > 300  # so the street is clipped to the window
    evil = [{**own[0], "name": '</text><script>x</script>&"', "label": (10.0, -10.0, 0.0)}]
    svg = album_map.svg(evil)
    assert "<script>" not in svg and "&lt;/text&gt;&lt;script&gt;x&lt;/script&gt;&amp;" in svg


# --- refusals and roles -------------------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"from": "2026-09-01"}, "to"),
    ({"from": "2026-9-1", "to": "2026-10-31"}, "from"),
    ({"from": "2026-02-30", "to": "2026-03-31"}, "from"),
    ({"from": "2026-10-31", "to": "2026-09-01"}, "from"),
    ({"from": 20260901, "to": "2026-10-31"}, "from"),
])
def test_bad_dates_are_400_naming_the_field(client, auth, users, body, field):
    r = client.post("/api/v1/albums", json=body, headers=auth("dispatcher"))
    assert r.status_code == 400 and r.get_json()["details"]["field"] == field, r.get_json()


@pytest.mark.parametrize("from_, to", [("2026-09-01", "2026-09-30"), ("2026-09-15", "2026-11-14"),
                                       ("2026-09-01", "2026-11-30"), ("2026-12-01", "2027-02-28")])
def test_a_period_must_be_two_whole_months(client, auth, users, from_, to):
    r = client.post("/api/v1/albums", json={"from": from_, "to": to}, headers=auth("dispatcher"))
    if (from_, to) == ("2026-12-01", "2027-02-28"):
        assert Period.parse("2026-12-01", "2027-01-31").end == dt.date(2027, 1, 31)  # across the new year
    assert r.status_code == 400 and r.get_json()["error"] == "bad_album_period"
    assert "两个整月" in r.get_json()["message"]
    en = client.post("/api/v1/albums?lang=en", json={"from": from_, "to": to}, headers=auth("dispatcher"))
    assert "two whole months" in en.get_json()["message"]


def test_a_period_not_started_and_an_empty_one_are_refused(client, auth, users):
    future = Period.starting((dt.datetime.now(TZ).date().replace(day=1) + dt.timedelta(days=32)).replace(day=1))
    r = issue(client, auth, future)
    assert r.status_code == 422 and r.get_json()["error"] == "album_period_not_started"
    r = issue(client, auth, CURRENT)
    assert r.status_code == 422 and r.get_json()["error"] == "album_empty"
    assert client.get("/api/v1/albums", headers=auth("dispatcher")).get_json() == {"albums": []}


@pytest.mark.parametrize("who", ["leader", "rep03", "handler01"])
def test_only_dispatchers_and_admins_issue(client, auth, flagged, who):
    r = issue(client, auth, CURRENT, who)
    assert r.status_code == 403 and r.get_json()["error"] == "forbidden"
    assert issue(client, auth, CURRENT, "admin").status_code == 201


def test_who_reads_the_albums(client, auth, flagged, as_user):
    listed = issue(client, auth, CURRENT).get_json()
    for who in ("dispatcher", "admin", "leader"):
        assert client.get("/api/v1/albums", headers=auth(who)).status_code == 200
        reader = as_user(who)
        for path in ("/albums", listed["html"], listed["pdf"]["url"]):
            assert reader.get(path).status_code == 200, (who, path)
        assert reader.get("/albums/99.html").status_code == 404
        assert reader.get("/albums/99.pdf").status_code == 404
    for who in ("rep03", "handler01"):
        assert client.get("/api/v1/albums", headers=auth(who)).status_code == 403
        reader = as_user(who)
        for path in ("/albums", listed["html"], listed["pdf"]["url"], "/albums/99.pdf"):
            assert reader.get(path).status_code == 403, (who, path)
    assert client.get("/api/v1/albums").status_code == 401
    assert client.get(listed["pdf"]["url"]).status_code == 401  # the API's link: a key, not a page
    assert client.get(f"/albums/{listed['number']}.pdf").status_code == 302  # the page's: to sign in


def test_the_api_s_pdf_link_is_followed_with_an_api_key(client, auth, flagged):
    """Another system holding a key follows the API's own link (not redirected to the sign-in page)."""
    listed = issue(client, auth, CURRENT).get_json()
    r = client.get(listed["pdf"]["url"], headers=auth("leader"))
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert hashlib.sha256(r.data).hexdigest() == listed["pdf"]["sha256"]
    assert client.get(listed["pdf"]["url"], headers=auth("rep03")).status_code == 403
    assert client.get("/api/v1/albums/99.pdf", headers=auth("leader")).status_code == 404


def test_the_issue_form_needs_its_csrf_token_and_a_dispatcher(as_user, flagged, signin):
    page = as_user("dispatcher")
    index = page.get("/albums").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', index).group(1)
    no_token = page.post("/albums", data=period_json(CURRENT))
    assert no_token.status_code == 400
    r = page.post("/albums", data={**period_json(CURRENT), "csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"].endswith("/albums/1.html")
    again = page.post("/albums", data={**period_json(CURRENT), "csrf_token": token})
    assert again.status_code == 409 and "第 1 期" in again.get_data(as_text=True)
    leader = as_user("leader")
    assert 'name="from"' not in leader.get("/albums").get_data(as_text=True)  # no form for a reader
    assert leader.post("/albums", data={**period_json(CURRENT), "csrf_token": token}).status_code in (400, 403)


def test_the_pdf_fetches_nothing_but_published_photos(settings, tmp_path):
    photo_dir = settings.photo_dir
    (photo_dir / "published" / "ab").mkdir(parents=True)
    (photo_dir / "published" / "ab" / "ab.jpg").write_bytes(jpeg())
    (photo_dir / "original" / "cd").mkdir(parents=True)
    (photo_dir / "original" / "cd" / "cd.jpg").write_bytes(jpeg())
    fetcher = PhotoFetcher(photo_dir)
    assert fetcher.resolve(photo_url("published/ab/ab.jpg")) is not None
    for url in ("http://127.0.0.1/x.jpg", "https://example.com/a.png", "file:///etc/passwd", "data:image/png;base64,AA",
                photo_url("../../../../etc/passwd"), photo_url("original/cd/cd.jpg"), photo_url("/etc/hostname"),
                "album-photo:published%2F..%2F..%2Fsecret.jpg"):
        assert fetcher.resolve(url) is None, url
        with pytest.raises(ValueError):
            fetcher.weasyprint_fetcher(url)
    assert len(fetcher.refused) == 8


def test_the_cli_issues_an_album_and_says_why_not(app, flagged):
    runner = app.test_cli_runner()
    args = ["albums", "issue", "--from", CURRENT.start.isoformat(), "--to", CURRENT.end.isoformat()]
    with app.app_context():  # `geoapp` (FlaskGroup) pushes it for every command; the test runner does not
        refused = runner.invoke(args=args + ["--by", "leader"])
        issued = runner.invoke(args=args + ["--by", "dispatcher"])
        again = runner.invoke(args=args)
    assert refused.exit_code != 0 and "not a dispatcher or admin" in refused.output
    assert issued.exit_code == 0, issued.output
    assert "issued 第1期" in issued.output and "4 problems" in issued.output
    assert again.exit_code != 0 and "第 1 期" in again.output and "issue 1" in again.output


def test_the_demo_issues_the_first_album_for_the_two_months_before_last(app, city, db):
    from geoapp.web.albums import issue_demo_album

    rid = city.report("rep03", "S03", 0.5, "0102", "演示问题")
    city.backdate(rid, PREVIOUS.start + dt.timedelta(days=3))
    with app.app_context():
        with db.transaction() as s:
            assert issue_demo_album(s) is None  # nothing flagged yet
        city.flag(rid)
        with db.transaction() as s:
            album = issue_demo_album(s)
        assert album["number"] == 1 and album["period_from"] == PREVIOUS.start.isoformat()
        with db.transaction() as s:
            assert issue_demo_album(s) is None  # once


def test_an_issued_album_in_english_leaves_no_chinese_but_user_data(client, auth, flagged, as_user, user_data):
    from tests.test_i18n import CJK, shown_texts, without_user_data

    listed = issue(client, auth, CURRENT).get_json()
    reader = as_user("leader")
    for path in (listed["html"] + "?lang=en", "/albums?lang=en"):
        texts = without_user_data(shown_texts(reader.get(path)), user_data())
        left = [t for t in texts if CJK.search(t)]
        assert left == [], (path, left[:10])
    texts = without_user_data(shown_texts(client.get("/api/v1/albums?lang=en", headers=auth("leader"))), user_data())
    assert [t for t in texts if CJK.search(t)] == []


def test_rendering_an_album_leaves_cut_off_uploads_refused(client, auth, flagged):
    """WeasyPrint switches Pillow's process-wide LOAD_TRUNCATED_IMAGES on when imported; the photo
    pipeline must still refuse a cut-off JPEG in the same process after an album was rendered."""
    import io

    from PIL import Image

    from geoapp.domain.errors import BadPhoto
    from geoapp.domain.photos import prepare_photo

    assert issue(client, auth, CURRENT).status_code == 201
    buf = io.BytesIO()
    Image.effect_noise((1200, 900), 60).convert("RGB").save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    with pytest.raises(BadPhoto):
        prepare_photo(data[: len(data) // 2], max_bytes=10**7, max_px=1600)
