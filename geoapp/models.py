"""Tables: columns and constraints, no behaviour. The migration in migrations/ creates them."""
from __future__ import annotations

import datetime as dt
import uuid

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Computed, Date, DateTime, Double, ForeignKey, ForeignKeyConstraint,
    Index, Integer, Numeric, SmallInteger, String, Text, UniqueConstraint, func, text,
)
from sqlalchemy.dialects.postgresql import INT4MULTIRANGE, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Distances, buffers and snapping happen in CGCS2000 / 3-degree Gauss-Kruger CM 120E (metres),
# which covers Jinzhou's core (118.5-121.5 E). Changing it is a schema change: a new migration.
METRIC_SRID = 4549
WGS84 = 4326

from .domain.vocabulary import (  # noqa: E402 - the closed lists live in one place
    INPUT_CRS, MONTHLY_QUOTAS, PHOTO_KINDS, REPORT_STATUSES, REPRESENTATIVE_KINDS, RUNNING_STATUSES, UNIT_KINDS,
    USER_ROLES,
)


class Base(DeclarativeBase):
    pass


def one_of(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _metric(column: str, geom_type: str) -> Mapped:
    """A stored copy of a WGS-84 geometry in the metric CRS, kept in step by PostgreSQL itself."""
    return mapped_column(
        Geometry(geom_type, srid=METRIC_SRID, spatial_index=False),
        Computed(f"ST_Transform({column}, {METRIC_SRID})", persisted=True),
    )


class Unit(Base):
    __tablename__ = "units"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    unit_type: Mapped[str] = mapped_column(String(64))
    # the system administrator's (migration 0014); a reload of gis_data/ leaves them alone
    contact_name: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    __table_args__ = (
        CheckConstraint(one_of("kind", UNIT_KINDS), name="unit_kind"),
    )


class Street(Base):
    __tablename__ = "streets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    district: Mapped[str] = mapped_column(Text)
    from_name: Mapped[str] = mapped_column(Text)
    to_name: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    geom = mapped_column(Geometry("MULTILINESTRING", srid=WGS84, spatial_index=False), nullable=False)
    geom_m = _metric("geom", "MULTILINESTRING")
    length_m: Mapped[float] = mapped_column(Double, Computed(f"ST_Length(ST_Transform(geom, {METRIC_SRID}))", persisted=True))
    representative = relationship("Representative", back_populates="street", uselist=False)
    __table_args__ = (
        CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="street_geom_valid"),
        Index("ix_streets_geom", "geom", postgresql_using="gist"),       # migration 0001: snapping
        Index("ix_streets_geom_m", "geom_m", postgresql_using="gist"),
    )


class StreetUnit(Base):
    """A street maintained by a named unit for one unit type, overriding its zone."""
    __tablename__ = "street_units"
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id", ondelete="CASCADE"), primary_key=True)
    unit_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))


class Representative(Base):
    __tablename__ = "representatives"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    monthly_quota: Mapped[int] = mapped_column(Integer)
    # unique: exactly one street each, and no street has two representatives (deferrable, so a
    # replacement data set may swap two representatives' streets within its transaction)
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))
    street = relationship("Street", back_populates="representative")
    __table_args__ = (
        CheckConstraint(one_of("kind", REPRESENTATIVE_KINDS), name="rep_kind"),
        CheckConstraint(one_of("monthly_quota", sorted(set(MONTHLY_QUOTAS.values()))), name="rep_quota"),
        UniqueConstraint("street_id", name="representatives_street_id_key", deferrable=True, initially="DEFERRED"),
    )


class StreetHandover(Base):
    """A street's representative changed on a date (migration 0014; core/administration.hand_over_street):
    the seat (representative_id) stays, the person (user) changes; from_user_id is whoever held it."""
    __tablename__ = "street_handovers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))
    representative_id: Mapped[int] = mapped_column(ForeignKey("representatives.id"))
    from_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    to_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    on_date: Mapped[dt.date] = mapped_column(Date)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    by_user_id: Mapped[int | None] = mapped_column(Integer)   # no key: the trail's actor, as audit_log
    by: Mapped[str] = mapped_column(Text)
    __table_args__ = (Index("street_handovers_street", "street_id", "on_date"),)


class Zone(Base):
    __tablename__ = "zones"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    district_code: Mapped[str] = mapped_column(String(12))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=WGS84, spatial_index=False), nullable=False)
    geom_m = _metric("geom", "MULTIPOLYGON")
    __table_args__ = (
        CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="zone_geom_valid"),
        Index("ix_zones_geom", "geom", postgresql_using="gist"),         # migration 0001: dispatch by zone
        Index("ix_zones_geom_m", "geom_m", postgresql_using="gist"),
    )


class ZoneUnit(Base):
    """Which concrete unit handles one unit type inside a zone."""
    __tablename__ = "zone_units"
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    unit_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))


class Category(Base):
    """One node of the taxonomy: album class -> category -> item. Only items are reported against."""
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    unit_type: Mapped[str | None] = mapped_column(String(64))
    deadline_days: Mapped[float | None] = mapped_column(Numeric(6, 2))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    parent = relationship("Category", remote_side=[id])
    __table_args__ = (
        CheckConstraint("level IN ('class', 'category', 'item')", name="category_level"),
        CheckConstraint(
            "(level = 'item') = (unit_type IS NOT NULL AND deadline_days IS NOT NULL AND deadline_days > 0)",
            name="category_item_handling",
        ),
        CheckConstraint("(level = 'class') = (parent_id IS NULL)", name="category_parent"),
    )


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    representative_id: Mapped[int | None] = mapped_column(ForeignKey("representatives.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    # sha256 of the key: keys are 256-bit random, so a fast hash is enough and stays indexable
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    # accounts and sessions (migration 0002; web/auth.py): every signed-in session carries the
    # session_version it began with; sign-out and a password change raise it, ending them all
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # a password someone else chose (the first admin's one-time one): pages send the user to change it
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # where notifications are e-mailed when an SMTP server is configured (domain/notifications.py)
    email: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # migration 0014: a disabled account, or one past its expiry (the start of the day the
    # administrator gave, in the city's zone), is refused everywhere (accounts.USABLE); nothing is deleted
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # migration 0015: the TOTP second factor (domain/second_factor.py). A secret without
    # totp_enabled_at is an enrolment not yet confirmed by a code; totp_last_step is the 30-s step of
    # the last code accepted, so a code is never accepted twice
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_enabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    representative = relationship("Representative")
    unit = relationship("Unit")
    __table_args__ = (
        CheckConstraint(one_of("role", USER_ROLES), name="user_role"),
        CheckConstraint("(role = 'representative') = (representative_id IS NOT NULL)", name="user_rep"),
        CheckConstraint("(role = 'unit_handler') = (unit_id IS NOT NULL)", name="user_unit"),
        CheckConstraint("totp_enabled_at IS NULL OR totp_secret IS NOT NULL", name="user_totp_enabled"),
        CheckConstraint("totp_last_step IS NULL OR totp_enabled_at IS NOT NULL", name="user_totp_step"),
    )


class Report(Base):
    __tablename__ = "reports"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # generated on the phone; a retried submission carries the same one
    client_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    # sha256 of the normalised submission (intake.fingerprint): tells a retry from a reuse
    submission_sha256: Mapped[str | None] = mapped_column(String(64))
    reported_lon: Mapped[float] = mapped_column(Double)
    reported_lat: Mapped[float] = mapped_column(Double)
    reported_crs: Mapped[str] = mapped_column(String(8))
    geom = mapped_column(Geometry("POINT", srid=WGS84, spatial_index=False), nullable=False)
    geom_m = _metric("geom", "POINT")
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))
    distance_m: Mapped[float] = mapped_column(Double)
    position_m: Mapped[float] = mapped_column(Double)
    on_own_street: Mapped[bool] = mapped_column(Boolean)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    description: Mapped[str] = mapped_column(Text)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(32), server_default="submitted")
    # the unit the dispatch rule suggests at intake; the lead unit once dispatched (domain/lifecycle.py)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    dispatch_reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # the handling lifecycle (migration 0006; domain/lifecycle.py is the only writer of these)
    version: Mapped[int] = mapped_column(Integer, server_default="1")   # optimistic locking
    deadline_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    album: Mapped[bool] = mapped_column(Boolean, server_default="false")
    ledger_promised_on: Mapped[dt.date | None] = mapped_column(Date)
    extension_requested_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    extension_reason: Mapped[str | None] = mapped_column(Text)
    reply_rating: Mapped[int | None] = mapped_column(SmallInteger)
    result_rating: Mapped[int | None] = mapped_column(SmallInteger)
    verify_comment: Mapped[str | None] = mapped_column(Text)
    street = relationship("Street")
    category = relationship("Category")
    unit = relationship("Unit")
    reporter = relationship("User")
    __table_args__ = (
        CheckConstraint(one_of("status", REPORT_STATUSES), name="report_status"),
        CheckConstraint(one_of("reported_crs", INPUT_CRS), name="report_crs"),
        CheckConstraint("distance_m >= 0 AND position_m >= 0", name="report_measures"),
        CheckConstraint("char_length(description) BETWEEN 1 AND 2000", name="report_description"),
        CheckConstraint("(reply_rating IS NULL OR reply_rating BETWEEN 1 AND 5) AND "
                        "(result_rating IS NULL OR result_rating BETWEEN 1 AND 5)", name="report_ratings"),
        CheckConstraint("(status = 'merged') = (merged_into_id IS NOT NULL) AND merged_into_id <> id",
                        name="report_merged"),
        CheckConstraint("status <> 'ledger' OR ledger_promised_on IS NOT NULL", name="report_ledger"),
        Index("reports_merged_into", "merged_into_id", postgresql_where=text("merged_into_id IS NOT NULL")),
        Index("reports_status_created", "status", "created_at"),
        Index("reports_unit_status", "unit_id", "status"),
        Index("reports_created_at", "created_at"),    # migration 0007: the console map's date edges
        Index("reports_category", "category_id"),     # migration 0007: the category filter
        Index("reports_running_deadline", "deadline_at",
              postgresql_where=text(f"status IN ({', '.join(repr(s) for s in RUNNING_STATUSES)})")),
        Index("ix_reports_geom", "geom", postgresql_using="gist"),       # migration 0001: the map, nearby
        Index("ix_reports_geom_m", "geom_m", postgresql_using="gist"),
        Index("ix_reports_street", "street_id"),
        Index("ix_reports_unit", "unit_id"),
        # migration 0009: a representative's reports on their street by time (coverage, quotas)
        Index("reports_reporter_street_time", "reporter_id", "street_id", "created_at",
              postgresql_include=["position_m"]),
    )


class ReportUnit(Base):
    """A cooperating unit (协办单位) of a report; the lead unit is Report.unit_id."""
    __tablename__ = "report_units"
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    __table_args__ = (Index("report_units_unit", "unit_id"),)


class ReportEvent(Base):
    """Append-only history of a report (a trigger refuses UPDATE and DELETE)."""
    __tablename__ = "report_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict] = mapped_column(JSONB, server_default="{}")


class Walk(Base):
    """A representative's walk along the streets, recorded by the phone (开始巡街 / 结束巡街).
    Its id is made on the phone, so re-sent chunks land on the same walk."""
    __tablename__ = "walks"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # the walker's street at the time (NULL for non-representatives): coverage counts only these
    representative_id: Mapped[int | None] = mapped_column(ForeignKey("representatives.id"))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WalkChunk(Base):
    """One uploaded piece of a walk's trace; (walk_id, chunk_no) makes a re-send idempotent."""
    __tablename__ = "walk_chunks"
    walk_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("walks.id"), primary_key=True)
    chunk_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the trace as received (WGS-84), kept for audit and re-matching when streets change
    trace = mapped_column(Geometry("LINESTRING", srid=WGS84, spatial_index=False), nullable=True)
    n_points: Mapped[int] = mapped_column(Integer)
    n_kept: Mapped[int] = mapped_column(Integer)
    # why points were dropped: {"poor_accuracy": n, "impossible_speed": n, ...}
    dropped: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    # sha256 of the normalised chunk: a re-send with different content is refused (409)
    chunk_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (CheckConstraint("chunk_no >= 0", name="walk_chunk_no"),)


class WalkInterval(Base):
    """A stretch of one street that a walk passed along: from_m..to_m metres from the street's start
    (the same measure as Report.position_m). Coverage per road is computed from these rows."""
    __tablename__ = "walk_intervals"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    walk_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    chunk_no: Mapped[int] = mapped_column(Integer)
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    representative_id: Mapped[int | None] = mapped_column(ForeignKey("representatives.id"))
    from_m: Mapped[float] = mapped_column(Double)
    to_m: Mapped[float] = mapped_column(Double)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint("0 <= from_m AND from_m <= to_m", name="walk_interval_measures"),
        CheckConstraint("started_at <= ended_at", name="walk_interval_times"),
        ForeignKeyConstraint(["walk_id", "chunk_no"], ["walk_chunks.walk_id", "walk_chunks.chunk_no"]),
        # coverage asks "which stretches of street S were walked in period P"
        Index("walk_intervals_street_time", "street_id", "started_at"),
        Index("walk_intervals_user_time", "user_id", "started_at"),
        Index("walk_intervals_street_rep_end", "street_id", "representative_id", "ended_at"),  # migration 0009
    )


class Photo(Base):
    """A photo of a report. The original is kept byte for byte as evidence (served to admins only);
    the published copy is what everyone else sees: oriented, resized, watermarked, no metadata."""
    __tablename__ = "photos"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), server_default="before")
    seq: Mapped[int] = mapped_column(Integer, server_default="0")  # order within (report, kind)
    original_path: Mapped[str | None] = mapped_column(Text)   # relative to PHOTO_DIR
    published_path: Mapped[str] = mapped_column(Text)          # relative to PHOTO_DIR
    sha256: Mapped[str | None] = mapped_column(String(64))     # of the original bytes
    size_bytes: Mapped[int | None] = mapped_column(Integer)    # of the original
    width: Mapped[int | None] = mapped_column(Integer)         # of the published copy
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    taken_at_source: Mapped[str | None] = mapped_column(String(16))  # 'exif' or 'received'
    # a unit's feedback photo belongs to the event that brought it (progress, handled)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("report_events.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        CheckConstraint(one_of("kind", PHOTO_KINDS), name="photo_kind"),
        CheckConstraint("taken_at_source IS NULL OR taken_at_source IN ('exif', 'received')",
                        name="photo_taken_at_source"),
        UniqueConstraint("report_id", "kind", "seq", name="photo_report_kind_seq"),
    )


class Notification(Base):
    """One line of a user's in-app inbox, and (emailed_at) the e-mail outbox: domain/notifications.py."""
    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"))
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    emailed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    email_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(Text, unique=True)
    __table_args__ = (
        Index("notifications_user_unread", "user_id", "created_at", postgresql_where=text("read_at IS NULL")),
        Index("notifications_user_time", "user_id", "created_at"),
    )


class ReportCell(Base):
    """The console map's aggregates (migration 0007; domain/map_cells.py): reports counted per map
    cell of a zoom level, street, lead unit, status, album class and month ('-infinity': all months), kept in
    step with `reports` by a trigger in the writing transaction. Never written by the app."""
    __tablename__ = "report_cells"
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    cx: Mapped[int] = mapped_column(Integer, primary_key=True)
    cy: Mapped[int] = mapped_column(Integer, primary_key=True)
    street_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the lead unit
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    class_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    sum_lon: Mapped[float] = mapped_column(Double)
    sum_lat: Mapped[float] = mapped_column(Double)


# --- coverage per road ([4]; domain/coverage.py, migration 0009) ------------------------------------

class StreetCrossing(Base):
    """Where another key street meets a street (or the street's own named end), in metres from its
    start: computed by PostGIS from the geometry (street_crossings_refresh(), re-run by a trigger on
    every change of `streets`). Never written by the app."""
    __tablename__ = "street_crossings"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    street_id: Mapped[int] = mapped_column(Integer)
    position_m: Mapped[float] = mapped_column(Double)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    other_street_id: Mapped[int | None] = mapped_column(Integer)   # NULL: the street's own end
    __table_args__ = (Index("street_crossings_street", "street_id", "position_m"),)


class CoverageMark(Base):
    """Reports per street, reporter and local day (grain 1) or month (grain 2): the 10 m buckets
    along the street holding one (an int4multirange), how many reports and problems. Kept in step with
    `reports` by a trigger in the writing transaction (coverage_marks_rebuild() after a bulk load).
    Never written by the app."""
    __tablename__ = "coverage_marks"
    street_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grain: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    reporter_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    marks = mapped_column(INT4MULTIRANGE, nullable=False)   # read through SQL (domain/coverage.py)
    reports: Mapped[int] = mapped_column(Integer)
    problems: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("coverage_marks_reporter", "street_id", "reporter_id", "grain", "day"),)



# --- the bimonthly album ([4]; domain/album.py, migration 0010) ----------------------------------------


class Album(Base):
    """An issued album (问题图册 第N期): numbered in the order issued, for a two-month period; what it
    said is kept as issued (its entries' snapshot, the PDF named by its SHA-256 under PHOTO_DIR)."""
    __tablename__ = "albums"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    period_from: Mapped[dt.date] = mapped_column(Date, unique=True)
    period_to: Mapped[dt.date] = mapped_column(Date)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    n_entries: Mapped[int] = mapped_column(Integer)
    # the cover and the summary table as issued: counts by class, street and unit; handled / total
    summary: Mapped[dict] = mapped_column(JSONB)
    pdf_path: Mapped[str] = mapped_column(Text)           # relative to PHOTO_DIR
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    pdf_size: Mapped[int] = mapped_column(Integer)
    pdf_pages: Mapped[int] = mapped_column(Integer)
    issued_by = relationship("User")
    __table_args__ = (
        CheckConstraint("number >= 1", name="album_number"),
        CheckConstraint("period_from < period_to", name="album_period"),
        # (migration 0010 adds: no two albums' periods overlap, an EXCLUDE constraint on daterange)
    )


class AlbumEntry(Base):
    """One problem of an issued album, as it was printed: `data` is the snapshot (texts, status,
    unit, deadline, photos, the small map's SVG). A report is in one album at most."""
    __tablename__ = "album_entries"
    album_id: Mapped[int] = mapped_column(ForeignKey("albums.id", ondelete="CASCADE"), primary_key=True)
    no: Mapped[int] = mapped_column(Integer, primary_key=True)   # its number in the album, from 1
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), unique=True)
    class_code: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict] = mapped_column(JSONB)


class RateLimit(Base):
    """A sign-in limit's count in its fixed window (geoapp/ratelimit_store.py; migration 0011):
    shared by every worker, written only through INSERT … ON CONFLICT in autocommit."""
    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint("count >= 0", name="rate_limit_count"),
        Index("rate_limits_expires_at", "expires_at"),  # the cleanup finds ended windows by it
    )


# --- the audit trail ([6]; geoapp/domain/audit.py, migration 0013) ----------------------------------

class AuditLog(Base):
    """One important action or security event: who (actor, role), from where (the real client
    address, the request id), what (event) on which object, with what outcome and details. Each row
    carries the SHA-256 of its predecessor's hash and its own content (prev_hash, hash). Partitioned
    by month on `at` (migration 0013 makes the partitions); written only by domain/audit.record, the
    app's role may INSERT and SELECT only. No foreign key on actor_id: removing a user must neither
    touch nor be blocked by the trail."""
    __tablename__ = "audit_log"
    # the primary key of a partitioned table must include the partition key: (at, id)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True,
                                            server_default=func.clock_timestamp())
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False,
                                    server_default=text("nextval('audit_log_id_seq'::regclass)"))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(Text)
    client_addr: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    event: Mapped[str] = mapped_column(Text)
    object_type: Mapped[str | None] = mapped_column(Text)
    object_id: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    prev_hash: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        CheckConstraint("outcome IN ('ok', 'refused', 'failed')", name="audit_outcome"),
        Index("audit_log_id", "id"),                   # the chain's last row, and the walk in id order
        Index("audit_log_event_at", "event", "at"),
        Index("audit_log_actor_at", "actor_id", "at"),
        {"postgresql_partition_by": "RANGE (at)"},
    )


class AuditAnchor(Base):
    """Where the chain starts after old months were exported and dropped (`geoapp audit export`):
    the last exported row's id and hash, and the file they went to. Written by the owner only."""
    __tablename__ = "audit_anchor"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    before: Mapped[dt.date] = mapped_column(Date)
    last_id: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(BigInteger)
    file: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(Text)


# --- the security administrator's policy ([6]; domain/security_policy.py, migration 0015) -----------

class SecurityPolicy(Base):
    """等保 2.0's password and session policy: one row (id = 1), set on /admin/security. No foreign
    key on updated_by: removing a user must neither touch nor be blocked by the policy."""
    __tablename__ = "security_policy"
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False, server_default="1")
    password_max_age_days: Mapped[int] = mapped_column(Integer, server_default="90")   # 0: never expires
    password_history: Mapped[int] = mapped_column(Integer, server_default="5")         # the last N, not again
    lockout_failures: Mapped[int] = mapped_column(Integer, server_default="5")
    lockout_minutes: Mapped[int] = mapped_column(Integer, server_default="30")
    idle_timeout_minutes: Mapped[int] = mapped_column(Integer, server_default="30")    # staff sessions
    totp_required_for_administrators: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        CheckConstraint("id = 1", name="security_policy_one_row"),
        CheckConstraint("password_max_age_days BETWEEN 0 AND 365", name="security_policy_max_age"),
        CheckConstraint("password_history BETWEEN 0 AND 24", name="security_policy_history"),
        CheckConstraint("lockout_failures BETWEEN 3 AND 20", name="security_policy_lockout_failures"),
        CheckConstraint("lockout_minutes BETWEEN 1 AND 1440", name="security_policy_lockout_minutes"),
        CheckConstraint("idle_timeout_minutes BETWEEN 5 AND 480", name="security_policy_idle_timeout"),
    )


class PasswordHistory(Base):
    """A password hash the user had before (their current one is users.password_hash), with when it
    was set: a new password may not be one of the last N."""
    __tablename__ = "password_history"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    password_hash: Mapped[str] = mapped_column(Text)
    set_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("password_history_user_time", "user_id", "set_at"),)
