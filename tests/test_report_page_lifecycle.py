"""The representative's report page through the lifecycle ([3] §4): where the report stands (the step
line, or a plain sentence on a side path), the deadline, the unit's replies with the photos that came
with them, the verification form once handled (an unsatisfied rating reopens it: 已退回返工), and a
merged report following the surviving one."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from geoapp.models import Photo
from tests.test_notifications import flow  # noqa: F401 - the fixture


@pytest.fixture
def rep03(signin):
    signin.login("rep03")
    return signin.client


def _data(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1))


def _current_step(html: str) -> str:
    return re.search(r'<li class="step step-current" aria-current="step">.*?<span class="step-label">(.*?)</span>',
                     html, re.S).group(1)


def test_a_submitted_report_shows_the_first_step_and_no_form(flow, rep03):
    rep = flow.report()
    html = rep03.get(f"/reports/{rep['id']}").get_data(as_text=True)
    assert _current_step(html) == "提交"
    assert html.count('class="step ') == 8
    assert 'id="verify-form"' not in html and "verify" not in _data(html)
    assert "单位还没有答复。" in html


def test_replies_with_their_photos_the_deadline_and_the_form_once_handled(flow, rep03, db):
    rep, handler = flow.handled(text_="垃圾已清运，现场已冲洗")
    html = rep03.get(f"/reports/{rep['id']}").get_data(as_text=True)
    assert _current_step(html) == "办结"
    assert "已安排人员，明天处理" in html and "垃圾已清运，现场已冲洗" in html
    with db.transaction() as session:
        after = session.execute(select(Photo.id).where(Photo.report_id == rep["id"], Photo.kind == "after")).scalar_one()
    replies = html[html.index('id="replies"'):]
    assert f'/api/v1/photos/{after}' in replies.split("</ol>")[0]  # the after photo sits with the handled reply
    assert 'id="verify-form"' in html and 'name="reply_rating"' in html and 'name="result_rating"' in html
    data = _data(html)["verify"]
    assert data["url"] == f"/api/v1/reports/{rep['id']}/actions" and data["version"] == flow.get(rep["id"])["version"]
    assert data["labels"]["comment_required"].startswith("有一项评分低于 3 分")
    assert 'name="csrf-token"' in html
    assert " style=" not in html and "<script>" not in html


def test_the_deadline_is_shown_while_the_unit_works(flow, rep03):
    rep, handler = flow.dispatched()
    html = rep03.get(f"/reports/{rep['id']}").get_data(as_text=True)
    assert _current_step(html) == "派遣"
    assert "处置时限：" in html


def test_an_unsatisfied_verification_reopens_it_with_the_comment(flow, rep03, signin):
    rep, handler = flow.handled()
    token = re.search(r'name="csrf-token" content="([^"]+)"', rep03.get(f"/reports/{rep['id']}").get_data(as_text=True)).group(1)
    version = flow.get(rep["id"])["version"]
    url = f"/api/v1/reports/{rep['id']}/actions"
    no_comment = rep03.post(url, json={"action": "verify", "version": version, "reply_rating": 2, "result_rating": 4},
                            headers={"X-CSRFToken": token})
    assert no_comment.status_code == 400, no_comment.get_data(as_text=True)
    r = rep03.post(url, json={"action": "verify", "version": version, "reply_rating": 2, "result_rating": 2,
                              "comment": "垃圾还在原地"}, headers={"X-CSRFToken": token})
    assert r.status_code == 200 and r.json["status"] == "reopened", r.get_data(as_text=True)
    html = rep03.get(f"/reports/{rep['id']}").get_data(as_text=True)
    assert "已退回返工" in html and 'class="steps"' not in html
    assert 'id="verify-form"' not in html
    assert "答复满意度 2 / 5" in html and "垃圾还在原地" in html


def test_a_satisfied_verification_shows_the_rating(flow, rep03):
    rep, handler = flow.handled()
    flow.act(rep["id"], "rep03", "verify", reply_rating=5, result_rating=4)
    html = rep03.get(f"/reports/{rep['id']}").get_data(as_text=True)
    assert _current_step(html) == "评价"
    assert "办理结果满意度 4 / 5" in html


def test_side_paths_are_said_plainly(flow, rep03):
    rejected = flow.report(fraction=0.2)
    flow.act(rejected["id"], "dispatcher", "reject", reason="不属于城市管理问题")
    html = rep03.get(f"/reports/{rejected['id']}").get_data(as_text=True)
    assert "不予受理：不属于城市管理问题" in html and 'class="steps"' not in html

    returned, handler = flow.dispatched(fraction=0.5)
    flow.act(returned["id"], handler, "hand_back", reason="非本单位职责")
    assert "单位已回退，等待重新派遣" in rep03.get(f"/reports/{returned['id']}").get_data(as_text=True)


def test_a_merged_report_follows_the_surviving_one(flow, rep03, signin):
    survivor, handler = flow.dispatched(fraction=0.45)
    mine = flow.report(fraction=0.46, description="同一处垃圾")
    theirs_on_my_page = survivor["id"]
    flow.act(mine["id"], "dispatcher", "merge", into=theirs_on_my_page)
    flow.act(survivor["id"], handler, "unit_accept")
    flow.act(survivor["id"], handler, "progress", text="已派车清运")
    html = rep03.get(f"/reports/{mine['id']}").get_data(as_text=True)
    assert f"已与问题 #{survivor['id']} 合并" in html
    survivor_part = html[html.index('id="survivor"'):]
    assert _current_step(survivor_part) == "处置" and "已派车清运" in survivor_part


def test_a_reporter_of_a_merged_duplicate_sees_the_survivors_replies(flow, signin):
    """rep04 reported the same problem on S03; it was merged into rep03's: rep04 follows rep03's report."""
    survivor, handler = flow.dispatched(fraction=0.3)
    theirs = flow.report("rep04", "S03", 0.31, description="同一处")
    flow.act(theirs["id"], "dispatcher", "merge", into=survivor["id"])
    flow.act(survivor["id"], handler, "unit_accept")
    flow.act(survivor["id"], handler, "progress", text="正在处置")
    signin.login("rep04")
    html = signin.client.get(f"/reports/{survivor['id']}").get_data(as_text=True)
    assert 'id="summary-note"' in html and "正在处置" in html
    assert 'id="verify-form"' not in html


def test_a_neighbour_sees_the_step_line_but_not_the_replies(flow, rep03):
    """rep04's report on rep03's street: rep03 sees where it stands (a summary), not the unit's words."""
    rep, handler = flow.handled(username="rep04", street="S03", fraction=0.8)
    html = rep03.get(f"/reports/{rep['id']}").get_data(as_text=True)
    assert 'id="summary-note"' in html and _current_step(html) == "办结"
    assert "已清理完毕" not in html and 'id="verify-form"' not in html


def test_the_page_in_english(flow, rep03):
    rep, handler = flow.handled()
    r = rep03.get(f"/reports/{rep['id']}?lang=en")
    assert r.status_code == 200
