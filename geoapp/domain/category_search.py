"""Search keys for the problem items, so a representative can find one by typing on a phone:
its Chinese name, its code, its full pinyin or the pinyin initials ("jg" finds 井盖缺失).

The keys are computed here, once per page, and travel in the pin page's data block; the page's script
only compares lower-case strings, so the picker works offline and no pinyin table ships to the phone.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from pypinyin import Style, lazy_pinyin


def _pinyin(text: str, style: Style) -> str:
    # non-Chinese characters (、, digits, letters) are dropped: nobody types them while searching
    return "".join(lazy_pinyin(text, style=style, errors="ignore")).lower()


def search_keys(item: dict) -> list[str]:
    """Lower-case strings a query is looked for in: code, name, full pinyin, pinyin initials,
    and the English name (an English page searches in English)."""
    name = item["name"]
    keys = [item["code"], name.lower(), _pinyin(name, Style.NORMAL), _pinyin(name, Style.FIRST_LETTER)]
    if item.get("name_en"):
        keys.append(item["name_en"].lower())
    return list(dict.fromkeys(k for k in keys if k))  # unique, in order


def normalise_query(query: str) -> str:
    """What the phone's script does too (pin.js): lower case, no spaces."""
    return "".join(query.split()).lower()


def matches(keys: Iterable[str], query: str) -> bool:
    q = normalise_query(query)
    return bool(q) and any(q in key for key in keys)


def items_of(tree: list[dict]) -> Iterator[tuple[dict, dict, dict]]:
    """(class, category, item) for every item of the taxonomy tree (domain/taxonomy.category_tree)."""
    for cls in tree:
        for category in cls.get("children", ()):
            for item in category.get("children", ()):
                yield cls, category, item


def search(tree: list[dict], query: str) -> list[dict]:
    """The items matching `query`, those whose code, name or initials start with it first."""
    q = normalise_query(query)
    found = [item for _c, _k, item in items_of(tree) if matches(search_keys(item), q)]
    return sorted(found, key=lambda item: not any(k.startswith(q) for k in search_keys(item)))
