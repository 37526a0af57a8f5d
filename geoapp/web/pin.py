"""Pinning a problem on the phone: the pin form (/my/pin), the service worker (/sw.js) and the web
app manifest (/manifest.webmanifest).

The form is a Jinja template plus static/js/pin.js; everything the script needs travels in one JSON
data block written by `tojson`: the words it shows (translated here), the taxonomy with each item's
search keys (domain/category_search.py) and the streets, so the form works with no network once the
service worker (static/js/sw.js) has cached it. Where the pin lands is never decided in the script:
it asks GET /api/v1/snap, the rule intake applies. A report is kept in the phone's outbox
(static/js/queue.js, IndexedDB) before it is sent, and resent with the same client_id until the
server has it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flask import Blueprint, current_app, jsonify, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..core.permissions import roles_with
from .. import present
from ..domain.category_search import search_keys
from ..domain.inputs import MAX_DESCRIPTION
from ..domain.streets import streets_geojson
from ..domain.taxonomy import category_tree
from ..domain.vocabulary import MAX_PHOTOS_PER_REPORT
from ..translations import N_
from . import read_session, settings
from .auth import login_required
from .i18n import current_language

bp = Blueprint("pin", __name__)

DEFAULT_BROWSER_CRS = "wgs84"  # what navigator.geolocation gives; WeChat's X5 may need gcj02 (settings)

# The words the outbox shows (queue.js); the my-street page draws the same list with them.
QUEUE_LABELS = {
    "queued": N_("已保存在手机，待发送"),
    "sending": N_("发送中"),
    "sent": N_("已发送"),
    "refused": N_("被退回：{message}"),
    "relogin": N_("请重新登录后自动发送"),
    "view": N_("查看"),
    "edit": N_("修改"),
    "discard": N_("放弃"),
    "empty": N_("没有待发送的上报"),
    "photos": N_("{n} 张照片"),
}

# The words pin.js shows; {n}-style placeholders are filled in by the script.
PIN_LABELS = {
    "locating": N_("正在定位…"),
    "accuracy": N_("定位精度 ±{n} 米，可拖动图钉修正位置"),
    "from_photo": N_("位置取自照片，可拖动图钉修正"),
    "tap_map": N_("无法定位：请在地图上点选问题位置"),
    "pin_moved": N_("已手动调整位置"),
    "me": N_("问题位置"),
    "checking": N_("正在查询所在街路…"),
    "snap_offline": N_("暂时无法查询所在街路（无网络），上报会在联网后发送"),
    "photo_count": N_("照片 {n} / {max}"),
    "photo_remove": N_("删除"),
    "photo_alt": N_("照片 {n}"),
    "nearby_photo": N_("附近问题的照片"),
    "search_none": N_("没有找到，请换个词或从下面的分类中选择"),
    "chosen": N_("已选：{name}"),
    "recent": N_("最近用过"),
    "chars": N_("{n} / {max} 字"),
    "need_position": N_("请先确定问题位置（在地图上点选）"),
    "need_photo": N_("请至少添加一张照片"),
    "too_many_photos": N_("最多 {max} 张照片"),
    "need_category": N_("请选择问题类别"),
    "need_description": N_("请填写问题描述"),
    "saved": N_("已保存在手机，正在发送…"),
    "saved_offline": N_("已保存在手机，联网后自动发送"),
    "save_failed": N_("无法保存到手机：{error}"),
    "editing": N_("正在修改被退回的上报，改好后重新发送"),
}


def queue_labels() -> dict:
    """The outbox's words in the request's language: for any page that draws geoappQueue.render."""
    return {k: _(msgid) for k, msgid in QUEUE_LABELS.items()}


def _static(name: str) -> Path:
    return Path(current_app.static_folder) / name


def _categories(lang: str) -> list[dict]:
    """class -> category -> item, named in the reader's language; each item with its search keys."""
    def node(n: dict) -> dict:
        out = {"code": n["code"], "name": present.localized(n, "name", lang)}
        if "children" in n:
            out["children"] = [node(c) for c in n["children"]]
        else:
            out["keys"] = search_keys(n)
        return out
    return [node(c) for c in category_tree(read_session())]


def _streets(lang: str) -> dict:
    fc = streets_geojson(read_session())
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": f["geometry"],
         "properties": {"code": f["properties"]["code"], "label": present.localized(f["properties"], "name", lang)}}
        for f in fc["features"]]}


def pin_data(lang: str) -> dict:
    s = settings()
    user = current_user.user
    rep = user.representative
    return {
        "lang": lang,
        "crs": getattr(s, "browser_crs", "") or DEFAULT_BROWSER_CRS,
        "max_photos": MAX_PHOTOS_PER_REPORT,
        "max_description": MAX_DESCRIPTION,
        "own_street": rep.street.code if rep is not None and rep.street is not None else None,
        "username": user.username,
        "tiles": {"url": s.tile_url, "attribution": s.tile_attribution} if s.tile_url else None,
        "streets": _streets(lang),
        "categories": _categories(lang),
        "labels": {k: _(msgid) for k, msgid in PIN_LABELS.items()},
        "queue_labels": queue_labels(),
        "endpoints": {
            "snap": url_for("api_me.snap"),
            "reports": url_for("api.create_report"),
            "report_page": url_for("phone.report_page", report_id=0)[:-1],  # + id
            "service_worker": url_for("pin.service_worker"),
        },
    }


@bp.get("/my/pin")
@login_required(*roles_with("programme.use"))
def pin_form():
    lang = current_language()
    return render_template("pin/pin.html", data=pin_data(lang))


def static_digest() -> str:
    """A short digest of the static files (names, sizes, times): it changes whenever one of them does."""
    h = hashlib.sha256()
    root = Path(current_app.static_folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


@bp.get("/sw.js")
def service_worker():
    """The service worker, served from the root so that its scope is the whole site (with
    Service-Worker-Allowed: /). Its VERSION is the static files' digest, so a deployment that changes
    any of them makes phones install a new worker with fresh caches; and it is never cached by HTTP."""
    source = _static("js/sw.js").read_text(encoding="utf-8")
    source = source.replace('var VERSION = "dev";', f"var VERSION = {json.dumps(static_digest())};", 1)
    response = current_app.response_class(source, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    """Lets a phone put 随手拍 on its home screen, opening on "my street" without the browser's bars."""
    icons = [{"src": url_for("static", filename=f"icons/icon-{n}.png"), "sizes": f"{n}x{n}",
              "type": "image/png", "purpose": "any"} for n in (192, 512)]
    body = {"name": _("随手拍"), "short_name": _("随手拍"), "start_url": "/my", "scope": "/",
            "display": "standalone", "background_color": "#ffffff", "theme_color": "#b42318",
            "lang": "en" if current_language() == "en" else "zh-CN", "icons": icons}
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "no-cache"
    return response
