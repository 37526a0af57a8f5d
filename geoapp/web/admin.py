"""The system administrator's pages (/admin: 系统管理): accounts and units.

A door over geoapp/core/administration.py: each view parses the form, makes the actor
(auth.audit_actor: the user, the real client address, the request id), calls one core function in
one transaction, and renders. A refusal (a DomainError) is shown on the same page with its reason,
4xx, the form as it was typed. Acts that take something away (disable, reset a password, revoke a
key, change a role) ask for confirmation first: the form posts once without `confirm`, the page
asks, the second post carries `confirm=1` — no script needed. CSRF is checked for every POST by
Flask-WTF's CSRFProtect, as everywhere.

A one-time password is shown once, in the answer to the POST that made it (never in a URL or a
redirect), with Cache-Control: no-store.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select

from ..core import administration as admin
from ..core.permissions import roles_with
from ..domain.errors import BadInput, DomainError
from ..domain.vocabulary import USER_ROLES
from ..models import Representative, Unit, User
from ..translations import N_, Text, translate
from . import database, read_session, settings
from .auth import audit_actor, login_required
from .i18n import current_language

bp = Blueprint("admin", __name__, url_prefix="/admin")

USERS_PAGE = 100
STATES = {"active": N_("在用"), "disabled": N_("已停用"), "expired": N_("已过期")}


def _role_label(role: str) -> str:
    return translate(admin.ROLE_LABELS.get(role, role), current_language())


def _local(at: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return at.astimezone(ZoneInfo(settings().display_tz)).strftime(fmt) if at else ""


def _state(user: User, now: dt.datetime) -> str:
    if user.disabled_at is not None:
        return "disabled"
    if user.expires_at is not None and user.expires_at <= now:
        return "expired"
    return "active"


def _user_row(user: User, now: dt.datetime) -> dict:
    lang = current_language()
    return {"username": user.username, "display_name": user.display_name, "role": user.role,
            "role_label": _role_label(user.role),
            "unit": (user.unit.name_en if lang == "en" else user.unit.name) if user.unit else "",
            "unit_code": user.unit.code if user.unit else "",
            "representative": user.representative.code if user.representative else "",
            "street": user.representative.street.name if user.representative else "",
            "state": _state(user, now), "state_label": _(STATES[_state(user, now)]),
            "expires_on": _local(user.expires_at, "%Y-%m-%d"),
            "disabled_at": _local(user.disabled_at), "has_key": user.api_key_hash is not None,
            "must_change": user.must_change_password, "email": user.email or "",
            "created_at": _local(user.created_at), "password_changed_at": _local(user.password_changed_at),
            "url": url_for("admin.user_page", username=user.username)}


def _choices() -> dict:
    session, lang = read_session(), current_language()
    units = [{"code": u.code, "name": u.name_en if lang == "en" else u.name, "active": u.active}
             for u in session.execute(select(Unit).order_by(Unit.id)).scalars()]
    held = {rid for (rid,) in session.execute(select(User.representative_id).where(
        User.representative_id.is_not(None)))}
    reps = [{"code": r.code, "name": r.name, "street": r.street.name, "held": r.id in held}
            for r in session.execute(select(Representative).order_by(Representative.code)).scalars()]
    roles = [{"role": r, "label": _role_label(r)} for r in USER_ROLES]
    return {"units": units, "representatives": reps, "roles": roles}


def _page(template: str, status: int = 200, **context):
    response = make_response(render_template(template, **context), status)
    response.headers["Cache-Control"] = "no-store"  # account pages: never kept by a shared browser
    return response


def _refused(exc: DomainError) -> dict:
    return {"error": exc.message(current_language()), "error_field": exc.params.get("field")}


MANAGERS = roles_with("users.manage")


@bp.get("")
@login_required(*MANAGERS)
def index():
    return redirect(url_for("admin.users"))


# --- users ------------------------------------------------------------------------------------

@bp.get("/users")
@login_required(*MANAGERS)
def users():
    session, now = read_session(), dt.datetime.now(dt.timezone.utc)
    role = request.args.get("role") or ""
    q = (request.args.get("q") or "").strip()[:64]
    state = request.args.get("state") or ""
    query = select(User).order_by(User.role, User.username)
    if role in USER_ROLES:
        query = query.where(User.role == role)
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(User.username.ilike(like), User.display_name.ilike(like)))
    rows = [_user_row(u, now) for u in session.execute(query).scalars()]
    if state in STATES:
        rows = [r for r in rows if r["state"] == state]
    shown = rows[:USERS_PAGE]
    return _page("admin/users.html", users=shown, total=len(rows), more=len(rows) > USERS_PAGE,
                 role=role, q=q, state=state, states=[{"key": k, "label": _(v)} for k, v in STATES.items()],
                 **_choices())


@bp.route("/users/new", methods=["GET", "POST"])
@login_required(*MANAGERS)
def new_user():
    form = {k: (request.form.get(k) or "").strip() for k in
            ("username", "display_name", "role", "unit", "representative", "email")}
    if request.method == "GET":
        return _page("admin/user_new.html", form=form, **_choices())
    try:
        with database().transaction() as s:
            user, password = admin.create_user(
                s, audit_actor(), form["username"], form["display_name"], form["role"],
                admin.Placement(unit_code=form["unit"] or None, representative_code=form["representative"] or None),
                email=form["email"])
            username = user.username
    except DomainError as exc:
        return _page("admin/user_new.html", exc.status, form=form, **_refused(exc), **_choices())
    return _page("admin/one_time_password.html", username=username, password=password, created=True)


def _user_or_404(username: str) -> User:
    user = read_session().execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        abort(404)
    return user


@bp.get("/users/<username>")
@login_required(*MANAGERS)
def user_page(username: str):
    user = _user_or_404(username)
    done = request.args.get("done")
    return _page("admin/user.html", user=_user_row(user, dt.datetime.now(dt.timezone.utc)),
                 done=_(DONE[done]) if done in DONE else None, form={}, **_choices())


# what each act asks before it is done, and what it says once done
CONFIRM = {
    "disable": N_("停用后，该账号立即不能登录，已登录的会话和 API 密钥在下一次请求时失效。确定停用“{name}”吗？"),
    "reset-password": N_("重置后，“{name}”的原密码立即失效，须用一次性密码登录并改密码。确定重置吗？"),
    "revoke-key": N_("吊销后，使用“{name}”的 API 密钥的系统将不能访问。确定吊销吗？"),
    "role": N_("改变角色后，“{name}”已登录的会话将结束。确定修改吗？"),
}
DONE = {
    "disable": N_("账号已停用。"), "enable": N_("账号已启用。"), "expiry": N_("有效期已保存。"),
    "revoke-key": N_("API 密钥已吊销。"), "role": N_("角色已修改。"), "unit": N_("所属单位已修改。"),
}


@bp.post("/users/<username>/<act>")
@login_required(*MANAGERS)
def user_act(username: str, act: str):
    if act not in DONE and act != "reset-password":
        abort(404)
    user = _user_or_404(username)
    form = {k: (request.form.get(k) or "").strip() for k in ("role", "unit", "representative", "expires_on")}
    if act in CONFIRM and request.form.get("confirm") != "1":
        return _page("admin/confirm.html", act=act, username=user.username, form=form,
                     question=_(CONFIRM[act]).format(name=user.username),
                     action=url_for("admin.user_act", username=user.username, act=act),
                     back=url_for("admin.user_page", username=user.username))
    actor = audit_actor()
    try:
        with database().transaction() as s:
            if act == "disable":
                admin.set_disabled(s, actor, username, True)
            elif act == "enable":
                admin.set_disabled(s, actor, username, False)
            elif act == "expiry":
                admin.set_expiry(s, actor, username, _day(form["expires_on"]), settings().display_tz)
            elif act == "reset-password":
                password = admin.reset_password(s, actor, username)
            elif act == "revoke-key":
                admin.revoke_api_key(s, actor, username)
            elif act == "role":
                admin.change_role(s, actor, username, form["role"],
                                  admin.Placement(unit_code=form["unit"] or None,
                                                  representative_code=form["representative"] or None))
            elif act == "unit":
                admin.move_handler(s, actor, username, form["unit"])
    except DomainError as exc:
        return _page("admin/user.html", exc.status, user=_user_row(user, dt.datetime.now(dt.timezone.utc)),
                     form=form, **_refused(exc), **_choices())
    if act == "reset-password":
        return _page("admin/one_time_password.html", username=username, password=password, created=False)
    return redirect(url_for("admin.user_page", username=username, done=act))


def _day(value: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(field="expires_on", field_label=Text(N_("有效期至")),
                       problem=Text(N_("“{value}”不是日期（年-月-日）。"), value=value[:20])) from None


# --- units ------------------------------------------------------------------------------------

UNIT_MANAGERS = roles_with("units.manage")


def _unit_row(unit: Unit) -> dict:
    lang = current_language()
    handlers = read_session().execute(select(User.username).where(User.unit_id == unit.id)
                                      .order_by(User.username)).scalars().all()
    return {"code": unit.code, "name": unit.name_en if lang == "en" else unit.name, "name_zh": unit.name,
            "unit_type": unit.unit_type, "contact_name": unit.contact_name or "", "phone": unit.phone or "",
            "email": unit.email or "", "active": unit.active, "handlers": handlers,
            "url": url_for("admin.unit_page", code=unit.code)}


@bp.get("/units")
@login_required(*UNIT_MANAGERS)
def units():
    rows = [_unit_row(u) for u in read_session().execute(select(Unit).order_by(Unit.id)).scalars()]
    return _page("admin/units.html", units=rows)


@bp.route("/units/<code>", methods=["GET", "POST"])
@login_required(*UNIT_MANAGERS)
def unit_page(code: str):
    unit = read_session().execute(select(Unit).where(Unit.code == code)).scalar_one_or_none()
    if unit is None:
        abort(404)
    if request.method == "GET":
        return _page("admin/unit.html", unit=_unit_row(unit), done=_("已保存。") if request.args.get("done") else None)
    form = {k: (request.form.get(k) or "").strip() for k in ("contact_name", "phone", "email")}
    active = request.form.get("active") == "1"
    if unit.active and not active and request.form.get("confirm") != "1":
        return _page("admin/confirm.html", act="unit-inactive", username=unit.code,
                     form=dict(form, active="0"),
                     question=_("停用后，“%(name)s”不再出现在派遣的单位中（已派给它的问题不变）。确定停用吗？",
                                name=unit.name),
                     action=url_for("admin.unit_page", code=unit.code), back=url_for("admin.unit_page", code=unit.code))
    try:
        with database().transaction() as s:
            admin.update_unit(s, audit_actor(), code, contact_name=form["contact_name"], phone=form["phone"],
                              email=form["email"], active=active)
    except DomainError as exc:
        row = dict(_unit_row(unit), **form, active=active)
        return _page("admin/unit.html", exc.status, unit=row, **_refused(exc))
    return redirect(url_for("admin.unit_page", code=code, done="1"))


# --- streets and their representatives ------------------------------------------------------------

STREET_MANAGERS = roles_with("streets.hand_over")


def _street_rows() -> list[dict]:
    from ..models import Street

    session, now = read_session(), dt.datetime.now(dt.timezone.utc)
    rows = []
    for street in session.execute(select(Street).order_by(Street.code)).scalars():
        seat = street.representative
        users = session.execute(select(User).where(User.representative_id == seat.id).order_by(User.id)
                                ).scalars().all() if seat else []
        rows.append({"code": street.code, "name": street.name, "district": street.district,
                     "seat": seat.code if seat else "", "seat_name": seat.name if seat else "",
                     "holders": [_user_row(u, now) for u in users if _state(u, now) == "active"],
                     "former": [_user_row(u, now) for u in users if _state(u, now) != "active"],
                     "url": url_for("admin.street_page", code=street.code)})
    return rows


@bp.get("/streets")
@login_required(*STREET_MANAGERS)
def streets():
    return _page("admin/streets.html", streets=_street_rows())


def _handovers(code: str) -> list[dict]:
    from ..models import Street, StreetHandover

    session = read_session()
    rows = session.execute(select(StreetHandover).join(Street, Street.id == StreetHandover.street_id)
                           .where(Street.code == code).order_by(StreetHandover.on_date.desc(),
                                                                StreetHandover.id.desc())).scalars().all()
    names = {u.id: u for u in session.execute(select(User).where(User.id.in_(
        {r.from_user_id for r in rows} | {r.to_user_id for r in rows}))).scalars()}
    return [{"on": r.on_date.isoformat(), "to": names[r.to_user_id].username,
             "to_name": names[r.to_user_id].display_name,
             "from": names[r.from_user_id].username if r.from_user_id else "",
             "from_name": names[r.from_user_id].display_name if r.from_user_id else "", "by": r.by,
             "at": _local(r.at)} for r in rows]


@bp.route("/streets/<code>", methods=["GET", "POST"])
@login_required(*STREET_MANAGERS)
def street_page(code: str):
    street = next((s for s in _street_rows() if s["code"] == code), None)
    if street is None:
        abort(404)
    today = dt.datetime.now(ZoneInfo(settings().display_tz)).date()
    form = {k: (request.form.get(k) or "").strip() for k in ("to", "display_name", "on")}
    form["on"] = form["on"] or today.isoformat()
    context = {"street": street, "history": _handovers(code), "form": form}
    if request.method == "GET":
        return _page("admin/street.html", done=_("交接已办理。") if request.args.get("done") else None, **context)
    try:
        day = _day(form["on"]) or today
        if request.form.get("confirm") != "1":
            holders = "、".join(h["username"] for h in street["holders"]) or "—"
            return _page("admin/confirm.html", act="hand-over", username=code, form=form,
                         question=_("从 %(on)s 起，%(street)s 的代表由 %(old)s 交给 %(new)s；%(old)s 的账号届时失效，"
                                    "其提交的问题保留。确定交接吗？", on=day.isoformat(), street=street["name"],
                                    old=holders, new=form["to"]),
                         action=url_for("admin.street_page", code=code), back=url_for("admin.street_page", code=code))
        with database().transaction() as s:
            handover = admin.hand_over_street(s, audit_actor(), code, form["to"], day, settings().display_tz,
                                              new_display_name=form["display_name"] or None)
    except DomainError as exc:
        return _page("admin/street.html", exc.status, **_refused(exc), **context)
    if handover.one_time_password:
        return _page("admin/one_time_password.html", username=handover.to_username,
                     password=handover.one_time_password, created=True)
    return redirect(url_for("admin.street_page", code=code, done="1"))


# --- the city data ----------------------------------------------------------------------------

def _city_folder():
    from ..config import PROJECT_ROOT

    return PROJECT_ROOT / "gis_data"


@bp.route("/city-data", methods=["GET", "POST"])
@login_required(*roles_with("city_data.reload"))
def city_data():
    """GET: the folder; POST step=preview: what loading it would change (nothing kept); POST
    step=apply with the previewed fingerprint: load it (refused if the folder changed since)."""
    from ..core import city_data as city

    folder, bbox = _city_folder(), settings().city_bbox
    step = request.form.get("step") if request.method == "POST" else None
    context = {"folder": str(folder), "fingerprint": city.fingerprint(folder)}
    try:
        if step == "apply":
            with database().transaction() as s:
                change = city.apply(s, audit_actor(), folder, bbox, request.form.get("fingerprint", ""))
            return _page("admin/city_data.html", change=change, applied=True,
                         done=_("城市数据已载入。") if change.changed else _("城市数据没有变化。"), **context)
        if step == "preview":
            with database().transaction() as s:
                change = city.preview(s, audit_actor(), folder, bbox)
            return _page("admin/city_data.html", change=change, previewed=True,
                         status=409 if change.refused else 200, **context)
    except DomainError as exc:
        return _page("admin/city_data.html", exc.status, **_refused(exc), **context)
    return _page("admin/city_data.html", **context)


# --- the administrators' menu (templates/admin/_layout.html) ------------------------------------

MENU = (  # (endpoint, capability, label): shown to whoever has the capability
    ("admin.users", "users.manage", N_("账号")),
    ("admin.units", "units.manage", N_("责任单位")),
    ("admin.streets", "streets.hand_over", N_("街路代表")),
    ("admin.city_data", "city_data.reload", N_("城市数据")),
    ("admin_security.policy_page", "security.policy", N_("安全策略")),
    ("admin_audit.page", "audit.read", N_("审计记录")),
)


# a page under a menu item (the item's own page is its own section)
SECTION = {"admin.user_page": "admin.users", "admin.new_user": "admin.users", "admin.user_act": "admin.users",
           "admin.unit_page": "admin.units", "admin.street_page": "admin.streets"}


def admin_menu() -> list[dict]:
    from flask import current_app
    from flask_login import current_user

    from ..core.permissions import may

    if not current_user.is_authenticated:
        return []
    here = request.endpoint or ""
    return [{"url": url_for(endpoint), "label": _(label), "current": SECTION.get(here, here) == endpoint}
            for endpoint, capability, label in MENU
            if endpoint in current_app.view_functions and may(current_user.role, capability)]


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["admin_menu"] = admin_menu
