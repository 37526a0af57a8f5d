"""the bimonthly album (问题图册): /albums, /albums/<n>.html and .pdf, GET/POST /api/v1/albums (issue [4])."""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("albums", __name__)
api_bp = Blueprint("albums_api", __name__, url_prefix="/api/v1")


def init_app(app: Flask, csrf) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    # the API checks CSRF itself, only for writes that ride on the session cookie (api.api_login_required)
    csrf.exempt(api_bp)
