"""geoapp: representatives snap street problems, the city fixes them."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from .config import Settings
from .db import Database


def _templates_folder() -> str:
    """templates/ beside the package in a checkout (and the editable installs of scripts/provision.sh
    and scripts/install-production); geoapp/templates inside an installed wheel (pyproject.toml)."""
    package = Path(__file__).resolve().parent
    beside = package.parent / "templates"
    return str(beside if (beside / "base.html").is_file() else package / "templates")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(
        __name__,
        template_folder=_templates_folder(),
        static_folder=str(Path(__file__).parent / "static"),
    )
    app.config.update(settings.as_flask_config())
    from . import logs

    logs.init_app(app, settings)  # first: every later hook's log records carry the request id
    if settings.trusted_proxy_hops:
        # behind nginx: the client's address and scheme as the one trusted proxy saw them, so the
        # sign-in limits, the logs and Secure cookies see the real client (deploy/nginx/geoapp.conf)
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    app.json.ensure_ascii = False  # Chinese stays readable in API responses
    app.extensions["geoapp_db"] = Database(settings.database_url)

    from flask_wtf.csrf import CSRFProtect

    csrf = CSRFProtect(app)

    from .domain import photos
    from .web import (api, api_me, api_walks, assets, auth, close_session, errors, health, i18n, maps, phone,
                      photos as photo_routes, pin, security, admin_security, admin_audit)

    photos.configure_decoding(settings.photo_decode_slots, run_dir=settings.run_dir)  # per machine: lock files
    app.teardown_appcontext(close_session)
    i18n.init_app(app)
    errors.init_app(app)
    security.init_app(app, settings)
    app.register_blueprint(health.bp)
    app.register_blueprint(assets.bp)
    assets.init_app(app)
    for api_bp in (api.bp, api_me.bp, api_walks.bp, photo_routes.bp):
        app.register_blueprint(api_bp)
        # the API checks CSRF itself, only for writes that ride on the session cookie (api.api_login_required)
        csrf.exempt(api_bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin_security.bp)  # /admin/security, the second factor (sign-in's 2nd step, enrolling)
    app.register_blueprint(maps.bp)
    app.register_blueprint(phone.bp)
    app.register_blueprint(pin.bp)
    from .web import duplicates  # /api/v1/duplicates (CSRF-exempt like the API) and /console/duplicates
    duplicates.init_app(app, csrf)
    from .web import inbox
    inbox.init_app(app, csrf)  # /inbox, /api/v1/notifications, the header's unread count
    from .web import unit  # the unit handler's pages
    app.register_blueprint(unit.bp)
    from .web import console  # the dispatcher's work queue and report page (/console)
    app.register_blueprint(console.bp)
    from .web import albums, coverage, exports, stats  # the programme's results ([4])
    for area in (coverage, stats, albums, exports):
        area.init_app(app, csrf)
    from .web import admin  # the system administrator's pages (/admin), and the administrators' menu
    admin.init_app(app)
    admin_audit.init_app(app, csrf)  # the auditor's /admin/audit, its CSV, GET /api/v1/audit (CSRF-exempt API)
    auth.init_app(app)  # who is asking (Flask-Login: session cookie or bearer key), sign-in throttle

    from .cli import register_commands

    register_commands(app)
    return app
