"""PostgreSQL through ADBC's low-level API: COPY-speed Arrow in and out, in one transaction.

The DB-API layer (``adbc_driver_postgresql.dbapi``) is not used: importing it imports
``adbc_driver_manager.dbapi``, which imports ``pyarrow.dataset`` and, through it, pandas:
0.4-0.7 s of every snapshot on a 2-core machine, in a process that has Dagster and pyarrow
loaded already. The database, connection and statement handles it wraps need pyarrow alone.

What that layer adds and the connector relies on is kept: autocommit off (one transaction,
ended by ``commit`` or ``rollback``), and every call that waits on the server runs under
ADBC's own ``_blocking_call``, so that a SIGINT (Ctrl-C, or Dagster terminating a run)
cancels the statement on the server instead of waiting for it. The reads of the result's
batches are wrapped too (the DB-API's record batch reader is not): COPY runs as the rows are
read, so that is where a long query spends its time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal, Optional, TypeVar

T = TypeVar("T")
IngestMode = Literal["create", "append", "replace"]


class AdbcSession:
    """One connection to PostgreSQL, in a transaction from the start (as a DB-API
    connection is): ``commit`` or ``rollback`` ends it, ``close`` without either abandons it
    (the server rolls it back). Statements are short-lived, except a ``stream``'s, which
    lives until the stream is closed; close streams before the session."""

    def __init__(self, uri: str) -> None:
        import adbc_driver_manager
        import adbc_driver_postgresql

        self._database = adbc_driver_postgresql.connect(uri)
        try:
            self._connection = adbc_driver_manager.AdbcConnection(self._database)
        except BaseException:
            self._database.close()
            raise
        try:
            self._connection.set_autocommit(False)
        except BaseException:
            self.close()
            raise

    def execute(self, sql: str, parameters: Sequence[str] = ()) -> int:
        """Run a statement that returns no rows; the rows it affected (-1 if unknown)."""
        with self._statement(sql, parameters) as statement:
            return _blocking(statement, statement.execute_update)

    def fetch_rows(self, sql: str, parameters: Sequence[str] = ()) -> list[tuple]:
        """Every row of a (small) query, as tuples of Python values."""
        with self._statement(sql, parameters) as statement:
            table = _read_all(statement)
        return list(zip(*(column.to_pylist() for column in table.columns)))

    def schema(self, sql: str):
        """The Arrow schema of a query's result, from the server, without running it."""
        import pyarrow as pa

        with self._statement(sql) as statement:
            return pa.schema(_blocking(statement, statement.execute_schema))

    def stream(self, sql: str) -> "ResultStream":
        """A query's result, read batch by batch; close it (or read it to the end) before
        the session."""
        statement = self._statement(sql)
        try:
            return ResultStream(statement, _execute_query(statement))
        except BaseException:
            statement.close()
            raise

    def ingest(self, table: str, data, *, mode: IngestMode, db_schema: Optional[str] = None) -> int:
        """Bulk-load ``data`` (anything with ``__arrow_c_stream__``: a RecordBatchReader, a
        Table) into ``[db_schema.]table`` with COPY; the rows written."""
        from adbc_driver_manager import StatementOptions, _lib

        options = {
            _lib.INGEST_OPTION_TARGET_TABLE: table,
            _lib.INGEST_OPTION_MODE: {
                "create": _lib.INGEST_OPTION_MODE_CREATE,
                "append": _lib.INGEST_OPTION_MODE_APPEND,
                "replace": _lib.INGEST_OPTION_MODE_REPLACE,
            }[mode],
        }
        if db_schema:
            options[StatementOptions.INGEST_TARGET_DB_SCHEMA.value] = db_schema
        with self._statement(None) as statement:
            statement.set_options(**options)
            statement.bind_stream(data)
            return _blocking(statement, statement.execute_update)

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        self._connection.rollback()

    def close(self) -> None:
        try:
            self._connection.close()
        finally:
            self._database.close()

    def _statement(self, sql: Optional[str], parameters: Sequence[str] = ()):
        """A new statement for ``sql``, with the text ``parameters`` ($1, $2, ...) bound; a
        context manager that closes it."""
        import adbc_driver_manager

        statement = adbc_driver_manager.AdbcStatement(self._connection)
        try:
            if sql is not None:
                statement.set_sql_query(sql)
            if parameters:
                statement.bind(_text_parameters(parameters))
        except BaseException:
            statement.close()
            raise
        return statement


class ResultStream:
    """A query's record batches, each read under ``_blocking_call``; owns the statement."""

    def __init__(self, statement, reader) -> None:
        self._statement = statement
        self._reader = reader
        self.schema = reader.schema

    def __iter__(self) -> Iterator:
        while True:
            try:
                batch = _blocking(self._statement, self._reader.read_next_batch)
            except StopIteration:
                return
            yield batch

    def close(self) -> None:
        # The stream first: it reads from the statement, whose handle can only be released once.
        if self._statement is None:
            return
        statement, self._statement = self._statement, None
        try:
            self._reader.close()
        finally:
            statement.close()

    def __enter__(self) -> "ResultStream":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def _blocking(statement, action: Callable[[], T]) -> T:
    """``action()``, with a SIGINT meanwhile cancelling ``statement`` on the server: ADBC's
    native handler for blocking calls, which its DB-API wraps around every such call. The
    call then fails with the server's "canceling statement due to user request"."""
    from adbc_driver_manager._lib import _blocking_call

    return _blocking_call(action, (), {}, statement.cancel)


def _execute_query(statement):
    """Run the statement's query; its result as a pyarrow RecordBatchReader."""
    import pyarrow as pa

    handle, _ = _blocking(statement, statement.execute_query)
    try:
        return pa.RecordBatchReader.from_stream(handle)
    except BaseException:
        if handle.is_valid:
            handle.release()
        raise


def _read_all(statement):
    reader = _execute_query(statement)
    with reader:
        return _blocking(statement, reader.read_all)


def _text_parameters(parameters: Sequence[str]):
    """Positional text parameters as the one-row batch ADBC binds ($1 is column "0"), built
    from buffers: ``pa.array`` of Python values imports pandas (pyarrow probes for it on
    every conversion), 0.3 s that an export would pay for two names."""
    import struct

    import pyarrow as pa

    columns = []
    for value in parameters:
        data = value.encode()
        offsets = pa.py_buffer(struct.pack("<ii", 0, len(data)))
        columns.append(pa.StringArray.from_buffers(1, offsets, pa.py_buffer(data)))
    return pa.RecordBatch.from_arrays(columns, names=[str(index) for index in range(len(columns))])
