"""The `geoapp` command: Flask's CLI plus db, gis, demo and users subcommands."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup  # AppGroup: its commands run inside the app context

from .config import PROJECT_ROOT
from .db import alembic_config  # noqa: F401 - here too for the tests and scripts that import it from cli
from .domain.vocabulary import USER_ROLES as USER_ROLES_CHOICE


def _db():
    return current_app.extensions["geoapp_db"]


def _cli_actor():
    from .domain.audit import Actor

    return Actor.cli()


def owner_alembic_config():
    """The migrations as the installed settings run them: as the owner, granting the app's role."""
    from .db_roles import app_role_for

    s = current_app.config["GEOAPP"]
    return alembic_config(s.owner_database_url, app_role_for(s.owner_database_url, s.database_url))


db_cli = click.Group("db", help="Database schema (Alembic migrations).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str):
    """Apply migrations up to REVISION (default: head)."""
    from alembic import command

    command.upgrade(owner_alembic_config(), revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str):
    """Revert migrations down to REVISION (e.g. base)."""
    from alembic import command

    command.downgrade(owner_alembic_config(), revision)


gis_cli = click.Group("gis", help="City data in gis_data/.")


@gis_cli.command("load")
@click.argument("directory", default=str(PROJECT_ROOT / "gis_data"), type=click.Path(file_okay=False))
def gis_load(directory: str):
    """Validate DIRECTORY (default gis_data/) and load it in one transaction."""
    from .gis.loader import load_city_data
    from .gis.validate import GisDataError

    try:
        with _db().transaction() as session:
            counts = load_city_data(session, Path(directory), current_app.config["GEOAPP"].city_bbox)
    except GisDataError as exc:
        raise click.ClickException(f"refused, nothing loaded: {exc}") from None
    click.echo(f"loaded {directory}: " + (counts.summary() if counts.changed else "already up to date"))


demo_cli = click.Group("demo", help="Demo users and reports (only with GEOAPP_DEMO=1, the default).")


@demo_cli.command("load")
@click.option("--reports", default=300, show_default=True, help="How many demo reports to create.")
@click.option("--seed", default=2024, show_default=True)
def demo_load(reports: int, seed: int):
    """Create users rep01…rep29, dispatcher, admin and demo reports (once; a second run does nothing).

    With GEOAPP_DEMO=0 it creates nothing, and warns about accounts still using the demo password."""
    from .demo import load_demo

    with _db().transaction() as session:
        message = load_demo(session, current_app.config["GEOAPP"], n_reports=reports, seed=seed)
    click.echo(message)


users_cli = click.Group("users", help="User accounts (the same core functions as the /admin pages).")


def _admin(act, *args, **kw):
    """One act of geoapp/core/administration.py in one transaction, as the operator; a refusal is
    printed in both languages and exits 1."""
    from .domain.errors import DomainError

    try:
        with _db().transaction() as session:
            return act(session, _cli_actor(), *args, **kw)
    except DomainError as exc:
        raise click.ClickException(f"{exc.message('zh')} / {exc.message('en')}") from None


@users_cli.command("api-key")
@click.argument("username")
@click.option("--revoke", is_flag=True, help="Revoke the user's key instead (systems using it stop at once).")
def users_api_key(username: str, revoke: bool):
    """Issue a new API key for USERNAME and print it (only a hash is stored; the old key stops working)."""
    from .core import administration as admin

    if revoke:
        _admin(admin.revoke_api_key, username)
        click.echo(f"API key of {username} revoked")
        return
    click.echo(_admin(admin.issue_api_key, username))


@users_cli.command("create")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="The person's name as pages show it.")
@click.option("--role", required=True, type=click.Choice(USER_ROLES_CHOICE))
@click.option("--unit", help="The unit's code (for unit_handler).")
@click.option("--representative", help="The representative's code, from gis_data/representatives.csv.")
@click.option("--email")
def users_create(username, display_name, role, unit, representative, email):
    """Create an account; prints its one-time password (to be changed at first sign-in)."""
    from .core import administration as admin

    _user, password = _admin(admin.create_user, username, display_name, role,
                             admin.Placement(unit_code=unit, representative_code=representative), email=email)
    click.echo(f"{username}: one-time password {password}")


@users_cli.command("disable")
@click.argument("username")
def users_disable(username):
    """Disable an account: it cannot sign in; its sessions and API key stop at their next request."""
    from .core import administration as admin

    _admin(admin.set_disabled, username, True)
    click.echo(f"{username} disabled")


@users_cli.command("enable")
@click.argument("username")
def users_enable(username):
    from .core import administration as admin

    _admin(admin.set_disabled, username, False)
    click.echo(f"{username} enabled")


@users_cli.command("expire")
@click.argument("username")
@click.argument("day", required=False, type=click.DateTime(formats=["%Y-%m-%d"]))
def users_expire(username, day):
    """The account stops working at the start of DAY (YYYY-MM-DD, the city's time zone); no DAY: never."""
    from .core import administration as admin

    _admin(admin.set_expiry, username, day.date() if day else None, current_app.config["GEOAPP"].display_tz)
    click.echo(f"{username} expires {day.date().isoformat() if day else 'never'}")


@users_cli.command("reset-password")
@click.argument("username")
def users_reset_password(username):
    """A one-time password for USERNAME, printed once; to be changed at next sign-in."""
    from .core import administration as admin

    click.echo(f"{username}: one-time password {_admin(admin.reset_password, username)}")


@users_cli.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(USER_ROLES_CHOICE))
@click.option("--unit")
@click.option("--representative")
def users_role(username, role, unit, representative):
    """Change USERNAME's role (a handler's unit with --unit); their sessions end."""
    from .core import administration as admin

    _admin(admin.change_role, username, role, admin.Placement(unit_code=unit, representative_code=representative))
    click.echo(f"{username}: {role}")


@users_cli.command("set-password")
@click.argument("username")
@click.password_option()
@click.option("--must-change", is_flag=True,
              help="The user must choose a new password at next sign-in (for a password you hand over).")
def users_set_password(username: str, password: str, must_change: bool):
    """Set the web sign-in password of USERNAME (at least 10 characters, not containing the username,
    not a common password). Ends the user's signed-in sessions."""
    from .domain import audit
    from .domain.accounts import WeakPassword, set_password

    try:
        with _db().transaction() as session:
            set_password(session, username, password, must_change=must_change)
            audit.record(session, _cli_actor(), audit.PASSWORD_SET, object_type="user", object_id=username,
                         details={"must_change": must_change})
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    except WeakPassword as exc:
        raise click.ClickException(f"{exc.message('zh')} {exc.message('en')}") from None
    click.echo(f"password set for {username}" + (" (to be changed at next sign-in)" if must_change else ""))


@users_cli.command("init-admin")
@click.option("--username", default="admin", show_default=True)
def users_init_admin(username: str):
    """Create the first admin, with a one-time password printed once, to be changed at first sign-in.

    Prints nothing and changes nothing when an admin exists, so it can run at every start."""
    from .domain.accounts import create_first_admin

    try:
        with _db().transaction() as session:
            password = create_first_admin(session, username)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if password is not None:
        click.echo(f"created the first admin: username {username}, one-time password {password}\n"
                   "It is shown only this once; sign in with it and choose a new password.")


photos_cli = click.Group("photos", help="The photo store.")


@photos_cli.command("sweep")
@click.option("--older-than", "older_than", default=3600, show_default=True, type=click.IntRange(min=60),
              help="Only files at least this many seconds old (younger ones may belong to a report being saved).")
@click.option("--dry-run", is_flag=True, help="List what would be removed, remove nothing.")
def photos_sweep(older_than: int, dry_run: bool):
    """Remove photo files (originals and published copies) that no photos row names: left by
    submissions whose transaction failed, or seemed to."""
    from .domain.report_photos import sweep_orphan_photos

    settings = current_app.config["GEOAPP"]
    with _db().transaction() as session:
        removed = sweep_orphan_photos(session, settings.photo_dir, older_than_s=older_than, dry_run=dry_run)
    for path in removed:
        click.echo(("would remove " if dry_run else "removed ") + str(path))
    click.echo(f"{len(removed)} orphan photo file(s) {'found' if dry_run else 'removed'} in {settings.photo_dir}")


@photos_cli.command("sync")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dest", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--to", "to", type=click.Path(file_okay=False, path_type=Path),
              help="DEST, as an option instead of the second argument.")
def photos_sync(source: Path, dest: Path | None, to: Path | None):
    """Copy into DEST (the standby machine's photo store) every photo, original and album file of
    SOURCE that DEST lacks, each checked against the SHA-256 it is named by; a damaged file is reported
    and not copied (exit status 1). Idempotent: run it every minute. Needs no database."""
    from .domain.errors import DomainError
    from .domain.photo_sync import sync_photo_store

    if (dest is None) == (to is None):
        raise click.UsageError("give DEST, either as the second argument or as --to DEST")
    dest = dest or to
    try:
        result = sync_photo_store(source, dest)
    except DomainError as exc:  # DEST cannot be written (full, read-only): nothing half-written
        raise click.ClickException(f"{exc.message('zh')} {exc.message('en')}") from None
    for rel in result.damaged:
        click.echo(f"damaged, not copied (content does not match its name): {source / rel}", err=True)
    for rel in result.unnamed:
        click.echo(f"not named by its SHA-256, not copied: {source / rel}", err=True)
    click.echo(f"photos sync {source} -> {dest}: {result.summary()}")
    if result.damaged:
        raise SystemExit(1)


map_cli = click.Group("map", help="The console map's aggregates.")


@map_cli.command("rebuild-cells")
def map_rebuild_cells():
    """Recount report_cells from reports (the trigger keeps them in step; run this after a bulk
    load that disabled it)."""
    from .db import Database
    from .domain.map_cells import rebuild

    # the rebuild truncates the aggregate: a job for the schema's owner (scripts/geoapp-admin passes it)
    owner = Database(current_app.config["GEOAPP"].owner_database_url)
    try:
        with owner.transaction() as session:
            rows = rebuild(session)
    finally:
        owner.dispose()
    click.echo(f"report_cells rebuilt: {rows} rows")


notify_cli = click.Group("notify", help="Notifications: the overdue sweep and the e-mail outbox.")


@notify_cli.command("run")
def notify_run():
    """Tell the lead units and dispatchers of newly overdue reports, then send the outbox through the
    configured SMTP server (SMTP_HOST; none: the inbox only). `geoapp serve` does this every
    NOTIFY_INTERVAL_S seconds; run it from cron when serving otherwise."""
    from .notifier import run_round

    counts = run_round(_db(), current_app.config["GEOAPP"])
    if counts is None:  # geoapp/notifier.py: one sender at a time
        click.echo("another notification round is running (geoapp notify loop, or serve): skipped")
        return
    click.echo("overdue notifications added: {overdue}; e-mails sent: {sent}, failed: {failed}, "
               "left for the next run: {left}".format(**counts))


@notify_cli.command("loop")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds between rounds (default NOTIFY_INTERVAL_S, or 300 if that is 0).")
def notify_loop(interval: float | None):
    """Run `notify run` now and then every NOTIFY_INTERVAL_S seconds until SIGTERM or Ctrl-C (a
    round in progress finishes first): the production install's notification sender, a process of
    its own. Several may run; each round is taken under an advisory lock (geoapp/notifier.py)."""
    import logging
    import signal
    import threading

    from .notifier import run_rounds

    settings = current_app.config["GEOAPP"]
    interval = interval or (settings.notify_interval_s if settings.notify_interval_s > 0 else 300.0)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"[geoapp] notification sender: a round every {interval:g} s (SIGTERM stops it)")
    run_rounds(current_app._get_current_object(), interval, stop, first_at_once=True)
    click.echo("[geoapp] notification sender stopped")


albums_cli = click.Group("albums", help="The bimonthly problem album (问题图册).")


@albums_cli.command("issue")
@click.option("--from", "from_", required=True, help="First day of the period, YYYY-MM-DD (the 1st of a month).")
@click.option("--to", "to", required=True, help="Last day of the period, YYYY-MM-DD (the last day of the next month).")
@click.option("--by", "by", default="admin", show_default=True, help="The dispatcher or admin issuing it.")
def albums_issue(from_: str, to: str, by: str):
    """Issue the next album for a two-month period (as POST /api/v1/albums does)."""
    from sqlalchemy import select

    from .domain.album import Period
    from .domain.errors import DomainError
    from .domain.vocabulary import DISPATCHER_ROLES
    from .models import User
    from .web.albums import issue

    try:
        period = Period.parse(from_, to)
        with _db().transaction() as session:
            user = session.execute(select(User).where(User.username == by)).scalar_one_or_none()
            if user is None or user.role not in DISPATCHER_ROLES:
                raise click.ClickException(f"{by!r} is not a dispatcher or admin")
            album = issue(session, period, user.id)
    except DomainError as exc:
        raise click.ClickException(f"{exc.message('zh')} {exc.message('en')}") from None
    click.echo(f"issued 第{album['number']}期 ({period.start}..{period.end}): {len(album['entries'])} problems, "
               f"{album['pdf_pages']} pages, {album['pdf_size'] / 1e6:.1f} MB, sha256 {album['pdf_sha256']}")


@click.command("backup")
@click.option("--output", type=click.Path(path_type=Path),
              help="A folder (the archive is named geoapp-backup-<UTC time>.tar in it) or a file path; "
                   "default VAR_DIR/backups.")
@click.option("--keep", type=click.IntRange(min=1), default=None,
              help="Then remove all but the newest KEEP geoapp-backup-*.tar of that folder.")
def backup_command(output: Path | None, keep: int | None):
    """Write one consistent archive: the database (pg_dump -Fc, one snapshot), the photo and album
    files it names, and manifest.json (schema revision, row counts, SHA-256 of every file). Exit
    status 1 when a file the database names is missing or damaged (the archive is written and says so)."""
    from .backup import BackupError, create_backup

    try:
        result = create_backup(current_app.config["GEOAPP"], output, keep=keep)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    for rel in result.missing:
        click.echo(f"数据库引用的文件缺失 referenced but missing: {rel}", err=True)
    for rel in result.damaged:
        click.echo(f"文件内容与其 SHA-256 名称不符 damaged (content does not match its name): {rel}", err=True)
    click.echo(result.summary())
    if result.missing or result.damaged:
        raise SystemExit(1)


@click.command("restore")
@click.argument("archive", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds reports.")
def restore_command(archive: Path, force: bool):
    """Rebuild an empty install from ARCHIVE (made by `geoapp backup`): every file's SHA-256 is
    checked first, then the database is restored as the owner in one transaction and the photo and
    album files put back. Stop the app first."""
    from .backup import BackupError, restore_backup

    try:
        result = restore_backup(current_app.config["GEOAPP"], archive, force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    c = result.manifest["counts"]
    click.echo(f"restored {archive} (made {result.manifest['created_at']}): {c.get('reports', 0)} reports, "
               f"{c.get('report_events', 0)} events, {result.files_written} files"
               + (f"; privileges granted to {result.granted_to}" if result.granted_to else ""))
    if result.manifest.get("missing"):
        click.echo(f"the archive lacked {len(result.manifest['missing'])} file(s) the database names "
                   "(missing when it was made): " + ", ".join(result.manifest["missing"]), err=True)
    if result.revision_note:
        click.echo(result.revision_note, err=True)


audit_cli = AppGroup("audit", help="The audit trail (安全审计).")


@audit_cli.command("verify")
def audit_verify():
    """Check the audit trail's hash chain; exits 1 naming the first row that does not match."""
    from .domain.audit import verify

    with _db().engine.connect() as conn:
        verdict = verify(conn)
    start = "from the last export's anchor" if verdict.anchored else "from the beginning"
    if verdict.ok:
        click.echo(f"audit trail intact: {verdict.rows} rows checked {start} / 审计记录完整")
        return
    click.echo(f"audit trail broken at row id {verdict.first_bad_id} ({verdict.rows} rows read {start}): "
               f"its hash or its link to the row before does not match / 审计记录在第 {verdict.first_bad_id} "
               "条被改动", err=True)
    raise SystemExit(1)


@audit_cli.command("partitions")
@click.option("--months-ahead", default=23, show_default=True, type=click.IntRange(0, 120))
def audit_partitions(months_ahead: int):
    """Make the audit trail's monthly partitions up to MONTHS_AHEAD months from now (the schema's
    owner: scripts/geoapp-admin passes OWNER_DATABASE_URL); run monthly."""
    from sqlalchemy import text

    from .db import Database

    owner = Database(current_app.config["GEOAPP"].owner_database_url)
    try:
        with owner.transaction() as session:
            made = session.execute(text("SELECT audit_log_ensure_partitions(:m)"), {"m": months_ahead}).scalar()
    finally:
        owner.engine.dispose()
    click.echo(f"{made} partitions made")


@audit_cli.command("export")
@click.option("--before", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Export the whole months before this day (YYYY-MM-DD); at least 180 days ago.")
@click.option("--to", "to", required=True, type=click.Path(dir_okay=False, path_type=Path, resolve_path=True),
              help="The new file to write (JSON lines, each row with its prev_hash and hash).")
def audit_export(before, to: Path):
    """Write the audit trail's whole months before --before to a new file, then drop them from the
    database and anchor the chain at the last exported row (the schema's owner: scripts/geoapp-admin
    passes OWNER_DATABASE_URL). Refused, nothing changed, if that would keep less than 180 days."""
    from .db import Database
    from .domain.audit import Actor, ExportRefused, export_months

    if not to.parent.is_dir():  # refused before anything is read, as a refusal and not a traceback
        raise click.ClickException(f"{to.parent} is not a directory: nothing exported")
    owner = Database(current_app.config["GEOAPP"].owner_database_url)
    try:
        done = export_months(owner.engine, before.date(), to, actor=Actor.cli())
    except ExportRefused as exc:
        raise click.ClickException(f"export refused: {exc}") from None
    except OSError as exc:  # the file could not be written (permissions, a full disk): nothing was dropped
        raise click.ClickException(f"cannot write {to}: {exc.strerror or exc}; nothing dropped") from None
    finally:
        owner.engine.dispose()
    if not done.months:
        click.echo(f"no whole month before {before.date()} is left in the trail: nothing exported")
        return
    click.echo(f"months: {', '.join(m.replace('_', '-') for m in done.months)}")
    click.echo(f"rows: {done.rows}")
    click.echo(f"file: {done.file}")
    click.echo(f"sha256: {done.file_sha256}")


def register_commands(app: Flask) -> None:
    from .serve import serve
    for group in (db_cli, gis_cli, demo_cli, users_cli, photos_cli, map_cli, notify_cli, serve, albums_cli,
                  backup_command, restore_command, audit_cli):
        app.cli.add_command(group)


def _create_app():
    from . import create_app

    return create_app()


main = FlaskGroup(create_app=_create_app, help="geoapp: representatives snap, the city fixes.")
