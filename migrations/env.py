"""Alembic environment: the database comes from geoapp's settings, the schema from geoapp.models."""
from alembic import context
from geoalchemy2 import alembic_helpers

from geoapp.config import Settings
from geoapp.db import make_engine
from geoapp.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    # PostGIS's own tables (spatial_ref_sys, topology…) are not ours to manage
    if type_ == "table" and reflected and compare_to is None:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def run_migrations_online() -> None:
    url = config.attributes.get("database_url") or Settings().database_url
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=include_object,
            process_revision_directives=alembic_helpers.writer,
            render_item=alembic_helpers.render_item,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        app_role = config.attributes.get("app_role")
        if app_role:  # the app's role gets its rows' privileges on whatever the migrations created
            from geoapp.db_roles import grant_app_role

            if connection.in_transaction():  # alembic's own reads may have begun one
                connection.commit()
            with connection.begin():
                grant_app_role(connection, app_role)
    engine.dispose()


run_migrations_online()
