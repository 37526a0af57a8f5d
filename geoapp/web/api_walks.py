"""Walks: POST /api/v1/walks (chunks of a GPS trace) and GET /api/v1/walks."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_walks", __name__, url_prefix="/api/v1")
