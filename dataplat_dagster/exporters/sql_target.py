"""Writing an Arrow stream to a SQL exporter's table, in either mode.

Both modes write the rows to a staging table first and publish it under its name only
once every row is in, so a failed export (a killed connection, a value the column cannot
take, a producer that breaks) leaves nothing new and the old table as it was.

**overwrite** swaps the staging table in, so a reader sees the old complete table or the
new complete one, never an empty or partial one:

- PostgreSQL: ADBC's binary COPY into the staging table, then ``DROP`` the old table and
  ``RENAME`` the staging one, all in one transaction (PostgreSQL's DDL is transactional;
  a reader waiting on the lock during the swap reads the new table once it commits).
  Views on the old table would block the ``DROP``: they are named and the export refused
  before anything is written, unless the exporter says ``on_dependents: drop``, which
  drops them with the old table (``CASCADE``).
- SQLite: the same in one SQLAlchemy transaction. Views name the table, so they read the
  new one (the rename runs with ``legacy_alter_table``, which does not re-check views).
- MySQL/MariaDB, whose DDL commits on its own: the staging table is filled and committed,
  then ``RENAME TABLE target TO old, staging TO target`` swaps both names in one atomic
  statement, and the old table is dropped. A failure before the swap drops the staging
  table; the target is never touched until the swap. Views name the table and follow it.

Indexes and grants on the old table do not carry over to the new one: the exporter owns
the table's shape.

**timestamped** renames the staging table to ``<table>_<YYYYMMDD_HHMMSS>`` (UTC) and never
overwrites: a name another export took in the same second makes this one take the next
second's (see ``claim_timestamped``). ``retention: N`` then drops the oldest tables of
that exact pattern beyond the newest N.
"""

from __future__ import annotations

import re
import uuid

from dataplat_dagster.connectors.sql import arrow_table_definition, insert_batches
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.exporters.models import TIMESTAMP_PATTERN, ExporterSpec, Written, claim_timestamped

STAGING_PREFIX = "dataplat_staging_"
# The swap waits this long for readers' transactions on the old table, then gives up (and
# the old table stays): waiting forever would queue every later reader behind the swap.
SWAP_LOCK_TIMEOUT_S = 60

# The views (plain and materialized) that depend on a table, directly or through other
# views: what DROP TABLE ... CASCADE would drop with it. $1 is the table's quoted name.
DEPENDENT_VIEWS = """
WITH RECURSIVE dependents(oid) AS (
    SELECT rewrite.ev_class FROM pg_depend AS depend JOIN pg_rewrite AS rewrite ON depend.objid = rewrite.oid
    WHERE depend.classid = 'pg_rewrite'::regclass AND depend.refobjid = to_regclass($1) AND rewrite.ev_class <> depend.refobjid
  UNION
    SELECT rewrite.ev_class FROM dependents
    JOIN pg_depend AS depend ON depend.refobjid = dependents.oid
    JOIN pg_rewrite AS rewrite ON depend.objid = rewrite.oid
    WHERE depend.classid = 'pg_rewrite'::regclass AND rewrite.ev_class <> depend.refobjid
)
SELECT name FROM (
    SELECT quote_ident(namespace.nspname) || '.' || quote_ident(class.relname) AS name
    FROM dependents JOIN pg_class AS class ON class.oid = dependents.oid
    JOIN pg_namespace AS namespace ON namespace.oid = class.relnamespace
) AS views
ORDER BY name COLLATE "C"
"""


def split_table(spec: ExporterSpec) -> tuple[str | None, str]:
    schema, _, table = spec.table.rpartition(".")
    return schema or None, table


def write_table(connector, spec: ExporterSpec, reader) -> Written:
    schema, table = split_table(spec)
    staging = STAGING_PREFIX + uuid.uuid4().hex[:12]
    if connector.backend == "postgresql":
        name, rows, dropped_views = _write_postgres(connector, spec, schema, table, staging, reader)
    elif connector.backend == "mysql":
        name, rows, dropped_views = _write_mysql(connector, spec, schema, table, staging, reader)
    else:
        name, rows, dropped_views = _write_in_one_transaction(connector, spec, schema, table, staging, reader)
    dropped = _apply_retention(connector, spec, schema, table) if spec.retention else []
    return Written(name, _identifier(connector, spec, schema, name), rows, dropped, dropped_views)


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


def _stamped_name(table: str):
    return lambda stamp: f"{table}_{stamp}"


def _failure(connector, spec: ExporterSpec, target: str, error: Exception):
    if isinstance(error, DataplatError):
        return error
    if spec.mode == "overwrite":
        return connector.fail(f"overwriting table {target} failed; it is unchanged", error)
    return connector.fail(f"the timestamped export of table {target} failed; no new table was created", error)


def _write_postgres(connector, spec, schema, table, staging, reader) -> tuple[str, int, list[str]]:
    target, staged = connector.quote(schema, table), connector.quote(schema, staging)
    with connector.adbc_connection(spec.database) as session:
        try:
            if spec.mode == "overwrite" and spec.on_dependents == "refuse":
                _refuse_dependent_views(connector, session, target)  # before anything is written
            rows = session.ingest(staging, reader, mode="create", db_schema=schema)
            if spec.mode == "timestamped":
                name, views = claim_timestamped(_stamped_name(table), lambda name: _rename_postgres(connector, session, schema, staged, name)), []
            else:
                name, views = table, _swap_postgres(connector, session, spec, target, staged, table)
        except Exception as error:
            session.rollback()
            raise _failure(connector, spec, target, error) from None
        session.commit()
    return name, rows, views


def _dependent_views(session, target: str) -> list[str]:
    return [name for (name,) in session.fetch_rows(DEPENDENT_VIEWS, (target,))]


def _refuse_dependent_views(connector, session, target: str) -> list[str]:
    views = _dependent_views(session, target)
    if views:
        raise connector.fail(
            f"table {target} has views that depend on it: {', '.join(views)}. An overwrite replaces the table, which "
            "would drop them, so nothing was written. Drop or change those views, or set `on_dependents: drop` on the "
            "exporter to drop them with the old table"
        )
    return views


def _swap_postgres(connector, session, spec: ExporterSpec, target: str, staged: str, table: str) -> list[str]:
    """Replace ``target`` by ``staged``; returns the views dropped with the old table. They
    are listed again under the table's lock, so the list is exactly what CASCADE drops (and
    a view created since the first look is refused too, unless on_dependents is drop)."""
    session.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT_S}s'")
    views = []
    if _table_exists(session, target):
        session.execute(f"LOCK TABLE {target} IN ACCESS EXCLUSIVE MODE")
        views = _refuse_dependent_views(connector, session, target) if spec.on_dependents == "refuse" else _dependent_views(session, target)
        session.execute(f"DROP TABLE {target} CASCADE" if views else f"DROP TABLE {target}")
    session.execute(f"ALTER TABLE {staged} RENAME TO {connector.quote(table)}")
    return views


def _rename_postgres(connector, session, schema, staged: str, name: str) -> bool:
    """Rename ``staged`` to ``name``, or return False if a table has that name. A lock on the
    name, held until this transaction ends, makes another export claiming it wait and then
    see this one's table (a failed RENAME would abort the whole transaction)."""
    qualified = connector.quote(schema, name)
    session.fetch_rows("SELECT 1 FROM pg_advisory_xact_lock(hashtext($1))", (qualified,))
    if _table_exists(session, qualified):
        return False
    session.execute(f"ALTER TABLE {staged} RENAME TO {connector.quote(name)}")
    return True


def _table_exists(session, qualified: str) -> bool:
    ((exists,),) = session.fetch_rows("SELECT to_regclass($1) IS NOT NULL", (qualified,))
    return exists


def _write_in_one_transaction(connector, spec, schema, table, staging, reader) -> tuple[str, int, list[str]]:
    from sqlalchemy import MetaData, inspect, text

    target, staged = connector.quote(schema, table), connector.quote(schema, staging)

    def claim(name: str) -> bool:
        # The transaction holds the database's write lock: nobody can take the name meanwhile.
        if inspect(connection).has_table(name, schema=schema):
            return False
        connection.execute(text(f"ALTER TABLE {staged} RENAME TO {connector.quote(name)}"))
        return True

    try:
        with connector.connect(spec.database) as connection, connection.begin():
            definition = arrow_table_definition(staging, reader.schema, MetaData(schema=schema))
            definition.create(connection)
            rows = insert_batches(connection, definition, reader)
            if spec.mode == "timestamped":
                return claim_timestamped(_stamped_name(table), claim), rows, []
            connection.execute(text(f"DROP TABLE IF EXISTS {target}"))
            _rename_keeping_views(connector, connection, staged, table)
    except Exception as error:
        raise _failure(connector, spec, target, error) from None
    return table, rows, []


def _rename_keeping_views(connector, connection, staged: str, table: str) -> None:
    """SQLite re-checks every view when a table is renamed, and a view on the table just
    dropped fails that check; the legacy rename leaves views alone, and they read the new table."""
    from sqlalchemy import text

    rename = text(f"ALTER TABLE {staged} RENAME TO {connector.quote(table)}")
    if connector.backend != "sqlite":
        connection.execute(rename)
        return
    connection.execute(text("PRAGMA legacy_alter_table = ON"))
    try:
        connection.execute(rename)
    finally:
        connection.execute(text("PRAGMA legacy_alter_table = OFF"))


def _write_mysql(connector, spec, schema, table, staging, reader) -> tuple[str, int, list[str]]:
    from sqlalchemy import MetaData, inspect, text
    from sqlalchemy.exc import DBAPIError

    target, staged = connector.quote(schema, table), connector.quote(schema, staging)
    retired = connector.quote(schema, STAGING_PREFIX + "old_" + staging[-12:])

    def claim(name: str) -> bool:
        # RENAME TABLE is atomic and refuses a name that exists.
        try:
            connection.execute(text(f"RENAME TABLE {staged} TO {connector.quote(schema, name)}"))
        except DBAPIError:
            if inspect(connection).has_table(name, schema=schema):
                return False
            raise
        return True

    with connector.connect(spec.database) as connection:
        try:
            # Committed on its own (MySQL's DDL commits anyway): the name is published only
            # below, once every row is in, so a failure here leaves nothing new.
            with connection.begin():
                definition = arrow_table_definition(staging, reader.schema, MetaData(schema=schema))
                definition.create(connection)
                rows = insert_batches(connection, definition, reader)
            connection.execute(text(f"SET SESSION lock_wait_timeout = {SWAP_LOCK_TIMEOUT_S}"))
            if spec.mode == "timestamped":
                return claim_timestamped(_stamped_name(table), claim), rows, []
            exists = inspect(connection).has_table(table, schema=schema)
            swap = f"RENAME TABLE {target} TO {retired}, {staged} TO {target}" if exists else f"RENAME TABLE {staged} TO {target}"
            connection.execute(text(swap))
        except Exception as error:
            connection.rollback()
            connection.execute(text(f"DROP TABLE IF EXISTS {staged}"))
            raise _failure(connector, spec, target, error) from None
        if exists:
            connection.execute(text(f"DROP TABLE IF EXISTS {retired}"))
    return table, rows, []


def _apply_retention(connector, spec: ExporterSpec, schema: str | None, table: str) -> list[str]:
    from sqlalchemy import text

    created = created_tables(connector, spec)
    doomed = created[: max(0, len(created) - spec.retention)]
    if doomed:
        with connector.connect(spec.database) as connection, connection.begin():
            for name in doomed:
                connection.execute(text(f"DROP TABLE IF EXISTS {connector.quote(schema, name)}"))
    return doomed
