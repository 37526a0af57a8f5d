"""Signing in to the web pages (session cookie, CSRF-protected form) and the role check for views."""
from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from ..domain.accounts import authenticate
from ..models import User
from . import read_session
from .i18n import current_language

bp = Blueprint("auth", __name__)

TEXT = {
    "zh": {"title": "登录", "username": "用户名", "password": "密码", "submit": "登录",
           "failed": "用户名或密码不正确。", "logout": "退出",
           "expired": "页面已过期或来源无法验证，请重新操作。"},
    "en": {"title": "Sign in", "username": "Username", "password": "Password", "submit": "Sign in",
           "failed": "Wrong username or password.", "logout": "Sign out",
           "expired": "The page has expired or its origin could not be verified; please try again."},
}


class LoginForm(FlaskForm):
    username = StringField(validators=[DataRequired()])
    password = PasswordField(validators=[DataRequired()])


def current_user() -> User | None:
    if "user" not in g:
        user_id = session.get("user_id")
        g.user = read_session().get(User, user_id) if user_id else None
    return g.user


def login_required(*roles: str):
    """The view needs a signed-in user, and one of `roles` when given (403 otherwise)."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if roles and user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorate


def _safe_next(target: str | None) -> str:
    # only same-site paths: never redirect a signed-in user to another host
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("maps.show_map")


@bp.app_errorhandler(CSRFError)
def _csrf_failed(_err):
    # a form left open past its token's life: say so and offer a fresh form, not a bare 400 page
    t = TEXT[current_language()]
    return render_template("auth/login.html", form=LoginForm(), t=t, error=t["expired"]), 400


@bp.route("/login", methods=["GET", "POST"])
def login():
    t = TEXT[current_language()]
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = authenticate(read_session(), form.username.data, form.password.data)
        if user is not None:
            session.clear()
            session["user_id"] = user.id
            return redirect(_safe_next(request.args.get("next")))
        error = t["failed"]
    elif request.method == "POST":
        error = t["failed"]
    return render_template("auth/login.html", form=form, t=t, error=error), 200 if error is None else 401


@bp.post("/logout")
def logout():
    LoginForm()  # the CSRF check applies to this POST too (CSRFProtect)
    session.clear()
    return redirect(url_for("auth.login"))
