"""models.py and the migrations describe the same schema: Alembic's autogenerate compares the
models' metadata with the database the migrations built (tables, columns, types, nullability,
indexes, unique and foreign keys) and must find nothing to change. A column added to a model without
its migration (or the other way round) fails here, not on a city's server."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers

from geoapp.models import Base


def _include(obj, name, type_, reflected, compare_to):
    # the same filter as migrations/env.py: PostGIS's own tables are not ours
    if type_ == "table" and reflected and compare_to is None:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def test_the_models_and_the_migrated_database_agree(migrated, owner_db):
    with owner_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_object": _include, "compare_type": True, "compare_server_default": False})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], "\n".join(map(repr, diff))


def test_the_comparison_sees_a_difference(migrated, owner_db):
    """The comparison itself works: a column only the database has is reported (then removed)."""
    from sqlalchemy import text

    with owner_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE units ADD COLUMN not_in_models integer"))
    try:
        with owner_db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": _include, "compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert any(d[0] == "remove_column" and d[3].name == "not_in_models" for d in diff), diff
    finally:
        with owner_db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE units DROP COLUMN not_in_models"))
