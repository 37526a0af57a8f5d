"""the programme's statistics: /stats, the monthly bulletin /stats/bulletin, GET /api/v1/stats (issue [4])."""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("stats", __name__)
api_bp = Blueprint("stats_api", __name__, url_prefix="/api/v1")


def init_app(app: Flask, csrf) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    # the API checks CSRF itself, only for writes that ride on the session cookie (api.api_login_required)
    csrf.exempt(api_bp)
