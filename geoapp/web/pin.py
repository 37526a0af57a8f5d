"""Pinning a problem on the phone: the pin form, the service worker and the web app manifest."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pin", __name__)
