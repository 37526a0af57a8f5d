"""Coverage per road: what coverage needs stored, all of it derived, none of it typed by hand.

- `street_crossings`: where the other key streets cross each street (and the street's own two ends,
  named by its from_name/to_name), in metres from its start: the measure reports' position_m and
  walk_intervals' from_m/to_m use. Computed by PostGIS from the geometry (street_crossings_refresh()),
  re-computed by a statement trigger whenever `streets` changes (a city data load).
- `coverage_marks`: the reports counted per street, reporter and local calendar day (grain 1) and
  month (grain 2): which 10-metre buckets along the street hold one of them (an int4multirange,
  [10k, 10k + 10) per bucket), how many reports, and how many of them are problems (not merged,
  void or rejected). Kept in step with `reports` by a trigger in the writing transaction, so a
  period's coverage reads a few hundred rows, never the reports themselves (domain/coverage.py).
  A bin length that is a multiple of 10 m tells exactly which bin a bucket is in.
- `street_measure(geom_m, point)` and `street_substring(geom_m, from_m, to_m)`: a position along a
  (multi-part) street and the piece of it between two positions, parts counted in order (as
  snapping.py and walks.py measure).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The city's calendar for "day" and "month" (config.display_tz's default; migration 0007 likewise).
DAY_TZ = "Asia/Shanghai"
BUCKET_M = 10           # geoapp.domain.coverage.BUCKET_M
CROSSING_TOLERANCE_M = 30.0   # a street ending this close to another one meets it (a T-junction)
END_SAME_NAME_M = 60.0        # an end named like a crossing this close to it is that crossing
NOT_PROBLEMS = ("merged", "void", "rejected")   # geoapp.domain.coverage.NOT_PROBLEMS

FUNCTIONS = f"""
CREATE FUNCTION street_measure(line geometry, pt geometry) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  WITH parts AS (
    SELECT d.path[1] AS i, d.geom AS g, ST_Length(d.geom) AS len,
           COALESCE(sum(ST_Length(d.geom)) OVER (ORDER BY d.path[1]
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS offset_m
    FROM ST_Dump(line) AS d
  )
  SELECT offset_m + len * ST_LineLocatePoint(g, pt) FROM parts ORDER BY ST_Distance(g, pt), i LIMIT 1
$$;

CREATE FUNCTION street_substring(line geometry, from_m double precision, to_m double precision) RETURNS geometry
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT ST_LineMerge(ST_Collect(
           ST_LineSubstring(p.g, GREATEST(0, (from_m - p.offset_m) / p.len), LEAST(1, (to_m - p.offset_m) / p.len))
           ORDER BY p.i))
  FROM (SELECT d.path[1] AS i, d.geom AS g, ST_Length(d.geom) AS len,
               COALESCE(sum(ST_Length(d.geom)) OVER (ORDER BY d.path[1]
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS offset_m
        FROM ST_Dump(line) AS d) p
  WHERE p.len > 0 AND p.offset_m < to_m AND p.offset_m + p.len > from_m
$$;

CREATE FUNCTION street_crossings_refresh() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM street_crossings;
  INSERT INTO street_crossings (street_id, position_m, name, name_en, other_street_id)
  SELECT DISTINCT ON (street_id, other_id, round(position_m / 25)) street_id, position_m, name, name_en, other_id
  FROM (
    SELECT a.id AS street_id, b.id AS other_id, b.name, b.name_en,
           street_measure(a.geom_m, ST_PointOnSurface(d.geom)) AS position_m
    FROM streets a JOIN streets b ON a.id <> b.id AND ST_DWithin(a.geom_m, b.geom_m, {CROSSING_TOLERANCE_M})
    CROSS JOIN LATERAL ST_Dump(CASE WHEN ST_Intersects(a.geom_m, b.geom_m) THEN ST_Intersection(a.geom_m, b.geom_m)
                                    ELSE ST_ClosestPoint(a.geom_m, b.geom_m) END) AS d
  ) x
  ORDER BY street_id, other_id, round(position_m / 25), position_m;
  -- the street's own ends, by the names the city data gives them, unless a crossing of that name is there
  INSERT INTO street_crossings (street_id, position_m, name, name_en, other_street_id)
  SELECT e.street_id, e.position_m, e.name, (SELECT o.name_en FROM streets o WHERE o.name = e.name ORDER BY o.id LIMIT 1), NULL
  FROM (SELECT id AS street_id, 0.0 AS position_m, from_name AS name FROM streets
        UNION ALL SELECT id, length_m, to_name FROM streets) e
  WHERE e.name <> '' AND NOT EXISTS (
    SELECT 1 FROM street_crossings c WHERE c.street_id = e.street_id AND c.name = e.name
      AND abs(c.position_m - e.position_m) <= {END_SAME_NAME_M});
END $$;

CREATE FUNCTION street_crossings_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM street_crossings_refresh();
  RETURN NULL;
END $$;

CREATE FUNCTION coverage_day(at timestamptz) RETURNS date
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT (at AT TIME ZONE '{DAY_TZ}')::date $$;

CREATE FUNCTION coverage_day_start(d date) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT d::timestamp AT TIME ZONE '{DAY_TZ}' $$;

CREATE FUNCTION coverage_bucket(position_m double precision) RETURNS int4range
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT int4range((floor(position_m / {BUCKET_M}) * {BUCKET_M})::int,
                         (floor(position_m / {BUCKET_M}) * {BUCKET_M})::int + {BUCKET_M}) $$;

CREATE FUNCTION coverage_problem(status text) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT CASE WHEN status IN ({", ".join(repr(s) for s in NOT_PROBLEMS)}) THEN 0 ELSE 1 END $$;

-- one report added: its day row, then its month row (one fixed order: two writers cannot deadlock)
CREATE FUNCTION coverage_marks_add(r reports) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO coverage_marks AS c (street_id, grain, day, reporter_id, marks, reports, problems)
  SELECT r.street_id, g, CASE g WHEN 1 THEN coverage_day(r.created_at)
                                ELSE date_trunc('month', coverage_day(r.created_at))::date END,
         r.reporter_id, int4multirange(coverage_bucket(r.position_m)), 1, coverage_problem(r.status)
  FROM unnest(ARRAY[1, 2]) AS g
  ORDER BY g
  ON CONFLICT (street_id, grain, day, reporter_id) DO UPDATE
    SET marks = c.marks + EXCLUDED.marks, reports = c.reports + 1, problems = c.problems + EXCLUDED.problems;
END $$;

-- the day row and the month row of (street, reporter, day) counted again from reports (a report
-- deleted or moved: a bucket cannot be taken out of a union without looking at what else is in it)
CREATE FUNCTION coverage_marks_recount(street integer, reporter integer, d date) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  g integer;
  first date;
  last date;
BEGIN
  FOREACH g IN ARRAY ARRAY[1, 2] LOOP
    first := CASE g WHEN 1 THEN d ELSE date_trunc('month', d)::date END;
    last := CASE g WHEN 1 THEN d + 1 ELSE (date_trunc('month', d) + interval '1 month')::date END;
    DELETE FROM coverage_marks WHERE street_id = street AND grain = g AND day = first AND reporter_id = reporter;
    INSERT INTO coverage_marks (street_id, grain, day, reporter_id, marks, reports, problems)
    SELECT street, g, first, reporter, range_agg(coverage_bucket(r.position_m)), count(*), sum(coverage_problem(r.status))
    FROM reports r
    WHERE r.street_id = street AND r.reporter_id = reporter
      AND r.created_at >= coverage_day_start(first) AND r.created_at < coverage_day_start(last)
    HAVING count(*) > 0;
  END LOOP;
END $$;

CREATE FUNCTION coverage_marks_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  delta integer;
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM coverage_marks_add(NEW);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM coverage_marks_recount(OLD.street_id, OLD.reporter_id, coverage_day(OLD.created_at));
  ELSIF (OLD.street_id, OLD.reporter_id, OLD.position_m, OLD.created_at)
        IS DISTINCT FROM (NEW.street_id, NEW.reporter_id, NEW.position_m, NEW.created_at) THEN
    PERFORM coverage_marks_recount(OLD.street_id, OLD.reporter_id, coverage_day(OLD.created_at));
    PERFORM coverage_marks_recount(NEW.street_id, NEW.reporter_id, coverage_day(NEW.created_at));
  ELSE
    delta := coverage_problem(NEW.status) - coverage_problem(OLD.status);
    IF delta <> 0 THEN
      UPDATE coverage_marks SET problems = problems + delta
      WHERE street_id = NEW.street_id AND reporter_id = NEW.reporter_id
        AND ((grain = 1 AND day = coverage_day(NEW.created_at))
             OR (grain = 2 AND day = date_trunc('month', coverage_day(NEW.created_at))::date));
    END IF;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION coverage_marks_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE coverage_marks;
  RETURN NULL;
END $$;

-- a bulk load disables the trigger and counts everything at once
CREATE FUNCTION coverage_marks_rebuild() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  rows bigint;
BEGIN
  LOCK TABLE reports IN SHARE MODE;
  TRUNCATE coverage_marks;
  INSERT INTO coverage_marks (street_id, grain, day, reporter_id, marks, reports, problems)
  SELECT street_id, 1, coverage_day(created_at), reporter_id, range_agg(coverage_bucket(position_m)), count(*),
         sum(coverage_problem(status))
  FROM reports GROUP BY 1, 3, 4;
  INSERT INTO coverage_marks (street_id, grain, day, reporter_id, marks, reports, problems)
  SELECT street_id, 2, date_trunc('month', day)::date, reporter_id, range_agg(marks), sum(reports), sum(problems)
  FROM coverage_marks WHERE grain = 1 GROUP BY 1, 3, 4;
  GET DIAGNOSTICS rows = ROW_COUNT;
  RETURN rows;
END $$;
"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE street_crossings (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          street_id integer NOT NULL,
          position_m double precision NOT NULL,
          name text NOT NULL,
          name_en text,
          other_street_id integer      -- NULL: the street's own end, named by the city data
          -- derived from streets, re-computed whole on every change: no foreign keys to block a reload,
          -- and no uniqueness (in the middle of a reload two rows of the same street may meet it alike)
        )""")
    op.execute("CREATE INDEX street_crossings_street ON street_crossings (street_id, position_m)")
    op.execute("""
        CREATE TABLE coverage_marks (
          street_id integer NOT NULL,
          grain smallint NOT NULL CHECK (grain IN (1, 2)),   -- 1: a local calendar day, 2: a month
          day date NOT NULL,                                 -- the day, or the month's first day
          reporter_id integer NOT NULL,
          marks int4multirange NOT NULL,                     -- the 10 m buckets holding a report
          reports integer NOT NULL,
          problems integer NOT NULL,                         -- not merged, void or rejected
          PRIMARY KEY (street_id, grain, day, reporter_id)
        )""")
    # "when was this stretch last reported by the street's representative": their rows, newest first
    op.execute("CREATE INDEX coverage_marks_reporter ON coverage_marks (street_id, reporter_id, grain, day)")
    op.execute(FUNCTIONS)
    op.execute("""
        CREATE TRIGGER street_crossings_sync AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON streets
          FOR EACH STATEMENT EXECUTE FUNCTION street_crossings_sync()""")
    op.execute("""
        CREATE TRIGGER coverage_marks_sync
          AFTER INSERT OR DELETE OR UPDATE OF street_id, reporter_id, position_m, created_at, status ON reports
          FOR EACH ROW EXECUTE FUNCTION coverage_marks_sync()""")
    op.execute("""
        CREATE TRIGGER coverage_marks_truncate AFTER TRUNCATE ON reports
          FOR EACH STATEMENT EXECUTE FUNCTION coverage_marks_truncate()""")
    # the exact moment a representative last reported on a stretch (one day of theirs, by position)
    op.execute("CREATE INDEX reports_reporter_street_time ON reports (reporter_id, street_id, created_at) "
               "INCLUDE (position_m)")
    # "when was this stretch last walked by the street's representative": their intervals, newest first
    op.execute("CREATE INDEX walk_intervals_street_rep_end ON walk_intervals (street_id, representative_id, ended_at)")
    op.execute("SELECT street_crossings_refresh()")
    op.execute("SELECT coverage_marks_rebuild()")


def downgrade() -> None:
    op.execute("DROP INDEX walk_intervals_street_rep_end")
    op.execute("DROP INDEX reports_reporter_street_time")
    op.execute("DROP TRIGGER coverage_marks_truncate ON reports")
    op.execute("DROP TRIGGER coverage_marks_sync ON reports")
    op.execute("DROP TRIGGER street_crossings_sync ON streets")
    op.execute("DROP TABLE coverage_marks")
    op.execute("DROP TABLE street_crossings")
    for fn in ("coverage_marks_rebuild()", "coverage_marks_truncate()", "coverage_marks_sync()",
               "coverage_marks_recount(integer, integer, date)", "coverage_marks_add(reports)",
               "coverage_problem(text)", "coverage_bucket(double precision)", "coverage_day_start(date)",
               "coverage_day(timestamptz)", "street_crossings_sync()", "street_crossings_refresh()",
               "street_substring(geometry, double precision, double precision)",
               "street_measure(geometry, geometry)"):
        op.execute(f"DROP FUNCTION {fn}")
