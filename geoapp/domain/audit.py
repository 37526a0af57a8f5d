"""The audit trail (安全审计, GB/T 22239-2019): who did what, from where, to which object, with what
outcome — one row in `audit_log` per important action or security event (migration 0013).

Writing:
- `record(session_or_conn, ...)` writes the row in the caller's transaction: it commits with the
  change it records, or not at all. With an ORM Session the row is written just before that
  session's COMMIT (a `before_commit` hook): the chain's lock (below) is then held for an instant,
  and no report row is locked after it, so a lifecycle action that locks reports can never deadlock
  with another writer waiting for the chain. With a Connection it is written at once.
- `record_independently(engine, ...)` writes it in a short transaction of its own connection: for
  failures (a refused sign-in, whose request writes nothing or rolls back) and for reads (an
  export, an original photo, a report opened). A rollback of the request cannot erase it. Never call
  it while a transaction of the same thread already holds the chain's lock (a Connection `record`
  not yet committed): the second connection would wait for the first forever.

Tamper evidence: each row's `hash` is SHA-256(prev_hash + the row's canonical JSON) and its
`prev_hash` is the previous row's hash (GENESIS for the first, or the export's anchor). Writers take
`pg_advisory_xact_lock(CHAIN_LOCK)`, read the last row's hash (the highest id), then take the id
from the sequence inside the lock: ids increase in chain order, and a rolled-back writer leaves only
a gap, which `verify` allows (it follows prev_hash, not id arithmetic). `verify` finds a row changed,
inserted or removed anywhere but at the very end (a removed last row leaves a valid shorter chain;
the anchor and the file of an export, and backups, bound that).

Retention: kept at least KEEP_DAYS (等保: ≥ 6 months), partitioned by month; `export_months` writes
whole old months to a file and only then detaches and drops their partitions (as the owner).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import event as sa_event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from .periods import next_month as _next_month

# --- the events ---------------------------------------------------------------------------------

SIGN_IN = "sign_in"                        # a password accepted, a session begun
SIGN_IN_FAILED = "sign_in_failed"          # a wrong name or password (independent)
SIGN_IN_LOCKED = "sign_in_locked"          # lockout: the throttle refused a password check (independent)
SIGN_OUT = "sign_out"
PASSWORD_CHANGED = "password_changed"      # one's own change (and a wrong current password: failed)
PASSWORD_SET = "password_set"              # an operator's `geoapp users set-password`
API_KEY_ISSUED = "api_key_issued"
API_KEY_REVOKED = "api_key_revoked"
REPORT_ACTION = "report_action"            # a lifecycle step (domain/lifecycle.perform), with its event id
REPORT_VIEW = "report_view"                # staff opened a report's page (read audit, independent)
EXPORT = "export"                          # an open-data export: format, filters, rows (independent)
ALBUM_ISSUE = "album_issue"
ALBUM_DOWNLOAD = "album_download"          # an issued album's PDF (independent)
PHOTO_ORIGINAL_VIEW = "photo_original_view"  # an original, unwatermarked photo (independent)
USER_CREATED = "user_created"              # the system administrator's work (geoapp/core/administration.py)
USER_DISABLED = "user_disabled"
USER_ENABLED = "user_enabled"
USER_EXPIRY_SET = "user_expiry_set"
PASSWORD_RESET = "password_reset"          # a one-time password, to be changed at next sign-in
ROLE_CHANGED = "role_changed"
ASSIGNMENT_CHANGED = "assignment_changed"  # a handler's unit, a user's representative record
UNIT_CHANGED = "unit_changed"              # a unit's contacts, e-mail, active
STREET_HANDED_OVER = "street_handed_over"  # a street's representative changed on a date
CITY_DATA_LOADED = "city_data_loaded"      # gis_data/ reloaded from /admin/city-data (what changed)
AUDIT_READ = "audit_read"                  # the audit administrator read or exported the trail
AUDIT_EXPORT = "audit_export"              # old months written to a file and dropped (`geoapp audit export`)
POLICY_CHANGED = "policy_changed"          # the security administrator saved the policy: before/after
TOTP_ENABLED = "totp_enabled"              # a second factor put in use (domain/second_factor.py)
TOTP_DISABLED = "totp_disabled"            # removed (a wrong password or code given for it: failed)
SIGN_IN_SECOND_FACTOR_FAILED = "sign_in_second_factor_failed"  # a wrong or reused code (independent)

EVENTS = (SIGN_IN, SIGN_IN_FAILED, SIGN_IN_LOCKED, SIGN_OUT, PASSWORD_CHANGED, PASSWORD_SET, API_KEY_ISSUED, API_KEY_REVOKED,
          USER_CREATED, USER_DISABLED, USER_ENABLED, USER_EXPIRY_SET, PASSWORD_RESET, ROLE_CHANGED,
          ASSIGNMENT_CHANGED, UNIT_CHANGED, STREET_HANDED_OVER, CITY_DATA_LOADED, REPORT_ACTION, REPORT_VIEW, EXPORT, ALBUM_ISSUE, ALBUM_DOWNLOAD, PHOTO_ORIGINAL_VIEW, AUDIT_READ,
          AUDIT_EXPORT, POLICY_CHANGED, TOTP_ENABLED, TOTP_DISABLED, SIGN_IN_SECOND_FACTOR_FAILED)
OUTCOMES = ("ok", "refused", "failed")  # the CHECK constraint audit_outcome (migration 0013)

# the key of the chain's advisory lock: any constant no other lock of the app uses ("audit" in ASCII)
CHAIN_LOCK = 0x6175646974
GENESIS = "0" * 64       # the prev_hash of the very first row
KEEP_DAYS = 180          # 等保 2.0: audit records kept at least six months
TEXT_LIMIT = 200         # a client-supplied text (an attempted username) is cut to this
FIELDS = ("id", "at", "actor_id", "actor", "role", "client_addr", "request_id", "event", "object_type",
          "object_id", "outcome", "details")


@dataclass(frozen=True)
class Actor:
    """Who acts, as the trail records it. The web layer makes it in one place
    (geoapp/web/auth.audit_actor); the CLI and background work use `cli` or `of_viewer`."""
    user_id: int | None = None
    username: str | None = None
    role: str | None = None
    client_addr: str | None = None
    request_id: str | None = None

    @classmethod
    def of_viewer(cls, viewer) -> "Actor":
        """A domain Viewer with no request around it (the demo, a group merge called without one)."""
        return cls(user_id=viewer.user_id, role=viewer.role)

    @classmethod
    def of_user(cls, user) -> "Actor":
        return cls(user_id=user.id, username=user.username, role=user.role)

    @classmethod
    def cli(cls) -> "Actor":
        """The operator at the server's command line: the OS account is all there is to name (root,
        through scripts/geoapp-admin's runuser, shows as geoapp; SUDO_USER when sudo was used)."""
        import getpass

        try:
            who = os.environ.get("SUDO_USER") or getpass.getuser()
        except (KeyError, OSError):  # a container's uid with no passwd entry
            who = str(os.getuid())
        return cls(username=f"cli:{who}", role="cli")


def _clean(value: Any) -> Any:
    """What PostgreSQL stores as given: strings without NUL (text and jsonb refuse it), cut to a size."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _short(value: Any) -> str | None:
    if value is None:
        return None
    return _clean(str(value))[:TEXT_LIMIT]


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def canonical(row: dict) -> str:
    """The row's content as hashed: its FIELDS as compact JSON with sorted keys, the time as ISO 8601
    in UTC with the zone. `details` is taken as PostgreSQL gives it back (jsonb), so the writer and
    `verify` hash the same value whatever jsonb normalised (key order, number spelling)."""
    fields = {name: row[name] for name in FIELDS}
    fields["at"] = _iso(row["at"])
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(prev_hash: str, row: dict) -> str:
    return hashlib.sha256((prev_hash + canonical(row)).encode("utf-8")).hexdigest()


# --- writing ------------------------------------------------------------------------------------

_LAST_HASH = """COALESCE((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1),
                         (SELECT last_hash FROM audit_anchor ORDER BY id DESC LIMIT 1), :genesis)"""
_INSERT = text("INSERT INTO audit_log (id, at, actor_id, actor, role, client_addr, request_id, event, "
               "object_type, object_id, outcome, details, prev_hash, hash) VALUES (:id, :at, :actor_id, :actor, "
               ":role, :client_addr, :request_id, :event, :object_type, :object_id, :outcome, "
               "CAST(:details AS jsonb), :prev_hash, :hash)")


def _entry(actor: Actor, event: str, object_type, object_id, outcome: str, details) -> dict:
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}; add it to geoapp.domain.audit.EVENTS")
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome must be one of {OUTCOMES}, not {outcome!r}")
    return {"actor_id": actor.user_id, "actor": _short(actor.username), "role": _short(actor.role),
            "client_addr": _short(actor.client_addr), "request_id": _short(actor.request_id), "event": event,
            "object_type": _short(object_type), "object_id": _short(object_id), "outcome": outcome,
            # through JSON once: what is hashed is plain JSON data (a date becomes its ISO string)
            "details": json.dumps(_clean(json.loads(json.dumps(details or {}, default=str))), ensure_ascii=False)}


def _write(target, entry: dict) -> int:
    """Append one row to the chain, in `target`'s transaction (Session or Connection)."""
    # writers serialise here; the lock ends with the transaction. READ COMMITTED: the next
    # statement's snapshot is taken after the lock, so it sees the previous writer's committed row
    target.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK})
    got = target.execute(text(
        f"SELECT nextval('audit_log_id_seq') AS id, clock_timestamp() AS at, CAST(:details AS jsonb) AS details, "
        f"{_LAST_HASH} AS prev_hash"), {"details": entry["details"], "genesis": GENESIS}).one()
    row = dict(entry, id=got.id, at=got.at, details=got.details)
    target.execute(_INSERT, dict(row, details=entry["details"], prev_hash=got.prev_hash,
                                 hash=row_hash(got.prev_hash, row)))
    return got.id


_PENDING = "geoapp_audit_pending"


def record(target: Session | Connection, actor: Actor, event: str, *, object_type: str | None = None,
           object_id: Any = None, outcome: str = "ok", details: dict | None = None) -> None:
    """One audit row in the caller's transaction (see the module's docstring for when it is written)."""
    entry = _entry(actor, event, object_type, object_id, outcome, details)
    if isinstance(target, Session):
        target.info.setdefault(_PENDING, []).append(entry)
    else:
        _write(target, entry)


@sa_event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    # the rows recorded in this transaction, last thing before COMMIT (a failure here rolls it all back)
    for entry in session.info.pop(_PENDING, []):
        _write(session, entry)


@sa_event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)  # the change was not made: neither was its record


def record_independently(engine: Engine, actor: Actor, event: str, *, object_type: str | None = None,
                         object_id: Any = None, outcome: str = "ok", details: dict | None = None) -> int:
    """One audit row committed at once on a connection of its own (failures and reads): the id."""
    entry = _entry(actor, event, object_type, object_id, outcome, details)
    with engine.begin() as conn:
        return _write(conn, entry)


# --- checking the chain -------------------------------------------------------------------------

@dataclass(frozen=True)
class Anchor:
    """Where the chain starts after an export: the last exported row."""
    last_id: int
    last_hash: str
    before: dt.date
    file: str


def anchor(conn) -> Anchor | None:
    row = conn.execute(text("SELECT last_id, last_hash, before, file FROM audit_anchor ORDER BY id DESC LIMIT 1")
                       ).one_or_none()
    return Anchor(*row) if row is not None else None


_SELECT_ROWS = "SELECT " + ", ".join(FIELDS) + ", prev_hash, hash FROM audit_log"


def _rows(conn, where: str = "", params: dict | None = None, batch: int = 2000) -> Iterator[dict]:
    """Rows in id order, read by keyset in batches (a year of rows never sits in memory)."""
    last = None
    while True:
        cond = [where] if where else []
        if last is not None:
            cond.append("id > :_last")
        sql = _SELECT_ROWS + (" WHERE " + " AND ".join(cond) if cond else "") + " ORDER BY id LIMIT :_n"
        got = [dict(r._mapping) for r in conn.execute(text(sql), dict(params or {}, _last=last, _n=batch))]
        yield from got
        if len(got) < batch:
            return
        last = got[-1]["id"]


class Verdict:
    """What `verify` found: unpacks as (rows checked, first bad id or None); `anchored` when the
    chain was checked from an export's anchor rather than from GENESIS."""

    def __init__(self, rows: int, first_bad_id: int | None, anchored: Anchor | None):
        self.rows, self.first_bad_id, self.anchored = rows, first_bad_id, anchored

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None

    def __iter__(self):
        return iter((self.rows, self.first_bad_id))

    def __repr__(self):
        return f"Verdict(rows={self.rows}, first_bad_id={self.first_bad_id}, anchored={self.anchored})"


def verify(conn) -> Verdict:
    """Walk the chain in id order: (rows checked, the id of the first row that does not match, or
    None), as a Verdict. A row matches when its prev_hash is its predecessor's hash (the anchor's for the first
    row after an export, GENESIS without one) and its hash is that of its own content."""
    start = anchor(conn)
    prev = start.last_hash if start else GENESIS
    floor = start.last_id if start else 0
    checked = 0
    for row in _rows(conn):
        checked += 1
        if row["id"] <= floor or row["prev_hash"] != prev or row_hash(prev, row) != row["hash"]:
            return Verdict(checked, row["id"], start)
        prev = row["hash"]
    return Verdict(checked, None, start)


# --- reading (the audit administrator's API and page) ---------------------------------------------

@dataclass(frozen=True)
class AuditQuery:
    event: str | None = None
    username: str | None = None
    start: dt.datetime | None = None    # at >= start
    end: dt.datetime | None = None      # at < end
    before_id: int | None = None        # keyset: rows older than this id (pages go newest first)
    limit: int = 100

    def as_details(self) -> dict:
        """The filters as an audit_read row records them."""
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                for k, v in (("event", self.event), ("user", self.username), ("from", self.start),
                             ("to", self.end), ("after", self.before_id)) if v is not None}


def _where(q: AuditQuery) -> tuple[str, dict]:
    cond, params = [], {}
    for column, value, op in (("event", q.event, "="), ("actor", q.username, "="), ("at", q.start, ">="),
                              ("at", q.end, "<"), ("id", q.before_id, "<")):
        if value is not None:
            name = f"p{len(params)}"
            cond.append(f"{column} {op} :{name}")
            params[name] = value
    return (" WHERE " + " AND ".join(cond)) if cond else "", params


def search(conn, q: AuditQuery) -> list[dict]:
    """One page of rows matching `q`, newest first (by id)."""
    where, params = _where(q)
    return [dict(r._mapping) for r in conn.execute(
        text(_SELECT_ROWS + where + " ORDER BY id DESC LIMIT :_n"), dict(params, _n=q.limit))]


def iter_search(conn, q: AuditQuery, batch: int = 2000) -> Iterator[dict]:
    """Every row matching `q` (no limit), newest first, read by keyset in batches (the CSV)."""
    while True:
        page = search(conn, AuditQuery(q.event, q.username, q.start, q.end, q.before_id, batch))
        yield from page
        if len(page) < batch:
            return
        q = AuditQuery(q.event, q.username, q.start, q.end, page[-1]["id"], batch)


def as_json(row: dict) -> dict:
    """A row as the API and the export file give it."""
    return {name: (_iso(row[name]) if name == "at" else row[name]) for name in FIELDS + ("prev_hash", "hash")}


# --- partitions and export (the owner's work: `geoapp audit partitions` / `export`) ------------------

_PARTITION = re.compile(r"audit_log_p(\d{4})_(\d{2})")


def ensure_partitions(owner_conn, months_ahead: int = 23) -> int:
    """This month's and the next `months_ahead` months' partitions (and those of any month the
    DEFAULT partition holds rows of): how many were made."""
    return owner_conn.execute(text("SELECT audit_log_ensure_partitions(:n)"), {"n": months_ahead}).scalar_one()


def month_partitions(conn) -> list[tuple[dt.date, str]]:
    """(first day of the month, partition name) of every monthly partition, oldest first."""
    names = conn.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                              "WHERE i.inhparent = 'audit_log'::regclass")).scalars()
    found = [(dt.date(int(m.group(1)), int(m.group(2)), 1), name)
             for name in names if (m := _PARTITION.fullmatch(name))]
    return sorted(found)


class ExportRefused(Exception):
    """The export would lose evidence or keep too little; nothing was written or dropped."""


@dataclass(frozen=True)
class Exported:
    months: list[str]
    rows: int
    last_id: int | None
    last_hash: str | None
    file: Path
    file_sha256: str | None


def export_months(owner_engine: Engine, before: dt.date, to: Path, *, actor: Actor,
                  today: dt.date | None = None) -> Exported:
    """Write every row of the whole months before `before` to `to` as JSON lines (with their
    prev_hash and hash), fsync it, and only then, in one transaction: record the new anchor, detach
    and drop those months' partitions, and record the export in the chain. Refused (ExportRefused,
    nothing changed) when `before` would keep less than KEEP_DAYS, when `to` exists, when the chain
    does not verify, or when a later month holds a row older in the chain than an exported one."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if before > today - dt.timedelta(days=KEEP_DAYS):
        raise ExportRefused(f"the trail is kept at least {KEEP_DAYS} days: --before may be "
                            f"{today - dt.timedelta(days=KEEP_DAYS)} at the latest")
    to = Path(to)
    if to.exists():
        raise ExportRefused(f"{to} exists; give a new file")
    with owner_engine.begin() as conn:
        ensure_partitions(conn, 0)  # rows still in the DEFAULT partition go to their month's first
    with owner_engine.connect() as conn:
        months = [(first, name) for first, name in month_partitions(conn) if _next_month(first) <= before]
        checked, bad = verify(conn)
        if bad is not None:
            raise ExportRefused(f"the chain does not verify (first bad row {bad}): nothing exported")
        conn.rollback()
    if not months:
        return Exported([], 0, None, None, to, None)
    names = [name for _first, name in months]
    digest = hashlib.sha256()
    rows, last = 0, None
    tmp = to.with_name(to.name + ".partial")
    with owner_engine.connect() as conn, open(tmp, "w", encoding="utf-8") as out:
        # one REPEATABLE READ snapshot: the file holds exactly the rows the partitions hold
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        upper = dt.datetime.combine(_next_month(months[-1][0]), dt.time(), dt.timezone.utc)
        for row in _rows(conn, "at < :upper", {"upper": upper}):
            line = json.dumps(as_json(row), ensure_ascii=False, sort_keys=True) + "\n"
            out.write(line)
            digest.update(line.encode("utf-8"))
            rows, last = rows + 1, row
        later = conn.execute(text("SELECT min(id) FROM audit_log WHERE at >= :upper"), {"upper": upper}).scalar()
        conn.rollback()
        out.flush()
        os.fsync(out.fileno())
    if last is not None and later is not None and later < last["id"]:
        tmp.unlink()
        raise ExportRefused(f"row {later} of a later month precedes exported row {last['id']} in the chain "
                            "(the clock went back?): nothing exported")
    os.replace(tmp, to)
    dir_fd = os.open(to.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself is durable before anything is dropped
    finally:
        os.close(dir_fd)
    with owner_engine.begin() as conn:
        if last is not None:
            conn.execute(text("INSERT INTO audit_anchor (before, last_id, last_hash, rows, file, file_sha256) "
                              "VALUES (:b, :i, :h, :n, :f, :s)"),
                         {"b": before, "i": last["id"], "h": last["hash"], "n": rows, "f": str(to),
                          "s": digest.hexdigest()})
        for name in names:
            conn.execute(text(f'ALTER TABLE audit_log DETACH PARTITION "{name}"'))
            conn.execute(text(f'DROP TABLE "{name}"'))
        record(conn, actor=actor, event=AUDIT_EXPORT, object_type="audit_log", object_id=before.isoformat(),
               details={"months": [n.removeprefix("audit_log_p") for n in names], "rows": rows,
                        "last_id": last["id"] if last else None, "last_hash": last["hash"] if last else None,
                        "file": str(to), "file_sha256": digest.hexdigest()})
    return Exported([n.removeprefix("audit_log_p") for n in names], rows, last["id"] if last else None,
                    last["hash"] if last else None, to, digest.hexdigest())
