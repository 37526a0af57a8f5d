"""Photos: the published copy of a report's photo (visibility rule) and the original (admins only)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("photos", __name__, url_prefix="/api/v1")
