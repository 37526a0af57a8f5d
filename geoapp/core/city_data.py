"""The city data (gis_data/: streets, representatives, units, zones, the taxonomy) reloaded by the
system administrator, with a preview of what would change before anything is applied.

`preview` loads the folder inside a savepoint and rolls it back: the counts the loader reports and,
for every coded table, which codes would be added and removed (a removal is what hurts: a street or
unit that reports still refer to is refused by the database, and the preview says so). `apply`
loads it for real, but only if the folder is still the one previewed (its fingerprint: SHA-256 over
every file's name and bytes), so what is applied is exactly what was shown; audited in the same
transaction. The loader itself (geoapp/gis/loader.py) stays the one place that reads the files.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from ..domain import audit
from ..gis.loader import LoadCounts, load_city_data
from ..gis.validate import GisDataError
from ..translations import N_, Text
from .administration import AdminRefused
from .permissions import require

CODED = ("streets", "representatives", "units", "zones", "categories")


def fingerprint(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass
class CityDataChange:
    fingerprint: str
    counts: LoadCounts | None = None
    added: dict[str, list[str]] = field(default_factory=dict)
    removed: dict[str, list[str]] = field(default_factory=dict)
    refused: str | None = None        # why the folder cannot be loaded (nothing would change)

    @property
    def changed(self) -> bool:
        return self.counts is not None and self.counts.changed > 0

    def tables(self) -> list[dict]:
        if self.counts is None:
            return []
        c = self.counts
        names = sorted(set(c.inserted) | set(c.updated) | set(c.deleted))
        return [{"table": t, "inserted": c.inserted.get(t, 0), "updated": c.updated.get(t, 0),
                 "deleted": c.deleted.get(t, 0), "added": self.added.get(t, []), "removed": self.removed.get(t, [])}
                for t in names]


def _codes(session: Session) -> dict[str, set[str]]:
    return {t: set(session.execute(text(f"SELECT code FROM {t}")).scalars()) for t in CODED}


def _load(session: Session, directory: Path, city_bbox) -> tuple[LoadCounts, dict, dict]:
    before = _codes(session)
    counts = load_city_data(session, directory, city_bbox)
    after = _codes(session)
    return (counts, {t: sorted(after[t] - before[t]) for t in CODED if after[t] - before[t]},
            {t: sorted(before[t] - after[t]) for t in CODED if before[t] - after[t]})


def preview(session: Session, actor: audit.Actor, directory: Path, city_bbox) -> CityDataChange:
    """What loading `directory` would change; nothing is kept."""
    require(actor.role, "city_data.reload")
    change = CityDataChange(fingerprint(directory))
    trial = session.begin_nested()
    try:
        change.counts, change.added, change.removed = _load(session, directory, city_bbox)
    except GisDataError as exc:
        change.refused = str(exc)
    finally:
        trial.rollback()
    return change


def apply(session: Session, actor: audit.Actor, directory: Path, city_bbox, previewed: str) -> CityDataChange:
    """Load `directory` in the caller's transaction, if it is still the folder that was previewed."""
    require(actor.role, "city_data.reload")
    now = fingerprint(directory)
    if now != previewed:
        raise AdminRefused(reason=Text(N_("城市数据在预览之后又有改动，请重新预览。")))
    change = CityDataChange(now)
    try:
        change.counts, change.added, change.removed = _load(session, directory, city_bbox)
    except GisDataError as exc:
        raise AdminRefused(reason=Text(N_("城市数据无法载入，未做任何改动：{problem}"), problem=str(exc))) from None
    audit.record(session, actor, audit.CITY_DATA_LOADED, object_type="city_data", object_id=now[:16],
                 details={"directory": str(directory), "fingerprint": now, "tables": change.tables()})
    return change
