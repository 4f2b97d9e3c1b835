"""Writing an Arrow stream to a SQL exporter's table, in either mode.

**overwrite** writes the new rows to a staging table and swaps it in, so a reader sees the
old complete table or the new complete one, never an empty or partial one:

- PostgreSQL: ADBC's binary COPY into the staging table, then ``DROP`` the old table and
  ``RENAME`` the staging one, all in one transaction (PostgreSQL's DDL is transactional;
  a reader waiting on the lock during the swap reads the new table once it commits).
- SQLite: the same in one SQLAlchemy transaction.
- MySQL/MariaDB, whose DDL commits on its own: the staging table is filled and committed,
  then ``RENAME TABLE target TO old, staging TO target`` swaps both names in one atomic
  statement, and the old table is dropped. A failure before the swap drops the staging
  table; the target is never touched until the swap.

A failure anywhere (a killed connection, a value the column cannot take) leaves the old
table as it was. Indexes, grants and views on the old table do not carry over to the new
one: the exporter owns the table's shape.

**timestamped** creates ``<table>_<YYYYMMDD_HHMMSS>`` (UTC) and never overwrites: an
existing name is an error. ``retention: N`` then drops the oldest tables of that exact
pattern beyond the newest N.
"""

from __future__ import annotations

import re
import uuid

from dataplat_dagster.connectors.sql import arrow_table_definition, insert_batches
from dataplat_dagster.exporters.models import TIMESTAMP_PATTERN, ExporterSpec, Written, timestamp_suffix

STAGING_PREFIX = "dataplat_staging_"
# The swap waits this long for readers' transactions on the old table, then gives up (and
# the old table stays): waiting forever would queue every later reader behind the swap.
SWAP_LOCK_TIMEOUT_S = 60


def split_table(spec: ExporterSpec) -> tuple[str | None, str]:
    schema, _, table = spec.table.rpartition(".")
    return schema or None, table


def write_table(connector, spec: ExporterSpec, reader, *, now=None) -> Written:
    schema, table = split_table(spec)
    if spec.mode == "timestamped":
        name = f"{table}_{timestamp_suffix(now)}"
        rows = _create(connector, spec, schema, name, reader)
        dropped = _apply_retention(connector, spec, schema, table) if spec.retention else []
    else:
        name = table
        rows = _overwrite(connector, spec, schema, table, reader)
        dropped = []
    return Written(name, _identifier(connector, spec, schema, name), rows, dropped)


def created_tables(connector, spec: ExporterSpec) -> list[str]:
    """The timestamped tables of this exporter's pattern, oldest first."""
    from sqlalchemy import inspect

    schema, table = split_table(spec)
    pattern = re.compile(re.escape(table) + "_" + TIMESTAMP_PATTERN + "$")
    with connector.connect(spec.database) as connection:
        names = inspect(connection).get_table_names(schema=schema)
    return sorted(name for name in names if pattern.fullmatch(name))


def _identifier(connector, spec: ExporterSpec, schema: str | None, name: str) -> str:
    url = connector.sqlalchemy_url(spec.database)
    database = spec.database or (url.database if connector.backend != "sqlite" else None)
    if connector.backend == "postgresql":
        schema = schema or "public"
    return ".".join(part for part in (database, schema, name) if part)


def _create(connector, spec: ExporterSpec, schema: str | None, name: str, reader) -> int:
    try:
        return connector.write_arrow(name, reader, schema=schema, database=spec.database, mode="create")
    except Exception as error:
        if "already exists" in str(error):
            raise connector.fail(
                f"table {connector.quote(schema, name)} already exists: a timestamped export never overwrites. "
                "Another export ran in the same second; run it again"
            ) from None
        raise


def _overwrite(connector, spec: ExporterSpec, schema: str | None, table: str, reader) -> int:
    staging = STAGING_PREFIX + uuid.uuid4().hex[:12]
    if connector.backend == "postgresql":
        return _overwrite_postgres(connector, spec, schema, table, staging, reader)
    if connector.backend == "mysql":
        return _overwrite_mysql(connector, spec, schema, table, staging, reader)
    return _overwrite_in_one_transaction(connector, spec, schema, table, staging, reader)


def _overwrite_postgres(connector, spec, schema, table, staging, reader) -> int:
    target, staged = connector.quote(schema, table), connector.quote(schema, staging)
    with connector.adbc_connection(spec.database) as connection, connection.cursor() as cursor:
        try:
            rows = cursor.adbc_ingest(staging, reader, mode="create", db_schema_name=schema)
            cursor.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT_S}s'")
            cursor.execute(f"DROP TABLE IF EXISTS {target}")
            cursor.execute(f"ALTER TABLE {staged} RENAME TO {connector.quote(table)}")
        except Exception as error:
            connection.rollback()
            raise connector.fail(f"overwriting table {target} failed; it is unchanged", error) from None
        connection.commit()
    return rows


def _overwrite_in_one_transaction(connector, spec, schema, table, staging, reader) -> int:
    from sqlalchemy import MetaData, text

    target = connector.quote(schema, table)
    try:
        with connector.connect(spec.database) as connection, connection.begin():
            staged = arrow_table_definition(staging, reader.schema, MetaData(schema=schema))
            staged.create(connection)
            rows = insert_batches(connection, staged, reader)
            connection.execute(text(f"DROP TABLE IF EXISTS {target}"))
            connection.execute(text(f"ALTER TABLE {connector.quote(schema, staging)} RENAME TO {connector.quote(table)}"))
    except Exception as error:
        raise connector.fail(f"overwriting table {target} failed; it is unchanged", error) from None
    return rows


def _overwrite_mysql(connector, spec, schema, table, staging, reader) -> int:
    from sqlalchemy import MetaData, inspect, text

    target, staged = connector.quote(schema, table), connector.quote(schema, staging)
    retired = connector.quote(schema, STAGING_PREFIX + "old_" + staging[-12:])
    with connector.connect(spec.database) as connection:
        try:
            with connection.begin():
                definition = arrow_table_definition(staging, reader.schema, MetaData(schema=schema))
                definition.create(connection)
                rows = insert_batches(connection, definition, reader)
            exists = inspect(connection).has_table(table, schema=schema)
            connection.execute(text(f"SET SESSION lock_wait_timeout = {SWAP_LOCK_TIMEOUT_S}"))
            swap = f"RENAME TABLE {target} TO {retired}, {staged} TO {target}" if exists else f"RENAME TABLE {staged} TO {target}"
            connection.execute(text(swap))
        except Exception as error:
            connection.rollback()
            connection.execute(text(f"DROP TABLE IF EXISTS {staged}"))
            raise connector.fail(f"overwriting table {target} failed; it is unchanged", error) from None
        if exists:
            connection.execute(text(f"DROP TABLE IF EXISTS {retired}"))
    return rows


def _apply_retention(connector, spec: ExporterSpec, schema: str | None, table: str) -> list[str]:
    from sqlalchemy import text

    created = created_tables(connector, spec)
    doomed = created[: max(0, len(created) - spec.retention)]
    if doomed:
        with connector.connect(spec.database) as connection, connection.begin():
            for name in doomed:
                connection.execute(text(f"DROP TABLE IF EXISTS {connector.quote(schema, name)}"))
    return doomed
