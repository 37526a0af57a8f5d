"""The gettext catalogs, readable with or without a request.

Pages and the API get their language from Flask-Babel (geoapp/web/i18n.py). Domain code has no
request: a refusal is raised in the domain, and said later — in the request's language by the web
layer, in both languages by the CLI, in English in an exception's str(). So the domain names a
sentence by its msgid (the Chinese text, marked with N_ for extraction) and `translate` reads it
from the same compiled catalog Flask-Babel uses, in whichever language is asked for.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations

DIRECTORY = Path(__file__).resolve().parent
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"  # the msgids are Chinese: Chinese needs no catalog
LOCALES = {"zh": "zh_CN", "en": "en"}


def N_(msgid: str) -> str:
    """Marks a msgid for `scripts/i18n` (pybabel extract -k N_); it is translated when said."""
    return msgid


@functools.cache
def catalog(lang: str) -> NullTranslations:
    if lang == DEFAULT_LANGUAGE or lang not in LANGUAGES:
        return NullTranslations()
    return Translations.load(str(DIRECTORY), [LOCALES[lang]], "messages")


def request_language() -> str:
    """The current request's language, or Chinese outside a request (CLI, background work)."""
    from flask import has_request_context

    if not has_request_context():
        return DEFAULT_LANGUAGE
    from flask_babel import get_locale

    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else DEFAULT_LANGUAGE


def translate(msgid: str, lang: str | None = None) -> str:
    """`msgid` in `lang` (default: the request's language)."""
    return catalog(lang or request_language()).gettext(msgid)


class Text:
    """A sentence said later, in the reader's language: a msgid and its str.format parameters.
    Parameters may be Texts themselves (a field's name inside a refusal), said in the same language."""

    def __init__(self, msgid: str, **params: Any):
        self.msgid = msgid
        self.params = params

    def render(self, lang: str | None = None) -> str:
        lang = lang or request_language()
        params = {k: v.render(lang) if isinstance(v, Text) else v for k, v in self.params.items()}
        return translate(self.msgid, lang).format(**params)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Text({self.msgid!r}, **{self.params!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Text) and (self.msgid, self.params) == (other.msgid, other.params)

    def __hash__(self) -> int:
        return hash(self.msgid)
