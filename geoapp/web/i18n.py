"""Which language a response speaks: Chinese first, English on request (?lang=en or the browser's choice)."""
from __future__ import annotations

from flask import Flask, request

LANGUAGES = ("zh", "en")


def current_language() -> str:
    asked = request.args.get("lang") or request.cookies.get("lang")
    if asked in LANGUAGES:
        return asked
    # Chinese first: staff browsers are not always set to zh, and English is a deliberate choice
    return "zh"


def init_app(app: Flask) -> None:
    @app.context_processor
    def _lang():
        return {"lang": current_language()}

    @app.after_request
    def _remember_choice(response):
        asked = request.args.get("lang")
        if asked in LANGUAGES and request.cookies.get("lang") != asked:
            response.set_cookie("lang", asked, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
        return response
