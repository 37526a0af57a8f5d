"""Who hears about what happened to a report: the in-app inbox, and the e-mail outbox beside it.

The lifecycle (domain/lifecycle.py) calls `notify_transition` inside its transaction, so a
notification exists exactly when the change it tells of was committed. Delivery by e-mail (or,
later, a WeChat Work webhook) reads the outbox afterwards (`emailed_at IS NULL`) and never touches
the lifecycle.
"""
from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Iterable, Protocol

from sqlalchemy import and_, case, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, aliased

from ..models import Category, Notification, Report, Street, User
from ..translations import N_, translate
from .reports import OVERDUE

log = logging.getLogger(__name__)

# kind -> (msgid of the inbox line, who receives it). Receivers: "lead_unit" (the lead unit's
# handlers), "units" (lead and cooperating), "dispatchers", "reporters" (the reporter and those of
# the reports merged into it).
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dispatched": (N_("新派遣的问题"), ("units",)),
    "returned": (N_("单位回退了问题"), ("dispatchers",)),
    "handled": (N_("问题已办结，请评价"), ("reporters",)),
    "reopened": (N_("问题被退回返工"), ("lead_unit", "dispatchers")),
    "overdue": (N_("问题已超期"), ("lead_unit", "dispatchers")),
    "rejected": (N_("问题不予受理"), ("reporters",)),
    "merged": (N_("问题已与重复问题合并"), ("reporters",)),
    "extension_requested": (N_("单位申请延期"), ("dispatchers",)),
    "extension_decided": (N_("延期申请已处理"), ("lead_unit",)),
}


def recipients(session: Session, rec: dict[str, Any], who: Iterable[str]) -> set[int]:
    conditions = []
    for group in who:
        if group == "dispatchers":
            conditions.append(User.role == "dispatcher")
        elif group == "lead_unit":
            conditions.append((User.role == "unit_handler") & (User.unit_id == rec["unit_id"]))
        elif group == "units":
            units = [rec["unit_id"], *rec.get("cooperating_unit_ids", ())]
            conditions.append((User.role == "unit_handler") & User.unit_id.in_(units))
        elif group == "reporters":
            conditions.append(User.id.in_([rec["reporter_id"], *rec.get("merged_reporter_ids", ())]))
    if not conditions:
        return set()
    return set(session.execute(select(User.id).where(or_(*conditions))).scalars())


def notify_transition(session: Session, rec: dict[str, Any], kind: str, *, actor_id: int | None,
                      data: dict[str, Any] | None = None, dedupe: str | None = None) -> int:
    """Add one inbox line per receiver (not the one who acted); how many were added."""
    _msgid, who = KINDS[kind]
    users = recipients(session, rec, who) - ({actor_id} if actor_id is not None else set())
    if not users:
        return 0
    payload = {"status": rec["status"], **({k: v for k, v in (data or {}).items()
                                            if isinstance(v, (str, int, float, bool)) or v is None})}
    rows = [{"user_id": u, "report_id": rec["id"], "kind": kind, "data": payload,
             "dedupe_key": f"{dedupe}:{u}" if dedupe else None} for u in sorted(users)]
    if dedupe:
        result = session.execute(pg_insert(Notification).values(rows).on_conflict_do_nothing(
            index_elements=["dedupe_key"]))
        return result.rowcount
    session.execute(insert(Notification), rows)
    return len(rows)


# --- the overdue sweep ---------------------------------------------------------------------------

def notify_overdue(session: Session, now: dt.datetime) -> int:
    """One 'overdue' line per overdue report, receiver (the lead unit's handlers and the dispatchers)
    and deadline, in one INSERT … SELECT; a sweep run twice adds nothing, and a new deadline (an
    extension, a reopening) that passes in turn is told again. Late is reports.OVERDUE (the one
    definition, against the database's clock); `now` stamps the lines. How many were added.
    The receivers are KINDS["overdue"]'s, written as one join here so the sweep stays one statement."""
    handler = aliased(User)
    # the deadline the report is late against: the unit's, or a ledger item's promised date
    deadline = case((Report.status == "ledger", func.to_char(Report.ledger_promised_on, "YYYY-MM-DD")),
                    else_=func.to_char(func.timezone("UTC", Report.deadline_at), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
    receivers = or_(handler.role == "dispatcher",
                    and_(handler.role == "unit_handler", handler.unit_id == Report.unit_id))
    rows = (select(handler.id, Report.id, literal("overdue"),
                   func.jsonb_build_object("status", Report.status, "deadline", deadline),
                   literal(now),
                   func.concat("overdue:", Report.id, ":", deadline, ":", handler.id))
            .select_from(Report).join(handler, receivers)
            .where(OVERDUE))
    result = session.execute(
        pg_insert(Notification)
        .from_select(["user_id", "report_id", "kind", "data", "created_at", "dedupe_key"], rows)
        .on_conflict_do_nothing(index_elements=["dedupe_key"]))
    return result.rowcount


# --- the inbox -----------------------------------------------------------------------------------

INBOX_PAGE = 50

_item = aliased(Category)


def inbox(session: Session, user_id: int, *, unread_only: bool = False, limit: int = INBOX_PAGE,
          offset: int = 0) -> list[dict[str, Any]]:
    """A user's notifications, newest first, with what the line needs to say which report it is."""
    stmt = (select(Notification.id, Notification.report_id, Notification.kind, Notification.data,
                   Notification.created_at, Notification.read_at, Report.status.label("report_status"),
                   _item.code.label("category_code"), _item.name.label("category_name"),
                   _item.name_en.label("category_name_en"), Street.name.label("street_name"),
                   Street.name_en.label("street_name_en"))
            .join(Report, Report.id == Notification.report_id)
            .join(_item, _item.id == Report.category_id)
            .join(Street, Street.id == Report.street_id)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit).offset(offset))
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return [dict(r._mapping) for r in session.execute(stmt)]


def unread_count(session: Session, user_id: int) -> int:
    return session.execute(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))).scalar_one()


def get_notification(session: Session, user_id: int, notification_id: int) -> dict[str, Any] | None:
    """One of this user's notifications (someone else's is None, as if it did not exist)."""
    row = session.execute(select(Notification.id, Notification.report_id, Notification.kind,
                                 Notification.read_at).where(
        Notification.id == notification_id, Notification.user_id == user_id)).one_or_none()
    return dict(row._mapping) if row else None


def mark_read(session: Session, user_id: int, ids: Iterable[int] | None = None,
              now: dt.datetime | None = None) -> int:
    """Mark this user's notifications read: the given ids (others' ids are ignored), or all of them."""
    stmt = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if ids is not None:
        ids = list(ids)
        if not ids:
            return 0
        stmt = stmt.where(Notification.id.in_(ids))
    return session.execute(stmt.values(read_at=now or func.now())).rowcount


def line(kind: str, lang: str | None = None) -> str:
    """What an inbox line says, in the reader's language."""
    return translate(KINDS[kind][0], lang) if kind in KINDS else kind


# --- delivery: the outbox, and who carries it ----------------------------------------------------
# The lifecycle only writes notifications; a Sender carries them out of the app. SMTP is the one
# built; a WeChat Work (企业微信) webhook would be another class with the same `deliver`, chosen in
# `sender_from_settings` — nothing in the lifecycle or the inbox changes for it.

@dataclass(frozen=True)
class Message:
    """One notification, ready to send: to whom, and what it says (Chinese: the city's language)."""
    notification_id: int
    username: str
    display_name: str
    email: str
    subject: str
    body: str
    report_id: int
    path: str  # the report's page for this user's role, relative to the site


class Sender(Protocol):
    def deliver(self, message: Message) -> None:
        """Send it, or raise: SenderUnavailable when nothing can be sent now (stop the run), any
        other exception when only this message failed."""


class SenderUnavailable(Exception):
    """The channel is down (SMTP server unreachable, refused our login): retry everything later."""


class SmtpSender:
    def __init__(self, host: str, port: int = 25, from_addr: str = "", user: str = "", password: str = "",
                 starttls: bool = False, timeout: float = 10.0):
        self.host, self.port, self.from_addr = host, port, from_addr or f"geoapp@{host}"
        self.user, self.password, self.starttls, self.timeout = user, password, starttls, timeout

    def deliver(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.from_addr, message.email, message.subject
        mail.set_content(message.body)
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except OSError as exc:
            raise SenderUnavailable(f"SMTP {self.host}:{self.port}: {exc}") from exc
        with smtp:
            try:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
            except (smtplib.SMTPException, OSError) as exc:
                raise SenderUnavailable(f"SMTP {self.host}:{self.port}: {exc}") from exc
            smtp.send_message(mail)


def sender_from_settings(settings) -> Sender | None:
    """The configured channel, or None (no SMTP_HOST: notifications stay in the inbox only)."""
    if not settings.smtp_host:
        return None
    return SmtpSender(settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_user,
                      settings.smtp_password, settings.smtp_starttls)


# Where each role reads a report (the inbox links there too).
REPORT_PAGE_OF_ROLE = {
    "representative": "/reports/{id}",
    "unit_handler": "/unit/reports/{id}",
    "dispatcher": "/console/reports/{id}",
    "admin": "/console/reports/{id}",
}


def report_path(role: str, report_id: int) -> str:
    return REPORT_PAGE_OF_ROLE.get(role, "/reports/{id}").format(id=report_id)


DELIVER_BATCH = 200
# A notification older than this is not e-mailed any more (a user given an address today does not
# receive last year's inbox); it stays in the inbox.
DELIVER_MAX_AGE = dt.timedelta(days=7)


def _message(row, lang: str = "zh") -> Message:
    subject = translate(N_("【随手拍·随时办】问题 #{id}：{what}"), lang).format(id=row.report_id, what=line(row.kind, lang))
    body = translate(N_("{name}：\n\n问题 #{id}（{category}，{street}）：{what}。\n请登录系统查看：{path}\n"), lang).format(
        name=row.display_name, id=row.report_id, category=row.category_name, street=row.street_name,
        what=line(row.kind, lang), path=report_path(row.role, row.report_id))
    return Message(notification_id=row.id, username=row.username, display_name=row.display_name, email=row.email,
                   subject=subject, body=body, report_id=row.report_id, path=report_path(row.role, row.report_id))


def deliver_pending(session: Session, sender: Sender, now: dt.datetime | None = None,
                    batch: int = DELIVER_BATCH) -> dict[str, int]:
    """Send the outbox (not yet e-mailed, to users with an address) through `sender`: each sent one
    gets emailed_at; a failed one keeps emailed_at NULL with its email_error, so the next run tries
    it again. Rows are locked (SKIP LOCKED), so two runners never send one twice. The caller commits."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rows = session.execute(
        select(Notification.id, Notification.report_id, Notification.kind, User.username, User.display_name,
               User.email, User.role, _item.name.label("category_name"), Street.name.label("street_name"))
        .join(User, User.id == Notification.user_id)
        .join(Report, Report.id == Notification.report_id)
        .join(_item, _item.id == Report.category_id)
        .join(Street, Street.id == Report.street_id)
        .where(Notification.emailed_at.is_(None), User.email.is_not(None), User.email != "",
               Notification.created_at > now - DELIVER_MAX_AGE)
        .order_by(Notification.id).limit(batch)
        .with_for_update(of=Notification, skip_locked=True)).all()
    counts = {"sent": 0, "failed": 0, "left": 0}
    for i, row in enumerate(rows):
        try:
            sender.deliver(_message(row))
        except SenderUnavailable as exc:
            _failed(session, row.id, exc)
            counts["failed"] += 1
            counts["left"] = len(rows) - i - 1
            log.warning("notifications: sender unavailable, %d left for the next run: %s", counts["left"], exc)
            break
        except Exception as exc:  # this message only (a refused address…): the others still go
            _failed(session, row.id, exc)
            counts["failed"] += 1
            continue
        session.execute(update(Notification).where(Notification.id == row.id)
                        .values(emailed_at=now, email_error=None))
        counts["sent"] += 1
    return counts


def _failed(session: Session, notification_id: int, exc: Exception) -> None:
    session.execute(update(Notification).where(Notification.id == notification_id)
                    .values(email_error=f"{type(exc).__name__}: {exc}"[:500]))


def run(db, settings, now: dt.datetime | None = None) -> dict[str, int]:
    """One round of background work (`geoapp notify run`, and serve's thread): the overdue sweep in
    its own transaction, then the outbox in another, so a slow SMTP server never holds the sweep."""
    now = now or dt.datetime.now(dt.timezone.utc)
    with db.transaction() as session:
        overdue = notify_overdue(session, now)
    counts = {"overdue": overdue, "sent": 0, "failed": 0, "left": 0}
    sender = sender_from_settings(settings)
    if sender is not None:
        with db.transaction() as session:
            counts |= deliver_pending(session, sender, now)
    return counts
