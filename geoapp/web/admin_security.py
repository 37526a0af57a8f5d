"""Security (安全管理): the security administrator's policy page, and the second factor.

- `/admin/security` (the role secadmin only: capability "security.policy"): the password, lockout
  and session policy as one form, saved through domain/security_policy.update_policy (audited with
  before/after in the same transaction). A refusal names the field and why, in the reader's
  language, 400, with the form as it was typed.
- `/account/second-factor` (every signed-in user): enrol a TOTP authenticator app — the secret, its
  QR code (inline SVG: no script, nothing fetched) and an otpauth:// link for the phone the page is
  open on; one code confirms it — or turn it off with the password and a code. Either change ends the
  user's other sessions (they began under the other rule) and keeps this one.
- `/login/second-factor`: sign-in's second step. /login checks the password and, for a user with a
  second factor, keeps only "who, which session version, since when" in the (signed) cookie; the
  session begins once the code is right. A wrong or reused code counts as a failed sign-in in the
  same throttle as a wrong password and is audited on its own connection.

The three administrators must enrol before any other page while the policy says so (web/auth.py
login_required), except in the demo, where their pages offer it (`second_factor_offer`).
"""
from __future__ import annotations

import time
from zoneinfo import ZoneInfo

from flask import Blueprint, g, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.security import check_password_hash
from wtforms import BooleanField, PasswordField, StringField

from ..core.permissions import roles_with
from ..domain import audit, second_factor, security_policy
from ..domain.accounts import end_sessions, user_for_session
from ..domain.errors import DomainError
from ..domain.vocabulary import ADMINISTRATOR_ROLES
from ..models import User
from ..translations import N_, translate
from . import database, read_session, settings
from .auth import (SIGNED_IN_AT, _start_session, _too_many, audit_actor, audit_now, current_policy,
                   login_required, must_enrol_second_factor, signed_in, throttle)
from .i18n import current_language

bp = Blueprint("admin_security", __name__)

# what /login keeps in the cookie between the password and the code: the user, their session
# version (a password changed meanwhile ends it), when, and the sign-in's own choices
PENDING = "second_factor_pending"
PENDING_S = 300  # five minutes to type the code; then the password again

# the policy form's fields, in the order shown, with the help line under each (labels: RANGES/SWITCHES)
HELP = {
    "password_max_age_days": N_("超过这么多天未修改的密码，登录时须先修改；0 表示不过期。"),
    "password_history": N_("新密码不能与最近这么多个密码相同（含当前密码）；0 表示不限制。"),
    "lockout_failures": N_("同一用户名在锁定时长内登录失败这么多次后，暂停登录（正确的密码也不行）。"),
    "lockout_minutes": N_("从第一次失败算起的计数时长，也是锁定的最长时间。"),
    "idle_timeout_minutes": N_("人大代表以外的账号，这么久没有操作就自动退出。"),
    "totp_required_for_administrators": N_("系统管理员、安全管理员、审计管理员登录时必须输入验证器应用的动态口令。"),
}


class PolicyForm(FlaskForm):
    """CSRF only: the values are checked by security_policy.validate, the one place that knows the ranges."""
    password_max_age_days = StringField()
    password_history = StringField()
    lockout_failures = StringField()
    lockout_minutes = StringField()
    idle_timeout_minutes = StringField()
    totp_required_for_administrators = BooleanField()


class CodeForm(FlaskForm):
    code = StringField()


class TurnOffForm(FlaskForm):
    password = PasswordField()
    code = StringField()


def _no_store(body, status: int = 200, headers: dict | None = None):
    response = make_response(body, status, headers or {})
    response.headers["Cache-Control"] = "no-store"  # a secret, a policy: never kept by a shared browser
    return response


def _local(at) -> str:
    return at.astimezone(ZoneInfo(settings().display_tz)).strftime("%Y-%m-%d %H:%M") if at else ""


# --- the policy page ------------------------------------------------------------------------------

def _policy_fields(form: PolicyForm, policy: security_policy.Policy) -> list[dict]:
    s, lang = settings(), current_language()
    overridden = {"lockout_failures": ("LOGIN_FAILS_PER_USER", s.login_fails_per_user),
                  "lockout_minutes": ("LOGIN_FAIL_WINDOW_MINUTES", s.login_fail_window_minutes)}
    fields = []
    for name, (label, low, high) in security_policy.RANGES.items():
        typed = form[name].data if request.method == "POST" else None
        variable, value = overridden.get(name, (None, None))
        fields.append({"name": name, "label": translate(label, lang), "help": translate(HELP[name], lang),
                       "low": low, "high": high, "value": typed if typed is not None else getattr(policy, name),
                       "override": _("服务器设置 %(variable)s=%(value)s 优先于此项。", variable=variable, value=value)
                       if value is not None else None})
    return fields


def _policy_page(form: PolicyForm, *, error: str | None = None, error_field: str | None = None, status: int = 200):
    policy = current_policy()
    required = (form.totp_required_for_administrators.data if request.method == "POST"
                else policy.totp_required_for_administrators)
    updated_by = read_session().get(User, policy.updated_by) if policy.updated_by else None
    return _no_store(render_template(
        "admin/security.html", form=form, fields=_policy_fields(form, policy), required=required,
        required_label=translate(security_policy.SWITCHES["totp_required_for_administrators"], current_language()),
        required_help=_(HELP["totp_required_for_administrators"]), demo=settings().demo,
        updated_at=_local(policy.updated_at), updated_by=updated_by.username if updated_by else None,
        error=error, error_field=error_field,
        done=_("安全策略已保存。") if request.args.get("saved") == "1" and not error else None), status)


@bp.route("/admin/security", methods=["GET", "POST"])
@login_required(*roles_with("security.policy"))
def policy_page():
    form = PolicyForm()
    if request.method == "GET":
        return _policy_page(form)
    if not form.validate_on_submit():  # only the CSRF token can fail here; CSRFProtect answers first
        return _policy_page(form, error=_("页面已过期或来源无法验证，请重新操作。"), status=400)
    values = {name: form[name].data or "" for name in security_policy.RANGES}
    values["totp_required_for_administrators"] = bool(form.totp_required_for_administrators.data)
    try:
        with database().transaction() as s:
            g.geoapp_security_policy = security_policy.update_policy(s, audit_actor(), **values)
    except DomainError as exc:
        return _policy_page(form, error=exc.message(current_language()), error_field=exc.params.get("field"),
                            status=exc.status)
    return redirect(url_for("admin_security.policy_page", saved="1"))


# --- sign-in's second step --------------------------------------------------------------------------

def ask_for_code(user: User, *, remember: bool, next_target: str | None):
    """After the right password of a user with a second factor: remember who, and ask for the code."""
    session.clear()  # nothing of an earlier sign-in carries over
    session[PENDING] = {"user_id": user.id, "version": user.session_version, "at": int(time.time()),
                        "remember": bool(remember), "next": (next_target or "")[:500]}
    return redirect(url_for("admin_security.sign_in_code"))


def _pending_user() -> tuple[dict, User] | None:
    """The sign-in waiting for its code, if it is recent and its user's sessions were not ended since."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("at"), int) \
            or time.time() - pending["at"] > PENDING_S:
        return None
    try:
        user = user_for_session(read_session(), int(pending["user_id"]), int(pending["version"]))
    except (KeyError, TypeError, ValueError):
        return None
    return (pending, user) if user is not None and second_factor.enabled(user) else None


def _code_page(form: CodeForm, error: str | None = None, status: int = 200, headers: dict | None = None):
    return _no_store(render_template("auth/second_factor_code.html", form=form, error=error), status, headers)


@bp.route("/login/second-factor", methods=["GET", "POST"])
def sign_in_code():
    found = _pending_user()
    if found is None:  # none, expired, or the account changed meanwhile: the password again
        session.pop(PENDING, None)
        return redirect(url_for("auth.login"))
    pending, user = found
    form = CodeForm()
    if request.method == "GET":
        return _code_page(form)
    if not form.validate_on_submit():
        return _code_page(form, _("页面已过期或来源无法验证，请重新操作。"), 400)
    wait = throttle().wait_seconds(user.username)
    if wait:  # the same lockout as the password's: guessing codes past it costs nothing either
        audit_now(audit.SIGN_IN_LOCKED, actor=audit_actor(user.username), outcome="refused",
                  details={"wait_s": wait, "step": "second_factor"})
        return _code_page(form, _too_many(wait), 429, {"Retry-After": str(wait)})
    try:
        with database().transaction() as s:
            second_factor.accept_code(s, user.id, form.code.data)
    except second_factor.CodeRefused as exc:
        throttle().failed(user.username)
        audit_now(audit.SIGN_IN_SECOND_FACTOR_FAILED, actor=audit_actor(user.username), object_type="user",
                  object_id=user.id, outcome="failed", details={"reason": exc.code})
        return _code_page(form, exc.message(current_language()), 401)
    return signed_in(user, remember=pending["remember"], next_target=pending["next"] or None,
                     second_factor_used=True)


# --- enrolling and turning off ----------------------------------------------------------------------

def _enrol_page(error: str | None = None, status: int = 200, headers: dict | None = None):
    user = current_user.user
    policy, demo = current_policy(), settings().demo
    context = {"enabled": second_factor.enabled(user), "error": error, "forced": must_enrol_second_factor(user),
               "administrator": user.role in ADMINISTRATOR_ROLES,
               "required": user.role in ADMINISTRATOR_ROLES and policy.totp_required_for_administrators,
               "demo": demo, "may_turn_off": second_factor.may_turn_off(user, policy, demo=demo),
               "done": {"on": _("动态口令已开启。以后登录时，输入密码后还需输入验证器应用中的 6 位数字。"),
                        "off": _("动态口令已关闭。")}.get(request.args.get("done") or ""),
               "code_form": CodeForm(), "off_form": TurnOffForm()}
    if context["enabled"]:
        context["since"] = _local(user.totp_enabled_at)
    else:
        with database().transaction() as s:  # the pending secret: made once, shown until confirmed
            secret = second_factor.start_enrolment(s, user.id).totp_secret
        uri = second_factor.provisioning_uri(secret, user.username, _("随手拍 · 随时办"))
        context |= {"secret": second_factor.grouped(secret), "uri": uri,
                    "qr": second_factor.qr_svg(uri, _("用验证器应用扫描此二维码"))}
    return _no_store(render_template("auth/second_factor.html", **context), status, headers)


def _carry_on(user: User, done: str):
    """Every other session of the user ended with the change; this one goes on with the new version."""
    _start_session(user, remember=session.permanent, signed_in_at=session.get(SIGNED_IN_AT))
    return redirect(url_for("admin_security.second_factor_page", done=done))


@bp.route("/account/second-factor", methods=["GET", "POST"])
@login_required()
def second_factor_page():
    if request.method == "GET":
        return _enrol_page()
    action = request.form.get("action")
    if action == "confirm":
        if second_factor.enabled(current_user.user):  # confirmed already (a form sent twice)
            return redirect(url_for("admin_security.second_factor_page"))
        form = CodeForm()
        if not form.validate_on_submit():
            return _enrol_page(_("页面已过期或来源无法验证，请重新操作。"), 400)
        try:
            with database().transaction() as s:
                user = second_factor.confirm_enrolment(s, current_user.id, form.code.data)
                end_sessions(s, user.id)
                audit.record(s, audit_actor(), audit.TOTP_ENABLED, object_type="user", object_id=user.id)
        except second_factor.CodeRefused as exc:
            return _enrol_page(exc.message(current_language()), 400)
        return _carry_on(user, "on")
    if action == "turn_off":
        return _turn_off()
    return _enrol_page(_("请选择要执行的操作。"), 400)


def _turn_off():
    form = TurnOffForm()
    if not form.validate_on_submit():
        return _enrol_page(_("页面已过期或来源无法验证，请重新操作。"), 400)
    username = current_user.username
    wait = throttle().wait_seconds(username)
    if wait:  # the password is checked here: the sign-in's limit applies, as on the password page
        return _enrol_page(_too_many(wait), 429, {"Retry-After": str(wait)})
    stored = read_session().execute(select(User.password_hash).where(User.id == current_user.id)).scalar_one()
    if not stored or not check_password_hash(stored, form.password.data or ""):
        throttle().failed(username)
        audit_now(audit.TOTP_DISABLED, object_type="user", object_id=current_user.id, outcome="failed",
                  details={"reason": "wrong_password"})
        return _enrol_page(_("当前密码不正确。"), 400)
    try:
        with database().transaction() as s:
            user = second_factor.turn_off(s, current_user.id, form.code.data, current_policy(), demo=settings().demo)
            end_sessions(s, user.id)
            audit.record(s, audit_actor(), audit.TOTP_DISABLED, object_type="user", object_id=user.id)
    except second_factor.CodeRefused as exc:
        throttle().failed(username)
        audit_now(audit.TOTP_DISABLED, object_type="user", object_id=current_user.id, outcome="failed",
                  details={"reason": exc.code})
        return _enrol_page(exc.message(current_language()), 400)
    except DomainError as exc:  # SecondFactorRequired: the policy keeps it on
        return _enrol_page(exc.message(current_language()), exc.status)
    return _carry_on(user, "off")


@bp.app_context_processor
def _second_factor_offer() -> dict:
    """`second_factor_offer` for the administrators' pages: an administrator without a second factor
    whom the demo spares from enrolling (or whom the policy does not require to) is offered it."""
    try:
        user = current_user.user if current_user.is_authenticated and current_user.via == "session" else None
    except Exception:  # noqa: BLE001 - an error page rendered before the user could be loaded
        user = None
    offer = user is not None and user.role in ADMINISTRATOR_ROLES and not second_factor.enabled(user)
    return {"second_factor_offer": offer}
