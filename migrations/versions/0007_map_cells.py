"""The console map's aggregates: reports counted per map cell, street, lead unit, status, album class
and month,
kept in step with `reports` by a trigger in the writing transaction, so the map's cost follows the
cells in view and never the number of reports (geoapp/domain/map_cells.py reads them).

A cell is 64 screen pixels of the Web-Mercator tile grid at zoom `level` (4 x 4 cells per 256 px
tile): cx = floor(x * 2^(level+2)), x and y the position in the world square (0..1). Levels 10, 12,
14 and 16 are stored; the zoom between two of them groups the finer level with an integer shift.
Every report is counted twice per level: in its month, and in the "all months" row (month
'-infinity'), which is what a view without a date range reads (24x fewer rows over two years).
sum_lon / sum_lat put a cluster at the mean of its reports, not at a cell corner.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LEVELS = (10, 12, 14, 16)
# The city's calendar for "month" (config.display_tz's default). `geoapp map rebuild-cells`
# re-creates report_cells_month with the configured zone and recounts.
MONTH_TZ = "Asia/Shanghai"

FUNCTIONS = f"""
CREATE FUNCTION map_cell_x(lon double precision, level integer) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT floor((lon + 180.0) / 360.0 * (2.0 ^ (level + 2)))::integer $$;

CREATE FUNCTION map_cell_y(lat double precision, level integer) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT floor((1.0 - ln(tan(radians(lat)) + 1.0 / cos(radians(lat))) / pi()) / 2.0
                     * (2.0 ^ (level + 2)))::integer $$;

CREATE FUNCTION report_cells_month(at timestamptz) RETURNS date
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT date_trunc('month', at AT TIME ZONE '{MONTH_TZ}')::date $$;

-- add (delta = 1) or take away (delta = -1) one report's counts, at every level, in its month and
-- in "all months"; rows are touched in one fixed order so two writers cannot deadlock on them
CREATE FUNCTION report_cells_apply(r reports, delta integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  lon double precision := ST_X(r.geom);
  lat double precision := ST_Y(r.geom);
  klass integer := (SELECT g.parent_id FROM categories i JOIN categories g ON g.id = i.parent_id
                    WHERE i.id = r.category_id);
BEGIN
  INSERT INTO report_cells AS c (level, month, cx, cy, street_id, unit_id, status, class_id, n, sum_lon, sum_lat)
  SELECT l, m, map_cell_x(lon, l), map_cell_y(lat, l), r.street_id, r.unit_id, r.status, klass, delta,
         delta * lon, delta * lat
  FROM unnest(ARRAY[{", ".join(map(str, LEVELS))}]) AS l,
       unnest(ARRAY['-infinity'::date, report_cells_month(r.created_at)]) AS m
  ORDER BY l, m
  ON CONFLICT (level, month, cx, cy, street_id, unit_id, status, class_id) DO UPDATE
    SET n = c.n + EXCLUDED.n, sum_lon = c.sum_lon + EXCLUDED.sum_lon, sum_lat = c.sum_lat + EXCLUDED.sum_lat;
END $$;

CREATE FUNCTION report_cells_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NOT (OLD.status IS DISTINCT FROM NEW.status
      OR OLD.geom IS DISTINCT FROM NEW.geom OR OLD.category_id IS DISTINCT FROM NEW.category_id
      OR OLD.street_id IS DISTINCT FROM NEW.street_id OR OLD.unit_id IS DISTINCT FROM NEW.unit_id
      OR OLD.created_at IS DISTINCT FROM NEW.created_at) THEN
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM report_cells_apply(OLD, -1);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN
    PERFORM report_cells_apply(NEW, 1);
  END IF;
  RETURN NULL;
END $$;

-- TRUNCATE fires no row trigger: empty the counts with the reports
CREATE FUNCTION report_cells_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE report_cells;
  RETURN NULL;
END $$;

-- a bulk load disables the trigger and recounts everything at once (geoapp map rebuild-cells)
CREATE FUNCTION report_cells_rebuild() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  rows bigint;
BEGIN
  LOCK TABLE reports IN SHARE MODE;  -- no write may slip between the count and its rows
  TRUNCATE report_cells;
  INSERT INTO report_cells (level, month, cx, cy, street_id, unit_id, status, class_id, n, sum_lon, sum_lat)
  SELECT l, m, map_cell_x(p.lon, l), map_cell_y(p.lat, l), p.street_id, p.unit_id, p.status, p.class_id,
         count(*), sum(p.lon), sum(p.lat)
  FROM (SELECT ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat, r.street_id, r.unit_id, r.status, g.parent_id AS class_id,
               report_cells_month(r.created_at) AS month
        FROM reports r JOIN categories i ON i.id = r.category_id JOIN categories g ON g.id = i.parent_id) p,
       unnest(ARRAY[{", ".join(map(str, LEVELS))}]) AS l,
       unnest(ARRAY['-infinity'::date, p.month]) AS m
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
  GET DIAGNOSTICS rows = ROW_COUNT;
  RETURN rows;
END $$;
"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE report_cells (
          level smallint NOT NULL,
          month date NOT NULL,          -- the local calendar month; '-infinity' = all months
          cx integer NOT NULL,
          cy integer NOT NULL,
          street_id integer NOT NULL,
          unit_id integer NOT NULL,     -- the lead unit (cooperating units are counted from report_units)
          status varchar(32) NOT NULL,
          class_id integer NOT NULL,      -- the album class (categories.id)
          n integer NOT NULL,
          sum_lon double precision NOT NULL,
          sum_lat double precision NOT NULL,
          -- aggregates, not facts: no foreign keys, so a city data reload is never blocked by them
          PRIMARY KEY (level, month, cx, cy, street_id, unit_id, status, class_id)
        )""")
    op.execute(FUNCTIONS)
    op.execute("""
        CREATE TRIGGER report_cells_sync
          AFTER INSERT OR DELETE OR UPDATE OF status, geom, category_id, street_id, unit_id, created_at ON reports
          FOR EACH ROW EXECUTE FUNCTION report_cells_sync()""")
    op.execute("""
        CREATE TRIGGER report_cells_truncate AFTER TRUNCATE ON reports
          FOR EACH STATEMENT EXECUTE FUNCTION report_cells_truncate()""")
    # the filters the aggregates cannot answer select from reports directly (domain/map_cells.py):
    # a date range's partial edge months by created_at, a category or item by category_id
    # (street_id, unit_id and the running deadline already have indexes)
    op.create_index("reports_created_at", "reports", ["created_at"])
    op.create_index("reports_category", "reports", ["category_id"])
    op.execute("SELECT report_cells_rebuild()")


def downgrade() -> None:
    op.drop_index("reports_category", "reports")
    op.drop_index("reports_created_at", "reports")
    op.execute("DROP TRIGGER report_cells_truncate ON reports")
    op.execute("DROP TRIGGER report_cells_sync ON reports")
    op.execute("DROP TABLE report_cells")
    for fn in ("report_cells_rebuild()", "report_cells_truncate()", "report_cells_sync()", "report_cells_apply(reports, integer)",
               "report_cells_month(timestamptz)", "map_cell_y(double precision, integer)",
               "map_cell_x(double precision, integer)"):
        op.execute(f"DROP FUNCTION {fn}")
