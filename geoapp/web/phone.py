"""The representative's pages: home per role, my street, a report's page, my API key."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("phone", __name__)
