"""The SQL connector: SQLAlchemy for everything, Arrow bulk paths for moving tables.

Measured on 1M rows x 8 columns (see bench/README.md), PostgreSQL's fastest path from
Python is ADBC, which streams Arrow through COPY in both directions; other dialects go
through SQLAlchemy with batched, multi-row inserts and server-side cursors.

Dialects: ``postgresql``, ``mysql`` / ``mariadb`` (PyMySQL), ``sqlite``, and any other
SQLAlchemy dialect whose driver is installed, through ``dialect`` or a full URL in
``url_env``.
"""

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional

from pydantic import Field, PrivateAttr

from dataplat_dagster.connectors.base import ConnectorResource, env_reference, project_path
from dataplat_dagster.connectors.checks import CheckReport, Checker, StepFailed, resolve_host, tcp_connect
from dataplat_dagster.connectors.query_stream import QueryStream
from dataplat_dagster.connectors.secrets import error_text
from dataplat_dagster.errors import ConnectorError

if TYPE_CHECKING:
    from dataplat_dagster.connectors.adbc import AdbcSession

# The driver each short dialect name means; anything else is passed to SQLAlchemy as given.
DRIVERS = {
    "postgresql": "postgresql+psycopg2",
    "postgres": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "sqlite": "sqlite",
}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
BATCH_ROWS = 50_000
SQLITE_HEADER = b"SQLite format 3\x00"

WriteMode = Literal["create", "append", "replace"]


class SqlConnector(ConnectorResource):
    """A SQL database, reached through SQLAlchemy (and ADBC for PostgreSQL's bulk paths)."""

    connector_type: ClassVar[str] = "sql"
    secret_fields: ClassVar[tuple[str, ...]] = ("password", "url")

    dialect: Optional[str] = Field(None, description="SQLAlchemy dialect, e.g. postgresql, mysql, sqlite.")
    host: Optional[str] = None
    port: Optional[int] = None
    username: Optional[str] = None
    password: Optional[str] = Field(None, description="From the environment variable named in the catalog.")
    database: Optional[str] = Field(None, description="Default database; for SQLite, the file.")
    url: Optional[str] = Field(None, description="A full SQLAlchemy URL, from an environment variable.")
    # Dagster config wants one value type: text here, typed again by ``option_value``.
    options: dict[str, str] = Field(default_factory=dict, description="Driver connect_args.")

    _engines: dict = PrivateAttr(default_factory=dict)

    @classmethod
    def from_spec(cls, name: str, spec, project_dir: Path) -> "SqlConnector":
        sqlite = (spec.dialect or "").split("+")[0] == "sqlite"
        return cls(
            **cls.common_fields(name, spec, project_dir),
            dialect=spec.dialect,
            host=spec.host,
            port=spec.port,
            username=spec.username,
            password=env_reference(spec.password_env),
            database=project_path(project_dir, spec.database) if sqlite else spec.database,
            url=env_reference(spec.url_env),
            options={key: str(value) for key, value in spec.options.items()},
        )

    # -- addresses ----------------------------------------------------------------------

    def sqlalchemy_url(self, database: Optional[str] = None):
        """The URL to connect with; ``database`` overrides the default one."""
        from sqlalchemy.engine import URL, make_url

        if self.url:
            try:
                url = make_url(self.url)
            except Exception:
                raise self.fail("the URL in its environment variable is not a SQLAlchemy URL (dialect+driver://user:password@host:port/database)") from None
            url = url.set(drivername=DRIVERS.get(url.drivername, url.drivername))
            return url.set(database=database) if database else url
        drivername = DRIVERS.get(self.dialect, self.dialect)
        if self.backend == "sqlite":
            return URL.create(drivername, database=database or self.local_file(self.database))
        return URL.create(
            drivername,
            username=self.username,
            password=self.password,
            host=self.host,
            port=self.port or DEFAULT_PORTS.get(self.backend),
            database=database or self.database,
        )

    @property
    def backend(self) -> str:
        """``postgresql``, ``mysql``, ``sqlite``, ...: the dialect without its driver."""
        if self.url:
            name = self.url.split(":", 1)[0].split("+", 1)[0]
        else:
            name = (self.dialect or "").split("+", 1)[0]
        return {"postgres": "postgresql", "mariadb": "mysql"}.get(name, name)

    def describe(self) -> str:
        """Where the connector points, without secrets: for messages and metadata."""
        return self.sqlalchemy_url().render_as_string(hide_password=True)

    # -- SQLAlchemy access --------------------------------------------------------------

    def engine(self, database: Optional[str] = None):
        """A pooled SQLAlchemy engine, one per database, kept for the resource's life."""
        key = database or ""
        if key not in self._engines:
            from sqlalchemy import create_engine

            engine = create_engine(self.sqlalchemy_url(database), connect_args=self._connect_args(), pool_pre_ping=True)
            if self.backend == "sqlite":
                _real_sqlite_transactions(engine)
            self._engines[key] = engine
        return self._engines[key]

    def quote(self, *parts: Optional[str]) -> str:
        """``schema.table`` (or any dotted name) quoted part by part as this dialect's
        identifiers: a name, never SQL text. ``None`` parts are left out."""
        preparer = self.engine().dialect.identifier_preparer
        return ".".join(preparer.quote_identifier(part) for part in parts if part)

    @contextmanager
    def connect(self, database: Optional[str] = None) -> Iterator[Any]:
        """A SQLAlchemy connection; transient failures to connect are retried."""
        engine = self.engine(database)
        connection = self.retrying(engine.connect, "connect")
        try:
            yield connection
        finally:
            connection.close()

    def _connect_args(self) -> dict:
        args = {key: option_value(value) for key, value in self.options.items()}
        if self.backend in ("postgresql", "mysql"):
            args.setdefault("connect_timeout", max(1, int(self.timeout_s)))
        elif self.backend == "sqlite":
            args.setdefault("timeout", self.timeout_s)
        return args

    # -- Arrow bulk paths ---------------------------------------------------------------

    def read_arrow(self, query: str, *, database: Optional[str] = None, batch_rows: int = BATCH_ROWS) -> QueryStream:
        """The query's rows as Arrow batches, streamed from the server; close the stream
        (or read it to the end) to end the query."""
        if self.backend == "postgresql":
            return self._adbc_read(query, database)
        return self._sqlalchemy_read(query, database, batch_rows)

    def write_arrow(self, table: str, data, *, schema: Optional[str] = None, database: Optional[str] = None, mode: WriteMode = "create") -> int:
        """Write an Arrow table or RecordBatchReader to ``[schema.]table``; returns the rows written.

        ``create`` fails if the table exists, ``append`` adds to an existing one, ``replace``
        drops and recreates it. The name is an identifier, quoted as such: never SQL text.
        """
        import pyarrow as pa

        reader = data if isinstance(data, pa.RecordBatchReader) else pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
        if self.backend == "postgresql":
            return self._adbc_write(table, reader, schema, database, mode)
        return self._sqlalchemy_write(table, reader, schema, database, mode)

    def _adbc_uri(self, database: Optional[str]) -> str:
        # libpq takes the SQLAlchemy URL without its "+driver" part, and its own options.
        url = self.sqlalchemy_url(database).set(drivername="postgresql")
        query = dict(self.options)
        query.setdefault("connect_timeout", str(max(1, int(self.timeout_s))))
        return url.set(query=query).render_as_string(hide_password=False)

    @contextmanager
    def adbc_connection(self, database: Optional[str] = None) -> Iterator["AdbcSession"]:
        """An ADBC session with PostgreSQL, for COPY-speed Arrow in and out: one connection,
        in one transaction (see ``connectors/adbc.py``, and why not ADBC's DB-API)."""
        from dataplat_dagster.connectors.adbc import AdbcSession

        try:
            session = self.retrying(lambda: AdbcSession(self._adbc_uri(database)), "connect (ADBC)")
        except Exception as error:
            raise self.fail("cannot connect", error) from None
        try:
            yield session
        finally:
            session.close()

    def _adbc_read(self, query: str, database: Optional[str]):
        import pyarrow as pa

        # The session lives as long as the stream is read; the schema is known up front.
        stack = ExitStack()
        session = stack.enter_context(self.adbc_connection(database))
        try:
            # One snapshot of the data for the pass that sizes numeric columns and the read.
            session.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            numeric = self._numeric_types(session, query, session.schema(query))
            result = stack.enter_context(session.stream(query))
            schema = pa.schema([numeric.get(index, field) for index, field in enumerate(result.schema)])
        except Exception as error:
            stack.close()
            raise self.fail(f"the query failed: {_short(error)}") from None
        except BaseException:  # a Ctrl-C: the session ends with it
            stack.close()
            raise

        def batches():
            try:
                for batch in result:
                    yield _cast_numeric(batch, schema)
            except ConnectorError as error:
                raise self.fail(str(error)) from None
            except Exception as error:  # COPY runs as the rows are read: a cancel, a lost connection
                raise self.fail(f"the query failed: {_short(error)}") from None

        return QueryStream(schema, batches(), stack)

    def _numeric_types(self, session, query: str, schema) -> dict:
        """The Arrow field of each ``numeric`` column of ``schema``, by position. ADBC hands
        PostgreSQL's ``numeric`` over as opaque text: ``numeric(p, s)`` becomes
        ``decimal128(p, s)``; an unconstrained ``numeric`` a decimal as wide as its values
        need, found by one aggregate pass (float64, noted on the field, if none fits)."""
        import pyarrow as pa

        from dataplat_dagster.connectors.sql_types import (
            decimal_type, is_pg_numeric, pg_numeric_field, pg_numeric_precision, pg_numeric_sizes_query,
        )

        fields, unconstrained = {}, []
        for index, field in enumerate(schema):
            if not is_pg_numeric(field):
                continue
            declared = pg_numeric_precision(field)
            decimal = decimal_type(*declared) if declared else None
            if decimal:
                fields[index] = pa.field(field.name, decimal)
            else:  # unconstrained, or declared wider than Arrow's widest decimal
                unconstrained.append(index)
        if unconstrained:
            (sizes,) = session.fetch_rows(pg_numeric_sizes_query(query, len(schema), unconstrained))
            for position, index in enumerate(unconstrained):
                fields[index] = pg_numeric_field(schema.field(index).name, *sizes[3 * position: 3 * position + 3])
        return fields

    def _adbc_write(self, table: str, reader, schema: Optional[str], database: Optional[str], mode: WriteMode) -> int:
        with self.adbc_connection(database) as session:
            try:
                rows = session.ingest(table, reader, mode=mode, db_schema=schema)
            except Exception as error:
                session.rollback()
                raise self.fail(f"writing table {_qualified(schema, table)!r} failed", error) from None
            session.commit()
        return rows

    def _sqlalchemy_read(self, query: str, database: Optional[str], batch_rows: int):
        from sqlalchemy import text

        from dataplat_dagster.connectors.sql_types import rows_schema, rows_to_batch

        # A server-side cursor, read batch by batch while the reader is read, in the
        # column types the database declares (see sql_types).
        stack = ExitStack()
        connection = stack.enter_context(self.connect(database))
        try:
            declared_sqlite = self._sqlite_declared_types(connection, query)
            result = connection.execution_options(stream_results=True, max_row_buffer=batch_rows).execute(text(query))
        except Exception as error:
            stack.close()
            raise self.fail(f"the query failed: {_short(error)}") from None
        names = list(result.keys())
        declared = self._declared_types(result.cursor.description, declared_sqlite, len(names))
        try:
            first = result.fetchmany(batch_rows)
            schema = rows_schema(names, declared, first)
        except Exception as error:
            stack.close()
            raise self.fail(f"the query failed: {_short(error)}") from None

        def batches():
            rows = first
            while rows:
                try:
                    yield rows_to_batch(rows, schema)
                except ConnectorError as error:
                    raise self.fail(str(error)) from None
                rows = result.fetchmany(batch_rows)

        return QueryStream(schema, batches(), stack)

    def _sqlite_declared_types(self, connection, query: str) -> Optional[list[str]]:
        if self.backend != "sqlite":
            return None
        from dataplat_dagster.connectors.sql_types import sqlite_declared_types

        return sqlite_declared_types(connection, query)

    def _declared_types(self, description, declared_sqlite: Optional[list[str]], width: int) -> list:
        """Each column's Arrow type as the database declares it; None where it does not."""
        from dataplat_dagster.connectors.sql_types import mysql_types, sqlite_type

        if self.backend == "mysql" and description:
            return mysql_types(description)
        if declared_sqlite is not None and len(declared_sqlite) == width:
            return [sqlite_type(declared) for declared in declared_sqlite]
        return [None] * width

    def _sqlalchemy_write(self, table: str, reader, schema: Optional[str], database: Optional[str], mode: WriteMode) -> int:
        from sqlalchemy import MetaData, inspect

        target = arrow_table_definition(table, reader.schema, MetaData(schema=schema))
        with self.connect(database) as connection, connection.begin():
            exists = inspect(connection).has_table(table, schema=schema)
            if exists and mode == "create":
                raise self.fail(f"table {_qualified(schema, table)!r} already exists")
            if not exists and mode == "append":
                raise self.fail(f"table {_qualified(schema, table)!r} does not exist")
            if exists and mode == "replace":
                target.drop(connection)
            if not exists or mode == "replace":
                target.create(connection)
            return insert_batches(connection, target, reader)

    # -- test connector -----------------------------------------------------------------

    def check(self, write: bool = False) -> CheckReport:
        checker = Checker(self.connector_name, "sql", secrets=self.secret_values(), write=write)
        with checker:
            if self.backend == "sqlite":
                checker.run("database", self._check_sqlite_file)
            else:
                url = self.sqlalchemy_url()
                if url.host:
                    port = url.port or DEFAULT_PORTS.get(self.backend)
                    checker.run("resolve", lambda: resolve_host(url.host, port))
                    checker.run("connect", lambda: tcp_connect(url.host, port, self.timeout_s))
                checker.run("authenticate", self._check_login)
            tables = checker.run("list", self._check_list, _describe_tables)
            if tables:
                checker.run("read", lambda: self._check_read(tables))
            else:
                checker.skip("read", "no table to read from: the database is empty or nothing in it is visible to this user")
            if write:
                sentinel = f"dataplat_check_{uuid.uuid4().hex[:12]}"
                checker.run("write", lambda: self._check_write(sentinel))
                checker.run("delete", lambda: self._check_drop(sentinel))
        return checker.report

    def _check_sqlite_file(self) -> str:
        path = Path(self.sqlalchemy_url().database or "")
        if not path.is_file():
            raise StepFailed(f"the SQLite database file {str(path)!r} does not exist: check the path (relative paths start at the project folder)")
        with open(path, "rb") as handle:
            header = handle.read(16)
        if header and header != SQLITE_HEADER:
            raise StepFailed(f"{str(path)!r} is not a SQLite database file")
        try:
            sqlite3.connect(f"file:{path}?mode=ro", uri=True).close()
        except sqlite3.Error as error:
            raise StepFailed(f"cannot open {str(path)!r}: {error}") from None
        return f"{path} ({path.stat().st_size:,} bytes)"

    def _check_login(self) -> str:
        from sqlalchemy import text

        try:
            with self.engine().connect() as connection:
                version = connection.execute(text(_VERSION_QUERY.get(self.backend, "SELECT 1"))).scalar()
        except Exception as error:
            raise _classify_login_error(self, error) from None
        return f"logged in as {self.username or 'the URL user'}: {str(version).split(',')[0]}"

    def _check_list(self) -> list[str]:
        from sqlalchemy import inspect

        with self.engine().connect() as connection:
            inspector = inspect(connection)
            try:
                schemas = [None] if self.backend in ("sqlite", "mysql") else [s for s in inspector.get_schema_names() if not _is_system_schema(s)]
                names = []
                for schema in schemas:
                    names += [_qualified(schema if schema not in (None, inspector.default_schema_name) else None, name) for name in inspector.get_table_names(schema=schema)]
            except Exception as error:
                raise StepFailed(_permission_message(error, "list the tables")) from None
        return names

    def _check_read(self, tables: list[str]) -> str:
        """Read one row from the first few tables; passes if any of them can be read."""
        from sqlalchemy import text

        denied = []
        for name in tables[:3]:
            quoted = self.quote(*name.split("."))
            try:
                with self.engine().connect() as connection:
                    connection.execute(text(f"SELECT * FROM {quoted} WHERE 1 = 0")).close()
                return f"can read {name}"
            except Exception as error:
                denied.append(f"{name} ({_short(error)})")
        raise StepFailed("permission denied to read: " + "; ".join(denied) + ". Grant this user SELECT on the tables it should read")

    def _check_write(self, sentinel: str) -> str:
        from sqlalchemy import Column, Integer, MetaData, String, Table, select

        table = Table(sentinel, MetaData(), Column("id", Integer), Column("note", String(40)))
        try:
            with self.engine().begin() as connection:
                table.create(connection)
                connection.execute(table.insert(), [{"id": 1, "note": "dataplat connector check"}])
                found = connection.execute(select(table.c.note)).scalar()
        except Exception as error:
            raise StepFailed(_permission_message(error, f"create the table {sentinel}")) from None
        if found != "dataplat connector check":
            raise StepFailed(f"wrote a row into {sentinel} but read back {found!r}")
        return f"created {sentinel}, wrote and read back one row"

    def _check_drop(self, sentinel: str) -> str:
        from sqlalchemy import MetaData, Table

        try:
            with self.engine().begin() as connection:
                Table(sentinel, MetaData()).drop(connection)
        except Exception as error:
            raise StepFailed(_permission_message(error, f"drop the table {sentinel}") + f"; drop {sentinel} by hand") from None
        return f"dropped {sentinel}"

    def teardown_after_execution(self, context) -> None:
        for engine in self._engines.values():
            engine.dispose()


def _real_sqlite_transactions(engine) -> None:
    """Make ``connection.begin()`` a real SQLite transaction that holds DDL too. Python's
    sqlite3 opens its implicit transaction only before INSERT/UPDATE/DELETE, so a CREATE
    or DROP before them would commit on its own (SQLAlchemy's documented recipe)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN")


def option_value(text: str):
    """A driver option typed back from text: true/false, an integer, a number, or text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


_VERSION_QUERY = {"postgresql": "SELECT version()", "mysql": "SELECT version()", "sqlite": "SELECT sqlite_version()"}


def _describe_tables(names: list[str]) -> str:
    count = f"{len(names)} table{'' if len(names) == 1 else 's'} visible"
    return count + (f", e.g. {', '.join(names[:5])}" if names else "")


def _classify_login_error(connector: SqlConnector, error: Exception) -> StepFailed:
    """Which step a failed login belongs to, in words: password, missing database, access."""
    text = _short(error)
    lowered = text.lower()
    database = connector.sqlalchemy_url().database
    secret_var = "the password's environment variable" if connector.password else "the URL"
    if "does not exist" in lowered and "database" in lowered or "unknown database" in lowered:
        return StepFailed(f"database {database!r} does not exist on the server ({text}): check the database name", step="database")
    if "permission denied for database" in lowered:
        return StepFailed(f"permission denied to use database {database!r} ({text}): grant this user CONNECT on it", step="database")
    if "access denied for user" in lowered and "to database" in lowered:
        # MySQL and MariaDB answer the same for a missing database and a forbidden one.
        return StepFailed(
            f"permission denied to use database {database!r}, or it does not exist (the server does not say which) ({text}): "
            "check the database name, and grant this user privileges on it",
            step="database",
        )
    if any(words in lowered for words in ("password authentication failed", "access denied for user", "role", "authentication failed", "no pg_hba.conf entry")):
        return StepFailed(f"the server refused the login of user {connector.username!r} ({text}): check the username and {secret_var}")
    if "timeout" in lowered or "timed out" in lowered:
        return StepFailed(f"the server did not answer within {connector.timeout_s:g} s ({text})")
    return StepFailed(text)


def _permission_message(error: Exception, action: str) -> str:
    text = _short(error)
    if "permission denied" in text.lower() or "access denied" in text.lower() or "command denied" in text.lower():
        return f"permission denied to {action} ({text}): grant this user the privilege"
    return f"cannot {action}: {text}"


def _short(error: Exception) -> str:
    """The driver's own message, without SQLAlchemy's SQL echo and background link."""
    return error_text(error)


def _is_system_schema(name: str) -> bool:
    return name in ("information_schema", "pg_catalog", "pg_toast") or name.startswith("pg_temp") or name.startswith("pg_toast_temp")


def _qualified(schema: Optional[str], table: str) -> str:
    return f"{schema}.{table}" if schema else table


def _cast_numeric(batch, schema):
    """A batch of ADBC's opaque numeric text in the decimal (or float) types of ``schema``."""
    import pyarrow as pa

    columns = []
    for column, field in zip(batch.columns, schema):
        if column.type != field.type and isinstance(column.type, pa.BaseExtensionType):
            try:
                column = column.storage.cast(field.type)
            except pa.ArrowInvalid as error:
                raise ConnectorError(f"column {field.name!r} holds a value that does not fit {field.type} ({error})") from None
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def arrow_table_definition(name: str, schema, metadata):
    """A SQLAlchemy ``Table`` with a column of the portable type for each Arrow field."""
    from sqlalchemy import Column, Table

    return Table(name, metadata, *(Column(field.name, sqlalchemy_type(field.type)) for field in schema))


def insert_batches(connection, target, reader) -> int:
    """Insert every batch of ``reader`` into ``target``: one executemany per batch, which
    PyMySQL sends as multi-row INSERTs and SQLite runs as one prepared statement."""
    written = 0
    for batch in reader:
        rows = batch.to_pylist()
        if rows:
            connection.execute(target.insert(), rows)
        written += len(rows)
    return written


def sqlalchemy_type(arrow_type):
    """The portable SQLAlchemy type for an Arrow column type."""
    import pyarrow as pa
    from sqlalchemy import BigInteger, Boolean, Date, DateTime, Float, Integer, LargeBinary, Numeric, SmallInteger, Text, Time

    if pa.types.is_boolean(arrow_type):
        return Boolean()
    if pa.types.is_int8(arrow_type) or pa.types.is_int16(arrow_type) or pa.types.is_uint8(arrow_type):
        return SmallInteger()
    if pa.types.is_int32(arrow_type) or pa.types.is_uint16(arrow_type):
        return Integer()
    if pa.types.is_integer(arrow_type):
        return BigInteger()
    if pa.types.is_floating(arrow_type):
        return Float(53)
    if pa.types.is_decimal(arrow_type):
        return Numeric(arrow_type.precision, arrow_type.scale)
    if pa.types.is_timestamp(arrow_type):
        return DateTime(timezone=arrow_type.tz is not None)
    if pa.types.is_date(arrow_type):
        return Date()
    if pa.types.is_time(arrow_type):
        return Time()
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return LargeBinary()
    return Text()

