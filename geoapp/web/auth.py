"""Who is asking, decided in one place (Flask-Login), signing in and out, and changing passwords.

Two credentials, one per surface, both ending in `current_user`:
- Pages: Flask's signed session cookie. It holds Flask-Login's `_user_id` as "<user id>:<session
  version>"; the user is loaded only while users.session_version still has that value, so raising it
  (sign-out, a password change) ends every session of the user, copies of the cookie included. It also
  holds when the sign-in began and when it was last used: it ends after SESSION_HOURS, or after
  SESSION_IDLE_MINUTES without use. "Keep me signed in" makes it a permanent session (a cookie that
  outlives the browser) lasting SESSION_REMEMBER_DAYS, with no idle limit. Flask-Login's separate
  remember cookie is not used: it would be one more credential to revoke, and Flask-Login reads it
  *instead of* the request loader, so a stale one would hide an API key.
- API: `Authorization: Bearer <key>` (the request loader). The API never takes the cookie (it is
  exempt from CSRF protection because of that) and pages never take a key.

Failed sign-ins are counted per username and per client IP (Flask-Limiter's storage, fixed windows; by
default the table rate_limits, shared by every worker: geoapp/ratelimit_store.py);
past the limit, sign-in is refused with 429 before any password hash is computed, so guessing costs the
server nothing and a correct password is refused too until the window ends.

The security administrator's policy (geoapp/domain/security_policy.py, read once per request:
`current_policy`) sets the per-username limit and the window, ends a staff session (every role but
the representative's) unused for idle_timeout_minutes, sends a password older than its age to be
changed at sign-in, and may require the three administrators to use a second factor. A user with a
second factor gives the code on a second step (web/admin_security.py) before the session begins.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import time
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, abort, current_app, g, redirect, render_template, request, session,
                   url_for)
from flask_babel import format_decimal, gettext as _, ngettext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from limits import RateLimitItemPerMinute
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired

from ..config import Settings
from ..domain import accounts, audit, second_factor, security_policy
from ..domain.accounts import (MIN_PASSWORD_LENGTH, WeakPassword, WrongPassword, authenticate, end_sessions,
                               user_for_key, user_for_session)
from ..domain.visibility import Viewer, reads_programme
from ..logs import current_request_id
from ..models import User
from ..translations import N_
from . import database, read_session, settings

bp = Blueprint("auth", __name__)

FAILED = N_("用户名或密码不正确。")  # msgid: one sentence whether the name or the password was wrong

# keys this module keeps in the session, besides Flask-Login's (_user_id, _fresh, _id)
SIGNED_IN_AT, SEEN_AT = "signed_in_at", "seen_at"
# set when a staff session ended for being unused (the sign-in page then says why): the minutes
IDLE_ENDED = "idle_ended_minutes"
# the second factor's enrolment page (web/admin_security.py): the one page an administrator who
# must enrol may open
ENROL_ENDPOINT = "admin_security.second_factor_page"
SEEN_RESOLUTION_S = 60  # "last used" is rewritten at most once a minute (each rewrite resends the cookie)


class LoginForm(FlaskForm):
    username = StringField(validators=[DataRequired()])
    password = PasswordField(validators=[DataRequired()])
    remember = BooleanField()


class PasswordForm(FlaskForm):
    current = PasswordField(validators=[DataRequired()])
    new = PasswordField(validators=[DataRequired()])
    repeat = PasswordField(validators=[DataRequired()])


class Principal(UserMixin):
    """The user as Flask-Login sees them (`current_user`), and how this request proved who they are:
    "session" (the cookie) or "api_key". Anything else is read from the User row."""

    def __init__(self, user: User, via: str):
        self.user = user
        self.via = via

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.session_version}"

    def __getattr__(self, name):
        if name in ("user", "via"):  # not set yet (e.g. while being copied): no recursion
            raise AttributeError(name)
        return getattr(self.user, name)


def _is_api_request() -> bool:
    return request.path.startswith("/api/")


# --- who is asking ------------------------------------------------------------------------------

def _session_alive(now: float) -> bool:
    began, seen = session.get(SIGNED_IN_AT), session.get(SEEN_AT)
    if not isinstance(began, (int, float)) or not isinstance(seen, (int, float)):
        return False
    s = settings()
    if session.permanent:  # "keep me signed in"
        return now - began < s.session_remember_days * 86400
    return now - began < s.session_hours * 3600 and now - seen < s.session_idle_minutes * 60


def _forget_sign_in() -> None:
    for key in ("_user_id", "_fresh", "_id", SIGNED_IN_AT, SEEN_AT):
        session.pop(key, None)
    session.permanent = False


def _load_from_session(user_id: str) -> Principal | None:
    """Flask-Login's user loader: the session's user, if the session is still valid."""
    if _is_api_request() and request.headers.get("Authorization"):
        return None  # an API request with a key is that key's, whatever cookie rides along
    try:
        uid, version = (int(part) for part in user_id.split(":"))
    except (AttributeError, ValueError):
        _forget_sign_in()
        return None
    now = time.time()
    user = user_for_session(read_session(), uid, version) if _session_alive(now) else None
    if user is None:  # expired, signed out elsewhere, password changed, or user removed
        _forget_sign_in()
        return None
    if user.role != "representative" and now - session[SEEN_AT] >= current_policy().idle_timeout_minutes * 60:
        # 等保's idle timeout for staff: a console left open on a shared desk ends (the phones of
        # representatives keep SESSION_IDLE_MINUTES and "keep me signed in")
        _forget_sign_in()
        session[IDLE_ENDED] = current_policy().idle_timeout_minutes
        return None
    if now - session[SEEN_AT] >= SEEN_RESOLUTION_S:
        session[SEEN_AT] = int(now)
    return Principal(user, "session")


def _load_from_request(req) -> Principal | None:
    """Flask-Login's request loader: the API's `Authorization: Bearer <key>`."""
    if not _is_api_request():
        return None
    scheme, _, key = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    user = user_for_key(read_session(), key.strip())
    return Principal(user, "api_key") if user is not None else None


def current_policy() -> security_policy.Policy:
    """The security administrator's policy, read once per request (geoapp/domain/security_policy.py)."""
    if "geoapp_security_policy" not in g:
        g.geoapp_security_policy = security_policy.read(read_session())
    return g.geoapp_security_policy


def must_enrol_second_factor(user: User) -> bool:
    """An administrator the policy requires a second factor of, who has none yet (not in the demo)."""
    return second_factor.must_enrol(user, current_policy(), demo=settings().demo)


def api_user() -> User | None:
    """The user an API request's bearer key identifies (None: no valid key)."""
    if current_user.is_authenticated and getattr(current_user, "via", None) == "api_key":
        return current_user.user
    return None


def request_user() -> tuple[User | None, str | None]:
    """Who an API request comes from, and how: (user, 'api_key' | 'session'), or (None, None).
    A session whose password must be changed first is not let into the API either."""
    if not current_user.is_authenticated:
        return None, None
    if current_user.via == "session" and (current_user.must_change_password
                                          or must_enrol_second_factor(current_user.user)):
        return None, None
    return current_user.user, current_user.via


def _to_login():
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def login_required(*roles: str):
    """The page needs a signed-in user (else: to /login?next=…), one whose password need not be
    changed first (else: to /account/password), who need not enrol a second factor first (an
    administrator under the security policy, outside the demo: else to /account/second-factor), and
    one of `roles` when given (else 403)."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated or current_user.via != "session":
                return _to_login()
            if current_user.must_change_password and request.endpoint != "auth.change_password":
                return redirect(url_for("auth.change_password"))
            if request.endpoint != ENROL_ENDPOINT and must_enrol_second_factor(current_user.user):
                return redirect(url_for(ENROL_ENDPOINT))  # before any other page
            if roles and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorate


def _start_session(user: User, *, remember: bool, signed_in_at: float | None = None) -> None:
    now = int(time.time())
    if signed_in_at is None:
        session.clear()  # a fresh session for a fresh sign-in: nothing carried over from before
    session.permanent = remember
    session[SIGNED_IN_AT] = int(signed_in_at or now)
    session[SEEN_AT] = now
    login_user(Principal(user, "session"))


# --- the audit trail's actor --------------------------------------------------------------------

def audit_actor(username: str | None = None) -> audit.Actor:
    """Who makes this request, for the audit trail (domain/audit.py): the signed-in user, or only the
    name typed on the sign-in form; the real client address (ProxyFix trusts exactly nginx's hop, so
    remote_addr is the client's) and the request id nginx logged too."""
    user = current_user.user if current_user.is_authenticated else None
    return audit.Actor(user_id=user.id if user else None, username=user.username if user else (username or "")[:128],
                       role=user.role if user else None, client_addr=request.remote_addr,
                       request_id=current_request_id())


def audit_now(event: str, **kw) -> None:
    """A row committed at once, whatever the request's own transaction does (failures, sign-ins)."""
    audit.record_independently(database().engine, kw.pop("actor", None) or audit_actor(), event, **kw)


# --- failed sign-ins ----------------------------------------------------------------------------

class SignInThrottle:
    """Counts failed password checks per username and per client IP in fixed windows (the window
    starts at the first failure); tells how long to wait once either count is used up. Only failures
    are counted, by the caller, after the check; the test comes before any hash is computed. Two
    requests for the same name racing through the test can each still be checked: at most the
    number of requests served at once (every worker's threads) beyond the limit.

    The per-username count and the window's length are the security policy's (lockout_failures,
    lockout_minutes), read per request, unless the settings override them (None: they do not). A
    changed policy starts fresh counts: the limit's amount and length are part of its key."""

    def __init__(self, limiter: Limiter, per_user: int | None, per_ip: int, window_minutes: int | None):
        self.limiter = limiter
        self.per_user_override, self.per_ip_limit, self.window_override = per_user, per_ip, window_minutes

    def limits(self) -> tuple[int, int]:
        """(failed sign-ins allowed per username, the window in minutes) in force now."""
        policy = current_policy()
        return self.per_user_override or policy.lockout_failures, self.window_override or policy.lockout_minutes

    def _counts(self, username: str):
        per_user, minutes = self.limits()
        name = (username or "").strip().lower()[:128]  # "Admin" and "admin " count as admin
        return ((RateLimitItemPerMinute(per_user, minutes, namespace="signin-failed-user"), name),
                (RateLimitItemPerMinute(self.per_ip_limit, minutes, namespace="signin-failed-ip"),
                 get_remote_address() or "unknown"))

    def wait_seconds(self, username: str) -> int:
        """0 if a password may be checked now; else how many seconds until it may."""
        strategy = self.limiter.limiter
        resets = [strategy.get_window_stats(item, key).reset_time
                  for item, key in self._counts(username) if not strategy.test(item, key)]
        return max(1, math.ceil(max(resets) - time.time())) if resets else 0

    def failed(self, username: str) -> None:
        for item, key in self._counts(username):
            self.limiter.limiter.hit(item, key)

    def reset(self) -> None:
        """Forget every count (tests; or an operator's console after a false alarm)."""
        self.limiter.reset()


def throttle() -> SignInThrottle:
    return current_app.extensions["geoapp_sign_in_throttle"]


def _too_many(wait_s: int) -> str:
    minutes = max(1, math.ceil(wait_s / 60))
    return ngettext("登录尝试过多，请 %(num)s 分钟后再试。", "登录尝试过多，请 %(num)s 分钟后再试。", minutes)


# --- pages --------------------------------------------------------------------------------------

def _safe_next(target: str | None) -> str:
    # only same-site paths: never redirect a signed-in user to another host
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("phone.home")


def _login_page(form: LoginForm, error: str | None = None, status: int = 200, headers: dict | None = None):
    current_user.is_authenticated  # noqa: B018 - loads the session's user first: an idle one ends here
    idle = session.pop(IDLE_ENDED, None)
    notice = _("您已 %(n)s 分钟未操作，为了安全已自动退出，请重新登录。", n=idle) if isinstance(idle, int) else None
    return render_template("auth/login.html", form=form, remember_days=format_decimal(settings().session_remember_days),
                           error=error, notice=notice), \
        status, headers or {}


def _password_page(form: PasswordForm, error: str | None = None, status: int = 200, headers: dict | None = None):
    return render_template("auth/password.html", form=form, error=error, min_length=MIN_PASSWORD_LENGTH,
                           forced=current_user.must_change_password, done=request.args.get("changed") == "1"), \
        status, headers or {}


@bp.app_errorhandler(CSRFError)
def _csrf_failed(err):
    # a form left open past its token's life: say so and offer a fresh form, not a bare 400 page
    expired = _("页面已过期或来源无法验证，请重新操作。")
    if _is_api_request():  # a page's fetch without its token: JSON, like every API refusal
        from .errors import render_error
        return render_error("csrf_failed", 400, expired)
    if request.endpoint == "auth.change_password" and current_user.is_authenticated:
        return _password_page(PasswordForm(), expired, 400)
    return _login_page(LoginForm(), expired, 400)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if not form.validate_on_submit():
        return _login_page(form, _(FAILED), 401) if request.method == "POST" else _login_page(form)
    username = form.username.data
    wait = throttle().wait_seconds(username)
    if wait:  # refused before the (slow) password hash: guessing past the limit costs nothing
        audit_now(audit.SIGN_IN_LOCKED, actor=audit_actor(username), outcome="refused", details={"wait_s": wait})
        return _login_page(form, _too_many(wait), 429, {"Retry-After": str(wait)})
    user = authenticate(read_session(), username, form.password.data)
    if user is None:
        throttle().failed(username)
        audit_now(audit.SIGN_IN_FAILED, actor=audit_actor(username), outcome="failed")
        return _login_page(form, _(FAILED), 401)
    remember, next_target = bool(form.remember.data), request.args.get("next")
    if second_factor.enabled(user):  # the session begins only once the code is right too
        from .admin_security import ask_for_code  # here: that module builds on this one

        return ask_for_code(user, remember=remember, next_target=next_target)
    return signed_in(user, remember=remember, next_target=next_target)


def signed_in(user: User, *, remember: bool, next_target: str | None, second_factor_used: bool = False):
    """Begin the session of a user who proved who they are, and send them where they must go first:
    a password to change (a one-time one, or one older than the policy allows), a second factor to
    enrol (an administrator, when the policy requires it), else where they were going."""
    expired = not user.must_change_password and security_policy.password_expired(user, current_policy())
    if expired:
        with database().transaction() as s:
            security_policy.require_change_if_expired(s, user, current_policy())
    _start_session(user, remember=remember)
    details = {"via": "form"} | ({"second_factor": "totp"} if second_factor_used else {}) \
        | ({"password_expired": True} if expired else {})
    audit_now(audit.SIGN_IN, object_type="user", object_id=user.id, details=details)
    if user.must_change_password or expired:
        return redirect(url_for("auth.change_password"))
    if must_enrol_second_factor(user):
        return redirect(url_for(ENROL_ENDPOINT))
    return redirect(_safe_next(next_target))


@bp.post("/logout")
def logout():
    # the CSRF check applies to this POST too (CSRFProtect)
    if current_user.is_authenticated and current_user.via == "session":
        with database().transaction() as s:
            end_sessions(s, current_user.id)  # this cookie, and every copy of it, stops working
            audit.record(s, audit_actor(), audit.SIGN_OUT, object_type="user", object_id=current_user.id)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required()
def change_password():
    form = PasswordForm()
    if not form.validate_on_submit():
        return _password_page(form, _("请填写全部三项。"), 400) if request.method == "POST" else _password_page(form)
    if form.new.data != form.repeat.data:
        return _password_page(form, _("两次输入的新密码不一致。"), 400)
    username = current_user.username
    wait = throttle().wait_seconds(username)
    if wait:  # the current password is a password check like sign-in's: the same limit applies
        return _password_page(form, _too_many(wait), 429, {"Retry-After": str(wait)})
    try:
        with database().transaction() as s:
            user = accounts.change_password(s, current_user.id, form.current.data, form.new.data)
            audit.record(s, audit_actor(), audit.PASSWORD_CHANGED, object_type="user", object_id=user.id)
    except WrongPassword:
        throttle().failed(username)
        audit_now(audit.PASSWORD_CHANGED, object_type="user", object_id=current_user.id, outcome="failed",
                  details={"reason": "wrong_current_password"})
        return _password_page(form, _("当前密码不正确。"), 400)
    except WeakPassword as exc:
        return _password_page(form, exc.message(), 400)
    # every session of the user ended with the change; this one carries on with the new version
    _start_session(user, remember=session.permanent, signed_in_at=session.get(SIGNED_IN_AT))
    return redirect(url_for("auth.change_password", changed="1"))


def _unauthorized():
    """For views protected with flask_login.login_required instead of ours: same answers as ours."""
    if _is_api_request():
        abort(401)  # JSON with WWW-Authenticate (web/errors.py)
    return _to_login()


def init_app(app: Flask) -> None:
    """Sessions, Flask-Login and the sign-in throttle. Called once the blueprints are registered."""
    s: Settings = app.config["GEOAPP"]
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=s.https,  # only behind https (GEOAPP_HTTPS=1): intranets often serve http
        REMEMBER_COOKIE_SECURE=s.https,  # not set by this app (see above); secure in case anything does
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        # the cookie lifetime of a "keep me signed in" session; the server checks its own limits too
        PERMANENT_SESSION_LIFETIME=dt.timedelta(days=s.session_remember_days),
    )

    manager = LoginManager()
    manager.init_app(app)
    # Flask-Login's IP/browser fingerprint would sign phones out whenever they switch networks; the
    # session version and lifetimes above are the controls instead
    manager.session_protection = None
    manager.user_loader(_load_from_session)
    manager.request_loader(_load_from_request)
    manager.unauthorized_handler(_unauthorized)

    from ..ratelimit_store import limiter_storage  # registers the database:// scheme with `limits`

    storage_uri, storage_options = limiter_storage(s.ratelimit_storage_uri, app.extensions["geoapp_db"].engine)
    limiter = Limiter(get_remote_address, app=app, storage_uri=storage_uri, storage_options=storage_options,
                      strategy="fixed-window")
    app.context_processor(_programme_nav)
    app.extensions["geoapp_sign_in_throttle"] = SignInThrottle(
        limiter, s.login_fails_per_user, s.login_fails_per_ip, s.login_fail_window_minutes)


def _programme_nav() -> dict:
    """`programme_nav` for base.html: links to coverage, statistics and the album for their readers."""
    try:
        authenticated = current_user.is_authenticated
    except Exception:  # noqa: BLE001 - an error page rendered before the user could be loaded
        return {"programme_nav": False}
    return {"programme_nav": authenticated and reads_programme(Viewer.of(current_user.user))}
