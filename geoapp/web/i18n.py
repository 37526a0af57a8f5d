"""Which language a response speaks, and the gettext catalogs behind every UI string.

Chinese first: msgids are the Chinese text itself (zh_CN is the default locale, so a string with no
English yet still reads right in Chinese, and tests/test_i18n.py finds it in English pages). English
comes from geoapp/translations/en/LC_MESSAGES/messages.po, compiled to .mo by the setup
(`pybabel compile`; scripts/i18n refreshes it). Domain code, which has no request, reads the same
catalog through geoapp/translations/__init__.py. The language is: ?lang= (remembered in a cookie),
then the user's earlier choice, then Accept-Language, then Chinese.
"""
from __future__ import annotations

from flask import Flask, request
from flask_babel import Babel

from ..translations import DIRECTORY as TRANSLATIONS, LANGUAGES, LOCALES


def current_language() -> str:
    asked = request.args.get("lang") or request.cookies.get("lang")
    if asked in LANGUAGES:
        return asked
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    if best and best.startswith("en"):
        return "en"
    return "zh"


def _locale() -> str:
    return LOCALES[current_language()]


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=_locale, default_locale="zh_CN", default_timezone=app.config["GEOAPP"].display_tz,
          default_translation_directories=str(TRANSLATIONS))

    @app.context_processor
    def _lang():
        return {"lang": current_language()}

    @app.after_request
    def _remember_choice(response):
        asked = request.args.get("lang")
        if asked in LANGUAGES and request.cookies.get("lang") != asked:
            response.set_cookie("lang", asked, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
        return response
