"""The audit trail (安全审计, GB/T 22239-2019 8.1.3.5 / 8.1.4.3), and the three administrators' roles
(三权分立: sysadmin, secadmin, auditor).

`audit_log`: one row per important action or security event (who, from where, which request, what,
on which object, with what outcome), written only by geoapp/domain/audit.py. Each row carries the
SHA-256 of its predecessor's hash and its own content (a hash chain): a row changed, inserted or
removed in the middle is found by `geoapp audit verify`.

- Partitioned by month (`PARTITION BY RANGE (at)`): the months a city must keep (≥ 6) stay, older
  whole months are exported to a file and their partitions dropped (`geoapp audit export`), with no
  DELETE over a large table. The migration makes the partitions of this month and the next 23, and
  a DEFAULT partition so an insert never fails for want of one;
  `audit_log_ensure_partitions(months_ahead)` (run by the owner: `geoapp audit partitions`, monthly
  from cron or the timer) makes the missing ones, moving any rows the DEFAULT partition holds for
  such a month into it first.
- `id` comes from a sequence (a partitioned table takes no identity column here: the sequence is
  the writer's, taken inside the chain's lock so ids increase in chain order). PRIMARY KEY (at, id):
  a partitioned table's keys must include the partition key. An index on (id) finds the chain's
  last row and walks it in order.
- No foreign key on actor_id: removing a user must not touch (nor be blocked by) the trail.
- The app's role may only INSERT and SELECT (geoapp/db_roles.APPEND_ONLY; through the parent, the
  partitions take SELECT only); the functions here are the owner's (EXECUTE revoked from PUBLIC).
- `audit_anchor`: where the chain now starts once old months were exported and dropped (the last
  exported row's id and hash, the file, its SHA-256). Written by the owner only (`geoapp audit
  export`), read by `geoapp audit verify`: the first remaining row must carry that hash as its
  prev_hash, so rows removed from the start of the chain are found as surely as from its middle.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BEFORE = ("representative", "dispatcher", "unit_handler", "admin", "leader")
AFTER = BEFORE + ("sysadmin", "secadmin", "auditor")  # geoapp.domain.vocabulary.USER_ROLES as of this revision


def _roles(values) -> str:
    return "role IN (" + ", ".join(repr(v) for v in values) + ")"


def upgrade() -> None:
    op.drop_constraint("user_role", "users", type_="check")
    op.create_check_constraint("user_role", "users", _roles(AFTER))

    op.execute("CREATE SEQUENCE audit_log_id_seq AS bigint")
    op.execute("""
    CREATE TABLE audit_log (
      id bigint NOT NULL DEFAULT nextval('audit_log_id_seq'),
      at timestamptz NOT NULL DEFAULT clock_timestamp(),
      actor_id integer,
      actor text,
      role text,
      client_addr text,
      request_id text,
      event text NOT NULL,
      object_type text,
      object_id text,
      outcome text NOT NULL,
      details jsonb NOT NULL DEFAULT '{}'::jsonb,
      prev_hash text NOT NULL,
      hash text NOT NULL,
      CONSTRAINT audit_log_pkey PRIMARY KEY (at, id),
      CONSTRAINT audit_outcome CHECK (outcome IN ('ok', 'refused', 'failed'))
    ) PARTITION BY RANGE (at)""")
    op.execute("ALTER SEQUENCE audit_log_id_seq OWNED BY audit_log.id")
    op.execute("CREATE INDEX audit_log_id ON audit_log (id)")
    op.execute("CREATE INDEX audit_log_event_at ON audit_log (event, at)")
    op.execute("CREATE INDEX audit_log_actor_at ON audit_log (actor_id, at)")
    op.execute("CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT")
    op.execute("""
    CREATE TABLE audit_anchor (
      id serial PRIMARY KEY,
      at timestamptz NOT NULL DEFAULT now(),
      before date NOT NULL,
      last_id bigint NOT NULL,
      last_hash text NOT NULL,
      rows bigint NOT NULL,
      file text NOT NULL,
      file_sha256 text NOT NULL
    )""")

    # One month's partition, audit_log_pYYYY_MM, for the month holding `month` (in UTC). Rows the
    # DEFAULT partition holds for that month are moved into it first (ATTACH would refuse otherwise).
    op.execute("""
    CREATE FUNCTION audit_log_make_partition(month date) RETURNS boolean
    LANGUAGE plpgsql AS $$
    DECLARE
      lo timestamptz := (date_trunc('month', month::timestamp) AT TIME ZONE 'UTC');
      hi timestamptz := ((date_trunc('month', month::timestamp) + interval '1 month') AT TIME ZONE 'UTC');
      name text := 'audit_log_p' || to_char(date_trunc('month', month::timestamp), 'YYYY_MM');
    BEGIN
      IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN false;
      END IF;
      EXECUTE format('CREATE TABLE %I (LIKE audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
      EXECUTE format('WITH moved AS (DELETE FROM audit_log_default WHERE at >= %L AND at < %L RETURNING *) '
                     'INSERT INTO %I SELECT * FROM moved', lo, hi, name);
      EXECUTE format('ALTER TABLE audit_log ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
      RETURN true;
    END $$""")
    # This month and the next `months_ahead`, and every month the DEFAULT partition holds rows of:
    # how many partitions were made.
    op.execute("""
    CREATE FUNCTION audit_log_ensure_partitions(months_ahead int) RETURNS int
    LANGUAGE plpgsql AS $$
    DECLARE
      made int := 0;
      m date;
    BEGIN
      FOR m IN SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'UTC')::date FROM audit_log_default LOOP
        IF audit_log_make_partition(m) THEN made := made + 1; END IF;
      END LOOP;
      FOR i IN 0..months_ahead LOOP
        m := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date;
        IF audit_log_make_partition(m) THEN made := made + 1; END IF;
      END LOOP;
      RETURN made;
    END $$""")
    op.execute("REVOKE EXECUTE ON FUNCTION audit_log_make_partition(date) FROM PUBLIC")
    op.execute("REVOKE EXECUTE ON FUNCTION audit_log_ensure_partitions(int) FROM PUBLIC")
    op.execute("SELECT audit_log_ensure_partitions(23)")  # this month and the next 23: 24 partitions


def downgrade() -> None:
    op.execute("DROP TABLE audit_anchor")
    op.execute("DROP TABLE audit_log")  # its partitions and its sequence with it
    op.execute("DROP FUNCTION audit_log_ensure_partitions(int)")
    op.execute("DROP FUNCTION audit_log_make_partition(date)")
    op.execute("DELETE FROM users WHERE role IN ('sysadmin', 'secadmin', 'auditor')")
    op.drop_constraint("user_role", "users", type_="check")
    op.create_check_constraint("user_role", "users", _roles(BEFORE))
