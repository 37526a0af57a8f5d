"""walk.js (with idb.js) in Debian chromium: positions from watchPosition are buffered in IndexedDB, cut into
chunks, uploaded with the session cookie and CSRF token; a reload mid-walk resumes the recording and
loses nothing; chunks made offline wait and are sent back online; the server joins the chunks into
one stretch. The page here is only walk.js (the my-street page's own test drives it through /my)."""
import time

from sqlalchemy import text

from tests.browser.conftest import offline_page, sign_in

STEP_M, STEP_S = 12.0, 2.1   # 5.7 m/s: brisk, but under the 7 m/s the server believes


def test_the_recorder_buffers_resumes_after_a_reload_waits_offline_and_sends_everything(
        browser, live_server, users, streets, db):
    length = streets.line("S03").length
    points = [streets.point("S03", 0.10 + k * STEP_M / length) for k in range(12)]

    def at(k):
        lon, lat = points[k]
        return {"latitude": lat, "longitude": lon, "accuracy": 6}

    page = offline_page(browser, live_server, geolocation=at(0))
    sign_in(page, live_server, "rep03")
    page.goto(f"{live_server}/account/password")
    token = page.input_value("input[name=csrf_token]")
    # a bare page with walk.js and nothing else (served from the live server's origin)
    page.route(f"{live_server}/walk-test", lambda route: route.fulfill(
        content_type="text/html", body='<!doctype html><meta charset="utf-8"><script src="/static/js/idb.js"></script><script src="/static/js/walk.js"></script>'))

    def open_recorder():
        page.goto(f"{live_server}/walk-test")
        page.evaluate("""token => { window.states = [];
            return geoappWalk.init({endpoint: "/api/v1/walks", csrfToken: token, chunkPoints: 4, chunkMs: 1500,
                                    retryMs: 1500, onChange: s => window.states.push(s)}); }""", token)

    def move(k):
        page.context.set_geolocation(at(k))
        time.sleep(STEP_S)

    open_recorder()
    page.evaluate("geoappWalk.start()")
    for k in range(0, 5):
        move(k)
    open_recorder()  # a reload mid-walk: the recording goes on, under the same walk id
    state = page.evaluate("geoappWalk.state")
    assert state["recording"] and state["points"] >= 4
    page.context.set_offline(True)
    for k in range(5, 9):
        move(k)
    assert page.evaluate("geoappWalk.state.pending") >= 1  # made offline, waiting
    page.context.set_offline(False)
    for k in range(9, 12):
        move(k)
    final = page.evaluate("geoappWalk.stop()")
    assert not final["recording"] and final["pending"] == 0, final
    assert final["sentChunks"] >= 3 and final["lastError"] is None, final

    walked = page.evaluate("""() => fetch("/api/v1/walks?street=S03", {credentials: "same-origin"})
                                     .then(r => r.json())""")
    [stretch] = walked["stretches"]
    assert stretch["walk_id"] == final["walkId"]
    with db.sessionmaker() as s:
        truth = [s.execute(text("""
            SELECT ST_LineLocatePoint(ST_GeometryN(geom_m, 1), ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
                   ST_SRID(geom_m))) * ST_Length(ST_GeometryN(geom_m, 1)) FROM streets WHERE code = 'S03'"""),
            {"lon": lon, "lat": lat}).scalar_one() for lon, lat in (points[0], points[-1])]
        chunks = s.execute(text("SELECT count(*), sum(n_points) FROM walk_chunks")).one()
    assert abs(stretch["from_m"] - truth[0]) < 3 and abs(stretch["to_m"] - truth[1]) < 3, (stretch, truth)
    assert chunks[0] == final["sentChunks"]
    # nothing left in IndexedDB but the walk's own summary
    left = page.evaluate("""() => new Promise(ok => { const r = indexedDB.open("geoapp");
        r.onsuccess = () => { const q = r.result.transaction("walk_points").objectStore("walk_points").getAllKeys();
                              q.onsuccess = () => ok(q.result); }; })""")
    assert left == ["meta"], left
    assert page.errors == [] or all("Failed to fetch" in e or "ERR_INTERNET_DISCONNECTED" in e for e in page.errors), page.errors
    assert page.blocked == []
