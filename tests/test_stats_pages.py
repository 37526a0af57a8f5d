"""/stats and /stats/bulletin: who may open them, the figures with their definitions on the page, the
period in the URL, the charts' data block, the bulletin's title and month, refusals of bad periods."""
from __future__ import annotations

import re

import pytest

from tests.conftest import data_block
from tests.test_stats import world  # noqa: F401 - the hand-computed data set


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_stats_page_shows_figures_with_definitions(world, as_user):
    r = as_user("leader").get("/stats?from=2026-09-01&to=2026-09-30")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    text = _text(html)
    assert "办结率" in text and "66.7%" in text and "4 / 6" in text          # completion 4 of 6
    assert "按期结案率" in text and "50.0%" in text and "3 / 6" in text
    assert "准确派遣率" in text and "5 / 7" in text
    assert "已办结 ÷ 交办" in text                                            # the definition next to it
    assert "1.92 个工作日" in text                                             # mean handling time
    assert 'value="2026-09-01"' in html and 'value="2026-09-30"' in html      # the period, in the URL's form
    for title in ("按责任单位", "按问题大类", "按问题类别", "按重点街路"):
        assert title in text
    trend = data_block(html, "stats-data")["trend"]
    assert trend["months"] == ["2026-09"] and trend["handed_over"] == [6] and trend["handled"] == [4]
    assert "vendor/echarts-5.6.0/echarts.min.js" in html and "<script>" not in html


def test_stats_page_in_english(world, as_user):
    html = as_user("dispatcher").get("/stats?from=2026-09-01&to=2026-09-30&lang=en").get_data(as_text=True)
    text = _text(html)
    assert "Completion rate" in text and "Handled ÷ handed over" in text and "66.7%" in text
    assert "Jinzhou Municipal Facilities Administration Office" in text
    assert "1.92 working days" in text


def test_bulletin(world, as_user):
    client = as_user("leader")
    r = client.get("/stats/bulletin?month=2026-09")
    assert r.status_code == 200
    text = _text(r.get_data(as_text=True))
    assert "锦州市人大代表“随手拍”工作月报" in text and "2026年9月" in text
    assert "本月" in text and "累计" in text and "口径" in text
    assert "4 / 6" in text                                 # September's completion
    assert "5 / 7" in text                                 # to date (20 Aug – 30 Sep): 5 handled of 7 handed over
    en = _text(client.get("/stats/bulletin?month=2026-09&lang=en").get_data(as_text=True))
    assert "monthly bulletin" in en and "September 2026" in en


def test_bulletin_default_month_is_the_last_complete_one(users, as_user):
    import datetime as dt
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    last = (today.replace(day=1) - dt.timedelta(days=1))
    text = _text(as_user("leader").get("/stats/bulletin").get_data(as_text=True))
    assert f"{last.year}年{last.month}月" in text


@pytest.mark.parametrize("path", ["/stats?from=2026-02-30", "/stats?from=2026-10-01&to=2026-09-01",
                                  "/stats/bulletin?month=2026-13", "/stats/bulletin?month=sept"])
def test_pages_refuse_bad_periods(users, as_user, path):
    r = as_user("leader").get(path)
    assert r.status_code == 400
    assert "<html" in r.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/stats", "/stats/bulletin"])
def test_pages_who_may(users, as_user, client, path):
    assert client.get(path).status_code == 302                      # to sign in
    assert as_user("rep01").get(path).status_code == 403
    assert as_user("handler01").get(path).status_code == 403
    for name in ("leader", "dispatcher", "admin"):
        assert as_user(name).get(path).status_code == 200
