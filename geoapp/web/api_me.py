"""The phone's own API: GET /api/v1/me (who I am, my street, this month's quota) and GET /api/v1/snap."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_me", __name__, url_prefix="/api/v1")
