"""Foundation schema: streets, zones, units, taxonomy, representatives, users, reports and their history.

Every geometry is stored in WGS-84 (SRID 4326, what phones and GeoJSON speak) with a generated copy in
the metric CRS (EPSG:4549) that distance, snapping and containment use; both carry GiST indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table('categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('unit_type', sa.String(length=64), nullable=True),
    sa.Column('deadline_days', sa.Numeric(precision=6, scale=2), nullable=True),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.CheckConstraint("(level = 'class') = (parent_id IS NULL)", name='category_parent'),
    sa.CheckConstraint("(level = 'item') = (unit_type IS NOT NULL AND deadline_days IS NOT NULL AND deadline_days > 0)", name='category_item_handling'),
    sa.CheckConstraint("level IN ('class', 'category', 'item')", name='category_level'),
    sa.ForeignKeyConstraint(['parent_id'], ['categories.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('streets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('district', sa.Text(), nullable=False),
    sa.Column('from_name', sa.Text(), nullable=False),
    sa.Column('to_name', sa.Text(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTILINESTRING', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=False),
    sa.Column('geom_m', Geometry(geometry_type='MULTILINESTRING', srid=4549, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), sa.Computed('ST_Transform(geom, 4549)', persisted=True), nullable=True),
    sa.Column('length_m', sa.Double(), sa.Computed('ST_Length(ST_Transform(geom, 4549))', persisted=True), nullable=False),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name='street_geom_valid'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('units',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('unit_type', sa.String(length=64), nullable=False),
    sa.CheckConstraint("kind IN ('municipal_department', 'construction_management')", name='unit_kind'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('zones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('district_code', sa.String(length=12), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=False),
    sa.Column('geom_m', Geometry(geometry_type='MULTIPOLYGON', srid=4549, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), sa.Computed('ST_Transform(geom, 4549)', persisted=True), nullable=True),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name='zone_geom_valid'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('representatives',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('monthly_quota', sa.Integer(), nullable=False),
    sa.Column('street_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('representative', 'committee_member')", name='rep_kind'),
    sa.CheckConstraint('monthly_quota IN (2, 4)', name='rep_quota'),
    sa.ForeignKeyConstraint(['street_id'], ['streets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code'),
    sa.UniqueConstraint('street_id', name='representatives_street_id_key', deferrable=True, initially='DEFERRED')
    )
    op.create_table('street_units',
    sa.Column('street_id', sa.Integer(), nullable=False),
    sa.Column('unit_type', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['street_id'], ['streets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('street_id', 'unit_type')
    )
    op.create_table('zone_units',
    sa.Column('zone_id', sa.Integer(), nullable=False),
    sa.Column('unit_type', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.ForeignKeyConstraint(['zone_id'], ['zones.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('zone_id', 'unit_type')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('representative_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('api_key_hash', sa.String(length=64), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(role = 'representative') = (representative_id IS NOT NULL)", name='user_rep'),
    sa.CheckConstraint("(role = 'unit_handler') = (unit_id IS NOT NULL)", name='user_unit'),
    sa.CheckConstraint("role IN ('representative', 'dispatcher', 'unit_handler', 'admin')", name='user_role'),
    sa.ForeignKeyConstraint(['representative_id'], ['representatives.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('api_key_hash'),
    sa.UniqueConstraint('username')
    )
    op.create_table('reports',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('client_id', sa.UUID(), nullable=False),
    sa.Column('reported_lon', sa.Double(), nullable=False),
    sa.Column('reported_lat', sa.Double(), nullable=False),
    sa.Column('reported_crs', sa.String(length=8), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=False),
    sa.Column('geom_m', Geometry(geometry_type='POINT', srid=4549, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), sa.Computed('ST_Transform(geom, 4549)', persisted=True), nullable=True),
    sa.Column('street_id', sa.Integer(), nullable=False),
    sa.Column('distance_m', sa.Double(), nullable=False),
    sa.Column('position_m', sa.Double(), nullable=False),
    sa.Column('on_own_street', sa.Boolean(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=False),
    sa.Column('photo_path', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=32), server_default='submitted', nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('dispatch_reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("reported_crs IN ('wgs84', 'gcj02')", name='report_crs'),
    sa.CheckConstraint("status IN ('submitted')", name='report_status'),
    sa.CheckConstraint('char_length(description) BETWEEN 1 AND 2000', name='report_description'),
    sa.CheckConstraint('distance_m >= 0 AND position_m >= 0', name='report_measures'),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], ),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['street_id'], ['streets.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_id')
    )
    op.create_table('report_events',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('report_id', sa.BigInteger(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=32), nullable=True),
    sa.Column('to_status', sa.String(length=32), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_report_events_report_id'), 'report_events', ['report_id'], unique=False)

    for table in ("streets", "zones", "reports"):
        for column in ("geom", "geom_m"):
            op.create_index(f"ix_{table}_{column}", table, [column], postgresql_using="gist")
    op.create_index("ix_reports_status_created", "reports", ["status", "created_at"])
    op.create_index("ix_reports_street", "reports", ["street_id"])
    op.create_index("ix_reports_unit", "reports", ["unit_id"])

    # History is evidence: once written, an event is never changed or removed.
    op.execute("""
        CREATE FUNCTION report_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'report_events is append-only (% refused)', TG_OP;
        END $$;
        CREATE TRIGGER report_events_append_only BEFORE UPDATE OR DELETE ON report_events
            FOR EACH ROW EXECUTE FUNCTION report_events_append_only();
    """)


def downgrade() -> None:
    op.drop_index(op.f('ix_report_events_report_id'), table_name='report_events')
    op.drop_table('report_events')
    op.execute("DROP FUNCTION report_events_append_only()")
    op.drop_table('reports')
    op.drop_table('users')
    op.drop_table('zone_units')
    op.drop_table('street_units')
    op.drop_table('representatives')
    op.drop_table('zones')
    op.drop_table('units')
    op.drop_table('streets')
    op.drop_table('categories')
